import { EBADF, EINVAL, ENOSPC, ENOTTY } from '../uapi/errno.ts';
import { EventFd } from '../host/eventfd.ts';
import type { Process } from '../host/process.ts';
import { fieldPrep } from '../hw/layout.ts';
import { MSI, MSI_FLAGS, MSI_REGS } from '../pci/caps/msi.ts';
import { MSIX, MSIX_ENTRY, MSIX_FLAGS } from '../pci/caps/msix.ts';
import {
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
} from '../uapi/vfio.ts';
import { injectedErrno } from './faults.ts';
import { VfioIntx } from './intx.ts';
import { msiAddressFor } from './msi-cookie.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

type IrqType = 'none' | 'msi' | 'msix';

interface VectorCtx {
  trigger: EventFd;
  off: () => void;
}

/**
 * MSI and MSI-X for a vfio-pci device (vfio_pci_intrs.c; INTx in intx.ts). SET_IRQS with
 * eventfds makes the host kernel allocate vectors and program the device's
 * real MSI capability or MSI-X table with a host message (the interrupt
 * controller's doorbell, through the domain's MSI window when the IOMMU has
 * a software-managed one, and host data values); the message arriving at
 * the machine's MsiController with the vector's data at the doorbell signals
 * the vector's eventfd, whatever requester ID the write carries. That is
 * the whole interrupt path of the machine: the device's own MSI send, its
 * bus-master write, the IOMMU, the doorbell.
 */
export class VfioIrqs {
  type: IrqType = 'none';
  private nvec = 0;
  private dataBase = -1;
  private dataCount = 0;
  private msgAddr = 0;
  private readonly ctx = new Map<number, VectorCtx>();
  err: EventFd | undefined;
  req: EventFd | undefined;
  readonly intx: VfioIntx;

  constructor(private readonly dev: VfioPciDevice) {
    this.intx = new VfioIntx(dev);
  }

  /** vfio_pci_set_irqs_ioctl() for MSI/MSI-X/ERR/REQ; `data` holds count entries of the data type. */
  set(index: number, flags: number, start: number, count: number, data: Uint8Array, proc: Process): number {
    const action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (index === VFIO_PCI_INTX_IRQ_INDEX) return this.intx.set(flags, start, count, data, proc, this.type !== 'none');
    if (index === VFIO_PCI_MSI_IRQ_INDEX || index === VFIO_PCI_MSIX_IRQ_INDEX) {
      if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return -ENOTTY;
      return this.msiTrigger(index === VFIO_PCI_MSIX_IRQ_INDEX ? 'msix' : 'msi', start, count, flags, data, proc);
    }
    if (index === VFIO_PCI_ERR_IRQ_INDEX || index === VFIO_PCI_REQ_IRQ_INDEX) {
      if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return -ENOTTY;
      const key = index === VFIO_PCI_ERR_IRQ_INDEX ? 'err' : 'req';
      return this.singleTrigger(key, count, flags, data, proc);
    }
    return -ENOTTY;
  }

