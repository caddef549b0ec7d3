/**
 * The VFIO container ioctls served by iommufd (drivers/iommu/iommufd/
 * vfio_compat.c): VFIO type1/type1v2 on the context's compat IOAS
 * (ictx->vfio_ioas). iommufd_fops_ioctl() hands every request whose number
 * lies below IOMMUFD_CMD_BASE here, so they work on any iommufd fd: an open
 * /dev/iommu, or /dev/vfio/vfio when iommufd provides it
 * (CONFIG_IOMMUFD_VFIO_CONTAINER). What the compat layer does not do is
 * refused: VFIO_DMA_MAP_FLAG_VADDR and every unmap flag but UNMAP_ALL are
 * -EINVAL, VFIO_UPDATE_VADDR and VFIO_TYPE1_NESTING_IOMMU are not reported,
 * VFIO_IOMMU_DIRTY_PAGES and SVA bind are -ENOTTY (-ENOIOCTLCMD).
 */
import { IOMMU_READ, IOMMU_WRITE } from '../iommu-core/io-pgtable.ts';
import { EFAULT, EINVAL, ENODEV, ENOENT, ENOTTY, EOVERFLOW } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { encodeStruct, StructView } from '../uapi/struct.ts';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_dma_avail,
  vfio_iova_range,
} from '../uapi/vfio.ts';
import { UserArg } from '../vfio/user-arg.ts';
import { IOVA_MAX, PAGE } from './pages.ts';
import { iovaHoles, mapUserPages } from './ioas.ts';
import { Ioas, type IommufdCtx } from './objects.ts';

/** get_compat_ioas(): the compat IOAS, or -ENODEV when none is set (VFIO fails without a group). */
function compatIoas(ctx: IommufdCtx): Ioas | number {
  return ctx.vfioIoas ?? -ENODEV;
}

/**
 * iommufd_vfio_compat_ioas_create(): make a fresh IOAS the compat IOAS
 * unless one is set already (VFIO_GROUP_SET_CONTAINER with an iommufd). It
 * is an ordinary object: IOMMU_VFIO_IOAS GET finds it, DESTROY removes it.
 */
export function compatIoasCreate(ctx: IommufdCtx): number {
  const fail = ctx.allocFails('ioas');
  if (fail < 0) return fail;
  if (ctx.vfioIoas !== undefined) return 0;
  ctx.vfioIoas = ctx.add(new Ioas(ctx.host.platform.faults));
  return 0;
}

/** iommufd_vfio_compat_ioas_get_id(): the compat IOAS's ID (devices opened through a group attach to it), or -ENODEV. */
export function compatIoasId(ctx: IommufdCtx): number {
  const ioas = compatIoas(ctx);
  return typeof ioas === 'number' ? ioas : ioas.id;
}

/** iommufd_vfio_ioctl(). */
export function vfioCompatIoctl(ctx: IommufdCtx, request: number, arg: Uint8Array | number, proc: Process): number {
  switch (request) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    // Integer-argument ioctls take a number here; a buffer is refused as the type1 container refuses it.
    case VFIO_SET_IOMMU:
      return typeof arg === 'number' ? setIommu(ctx, arg) : -EINVAL;
    case VFIO_CHECK_EXTENSION:
      return typeof arg === 'number' ? checkExtension(ctx, arg) : -EINVAL;
  }
  if (request !== VFIO_IOMMU_GET_INFO && request !== VFIO_IOMMU_MAP_DMA && request !== VFIO_IOMMU_UNMAP_DMA) return -ENOTTY;
  const u = UserArg.of(arg, proc);
  if (typeof u === 'number') return u;
  if (request === VFIO_IOMMU_GET_INFO) return getInfo(ctx, u);
  if (request === VFIO_IOMMU_MAP_DMA) return mapDma(ctx, u, proc);
  return unmapDma(ctx, u);
}

/** iommufd_vfio_check_extension(): TYPE1, TYPE1v2 and UNMAP_ALL; DMA_CC_IOMMU asks the compat IOAS; nothing else. */
function checkExtension(ctx: IommufdCtx, ext: number): number {
  switch (ext) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_DMA_CC_IOMMU: {
      // iommufd_vfio_cc_iommu(): 1 unless an HWPT of the compat IOAS does not enforce cache coherency.
      const ioas = compatIoas(ctx);
      if (typeof ioas === 'number') return ioas;
      return ioas.hwpts.every((h) => h.enforceCacheCoherency) ? 1 : 0;
    }
    default:
      // VFIO_UPDATE_VADDR ("hard to see how this could be implemented safely"), VFIO_TYPE1_NESTING_IOMMU, ...
      return 0;
  }
}

