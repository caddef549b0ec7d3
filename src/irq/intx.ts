import { CFG, COMMAND, STATUS } from '../pci/header.ts';
import type { PciFunction } from '../pci/pci-function.ts';

/**
 * A PCI function's INTx pin (PCI Local Bus 3.0 §2.2.6; Command bit 10
 * Interrupt Disable and Status bit 3 Interrupt Status, §6.2.2-6.2.3): a
 * level-triggered line. Status.Interrupt Status shows the function's
 * interrupt condition whatever Interrupt Disable says; the line is asserted
 * while the condition holds and Interrupt Disable is clear. That is the PCI
 * 2.3 masking vfio-pci relies on (pci_check_and_mask_intx). Whoever owns the
 * routed IRQ (the host's handler) listens to the line's level.
 */
export class IntxPin {
  private pending = false;
  private asserted = false;
  private readonly listeners = new Set<(asserted: boolean) => void>();

  /** `pin`: 1 = INTA# .. 4 = INTD#, shown in the Interrupt Pin register. */
  constructor(
    private readonly fn: PciFunction,
    pin: 1 | 2 | 3 | 4 = 1,
  ) {
    fn.config.set8(CFG.INTERRUPT_PIN, pin);
    fn.config.onWrite(CFG.COMMAND, 2, () => this.update());
  }

  /** The device raises (true) or clears (false) its interrupt condition. */
  set(condition: boolean): void {
    this.pending = condition;
    this.fn.config.setBits16(CFG.STATUS, STATUS.INTERRUPT, condition);
    this.update();
  }

  /** The line's level now. */
  get level(): boolean {
    return this.asserted;
  }

  /** Listen to level changes; returns the function that stops listening. */
  listen(fn: (asserted: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private update(): void {
    const now = this.pending && (this.fn.config.get16(CFG.COMMAND) & COMMAND.INTX_DISABLE) === 0;
    if (now === this.asserted) return;
    this.asserted = now;
    for (const l of [...this.listeners]) l(now);
  }
}

/** The INTx pin of a function that has one wired (a device model exposes it as `intx`). */
export function intxPinOf(fn: PciFunction): IntxPin | undefined {
  const pin = (fn as { intx?: unknown }).intx;
  return pin instanceof IntxPin ? pin : undefined;
}
