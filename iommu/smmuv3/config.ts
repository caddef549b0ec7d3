/**
 * Configuration lookup and the configuration caches (§3.3 "Data structures
 * and translation procedure", §3.3.2 2-level Stream tables, §5.1-§5.4): the
 * StreamID selects an STE through a linear or 2-level Stream table, the
 * SubstreamID (or STE.S1DSS without one) selects a CD through a linear or
 * 2-level CD table. Successfully fetched L1STDs, STEs, L1CDs and CDs are
 * cached in whatever state they are in (V == 0 and ILLEGAL ones included;
 * §5.2.1 permits it) and change only on CMD_CFGI_*: a driver that forgets an
 * invalidation keeps seeing the old configuration. Failed fetches are not
 * cached.
 */
import { readField } from '../../src/hw/layout.ts';
import { NO_PASID } from '../../src/pci/transaction.ts';
import { ACCESS_READ, FaultKind } from '../pgtable/index.ts';
import { L1CD_LAYOUT, decodeCd, type Cd } from './cd.ts';
import { iasBits } from './caps.ts';
import { EVT, EVT_CLASS, type EventInfo } from './event.ts';
import { STRTAB_FMT_2LVL } from './regs.ts';
import { describeStructure, type SmmuCore } from './core.ts';
import { Stage1, Stage2 } from './stage.ts';
import { S1DSS, S1FMT, STE_CONFIG, decodeSte, l1stdL2Ptr, l1stdSpan, type Ste } from './ste.ts';

export const CTX_BYPASS = 0;
export const CTX_ABORT = 1;
export const CTX_TRANSLATE = 2;

/** Everything a transaction of one (StreamID, SubstreamID) needs once its configuration is known. */
export class TransCtx {
  constructor(
    readonly kind: number,
    readonly sid: number,
    /** SubstreamID of the transaction, -1 without one. */
    readonly ssid: number,
    readonly s1: Stage1 | null,
    readonly s2: Stage2 | null,
    readonly privcfg: number,
    readonly instcfg: number,
    /** STE.EATS (§5.2): ATS Translation Requests and Translated transactions allowed when 1. */
    readonly eats: number,
  ) {}
}

interface SteEntry {
  readonly ste: Ste;
  readonly s2: Stage2 | null;
  readonly cds: Map<number, Cd>;
  readonly l1cds: Map<number, number>;
  readonly ctxs: Map<number, TransCtx>;
}

const POW2 = (n: number) => 2 ** Math.min(n, 56);
const align = (a: number, bytes: number) => a - (a % bytes);

export class ConfigCache {
  /** Bumped by every invalidation so holders of a TransCtx know to look it up again. */
  generation = 0;
  /** When resolve() returns null: should the event in `ev` be recorded (else it is suppressed)? */
  faultRecord = true;
  /** Structures read from memory so far (L1STDs, STEs, L1CDs, CDs): what `tableFetchNs` prices. */
  fetches = 0;
  private readonly stes = new Map<number, SteEntry>();
  /** L1STD low/high words by L1 index (packed as lo + hi * 2^32 would lose bits: keep both). */
  private readonly l1stds = new Map<number, [number, number]>();
  private readonly words = new Uint32Array(16);

  constructor(private readonly core: SmmuCore) {}

