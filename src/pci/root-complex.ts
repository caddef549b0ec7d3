import type { MsiController } from '../irq/msi-controller.ts';
import type { AddressSpace } from '../memory/address-space.ts';
import { MemoryRegion } from '../memory/memory-region.ts';
import * as phys from '../memory/phys-mem.ts';
import type { Counter, Counters } from '../trace/counters.ts';
import type { Tracer } from '../trace/tracer.ts';
import { PciBridge } from './bridge.ts';
import { PciBus } from './bus.ts';
import type { PciFunction } from './pci-function.ts';
import { newTranslationAnswer, type DmaRemapper } from './remapper.ts';
import {
  isAtsEndpoint,
  isAtsTranslationAgent,
  type AtsInvalidationRequest,
  type AtsTranslationCompletion,
  type AtsTranslationRequest,
  type PageRequestMessage,
  type PrgResponse,
} from './ats-messages.ts';
import * as txns from './transaction.ts';
import { type DmaCompletion, type DmaTransaction } from './transaction.ts';

// Module-local copies: when tsx loads the tree as CommonJS each use of an imported binding costs a getter call, and these sit on the DMA path.
const MEMTX_DECODE_ERROR = phys.MEMTX_DECODE_ERROR;
const MEMTX_OK = phys.MEMTX_OK;
const COMPLETION_OK = txns.COMPLETION_OK;
const failed = txns.failed;

export interface RootComplexOptions {
  /** The system memory that upstream transactions reach. */
  sysmem: AddressSpace;
  tracer: Tracer;
  counters: Counters;
  /** Buses the ECAM window covers (1 MiB each; at most 256). */
  ecamBuses?: number;
  /** Where MSI writes land; they are delivered with the writer's requester ID. */
  msi?: MsiController;
}

/** Bytes of PCI memory space (BAR addresses); windows of it are aliased into system memory. */
const PCI_SPACE = 2 ** 52;

/**
 * The PCIe root complex: the root bus, the ECAM window through which the host
 * reaches every function's configuration space (PCIe 7.2.2: bus[27:20],
 * device[19:15], function[14:12], register[11:0]), the PCI memory space in
 * which BARs decode, and the upstream path: every bus-master transaction goes
 * through the attached IOMMU's remapper (identity when there is none) and
 * then to system memory or to the MSI doorbell.
 */
export class RootComplex {
  readonly rootBus: PciBus;
  readonly pciMemory = MemoryRegion.container('pci-memory', PCI_SPACE);
  readonly ecam: MemoryRegion;
  readonly tracer: Tracer;
  readonly sysmem: AddressSpace;
  remapper: DmaRemapper | undefined;
  private readonly msi: MsiController | undefined;
  private readonly answer = newTranslationAnswer();
  private readonly dmaCount: Counter;
  private readonly dmaBytes: Counter;
  private readonly dmaAborts: Counter;
  private readonly counters: Counters;
  /** Each function's `<bdf>.config.reads`, under the BDF it had when the counter was taken. */
  private readonly configReads = new Map<PciFunction, { bdf: string; counter: Counter }>();
  /**
   * Trace every configuration read as a `pci.config.read` event. Off by
   * default: the host's probing reads config space thousands of times per
   * device (each capability walk, each BAR sizing), which would drown the
   * trace; each function's `<bdf>.config.reads` counter tells how many
   * there were. Writes change state and are always traced.
   */
  traceConfigReads = false;

  constructor(opts: RootComplexOptions) {
    this.sysmem = opts.sysmem;
    this.tracer = opts.tracer;
    this.msi = opts.msi;
    this.rootBus = new PciBus(this, this.pciMemory, () => 0);
    const buses = opts.ecamBuses ?? 256;
    if (!Number.isInteger(buses) || buses < 1 || buses > 256) throw new RangeError(`ecamBuses must be 1..256: ${buses}`);
    this.ecam = MemoryRegion.mmio('ecam', buses << 20, {
      read: (off, size) => this.configRead(off >>> 20, (off >>> 12) & 0xff, off & 0xfff, size),
      write: (off, size, value) => this.configWrite(off >>> 20, (off >>> 12) & 0xff, off & 0xfff, size, value),
    }, { maxAccess: 4 });
    this.dmaCount = opts.counters.counter('pci.dma.transactions');
    this.dmaBytes = opts.counters.counter('pci.dma.bytes');
    this.dmaAborts = opts.counters.counter('pci.dma.aborts');
    this.counters = opts.counters;
  }

