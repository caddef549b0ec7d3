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
 * counts every message by data value (exactly, however long the run), keeps
 * the last `historyLimit` messages in a ring, and calls the handlers
 * registered for its data value (the vector / EventID) or for all messages.
 */
export class MsiController {
  readonly base: number;
  readonly size: number;
  readonly region: MemoryRegion;
  private readonly byData = new Map<number, Set<MsiHandler>>();
  private readonly any = new Set<MsiHandler>();
  /** Messages received per data value, and in all. */
  private readonly perData = new Map<number, number>();
  private total = 0;
  /** The ring of recent messages: `ring[(start + i) % ring.length]` for i < kept. */
  private ring: MsiMessage[] = [];
  private start = 0;
  private limit = 1024;

  /** How many of the latest messages `received` keeps (oldest dropped first). */
  get historyLimit(): number {
    return this.limit;
  }

  set historyLimit(n: number) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`bad MSI history limit ${n}`);
    const keep = this.received.slice(Math.max(0, this.ring.length - n));
    this.ring = keep;
    this.start = 0;
    this.limit = n;
  }

  /** The latest messages (at most historyLimit), oldest first: a copy. */
  get received(): MsiMessage[] {
    const r = this.ring;
    return this.start === 0 ? r.slice() : r.slice(this.start).concat(r.slice(0, this.start));
  }

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
    this.total++;
    this.perData.set(msg.data, (this.perData.get(msg.data) ?? 0) + 1);
    if (this.ring.length < this.limit) this.ring.push(msg);
    else if (this.limit > 0) {
      this.ring[this.start] = msg;
      this.start = (this.start + 1) % this.limit;
    }
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

  /** How many messages with this data value arrived (all, when undefined), since the machine started. */
  count(data?: number): number {
    return data === undefined ? this.total : (this.perData.get(data >>> 0) ?? 0);
  }
}