  /**
   * The context for a transaction from `sid` with `pasid` (NO_PASID for
   * none), or null after filling `ev` with the configuration error or fetch
   * fault that terminates it. Never throws.
   */
  resolve(sid: number, pasid: number, ev: EventInfo): TransCtx | null {
    const ssid = pasid === NO_PASID ? -1 : pasid;
    const se = this.stes.get(sid) ?? this.fetchSte(sid, ssid, ev);
    if (se === null) return null;
    const cached = se.ctxs.get(ssid);
    if (cached !== undefined) return cached;
    const s = se.ste;
    if (s.illegal !== null) return this.fail(ev, EVT.C_BAD_STE, sid, ssid);
    const priv = s.privcfg;
    const inst = s.instcfg;
    let ctx: TransCtx;
    if (s.config === STE_CONFIG.ABORT) ctx = new TransCtx(CTX_ABORT, sid, ssid, null, null, priv, inst, 0);
    else if (!s.s1) {
      // Stage 1 disabled: a SubstreamID is a configuration error (§5.2 S1Fmt).
      if (ssid >= 0) return this.fail(ev, EVT.C_BAD_SUBSTREAMID, sid, ssid);
      ctx = new TransCtx(s.s2 ? CTX_TRANSLATE : CTX_BYPASS, sid, ssid, null, se.s2, priv, inst, s.eats);
    } else {
      let index = ssid;
      if (ssid < 0) {
        if (s.s1CdMax !== 0 && s.s1Dss === S1DSS.TERMINATE) return this.fail(ev, EVT.F_STREAM_DISABLED, sid, ssid);
        if (s.s1CdMax !== 0 && s.s1Dss === S1DSS.BYPASS) {
          ctx = new TransCtx(s.s2 ? CTX_TRANSLATE : CTX_BYPASS, sid, ssid, null, se.s2, priv, inst, s.eats);
          se.ctxs.set(ssid, ctx);
          return ctx;
        }
        index = 0;
      } else {
        if (s.s1CdMax === 0 || ssid >= 2 ** s.s1CdMax) return this.fail(ev, EVT.C_BAD_SUBSTREAMID, sid, ssid);
        if (s.s1Dss === S1DSS.SSID0 && ssid === 0) return this.fail(ev, EVT.F_STREAM_DISABLED, sid, ssid);
      }
      const cd = se.cds.get(index) ?? this.fetchCd(se, sid, ssid, index, ev);
      if (cd === null) return null;
      if (cd.illegal !== null) return this.fail(ev, EVT.C_BAD_CD, sid, ssid);
      // §5.4 CD.S: with STE.S1STALLD == 1 a CD that asks for stalls is ILLEGAL.
      if (cd.stall && s.s1StallDisabled) return this.fail(ev, EVT.C_BAD_CD, sid, ssid);
      const s1 = new Stage1(this.core.stageEnv, cd, s.vmid, se.s2);
      ctx = new TransCtx(CTX_TRANSLATE, sid, ssid, s1, se.s2, priv, inst, s.eats);
    }
    se.ctxs.set(ssid, ctx);
    return ctx;
  }

  /**
   * The STE for `sid` (fetched if not cached), or null after filling `ev`
   * with the fetch fault or StreamID error; an ILLEGAL STE is returned as
   * it is (its `illegal` says why). Used where only the STE matters: ATS
   * Translated transactions and the EATS check of Translation Requests.
   */
  steFor(sid: number, ev: EventInfo): Ste | null {
    const se = this.stes.get(sid) ?? this.fetchSte(sid, -1, ev);
    return se === null ? null : se.ste;
  }

  /** The decoded STE cached for `sid` (tests and debugging). */
  cachedSte(sid: number): Ste | undefined {
    return this.stes.get(sid)?.ste;
  }

  // --- CMD_CFGI_* (§4.3) --------------------------------------------------

  invalidateSte(sid: number, leaf: boolean): number {
    let n = this.stes.delete(sid) ? 1 : 0;
    if (!leaf) n += this.dropL1std(sid) ? 1 : 0;
    this.generation++;
    return n;
  }

  /** CMD_CFGI_STE_RANGE: 2^(range+1) StreamIDs aligned to their size; range 31 is CMD_CFGI_ALL. */
  invalidateRange(sid: number, range: number): number {
    if (range >= 31) return this.invalidateAll();
    const span = 2 ** (range + 1);
    const lo = align(sid, span);
    let n = 0;
    for (const k of [...this.stes.keys()]) if (k >= lo && k < lo + span && this.stes.delete(k)) n++;
    const split = this.split();
    const first = Math.floor(lo / 2 ** split);
    const last = Math.floor((lo + span - 1) / 2 ** split);
    for (const k of [...this.l1stds.keys()]) if (k >= first && k <= last && this.l1stds.delete(k)) n++;
    this.generation++;
    return n;
  }

  invalidateAll(): number {
    const n = this.stes.size + this.l1stds.size;
    this.stes.clear();
    this.l1stds.clear();
    this.generation++;
    return n;
  }

  /** CMD_CFGI_CD: the CD at table index `ssid` cached through `sid` (and its L1CD unless Leaf). */
  invalidateCd(sid: number, ssid: number, leaf: boolean): number {
    const se = this.stes.get(sid);
    this.generation++;
    if (se === undefined) return 0;
    let n = se.cds.delete(ssid) ? 1 : 0;
    if (!leaf) n += this.dropL1cd(se, ssid) ? 1 : 0;
    se.ctxs.clear();
    return n;
  }

  invalidateCdAll(sid: number): number {
    const se = this.stes.get(sid);
    this.generation++;
    if (se === undefined) return 0;
    const n = se.cds.size + se.l1cds.size;
    se.cds.clear();
    se.l1cds.clear();
    se.ctxs.clear();
    return n;
  }

