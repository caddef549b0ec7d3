/**
 * The transaction path (§3.3 "Data structures and translation procedure",
 * §3.12 "Fault models, recording and reporting", §5.5 "Fault configuration"):
 * SMMUEN/GBPA, configuration lookup, stage 1 and stage 2 through the IOTLB,
 * and the record, stall or terminate decision for every fault. ATS
 * Translated transactions (§3.9.1) are checked against STE.EATS when
 * SMMU_CR0.ATSCHK == 1 and otherwise pass untranslated; ATS Translation
 * Requests are answered by ats.ts, not here.
 *
 * A transaction whose configuration is cached and whose translation is in
 * the IOTLB creates no objects and touches no BigInt.
 */
import { NO_PASID, type DmaTransaction } from '../../src/pci/transaction.ts';
import type { TranslationAnswer } from '../../src/pci/remapper.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_WRITE, FaultKind, PERM_UR, PERM_UW } from '../pgtable/index.ts';
import { iasBits } from './caps.ts';
import { CTX_ABORT, CTX_BYPASS, ConfigCache, s2FaultCode, type TransCtx } from './config.ts';
import type { SmmuCore } from './core.ts';
import { EVT, EVT_CLASS, EventInfo, eventName } from './event.ts';
import type { EventQueue } from './queue.ts';
import type { Stage2 } from './stage.ts';
import { STALL_RETRY, STALL_TERMINATE, type StallTable } from './stall.ts';
import { STE_CONFIG, type Ste } from './ste.ts';

/** F_UUT Reason values (IMPLEMENTATION DEFINED, §7.3.2): a Translation Request sent as a memory transaction. */
export const UUT_REASON = { ATS_TRANSLATION_REQUEST: 1, ATS_TRANSLATED: 2 } as const;
/** Retries of one transaction after CMD_RESUME before it is aborted (a guard against resume loops). */
const MAX_STALL_RETRIES = 8;

const BIG = 2 ** 53;
// Module-local copies: imported bindings are live (a getter per access under
// some loaders), and these are read on every transaction.
const NONE = NO_PASID;
const ABORT = CTX_ABORT;
const BYPASS = CTX_BYPASS;
const WRITE = ACCESS_WRITE;
const EXEC = ACCESS_EXEC;
const PRIV = ACCESS_PRIV;
const USER_RW = PERM_UR | PERM_UW;
const PERMISSION = FaultKind.Permission;

export interface TranslatorCounters {
  translations: Counter;
  faults: Counter;
}

export class Translator {
  /** SMMU_CR0ACK.SMMUEN and SMMU_GBPA.ABORT as last written (kept here so the hot path reads no register). */
  enabled = false;
  gbpaAbort = false;
  /** SMMU_CR0ACK.ATSCHK: check ATS Translated transactions against STE.EATS. */
  atsCheck = false;
  private readonly ev = new EventInfo();
  private stallDepth = 0;
  private lastSid = -1;
  private lastPasid = -2;
  private lastGen = -1;
  private lastCtx: TransCtx | null = null;
  private readonly oasLimit: number;
  private readonly iasLimit: number;
  // Post-override attributes of the transaction in flight.
  private priv = false;
  private instr = false;

  constructor(
    private readonly core: SmmuCore,
    private readonly config: ConfigCache,
    private readonly evtq: EventQueue,
    private readonly c: TranslatorCounters,
    private readonly stalls: StallTable,
  ) {
    this.oasLimit = 2 ** core.features.oas;
    this.iasLimit = 2 ** iasBits(core.features);
  }

  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    this.c.translations.value++;
    if (txn.at !== 'untranslated') return txn.at === 'translated' ? this.translated(txn, addr, out) : this.unsupported(txn, addr, out);
    if (!this.enabled) {
      // §6.3.9.6: SMMUEN == 0, GBPA decides (no events are recorded).
      if (this.gbpaAbort) return this.terminate(txn, addr, out, txn.pasid, 'GBPA_ABORT', true);
      out.pa = addr;
      out.length = BIG;
      return true;
    }
    const sid = txn.requesterId;
    const pasid = txn.pasid;
    let ctx = this.lastCtx;
    if (ctx === null || sid !== this.lastSid || pasid !== this.lastPasid || this.lastGen !== this.config.generation) {
      ctx = this.config.resolve(sid, pasid, this.ev);
      if (ctx === null) return this.configFault(txn, addr, out);
      this.lastCtx = ctx;
      this.lastSid = sid;
      this.lastPasid = pasid;
      this.lastGen = this.config.generation;
    }
    // Attributes: PRIV/INST from the PASID prefix (none without one), then the STE overrides (§13.1).
    let priv = pasid !== NONE && txn.privileged;
    let instr = pasid !== NONE && txn.exec && !txn.write;
    if (ctx.privcfg >= 2) priv = ctx.privcfg === 3;
    if (ctx.instcfg >= 2 && !txn.write) instr = ctx.instcfg === 3;
    this.priv = priv;
    this.instr = instr;
    const access = (txn.write ? WRITE : 0) | (instr ? EXEC : 0) | (priv ? PRIV : 0);

