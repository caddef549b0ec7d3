/**
 * Command queue consumption (§4 "Commands", §7.1 "Command queue errors").
 * Commands are consumed synchronously when CMDQ_PROD is written (or the
 * queue is enabled, or a CMDQ_ERR is acknowledged), at most one queue's worth
 * per call, so a garbage PROD cannot loop forever. An unknown opcode, a set
 * RES0 bit or an ILLEGAL parameter stops consumption with CMDQ_CONS.ERR =
 * CERROR_ILL and GERROR.CMDQ_ERR until software toggles GERRORN.
 *
 * Everything but ATC invalidation completes at once. A CMD_SYNC reached
 * while ATS Invalidation Requests issued before it are still outstanding
 * (§4.7.3) holds the queue: CONS stays on the SYNC until the endpoints'
 * completions arrive (its completion signal and CONS advance then happen
 * in that later scheduler event), or until `atcTimeoutNs` of virtual time
 * passes, which stops the queue with CERROR_ATC_INV_SYNC at the SYNC; the
 * abandoned invalidations are forgotten, so repeating the SYNC completes.
 */
import { formatLayout, getBits, readField as rf, type BitRange, type FieldTable } from '../../src/hw/layout.ts';
import type { FieldRef, RegRef } from '../../src/hw/register-file.ts';
import type { ScheduledEvent } from '../../src/sim/scheduler.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { AtcInvalidator } from './atc-inv.ts';
import {
  CFGI_ALL_RANGE,
  CMD as C,
  CMD_LAYOUTS,
  CMD_LAYOUT_OF,
  CMD_OP,
  SYNC_CS,
  cmdHasReservedBits,
  cmdName,
  cmdOpcode,
  cmdReservedBits,
  tlbiGranule,
  tlbiRangeBytes,
} from './cmd.ts';
import type { ConfigCache } from './config.ts';
import type { SmmuCore } from './core.ts';
import { TlbMatch, type Iotlb } from './iotlb.ts';
import type { Interrupts } from './irq.ts';
import type { PrgResponder } from './priq.ts';
import { QueueGeometry, queueNext } from './queue.ts';
import { ATC_INV_SIZE_ALL, CERROR, CR0, GERROR, PRI_RESP } from './regs.ts';
import type { StallTable } from './stall.ts';
import { young } from '../../src/lib/young.ts';

const ERR_NAMES = ['CERROR_NONE', 'CERROR_ILL', 'CERROR_ABT', 'CERROR_ATC_INV_SYNC'];
/** execute(): the command (a CMD_SYNC) waits; CONS stays on it. */
const WAIT = -1;
const S1_ONLY = 1;
const S2_ONLY = 2;
const BOTH = 3;
/** SSec of each command that has one (it must be 0 on the Non-secure queue). */
const SSEC: readonly (BitRange | undefined)[] = CMD_LAYOUT_OF.map((l) => l?.fields['SSec']);

/** What the ATS, PRI and stall commands act on. */
export interface CommandTargets {
  readonly atc: AtcInvalidator;
  readonly prg: PrgResponder;
  readonly stalls: StallTable;
  /** How long a CMD_SYNC waits for ATC invalidation completions (virtual ns). */
  readonly atcTimeoutNs: number;
}

/** A CMD_SYNC waiting for ATC invalidations. */
interface SyncWait {
  index: number;
  seq: number;
  cs: number;
  msiAddr: number;
  msiData: number;
  timer: ScheduledEvent;
}

export class CommandQueue {
  private readonly geo: QueueGeometry;
  /** CMDQ_CONS.RD, resolved once (written per command). */
  private readonly rd: FieldRef;
  /** Registers read per PROD write, resolved once. */
  private readonly cr0ack: RegRef;
  private readonly prodReg: RegRef;
  private readonly consReg: RegRef;
  private wait: SyncWait | null = null;
  private readonly words = new Uint32Array(4);
  private readonly match = new TlbMatch();
  private reason = '';
  private busy = false;
  private rerun = false;

