/**
 * ATS, PRI and PASID from the host's side: what Linux's drivers/pci/ats.c
 * does for the IOMMU drivers, through configuration space (the platform's
 * ECAM accessor). Register layouts: PCIe Base 10.5.1 (ATS), 10.5.2 (PRI),
 * 7.8.8 (PASID).
 *
 * A PciAtsDevice is the part of struct pci_dev that ats.c keeps: where each
 * capability is (found once, as pci_ats_init / pci_pri_init / pci_pasid_init
 * do at enumeration) and what the kernel has enabled. The answers are the
 * kernel's: a function without the capability gets -EINVAL; enabling what
 * is already enabled gets -EBUSY (the kernel WARNs too) and disabling what is
 * not enabled does nothing; PRI is enabled only once the function reports
 * Stopped (-EBUSY otherwise) and reset only while disabled.
 *
 * Ordering is the callers' duty, as in Linux: PASID is enabled before ATS
 * and disabled after it, because the function's behaviour is undefined if
 * PASID Enable, Execute or Privileged change while ATS Enable is set (PCIe
 * 10.5.1.3; the comments in arm_smmu_probe_device and
 * intel_iommu_probe_finalize); PRI is reset (pci_reset_pri) before it is
 * enabled.
 *
 * Not modelled: SR-IOV (a VF sharing its PF's STU, PRI and PASID), the
 * `pci=noats` switch, pci_restore_*_state after a reset, CXL's "ATS
 * required", and pci_enable_pasid's End-End TLP Prefix check (the PCIe
 * capability models do not advertise End-End TLP Prefix Supported, so every
 * function would fail it).
 */
import { EBUSY, EINVAL } from '../uapi/errno.ts';
import { ACS_BITS } from '../pci/caps/acs.ts';
import { ATS, ATS_CAP, ATS_CTRL, ATS_MAX_QDEP, ATS_REGS } from '../pci/caps/ats.ts';
import { fieldPrep } from '../hw/layout.ts';
import { PASID, PASID_CAP, PASID_CTRL, PASID_REGS } from '../pci/caps/pasid.ts';
import { PRI, PRI_CTRL, PRI_STATUS } from '../pci/caps/pri.ts';
import type { ConfigAccessor } from '../pci/enumerate.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { pciAcsPathEnabled } from './pci-acs.ts';
import { pciFindExtCapability } from './pci-cfg-size.ts';

/** PCI_ATS_MIN_STU: the Smallest Translation Unit field counts from 4 KiB (2^12). */
export const PCI_ATS_MIN_STU = 12;

/** The features pci_pasid_features() reports and pci_enable_pasid() accepts: Execute and Privileged (PCI_PASID_CAP_*). */
export const PCI_PASID_CAP_EXEC = PASID_CAP.EXEC;
export const PCI_PASID_CAP_PRIV = PASID_CAP.PRIV;
const PCI_PASID_FEATURES = PCI_PASID_CAP_EXEC | PCI_PASID_CAP_PRIV;

export class PciAtsDevice {
  readonly fn: PciFunction;
  private readonly cfg: ConfigAccessor;
  /** Offsets of the capabilities; 0 when absent or out of the kernel's sight (no extended configuration space). */
  readonly atsCap: number;
  readonly priCap: number;
  readonly pasidCap: number;
  /**
   * pci_dev.untrusted: firmware marks a function behind an external-facing
   * port, and the kernel then lets it use no ATS (it could present
   * translated addresses it made up).
   */
  untrusted = false;
  private atsOn = false;
  private stu = 0;
  private priOn = false;
  private reqsAlloc = 0;
  /** PRG Response PASID Required, read once when the PRI capability is found (pci_pri_init). */
  private readonly pasidRequired: boolean;
  private pasidOn = false;
  private pasidFeaturesOn = 0;

  constructor(cfg: ConfigAccessor, fn: PciFunction) {
    this.cfg = cfg;
    this.fn = fn;
    this.atsCap = pciFindExtCapability(cfg, fn, ATS.CAP_ID);
    this.priCap = pciFindExtCapability(cfg, fn, PRI.CAP_ID);
    this.pasidCap = pciFindExtCapability(cfg, fn, PASID.CAP_ID);
    this.pasidRequired = this.priCap !== 0 && (this.read(this.priCap + PRI.STATUS, 2) & PRI_STATUS.PASID_REQUIRED) !== 0;
  }

