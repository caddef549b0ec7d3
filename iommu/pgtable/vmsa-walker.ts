/**
 * VMSAv8-64 table walk, stage 1 or stage 2, as an SMMUv3 or CPU MMU performs
 * it (Arm ARM D8.2 "Translation process", D8.4 "Memory access control",
 * D8.4.5 hardware AF/dirty updates). One region per walker (TTB0 style):
 * inputs are [0, 2^(64-TxSZ)).
 */
import { fieldGet } from '../../src/hw/layout.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { ACCESS_EXEC, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UW, PERM_UX, PERM_W, PERM_X, permits, type PageTableWalker, type TableAddrTranslator, type WalkResult } from './types.ts';
import {
  D_AF,
  D_ATTRINDX,
  D_MEMATTR,
  D_AP1,
  D_AP2,
  D_NG,
  D_S2AP_R,
  D_S2AP_W,
  D_TYPE,
  D_VALID,
  DH_APTABLE0,
  DH_APTABLE1,
  DH_DBM,
  DH_PXN,
  DH_PXNTABLE,
  DH_S2_XN,
  DH_UXN,
  DH_UXNTABLE,
  S2_XN_SHIFT,
  VMSA_PS_BITS,
  blockAllowed,
  granuleShift,
  levelShift,
  s1StartLevel,
  s2StartLevel,
  vmsaDescAddr,
  type VmsaAddrFormat,
  type VmsaGranule,
} from './vmsa-layout.ts';
import { DescFetcher, POW2, inRange, remPow2, tableIndex } from './walk-common.ts';

export interface VmsaWalkConfig {
  stage: 1 | 2;
  granule: VmsaGranule;
  /** T0SZ / S2T0SZ: the input range is 64 - tsz bits. */
  tsz: number;
  /** Stage 2: VTCR.SL0 / STE.S2SL0. */
  sl0?: number;
  /** Stage 2, 4K with DS: VTCR.SL2 (start at level -1). */
  sl2?: boolean;
  /** Table base as an address (not the TTBR encoding); an IPA when nested. */
  ttb: number;
  /** Output address size from IPS/PS/OAS, in bits (one of VMSA_PS_BITS). */
  oaBits: number;
  /** TCR.DS: FEAT_LPA2 descriptors (4K/16K, 52-bit). */
  ds?: boolean;
  /** Implementation has 52-bit PA: allows 64K level-1 blocks. Default: oaBits === 52. */
  pa52?: boolean;
  /** Hardware access flag update (TCR.HA / CD.HA / STE.S2HA). */
  ha?: boolean;
  /** Hardware dirty state via DBM (TCR.HD / CD.HD / STE.S2HD); needs ha. */
  hd?: boolean;
  /** Stage 1: hierarchical permissions disabled (TCR.HPD / CD.HAD). */
  hpd?: boolean;
  /** Stage 1: writable implies execute-never (SCTLR.WXN / CD.WXN). */
  wxn?: boolean;
  /** Stage 2: FEAT_XNX, XN[1:0] distinguishes EL0/EL1 execute; else only XN[1] counts. */
  xnx?: boolean;
  /** Nested: translate every table address before it is read or written. */
  tableAddrTranslator?: TableAddrTranslator;
}

/** Checked, derived walk parameters; null fields never escape validation. */
interface Params {
  pageShift: number;
  stride: number;
  inputBits: number;
  oaBits: number;
  startLevel: number;
  startEntries: number;
  ttb: number;
  addr: VmsaAddrFormat;
  ds: boolean;
  pa52: boolean;
}

/** Why `cfg` cannot be walked, or null. A model raises C_BAD_CD/C_BAD_STE on it. */
export function vmsaConfigError(cfg: VmsaWalkConfig): string | null {
  const d = derive(cfg);
  return typeof d === 'string' ? d : null;
}

