import type { Host } from '../../../src/host/host.ts';
import type { Mm } from '../../../src/host/mm.ts';
import type { PciAtsDevice } from '../../../src/host/pci-ats.ts';
import { EBUSY, EINVAL, ENOENT, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import type {
  DriverDomain, DriverViommu, HwInfo, IommuDriver, PageRequest, PageResponseCode, PagingDomainFlags, ResvRegion, ViommuVdevs,
} from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { createVmsaBuilder, type VmsaBuilder } from '../../pgtable/vmsa-builder.ts';
import { decodeLayout } from '../../../src/hw/layout.ts';
import { cmdOpcode, encodePriResp } from '../cmd.ts';
import { CR0, OAS_BITS, PRI_RESP, SMMU_REG, SMMU_REGS, STRTAB_FMT_2LVL } from '../regs.ts';
import { CommandQueue } from './cmdq.ts';
import { S1Domain, S2Domain, StaticDomain, SvaDomain } from './domains.ts';
import { tlbiRangeCommands } from './invalidate.ts';
import { Masters } from './masters.ts';
import { EVTQ_LOG2, FaultQueues, type SmmuEventRecord } from './queues.ts';
import { STRTAB_SPLIT, StreamTable, type DmaMemory } from './tables.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED, IOMMU_VIOMMU_TYPE_ARM_SMMUV3 } from '../../../src/uapi/iommufd.ts';
import { STE_CONFIG } from '../ste.ts';
import { NestedDomain, Smmuv3Viommu } from './nested.ts';

export type { SmmuEventRecord } from './queues.ts';

/** IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (include/uapi/linux/iommufd.h). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** Where Linux puts the software-managed MSI window (MSI_IOVA_BASE / MSI_IOVA_LENGTH in arm-smmu-v3.c). */
export const MSI_IOVA_BASE = 0x800_0000;
export const MSI_IOVA_LENGTH = 0x10_0000;

const CMDQ_LOG2 = 8;
const EVT_BYTES = 32;
const WBWA = 1;
const ISH = 3;
/** IDR0.STALL_MODEL 0b00: stall and terminate models both supported. */
const STALL_MODEL_STALL_AND_TERMINATE = 0b00;
/** IDR0.HTTU 0b10: access flag and dirty state updates. */
const HTTU_ACCESS_AND_DIRTY = 0b10;
/** Page requests a device may have outstanding (pci_enable_pri's reqs; capped by its capacity). */
const PRI_REQS = 64;

/**
 * How the driver treats PCIe PRI (machines/README.md, MachineOptions.smmuPri):
 * - 'mainline': Linux 7.3's arm-smmu-v3. The PRI queue is brought up at reset
 *   when IDR0.PRI says so (arm_smmu_device_reset), but no master gets PRI:
 *   arm_smmu_enable_iopf() only takes stall-capable masters (SVA works
 *   through stalls), pci_enable_pri() is never called, and every record in
 *   the PRI queue is "unexpected": arm_smmu_handle_ppr() logs it and denies
 *   a last one with CMD_PRI_RESP (Resp Deny).
 * - 'posted-series': the SMMUv3 PRI series posted to the list and not
 *   merged in 7.3 (PRI on ATS masters, the device's PRI enabled when I/O page
 *   faults are, page requests into the IOPF queue, CMD_PRI_RESP from the
 *   IOPF response; the PRI queue brought up on first use).
 */
export type SmmuPriMode = 'mainline' | 'posted-series';
export const SMMU_PRI_MODES: readonly SmmuPriMode[] = Object.freeze(['mainline', 'posted-series']);

export interface Smmuv3DriverOptions {
  /** Default 'mainline'. */
  pri?: SmmuPriMode;
}

/**
 * The arm-smmu-v3-shaped host driver. It reaches the SMMU only through its
 * MMIO registers and the tables and queues it allocates in guest memory:
 * probe from the IDRs, a 2-level stream table, command, event and PRI
 * queues with MSIs, STEs and CDs for blocked/identity/stage-1/stage-2/SVA
 * domains, nested domains through a vSMMU (nested.ts), HTTU dirty tracking
 * on stage-1 domains (dirty.ts), invalidation with CMD_SYNC, ATS (STE.EATS, the device's ATS
 * Control, CMD_ATC_INV after TLB invalidation), PRI and stall faults into
 * the host's I/O page-fault queue. It implements the IOMMU core's driver ops.
 */
export class Smmuv3Driver implements IommuDriver {
  readonly name = 'arm-smmu-v3';
  readonly blockedDomain: StaticDomain;
  readonly identityDomain: StaticDomain;
  readonly cmdq: CommandQueue;
  readonly queues: FaultQueues;
  readonly idr: number[] = [];
  ipsCode = 5;
  private readonly mmio;
  private readonly dma: DmaMemory;
  private readonly strtab: StreamTable;
  private readonly masters: Masters;
  private readonly asids = new Set<number>();
  private readonly vmids = new Set<number>();
  private sidBits = 16;
  private ssidBits = 0;
  private rangeInvalidation = false;
  private atsSupported = false;
  private priSupported = false;
  private stallsSupported = false;
  /** IDR1.PRIQS: log2 of the largest PRI queue. */
  private priqs = 0;
  /** The SMMU keeps dirty state in stage-1 descriptors (HTTU with DBM, coherent walks). */
  dbmCapable = false;
  /** Stage 1 and stage 2 both present: nest parents and vIOMMUs are offered. */
  nestingSupported = false;
  private cr0 = 0;
  /** Scratch for a CMD_PRI_RESP (copied into the queue at once). */
  private readonly respWords = new Uint32Array(4);
  /** How PRI is treated (SmmuPriMode). */
  readonly priMode: SmmuPriMode;

  constructor(
    readonly host: Host,
    readonly base: number,
    opts: Smmuv3DriverOptions = {},
  ) {
    this.priMode = opts.pri ?? 'mainline';
    this.mmio = host.platform.sysmem;
    const tables = host.allocator.tablePages();
    this.dma = { alloc: (b) => tables.alloc(Math.max(b, 4096)), free: (pa, b) => tables.free(pa, Math.max(b, 4096)) };
    this.blockedDomain = new StaticDomain(this, 'blocked');
    this.identityDomain = new StaticDomain(this, 'identity');
    this.probeHardware();
    this.strtab = new StreamTable(this.mmio, this.dma, this.sidBits);
    const cmdqBase = this.mustAlloc(16 * 2 ** CMDQ_LOG2);
    this.cmdq = new CommandQueue(this.mmio, base, this.mmio, cmdqBase, CMDQ_LOG2, host.platform.scheduler, (cerror, words) => {
      this.events.push({ name: `CMDQ_ERR(${cerror})`, sid: -1, ssid: -1, addr: 0, fields: { Opcode: cmdOpcode(words) } });
    });
    this.masters = new Masters({
      mmio: this.mmio, dma: this.dma, strtab: this.strtab, cmdq: this.cmdq, ipsCode: this.ipsCode, stallsSupported: this.stallsSupported,
    });
    this.queues = new FaultQueues({
      host, mmio: this.mmio, base, cmdq: this.cmdq,
      master: (sid) => this.masters.bySid.get(sid),
      priMode: this.priMode,
      devName: `${base.toString(16)}.smmuv3`,
      alloc: (b) => this.dma.alloc(b),
      enable: (bits) => this.writeCr0(this.cr0 | bits),
    }, this.mustAlloc(EVT_BYTES * 2 ** EVTQ_LOG2));
    this.reset(cmdqBase);
  }

  /** Guest memory as the driver reads and writes its tables. */
  get tableMem(): PhysMem {
    return this.mmio;
  }

  /** Decoded event records consumed so far (and command errors). */
  get events(): SmmuEventRecord[] {
    return this.queues.events;
  }

  /** The lines this driver printed to the kernel log (dev_info/dev_err), oldest first. */
  get log(): readonly string[] {
    return this.queues.log;
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

  /** A 64-bit register write; bigint so high attribute bits (RA/WA at 62) cannot swallow low ones. */
  private w64(off: number, v: bigint): void {
    this.mmio.write64(this.base + off, v);
  }

  /** arm_smmu_device_hw_probe(): what the IDRs advertise. */
  private probeHardware(): void {
    for (let i = 0; i < 6; i++) this.idr.push(this.r32(SMMU_REG.IDR0 + 4 * i));
    const idr0 = decodeLayout(SMMU_REGS.layout('IDR0'), [this.idr[0]!]);
    const idr1 = decodeLayout(SMMU_REGS.layout('IDR1'), [this.idr[1]!]);
    this.priqs = idr1.PRIQS;
    this.sidBits = idr1.SIDSIZE;
    this.ssidBits = idr1.SSIDSIZE;
    this.rangeInvalidation = SMMU_REGS.get('IDR3', this.idr[3]!, 'RIL') === 1;
    this.atsSupported = idr0.ATS === 1;
    this.priSupported = idr0.PRI === 1;
    this.stallsSupported = idr0.STALL_MODEL === STALL_MODEL_STALL_AND_TERMINATE;
    // IDR0.HTTU == 0b10: access flag and dirty state; with coherent table walks (IDR0.COHACC)
    // that is arm_smmu_dbm_capable(), the condition for IOMMU_CAP_DIRTY_TRACKING.
    this.dbmCapable = idr0.HTTU === HTTU_ACCESS_AND_DIRTY && idr0.COHACC === 1;
    // ARM_SMMU_FEAT_NESTING: both stages (IDR0.S1P, IDR0.S2P).
    this.nestingSupported = idr0.S1P === 1 && idr0.S2P === 1;
    const oas = SMMU_REGS.get('IDR5', this.idr[5]!, 'OAS');
    this.ipsCode = Math.min(oas, OAS_BITS.length - 1);
  }

  /** arm_smmu_device_reset(): program tables and queues, then enable step by step, waiting for each ACK. */
  private reset(cmdqBase: number): void {
    if (this.r32(SMMU_REG.CR0) & CR0.SMMUEN) this.writeCr0(0);
    this.w32(SMMU_REG.CR1, SMMU_REGS.pack('CR1', { QUEUE_IC: WBWA, QUEUE_OC: WBWA, QUEUE_SH: ISH, TABLE_IC: WBWA, TABLE_OC: WBWA, TABLE_SH: ISH }));
    this.w32(SMMU_REG.CR2, SMMU_REGS.pack('CR2', { RECINVSID: 1, PTM: 1 }));
    this.w64(SMMU_REG.STRTAB_BASE, SMMU_REGS.pack64('STRTAB_BASE', { RA: 1, ADDR: this.strtab.l1Base / 64 }));
    this.w32(SMMU_REG.STRTAB_BASE_CFG, SMMU_REGS.pack('STRTAB_BASE_CFG', { FMT: STRTAB_FMT_2LVL, SPLIT: STRTAB_SPLIT, LOG2SIZE: this.sidBits }));
    this.w64(SMMU_REG.CMDQ_BASE, SMMU_REGS.pack64('CMDQ_BASE', { ADDR: cmdqBase / 32, LOG2SIZE: CMDQ_LOG2 }));
    this.w32(SMMU_REG.CMDQ_PROD, 0);
    this.w32(SMMU_REG.CMDQ_CONS, 0);
    this.writeCr0(CR0.CMDQEN);
    this.cmdq.issueSync([]);
    this.cmdq.issueOne('CFGI_STE_RANGE', { Range: 31 }, false);
    this.cmdq.issueOne('TLBI_NSNH_ALL', {}, true);
    this.w64(SMMU_REG.EVENTQ_BASE, SMMU_REGS.pack64('EVENTQ_BASE', { ADDR: this.queues.evtqBase / 32, LOG2SIZE: EVTQ_LOG2 }));
    this.w32(SMMU_REG.EVENTQ_PROD, 0);
    this.w32(SMMU_REG.EVENTQ_CONS, 0);
    this.writeCr0(this.cr0 | CR0.EVENTQEN);
    this.queues.setupIrqs();
    // arm_smmu_device_reset(): the PRI queue is enabled whenever ARM_SMMU_FEAT_PRI (mainline).
    if (this.priMode === 'mainline' && this.priSupported && this.queues.enablePriq(this.priqs) < 0) {
      throw new Error('SMMUv3 driver: out of memory at probe');
    }
    // Safe ATS mode: Translated transactions are checked against STE.EATS (Linux sets CR0_ATSCHK).
    if (this.atsSupported) this.writeCr0(this.cr0 | CR0.ATSCHK);
    this.writeCr0(this.cr0 | CR0.SMMUEN);
  }

  private writeCr0(v: number): void {
    this.w32(SMMU_REG.CR0, v);
    if (this.r32(SMMU_REG.CR0ACK) !== v) throw new Error(`SMMUv3 driver: CR0ACK did not follow CR0=${v}`);
    this.cr0 = v;
  }

  /** arm_smmu_evtq_thread(): consume every record, acknowledge overflow. */
  drainEvents(): number {
    return this.queues.drainEvents();
  }

  // --- IommuDriver ---------------------------------------------------------------

  handles(): boolean {
    return true;
  }

  probeDevice(dev: PciFunction): number {
    if (this.masters.byDev.has(dev)) return 0;
    // The StreamID is the requester ID the SMMU sees: a device behind a PCIe-to-PCI bridge uses the bridge's alias.
    const sid = dev.upstreamRequesterId;
    if (sid >= 2 ** this.sidBits) return -19;
    // arm_smmu_insert_master(): a second master on one StreamID is refused (masters.ts).
    const owner = this.masters.bySid.get(sid);
    if (owner !== undefined) return this.masters.refuseAlias(dev, sid, owner);
    const r = this.strtab.ensure(sid);
    if (r < 0) return r;
    const pdev = this.host.pciAts(dev);
    // PASID is enabled here, before ATS (at attach), and disabled after it (arm_smmu_probe_device; PCIe 10.5.1.3).
    const ssidBits = this.enablePasid(pdev);
    const atsSupported = this.atsSupported && pdev.atsSupported();
    this.masters.add({
      dev, pdev, sid, ssidBits, cd: undefined, rid: undefined, pasids: new Map(),
      atsSupported, priSupported: atsSupported && this.priSupported && pdev.priSupported(),
      atsEnabled: false, pri: false, prgPasidRequired: false, canStall: false, stall: false,
    });
    return 0;
  }

  /**
   * arm_smmu_enable_pasid(): PASID with every feature the device has; the
   * master's SubstreamID width is the smaller of its PASID width and the
   * SMMU's (0 without PASID).
   */
  private enablePasid(pdev: PciAtsDevice): number {
    const features = pdev.pasidFeatures();
    if (features < 0) return 0;
    const pasids = pdev.maxPasids();
    if (pdev.enablePasid(features) < 0) return 0;
    return Math.min(Math.log2(pasids), this.ssidBits);
  }

  /** The kernel's warning for a device this driver refused at probe, if it did. */
  probeFailure(dev: PciFunction): string | undefined {
    return this.masters.refused.get(dev);
  }

  releaseDevice(dev: PciFunction): void {
    const m = this.masters.byDev.get(dev);
    if (m === undefined) return;
    this.disableIopf(dev);
    if (m.atsEnabled) this.masters.setAts(m, false);
    m.pdev.disablePasid();
    this.strtab.writeSte(m.sid, new Uint32Array(16));
    this.cmdq.issueOne('CFGI_STE', { StreamID: m.sid, Leaf: 1 });
    m.cd?.free();
    this.masters.remove(m);
  }

  /**
   * The IORT root complex node's CANWBS memory access flag (IORT E.f; Linux
   * IOMMU_FWSPEC_PCI_RC_CANWBS, arm_smmu_master_canwbs): the PCI devices'
   * accesses stay coherent whatever memory attributes they carry, No-Snoop
   * included. Device tree has no such property and firmware without IORT
   * E.f does not set it: false unless a machine's firmware says so.
   */
  pciRcCanwbs = false;

  /**
   * IOMMU_CAP_ENFORCE_CACHE_COHERENCY (arm_smmu_capable): the device is
   * CANWBS, so a domain can promise its DMA never bypasses the caches.
   */
  enforceCacheCoherencyCapable(dev: PciFunction): boolean {
    return this.masters.byDev.has(dev) && this.pciRcCanwbs;
  }

  /** arm_smmu_master_canwbs() of every master attached to `domain` at its RID or a PASID (true with none). */
  mastersCanwbs(domain: DriverDomain): boolean {
    for (const m of this.masters.byDev.values()) {
      if ((m.rid === domain || [...m.pasids.values()].includes(domain)) && !this.pciRcCanwbs) return false;
    }
    return true;
  }

  /** Firmware says the device tolerates stalls ("dma-can-stall"): enableIopf then uses the stall model. */
  setStallCapable(dev: PciFunction, yes = true): void {
    const m = this.masters.byDev.get(dev);
    if (m !== undefined) m.canStall = yes && this.stallsSupported;
  }

  /**
   * I/O page faults for a device. 'posted-series': PRI on a device that has
   * it (the SMMU's PRI queue is brought up on first use, the device's PRI
   * interface reset and enabled with an allocation), else stalls for a
   * stall-capable device. 'mainline' (arm_smmu_enable_iopf): stalls only;
   * a device without them gets 0 and no I/O page faults, PRI or not. A
   * device with neither gets no I/O page faults (0: its faults just fault).
   */
  enableIopf(dev: PciFunction): number {
    const m = this.masters.byDev.get(dev);
    if (m === undefined) return -19;
    if (m.pri || m.stall) return 0;
    if (m.priSupported && this.priMode === 'posted-series') {
      const q = this.queues.enablePriq(this.priqs);
      if (q < 0) return q;
      // pci_reset_pri() first: the function forgets the requests of an earlier life, then gets its allocation.
      let r = m.pdev.resetPri();
      if (r === 0) r = m.pdev.enablePri(PRI_REQS);
      if (r < 0) return r;
      m.prgPasidRequired = m.pdev.prgRespPasidRequired();
      m.pri = true;
      // iopf_queue_add_device(): its page requests may now be reported.
      this.host.iopf.addDevice(dev);
      return 0;
    }
    if (m.canStall) {
      m.stall = true;
      this.host.iopf.addDevice(dev);
      // STE.S1STALLD must be clear before any CD asks for stalls.
      if (m.rid !== undefined || m.pasids.size > 0) this.masters.installSte(m);
    }
    return 0;
  }

  disableIopf(dev: PciFunction): void {
    const m = this.masters.byDev.get(dev);
    if (m === undefined || (!m.pri && !m.stall)) return;
    if (m.pri) m.pdev.disablePri();
    m.pri = false;
    m.stall = false;
    // iopf_queue_remove_device(): pending groups answered Invalid, partial requests dropped.
    this.host.iopf.removeDevice(dev);
  }

  /**
   * arm_smmu_domain_alloc_paging_flags(): no flags (or PASID) is a stage-1
   * domain; NEST_PARENT a stage-2 one (ARM_SMMU_FEAT_NESTING: both stages);
   * DIRTY_TRACKING (with or without PASID) a stage-1 domain whose table has
   * DBM on writable leaves (IO_PGTABLE_QUIRK_ARM_HD), only where the SMMU
   * updates dirty state (arm_smmu_dbm_capable); any other combination,
   * such as a dirty-tracking or PASID-compatible nest parent, is -EOPNOTSUPP.
   */
  domainAllocPaging(_dev: PciFunction, flags: PagingDomainFlags): DriverDomain | number {
    const dirty = flags.dirtyTracking === true;
    if (dirty && (flags.nestParent === true || !this.dbmCapable)) return -EOPNOTSUPP;
    if (flags.nestParent === true && (!this.nestingSupported || flags.pasid === true)) return -EOPNOTSUPP;
    const stage = flags.nestParent ? 2 : 1;
    const b = createVmsaBuilder(this.mmio, this.host.allocator.tablePages(), {
      stage, granule: 4096, iaBits: 48, oaBits: OAS_BITS[this.ipsCode]!, nonGlobal: stage === 1, dbm: dirty,
    });
    if (typeof b === 'number') return b;
    if (stage === 2) {
      const vmid = this.allocId(this.vmids, 2 ** 16);
      if (vmid < 0) return (b.destroy(), vmid);
      return new S2Domain(this, b, vmid, flags.nestParent === true);
    }
    const asid = this.allocId(this.asids, 2 ** 16);
    if (asid < 0) return (b.destroy(), asid);
    return new S1Domain(this, b as VmsaBuilder, asid, dirty);
  }

  /** arm_smmu_get_viommu_size(): a vSMMU needs both stages (cache maintenance: the model is coherent, as canwbs). */
  viommuSupported(_dev: PciFunction, type: number): boolean {
    return type === IOMMU_VIOMMU_TYPE_ARM_SMMUV3 && this.nestingSupported;
  }

  /** arm_vsmmu_init(): the parent must be a nest-parent stage-2 domain of this SMMU. */
  viommuAlloc(_dev: PciFunction, parent: DriverDomain, type: number, vdevs: ViommuVdevs): DriverViommu | number {
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) return -EOPNOTSUPP;
    if (!(parent instanceof S2Domain) || parent.smmu !== this || !parent.nestParent) return -EINVAL;
    return new Smmuv3Viommu(this, parent, vdevs);
  }

  domainAllocSva(_dev: PciFunction, mm: Mm): DriverDomain | number {
    const asid = this.allocId(this.asids, 2 ** 16);
    if (asid < 0) return asid;
    return new SvaDomain(this, mm, asid);
  }

  getResvRegions(): ResvRegion[] {
    return [{ start: MSI_IOVA_BASE, length: MSI_IOVA_LENGTH, type: 'sw-msi', prot: 3 | 16 }];
  }

  /**
   * The answer to a fault group: CMD_RESUME for a stall (the cookie is its
   * STAG: Success retries, anything else aborts), else CMD_PRI_RESP (§4.6.1
   * Resp: Success 0b10, Invalid Request = Deny 0b00, Response Failure =
   * Fail 0b01), with the PASID only when the device requires it.
   */
  pageResponse(dev: PciFunction, req: PageRequest, code: PageResponseCode): void {
    const m = this.masters.byDev.get(dev);
    if (m === undefined) return;
    // As arm_smmu_page_response: no CMD_SYNC after RESUME or PRI_RESP ("it doesn't do anything for
    // RESUME or PRI_RESP ... PRI_RESP is fire and forget").
    if (req.cookie !== undefined) {
      const ok = code === 'success';
      this.cmdq.issueOne('RESUME', { StreamID: m.sid, STAG: req.cookie, Ac: ok ? 1 : 0, Ab: ok ? 0 : 1 }, false);
      return;
    }
    const resp = code === 'success' ? PRI_RESP.SUCCESS : code === 'invalid' ? PRI_RESP.DENY : PRI_RESP.FAIL;
    const ssv = req.needsPasid && req.pasid >= 0;
    this.cmdq.issueWords(encodePriResp(this.respWords, m.sid, ssv ? 1 : 0, ssv ? req.pasid : 0, req.grpid, resp));
  }

  hwInfo(dev: PciFunction): HwInfo {
    // struct iommu_hw_info_arm_smmuv3 { __u32 flags; __u32 __reserved; __u32 idr[6]; __u32 iidr; __u32 aidr; }
    const data = new Uint8Array(40);
    const dv = new DataView(data.buffer);
    this.idr.forEach((v, i) => dv.setUint32(8 + 4 * i, v, true));
    dv.setUint32(32, this.r32(SMMU_REG.IIDR), true);
    dv.setUint32(36, this.r32(SMMU_REG.AIDR), true);
    // iommufd_get_hw_info asks IOMMU_CAP_PCI_ATS_SUPPORTED: arm_smmu_capable answers arm_smmu_ats_supported(master).
    const ats = this.masters.byDev.get(dev)?.atsSupported === true;
    return { type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, data, capabilities: (this.dbmCapable ? IOMMU_HW_CAP_DIRTY_TRACKING : 0) | (ats ? 0 : IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED) };
  }

  maxPasids(dev: PciFunction): number {
    const m = this.masters.byDev.get(dev);
    return m === undefined || m.ssidBits === 0 ? 0 : 2 ** m.ssidBits;
  }

  // --- attaching (masters.ts) -------------------------------------------------------

  attachRid(dev: PciFunction, domain: DriverDomain): number {
    const m = this.masters.byDev.get(dev);
    return m === undefined ? -19 : this.masters.attachRid(m, domain);
  }

  attachPasid(dev: PciFunction, pasid: number, domain: DriverDomain, cd: Uint32Array): number {
    const m = this.masters.byDev.get(dev);
    return m === undefined ? -19 : this.masters.attachPasid(m, pasid, domain, cd);
  }

  /**
   * arm_smmu_attach_dev_nested(): not while PASIDs are in use (-EBUSY); a
   * translating vSTE needs the device's vDEVICE in the vSMMU first, for its
   * vSID (-ENOENT; arm_smmu_attach_prepare_vmaster), abort and bypass do not.
   */
  attachNested(dev: PciFunction, d: NestedDomain): number {
    const m = this.masters.byDev.get(dev);
    if (m === undefined) return -19;
    if (d.vsmmu.smmu !== this) return -EINVAL;
    if (m.pasids.size > 0) return -EBUSY;
    if (d.vste.config === STE_CONFIG.S1_TRANS && d.vsmmu.vdevs.virtIdOf(dev) === undefined) return -ENOENT;
    return this.masters.attachRid(m, d);
  }

  /** The StreamID of a probed device (master->streams[0].id). */
  sidOf(dev: PciFunction): number | undefined {
    return this.masters.byDev.get(dev)?.sid;
  }

  detachPasid(dev: PciFunction, pasid: number): void {
    const m = this.masters.byDev.get(dev);
    if (m !== undefined) this.masters.detachPasid(m, pasid);
  }

  /** The STE currently installed for a device (for tests and tracing). */
  steOf(dev: PciFunction): Uint32Array | undefined {
    const m = this.masters.byDev.get(dev);
    return m === undefined ? undefined : this.strtab.readSte(m.sid);
  }

  /** Is ATS enabled for the device (STE.EATS and its ATS Control)? */
  atsEnabled(dev: PciFunction): boolean {
    return this.masters.byDev.get(dev)?.atsEnabled ?? false;
  }

  /** CMD_ATC_INV commands issued so far. */
  get atcInvalidations(): number {
    return this.masters.atcInvalidations;
  }

  // --- invalidation: TLBI, then the ATCs of the domain's devices -----------------------

  invalidateAsidRange(asid: number, iova: number, size: number, granule: number, leaf: boolean, d: DriverDomain): void {
    const cmds = tlbiRangeCommands('TLBI_NH_VA', { ASID: asid, Leaf: leaf ? 1 : 0 }, iova, size, granule, leaf, this.rangeInvalidation);
    if (cmds === null) return this.invalidateAsid(asid, d);
    if (cmds.length === 0) return;
    this.cmdq.issueSync(cmds);
    this.masters.atcInvDomain(d, iova, size);
  }

  invalidateAsid(asid: number, d: DriverDomain): void {
    this.cmdq.issueOne('TLBI_NH_ASID', { ASID: asid });
    this.masters.atcInvDomain(d, 0, 0);
  }

  invalidateVmidRange(vmid: number, iova: number, size: number, granule: number, leaf: boolean, d: DriverDomain): void {
    const cmds = tlbiRangeCommands('TLBI_S2_IPA', { VMID: vmid, Leaf: leaf ? 1 : 0 }, iova, size, granule, leaf, this.rangeInvalidation);
    if (cmds === null) return this.invalidateVmid(vmid, d);
    if (cmds.length === 0) return;
    this.cmdq.issueSync(cmds);
    this.masters.atcInvDomain(d, iova, size);
  }

  invalidateVmid(vmid: number, d: DriverDomain): void {
    this.cmdq.issueOne('TLBI_S12_VMALL', { VMID: vmid });
    this.masters.atcInvDomain(d, 0, 0);
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
