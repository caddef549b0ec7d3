import { RegisterFile, type RegRef } from '../../src/hw/register-file.ts';
import { fieldGet } from '../../src/hw/layout.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import type { AtsEndpoint, AtsInvalidationRequest, AtsTranslationRequest, PageRequestMessage, PrgResponse } from '../../src/pci/ats-messages.ts';
import { AtsCapability } from '../../src/pci/caps/ats.ts';
import { MsixCapability } from '../../src/pci/caps/msix.ts';
import { PasidCapability } from '../../src/pci/caps/pasid.ts';
import { PcieCapability } from '../../src/pci/caps/pcie.ts';
import { PRI, PriCapability } from '../../src/pci/caps/pri.ts';
import { PciFunction } from '../../src/pci/pci-function.ts';
import { NO_PASID, type DmaAttrs, type DmaReadResult, type DmaTransaction, type DmaWriteResult } from '../../src/pci/transaction.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { Atc } from './atc.ts';
import { FAULT_NAMES, FAULT_REASON, OPS_SUPPORTED } from './descriptor.ts';
import { Executor, type EngineTiming } from './executor.ts';
import { enginePoints, type EnginePoints } from './faults.ts';
import { InvalidationQueue } from './invalidation.ts';
import { outcomeFault, PageRequests, type PageGroup } from './page-requests.ts';
import {
  DMAE_BAR, DMAE_ID, DMAE_MSIX_PBA_OFFSET, DMAE_REGISTERS, DMAE_REGS_SIZE, MAX_WORK_QUEUES, PORTAL, regField, registerDefs, regValue,
  withField,
} from './regs.ts';
import { Timers } from './timers.ts';
import { DmaPath, newAccess, RUN_DONE, RUN_FAULT, T_FAULT, T_LOST, T_OK, type Access } from './translation.ts';
import { WorkQueue, type ErrorReport } from './work-queue.ts';

const GENCTRL_ENABLE = DMAE_REGISTERS.GENCTRL.layout.fields.ENABLE;

export interface DmaEngineOptions {
  /** Names counters ("<name>.atc.hit") and trace sources (default 'dma-engine'); make it unique per machine. */
  name?: string;
  /** Work queues, 1..16 (default 4). */
  workQueues?: number;
  /** Largest WQ_DEPTH (default 32). */
  maxWqDepth?: number;
  /** Largest transfer of one descriptor, bytes (default 1 MiB). */
  maxTransfer?: number;
  /** ATC entries (default 64). */
  atcEntries?: number;
  /** ATS Invalidate Queue Depth, 1..32 (default 8). */
  invalidateQueueDepth?: number;
  /** ATS Global Invalidate Supported (default true). */
  globalInvalidate?: boolean;
  /** Virtual ns between an Invalidation Request and its completion (default 1000). */
  invalidationDelayNs?: number;
  /** PRI Outstanding Page Request Capacity (default 64). */
  priCapacity?: number;
  /** Largest page request group, pages (default 8). */
  maxPrgPages?: number;
  /** Virtual ns a page request group waits for its response (default 10 ms). */
  priTimeoutNs?: number;
  /** STUs one Translation Request asks for (default 1). */
  atsRequestUnits?: number;
  /** Max PASID Width (default 20); Privileged Mode (default true) and Execute (default false) support. */
  maxPasidWidth?: number;
  pasidPriv?: boolean;
  pasidExec?: boolean;
  /** MSI-X vectors, up to 128 (default workQueues + 1). */
  msixVectors?: number;
  timing?: Partial<EngineTiming>;
}

const NOTHING = (): void => {};

const DEFAULT_TIMING: EngineTiming = { setupNs: 100, nsPerByte: 0.125, atsLatencyNs: 500, atsTimeoutNs: 50_000, maxPriRetries: 3 };

