/**
 * The driver's side of the Event queue and the PRI queue (Linux
 * arm_smmu_evtq_thread, arm_smmu_priq_thread, arm_smmu_handle_ppr,
 * arm_smmu_handle_evt): their MSIs schedule a drain (as a threaded IRQ
 * would run a little later), records are consumed from CONS to PROD and an
 * overflow is acknowledged. Page requests and stall events go to the
 * host's I/O page-fault queue; what nobody can handle is answered at once
 * (PRI: Invalid Request; stall: CMD_RESUME abort). Other events of a master
 * under a nested domain go to its vSMMU's vEVENTQ (nested.ts). With the
 * mainline PRI mode (driver.ts SmmuPriMode) every page request is logged as
 * unexpected and a last one denied, as Linux 7.3's arm_smmu_handle_ppr().
 */
import type { Host } from '../../../src/host/host.ts';
import { KERN_ERR, KERN_INFO } from '../../../src/host/kmsg.ts';
import type { DriverDomain, PageRequest } from '../../../src/iommu-core/types.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { EVT, EVT_HEADER, PRIQ_BYTES, PRIQ_LAYOUT, decodeEvent, decodePriRecord, eventName, type EventField, type EventFields } from '../event.ts';
import { CR0, IRQ_CTRL, PRI_RESP, Q_OVF, SMMU_REG, SMMU_REGS } from '../regs.ts';
import { getBits, readField } from '../../../src/hw/layout.ts';
import type { CommandQueue } from './cmdq.ts';
import type { SmmuPriMode } from './driver.ts';
import { NestedDomain } from './nested.ts';

export const EVTQ_LOG2 = 7;
/** The events arm_smmu_handle_event() accepts (and may forward to a vSMMU); the rest are only logged. */
const VMASTER_EVENTS = new Set<number>([
  EVT.C_BAD_STE, EVT.F_STREAM_DISABLED, EVT.C_BAD_SUBSTREAMID, EVT.C_BAD_CD,
  EVT.F_TRANSLATION, EVT.F_ADDR_SIZE, EVT.F_ACCESS, EVT.F_PERMISSION,
]);
const EVT_BYTES = 32;
const PRI = PRIQ_LAYOUT.fields;
const PRIQ_LOG2 = 8;
const ISH = 3;
/** *_IRQ_CFG2.MEMATTR 0b0001: Device-nGnRE, as Linux's MSI writes use. */
const MEMATTR_DEVICE_nGnRE = 0b0001;

/** A decoded event-queue record the driver has consumed. */
export interface SmmuEventRecord {
  name: string;
  sid: number;
  ssid: number;
  addr: number;
  /** The record's fields (a command error carries the refused command's Opcode instead). */
  fields: Partial<Record<EventField | 'Opcode', number>>;
}

/** What the queues need to know about a master. */
export interface QueueMaster {
  readonly dev: PciFunction;
  /** Page requests (PRI) are enabled and go to the IOPF queue. */
  readonly pri: boolean;
  /** Stall events go to the IOPF queue. */
  readonly stall: boolean;
  /** The RID's domain: under a NestedDomain the master is a vmaster, whose stage-1 events go to its vSMMU. */
  readonly rid: DriverDomain | undefined;
  readonly prgPasidRequired: boolean;
}

export interface QueueHost {
  readonly host: Host;
  readonly mmio: PhysMem;
  readonly base: number;
  readonly cmdq: CommandQueue;
  master(sid: number): QueueMaster | undefined;
  /** How page requests are handled (driver.ts). */
  readonly priMode: SmmuPriMode;
  /** The SMMU's device name in log lines (dev_name(smmu->dev)). */
  readonly devName: string;
  alloc(bytes: number): number | undefined;
  /** Set bits in CR0 and wait for CR0ACK. */
  enable(cr0Bits: number): void;
}

export class FaultQueues {
  readonly events: SmmuEventRecord[] = [];
  /** Events of nested masters reported to a vEVENTQ, and events nobody took (only logged). */
  eventsForwarded = 0;
  eventsUnhandled = 0;
  /** Page requests handed to the IOPF queue, and those answered at once. */
  pageRequests = 0;
  pageRequestsRefused = 0;
  priqOverflows = 0;
  private priqBase = 0;
  private priqLog2 = 0;
  private irqCtrl = 0;
  /** Scratch for one PRI record (decoded before the next is read). */
  private readonly priWords = new Uint32Array(4);
  /** The record's bytes, read from the queue in one access (queue_read's copy), and a view to take the words from. */
  private readonly priBytes = new Uint8Array(PRIQ_BYTES);
  private readonly priView = new DataView(this.priBytes.buffer);
  private readonly drainPriEvent = (): void => {
    this.drainPri();
  };

