import { IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED, IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 } from '../../../src/uapi/iommufd.ts';
import { EINVAL, ENODEV, ENOMEM, ENOSPC, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import type { Host } from '../../../src/host/host.ts';
import type { Mm } from '../../../src/host/mm.ts';
import { PCI_PASID_CAP_EXEC, PCI_PASID_CAP_PRIV, type PciAtsDevice } from '../../../src/host/pci-ats.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { decodeLayout, encodeLayout, readField, writeField } from '../../../src/hw/layout.ts';
import { PASID_ENTRY } from '../pasid-entry.ts';
import type {
  DriverDomain, HwInfo, IommuDriver, PageRequest, PageResponseCode, PagingDomainFlags, ResvRegion,
} from '../../../src/iommu-core/types.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { createIa32eBuilder } from '../../pgtable/ia32e-builder.ts';
import { createVtdSsBuilder } from '../../pgtable/vtd-ss-builder.ts';
import { DEVTLB_ALL, PGRP_RC_FAILURE, PGRP_RC_INVALID, PGRP_RC_SUCCESS } from '../inv-desc.ts';
import {
  AW_48, GCMD_QIE, GCMD_SRTP, GCMD_TE, GSTS_QIES, GSTS_RTPS, GSTS_TES, SLLPS_1G, SLLPS_2M, TTM_SCALABLE, VTD_REGS, sagawHas, type VtdRegMap,
} from '../regs.ts';
import { SM_CONTEXT_ENTRY } from '../root-context.ts';
import { qd } from './descs.ts';
import { userKey, type DevInfo } from './device.ts';
import { FsDomain, IDENTITY_DID, SsDomain, StaticDomain, SvaDomain, type VtdDomain, type VtdDomainOps } from './domains.ts';
import { IOMMU_HWPT_DATA_VTD_S1, NestedDomain, VTD_S1_SIZE, checkUserStruct, isNestParent, parseVtdS1 } from './nested.ts';
import { FaultReader, PageRequestReader, type VtdFaultRecord } from './events.ts';
import { Flusher } from './flush.ts';
import { VtdMmio } from './mmio.ts';
import { InvalidationQueue, type QiError } from './qi.ts';
import { ContextTables, PasidTables, type DmaMemory } from './tables.ts';

/** IOMMU_HW_INFO_TYPE_INTEL_VTD (include/uapi/linux/iommufd.h). */
/** The IOAPIC/MSI window every device must leave alone (Linux IOAPIC_RANGE_START/END). */
export const IOAPIC_RANGE_START = 0xfee0_0000;
export const IOAPIC_RANGE_END = 0xfeef_ffff;
/** The page request queue: 2^PRQ_ORDER pages of 32-byte descriptors (Linux PRQ_ORDER 4 on big machines; one page here). */
const PRQ_ORDER = 0;
const PRQ_DEPTH = (4096 << PRQ_ORDER) / 32;
/** VTD_PAGE_SHIFT: the page shift pci_enable_ats is given (4 KiB Smallest Translation Unit). */
const VTD_PAGE_SHIFT = 12;
/** Host address width the machine's ACPI DMAR table would report: table pointers and outputs stay below it. */
const HAW = 48;
/** Domain IDs 0 and 1 are reserved (1: pass-through entries). */
const FIRST_DID = 2;

/**
 * The intel-iommu-shaped host driver for the VT-d model, in scalable mode
 * only. It reaches the unit through its MMIO registers and the structures
 * and queues it allocates in guest memory: probe from CAP/ECAP, queued
 * invalidation, a scalable-mode root table with context tables and per-device
 * PASID tables, fault and page request interrupts, and domains installed as
 * PASID-table entries (see domains.ts, nested.ts).
 */
export class VtdDriver implements IommuDriver, VtdDomainOps {
  readonly name = 'intel-iommu';
  readonly blockedDomain: StaticDomain;
  readonly identityDomain: StaticDomain;
  readonly regs: VtdMmio;
  readonly cap: [number, number];
  readonly ecap: [number, number];
  /** CAP and ECAP decoded by field name. */
  readonly caps: Readonly<Record<VtdRegMap['CAP'], number>>;
  readonly ecaps: Readonly<Record<VtdRegMap['ECAP'], number>>;
  readonly qi: InvalidationQueue;
  readonly tables: ContextTables;
  readonly pwsnp: boolean;
  readonly snoopControl: boolean;
  private readonly faultReader: FaultReader;
  private readonly prq: PageRequestReader | undefined;
  private readonly flusher: Flusher;
  private readonly dma: DmaMemory;
  private readonly devices = new Map<PciFunction, DevInfo>();
  private readonly bySid = new Map<number, DevInfo>();
  private readonly dids = new Set<number>();
  /**
   * Offer dirty tracking when the unit has second-stage A/D (ECAP.SLADS). Set
   * false to model a driver or platform that does not use it.
   */
  offerDirtyTracking = true;

  constructor(
    readonly host: Host,
    readonly base: number,
  ) {
    const board = host.platform;
    const mem = board.sysmem;
    this.regs = new VtdMmio(mem, base);
    const tables = host.allocator.tablePages();
    this.dma = { alloc: (b) => tables.alloc(Math.max(b, 4096)), free: (pa, b) => tables.free(pa, Math.max(b, 4096)) };
    this.cap = this.regs.r64('CAP');
    this.ecap = this.regs.r64('ECAP');
    this.caps = decodeLayout(VTD_REGS.layout('CAP'), this.cap);
    this.ecaps = decodeLayout(VTD_REGS.layout('ECAP'), this.ecap);
    if (this.ecaps.SMTS !== 1 || this.ecaps.QI !== 1) throw new Error('VT-d driver: needs scalable mode and queued invalidation');
    this.pwsnp = this.ecaps.SMPWCS === 1;
    this.snoopControl = this.ecaps.SC === 1;
    this.blockedDomain = new StaticDomain(this, 'blocked');
    this.identityDomain = new StaticDomain(this, 'identity');
    this.faultReader = new FaultReader(this.regs, this.caps.FRO * 16, this.caps.NFR + 1, host.kmsg);
    const status = this.mustAlloc(4096);
    this.qi = new InvalidationQueue(this.regs, mem, this.mustAlloc(4096), status, board.scheduler, (e) => this.queueError(e));
    this.flusher = new Flusher(this.qi, this.caps.MAMV, (dev) => this.devices.get(dev));
    this.tables = new ContextTables(mem, this.dma);
    if (this.ecaps.PRS === 1) this.prq = new PageRequestReader(this.regs, mem, this.mustAlloc(4096 << PRQ_ORDER), PRQ_ORDER);
    this.init();
  }

  /** Faults and queue errors the driver consumed (decoded fault records, IQE/ITE/ICE). */
  get faults(): readonly VtdFaultRecord[] {
    return this.faultReader.faults;
  }

  private mustAlloc(bytes: number): number {
    const pa = this.dma.alloc(bytes);
    if (pa === undefined) throw new Error('VT-d driver: out of memory at probe');
    return pa;
  }

  /** intel_iommu_init() for one unit: quiesce, queued invalidation, root table, global flush, interrupts, TE. */
  private init(): void {
    const r = this.regs;
    if ((r.r32('GSTS') & GSTS_TES) !== 0) this.mustGcmd(GCMD_TE, false, GSTS_TES);
    if ((r.r32('GSTS') & GSTS_QIES) !== 0) this.mustGcmd(GCMD_QIE, false, GSTS_QIES);
    this.qi.program();
    this.mustGcmd(GCMD_QIE, true, GSTS_QIES);
    r.write('RTADDR', { RTA: this.tables.root / 4096, TTM: TTM_SCALABLE });
    this.mustGcmd(GCMD_SRTP, true, GSTS_RTPS);
    this.qi.submit([qd.contextGlobal(), qd.pasidGlobal(), qd.iotlbGlobal()]);
    this.setupInterrupts();
    this.mustGcmd(GCMD_TE, true, GSTS_TES);
  }

  private mustGcmd(bit: number, on: boolean, status: number): void {
    if (!this.regs.gcmd(bit, on, status)) throw new Error(`VT-d driver: GSTS did not follow GCMD ${bit.toString(16)}=${on}`);
  }

  /** Fault event and page request event MSIs, handled a little later as a threaded IRQ would be. */
  private setupInterrupts(): void {
    const board = this.host.platform;
    const r = this.regs;
    const sched = board.scheduler;
    this.faultReader.drain();
    const fault = this.host.allocMsiData();
    r.write('FEDATA', { IMD: fault });
    r.write('FEADDR', { MA: board.msi.base / 4 });
    r.write('FEUADDR', { MUA: 0 });
    board.msi.on(fault, () => sched.schedule(0, () => this.faultReader.drain(), 'vtd-driver.fault-irq'));
    r.write('FECTL', { IM: 0 });
    if (this.prq === undefined) return;
    this.prq.program();
    const prq = this.host.allocMsiData();
    r.write('PEDATA', { IMD: prq });
    r.write('PEADDR', { MA: board.msi.base / 4 });
    r.write('PEUADDR', { MUA: 0 });
    board.msi.on(prq, () => sched.schedule(0, () => this.drainPageRequests(), 'vtd-driver.prq-irq'));
    r.write('PECTL', { IM: 0 });
  }

  private queueError(e: QiError): void {
    const name = e.kind === 'IQE' ? `IQE(${e.code})` : e.kind;
    this.faultReader.push({ name, reason: e.code, sid: e.kind === 'IQE' ? -1 : e.code, pasid: -1, addr: 0, write: false, pageRequest: false, at: 0 });
  }

  /** The page request event: hand requests to the I/O page-fault queue (intel prq_event_thread). */
  drainPageRequests(): number {
    if (this.prq === undefined) return 0;
    return this.prq.drain((r) => {
      if (r.stopMarker) return;
      const info = this.bySid.get(r.rid);
      if (r.bad || info === undefined) {
        if (r.req.last) this.qi.submit([qd.pageGroupResponse(r.rid, r.req.pasid, r.req.grpid, true, PGRP_RC_INVALID)]);
        return;
      }
      this.host.iopf.report(info.dev, r.req);
    }).consumed;
  }

  // --- IommuDriver ---------------------------------------------------------------

  handles(): boolean {
    return true;
  }

  probeDevice(dev: PciFunction): number {
    if (this.devices.has(dev)) return 0;
    // The device's own requester ID. In scalable mode Linux (6.10+) sets up context entries at probe
    // (intel_pasid_setup_sm_context) for the DMA aliases pci_for_each_dma_alias reports *as the device
    // itself* only: pci_pasid_table_setup skips the aliases a bridge introduces. So requests that reach
    // the unit under a bridge's alias use whatever context entry that ID has: the conventional PCI
    // bridge's own (its PASID table, attached with its group), or, behind a PCIe-to-PCI bridge, that of
    // the device at (secondary bus, 00.0) if there is one; none otherwise (they fault). See README.md.
    const sid = dev.requesterId;
    const r = this.tables.ensure(sid);
    if (r < 0) return r;
    const pdev = this.host.pciAts(dev);
    const e = this.ecaps;
    // PASID before ATS: the device's behaviour is undefined if PASID is enabled after ATS (intel_iommu_probe_finalize).
    const pasidBits = e.PASID === 1 ? this.enablePasid(pdev) : 0;
    const pt = PasidTables.create(this.host.platform.sysmem, this.dma, pasidBits);
    if (typeof pt === 'number') return (pdev.disablePasid(), pt);
    const ats = e.DT === 1 && pdev.atsSupported() && pdev.enableAts(VTD_PAGE_SHIFT) === 0;
    const pre = ats && pdev.priSupported() && e.PRS === 1 && e.PDS === 1;
    const ctx = encodeLayout(SM_CONTEXT_ENTRY, {
      P: 1, DTE: ats ? 1 : 0, PASIDE: pasidBits > 0 ? 1 : 0, PRE: pre ? 1 : 0, PDTS: pt.pdts, PASIDDIRPTR: pt.dir / 4096, RID_PASID: 0,
    });
    // device_pasid_table_setup: an entry already present is left alone. Not present -> present needs
    // no invalidation (CAP.CM = 0).
    if (readField(SM_CONTEXT_ENTRY, this.tables.readContext(sid), 'P') === 0) this.tables.writeContext(sid, ctx);
    const info: DevInfo = {
      dev, pdev, sid, pasidBits, ats, atsQdep: ats ? pdev.atsQueueDepth() : 0, pre, pri: false, iopfRefcount: 0, tables: pt, attached: new Map(),
    };
    this.enablePciPri(info);
    this.devices.set(dev, info);
    this.bySid.set(sid, info);
    return 0;
  }

  /**
   * pci_enable_pasid() with the Execute / Privileged support the device has
   * and the unit honours (ECAP.ERS, ECAP.SRS). Returns the PASID bits usable
   * with this unit, 0 when PASID is not enabled.
   */
  private enablePasid(pdev: PciAtsDevice): number {
    const features = pdev.pasidFeatures();
    if (features < 0) return 0;
    const allowed = (this.ecaps.ERS === 1 ? PCI_PASID_CAP_EXEC : 0) | (this.ecaps.SRS === 1 ? PCI_PASID_CAP_PRIV : 0);
    if (pdev.enablePasid(features & allowed) < 0) return 0;
    return Math.min(Math.log2(pdev.maxPasids()), this.ecaps.PSS! + 1);
  }

  /**
   * iommu_enable_pci_pri(), from intel_iommu_probe_finalize after PASID and
   * ATS: for a device with pri_supported, unless PASID is enabled and the
   * device does not ask for the PASID in its PRG responses: pci_reset_pri,
   * then pci_enable_pri with the page request queue's depth. PRI stays on
   * until the device is released; attaching a domain with a fault handler
   * only puts the device on the I/O page-fault queue (enableIopfRef).
   */
  private enablePciPri(info: DevInfo): void {
    if (!info.ats || !info.pre) return;
    if (info.pdev.pasidEnabled && !info.pdev.prgRespPasidRequired()) return;
    if (info.pdev.resetPri() !== 0) return;
    if (info.pdev.enablePri(PRQ_DEPTH) === 0) info.pri = true;
  }

  /** iommu_disable_pci_pri(), from intel_iommu_release_device. */
  private disablePciPri(info: DevInfo): void {
    if (!info.pri) return;
    // WARN_ON(info->iopf_refcount): still on the queue, take it off.
    if (info.iopfRefcount > 0) {
      info.iopfRefcount = 0;
      this.host.iopf.removeDevice(info.dev);
    }
    info.pdev.disablePri();
    info.pri = false;
  }

  releaseDevice(dev: PciFunction): void {
    const info = this.devices.get(dev);
    if (info === undefined) return;
    for (const pasid of [...info.attached.keys()].sort((a, b) => b - a)) this.detach(dev, pasid);
    this.tables.clearContext(info.sid);
    this.qi.submit([qd.contextDevice(0, info.sid)]);
    this.disablePciPri(info);
    if (info.ats) info.pdev.disableAts();
    info.pdev.disablePasid();
    info.tables.free();
    this.devices.delete(dev);
    this.bySid.delete(info.sid);
  }

  /** First stage by default (when ECAP.FLTS), second stage for a nesting parent. */
  domainAllocPaging(_dev: PciFunction, flags: PagingDomainFlags): DriverDomain | number {
    const dirty = flags.dirtyTracking === true;
    const parent = flags.nestParent === true;
    if ((dirty && !this.dirtyTrackingSupported()) || (parent && this.ecaps.NEST !== 1)) return -EOPNOTSUPP;
    const mem = this.host.platform.sysmem;
    const alloc = this.host.allocator.tablePages();
    const secondStage = parent || dirty || this.ecaps.FLTS !== 1;
    if (secondStage && (this.ecaps.SLTS !== 1 || !sagawHas(this.caps.SAGAW, AW_48))) return -EOPNOTSUPP;
    const b = secondStage
      ? createVtdSsBuilder(mem, alloc, { levels: 4, haw: HAW, superpage2M: (this.caps.SLLPS & SLLPS_2M) !== 0, superpage1G: (this.caps.SLLPS & SLLPS_1G) !== 0 })
      : createIa32eBuilder(mem, alloc, { levels: 4, maxPhysBits: HAW, page1G: this.caps.FL1GP === 1 });
    if (typeof b === 'number') return b < 0 ? b : -ENOMEM;
    const did = this.allocDid();
    if (did < 0) return (b.destroy(), did);
    return 'aw' in b ? new SsDomain(this, b, did, parent, dirty) : new FsDomain(this, b, did);
  }

  domainAllocSva(_dev: PciFunction, mm: Mm): DriverDomain | number {
    if (this.ecaps.FLTS !== 1 || !mm.pgtable.format.startsWith('ia32e-4')) return -EOPNOTSUPP;
    const did = this.allocDid();
    return did < 0 ? did : new SvaDomain(this, mm, did);
  }

  /**
   * intel_iommu_domain_alloc_nested: IOMMU_HWPT_DATA_VTD_S1 over a
   * second-stage nest parent of this driver. Width and flag support are
   * checked when it is attached (intel_pasid_setup_nested), as in Linux.
   */
  domainAllocNested(_dev: PciFunction, parent: DriverDomain, dataType: number, data: Uint8Array): DriverDomain | number {
    if (this.ecaps.NEST !== 1 || dataType !== IOMMU_HWPT_DATA_VTD_S1) return -EOPNOTSUPP;
    if (!isNestParent(parent, this)) return -EINVAL;
    const c = checkUserStruct(data, VTD_S1_SIZE);
    if (c < 0) return c;
    const cfg = parseVtdS1(data);
    if (typeof cfg === 'number') return cfg;
    return new NestedDomain(this, parent, cfg, { fl5lp: this.caps.FL5LP === 1, srs: this.ecaps.SRS === 1, eafs: this.ecaps.EAFS === 1 });
  }

  private dirtyTrackingSupported(): boolean {
    return this.offerDirtyTracking && this.ecaps.SLADS === 1 && this.ecaps.SLTS === 1;
  }

  /** intel_iommu_capable(IOMMU_CAP_ENFORCE_CACHE_COHERENCY): ecap_sc_support. */
  enforceCacheCoherencyCapable(dev: PciFunction): boolean {
    return this.devices.has(dev) && this.snoopControl;
  }

  getResvRegions(): ResvRegion[] {
    return [{ start: IOAPIC_RANGE_START, length: IOAPIC_RANGE_END - IOAPIC_RANGE_START + 1, type: 'msi', prot: 0 }];
  }

  /**
   * intel_iommu_enable_iopf(): a device whose PRI is not enabled gets
   * -ENODEV; the first reference puts it on the I/O page-fault queue
   * (iopf_queue_add_device), later ones only count.
   */
  private enableIopfRef(info: DevInfo): number {
    if (!info.pri) return -ENODEV;
    if (info.iopfRefcount > 0) {
      info.iopfRefcount++;
      return 0;
    }
    const r = this.host.iopf.addDevice(info.dev);
    if (r < 0) return r;
    info.iopfRefcount = 1;
    return 0;
  }

  /** intel_iommu_disable_iopf(): the last reference takes the device off the queue (iopf_queue_remove_device). */
  private disableIopfRef(info: DevInfo): void {
    if (!info.pri || info.iopfRefcount === 0) return;
    if (--info.iopfRefcount > 0) return;
    this.host.iopf.removeDevice(info.dev);
  }

  /**
   * iopf_for_domain_set() (intel/iommu.h): a reference for a domain with a
   * fault handler, except an SVA domain on a device without PRI (its
   * faults are the device driver's own business).
   */
  private iopfForDomainSet(info: DevInfo, domain: VtdDomain | undefined): number {
    if (domain === undefined || domain.hasIopfHandler !== true) return 0;
    if (domain.type === 'sva' && !info.pre) return 0;
    return this.enableIopfRef(info);
  }

  /** iopf_for_domain_remove(). */
  private iopfForDomainRemove(info: DevInfo, domain: VtdDomain | undefined): void {
    if (domain === undefined || domain.hasIopfHandler !== true) return;
    if (domain.type === 'sva' && !info.pre) return;
    this.disableIopfRef(info);
  }

  /** iopf_for_domain_replace(): the new domain's reference first, then the old one's dropped. */
  private iopfForDomainReplace(info: DevInfo, domain: VtdDomain | undefined, old: VtdDomain | undefined): number {
    const r = this.iopfForDomainSet(info, domain);
    if (r < 0) return r;
    this.iopfForDomainRemove(info, old);
    return 0;
  }

  /** A page group response descriptor (intel_page_response). */
  pageResponse(dev: PciFunction, req: PageRequest, code: PageResponseCode): void {
    const info = this.devices.get(dev);
    if (info === undefined) return;
    const rc = code === 'success' ? PGRP_RC_SUCCESS : code === 'invalid' ? PGRP_RC_INVALID : PGRP_RC_FAILURE;
    const pasid = req.needsPasid || req.pasid >= 0 ? req.pasid : -1;
    this.qi.submitPageGroupResponse(info.sid, pasid, req.grpid, req.last, rc);
  }

  /** struct iommu_hw_info_vtd { __u32 flags; __u32 __reserved; __aligned_u64 cap_reg; __aligned_u64 ecap_reg; } */
  hwInfo(dev: PciFunction): HwInfo {
    const data = new Uint8Array(24);
    const dv = new DataView(data.buffer);
    // intel_iommu_hw_info sets the erratum flag whatever the hardware (user space decides whether it applies).
    dv.setUint32(0, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, true);
    dv.setUint32(8, this.cap[0], true);
    dv.setUint32(12, this.cap[1], true);
    dv.setUint32(16, this.ecap[0], true);
    dv.setUint32(20, this.ecap[1], true);
    // iommufd_get_hw_info asks IOMMU_CAP_PCI_ATS_SUPPORTED: intel_iommu_capable answers info->ats_supported
    // (ECAP.DT, pci_ats_supported and dmar_ats_supported, decided at probe).
    const ats = this.devices.get(dev)?.ats === true;
    return { type: IOMMU_HW_INFO_TYPE_INTEL_VTD, data, capabilities: (this.dirtyTrackingSupported() ? IOMMU_HW_CAP_DIRTY_TRACKING : 0) | (ats ? 0 : IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED) };
  }

  maxPasids(dev: PciFunction): number {
    const bits = this.devices.get(dev)?.pasidBits ?? 0;
    return bits === 0 ? 0 : 2 ** bits;
  }

  // --- VtdDomainOps: attaching and invalidating ------------------------------------

  /** Install `domain`'s PASID entry at `pasid` (0: requests without PASID); a replaced entry is flushed. */
  attach(dev: PciFunction, pasid: number, domain: VtdDomain): number {
    const info = this.devices.get(dev);
    if (info === undefined) return -ENODEV;
    if (pasid !== 0 && (pasid < 0 || pasid >= this.maxPasids(dev))) return -EINVAL;
    if (info.attached.get(pasid) === domain) return 0;
    // paging_domain_compatible_second_stage(): a domain forcing SNP needs a unit with snoop control.
    if (domain instanceof SsDomain && domain.forceSnooping && !this.snoopControl) return -EINVAL;
    const words = domain.pasidEntry();
    if (words === undefined) {
      this.detach(dev, pasid);
      return 0;
    }
    // intel_iommu_sva_supported(): a device with PRI support must have it enabled.
    if (domain.type === 'sva' && info.pre && !info.pri) return -EINVAL;
    const prev = info.attached.get(pasid);
    // iopf_for_domain_replace() before the entry is set up, undone if that fails.
    const ir = this.iopfForDomainReplace(info, domain, prev);
    if (ir < 0) return ir;
    const old = info.tables.read(pasid);
    const w = info.tables.write(pasid, words);
    if (w < 0) {
      this.iopfForDomainReplace(info, prev, domain);
      return w;
    }
    this.setAttached(info, pasid, domain);
    if (readField(PASID_ENTRY, old, 'P') !== 0) this.flusher.entry(info, pasid, old);
    return 0;
  }

  /**
   * Remove the PASID entry (intel_pasid_tear_down_entry, fault_ignore false):
   * requests with it fault as not present. The old domain's I/O page-fault
   * reference goes as in 7.3: for the RID before the teardown
   * (blocking_domain_attach_dev), for a PASID after it, so the page
   * requests of the PASID are drained first (blocking_domain_set_dev_pasid).
   */
  detach(dev: PciFunction, pasid: number): void {
    const info = this.devices.get(dev);
    if (info === undefined) return;
    const prev = info.attached.get(pasid);
    if (pasid === 0) this.iopfForDomainRemove(info, prev);
    this.tearDown(info, pasid, false);
    if (pasid !== 0) this.iopfForDomainRemove(info, prev);
    this.setAttached(info, pasid, undefined);
  }

  /**
   * intel_mm_release(): for every PASID the SVA domain is attached at,
   * intel_pasid_tear_down_entry(..., fault_ignore = true). The attachments
   * stay until the owner unbinds (remove_dev_pasid then tears down again).
   */
  mmRelease(domain: VtdDomain): void {
    for (const { dev, pasid } of [...domain.users.values()]) {
      const info = this.devices.get(dev);
      if (info !== undefined) this.tearDown(info, pasid, true);
    }
  }

  /**
   * intel_pasid_tear_down_entry() as Linux 7.3 has it (intel/pasid.c):
   * - an entry not present: if FPD is set in it (left by an earlier
   *   fault_ignore teardown), clear it and drain the page requests of the
   *   PASID; otherwise there is nothing to do (no flush);
   * - a present entry: clear P only (pasid_clear_present), invalidate the
   *   PASID-cache of its DID and PASID, the IOTLB (PASID-based for first
   *   stage and pass-through, domain-selective otherwise) and the device-TLB,
   *   then intel_pasid_clear_entry(fault_ignore); unless fault_ignore, drain
   *   the page requests of the PASID.
   * intel_pasid_clear_entry writes FPD only when fault_ignore is set *and the
   * entry is still present*; 7.3 cleared P just before, so the mm-release
   * teardown too leaves an all-zero entry (faults on the PASID are recorded
   * as not present, 0x59) and the later unbind finds nothing to do.
   */
  private tearDown(info: DevInfo, pasid: number, faultIgnore: boolean): void {
    const old = info.tables.read(pasid);
    if (readField(PASID_ENTRY, old, 'P') === 0) {
      if (readField(PASID_ENTRY, old, 'FPD') === 0) return;
      info.tables.clear(pasid);
      this.drainPasidPrq(info, pasid);
      return;
    }
    info.tables.clearPresent(pasid);
    this.flusher.entry(info, pasid, old);
    // intel_pasid_clear_entry(dev, pasid, fault_ignore): it keeps FPD only for an entry still present, and
    // after clearPresent none is, so the entry is cleared whole.
    info.tables.clear(pasid);
    if (!faultIgnore) this.drainPasidPrq(info, pasid);
  }

  /**
   * intel_iommu_drain_pasid_prq() (intel/prq.c), for a device with I/O page
   * fault references (info->iopf_refcount != 0): page requests of the
   * RID and PASID still in the queue are handled first (the driver waits for
   * prq_event_thread; here it runs the handler) and the I/O page-fault
   * workqueue is flushed (iopf_queue_flush_dev); then a fenced wait, an IOTLB
   * invalidation (PASID-based all for a PASID, domain-selective for
   * requests without PASID) and a device-TLB invalidation of everything,
   * closed by a wait with page-request drain (PD); while PRS.PRO is set the
   * queue is handled and the batch submitted again. The DID is that of the
   * RID's domain (info->domain), FLPT_DEFAULT_DID when it has none.
   */
  private drainPasidPrq(info: DevInfo, pasid: number): void {
    const prq = this.prq;
    if (info.iopfRefcount === 0 || prq === undefined) return;
    if (prq.pending(info.sid, pasid)) this.drainPageRequests();
    this.host.iopf.flushDev(info.dev);
    const did = info.attached.get(0)?.did ?? IDENTITY_DID;
    const descs = [qd.fence(), pasid === 0 ? qd.iotlbDomain(did) : qd.piotlbPasid(did, pasid), ...this.flusher.devTlb(info, pasid, 0, DEVTLB_ALL)];
    for (let tries = 0; tries < 4; tries++) {
      this.qi.submit(descs, true);
      if (!prq.overflowed()) return;
      this.drainPageRequests();
    }
  }

  private setAttached(info: DevInfo, pasid: number, domain: VtdDomain | undefined): void {
    const key = userKey(info.sid, pasid);
    info.attached.get(pasid)?.users.delete(key);
    if (domain === undefined || domain.type === 'blocked') {
      info.attached.delete(pasid);
      return;
    }
    domain.users.set(key, { dev: info.dev, pasid });
    info.attached.set(pasid, domain);
  }

  get mem(): PhysMem {
    return this.host.platform.sysmem;
  }

  /** Rewrite every PASID entry of `domain` and of nested domains over it in place, each flushed (SLADE changes). */
  refresh(domain: VtdDomain): number {
    const nested = (domain as { nested?: Set<VtdDomain> }).nested ?? new Set<VtdDomain>();
    for (const d of [domain, ...nested]) {
      for (const { dev, pasid } of d.users.values()) {
        const info = this.devices.get(dev);
        const words = d.pasidEntry();
        if (info === undefined || words === undefined) continue;
        const old = info.tables.read(pasid);
        const w = info.tables.write(pasid, words);
        if (w < 0) return w;
        this.flusher.entry(info, pasid, old);
      }
    }
    return 0;
  }

  setPageSnoop(domain: VtdDomain): void {
    for (const { dev, pasid } of domain.users.values()) {
      const info = this.devices.get(dev);
      if (info === undefined || pasid !== 0) continue;
      const old = info.tables.read(pasid);
      if (readField(PASID_ENTRY, old, 'P') === 0) continue;
      const w = old.slice();
      writeField(PASID_ENTRY, w, 'PGSNP', 1);
      info.tables.write(pasid, w);
      this.flusher.entry(info, pasid, w);
    }
  }

  flushRange(domain: VtdDomain, start: number, end: number, leafOnly: boolean): void {
    this.flusher.range(domain, start, end, leafOnly);
  }

  flushAll(domain: VtdDomain): void {
    this.flusher.all(domain);
  }

  /** The PASID entry installed for a device (tests, tracing). */
  pasidEntryOf(dev: PciFunction, pasid: number): Uint32Array | undefined {
    return this.devices.get(dev)?.tables.read(pasid);
  }

  /** Whether ATS / PRI are enabled for a device. */
  deviceState(dev: PciFunction): { ats: boolean; pre: boolean; pri: boolean; pasidBits: number } | undefined {
    const i = this.devices.get(dev);
    return i === undefined ? undefined : { ats: i.ats, pre: i.pre, pri: i.pri, pasidBits: i.pasidBits };
  }

  private allocDid(): number {
    // CAP.ND: 2^(4 + 2 * ND) domain IDs.
    const limit = 2 ** (4 + 2 * this.caps.ND);
    for (let id = FIRST_DID; id < limit; id++) {
      if (!this.dids.has(id)) {
        this.dids.add(id);
        return id;
      }
    }
    return -ENOSPC;
  }

  releaseDid(did: number): void {
    this.dids.delete(did);
  }
}
