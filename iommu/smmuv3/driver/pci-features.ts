/**
 * The PCI side of ATS, PRI and PASID, through configuration space (ECAM) as
 * Linux's drivers/pci/ats.c does it: pci_enable_pasid, pci_enable_ats /
 * pci_disable_ats, pci_enable_pri / pci_disable_pri / pci_reset_pri,
 * pci_prg_resp_pasid_required. Register layouts: PCIe Base §10.5.1 (ATS),
 * §10.5.2 (PRI), §7.8.8 (PASID).
 */
import type { HostPlatform } from '../../../src/host/platform.ts';
import { pciExtCfgAccessible } from '../../../src/host/pci-cfg-size.ts';
import { ATS, ATS_CTRL } from '../../../src/pci/caps/ats.ts';
import { PRI, PRI_CTRL, PRI_STATUS } from '../../../src/pci/caps/pri.ts';
import type { ConfigAccessor } from '../../../src/pci/enumerate.ts';
import { listCapabilities } from '../../../src/pci/lspci.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';

const PASID_EXT_CAP = 0x001b;

/** Configuration space of one function, by offset. */
export class DevConfig {
  private readonly cfg: ConfigAccessor;
  readonly bus: number;
  readonly devfn: number;
  /** pci_cfg_space_size() > 256: false behind a conventional PCI or PCIe-to-PCI bridge. */
  private readonly extCfg: boolean;

  constructor(board: HostPlatform, dev: PciFunction) {
    this.cfg = board.pciConfig;
    this.bus = dev.busNumber;
    this.devfn = dev.devfn;
    this.extCfg = pciExtCfgAccessible(dev);
  }

  read(off: number, size: 1 | 2 | 4): number {
    return this.cfg.read(this.bus, this.devfn, off, size);
  }

  write(off: number, size: 1 | 2 | 4, v: number): void {
    this.cfg.write(this.bus, this.devfn, off, size, v);
  }

  /** Offset of an extended capability, 0 when absent. */
  extCap(id: number): number {
    if (!this.extCfg) return 0;
    return listCapabilities(this.cfg, this.bus, this.devfn).find((c) => c.kind === 'ext' && c.id === id)?.offset ?? 0;
  }
}

/**
 * pci_enable_pasid(): turn on the PASID capability with whatever
 * execute/privileged support it advertises. Returns the device's PASID
 * width in bits, 0 without the capability.
 */
export function enablePasid(board: HostPlatform, dev: PciFunction): number {
  const c = new DevConfig(board, dev);
  const cap = c.extCap(PASID_EXT_CAP);
  if (cap === 0) return 0;
  const caps = c.read(cap + 4, 2);
  c.write(cap + 6, 2, 1 | (caps & 0b110));
  return (caps >>> 8) & 0x1f;
}

/** The ATS and PRI capabilities of a device (offsets, 0 when absent). */
export interface IopfCaps {
  readonly cfg: DevConfig;
  readonly ats: number;
  readonly pri: number;
}

export function iopfCaps(board: HostPlatform, dev: PciFunction): IopfCaps {
  const cfg = new DevConfig(board, dev);
  return { cfg, ats: cfg.extCap(ATS.CAP_ID), pri: cfg.extCap(PRI.CAP_ID) };
}

/** pci_enable_ats(): Smallest Translation Unit 2^(12 + stu) bytes, then Enable. */
export function enableAts(c: IopfCaps, stu: number): void {
  c.cfg.write(c.ats + ATS.CTRL, 2, ATS_CTRL.ENABLE | (stu & ATS_CTRL.STU));
}

export function disableAts(c: IopfCaps): void {
  c.cfg.write(c.ats + ATS.CTRL, 2, c.cfg.read(c.ats + ATS.CTRL, 2) & ~ATS_CTRL.ENABLE);
}

/**
 * pci_enable_pri() after pci_reset_pri(): a Response Failure or UPRGI left
 * from an earlier life is cleared (RW1C), the interface reset while
 * disabled, `reqs` page requests allocated (at most the capacity), then
 * Enable. Returns the allocation, or -16 (EBUSY) when outstanding requests
 * keep it from stopping.
 */
export function enablePri(c: IopfCaps, reqs: number): number {
  const b = c.pri;
  const ctrl = c.cfg.read(b + PRI.CTRL, 2);
  if ((ctrl & PRI_CTRL.ENABLE) !== 0) return c.cfg.read(b + PRI.ALLOC_REQ, 4);
  const status = c.cfg.read(b + PRI.STATUS, 2);
  if ((status & (PRI_STATUS.RF | PRI_STATUS.UPRGI)) !== 0) c.cfg.write(b + PRI.STATUS, 2, status & (PRI_STATUS.RF | PRI_STATUS.UPRGI));
  c.cfg.write(b + PRI.CTRL, 2, PRI_CTRL.RESET);
  if ((c.cfg.read(b + PRI.STATUS, 2) & PRI_STATUS.STOPPED) === 0) return -16;
  const n = Math.min(reqs, c.cfg.read(b + PRI.MAX_REQ, 4));
  c.cfg.write(b + PRI.ALLOC_REQ, 4, n);
  c.cfg.write(b + PRI.CTRL, 2, PRI_CTRL.ENABLE);
  return n;
}

export function disablePri(c: IopfCaps): void {
  c.cfg.write(c.pri + PRI.CTRL, 2, c.cfg.read(c.pri + PRI.CTRL, 2) & ~PRI_CTRL.ENABLE);
}

/** pci_prg_resp_pasid_required(). */
export function prgRespPasidRequired(c: IopfCaps): boolean {
  return (c.cfg.read(c.pri + PRI.STATUS, 2) & PRI_STATUS.PASID_REQUIRED) !== 0;
}

/** PRI Status: did the function see a Response Failure (it then sends no more page requests)? */
export function priResponseFailure(c: IopfCaps): boolean {
  return (c.cfg.read(c.pri + PRI.STATUS, 2) & PRI_STATUS.RF) !== 0;
}