  constructor(
    private readonly h: QueueHost,
    readonly evtqBase: number,
  ) {}

  get priqEnabled(): boolean {
    return this.priqBase !== 0;
  }

  private r32(off: number): number {
    return this.h.mmio.read32(this.h.base + off);
  }

  private w32(off: number, v: number): void {
    this.h.mmio.write32(this.h.base + off, v >>> 0);
  }

  /** A 64-bit register write; bigint so high attribute bits (WA at 62) cannot swallow low ones. */
  private w64(off: number, v: bigint): void {
    this.h.mmio.write64(this.h.base + off, v);
  }

  /** MSIs for the event queue and global errors. */
  setupIrqs(): void {
    this.w32(SMMU_REG.IRQ_CTRL, 0);
    const board = this.h.host.platform;
    const evt = this.h.host.allocMsiData();
    const gerr = this.h.host.allocMsiData();
    const doorbell = board.msi.base;
    this.w64(SMMU_REG.EVENTQ_IRQ_CFG0, SMMU_REGS.pack64('EVENTQ_IRQ_CFG0', { ADDR: doorbell / 4 }));
    this.w32(SMMU_REG.EVENTQ_IRQ_CFG1, SMMU_REGS.pack('EVENTQ_IRQ_CFG1', { DATA: evt }));
    this.w32(SMMU_REG.EVENTQ_IRQ_CFG2, SMMU_REGS.pack('EVENTQ_IRQ_CFG2', { MEMATTR: MEMATTR_DEVICE_nGnRE, SH: ISH }));
    this.w64(SMMU_REG.GERROR_IRQ_CFG0, SMMU_REGS.pack64('GERROR_IRQ_CFG0', { ADDR: doorbell / 4 }));
    this.w32(SMMU_REG.GERROR_IRQ_CFG1, SMMU_REGS.pack('GERROR_IRQ_CFG1', { DATA: gerr }));
    board.msi.on(evt, () => board.scheduler.schedule(0, () => this.drainEvents(), 'smmuv3.evtq-irq'));
    this.irqCtrl = IRQ_CTRL.EVENTQ_IRQEN | IRQ_CTRL.GERROR_IRQEN;
    this.w32(SMMU_REG.IRQ_CTRL, this.irqCtrl);
  }

  /**
   * Bring the PRI queue up once (arm_smmu_device_reset's PRIQ part):
   * PRIQ_BASE and indexes while PRIQEN == 0, the MSI while PRIQ_IRQEN == 0,
   * then CR0.PRIQEN and IRQ_CTRL.PRIQ_IRQEN. 0, or -12 without memory.
   */
  enablePriq(idr1Priqs: number): number {
    if (this.priqBase !== 0) return 0;
    const log2 = Math.min(PRIQ_LOG2, idr1Priqs);
    const base = this.h.alloc(PRIQ_BYTES * 2 ** log2);
    if (base === undefined) return -12;
    this.priqLog2 = log2;
    this.w64(SMMU_REG.PRIQ_BASE, SMMU_REGS.pack64('PRIQ_BASE', { WA: 1, ADDR: base / 32, LOG2SIZE: log2 }));
    this.w32(SMMU_REG.PRIQ_PROD, 0);
    this.w32(SMMU_REG.PRIQ_CONS, 0);
    const board = this.h.host.platform;
    const data = this.h.host.allocMsiData();
    this.w64(SMMU_REG.PRIQ_IRQ_CFG0, SMMU_REGS.pack64('PRIQ_IRQ_CFG0', { ADDR: board.msi.base / 4 }));
    this.w32(SMMU_REG.PRIQ_IRQ_CFG1, SMMU_REGS.pack('PRIQ_IRQ_CFG1', { DATA: data }));
    this.w32(SMMU_REG.PRIQ_IRQ_CFG2, SMMU_REGS.pack('PRIQ_IRQ_CFG2', { MEMATTR: MEMATTR_DEVICE_nGnRE, SH: ISH }));
    board.msi.on(data, () => board.scheduler.schedule(0, this.drainPriEvent, 'smmuv3.priq-irq'));
    this.priqBase = base;
    this.h.enable(CR0.PRIQEN);
    this.irqCtrl |= IRQ_CTRL.PRIQ_IRQEN;
    this.w32(SMMU_REG.IRQ_CTRL, this.irqCtrl);
    return 0;
  }

