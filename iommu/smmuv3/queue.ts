/**
 * Circular queues in memory (§3.5 "Command and Event queues"): a base
 * register with ADDR and LOG2SIZE, and PROD/CONS indexes whose bit LOG2SIZE
 * is the wrap flag. The queue is empty when the indexes and wrap flags are
 * equal, full when the indexes are equal and the wrap flags differ. The
 * Event queue writer (§7.2 "Event queue recorded faults and events", §7.4
 * "Event queue overflow") lives here too.
 */
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { FieldRef, RegisterFile } from '../../src/hw/register-file.ts';
import { MEMTX_OK, type PhysMem } from '../../src/memory/phys-mem.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { encodeEvent, eventName, type EventInfo } from './event.ts';
import type { Interrupts } from './irq.ts';
import { CR0, GERROR, Q_OVF, type SmmuRegMap } from './regs.ts';

/** Where a queue is and how big (log2 of entries), from its *_BASE register. */
export class QueueGeometry {
  base = 0;
  log2 = 0;
  /** The base register's fields, resolved once (read per command, event and page request). */
  private readonly log2Size: FieldRef;
  private readonly addr: FieldRef;

  constructor(regs: RegisterFile<SmmuRegMap>, baseReg: 'CMDQ_BASE' | 'EVENTQ_BASE' | 'PRIQ_BASE') {
    this.log2Size = regs.fieldRef(baseReg, 'LOG2SIZE');
    this.addr = regs.fieldRef(baseReg, 'ADDR');
  }

  /**
   * ADDR[51:5] (bits [55:52] are RES0 with OAS <= 52), aligned to the larger
   * of the queue size and 32 bytes; LOG2SIZE capped at the IDR1 maximum.
   */
  read(log2Max: number, entryBytes: number): this {
    this.log2 = Math.min(this.log2Size.get(), log2Max);
    // ADDR[51:5]: the field's low 47 bits, by a floor by a power of two (exact; a remainder of doubles is a runtime call).
    const a = this.addr.get();
    const addr = (a - Math.floor(a / ADDR_SPAN) * ADDR_SPAN) * 32;
    const align = Math.max(entryBytes * pow2(this.log2), 32);
    this.base = addr - (addr % align);
    return this;
  }

  /** Bits of PROD/CONS that hold index and wrap flag. */
  get mask(): number {
    return indexMask(this.log2);
  }

  entryAddr(index: number, entryBytes: number): number {
    return this.base + (index % pow2(this.log2)) * entryBytes;
  }
}

/** ADDR[51:5] holds 47 bits. */
const ADDR_SPAN = 2 ** 47;

/** 2^n: a shift for the queue sizes there are (LOG2SIZE <= 19), a power beyond. */
function pow2(n: number): number {
  return n >= 0 && n < 30 ? 1 << n : 2 ** n;
}

/** 2^(log2 + 1) - 1: the index bits and the wrap flag (per command, event and page request). */
function indexMask(log2: number): number {
  return pow2(log2 + 1) - 1;
}

export function queueEmpty(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & indexMask(log2)) === 0;
}

export function queueFull(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & indexMask(log2)) === pow2(log2);
}

/** The next index (with wrap flag) after `v`. */
export function queueNext(v: number, log2: number): number {
  return (v + 1) & indexMask(log2);
}

export type EventOutcome = 'recorded' | 'suppressed' | 'overflow' | 'disabled' | 'lost';

export interface EventQueueCounters {
  recorded: Counter;
  dropped: Counter;
}

/** Writes event records into the Event queue (§7.2.1: only while the queue is writable). */
export class EventQueue {
  private readonly geo: QueueGeometry;
  private readonly bytes = new Uint8Array(32);

  constructor(
    private readonly regs: RegisterFile<SmmuRegMap>,
    private readonly mem: PhysMem,
    private readonly point: InjectionPoint,
    private readonly irq: Interrupts,
    private readonly log2Max: number,
    private readonly tracer: Tracer,
    private readonly source: string,
    private readonly c: EventQueueCounters,
  ) {
    this.geo = new QueueGeometry(regs, 'EVENTQ_BASE');
  }

  /** Record an event if the queue is writable; the outcome says what happened to it. */
  record(e: EventInfo): EventOutcome {
    const outcome = this.write(e);
    if (outcome === 'recorded') this.c.recorded.value++;
    else this.c.dropped.value++;
    this.trace(e, outcome);
    return outcome;
  }

  /** A fault whose record the configuration suppresses (CD.R / STE.S2R == 0). */
  suppressed(e: EventInfo): EventOutcome {
    this.trace(e, 'suppressed');
    return 'suppressed';
  }

  private trace(e: EventInfo, outcome: EventOutcome): void {
    if (!this.tracer.wants('smmuv3.event')) return;
    this.tracer.trace('smmuv3.event', this.source, {
      code: e.code, name: eventName(e.code), sid: e.sid, ssid: e.ssid, addr: e.inputAddr, outcome,
    });
  }

  private write(e: EventInfo): EventOutcome {
    const r = this.regs;
    if ((r.get('CR0ACK') & CR0.EVENTQEN) === 0 || this.irq.gerrorActive(GERROR.EVENTQ_ABT_ERR)) return 'disabled';
    const g = this.geo.read(this.log2Max, 32);
    const prodReg = r.get('EVENTQ_PROD');
    const consReg = r.get('EVENTQ_CONS');
    const m = g.mask;
    const prod = prodReg & m;
    if (queueFull(prod, consReg & m, g.log2)) {
      // §7.4: toggle OVFLG unless an overflow is already unacknowledged.
      if (((prodReg ^ consReg) & Q_OVF) === 0) r.set('EVENTQ_PROD', (prodReg ^ Q_OVF) >>> 0);
      return 'overflow';
    }
    const words = encodeEvent(e);
    const p = this.point;
    const a = p.check(p.armed ? { sid: e.sid, code: e.code } : undefined);
    if (a?.kind === 'drop') return 'lost';
    if (a?.kind === 'corrupt') {
      words[0] = (words[0]! ^ a.xorLo) >>> 0;
      words[1] = (words[1]! ^ (a.xorHi ?? 0)) >>> 0;
    }
    const b = this.bytes;
    for (let i = 0; i < 8; i++) {
      const w = words[i]!;
      b[4 * i] = w & 0xff;
      b[4 * i + 1] = (w >>> 8) & 0xff;
      b[4 * i + 2] = (w >>> 16) & 0xff;
      b[4 * i + 3] = (w >>> 24) & 0xff;
    }
    if (a?.kind === 'fail' || this.mem.writeFrom(g.entryAddr(prod, 32), b) !== MEMTX_OK) {
      // §7.2.2, synchronous abort: PROD does not move and the queue stops until acknowledged.
      this.irq.activateGerror(GERROR.EVENTQ_ABT_ERR);
      return 'lost';
    }
    r.set('EVENTQ_PROD', ((prodReg & Q_OVF) | queueNext(prod, g.log2)) >>> 0);
    this.irq.signal('eventq');
    return 'recorded';
  }
}
