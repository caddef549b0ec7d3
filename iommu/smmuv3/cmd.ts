/**
 * Command queue entries (16 bytes, §4.1 "Commands overview"): opcodes and the
 * field layout of each command (§4.2 prefetch, §4.3 configuration
 * invalidation, §4.4 TLB invalidation, §4.5 ATC invalidation, §4.6 PRI, §4.7
 * fault response and synchronization). Bits outside a command's fields are
 * RES0; this model detects them as malformed (CERROR_ILL), as §4.1.5 permits.
 */
import { defineLayout, encodeLayout, getBits, reservedBitsSet, setBits, type BitField, type FieldSpec, type Layout } from '../../src/hw/layout.ts';

export const CMD_OP = {
  PREFETCH_CONFIG: 0x01, PREFETCH_ADDR: 0x02, CFGI_STE: 0x03, CFGI_STE_RANGE: 0x04, CFGI_CD: 0x05, CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10, TLBI_NH_ASID: 0x11, TLBI_NH_VA: 0x12, TLBI_NH_VAA: 0x13, TLBI_EL3_ALL: 0x18, TLBI_EL3_VA: 0x1a,
  TLBI_EL2_ALL: 0x20, TLBI_EL2_ASID: 0x21, TLBI_EL2_VA: 0x22, TLBI_EL2_VAA: 0x23, TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a, TLBI_NSNH_ALL: 0x30, ATC_INV: 0x40, PRI_RESP: 0x41, RESUME: 0x44, STALL_TERM: 0x45, SYNC: 0x46,
} as const;

/** CMD_CFGI_ALL is CMD_CFGI_STE_RANGE with Range == 31 (§4.3.6). */
export const CFGI_ALL_RANGE = 31;
/** CMD_SYNC.CS (§4.7.3). */
export const SYNC_CS = { NONE: 0, IRQ: 1, SEV: 2 } as const;

/** Every command's opcode, bits [7:0]. */
export const CMD_OPCODE: BitField<'Opcode'> = defineLayout('CMD', 16, [['Opcode', 7, 0]]).fields.Opcode;
const SID = ['StreamID', 63, 32] as const;
const SSID = ['SubstreamID', 31, 12] as const;
/** Range/level hint fields of address-based TLBIs (§4.4.1.1); SCALE is 5 bits when IDR5.DS == 0. */
const RANGE = [['NUM', 16, 12], ['SCALE', 24, 20], ['Leaf', 64], ['TTL', 73, 72], ['TG', 75, 74]] as const;

const cmd = <const F extends string>(name: string, fields: readonly FieldSpec<F>[]): Layout<F | 'Opcode'> =>
  defineLayout<F | 'Opcode'>(`CMD_${name}`, 16, [['Opcode', 7, 0], ...fields]);

/** The layout of each command this model knows (§4.2-§4.7), by name. */
export const CMD = {
  PREFETCH_CONFIG: cmd('PREFETCH_CONFIG', [['SSec', 10], ['SSV', 11], SSID, SID]),
  PREFETCH_ADDR: cmd('PREFETCH_ADDR', [['SSec', 10], ['SSV', 11], SSID, SID, ['Size', 68, 64], ['Stride', 73, 69], ['Address', 127, 76]]),
  CFGI_STE: cmd('CFGI_STE', [['SSec', 10], SID, ['Leaf', 64]]),
  CFGI_STE_RANGE: cmd('CFGI_STE_RANGE', [['SSec', 10], SID, ['Range', 68, 64]]),
  CFGI_CD: cmd('CFGI_CD', [['SSec', 10], SSID, SID, ['Leaf', 64]]),
  CFGI_CD_ALL: cmd('CFGI_CD_ALL', [['SSec', 10], SID]),
  TLBI_NH_ALL: cmd('TLBI_NH_ALL', [['VMID', 47, 32]]),
  TLBI_NH_ASID: cmd('TLBI_NH_ASID', [['VMID', 47, 32], ['ASID', 63, 48]]),
  TLBI_NH_VA: cmd('TLBI_NH_VA', [...RANGE, ['VMID', 47, 32], ['ASID', 63, 48], ['Address', 127, 76]]),
  TLBI_NH_VAA: cmd('TLBI_NH_VAA', [...RANGE, ['VMID', 47, 32], ['Address', 127, 76]]),
  TLBI_EL2_ALL: cmd('TLBI_EL2_ALL', []),
  TLBI_EL2_ASID: cmd('TLBI_EL2_ASID', [['ASID', 63, 48]]),
  TLBI_EL2_VA: cmd('TLBI_EL2_VA', [...RANGE, ['ASID', 63, 48], ['Address', 127, 76]]),
  TLBI_EL2_VAA: cmd('TLBI_EL2_VAA', [...RANGE, ['Address', 127, 76]]),
  TLBI_S12_VMALL: cmd('TLBI_S12_VMALL', [['VMID', 47, 32]]),
  TLBI_S2_IPA: cmd('TLBI_S2_IPA', [...RANGE, ['VMID', 47, 32], ['Address', 119, 76]]), // IPA[55:12]
  TLBI_NSNH_ALL: cmd('TLBI_NSNH_ALL', []),
  ATC_INV: cmd('ATC_INV', [['Global', 9], ['SSV', 11], SSID, SID, ['Size', 69, 64], ['Address', 127, 76]]),
  PRI_RESP: cmd('PRI_RESP', [['SSec', 10], ['SSV', 11], SSID, SID, ['PRGIndex', 72, 64], ['Resp', 77, 76]]),
  RESUME: cmd('RESUME', [['SSec', 10], ['Ac', 12], ['Ab', 13], SID, ['STAG', 79, 64]]),
  STALL_TERM: cmd('STALL_TERM', [['SSec', 10], SID]),
  // MSIAddr[51:2]; [119:116] RES0 (OAS <= 52).
  SYNC: cmd('SYNC', [['CS', 13, 12], ['MSH', 23, 22], ['MSIAttr', 27, 24], ['MSIData', 63, 32], ['MSIAddr', 115, 66]]),
} as const;
export type CmdLayouts = typeof CMD;