  /** Plug a function on the root bus (an RC integrated endpoint or a root port). */
  plug(fn: PciFunction, device: number, func = 0): PciFunction {
    return this.rootBus.plug(fn, device, func);
  }

  /** The function that configuration requests for bus/devfn reach, following bridge bus ranges. */
  findFunction(bus: number, devfnValue: number): PciFunction | undefined {
    let cur = this.rootBus;
    for (let depth = 0; depth < 256; depth++) {
      if (cur.number === bus) return cur.lookup(devfnValue);
      let next: PciBus | undefined;
      for (const f of cur.functions.values()) {
        if (f instanceof PciBridge && f.secondaryBus !== 0 && bus >= f.secondaryBus && bus <= f.subordinateBus) {
          next = f.secondary;
          break;
        }
      }
      if (next === undefined) return undefined;
      cur = next;
    }
    return undefined;
  }

  /** Every function below the root complex, depth first. */
  allFunctions(): PciFunction[] {
    const out: PciFunction[] = [];
    const walk = (bus: PciBus) => {
      for (const df of [...bus.functions.keys()].sort((a, b) => a - b)) {
        const f = bus.functions.get(df)!;
        out.push(f);
        if (f instanceof PciBridge) walk(f.secondary);
      }
    };
    walk(this.rootBus);
    return out;
  }

  /** A configuration read; an absent function reads all-ones (Vendor ID 0xFFFF). */
  configRead(bus: number, devfnValue: number, reg: number, size: number): number {
    const fn = this.findFunction(bus, devfnValue);
    if (fn === undefined) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    const value = fn.config.read(reg, size);
    // Counted under the BDF the read reached (firmware may renumber a bus behind a bridge).
    let reads = this.configReads.get(fn);
    if (reads === undefined || reads.bdf !== fn.bdf) this.configReads.set(fn, (reads = { bdf: fn.bdf, counter: this.counters.counter(`${fn.bdf}.config.reads`) }));
    reads.counter.value++;
    if (this.traceConfigReads && this.tracer.wants('pci.config.read')) this.tracer.trace('pci.config.read', fn.bdf, { bdf: fn.bdf, offset: reg, size, value });
    return value;
  }

  configWrite(bus: number, devfnValue: number, reg: number, size: number, value: number): void {
    const fn = this.findFunction(bus, devfnValue);
    if (fn === undefined) return;
    if (this.tracer.wants('pci.config.write')) this.tracer.trace('pci.config.write', fn.bdf, { bdf: fn.bdf, offset: reg, size, value });
    fn.config.write(reg, size, value);
  }

  /**
   * Carry a bus-master transaction upstream: translate each piece through the
   * remapper, then read or write system memory (or ring the MSI doorbell).
   * An address nothing decodes completes with UR, a refusing target with CA.
   */
  dma(txn: DmaTransaction, buf: Uint8Array, bufOff: number): DmaCompletion {
    this.dmaCount.value++;
    if (this.tracer.wants('dma.transaction')) {
      this.tracer.trace('dma.transaction', 'pci', {
        rid: txn.requesterId, pasid: txn.pasid, at: txn.at, addr: txn.addr, len: txn.length, write: txn.write,
      });
    }
    if (txn.at === 'translation-request' && this.remapper === undefined) {
      return this.abort(txn, failed('UR', 'UNSUPPORTED_REQUEST'));
    }
    const ans = this.answer;
    let done = 0;
    while (done < txn.length) {
      const addr = txn.addr + done;
      let pa = addr;
      let n = txn.length - done;
      if (this.remapper !== undefined) {
        ans.discard = false;
        ans.latencyNs = 0;
        const ok = this.remapper.translate(txn, addr, ans);
        // A miss's table fetches and walk reads (DESIGN.md §3); an IOTLB hit charges nothing.
        if (ans.latencyNs !== 0) txn.latencyNs = (txn.latencyNs ?? 0) + ans.latencyNs;
        if (!ok) return this.abort(txn, failed(ans.status === 'SC' ? 'UR' : ans.status, ans.fault));
        pa = ans.pa;
        if (ans.length < n) n = ans.length;
        if (n <= 0) return this.abort(txn, failed('CA', 'BAD_TRANSLATION_LENGTH'));
        if (ans.discard) {
          if (!txn.write) buf.fill(0, bufOff + done, bufOff + done + n);
          done += n;
          continue;
        }
      }
      if (txn.write && this.msi !== undefined && this.msi.contains(pa)) {
        this.ringDoorbell(txn, pa, buf, bufOff + done, n);
        done += n;
        continue;
      }
      const r = this.sysmem.copy(pa, buf, bufOff + done, n, txn.write);
      if (r !== MEMTX_OK) {
        return this.abort(txn, r === MEMTX_DECODE_ERROR ? failed('UR', 'UNSUPPORTED_REQUEST') : failed('CA', 'COMPLETER_ABORT'));
      }
      done += n;
    }
    this.dmaBytes.value += txn.length;
    return COMPLETION_OK;
  }

