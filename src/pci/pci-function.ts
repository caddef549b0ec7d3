import { initBar, barAddress, type Bar, type BarSpec } from './bar.ts';
import * as bdfs from './bdf.ts';
import { CapabilityList } from './capability-list.ts';
import { ConfigSpace } from './config-space.ts';
import * as hdr from './header.ts';
import type { PciBus } from './bus.ts';
import type { AtsTranslationCompletion, AtsTranslationRequest, PageRequestMessage } from './ats-messages.ts';
import * as txns from './transaction.ts';
import type { DmaAttrs, DmaCompletion, DmaReadResult, DmaTransaction, DmaWriteResult } from './transaction.ts';

// Module-local copies: when tsx loads the tree as CommonJS each use of an imported binding costs a getter call, and these sit on the DMA path.
const formatBdf = bdfs.formatBdf;
const requesterId = bdfs.requesterId;
const CFG = hdr.CFG;
const COMMAND = hdr.COMMAND;
const HEADER_TYPE_MULTIFUNCTION = hdr.HEADER_TYPE_MULTIFUNCTION;
const STATUS = hdr.STATUS;
const STATUS_W1C = hdr.STATUS_W1C;
const COMPLETION_OK = txns.COMPLETION_OK;
const NO_PASID = txns.NO_PASID;
const CFG_COMMAND = hdr.CFG.COMMAND;
const COMMAND_MASTER = hdr.COMMAND.MASTER;
const failed = txns.failed;

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  /** 24-bit class code: base class, subclass, programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  multifunction?: boolean;
}

/**
 * One PCI(e) function: its configuration space with the common header, its
 * BARs (mapped into the bus's memory space while memory decoding is on) and
 * its bus-master path. Devices extend it (type 0); bridges extend it with a
 * type 1 header. Every DMA of a device goes through `busMaster`, which honours
 * Bus Master Enable and hands the transaction to the root complex, where the
 * IOMMU sees it.
 */
export abstract class PciFunction {
  readonly name: string;
  readonly config = new ConfigSpace();
  readonly caps: CapabilityList;
  readonly bars: (Bar | undefined)[] = [];
  readonly headerType: 0 | 1;
  bus: PciBus | undefined;
  devfn = 0;
  private resetImage: { bytes: Uint8Array } | undefined;
  private bdfRid = -1;
  private bdfText = '';
  private scratchTxn: DmaTransaction | null = {
    requesterId: 0, pasid: NO_PASID, privileged: false, exec: false, at: 'untranslated', addr: 0, length: 0, write: false, latencyNs: 0,
  };

  constructor(name: string, id: PciIdentity, headerType: 0 | 1) {
    this.name = name;
    this.headerType = headerType;
    this.caps = new CapabilityList(this.config);
    const c = this.config;
    c.set16(CFG.VENDOR_ID, id.vendorId);
    c.set16(CFG.DEVICE_ID, id.deviceId);
    c.set8(CFG.REVISION_ID, id.revision ?? 0);
    c.set8(CFG.CLASS_PROG, id.classCode & 0xff);
    c.set16(CFG.CLASS_DEVICE, (id.classCode >>> 8) & 0xffff);
    c.set8(CFG.HEADER_TYPE, headerType | (id.multifunction ? HEADER_TYPE_MULTIFUNCTION : 0));
    c.setWritable(CFG.COMMAND, 2, COMMAND.IO | COMMAND.MEMORY | COMMAND.MASTER | COMMAND.PARITY | COMMAND.SERR | COMMAND.INTX_DISABLE);
    c.setW1C(CFG.STATUS, 2, STATUS_W1C);
    c.setWritable(CFG.CACHE_LINE_SIZE, 1, 0xff);
    c.setWritable(CFG.INTERRUPT_LINE, 1, 0xff);
    if (headerType === 0) {
      c.set16(CFG.SUBSYSTEM_VENDOR_ID, id.subsystemVendorId ?? id.vendorId);
      c.set16(CFG.SUBSYSTEM_ID, id.subsystemId ?? 0);
    }
    c.onWrite(CFG.COMMAND, 2, () => this.commandChanged());
    c.onWrite(CFG.BAR0, 4 * this.maxBars, () => this.updateBarMappings());
  }

  get maxBars(): number {
    return this.headerType === 0 ? 6 : 2;
  }

  /** Bus number as software programmed the bridges above, device and function. */
  get bdf(): string {
    // Formatted once per requester ID (fault paths and traces ask for it per event; bus numbers change rarely).
    const rid = this.requesterId;
    if (rid !== this.bdfRid) {
      this.bdfRid = rid;
      this.bdfText = formatBdf({ segment: 0, bus: this.busNumber, device: this.devfn >> 3, fn: this.devfn & 7 });
    }
    return this.bdfText;
  }

  get busNumber(): number {
    return this.bus?.number ?? 0;
  }