function derive(cfg: VmsaWalkConfig): Params | string {
  const g = cfg.granule;
  if (g !== 4096 && g !== 16384 && g !== 65536) return `bad granule ${String(g)}`;
  const pageShift = granuleShift(g);
  const stride = pageShift - 3;
  const ds = cfg.ds === true && g !== 65536;
  if (!VMSA_PS_BITS.includes(cfg.oaBits)) return `bad output size ${cfg.oaBits}`;
  // Without DS, 4K/16K descriptors cannot hold OA[51:48]: PS=52 acts as 48.
  const oaBits = !ds && g !== 65536 ? Math.min(cfg.oaBits, 48) : cfg.oaBits;
  const inputBits = 64 - cfg.tsz;
  const maxIn = ds || g === 65536 ? 52 : 48;
  if (!Number.isInteger(cfg.tsz) || inputBits > maxIn || inputBits < 25) return `TxSZ ${cfg.tsz} out of range`;
  let startLevel: number;
  if (cfg.stage === 1) {
    startLevel = s1StartLevel(g, inputBits);
  } else {
    const s = s2StartLevel(g, cfg.sl0 ?? 0, cfg.sl2 === true, ds, inputBits);
    if (s === null) return `SL0 ${cfg.sl0 ?? 0} inconsistent with ${inputBits}-bit IPA`;
    startLevel = s;
  }
  const startEntries = POW2[inputBits - levelShift(pageShift, startLevel)]!;
  if (!Number.isFinite(cfg.ttb) || cfg.ttb < 0 || !Number.isInteger(cfg.ttb)) return 'bad TTB';
  // The table base is aligned to the start table's size; lower bits are RES0, ignored.
  const rootBytes = startEntries * 8;
  const ttb = cfg.ttb - (cfg.ttb % rootBytes);
  const pa52 = cfg.pa52 ?? cfg.oaBits === 52;
  const addr = { pageShift, ds, oa52Lpa64k: g === 65536 && oaBits === 52 };
  return { pageShift, stride, inputBits, oaBits, startLevel, startEntries, ttb, addr, ds, pa52 };
}

export class VmsaWalker implements PageTableWalker {
  private readonly fetcher: DescFetcher;
  private p: Params | null = null;
  private cfg!: VmsaWalkConfig;
  /** Why the current configuration faults every walk, or null. */
  configError: string | null = null;

  constructor(mem: PhysMem, cfg: VmsaWalkConfig) {
    this.fetcher = new DescFetcher(mem, undefined);
    this.configure(cfg);
  }

  get format(): string {
    return `vmsav8-s${this.cfg.stage}-${this.cfg.granule / 1024}k`;
  }

  /** Re-point the walker (a new CD/STE); returns the configuration error or null. */
  configure(cfg: VmsaWalkConfig): string | null {
    this.cfg = cfg;
    const d = derive(cfg);
    this.p = typeof d === 'string' ? null : d;
    this.configError = typeof d === 'string' ? d : null;
    this.fetcher.translator = cfg.tableAddrTranslator;
    return this.configError;
  }

  get startLevel(): number {
    return this.p?.startLevel ?? 0;
  }

