/**
 * The ioctl sequences a VMM issues, as small functions scenarios share:
 * VFIO type1 the way QEMU's vfio/container.c sets it up, and iommufd the way
 * QEMU's vfio/iommufd.c does (cdev bind, IOAS, hw info, HWPT, attach, IOVA
 * ranges, map), each with a log of its syscalls.
 */
import { CallerError } from '../../src/errors.ts';
import type { Machine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { EMSGSIZE } from '../../src/uapi/errno.ts';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_ioas_alloc,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_iova_range,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_API_VERSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_TYPE1v2_IOMMU,
} from '../../src/uapi/vfio.ts';
import { VfioClient, type IommuInfo, type RegionInfo } from '../../src/vfio/client.ts';

/** A failed step of a VMM sequence: which ioctl, and the errno. */
export class VmmError extends CallerError {
  override name = 'VmmError';
}

function ok(r: number, what: string): number {
  if (r < 0) throw new VmmError(`${what} failed (${r})`);
  return r;
}

export interface Type1Setup {
  v: VfioClient;
  container: number;
  group: number;
  device: number;
  groupId: number;
  /** VFIO_IOMMU_GET_INFO as parsed from its capability chain (page sizes, IOVA ranges, DMA mappings allowed). */
  info: IommuInfo;
  /** Every syscall of the sequence, in order, as "IOCTL_NAME(args) = result" lines. */
  log: string[];
}

/**
 * QEMU's legacy type1 sequence (hw/vfio/container.c: vfio_get_group,
 * vfio_connect_container, vfio_init_container, vfio_get_iommu_info;
 * vfio_get_device): the group from sysfs, open the group and check it is
 * viable, then open the container, VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION
 * (TYPE1v2 first, QEMU takes the richest type), VFIO_GROUP_SET_CONTAINER,
 * VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO (asked again with the argsz the kernel
 * reports so the capability chain fits), then VFIO_GROUP_GET_DEVICE_FD and
 * VFIO_DEVICE_GET_INFO. QEMU's memory listener maps guest RAM with
 * VFIO_IOMMU_MAP_DMA as soon as the container is up, before the device fd is
 * taken: `opts.guestRam` is mapped at that point. vfio-pci's own probing is
 * `vfioPciRealize`.
 */
export function vfioType1Setup(m: Machine, p: Process, bdf: string, opts: { guestRam?: { vaddr: bigint; iova: bigint; size: number } } = {}): Type1Setup {
  const v = new VfioClient(p);
  const log: string[] = [];
  const step = (what: string, r: number): number => {
    log.push(`${what} = ${r}`);
    return ok(r, what);
  };
  const dev = m.device(bdf);
  const link = p.readlink(`/sys/bus/pci/devices/${dev.bdf}/iommu_group`);
  if (typeof link === 'number') throw new VmmError(`readlink ${dev.bdf}/iommu_group failed (${link})`);
  const groupId = Number(link.slice(link.lastIndexOf('/') + 1));
  log.push(`readlink(/sys/bus/pci/devices/${dev.bdf}/iommu_group) = ${link}`);
  const group = step(`open(/dev/vfio/${groupId})`, p.open(`/dev/vfio/${groupId}`));
  const status = ok(v.groupStatus(group), 'VFIO_GROUP_GET_STATUS');
  log.push(`VFIO_GROUP_GET_STATUS = 0 (flags 0x${status.toString(16)}${status & VFIO_GROUP_FLAGS_VIABLE ? ': VIABLE' : ''})`);
  if ((status & VFIO_GROUP_FLAGS_VIABLE) === 0) throw new VmmError(`group ${groupId} is not viable`);
  const container = step('open(/dev/vfio/vfio)', p.open('/dev/vfio/vfio'));
  if (step('VFIO_GET_API_VERSION', v.apiVersion(container)) !== VFIO_API_VERSION) throw new VmmError('VFIO_GET_API_VERSION: unexpected version');
  if (step('VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)', v.checkExtension(container, VFIO_TYPE1v2_IOMMU)) <= 0) throw new VmmError('VFIO_CHECK_EXTENSION(TYPE1v2): not supported');
  step('VFIO_GROUP_SET_CONTAINER', v.setContainer(group, container));
  step('VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)', v.setIommu(container, VFIO_TYPE1v2_IOMMU));
  const info = v.iommuInfo(container);
  if (typeof info === 'number') throw new VmmError(`VFIO_IOMMU_GET_INFO failed (${info})`);
  log.push(`VFIO_IOMMU_GET_INFO = 0 (iova_pgsizes 0x${info.iovaPgsizes.toString(16)}, ${info.iovaRanges.length} IOVA range(s), dma_avail ${info.dmaAvail ?? '-'})`);
  if (opts.guestRam !== undefined) {
    const g = opts.guestRam;
    const r = v.mapDma(container, { vaddr: g.vaddr, iova: g.iova, size: g.size });
    step(`VFIO_IOMMU_MAP_DMA(vaddr 0x${g.vaddr.toString(16)}, iova 0x${g.iova.toString(16)}, size 0x${g.size.toString(16)}, READ|WRITE)`, r);
  }
  const device = step(`VFIO_GROUP_GET_DEVICE_FD("${dev.bdf}")`, v.deviceFd(group, dev.bdf));
  const di = v.deviceInfo(device);
  if (typeof di === 'number') throw new VmmError(`VFIO_DEVICE_GET_INFO failed (${di})`);
  if ((di.flags & VFIO_DEVICE_FLAGS_PCI) === 0) throw new VmmError(`${dev.bdf} is not a vfio-pci device`);
  log.push(`VFIO_DEVICE_GET_INFO = 0 (flags 0x${di.flags.toString(16)}, ${di.numRegions} regions, ${di.numIrqs} irqs)`);
  return { v, container, group, device, groupId, info, log };
}

