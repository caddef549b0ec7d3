import { CFG, COMMAND } from '../pci/header.ts';
import { ATS } from '../pci/caps/ats.ts';
import { PASID } from '../pci/caps/pasid.ts';
import { PCIE, PCIE_DEVCAP, PCIE_DEVCTL } from '../pci/caps/pcie-regs.ts';
import { PRI } from '../pci/caps/pri.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

/** Config registers saved across a reset (pci_save_state / pci_restore_state), restored in order. */
export interface SavedState {
  regs: { off: number; size: 1 | 2 | 4; value: number }[];
}

/** The function can do a PCIe Function Level Reset (Device Capabilities FLR). */
export function flrCapable(dev: VfioPciDevice): boolean {
  const exp = dev.fn.caps.findStd(PCIE.CAP_ID);
  return exp !== undefined && (dev.hw.read(exp + PCIE.DEVCAP, 4) & PCIE_DEVCAP.FLR) !== 0;
}

/**
 * pci_save_state(): the header (BARs, cache line, interrupt line, command),
 * the PCI Express control registers and the ATS, PRI and PASID controls.
 * MSI and MSI-X are reprogrammed from vfio's own interrupt state instead.
 */
export function saveState(dev: VfioPciDevice): SavedState {
  const hw = dev.hw;
  const regs: SavedState['regs'] = [];
  const keep = (off: number, size: 1 | 2 | 4) => regs.push({ off, size, value: hw.read(off, size) });
  keep(CFG.CACHE_LINE_SIZE, 1);
  keep(CFG.LATENCY_TIMER, 1);
  for (let i = 0; i < 6; i++) keep(CFG.BAR0 + 4 * i, 4);
  keep(CFG.ROM_ADDRESS, 4);
  keep(CFG.INTERRUPT_LINE, 1);
  const exp = dev.fn.caps.findStd(PCIE.CAP_ID);
  if (exp !== undefined) {
    keep(exp + PCIE.DEVCTL, 2);
    keep(exp + PCIE.LNKCTL, 2);
    keep(exp + PCIE.DEVCTL2, 2);
    keep(exp + PCIE.LNKCTL2, 2);
  }
  const ats = dev.fn.caps.findExt(ATS.CAP_ID);
  if (ats !== undefined) keep(ats + 6, 2);
  const pri = dev.fn.caps.findExt(PRI.CAP_ID);
  if (pri !== undefined) {
    keep(pri + 0x0c, 4);
    keep(pri + 0x04, 2);
  }
  const pasid = dev.fn.caps.findExt(PASID.CAP_ID);
  if (pasid !== undefined) keep(pasid + 6, 2);
  keep(CFG.COMMAND, 2);
  return { regs };
}

export function restoreState(dev: VfioPciDevice, s: SavedState): void {
  for (const r of s.regs) dev.hw.write(r.off, r.size, r.value);
}

/**
 * pci_reset_function() by FLR: save state, quiesce (command = INTx disable),
 * set Initiate Function Level Reset in Device Control, restore state. The
 * model completes the FLR at once (no 100 ms wait in virtual time).
 */
export function functionReset(dev: VfioPciDevice): void {
  const exp = dev.fn.caps.findStd(PCIE.CAP_ID);
  if (exp === undefined) return;
  const saved = saveState(dev);
  const hw = dev.hw;
  hw.write(CFG.COMMAND, 2, COMMAND.INTX_DISABLE);
  hw.write(exp + PCIE.DEVCTL, 2, hw.read(exp + PCIE.DEVCTL, 2) | PCIE_DEVCTL.FLR);
  restoreState(dev, saved);
}
