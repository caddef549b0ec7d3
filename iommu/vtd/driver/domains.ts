/**
 * The driver's domains, each described to the hardware by the scalable-mode
 * PASID-table entry it installs (VT-d spec §9.6; Linux intel/pasid.c
 * intel_pasid_setup_{first_level,second_level,pass_through}):
 *
 * - first-stage paging (PGTT 001b): an IA-32e 4-level table of its own under
 *   a domain ID; what current Linux uses for DMA domains when the unit has
 *   first-stage translation (ECAP.FLTS). User-mode leaves (U/S = 1, as Linux
 *   sets DMA_FL_PTE_US), SRE = 0.
 * - second-stage paging (PGTT 010b): the nesting parent (IOMMU_HWPT_ALLOC_NEST_PARENT)
 *   and dirty-tracking domains (SLADE); nested domains are in nested.ts.
 * - SVA (PGTT 001b over the process's IA-32e table `mm.pgtable.root`).
 * - identity (PGTT 100b, pass-through, domain ID 1 like Linux's FLPT_DEFAULT_DID).
 * - blocked: no PASID entry (requests fault: not present).
 */
import { EINVAL, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { encodeLayout } from '../../../src/hw/layout.ts';
import type { Mm } from '../../../src/host/mm.ts';
import { IoPgtableDomain } from '../../../src/iommu-core/io-pgtable-domain.ts';
import type { DomainGeometry, DomainType, DriverDomain } from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import type { IotlbGather, PageTableBuilder } from '../../../src/iommu-core/io-pgtable.ts';
import type { VtdSsBuilder } from '../../pgtable/vtd-ss-builder.ts';
import { readAndClearSsDirty } from './dirty.ts';
import { PASID_ENTRY, PGTT_FIRST_STAGE, PGTT_PASSTHROUGH, PGTT_SECOND_STAGE } from '../pasid-entry.ts';

/** Domain ID of pass-through entries (Linux FLPT_DEFAULT_DID). */
export const IDENTITY_DID = 1;

/** How a domain translates, for invalidation: 'fs' entries are PASID-tagged (p-IOTLB), 'ss' domain-tagged. */
export type VtdKind = 'fs' | 'ss' | 'pt' | 'blocked';

/** What the domains need from the driver. */
export interface VtdDomainOps {
  /** Page-walk snooping (ECAP.SMPWCS): PWSNP in every entry. */
  readonly pwsnp: boolean;
  /** ECAP.SC: the unit can force snooping (PGSNP, second-stage SNP). */
  readonly snoopControl: boolean;
  /**
   * intel_pasid_setup_page_snoop_control() on every RID attachment of a
   * first-stage domain: PGSNP set in the present entry, then PASID-cache,
   * PASID-based IOTLB and device-TLB invalidation (intel_pasid_flush_present).
   */
  setPageSnoop(domain: VtdDomain): void;
  attach(dev: PciFunction, pasid: number, domain: VtdDomain): number;
  detach(dev: PciFunction, pasid: number): void;
  /** The SVA domain's mm is gone (intel_mm_release): tear its PASID entries down, attachments kept. */
  mmRelease(domain: VtdDomain): void;
  /** Invalidate [start, end) of a domain everywhere it is attached, and wait. */
  flushRange(domain: VtdDomain, start: number, end: number, leafOnly: boolean): void;
  flushAll(domain: VtdDomain): void;
  releaseDid(did: number): void;
  /** Rewrite the PASID entries of a domain (and of nested domains over it) after a change, with their flushes. */
  refresh(domain: VtdDomain): number;
  /** Guest memory the domains' tables live in. */
  readonly mem: PhysMem;
}

export interface VtdDomain extends DriverDomain {
  readonly kind: VtdKind;
  readonly did: number;
  /** The PASID-table entry this domain installs (undefined: none, blocked). */
  pasidEntry(): Uint32Array | undefined;
  /** Where it is attached: `${sid}:${pasid}` -> (device, pasid). */
  readonly users: Map<string, { dev: PciFunction; pasid: number }>;
}

function firstStageEntry(root: number, did: number, pwsnp: boolean, pgsnp = false): Uint32Array {
  return encodeLayout(PASID_ENTRY, {
    P: 1, PGTT: PGTT_FIRST_STAGE, FSPTPTR: root / 4096, FLPM: 0, DID: did, PWSNP: pwsnp ? 1 : 0, PGSNP: pgsnp ? 1 : 0,
  });
}

/**
 * domain_support_force_snooping(): every device attached to the domain's RID
 * sits behind a unit with ECAP.SC (vacuously true with none attached). One
 * driver instance is one unit here.
 */
function supportsForceSnooping(ops: VtdDomainOps, users: VtdDomain['users']): boolean {
  for (const u of users.values()) if (u.pasid === 0 && !ops.snoopControl) return false;
  return true;
}

/** A first-stage paging domain (IA-32e table, 47-bit canonical lower half). */
export class FsDomain extends IoPgtableDomain implements VtdDomain {
  readonly kind = 'fs' as const;
  readonly users = new Map<string, { dev: PciFunction; pasid: number }>();
  /** dmar_domain->force_snooping: PGSNP in the entries this domain installs. */
  forceSnooping = false;

  constructor(
    private readonly ops: VtdDomainOps,
    readonly builder: PageTableBuilder,
    readonly did: number,
  ) {
    super(builder, 47);
  }

  pasidEntry(): Uint32Array {
    return firstStageEntry(this.builder.root, this.did, this.ops.pwsnp, this.forceSnooping);
  }

  /**
   * intel_iommu_enforce_cache_coherency_fs(): PGSNP (§9.6: page snoop,
   * needs ECAP.SC) in the entries of every RID attachment now and of every
   * attachment later; false when a device's unit lacks snoop control.
   */
  enforceCacheCoherency(): boolean {
    if (this.forceSnooping) return true;
    if (!supportsForceSnooping(this.ops, this.users)) return false;
    this.forceSnooping = true;
    this.ops.setPageSnoop(this);
    return true;
  }

  attachDev(dev: PciFunction): number {
    return this.ops.attach(dev, 0, this);
  }

  setDevPasid(dev: PciFunction, pasid: number): number {
    return this.ops.attach(dev, pasid, this);
  }

  protected flushGather(g: IotlbGather): void {
    if (g.end > g.start) this.ops.flushRange(this, g.start, g.end, !g.tablesRemoved);
  }

  flushIotlbAll(): void {
    this.ops.flushAll(this);
  }

  override free(): void {
    this.ops.releaseDid(this.did);
    super.free();
  }
}

/**
 * A second-stage paging domain (VT-d second-stage table, 48-bit): the
 * nesting parent, and the only kind that tracks dirty pages (SLADE, as
 * Linux refuses dirty tracking on first-stage domains).
 */
export class SsDomain extends IoPgtableDomain implements VtdDomain {
  readonly kind = 'ss' as const;
  readonly users = new Map<string, { dev: PciFunction; pasid: number }>();
  /** Nested domains over this one (their attachments need this domain's flushes too). */
  readonly nested = new Set<VtdDomain>();
  /** SLADE in the entries this domain installs (dirty tracking enabled). */
  slade = false;
  /** dmar_domain->force_snooping (the builder sets SNP in every new leaf). */
  forceSnooping = false;

  constructor(
    readonly ownerOps: VtdDomainOps,
    readonly builder: VtdSsBuilder,
    readonly did: number,
    /** Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT. */
    readonly nestParent = false,
    /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (Linux: domain->dirty_ops set). */
    readonly dirtyOps = false,
  ) {
    super(builder, 48);
  }

  pasidEntry(): Uint32Array {
    return encodeLayout(PASID_ENTRY, {
      P: 1, PGTT: PGTT_SECOND_STAGE, SLPTPTR: this.builder.root / 4096, AW: this.builder.aw, DID: this.did,
      SLADE: this.slade ? 1 : 0, PWSNP: this.ownerOps.pwsnp ? 1 : 0,
    });
  }

  attachDev(dev: PciFunction): number {
    return this.ownerOps.attach(dev, 0, this);
  }

  setDevPasid(dev: PciFunction, pasid: number): number {
    return this.ownerOps.attach(dev, pasid, this);
  }

  protected flushGather(g: IotlbGather): void {
    if (g.end > g.start) this.ownerOps.flushRange(this, g.start, g.end, !g.tablesRemoved);
  }

  flushIotlbAll(): void {
    this.ownerOps.flushAll(this);
  }

  /**
   * intel_iommu_enforce_cache_coherency_ss(): second-stage leaves have a
   * per-entry snoop bit (SNP, §9.8); every later map sets it
   * (PT_FEAT_VTDSS_FORCE_COHERENCE). Asked before anything is mapped.
   * False when a device's unit lacks snoop control (ECAP.SC).
   */
  enforceCacheCoherency(): boolean {
    if (!supportsForceSnooping(this.ownerOps, this.users)) return false;
    this.builder.cfg.forceSnoop = true;
    this.forceSnooping = true;
    return true;
  }

  /**
   * intel_iommu_set_dirty_tracking: SLADE in every PASID entry of this
   * domain and of the nested domains over it, each followed by PASID-cache,
   * domain-selective IOTLB and device-TLB invalidation.
   */
  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyOps) return -EOPNOTSUPP;
    if (this.slade === enable) return 0;
    this.slade = enable;
    const r = this.ownerOps.refresh(this);
    if (r < 0) {
      this.slade = !enable;
      this.ownerOps.refresh(this);
    }
    return r;
  }

  readAndClearDirty(iova: number, size: number, noClear: boolean, mark?: (iova: number, size: number) => void): number {
    // Reading needs tracking on; clearing alone (iommufd clearing before it enables tracking) does not.
    if (!this.slade && mark !== undefined) return -EINVAL;
    const r = readAndClearSsDirty(this.ownerOps.mem, this.builder.root, this.builder.aw + 2, iova, size, noClear, mark ?? (() => {}));
    if (r.cleared) this.ownerOps.flushRange(this, r.start, r.end, true);
    return 0;
  }

  override free(): void {
    this.ownerOps.releaseDid(this.did);
    super.free();
  }
}

