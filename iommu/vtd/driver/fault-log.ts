/**
 * What Linux's dmar_fault / dmar_fault_do_one (drivers/iommu/intel/dmar.c)
 * print for each fault record, with pr_fmt "DMAR: ", under one ratelimit
 * state shared by every unit (DEFINE_RATELIMIT_STATE in dmar_fault: 10 per
 * 5 s): "DRHD: handling fault status reg <FSTS>" per interrupt, then per
 * record "[DMA Read|DMA Write NO_PASID|PASID 0x..] Request device
 * [ssss:bb:dd.f] fault addr 0x... [fault reason 0xNN] <text>". The texts are
 * dmar_get_fault_reason's tables.
 */
import { KERN_ERR, type KernelLog } from '../../../src/host/kmsg.ts';

const LEGACY = [
  'Software',
  'Present bit in root entry is clear',
  'Present bit in context entry is clear',
  'Invalid context entry',
  'Access beyond MGAW',
  'PTE Write access is not set',
  'PTE Read access is not set',
  'Next page table ptr is invalid',
  'Root table address invalid',
  'Context table ptr is invalid',
  'non-zero reserved fields in RTP',
  'non-zero reserved fields in CTP',
  'non-zero reserved fields in PTE',
  'PCE for translation request specifies blocking',
];

const IRQ_REMAP = [
  'Detected reserved fields in the decoded interrupt-remapped request',
  'Interrupt index exceeded the interrupt-remapping table size',
  'Present field in the IRTE entry is clear',
  'Error accessing interrupt-remapping table pointed by IRTA_REG',
  'Detected reserved fields in the IRTE entry',
  'Blocked a compatibility format interrupt request',
  'Blocked an interrupt request due to source-id verification failure',
];

/** dma_remap_sm_fault_reasons, from 0x30; codes without a text are "Unknown". */
const SM: Record<number, string> = {
  0x30: 'SM: Invalid Root Table Address',
  0x31: 'SM: TTM 0 for request with PASID',
  0x32: 'SM: TTM 0 for page group request',
  0x38: 'SM: Error attempting to access Root Entry',
  0x39: 'SM: Present bit in Root Entry is clear',
  0x3a: 'SM: Non-zero reserved field set in Root Entry',
  0x40: 'SM: Error attempting to access Context Entry',
  0x41: 'SM: Present bit in Context Entry is clear',
  0x42: 'SM: Non-zero reserved field set in the Context Entry',
  0x43: 'SM: Invalid Context Entry',
  0x44: 'SM: DTE field in Context Entry is clear',
  0x45: 'SM: PASID Enable field in Context Entry is clear',
  0x46: 'SM: PASID is larger than the max in Context Entry',
  0x47: 'SM: PRE field in Context-Entry is clear',
  0x48: 'SM: RID_PASID field error in Context-Entry',
  0x50: 'SM: Error attempting to access the PASID Directory Entry',
  0x51: 'SM: Present bit in Directory Entry is clear',
  0x52: 'SM: Non-zero reserved field set in PASID Directory Entry',
  0x58: 'SM: Error attempting to access PASID Table Entry',
  0x59: 'SM: Present bit in PASID Table Entry is clear',
  0x5a: 'SM: Non-zero reserved field set in PASID Table Entry',
  0x5b: 'SM: Invalid Scalable-Mode PASID Table Entry',
  0x5c: 'SM: ERE field is clear in PASID Table Entry',
  0x5d: 'SM: SRE field is clear in PASID Table Entry',
  0x70: 'SM: Error attempting to access first-level paging entry',
  0x71: 'SM: Present bit in first-level paging entry is clear',
  0x72: 'SM: Non-zero reserved field set in first-level paging entry',
  0x73: 'SM: Error attempting to access FL-PML4 entry',
  0x74: 'SM: First-level entry address beyond MGAW in Nested translation',
  0x75: 'SM: Read permission error in FL-PML4 entry in Nested translation',
  0x76: 'SM: Read permission error in first-level paging entry in Nested translation',
  0x77: 'SM: Write permission error in first-level paging entry in Nested translation',
  0x78: 'SM: Error attempting to access second-level paging entry',
  0x79: 'SM: Read/Write permission error in second-level paging entry',
  0x7a: 'SM: Non-zero reserved field set in second-level paging entry',
  0x7b: 'SM: Invalid second-level page table pointer',
  0x7c: 'SM: A/D bit update needed in second-level entry when set up in no snoop',
  0x80: 'SM: Address in first-level translation is not canonical',
  0x81: 'SM: U/S set 0 for first-level translation with user privilege',
  0x82: 'SM: No execute permission for request with PASID and ER=1',
  0x83: 'SM: Address beyond the DMA hardware max',
  0x84: 'SM: Second-level entry address beyond the max',
  0x85: 'SM: No write permission for Write/AtomicOp request',
  0x86: 'SM: No read permission for Read/AtomicOp request',
  0x87: 'SM: Invalid address-interrupt address',
  0x90: 'SM: A/D bit update needed in first-level entry when set up in no snoop',
};
/** The SM table's last index (ARRAY_SIZE - 1 + 0x30). */
const SM_LAST = 0x90;

/** dmar_get_fault_reason: the text and whether the code is an interrupt-remapping fault. */
export function dmarFaultReason(code: number): { text: string; irq: boolean } {
  if (code >= 0x20 && code - 0x20 < IRQ_REMAP.length) return { text: IRQ_REMAP[code - 0x20]!, irq: true };
  if (code >= 0x30 && code <= SM_LAST) return { text: SM[code] ?? 'Unknown', irq: false };
  if (code < LEGACY.length) return { text: LEGACY[code]!, irq: false };
  return { text: 'Unknown', irq: false };
}

const hex = (v: number | bigint, w = 0) => v.toString(16).padStart(w, '0');

/** A fault record as dmar_fault reads it. */
export interface LoggedFault {
  reason: number;
  /** dma_frcd_type: FRCD bit 126 (1: read). */
  read: boolean;
  /** undefined: no PASID (IOMMU_PASID_INVALID). */
  pasid?: number;
  sid: number;
  /** The record's page address (low 64 bits, page-aligned). */
  addr: bigint;
}

/** dmar_fault_do_one's line for one record. */
export function dmarFaultLine(f: LoggedFault, segment = 0): string {
  const { text, irq } = dmarFaultReason(f.reason);
  const dev = `${hex(segment, 4)}:${hex(f.sid >> 8, 2)}:${hex((f.sid >> 3) & 0x1f, 2)}.${f.sid & 7}`;
  if (irq) return `DMAR: [INTR-REMAP] Request device [${dev}] fault index 0x${hex(f.addr >> 48n)} [fault reason 0x${hex(f.reason, 2)}] ${text}`;
  const kind = f.read ? 'DMA Read' : 'DMA Write';
  const tag = f.pasid === undefined ? `${kind} NO_PASID` : `${kind} PASID 0x${hex(f.pasid)}`;
  return `DMAR: [${tag}] Request device [${dev}] fault addr 0x${hex(f.addr)} [fault reason 0x${hex(f.reason, 2)}] ${text}`;
}

/** The ratelimit state of dmar_fault (one for the whole kernel). */
export const DMAR_FAULT_RATELIMIT = 'dmar_fault';

export function logFaultStatus(log: KernelLog, fsts: number): void {
  if (fsts !== 0 && log.ratelimit(DMAR_FAULT_RATELIMIT)) log.printk(KERN_ERR, `DMAR: DRHD: handling fault status reg ${hex(fsts)}`);
}
