/**
 * Non-recoverable fault reasons (VT-d spec §7.1.3, "Non-Recoverable Fault
 * Conditions"; Appendix "Non-Recoverable Fault Reason Encodings"). One
 * table: the code the unit writes to FRCD.FR, the stable symbolic name a
 * faulting transaction carries (`TranslationAnswer.fault`), the spec's
 * condition tag and what it means. Legacy-mode names are `DMAR_*`,
 * scalable-mode names `DMAR_SM_*`. The codes agree with Linux dmar.c's
 * dma_remap_fault_reasons / dma_remap_sm_fault_reasons tables.
 *
 * | code | name | condition |
 * |------|------|-----------|
 * | 0x01 | DMAR_ROOT_NOT_PRESENT | LRT.2 |
 * | 0x02 | DMAR_CONTEXT_NOT_PRESENT | LCT.2 |
 * | 0x03 | DMAR_CONTEXT_INVALID | LCT.4 |
 * | 0x04 | DMAR_ADDR_BEYOND_MGAW | LGN.1 |
 * | 0x05 | DMAR_PTE_WRITE_DENIED | LGN.2 |
 * | 0x06 | DMAR_PTE_READ_DENIED | LGN.3 |
 * | 0x07 | DMAR_PTE_FETCH_ERROR | LSL.1 |
 * | 0x08 | DMAR_ROOT_FETCH_ERROR | LRT.1 |
 * | 0x09 | DMAR_CONTEXT_FETCH_ERROR | LCT.1 |
 * | 0x0A | DMAR_ROOT_RESERVED | LRT.3 |
 * | 0x0B | DMAR_CONTEXT_RESERVED | LCT.3 |
 * | 0x0C | DMAR_PTE_RESERVED | LSL.2 |
 * | 0x0D | DMAR_CONTEXT_TT_BLOCKED | LCT.5 |
 * | 0x0E | DMAR_INTERRUPT_ADDR | LGN.4 |
 * | 0x30 | DMAR_RTADDR_INVALID | RTA.1 |
 * | 0x31 | DMAR_LEGACY_PASID_REQUEST | RTA.2 |
 * | 0x32 | DMAR_LEGACY_PAGE_REQUEST | RTA.3 |
 * | 0x38..0x3A | DMAR_SM_ROOT_{FETCH_ERROR,NOT_PRESENT,RESERVED} | SRT.1-3 |
 * | 0x40..0x48 | DMAR_SM_CONTEXT_* | SCT.1-9 |
 * | 0x50..0x52 | DMAR_SM_PASID_DIR_* | SPD.1-3 |
 * | 0x58..0x5D | DMAR_SM_PASID_ENTRY_* / ERE / SRE | SPT.1-6 |
 * | 0x70..0x77 | DMAR_SM_FS_* / DMAR_SM_NESTED_FS_* | SFS.1-8 |
 * | 0x78..0x7C | DMAR_SM_SS_* | SSS.1-5 |
 * | 0x80..0x87 | general scalable-mode faults | SGN.1-8 |
 * | 0x90 | DMAR_SM_FS_AD_NOSNOOP | SFS.9 |
 *
 * Qualified faults (§7.1.3, the spec's "Qualified" column; §9.3/§9.4/§9.5/§9.6
 * FPD): a fault the Fault Processing Disable bit of the context entry, PASID
 * directory entry or PASID entry used for the request can suppress. The FPD
 * bit counts whether or not that entry is present. Not qualified: faults
 * found before the unit has an entry that could carry FPD (the root table
 * address RTA.*, root entries LRT.* / SRT.*, the context-entry fetch LCT.1 /
 * SCT.1) and the PASID-directory / PASID-table fetch errors SPD.1 / SPT.1
 * (QEMU's vtd_qualified_faults agrees). Everything else is qualified.
 */
export interface VtdFaultReason {
  readonly code: number;
  readonly name: string;
  readonly cond: string;
  readonly desc: string;
  /** FPD can suppress it (§7.1.3); see the list above. */
  readonly qualified: boolean;
}