/** An SVA domain: the process's own IA-32e page table, first stage, user requests only (SRE = 0). */
export class SvaDomain implements VtdDomain {
  readonly type = 'sva' as const;
  readonly kind = 'fs' as const;
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry = { apertureStart: 0, apertureEnd: 2 ** 47 - 1 };
  readonly users = new Map<string, { dev: PciFunction; pasid: number }>();

  constructor(
    private readonly ops: VtdDomainOps,
    readonly mm: Mm,
    readonly did: number,
  ) {}

  pasidEntry(): Uint32Array {
    return firstStageEntry(this.mm.pgtable.root, this.did, this.ops.pwsnp);
  }

  attachDev(): number {
    return -EINVAL;
  }

  setDevPasid(dev: PciFunction, pasid: number): number {
    return this.ops.attach(dev, pasid, this);
  }

  iovaToPhys(iova: number): number {
    return this.mm.physOf(iova);
  }

  /** The CPU page table changed (mmu notifier): drop this PASID's translations, and the device-TLBs'. */
  flushIotlbAll(): void {
    this.ops.flushAll(this);
  }

  /** intel_mm_release(): the mm's page tables are about to go; every PASID of this domain stops translating. */
  mmRelease(): void {
    this.ops.mmRelease(this);
  }

  free(): void {
    this.ops.releaseDid(this.did);
  }
}

