/**
 * One translation stage as the SMMU runs it: the VMSAv8-64 walker from
 * iommu/pgtable configured from a CD (stage 1, §5.4) or an STE (stage 2,
 * §5.2), fronted by the IOTLB. Stage2 is also the TableAddrTranslator of a
 * nested stage 1 walk (§3.3.4: stage 1 table and CD addresses are IPAs), and
 * its TLB entries double as a cache of those table-address translations.
 * S2PTW (§5.2) is checked here: a CD or stage 1 table access mapped as Device
 * at stage 2 is a stage 2 Permission fault.
 */
import {
  ACCESS_READ,
  ACCESS_WRITE,
  FAULT_NAMES,
  FaultKind,
  VmsaWalker,
  WalkResult,
  permits,
  type TableAddrTranslator,
  type VmsaGranule,
} from '../pgtable/index.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import type { Cd } from './cd.ts';
import { ASID_GLOBAL, Iotlb, TLB_S1, TLB_S2, type IotlbEntry } from './iotlb.ts';
import type { S2Config } from './ste.ts';
import type { WalkMem } from '../pgtable/walk-mem.ts';
import { remPow2 } from '../pgtable/walk-common.ts';

// Module-local copies of imported bindings read on every TLB hit.
const allows = permits;
const WRITE = ACCESS_WRITE;
const GLOBAL_ASID = ASID_GLOBAL;

/** What every stage shares: the TLB, the walker's memory views, counters and tracing. */
export interface StageEnv {
  readonly tlb: Iotlb;
  readonly mem: WalkMem;
  /** The same memory with hardware updates dropped (AFFD). */
  readonly memNoWrites: WalkMem;
  readonly walks: Counter;
  readonly walkReads: Counter;
  readonly tracer: Tracer;
  readonly source: string;
}

/** A TLB tag with its interned id, refreshed when the TLB resets its tags. */
export class TlbTag {
  id = -1;
  epoch = -1;
  constructor(readonly key: number) {}

  get(tlb: Iotlb): number {
    if (this.epoch !== tlb.epoch) {
      this.id = tlb.intern(this.key);
      this.epoch = tlb.epoch;
    }
    return this.id;
  }
}

/** Result fields shared by both stages (set by translate()). */
abstract class StageBase {
  /** Output address of the last successful translation, bytes to the end of its page, its permissions. */
  oa = 0;
  avail = 0;
  perms = 0;
  /** Size of the leaf (page or block) that translated, and whether it was global (stage 1 nG == 0). */
  size = 0;
  global = false;
  /** On failure: FaultKind, lookup level, and for external aborts the descriptor address. */
  fault = 0;
  level = 0;
  failAddr = 0;
  protected readonly r = new WalkResult();

  constructor(protected readonly env: StageEnv) {}

  protected hit(e: IotlbEntry, ia: number): true {
    this.oa = e.oa + (ia - e.ia);
    this.avail = e.ia + e.size - ia;
    this.perms = e.perms;
    this.size = e.size;
    this.global = e.asid === GLOBAL_ASID;
    return true;
  }

  protected walked(w: VmsaWalker, ia: number, access: number, stage: number, ssid: number, sid: number): boolean {
    const env = this.env;
    const r = this.r;
    env.mem.lastFailAddr = -1;
    env.memNoWrites.lastFailAddr = -1;
    env.mem.requester(sid, ssid);
    env.memNoWrites.requester(sid, ssid);
    const ok = w.walk(ia, access, r);
    env.walks.value++;
    env.walkReads.value += r.memReads;
    if (env.tracer.wants('smmuv3.walk')) {
      env.tracer.trace('smmuv3.walk', env.source, {
        sid, ssid, stage, ia, oa: ok ? r.outputAddr : 0, size: ok ? r.pageSize : 0, reads: r.memReads, writes: r.memWrites,
        fault: ok ? '' : FAULT_NAMES[r.fault] ?? String(r.fault),
      });
    }
    if (!ok) {
      this.fault = r.fault;
      this.level = r.faultLevel;
      this.failAddr = Math.max(env.mem.lastFailAddr, env.memNoWrites.lastFailAddr);
      return false;
    }
    this.oa = r.outputAddr;
    this.avail = r.pageSize - remPow2(ia, r.pageSize);
    this.perms = r.perms;
    this.size = r.pageSize;
    this.global = !r.nonGlobal;
    return true;
  }
}

export class Stage2 extends StageBase implements TableAddrTranslator {
  readonly walker: VmsaWalker;
  readonly tag: TlbTag;
  readonly record: boolean;
  readonly ptw: boolean;
  /** STE.S2S: translation-related faults stall. */
  readonly stall: boolean;
  readonly granule: VmsaGranule;
  /** Set on failure: was the access a write (TTRnW), and did it come from a stage 1 table walk? */
  write = false;
  sid = 0;

