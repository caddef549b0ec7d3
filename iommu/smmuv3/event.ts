/**
 * Event queue records (32 bytes, §7.3 "Event records") and PRI queue records
 * (16 bytes, §8.1). Each event number has its own layout; the translation
 * fault family (0x10-0x13, 0x20) shares one.
 */
import { defineLayout, getBits, setBits, type BitField, type FieldSpec, type Layout } from '../../src/hw/layout.ts';
import type { PageRequestMessage } from '../../src/pci/ats-messages.ts';

/** Event numbers (§7.3.2-§7.3.18). */
export const EVT = {
  F_UUT: 0x01, C_BAD_STREAMID: 0x02, F_STE_FETCH: 0x03, C_BAD_STE: 0x04, F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06, F_TRANSL_FORBIDDEN: 0x07, C_BAD_SUBSTREAMID: 0x08, F_CD_FETCH: 0x09, C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b, F_TRANSLATION: 0x10, F_ADDR_SIZE: 0x11, F_ACCESS: 0x12, F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20, F_CFG_CONFLICT: 0x21,
} as const;
export type EventName = keyof typeof EVT;

/** CLASS of a translation fault (§7.3): CD fetch, stage 1 table walk, or the input address. */
export const EVT_CLASS = { CD: 0, TT: 1, IN: 2 } as const;

const HEAD = [['EventType', 7, 0], ['SSV', 11], ['SubstreamID', 31, 12], ['StreamID', 63, 32]] as const;
type HeadField = (typeof HEAD)[number][0];
/** What every record starts with: the event number and the StreamID (§7.3). */
export const EVT_HEADER = defineLayout('EVT', 32, HEAD);
const ATTRS = [['PnU', 97], ['InD', 98], ['RnW', 99]] as const;
/**
 * InputAddr[63:0] is bits [191:128]. Layout fields hold at most 53 bits, so
 * it is declared as InputAddr (bits [52:0], every address this model sees)
 * and InputAddrHi (bits [63:53]).
 */
const INPUT = [['InputAddr', 180, 128], ['InputAddrHi', 191, 181]] as const;

const evt = <const F extends string>(name: string, fields: readonly FieldSpec<F>[]): Layout<F | HeadField> =>
  defineLayout<F | HeadField>(name, 32, [...HEAD, ...fields]);

/** §7.3.13-16: F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION (and F_TLB_CONFLICT's shape). */
export const EVT_FAULT_LAYOUT = evt('EVT_FAULT', [
  ['STAG', 79, 64], ['Stall', 95], ...ATTRS, ['NSIPA', 100], ['S2', 103], ['CLASS', 105, 104], ['TTRnW', 108],
  ...INPUT, ['IPA', 247, 204],
]);
/** §7.3.12 F_WALK_EABT: FetchAddr[55:3] of the descriptor whose access aborted. */
export const EVT_WALK_EABT_LAYOUT = evt('EVT_WALK_EABT', [
  ['Reason', 79, 64], ...ATTRS, ['S2', 103], ['CLASS', 105, 104], ...INPUT, ['FetchAddr', 247, 195],
]);
/** §7.3.4 F_STE_FETCH, §7.3.10 F_CD_FETCH. */
export const EVT_FETCH_LAYOUT = evt('EVT_FETCH', [['Reason', 79, 64], ['GPCF', 80], ['FetchAddr', 247, 195]]);
/**
 * §7.3.2 F_UUT, §7.3.8 F_TRANSL_FORBIDDEN: an input address and its
 * attributes. §7.3.6 F_BAD_ATS_TREQ is given the same shape here (RnW = the
 * request's No Write hint, PnU/InD its PASID prefix attributes).
 */
export const EVT_ADDR_LAYOUT = evt('EVT_ADDR', [['Reason', 79, 64], ...ATTRS, ...INPUT]);
/** §7.3.3, §7.3.5, §7.3.9, §7.3.11, §7.3.18: the configuration errors (F_CFG_CONFLICT adds a Reason). */
export const EVT_CONFIG_LAYOUT = evt('EVT_CONFIG', [['Reason', 95, 64]]);
/** §7.3.7 F_STREAM_DISABLED: the StreamID only (no SSV/SubstreamID). */
export const EVT_STREAM_LAYOUT = defineLayout('EVT_STREAM', 32, [['EventType', 7, 0], ['StreamID', 63, 32]]);

