/**
 * The format-independent face of the page-table formats: what a hardware
 * model asks a walker, what the host asks a builder, and the vocabulary both
 * share (access kinds, permissions, faults, errno values).
 */

/* ---- Accesses (what a request wants) ---- */

/** A plain read is 0; the bits add write, instruction fetch and privilege. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_EXEC = 2;
/** Privileged requester (Arm EL1, x86 supervisor, PCIe PASID "Privileged Mode Requested"). */
export const ACCESS_PRIV = 4;

/* ---- Permissions (what a translation allows) ---- */

/**
 * Permissions for both privilege levels, so an IOTLB can cache one walk and
 * check later requests of either kind. A write permission bit is only given
 * when a write needs no further descriptor update: a writable-clean page
 * (Arm DBM clean, x86/VT-d D=0 with A/D on) lacks W until a write walk has
 * marked it dirty, so a cached entry forces that walk.
 */
export const PERM_R = 1;
export const PERM_W = 2;
export const PERM_X = 4;
export const PERM_UR = 8;
export const PERM_UW = 16;
export const PERM_UX = 32;
export const PERM_ALL = 63;

/** Does `perms` allow `access`? */
export function permits(perms: number, access: number): boolean {
  const shift = (access & ACCESS_PRIV) !== 0 ? 0 : 3;
  const need = (access & ACCESS_EXEC) !== 0 ? PERM_X : (access & ACCESS_WRITE) !== 0 ? PERM_W : PERM_R;
  return (perms & (need << shift)) !== 0;
}

/* ---- Faults ---- */

