import type { Board } from '../../../machines/board.ts';
import type {
  AtsInvalidationRequest,
  AtsTranslation,
  AtsTranslationAgent,
  AtsTranslationCompletion,
  AtsTranslationRequest,
  PageRequestMessage,
  PrgResponseCode,
} from '../../../src/pci/ats-messages.ts';
import type { DmaRemapper, TranslationAnswer } from '../../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../../src/pci/transaction.ts';

const PAGE = 4096;

export interface Pte {
  pa: number;
  read: boolean;
  write: boolean;
}

/**
 * A translation agent for the DMA engine's tests, standing in for the
 * SMMUv3/VT-d models: per (requester ID, PASID) a Map from I/O page to
 * physical page. Untranslated requests are translated (F_TRANSLATION /
 * F_PERMISSION aborts), Translated requests pass through while `atsAllowed`,
 * MSI writes to the interrupt doorbell pass through untranslated,
 * Translation Requests are answered with one 4 KiB entry per page (R=W=0
 * where nothing is mapped), and page requests are answered `responseDelayNs`
 * later, per group, by `policy` (by default: map a fresh zeroed page, or make
 * the page writable, and answer Success). Nothing here invalidates the
 * device's ATC by itself: tests call `invalidate`, as a driver must.
 */
export class TestAgent implements DmaRemapper, AtsTranslationAgent {
  readonly tables = new Map<string, Map<number, Pte>>();
  readonly pageRequests: (PageRequestMessage & { time: number })[] = [];
  readonly responses: { rid: number; prg: number; pasid: number; code: PrgResponseCode; time: number }[] = [];
  readonly invCompletions: { rid: number; itags: number; cc: number; time: number }[] = [];
  readonly translationRequests: AtsTranslationRequest[] = [];
  atsAllowed = true;
  autoRespond = true;
  /** On Success, map the requested pages (false: answer Success and map nothing). */
  mapOnSuccess = true;
  responseDelayNs = 2000;
  /** Decides a group's response; the default maps the pages and answers success. */
  policy: (group: PageRequestMessage[]) => PrgResponseCode = () => 'success';
  /** Replace the answer to a Translation Request (return undefined for the normal one). */
  translateHook: ((req: AtsTranslationRequest) => AtsTranslationCompletion | undefined) | undefined;
  private readonly open = new Map<string, PageRequestMessage[]>();
  private nextFree: number;

  constructor(private readonly board: Board, freePoolOffset = 0x200_0000) {
    this.nextFree = board.ramAddress(freePoolOffset);
  }

  private table(rid: number, pasid: number): Map<number, Pte> {
    const k = `${rid}/${pasid}`;
    let t = this.tables.get(k);
    if (t === undefined) this.tables.set(k, (t = new Map()));
    return t;
  }

  map(rid: number, pasid: number, iova: number, pa: number, len: number, perms: 'r' | 'rw' = 'rw'): void {
    const t = this.table(rid, pasid);
    for (let o = 0; o < len; o += PAGE) t.set((iova + o) / PAGE, { pa: pa + o, read: true, write: perms === 'rw' });
  }

  unmap(rid: number, pasid: number, iova: number, len: number): void {
    const t = this.table(rid, pasid);
    for (let o = 0; o < len; o += PAGE) t.delete((iova + o) / PAGE);
  }

  lookup(rid: number, pasid: number, addr: number): Pte | undefined {
    return this.tables.get(`${rid}/${pasid}`)?.get(Math.floor(addr / PAGE));
  }