  /** Consume records from CONS to PROD, calling `each` with each record's address; returns how many. */
  private drain(prodReg: number, consReg: number, base: number, log2: number, bytes: number, each: (addr: number) => void): number {
    const entries = 2 ** log2;
    const mask = 2 * entries - 1;
    let n = 0;
    for (let guard = 0; guard < entries + 1; guard++) {
      const prod = this.r32(prodReg);
      let cons = this.r32(consReg) & mask;
      // Acknowledge an overflow by copying OVFLG into OVACKFLG (§7.4, §8.2).
      if (((prod ^ cons) & mask) === 0) {
        this.w32(consReg, cons | (prod & Q_OVF));
        break;
      }
      each(base + (cons % entries) * bytes);
      cons = (cons + 1) & mask;
      this.w32(consReg, cons | (prod & Q_OVF));
      n++;
    }
    return n;
  }

  /** arm_smmu_evtq_thread(): consume every record; stall events go to the IOPF queue. */
  drainEvents(): number {
    return this.drain(SMMU_REG.EVENTQ_PROD, SMMU_REG.EVENTQ_CONS, this.evtqBase, EVTQ_LOG2, EVT_BYTES, (at) => {
      const words = new Uint32Array(8);
      for (let i = 0; i < 8; i++) words[i] = this.h.mmio.read32(at + 4 * i);
      const f = decodeEvent(words);
      const ssid = f.SSV ? (f.SubstreamID ?? 0) : -1;
      this.events.push({ name: eventName(f.EventType), sid: f.StreamID ?? -1, ssid, addr: f.InputAddr ?? 0, fields: f });
      if (this.events.length > 4096) this.events.shift();
      if (f.Stall === 1) this.stallEvent(f, ssid);
      else this.vmasterEvent(words, f);
    });
  }

  /**
   * arm_smmu_handle_event() for an event that did not stall: one of the
   * kinds a guest can be told about, of a master attached to a nested
   * domain, not a stage-2 fault (EVTQ_1_S2, bit 103, clear): reported to the
   * vSMMU's vEVENTQ with the vSID. Anything else, or a report that fails
   * (no vDEVICE, no vEVENTQ), is only logged (arm_smmu_dump_event): it stays
   * in `events` and counts in `eventsUnhandled`.
   */
  private vmasterEvent(words: Uint32Array, f: EventFields): void {
    const m = VMASTER_EVENTS.has(f.EventType) ? this.h.master(readField(EVT_HEADER, words, 'StreamID')) : undefined;
    if (m?.rid instanceof NestedDomain && (f.S2 ?? 0) === 0 && m.rid.reportEvent(m.dev, words) === 0) {
      this.eventsForwarded++;
      return;
    }
    this.eventsUnhandled++;
  }

  /** arm_smmu_handle_evt() for a stalled transaction: report it as a one-request fault group (grpid = STAG). */
  private stallEvent(f: EventFields, ssid: number): void {
    const sid = f.StreamID!;
    const stag = f.STAG!;
    const m = this.h.master(sid);
    if (m === undefined || !m.stall) {
      // Nobody cared: abort the access (no CMD_SYNC, as Linux: RESUME and PRI_RESP are fire and forget).
      this.h.cmdq.issueOne('RESUME', { StreamID: sid, STAG: stag, Ab: 1 }, false);
      return;
    }
    const read = f.RnW === 1;
    const req: PageRequest = {
      pasid: ssid, grpid: stag, addr: f.InputAddr!, read, write: !read, exec: f.InD === 1, priv: f.PnU === 1,
      last: true, needsPasid: false, cookie: stag,
    };
    this.h.host.iopf.report(m.dev, req);
  }

  /** dev_info / dev_err of this SMMU: a line of the host's kernel log (/dev/kmsg), "arm-smmu-v3 <dev>: ..." as dmesg shows it. */
  private printk(level: number, line: string): void {
    this.h.host.kmsg.printk(level, `${this.logPrefix}${line}`);
  }