type FieldOf<L> = L extends Layout<infer F> ? F : never;
/** Every field name an event record may have; which ones a record has depends on its event number. */
export type EventField = FieldOf<
  typeof EVT_FAULT_LAYOUT | typeof EVT_WALK_EABT_LAYOUT | typeof EVT_FETCH_LAYOUT | typeof EVT_ADDR_LAYOUT | typeof EVT_CONFIG_LAYOUT
>;
/** A decoded record: the fields its event number's layout has. */
export type EventFields = Partial<Record<EventField, number>> & { EventType: number };

const LAYOUT_OF = new Map<number, Layout>([
  [EVT.F_UUT, EVT_ADDR_LAYOUT], [EVT.F_TRANSL_FORBIDDEN, EVT_ADDR_LAYOUT], [EVT.F_BAD_ATS_TREQ, EVT_ADDR_LAYOUT],
  [EVT.C_BAD_STREAMID, EVT_CONFIG_LAYOUT], [EVT.C_BAD_STE, EVT_CONFIG_LAYOUT], [EVT.F_STREAM_DISABLED, EVT_STREAM_LAYOUT],
  [EVT.C_BAD_SUBSTREAMID, EVT_CONFIG_LAYOUT], [EVT.C_BAD_CD, EVT_CONFIG_LAYOUT], [EVT.F_CFG_CONFLICT, EVT_CONFIG_LAYOUT],
  [EVT.F_STE_FETCH, EVT_FETCH_LAYOUT], [EVT.F_CD_FETCH, EVT_FETCH_LAYOUT],
  [EVT.F_WALK_EABT, EVT_WALK_EABT_LAYOUT],
  [EVT.F_TRANSLATION, EVT_FAULT_LAYOUT], [EVT.F_ADDR_SIZE, EVT_FAULT_LAYOUT], [EVT.F_ACCESS, EVT_FAULT_LAYOUT],
  [EVT.F_PERMISSION, EVT_FAULT_LAYOUT], [EVT.F_TLB_CONFLICT, EVT_FAULT_LAYOUT],
]);

const NAME_OF = new Map<number, string>(Object.entries(EVT).map(([k, v]) => [v, k]));

export function eventName(code: number): string {
  return NAME_OF.get(code) ?? `EVT_0x${code.toString(16).padStart(2, '0')}`;
}

/** The layout for an event number (the configuration-error shape for unknown ones). */
export function eventLayout(code: number): Layout {
  return LAYOUT_OF.get(code) ?? EVT_CONFIG_LAYOUT;
}

/** The fields of an event's layout, each present only where the record has it. */
function fieldsOf(code: number): Partial<Record<EventField, BitField>> {
  return eventLayout(code).fields as Partial<Record<EventField, BitField>>;
}

/** A record's fields by name, as software reads them. */
export function decodeEvent(words: ArrayLike<number>): EventFields {
  const code = getBits(words, EVT_HEADER.fields.EventType);
  const out = { EventType: code } as EventFields;
  for (const f of eventLayout(code).order) out[f.name as EventField] = getBits(words, f);
  return out;
}

/**
 * What the model knows when it raises an event; one instance is reused, so
 * raising an event allocates only the record it writes.
 */
export class EventInfo {
  code = 0;
  sid = 0;
  /** SubstreamID, or -1 when the transaction had none. */
  ssid = -1;
  inputAddr = 0;
  read = true;
  priv = false;
  instr = false;
  s2 = false;
  cls = 0;
  /** IPA for translation faults, FetchAddr for fetch/walk aborts. */
  addr2 = 0;
  ttRead = true;
  reason = 0;
  /** A stalled transaction (§3.12.2): Stall = 1 and its STAG. */
  stall = false;
  stag = 0;

  reset(code: number, sid: number, ssid: number): this {
    this.code = code;
    this.sid = sid;
    this.ssid = ssid;
    this.inputAddr = 0;
    this.read = true;
    this.priv = false;
    this.instr = false;
    this.s2 = false;
    this.cls = 0;
    this.addr2 = 0;
    this.ttRead = true;
    this.reason = 0;
    this.stall = false;
    this.stag = 0;
    return this;
  }
}

/** Set field `f` when the record has it. */
function put(w: Uint32Array, f: BitField | undefined, value: number): void {
  if (f !== undefined) setBits(w, f, value);
}