  constructor(
    private readonly core: SmmuCore,
    private readonly config: ConfigCache,
    private readonly tlb: Iotlb,
    private readonly irq: Interrupts,
    private readonly consumed: Counter,
    private readonly t: CommandTargets,
  ) {
    t.atc.onProgress = young(() => this.checkSync());
    this.geo = new QueueGeometry(core.regs, 'CMDQ_BASE');
    this.rd = core.regs.fieldRef('CMDQ_CONS', 'RD');
    this.cr0ack = core.regs.ref('CR0ACK');
    this.prodReg = core.regs.ref('CMDQ_PROD');
    this.consReg = core.regs.ref('CMDQ_CONS');
  }

  /** Is a CMD_SYNC waiting for ATC invalidations? */
  get syncWaiting(): boolean {
    return this.wait !== null;
  }

  /** Reset: a waiting CMD_SYNC is forgotten. */
  reset(): void {
    if (this.wait !== null) this.core.scheduler.cancel(this.wait.timer);
    this.wait = null;
  }

  /**
   * Consume commands between CONS and PROD while the queue is enabled and no
   * error is active. Re-entry (a CMD_SYNC MSI aimed at CMDQ_PROD) is folded
   * into the running call, which looks again a bounded number of times.
   */
  process(): void {
    if (this.busy) {
      this.rerun = true;
      return;
    }
    this.busy = true;
    try {
      let rounds = 0;
      do {
        this.rerun = false;
        this.consume();
      } while (this.rerun && ++rounds < 4);
    } finally {
      this.busy = false;
    }
  }

  private consume(): void {
    const r = this.core.regs;
    if (this.wait !== null || (this.cr0ack.get() & CR0.CMDQEN) === 0 || this.irq.gerrorActive(GERROR.CMDQ_ERR)) return;
    const g = this.geo.read(this.core.features.cmdqLog2Max, 16);
    const m = g.mask;
    const prod = this.prodReg.get() & m;
    let cons = this.consReg.get() & m;
    for (let budget = 2 ** g.log2; cons !== prod && budget > 0; budget--) {
      const err = this.fetchAndRun(g.entryAddr(cons, 16), cons);
      if (err === WAIT) return;
      if (err !== CERROR.NONE) {
        // §7.1: CONS stays on the bad command, ERR says why, CMDQ_ERR stops the queue.
        this.setCons(m, cons);
        r.setField('CMDQ_CONS', 'ERR', err);
        this.core.tracer.trace('smmuv3.cmd.error', this.core.source, {
          op: cmdName(cmdOpcode(this.words)), index: cons, err: ERR_NAMES[err] ?? String(err), reason: this.reason,
        });
        this.irq.activateGerror(GERROR.CMDQ_ERR);
        return;
      }
      cons = queueNext(cons, g.log2);
      this.setCons(m, cons);
    }
  }

  /** CMDQ_CONS.RD: the index and wrap bits under `mask` become `cons` (§3.5). */
  private setCons(mask: number, cons: number): void {
    this.rd.set(((this.rd.get() & ~mask) | cons) >>> 0);
  }

  private fetchAndRun(addr: number, index: number): number {
    const p = this.core.points.cmdqProcess;
    const a = p.check(p.armed ? { index, addr } : undefined);
    const w = this.words;
    w.fill(0);
    if (a?.kind === 'fail') return this.err(CERROR.ABT, 'command fetch aborted (injected)');
    for (let i = 0; i < 4; i++) {
      const v = this.core.mem.read32Checked(addr + 4 * i);
      if (v < 0) return this.err(CERROR.ABT, 'command fetch aborted');
      w[i] = v;
    }
    if (a?.kind === 'corrupt') {
      w[0] = (w[0]! ^ a.xorLo) >>> 0;
      w[1] = (w[1]! ^ (a.xorHi ?? 0)) >>> 0;
    }
    this.consumed.value++;
    const op = cmdOpcode(w);
    const t = this.core.tracer;
    if (t.wants('smmuv3.cmd')) {
      const l = CMD_LAYOUTS[op];
      t.trace('smmuv3.cmd', this.core.source, { op: cmdName(op), index, detail: l === undefined ? '' : formatLayout(l, w) });
    }
    return this.execute(w, op);
  }