  // --- fetching ----------------------------------------------------------

  private fail(ev: EventInfo, code: number, sid: number, ssid: number): null {
    ev.reset(code, sid, ssid);
    // §7.3.3: C_BAD_STREAMID is recorded only when CR2.RECINVSID == 1.
    this.faultRecord = code !== EVT.C_BAD_STREAMID || this.core.regs.getField('CR2', 'RECINVSID') !== 0;
    return null;
  }

  private fetchFault(ev: EventInfo, code: number, sid: number, ssid: number, addr: number): null {
    this.fail(ev, code, sid, ssid);
    ev.addr2 = addr;
    return null;
  }

  private fetchSte(sid: number, ssid: number, ev: EventInfo): SteEntry | null {
    const r = this.core.regs;
    const f = this.core.features;
    const log2Literal = r.getField('STRTAB_BASE_CFG', 'LOG2SIZE');
    const log2 = Math.min(log2Literal, f.sidBits);
    if (sid >= 2 ** log2) return this.fail(ev, EVT.C_BAD_STREAMID, sid, ssid);
    // ADDR[55:6]; bits above a 52-bit address are ignored.
    const baseAddr = (r.getField('STRTAB_BASE', 'ADDR') % 2 ** (52 - 6)) * 64;
    let steAddr: number;
    if (r.getField('STRTAB_BASE_CFG', 'FMT') === STRTAB_FMT_2LVL) {
      const split = this.split();
      const l1Index = Math.floor(sid / 2 ** split);
      const l1Base = align(baseAddr, Math.max(64, 8 * POW2(Math.max(0, log2Literal - split))));
      let l1 = this.l1stds.get(l1Index);
      if (l1 === undefined) {
        const addr = l1Base + l1Index * 8;
        if (!this.fetch(addr, 2, this.core.points.steFetch, 'L1STD', sid, ssid)) return this.fetchFault(ev, EVT.F_STE_FETCH, sid, ssid, addr);
        l1 = [this.words[0]!, this.words[1]!];
        this.l1stds.set(l1Index, l1);
      }
      const span = l1stdSpan(l1[0], l1[1]);
      const l2Index = sid % 2 ** split;
      if (span === 0 || span > split + 1 || l2Index >= 2 ** (span - 1)) return this.fail(ev, EVT.C_BAD_STREAMID, sid, ssid);
      steAddr = align(l1stdL2Ptr(l1[0], l1[1]), 2 ** (span - 1) * 64) + l2Index * 64;
    } else {
      steAddr = align(baseAddr, POW2(log2Literal + 6)) + sid * 64;
    }
    if (steAddr >= 2 ** f.oas || !this.fetch(steAddr, 16, this.core.points.steFetch, 'STE', sid, ssid)) {
      return this.fetchFault(ev, EVT.F_STE_FETCH, sid, ssid, steAddr);
    }
    const ste = decodeSte(this.words.slice(), f);
    let s2: Stage2 | null = null;
    if (ste.illegal === null && ste.s2cfg !== null) {
      s2 = new Stage2(this.core.stageEnv, ste.s2cfg, ste.vmid);
      s2.sid = sid;
    }
    const se: SteEntry = { ste, s2, cds: new Map(), l1cds: new Map(), ctxs: new Map() };
    this.stes.set(sid, se);
    return se;
  }

  private fetchCd(se: SteEntry, sid: number, ssid: number, index: number, ev: EventInfo): Cd | null {
    const s = se.ste;
    const f = this.core.features;
    let addr: number;
    if (s.s1CdMax === 0) addr = s.s1ContextPtr;
    else if (s.s1Fmt === S1FMT.LINEAR) addr = align(s.s1ContextPtr, 2 ** (s.s1CdMax + 6)) + index * 64;
    else {
      const leafBits = s.s1Fmt === S1FMT.L2_4K ? 6 : 10;
      const l1Index = s.s1CdMax > leafBits ? Math.floor(index / 2 ** leafBits) : 0;
      let l1 = se.l1cds.get(l1Index);
      if (l1 === undefined) {
        const l1Base = align(s.s1ContextPtr, Math.max(64, 8 * 2 ** Math.max(0, s.s1CdMax - leafBits)));
        const r = this.fetchCdWords(se, sid, ssid, l1Base + l1Index * 8, 2, 'L1CD', ev);
        if (r === null) return null;
        // V in bit 0 and L2Ptr[55:12] above it (bits [11:1] are RES0).
        l1 = readField(L1CD_LAYOUT, r, 'V') + readField(L1CD_LAYOUT, r, 'L2Ptr') * 4096;
        se.l1cds.set(l1Index, l1);
      }
      // §5.3.1: an invalid L1CD, or an L2Ptr beyond the IAS/OAS, is C_BAD_SUBSTREAMID for the CD index.
      const l2 = align(l1 - (l1 % 4096), leafBits === 10 ? 65536 : 4096);
      if (l1 % 2 === 0 || l2 >= 2 ** (s.s2 ? iasBits(f) : f.oas)) return this.fail(ev, EVT.C_BAD_SUBSTREAMID, sid, Math.max(ssid, 0));
      addr = l2 + (index % 2 ** leafBits) * 64;
    }
    const w = this.fetchCdWords(se, sid, ssid, align(addr, 64), 16, 'CD', ev);
    if (w === null) return null;
    const cd = decodeCd(w.slice(), f);
    se.cds.set(index, cd);
    return cd;
  }

