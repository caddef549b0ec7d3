/**
 * The PRI queue (§3.9.2 "PRI", §8 "Page request queue"): PCIe Page Request
 * Messages from endpoints become 16-byte records (§8.1) in the queue at
 * SMMU_PRIQ_BASE, produced at PRIQ_PROD and signalled with the PRIQ
 * interrupt (MSI or wired line, §3.18). Software answers a group with
 * CMD_PRI_RESP (§4.6.1), which leaves as a PRG Response Message.
 *
 * Automatic PRG Responses (§8, "PRI queue overflow" and the rules for a
 * disabled or aborted queue). Only a request with Last = 1 needs one; a Stop
 * Marker never gets one:
 * - Queue full (§8.2): the request is discarded and PRIQ_PROD.OVFLG toggles
 *   (unless an overflow is already unacknowledged). A discarded last
 *   request is answered from the StreamID's STE: Success (the endpoint
 *   retries and asks again once software has drained the queue), with the
 *   PASID only when STE.PPAR == 1 (PRG Response PASID Required). With
 *   SMMUEN == 0, or no valid STE (StreamID out of range, fetch abort, V == 0
 *   or ILLEGAL), it is Response Failure without a PASID. This lookup
 *   records no event.
 * - PRIQEN == 0, or the queue stopped by GERROR.PRIQ_ABT_ERR: requests are
 *   discarded and a last one is answered Response Failure without a PASID.
 * - A record write that aborts (external abort; the `smmuv3.priq_write`
 *   fail injection): GERROR.PRIQ_ABT_ERR, and the request is answered as
 *   one arriving at the aborted queue: Response Failure without a PASID.
 * - Stop Markers (§8: L = 1, R = W = 0 *with* a PASID, SSV == 1; PCIe
 *   §10.4.1.2) are recorded like any request and never answered. The same
 *   bits without a PASID are an ordinary page request.
 *
 * Otherwise the SMMU does not look at STEs for page requests: validating
 * the StreamID and PASID of a recorded request is software's job (Linux
 * arm_smmu_handle_ppr).
 */
import type { RegRef } from '../../src/hw/register-file.ts';
import { MEMTX_OK } from '../../src/memory/phys-mem.ts';
import { NO_PASID } from '../../src/pci/transaction.ts';
import type { PageRequestMessage, PrgResponseCode } from '../../src/pci/ats-messages.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { SmmuCore } from './core.ts';
import { EventInfo, PRIQ_BYTES, encodePriRecord } from './event.ts';
import type { Interrupts } from './irq.ts';
import { QueueGeometry, queueFull, queueNext } from './queue.ts';
import { CR0, GERROR, Q_OVF } from './regs.ts';
import type { ConfigCache } from './config.ts';
import { SMMUV3_SITE_ACTIONS } from './points.ts';

export interface PrgCounters {
  responses: Counter;
  auto: Counter;
}

/** PRG Responses downstream: from CMD_PRI_RESP and the SMMU's automatic ones. */
export class PrgResponder {
  constructor(
    private readonly core: SmmuCore,
    private readonly c: PrgCounters,
  ) {}

  send(sid: number, pasid: number, prgIndex: number, code: PrgResponseCode, auto: boolean): void {
    const pt = this.core.points.priResp;
    const a = pt.check(pt.armed ? { sid, pasid, prg: prgIndex, code } : undefined, code === 'failure' ? SMMUV3_SITE_ACTIONS.dropDelay : pt.actions);
    if (a?.kind === 'drop') return;
    const c: PrgResponseCode = a?.kind === 'fail' ? 'failure' : code;
    if (a?.kind === 'delay') {
      this.core.scheduler.schedule(a.ns, () => this.deliver(sid, pasid, prgIndex, c, auto), 'smmuv3.prg-response');
      return;
    }
    this.deliver(sid, pasid, prgIndex, c, auto);
  }

  private deliver(sid: number, pasid: number, prgIndex: number, code: PrgResponseCode, auto: boolean): void {
    (auto ? this.c.auto : this.c.responses).value++;
    if (this.core.tracer.wants('smmuv3.pri.resp')) this.core.tracer.trace('smmuv3.pri.resp', this.core.source, { sid, ssid: pasid, prg: prgIndex, code, auto });
    // PRG Responses carry no Execute/Privileged attributes (PCIe 10.4.2).
    this.core.downstream?.sendPrgResponse(sid, { pasid, prgIndex: prgIndex & 0x1ff, code, privileged: false, exec: false });
  }
}

/** 'lost': the record write aborted; 'dropped': lost silently (injected). */
export type PriOutcome = 'recorded' | 'overflow' | 'disabled' | 'lost' | 'dropped';

export interface PriQueueCounters {
  recorded: Counter;
  discarded: Counter;
}

