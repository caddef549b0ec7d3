/**
 * ATS Translation Requests (§3.9.1 "ATS Interface", §3.9.1.1 "Responses to
 * ATS Translation Requests", §5.2 STE.EATS, chapter 15 translation
 * procedure; PCIe Base §10.2): an endpoint asks for the translation of an
 * untranslated range and caches the answer in its ATC.
 *
 * - SMMUEN == 0: Unsupported Request, no event.
 * - Configuration errors and fetch faults are recorded as for ordinary
 *   transactions; the request gets UR (CA for a fetch or walk that aborted).
 * - STE.Config abort: UR, no event. STE.Config bypass, or EATS == 0b00: UR
 *   and F_BAD_ATS_TREQ (ATS is "denied as though disabled" on bypass).
 * - Otherwise the request is translated by the same stage 1 / stage 2 walk
 *   and IOTLB as a transaction. Translation-related faults are not recorded
 *   and never stall: the page's entry says R = W = 0 (the endpoint may then
 *   issue a page request). An external abort during the walk is recorded
 *   (F_WALK_EABT) and answered CA.
 * - Each entry is one leaf (the smaller of the two stages' leaves),
 *   size-aligned: R from a read lookup, W from a write lookup unless the
 *   request said No Write (a write lookup updates dirty state under HTTU, so
 *   W is only granted for a page that may be written now), X from an
 *   execute lookup when the PASID prefix asked for it, Priv echoing the
 *   request, G for a global (nG == 0) stage 1 leaf of a request with a
 *   PASID. A stream whose stages are all bypassed (STE.S1DSS == bypass
 *   without stage 2) is answered U = 1: untranslated access only, so its
 *   traffic keeps going through the SMMU (this model's choice).
 * - Entries cover the requested range (at most 32 of them: a Translation
 *   Completion may return fewer than asked; PCIe §10.2.3).
 */
import { NO_PASID } from '../../src/pci/transaction.ts';
import type { AtsTranslation, AtsTranslationCompletion, AtsTranslationRequest } from '../../src/pci/ats-messages.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_READ, ACCESS_WRITE, FaultKind, PERM_UR, PERM_UW } from '../pgtable/index.ts';
import { CTX_BYPASS, type ConfigCache, type TransCtx } from './config.ts';
import type { SmmuCore } from './core.ts';
import { EVT, EVT_CLASS, EventInfo } from './event.ts';
import type { EventQueue } from './queue.ts';
import { STE_CONFIG } from './ste.ts';
import { SMMUV3_SITE_ACTIONS } from './points.ts';
import { remPow2 } from '../pgtable/walk-common.ts';

const PAGE = 4096;
const MAX_ENTRIES = 32;
/** Size of the untranslated-only entries of a bypassed stream. */
const BYPASS_ENTRY = 2 ** 21;
const REFUSED: AtsTranslationCompletion = Object.freeze({ status: 'UR', entries: Object.freeze([]) as unknown as AtsTranslation[] });
const ABORTED: AtsTranslationCompletion = Object.freeze({ status: 'CA', entries: Object.freeze([]) as unknown as AtsTranslation[] });

export interface AtsCounters {
  requests: Counter;
  refused: Counter;
}

export class AtsResponder {
  private readonly ev = new EventInfo();
  private priv = false;
  private instr = false;

  constructor(
    private readonly core: SmmuCore,
    private readonly config: ConfigCache,
    private readonly evtq: EventQueue,
    private readonly enabled: () => boolean,
    private readonly c: AtsCounters,
  ) {}

