import type { RegisterFile, RegRef } from '../../src/hw/register-file.ts';
import { NO_PASID } from '../../src/pci/transaction.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { WqPolicy } from './decode.ts';
import type { Job } from './job.ts';
import { getBits } from '../../src/hw/layout.ts';
import { DESC_BYTES, DESCRIPTOR, wordsOfBytes } from './descriptor.ts';
import {
  DMAE_ERROR, MAX_RING_LOG2, PORTAL_STATUS, regField, regValue, withField, WQ_CONFIG_ERROR, WQ_REGISTERS,
} from './regs.ts';

const { CFG, PASID, STATUS } = WQ_REGISTERS;

/** An error for the error register (see DMAE_REGS.ERROR). */
export interface ErrorReport {
  code: number;
  wq?: number;
  opcode?: number;
  info?: number;
  addr?: number;
  write?: boolean;
}

export interface WqHost {
  readonly deviceEnabled: boolean;
  readonly maxDepth: number;
  raiseError(e: ErrorReport): void;
  /** Start the next descriptor of this WQ if it is idle. */
  kick(wq: WorkQueue): void;
}

/** A descriptor accepted by a WQ and not started yet. */
export interface QueuedDescriptor {
  words: Uint32Array;
}

/**
 * One work queue: its registers (WQn_*), the portal that assembles
 * descriptors, the descriptor ring with head and tail, and the FIFO of
 * portal descriptors waiting for the WQ's engine. Each WQ runs one
 * descriptor at a time, in order: portal descriptors first, then ring
 * slots from HEAD to TAIL (the ring is fetched one slot at a time, when the
 * engine is free). Configuration is latched when ENABLE goes from 0 to 1.
 */
export class WorkQueue {
  readonly index: number;
  enabled = false;
  halted = false;
  /** Counts enables: a descriptor from an earlier one no longer counts against this one. */
  epoch = 0;
  readonly policy: WqPolicy = { shared: false, privAllowed: false, defaultPasid: NO_PASID, defaultPriv: false };
  ringBase = 0;
  ringSize = 0;
  depth = 0;
  head = 0;
  tail = 0;
  readonly fifo: QueuedDescriptor[] = [];
  /** Portal descriptors accepted and not yet completed. */
  occupancy = 0;
  /** The descriptor running now, if any (owned by the executor). */
  busy = false;
  /** The WQ's last job, once it completed: the executor reuses it for the next descriptor. */
  spare: Job | undefined;
  portalStatus: number = PORTAL_STATUS.ACCEPTED;
  private readonly assembly = new Uint8Array(DESC_BYTES);
  private readonly regs: RegisterFile;
  private readonly host: WqHost;
  private readonly p: string;
  /** Registers written per descriptor, resolved once (no name lookup per descriptor). */
  private readonly headReg: RegRef;
  private readonly completedReg: RegRef;
  readonly retries: Counter;
  readonly discarded: Counter;
  /** Reused scratch space for the running descriptor's data (grown on demand). */
  private scratch = new Uint8Array(0);

  constructor(index: number, regs: RegisterFile, host: WqHost, counters: Counters, name: string) {
    this.index = index;
    this.regs = regs;
    this.host = host;
    this.p = `WQ${index}_`;
    this.headReg = regs.ref(`${this.p}HEAD`);
    this.completedReg = regs.ref(`${this.p}COMPLETED`);
    this.retries = counters.counter(`${name}.wq${index}.retries`);
    this.discarded = counters.counter(`${name}.wq${index}.discarded`);
    regs.onWrite(`${this.p}CFG`, (_r, oldLo) => this.cfgWritten(oldLo));
    regs.onWrite(`${this.p}TAIL`, (_r, oldLo) => this.doorbell(oldLo));
    regs.onRead(`${this.p}STATUS`, () => this.status());
  }

  private status(): number {
    return regValue(STATUS, {
      ENABLED: this.enabled ? 1 : 0,
      QFULL: this.enabled && this.occupancy >= this.depth ? 1 : 0,
      BUSY: this.busy ? 1 : 0,
      HALTED: this.halted ? 1 : 0,
      OCCUPANCY: Math.min(this.occupancy, 0xffff),
    });
  }

  /** Scratch of at least `n` bytes. */
  buffer(n: number): Uint8Array {
    if (this.scratch.length < n) this.scratch = new Uint8Array(n);
    return this.scratch;
  }

  /** Ring slots fetched-ready: HEAD != TAIL. */
  get ringPending(): boolean {
    return this.ringSize > 0 && this.head !== this.tail;
  }

  get ringSlotAddr(): number {
    return this.ringBase + this.head * DESC_BYTES;
  }

  /** The slot at HEAD was fetched: HEAD moves on. */
  advanceHead(): void {
    this.head = (this.head + 1) % this.ringSize;
    this.headReg.set(this.head);
  }

  /** A descriptor started in enable period `epoch` finished (portal or ring). */
  completed(fromPortal: boolean, epoch: number): void {
    if (epoch !== this.epoch) return;
    if (fromPortal && this.occupancy > 0) this.occupancy--;
    this.completedReg.set((this.completedReg.get() + 1) >>> 0);
  }

  // --- portal ----------------------------------------------------------------

  /** A software write to this WQ's portal page (see PORTAL in regs.ts). */
  portalWrite(offset: number, size: number, value: number): void {
    if (offset >= DESC_BYTES) return;
    let last = false;
    for (let i = 0; i < size && offset + i < DESC_BYTES; i++) {
      this.assembly[offset + i] = (value >>> (8 * i)) & 0xff;
      if (offset + i === DESC_BYTES - 1) last = true;
    }
    if (!last) return;
    const words = wordsOfBytes(this.assembly);
    this.assembly.fill(0);
    this.submit(words);
  }