/** Conditions found before any entry with FPD applies, or fetching one (not qualified, §7.1.3). */
const UNQUALIFIED = new Set(['LRT.1', 'LRT.2', 'LRT.3', 'LCT.1', 'RTA.1', 'RTA.2', 'RTA.3', 'SRT.1', 'SRT.2', 'SRT.3', 'SCT.1', 'SPD.1', 'SPT.1']);

const R = (code: number, name: string, cond: string, desc: string): VtdFaultReason => ({ code, name, cond, desc, qualified: !UNQUALIFIED.has(cond) });

export const VTD_FAULT_REASONS: readonly VtdFaultReason[] = [
  R(0x01, 'DMAR_ROOT_NOT_PRESENT', 'LRT.2', 'present bit of the root entry is clear'),
  R(0x02, 'DMAR_CONTEXT_NOT_PRESENT', 'LCT.2', 'present bit of the context entry is clear'),
  R(0x03, 'DMAR_CONTEXT_INVALID', 'LCT.4', 'invalid context entry (TT or AW not supported)'),
  R(0x04, 'DMAR_ADDR_BEYOND_MGAW', 'LGN.1', 'input address above the domain address width'),
  R(0x05, 'DMAR_PTE_WRITE_DENIED', 'LGN.2', 'write to a page without write permission (or not present)'),
  R(0x06, 'DMAR_PTE_READ_DENIED', 'LGN.3', 'read from a page without read permission (or not present)'),
  R(0x07, 'DMAR_PTE_FETCH_ERROR', 'LSL.1', 'error reading a second-stage paging entry'),
  R(0x08, 'DMAR_ROOT_FETCH_ERROR', 'LRT.1', 'error reading the root entry'),
  R(0x09, 'DMAR_CONTEXT_FETCH_ERROR', 'LCT.1', 'error reading the context entry'),
  R(0x0a, 'DMAR_ROOT_RESERVED', 'LRT.3', 'reserved bit set in a present root entry'),
  R(0x0b, 'DMAR_CONTEXT_RESERVED', 'LCT.3', 'reserved bit set in a present context entry'),
  R(0x0c, 'DMAR_PTE_RESERVED', 'LSL.2', 'reserved bit set in a present second-stage paging entry'),
  R(0x0d, 'DMAR_CONTEXT_TT_BLOCKED', 'LCT.5', 'translation request or translated request blocked by the context entry TT'),
  R(0x0e, 'DMAR_INTERRUPT_ADDR', 'LGN.4', 'translated address falls in the interrupt address range'),
  R(0x30, 'DMAR_RTADDR_INVALID', 'RTA.1', 'root table address register holds an invalid TTM'),
  R(0x31, 'DMAR_LEGACY_PASID_REQUEST', 'RTA.2', 'request with PASID while in legacy mode (TTM = 00)'),
  R(0x32, 'DMAR_LEGACY_PAGE_REQUEST', 'RTA.3', 'page request while in legacy mode (TTM = 00)'),
  R(0x38, 'DMAR_SM_ROOT_FETCH_ERROR', 'SRT.1', 'error reading the scalable-mode root entry'),
  R(0x39, 'DMAR_SM_ROOT_NOT_PRESENT', 'SRT.2', 'LP/UP bit of the scalable-mode root entry is clear'),
  R(0x3a, 'DMAR_SM_ROOT_RESERVED', 'SRT.3', 'reserved bit set in a scalable-mode root entry'),
  R(0x40, 'DMAR_SM_CONTEXT_FETCH_ERROR', 'SCT.1', 'error reading the scalable-mode context entry'),
  R(0x41, 'DMAR_SM_CONTEXT_NOT_PRESENT', 'SCT.2', 'present bit of the scalable-mode context entry is clear'),
  R(0x42, 'DMAR_SM_CONTEXT_RESERVED', 'SCT.3', 'reserved bit set in a present scalable-mode context entry'),
  R(0x43, 'DMAR_SM_CONTEXT_INVALID', 'SCT.4', 'invalid scalable-mode context entry'),
  R(0x44, 'DMAR_SM_CONTEXT_DTE_CLEAR', 'SCT.5', 'translation request or translated request with DTE clear'),
  R(0x45, 'DMAR_SM_CONTEXT_PASID_DISABLED', 'SCT.6', 'request with PASID while PASIDE is clear'),
  R(0x46, 'DMAR_SM_CONTEXT_PASID_TOO_LARGE', 'SCT.7', 'PASID beyond the PASID directory size (PDTS)'),
  R(0x47, 'DMAR_SM_CONTEXT_PRE_CLEAR', 'SCT.8', 'page request while PRE is clear'),
  R(0x48, 'DMAR_SM_CONTEXT_RID_PASID_ERROR', 'SCT.9', 'RID_PASID beyond the PASID directory size'),
  R(0x50, 'DMAR_SM_PASID_DIR_FETCH_ERROR', 'SPD.1', 'error reading the PASID directory entry'),
  R(0x51, 'DMAR_SM_PASID_DIR_NOT_PRESENT', 'SPD.2', 'present bit of the PASID directory entry is clear'),
  R(0x52, 'DMAR_SM_PASID_DIR_RESERVED', 'SPD.3', 'reserved bit set in a present PASID directory entry'),
  R(0x58, 'DMAR_SM_PASID_ENTRY_FETCH_ERROR', 'SPT.1', 'error reading the PASID table entry'),
  R(0x59, 'DMAR_SM_PASID_ENTRY_NOT_PRESENT', 'SPT.2', 'present bit of the PASID table entry is clear'),
  R(0x5a, 'DMAR_SM_PASID_ENTRY_RESERVED', 'SPT.3', 'reserved bit set in a present PASID table entry'),
  R(0x5b, 'DMAR_SM_PASID_ENTRY_INVALID', 'SPT.4', 'invalid PASID table entry (PGTT, AW or FLPM not supported)'),
  R(0x5c, 'DMAR_SM_PASID_ERE_CLEAR', 'SPT.5', 'execute request while ERE is clear'),
  R(0x5d, 'DMAR_SM_PASID_SRE_CLEAR', 'SPT.6', 'supervisor request while SRE is clear'),
  R(0x70, 'DMAR_SM_FS_FETCH_ERROR', 'SFS.1', 'error reading a first-stage paging entry (below the top level)'),
  R(0x71, 'DMAR_SM_FS_PTE_NOT_PRESENT', 'SFS.2', 'present bit of a first-stage paging entry is clear'),
  R(0x72, 'DMAR_SM_FS_PTE_RESERVED', 'SFS.3', 'reserved bit set in a present first-stage paging entry'),
  R(0x73, 'DMAR_SM_FS_ROOT_FETCH_ERROR', 'SFS.4', 'error reading the top-level (PML4/PML5) first-stage entry'),
  R(0x74, 'DMAR_SM_NESTED_FS_TABLE_BEYOND_AW', 'SFS.5', 'nested: a first-stage table address is beyond the second-stage AW'),
  R(0x75, 'DMAR_SM_NESTED_FS_ROOT_READ_DENIED', 'SFS.6', 'nested: second stage denies reading the top first-stage table'),
  R(0x76, 'DMAR_SM_NESTED_FS_TABLE_READ_DENIED', 'SFS.7', 'nested: second stage denies reading a first-stage table'),
  R(0x77, 'DMAR_SM_NESTED_FS_TABLE_WRITE_DENIED', 'SFS.8', 'nested: second stage denies the first-stage A/D write-back'),
  R(0x78, 'DMAR_SM_SS_FETCH_ERROR', 'SSS.1', 'error reading a second-stage paging entry'),
  R(0x79, 'DMAR_SM_SS_PTE_NOT_PRESENT', 'SSS.2', 'second-stage paging entry with R = W = 0'),
  R(0x7a, 'DMAR_SM_SS_PTE_RESERVED', 'SSS.3', 'reserved bit set in a present second-stage paging entry'),
  R(0x7b, 'DMAR_SM_SS_ROOT_INVALID', 'SSS.4', 'error reading the top-level second-stage table (invalid SLPTPTR)'),
  R(0x7c, 'DMAR_SM_SS_AD_NOSNOOP', 'SSS.5', 'second-stage A/D update needed with non-snooped page walks'),
  R(0x80, 'DMAR_SM_FS_NON_CANONICAL', 'SGN.1', 'first-stage input address is not canonical'),
  R(0x81, 'DMAR_SM_FS_USER_DENIED', 'SGN.2', 'user request to a supervisor-only first-stage page'),
  R(0x82, 'DMAR_SM_EXEC_DENIED', 'SGN.3', 'execute request to a page without execute permission'),
  R(0x83, 'DMAR_SM_ADDR_BEYOND_AW', 'SGN.4', 'input address beyond the second-stage AW (or HAW for pass-through)'),
  R(0x84, 'DMAR_SM_NESTED_OUTPUT_BEYOND_AW', 'SGN.5', 'nested: first-stage output beyond the second-stage AW'),
  R(0x85, 'DMAR_SM_PTE_WRITE_DENIED', 'SGN.6', 'write request to a page without write permission'),
  R(0x86, 'DMAR_SM_PTE_READ_DENIED', 'SGN.7', 'read request to a page without read permission'),
  R(0x87, 'DMAR_SM_INTERRUPT_ADDR', 'SGN.8', 'translated address falls in the interrupt address range'),
  R(0x90, 'DMAR_SM_FS_AD_NOSNOOP', 'SFS.9', 'first-stage A/D update needed with non-snooped page walks'),
];