  translate(req: AtsTranslationRequest): AtsTranslationCompletion {
    this.c.requests.value++;
    const r = this.answer(req);
    const pt = this.core.points.atsTreq;
    const a = pt.check(pt.armed ? { sid: req.requesterId, pasid: req.pasid, addr: req.addr } : undefined, r.entries.length > 0 ? pt.actions : SMMUV3_SITE_ACTIONS.failOnly);
    let out = r;
    if (a?.kind === 'fail') out = ABORTED;
    else if (a?.kind === 'corrupt' && r.entries.length > 0) {
      const e = r.entries[0]!;
      const lo = ((e.translatedAddr % 2 ** 32) ^ a.xorLo) >>> 0;
      const hi = ((Math.floor(e.translatedAddr / 2 ** 32) ^ (a.xorHi ?? 0)) >>> 0) & 0xfffff;
      r.entries[0] = { ...e, translatedAddr: hi * 2 ** 32 + lo };
    }
    if (out.status !== 'SC') this.c.refused.value++;
    const t = this.core.tracer;
    if (t.wants('smmuv3.ats')) {
      const e = out.entries[0];
      t.trace('smmuv3.ats', this.core.source, {
        sid: req.requesterId, ssid: req.pasid, addr: req.addr, len: req.length, status: out.status, entries: out.entries.length,
        pa: e?.translatedAddr ?? 0, size: e?.size ?? 0, perms: e === undefined ? '' : perms(e),
      });
    }
    return out;
  }

  private answer(req: AtsTranslationRequest): AtsTranslationCompletion {
    if (!this.enabled()) return REFUSED;
    const sid = req.requesterId;
    const pasid = req.pasid < 0 ? NO_PASID : req.pasid;
    this.priv = pasid !== NO_PASID && req.privileged;
    this.instr = pasid !== NO_PASID && req.exec;
    const ste = this.config.steFor(sid, this.ev);
    if (ste === null) return this.configError(req);
    if (ste.illegal !== null) {
      this.ev.reset(EVT.C_BAD_STE, sid, pasid);
      this.config.faultRecord = true;
      return this.configError(req);
    }
    if (ste.config === STE_CONFIG.ABORT) return REFUSED;
    if (ste.config === STE_CONFIG.BYPASS || ste.eats === 0) return this.refuse(EVT.F_BAD_ATS_TREQ, req);
    const ctx = this.config.resolve(sid, pasid, this.ev);
    if (ctx === null) return this.configError(req);
    if (ctx.privcfg >= 2) this.priv = ctx.privcfg === 3;
    if (ctx.instcfg >= 2) this.instr = ctx.instcfg === 3;
    // PCIe §10.2.2: the untranslated address is page-aligned (bits [11:0] are not sent).
    let va = req.addr - remPow2(req.addr, PAGE);
    const end = va + Math.max(req.length, PAGE);
    const first = this.entry(ctx, va, req);
    if (first === null) return ABORTED;
    // An array literal of the first entry (an empty one grows to 16 slots on its first push): most requests get one.
    const entries: AtsTranslation[] = [first];
    va = first.untranslatedAddr + first.size;
    while (va < end && entries.length < MAX_ENTRIES) {
      const e = this.entry(ctx, va, req);
      if (e === null) return ABORTED;
      entries.push(e);
      va = e.untranslatedAddr + e.size;
    }
    return { status: 'SC', entries };
  }

