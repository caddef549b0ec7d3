/**
 * Stream table structures: the Level 1 Stream Table Descriptor (§5.1 L1STD)
 * and the 64-byte Stream Table Entry (§5.2 STE), with the validity rules of
 * §5.2.2 ("SteIllegal") as they apply to the features this model
 * implements. Bits outside every declared field are RES0 here (including
 * fields of features the model does not implement, such as MPAM, Secure
 * stage 2, DPT, PBHA overlays); a set RES0 bit makes the STE ILLEGAL, one of
 * the CONSTRAINED UNPREDICTABLE behaviours the specification permits.
 */
import { defineLayout, getBits64, readField, reservedBitsSet } from '../../src/hw/layout.ts';
import { vmsaConfigError, type VmsaGranule } from '../pgtable/index.ts';
import { iasBits, type SmmuFeatures } from './caps.ts';
import { OAS_BITS } from './regs.ts';

/** §5.1 L1STD (8 bytes). */
export const L1STD_LAYOUT = defineLayout('L1STD', 8, [
  ['Span', 4, 0],
  ['L2Ptr', 55, 6],
]);

/** §5.2 STE (64 bytes). Bit numbers run across the whole entry, as in the specification. */
export const STE_LAYOUT = defineLayout('STE', 64, [
  ['V', 0], ['Config', 3, 1], ['S1Fmt', 5, 4], ['S1ContextPtr', 55, 6], ['S1CDMax', 63, 59],
  ['S1DSS', 65, 64], ['S1CIR', 67, 66], ['S1COR', 69, 68], ['S1CSH', 71, 70],
  ['S2HWU59', 72], ['S2HWU60', 73], ['S2HWU61', 74], ['S2HWU62', 75], ['DRE', 76], ['CONT', 80, 77], ['DCP', 81],
  ['PPAR', 82], ['MEV', 83], ['SW_RESERVED', 87, 84], ['S1STALLD', 91], ['EATS', 93, 92], ['STRW', 95, 94],
  ['MemAttr', 99, 96], ['MTCFG', 100], ['ALLOCCFG', 104, 101], ['SHCFG', 109, 108], ['NSCFG', 111, 110],
  ['PRIVCFG', 113, 112], ['INSTCFG', 115, 114], ['IMPDEF0', 127, 116],
  ['S2VMID', 143, 128], ['IMPDEF1', 159, 144],
  ['S2T0SZ', 165, 160], ['S2SL0', 167, 166], ['S2IR0', 169, 168], ['S2OR0', 171, 170], ['S2SH0', 173, 172],
  ['S2TG', 175, 174], ['S2PS', 178, 176], ['S2AA64', 179], ['S2ENDI', 180], ['S2AFFD', 181], ['S2PTW', 182],
  ['S2HD', 183], ['S2HA', 184], ['S2S', 185], ['S2R', 186],
  ['S2TTB', 243, 196], // TTB[51:4] (SMMUv3.1+, VMSAv8-64); [247:244] RES0
  ['IMPDEF2', 271, 256],
]);
export type SteField = keyof typeof STE_LAYOUT.fields;

/** STE.Config encodings (§5.2). 0b001-0b011 are reserved and behave as 0b000. */
export const STE_CONFIG = { ABORT: 0b000, BYPASS: 0b100, S1_TRANS: 0b101, S2_TRANS: 0b110, NESTED: 0b111 } as const;
/** STE.S1DSS (§5.2). */
export const S1DSS = { TERMINATE: 0, BYPASS: 1, SSID0: 2 } as const;
/** STE.S1Fmt (§5.2): linear, 2-level with 4KB leaves (64 CDs), 2-level with 64KB leaves (1024 CDs). */
export const S1FMT = { LINEAR: 0, L2_4K: 1, L2_64K: 2 } as const;
/** STE.S2TG / CD.TG0 encoding → granule (§5.2, §5.4). */
export const TG0_GRANULE: readonly (VmsaGranule | 0)[] = Object.freeze([4096, 65536, 16384, 0]);
/** CD.TG1 encoding → granule (§5.4). */
export const TG1_GRANULE: readonly (VmsaGranule | 0)[] = Object.freeze([0, 16384, 4096, 65536]);

export interface S2Config {
  granule: VmsaGranule;
  tsz: number;
  sl0: number;
  ttb: number;
  /** Effective output size: MIN(S2PS, OAS) in bits. */
  oaBits: number;
  ha: boolean;
  hd: boolean;
  affd: boolean;
  ptw: boolean;
  /** S2R: record stage 2 faults. */
  record: boolean;
  /** S2S: stage 2 translation-related faults stall (§3.12.2). */
  stall: boolean;
}

/** A decoded STE as the SMMU caches it. */
export interface Ste {
  readonly words: Uint32Array;
  /** Why the STE is ILLEGAL (V == 0 included), or null. */
  readonly illegal: string | null;
  /** Effective Config (reserved values folded to abort). */
  readonly config: number;
  readonly s1: boolean;
  readonly s2: boolean;
  readonly s1ContextPtr: number;
  readonly s1Fmt: number;
  readonly s1CdMax: number;
  readonly s1Dss: number;
  readonly vmid: number;
  readonly s2cfg: S2Config | null;
  readonly privcfg: number;
  readonly instcfg: number;
  /** EATS (§5.2): 0 ATS off, 1 full ATS (split-stage 0b10 is ILLEGAL here: IDR0.NS1ATS == 1). */
  readonly eats: number;
  /** S1STALLD: a CD with S == 1 is ILLEGAL for this stream. */
  readonly s1StallDisabled: boolean;
  /** PPAR: PRG Responses the SMMU makes itself carry the PASID (§5.2, §8.2). */
  readonly ppar: boolean;
}

