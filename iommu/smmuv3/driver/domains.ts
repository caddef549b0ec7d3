import { encodeLayout } from '../../../src/hw/layout.ts';
import type { Mm } from '../../../src/host/mm.ts';
import { IoPgtableDomain } from '../../../src/iommu-core/io-pgtable-domain.ts';
import type { DriverDomain, DomainGeometry } from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import type { IotlbGather } from '../../../src/iommu-core/io-pgtable.ts';
import type { VmsaBuilder } from '../../pgtable/vmsa-builder.ts';
import { EINVAL, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import { CD_LAYOUT } from '../cd.ts';
import { readAndClearS1Dirty } from './dirty.ts';
import type { Smmuv3Driver } from './driver.ts';

/** MAIR for the attribute indexes the VMSA builder uses: 0 Normal-NC, 1 Normal-WB, 2 Device-nGnRE. */
export const SMMU_MAIR = 0x0004ff44;
const WBWA = 1;
const ISH = 3;

/** The fields every stage-1 CD of this driver has (arm_smmu_make_s1_cd / arm_smmu_make_sva_cd). */
export function stage1Cd(opts: { ttb0: number; t0sz: number; asid: number; ipsCode: number; shared: boolean; ha: boolean; hd?: boolean }): Uint32Array {
  // arm_smmu_make_s1_cd: HA and HD together when the table was built for HTTU dirty tracking.
  const hd = opts.hd === true;
  return encodeLayout(CD_LAYOUT, {
    T0SZ: opts.t0sz, TG0: 0, IR0: WBWA, OR0: WBWA, SH0: ISH, EPD1: 1, V: 1,
    IPS: opts.ipsCode, AA64: 1, R: 1, A: 1, ASET: opts.shared ? 1 : 0, ASID: opts.asid,
    HA: opts.ha || hd ? 1 : 0, HD: hd ? 1 : 0, TTB0: opts.ttb0 / 16, MAIR0: SMMU_MAIR,
  });
}

/**
 * What the SMMUv3 driver's paging domains (stage 1 and stage 2) share: an
 * io-pgtable of their own, attached to a master's RID through its STE.
 */
abstract class SmmuPagingDomain extends IoPgtableDomain {
  abstract readonly smmu: Smmuv3Driver;

  /**
   * arm_smmu_enforce_cache_coherency(): true only when every master attached
   * to the domain is CANWBS (the SMMU has no snoop-forcing bit of its own).
   * Linux remembers the answer to refuse a later non-CANWBS master; here
   * CANWBS is one root-complex flag, so every later master has it too.
   */
  enforceCacheCoherency(): boolean {
    return this.smmu.mastersCanwbs(this);
  }

  attachDev(dev: PciFunction): number {
    return this.smmu.attachRid(dev, this);
  }
}

/**
 * A stage-1 paging domain: an io-pgtable of its own under an ASID
 * (ARM_SMMU_DOMAIN_S1). Allocated for dirty tracking, its table carries DBM
 * on writable leaves and its CD enables HTTU (HA, HD); the dirty state is
 * then always being recorded, and iommufd's clear on enable gives the user
 * the writes from that point on (arm_smmu_set_dirty_tracking is a no-op).
 */
export class S1Domain extends SmmuPagingDomain {
  readonly stage = 1;
  constructor(
    readonly smmu: Smmuv3Driver,
    readonly builder: VmsaBuilder,
    readonly asid: number,
    /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (Linux: domain->dirty_ops set, IO_PGTABLE_QUIRK_ARM_HD). */
    readonly dirty = false,
  ) {
    super(builder, 48);
  }

  cdWords(): Uint32Array {
    return stage1Cd({
      ttb0: this.builder.root, t0sz: this.builder.tsz, asid: this.asid, ipsCode: this.smmu.ipsCode, shared: false, ha: false, hd: this.dirty,
    });
  }

  /** arm_smmu_set_dirty_tracking: HTTU is always on for such a domain; nothing to program. */
  setDirtyTracking(_enable: boolean): number {
    return this.dirty ? 0 : -EOPNOTSUPP;
  }

  /**
   * arm_smmu_read_and_clear_dirty: walk the table over the range, report
   * writable-dirty leaves, make them writable-clean unless noClear, then
   * invalidate the TLB (and ATCs) over what was cleared (iommufd's
   * iommu_iotlb_sync of the dirty gather).
   */
  readAndClearDirty(iova: number, size: number, noClear: boolean, mark?: (iova: number, size: number) => void): number {
    if (!this.dirty) return -EOPNOTSUPP;
    if (size <= 0 || iova + size > this.geometry.apertureEnd + 1) return -EINVAL;
    const b = this.builder;
    const r = readAndClearS1Dirty(this.smmu.tableMem, { root: b.root, startLevel: b.startLevel, iaBits: b.cfg.iaBits }, iova, size, noClear, mark);
    // No level hint: the cleared leaves may be pages and blocks alike.
    if (r.cleared) this.smmu.invalidateAsidRange(this.asid, r.start, r.end - r.start, 4096, false, this);
    return 0;
  }

  setDevPasid(dev: PciFunction, pasid: number): number {
    return this.smmu.attachPasid(dev, pasid, this, this.cdWords());
  }

  protected flushGather(g: IotlbGather): void {
    this.smmu.invalidateAsidRange(this.asid, g.start, g.end - g.start, g.pgsize, !g.tablesRemoved, this);
  }

  flushIotlbAll(): void {
    this.smmu.invalidateAsid(this.asid, this);
  }

  override free(): void {
    this.smmu.invalidateAsid(this.asid, this);
    this.smmu.releaseAsid(this.asid);
    super.free();
  }
}

/**
 * A stage-2 paging domain under a VMID: what a nesting parent
 * (IOMMU_HWPT_ALLOC_NEST_PARENT) is. A nest parent's changes also drop the
 * combined stage-1 entries of every nested domain tagged with its VMID
 * (arm_smmu_tlb_inv_range_domain: TLBI_NH_ALL after the S2 invalidation).
 */
export class S2Domain extends SmmuPagingDomain {
  readonly stage = 2;
  constructor(
    readonly smmu: Smmuv3Driver,
    readonly builder: VmsaBuilder,
    readonly vmid: number,
    readonly nestParent = false,
  ) {
    super(builder, builder.cfg.iaBits);
  }

  protected flushGather(g: IotlbGather): void {
    this.smmu.invalidateVmidRange(this.vmid, g.start, g.end - g.start, g.pgsize, !g.tablesRemoved, this);
    if (this.nestParent) this.smmu.cmdq.issueOne('TLBI_NH_ALL', { VMID: this.vmid });
  }

  flushIotlbAll(): void {
    this.smmu.invalidateVmid(this.vmid, this);
  }

  override free(): void {
    this.smmu.invalidateVmid(this.vmid, this);
    this.smmu.releaseVmid(this.vmid);
    super.free();
  }
}

/**
 * An SVA domain: the process's own page table (the CPU's VMSAv8-64 stage 1)
 * shared through a CD under its own ASID, installed at the bound PASID.
 */
export class SvaDomain implements DriverDomain {
  readonly type = 'sva' as const;
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry = { apertureStart: 0, apertureEnd: 2 ** 48 - 1 };

  constructor(
    readonly smmu: Smmuv3Driver,
    readonly mm: Mm,
    readonly asid: number,
  ) {}

  cdWords(): Uint32Array {
    const pt = this.mm.pgtable as VmsaBuilder;
    return stage1Cd({ ttb0: pt.root, t0sz: pt.tsz ?? 16, asid: this.asid, ipsCode: this.smmu.ipsCode, shared: true, ha: false });
  }

  attachDev(): number {
    return -22;
  }

  setDevPasid(dev: PciFunction, pasid: number): number {
    return this.smmu.attachPasid(dev, pasid, this, this.cdWords());
  }

  iovaToPhys(iova: number): number {
    return this.mm.physOf(iova);
  }

  /** The CPU page table changed (mmu notifier): drop this ASID's translations, and the ATCs'. */
  flushIotlbAll(): void {
    this.smmu.invalidateAsid(this.asid, this);
  }

  free(): void {
    this.smmu.invalidateAsid(this.asid, this);
    this.smmu.releaseAsid(this.asid);
  }
}

/** The two static domains: STE.Config abort, or bypass. */
export class StaticDomain implements DriverDomain {
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry = { apertureStart: 0, apertureEnd: 0 };
  constructor(
    readonly smmu: Smmuv3Driver,
    readonly type: 'blocked' | 'identity',
  ) {}

  attachDev(dev: PciFunction): number {
    return this.smmu.attachRid(dev, this);
  }

  /** On the blocked domain this removes a PASID (remove_dev_pasid). */
  setDevPasid(dev: PciFunction, pasid: number): number {
    if (this.type !== 'blocked') return -22;
    this.smmu.detachPasid(dev, pasid);
    return 0;
  }

  free(): void {}
}