  constructor(env: StageEnv, cfg: S2Config, readonly vmid: number) {
    super(env);
    const affd = cfg.affd && !cfg.ha;
    this.walker = new VmsaWalker(affd ? env.memNoWrites : env.mem, {
      stage: 2, granule: cfg.granule, tsz: cfg.tsz, sl0: cfg.sl0, ttb: cfg.ttb, oaBits: cfg.oaBits,
      ha: cfg.ha || affd, hd: cfg.hd, xnx: true,
    });
    this.tag = new TlbTag(Iotlb.tagKey(TLB_S2, vmid, 0));
    this.record = cfg.record;
    this.ptw = cfg.ptw;
    this.stall = cfg.stall;
    this.granule = cfg.granule;
  }

  /** IPA → PA for `access`; `table` marks a CD or stage 1 table access (S2PTW applies). */
  translate(ipa: number, access: number, table: boolean): boolean {
    const tlb = this.env.tlb;
    const id = this.tag.get(tlb);
    const e = tlb.lookup(id, ipa);
    if (e !== undefined && allows(e.perms, access) && !(table && this.ptw && isDevice(e.attrs))) return this.hit(e, ipa);
    this.write = (access & WRITE) !== 0;
    if (!this.walked(this.walker, ipa, access, 2, -1, this.sid)) return false;
    const r = this.r;
    tlb.insert(id, TLB_S2, this.vmid, 0, ipa, r.outputAddr, Math.log2(r.pageSize), r.perms, r.level, this.granule, r.attrs);
    if (table && this.ptw && isDevice(r.attrs)) {
      // S2PTW: a table walk into Device memory is a stage 2 Permission fault.
      this.fault = FaultKind.Permission;
      this.level = r.level;
      return false;
    }
    return true;
  }

  translateTableAddr(addr: number, write: boolean, r: WalkResult): number {
    if (this.translate(addr, write ? ACCESS_WRITE : ACCESS_READ, true)) return this.oa;
    r.s2FaultKind = this.fault as FaultKind;
    r.s2FaultLevel = this.level;
    return -1;
  }
}

/** Stage 2 seen by a stage 1 walk that must not write (AFFD): write-backs are translated as reads. */
class ReadOnlyTables implements TableAddrTranslator {
  constructor(private readonly s2: Stage2) {}
  translateTableAddr(addr: number, _write: boolean, r: WalkResult): number {
    return this.s2.translateTableAddr(addr, false, r);
  }
}

export class Stage1 extends StageBase {
  readonly walker: VmsaWalker | null;
  readonly tag: TlbTag;
  readonly gtag: TlbTag;
  readonly cd: Cd;
  /** Set when a nested walk failed at stage 2. */
  s2Fault = false;
  s2Addr = 0;

  constructor(env: StageEnv, cd: Cd, readonly vmid: number, readonly s2: Stage2 | null) {
    super(env);
    this.cd = cd;
    const affd = cd.affd && !cd.ha;
    const tables = s2 === null ? undefined : affd ? new ReadOnlyTables(s2) : s2;
    this.walker = cd.epd0 ? null : new VmsaWalker(affd ? env.memNoWrites : env.mem, {
      stage: 1, granule: cd.granule, tsz: cd.tsz, ttb: cd.ttb0, oaBits: cd.ipsBits,
      ha: cd.ha || affd, hd: cd.hd, hpd: cd.hpd, wxn: cd.wxn, ...(tables === undefined ? {} : { tableAddrTranslator: tables }),
    });
    this.tag = new TlbTag(Iotlb.tagKey(TLB_S1, vmid, cd.asid));
    this.gtag = new TlbTag(Iotlb.tagKey(TLB_S1, vmid, ASID_GLOBAL));
  }

  /** VA → IPA (or PA) for `access`. PAN is applied by the caller. */
  translate(va: number, access: number, sid: number, ssid: number): boolean {
    const tlb = this.env.tlb;
    const e = tlb.lookup(this.tag.get(tlb), va, this.gtag.get(tlb));
    if (e !== undefined && allows(e.perms, access)) return this.hit(e, va);
    this.s2Fault = false;
    const w = this.walker;
    if (w === null) {
      // EPD0: a TLB miss in the TTB0 region is a Translation fault, no walk (§5.4).
      this.fault = FaultKind.Translation;
      this.level = 0;
      return false;
    }
    if (!this.walked(w, va, access, 1, ssid, sid)) {
      const r = this.r;
      if (r.fault === FaultKind.Stage2) {
        this.s2Fault = true;
        this.s2Addr = r.s2FaultAddr;
      }
      return false;
    }
    const r = this.r;
    const tag = r.nonGlobal ? this.tag : this.gtag;
    tlb.insert(tag.get(tlb), TLB_S1, this.vmid, r.nonGlobal ? this.cd.asid : ASID_GLOBAL, va, r.outputAddr,
      Math.log2(r.pageSize), r.perms, r.level, this.cd.granule, r.attrs);
    return true;
  }
}

/** Stage 2 MemAttr[3:2] == 0b00 is Device memory (Arm ARM D8.5.5). */
function isDevice(memAttr: number): boolean {
  return (memAttr & 0b1100) === 0;
}