    if (ctx.kind === ABORT) return this.terminate(txn, addr, out, ctx.ssid, 'STE_ABORT', true);
    if (ctx.kind === BYPASS) {
      if (addr >= this.oasLimit) return this.addrSize(ctx, txn, addr, out);
      out.pa = addr;
      out.length = this.oasLimit - addr;
      return true;
    }
    let ia = addr;
    let avail = BIG;
    const s1 = ctx.s1;
    if (s1 !== null) {
      if (!s1.translate(addr, access, sid, ctx.ssid)) return this.s1Fault(ctx, txn, addr, out, s1.fault, s1.s2Fault);
      // PAN (§5.4): privileged data access to a page unprivileged software may access.
      if (s1.cd.pan && priv && !instr && (s1.perms & USER_RW) !== 0) {
        return this.s1Fault(ctx, txn, addr, out, PERMISSION, false);
      }
      ia = s1.oa;
      avail = s1.avail;
    } else if (addr >= this.iasLimit) {
      return this.addrSize(ctx, txn, addr, out);
    }
    const s2 = ctx.s2;
    if (s2 !== null) {
      if (!s2.translate(ia, access, false)) return this.s2Fault(ctx, s2, txn, addr, out, EVT_CLASS.IN, ia);
      ia = s2.oa;
      if (s2.avail < avail) avail = s2.avail;
    }
    out.pa = ia;
    out.length = avail;
    return true;
  }

  /**
   * An ATS Translated transaction (§3.9.1, SMMU_CR0.ATSCHK): with SMMUEN == 0
   * GBPA applies; with ATSCHK == 0 it passes without a Stream table lookup;
   * with ATSCHK == 1 its STE must allow ATS (EATS == 0b01 on a translating
   * Config), else F_TRANSL_FORBIDDEN. Config abort terminates without an event.
   */
  private translated(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    if (!this.enabled || this.atsCheck) {
      if (!this.enabled) {
        if (this.gbpaAbort) return this.terminate(txn, addr, out, NONE, 'GBPA_ABORT', true);
      } else {
        const e = this.ev;
        this.priv = false;
        this.instr = false;
        const ste: Ste | null = this.config.steFor(txn.requesterId, e);
        if (ste === null) {
          this.attrs(e, txn, addr);
          this.raise(e, this.config.faultRecord);
          return this.terminate(txn, addr, out, NONE, eventName(e.code), true);
        }
        if (ste.config === STE_CONFIG.ABORT && ste.illegal === null) return this.terminate(txn, addr, out, NONE, 'STE_ABORT', true);
        const code = ste.illegal !== null ? EVT.C_BAD_STE : ste.config === STE_CONFIG.BYPASS || ste.eats === 0 ? EVT.F_TRANSL_FORBIDDEN : 0;
        if (code !== 0) {
          this.attrs(e.reset(code, txn.requesterId, -1), txn, addr);
          this.raise(e, true);
          return this.terminate(txn, addr, out, NONE, eventName(code), true);
        }
      }
    }
    out.pa = addr;
    out.length = BIG;
    return true;
  }

  /** Forget the one-entry context cache (SMMUEN changes). */
  forget(): void {
    this.lastCtx = null;
  }

  // --- faults -------------------------------------------------------------

  private event(code: number, ctx: TransCtx, txn: DmaTransaction, addr: number): EventInfo {
    const e = this.ev.reset(code, ctx.sid, ctx.ssid);
    this.attrs(e, txn, addr);
    return e;
  }

  private attrs(e: EventInfo, txn: DmaTransaction, addr: number): void {
    e.inputAddr = addr;
    e.read = !txn.write;
    e.priv = this.priv;
    e.instr = this.instr;
  }

  private raise(e: EventInfo, record: boolean): void {
    if (record) this.evtq.record(e);
    else this.evtq.suppressed(e);
  }

  /** A configuration error or fetch fault from ConfigCache.resolve (already in this.ev). */
  private configFault(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    const e = this.ev;
    this.priv = txn.pasid !== NO_PASID && txn.privileged;
    this.instr = txn.pasid !== NO_PASID && txn.exec && !txn.write;
    this.attrs(e, txn, addr);
    this.raise(e, this.config.faultRecord);
    return this.terminate(txn, addr, out, e.ssid, eventName(e.code), true);
  }

  /** Stage 1 (or a nested walk's stage 2) fault: CD.A/CD.R for stage 1, STE.S2R and abort for stage 2. */
  private s1Fault(ctx: TransCtx, txn: DmaTransaction, addr: number, out: TranslationAnswer, kind: number, nested: boolean): boolean {
    const s1 = ctx.s1!;
    if (nested && ctx.s2 !== null) return this.s2Fault(ctx, ctx.s2, txn, addr, out, EVT_CLASS.TT, s1.s2Addr);
    if (kind === FaultKind.ExternalAbort) {
      const e = this.event(EVT.F_WALK_EABT, ctx, txn, addr);
      e.cls = EVT_CLASS.TT;
      e.addr2 = s1.failAddr;
      this.raise(e, true);
      return this.terminate(txn, addr, out, ctx.ssid, 'F_WALK_EABT', true);
    }
    const e = this.event(s2FaultCode(kind), ctx, txn, addr);
    e.cls = EVT_CLASS.IN;
    if (s1.cd.stall) return this.stall(e, txn, addr, out, ctx.ssid, s1.cd.abort, s1.cd.granule);
    this.raise(e, s1.cd.record);
    return this.terminate(txn, addr, out, ctx.ssid, eventName(e.code), s1.cd.abort, s1.cd.granule);
  }

  /** Stage 2 fault: for the input IPA (CLASS IN) or a stage 1 table address (CLASS TT). Always aborts. */
  private s2Fault(ctx: TransCtx, s2: Stage2, txn: DmaTransaction, addr: number, out: TranslationAnswer, cls: number, ipa: number): boolean {
    const ext = s2.fault === FaultKind.ExternalAbort;
    const e = this.event(ext ? EVT.F_WALK_EABT : s2FaultCode(s2.fault), ctx, txn, addr);
    e.s2 = true;
    e.cls = cls;
    e.addr2 = ext ? s2.failAddr : ipa;
    e.ttRead = !s2.write;
    if (!ext && s2.stall) return this.stall(e, txn, addr, out, ctx.ssid, true, s2.granule);
    this.raise(e, ext || s2.record);
    return this.terminate(txn, addr, out, ctx.ssid, eventName(e.code), true);
  }

  /**
   * §3.12.2: hold the transaction. The event is recorded with Stall = 1 and a
   * STAG whatever CD.R / STE.S2R say; if it cannot be recorded (queue
   * disabled, full, or the write aborted) or no STAG is free, the transaction
   * is terminated instead. Then wait (stall.ts) for CMD_RESUME or
   * CMD_STALL_TERM: retry, or terminate (abort, or as `abortCfg` says for
   * Ac = 0, Ab = 0), or abort after the stall timeout.
   */
  private stall(e: EventInfo, txn: DmaTransaction, addr: number, out: TranslationAnswer, ssid: number, abortCfg: boolean, granule: number): boolean {
    const fault = eventName(e.code);
    const st = this.stallDepth < MAX_STALL_RETRIES ? this.stalls.begin(e.sid) : null;
    if (st === null) {
      this.raise(e, true);
      return this.terminate(txn, addr, out, ssid, fault, true);
    }
    e.stall = true;
    e.stag = st.stag;
    if (this.evtq.record(e) !== 'recorded') {
      this.stalls.cancel(st);
      return this.terminate(txn, addr, out, ssid, fault, true);
    }
    this.stalls.trace(st, 'stalled');
    const result = this.stalls.wait(st);
    // Other transactions ran meanwhile (and may have used `out` and this object's scratch state).
    out.discard = false;
    if (result === STALL_RETRY) {
      this.stallDepth++;
      try {
        return this.translate(txn, addr, out);
      } finally {
        this.stallDepth--;
      }
    }
    return this.terminate(txn, addr, out, ssid, fault, result === STALL_TERMINATE ? abortCfg : true, granule);
  }

  /** Stage 1 bypassed and the input address beyond IAS (§7.3.14: S2 == 0, CLASS == IN). */
  private addrSize(ctx: TransCtx, txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    const e = this.event(EVT.F_ADDR_SIZE, ctx, txn, addr);
    e.cls = EVT_CLASS.IN;
    this.raise(e, true);
    return this.terminate(txn, addr, out, ctx.ssid, 'F_ADDR_SIZE', true);
  }

  /** A Translation Request issued as a memory transaction (Translation Requests arrive through atsTranslate()). */
  private unsupported(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    const ssid = txn.pasid === NO_PASID ? -1 : txn.pasid;
    const e = this.ev.reset(EVT.F_UUT, txn.requesterId, ssid);
    this.priv = ssid >= 0 && txn.privileged;
    this.instr = ssid >= 0 && txn.exec && !txn.write;
    this.attrs(e, txn, addr);
    e.reason = UUT_REASON.ATS_TRANSLATION_REQUEST;
    this.raise(e, true);
    return this.terminate(txn, addr, out, ssid, 'F_UUT', true);
  }

  /**
   * End a faulting piece: abort (UR with the fault's name), or with CD.A == 0
   * complete it as RAZ/WI up to the end of the granule page (§5.5).
   */
  private terminate(txn: DmaTransaction, addr: number, out: TranslationAnswer, ssid: number, fault: string, abort: boolean, granule = 4096): boolean {
    this.c.faults.value++;
    const t = this.core.tracer;
    if (t.wants('smmuv3.fault')) {
      t.trace('smmuv3.fault', this.core.source, {
        sid: txn.requesterId, ssid: ssid === NO_PASID ? -1 : ssid, addr, write: txn.write, fault, action: abort ? 'abort' : 'raz-wi',
      });
    }
    out.fault = fault;
    if (abort) {
      out.status = 'UR';
      return false;
    }
    out.status = 'SC';
    out.discard = true;
    out.pa = 0;
    out.length = granule - (addr % granule);
    return true;
  }
}
