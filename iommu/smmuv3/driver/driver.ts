import { encodeLayout } from '../../../src/hw/layout.ts';
import type { Host } from '../../../src/host/host.ts';
import type { Mm } from '../../../src/host/mm.ts';
import type { DriverDomain, HwInfo, IommuDriver, PageRequest, PageResponseCode, PagingDomainFlags, ResvRegion } from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { createVmsaBuilder, type VmsaBuilder } from '../../pgtable/vmsa-builder.ts';
import { encodeCommand } from '../cmd.ts';
import { decodeEvent, eventName } from '../event.ts';
import { CR0, IRQ_CTRL, OAS_BITS, SMMU_REG, STRTAB_FMT_2LVL } from '../regs.ts';
import { S1DSS, STE_CONFIG, STE_LAYOUT } from '../ste.ts';
import { CommandQueue } from './cmdq.ts';
import { S1Domain, S2Domain, StaticDomain, SvaDomain } from './domains.ts';
import { enablePasid } from './pci-features.ts';
import { CdTable, STRTAB_SPLIT, StreamTable, type DmaMemory } from './tables.ts';

/** IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (include/uapi/linux/iommufd.h). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** Where Linux puts the software-managed MSI window (MSI_IOVA_BASE / MSI_IOVA_LENGTH in arm-smmu-v3.c). */
export const MSI_IOVA_BASE = 0x800_0000;
export const MSI_IOVA_LENGTH = 0x10_0000;

const CMDQ_LOG2 = 8;
const EVTQ_LOG2 = 7;
const EVT_BYTES = 32;
/** Linux CMDQ_MAX_TLBI_OPS: beyond this many pages without range invalidation, invalidate the ASID. */
const MAX_TLBI_OPS = 512;
const WBWA = 1;
const ISH = 3;

/** One endpoint as the driver sees it (struct arm_smmu_master). */
interface Master {
  dev: PciFunction;
  sid: number;
  ssidBits: number;
  cd: CdTable | undefined;
  rid: DriverDomain | undefined;
  pasids: Map<number, DriverDomain>;
}

/** A decoded event-queue record the driver has consumed. */
export interface SmmuEventRecord {
  name: string;
  sid: number;
  ssid: number;
  addr: number;
  fields: Record<string, number>;
}

/**
 * The arm-smmu-v3-shaped host driver. It reaches the SMMU only through its
 * MMIO registers and the tables and queues it allocates in guest memory:
 * probe from the IDRs, a 2-level stream table, command and event queues with
 * MSIs, STEs and CDs for blocked/identity/stage-1/stage-2/SVA domains, and
 * invalidation with CMD_SYNC. It implements the IOMMU core's driver ops.
 */
export class Smmuv3Driver implements IommuDriver {
  readonly name = 'arm-smmu-v3';
  readonly blockedDomain: StaticDomain;
  readonly identityDomain: StaticDomain;
  readonly events: SmmuEventRecord[] = [];
  readonly cmdq: CommandQueue;
  readonly idr: number[] = [];
  ipsCode = 5;
  private readonly mmio;
  private readonly dma: DmaMemory;
  private readonly strtab: StreamTable;
  private readonly masters = new Map<PciFunction, Master>();
  private readonly evtqBase: number;
  private readonly asids = new Set<number>();
  private readonly vmids = new Set<number>();
  private sidBits = 16;
  private ssidBits = 0;
  private rangeInvalidation = false;

  constructor(
    readonly host: Host,
    readonly base: number,
  ) {
    this.mmio = host.board.sysmem;
    const tables = host.allocator.tablePages();
    this.dma = { alloc: (b) => tables.alloc(Math.max(b, 4096)), free: (pa, b) => tables.free(pa, Math.max(b, 4096)) };
    this.blockedDomain = new StaticDomain(this, 'blocked');
    this.identityDomain = new StaticDomain(this, 'identity');
    this.probeHardware();
    this.strtab = new StreamTable(this.mmio, this.dma, this.sidBits);
    const cmdqBase = this.mustAlloc(16 * 2 ** CMDQ_LOG2);
    this.cmdq = new CommandQueue(this.mmio, base, this.mmio, cmdqBase, CMDQ_LOG2, host.board.scheduler, (cerror, words) => {
      this.events.push({ name: `CMDQ_ERR(${cerror})`, sid: -1, ssid: -1, addr: 0, fields: { Opcode: words[0]! & 0xff } });
    });
    this.evtqBase = this.mustAlloc(EVT_BYTES * 2 ** EVTQ_LOG2);
    this.reset(cmdqBase);
  }