  get requesterId(): number {
    return requesterId(this.busNumber, this.devfn);
  }

  get command(): number {
    return this.config.get16(CFG.COMMAND);
  }

  get busMasterEnabled(): boolean {
    return (this.command & COMMAND.MASTER) !== 0;
  }

  get memoryEnabled(): boolean {
    return (this.command & COMMAND.MEMORY) !== 0;
  }

  /** Declare a BAR. Called by device constructors. */
  defineBar(index: number, spec: BarSpec): void {
    if (spec.region.size !== spec.size) throw new RangeError(`BAR${index} region size differs from BAR size`);
    initBar(this.config, index, spec, this.maxBars);
    this.bars[index] = { index, kind: spec.kind, size: spec.size, prefetchable: spec.prefetchable ?? false, region: spec.region, mappedAt: undefined };
  }

  /** Called when the function is plugged into a bus (also takes the reset image). */
  attach(bus: PciBus, devfnValue: number): void {
    this.bus = bus;
    this.devfn = devfnValue;
    this.resetImage = { bytes: this.config.bytes.slice() };
    this.updateBarMappings();
  }

  /** Return config space to its power-on values (conventional reset / FLR) and let the device reset. */
  reset(): void {
    if (this.resetImage !== undefined) this.config.bytes.set(this.resetImage.bytes);
    this.updateBarMappings();
    this.deviceReset();
  }

  /** Device-specific reset of internal state; override where there is any. */
  protected deviceReset(): void {}

  protected commandChanged(): void {
    this.updateBarMappings();
  }

  /** Map each memory BAR at its programmed address while memory decoding is enabled. */
  protected updateBarMappings(): void {
    const bus = this.bus;
    if (bus === undefined) return;
    for (const bar of this.bars) {
      if (bar === undefined) continue;
      const addr = this.memoryEnabled ? barAddress(this.config, bar) : undefined;
      if (addr === bar.mappedAt) continue;
      if (bar.mappedAt !== undefined) {
        bus.memory.removeSubregion(bar.region);
        bus.host.tracer.trace('pci.bar.unmap', this.bdf, { bdf: this.bdf, bar: bar.index });
      }
      bar.mappedAt = addr;
      if (addr !== undefined) {
        bus.memory.addSubregion(addr, bar.region, 1);
        bus.host.tracer.trace('pci.bar.map', this.bdf, { bdf: this.bdf, bar: bar.index, addr, size: bar.size });
      }
    }
  }

  // --- bus mastering -------------------------------------------------------

  /**
   * Issue a transaction upstream. With Bus Master Enable clear the function
   * may not issue requests: the access is aborted here, before the fabric.
   * A failed request sets Received Master Abort (UR) or Received Target Abort
   * (CA) in Status, as a requester does.
   */
  busMaster(txn: DmaTransaction, buf: Uint8Array, bufOff = 0): DmaCompletion {
    const bus = this.bus;
    // Bus Master Enable read straight from the Command register's low byte (this runs per DMA).
    const behindBridge = bus !== undefined && bus.upstream !== undefined;
    if (bus === undefined || (this.config.bytes[CFG_COMMAND]! & COMMAND_MASTER) === 0 || (behindBridge && !this.upstreamForwards())) {
      bus?.host.tracer.trace('dma.abort', this.bdf, { rid: txn.requesterId, addr: txn.addr, status: 'UR', reason: 'BUS_MASTER_DISABLED' });
      return failed('UR', 'BUS_MASTER_DISABLED');
    }
    // Behind a bridge to conventional PCI the request reaches the root complex under the bridge's alias.
    if (behindBridge) txn.requesterId = this.upstreamRequesterId;
    const c = bus.host.dma(txn, buf, bufOff);
    if (c.status !== 'SC') {
      this.config.setBits16(CFG.STATUS, c.status === 'UR' ? STATUS.REC_MASTER_ABORT : STATUS.REC_TARGET_ABORT, true);
    }
    return c;
  }

  /**
   * The requester ID a bridge gives a request from `rid` below it as it
   * forwards it upstream. PCIe ports keep it; bridges to conventional PCI
   * replace it (src/pci/pci-bridges.ts).
   */
  forwardedRequesterId(rid: number): number {
    return rid;
  }

  /**
   * The requester ID this function's requests carry when they reach the root
   * complex: its last DMA alias (Linux pci_for_each_dma_alias, QEMU
   * pci_req_id_cache_get). The IOMMU sees this one, not `requesterId`.
   */
  get upstreamRequesterId(): number {
    let rid = this.requesterId;
    for (let b = this.bus?.upstream; b !== undefined; b = b.bus?.upstream) rid = b.forwardedRequesterId(rid);
    return rid;
  }

