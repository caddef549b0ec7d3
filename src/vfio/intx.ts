import { EBADF, EINVAL, ENODEV } from '../uapi/errno.ts';
import { EventFd } from '../host/eventfd.ts';
import type { Process } from '../host/process.ts';
import { intxPinOf } from '../irq/intx.ts';
import { CFG, COMMAND, STATUS } from '../pci/header.ts';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
} from '../uapi/vfio.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

/**
 * INTx for a vfio-pci device (vfio_pci_intrs.c): the device's line is
 * requested with a handler that masks it at the device (PCI 2.3 Interrupt
 * Disable, pci_check_and_mask_intx) and signals the trigger eventfd; the
 * user unmasks (VFIO_IRQ_SET_ACTION_UNMASK) once it has served the device,
 * and an interrupt still pending then is signalled again instead of being
 * unmasked (pci_check_and_unmask_intx). INTx and MSI/MSI-X exclude each other.
 */
export class VfioIntx {
  enabled = false;
  masked = false;
  private trigger: EventFd | undefined;
  private off: (() => void) | undefined;

  constructor(private readonly dev: VfioPciDevice) {}

  /** vfio_pci_set_intx_trigger() / _mask() / _unmask(); `others`: MSI or MSI-X is on. */
  set(flags: number, start: number, count: number, data: Uint8Array, proc: Process, others: boolean): number {
    const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    const none = (flags & VFIO_IRQ_SET_DATA_NONE) !== 0;
    const bool = (flags & VFIO_IRQ_SET_DATA_BOOL) !== 0;
    if (action === VFIO_IRQ_SET_ACTION_MASK || action === VFIO_IRQ_SET_ACTION_UNMASK) {
      if (!this.enabled || start !== 0 || count !== 1) return -EINVAL;
      // An unmask eventfd (the irqfd resampler path, vfio_virqfd) is not modelled.
      if (!none && !bool) return -EINVAL;
      if (bool && data[0] === 0) return 0;
      if (action === VFIO_IRQ_SET_ACTION_MASK) this.mask();
      else this.unmask();
      return 0;
    }
    if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return -EINVAL;
    if (this.enabled && count === 0 && none) {
      this.disable();
      return 0;
    }
    if (others || start !== 0 || count !== 1) return -EINVAL;
    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
      const fd = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
      let trigger: EventFd | undefined;
      if (fd >= 0) {
        const f = proc.file(fd);
        if (f === undefined) return -EBADF;
        if (!(f instanceof EventFd)) return -EINVAL;
        trigger = f;
      }
      if (this.enabled) {
        this.trigger = trigger;
        return 0;
      }
      return this.enable(trigger);
    }
    if (!this.enabled) return -EINVAL;
    if (none || (bool && data[0] !== 0)) this.send();
    return 0;
  }

  /** vfio_intx_enable(): request the device's line (no pin wired: -ENODEV, as pdev->irq == 0). */
  private enable(trigger: EventFd | undefined): number {
    const pin = intxPinOf(this.dev.fn);
    if (pin === undefined) return -ENODEV;
    this.enabled = true;
    this.masked = false;
    this.trigger = trigger;
    this.off = pin.listen((asserted) => {
      if (asserted) this.handler();
    });
    // The line may be up already (IRQF_SHARED handlers see it at once).
    if (pin.level) this.handler();
    return 0;
  }

  /** vfio_intx_disable(): free the line, unmask at the device, forget the trigger. */
  disable(): void {
    if (!this.enabled) return;
    this.off?.();
    this.off = undefined;
    this.enabled = false;
    this.trigger = undefined;
    if (this.masked) this.setDisable(false);
    this.masked = false;
  }

  /** vfio_intx_handler(): a device that raised the line is masked there, then the user is told. */
  private handler(): void {
    if (this.masked || !this.checkAndMask(true)) return;
    this.masked = true;
    this.send();
  }

  /** vfio_pci_intx_mask(). */
  private mask(): void {
    if (this.masked) return;
    this.setDisable(true);
    this.masked = true;
  }

  /** __vfio_pci_intx_unmask(): a condition still pending stays masked and is signalled again. */
  private unmask(): void {
    if (!this.masked) return;
    if (this.checkAndMask(false)) this.masked = false;
    else this.send();
  }

  /**
   * __pci_check_and_mask_intx(): when masking, only a device whose Interrupt
   * Status is set gets Interrupt Disable (it is the one that interrupted);
   * when unmasking, only one with nothing pending gets it cleared.
   */
  private checkAndMask(mask: boolean): boolean {
    const pending = (this.dev.hw.read(CFG.STATUS, 2) & STATUS.INTERRUPT) !== 0;
    if (mask !== pending) return false;
    this.setDisable(mask);
    return true;
  }

  private setDisable(on: boolean): void {
    const cmd = this.dev.hw.read(CFG.COMMAND, 2);
    this.dev.hw.write(CFG.COMMAND, 2, on ? cmd | COMMAND.INTX_DISABLE : cmd & ~COMMAND.INTX_DISABLE);
  }

  /** vfio_send_intx_eventfd(). */
  private send(): void {
    const mod = this.dev.mod;
    mod.counters.irqs.value++;
    mod.host.platform.tracer.trace('vfio.intx', this.dev.fn.bdf, { dev: this.dev.fn.bdf });
    this.trigger?.signal();
  }
}