  private mustAlloc(bytes: number): number {
    const pa = this.dma.alloc(bytes);
    if (pa === undefined) throw new Error('SMMUv3 driver: out of memory at probe');
    return pa;
  }

  private r32(off: number): number {
    return this.mmio.read32(this.base + off);
  }

  private w32(off: number, v: number): void {
    this.mmio.write32(this.base + off, v >>> 0);
  }

  private w64(off: number, v: number): void {
    this.mmio.write64(this.base + off, BigInt(v));
  }

  /** arm_smmu_device_hw_probe(): what the IDRs advertise. */
  private probeHardware(): void {
    for (let i = 0; i < 6; i++) this.idr.push(this.r32(SMMU_REG.IDR0 + 4 * i));
    const idr1 = this.idr[1]!;
    this.sidBits = idr1 & 0x3f;
    this.ssidBits = (idr1 >>> 6) & 0x1f;
    this.rangeInvalidation = ((this.idr[3]! >>> 10) & 1) === 1;
    const oas = this.idr[5]! & 7;
    this.ipsCode = Math.min(oas, OAS_BITS.length - 1);
  }

  /** arm_smmu_device_reset(): program tables and queues, then enable step by step, waiting for each ACK. */
  private reset(cmdqBase: number): void {
    if (this.r32(SMMU_REG.CR0) & CR0.SMMUEN) this.writeCr0(0);
    this.w32(SMMU_REG.CR1, (ISH << 10) | (WBWA << 8) | (WBWA << 6) | (ISH << 4) | (WBWA << 2) | WBWA);
    this.w32(SMMU_REG.CR2, 0b110);
    this.w64(SMMU_REG.STRTAB_BASE, this.strtab.l1Base + 2 ** 62);
    this.w32(SMMU_REG.STRTAB_BASE_CFG, (STRTAB_FMT_2LVL << 16) | (STRTAB_SPLIT << 6) | this.sidBits);
    this.w64(SMMU_REG.CMDQ_BASE, cmdqBase + CMDQ_LOG2);
    this.w32(SMMU_REG.CMDQ_PROD, 0);
    this.w32(SMMU_REG.CMDQ_CONS, 0);
    let cr0 = CR0.CMDQEN;
    this.writeCr0(cr0);
    this.cmdq.issueSync([]);
    this.cmdq.issueOne('CFGI_STE_RANGE', { Range: 31 }, false);
    this.cmdq.issueOne('TLBI_NSNH_ALL', {}, true);
    this.w64(SMMU_REG.EVENTQ_BASE, this.evtqBase + EVTQ_LOG2);
    this.w32(SMMU_REG.EVENTQ_PROD, 0);
    this.w32(SMMU_REG.EVENTQ_CONS, 0);
    cr0 |= CR0.EVENTQEN;
    this.writeCr0(cr0);
    this.setupIrqs();
    cr0 |= CR0.SMMUEN;
    this.writeCr0(cr0);
  }

  private writeCr0(v: number): void {
    this.w32(SMMU_REG.CR0, v);
    if (this.r32(SMMU_REG.CR0ACK) !== v) throw new Error(`SMMUv3 driver: CR0ACK did not follow CR0=${v}`);
  }

  /** MSIs for the event queue and global errors, handled a little later, as a threaded IRQ would be. */
  private setupIrqs(): void {
    this.w32(SMMU_REG.IRQ_CTRL, 0);
    const board = this.host.board;
    const evt = this.host.allocMsiData();
    const gerr = this.host.allocMsiData();
    const doorbell = board.layout.msiBase;
    this.w64(SMMU_REG.EVENTQ_IRQ_CFG0, doorbell);
    this.w32(SMMU_REG.EVENTQ_IRQ_CFG1, evt);
    this.w32(SMMU_REG.EVENTQ_IRQ_CFG2, 0x1 | (ISH << 4));
    this.w64(SMMU_REG.GERROR_IRQ_CFG0, doorbell);
    this.w32(SMMU_REG.GERROR_IRQ_CFG1, gerr);
    board.msi.on(evt, () => board.scheduler.schedule(0, () => this.drainEvents(), 'smmuv3.evtq-irq'));
    this.w32(SMMU_REG.IRQ_CTRL, IRQ_CTRL.EVENTQ_IRQEN | IRQ_CTRL.GERROR_IRQEN);
  }

