import { EINVAL, EIO, ENODEV, ENOTTY } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import { CFG, COMMAND } from '../pci/header.ts';
import { MSIX, MSIX_ENTRY, MSIX_REGS } from '../pci/caps/msix.ts';
import { PCIE } from '../pci/caps/pcie-regs.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_OFFSET_SHIFT,
  VFIO_PCI_ROM_REGION_INDEX,
} from '../uapi/vfio.ts';
import { getInfo, getIrqInfo, getRegionInfo, setIrqs } from './device-ioctl.ts';
import type { VfioGroup } from './group-file.ts';
import { VfioIrqs } from './irqs.ts';
import type { VfioModule } from './module.ts';
import { VirtConfig, type HwConfig } from './pci-config-virt.ts';
import { functionReset, flrCapable, restoreState, saveState, type SavedState } from './pci-reset.ts';
import { UserArg } from './user-arg.ts';

/** offsetofend(struct vfio_pci_hot_reset{,_info}, count) */
const HOT_RESET_MINSZ = 12;
/** offsetofend(struct vfio_device_feature, flags) */
const FEATURE_MINSZ = 8;

const OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;

/**
 * A PCI function bound to vfio-pci (vfio_pci_core.c): opened through its
 * group or its cdev, it is enabled on first open (memory decoding on, reset
 * when it can be, state saved, config shadow built) and disabled on last
 * close (bus mastering off, interrupts off, reset, state restored).
 */
export class VfioPciDevice {
  openCount = 0;
  resetWorks = false;
  vconfig: VirtConfig | undefined;
  irqs: VfioIrqs;
  readonly hw: HwConfig;
  private saved: SavedState | undefined;

  constructor(
    readonly mod: VfioModule,
    readonly fn: PciFunction,
    readonly group: VfioGroup,
    readonly minor: number,
  ) {
    const acc = mod.host.platform.pciConfig;
    this.hw = {
      read: (off, size) => acc.read(fn.busNumber, fn.devfn, off, size),
      write: (off, size, value) => acc.write(fn.busNumber, fn.devfn, off, size, value),
    };
    this.irqs = new VfioIrqs(this);
  }

  get cdevPath(): string {
    return `/dev/vfio/devices/vfio${this.minor}`;
  }

  get isPcie(): boolean {
    return this.fn.caps.findStd(PCIE.CAP_ID) !== undefined;
  }

  /** The domain the device's requester ID translates through now. */
  domain(): IommuDomain | undefined {
    return this.mod.host.iommu.domainForPasid(this.fn, -1);
  }

  // --- open / close --------------------------------------------------------------

  /** vfio_df_open(): the first open enables the device (vfio_pci_core_enable). */
  open(): number {
    if (this.openCount++ > 0) return 0;
    const hw = this.hw;
    const fn = this.fn;
    // pci_enable_device(): decode the BARs the device has.
    let cmd = hw.read(CFG.COMMAND, 2);
    if (fn.bars.some((b) => b !== undefined && b.kind !== 'io')) cmd |= COMMAND.MEMORY;
    if (fn.bars.some((b) => b?.kind === 'io')) cmd |= COMMAND.IO;
    hw.write(CFG.COMMAND, 2, cmd);
    this.resetWorks = flrCapable(this);
    if (this.resetWorks) functionReset(this);
    this.saved = saveState(this);
    this.vconfig = new VirtConfig(fn, hw, {
      flr: () => this.reset(),
      barRestore: () => this.barRestore(),
      msiEnabled: () => this.irqs.type === 'msi',
    });
    return 0;
  }

  /** vfio_df_close(): the last close disables the device (vfio_pci_core_disable). */
  close(): void {
    if (this.openCount === 0 || --this.openCount > 0) return;
    const hw = this.hw;
    hw.write(CFG.COMMAND, 2, hw.read(CFG.COMMAND, 2) & ~COMMAND.MASTER);
    this.irqs.disable();
    this.irqs.err = undefined;
    this.irqs.req = undefined;
    this.vconfig = undefined;
    if (this.saved !== undefined) {
      restoreState(this, this.saved);
      if (this.resetWorks) {
        hw.write(CFG.COMMAND, 2, COMMAND.INTX_DISABLE);
        functionReset(this);
      }
      restoreState(this, this.saved);
    }
    hw.write(CFG.COMMAND, 2, hw.read(CFG.COMMAND, 2) & ~COMMAND.MASTER);
    this.saved = undefined;
  }

  /** VFIO_DEVICE_RESET / virtual FLR (pci_try_reset_function): the device resets, its config and MSI state come back. */
  reset(): number {
    if (!this.resetWorks) return -EINVAL;
    functionReset(this);
    this.irqs.program();
    return 0;
  }