  private read(off: number, size: 2 | 4): number {
    return this.cfg.read(this.fn.busNumber, this.fn.devfn, off, size);
  }

  private write(off: number, size: 2 | 4, value: number): void {
    this.cfg.write(this.fn.busNumber, this.fn.devfn, off, size, value);
  }

  // --- ATS ----------------------------------------------------------------

  /** pci_dev.ats_enabled. */
  get atsEnabled(): boolean {
    return this.atsOn;
  }

  /** pci_dev.ats_stu: the page shift last programmed (0 before any). */
  get atsStu(): number {
    return this.stu;
  }

  /** pci_ats_supported(): the function has ATS and may use it. */
  atsSupported(): boolean {
    return this.atsCap !== 0 && !this.untrusted;
  }

  /** The checks pci_prepare_ats and pci_enable_ats share. */
  private atsUsable(ps: number): number {
    if (!this.atsSupported()) return -EINVAL;
    if (this.atsOn) return -EBUSY;
    if (ps < PCI_ATS_MIN_STU) return -EINVAL;
    return 0;
  }

  /** pci_prepare_ats(): program the STU for the IOMMU's page shift `ps`, ATS still off. */
  prepareAts(ps: number): number {
    const r = this.atsUsable(ps);
    if (r < 0) return r;
    this.stu = ps;
    this.write(this.atsCap + ATS.CTRL, 2, fieldPrep(ATS_REGS.field('CTRL', 'STU'), ps - PCI_ATS_MIN_STU));
    return 0;
  }

  /** pci_enable_ats(): Smallest Translation Unit 2^ps bytes, and Enable, in one write. */
  enableAts(ps: number): number {
    const r = this.atsUsable(ps);
    if (r < 0) return r;
    this.stu = ps;
    this.write(this.atsCap + ATS.CTRL, 2, ATS_CTRL.ENABLE | fieldPrep(ATS_REGS.field('CTRL', 'STU'), ps - PCI_ATS_MIN_STU));
    this.atsOn = true;
    return 0;
  }

  /** pci_disable_ats(): clear Enable, keeping the STU. */
  disableAts(): void {
    if (!this.atsOn) return;
    const ctrl = this.read(this.atsCap + ATS.CTRL, 2);
    this.write(this.atsCap + ATS.CTRL, 2, ctrl & ~ATS_CTRL.ENABLE);
    this.atsOn = false;
  }

  /** pci_ats_queue_depth(): Invalidate Queue Depth, 1 to 32 (the field's 0 means 32); -EINVAL without ATS. */
  atsQueueDepth(): number {
    if (this.atsCap === 0) return -EINVAL;
    return ATS_REGS.get('CAP', this.read(this.atsCap + ATS.CAP, 2), 'QDEP') || ATS_MAX_QDEP;
  }

  /** pci_ats_page_aligned(): the function's Translation Requests are always 4096-byte aligned. */
  atsPageAligned(): boolean {
    return this.atsCap !== 0 && (this.read(this.atsCap + ATS.CAP, 2) & ATS_CAP.PAGE_ALIGNED) !== 0;
  }

  // --- PRI ----------------------------------------------------------------

  /** pci_dev.pri_enabled. */
  get priEnabled(): boolean {
    return this.priOn;
  }

  /** pci_dev.pri_reqs_alloc: the Outstanding Page Request Allocation last written. */
  get priReqsAlloc(): number {
    return this.reqsAlloc;
  }

  /** pci_pri_supported(). */
  priSupported(): boolean {
    return this.priCap !== 0;
  }

  /**
   * pci_enable_pri(): once the function reports Stopped (no page request
   * outstanding), allocate it min(reqs, its capacity) outstanding requests
   * and set Enable.
   */
  enablePri(reqs: number): number {
    if (this.priOn) return -EBUSY;
    if (this.priCap === 0) return -EINVAL;
    if ((this.read(this.priCap + PRI.STATUS, 2) & PRI_STATUS.STOPPED) === 0) return -EBUSY;
    const n = Math.min(this.read(this.priCap + PRI.MAX_REQ, 4), reqs);
    this.reqsAlloc = n;
    this.write(this.priCap + PRI.ALLOC_REQ, 4, n);
    this.write(this.priCap + PRI.CTRL, 2, PRI_CTRL.ENABLE);
    this.priOn = true;
    return 0;
  }

