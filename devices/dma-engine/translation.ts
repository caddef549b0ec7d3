import type { AtsTranslation, AtsTranslationCompletion, AtsTranslationRequest } from '../../src/pci/ats-messages.ts';
import type { AtsCapability } from '../../src/pci/caps/ats.ts';
import { NO_PASID, type DmaCompletion, type DmaTransaction } from '../../src/pci/transaction.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Atc } from './atc.ts';
import { FAULT_REASON } from './descriptor.ts';
import type { EnginePoint } from './faults.ts';
import { ENGINE_SITE_ACTIONS } from './points.ts';

const PAGE = 4096;
const TWO_32 = 0x1_0000_0000;
/**
 * Translation Requests for one access without a byte moved in between:
 * more than a page-request retry loop needs, so reaching it means the
 * completions contradict the ATC (the access fails ATS_MALFORMED).
 */
const MAX_REQUESTS_WITHOUT_PROGRESS = 16;

/**
 * One DMA access in progress (a descriptor's source read, a completion
 * record write, a dmaRead call...): what to move, how far it got, and why
 * it stopped. Reused across retries; the engine keeps one per step.
 */
export interface Access {
  pasid: number;
  priv: boolean;
  exec: boolean;
  write: boolean;
  addr: number;
  len: number;
  buf: Uint8Array;
  bufOff: number;
  /** Bytes done so far. */
  done: number;
  /** Set by run() on RUN_MISS: the address with no usable ATC entry. */
  missAddr: number;
  /** Set by translate() on T_PAGE: pages (4 KiB, from missAddr's page) the page request group should carry. */
  pages: number;
  /** Set on a fault: FAULT_REASON, the fault's name, where. */
  reason: number;
  fault: string;
  faultAddr: number;
  /** Page request rounds since the access last made progress (bounded by maxPriRetries). */
  priRounds: number;
  progressAt: number;
  /** Translation Requests since the access last made progress (a guard against a translation agent that never helps). */
  requests: number;
  requestsAt: number;
  /**
   * Virtual ns the fabric charged the access and not yet accounted
   * (IOMMU table fetches and walk reads: TranslationAnswer.latencyNs via
   * the transactions, AtsTranslationCompletion.latencyNs); the executor adds
   * it to the descriptor's cost and zeroes it.
   */
  latencyNs: number;
}

export function newAccess(addr: number, len: number, write: boolean, buf: Uint8Array, bufOff = 0): Access {
  return {
    pasid: NO_PASID, priv: false, exec: false, write, addr, len, buf, bufOff, done: 0,
    missAddr: 0, pages: 0, reason: 0, fault: '', faultAddr: 0, priRounds: 0, progressAt: 0, requests: 0, requestsAt: 0, latencyNs: 0,
  };
}

/** Make `a` a fresh access (what newAccess returns), reusing the object. */
export function resetAccess(a: Access, addr: number, len: number, write: boolean, buf: Uint8Array, bufOff = 0): void {
  a.pasid = NO_PASID;
  a.priv = false;
  a.exec = false;
  a.write = write;
  a.addr = addr;
  a.len = len;
  a.buf = buf;
  a.bufOff = bufOff;
  a.done = 0;
  a.missAddr = 0;
  a.pages = 0;
  a.reason = 0;
  a.fault = '';
  a.faultAddr = 0;
  a.priRounds = 0;
  a.progressAt = 0;
  a.requests = 0;
  a.requestsAt = 0;
  a.latencyNs = 0;
}

export function failAccess(a: Access, reason: number, fault: string, addr: number): void {
  a.reason = reason;
  a.fault = fault;
  a.faultAddr = addr;
}

/** run(): the access finished, needs a translation, or faulted. */
export const RUN_DONE = 0;
export const RUN_MISS = 1;
export const RUN_FAULT = 2;
/** translate(): the ATC now holds a usable entry, a page request is needed, the access faulted, the completion was lost. */
export const T_OK = 0;
export const T_PAGE = 1;
export const T_FAULT = 2;
export const T_LOST = 3;

/** What the path needs of its device (the protected PciFunction methods reach it as closures). */
export interface PathHost {
  readonly name: string;
  readonly requesterId: number;
  readonly busMasterEnabled: boolean;
  busMaster(txn: DmaTransaction, buf: Uint8Array, bufOff: number): DmaCompletion;
  atsRequest(req: AtsTranslationRequest): AtsTranslationCompletion;
}