export const FaultKind = {
  None: 0,
  /** Invalid/not-present descriptor, reserved encoding, or (Arm) input outside TxSZ / bad walk configuration. */
  Translation: 1,
  /** Arm: AF == 0 and hardware access-flag update off. */
  AccessFlag: 2,
  Permission: 3,
  /** Arm: a table base, next-level table or output address above the configured output size. */
  AddressSize: 4,
  /** A descriptor read (or A/D write-back) reached nothing or was refused. */
  ExternalAbort: 5,
  /** x86/VT-d: a reserved bit is set in a present entry. */
  ReservedBit: 6,
  /** x86/VT-d: input address non-canonical or above the configured address width. */
  InputRange: 7,
  /** The table-address hook (nested stage 2) failed; see `s2Fault*` fields. */
  Stage2: 8,
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

export const FAULT_NAMES: readonly string[] = Object.freeze(
  Object.entries(FaultKind)
    .sort((a, b) => a[1] - b[1])
    .map(([k]) => k),
);

/**
 * Outcome of one walk. Owned by the caller and reused so walks allocate
 * nothing. Levels are the format's own numbering: Arm lookup level (-1..3),
 * x86/VT-d paging-structure level (5..1, 1 = the 4 KiB PTE).
 */
export class WalkResult {
  outputAddr = 0;
  pageSize = 0;
  /** PERM_* bits for the leaf, combined with every table level above it. */
  perms = 0;
  /** Level of the leaf descriptor. */
  level = 0;
  fault: FaultKind = FaultKind.None;
  faultLevel = 0;
  /** 64-bit descriptor fetches made by this walk (through the hook included by the hook itself). */
  memReads = 0;
  /** Descriptor write-backs (A/AF/D updates). */
  memWrites = 0;
  /** The leaf descriptor as it is now in memory (after any A/D update). */
  descLo = 0;
  descHi = 0;
  /** Format attributes of the leaf: Arm AttrIndx (S1) / MemAttr (S2), x86 PAT:PCD:PWT, VT-d SNP. */
  attrs = 0;
  /** Translation belongs to one address space (Arm nG=1, x86 G=0). */
  nonGlobal = false;
  /** Nested: the hook failed while fetching a stage-1 table descriptor. */
  s2OnTableWalk = false;
  s2FaultKind: FaultKind = FaultKind.None;
  s2FaultLevel = 0;
  /** Nested: the stage-1 table address (IPA/GPA) the hook could not translate. */
  s2FaultAddr = 0;

  reset(): void {
    this.outputAddr = 0;
    this.pageSize = 0;
    this.perms = 0;
    this.level = 0;
    this.fault = FaultKind.None;
    this.faultLevel = 0;
    this.memReads = 0;
    this.memWrites = 0;
    this.descLo = 0;
    this.descHi = 0;
    this.attrs = 0;
    this.nonGlobal = false;
    this.s2OnTableWalk = false;
    this.s2FaultKind = FaultKind.None;
    this.s2FaultLevel = 0;
    this.s2FaultAddr = 0;
  }

  /** Record a fault and return false, so walkers can `return r.failed(...)`. */
  failed(kind: FaultKind, level: number): boolean {
    this.fault = kind;
    this.faultLevel = level;
    return false;
  }
}

/**
 * Translates each stage-1 table address (IPA/GPA) before it is read or
 * written: nested translation composed by the IOMMU model. Returns the
 * physical address, or -1 after setting `r.s2FaultKind`/`r.s2FaultLevel`;
 * the walker then reports FaultKind.Stage2 at the stage-1 level with
 * `s2OnTableWalk` set. May add its own reads to `r.memReads`.
 */
export interface TableAddrTranslator {
  translateTableAddr(addr: number, write: boolean, r: WalkResult): number;
}

export interface PageTableWalker {
  readonly format: string;
  /** Translate `inputAddr` for `access` (ACCESS_* bits). True on success; on false `r.fault` says why. */
  walk(inputAddr: number, access: number, r: WalkResult): boolean;
}

/* ---- Builders (host side) ---- */

/** Linux `IOMMU_*` prot bits (include/linux/iommu.h values). */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;
export const IOMMU_NOEXEC = 8;
export const IOMMU_MMIO = 16;
export const IOMMU_PRIV = 32;

/** Linux errno values already negated, as map() returns them (src/host/errno.ts holds the positive ones). */
export const ENOMEM = -12;
export const EEXIST = -17;
export const EINVAL = -22;
export const ERANGE = -34;

/**
 * Source of table pages in guest physical memory; the host's page allocator
 * implements it. Pages come back zeroed and aligned to their size.
 */
export interface TablePageAllocator {
  /** `bytes` is a power of two (64 B .. 1 MiB); undefined when out of memory. */
  alloc(bytes: number): number | undefined;
  free(pa: number, bytes: number): void;
}

export interface BuilderStats {
  /** Leaf descriptors written by map(), ever. */
  leafWrites: number;
  /** Leaf descriptors cleared by unmap(), ever. */
  leafClears: number;
  /** Leaf descriptors present now. */
  leaves: number;
  /** Table pages in use now (the root included). */
  tablePages: number;
  tableBytes: number;
}

/**
 * What an unmap touched, for the driver's invalidation (Linux
 * iommu_iotlb_gather). Table pages emptied by the unmap are parked here, not
 * freed, when a gather is passed: the walk caches may still point at them
 * until the driver has invalidated, and only then calls releaseGathered().
 */
export class IotlbGather {
  start = Infinity;
  end = 0;
  /** Smallest leaf size removed (invalidation granule). */
  pgsize = 0;
  /** True when table descriptors were removed: walk caches need invalidating too. */
  tablesRemoved = false;
  /** Parked table pages: [pa0, bytes0, pa1, bytes1, ...]. */
  readonly freed: number[] = [];

  add(iova: number, size: number): void {
    if (iova < this.start) this.start = iova;
    if (iova + size > this.end) this.end = iova + size;
    if (this.pgsize === 0 || size < this.pgsize) this.pgsize = size;
  }

  get empty(): boolean {
    return this.end === 0 && this.freed.length === 0;
  }
}

export interface PageTableBuilder {
  readonly format: string;
  /** Physical address of the root table (TTB / SLPTPTR / FSPTPTR / CR3). */
  readonly root: number;
  /** Bit n set ⇔ 2^n-byte leaves are used (a number: 4T = 2^42 exceeds 32-bit ops; use pgsizes). */
  readonly pgsizeBitmap: number;
  readonly pgsizes: readonly number[];
  readonly stats: Readonly<BuilderStats>;
  /** 0, or a negative errno with the tables unchanged. */
  map(iova: number, pa: number, size: number, prot: number): number;
  /**
   * Remove the leaves from `iova` on until `size` is covered or a hole is
   * met; returns bytes unmapped counted from `iova` (a leaf is removed whole,
   * so this can exceed `size`); 0 when nothing is mapped at `iova` or the
   * arguments are bad.
   */
  unmap(iova: number, size: number, gather?: IotlbGather): number;
  /** Physical address `iova` maps to, or -1. */
  iovaToPhys(iova: number): number;
  /** Free table pages parked in `gather` (after the driver's invalidation). */
  releaseGathered(gather: IotlbGather): void;
  /** Free every table page, the root included; the builder is unusable after. */
  destroy(): void;
}

/** The size list of a page-size bitmap, ascending. */
export function pgsizesOf(bitmap: number): number[] {
  const out: number[] = [];
  for (let s = 1, b = bitmap; b > 0; s *= 2, b = Math.floor(b / 2)) {
    if (b % 2 === 1) out.push(s);
  }
  return out;
}