export interface PciRealize {
  /** BAR regions that exist (size > 0) and the config region, by VFIO region index. */
  regions: Map<number, RegionInfo>;
  /** MSI-X vectors the device offers (VFIO_DEVICE_GET_IRQ_INFO on the MSI-X index). */
  msixCount: number;
  log: string[];
}

/**
 * What QEMU's vfio-pci does next (hw/vfio/pci.c vfio_populate_device and
 * vfio_msix_early_setup): VFIO_DEVICE_GET_REGION_INFO for BAR0..BAR5 and the
 * config region, VFIO_DEVICE_GET_IRQ_INFO for the error index and MSI-X.
 * Turning MSI-X on with eventfds (VFIO_DEVICE_SET_IRQS) is `msixEventfds`.
 */
export function vfioPciRealize(v: VfioClient, device: number): PciRealize {
  const log: string[] = [];
  const regions = new Map<number, RegionInfo>();
  for (let i = VFIO_PCI_BAR0_REGION_INDEX; i <= VFIO_PCI_BAR5_REGION_INDEX; i++) {
    const r = v.regionInfo(device, i);
    if (typeof r === 'number') throw new VmmError(`VFIO_DEVICE_GET_REGION_INFO(BAR${i}) failed (${r})`);
    log.push(`VFIO_DEVICE_GET_REGION_INFO(BAR${i}) = 0 (size 0x${r.size.toString(16)}, offset 0x${r.offset.toString(16)})`);
    if (r.size > 0n) regions.set(i, r);
  }
  const cfg = v.regionInfo(device, VFIO_PCI_CONFIG_REGION_INDEX);
  if (typeof cfg === 'number') throw new VmmError(`VFIO_DEVICE_GET_REGION_INFO(CONFIG) failed (${cfg})`);
  log.push(`VFIO_DEVICE_GET_REGION_INFO(CONFIG) = 0 (size 0x${cfg.size.toString(16)}, offset 0x${cfg.offset.toString(16)})`);
  regions.set(VFIO_PCI_CONFIG_REGION_INDEX, cfg);
  const err = v.irqInfo(device, VFIO_PCI_ERR_IRQ_INDEX);
  log.push(`VFIO_DEVICE_GET_IRQ_INFO(ERR) = ${typeof err === 'number' ? err : `0 (count ${err.count})`}`);
  const msix = v.irqInfo(device, VFIO_PCI_MSIX_IRQ_INDEX);
  if (typeof msix === 'number') throw new VmmError(`VFIO_DEVICE_GET_IRQ_INFO(MSIX) failed (${msix})`);
  log.push(`VFIO_DEVICE_GET_IRQ_INFO(MSIX) = 0 (count ${msix.count}, flags 0x${msix.flags.toString(16)})`);
  return { regions, msixCount: msix.count, log };
}