  /** Bridges forward upstream memory requests only while their Bus Master Enable is set. */
  private upstreamForwards(): boolean {
    for (let b = this.bus?.upstream; b !== undefined; b = b.bus?.upstream) {
      if (!b.busMasterEnabled) return false;
    }
    return true;
  }

  /** Build an untranslated transaction from this function. */
  protected transaction(addr: number, length: number, write: boolean, attrs?: DmaAttrs): DmaTransaction {
    return {
      requesterId: this.requesterId,
      pasid: attrs?.pasid ?? NO_PASID,
      privileged: attrs?.privileged ?? false,
      exec: attrs?.exec ?? false,
      at: 'untranslated',
      addr,
      length,
      write,
      latencyNs: 0,
    };
  }

  /** CONTRACT.md: a DMA read from this function's requester ID. */
  dmaRead(addr: bigint, length: number, attrs?: DmaAttrs): DmaReadResult {
    const a = checkDmaRange(addr, length);
    if (typeof a === 'string') return { ok: false, fault: a };
    const data = new Uint8Array(length);
    const c = this.issue(a, length, false, attrs, data);
    return c.status === 'SC' ? { ok: true, data } : { ok: false, fault: c.fault };
  }

  /** CONTRACT.md: a DMA write from this function's requester ID. */
  dmaWrite(addr: bigint, data: Uint8Array, attrs?: DmaAttrs): DmaWriteResult {
    const a = checkDmaRange(addr, data.length);
    if (typeof a === 'string') return { ok: false, fault: a };
    const c = this.issue(a, data.length, true, attrs, data);
    return c.status === 'SC' ? WRITE_OK : { ok: false, fault: c.fault };
  }

  /**
   * dmaRead/dmaWrite's transaction, in a scratch object reused while no other
   * is in flight (nothing keeps a transaction after it completes; a nested
   * one, e.g. from an event run while a stalled one waits, gets its own).
   */
  private issue(addr: number, length: number, write: boolean, attrs: DmaAttrs | undefined, buf: Uint8Array): DmaCompletion {
    const t = this.scratchTxn;
    if (t === null) return this.busMaster(this.transaction(addr, length, write, attrs), buf);
    this.scratchTxn = null;
    t.requesterId = this.requesterId;
    t.pasid = attrs?.pasid ?? NO_PASID;
    t.privileged = attrs?.privileged ?? false;
    t.exec = attrs?.exec ?? false;
    t.addr = addr;
    t.length = length;
    t.write = write;
    t.latencyNs = 0;
    // (No try/finally: an exception here is a bug; the next call would just allocate.)
    const c = this.busMaster(t, buf);
    this.scratchTxn = t;
    return c;
  }

  /** Issue a Translation Request (ATS); a function that may not master gets UR without reaching the fabric. */
  protected atsTranslationRequest(req: AtsTranslationRequest): AtsTranslationCompletion {
    const host = this.bus?.host;
    if (host === undefined || !this.busMasterEnabled || !this.upstreamForwards()) return { status: 'UR', entries: [] };
    return host.atsTranslate(req);
  }

  /** Send a Page Request Message; false when the function may not master. */
  protected sendPageRequest(msg: PageRequestMessage): boolean {
    const host = this.bus?.host;
    if (host === undefined || !this.busMasterEnabled || !this.upstreamForwards()) return false;
    host.pageRequest(msg);
    return true;
  }

  /** Send an Invalidation Completion Message for the tags in `itagVector`. */
  protected sendInvalidationCompletion(itagVector: number, completionCount = 1): void {
    this.bus?.host.atsInvalidationCompleted(this.requesterId, itagVector, completionCount);
  }

  /** Send an MSI/MSI-X message: a DWORD memory write upstream, like any other. */
  sendMsi(addr: number, data: number): void {
    const host = this.bus?.host;
    if (host === undefined) return;
    host.tracer.trace('msi.send', this.bdf, { rid: this.requesterId, addr, data });
    const buf = new Uint8Array(4);
    buf[0] = data;
    buf[1] = data >>> 8;
    buf[2] = data >>> 16;
    buf[3] = data >>> 24;
    this.busMaster(this.transaction(addr, 4, true), buf);
  }
}

const MAX_ADDR = 2 ** 64;
/** A successful write's result, shared (it carries nothing). */
const WRITE_OK: DmaWriteResult = Object.freeze({ ok: true }) as DmaWriteResult;

/** Addresses are u64 at the API; inside they must fit a 52-bit physical space. */
function checkDmaRange(addr: bigint, length: number): number | string {
  if (!Number.isSafeInteger(length) || length < 0) return 'INVALID_LENGTH';
  // One conversion (it is on every DMA); a negative bigint converts to a negative number.
  const a = Number(addr);
  if (a < 0 || a + length > MAX_ADDR) return 'INVALID_ADDRESS';
  if (!Number.isSafeInteger(a)) return 'UNSUPPORTED_REQUEST';
  return a;
}

export { COMPLETION_OK };
