/**
 * The Arm SMMUv3 hardware model (Arm IHI 0070): registers, Stream and CD
 * tables, stage 1 / stage 2 / nested translation with HTTU, the IOTLB and
 * configuration caches, the Command, Event and PRI queues, MSIs and global
 * errors, PCIe ATS (Translation Requests, Translated transactions, ATC
 * invalidation) and the stall fault model.
 *
 * Software reaches it only through `region` (0x20000 bytes of MMIO: Page 0
 * and Page 1) and the structures it points at in `mem`; devices reach it
 * through `translate()` as the root complex's DmaRemapper (StreamID = the
 * requester ID, SubstreamID = the PASID) and through the AtsTranslationAgent
 * methods (Translation Requests, Page Requests, Invalidation Completions).
 * Messages to endpoints leave through `downstream` (the root complex).
 */
import { SMMUV3_INJECTION_POINTS } from './points.ts';
import { RegisterFile } from '../../src/hw/register-file.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type {
  AtsTranslationAgent, AtsTranslationCompletion, AtsTranslationRequest, PageRequestMessage,
} from '../../src/pci/ats-messages.ts';
import type { DmaRemapper, TranslationAnswer } from '../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../src/pci/transaction.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { idRegisterValues, smmuFeatures, type SmmuFeatures } from './caps.ts';
import { AtcInvalidator } from './atc-inv.ts';
import { AtsResponder } from './ats.ts';
import { CommandQueue } from './cmdq.ts';
import { ConfigCache } from './config.ts';
import type { AtsDownstream, SmmuCore, SmmuPoints } from './core.ts';
import { Iotlb } from './iotlb.ts';
import { Interrupts, type Smmuv3IrqLine } from './irq.ts';
import { PriQueue, PrgResponder } from './priq.ts';
import { EventQueue } from './queue.ts';
import { CR0, GBPA, GERROR, IRQ_CTRL, SHCFG_INCOMING, SMMU_PAGE0_ALIASES, SMMU_REGION_SIZE, SMMU_REGS, type SmmuRegMap, type SmmuRegName } from './regs.ts';
import type { StageEnv } from './stage.ts';
import { StallTable } from './stall.ts';
import { Translator } from './translate.ts';
import { WalkMem } from '../pgtable/walk-mem.ts';

export type { Smmuv3IrqLine } from './irq.ts';
export type { AtsDownstream } from './core.ts';

export interface Smmuv3Options {
  /** Trace source and counter prefix (default "smmuv3"). */
  name?: string;
  /** IOTLB entries (default 512), least-recently-used replacement. */
  iotlbSize?: number;
  /** Wired interrupt outputs, asserted when the source has no MSI address configured. */
  irq?: (line: Smmuv3IrqLine) => void;
  /** Output address size: 48 (default) or 52 bits. */
  oas?: 48 | 52;
  /** Reset value of GBPA.ABORT: abort (true) or bypass (false, default) while SMMUEN == 0. */
  gbpaAbort?: boolean;
  /**
   * Where ATS Invalidation Requests and PRG Responses go (the root complex).
   * Default: `ctx.rc` when the context is a Board.
   */
  downstream?: AtsDownstream;
  /** Virtual ns a CMD_SYNC waits for ATC invalidation completions before CERROR_ATC_INV_SYNC (default 500 µs). */
  atcInvTimeoutNs?: number;
  /** Virtual ns a stalled transaction waits for CMD_RESUME / CMD_STALL_TERM before it is aborted (default 1 ms). */
  stallTimeoutNs?: number;
  /**
   * Virtual ns each page-walk descriptor read adds to a transaction's or ATS
   * Translation Request's latency (default 100: one DRAM access). IOTLB hits
   * cost nothing.
   */
  walkReadNs?: number;
  /** Virtual ns each configuration structure fetch (L1STD, STE, L1CD, CD) adds (default 100). */
  tableFetchNs?: number;
}

/** DESIGN.md §3 defaults: a table or descriptor read is one memory access. */
export const SMMU_WALK_READ_NS = 100;
export const SMMU_TABLE_FETCH_NS = 100;