  walk(ia: number, access: number, r: WalkResult): boolean {
    r.reset();
    const p = this.p;
    // A bad configuration and an input outside TxSZ are both level-0 translation faults (D8.2.7).
    if (p === null || !inRange(ia, p.inputBits)) return r.failed(FaultKind.Translation, 0);
    const cfg = this.cfg;
    const stage1 = cfg.stage === 1;
    const oaLimit = POW2[p.oaBits]!;
    if (p.ttb >= oaLimit) return r.failed(FaultKind.AddressSize, 0);

    let table = p.ttb;
    let entries = p.startEntries;
    // Accumulated table attributes (stage 1 hierarchical permissions).
    let apTable0 = false;
    let apTable1 = false;
    let uxnTable = false;
    let pxnTable = false;
    const f = this.fetcher;

    for (let level = p.startLevel; level <= 3; level++) {
      const shift = levelShift(p.pageShift, level);
      const descAddr = table + tableIndex(ia, shift, entries) * 8;
      if (!f.fetch(descAddr, level, r)) return false;
      const lo = f.lo;
      const hi = f.hi;
      const isTableOrPage = (lo & D_TYPE) !== 0;
      if ((lo & D_VALID) === 0 || (level === 3 && !isTableOrPage)) {
        return r.failed(FaultKind.Translation, level);
      }
      if (!isTableOrPage && !blockAllowed(cfg.granule, level, p.ds, p.pa52)) {
        return r.failed(FaultKind.Translation, level);
      }
      const out = vmsaDescAddr(lo, hi, p.addr);
      if (out >= oaLimit) return r.failed(FaultKind.AddressSize, level);

      if (isTableOrPage && level < 3) {
        if (stage1 && cfg.hpd !== true) {
          apTable0 ||= (hi & DH_APTABLE0) !== 0;
          apTable1 ||= (hi & DH_APTABLE1) !== 0;
          uxnTable ||= (hi & DH_UXNTABLE) !== 0;
          pxnTable ||= (hi & DH_PXNTABLE) !== 0;
        }
        table = out;
        entries = POW2[p.stride]!;
        continue;
      }

      // Leaf. Prepare hardware updates; they are written only if no fault follows.
      let newLo = lo;
      if ((lo & D_AF) === 0) {
        if (cfg.ha !== true) return r.failed(FaultKind.AccessFlag, level);
        newLo |= D_AF;
      }
      const isWrite = (access & ACCESS_WRITE) !== 0 && (access & ACCESS_EXEC) === 0;
      if (cfg.ha === true && cfg.hd === true && isWrite && (hi & DH_DBM) !== 0) {
        newLo = stage1 ? newLo & ~D_AP2 : newLo | D_S2AP_W;
      }
      const perms = stage1
        ? s1Perms(newLo, hi, apTable0, apTable1, uxnTable, pxnTable, cfg.wxn === true)
        : s2Perms(newLo, hi, cfg.xnx === true);
      if (!permits(perms, access)) return r.failed(FaultKind.Permission, level);
      if (newLo !== lo) {
        if (!f.writeLo(descAddr, f.pa, newLo, level, r)) return false;
      }

      const pageSize = POW2[shift]!;
      const base = out - (out % pageSize); // block OA bits below the block size are RES0
      r.outputAddr = base + remPow2(ia, pageSize);
      r.pageSize = pageSize;
      r.level = level;
      r.perms = perms;
      r.descLo = newLo >>> 0;
      r.descHi = hi;
      r.attrs = fieldGet(stage1 ? D_ATTRINDX : D_MEMATTR, newLo);
      r.nonGlobal = stage1 && (newLo & D_NG) !== 0;
      return true;
    }
    // Unreachable: level 3 always ends the loop; kept as a bound for garbage.
    return r.failed(FaultKind.Translation, 3);
  }
}

/**
 * Stage 1 permissions for a two-privilege (EL1&0) regime, D8.4.1: AP[2:1]
 * with APTable overrides, UXN/PXN with table overrides, EL0-writable implies
 * PXN, and WXN.
 */
function s1Perms(
  lo: number,
  hi: number,
  apTable0: boolean,
  apTable1: boolean,
  uxnTable: boolean,
  pxnTable: boolean,
  wxn: boolean,
): number {
  const ro = (lo & D_AP2) !== 0 || apTable1;
  const el0 = (lo & D_AP1) !== 0 && !apTable0;
  let perms = PERM_R;
  if (!ro) perms |= PERM_W;
  if (el0) perms |= ro ? PERM_UR : PERM_UR | PERM_UW;
  const userWritable = el0 && !ro;
  const uxn = (hi & DH_UXN) !== 0 || uxnTable || (wxn && userWritable);
  const pxn = (hi & DH_PXN) !== 0 || pxnTable || userWritable || (wxn && !ro);
  if (!uxn) perms |= PERM_UX;
  if (!pxn) perms |= PERM_X;
  return perms;
}

/** Stage 2 permissions, D8.4.3: S2AP read/write; XN[1:0] per FEAT_XNX. */
function s2Perms(lo: number, hi: number, xnx: boolean): number {
  let perms = 0;
  if ((lo & D_S2AP_R) !== 0) perms |= PERM_R | PERM_UR;
  if ((lo & D_S2AP_W) !== 0) perms |= PERM_W | PERM_UW;
  const xn = (hi & DH_S2_XN) >>> S2_XN_SHIFT;
  if (xnx) {
    // 00: both, 01: EL0 only (PXN), 10: neither, 11: EL1 only (UXN).
    if (xn === 0 || xn === 3) perms |= PERM_X;
    if (xn === 0 || xn === 1) perms |= PERM_UX;
  } else if ((xn & 2) === 0) {
    perms |= PERM_X | PERM_UX;
  }
  return perms;
}
