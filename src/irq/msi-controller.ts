import { MemoryRegion } from '../memory/memory-region.ts';
import type { Tracer } from '../trace/tracer.ts';

/** One message signalled interrupt as the interrupt controller received it. */
export interface MsiMessage {
  /** Virtual time of arrival, ns. */
  time: number;
  addr: number;
  data: number;
  /** Requester ID of the writer (the ITS DeviceID on Arm), -1 for a CPU write. */
  rid: number;
}

export type MsiHandler = (msg: MsiMessage) => void;

/**
 * The interrupt sink of a machine: the doorbell window that MSI/MSI-X writes
 * land in (the x86 0xFEEx_xxxx range, or a GIC ITS GITS_TRANSLATER page). It
 * records every message and calls the handlers registered for its data value
 * (the vector / EventID) or for all messages.
 */
export class MsiController {
  readonly base: number;
  readonly size: number;
  readonly received: MsiMessage[] = [];
  readonly region: MemoryRegion;
  private readonly byData = new Map<number, Set<MsiHandler>>();
  private readonly any = new Set<MsiHandler>();
  /** Keep at most this many messages in `received` (oldest dropped). */
  historyLimit = 100_000;

  constructor(
    base: number,
    size: number,
    private readonly tracer: Tracer,
    private readonly clock: () => number,
  ) {
    this.base = base;
    this.size = size;
    this.region = MemoryRegion.mmio('msi-doorbell', size, {
      read: () => 0,
      write: (offset, _size, value) => this.deliver(base + offset, value, -1),
    }, { minAccess: 4, maxAccess: 4 });
  }

  contains(addr: number): boolean {
    return addr >= this.base && addr < this.base + this.size;
  }

  deliver(addr: number, data: number, rid: number): void {
    const msg: MsiMessage = { time: this.clock(), addr, data: data >>> 0, rid };
    this.received.push(msg);
    if (this.received.length > this.historyLimit) this.received.shift();
    if (this.tracer.wants('msi.receive')) this.tracer.trace('msi.receive', 'msi', { addr, data: msg.data });
    for (const h of this.byData.get(msg.data) ?? []) h(msg);
    for (const h of this.any) h(msg);
  }

  /** Call `fn` for messages carrying `data` (or every message when data is undefined). */
  on(data: number | undefined, fn: MsiHandler): () => void {
    if (data === undefined) {
      this.any.add(fn);
      return () => this.any.delete(fn);
    }
    let set = this.byData.get(data >>> 0);
    if (set === undefined) this.byData.set(data >>> 0, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** How many messages with this data value arrived (all, when undefined). */
  count(data?: number): number {
    return data === undefined ? this.received.length : this.received.filter((m) => m.data === data >>> 0).length;
  }
}