  /** The translation of the leaf holding `va`, an R = W = 0 entry for a translation-related fault, null on an abort. */
  private entry(ctx: TransCtx, va: number, req: AtsTranslationRequest): AtsTranslation | null {
    const priv = this.priv;
    if (ctx.kind === CTX_BYPASS) {
      const ua = va - (va % BYPASS_ENTRY);
      return { translatedAddr: ua, untranslatedAddr: ua, size: BYPASS_ENTRY, read: true, write: !req.noWrite, exec: false, priv, untranslatedOnly: true, global: false };
    }
    const pv = priv ? ACCESS_PRIV : 0;
    const s1 = ctx.s1;
    const s2 = ctx.s2;
    let ia = va;
    let size = 2 ** 52;
    let global = false;
    if (s1 !== null) {
      if (!s1.translate(va, ACCESS_READ | pv, ctx.sid, ctx.ssid)) {
        if (s1.s2Fault && s2 !== null) return this.s2Failed(ctx, va, req);
        if (s1.fault === FaultKind.ExternalAbort) return this.walkAbort(ctx, va, req, false, s1.failAddr);
        return noAccess(va, s1.cd.granule, priv);
      }
      // PAN (§5.4): a privileged access to a page unprivileged software may access faults.
      if (s1.cd.pan && priv && (s1.perms & (PERM_UR | PERM_UW)) !== 0) return noAccess(va, s1.cd.granule, priv);
      ia = s1.oa;
      size = s1.size;
      global = s1.global;
    }
    let pa = ia;
    if (s2 !== null) {
      if (!s2.translate(ia, ACCESS_READ, false)) return this.s2Failed(ctx, va, req);
      pa = s2.oa;
      if (s2.size < size) size = s2.size;
    }
    let write = false;
    if (!req.noWrite) {
      write = (s1 === null || s1.translate(va, ACCESS_WRITE | pv, ctx.sid, ctx.ssid)) && (s2 === null || s2.translate(ia, ACCESS_WRITE, false));
    }
    let exec = false;
    if (this.instr) {
      exec = (s1 === null || s1.translate(va, ACCESS_EXEC | pv, ctx.sid, ctx.ssid)) && (s2 === null || s2.translate(ia, ACCESS_EXEC, false));
    }
    const ua = va - remPow2(va, size);
    return {
      translatedAddr: pa - (va - ua), untranslatedAddr: ua, size, read: true, write, exec, priv, untranslatedOnly: false,
      global: ctx.ssid >= 0 && global,
    };
  }

  private s2Failed(ctx: TransCtx, va: number, req: AtsTranslationRequest): AtsTranslation | null {
    const s2 = ctx.s2!;
    if (s2.fault === FaultKind.ExternalAbort) return this.walkAbort(ctx, va, req, true, s2.failAddr);
    return noAccess(va, s2.granule, this.priv);
  }

  /** §7.3.12 F_WALK_EABT: recorded; the request gets CA. */
  private walkAbort(ctx: TransCtx, va: number, req: AtsTranslationRequest, s2: boolean, fetchAddr: number): null {
    const e = this.ev.reset(EVT.F_WALK_EABT, ctx.sid, ctx.ssid);
    this.attrs(e, va, req);
    e.s2 = s2;
    e.cls = EVT_CLASS.TT;
    e.addr2 = fetchAddr;
    this.evtq.record(e);
    return null;
  }

  private refuse(code: number, req: AtsTranslationRequest): AtsTranslationCompletion {
    const e = this.ev.reset(code, req.requesterId, req.pasid < 0 ? -1 : req.pasid);
    this.attrs(e, req.addr, req);
    this.evtq.record(e);
    return REFUSED;
  }

  /** A configuration error or fetch fault (already in this.ev). */
  private configError(req: AtsTranslationRequest): AtsTranslationCompletion {
    const e = this.ev;
    this.attrs(e, req.addr, req);
    if (this.config.faultRecord) this.evtq.record(e);
    else this.evtq.suppressed(e);
    const abort = e.code === EVT.F_STE_FETCH || e.code === EVT.F_CD_FETCH || e.code === EVT.F_WALK_EABT;
    return abort ? ABORTED : REFUSED;
  }

  private attrs(e: EventInfo, addr: number, req: AtsTranslationRequest): void {
    e.inputAddr = addr;
    e.read = req.noWrite;
    e.priv = this.priv;
    e.instr = this.instr;
  }
}

/** An entry granting nothing (R = W = 0) for the granule page holding `va`. */
function noAccess(va: number, granule: number, priv: boolean): AtsTranslation {
  const ua = va - remPow2(va, granule);
  return { translatedAddr: 0, untranslatedAddr: ua, size: granule, read: false, write: false, exec: false, priv, untranslatedOnly: false, global: false };
}

function perms(e: AtsTranslation): string {
  return (e.read ? 'r' : '-') + (e.write ? 'w' : '-') + (e.exec ? 'x' : '-') + (e.untranslatedOnly ? 'U' : '') + (e.global ? 'G' : '');
}