/** Commands a driver can encode; CFGI_ALL is CFGI_STE_RANGE with Range == 31 (§4.3.6). */
export type CmdName = keyof CmdLayouts | 'CFGI_ALL';
/** The field names of a command (Opcode excluded: encodeCommand sets it). */
export type CmdField<N extends CmdName> = N extends keyof CmdLayouts
  ? Exclude<keyof CmdLayouts[N]['fields'] & string, 'Opcode'>
  : Exclude<CmdField<'CFGI_STE_RANGE'>, 'Range'>;
export type CmdValues<N extends CmdName> = Partial<Record<CmdField<N>, number>>;

/** The layout of each opcode this model knows. */
export const CMD_LAYOUTS: Readonly<Record<number, Layout>> = Object.freeze(
  Object.fromEntries(Object.entries(CMD).map(([k, l]) => [CMD_OP[k as keyof CmdLayouts], l as Layout])),
);

/** The same by opcode in an array (per command consumed: a frozen record's integer keys are a dictionary lookup). */
export const CMD_LAYOUT_OF: readonly (Layout | undefined)[] = Array.from({ length: 256 }, (_, op) => CMD_LAYOUTS[op]);

const NAMES = new Map<number, string>(Object.entries(CMD_OP).map(([k, v]) => [v, k]));

/** "TLBI_NH_VA", or "OP_0x99" for an opcode this model does not know. */
export function cmdName(opcode: number): string {
  return NAMES.get(opcode) ?? `OP_0x${opcode.toString(16).padStart(2, '0')}`;
}

/** The opcode of a command held as u32 words. */
export function cmdOpcode(words: ArrayLike<number>): number {
  return getBits(words, CMD_OPCODE);
}

/** Is any RES0 bit set in a known command? (The allocation-free check; cmdReservedBits lists them.) */
export function cmdHasReservedBits(words: ArrayLike<number>, opcode: number): boolean {
  const l = CMD_LAYOUT_OF[opcode];
  if (l === undefined) return false;
  const m = l.reservedMask;
  for (let i = 0; i < m.length; i++) if ((words[i]! & m[i]!) !== 0) return true;
  return false;
}

/** RES0 bits set in a known command, lowest first. */
export function cmdReservedBits(words: ArrayLike<number>, opcode: number): number[] {
  const l = CMD_LAYOUTS[opcode];
  return l === undefined ? [] : reservedBitsSet(l, words, 4);
}

/** Encode a command for the queue (what a driver does); a misspelt or foreign field does not compile. */
export function encodeCommand<N extends CmdName>(op: N, fields: CmdValues<N> = {}): Uint32Array {
  if (op === 'CFGI_ALL') return encodeCommand('CFGI_STE_RANGE', { ...(fields as CmdValues<'CFGI_ALL'>), Range: CFGI_ALL_RANGE });
  const name = op as keyof CmdLayouts;
  const words = encodeLayout(CMD[name] as Layout, fields as Partial<Record<string, number>>);
  setBits(words, CMD_OPCODE, CMD_OP[name]);
  return words;
}

const PRI_RESP_F = CMD.PRI_RESP.fields;

/**
 * CMD_PRI_RESP (§4.6.1) written into `into` (four words): the words
 * encodeCommand('PRI_RESP', { StreamID, SSV, SubstreamID, PRGIndex, Resp })
 * gives, without the literal and the new array (a driver sends one per PRI
 * fault).
 */
export function encodePriResp(into: Uint32Array, sid: number, ssv: number, ssid: number, prgIndex: number, resp: number): Uint32Array {
  into.fill(0);
  setBits(into, PRI_RESP_F.StreamID, sid);
  setBits(into, PRI_RESP_F.SSV, ssv);
  setBits(into, PRI_RESP_F.SubstreamID, ssid);
  setBits(into, PRI_RESP_F.PRGIndex, prgIndex);
  setBits(into, PRI_RESP_F.Resp, resp);
  setBits(into, CMD_OPCODE, CMD_OP.PRI_RESP);
  return into;
}

/**
 * §4.4.1.1 range invalidation: the span in bytes described by TG/NUM/SCALE,
 * the granule size for TG (0 when TG == 0: no range, single address).
 */
export function tlbiGranule(tg: number): number {
  return tg === 1 ? 4096 : tg === 2 ? 16384 : tg === 3 ? 65536 : 0;
}

export function tlbiRangeBytes(tg: number, num: number, scale: number): number {
  const g = tlbiGranule(tg);
  return g === 0 ? 0 : (num + 1) * 2 ** scale * g;
}