  private err(code: number, reason: string): number {
    this.reason = reason;
    return code;
  }

  private execute(w: Uint32Array, op: number): number {
    if (CMD_LAYOUT_OF[op] === undefined) return this.err(CERROR.ILL, 'unknown or unsupported opcode');
    // IDR0.Hyp == 0: the EL2 invalidations are CERROR_ILL (§4.4.2).
    if (op >= CMD_OP.TLBI_EL2_ALL && op <= CMD_OP.TLBI_EL2_VAA) return this.err(CERROR.ILL, 'EL2 TLBI without IDR0.Hyp');
    if (cmdHasReservedBits(w, op)) return this.err(CERROR.ILL, `RES0 bits set: ${cmdReservedBits(w, op).join(',')}`);
    const ssec = SSEC[op];
    if (ssec !== undefined && getBits(w, ssec) !== 0) return this.err(CERROR.ILL, 'SSec on the Non-secure queue');
    const cfg = this.config;
    // Each case reads its own command's fields: a field the command lacks does not compile.
    switch (op) {
      case CMD_OP.PREFETCH_CONFIG:
      case CMD_OP.PREFETCH_ADDR:
        return CERROR.NONE; // prefetching is optional (§4.2)
      case CMD_OP.CFGI_STE: {
        const sid = rf(C.CFGI_STE, w, 'StreamID');
        return this.cfgi('CFGI_STE', sid, -1, cfg.invalidateSte(sid, rf(C.CFGI_STE, w, 'Leaf') === 1));
      }
      case CMD_OP.CFGI_STE_RANGE: {
        const sid = rf(C.CFGI_STE_RANGE, w, 'StreamID');
        const range = rf(C.CFGI_STE_RANGE, w, 'Range');
        const n = cfg.invalidateRange(sid, range);
        return this.cfgi(range === CFGI_ALL_RANGE ? 'CFGI_ALL' : 'CFGI_STE_RANGE', sid, -1, n);
      }
      case CMD_OP.CFGI_CD: {
        const sid = rf(C.CFGI_CD, w, 'StreamID');
        const ssid = rf(C.CFGI_CD, w, 'SubstreamID');
        return this.cfgi('CFGI_CD', sid, ssid, cfg.invalidateCd(sid, ssid, rf(C.CFGI_CD, w, 'Leaf') === 1));
      }
      case CMD_OP.CFGI_CD_ALL: {
        const sid = rf(C.CFGI_CD_ALL, w, 'StreamID');
        return this.cfgi('CFGI_CD_ALL', sid, -1, cfg.invalidateCdAll(sid));
      }
      case CMD_OP.TLBI_NH_ALL:
        return this.tlbi('TLBI_NH_ALL', this.match.reset(S1_ONLY), rf(C.TLBI_NH_ALL, w, 'VMID'), -1);
      case CMD_OP.TLBI_NH_ASID:
        return this.tlbi('TLBI_NH_ASID', this.match.reset(S1_ONLY), rf(C.TLBI_NH_ASID, w, 'VMID'), rf(C.TLBI_NH_ASID, w, 'ASID'));
      case CMD_OP.TLBI_NH_VA: {
        const m = this.match.reset(S1_ONLY);
        const e = this.range(m, w, C.TLBI_NH_VA);
        if (e !== null) return this.err(CERROR.ILL, e);
        m.globals = true;
        return this.tlbi('TLBI_NH_VA', m, rf(C.TLBI_NH_VA, w, 'VMID'), rf(C.TLBI_NH_VA, w, 'ASID'));
      }
      case CMD_OP.TLBI_NH_VAA: {
        const m = this.match.reset(S1_ONLY);
        const e = this.range(m, w, C.TLBI_NH_VAA);
        if (e !== null) return this.err(CERROR.ILL, e);
        m.globals = true;
        return this.tlbi('TLBI_NH_VAA', m, rf(C.TLBI_NH_VAA, w, 'VMID'), -1);
      }
      case CMD_OP.TLBI_S12_VMALL:
        return this.tlbi('TLBI_S12_VMALL', this.match.reset(BOTH), rf(C.TLBI_S12_VMALL, w, 'VMID'), -1);
      case CMD_OP.TLBI_S2_IPA: {
        const m = this.match.reset(S2_ONLY);
        const e = this.range(m, w, C.TLBI_S2_IPA);
        if (e !== null) return this.err(CERROR.ILL, e);
        return this.tlbi('TLBI_S2_IPA', m, rf(C.TLBI_S2_IPA, w, 'VMID'), -1);
      }
      case CMD_OP.TLBI_NSNH_ALL:
        return this.tlbi('TLBI_NSNH_ALL', this.match.reset(BOTH), -1, -1);
      case CMD_OP.SYNC: {
        const cs = rf(C.SYNC, w, 'CS');
        if (cs === 3) return this.err(CERROR.ILL, 'CMD_SYNC.CS reserved');
        const msiAddr = rf(C.SYNC, w, 'MSIAddr') * 4;
        const msiData = rf(C.SYNC, w, 'MSIData');
        const seq = this.t.atc.seq;
        if (this.t.atc.pendingUpTo(seq)) return this.beginWait(seq, cs, msiAddr, msiData);
        // Everything before was done synchronously; only the completion signal remains.
        if (cs === SYNC_CS.IRQ) this.irq.syncComplete(msiAddr, msiData);
        return CERROR.NONE;
      }
      case CMD_OP.ATC_INV: {
        // §4.5.1: 2^Size 4KB pages from Address, aligned to the span; Size >= 52 is everything.
        const size = rf(C.ATC_INV, w, 'Size');
        const span = size >= ATC_INV_SIZE_ALL ? 2 ** 64 : 4096 * 2 ** size;
        const a = size >= ATC_INV_SIZE_ALL ? 0 : rf(C.ATC_INV, w, 'Address') * 4096;
        const ssv = rf(C.ATC_INV, w, 'SSV') === 1;
        const global = ssv && rf(C.ATC_INV, w, 'Global') === 1;
        this.t.atc.issue(rf(C.ATC_INV, w, 'StreamID'), ssv ? rf(C.ATC_INV, w, 'SubstreamID') : -1, global, a - (a % span), span);
        return CERROR.NONE;
      }
      case CMD_OP.PRI_RESP: {
        const resp = rf(C.PRI_RESP, w, 'Resp');
        if (resp > PRI_RESP.SUCCESS) return this.err(CERROR.ILL, 'CMD_PRI_RESP.Resp reserved');
        const code = resp === PRI_RESP.SUCCESS ? 'success' : resp === PRI_RESP.FAIL ? 'failure' : 'invalid';
        const ssid = rf(C.PRI_RESP, w, 'SSV') === 1 ? rf(C.PRI_RESP, w, 'SubstreamID') : -1;
        this.t.prg.send(rf(C.PRI_RESP, w, 'StreamID'), ssid, rf(C.PRI_RESP, w, 'PRGIndex'), code, false);
        return CERROR.NONE;
      }
      case CMD_OP.RESUME:
        this.t.stalls.resume(rf(C.RESUME, w, 'StreamID'), rf(C.RESUME, w, 'STAG'), rf(C.RESUME, w, 'Ac'), rf(C.RESUME, w, 'Ab'));
        return CERROR.NONE;
      case CMD_OP.STALL_TERM:
        this.t.stalls.terminateAll(rf(C.STALL_TERM, w, 'StreamID'));
        return CERROR.NONE;
      default:
        return this.err(CERROR.ILL, 'unsupported opcode');
    }
  }

