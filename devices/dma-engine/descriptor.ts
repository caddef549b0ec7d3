import { decodeLayout, defineLayout, encodeLayout } from '../../src/hw/layout.ts';

/**
 * The DMA engine's in-memory formats, declared once as data: the 64-byte
 * descriptor software submits and the 32-byte completion record the device
 * writes back. Bits are numbered across the structure, little-endian words
 * (bit 32 is bit 0 of bytes 4..7). 64-bit values are two 32-bit fields
 * (_LO, _HI); an address must be below 2^53 (HI < 2^21), else the
 * descriptor fails with ADDRESS_RANGE.
 */
export const DESC_BYTES = 64;
export const COMPLETION_BYTES = 32;
/** Completion records must be 32-byte aligned. */
export const COMPLETION_ALIGN = 32;

export const DESCRIPTOR = defineLayout('dmae-desc', DESC_BYTES, [
  ['OPCODE', 7, 0],
  /** Request Completion Record: write the record at COMPL when the descriptor completes. */
  ['RCR', 8],
  /** Request Completion Interrupt: raise the WQ's MSI-X vector on completion. */
  ['RCI', 9],
  /** PASID Valid: use PASID/PRIV of the descriptor (shared WQs only) instead of the WQ's defaults. */
  ['PV', 10],
  ['PRIV', 11],
  ['PASID', 51, 32],
  ['COMPL_LO', 95, 64],
  ['COMPL_HI', 127, 96],
  /** Source address (MEMMOVE, COMPARE) or the 8-byte pattern (FILL). */
  ['SRC_LO', 159, 128],
  ['SRC_HI', 191, 160],
  /** Destination (MEMMOVE, FILL) or second source (COMPARE). */
  ['DST_LO', 223, 192],
  ['DST_HI', 255, 224],
  /** Transfer size in bytes. */
  ['LENGTH', 287, 256],
  // Bits 12..31, 52..63 and 288..511 are reserved: a descriptor with any of them set fails (RESERVED_NONZERO).
]);

export type DescriptorField = keyof typeof DESCRIPTOR.fields;

export const OPCODE = { NOOP: 0, MEMMOVE: 1, FILL: 2, COMPARE: 3 } as const;
export const OPS_SUPPORTED = (1 << OPCODE.NOOP) | (1 << OPCODE.MEMMOVE) | (1 << OPCODE.FILL) | (1 << OPCODE.COMPARE);
const OP_NAMES = ['NOOP', 'MEMMOVE', 'FILL', 'COMPARE'];

export function opcodeName(op: number): string {
  return OP_NAMES[op] ?? `OP_${op}`;
}

export const COMPLETION = defineLayout('dmae-cr', COMPLETION_BYTES, [
  ['STATUS', 6, 0],
  /** The faulting access was a write. */
  ['FAULT_WRITE', 7],
  /** COMPARE: 0 equal, 1 different. */
  ['RESULT', 15, 8],
  /** FAULT_REASON of a PAGE_FAULT. */
  ['FAULT_REASON', 23, 16],
  /** Bytes done: written (MEMMOVE, FILL) or, for COMPARE, the offset of the first differing byte. */
  ['BYTES', 63, 32],
  ['FAULT_ADDR_LO', 95, 64],
  ['FAULT_ADDR_HI', 127, 96],
  /** Detail of an error (see DESC_STATUS). */
  ['INFO', 159, 128],
]);

/**
 * Completion status codes (STATUS of the record, or CODE of the error
 * register for a descriptor that asked for no record). Code 0 is "not yet
 * written": software zeroes the record and polls for a non-zero status.
 */
export const DESC_STATUS = {
  NONE: 0x00,
  SUCCESS: 0x01,
  /** COMPARE found a difference: RESULT 1, BYTES = offset of the first differing byte. */
  COMPARE_MISMATCH: 0x02,
  /** An access faulted: FAULT_ADDR, FAULT_WRITE, FAULT_REASON; BYTES = bytes done before it. */
  PAGE_FAULT: 0x03,
  /** INFO: the opcode. */
  INVALID_OPCODE: 0x10,
  /** PV set on a WQ that is not SHARED (reported in the error register). */
  INVALID_FLAGS: 0x11,
  /** INFO: the lowest reserved bit set. */
  RESERVED_NONZERO: 0x12,
  /** INFO: MAX_XFER. */
  TRANSFER_TOO_LARGE: 0x13,
  /** PASID beyond Max PASID Width or PASID not enabled (error register; INFO: the PASID). */
  PASID_INVALID: 0x14,
  /** Privileged request refused: PRIV without PV, WQ not PRIV_ALLOWED, or Privileged Mode not enabled (error register). */
  PRIV_DENIED: 0x15,
  /** An address >= 2^53 or an address + length beyond it. INFO: 0 SRC, 1 DST, 2 COMPL. */
  ADDRESS_RANGE: 0x16,
  /** RCR with a completion record address not 32-byte aligned (error register). */
  CR_ADDR_INVALID: 0x17,
} as const;