  /** Read CD-table words at `ipa`, through stage 2 when it translates (CLASS == CD faults). */
  private fetchCdWords(se: SteEntry, sid: number, ssid: number, ipa: number, n: number, kind: string, ev: EventInfo): Uint32Array | null {
    let pa = ipa;
    const s2 = se.s2;
    if (s2 !== null) {
      if (!s2.translate(ipa, ACCESS_READ, true)) {
        const ext = s2.fault === FaultKind.ExternalAbort;
        this.fail(ev, ext ? EVT.F_WALK_EABT : s2FaultCode(s2.fault), sid, ssid);
        ev.s2 = true;
        ev.cls = EVT_CLASS.CD;
        ev.addr2 = ext ? s2.failAddr : ipa;
        this.faultRecord = ext || s2.record;
        return null;
      }
      pa = s2.oa;
    }
    if (pa >= 2 ** this.core.features.oas || !this.fetch(pa, n, this.core.points.cdFetch, kind, sid, ssid)) {
      return this.fetchFault(ev, EVT.F_CD_FETCH, sid, ssid, pa);
    }
    return this.words.subarray(0, n);
  }

  /** Read `n` words at `pa` into this.words; false when the access aborted (injected or real). */
  private fetch(pa: number, n: number, point: SmmuCore['points']['steFetch'], kind: string, sid: number, ssid: number): boolean {
    this.fetches++;
    const a = point.check(point.armed ? { kind, sid, ssid, addr: pa } : undefined);
    let ok = a?.kind !== 'fail';
    const mem = this.core.mem;
    for (let i = 0; ok && i < n; i++) {
      const v = mem.read32Checked(pa + 4 * i);
      if (v < 0) ok = false;
      else this.words[i] = v;
    }
    if (ok && a?.kind === 'corrupt') {
      this.words[0] = (this.words[0]! ^ a.xorLo) >>> 0;
      this.words[1] = (this.words[1]! ^ (a.xorHi ?? 0)) >>> 0;
    }
    const t = this.core.tracer;
    if (t.wants('smmuv3.cfg.fetch')) {
      t.trace('smmuv3.cfg.fetch', this.core.source, { kind, sid, ssid, addr: pa, ok, detail: ok ? describeStructure(kind, this.words.subarray(0, n)) : '' });
    }
    return ok;
  }

  private dropL1std(sid: number): boolean {
    return this.l1stds.delete(Math.floor(sid / 2 ** this.split()));
  }

  /** STRTAB_BASE_CFG.SPLIT: 6, 8 or 10; reserved values behave as 6 (§6.3.25). */
  private split(): number {
    const sp = this.core.regs.getField('STRTAB_BASE_CFG', 'SPLIT');
    return sp === 8 || sp === 10 ? sp : 6;
  }

  private dropL1cd(se: SteEntry, ssid: number): boolean {
    const leafBits = se.ste.s1Fmt === S1FMT.L2_4K ? 6 : 10;
    return se.l1cds.delete(se.ste.s1CdMax > leafBits ? Math.floor(ssid / 2 ** leafBits) : 0);
  }
}

/** Translation-related fault kinds → event numbers (§7.3.13-16). */
export function s2FaultCode(kind: number): number {
  return kind === FaultKind.AccessFlag ? EVT.F_ACCESS
    : kind === FaultKind.Permission ? EVT.F_PERMISSION
      : kind === FaultKind.AddressSize ? EVT.F_ADDR_SIZE
        : kind === FaultKind.ExternalAbort ? EVT.F_WALK_EABT
          : EVT.F_TRANSLATION;
}