/**
 * The engine as its parts (DMA path, page requests, executor, work queues)
 * see it: its name, and what changes while it runs (requester ID, Bus
 * Master Enable, the device's Enable bit) read through prototype getters;
 * each part adds its callbacks to its own link. Not getters in an object
 * literal: V8 gives every such literal a hidden class of its own (its
 * getters are part of the class), kept in the old generation, and through
 * the getters' closures that class held the whole machine through every
 * young collection after the machine was dropped (src/lib/young.ts).
 */
class EngineLink {
  readonly name: string;
  constructor(private readonly engine: DmaEngine) {
    this.name = engine.name;
  }

  get requesterId(): number {
    return this.engine.requesterId;
  }

  get busMasterEnabled(): boolean {
    return this.engine.busMasterEnabled;
  }

  get deviceEnabled(): boolean {
    return this.engine.deviceEnabled;
  }
}

/**
 * The reference SVA-capable DMA engine (devices/dma-engine/README.md): work
 * queues fed through portals or descriptor rings, NOOP/MEMMOVE/FILL/COMPARE
 * descriptors with completion records and MSI-X, an ATC filled by ATS
 * Translation Requests, page requests through PRI, PASID-tagged requests.
 * Its CONTRACT.md dmaRead/dmaWrite take the same ATC/ATS/PRI path.
 */
export class DmaEngine extends PciFunction implements AtsEndpoint {
  readonly regs: RegisterFile;
  readonly pcie: PcieCapability;
  readonly msix: MsixCapability;
  readonly ats: AtsCapability;
  readonly pri: PriCapability;
  readonly pasid: PasidCapability;
  readonly atc: Atc;
  readonly path: DmaPath;
  readonly pageRequests: PageRequests;
  readonly invalidations: InvalidationQueue;
  readonly workQueues: WorkQueue[] = [];
  readonly points: EnginePoints;
  readonly timers: Timers;
  readonly maxTransfer: number;
  readonly maxDepth: number;
  readonly timing: EngineTiming;
  private readonly ctx: SimContext;
  private readonly executor: Executor;
  private readonly errors: Counter;
  /** The page request group a synchronous access waits on, and the scheduler's stop test for it (one closure per engine, not per fault). */
  private waiting: PageGroup | undefined;
  private readonly groupEnded = (): boolean => this.waiting === undefined || this.waiting.outcome !== 'pending';