/** iommufd_vfio_set_iommu(): TYPE1 is emulated by never mapping large IOPTEs, so any range can be unmapped. */
function setIommu(ctx: IommufdCtx, type: number): number {
  if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) return -EINVAL;
  const ioas = compatIoas(ctx);
  if (typeof ioas === 'number') return ioas;
  if (type === VFIO_TYPE1_IOMMU) return ioas.iopt.setLargePages(false);
  return 0;
}

function mapDma(ctx: IommufdCtx, u: UserArg, proc: Process): number {
  const b = u.read(0, vfio_iommu_type1_dma_map.size);
  if (typeof b === 'number') return -EFAULT;
  const m = new StructView(vfio_iommu_type1_dma_map, b);
  const flags = m.num('flags');
  if (m.num('argsz') < vfio_iommu_type1_dma_map.size || (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) return -EINVAL;
  let prot = 0;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = compatIoas(ctx);
  if (typeof ioas === 'number') return ioas;
  // Always at the given IOVA; charged as the context says (mm->locked_vm when opened as /dev/vfio/vfio).
  const at = mapUserPages(ctx, ioas, proc, m.big('vaddr'), m.big('size'), m.big('iova'), prot);
  if (at < 0) return at;
  ctx.host.platform.tracer.trace('iommufd.map', 'iommufd', { ioas: ioas.id, iova: at, length: Number(m.big('size')), uptr: Number(m.big('vaddr')), compat: true });
  return 0;
}

function unmapDma(ctx: IommufdCtx, u: UserArg): number {
  const minsz = vfio_iommu_type1_dma_unmap.size;
  const b = u.read(0, minsz);
  if (typeof b === 'number') return -EFAULT;
  const m = new StructView(vfio_iommu_type1_dma_unmap, b);
  // VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (obsoleted by iommufd dirty tracking) and _VADDR are not supported.
  if (m.num('argsz') < minsz || (m.num('flags') & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) return -EINVAL;
  const ioas = compatIoas(ctx);
  if (typeof ioas === 'number') return ioas;
  const iopt = ioas.iopt;
  const iova64 = m.big('iova');
  const size64 = m.big('size');
  let unmapped: number;
  let rc = 0;
  if ((m.num('flags') & VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
    if (iova64 !== 0n || size64 !== 0n) return -EINVAL;
    unmapped = iopt.unmapAll();
  } else {
    // iopt_unmap_iova(): zero length, or iova + size - 1 wrapping u64.
    if (size64 === 0n) return -EINVAL;
    const last64 = iova64 + size64 - 1n;
    if (last64 > 0xffff_ffff_ffff_ffffn) return -EOVERFLOW;
    if (iova64 > BigInt(IOVA_MAX)) unmapped = 0;
    else {
      const iova = Number(iova64);
      const last = last64 > BigInt(IOVA_MAX) ? IOVA_MAX : Number(last64);
      if (iopt.disableLargePages) {
        // TYPE1: cut the areas at both ends of the range first, so a part of a mapping can go.
        const c = iopt.cut(iova === 0 ? [last] : [last, iova - 1]);
        if (c < 0) return c;
      }
      ({ bytes: unmapped, rc } = unmapInOrder(iopt, iova, last));
    }
  }
  // The size unmapped is copied back even when iopt_unmap_iova failed part-way (only the
  // UNMAP_ALL argument check above returns before the copy).
  m.setBig('size', unmapped);
  ctx.host.platform.tracer.trace('iommufd.unmap', 'iommufd', { ioas: ioas.id, iova: iova64, requested: size64, length: unmapped, compat: true });
  return u.write(0, m.bytes) < 0 ? -EFAULT : rc;
}

/**
 * iopt_unmap_iova_range(): areas go one at a time from the lowest; the first
 * that reaches outside [iova, last] stops it with -ENOENT, the ones before it
 * staying unmapped (and counted).
 */
function unmapInOrder(iopt: Ioas['iopt'], iova: number, last: number): { bytes: number; rc: number } {
  let end = -1;
  let rc = 0;
  for (const n of iopt.areas.overlapping(iova, last)) {
    if (n.start < iova || n.last > last) {
      rc = -ENOENT;
      break;
    }
    end = n.last;
  }
  if (end < 0) return { bytes: 0, rc };
  const bytes = iopt.unmapRange(iova, end);
  return bytes < 0 ? { bytes: 0, rc: bytes } : { bytes, rc };
}

/**
 * iommufd_get_pagesizes(): the page sizes every domain of the IOAS supports
 * (all when there is none), sub-page sizes folded into PAGE_SIZE as
 * vfio_update_pgsize_bitmap() does, at least the IOVA alignment.
 */
function pageSizes(ioas: Ioas): bigint {
  const PAGE_MASK = ~BigInt(PAGE - 1) & 0xffff_ffff_ffff_ffffn;
  let bitmap = 0xffff_ffff_ffff_ffffn;
  for (const d of ioas.iopt.domains) bitmap &= d.driver.pgsizes.reduce((s, p) => s | BigInt(p), 0n);
  if ((bitmap & ~PAGE_MASK) !== 0n) bitmap = (bitmap & PAGE_MASK) | BigInt(PAGE);
  const align = BigInt(ioas.iopt.iovaAlignment);
  return bitmap > align ? bitmap : align;
}

/**
 * iommufd_vfio_iommu_get_info(): the page sizes and two capabilities, packed
 * without padding (unlike type1's vfio_info_cap_add): DMA_AVAIL (U32_MAX,
 * 12 bytes) then IOVA_RANGE (the holes of the reserved ranges). Each piece is
 * written only where argsz has room for it; argsz comes back as the size of
 * the whole chain and cap_offset is set only when all of it fitted.
 */
function getInfo(ctx: IommufdCtx, u: UserArg): number {
  const minsz = 16; // offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)
  const head = u.read(0, minsz);
  if (typeof head === 'number') return -EFAULT;
  const infoBytes = new Uint8Array(vfio_iommu_type1_info.size);
  infoBytes.set(head);
  const info = new StructView(vfio_iommu_type1_info, infoBytes);
  const argsz = info.num('argsz');
  if (argsz < minsz) return -EINVAL;
  const copySz = Math.min(argsz, vfio_iommu_type1_info.size);
  const ioas = compatIoas(ctx);
  if (typeof ioas === 'number') return ioas;
  info.setNum('flags', VFIO_IOMMU_INFO_PGSIZES);
  info.setBig('iova_pgsizes', pageSizes(ioas));
  info.setNum('cap_offset', 0);

  let total = vfio_iommu_type1_info.size;
  let lastCap = -1;
  for (const fill of [fillDmaAvail, fillIovaRanges]) {
    const size = fill(ioas, u, total, argsz > total ? argsz - total : 0);
    if (size < 0) return size;
    if (lastCap >= 0 && argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      if (u.write(lastCap + 4, next) < 0) return -EFAULT;
    }
    lastCap = total;
    total += size;
  }
  if (argsz >= total) info.setNum('cap_offset', vfio_iommu_type1_info.size);
  info.setNum('argsz', total);
  info.setNum('flags', VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
  return u.write(0, infoBytes.subarray(0, copySz)) < 0 ? -EFAULT : 0;
}

function fillDmaAvail(_ioas: Ioas, u: UserArg, at: number, avail: number): number {
  const def = vfio_iommu_type1_info_dma_avail;
  // iommufd's limit is the memory cgroup's, not a count: U32_MAX (s390 QEMU reads it).
  const cap = encodeStruct(def, { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 0, avail: 0xffff_ffff });
  if (avail >= def.size && u.write(at, cap) < 0) return -EFAULT;
  return def.size;
}

function fillIovaRanges(ioas: Ioas, u: UserArg, at: number, avail: number): number {
  const hdr = vfio_iommu_type1_info_cap_iova_range;
  const holes = iovaHoles(ioas);
  const sizeFor = (n: number): number => hdr.size + n * vfio_iova_range.size;
  for (let i = 0; i < holes.length; i++) {
    if (avail < sizeFor(i + 1)) continue;
    const r = encodeStruct(vfio_iova_range, { start: holes[i]![0], end: holes[i]![1] });
    if (u.write(at + sizeFor(i), r) < 0) return -EFAULT;
  }
  if (avail >= sizeFor(holes.length)) {
    const h = encodeStruct(hdr, { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0, nr_iovas: holes.length, reserved: 0 });
    if (u.write(at, h) < 0) return -EFAULT;
  }
  return sizeFor(holes.length);
}