  /** vfio_bar_restore(): put the host's BAR addresses back after a reset behind our back. */
  private barRestore(): void {
    if (this.saved === undefined) return;
    restoreState(this, { regs: this.saved.regs.filter((r) => r.off >= CFG.BAR0 && r.off < CFG.BAR0 + 24) });
  }

  // --- BAR helpers --------------------------------------------------------------------

  /** The host-assigned address of a BAR (0 when unassigned), read from the hardware. */
  barAddress(index: number): number {
    const bar = this.fn.bars[index];
    if (bar === undefined) return 0;
    const lo = this.hw.read(CFG.BAR0 + 4 * index, 4);
    if (bar.kind === 'io') return lo & ~3;
    const hi = bar.kind === 'mem64' ? this.hw.read(CFG.BAR0 + 4 * index + 4, 4) : 0;
    return ((lo & ~0xf) >>> 0) + hi * 2 ** 32;
  }

  /** vfio_pci_memory_lock_and_enable() around `f`. */
  withMemoryEnabled(f: () => void): void {
    const cmd = this.hw.read(CFG.COMMAND, 2);
    if ((cmd & COMMAND.MEMORY) === 0) this.hw.write(CFG.COMMAND, 2, cmd | COMMAND.MEMORY);
    f();
    if ((cmd & COMMAND.MEMORY) === 0) this.hw.write(CFG.COMMAND, 2, cmd);
  }

  /** MSI-X: [BAR index, table offset, table bytes] (vdev->msix_bar/offset/size), if the device has it. */
  msixInfo(): [number, number, number] | undefined {
    const b = this.fn.caps.findStd(MSIX.CAP_ID);
    if (b === undefined) return undefined;
    const flags = this.hw.read(b + MSIX.FLAGS, 2);
    const table = this.hw.read(b + MSIX.TABLE, 4);
    const entries = MSIX_REGS.get('FLAGS', flags, 'QSIZE') + 1;
    return [MSIX_REGS.get('TABLE', table, 'BIR'), MSIX_REGS.get('TABLE', table, 'OFFSET') * 8, entries * MSIX_ENTRY.SIZE];
  }

  msixTableAddress(): number | undefined {
    const m = this.msixInfo();
    if (m === undefined) return undefined;
    const base = this.barAddress(m[0]);
    return base === 0 ? undefined : base + m[1];
  }

  get cfgSize(): number {
    return this.isPcie ? this.fn.config.size : 256;
  }

  // --- ioctls and regions ----------------------------------------------------------------