export interface PathOptions {
  /** A Translation Request asks for up to this many STUs from the missing address on (default 1). */
  atsRequestUnits: number;
  /** Largest page request group (pages). */
  maxPrgPages: number;
}

/**
 * The device's bus-master path: every access of the engine and of
 * dmaRead/dmaWrite goes through it. With ATS disabled it issues untranslated
 * requests, page by page (so a fault names its page), and the IOMMU
 * translates. With ATS enabled it translates through the ATC and issues
 * Translated requests (no PASID prefix: the address is already physical);
 * an entry with U=1 makes it issue untranslated requests for that range.
 * The hot path (ATC hit) allocates nothing: one scratch transaction is reused.
 */
export class DmaPath {
  private readonly txn: DmaTransaction = {
    requesterId: 0, pasid: NO_PASID, privileged: false, exec: false, at: 'untranslated', addr: 0, length: 0, write: false, latencyNs: 0,
  };
  readonly atsRequests: Counter;
  readonly bytes: Counter;

  constructor(
    private readonly host: PathHost,
    private readonly atc: Atc,
    private readonly ats: AtsCapability,
    private readonly point: EnginePoint,
    counters: Counters,
    private readonly opts: PathOptions,
  ) {
    this.atsRequests = counters.counter(`${host.name}.ats.requests`);
    this.bytes = counters.counter(`${host.name}.dma.bytes`);
  }

  get atsEnabled(): boolean {
    return this.ats.enabled;
  }

  /** Move as much of the access as the ATC allows, synchronously. */
  run(a: Access): number {
    const atsOn = this.ats.enabled;
    const t = this.txn;
    t.requesterId = this.host.requesterId;
    t.write = a.write;
    while (a.done < a.len) {
      const addr = a.addr + a.done;
      let n = a.len - a.done;
      if (!atsOn) {
        this.untranslated(a);
        n = Math.min(n, PAGE - (addr % PAGE));
        t.addr = addr;
      } else {
        const i = this.atc.lookup(a.pasid, a.priv, addr, a.write, a.exec);
        if (i < 0) {
          a.missAddr = addr;
          return RUN_MISS;
        }
        n = Math.min(n, this.atc.end(i) - addr);
        if (this.atc.untranslatedOnly(i)) {
          this.untranslated(a);
          n = Math.min(n, PAGE - (addr % PAGE));
          t.addr = addr;
        } else {
          t.at = 'translated';
          t.pasid = NO_PASID;
          t.privileged = false;
          t.exec = false;
          t.addr = this.atc.translate(i, addr);
        }
      }
      t.length = n;
      const c = this.host.busMaster(t, a.buf, a.bufOff + a.done);
      if (t.latencyNs !== 0) {
        a.latencyNs += t.latencyNs!;
        t.latencyNs = 0;
      }
      if (c.status !== 'SC') {
        const reason = c.fault === 'BUS_MASTER_DISABLED'
          ? FAULT_REASON.BUS_MASTER_DISABLED
          : c.status === 'UR' ? FAULT_REASON.IOMMU_UR : FAULT_REASON.IOMMU_CA;
        failAccess(a, reason, c.fault, addr);
        return RUN_FAULT;
      }
      a.done += n;
      this.bytes.value += n;
    }
    return RUN_DONE;
  }

  private untranslated(a: Access): void {
    const t = this.txn;
    t.at = 'untranslated';
    t.pasid = a.pasid;
    t.privileged = a.pasid >= 0 && a.priv;
    t.exec = a.pasid >= 0 && a.exec;
  }