const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DESC_STATUS).map(([k, v]) => [v, k]));

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `STATUS_0x${code.toString(16)}`;
}

/**
 * Why an access failed (FAULT_REASON; also ERROR_INFO of fault errors).
 * FAULT_NAMES gives the string dmaRead/dmaWrite return for each; for
 * IOMMU_UR/IOMMU_CA they return the IOMMU's own fault name instead.
 */
export const FAULT_REASON = {
  NONE: 0,
  /** The IOMMU (or the fabric) refused the memory request: Unsupported Request. */
  IOMMU_UR: 1,
  /** ... Completer Abort. */
  IOMMU_CA: 2,
  BUS_MASTER_DISABLED: 3,
  /** The Translation Completion gave no usable permission and PRI is not enabled. */
  ATS_NO_TRANSLATION: 4,
  /** The Translation Request completed with UR (ATS not allowed for the function) ... */
  ATS_UR: 5,
  /** ... or with Completer Abort. */
  ATS_CA: 6,
  /** Entries smaller than the STU, misaligned, or none covering the address. */
  ATS_MALFORMED: 7,
  /** No Translation Completion arrived (completion timeout). */
  ATS_TIMEOUT: 8,
  /** PRG Response: Invalid Request. */
  PRI_INVALID: 9,
  /** PRG Response: Response Failure (or PRI halted by an earlier one). */
  PRI_FAILURE: 10,
  /** No PRG Response within the timeout. */
  PRI_TIMEOUT: 11,
  /** PRI disabled, reset, or given no allocation while the request waited. */
  PRI_STOPPED: 12,
  /** Success responses, but the translation is still missing after the retries. */
  PRI_RETRIES: 13,
  /** The request's PASID/privilege was refused by the PASID capability. */
  PASID_INVALID: 14,
} as const;

export type FaultReason = (typeof FAULT_REASON)[keyof typeof FAULT_REASON];

export const FAULT_NAMES: readonly string[] = (() => {
  const out: string[] = [];
  for (const [k, v] of Object.entries(FAULT_REASON)) out[v] = k;
  return out;
})();

export interface DescriptorInput {
  op: number;
  /** Request a completion record at `completion`. */
  rcr?: boolean;
  rci?: boolean;
  pasid?: number;
  priv?: boolean;
  completion?: number;
  src?: number;
  dst?: number;
  /** FILL: 8-byte pattern, little-endian (`pattern` overrides `src`). */
  pattern?: bigint;
  length?: number;
}

const TWO_32 = 0x1_0000_0000;

/** A descriptor's 64 bytes (what a driver writes to a portal or a ring slot). */
export function encodeDescriptor(d: DescriptorInput): Uint8Array {
  const split = (v: number | undefined) => [(v ?? 0) % TWO_32, Math.floor((v ?? 0) / TWO_32)] as const;
  const [cLo, cHi] = split(d.completion);
  let [sLo, sHi] = split(d.src);
  if (d.pattern !== undefined) {
    sLo = Number(d.pattern & 0xffffffffn);
    sHi = Number((d.pattern >> 32n) & 0xffffffffn);
  }
  const [dLo, dHi] = split(d.dst);
  const words = encodeLayout(DESCRIPTOR, {
    OPCODE: d.op,
    RCR: d.rcr ? 1 : 0,
    RCI: d.rci ? 1 : 0,
    PV: d.pasid !== undefined ? 1 : 0,
    PRIV: d.priv ? 1 : 0,
    PASID: d.pasid ?? 0,
    COMPL_LO: cLo,
    COMPL_HI: cHi,
    SRC_LO: sLo,
    SRC_HI: sHi,
    DST_LO: dLo,
    DST_HI: dHi,
    LENGTH: d.length ?? 0,
  });
  return new Uint8Array(words.buffer);
}

export interface CompletionRecord {
  status: number;
  statusName: string;
  faultWrite: boolean;
  result: number;
  faultReason: number;
  faultName: string;
  bytes: number;
  faultAddr: number;
  info: number;
}

/** Little-endian u32 words of a structure's bytes (how the layouts number their bits). */
export function wordsOfBytes(bytes: Uint8Array, n = bytes.length >> 2, into?: Uint32Array): Uint32Array {
  const words = into ?? new Uint32Array(n);
  for (let i = 0; i < n; i++) words[i] = (bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24)) >>> 0;
  return words;
}

/** Decode a completion record's 32 bytes. */
export function decodeCompletion(bytes: Uint8Array): CompletionRecord {
  const f = decodeLayout(COMPLETION, wordsOfBytes(bytes, COMPLETION_BYTES / 4));
  return {
    status: f.STATUS,
    statusName: statusName(f.STATUS),
    faultWrite: f.FAULT_WRITE === 1,
    result: f.RESULT,
    faultReason: f.FAULT_REASON,
    faultName: FAULT_NAMES[f.FAULT_REASON] ?? `REASON_${f.FAULT_REASON}`,
    bytes: f.BYTES,
    faultAddr: f.FAULT_ADDR_HI * TWO_32 + f.FAULT_ADDR_LO,
    info: f.INFO,
  };
}