  private beginWait(seq: number, cs: number, msiAddr: number, msiData: number): number {
    const index = this.core.regs.get('CMDQ_CONS') & this.geo.mask;
    const timer = this.core.scheduler.schedule(this.t.atcTimeoutNs, () => this.syncTimedOut(), 'smmuv3.sync-timeout');
    this.wait = { index, seq, cs, msiAddr, msiData, timer };
    this.core.tracer.trace('smmuv3.sync', this.core.source, { index, state: 'wait' });
    return WAIT;
  }

  /** ATC invalidations completed: finish a waiting CMD_SYNC if nothing it waits for is left. */
  private checkSync(): void {
    const w = this.wait;
    if (w === null || this.t.atc.pendingUpTo(w.seq)) return;
    this.core.scheduler.cancel(w.timer);
    this.wait = null;
    const r = this.core.regs;
    // Consumption stopped meanwhile (CMDQEN cleared): the SYNC runs again when it restarts.
    if ((r.get('CR0ACK') & CR0.CMDQEN) === 0) return;
    if (w.cs === SYNC_CS.IRQ) this.irq.syncComplete(w.msiAddr, w.msiData);
    const m = this.geo.read(this.core.features.cmdqLog2Max, 16).mask;
    this.setCons(m, queueNext(w.index, this.geo.log2));
    this.core.tracer.trace('smmuv3.sync', this.core.source, { index: w.index, state: 'complete' });
    this.process();
  }