  /**
   * Send the Translation Request for `a.missAddr` (aligned down to the STU,
   * up to `atsRequestUnits` STUs but not past the access), validate the
   * completion and fill the ATC with its usable entries.
   */
  translate(a: Access): number {
    const miss = a.missAddr;
    // ATS was turned off while the request waited: the retry goes out untranslated.
    if (!this.ats.enabled) return T_OK;
    if (!this.host.busMasterEnabled) {
      failAccess(a, FAULT_REASON.BUS_MASTER_DISABLED, 'BUS_MASTER_DISABLED', miss);
      return T_FAULT;
    }
    if (a.done !== a.requestsAt) {
      a.requestsAt = a.done;
      a.requests = 0;
    }
    if (++a.requests > MAX_REQUESTS_WITHOUT_PROGRESS) {
      failAccess(a, FAULT_REASON.ATS_MALFORMED, 'ATS_MALFORMED', miss);
      return T_FAULT;
    }
    const stu = this.ats.smallestTranslationUnit;
    const base = Math.floor(miss / stu) * stu;
    const end = Math.min(Math.ceil((a.addr + a.len) / stu) * stu, base + stu * Math.max(1, this.opts.atsRequestUnits));
    this.atsRequests.value++;
    let c = this.host.atsRequest({
      requesterId: this.host.requesterId,
      pasid: a.pasid,
      privileged: a.pasid >= 0 && a.priv,
      exec: a.pasid >= 0 && a.exec,
      addr: base,
      length: Math.max(stu, end - base),
      noWrite: !a.write,
    });
    a.latencyNs += c.latencyNs ?? 0;
    // A Completer Abort cannot be failed again, and a completion without translations has nothing to corrupt.
    const can = c.status === 'CA' ? ENGINE_SITE_ACTIONS.drop : c.entries.length === 0 ? ENGINE_SITE_ACTIONS.dropFail : this.point.actions;
    const pt = this.point;
    // The hook's context only when a hook is armed to read it (two ATS requests per PRI fault).
    const act = pt.check(pt.armed ? { dev: this.host.name, pasid: a.pasid, addr: base } : undefined, can);
    if (act?.kind === 'drop') return T_LOST;
    if (act?.kind === 'fail') c = { status: 'CA', entries: [] };
    if (act?.kind === 'corrupt') c = { status: c.status, entries: c.entries.map((e) => corrupt(e, act.xorLo, act.xorHi ?? 0)) };
    if (c.status !== 'SC') {
      const r = c.status === 'UR' ? FAULT_REASON.ATS_UR : FAULT_REASON.ATS_CA;
      failAccess(a, r, c.status === 'UR' ? 'ATS_UR' : 'ATS_CA', miss);
      return T_FAULT;
    }
    for (const e of c.entries) {
      if (!wellFormed(e, stu)) {
        failAccess(a, FAULT_REASON.ATS_MALFORMED, 'ATS_MALFORMED', miss);
        return T_FAULT;
      }
    }
    let hit: AtsTranslation | undefined;
    for (const e of c.entries) {
      this.atc.insert(a.pasid, a.priv, e);
      if (miss >= e.untranslatedAddr && miss < e.untranslatedAddr + e.size) hit = e;
    }
    if (hit === undefined) {
      failAccess(a, FAULT_REASON.ATS_MALFORMED, 'ATS_MALFORMED', miss);
      return T_FAULT;
    }
    if (grants(hit, a.write, a.exec)) return T_OK;
    // No usable translation: the pages from here on that the completion also refused form the group.
    const accessEnd = a.addr + a.len;
    let pages = 1;
    for (let p = Math.floor(miss / PAGE) * PAGE + PAGE; p < accessEnd && pages < this.opts.maxPrgPages; p += PAGE) {
      const e = c.entries.find((x) => p >= x.untranslatedAddr && p < x.untranslatedAddr + x.size);
      if (e === undefined || grants(e, a.write, a.exec)) break;
      pages++;
    }
    a.pages = pages;
    return T_PAGE;
  }
}

function grants(e: AtsTranslation, write: boolean, exec: boolean): boolean {
  if (e.untranslatedOnly) return true;
  if (!(write ? e.write : e.read)) return false;
  return !exec || e.exec;
}

/** Sizes are powers of two of at least the STU; both addresses aligned to the size. */
function wellFormed(e: AtsTranslation, stu: number): boolean {
  const s = e.size;
  if (!Number.isSafeInteger(s) || s < stu || s < PAGE || 2 ** Math.round(Math.log2(s)) !== s) return false;
  if (!Number.isSafeInteger(e.untranslatedAddr) || e.untranslatedAddr % s !== 0) return false;
  if (e.untranslatedOnly || (!e.read && !e.write)) return true;
  return Number.isSafeInteger(e.translatedAddr) && e.translatedAddr >= 0 && e.translatedAddr % s === 0;
}

function corrupt(e: AtsTranslation, xorLo: number, xorHi: number): AtsTranslation {
  const lo = ((e.translatedAddr % TWO_32) ^ xorLo) >>> 0;
  const hi = ((Math.floor(e.translatedAddr / TWO_32) ^ xorHi) >>> 0) & 0x1fffff;
  return { ...e, translatedAddr: hi * TWO_32 + lo };
}
