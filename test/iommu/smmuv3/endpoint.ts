/**
 * A PCIe endpoint for the SMMUv3 model tests that speaks the ATS/PRI
 * protocol directly: it sends Translation Requests, Page Requests and
 * Translated transactions on demand, and records the Invalidation Requests
 * and PRG Responses the SMMU sends it (answering invalidations after
 * `completionDelayNs`, or never when `autoComplete` is false).
 */
import type { Board } from '../../../machines/board.ts';
import type {
  AtsEndpoint, AtsInvalidationRequest, AtsTranslationCompletion, AtsTranslationRequest, PageRequestMessage, PrgResponse,
} from '../../../src/pci/ats-messages.ts';
import type { DmaCompletion } from '../../../src/pci/transaction.ts';
import { BareFunction } from '../../pci/helpers.ts';

export class AtsTestEndpoint extends BareFunction implements AtsEndpoint {
  readonly invalidations: (AtsInvalidationRequest & { time: number })[] = [];
  readonly responses: (PrgResponse & { time: number })[] = [];
  autoComplete = true;
  completionDelayNs = 1000;

  constructor(private readonly board: Board, name = 'ep') {
    super(name);
  }

  receiveAtsInvalidation(req: AtsInvalidationRequest): void {
    this.invalidations.push({ ...req, time: this.board.now() });
    if (this.autoComplete) this.board.scheduler.schedule(this.completionDelayNs, () => this.complete(req.itag), 'ep.inv-complete');
  }

  receivePrgResponse(resp: PrgResponse): void {
    this.responses.push({ ...resp, time: this.board.now() });
  }

  /** Send an Invalidation Completion for ITag `itag` (Completion Count `cc`). */
  complete(itag: number, cc = 1): void {
    this.sendInvalidationCompletion((1 << itag) >>> 0, cc);
  }

  /** An ATS Translation Request for [addr, addr+length). */
  tr(addr: number, o: Partial<AtsTranslationRequest> = {}): AtsTranslationCompletion {
    return this.atsTranslationRequest({
      requesterId: this.requesterId, pasid: -1, privileged: false, exec: false, addr, length: 4096, noWrite: false, ...o,
    });
  }

  /** A Page Request Message (defaults: no PASID, write, last, group 0). */
  pr(addr: number, o: Partial<PageRequestMessage> = {}): boolean {
    return this.sendPageRequest({
      requesterId: this.requesterId, pasid: -1, privileged: false, exec: false, addr, read: false, write: true, last: true, prgIndex: 0, ...o,
    });
  }

  /** A Translated read (AT = translated) of `len` bytes at physical `addr`. */
  translatedRead(addr: number, len = 4): DmaCompletion & { data: Uint8Array } {
    const data = new Uint8Array(len);
    const c = this.busMaster({ requesterId: this.requesterId, pasid: -1, privileged: false, exec: false, at: 'translated', addr, length: len, write: false }, data);
    return { ...c, data };
  }
}
