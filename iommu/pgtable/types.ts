/**
 * The format-independent face of the page-table formats: what a hardware
 * model asks a walker, what the host asks a builder, and the vocabulary both
 * share (access kinds, permissions, faults). The host-side builder
 * vocabulary (IOMMU_* prot bits, PageTableBuilder, IotlbGather) is in
 * src/iommu-core/io-pgtable.ts.
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