  /** The device ioctls (vfio_pci_core_ioctl); `cdev`: the file is a cdev (vfio_device_cdev_opened). */
  ioctl(request: number, arg: Uint8Array | number, proc: Process, cdev = false): number {
    if (request === VFIO_DEVICE_RESET) return this.reset();
    const u = UserArg.of(arg, proc);
    if (typeof u === 'number') return u;
    switch (request) {
      case VFIO_DEVICE_GET_INFO:
        return getInfo(this, u);
      case VFIO_DEVICE_GET_REGION_INFO:
        return getRegionInfo(this, u);
      case VFIO_DEVICE_GET_IRQ_INFO:
        return getIrqInfo(this, u);
      case VFIO_DEVICE_SET_IRQS:
        return setIrqs(this, u, proc);
      case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
      case VFIO_DEVICE_PCI_HOT_RESET: {
        // vfio_pci_ioctl_get_pci_hot_reset_info / vfio_pci_ioctl_pci_hot_reset: the header
        // (argsz, flags, count) first: argsz below it -EINVAL; for the reset, flags other than 0, and
        // a count that is 0 on a group-opened device or not 0 on a cdev-opened one (the zero-length
        // array is for cdev) -EINVAL. Then no slot or bus reset is modelled (pci_probe_reset_slot/bus fail).
        const h = u.read(0, HOT_RESET_MINSZ);
        if (typeof h === 'number') return h;
        const dv = new DataView(h.buffer, h.byteOffset, HOT_RESET_MINSZ);
        if (dv.getUint32(0, true) < HOT_RESET_MINSZ) return -EINVAL;
        if (request === VFIO_DEVICE_PCI_HOT_RESET && (dv.getUint32(4, true) !== 0 || (dv.getUint32(8, true) !== 0) === cdev)) return -EINVAL;
        return -ENODEV;
      }
      case VFIO_DEVICE_FEATURE: {
        // vfio_ioctl_device_feature's header checks; no feature is implemented (-ENOTTY, as for a
        // device without migration, dirty logging or low-power ops).
        const h = u.read(0, FEATURE_MINSZ);
        if (typeof h === 'number') return h;
        const dv = new DataView(h.buffer, h.byteOffset, FEATURE_MINSZ);
        const flags = dv.getUint32(4, true);
        if (dv.getUint32(0, true) < FEATURE_MINSZ) return -EINVAL;
        if ((flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE)) !== 0) return -EINVAL;
        if ((flags & VFIO_DEVICE_FEATURE_PROBE) === 0 && (flags & VFIO_DEVICE_FEATURE_SET) !== 0 && (flags & VFIO_DEVICE_FEATURE_GET) !== 0) return -EINVAL;
        return -ENOTTY;
      }
      default:
        return -ENOTTY;
    }
  }

  /** vfio_pci_rw() read. */
  read(length: number, offset: bigint): Uint8Array | number {
    if (length === 0) return new Uint8Array(0);
    const index = Number(offset >> VFIO_PCI_OFFSET_SHIFT);
    const pos = Number(offset & OFFSET_MASK);
    if (index >= VFIO_PCI_NUM_REGIONS) return -EINVAL;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return this.vconfig?.read(pos, length) ?? -EIO;
    if (index > VFIO_PCI_ROM_REGION_INDEX || index === VFIO_PCI_ROM_REGION_INDEX) return -EINVAL;
    const buf = new Uint8Array(length);
    const r = this.barRw(index, pos, buf, false);
    return r < 0 ? r : buf.subarray(0, r);
  }

  /** vfio_pci_rw() write. */
  write(data: Uint8Array, offset: bigint): number {
    if (data.length === 0) return 0;
    const index = Number(offset >> VFIO_PCI_OFFSET_SHIFT);
    const pos = Number(offset & OFFSET_MASK);
    if (index >= VFIO_PCI_NUM_REGIONS) return -EINVAL;
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return this.vconfig?.write(pos, data) ?? -EIO;
    if (index >= VFIO_PCI_ROM_REGION_INDEX) return -EINVAL;
    return this.barRw(index, pos, data, true);
  }

  /**
   * vfio_pci_bar_rw(): the access reaches the device through system memory at
   * the BAR's host address, in qword/dword/word/byte accesses by alignment
   * (vfio_pci_core_do_io_rw: 8 bytes where 8 are left at an 8-aligned offset); the
   * MSI-X table is off limits (reads 0xff, writes dropped); with memory
   * decoding off in the user's command register it is -EIO.
   */
  private barRw(index: number, pos: number, buf: Uint8Array, write: boolean): number {
    const bar = this.fn.bars[index];
    const start = this.barAddress(index);
    if (bar === undefined || start === 0) return -EINVAL;
    if (bar.kind === 'io') return -EINVAL;
    if (pos >= bar.size) return -EINVAL;
    const count = Math.min(buf.length, bar.size - pos);
    const vcmd = this.vconfig?.vconfig ? this.vconfig.vconfig[CFG.COMMAND]! : 0;
    if ((vcmd & COMMAND.MEMORY) === 0) return -EIO;
    const m = this.msixInfo();
    const [xs, xe] = m !== undefined && m[0] === index ? [m[1], m[1] + m[2]] : [0, 0];
    const mem = this.mod.host.platform.sysmem;
    let done = 0;
    while (done < count) {
      const off = pos + done;
      const left = count - done;
      const fillable = off < xs ? Math.min(left, xs - off) : off >= xe ? left : 0;
      let n: number;
      if (fillable === 0) {
        n = Math.min(left, xe - off);
        if (!write) buf.fill(0xff, done, done + n);
      } else if (fillable >= 8 && off % 8 === 0) {
        n = 8;
        if (write) mem.write64(start + off, readLe64(buf, done));
        else writeLe64(buf, done, mem.read64(start + off));
      } else if (fillable >= 4 && off % 4 === 0) {
        n = 4;
        if (write) mem.write32(start + off, readLe(buf, done, 4));
        else writeLe(buf, done, 4, mem.read32(start + off));
      } else if (fillable >= 2 && off % 2 === 0) {
        n = 2;
        if (write) mem.write16(start + off, readLe(buf, done, 2));
        else writeLe(buf, done, 2, mem.read16(start + off));
      } else {
        n = 1;
        if (write) mem.write8(start + off, buf[done]!);
        else buf[done] = mem.read8(start + off);
      }
      done += n;
    }
    return count;
  }
}

function readLe(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v |= b[at + i]! << (8 * i);
  return v >>> 0;
}

function readLe64(b: Uint8Array, at: number): bigint {
  return (BigInt(readLe(b, at + 4, 4)) << 32n) | BigInt(readLe(b, at, 4));
}

function writeLe64(b: Uint8Array, at: number, v: bigint): void {
  writeLe(b, at, 4, Number(v & 0xffffffffn));
  writeLe(b, at + 4, 4, Number((v >> 32n) & 0xffffffffn));
}

function writeLe(b: Uint8Array, at: number, n: number, v: number): void {
  for (let i = 0; i < n; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
}