  // --- ATS and PRI messages (PCIe 10.2-10.4) -----------------------------------

  /** A Translation Request from a function, answered by the IOMMU (UR when there is none). */
  atsTranslate(req: AtsTranslationRequest): AtsTranslationCompletion {
    if (this.tracer.wants('ats.translate')) {
      this.tracer.trace('ats.translate', 'pci', { rid: req.requesterId, pasid: req.pasid, addr: req.addr, len: req.length });
    }
    const agent = this.remapper;
    if (!isAtsTranslationAgent(agent)) return { status: 'UR', entries: [] };
    return agent.atsTranslate(req);
  }

  /** A Page Request Message upstream; dropped when no translation agent takes them. */
  pageRequest(msg: PageRequestMessage): void {
    // Arguments built only for a listener: one page request per PRI fault.
    if (this.tracer.wants('pri.request')) {
      this.tracer.trace('pri.request', 'pci', { rid: msg.requesterId, pasid: msg.pasid, addr: msg.addr, prg: msg.prgIndex, last: msg.last });
    }
    const agent = this.remapper;
    if (isAtsTranslationAgent(agent)) agent.pageRequest(msg);
  }

  atsInvalidationCompleted(requesterId: number, itagVector: number, completionCount: number): void {
    this.tracer.trace('ats.inv-complete', 'pci', { rid: requesterId, itags: itagVector, cc: completionCount });
    const agent = this.remapper;
    if (isAtsTranslationAgent(agent)) agent.atsInvalidationCompleted(requesterId, itagVector, completionCount);
  }

  /** Route an Invalidation Request downstream to the function with this requester ID; false if none takes it. */
  sendAtsInvalidation(requesterId: number, req: AtsInvalidationRequest): boolean {
    this.tracer.trace('ats.invalidate', 'pci', { rid: requesterId, itag: req.itag, pasid: req.pasid, addr: req.addr, size: BigInt(req.size) });
    const fn = this.findFunction(requesterId >> 8, requesterId & 0xff);
    if (!isAtsEndpoint(fn)) return false;
    fn.receiveAtsInvalidation(req);
    return true;
  }

  /** Route a PRG Response downstream; false if no function takes it. */
  sendPrgResponse(requesterId: number, resp: PrgResponse): boolean {
    if (this.tracer.wants('pri.response')) {
      this.tracer.trace('pri.response', 'pci', { rid: requesterId, pasid: resp.pasid, prg: resp.prgIndex, code: resp.code });
    }
    const fn = this.findFunction(requesterId >> 8, requesterId & 0xff);
    if (!isAtsEndpoint(fn)) return false;
    fn.receivePrgResponse(resp);
    return true;
  }

  /** MSI writes are DWORDs; each one is a message tagged with the writer's requester ID. */
  private ringDoorbell(txn: DmaTransaction, pa: number, buf: Uint8Array, at: number, n: number): void {
    for (let i = 0; i + 4 <= n; i += 4) {
      const data = (buf[at + i]! | (buf[at + i + 1]! << 8) | (buf[at + i + 2]! << 16) | (buf[at + i + 3]! << 24)) >>> 0;
      this.msi!.deliver(pa + i, data, txn.requesterId);
    }
  }

  private abort(txn: DmaTransaction, c: DmaCompletion): DmaCompletion {
    this.dmaAborts.value++;
    this.tracer.trace('dma.abort', 'pci', { rid: txn.requesterId, addr: txn.addr, status: c.status, reason: c.fault });
    return c;
  }
}