/** MSI-X vectors 0..n-1 signalled into new eventfds (VFIO_DEVICE_SET_IRQS, DATA_EVENTFD | ACTION_TRIGGER). */
export function msixEventfds(p: Process, v: VfioClient, device: number, n: number): number[] {
  const fds: number[] = [];
  for (let i = 0; i < n; i++) fds.push(ok(p.eventfd(), 'eventfd'));
  ok(v.setIrqEventfds(device, VFIO_PCI_MSIX_IRQ_INDEX, 0, fds), 'VFIO_DEVICE_SET_IRQS(MSIX)');
  return fds;
}

/** Read an eventfd's counter (0 when nothing was signalled: the fd is non-blocking). */
export function eventfdCount(p: Process, fd: number): number {
  const r = p.read(fd, 8);
  return r instanceof Uint8Array ? Number(new DataView(r.buffer, r.byteOffset, 8).getBigUint64(0, true)) : 0;
}

export interface IommufdSetup {
  v: VfioClient;
  iommufd: number;
  /** The VFIO cdev, bound: also the device fd for regions. */
  device: number;
  devId: number;
  ioas: number;
  /** The HWPT allocated on the IOAS for this device, which the device is attached to (QEMU's auto domain). */
  hwpt: number;
  /** IOMMU_GET_HW_INFO: enum iommu_hw_info_type and out_capabilities. */
  hwInfo: { type: number; capabilities: bigint };
  /** The HWPT was allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (the IOMMU reported IOMMU_HW_CAP_DIRTY_TRACKING). */
  dirtyTracking: boolean;
  /** IOMMU_IOAS_IOVA_RANGES: the usable IOVA ranges and the IOVA alignment (QEMU's page-size mask). */
  iovaRanges: { start: bigint; last: bigint }[];
  iovaAlignment: bigint;
  /** Every syscall of the sequence, in order, as "CALL(args) = result" lines. */
  log: string[];
}

/** The vfio cdev of a device, from sysfs (/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN). */
export function cdevOf(p: Process, bdf: string): string {
  const entries = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  const name = typeof entries === 'number' ? undefined : entries.find((e) => e.startsWith('vfio'));
  if (name === undefined) throw new VmmError(`${bdf}: no vfio-dev in sysfs (${String(entries)})`);
  return `/dev/vfio/devices/${name}`;
}

/** sizeof(VendorCaps) in QEMU: a union of struct iommu_hw_info_vtd (16 bytes) and struct iommu_hw_info_arm_smmuv3 (32 bytes). */
const VENDOR_CAPS_BYTES = 32;
const HW_INFO_TYPE: Record<number, string> = { [IOMMU_HW_INFO_TYPE_NONE]: 'NONE', [IOMMU_HW_INFO_TYPE_INTEL_VTD]: 'INTEL_VTD', [IOMMU_HW_INFO_TYPE_ARM_SMMUV3]: 'ARM_SMMUV3' };