  /** §7.1 CERROR_ATC_INV_SYNC: CONS stays on the SYNC, the queue stops until GERRORN is toggled. */
  private syncTimedOut(): void {
    const w = this.wait;
    if (w === null) return;
    this.wait = null;
    const n = this.t.atc.abandon(w.seq);
    const r = this.core.regs;
    r.setField('CMDQ_CONS', 'ERR', CERROR.ATC_INV_SYNC);
    this.core.tracer.trace('smmuv3.cmd.error', this.core.source, {
      op: 'SYNC', index: w.index, err: ERR_NAMES[CERROR.ATC_INV_SYNC]!, reason: `${n} ATC invalidation(s) not completed`,
    });
    this.irq.activateGerror(GERROR.CMDQ_ERR);
  }

  /**
   * Address, range (TG/NUM/SCALE) and level hint (TTL) of a TLBI by address
   * (§4.4.1.1), or why the combination is ILLEGAL. The scope is the minimum
   * the specification requires: with TG != 0 only entries of that granule,
   * with TTL != 0 only leaves of that level. The Leaf flag changes nothing:
   * this TLB holds leaf entries only.
   */
  private range(m: TlbMatch, w: Uint32Array, l: FieldTable<'TG' | 'NUM' | 'SCALE' | 'TTL' | 'Address'>): string | null {
    const tg = rf(l, w, 'TG');
    const num = rf(l, w, 'NUM');
    const scale = rf(l, w, 'SCALE');
    const ttl = rf(l, w, 'TTL');
    const addr = rf(l, w, 'Address') * 4096;
    if (tg === 0) {
      if ((num | scale | ttl) !== 0) return 'NUM/SCALE/TTL set with TG == 0';
      m.lo = addr;
      m.hi = addr + 1;
      return null;
    }
    if (num === 0 && scale === 0 && ttl === 0) return 'TG with NUM == SCALE == TTL == 0 is reserved';
    if (tg === 2 && ttl === 1) return 'TTL == 1 with a 16K granule needs IDR5.DS';
    m.granule = tlbiGranule(tg);
    m.level = ttl;
    m.lo = addr;
    m.hi = addr + tlbiRangeBytes(tg, num, scale);
    return null;
  }

  private tlbi(op: string, m: TlbMatch, vmid: number, asid: number): number {
    m.vmid = vmid;
    m.asid = asid;
    const n = this.tlb.invalidate(m);
    const t = this.core.tracer;
    if (t.wants('smmuv3.tlbi')) {
      t.trace('smmuv3.tlbi', this.core.source, {
        op, vmid, asid, addr: m.lo, size: Number.isFinite(m.hi) ? m.hi - m.lo : -1, entries: n,
      });
    }
    return CERROR.NONE;
  }

  private cfgi(op: string, sid: number, ssid: number, entries: number): number {
    this.core.tracer.trace('smmuv3.cfg.invalidate', this.core.source, { op, sid, ssid, entries });
    return CERROR.NONE;
  }
}
