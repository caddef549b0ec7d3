import { CallerError } from '../errors.ts';
import type { Process } from '../host/process.ts';
import { PROT_READ, PROT_WRITE } from '../host/mm.ts';
import { CFG, COMMAND } from '../pci/header.ts';
import { EINVAL, EIO } from '../uapi/errno.ts';
import { encodeStruct, StructView, type StructDef } from '../uapi/struct.ts';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PID,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNBIND,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_SET_IOMMU,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  vfio_bitmap,
  vfio_device_info,
  vfio_info_cap_header,
  vfio_iommu_type1_bind,
  vfio_iommu_type1_bind_process,
  vfio_iommu_type1_dirty_bitmap,
  vfio_iommu_type1_dirty_bitmap_get,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail,
  vfio_iova_range,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
  vfio_region_info_cap_sparse_mmap,
  vfio_region_sparse_mmap_area,
  vfio_group_status,
} from '../uapi/vfio.ts';

/** A failed call: the negative errno the kernel returned. */
export class VfioError extends CallerError {
  override name = 'VfioError';

  constructor(
    readonly op: string,
    readonly errno: number,
  ) {
    super(`${op}: errno ${-errno}`);
  }

  /** A call's result, or throw when it is a negative errno. */
  static check<T>(op: string, r: T | number): T {
    if (typeof r === 'number' && r < 0) throw new VfioError(op, r);
    return r as T;
  }
}

export interface IommuInfo {
  flags: number;
  iovaPgsizes: bigint;
  iovaRanges: { start: bigint; end: bigint }[];
  migration?: { flags: number; pgsizeBitmap: bigint; maxDirtyBitmapSize: bigint };
  dmaAvail?: number;
}

export interface RegionInfo {
  index: number;
  flags: number;
  size: bigint;
  offset: bigint;
  /** The mmappable areas, when the region carries VFIO_REGION_INFO_CAP_SPARSE_MMAP (otherwise all of it, if FLAG_MMAP). */
  sparseMmap?: { offset: bigint; size: bigint }[];
  /** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table lives here and may be mapped anyway. */
  msixMappable?: boolean;
}

/** Walk an INFO capability chain in `buf`, calling `fn` with each capability's id and offset. */
function walkCaps(buf: Uint8Array, first: number, fn: (id: number, off: number) => void): void {
  for (let off = first, n = 0; off !== 0 && off + 8 <= buf.length && n < 64; n++) {
    const h = new StructView(vfio_info_cap_header, buf.subarray(off));
    fn(h.num('id'), off);
    off = h.num('next');
  }
}

/**
 * A typed client of the VFIO uapi for TypeScript users: it encodes each
 * struct with the same tables the kernel side decodes and calls only
 * Process.ioctl with the bytes (and pread/pwrite for regions). Every method
 * returns its result or the negative errno, like the syscalls.
 */
export class VfioClient {
  constructor(readonly proc: Process) {}

  private call<F extends string>(fd: number, req: number, def: StructDef<F>, values: Partial<Record<F, number | bigint>>, extra = 0): [number, StructView<F>, Uint8Array] {
    const bytes = encodeStruct(def, { ...values, argsz: def.size + extra } as Partial<Record<F, number | bigint>>, def.size + extra);
    const r = this.proc.ioctl(fd, req, bytes);
    return [r, new StructView(def, bytes), bytes];
  }

  // --- container ---
  apiVersion(container: number): number {
    return this.proc.ioctl(container, VFIO_GET_API_VERSION, 0);
  }

  checkExtension(container: number, ext: number): number {
    return this.proc.ioctl(container, VFIO_CHECK_EXTENSION, ext);
  }

  setIommu(container: number, type: number): number {
    return this.proc.ioctl(container, VFIO_SET_IOMMU, type);
  }