  private get logPrefix(): string {
    return `arm-smmu-v3 ${this.h.devName}: `;
  }

  /** The kernel log lines this SMMU printed, oldest first. */
  get log(): string[] {
    const prefix = this.logPrefix;
    return this.h.host.kmsg.records.filter((r) => r.text.startsWith(prefix)).map((r) => r.text);
  }

  /**
   * Linux 7.3 arm_smmu_handle_ppr(): nobody services PRI. The record is
   * logged with its fields (IOMMU_NO_PASID, 0, without SSV) and a last one is
   * answered CMD_PRI_RESP with the record's SSV/SubstreamID and Resp Deny.
   * Stop Markers are not told apart.
   */
  private unexpectedPpr(f: ReturnType<typeof decodePriRecord>): void {
    const ssid = f.SSV === 1 ? f.SubstreamID : 0;
    const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');
    this.pageRequestsRefused++;
    this.printk(KERN_INFO, 'unexpected PRI request received:');
    this.printk(
      KERN_INFO,
      `\tsid 0x${hex(f.StreamID, 8)}.0x${hex(ssid, 5)}: [${f.PRGIndex}${f.Last === 1 ? 'L' : ''}] ${f.Priv === 1 ? '' : 'un'}privileged ` +
      `${f.Read === 1 ? 'R' : ''}${f.Write === 1 ? 'W' : ''}${f.Exec === 1 ? 'X' : ''} access at iova 0x${hex(f.Address, 16)}`,
    );
    if (f.Last === 1) {
      this.h.cmdq.issueOne('PRI_RESP', { StreamID: f.StreamID, SSV: f.SSV, SubstreamID: ssid, PRGIndex: f.PRGIndex, Resp: PRI_RESP.DENY }, false);
    }
  }

  /** arm_smmu_priq_thread(): page requests to the IOPF queue; unexpected ones are denied. */
  drainPri(): number {
    if (this.priqBase === 0) return 0;
    const before = this.r32(SMMU_REG.PRIQ_PROD);
    if (((before ^ this.r32(SMMU_REG.PRIQ_CONS)) & Q_OVF) !== 0) {
      this.priqOverflows++;
      this.printk(KERN_ERR, 'PRIQ overflow detected -- requests lost');
    }
    return this.drain(SMMU_REG.PRIQ_PROD, SMMU_REG.PRIQ_CONS, this.priqBase, this.priqLog2, PRIQ_BYTES, this.priRecord);
  }

  /** One PRI queue record (arm_smmu_handle_ppr). */
  private readonly priRecord = (at: number): void => {
    const words = this.priWords;
    this.h.mmio.readInto(at, this.priBytes);
    for (let i = 0; i < 4; i++) words[i] = this.priView.getUint32(4 * i, true);
    if (this.h.priMode === 'mainline') {
      this.unexpectedPpr(decodePriRecord(words));
      return;
    }
    // The fields it uses, from the words (not a decoded object of all ten): one record per PRI fault.
    const read = getBits(words, PRI.Read) === 1;
    const write = getBits(words, PRI.Write) === 1;
    const last = getBits(words, PRI.Last) === 1;
    const ssv = getBits(words, PRI.SSV) === 1;
    // A Stop Marker (L = 1, R = W = 0 with a PASID: IHI 0070 §8) needs no response.
    if (!read && !write && last && ssv) return;
    const pasid = ssv ? getBits(words, PRI.SubstreamID) : -1;
    const sid = getBits(words, PRI.StreamID);
    const prgIndex = getBits(words, PRI.PRGIndex);
    const m = this.h.master(sid);
    if (m === undefined || !m.pri) {
      this.pageRequestsRefused++;
      if (last) {
        this.h.cmdq.issueOne('PRI_RESP', { StreamID: sid, SSV: pasid >= 0 ? 1 : 0, SubstreamID: Math.max(0, pasid), PRGIndex: prgIndex, Resp: PRI_RESP.DENY }, false);
      }
      return;
    }
    this.pageRequests++;
    this.h.host.iopf.report(m.dev, {
      pasid, grpid: prgIndex, addr: getBits(words, PRI.Address) * 4096, read, write, exec: getBits(words, PRI.Exec) === 1,
      priv: getBits(words, PRI.Priv) === 1, last, needsPasid: m.prgPasidRequired,
    });
  };
}