  /** arm_smmu_evtq_thread(): consume every record, acknowledge overflow. */
  drainEvents(): number {
    const log2 = EVTQ_LOG2;
    const mask = 2 ** (log2 + 1) - 1;
    let n = 0;
    for (let guard = 0; guard < 2 ** log2 + 1; guard++) {
      const prod = this.r32(SMMU_REG.EVENTQ_PROD);
      let cons = this.r32(SMMU_REG.EVENTQ_CONS) & mask;
      if (((prod ^ cons) & mask) === 0) {
        this.w32(SMMU_REG.EVENTQ_CONS, cons | (prod & 0x8000_0000));
        break;
      }
      const at = this.evtqBase + (cons % 2 ** log2) * EVT_BYTES;
      const words = new Uint32Array(8);
      for (let i = 0; i < 8; i++) words[i] = this.mmio.read32(at + 4 * i);
      const f = decodeEvent(words);
      this.events.push({ name: eventName(f.EventType), sid: f.StreamID ?? -1, ssid: f.SSV ? (f.SubstreamID ?? 0) : -1, addr: f.InputAddr ?? 0, fields: f });
      if (this.events.length > 4096) this.events.shift();
      cons = (cons + 1) & mask;
      this.w32(SMMU_REG.EVENTQ_CONS, cons | (prod & 0x8000_0000));
      n++;
    }
    return n;
  }

  // --- IommuDriver ---------------------------------------------------------------

  handles(): boolean {
    return true;
  }

  probeDevice(dev: PciFunction): number {
    if (this.masters.has(dev)) return 0;
    const sid = dev.requesterId;
    if (sid >= 2 ** this.sidBits) return -19;
    const r = this.strtab.ensure(sid);
    if (r < 0) return r;
    const pasidBits = enablePasid(this.host.board, dev);
    this.masters.set(dev, { dev, sid, ssidBits: Math.min(this.ssidBits, pasidBits), cd: undefined, rid: undefined, pasids: new Map() });
    return 0;
  }

  releaseDevice(dev: PciFunction): void {
    const m = this.masters.get(dev);
    if (m === undefined) return;
    this.strtab.writeSte(m.sid, new Uint32Array(16));
    this.cmdq.issueOne('CFGI_STE', { StreamID: m.sid, Leaf: 1 });
    m.cd?.free();
    this.masters.delete(dev);
  }

  domainAllocPaging(_dev: PciFunction, flags: PagingDomainFlags): DriverDomain | number {
    const stage = flags.nestParent ? 2 : 1;
    const b = createVmsaBuilder(this.mmio, this.host.allocator.tablePages(), {
      stage, granule: 4096, iaBits: 48, oaBits: OAS_BITS[this.ipsCode]!, nonGlobal: stage === 1,
    });
    if (typeof b === 'number') return b;
    if (stage === 2) {
      const vmid = this.allocId(this.vmids, 2 ** 16);
      if (vmid < 0) return (b.destroy(), vmid);
      return new S2Domain(this, b, vmid);
    }
    const asid = this.allocId(this.asids, 2 ** 16);
    if (asid < 0) return (b.destroy(), asid);
    return new S1Domain(this, b as VmsaBuilder, asid);
  }

  domainAllocSva(_dev: PciFunction, mm: Mm): DriverDomain | number {
    const asid = this.allocId(this.asids, 2 ** 16);
    if (asid < 0) return asid;
    return new SvaDomain(this, mm, asid);
  }

  getResvRegions(): ResvRegion[] {
    return [{ start: MSI_IOVA_BASE, length: MSI_IOVA_LENGTH, type: 'sw-msi', prot: 3 | 16 }];
  }

  pageResponse(dev: PciFunction, req: PageRequest, code: PageResponseCode): void {
    const m = this.masters.get(dev);
    if (m === undefined) return;
    const resp = code === 'success' ? 1 : code === 'invalid' ? 0 : 2;
    this.cmdq.issueOne('PRI_RESP', { StreamID: m.sid, SSV: req.pasid >= 0 ? 1 : 0, SubstreamID: Math.max(0, req.pasid), PRGIndex: req.grpid, Resp: resp });
  }

