/**
 * The driver's two interrupt handlers' work (run from a scheduled callback,
 * not inside the unit's MSI write):
 *
 * - Fault event (Linux dmar_fault): from FSTS.FRI on, every fault recording
 *   register with F set is decoded (layout VTD_FRCD, §10.4.14) into
 *   `faults`, and F is cleared; then PFO is cleared. IQE/ITE/ICE belong to
 *   the invalidation queue code.
 * - Page request event (Linux prq_event_thread): clear PPR first (so a
 *   request arriving meanwhile raises a new event), consume PQH..PQT
 *   (layout PAGE_REQ_DESC, §7.5.1), hand each request to the I/O page-fault
 *   queue, answer the bad ones Invalid Request, skip stop markers, write
 *   PQH = PQT; when PRO is set and the queue is empty, clear PRO.
 */
import { decodeLayout, fieldGet, fieldPrep, getBits, readField } from '../../../src/hw/layout.ts';
import type { PageRequest } from '../../../src/iommu-core/types.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { faultName } from '../fault-reasons.ts';
import { PAGE_REQ_DESC, PRQ_DESC_BYTES } from '../prq.ts';
import { FRCD_F_DWORD, FSTS_PFO, FSTS_PPF, PRS_PPR, PRS_PRO, VTD_FRCD, VTD_REGS } from '../regs.ts';
import type { VtdMmio } from './mmio.ts';
import { KERN_ERR, type KernelLog } from '../../../src/host/kmsg.ts';
import { DMAR_FAULT_RATELIMIT, dmarFaultLine, logFaultStatus } from './fault-log.ts';

/** A fault record or queue error the driver consumed. */
export interface VtdFaultRecord {
  /** Fault reason name (DMAR_*), or IQE(n) / ITE / ICE for queue errors. */
  name: string;
  reason: number;
  sid: number;
  /** -1 without PASID. */
  pasid: number;
  addr: number;
  write: boolean;
  /** The faulting request was a page request (T1:T2 = 01). */
  pageRequest: boolean;
  /** AT: 0 untranslated, 1 translation request, 2 translated. */
  at: number;
}

const MAX_KEPT = 4096;
const PRD = PAGE_REQ_DESC.fields;
/** Resolved once: the queue indexes are read and written per page request drained. */
const PQH_PQH = VTD_REGS.field('PQH', 'PQH');
const PQT_PQT = VTD_REGS.field('PQT', 'PQT');

export class FaultReader {
  readonly faults: VtdFaultRecord[] = [];

  constructor(
    private readonly regs: VtdMmio,
    /** Offset of FRCD 0 (CAP.FRO * 16) and the number of records (CAP.NFR + 1). */
    private readonly froOffset: number,
    private readonly nfr: number,
    /** The kernel log dmar_fault prints to (none: nothing printed). */
    private readonly log?: KernelLog,
  ) {}

  push(r: VtdFaultRecord): void {
    this.faults.push(r);
    if (this.faults.length > MAX_KEPT) this.faults.shift();
  }

  /** Consume every recorded fault; returns how many. */
  drain(): number {
    const fsts = this.regs.r32('FSTS');
    const log = this.log;
    if (log) logFaultStatus(log, fsts);
    let n = 0;
    if ((fsts & FSTS_PPF) !== 0) {
      let i = VTD_REGS.get('FSTS', fsts, 'FRI');
      for (; n < this.nfr; n++) {
        // dmar_fault asks the ratelimit once per record it looks at, the one that ends the loop included.
        const printing = log !== undefined && log.ratelimit(DMAR_FAULT_RATELIMIT);
        const at = this.froOffset + 16 * i;
        const w = [this.regs.r32At(at), this.regs.r32At(at + 4), this.regs.r32At(at + 8), this.regs.r32At(at + 12)];
        if (readField(VTD_FRCD, w, 'F') === 0) break;
        const f = decodeLayout(VTD_FRCD, w);
        const pageRequest = f.T1 === 0 && f.T2 === 1;
        this.push({
          name: faultName(f.FR), reason: f.FR, sid: f.SID, pasid: f.PP ? f.PV : -1, addr: f.FI * 4096,
          write: !pageRequest && f.T1 === 0, pageRequest, at: f.AT,
        });
        // F is RW1C in the record's last dword.
        this.regs.w32At(at + 12, FRCD_F_DWORD);
        if (printing) {
          log.printk(KERN_ERR, dmarFaultLine({ reason: f.FR, read: f.T1 === 1, ...(f.PP ? { pasid: f.PV } : {}), sid: f.SID, addr: BigInt(f.FI) * 4096n }));
        }
        i = (i + 1) % this.nfr;
      }
    }
    if ((fsts & FSTS_PFO) !== 0) this.regs.w32('FSTS', FSTS_PFO);
    return n;
  }
}

