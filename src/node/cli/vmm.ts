/**
 * The ioctl sequences a VMM issues, as small functions scenarios share:
 * VFIO type1 the way QEMU's vfio/container.c sets it up, and iommufd the way
 * QEMU's vfio/iommufd.c does (cdev bind, IOAS, attach, map).
 */
import type { Machine } from '../../../machines/machine.ts';
import type { Process } from '../../host/process.ts';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  iommu_ioas_alloc,
  iommu_ioas_map,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
} from '../../uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../uapi/struct.ts';
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
} from '../../uapi/vfio.ts';
import { VfioClient, type IommuInfo, type RegionInfo } from '../../vfio/client.ts';

/** A failed step of a VMM sequence: which ioctl, and the errno. */
export class VmmError extends Error {
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
}

/** The vfio cdev minor of a device, from sysfs (/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN). */
export function cdevOf(p: Process, bdf: string): string {
  const entries = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  if (typeof entries === 'number' || entries.length === 0) throw new VmmError(`${bdf}: no vfio-dev in sysfs (${String(entries)})`);
  return `/dev/vfio/devices/${entries[0]}`;
}

/** QEMU's iommufd sequence: open /dev/iommu and the cdev, BIND_IOMMUFD, IOAS_ALLOC, ATTACH_IOMMUFD_PT. */
export function iommufdSetup(m: Machine, p: Process, bdf: string): IommufdSetup {
  const v = new VfioClient(p);
  const bdfCanon = m.device(bdf).bdf;
  const iommufd = ok(p.open('/dev/iommu'), 'open /dev/iommu');
  const device = ok(p.open(cdevOf(p, bdfCanon)), 'open the vfio cdev');
  const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  ok(p.ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, b), 'VFIO_DEVICE_BIND_IOMMUFD');
  const devId = new StructView(vfio_device_bind_iommufd, b).num('out_devid');
  const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  ok(p.ioctl(iommufd, IOMMU_IOAS_ALLOC, a), 'IOMMU_IOAS_ALLOC');
  const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
  const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: ioas });
  ok(p.ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at), 'VFIO_DEVICE_ATTACH_IOMMUFD_PT');
  return { v, iommufd, device, devId, ioas };
}

/** IOMMU_IOAS_MAP at a fixed IOVA, read/write. */
export function ioasMap(p: Process, iommufd: number, ioas: number, vaddr: bigint, iova: bigint, length: number): void {
  const b = encodeStruct(iommu_ioas_map, {
    size: iommu_ioas_map.size,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    user_va: vaddr,
    length,
    iova,
  });
  ok(p.ioctl(iommufd, IOMMU_IOAS_MAP, b), 'IOMMU_IOAS_MAP');
}