/**
 * QEMU's iommufd backend sequence (hw/vfio/iommufd.c iommufd_cdev_attach,
 * backends/iommufd.c), for a vfio-pci device given by its sysfs path with
 * `-object iommufd`:
 *  - iommufd_cdev_getfd: readdir <sysfs>/vfio-dev for the vfioN entry, read
 *    vfio-dev/vfioN/dev (major:minor), open /dev/vfio/devices/vfioN;
 *  - iommufd_cdev_connect_and_bind: open /dev/iommu (the backend's first
 *    user), VFIO_DEVICE_BIND_IOMMUFD (the KVM-VFIO device step is left out:
 *    there is no KVM here);
 *  - a new container: IOMMU_IOAS_ALLOC;
 *  - iommufd_cdev_autodomains_get: IOMMU_GET_HW_INFO (no vendor data), then
 *    IOMMU_HWPT_ALLOC on the IOAS with IOMMU_HWPT_ALLOC_DIRTY_TRACKING when
 *    out_capabilities has IOMMU_HW_CAP_DIRTY_TRACKING, and
 *    VFIO_DEVICE_ATTACH_IOMMUFD_PT to that HWPT;
 *  - iommufd_cdev_get_info_iova_range: IOMMU_IOAS_IOVA_RANGES with no room
 *    (EMSGSIZE tells the count), then again with an array;
 *  - vfio_listener_register: the memory listener maps guest RAM at once,
 *    IOMMU_IOAS_MAP with FIXED_IOVA | READABLE | WRITEABLE (`opts.guestRam`);
 *  - VFIO_DEVICE_GET_INFO, then hiod_iommufd_vfio_realize: IOMMU_GET_HW_INFO
 *    again, into the vendor caps.
 * vfio-pci's own probing is `vfioPciRealize`, as on the type1 path.
 */