  constructor(ctx: SimContext, options: DmaEngineOptions = {}) {
    const name = options.name ?? 'dma-engine';
    super(name, DMAE_ID, 0);
    this.ctx = ctx;
    const nwq = options.workQueues ?? 4;
    if (!Number.isInteger(nwq) || nwq < 1 || nwq > MAX_WORK_QUEUES) throw new RangeError(`bad work queue count ${nwq}`);
    const vectors = options.msixVectors ?? nwq + 1;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > 128) throw new RangeError(`bad MSI-X vector count ${vectors}`);
    this.maxTransfer = options.maxTransfer ?? 1 << 20;
    this.maxDepth = options.maxWqDepth ?? 32;
    if (!Number.isInteger(this.maxTransfer) || this.maxTransfer < 1 || this.maxTransfer > 0xffffffff) throw new RangeError('bad maxTransfer');
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1 || this.maxDepth > 0xffff) throw new RangeError('bad maxWqDepth');
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    const maxPrgPages = options.maxPrgPages ?? 8;
    if (!Number.isInteger(maxPrgPages) || maxPrgPages < 1 || maxPrgPages > 255) throw new RangeError('bad maxPrgPages');
    this.timers = new Timers(ctx.scheduler);
    this.points = enginePoints(ctx.faults);
    this.errors = ctx.counters.counter(`${name}.errors`);

    this.pcie = new PcieCapability(this.config, this.caps, { type: 'rc-endpoint', flr: true, onFlr: () => this.reset() });
    this.msix = new MsixCapability(this.config, this.caps, {
      vectors, tableBar: DMAE_BAR.MSIX, tableOffset: 0, pbaBar: DMAE_BAR.MSIX, pbaOffset: DMAE_MSIX_PBA_OFFSET,
      send: (addr, data) => this.sendMsi(addr, data), tracer: ctx.tracer, bdf: name,
    });
    this.ats = new AtsCapability(this.config, this.caps, {
      invalidateQueueDepth: options.invalidateQueueDepth ?? 8,
      globalInvalidate: options.globalInvalidate ?? true,
      onChange: () => this.atc.flush(),
    });
    this.pri = new PriCapability(this.config, this.caps, {
      capacity: options.priCapacity ?? 64,
      pasidRequired: true,
      onEnableChange: (en) => this.pageRequests.enableChanged(en),
      onReset: () => this.pageRequests.interfaceReset(),
    });
    this.pasid = new PasidCapability(this.config, this.caps, {
      maxPasidWidth: options.maxPasidWidth ?? 20,
      priv: options.pasidPriv ?? true,
      exec: options.pasidExec ?? false,
      onChange: () => this.atc.flush(),
    });
    this.config.onWrite(this.pri.offset + PRI.ALLOC_REQ, 4, () => this.pageRequests.kick());

    this.atc = new Atc(options.atcEntries ?? 64, ctx.counters, name, ctx.tracer, name);
    this.path = new DmaPath(
      Object.assign(new EngineLink(this), {
        busMaster: (txn: DmaTransaction, buf: Uint8Array, off: number) => this.busMaster(txn, buf, off),
        atsRequest: (req: AtsTranslationRequest) => this.atsTranslationRequest(req),
      }),
      this.atc, this.ats, this.points['dma-engine.ats.completion'], ctx.counters,
      { atsRequestUnits: options.atsRequestUnits ?? 1, maxPrgPages },
    );
    this.pageRequests = new PageRequests(
      Object.assign(new EngineLink(this), { send: (msg: PageRequestMessage) => this.sendPageRequest(msg) }),
      this.pri, this.timers, ctx.tracer,
      { request: this.points['dma-engine.pri.request'], response: this.points['dma-engine.pri.response'] },
      ctx.counters, { timeoutNs: options.priTimeoutNs ?? 10_000_000 },
    );
    this.invalidations = new InvalidationQueue(
      { name, complete: (v, cc) => this.sendInvalidationCompletion(v, cc) },
      this.atc, this.ats, this.timers, ctx.tracer, this.points['dma-engine.ats.inv-completion'], ctx.counters,
      options.invalidationDelayNs ?? 1000,
    );

    this.regs = new RegisterFile(name, DMAE_REGS_SIZE, registerDefs({
      workQueues: nwq, opsMask: OPS_SUPPORTED, msixVectors: vectors, maxTransfer: this.maxTransfer,
      atcEntries: this.atc.capacity, maxPrgPages, maxDepth: this.maxDepth,
    }));
    this.regs.onWrite('GENCTRL', (_r, old) => this.genctrlWritten(old));
    this.genctrl = this.regs.ref('GENCTRL');
    this.executor = new Executor(Object.assign(new EngineLink(this), {
      timers: this.timers, tracer: ctx.tracer, path: this.path, prs: this.pageRequests, pasid: this.pasid, pri: this.pri,
      maxTransfer: this.maxTransfer, timing: this.timing, recordPoint: this.points['dma-engine.completion-record'],
      raiseError: (e: ErrorReport) => this.raiseError(e),
      interrupt: (wq: WorkQueue) => this.notifyVector(this.regs.get(`WQ${wq.index}_VECTOR`)),
    }), ctx.counters);
    const wqHost = Object.assign(new EngineLink(this), {
      maxDepth: this.maxDepth,
      raiseError: (e: ErrorReport) => this.raiseError(e),
      kick: (wq: WorkQueue) => this.executor.kick(wq),
    });
    for (let i = 0; i < nwq; i++) this.workQueues.push(new WorkQueue(i, this.regs, wqHost, ctx.counters, name));

    this.defineBar(DMAE_BAR.REGS, {
      kind: 'mem64', size: DMAE_REGS_SIZE, region: MemoryRegion.mmio(`${name}-regs`, DMAE_REGS_SIZE, this.regs.ops, { maxAccess: 8 }),
    });
    const msixBar = MemoryRegion.container(`${name}-msix`, 0x1000);
    msixBar.addSubregion(0, this.msix.tableRegion);
    msixBar.addSubregion(DMAE_MSIX_PBA_OFFSET, this.msix.pbaRegion);
    this.defineBar(DMAE_BAR.MSIX, { kind: 'mem64', size: 0x1000, region: msixBar });
    const portalSize = 2 ** Math.ceil(Math.log2(nwq * PORTAL.PAGE));
    this.defineBar(DMAE_BAR.PORTALS, {
      kind: 'mem64',
      size: portalSize,
      region: MemoryRegion.mmio(`${name}-portals`, portalSize, {
        read: (off) => this.portalRead(off),
        write: (off, size, value) => this.workQueues[Math.floor(off / PORTAL.PAGE)]?.portalWrite(off % PORTAL.PAGE, size, value),
      }, { maxAccess: 8 }),
    });
  }

  get deviceEnabled(): boolean {
    // Read per descriptor: the register through a handle, the field by its mask.
    return fieldGet(GENCTRL_ENABLE, this.genctrl.get()) === 1;
  }
  private readonly genctrl: RegRef;

  private portalRead(off: number): number {
    const wq = this.workQueues[Math.floor(off / PORTAL.PAGE)];
    return wq !== undefined && off % PORTAL.PAGE === PORTAL.STATUS ? wq.portalStatus : 0;
  }

  private genctrlWritten(old: number): void {
    const now = this.deviceEnabled;
    this.regs.set('GENSTS', regValue(DMAE_REGISTERS.GENSTS, { ENABLED: now ? 1 : 0 }));
    if (regField(DMAE_REGISTERS.GENCTRL, old, 'ENABLE') === 1 && !now) for (const wq of this.workQueues) if (wq.enabled) wq.disable();
  }

  private notifyVector(vector: number): void {
    if (vector < this.msix.vectors) this.msix.notify(vector);
  }

  /** Latch an error in the error register (OVERFLOW if one is already latched) and raise ERR_VECTOR. */
  raiseError(e: ErrorReport): void {
    this.errors.value++;
    this.ctx.tracer.trace('dma-engine.error', this.name, {
      dev: this.name, code: e.code, wq: e.wq ?? -1, info: e.info ?? 0, addr: e.addr ?? 0,
    });
    const ERROR = DMAE_REGISTERS.ERROR;
    const latched = this.regs.get('ERROR');
    if (regField(ERROR, latched, 'VALID') === 1) {
      this.regs.set('ERROR', withField(ERROR, latched, 'OVERFLOW', 1));
      return;
    }
    this.regs.set('ERROR', regValue(ERROR, {
      VALID: 1,
      WQ_VALID: e.wq !== undefined ? 1 : 0,
      FAULT_WRITE: e.write ? 1 : 0,
      CODE: e.code,
      WQ: e.wq ?? 0,
      OPCODE: e.opcode ?? 0,
    }));
    this.regs.set('ERROR_INFO', (e.info ?? 0) >>> 0);
    const a = e.addr ?? 0;
    this.regs.set('ERROR_ADDR', a % 0x1_0000_0000, Math.floor(a / 0x1_0000_0000));
    this.notifyVector(this.regs.get('ERR_VECTOR'));
  }

  // --- ATS / PRI messages from the root complex --------------------------------

  receiveAtsInvalidation(req: AtsInvalidationRequest): void {
    this.invalidations.receive(req);
  }

  receivePrgResponse(resp: PrgResponse): void {
    this.pageRequests.receive(resp);
  }

  // --- CONTRACT.md DMA -------------------------------------------------------

  override dmaRead(addr: bigint, length: number, attrs?: DmaAttrs): DmaReadResult {
    const a = checkRange(addr, length);
    if (typeof a === 'string') return { ok: false, fault: a };
    const data = new Uint8Array(length);
    const f = this.syncAccess(newAccess(a, length, false, data), attrs);
    return f === undefined ? { ok: true, data } : { ok: false, fault: f };
  }

  override dmaWrite(addr: bigint, data: Uint8Array, attrs?: DmaAttrs): DmaWriteResult {
    const a = checkRange(addr, data.length);
    if (typeof a === 'string') return { ok: false, fault: a };
    const f = this.syncAccess(newAccess(a, data.length, true, data), attrs);
    return f === undefined ? { ok: true } : { ok: false, fault: f };
  }

  /**
   * The engine's path, synchronously: ATC hits and ATS requests complete at
   * once (no virtual time); a page request runs the machine's scheduler
   * until its group ends (response or PRI timeout), then retries. Call it
   * from outside scheduler events when PRI may be involved (the engine's own
   * descriptors never use it).
   */
  private syncAccess(acc: Access, attrs: DmaAttrs | undefined): string | undefined {
    acc.pasid = attrs?.pasid ?? NO_PASID;
    acc.priv = acc.pasid >= 0 && (attrs?.privileged ?? false);
    acc.exec = acc.pasid >= 0 && (attrs?.exec ?? false);
    if (acc.pasid !== NO_PASID && !this.pasid.pasidAllowed(acc.pasid, acc.priv, acc.exec)) return FAULT_NAMES[FAULT_REASON.PASID_INVALID];
    for (;;) {
      const r = this.path.run(acc);
      if (r === RUN_DONE) return undefined;
      if (r === RUN_FAULT) return acc.fault;
      const t = this.path.translate(acc);
      if (t === T_OK) continue;
      if (t === T_FAULT) return acc.fault;
      if (t === T_LOST) return FAULT_NAMES[FAULT_REASON.ATS_TIMEOUT];
      if (!this.pri.enabled) return FAULT_NAMES[FAULT_REASON.ATS_NO_TRANSLATION];
      if (acc.done !== acc.progressAt) {
        acc.progressAt = acc.done;
        acc.priRounds = 0;
      }
      if (acc.priRounds++ >= this.timing.maxPriRetries) return FAULT_NAMES[FAULT_REASON.PRI_RETRIES];
      const g = this.pageRequests.request(acc.pasid, acc.priv, acc.exec, acc.missAddr, acc.pages, acc.write, NOTHING);
      if (g.outcome === 'pending') {
        const outer = this.waiting;
        this.waiting = g;
        this.ctx.scheduler.runUntil(this.groupEnded);
        this.waiting = outer;
      }
      if (g.outcome !== 'success') return outcomeFault(g.outcome === 'pending' ? 'timeout' : g.outcome)[1];
    }
  }

  // --- reset -----------------------------------------------------------------

  /** FLR / conventional reset: every queue, cache, page request and pending event is gone. */
  protected override deviceReset(): void {
    this.timers.cancelAll();
    this.pageRequests.reset();
    this.invalidations.reset();
    this.atc.flush();
    for (const wq of this.workQueues) wq.reset();
    this.regs.reset();
    this.msix.reset();
    this.ats.reset();
    this.pri.reset();
    this.pasid.reset();
  }
}

/** Addresses are u64 at the API; inside they must be exact numbers. */
function checkRange(addr: bigint, length: number): number | string {
  if (!Number.isSafeInteger(length) || length < 0) return 'INVALID_LENGTH';
  const a = Number(addr);
  if (a < 0 || a + length > 2 ** 64) return 'INVALID_ADDRESS';
  if (!Number.isSafeInteger(a) || a + length > 2 ** 53) return 'UNSUPPORTED_REQUEST';
  return a;
}
