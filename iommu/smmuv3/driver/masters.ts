/**
 * The driver's endpoints (struct arm_smmu_master) and what is attached to
 * them: CDs at SubstreamIDs, the STE composed from the attachments
 * (arm_smmu_make_*_ste), ATS turned on and off around STE changes
 * (arm_smmu_attach_prepare / arm_smmu_attach_commit) and ATC invalidation
 * for a domain (arm_smmu_atc_inv_domain).
 */
import { encodeLayout, writeField } from '../../../src/hw/layout.ts';
import type { PciAtsDevice } from '../../../src/host/pci-ats.ts';
import type { DriverDomain } from '../../../src/iommu-core/types.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { CD_LAYOUT } from '../cd.ts';
import { S1DSS, STE_CONFIG, STE_LAYOUT, type SteField } from '../ste.ts';
import type { CommandQueue } from './cmdq.ts';
import { S1Domain, S2Domain, SvaDomain } from './domains.ts';
import { atcInvCommand } from './invalidate.ts';
import { NestedDomain } from './nested.ts';
import { CdTable, type DmaMemory, type StreamTable } from './tables.ts';

const WBWA = 1;
const ISH = 3;
/** The page shift pci_enable_ats is given: log2 of the smallest page size the driver maps (4K; __ffs(pgsize_bitmap)). */
const ATS_PAGE_SHIFT = 12;

/** One endpoint as the driver sees it. */
export interface Master {
  readonly dev: PciFunction;
  readonly sid: number;
  readonly ssidBits: number;
  cd: CdTable | undefined;
  rid: DriverDomain | undefined;
  readonly pasids: Map<number, DriverDomain>;
  /** The device's ATS, PRI and PASID as the PCI core keeps them (drivers/pci/ats.c). */
  readonly pdev: PciAtsDevice;
  /** arm_smmu_ats_supported(): the SMMU and the device both do ATS. */
  readonly atsSupported: boolean;
  /** The SMMU has a PRI queue and the device PRI (with ATS: it asks for pages after a Translation Request failed). */
  readonly priSupported: boolean;
  atsEnabled: boolean;
  /** PRI enabled: page requests go to the IOPF queue. */
  pri: boolean;
  prgPasidRequired: boolean;
  /** The device may stall (firmware's "dma-can-stall"); `stall`: its faults stall and go to the IOPF queue. */
  canStall: boolean;
  stall: boolean;
}

export interface MasterEnv {
  readonly mmio: PhysMem;
  readonly dma: DmaMemory;
  readonly strtab: StreamTable;
  readonly cmdq: CommandQueue;
  readonly ipsCode: number;
  /** IDR0.STALL_MODEL == 0b00: STE.S1STALLD is set for masters that do not stall. */
  readonly stallsSupported: boolean;
}

export class Masters {
  readonly byDev = new Map<PciFunction, Master>();
  readonly bySid = new Map<number, Master>();
  /** Devices refused at probe, with the kernel's warning. */
  readonly refused = new Map<PciFunction, string>();
  /** CMD_ATC_INV commands issued. */
  atcInvalidations = 0;

  constructor(private readonly env: MasterEnv) {}

  add(m: Master): void {
    this.byDev.set(m.dev, m);
    this.bySid.set(m.sid, m);
  }

  remove(m: Master): void {
    this.byDev.delete(m.dev);
    this.bySid.delete(m.sid);
  }

  /**
   * arm_smmu_insert_master(): a StreamID already owned by another master is
   * refused with -ENODEV ("Aliasing StreamID 0x%x (from %s) unsupported,
   * expect DMA to be broken"), so the device gets no IOMMU group. PCI devices
   * behind one PCIe-to-PCI bridge (or a conventional bridge and what sits
   * below it) all reach the SMMU under one StreamID: the first probed owns it,
   * and the others' DMA is translated by that master's STE.
   */
  refuseAlias(dev: PciFunction, sid: number, owner: Master): number {
    this.refused.set(dev, `Aliasing StreamID 0x${sid.toString(16)} (from ${owner.dev.bdf}) unsupported, expect DMA to be broken`);
    return -19; // ENODEV
  }