  /** vfio_pci_set_msi_trigger(). */
  private msiTrigger(kind: 'msi' | 'msix', start: number, count: number, flags: number, data: Uint8Array, proc: Process): number {
    if (this.type === kind && count === 0 && (flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
      this.disable();
      return 0;
    }
    if ((this.type !== kind && this.type !== 'none') || this.intx.enabled) return -EINVAL;
    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
      const fds: number[] = [];
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < count; i++) fds.push(dv.getInt32(4 * i, true));
      if (this.type === kind) return this.setBlock(start, fds, proc);
      const e = this.enable(kind, start + count);
      if (e < 0) return e;
      const r = this.setBlock(start, fds, proc);
      if (r < 0) this.disable();
      return r;
    }
    if (this.type !== kind) return -EINVAL;
    for (let i = start; i < start + count; i++) {
      const c = this.ctx.get(i);
      if (c === undefined) continue;
      if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0 || ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0 && data[i - start] !== 0)) c.trigger.signal();
    }
    return 0;
  }

  /** vfio_msi_set_block(): on failure every vector from `start` up to the failing one loses its trigger. */
  private setBlock(start: number, fds: readonly number[], proc: Process): number {
    if (start + fds.length > this.nvec) return -EINVAL;
    for (let i = 0; i < fds.length; i++) {
      const r = this.setVectorSignal(start + i, fds[i]!, proc);
      if (r < 0) {
        for (let j = start; j <= start + i; j++) this.setVectorSignal(j, -1, proc);
        return r;
      }
    }
    return 0;
  }

  /** vfio_msi_set_vector_signal(): drop the vector's old trigger, then take the new eventfd (fd < 0: none). */
  private setVectorSignal(vector: number, fd: number, proc: Process): number {
    const old = this.ctx.get(vector);
    if (old !== undefined) {
      old.off();
      this.ctx.delete(vector);
      this.maskVector(vector, true);
    }
    if (fd < 0) return 0;
    const f = proc.file(fd);
    if (f === undefined) return -EBADF;
    if (!(f instanceof EventFd)) return -EINVAL;
    const fn = this.dev.fn;
    const data = this.dataBase + vector;
    const counter = this.dev.mod.counters.irqs;
    const tracer = this.dev.mod.host.platform.tracer;
    // What identifies the interrupt is the message the host composed for this vector: its data value
    // (unique per host vector, allocMsiData) written to the doorbell it targets. Not the requester ID:
    // behind a PCIe-to-PCI bridge the write carries the bridge's alias RID, as on real hardware.
    const doorbell = this.dev.mod.host.platform.msi.base;
    const off = this.dev.mod.host.platform.msi.on(data, (msg) => {
      if (msg.addr !== doorbell) return;
      counter.value++;
      tracer.trace('vfio.irq', fn.bdf, { dev: fn.bdf, index: this.type === 'msix' ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX, vector });
      f.signal();
    });
    this.ctx.set(vector, { trigger: f, off });
    this.maskVector(vector, false);
    return 0;
  }

  /** vfio_msi_enable(): allocate host vectors and program the device (pci_alloc_irq_vectors). */
  private enable(kind: 'msi' | 'msix', nvec: number): number {
    const mod = this.dev.mod;
    if (injectedErrno(mod.host.platform.faults, 'vfio.irq_alloc', ENOSPC, { dev: this.dev.fn.bdf }) < 0) return -ENOSPC;
    // MSI needs a naturally aligned power-of-two block of data values; MSI-X takes one too.
    const count = 2 ** Math.ceil(Math.log2(Math.max(1, nvec)));
    const base = mod.allocMsiData(count);
    if (base < 0) return -ENOSPC;
    const addr = msiAddressFor(this.dev.domain(), mod.host.platform.msi.base);
    if (addr < 0) {
      mod.freeMsiData(base, count);
      return addr;
    }
    this.type = kind;
    this.nvec = nvec;
    this.dataBase = base;
    this.dataCount = count;
    this.msgAddr = addr;
    this.program();
    return 0;
  }

  /** Write the host message into the device: MSI registers or MSI-X entries, then the enable bits. */
  program(): void {
    if (this.type === 'none') return;
    const hw = this.dev.hw;
    const fn = this.dev.fn;
    const lo = this.msgAddr % 2 ** 32;
    const hi = Math.floor(this.msgAddr / 2 ** 32);
    if (this.type === 'msi') {
      const b = fn.caps.findStd(MSI.CAP_ID)!;
      const flags = hw.read(b + MSI.FLAGS, 2);
      const is64 = (flags & MSI_FLAGS.ADDR64) !== 0;
      hw.write(b + MSI.ADDRESS_LO, 4, lo);
      if (is64) hw.write(b + MSI.ADDRESS_HI, 4, hi);
      hw.write(b + (is64 ? MSI.DATA_64 : MSI.DATA_32), 2, this.dataBase & 0xffff);
      if ((flags & MSI_FLAGS.PVM) !== 0) {
        let mask = 0;
        for (let v = 0; v < this.nvec; v++) if (!this.ctx.has(v)) mask |= 1 << v;
        hw.write(b + (is64 ? MSI.MASK_64 : MSI.MASK_32), 4, mask >>> 0);
      }
      const mme = fieldPrep(MSI_REGS.field('FLAGS', 'MME'), Math.log2(this.dataCount));
      hw.write(b + MSI.FLAGS, 2, (flags & ~MSI_FLAGS.MME) | mme | MSI_FLAGS.ENABLE);
      return;
    }
    const b = fn.caps.findStd(MSIX.CAP_ID)!;
    const flags = hw.read(b + MSIX.FLAGS, 2);
    hw.write(b + MSIX.FLAGS, 2, flags | MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK);
    this.dev.withMemoryEnabled(() => {
      const table = this.dev.msixTableAddress();
      if (table === undefined) return;
      const mem = this.dev.mod.host.platform.sysmem;
      for (let v = 0; v < this.nvec; v++) {
        const e = table + v * MSIX_ENTRY.SIZE;
        mem.write32(e + MSIX_ENTRY.ADDR_LO, lo);
        mem.write32(e + MSIX_ENTRY.ADDR_HI, hi);
        mem.write32(e + MSIX_ENTRY.DATA, this.dataBase + v);
        mem.write32(e + MSIX_ENTRY.VECTOR_CTRL, this.ctx.has(v) ? 0 : MSIX_ENTRY.CTRL_MASKBIT);
      }
    });
    hw.write(b + MSIX.FLAGS, 2, (flags | MSIX_FLAGS.ENABLE) & ~MSIX_FLAGS.FUNCTION_MASK);
  }

  /** Mask or unmask one vector in the device (free_irq / request_irq). */
  private maskVector(v: number, masked: boolean): void {
    const hw = this.dev.hw;
    const fn = this.dev.fn;
    if (this.type === 'msi') {
      const b = fn.caps.findStd(MSI.CAP_ID)!;
      const flags = hw.read(b + MSI.FLAGS, 2);
      if ((flags & MSI_FLAGS.PVM) === 0) return;
      const reg = b + ((flags & MSI_FLAGS.ADDR64) !== 0 ? MSI.MASK_64 : MSI.MASK_32);
      const cur = hw.read(reg, 4);
      hw.write(reg, 4, (masked ? cur | (1 << v) : cur & ~(1 << v)) >>> 0);
    } else if (this.type === 'msix') {
      this.dev.withMemoryEnabled(() => {
        const table = this.dev.msixTableAddress();
        if (table !== undefined) this.dev.mod.host.platform.sysmem.write32(table + v * MSIX_ENTRY.SIZE + MSIX_ENTRY.VECTOR_CTRL, masked ? MSIX_ENTRY.CTRL_MASKBIT : 0);
      });
    }
  }

  /** vfio_msi_disable(): every trigger goes, the device's MSI/MSI-X is turned off, host vectors freed. */
  disable(): void {
    this.intx.disable();
    if (this.type === 'none') return;
    for (const [v, c] of this.ctx) {
      c.off();
      this.maskVector(v, true);
    }
    this.ctx.clear();
    const hw = this.dev.hw;
    const fn = this.dev.fn;
    if (this.type === 'msi') {
      const b = fn.caps.findStd(MSI.CAP_ID)!;
      hw.write(b + MSI.FLAGS, 2, hw.read(b + MSI.FLAGS, 2) & ~(MSI_FLAGS.ENABLE | MSI_FLAGS.MME));
    } else {
      const b = fn.caps.findStd(MSIX.CAP_ID)!;
      hw.write(b + MSIX.FLAGS, 2, hw.read(b + MSIX.FLAGS, 2) & ~(MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK));
    }
    this.dev.mod.freeMsiData(this.dataBase, this.dataCount);
    this.type = 'none';
    this.nvec = 0;
    this.dataBase = -1;
  }

  /** vfio_pci_set_ctx_trigger_single() for the error and request eventfds. */
  private singleTrigger(key: 'err' | 'req', count: number, flags: number, data: Uint8Array, proc: Process): number {
    const cur = this[key];
    // vfio_pci_set_ctx_trigger_single(): DATA_NONE needs an eventfd to signal (count 1) or drop (count 0).
    if ((flags & VFIO_IRQ_SET_DATA_NONE) !== 0) {
      if (cur === undefined) return -EINVAL;
      if (count > 0) cur.signal();
      else this[key] = undefined;
      return 0;
    }
    if ((flags & VFIO_IRQ_SET_DATA_BOOL) !== 0) {
      if (count === 0) return -EINVAL;
      if (data[0] !== 0) cur?.signal();
      return 0;
    }
    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0) {
      if (count === 0) return -EINVAL;
      const fd = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
      if (fd === -1) this[key] = undefined;
      else if (fd >= 0) {
        const f = proc.file(fd);
        if (f === undefined) return -EBADF;
        if (!(f instanceof EventFd)) return -EINVAL;
        this[key] = f;
      } else return -EINVAL;
      return 0;
    }
    return -EINVAL;
  }

  /** Vectors with a trigger now (tests). */
  get triggered(): number[] {
    return [...this.ctx.keys()].sort((a, b) => a - b);
  }
}
