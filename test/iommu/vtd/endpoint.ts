/**
 * A small ATS/PRI/PASID endpoint for VT-d tests: it issues Translation
 * Requests and keeps what comes back in a tiny ATC, sends translated
 * requests and page requests, records PRG Responses, and answers ATS
 * Invalidation Requests (dropping ATC entries) after `completionDelayNs`,
 * or never when `answerInvalidations` is false.
 */
import { AtsCapability } from '../../../src/pci/caps/ats.ts';
import { PasidCapability } from '../../../src/pci/caps/pasid.ts';
import { PcieCapability } from '../../../src/pci/caps/pcie.ts';
import { PriCapability } from '../../../src/pci/caps/pri.ts';
import type {
  AtsEndpoint, AtsInvalidationRequest, AtsTranslation, AtsTranslationCompletion, PageRequestMessage, PrgResponse,
} from '../../../src/pci/ats-messages.ts';
import { PciFunction } from '../../../src/pci/pci-function.ts';
import type { DmaResult } from '../../../src/pci/transaction.ts';
import type { Scheduler } from '../../../src/sim/scheduler.ts';

export interface EndpointOptions {
  pasidBits?: number;
  priCapacity?: number;
  /** ATS Invalidate Queue Depth (default 32). */
  invalidateQueueDepth?: number;
  /** PRI status "PRG Response PASID Required" (default true). */
  prgRespPasidRequired?: boolean;
}

export class AtsTestEndpoint extends PciFunction implements AtsEndpoint {
  readonly ats: AtsCapability;
  readonly pri: PriCapability;
  readonly pasid: PasidCapability;
  readonly invalidations: (AtsInvalidationRequest & { time: number })[] = [];
  readonly responses: (PrgResponse & { time: number })[] = [];
  /** Translations the device holds: `${pasid}:${page}` -> entry. */
  readonly atc = new Map<string, AtsTranslation>();
  answerInvalidations = true;
  completionDelayNs = 200;
  /** Completion messages per invalidation (CC). */
  completionCount = 1;

  constructor(
    private readonly sched: Scheduler,
    name = 'ats-ep',
    opts: EndpointOptions = {},
  ) {
    super(name, { vendorId: 0x8086, deviceId: 0x0b25, classCode: 0x088000 }, 0);
    // A PCI Express endpoint: without the capability the host sees no extended capabilities (pci_cfg_space_size).
    new PcieCapability(this.config, this.caps, { type: 'endpoint' });
    this.ats = new AtsCapability(this.config, this.caps, { invalidateQueueDepth: opts.invalidateQueueDepth ?? 32, globalInvalidate: true });
    this.pri = new PriCapability(this.config, this.caps, { capacity: opts.priCapacity ?? 32, pasidRequired: opts.prgRespPasidRequired ?? true });
    this.pasid = new PasidCapability(this.config, this.caps, { maxPasidWidth: opts.pasidBits ?? 16, priv: true, exec: true });
  }

  /** Send a Translation Request; successful entries go to the ATC. */
  translate(addr: number, length = 4096, o: { pasid?: number; noWrite?: boolean; priv?: boolean; exec?: boolean } = {}): AtsTranslationCompletion {
    const pasid = o.pasid ?? -1;
    const c = this.atsTranslationRequest({
      requesterId: this.requesterId, pasid, privileged: o.priv ?? false, exec: o.exec ?? false, addr, length, noWrite: o.noWrite ?? false,
    });
    if (c.status === 'SC') for (const e of c.entries) if (e.read || e.write) this.atc.set(`${pasid}:${e.untranslatedAddr / 4096}`, e);
    return c;
  }

  /** The ATC entry covering `addr`, if any. */
  cached(addr: number, pasid = -1): AtsTranslation | undefined {
    for (const [k, e] of this.atc) {
      if (k.startsWith(`${pasid}:`) && addr >= e.untranslatedAddr && addr < e.untranslatedAddr + e.size) return e;
    }
    return undefined;
  }

  /** A memory read with AT = translated at physical address `pa`. */
  translatedRead(pa: number, length = 4, pasid = -1): DmaResult {
    const data = new Uint8Array(length);
    const c = this.busMaster({ requesterId: this.requesterId, pasid, privileged: false, exec: false, at: 'translated', addr: pa, length, write: false }, data);
    return c.status === 'SC' ? { ok: true, data } : { ok: false, fault: c.fault };
  }

  /** Send one Page Request Message. */
  request(m: Partial<PageRequestMessage> & { addr: number }): boolean {
    return this.sendPageRequest({
      requesterId: this.requesterId, pasid: -1, privileged: false, exec: false, read: true, write: false, last: true, prgIndex: 0, ...m,
    });
  }

  receiveAtsInvalidation(req: AtsInvalidationRequest): void {
    this.invalidations.push({ ...req, time: this.sched.now });
    for (const [k, e] of [...this.atc]) {
      const pasid = Number(k.split(':')[0]);
      const mine = req.pasid < 0 || pasid === req.pasid || (req.global && e.global);
      if (mine && e.untranslatedAddr < req.addr + req.size && e.untranslatedAddr + e.size > req.addr) this.atc.delete(k);
    }
    if (!this.answerInvalidations) return;
    const send = () => {
      for (let i = 0; i < this.completionCount; i++) this.sendInvalidationCompletion((1 << req.itag) >>> 0, this.completionCount);
    };
    if (this.completionDelayNs <= 0) send();
    else this.sched.schedule(this.completionDelayNs, send, 'ats-ep.inv-complete');
  }

  receivePrgResponse(resp: PrgResponse): void {
    this.responses.push({ ...resp, time: this.sched.now });
  }
}