/** The 32-byte record for an event (§7.3). */
export function encodeEvent(e: EventInfo): Uint32Array {
  const f = fieldsOf(e.code);
  const w = new Uint32Array(8);
  put(w, f.EventType, e.code);
  put(w, f.StreamID, e.sid >>> 0);
  // C_BAD_SUBSTREAMID has no SSV qualifier: its SubstreamID is always valid (§7.3.9).
  put(w, f.SSV, e.ssid >= 0 && e.code !== EVT.C_BAD_SUBSTREAMID ? 1 : 0);
  put(w, f.SubstreamID, e.ssid >= 0 ? e.ssid : 0);
  put(w, f.InputAddr, e.inputAddr);
  if (f.RnW !== undefined) {
    put(w, f.RnW, e.read ? 1 : 0);
    put(w, f.PnU, e.priv ? 1 : 0);
    put(w, f.InD, e.read && e.instr ? 1 : 0); // InD == 0 when RnW == 0
  }
  put(w, f.S2, e.s2 ? 1 : 0);
  put(w, f.CLASS, e.cls);
  if (e.s2) put(w, f.IPA, Math.floor(e.addr2 / 4096));
  if (e.s2 && e.cls === EVT_CLASS.TT) put(w, f.TTRnW, e.ttRead ? 1 : 0);
  put(w, f.FetchAddr, Math.floor(e.addr2 / 8));
  put(w, f.Reason, e.reason >>> 0);
  if (e.stall) {
    put(w, f.Stall, 1);
    put(w, f.STAG, e.stag & 0xffff);
  }
  return w;
}

/** §8.1 PRI queue record (16 bytes): one PCIe Page Request (Address[63:12]). */
export const PRIQ_LAYOUT = defineLayout('PRIQ', 16, [
  ['StreamID', 31, 0], ['SubstreamID', 51, 32], ['Priv', 58], ['Exec', 59], ['Read', 60], ['Write', 61],
  ['Last', 62], ['SSV', 63], ['PRGIndex', 72, 64], ['Address', 127, 76],
]);
export const PRIQ_BYTES = 16;

const PRIQ_F = PRIQ_LAYOUT.fields;

/**
 * A page request as a PRI queue record: Priv/Exec only with a PASID prefix
 * (§8.1). Field by field, not through encodeLayout: one record per PRI fault,
 * and a literal of values plus a name lookup per field cost more than the fault's
 * queue write. `into` (four words) is filled instead of a new array.
 */
export function encodePriRecord(m: PageRequestMessage, into?: Uint32Array): Uint32Array {
  const pasid = m.pasid >= 0;
  const w = into !== undefined ? into.fill(0) : new Uint32Array(PRIQ_BYTES / 4);
  setBits(w, PRIQ_F.StreamID, m.requesterId >>> 0);
  if (pasid) {
    setBits(w, PRIQ_F.SSV, 1);
    setBits(w, PRIQ_F.SubstreamID, m.pasid);
    if (m.privileged) setBits(w, PRIQ_F.Priv, 1);
    if (m.exec) setBits(w, PRIQ_F.Exec, 1);
  }
  if (m.read) setBits(w, PRIQ_F.Read, 1);
  if (m.write) setBits(w, PRIQ_F.Write, 1);
  if (m.last) setBits(w, PRIQ_F.Last, 1);
  setBits(w, PRIQ_F.PRGIndex, m.prgIndex & 0x1ff);
  setBits(w, PRIQ_F.Address, Math.floor(m.addr / 4096));
  return w;
}

/** A PRI queue record's fields by name (Address as a byte address); one object literal (a fixed shape), once per PRI fault. */
export function decodePriRecord(words: ArrayLike<number>): Record<keyof typeof PRIQ_LAYOUT.fields, number> {
  return {
    StreamID: getBits(words, PRIQ_F.StreamID), SubstreamID: getBits(words, PRIQ_F.SubstreamID),
    Priv: getBits(words, PRIQ_F.Priv), Exec: getBits(words, PRIQ_F.Exec), Read: getBits(words, PRIQ_F.Read),
    Write: getBits(words, PRIQ_F.Write), Last: getBits(words, PRIQ_F.Last), SSV: getBits(words, PRIQ_F.SSV),
    PRGIndex: getBits(words, PRIQ_F.PRGIndex), Address: getBits(words, PRIQ_F.Address) * 4096,
  };
}
