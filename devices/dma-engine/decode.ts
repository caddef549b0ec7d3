import { getBits, hasReservedBits, reservedBitsSet } from '../../src/hw/layout.ts';
import type { PasidCapability } from '../../src/pci/caps/pasid.ts';
import { NO_PASID } from '../../src/pci/transaction.ts';
import { COMPLETION_ALIGN, COMPLETION_BYTES, DESC_STATUS, DESCRIPTOR, OPCODE, OPS_SUPPORTED } from './descriptor.ts';

const LIMIT = 2 ** 53;
const F = DESCRIPTOR.fields;
const TWO_32 = 0x1_0000_0000;
const HI_LIMIT = 2 ** 21;

/** A descriptor's fields as the engine uses them. */
export interface Decoded {
  op: number;
  rcr: boolean;
  rci: boolean;
  /** The PASID its requests carry (the descriptor's or the WQ's default), or NO_PASID. */
  pasid: number;
  priv: boolean;
  completion: number;
  src: number;
  dst: number;
  length: number;
  /** FILL pattern, low and high words. */
  patternLo: number;
  patternHi: number;
}

/** The WQ settings a descriptor is checked against (latched at WQ enable). */
export interface WqPolicy {
  shared: boolean;
  privAllowed: boolean;
  defaultPasid: number;
  defaultPriv: boolean;
}

export interface DecodeResult {
  /** DESC_STATUS.SUCCESS when the descriptor may run, else the error. */
  status: number;
  info: number;
  /**
   * The error cannot go in a completion record (the record's address or
   * address space is what is wrong): it goes to the error register.
   */
  errorRegister: boolean;
  d: Decoded;
}

/** A result to decode into (a job keeps one and reuses it). */
export function newDecodeResult(): DecodeResult {
  return {
    status: DESC_STATUS.SUCCESS, info: 0, errorRegister: false,
    d: { op: 0, rcr: false, rci: false, pasid: NO_PASID, priv: false, completion: 0, src: 0, dst: 0, length: 0, patternLo: 0, patternHi: 0 },
  };
}

/** A 64-bit value of two u32 words (lo at word `w`, hi at `w + 1`); -1 when it does not fit 53 bits. */
function addr53At(words: Uint32Array, w: number): number {
  const h = words[w + 1]!;
  return h >= HI_LIMIT ? -1 : h * TWO_32 + words[w]!;
}
const COMPL_W = F.COMPL_LO.word;
const SRC_W = F.SRC_LO.word;
const DST_W = F.DST_LO.word;
for (const [lo, hi] of [[F.COMPL_LO, F.COMPL_HI], [F.SRC_LO, F.SRC_HI], [F.DST_LO, F.DST_HI]] as const) {
  if (lo.shift !== 0 || lo.width !== 32 || hi.shift !== 0 || hi.width !== 32 || hi.word !== lo.word + 1) throw new Error(`${lo.name}/${hi.name}: not two whole words`);
}

/** The descriptor may not run (a module function, not a closure: decoding runs per descriptor). */
function failWith(res: DecodeResult, status: number, info: number, errorRegister: boolean): DecodeResult {
  res.status = status;
  res.info = info >>> 0;
  res.errorRegister = errorRegister || !res.d.rcr;
  return res;
}

/**
 * Check a descriptor in this order, stopping at the first error: PASID and
 * privilege (the completion record's address space), the completion record
 * address, reserved bits, opcode, transfer size, buffer addresses.
 */
export function decodeDescriptor(
  words: Uint32Array, wq: WqPolicy, pasidCap: PasidCapability, maxTransfer: number, into: DecodeResult = newDecodeResult(),
): DecodeResult {
  const pv = getBits(words, F.PV) === 1;
  const descPriv = getBits(words, F.PRIV) === 1;
  const res = into;
  const d = res.d;
  res.status = DESC_STATUS.SUCCESS;
  res.info = 0;
  res.errorRegister = false;
  d.op = getBits(words, F.OPCODE);
  d.rcr = getBits(words, F.RCR) === 1;
  d.rci = getBits(words, F.RCI) === 1;
  d.pasid = pv ? getBits(words, F.PASID) : wq.defaultPasid;
  d.priv = pv ? descPriv : wq.defaultPriv;
  d.completion = 0;
  d.src = 0;
  d.dst = 0;
  d.length = getBits(words, F.LENGTH);
  d.patternLo = getBits(words, F.SRC_LO);
  d.patternHi = getBits(words, F.SRC_HI);
  if (pv && !wq.shared) return failWith(res, DESC_STATUS.INVALID_FLAGS, d.op, true);
  if (descPriv && (!pv || !wq.privAllowed)) return failWith(res, DESC_STATUS.PRIV_DENIED, pv ? d.pasid : 0, true);
  if (d.pasid !== NO_PASID) {
    if (!pasidCap.pasidAllowed(d.pasid, false)) return failWith(res, DESC_STATUS.PASID_INVALID, d.pasid, true);
    if (!pasidCap.pasidAllowed(d.pasid, d.priv)) return failWith(res, DESC_STATUS.PRIV_DENIED, d.pasid, true);
  } else {
    d.priv = false;
  }
  if (d.rcr) {
    const c = addr53At(words, COMPL_W);
    if (c < 0 || c + COMPLETION_BYTES > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 2, true);
    d.completion = c;
    // The low bits of the address are those of its low word (no floating-point remainder).
    const mis = words[COMPL_W]! & (COMPLETION_ALIGN - 1);
    if (mis !== 0) return failWith(res, DESC_STATUS.CR_ADDR_INVALID, mis, true);
  }
  if (hasReservedBits(DESCRIPTOR, words)) return failWith(res, DESC_STATUS.RESERVED_NONZERO, reservedBitsSet(DESCRIPTOR, words, 1)[0]!, false);
  if (d.op > 31 || ((OPS_SUPPORTED >>> d.op) & 1) === 0) return failWith(res, DESC_STATUS.INVALID_OPCODE, d.op, false);
  if (d.op === OPCODE.NOOP) return res;
  if (d.length > maxTransfer) return failWith(res, DESC_STATUS.TRANSFER_TOO_LARGE, maxTransfer, false);
  if (d.op !== OPCODE.FILL) {
    const s = addr53At(words, SRC_W);
    if (s < 0 || s + d.length > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 0, false);
    d.src = s;
  }
  const t = addr53At(words, DST_W);
  if (t < 0 || t + d.length > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 1, false);
  d.dst = t;
  return res;
}
