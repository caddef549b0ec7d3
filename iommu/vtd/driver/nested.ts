/**
 * Nested domains (Linux intel/nested.c, intel_pasid_setup_nested): a
 * guest-owned first-stage IA-32e table whose table pointers and outputs are
 * guest-physical addresses, translated by a nest-parent second-stage domain.
 * The domain installs a PASID entry with PGTT = nested (011b): FSPTPTR = the
 * guest's table (a GPA), SLPTPTR/AW = the parent's table, the S1 flags from
 * the user (SRE, WPE with SRE, EAFE), SLADE when the parent tracks dirty.
 *
 * Domain ID: this driver tags the nested entry with the parent's DID, so an
 * unmap in the parent (IOTLB page-selective by that DID) also drops the
 * nested entries (the model drops every nested entry of the DID). Linux gives
 * a nested domain its own DID and tags the parent with it; the effect on the
 * caches is the same.
 */
import { EINVAL, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import { iommuCopyStructFromUser } from '../../../src/iommu-core/user-data.ts';
import { encodeLayout } from '../../../src/hw/layout.ts';
import type { DomainGeometry, DriverDomain } from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { PASID_ENTRY, PGTT_NESTED } from '../pasid-entry.ts';
import type { SsDomain, VtdDomain, VtdDomainOps } from './domains.ts';

/** enum iommu_hwpt_data_type: IOMMU_HWPT_DATA_VTD_S1. */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** enum iommu_hwpt_invalidate_data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 is 0 (the first value of that enum). */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** enum iommu_hwpt_vtd_s1_flags */
export const IOMMU_VTD_S1_SRE = 1 << 0;
export const IOMMU_VTD_S1_EAFE = 1 << 1;
export const IOMMU_VTD_S1_WPE = 1 << 2;
/** enum iommu_hwpt_vtd_s1_invalidate_flags */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;
/** sizeof(struct iommu_hwpt_vtd_s1) and sizeof(struct iommu_hwpt_vtd_s1_invalidate). */
export const VTD_S1_SIZE = 24;
export const VTD_S1_INV_SIZE = 24;
const U64_MAX = (1n << 64n) - 1n;

/** struct iommu_hwpt_vtd_s1 { __aligned_u64 flags; __aligned_u64 pgtbl_addr; __u32 addr_width; __u32 __reserved; } */
export interface VtdS1Config {
  flags: number;
  pgtblAddr: number;
  addrWidth: number;
}

/** What the unit supports for nested first stages (CAP.FL5LP, ECAP.SRS, ECAP.EAFS). */
export interface NestedCaps {
  fl5lp: boolean;
  srs: boolean;
  eafs: boolean;
}

/**
 * iommu_copy_struct_from_user(..., __reserved) for a vendor struct whose
 * first version already ended at __reserved (both VT-d structs): any length
 * but the struct's own is -EINVAL; 0 otherwise.
 */
export function checkUserStruct(data: Uint8Array, size: number): number {
  const r = iommuCopyStructFromUser(data, size);
  return typeof r === 'number' ? r : 0;
}

/** Decode struct iommu_hwpt_vtd_s1 (the caller checked its size). */
export function parseVtdS1(data: Uint8Array): VtdS1Config | number {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flags = dv.getBigUint64(0, true);
  const pgtbl = dv.getBigUint64(8, true);
  // Unknown flags and a non-zero __reserved: the iommufd rule (EOPNOTSUPP); Linux does not check them.
  if ((flags & ~BigInt(IOMMU_VTD_S1_SRE | IOMMU_VTD_S1_EAFE | IOMMU_VTD_S1_WPE)) !== 0n || dv.getUint32(20, true) !== 0) return -EOPNOTSUPP;
  if (pgtbl > BigInt(Number.MAX_SAFE_INTEGER)) return -EINVAL;
  return { flags: Number(flags), pgtblAddr: Number(pgtbl), addrWidth: dv.getUint32(16, true) };
}

export class NestedDomain implements VtdDomain {
  readonly type = 'nested' as const;
  /** Flushed as first stage: PASID-based IOTLB per attachment (Linux intel_domain_use_piotlb). */
  readonly kind = 'fs' as const;
  readonly pgsizes: readonly number[] = [];
  readonly geometry: DomainGeometry;
  readonly users = new Map<string, { dev: PciFunction; pasid: number }>();
  private freed = false;

  constructor(
    private readonly ops: VtdDomainOps,
    readonly parent: SsDomain,
    readonly s1: VtdS1Config,
    private readonly caps: NestedCaps,
  ) {
    this.geometry = { apertureStart: 0, apertureEnd: 2 ** (s1.addrWidth === 57 ? 56 : 47) - 1 };
    parent.nested.add(this);
  }

  get did(): number {
    return this.parent.did;
  }

  pasidEntry(): Uint32Array {
    const f = this.s1.flags;
    const sre = (f & IOMMU_VTD_S1_SRE) !== 0;
    const b = this.parent.builder;
    return encodeLayout(PASID_ENTRY, {
      P: 1,
      PGTT: PGTT_NESTED,
      FSPTPTR: Math.floor(this.s1.pgtblAddr / 4096),
      FLPM: this.s1.addrWidth === 57 ? 1 : 0,
      SRE: sre ? 1 : 0,
      WPE: sre && (f & IOMMU_VTD_S1_WPE) !== 0 ? 1 : 0,
      EAFE: (f & IOMMU_VTD_S1_EAFE) !== 0 ? 1 : 0,
      SLPTPTR: b.root / 4096,
      AW: b.aw,
      DID: this.parent.did,
      SLADE: this.parent.slade ? 1 : 0,
      PWSNP: this.ops.pwsnp ? 1 : 0,
      // pasid_pte_config_nested(): page snoop when the parent forces snooping.
      PGSNP: this.parent.forceSnooping ? 1 : 0,
    });
  }

  /** intel_pasid_setup_nested's checks: stage-1 width and flags the unit supports, a table the parent can reach. */
  private check(): number {
    const { addrWidth, flags, pgtblAddr } = this.s1;
    if (addrWidth !== 48 && !(addrWidth === 57 && this.caps.fl5lp)) return -EINVAL;
    if ((flags & IOMMU_VTD_S1_SRE) !== 0 && !this.caps.srs) return -EINVAL;
    if ((flags & IOMMU_VTD_S1_EAFE) !== 0 && !this.caps.eafs) return -EINVAL;
    if (pgtblAddr > this.parent.geometry.apertureEnd + 1) return -EINVAL;
    return 0;
  }

  attachDev(dev: PciFunction): number {
    const r = this.check();
    return r < 0 ? r : this.ops.attach(dev, 0, this);
  }

  /** intel_nested_set_dev_pasid: refused while the parent was allocated for dirty tracking. */
  setDevPasid(dev: PciFunction, pasid: number): number {
    if (this.parent.dirtyOps) return -EINVAL;
    const r = this.check();
    return r < 0 ? r : this.ops.attach(dev, pasid, this);
  }

  /**
   * HWPT_INVALIDATE with struct iommu_hwpt_vtd_s1_invalidate entries (Linux
   * intel_nested_cache_invalidate_user): the type must be VTD_S1 (else
   * -EINVAL, nothing done); each entry is copied with the struct rules, then
   * unknown flags or __reserved give -EOPNOTSUPP, an address not 4 KiB
   * aligned or npages = U64_MAX with a non-zero address -EINVAL; a good entry
   * becomes PASID-based IOTLB (and device-TLB) invalidation of its range with
   * a wait. Processing stops at the first bad entry.
   */
  cacheInvalidateUser(type: number, entries: Uint8Array, entrySize: number, count: number): { done: number; err: number } {
    if (type !== IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) return { done: 0, err: -EINVAL };
    let done = 0;
    for (let i = 0; i < count; i++) {
      const e = entries.subarray(i * entrySize, (i + 1) * entrySize);
      const c = checkUserStruct(e, VTD_S1_INV_SIZE);
      if (c < 0) return { done, err: c };
      const dv = new DataView(e.buffer, e.byteOffset, e.byteLength);
      const addr = dv.getBigUint64(0, true);
      const npages = dv.getBigUint64(8, true);
      const flags = dv.getUint32(16, true);
      if ((flags & ~IOMMU_VTD_INV_FLAGS_LEAF) !== 0 || dv.getUint32(20, true) !== 0) return { done, err: -EOPNOTSUPP };
      if (addr % 4096n !== 0n || (npages === U64_MAX && addr !== 0n)) return { done, err: -EINVAL };
      this.flush(addr, npages, (flags & IOMMU_VTD_INV_FLAGS_LEAF) !== 0);
      done++;
    }
    return { done, err: 0 };
  }

  /** cache_tag_flush_range(addr, addr + npages * 4K - 1, leaf); everything for U64_MAX or past the address space. */
  private flush(addr: bigint, npages: bigint, leaf: boolean): void {
    if (npages === 0n) return; // an empty range: Linux's end precedes its start and nothing is flushed
    const end = addr + npages * 4096n;
    if (npages === U64_MAX || end > 2n ** 57n) {
      this.ops.flushAll(this);
      return;
    }
    this.ops.flushRange(this, Number(addr), Number(end), leaf);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.parent.nested.delete(this);
  }
}

/** The parent must be a second-stage nest-parent domain of this driver. */
export function isNestParent(d: DriverDomain, owner: VtdDomainOps): d is SsDomain {
  const s = d as Partial<SsDomain>;
  return s.kind === 'ss' && s.nestParent === true && s.ownerOps === owner;
}