/** A page request as the driver decoded it, with the device it came from. */
export interface DecodedPageRequest {
  rid: number;
  req: PageRequest;
  stopMarker: boolean;
  /** Linux refuses these: privileged-mode or execute-with-read requests, non-canonical addresses. */
  bad: boolean;
}

export class PageRequestReader {
  requests = 0;
  /** Bits 127:0 of the descriptor being consumed (the private data words are not used). */
  private readonly words = new Uint32Array(4);
  /** Those bytes, read from the queue in one access, and a view to take the words from. */
  private readonly bytes = new Uint8Array(16);
  private readonly view = new DataView(this.bytes.buffer);

  constructor(
    private readonly regs: VtdMmio,
    private readonly mem: PhysMem,
    /** The queue (4 KiB << order). */
    readonly base: number,
    readonly order: number,
  ) {}

  /** PQH = PQT = 0, then PQA (before any device may send page requests). */
  program(): void {
    this.regs.w64('PQH', 0);
    this.regs.w64('PQT', 0);
    this.regs.write('PQA', { PQA: this.base / 4096, PQS: this.order });
  }

  /** Consume the queue; `handle` gets each request; returns how many were consumed. */
  drain(handle: (r: DecodedPageRequest) => void): { consumed: number; overflowCleared: boolean } {
    const qbytes = 4096 * 2 ** this.order;
    this.regs.w32('PRS', PRS_PPR);
    const tail = this.offsetOf('PQT');
    let head = this.offsetOf('PQH');
    let consumed = 0;
    while (head !== tail) {
      // The fields it uses, read from a scratch (not a decoded object of all fifteen): one descriptor per page request.
      const w = this.words;
      this.mem.readInto(this.base + head, this.bytes);
      for (let i = 0; i < 4; i++) w[i] = this.view.getUint32(4 * i, true);
      const addr = getBits(w, PRD.ADDR) * 4096;
      const read = getBits(w, PRD.RDR) === 1;
      const write = getBits(w, PRD.WRR) === 1;
      const last = getBits(w, PRD.LPIG) === 1;
      const exec = getBits(w, PRD.EXE) === 1;
      const priv = getBits(w, PRD.PM) === 1;
      const pp = getBits(w, PRD.PP) === 1;
      const stopMarker = last && !read && !write;
      const bad = addr >= 2 ** 47 || (priv && (read || write)) || (exec && read);
      const req: PageRequest = {
        pasid: pp ? getBits(w, PRD.PASID) : -1, grpid: getBits(w, PRD.PRGI), addr, read, write, exec, priv, last,
        needsPasid: pp,
      };
      handle({ rid: getBits(w, PRD.RID), req, stopMarker, bad });
      consumed++;
      this.requests++;
      head = (head + PRQ_DESC_BYTES) % qbytes;
    }
    this.regs.w64('PQH', fieldPrep(PQH_PQH, tail / PRQ_DESC_BYTES));
    let overflowCleared = false;
    if ((this.regs.r32('PRS') & PRS_PRO) !== 0) {
      if (this.offsetOf('PQH') === this.offsetOf('PQT')) {
        this.regs.w32('PRS', PRS_PRO);
        overflowCleared = true;
      }
    }
    return { consumed, overflowCleared };
  }

  /**
   * Is a request of `rid` for `pasid` (0: requests without PASID) still
   * between PQH and PQT (the scan at the top of intel_iommu_drain_pasid_prq)?
   */
  pending(rid: number, pasid: number): boolean {
    const qbytes = 4096 * 2 ** this.order;
    const tail = this.offsetOf('PQT');
    for (let head = this.offsetOf('PQH'); head !== tail; head = (head + PRQ_DESC_BYTES) % qbytes) {
      const w: number[] = [];
      for (let i = 0; i < 8; i++) w.push(this.mem.read32(this.base + head + 4 * i));
      const d = decodeLayout(PAGE_REQ_DESC, w);
      if (d.RID === rid && (d.PP === 1 ? d.PASID === pasid : pasid === 0)) return true;
    }
    return false;
  }

  /** Page Request Overflow (PRS.PRO) set? */
  overflowed(): boolean {
    return (this.regs.r32('PRS') & PRS_PRO) !== 0;
  }

  /** PQH or PQT as a byte offset in the queue (they index 256-bit descriptors). */
  private offsetOf(reg: 'PQH' | 'PQT'): number {
    return (fieldGet(reg === 'PQH' ? PQH_PQH : PQT_PQT, this.regs.r32(reg)) * PRQ_DESC_BYTES) % (4096 * 2 ** this.order);
  }
}
