/**
 * Context descriptors: the Level 1 CD (§5.3 L1CD) and the 64-byte CD (§5.4),
 * with the validity rules of §5.4 / §5.5 for this model's feature set. As for
 * STEs, bits outside every declared field are RES0 and make the CD ILLEGAL
 * (C_BAD_CD) when set.
 *
 * Input addresses are JavaScript numbers below 2^53, so VA[63] is always 0:
 * every transaction falls in the TTB0 half of the address space, and the TTB1
 * fields are only checked for validity.
 */
import { defineLayout, readField, reservedBitsSet } from '../../src/hw/layout.ts';
import { vmsaConfigError, type VmsaGranule } from '../pgtable/index.ts';
import { vaxBits, type SmmuFeatures } from './caps.ts';
import { OAS_BITS } from './regs.ts';
import { TG0_GRANULE, TG1_GRANULE } from './ste.ts';

/** §5.3 L1CD (8 bytes). */
export const L1CD_LAYOUT = defineLayout('L1CD', 8, [
  ['V', 0],
  ['L2Ptr', 55, 12],
]);

/** §5.4 CD (64 bytes). */
export const CD_LAYOUT = defineLayout('CD', 64, [
  ['T0SZ', 5, 0], ['TG0', 7, 6], ['IR0', 9, 8], ['OR0', 11, 10], ['SH0', 13, 12], ['EPD0', 14], ['ENDI', 15],
  ['T1SZ', 21, 16], ['TG1', 23, 22], ['IR1', 25, 24], ['OR1', 27, 26], ['SH1', 29, 28], ['EPD1', 30], ['V', 31],
  ['IPS', 34, 32], ['AFFD', 35], ['WXN', 36], ['UWXN', 37], ['TBI0', 38], ['TBI1', 39], ['PAN', 40], ['AA64', 41],
  ['HD', 42], ['HA', 43], ['S', 44], ['R', 45], ['A', 46], ['ASET', 47], ['ASID', 63, 48],
  ['NSCFG0', 64], ['HAD0', 65], ['TTB0', 115, 68], ['HWU0', 127, 124],
  ['NSCFG1', 128], ['HAD1', 129], ['TTB1', 179, 132], ['HWU1', 191, 188],
  ['MAIR0', 223, 192], ['MAIR1', 255, 224], ['AMAIR0', 287, 256], ['AMAIR1', 319, 288], ['IMPDEF', 351, 320],
]);
export type CdField = keyof typeof CD_LAYOUT.fields;

/** A decoded CD: the stage 1 walk configuration for TTB0 and the fault configuration (§5.5). */
export interface Cd {
  readonly words: Uint32Array;
  readonly illegal: string | null;
  readonly asid: number;
  /** TTB0 walks disabled: every access faults Translation. */
  readonly epd0: boolean;
  readonly granule: VmsaGranule;
  readonly tsz: number;
  readonly ttb0: number;
  /** Effective IPS: MIN(CD.IPS, OAS) in bits. */
  readonly ipsBits: number;
  readonly ha: boolean;
  readonly hd: boolean;
  readonly affd: boolean;
  readonly wxn: boolean;
  readonly pan: boolean;
  /** HAD0: hierarchical permissions disabled for TTB0. */
  readonly hpd: boolean;
  /** CD.R: record stage 1 translation-related faults. */
  readonly record: boolean;
  /** CD.A: abort terminated transactions (else RAZ/WI). */
  readonly abort: boolean;
  /** CD.S: stage 1 translation-related faults stall (§3.12.2); recorded whatever CD.R says. */
  readonly stall: boolean;
}

export function cdField(words: ArrayLike<number>, name: CdField): number {
  return readField(CD_LAYOUT, words, name);
}

/** Decode a fetched CD and judge its validity. Never throws. */
export function decodeCd(words: Uint32Array, f: SmmuFeatures): Cd {
  const g = (n: CdField) => readField(CD_LAYOUT, words, n);
  const ips = Math.min(g('IPS') === 7 ? 6 : g('IPS'), OAS_BITS.indexOf(f.oas));
  const ipsBits = OAS_BITS[ips]!;
  const granule = TG0_GRANULE[g('TG0')]!;
  const ha = g('HA') === 1;
  const cd: Cd = {
    words,
    illegal: null,
    asid: g('ASID'),
    epd0: g('EPD0') === 1,
    granule: granule === 0 ? 4096 : granule,
    tsz: g('T0SZ'),
    ttb0: g('TTB0') * 16,
    ipsBits,
    ha,
    hd: ha && g('HD') === 1, // {HD,HA} == 0b10 behaves as 0b00
    affd: g('AFFD') === 1,
    wxn: g('WXN') === 1,
    pan: g('PAN') === 1,
    hpd: g('HAD0') === 1,
    record: g('R') === 1,
    abort: g('A') === 1,
    stall: g('S') === 1,
  };
  return { ...cd, illegal: cdIllegal(words, g, f, ipsBits) };
}

function cdIllegal(words: Uint32Array, g: (n: CdField) => number, f: SmmuFeatures, ipsBits: number): string | null {
  if (g('V') === 0) return 'V == 0';
  const rsv = reservedBitsSet(CD_LAYOUT, words, 4);
  if (rsv.length > 0) return `RES0 bits set: ${rsv.join(',')}`;
  if (g('AA64') === 0) return 'AA64 == 0: VMSAv8-32 LPAE tables not supported';
  const epd0 = g('EPD0') === 1;
  const epd1 = g('EPD1') === 1;
  if (g('ENDI') !== 0 && !(epd0 && epd1)) return 'ENDI: big-endian tables not supported';
  if (!epd0) {
    const e = regionIllegal('0', TG0_GRANULE[g('TG0')]!, g('T0SZ'), g('TTB0') * 16, ipsBits, f);
    if (e !== null) return e;
  }
  if (!epd1) {
    const e = regionIllegal('1', TG1_GRANULE[g('TG1')]!, g('T1SZ'), g('TTB1') * 16, ipsBits, f);
    if (e !== null) return e;
  }
  return null;
}

function regionIllegal(n: string, granule: VmsaGranule | 0, tsz: number, ttb: number, ipsBits: number, f: SmmuFeatures): string | null {
  if (granule === 0) return `TG${n} reserved`;
  const min = vaxBits(f) === 52 && granule === 65536 ? 12 : 16;
  if (tsz < min || tsz > 39) return `T${n}SZ ${tsz} out of range [${min}, 39]`;
  if (ttb >= 2 ** ipsBits) return `TTB${n} outside the effective IPS`;
  if (ttb >= 2 ** 48 && granule !== 65536) return `TTB${n} beyond 48 bits with a 4K/16K granule`;
  const err = vmsaConfigError({ stage: 1, granule, tsz, ttb, oaBits: ipsBits });
  return err === null ? null : `TTB${n} walk configuration: ${err}`;
}