export function iommufdSetup(m: Machine, p: Process, bdf: string, opts: { guestRam?: { vaddr: bigint; iova: bigint; size: number } } = {}): IommufdSetup {
  const v = new VfioClient(p);
  const log: string[] = [];
  const step = (what: string, r: number, out = ''): number => {
    log.push(`${what} = ${r}${r >= 0 && out !== '' ? ` (${out})` : ''}`);
    return ok(r, what);
  };
  const dev = m.device(bdf);
  const dir = `/sys/bus/pci/devices/${dev.bdf}/vfio-dev`;
  const cdevPath = cdevOf(p, dev.bdf);
  const name = cdevPath.slice(cdevPath.lastIndexOf('/') + 1);
  log.push(`readdir(${dir}) = [${name}]`);
  const devt = p.readFile(`${dir}/${name}/dev`);
  if (typeof devt === 'number') throw new VmmError(`read ${dir}/${name}/dev failed (${devt})`);
  log.push(`read(${dir}/${name}/dev) = "${devt.trim()}"`);
  const device = step(`open(${cdevPath})`, p.open(cdevPath));
  const iommufd = step('open(/dev/iommu)', p.open('/dev/iommu'));
  // Scratch user memory for the structs' pointers (QEMU's heap buffers).
  const scratch = p.mmap(4096);
  if (scratch < 0n) throw new VmmError(`mmap failed (${scratch})`);

  const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  const br = p.ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, b);
  const devId = new StructView(vfio_device_bind_iommufd, b).num('out_devid');
  step(`VFIO_DEVICE_BIND_IOMMUFD(iommufd ${iommufd})`, br, `out_devid ${devId}`);
  const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  const ar = p.ioctl(iommufd, IOMMU_IOAS_ALLOC, a);
  const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
  step('IOMMU_IOAS_ALLOC', ar, `out_ioas_id ${ioas}`);

  const hwInfo = (dataLen: number) => {
    const h = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, dev_id: devId, data_len: dataLen, data_uptr: dataLen > 0 ? scratch : 0n });
    const r = p.ioctl(iommufd, IOMMU_GET_HW_INFO, h);
    const hv = new StructView(iommu_hw_info, h);
    const info = { type: hv.num('out_data_type'), capabilities: hv.big('out_capabilities') };
    step(`IOMMU_GET_HW_INFO(dev_id ${devId}, data_len ${dataLen})`, r,
      `out_data_type ${HW_INFO_TYPE[info.type] ?? info.type}, out_capabilities 0x${info.capabilities.toString(16)}`);
    return info;
  };
  const info = hwInfo(0);
  const dirtyTracking = (info.capabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)) !== 0n;
  const flags = dirtyTracking ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0;
  const h = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ioas, data_type: IOMMU_HWPT_DATA_NONE });
  const hr = p.ioctl(iommufd, IOMMU_HWPT_ALLOC, h);
  const hwpt = new StructView(iommu_hwpt_alloc, h).num('out_hwpt_id');
  step(`IOMMU_HWPT_ALLOC(dev_id ${devId}, pt_id ${ioas}, flags ${dirtyTracking ? 'DIRTY_TRACKING' : '0'}, DATA_NONE)`, hr, `out_hwpt_id ${hwpt}`);
  const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: hwpt });
  step(`VFIO_DEVICE_ATTACH_IOMMUFD_PT(pt_id ${hwpt})`, p.ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at));

  // IOVA ranges: ask with no room first; EMSGSIZE is the expected answer when there are any.
  const rq = encodeStruct(iommu_ioas_iova_ranges, { size: iommu_ioas_iova_ranges.size, ioas_id: ioas });
  const r1 = p.ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, rq);
  const count = new StructView(iommu_ioas_iova_ranges, rq).num('num_iovas');
  log.push(`IOMMU_IOAS_IOVA_RANGES(ioas_id ${ioas}, num_iovas 0) = ${r1} (num_iovas ${count})`);
  if (r1 < 0 && r1 !== -EMSGSIZE) throw new VmmError(`IOMMU_IOAS_IOVA_RANGES failed (${r1})`);
  const rq2 = encodeStruct(iommu_ioas_iova_ranges, { size: iommu_ioas_iova_ranges.size, ioas_id: ioas, num_iovas: count, allowed_iovas: scratch });
  const r2 = p.ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, rq2);
  const iovaAlignment = new StructView(iommu_ioas_iova_ranges, rq2).big('out_iova_alignment');
  const iovaRanges: { start: bigint; last: bigint }[] = [];
  const arr = r2 === 0 ? p.memRead(scratch, count * iommu_iova_range.size) : 0;
  if (arr instanceof Uint8Array) {
    for (let i = 0; i < count; i++) {
      const rv = new StructView(iommu_iova_range, arr.subarray(i * iommu_iova_range.size));
      iovaRanges.push({ start: rv.big('start'), last: rv.big('last') });
    }
  }
  step(`IOMMU_IOAS_IOVA_RANGES(ioas_id ${ioas}, num_iovas ${count})`, r2,
    `${iovaRanges.map((x) => `0x${x.start.toString(16)}-0x${x.last.toString(16)}`).join(', ')}; out_iova_alignment 0x${iovaAlignment.toString(16)}`);

  if (opts.guestRam !== undefined) {
    const g = opts.guestRam;
    step(`IOMMU_IOAS_MAP(ioas_id ${ioas}, user_va 0x${g.vaddr.toString(16)}, iova 0x${g.iova.toString(16)}, length 0x${g.size.toString(16)}, FIXED_IOVA|READABLE|WRITEABLE)`,
      ioasMapRaw(p, iommufd, ioas, g.vaddr, g.iova, g.size));
  }
  const di = v.deviceInfo(device);
  if (typeof di === 'number') throw new VmmError(`VFIO_DEVICE_GET_INFO failed (${di})`);
  if ((di.flags & VFIO_DEVICE_FLAGS_PCI) === 0) throw new VmmError(`${dev.bdf} is not a vfio-pci device`);
  log.push(`VFIO_DEVICE_GET_INFO = 0 (flags 0x${di.flags.toString(16)}, ${di.numRegions} regions, ${di.numIrqs} irqs)`);
  hwInfo(VENDOR_CAPS_BYTES);
  p.munmap(scratch, 4096);
  return { v, iommufd, device, devId, ioas, hwpt, hwInfo: info, dirtyTracking, iovaRanges, iovaAlignment, log };
}

function ioasMapRaw(p: Process, iommufd: number, ioas: number, vaddr: bigint, iova: bigint, length: number): number {
  const b = encodeStruct(iommu_ioas_map, {
    size: iommu_ioas_map.size,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    user_va: vaddr,
    length,
    iova,
  });
  return p.ioctl(iommufd, IOMMU_IOAS_MAP, b);
}

/** IOMMU_IOAS_MAP at a fixed IOVA, read/write (as QEMU's iommufd_backend_map_dma for writable RAM). */
export function ioasMap(p: Process, iommufd: number, ioas: number, vaddr: bigint, iova: bigint, length: number): void {
  ok(ioasMapRaw(p, iommufd, ioas, vaddr, iova, length), 'IOMMU_IOAS_MAP');
}
