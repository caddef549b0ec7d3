/**
 * Translation Requests from device-TLBs (VT-d spec §4.2.2 "Translation
 * Request", §4.2.3 "Translation Completion"; PCIe ATS §10.2). A request is
 * answered from the same context/PASID lookup, IOTLB and page walk as an
 * untranslated DMA, for devices whose context entry allows device-TLBs
 * (legacy TT = 01, scalable-mode DTE = 1); others get UR and a fault record
 * (0x0D / 0x44).
 *
 * One completion entry per page of the requested range, each as large as the
 * page the walk found (S-encoded size, size-aligned addresses):
 * - R from a read walk, W from a write walk unless the request said No Write
 *   (a first-stage write walk sets D, so W = 1 means the device may write
 *   without another walk), Exe from an execute walk when asked for with a
 *   PASID (ERE clear: Exe = 0), Priv echoed, G = first-stage global, U = 0.
 * - A page that is not present or lacks the permission is reported with
 *   R = W = 0 and nothing is recorded: the device may then send a page request.
 * - Any other fault (reserved bits, fetch errors, address width, the
 *   interrupt range as output) records the fault and the whole request
 *   completes with UR.
 * - Without PASID, the interrupt range 0xFEE0_0000 - 0xFEEF_FFFF answers
 *   R = 0, W = 1, U = 1: interrupt writes stay untranslated.
 */
import type { AtsTranslation, AtsTranslationCompletion, AtsTranslationRequest } from '../../src/pci/ats-messages.ts';
import type { TranslationAnswer } from '../../src/pci/remapper.ts';
import { newTranslationAnswer } from '../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../src/pci/transaction.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { FR } from './fault-reasons.ts';
import { IRQ_END, IRQ_FIRST, inIrqRange, type Translator } from './translate.ts';
import { remPow2 } from '../pgtable/walk-common.ts';

const PAGE = 4096;
/** Entries one completion carries at most (a request beyond that gets the first ones; the device asks again). */
const MAX_ENTRIES = 64;

/** Fault reasons that mean "no such page / no such right": reported as R = W = 0, never recorded. */
const NOT_PRESENT_OR_DENIED: ReadonlySet<number> = new Set([
  FR.READ, FR.WRITE, FR.SS_NP, FR.FS_NP, FR.FS_USER, FR.EXEC, FR.SM_WRITE, FR.SM_READ,
]);

export interface AtsHost {
  readonly ctx: SimContext;
  readonly name: string;
  readonly translationEnabled: boolean;
  /** Record the translator's current fault (FPD applies) and fill `out` with UR. */
  recordFault(out: TranslationAnswer): void;
}

export class AtsResponder {
  private readonly out = newTranslationAnswer();
  private readonly txn: DmaTransaction = {
    requesterId: 0, pasid: -1, privileged: false, exec: false, at: 'translation-request', addr: 0, length: PAGE, write: false,
  };
  private readonly cRequests: Counter;
  private readonly cUr: Counter;

  constructor(
    private readonly h: AtsHost,
    private readonly xlate: Translator,
  ) {
    this.cRequests = h.ctx.counters.counter(`${h.name}.ats.requests`);
    this.cUr = h.ctx.counters.counter(`${h.name}.ats.ur`);
  }

  translate(req: AtsTranslationRequest): AtsTranslationCompletion {
    this.cRequests.value++;
    const c = this.h.translationEnabled ? this.answer(req) : { status: 'UR' as const, entries: [] };
    if (c.status !== 'SC') this.cUr.value++;
    if (this.h.ctx.tracer.wants('vtd.ats.translate')) {
      this.h.ctx.tracer.trace('vtd.ats.translate', this.h.name, {
        sid: req.requesterId, pasid: req.pasid, addr: req.addr, length: req.length, status: c.status, entries: c.entries.length,
      });
    }
    return c;
  }

  private answer(req: AtsTranslationRequest): AtsTranslationCompletion {
    const x = this.xlate;
    const txn = this.txn;
    txn.requesterId = req.requesterId;
    txn.pasid = req.pasid;
    txn.privileged = req.pasid >= 0 && req.privileged;
    // Made with its first entry (an array literal of one; an empty one grows to 16 slots on its first push).
    let entries: AtsTranslation[] | undefined;
    let a = req.addr - remPow2(req.addr, PAGE);
    const end = req.addr + Math.max(1, req.length);
    while (a < end && (entries?.length ?? 0) < MAX_ENTRIES) {
      if (req.pasid < 0 && inIrqRange(a)) {
        entries = append(entries, entry(a, a, PAGE, false, true, false, false, false, true));
        a += PAGE;
        continue;
      }
      if (!this.walk(a, false, false)) {
        if (!NOT_PRESENT_OR_DENIED.has(x.fi.code)) {
          this.h.recordFault(this.out);
          return { status: 'UR', entries: [] };
        }
        entries = append(entries, entry(0, a, PAGE, false, false, false, txn.privileged, false, false));
        a += PAGE;
        continue;
      }
      let base = x.lastBase;
      let size = x.lastSize;
      let pa = x.lastPa;
      const global = x.lastGlobal;
      if (pa < IRQ_END && pa + size > IRQ_FIRST) {
        // A large page whose output touches the interrupt range: report only this 4 KiB.
        base = a;
        size = PAGE;
        pa = this.out.pa - (this.out.pa % PAGE);
      }
      const write = !req.noWrite && this.walk(a, true, false);
      const exec = req.exec && req.pasid >= 0 && this.walk(a, false, true);
      entries = append(entries, entry(pa, base, size, true, write, exec, txn.privileged, global, false));
      a = base + size;
    }
    return { status: 'SC', entries: entries ?? [] };
  }

  private walk(addr: number, write: boolean, exec: boolean): boolean {
    const txn = this.txn;
    txn.addr = addr;
    txn.write = write;
    txn.exec = exec;
    this.out.status = 'SC';
    this.out.fault = '';
    return this.xlate.translate(txn, addr, this.out);
  }
}

function entry(
  translatedAddr: number, untranslatedAddr: number, size: number, read: boolean, write: boolean, exec: boolean, priv: boolean,
  global: boolean, untranslatedOnly: boolean,
): AtsTranslation {
  return { translatedAddr, untranslatedAddr, size, read, write, exec, priv, untranslatedOnly, global };
}

/** `e` added to `list`, made on the first entry. */
function append(list: AtsTranslation[] | undefined, e: AtsTranslation): AtsTranslation[] {
  if (list === undefined) return [e];
  list.push(e);
  return list;
}