  /** A fresh, zeroed physical page. */
  allocPage(): number {
    const pa = this.nextFree;
    this.nextFree += PAGE;
    return pa;
  }

  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    if (txn.at === 'translated') {
      if (!this.atsAllowed) return fail(out, 'UR', 'ATS_TRANSLATED_DENIED');
      out.pa = addr;
      out.length = PAGE - (addr % PAGE);
      return true;
    }
    if (txn.at !== 'untranslated') return fail(out, 'UR', 'BAD_AT');
    if (txn.write && this.board.msi.contains(addr)) {
      // The interrupt doorbell is reachable as it is (the kernel maps it for MSIs).
      out.pa = addr;
      out.length = 4;
      return true;
    }
    const pte = this.lookup(txn.requesterId, txn.pasid, addr);
    if (pte === undefined) return fail(out, 'UR', 'F_TRANSLATION');
    if (txn.write ? !pte.write : !pte.read) return fail(out, 'UR', 'F_PERMISSION');
    out.pa = pte.pa + (addr % PAGE);
    out.length = PAGE - (addr % PAGE);
    return true;
  }

  atsTranslate(req: AtsTranslationRequest): AtsTranslationCompletion {
    this.translationRequests.push(req);
    const hooked = this.translateHook?.(req);
    if (hooked !== undefined) return hooked;
    if (!this.atsAllowed) return { status: 'UR', entries: [] };
    if (req.length > 64 * PAGE) {
      // A huge STU: one entry of the request's size, with no translation.
      return { status: 'SC', entries: [{ translatedAddr: 0, untranslatedAddr: req.addr, size: req.length, read: false, write: false, exec: false, priv: false, untranslatedOnly: false, global: false }] };
    }
    const entries: AtsTranslation[] = [];
    for (let a = req.addr; a < req.addr + req.length; a += PAGE) {
      const pte = this.lookup(req.requesterId, req.pasid, a);
      entries.push({
        translatedAddr: pte?.pa ?? 0,
        untranslatedAddr: a,
        size: PAGE,
        read: pte?.read ?? false,
        write: pte?.write ?? false,
        exec: false,
        priv: req.privileged,
        untranslatedOnly: false,
        global: false,
      });
    }
    return { status: 'SC', entries };
  }

  pageRequest(msg: PageRequestMessage): void {
    this.pageRequests.push({ ...msg, time: this.board.now() });
    const k = `${msg.requesterId}/${msg.prgIndex}`;
    const group = this.open.get(k) ?? [];
    group.push(msg);
    if (!msg.last) {
      this.open.set(k, group);
      return;
    }
    this.open.delete(k);
    if (!this.autoRespond) return;
    this.board.scheduler.schedule(this.responseDelayNs, () => this.respond(group), 'test-agent.prg');
  }

  /** Answer a group now (what autoRespond does after its delay). */
  respond(group: PageRequestMessage[], code = this.policy(group)): void {
    const first = group[0]!;
    if (code === 'success' && this.mapOnSuccess) {
      for (const m of group) {
        const t = this.table(m.requesterId, m.pasid);
        const page = m.addr / PAGE;
        const pte = t.get(page);
        if (pte === undefined) t.set(page, { pa: this.allocPage(), read: true, write: true });
        else if (m.write) pte.write = true;
      }
    }
    this.sendResponse(first.requesterId, first.prgIndex, first.pasid, code);
  }

  sendResponse(rid: number, prg: number, pasid: number, code: PrgResponseCode): boolean {
    this.responses.push({ rid, prg, pasid, code, time: this.board.now() });
    return this.board.rc.sendPrgResponse(rid, { pasid, prgIndex: prg, code, privileged: false, exec: false });
  }

  atsInvalidationCompleted(requesterId: number, itagVector: number, completionCount: number): void {
    this.invCompletions.push({ rid: requesterId, itags: itagVector, cc: completionCount, time: this.board.now() });
  }

  /** Send an Invalidation Request to the device (defaults: no PASID, one page). */
  invalidate(rid: number, req: Partial<AtsInvalidationRequest> & { addr: number }): boolean {
    return this.board.rc.sendAtsInvalidation(rid, { itag: 0, pasid: -1, global: false, size: PAGE, ...req });
  }
}

function fail(out: TranslationAnswer, status: 'UR' | 'CA', fault: string): false {
  out.status = status;
  out.fault = fault;
  return false;
}