export function steField(words: ArrayLike<number>, name: SteField): number {
  return readField(STE_LAYOUT, words, name);
}

/** Decode a fetched STE and judge its validity (§5.2.2). Never throws. */
export function decodeSte(words: Uint32Array, f: SmmuFeatures): Ste {
  const g = (n: SteField) => readField(STE_LAYOUT, words, n);
  const raw = g('Config');
  const config = (raw & 0b100) === 0 ? STE_CONFIG.ABORT : raw;
  const s1 = config === STE_CONFIG.S1_TRANS || config === STE_CONFIG.NESTED;
  const s2 = config === STE_CONFIG.S2_TRANS || config === STE_CONFIG.NESTED;
  const s1Fmt = g('S1Fmt') === 3 ? S1FMT.LINEAR : g('S1Fmt');
  const s1Dss = g('S1DSS') === 3 ? S1DSS.TERMINATE : g('S1DSS');
  let illegal: string | null = null;
  let s2cfg: S2Config | null = null;
  if (g('V') === 0) illegal = 'V == 0';
  else {
    const rsv = reservedBitsSet(STE_LAYOUT, words, 4);
    if (rsv.length > 0) illegal = `RES0 bits set: ${rsv.join(',')}`;
  }
  if (illegal === null && (s1 || s2)) {
    // §5.2 EATS: 0b10 (split-stage ATS) needs IDR0.NS1ATS == 0; 0b11 is reserved.
    if (g('EATS') === 0b10) illegal = 'EATS == 0b10 (split-stage ATS) with IDR0.NS1ATS == 1';
    else if (g('EATS') === 0b11) illegal = 'EATS reserved';
  }
  if (illegal === null && s1) illegal = checkS1(g, f, s2);
  if (illegal === null && s2) {
    const r = decodeS2(g, f);
    if (typeof r === 'string') illegal = r;
    else s2cfg = r;
  }
  return {
    words, illegal, config, s1, s2,
    s1ContextPtr: g('S1ContextPtr') * 64,
    s1Fmt, s1CdMax: g('S1CDMax'), s1Dss,
    vmid: g('S2VMID'),
    s2cfg,
    privcfg: g('PRIVCFG'),
    instcfg: g('INSTCFG'),
    eats: s1 || s2 ? g('EATS') : 0,
    s1StallDisabled: g('S1STALLD') === 1,
    ppar: g('PPAR') === 1,
  };
}

function checkS1(g: (n: SteField) => number, f: SmmuFeatures, s2: boolean): string | null {
  if (g('S1CDMax') > f.ssidBits) return `S1CDMax ${g('S1CDMax')} > SSIDSIZE ${f.ssidBits}`;
  // S1ContextPtr is an IPA (within IAS) when stage 2 translates, else a PA (within OAS).
  const limit = 2 ** (s2 ? iasBits(f) : f.oas);
  if (g('S1ContextPtr') * 64 >= limit) return 'S1ContextPtr out of range';
  return null;
}

function decodeS2(g: (n: SteField) => number, f: SmmuFeatures): S2Config | string {
  if (g('S2AA64') === 0) return 'S2AA64 == 0: VMSAv8-32 LPAE tables not supported';
  if (g('S2ENDI') !== 0) return 'S2ENDI: big-endian tables not supported';
  const granule = TG0_GRANULE[g('S2TG')]!;
  if (granule === 0) return 'S2TG reserved';
  const ias = iasBits(f);
  const tsz = g('S2T0SZ');
  const min = Math.max(granule === 65536 ? 12 : 16, 64 - ias);
  if (tsz < min || tsz > 39) return `S2T0SZ ${tsz} out of range [${min}, 39]`;
  const ps = Math.min(g('S2PS') === 7 ? 6 : g('S2PS'), OAS_BITS.indexOf(f.oas));
  const oaBits = OAS_BITS[ps]!;
  const ttb = g('S2TTB') * 16;
  if (ttb >= 2 ** oaBits) return 'S2TTB outside the effective S2PS';
  if (ttb >= 2 ** 48 && granule !== 65536) return 'S2TTB beyond 48 bits with a 4K/16K granule';
  const sl0 = g('S2SL0');
  const err = vmsaConfigError({ stage: 2, granule, tsz, sl0, ttb, oaBits });
  if (err !== null) return `stage 2 walk configuration: ${err}`;
  const ha = g('S2HA') === 1;
  return {
    granule, tsz, sl0, ttb, oaBits,
    ha,
    hd: ha && g('S2HD') === 1, // {S2HA,S2HD} == 0b01 behaves as 0b00
    affd: g('S2AFFD') === 1,
    ptw: g('S2PTW') === 1,
    record: g('S2R') === 1,
    stall: g('S2S') === 1,
  };
}

/** A decoded L1STD (§5.1): Span 0 and reserved values 12-31 are invalid. */
export function l1stdSpan(lo: number, hi: number): number {
  const span = getBits64(lo, hi, L1STD_LAYOUT.fields.Span);
  return span >= 12 ? 0 : span;
}

/** L1STD.L2Ptr[55:6] as a byte address. */
export function l1stdL2Ptr(lo: number, hi: number): number {
  return getBits64(lo, hi, L1STD_LAYOUT.fields.L2Ptr) * 64;
}