/** Registers that may only be written while another field is 0 ("Guarded", §6.2). */
const GUARDS: readonly [SmmuRegName[], 'CR0' | 'IRQ_CTRL', number][] = [
  [['STRTAB_BASE', 'STRTAB_BASE_CFG'], 'CR0', CR0.SMMUEN],
  [['CMDQ_BASE', 'CMDQ_CONS'], 'CR0', CR0.CMDQEN],
  [['EVENTQ_BASE', 'EVENTQ_PROD'], 'CR0', CR0.EVENTQEN],
  [['PRIQ_BASE', 'PRIQ_PROD'], 'CR0', CR0.PRIQEN],
  [['GERROR_IRQ_CFG0', 'GERROR_IRQ_CFG1', 'GERROR_IRQ_CFG2'], 'IRQ_CTRL', IRQ_CTRL.GERROR_IRQEN],
  [['PRIQ_IRQ_CFG0', 'PRIQ_IRQ_CFG1', 'PRIQ_IRQ_CFG2'], 'IRQ_CTRL', IRQ_CTRL.PRIQ_IRQEN],
  [['EVENTQ_IRQ_CFG0', 'EVENTQ_IRQ_CFG1', 'EVENTQ_IRQ_CFG2'], 'IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN],
];

export class Smmuv3 implements DmaRemapper, AtsTranslationAgent {
  readonly name: string;
  readonly region: MemoryRegion;
  readonly regs: RegisterFile<SmmuRegMap>;
  readonly features: SmmuFeatures;
  readonly iotlb: Iotlb;
  readonly config: ConfigCache;
  private readonly core: SmmuCore;
  private readonly irqs: Interrupts;
  private readonly evtq: EventQueue;
  private readonly cmdq: CommandQueue;
  private readonly translator: Translator;
  private readonly ats: AtsResponder;
  private readonly atcInv: AtcInvalidator;
  private readonly priq: PriQueue;
  private readonly stalls: StallTable;
  private readonly regNames = new Map<number, string>();
  private readonly walkReadNs: number;
  private readonly tableFetchNs: number;
  private readonly walkReads: Counter;

  constructor(
    private readonly ctx: SimContext,
    readonly mem: PhysMem,
    options: Smmuv3Options = {},
  ) {
    const name = options.name ?? 'smmuv3';
    this.name = name;
    this.features = smmuFeatures(options.oas ?? 48);
    const ids = idRegisterValues(this.features);
    const gbpaReset = SMMU_REGS.pack('GBPA', { SHCFG: SHCFG_INCOMING, ABORT: options.gbpaAbort === true ? 1 : 0 });
    for (const d of SMMU_REGS.specs) this.regNames.set(d.offset, d.name);
    this.regs = new RegisterFile(name, SMMU_REGION_SIZE, SMMU_REGS.withResets({ ...ids, GBPA: gbpaReset }));

    const k = (n: string) => ctx.counters.counter(`${name}.${n}`);
    const f = ctx.faults.define(SMMUV3_INJECTION_POINTS);
    const points: SmmuPoints = {
      walkRead: f['smmuv3.walk_read'], steFetch: f['smmuv3.ste_fetch'], cdFetch: f['smmuv3.cd_fetch'],
      evtqWrite: f['smmuv3.evtq_write'], cmdqProcess: f['smmuv3.cmdq_process'], msi: f['smmuv3.msi'],
      priqWrite: f['smmuv3.priq_write'], atcInv: f['smmuv3.atc_inv'], atcInvComplete: f['smmuv3.atc_inv_complete'],
      atsTreq: f['smmuv3.ats_treq'], priResp: f['smmuv3.pri_resp'], stall: f['smmuv3.stall'],
    };
    this.iotlb = new Iotlb(Math.max(1, options.iotlbSize ?? 512), {
      hit: k('iotlb.hit'), miss: k('iotlb.miss'), insert: k('iotlb.insert'), evict: k('iotlb.evict'), invalidate: k('iotlb.invalidate'),
    });
    const stageEnv: StageEnv = {
      tlb: this.iotlb,
      mem: new WalkMem(mem, points.walkRead),
      memNoWrites: new WalkMem(mem, points.walkRead, { noWrites: true }),
      walks: k('walks'), walkReads: k('walk.reads'), tracer: ctx.tracer, source: name,
    };
    const rc = (ctx as { rc?: Partial<AtsDownstream> }).rc;
    const downstream = options.downstream ?? (typeof rc?.sendAtsInvalidation === 'function' ? (rc as AtsDownstream) : undefined);
    this.core = {
      regs: this.regs, mem, features: this.features, points, stageEnv, tracer: ctx.tracer, counters: ctx.counters, source: name,
      scheduler: ctx.scheduler, downstream,
    };
    this.irqs = new Interrupts(this.regs, mem, points.msi, options.irq, ctx.tracer, name, k('msi'));
    this.evtq = new EventQueue(this.regs, mem, points.evtqWrite, this.irqs, this.features.evtqLog2Max, ctx.tracer, name, {
      recorded: k('events.recorded'), dropped: k('events.dropped'),
    });
    this.config = new ConfigCache(this.core);
    this.atcInv = new AtcInvalidator(this.core, {
      requests: k('atc.inv'), completions: k('atc.inv.complete'), unexpected: k('atc.inv.unexpected'), abandoned: k('atc.inv.timeout'),
    });
    const prg = new PrgResponder(this.core, { responses: k('pri.responses'), auto: k('pri.auto_responses') });
    this.priq = new PriQueue(this.core, this.config, this.irqs, prg, { recorded: k('pri.recorded'), discarded: k('pri.discarded') });
    this.stalls = new StallTable(this.core, timeoutNs(options.stallTimeoutNs, 1_000_000), {
      stalls: k('stalls'), resumes: k('stall.resumes'), timeouts: k('stall.timeouts'),
    });
    this.cmdq = new CommandQueue(this.core, this.config, this.iotlb, this.irqs, k('commands'), {
      atc: this.atcInv, prg, stalls: this.stalls, atcTimeoutNs: timeoutNs(options.atcInvTimeoutNs, 500_000),
    });
    this.walkReadNs = costNs(options.walkReadNs, SMMU_WALK_READ_NS);
    this.tableFetchNs = costNs(options.tableFetchNs, SMMU_TABLE_FETCH_NS);
    this.walkReads = stageEnv.walkReads;
    this.translator = new Translator(this.core, this.config, this.evtq, { translations: k('translations'), faults: k('faults') }, this.stalls);
    this.translator.gbpaAbort = options.gbpaAbort === true;
    this.ats = new AtsResponder(this.core, this.config, this.evtq, () => this.translator.enabled, {
      requests: k('ats.requests'), refused: k('ats.refused'),
    });
    this.installHooks();
    this.region = MemoryRegion.mmio(name, SMMU_REGION_SIZE, {
      read: (off, size) => this.regs.ops.read(alias(off), size),
      write: (off, size, value) => this.mmioWrite(alias(off), size, value),
    }, { minAccess: 4, maxAccess: 8 });
  }

  /** DmaRemapper: translate one piece of a transaction (StreamID = requester ID, SubstreamID = PASID). */
  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    const reads = this.walkReads.value;
    const fetches = this.config.fetches;
    const ok = this.translator.translate(txn, addr, out);
    // A hit read no table: two compares, nothing charged.
    if (reads !== this.walkReads.value || fetches !== this.config.fetches) out.latencyNs += this.costSince(reads, fetches);
    return ok;
  }

  /** Virtual ns of the walk reads and structure fetches since the counts given. */
  private costSince(reads: number, fetches: number): number {
    return (this.walkReads.value - reads) * this.walkReadNs + (this.config.fetches - fetches) * this.tableFetchNs;
  }

  // --- AtsTranslationAgent: ATS and PRI messages from endpoints ---------------

  /** An ATS Translation Request (ats.ts). */
  atsTranslate(req: AtsTranslationRequest): AtsTranslationCompletion {
    const reads = this.walkReads.value;
    const fetches = this.config.fetches;
    const c = this.ats.translate(req);
    // Reported with a successful completion (a refused request fails the device's access anyway).
    const ns = c.status === 'SC' && (reads !== this.walkReads.value || fetches !== this.config.fetches) ? this.costSince(reads, fetches) : 0;
    if (ns !== 0) c.latencyNs = ns;
    return c;
  }

  /** A Page Request Message: a record in the PRI queue (priq.ts). */
  pageRequest(msg: PageRequestMessage): void {
    this.priq.record(msg);
  }

  /** An Invalidation Completion Message (atc-inv.ts). */
  atsInvalidationCompleted(requesterId: number, itagVector: number, completionCount: number): void {
    this.atcInv.completed(requesterId, itagVector, completionCount);
  }

  /** Stalled transactions waiting now. */
  get stalledTransactions(): number {
    return this.stalls.size;
  }

  /** ATS Invalidation Requests sent and not completed. */
  get atcInvalidationsOutstanding(): number {
    return this.atcInv.outstanding;
  }

  /** Is a global error active (GERROR != GERRORN)? */
  gerrorActive(name: keyof typeof GERROR): boolean {
    return this.irqs.gerrorActive(GERROR[name]);
  }

  /** Back to the reset state: registers, caches and TLB. */
  reset(): void {
    this.regs.reset();
    this.config.invalidateAll();
    this.iotlb.flush();
    this.translator.enabled = false;
    this.translator.atsCheck = false;
    this.translator.gbpaAbort = (this.regs.get('GBPA') & GBPA.ABORT) !== 0;
    this.translator.forget();
    this.cmdq.reset();
    this.atcInv.reset();
    this.stalls.reset();
  }

  private mmioWrite(off: number, size: 1 | 2 | 4, value: number): void {
    this.regs.ops.write(off, size, value);
    const t = this.ctx.tracer;
    if (t.wants('smmuv3.reg')) {
      const base = off - (off % 4);
      const reg = this.regNames.get(base) ?? this.regNames.get(base - 4);
      if (reg !== undefined) t.trace('smmuv3.reg', this.name, { reg, offset: off, value: this.regs.ops.read(base, 4) });
    }
  }

  private installHooks(): void {
    const r = this.regs;
    r.onWrite('CR0', () => {
      // Updates complete at once: CR0ACK follows CR0 (§6.3.9).
      const old = r.get('CR0ACK');
      const v = r.get('CR0');
      r.set('CR0ACK', v);
      this.translator.enabled = (v & CR0.SMMUEN) !== 0;
      this.translator.atsCheck = (v & CR0.ATSCHK) !== 0;
      if (((old ^ v) & CR0.SMMUEN) !== 0) this.translator.forget();
      this.ctx.tracer.trace('smmuv3.enable', this.name, { reg: 'CR0ACK', value: v });
      if ((v & CR0.CMDQEN) !== 0 && (old & CR0.CMDQEN) === 0) this.cmdq.process();
    });
    r.onWrite('IRQ_CTRL', () => {
      r.set('IRQ_CTRLACK', r.get('IRQ_CTRL'));
      this.ctx.tracer.trace('smmuv3.enable', this.name, { reg: 'IRQ_CTRLACK', value: r.get('IRQ_CTRL') });
    });
    r.onWrite('GBPA', (_def, oldLo) => {
      const v = r.get('GBPA');
      // §6.3.14.1 (SMMUv3.2): a write without UPDATE is ignored; with it, the update completes at once.
      if ((v & GBPA.UPDATE) === 0) {
        r.set('GBPA', oldLo);
        return;
      }
      r.set('GBPA', (v & ~GBPA.UPDATE) >>> 0);
      this.translator.gbpaAbort = (v & GBPA.ABORT) !== 0;
      this.ctx.tracer.trace('smmuv3.enable', this.name, { reg: 'GBPA', value: r.get('GBPA') });
    });
    r.onWrite('GERRORN', (_def, oldLo) => {
      const acked = (oldLo ^ r.get('GERRORN')) >>> 0;
      for (const f of r.layout('GERRORN').order) {
        if ((acked & f.mask) !== 0 && !this.irqs.gerrorActive(f.mask)) {
          this.ctx.tracer.trace('smmuv3.gerror', this.name, { name: f.name, active: false });
        }
      }
      // Acknowledging CMDQ_ERR restarts command consumption (§7.1).
      if ((acked & GERROR.CMDQ_ERR) !== 0) this.cmdq.process();
    });
    r.onWrite('CMDQ_PROD', () => this.cmdq.process());
    for (const [names, ctrl, bit] of GUARDS) {
      for (const n of names) {
        r.onWrite(n, (_def, oldLo, oldHi) => {
          // §6.2: a Guarded register is read-only while its guard is set (SMMUv3.2: writes ignored).
          if (((r.get(ctrl) | r.get(`${ctrl}ACK`)) & bit) !== 0) r.set(n, oldLo, oldHi);
        });
      }
    }
  }
}

/** A cost option: a non-negative finite number of ns, else the default. */
function costNs(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : dflt;
}

/** A timeout option: a positive finite number of ns, else the default. */
function timeoutNs(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt;
}

/** SMMU_PAGE0_ALIASES as a table of the first 256 offsets (-1: no alias): every register access asks, and a frozen record's integer keys are a dictionary lookup. */
const ALIAS_LOW = 0x100;
const ALIASES = new Int32Array(ALIAS_LOW).fill(-1);
for (const [from, to] of Object.entries(SMMU_PAGE0_ALIASES)) {
  if (Number(from) >= ALIAS_LOW) throw new Error(`SMMU_PAGE0_ALIASES: 0x${Number(from).toString(16)} is beyond the alias table`);
  ALIASES[Number(from)] = to;
}

/** §6.2.1: Page 0 offsets of the Page 1 queue index registers alias them. */
function alias(off: number): number {
  if (off >= ALIAS_LOW) return off;
  const within = off & 3;
  const to = ALIASES[off - within]!;
  return to < 0 ? off : to + within;
}