/** The two static domains: pass-through, or no entry at all. */
export class StaticDomain implements VtdDomain {
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry = { apertureStart: 0, apertureEnd: 0 };
  readonly users = new Map<string, { dev: PciFunction; pasid: number }>();
  readonly kind: VtdKind;
  readonly did: number;

  constructor(
    private readonly ops: VtdDomainOps,
    readonly type: Extract<DomainType, 'blocked' | 'identity'>,
  ) {
    this.kind = type === 'identity' ? 'pt' : 'blocked';
    this.did = type === 'identity' ? IDENTITY_DID : 0;
  }

  pasidEntry(): Uint32Array | undefined {
    if (this.type === 'blocked') return undefined;
    return encodeLayout(PASID_ENTRY, { P: 1, PGTT: PGTT_PASSTHROUGH, DID: IDENTITY_DID, AW: 2, PWSNP: this.ops.pwsnp ? 1 : 0 });
  }

  attachDev(dev: PciFunction): number {
    return this.ops.attach(dev, 0, this);
  }

  /** Identity on a PASID; on the blocked domain this removes a PASID (remove_dev_pasid). */
  setDevPasid(dev: PciFunction, pasid: number): number {
    if (this.type === 'blocked') {
      this.ops.detach(dev, pasid);
      return 0;
    }
    return this.ops.attach(dev, pasid, this);
  }

  free(): void {}
}
