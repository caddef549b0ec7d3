import { getBits, reservedBitsSet } from '../../src/hw/layout.ts';
import type { PasidCapability } from '../../src/pci/caps/pasid.ts';
import { NO_PASID } from '../../src/pci/transaction.ts';
import { COMPLETION_ALIGN, COMPLETION_BYTES, DESC_STATUS, DESCRIPTOR, OPCODE, OPS_SUPPORTED, addr53 } from './descriptor.ts';

const LIMIT = 2 ** 53;
const F = DESCRIPTOR.fields;

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
export function decodeDescriptor(words: Uint32Array, wq: WqPolicy, pasidCap: PasidCapability, maxTransfer: number): DecodeResult {
  const pv = getBits(words, F.PV) === 1;
  const descPriv = getBits(words, F.PRIV) === 1;
  const d: Decoded = {
    op: getBits(words, F.OPCODE),
    rcr: getBits(words, F.RCR) === 1,
    rci: getBits(words, F.RCI) === 1,
    pasid: pv ? getBits(words, F.PASID) : wq.defaultPasid,
    priv: pv ? descPriv : wq.defaultPriv,
    completion: 0,
    src: 0,
    dst: 0,
    length: getBits(words, F.LENGTH),
    patternLo: getBits(words, F.SRC_LO),
    patternHi: getBits(words, F.SRC_HI),
  };
  const res: DecodeResult = { status: DESC_STATUS.SUCCESS, info: 0, errorRegister: false, d };
  if (pv && !wq.shared) return failWith(res, DESC_STATUS.INVALID_FLAGS, d.op, true);
  if (descPriv && (!pv || !wq.privAllowed)) return failWith(res, DESC_STATUS.PRIV_DENIED, pv ? d.pasid : 0, true);
  if (d.pasid !== NO_PASID) {
    if (!pasidCap.pasidAllowed(d.pasid, false)) return failWith(res, DESC_STATUS.PASID_INVALID, d.pasid, true);
    if (!pasidCap.pasidAllowed(d.pasid, d.priv)) return failWith(res, DESC_STATUS.PRIV_DENIED, d.pasid, true);
  } else {
    d.priv = false;
  }
  if (d.rcr) {
    const c = addr53(words, 'COMPL_LO', 'COMPL_HI');
    if (c === undefined || c + COMPLETION_BYTES > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 2, true);
    d.completion = c;
    if (c % COMPLETION_ALIGN !== 0) return failWith(res, DESC_STATUS.CR_ADDR_INVALID, c % COMPLETION_ALIGN, true);
  }
  const rsv = reservedBitsSet(DESCRIPTOR, words, 1);
  if (rsv.length > 0) return failWith(res, DESC_STATUS.RESERVED_NONZERO, rsv[0]!, false);
  if (d.op > 31 || ((OPS_SUPPORTED >>> d.op) & 1) === 0) return failWith(res, DESC_STATUS.INVALID_OPCODE, d.op, false);
  if (d.op === OPCODE.NOOP) return res;
  if (d.length > maxTransfer) return failWith(res, DESC_STATUS.TRANSFER_TOO_LARGE, maxTransfer, false);
  if (d.op !== OPCODE.FILL) {
    const s = addr53(words, 'SRC_LO', 'SRC_HI');
    if (s === undefined || s + d.length > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 0, false);
    d.src = s;
  }
  const t = addr53(words, 'DST_LO', 'DST_HI');
  if (t === undefined || t + d.length > LIMIT) return failWith(res, DESC_STATUS.ADDRESS_RANGE, 1, false);
  d.dst = t;
  return res;
}