  /** VFIO_IOMMU_GET_INFO, asking again with the argsz the kernel reports so the capability chain fits. */
  iommuInfo(container: number): IommuInfo | number {
    let [r, v, bytes] = this.call(container, VFIO_IOMMU_GET_INFO, vfio_iommu_type1_info, {});
    if (r < 0) return r;
    const need = v.num('argsz');
    if (need > vfio_iommu_type1_info.size) {
      [r, v, bytes] = this.call(container, VFIO_IOMMU_GET_INFO, vfio_iommu_type1_info, {}, need - vfio_iommu_type1_info.size);
      if (r < 0) return r;
    }
    const out: IommuInfo = { flags: v.num('flags'), iovaPgsizes: v.big('iova_pgsizes'), iovaRanges: [] };
    walkCaps(bytes, v.num('cap_offset'), (id, off) => {
      const at = bytes.subarray(off);
      if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
        const c = new StructView(vfio_iommu_type1_info_cap_iova_range, at);
        for (let i = 0; i < c.num('nr_iovas'); i++) {
          const rv = new StructView(vfio_iova_range, at.subarray(vfio_iommu_type1_info_cap_iova_range.size + i * vfio_iova_range.size));
          out.iovaRanges.push({ start: rv.big('start'), end: rv.big('end') });
        }
      } else if (id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
        const c = new StructView(vfio_iommu_type1_info_cap_migration, at);
        out.migration = { flags: c.num('flags'), pgsizeBitmap: c.big('pgsize_bitmap'), maxDirtyBitmapSize: c.big('max_dirty_bitmap_size') };
      } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
        out.dmaAvail = new StructView(vfio_iommu_type1_info_dma_avail, at).num('avail');
      }
    });
    return out;
  }

  mapDma(container: number, m: { vaddr: bigint; iova: bigint; size: bigint | number; read?: boolean; write?: boolean; flags?: number }): number {
    const flags = m.flags ?? ((m.read ?? true ? VFIO_DMA_MAP_FLAG_READ : 0) | (m.write ?? true ? VFIO_DMA_MAP_FLAG_WRITE : 0));
    return this.call(container, VFIO_IOMMU_MAP_DMA, vfio_iommu_type1_dma_map, { flags, vaddr: m.vaddr, iova: m.iova, size: BigInt(m.size) })[0];
  }

  /** VFIO_IOMMU_UNMAP_DMA: the size unmapped, or the errno. */
  unmapDma(container: number, u: { iova: bigint; size: bigint | number; flags?: number; bitmap?: { pgsize: bigint; size: bigint; data: bigint } }): bigint | number {
    let flags = u.flags ?? 0;
    let extra = 0;
    if (u.bitmap !== undefined) {
      flags |= VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
      extra = vfio_bitmap.size;
    }
    const bytes = encodeStruct(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size + extra, flags, iova: u.iova, size: BigInt(u.size) }, vfio_iommu_type1_dma_unmap.size + extra);
    if (u.bitmap !== undefined) bytes.set(encodeStruct(vfio_bitmap, u.bitmap), vfio_iommu_type1_dma_unmap.size);
    const r = this.proc.ioctl(container, VFIO_IOMMU_UNMAP_DMA, bytes);
    return r < 0 ? r : new StructView(vfio_iommu_type1_dma_unmap, bytes).big('size');
  }

  dirtyStart(container: number): number {
    return this.call(container, VFIO_IOMMU_DIRTY_PAGES, vfio_iommu_type1_dirty_bitmap, { flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START })[0];
  }

  dirtyStop(container: number): number {
    return this.call(container, VFIO_IOMMU_DIRTY_PAGES, vfio_iommu_type1_dirty_bitmap, { flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP })[0];
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP into the process's memory at `data`. */
  dirtyBitmap(container: number, g: { iova: bigint; size: bigint; pgsize: bigint; bitmapSize: bigint; data: bigint }): number {
    const head = vfio_iommu_type1_dirty_bitmap.size;
    const bytes = new Uint8Array(head + vfio_iommu_type1_dirty_bitmap_get.size);
    bytes.set(encodeStruct(vfio_iommu_type1_dirty_bitmap, { argsz: bytes.length, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP }));
    bytes.set(encodeStruct(vfio_iommu_type1_dirty_bitmap_get, { iova: g.iova, size: g.size, bitmap_pgsize: g.pgsize, bitmap_size: g.bitmapSize, bitmap_data: g.data }), head);
    return this.proc.ioctl(container, VFIO_IOMMU_DIRTY_PAGES, bytes);
  }

  /** VFIO_IOMMU_BIND with VFIO_IOMMU_BIND_PROCESS (the caller, or `pid`): the PASID, or the errno. */
  bindProcess(container: number, pid?: number): number {
    const bytes = this.bindBytes(pid);
    const r = this.proc.ioctl(container, VFIO_IOMMU_BIND, bytes);
    return r < 0 ? r : new StructView(vfio_iommu_type1_bind_process, bytes.subarray(vfio_iommu_type1_bind.size)).num('pasid');
  }

  unbindProcess(container: number, pid?: number): number {
    return this.proc.ioctl(container, VFIO_IOMMU_UNBIND, this.bindBytes(pid));
  }

  private bindBytes(pid?: number): Uint8Array {
    const size = vfio_iommu_type1_bind.size + vfio_iommu_type1_bind_process.size;
    const bytes = new Uint8Array(size);
    bytes.set(encodeStruct(vfio_iommu_type1_bind, { argsz: size, flags: VFIO_IOMMU_BIND_PROCESS }));
    bytes.set(encodeStruct(vfio_iommu_type1_bind_process, { flags: pid === undefined ? 0 : VFIO_IOMMU_BIND_PID, pid: pid ?? 0 }), vfio_iommu_type1_bind.size);
    return bytes;
  }

  // --- group ---
  groupStatus(group: number): number {
    const [r, v] = this.call(group, VFIO_GROUP_GET_STATUS, vfio_group_status, {});
    return r < 0 ? r : v.num('flags');
  }

  setContainer(group: number, container: number): number {
    const fd = new Uint8Array(4);
    new DataView(fd.buffer).setInt32(0, container, true);
    return this.proc.ioctl(group, VFIO_GROUP_SET_CONTAINER, fd);
  }

  unsetContainer(group: number): number {
    return this.proc.ioctl(group, VFIO_GROUP_UNSET_CONTAINER, 0);
  }

  deviceFd(group: number, bdf: string): number {
    const name = new Uint8Array(bdf.length + 1);
    for (let i = 0; i < bdf.length; i++) name[i] = bdf.charCodeAt(i);
    return this.proc.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name);
  }

  // --- device ---
  deviceInfo(dev: number): { flags: number; numRegions: number; numIrqs: number } | number {
    const [r, v] = this.call(dev, VFIO_DEVICE_GET_INFO, vfio_device_info, {});
    return r < 0 ? r : { flags: v.num('flags'), numRegions: v.num('num_regions'), numIrqs: v.num('num_irqs') };
  }

  regionInfo(dev: number, index: number): RegionInfo | number {
    let [r, v, bytes] = this.call(dev, VFIO_DEVICE_GET_REGION_INFO, vfio_region_info, { index });
    if (r < 0) return r;
    if (v.num('argsz') > vfio_region_info.size) {
      [r, v, bytes] = this.call(dev, VFIO_DEVICE_GET_REGION_INFO, vfio_region_info, { index }, v.num('argsz') - vfio_region_info.size);
      if (r < 0) return r;
    }
    const out: RegionInfo = { index, flags: v.num('flags'), size: v.big('size'), offset: v.big('offset') };
    walkCaps(bytes, v.num('cap_offset'), (id, off) => {
      if (id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) out.msixMappable = true;
      if (id !== VFIO_REGION_INFO_CAP_SPARSE_MMAP) return;
      const c = new StructView(vfio_region_info_cap_sparse_mmap, bytes.subarray(off));
      out.sparseMmap = [];
      for (let i = 0; i < c.num('nr_areas'); i++) {
        const a = new StructView(vfio_region_sparse_mmap_area, bytes.subarray(off + vfio_region_info_cap_sparse_mmap.size + i * 16));
        out.sparseMmap.push({ offset: a.big('offset'), size: a.big('size') });
      }
    });
    return out;
  }

  /**
   * mmap a device region (a BAR) as a user-space driver does: the region's
   * offset from regionInfo plus `at` (page aligned); the address or a negative
   * bigint errno.
   */
  mmapRegion(dev: number, region: RegionInfo, length: number, at = 0n, prot = PROT_READ | PROT_WRITE): bigint {
    return this.proc.mmap(length, { fd: dev, offset: region.offset + at, prot });
  }

  irqInfo(dev: number, index: number): { flags: number; count: number } | number {
    const [r, v] = this.call(dev, VFIO_DEVICE_GET_IRQ_INFO, vfio_irq_info, { index });
    return r < 0 ? r : { flags: v.num('flags'), count: v.num('count') };
  }

  /** SET_IRQS with DATA_EVENTFD|ACTION_TRIGGER for vectors start.. of `index` (-1 unassigns). */
  setIrqEventfds(dev: number, index: number, start: number, fds: readonly number[]): number {
    const bytes = encodeStruct(vfio_irq_set, { argsz: vfio_irq_set.size + 4 * fds.length, flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, index, start, count: fds.length }, vfio_irq_set.size + 4 * fds.length);
    const dv = new DataView(bytes.buffer);
    fds.forEach((fd, i) => dv.setInt32(vfio_irq_set.size + 4 * i, fd, true));
    return this.proc.ioctl(dev, VFIO_DEVICE_SET_IRQS, bytes);
  }

  /** SET_IRQS with DATA_NONE|ACTION_TRIGGER and count 0: turn the index off. */
  disableIrqs(dev: number, index: number): number {
    return this.call(dev, VFIO_DEVICE_SET_IRQS, vfio_irq_set, { flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, start: 0, count: 0 })[0];
  }

  reset(dev: number): number {
    return this.proc.ioctl(dev, VFIO_DEVICE_RESET, 0);
  }

  // --- a user-space driver's view of a vfio-pci device ---
  // Region offsets come from VFIO_DEVICE_GET_REGION_INFO on every access, as a
  // driver must treat them (vfio-pci's index << 40 is its own business).

  /** Byte offset of `offset` inside region `index` of the device fd, or -errno when the region is absent or too small. */
  private regionOffset(dev: number, index: number, offset: number, size: number): bigint | number {
    const r = this.regionInfo(dev, index);
    if (typeof r === 'number') return r;
    if (offset < 0 || BigInt(offset + size) > r.size) return -EINVAL;
    return r.offset + BigInt(offset);
  }

  private readRegion(dev: number, index: number, offset: number, size: 1 | 2 | 4 | 8): bigint | number {
    const at = this.regionOffset(dev, index, offset, size);
    if (typeof at === 'number') return at;
    const b = this.proc.pread(dev, size, at);
    if (typeof b === 'number') return b;
    if (b.length !== size) return -EIO;
    const dv = new DataView(b.buffer, b.byteOffset, size);
    return size === 8 ? dv.getBigUint64(0, true) : BigInt(size === 4 ? dv.getUint32(0, true) : size === 2 ? dv.getUint16(0, true) : dv.getUint8(0));
  }

  private writeRegion(dev: number, index: number, offset: number, size: 1 | 2 | 4 | 8, value: bigint | number): number {
    const at = this.regionOffset(dev, index, offset, size);
    if (typeof at === 'number') return at;
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    if (size === 8) dv.setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
    else if (size === 4) dv.setUint32(0, Number(value) >>> 0, true);
    else if (size === 2) dv.setUint16(0, Number(value) & 0xffff, true);
    else dv.setUint8(0, Number(value) & 0xff);
    const r = this.proc.pwrite(dev, b, at);
    return r < 0 ? r : r === size ? 0 : -EIO;
  }

  /** Read a configuration register through the config region (as vfio-pci virtualises it); the value or -errno. */
  configRead(dev: number, offset: number, size: 1 | 2 | 4): number {
    const v = this.readRegion(dev, VFIO_PCI_CONFIG_REGION_INDEX, offset, size);
    return typeof v === 'number' ? v : Number(v);
  }

  /** Write a configuration register through the config region; 0 or -errno. */
  configWrite(dev: number, offset: number, size: 1 | 2 | 4, value: number): number {
    return this.writeRegion(dev, VFIO_PCI_CONFIG_REGION_INDEX, offset, size, value);
  }

  /**
   * Turn Bus Master Enable on (or off) in the Command register, keeping its
   * other bits: vfio-pci leaves it off at open (vfio_pci_core_enable never
   * calls pci_set_master), so a driver that wants DMA sets it, as DPDK's
   * pci_vfio_set_bus_master does. Memory Space Enable is set with it, since
   * BAR access needs it. 0 or -errno.
   */
  setBusMaster(dev: number, on = true): number {
    const cmd = this.configRead(dev, CFG.COMMAND, 2);
    if (cmd < 0) return cmd;
    // Written even when unchanged: after a reset behind vfio-pci's back the write is what restores the BARs.
    return this.configWrite(dev, CFG.COMMAND, 2, on ? cmd | COMMAND.MASTER | COMMAND.MEMORY : cmd & ~COMMAND.MASTER);
  }

  /** A 32-bit register of BAR `bar` (its VFIO region index) at `offset`; the value or -errno. */
  barRead32(dev: number, bar: number, offset: number): number {
    const v = this.readRegion(dev, bar, offset, 4);
    return typeof v === 'number' ? v : Number(v);
  }

  barWrite32(dev: number, bar: number, offset: number, value: number): number {
    return this.writeRegion(dev, bar, offset, 4, value);
  }

  /** A 64-bit register read in one 8-byte access (exact: a bigint), or -errno as a number. */
  barRead64(dev: number, bar: number, offset: number): bigint | number {
    return this.readRegion(dev, bar, offset, 8);
  }

  barWrite64(dev: number, bar: number, offset: number, value: bigint): number {
    return this.writeRegion(dev, bar, offset, 8, value);
  }

  /**
   * Signal `n` vectors of an interrupt index (MSI-X, MSI or INTx) into new
   * eventfds of this process (VFIO_DEVICE_SET_IRQS, DATA_EVENTFD |
   * ACTION_TRIGGER): the eventfds, or -errno with none left open.
   */
  irqEventfds(dev: number, index: number, n: number): number[] | number {
    const fds: number[] = [];
    const undo = (err: number) => {
      for (const fd of fds) this.proc.close(fd);
      return err;
    };
    for (let i = 0; i < n; i++) {
      const fd = this.proc.eventfd();
      if (fd < 0) return undo(fd);
      fds.push(fd);
    }
    const r = this.setIrqEventfds(dev, index, 0, fds);
    return r < 0 ? undo(r) : fds;
  }

  msixEventfds(dev: number, n: number): number[] | number {
    return this.irqEventfds(dev, VFIO_PCI_MSIX_IRQ_INDEX, n);
  }

  msiEventfds(dev: number, n: number): number[] | number {
    return this.irqEventfds(dev, VFIO_PCI_MSI_IRQ_INDEX, n);
  }

  intxEventfd(dev: number): number {
    const r = this.irqEventfds(dev, VFIO_PCI_INTX_IRQ_INDEX, 1);
    return typeof r === 'number' ? r : r[0]!;
  }

  /** Read and reset an eventfd's counter: how many times it was signalled since (0: none; the fd never blocks). */
  eventfdCount(fd: number): number {
    const r = this.proc.read(fd, 8);
    return r instanceof Uint8Array ? Number(new DataView(r.buffer, r.byteOffset, 8).getBigUint64(0, true)) : 0;
  }
}