  private submit(words: Uint32Array): void {
    if (!this.host.deviceEnabled || !this.enabled) {
      this.portalStatus = PORTAL_STATUS.DISABLED;
      this.host.raiseError({ code: DMAE_ERROR.WQ_DISABLED, wq: this.index, opcode: getBits(words, DESCRIPTOR.fields.OPCODE), info: this.index });
      return;
    }
    if (this.occupancy >= this.depth) {
      this.portalStatus = PORTAL_STATUS.RETRY;
      this.retries.value++;
      this.regs.set(`${this.p}RETRIES`, (this.regs.get(`${this.p}RETRIES`) + 1) >>> 0);
      return;
    }
    this.portalStatus = PORTAL_STATUS.ACCEPTED;
    this.occupancy++;
    this.fifo.push({ words });
    this.host.kick(this);
  }

  // --- ring ------------------------------------------------------------------

  private doorbell(oldTail: number): void {
    const v = this.regs.get(`${this.p}TAIL`);
    if (!this.host.deviceEnabled || !this.enabled) {
      this.regs.set(`${this.p}TAIL`, oldTail);
      this.host.raiseError({ code: DMAE_ERROR.WQ_DISABLED, wq: this.index, info: v });
      return;
    }
    if (this.ringSize === 0) {
      this.regs.set(`${this.p}TAIL`, oldTail);
      this.host.raiseError({ code: DMAE_ERROR.NO_RING, wq: this.index, info: v });
      return;
    }
    if (v >= this.ringSize) {
      this.regs.set(`${this.p}TAIL`, oldTail);
      this.host.raiseError({ code: DMAE_ERROR.DOORBELL_RANGE, wq: this.index, info: v });
      return;
    }
    this.tail = v;
    this.host.kick(this);
  }

  // --- enable / disable ------------------------------------------------------

  private cfgWritten(oldCfg: number): void {
    const cfg = this.regs.get(`${this.p}CFG`);
    const was = regField(CFG, oldCfg, 'ENABLE') === 1;
    const now = regField(CFG, cfg, 'ENABLE') === 1;
    if (!was && now) this.enable();
    else if (was && !now) this.disable();
  }

  private enable(): void {
    const refuse = (code: number, info: number) => {
      this.clearEnable();
      this.host.raiseError({ code, wq: this.index, info });
    };
    if (!this.host.deviceEnabled) return refuse(DMAE_ERROR.DEVICE_DISABLED, this.index);
    const size = this.regs.get(`${this.p}RING_SIZE`);
    const ringBase = this.regs.get64(`${this.p}RING_BASE`);
    const depth = this.regs.get(`${this.p}DEPTH`);
    if (size > 2 ** MAX_RING_LOG2) return refuse(DMAE_ERROR.WQ_CONFIG_INVALID, WQ_CONFIG_ERROR.RING_SIZE);
    // Exact u64 checks: a ring must be 64-byte aligned and end inside the 53-bit space the engine addresses.
    if (size > 0 && (ringBase % BigInt(DESC_BYTES) !== 0n || ringBase + BigInt(size * DESC_BYTES) > 2n ** 53n)) {
      return refuse(DMAE_ERROR.WQ_CONFIG_INVALID, WQ_CONFIG_ERROR.RING_ALIGN);
    }
    const base = Number(ringBase);
    if (depth > this.host.maxDepth) return refuse(DMAE_ERROR.WQ_CONFIG_INVALID, WQ_CONFIG_ERROR.DEPTH);
    const cfg = this.regs.get(`${this.p}CFG`);
    const pasid = this.regs.get(`${this.p}PASID`);
    const pv = regField(PASID, pasid, 'PV') === 1;
    this.policy.shared = regField(CFG, cfg, 'SHARED') === 1;
    this.policy.privAllowed = regField(CFG, cfg, 'PRIV_ALLOWED') === 1;
    this.policy.defaultPasid = pv ? regField(PASID, pasid, 'PASID') : NO_PASID;
    this.policy.defaultPriv = pv && regField(PASID, pasid, 'PRIV') === 1;
    this.ringBase = base;
    this.ringSize = size;
    this.depth = depth;
    this.head = 0;
    this.tail = 0;
    this.halted = false;
    this.occupancy = 0;
    this.portalStatus = PORTAL_STATUS.ACCEPTED;
    for (const r of ['HEAD', 'TAIL', 'COMPLETED', 'RETRIES']) this.regs.set(`${this.p}${r}`, 0);
    this.epoch++;
    this.enabled = true;
  }

  /**
   * Disable: descriptors not started are discarded (no completion record),
   * the one running finishes. Also what clearing GENCTRL.ENABLE does.
   */
  disable(): void {
    this.clearEnable();
    this.enabled = false;
    this.halted = false;
    this.discarded.value += this.fifo.length;
    this.occupancy = Math.max(0, this.occupancy - this.fifo.length);
    this.fifo.length = 0;
    this.head = this.tail;
  }

  private clearEnable(): void {
    const name = `${this.p}CFG`;
    this.regs.set(name, withField(CFG, this.regs.get(name), 'ENABLE', 0));
  }

  /** A ring fetch faulted: stop fetching until the WQ is disabled and enabled again. */
  halt(): void {
    this.halted = true;
  }

  /** Device reset. */
  reset(): void {
    this.epoch++;
    this.enabled = false;
    this.halted = false;
    this.busy = false;
    this.fifo.length = 0;
    this.occupancy = 0;
    this.head = this.tail = 0;
    this.ringBase = this.ringSize = this.depth = 0;
    this.assembly.fill(0);
    this.portalStatus = PORTAL_STATUS.ACCEPTED;
  }
}