  /** pci_disable_pri(): clear Enable (requests already sent still await their responses). */
  disablePri(): void {
    if (!this.priOn || this.priCap === 0) return;
    const ctrl = this.read(this.priCap + PRI.CTRL, 2);
    this.write(this.priCap + PRI.CTRL, 2, ctrl & ~PRI_CTRL.ENABLE);
    this.priOn = false;
  }

  /**
   * pci_reset_pri(): write Reset while PRI is disabled, so the function
   * forgets its outstanding requests and credits. Response Failure and
   * UPRGI are RW1C status bits the kernel leaves as they are.
   */
  resetPri(): number {
    if (this.priOn) return -EBUSY;
    if (this.priCap === 0) return -EINVAL;
    this.write(this.priCap + PRI.CTRL, 2, PRI_CTRL.RESET);
    return 0;
  }

  /** pci_prg_resp_pasid_required(): PRG Responses must carry the request's PASID. */
  prgRespPasidRequired(): boolean {
    return this.pasidRequired;
  }

  // --- PASID --------------------------------------------------------------

  /** pci_dev.pasid_enabled. */
  get pasidEnabled(): boolean {
    return this.pasidOn;
  }

  /** pci_dev.pasid_features: what pci_enable_pasid turned on besides Enable. */
  get pasidFeaturesEnabled(): number {
    return this.pasidFeaturesOn;
  }

  /**
   * pci_enable_pasid(): PASID Enable with `features` (PCI_PASID_CAP_EXEC,
   * PCI_PASID_CAP_PRIV). -EINVAL without the capability, when a feature is not
   * supported, or when a port on the way to the root does not redirect
   * peer-to-peer requests and forward upstream (ACS RR and UF): switches
   * route by address and ignore the PASID, so a request meant for a PASID's
   * address space could reach a peer's BAR instead of the IOMMU.
   */
  enablePasid(features: number): number {
    if (this.pasidOn) return -EBUSY;
    if (this.pasidCap === 0) return -EINVAL;
    if (!pciAcsPathEnabled(this.fn, ACS_BITS.RR | ACS_BITS.UF)) return -EINVAL;
    const supported = this.read(this.pasidCap + PASID.CAP, 2) & PCI_PASID_FEATURES;
    if ((supported & features) !== features) return -EINVAL;
    this.pasidFeaturesOn = features;
    this.write(this.pasidCap + PASID.CTRL, 2, PASID_CTRL.ENABLE | features);
    this.pasidOn = true;
    return 0;
  }

  /** pci_disable_pasid(). */
  disablePasid(): void {
    if (!this.pasidOn || this.pasidCap === 0) return;
    this.write(this.pasidCap + PASID.CTRL, 2, 0);
    this.pasidOn = false;
  }

  /** pci_pasid_features(): the Execute / Privileged support of the capability, -EINVAL without it. */
  pasidFeatures(): number {
    if (this.pasidCap === 0) return -EINVAL;
    return this.read(this.pasidCap + PASID.CAP, 2) & PCI_PASID_FEATURES;
  }

  /** pci_max_pasids(): 2^(Max PASID Width), -EINVAL without the capability. */
  maxPasids(): number {
    if (this.pasidCap === 0) return -EINVAL;
    return 2 ** PASID_REGS.get('CAP', this.read(this.pasidCap + PASID.CAP, 2), 'WIDTH');
  }

  /** pci_pasid_status(): the PASID Control register's Enable, Execute and Privileged bits, -EINVAL without the capability. */
  pasidStatus(): number {
    if (this.pasidCap === 0) return -EINVAL;
    return this.read(this.pasidCap + PASID.CTRL, 2) & (PASID_CTRL.ENABLE | PASID_CTRL.EXEC | PASID_CTRL.PRIV);
  }
}