  private ensureCdTable(m: Master): number {
    if (m.cd !== undefined) return 0;
    const t = CdTable.create(this.env.mmio, this.env.dma, m.ssidBits);
    if (typeof t === 'number') return t;
    m.cd = t;
    return 0;
  }

  /** A CD as this master needs it: CD.S set when its faults stall. */
  private cdFor(m: Master, cd: Uint32Array): Uint32Array {
    if (!m.stall) return cd;
    const w = cd.slice();
    writeField(CD_LAYOUT, w, 'S', 1);
    return w;
  }

  /** Attach a domain to the RID (no PASID) of a device: CD 0 if stage 1, then the STE. */
  attachRid(m: Master, domain: DriverDomain): number {
    const cmdq = this.env.cmdq;
    if (domain instanceof S2Domain && m.pasids.size > 0) return -22;
    if (domain instanceof S1Domain) {
      const r = this.ensureCdTable(m);
      if (r < 0) return r;
      const w = m.cd!.writeCd(0, this.cdFor(m, domain.cdWords()));
      if (w < 0) return w;
      cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: 0, Leaf: 1 }, false);
    } else if (m.cd?.cdValid(0)) {
      m.cd.clearCd(0);
      cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: 0, Leaf: 1 }, false);
    }
    const old = m.rid;
    m.rid = domain;
    const wasOn = m.atsEnabled;
    this.installSte(m);
    // The translation changed under a live ATC: flush it (arm_smmu_attach_commit).
    if (wasOn && m.atsEnabled && old !== domain) this.issueAtcInv([atcInvCommand(m.sid, -1, 0, 0)]);
    return 0;
  }

  attachPasid(m: Master, pasid: number, domain: DriverDomain, cd: Uint32Array): number {
    // No CD table of ours in the STE under a stage-2 or nested (guest CD table) attachment.
    if (pasid <= 0 || pasid >= 2 ** m.ssidBits || m.rid instanceof S2Domain || m.rid instanceof NestedDomain) return -22;
    const r = this.ensureCdTable(m);
    if (r < 0) return r;
    const w = m.cd!.writeCd(pasid, this.cdFor(m, cd));
    if (w < 0) return w;
    const first = m.pasids.size === 0;
    m.pasids.set(pasid, domain);
    this.env.cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: pasid, Leaf: 1 }, !first);
    if (first) this.installSte(m);
    return 0;
  }

  /** arm_smmu_remove_dev_pasid(): clear the CD, invalidate the ASID's TLB entries and the PASID's ATC entries. */
  detachPasid(m: Master, pasid: number): void {
    const d = m.pasids.get(pasid);
    if (d === undefined) return;
    const cmdq = this.env.cmdq;
    m.cd!.clearCd(pasid);
    m.pasids.delete(pasid);
    cmdq.issueOne('CFGI_CD', { StreamID: m.sid, SubstreamID: pasid, Leaf: 1 }, false);
    if (d instanceof S1Domain || d instanceof SvaDomain) cmdq.issueOne('TLBI_NH_ASID', { ASID: d.asid }, false);
    cmdq.issueSync();
    if (m.atsEnabled) this.issueAtcInv([atcInvCommand(m.sid, pasid, 0, 0)]);
    if (m.pasids.size === 0) this.installSte(m);
  }

  /**
   * Compose and install the STE from what is attached, then CFGI_STE + SYNC.
   * ATS only on a translating STE (bypass and abort deny it: F_BAD_ATS_TREQ /
   * F_TRANSL_FORBIDDEN): the device's ATS is turned off before an STE
   * without EATS goes in, and on after one with EATS.
   */
  installSte(m: Master): void {
    const rid = m.rid;
    const v: Partial<Record<SteField, number>> = { V: 1 };
    let guest: Uint32Array | undefined;
    const s2 = rid instanceof S2Domain ? rid : rid instanceof NestedDomain && rid.vste.config !== STE_CONFIG.ABORT ? rid.s2Parent : undefined;
    if (s2 !== undefined) {
      const b = s2.builder;
      Object.assign(v, {
        Config: STE_CONFIG.S2_TRANS, S2VMID: s2.vmid, S2T0SZ: b.tsz, S2SL0: b.sl0, S2IR0: WBWA, S2OR0: WBWA, S2SH0: ISH,
        S2TG: 0, S2PS: this.env.ipsCode, S2AA64: 1, S2PTW: 1, S2R: 1, S2TTB: b.root / 16,
      } satisfies typeof v);
      // arm_smmu_make_nested_cd_table_ste: the guest's CD table fields over our stage 2, events merged (MEV).
      if (rid instanceof NestedDomain && rid.vste.config === STE_CONFIG.S1_TRANS) {
        v.Config = STE_CONFIG.NESTED;
        v.MEV = 1;
        guest = rid.vste.words;
      }
    } else if (rid instanceof S1Domain || m.pasids.size > 0) {
      const dss = rid instanceof S1Domain ? S1DSS.SSID0 : rid?.type === 'identity' ? S1DSS.BYPASS : S1DSS.TERMINATE;
      Object.assign(v, {
        Config: STE_CONFIG.S1_TRANS, S1Fmt: m.cd!.fmt, S1ContextPtr: m.cd!.base / 64, S1CDMax: m.ssidBits, S1DSS: dss,
        S1CIR: WBWA, S1COR: WBWA, S1CSH: ISH, S1STALLD: this.env.stallsSupported && !m.stall ? 1 : 0,
      } satisfies typeof v);
    } else {
      v.Config = rid?.type === 'identity' ? STE_CONFIG.BYPASS : STE_CONFIG.ABORT;
    }
    const translating = v.Config === STE_CONFIG.S1_TRANS || v.Config === STE_CONFIG.S2_TRANS || v.Config === STE_CONFIG.NESTED;
    // Under a nested domain the guest owns the ATC: ATS only when its vSTE asked for it (EATS, S1 translate).
    const ats = m.atsSupported && translating && (!(rid instanceof NestedDomain) || rid.vste.enableAts);
    if (ats) v.EATS = 1;
    const wasOn = m.atsEnabled;
    if (!ats && wasOn) this.setAts(m, false);
    const ste = encodeLayout(STE_LAYOUT, v);
    if (guest !== undefined) for (let i = 0; i < guest.length; i++) ste[i] = (ste[i]! | guest[i]!) >>> 0;
    this.env.strtab.writeSte(m.sid, ste);
    this.env.cmdq.issueOne('CFGI_STE', { StreamID: m.sid, Leaf: 1 });
    // arm_smmu_disable_ats: once ATS is off at the device, flush what its ATC held.
    if (!ats && wasOn) this.issueAtcInv([atcInvCommand(m.sid, -1, 0, 0)]);
    if (ats && !wasOn) this.setAts(m, true);
  }

  /** pci_enable_ats / pci_disable_ats through the device's ATS Control register. */
  setAts(m: Master, on: boolean): void {
    if (on) m.pdev.enableAts(ATS_PAGE_SHIFT);
    else m.pdev.disableAts();
    m.atsEnabled = on;
  }

  /**
   * arm_smmu_atc_inv_domain(): after the TLB invalidation has completed (its
   * CMD_SYNC), CMD_ATC_INV for every ATS-enabled device the domain is
   * attached to (its RID without SSV, each PASID with it), then CMD_SYNC,
   * which completes once the devices have answered. Size 0: everything.
   */
  atcInvDomain(d: DriverDomain, iova: number, size: number): void {
    const cmds: Uint32Array[] = [];
    for (const m of this.byDev.values()) {
      if (!m.atsEnabled) continue;
      // A device under a nested domain translates through its parent's stage 2 too.
      if (m.rid === d || (m.rid instanceof NestedDomain && m.rid.s2Parent === d)) cmds.push(atcInvCommand(m.sid, -1, iova, size));
      for (const [pasid, pd] of m.pasids) if (pd === d) cmds.push(atcInvCommand(m.sid, pasid, iova, size));
    }
    this.issueAtcInv(cmds);
  }

  private issueAtcInv(cmds: Uint32Array[]): void {
    if (cmds.length === 0) return;
    this.atcInvalidations += cmds.length;
    this.env.cmdq.issueSync(cmds);
  }
}