export class PriQueue {
  private readonly geo: QueueGeometry;
  private readonly bytes = new Uint8Array(PRIQ_BYTES);
  /** The record being written, as words (filled per page request, copied into `bytes` at once). */
  private readonly words = new Uint32Array(PRIQ_BYTES / 4);
  /** Scratch for the overflow response's STE lookup (never recorded). */
  private readonly ev = new EventInfo();
  /** Registers read per page request, resolved once. */
  private readonly cr0ack: RegRef;
  private readonly prodReg: RegRef;
  private readonly consReg: RegRef;

  constructor(
    private readonly core: SmmuCore,
    private readonly config: ConfigCache,
    private readonly irq: Interrupts,
    private readonly prg: PrgResponder,
    private readonly c: PriQueueCounters,
  ) {
    this.geo = new QueueGeometry(core.regs, 'PRIQ_BASE');
    this.cr0ack = core.regs.ref('CR0ACK');
    this.prodReg = core.regs.ref('PRIQ_PROD');
    this.consReg = core.regs.ref('PRIQ_CONS');
  }

  /** A Page Request Message (or Stop Marker) from an endpoint. */
  record(m: PageRequestMessage): PriOutcome {
    const outcome = this.write(m);
    if (outcome === 'recorded') this.c.recorded.value++;
    else this.c.discarded.value++;
    const t = this.core.tracer;
    if (t.wants('smmuv3.priq')) {
      t.trace('smmuv3.priq', this.core.source, {
        sid: m.requesterId, ssid: m.pasid, prg: m.prgIndex, addr: m.addr, last: m.last, outcome,
      });
    }
    if (outcome === 'recorded' || outcome === 'dropped' || !m.last || isStopMarker(m)) return outcome;
    if (outcome === 'overflow') this.overflowResponse(m);
    else this.prg.send(m.requesterId, NO_PASID, m.prgIndex, 'failure', true);
    return outcome;
  }

  /**
   * §8.2: the automatic response to a last request discarded by a full
   * queue: Success, with the PASID only if STE.PPAR == 1; Response Failure
   * without a PASID when SMMUEN == 0 or the StreamID has no valid STE.
   */
  private overflowResponse(m: PageRequestMessage): void {
    const sid = m.requesterId;
    const ste = (this.core.regs.get('CR0ACK') & CR0.SMMUEN) === 0 ? null : this.config.steFor(sid, this.ev);
    if (ste === null || ste.illegal !== null) {
      this.prg.send(sid, NO_PASID, m.prgIndex, 'failure', true);
      return;
    }
    this.prg.send(sid, ste.ppar && m.pasid >= 0 ? m.pasid : NO_PASID, m.prgIndex, 'success', true);
  }

  private write(m: PageRequestMessage): PriOutcome {
    if ((this.cr0ack.get() & CR0.PRIQEN) === 0 || this.irq.gerrorActive(GERROR.PRIQ_ABT_ERR)) return 'disabled';
    const g = this.geo.read(this.core.features.priqLog2Max, PRIQ_BYTES);
    const prodReg = this.prodReg.get();
    const consReg = this.consReg.get();
    const mask = g.mask;
    const prod = prodReg & mask;
    if (queueFull(prod, consReg & mask, g.log2)) {
      // §8.2: toggle OVFLG unless an overflow is already unacknowledged.
      if (((prodReg ^ consReg) & Q_OVF) === 0) this.prodReg.set((prodReg ^ Q_OVF) >>> 0);
      return 'overflow';
    }
    const words = encodePriRecord(m, this.words);
    const pt = this.core.points.priqWrite;
    const a = pt.check(pt.armed ? { sid: m.requesterId, prg: m.prgIndex, addr: m.addr } : undefined);
    if (a?.kind === 'drop') return 'dropped';
    if (a?.kind === 'corrupt') {
      words[0] = (words[0]! ^ a.xorLo) >>> 0;
      words[1] = (words[1]! ^ (a.xorHi ?? 0)) >>> 0;
    }
    const b = this.bytes;
    for (let i = 0; i < 4; i++) {
      const w = words[i]!;
      b[4 * i] = w & 0xff;
      b[4 * i + 1] = (w >>> 8) & 0xff;
      b[4 * i + 2] = (w >>> 16) & 0xff;
      b[4 * i + 3] = (w >>> 24) & 0xff;
    }
    if (a?.kind === 'fail' || this.core.mem.writeFrom(g.entryAddr(prod, PRIQ_BYTES), b) !== MEMTX_OK) {
      // As for the Event queue (§7.2.2): PROD does not move and the queue stops until acknowledged.
      this.irq.activateGerror(GERROR.PRIQ_ABT_ERR);
      return 'lost';
    }
    this.prodReg.set(((prodReg & Q_OVF) | queueNext(prod, g.log2)) >>> 0);
    this.irq.signal('priq');
    return 'recorded';
  }
}

/** §8 / PCIe §10.4.1.2: a Stop Marker is L = 1, R = W = 0 with a PASID; without one it is a page request. */
export function isStopMarker(m: PageRequestMessage): boolean {
  return m.last && !m.read && !m.write && m.pasid >= 0;
}
