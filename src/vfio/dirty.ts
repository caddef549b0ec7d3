import { EFAULT, EINVAL, ENOMEM } from '../uapi/errno.ts';
import type { Host } from '../host/host.ts';
import type { Process } from '../host/process.ts';
import { DIRTY_BITMAP_PAGES_MAX, DIRTY_BITMAP_SIZE_MAX } from '../uapi/vfio.ts';
import { injectedErrno } from './faults.ts';
import type { VfioDma, VfioIommu } from './type1.ts';

/**
 * Dirty page tracking of type1 (VFIO_IOMMU_DIRTY_PAGES and UNMAP_DMA with
 * GET_DIRTY_BITMAP). Type1 has no view of the IOMMU's dirty bits: while
 * tracking, every page of a mapping that an IOMMU-backed device could write
 * is reported dirty (update_user_bitmap with num_non_pinned_groups != 0),
 * exactly as Linux does. The per-mapping bitmap therefore carries no state
 * beyond "allocated", which keeps its ENOMEM/EINVAL rules.
 */

/** vfio_dma_bitmap_alloc(). */
export function allocDmaBitmap(iommu: VfioIommu, dma: VfioDma): number {
  if (dma.size / iommu.minPageSize > DIRTY_BITMAP_PAGES_MAX) return -EINVAL;
  const r = injectedErrno(iommu.host.platform.faults, 'vfio.bitmap_alloc', ENOMEM, { iova: dma.iova });
  if (r < 0) return r;
  dma.bitmap = true;
  return 0;
}

/** VFIO_IOMMU_DIRTY_PAGES_FLAG_START: allocate every bitmap (all or nothing). */
export function dirtyStart(iommu: VfioIommu): number {
  if (iommu.dirtyTracking) return 0;
  const done: VfioDma[] = [];
  for (const dma of iommu.dmas) {
    const r = allocDmaBitmap(iommu, dma);
    if (r < 0) {
      for (const d of done) d.bitmap = false;
      return r;
    }
    done.push(dma);
  }
  iommu.dirtyTracking = true;
  return 0;
}

/** VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP. */
export function dirtyStop(iommu: VfioIommu): void {
  if (!iommu.dirtyTracking) return;
  iommu.dirtyTracking = false;
  for (const dma of iommu.dmas) dma.bitmap = false;
}

/** verify_bitmap_size(): npages and the user's bitmap bytes. */
export function verifyBitmapSize(npages: bigint, bitmapSize: bigint): number {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > BigInt(DIRTY_BITMAP_SIZE_MAX)) return -EINVAL;
  if (bitmapSize < ((npages + 63n) / 64n) * 8n) return -EINVAL;
  return 0;
}

/** __ffs() of a u64 page size; -1 for 0. */
export function ffs64(v: bigint): number {
  if (v === 0n) return -1;
  let n = 0;
  while (((v >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** access_ok(): the range lies below the top of user space (TASK_SIZE_MAX). */
export function accessOk(host: Host, addr: bigint, size: bigint): boolean {
  return addr + size <= host.platform.cpu.taskSizeMax;
}

/** The bytes of the user bitmap that writing these DMAs' bits touches: [first, end). */
function touchedBytes(dmas: readonly VfioDma[], baseIova: number, pgsize: number): [number, number] {
  const first = dmas[0]!;
  const last = dmas[dmas.length - 1]!;
  const startBit = (first.iova - baseIova) / pgsize;
  const endBit = (last.iova + last.size - baseIova) / pgsize;
  return [Math.floor(startBit / 64) * 8, Math.ceil(endBit / 64) * 8];
}

/**
 * Check the user bitmap can be written where these DMAs' bits go, without
 * changing it (read, then write the same bytes back), so a bad pointer is
 * -EFAULT before anything is unmapped.
 */
export function probeBitmap(proc: Process, data: number, dmas: readonly VfioDma[], baseIova: number, pgsize: number): number {
  if (dmas.length === 0) return 0;
  const [from, to] = touchedBytes(dmas, baseIova, pgsize);
  for (let off = from; off < to; off += 1 << 16) {
    const len = Math.min(1 << 16, to - off);
    const cur = proc.copyFromUser(data + off, len);
    if (typeof cur === 'number') return -EFAULT;
    if (proc.copyToUser(data + off, cur) < 0) return -EFAULT;
  }
  return 0;
}

/**
 * update_user_bitmap(): write one DMA's bits at their place in the user's
 * bitmap (bit i = page i from `baseIova`), OR-ing with the u64 word it
 * shares with the previous DMA, and zeroing up to the next u64 boundary.
 */
export function writeDmaBits(iommu: VfioIommu, proc: Process, data: number, baseIova: number, dma: VfioDma, pgsize: number): number {
  const nbits = dma.size / pgsize;
  const bitOffset = (dma.iova - baseIova) / pgsize;
  const copyOffset = Math.floor(bitOffset / 64);
  const shift = bitOffset % 64;
  const buf = new Uint8Array(Math.ceil((nbits + shift) / 64) * 8);
  if (iommu.numNonPinnedGroups > 0 && dma.runs.length > 0) setBits(buf, shift, nbits);
  const at = data + copyOffset * 8;
  if (shift !== 0) {
    const left = proc.copyFromUser(at, 8);
    if (typeof left === 'number') return -EFAULT;
    for (let i = 0; i < 8; i++) buf[i] = buf[i]! | left[i]!;
  }
  return proc.copyToUser(at, buf) < 0 ? -EFAULT : 0;
}

function setBits(buf: Uint8Array, from: number, n: number): void {
  let i = from;
  const end = from + n;
  while (i < end && i % 8 !== 0) {
    buf[i >> 3] = buf[i >> 3]! | (1 << (i & 7));
    i++;
  }
  const wholeEnd = end - (end % 8);
  if (i < wholeEnd) {
    buf.fill(0xff, i >> 3, wholeEnd >> 3);
    i = wholeEnd;
  }
  for (; i < end; i++) buf[i >> 3] = buf[i >> 3]! | (1 << (i & 7));
}

/**
 * vfio_iova_dirty_bitmap(): the range must not bisect a mapping; every
 * mapping inside it reports its bits.
 */
export function iovaDirtyBitmap(iommu: VfioIommu, proc: Process, data: number, iova: number, size: number, pgsize: number): number {
  const head = iommu.dmas.find(iova, 1);
  if (head !== undefined && head.iova !== iova) return -EINVAL;
  const tail = iommu.dmas.find(iova + size - 1, 0);
  if (tail !== undefined && tail.iova + tail.size !== iova + size) return -EINVAL;
  const list: VfioDma[] = [];
  for (let d = iommu.dmas.firstEndingAfter(iova); d !== undefined && d.iova <= iova + size - 1; d = iommu.dmas.next(d)) {
    if (d.iova >= iova) list.push(d);
  }
  const p = probeBitmap(proc, data, list, iova, pgsize);
  if (p < 0) return p;
  for (const d of list) {
    const r = writeDmaBits(iommu, proc, data, iova, d, pgsize);
    if (r < 0) return r;
  }
  return 0;
}