const BY_CODE = new Map<number, VtdFaultReason>(VTD_FAULT_REASONS.map((r) => [r.code, r]));

/** The reason of a code; throws for a code not in the table (a model bug). */
export function faultReason(code: number): VtdFaultReason {
  const r = BY_CODE.get(code);
  if (r === undefined) throw new Error(`unknown VT-d fault reason 0x${code.toString(16)}`);
  return r;
}

/** Whether FPD may suppress a fault of this code (§7.1.3 qualified faults); unknown codes are not. */
export function isQualifiedFault(code: number): boolean {
  return BY_CODE.get(code)?.qualified ?? false;
}

/** Symbolic name of a code ('DMAR_UNKNOWN_0xNN' for codes not in the table). */
export function faultName(code: number): string {
  return BY_CODE.get(code)?.name ?? `DMAR_UNKNOWN_0x${code.toString(16).padStart(2, '0')}`;
}

/** Numeric codes by short name, for the model's code. */
export const FR = {
  ROOT_NP: 0x01, CTX_NP: 0x02, CTX_INVALID: 0x03, ADDR_MGAW: 0x04, WRITE: 0x05, READ: 0x06, PTE_FETCH: 0x07,
  ROOT_FETCH: 0x08, CTX_FETCH: 0x09, ROOT_RSVD: 0x0a, CTX_RSVD: 0x0b, PTE_RSVD: 0x0c, CTX_TT: 0x0d, IRQ_ADDR: 0x0e,
  RTADDR_INVALID: 0x30, LEGACY_PASID: 0x31, LEGACY_PAGE_REQUEST: 0x32,
  SM_ROOT_FETCH: 0x38, SM_ROOT_NP: 0x39, SM_ROOT_RSVD: 0x3a,
  SM_CTX_FETCH: 0x40, SM_CTX_NP: 0x41, SM_CTX_RSVD: 0x42, SM_CTX_INVALID: 0x43, SM_DTE: 0x44, SM_PASIDE: 0x45,
  SM_PASID_LARGE: 0x46, SM_PRE: 0x47, SM_RID_PASID: 0x48,
  SM_PDIR_FETCH: 0x50, SM_PDIR_NP: 0x51, SM_PDIR_RSVD: 0x52,
  SM_PE_FETCH: 0x58, SM_PE_NP: 0x59, SM_PE_RSVD: 0x5a, SM_PE_INVALID: 0x5b, SM_ERE: 0x5c, SM_SRE: 0x5d,
  FS_FETCH: 0x70, FS_NP: 0x71, FS_RSVD: 0x72, FS_ROOT_FETCH: 0x73, NESTED_FS_AW: 0x74, NESTED_FS_ROOT_READ: 0x75,
  NESTED_FS_READ: 0x76, NESTED_FS_WRITE: 0x77,
  SS_FETCH: 0x78, SS_NP: 0x79, SS_RSVD: 0x7a, SS_ROOT: 0x7b,
  FS_CANONICAL: 0x80, FS_USER: 0x81, EXEC: 0x82, SM_ADDR_AW: 0x83, NESTED_OUT_AW: 0x84, SM_WRITE: 0x85, SM_READ: 0x86,
  SM_IRQ_ADDR: 0x87,
} as const;