  hwInfo(): HwInfo {
    // struct iommu_hw_info_arm_smmuv3 { __u32 flags; __u32 __reserved; __u32 idr[6]; __u32 iidr; __u32 aidr; }
    const data = new Uint8Array(40);
    const dv = new DataView(data.buffer);
    this.idr.forEach((v, i) => dv.setUint32(8 + 4 * i, v, true));
    dv.setUint32(32, this.r32(SMMU_REG.IIDR), true);
    dv.setUint32(36, this.r32(SMMU_REG.AIDR), true);
    return { type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, data, capabilities: 0 };
  }

  maxPasids(dev: PciFunction): number {
    const m = this.masters.get(dev);
    return m === undefined || m.ssidBits === 0 ? 0 : 2 ** m.ssidBits;
  }

  // --- attaching ---------------------------------------------------------------------

  private master(dev: PciFunction): Master | undefined {
    return this.masters.get(dev);
  }

  private ensureCdTable(m: Master): number {
    if (m.cd !== undefined) return 0;
    const t = CdTable.create(this.mmio, this.dma, m.ssidBits);
    if (typeof t === 'number') return t;
    m.cd = t;
    return 0;
  }

  /** Attach a domain to the RID (no PASID) of a device: CD 0 if stage 1, then the STE. */
  attachRid(dev: PciFunction, domain: DriverDomain): number {
    const m = this.master(dev);
    if (m === undefined) return -19;
    if (domain instanceof S2Domain && m.pasids.size > 0) return -22;
    if (domain instanceof S1Domain) {
      const r = this.ensureCdTable(m);
      if (r < 0) return r;
      const w = m.cd!.writeCd(0, domain.cdWords());
      if (w < 0) return w;
      this.cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: 0, Leaf: 1 }, false);
    } else if (m.cd?.cdValid(0)) {
      m.cd.clearCd(0);
      this.cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: 0, Leaf: 1 }, false);
    }
    m.rid = domain;
    this.installSte(m);
    return 0;
  }

  attachPasid(dev: PciFunction, pasid: number, domain: DriverDomain, cd: Uint32Array): number {
    const m = this.master(dev);
    if (m === undefined) return -19;
    if (pasid <= 0 || pasid >= 2 ** m.ssidBits || m.rid instanceof S2Domain) return -22;
    const r = this.ensureCdTable(m);
    if (r < 0) return r;
    const w = m.cd!.writeCd(pasid, cd);
    if (w < 0) return w;
    const first = m.pasids.size === 0;
    m.pasids.set(pasid, domain);
    this.cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: pasid, Leaf: 1 }, !first);
    if (first) this.installSte(m);
    return 0;
  }

  detachPasid(dev: PciFunction, pasid: number): void {
    const m = this.master(dev);
    const d = m?.pasids.get(pasid);
    if (m === undefined || d === undefined) return;
    m.cd!.clearCd(pasid);
    m.pasids.delete(pasid);
    this.cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: pasid, Leaf: 1 }, false);
    if (d instanceof S1Domain || d instanceof SvaDomain) this.cmdq.issueOne('TLBI_NH_ASID', { ASID: d.asid }, false);
    if (m.pasids.size === 0) this.installSte(m);
    else this.cmdq.issueSync();
  }

  /** Compose and install the STE from what is attached (arm_smmu_make_*_ste), then CFGI_STE + SYNC. */
  private installSte(m: Master): void {
    const rid = m.rid;
    const v: Record<string, number> = { V: 1 };
    if (rid instanceof S2Domain) {
      const b = rid.builder;
      Object.assign(v, {
        Config: STE_CONFIG.S2_TRANS, S2VMID: rid.vmid, S2T0SZ: b.tsz, S2SL0: b.sl0, S2IR0: WBWA, S2OR0: WBWA, S2SH0: ISH,
        S2TG: 0, S2PS: this.ipsCode, S2AA64: 1, S2PTW: 1, S2R: 1, S2TTB: b.root / 16,
      });
    } else if (rid instanceof S1Domain || m.pasids.size > 0) {
      const dss = rid instanceof S1Domain ? S1DSS.SSID0 : rid?.type === 'identity' ? S1DSS.BYPASS : S1DSS.TERMINATE;
      Object.assign(v, {
        Config: STE_CONFIG.S1_TRANS, S1Fmt: m.cd!.fmt, S1ContextPtr: m.cd!.base / 64, S1CDMax: m.ssidBits, S1DSS: dss,
        S1CIR: WBWA, S1COR: WBWA, S1CSH: ISH,
      });
    } else {
      v.Config = rid?.type === 'identity' ? STE_CONFIG.BYPASS : STE_CONFIG.ABORT;
    }
    this.strtab.writeSte(m.sid, encodeLayout(STE_LAYOUT, v));
    this.cmdq.issueOne('CFGI_STE', { StreamID: m.sid, Leaf: 1 });
  }

  /** The STE currently installed for a device (for tests and tracing). */
  steOf(dev: PciFunction): Uint32Array | undefined {
    const m = this.master(dev);
    return m === undefined ? undefined : this.strtab.readSte(m.sid);
  }

  // --- invalidation ------------------------------------------------------------------

  /** TLBI_NH_VA over [iova, iova+size), as range commands when RIL is there (arm_smmu_tlb_inv_range_cmd). */
  invalidateAsidRange(asid: number, iova: number, size: number, granule: number, leaf: boolean, _d: DriverDomain): void {
    this.invalidateRange('TLBI_NH_VA', { ASID: asid, Leaf: leaf ? 1 : 0 }, iova, size, granule, leaf, () => this.invalidateAsid(asid, _d));
  }

  invalidateAsid(asid: number, _d: DriverDomain): void {
    this.cmdq.issueOne('TLBI_NH_ASID', { ASID: asid });
  }

  invalidateVmidRange(vmid: number, iova: number, size: number, granule: number, leaf: boolean, _d: DriverDomain): void {
    this.invalidateRange('TLBI_S2_IPA', { VMID: vmid, Leaf: leaf ? 1 : 0 }, iova, size, granule, leaf, () => this.invalidateVmid(vmid, _d));
  }

  invalidateVmid(vmid: number, _d: DriverDomain): void {
    this.cmdq.issueOne('TLBI_S12_VMALL', { VMID: vmid });
  }

  private invalidateRange(
    op: 'TLBI_NH_VA' | 'TLBI_S2_IPA',
    base: Record<string, number>,
    iova: number,
    size: number,
    granule: number,
    leaf: boolean,
    all: () => void,
  ): void {
    let pages = Math.ceil(size / 4096);
    if (pages <= 0) return;
    const cmds: Uint32Array[] = [];
    if (!this.rangeInvalidation) {
      if (pages > MAX_TLBI_OPS) return all();
      for (let i = 0; i < pages; i++) cmds.push(encodeCommand(op, { ...base, Address: iova / 4096 + i }));
    } else {
      // §4.4.1.1: TG=4K with NUM = SCALE = TTL = 0 is reserved. Leaf invalidations carry the
      // level of the leaves as TTL (4K: 3, 2M: 2, 1G: 1); otherwise round a lone page up to two.
      const ttl = leaf ? 4 - Math.round((Math.log2(Math.max(granule, 4096)) - 3) / 9) : 0;
      if (ttl === 0 && pages % 32 === 1) pages++;
      // Each command covers NUM+1 blocks of 2^SCALE pages; the odd part of the count goes first.
      let left = pages;
      let addr = iova;
      while (left > 0) {
        const scale = ctz(left);
        const num = Math.floor(left / 2 ** scale) % 32;
        cmds.push(encodeCommand(op, { ...base, Address: addr / 4096, TG: 1, SCALE: scale, NUM: num - 1, TTL: ttl }));
        addr += num * 2 ** scale * 4096;
        left -= num * 2 ** scale;
      }
    }
    this.cmdq.issueSync(cmds);
  }

  // --- IDs ------------------------------------------------------------------------------

  private allocId(set: Set<number>, limit: number): number {
    for (let id = 1; id < limit; id++) {
      if (!set.has(id)) {
        set.add(id);
        return id;
      }
    }
    return -28;
  }

  releaseAsid(asid: number): void {
    this.asids.delete(asid);
  }

  releaseVmid(vmid: number): void {
    this.vmids.delete(vmid);
  }
}

/** Trailing zero bits of a positive integer (exact beyond 32 bits). */
function ctz(n: number): number {
  let c = 0;
  while (n > 0 && n % 2 === 0) {
    n /= 2;
    c++;
  }
  return c;
}
