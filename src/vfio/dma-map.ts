import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '../iommu-core/io-pgtable.ts';
import { EEXIST, EFAULT, EINVAL, ENOENT, ENOMEM, ENOSPC, EOVERFLOW } from '../uapi/errno.ts';
import { accountLockedVm, contiguousRuns, pinUserPages, unpinUserPages } from '../host/pin.ts';
import type { Process } from '../host/process.ts';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_MAP_FLAG_WRITE } from '../uapi/vfio.ts';
import { allocDmaBitmap } from './dirty.ts';
import { injectedErrno } from './faults.ts';
import { iovaValid } from './iova-list.ts';
import type { DmaRun, VfioDma, VfioIommu } from './type1.ts';

const PAGE = 4096;

const U64_LIMIT = 1n << 64n;
/** vfio_batch: pages pinned per pin_user_pages call (PAGE_SIZE / sizeof(struct page *)). */
const BATCH_PAGES = 512;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * vfio_dma_do_map(): the checks in the kernel's order, then pin and map.
 * `vaddr`, `iova` and `size` are the struct's u64s. 0 or -errno; a failure
 * leaves no pins, no IOMMU entries and no locked-memory charge behind.
 */
export function doMap(iommu: VfioIommu, proc: Process, flags: number, vaddr: bigint, iova: bigint, size: bigint): number {
  if (size === 0n) return -EINVAL;
  // check_add_overflow(iova, size - 1) and (vaddr, size - 1): a range wrapping u64 is -EOVERFLOW.
  if (iova + size - 1n >= U64_LIMIT || vaddr + size - 1n >= U64_LIMIT) return -EOVERFLOW;
  const setVaddr = (flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
  let prot = 0;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if ((prot !== 0 && setVaddr) || (prot === 0 && !setVaddr)) return -EINVAL;
  const mask = BigInt(iommu.minPageSize - 1);
  if (((size | iova | vaddr) & mask) !== 0n) return -EINVAL;
  // IOVAs past 2^53 cannot be mapped here: no mapping can exist there and none is valid.
  const addressable = iova + size <= SAFE;
  const dma = addressable ? iommu.dmas.find(Number(iova), Number(size)) : undefined;
  if (setVaddr) {
    if (dma === undefined) return -ENOENT;
    if (!dma.vaddrInvalid || dma.iova !== Number(iova) || dma.size !== Number(size)) return -EINVAL;
    if (vaddr + size > SAFE) return -EINVAL;
    const r = changeDmaOwner(dma, proc);
    if (r < 0) return r;
    dma.vaddr = Number(vaddr);
    dma.vaddrInvalid = false;
    iommu.vaddrInvalidCount--;
    return 0;
  }
  if (dma !== undefined) return -EEXIST;
  if (iommu.dmaAvail === 0) return -ENOSPC;
  if (!addressable || !iovaValid(iommu.iovaList, Number(iova), Number(iova + size - 1n))) return -EINVAL;
  if (injectedErrno(iommu.host.platform.faults, 'vfio.dma_alloc', ENOMEM, { iova: Number(iova) }) < 0) return -ENOMEM;
  // A vaddr beyond what a process can map cannot be pinned.
  const va = vaddr + size <= SAFE ? Number(vaddr) : -1;
  const d: VfioDma = {
    iova: Number(iova),
    size: 0,
    vaddr: va,
    prot,
    owner: proc,
    pinMm: proc.mm,
    lockedPages: 0,
    pins: [],
    runs: [],
    vaddrInvalid: false,
    bitmap: false,
  };
  iommu.dmaAvail--;
  let r = pinMapDma(iommu, d, Number(size));
  if (r === 0 && iommu.dirtyTracking) r = allocDmaBitmap(iommu, d);
  if (r < 0) {
    unmapUnpin(iommu, d);
    iommu.dmaAvail++;
    return r;
  }
  iommu.dmas.insert(d);
  iommu.host.platform.tracer.trace('vfio.map', 'vfio', { iova: d.iova, size: d.size, vaddr: d.vaddr, runs: d.runs.length });
  return 0;
}

/**
 * vfio_pin_map_dma(): pin the range batch by batch, gather physically
 * contiguous runs (a run may span batches), and for each run charge locked
 * memory and map it with one iommu_map() per domain. dma.size grows as runs
 * are mapped; on error the caller unwinds with unmapUnpin().
 *
 * Pages of a VM_PFNMAP area (a BAR mmap) come from follow_fault_pfn instead,
 * as vaddr_get_pfns falls back to it when pin_user_pages refuses the area:
 * they are reserved pfns, so they are mapped without a pin or a locked-memory
 * charge, and vfio_pin_pages_remote ends a run where reserved-ness changes (a
 * range of RAM then BAR maps as two runs). pin_user_pages stops at such an
 * area and returns the pages before it, so a batch ends there too.
 */
function pinMapDma(iommu: VfioIommu, dma: VfioDma, size: number): number {
  if (dma.vaddr < 0) return -EFAULT;
  const total = size / PAGE;
  const write = (dma.prot & IOMMU_WRITE) !== 0;
  const faults = iommu.host.platform.faults;
  const noMerge = iommu.mod.disableHugepages;
  const batch = noMerge ? 1 : BATCH_PAGES;
  const mm = dma.pinMm;
  let pending: DmaRun | undefined;
  // Extend the pending run with [pa, pa + count pages) at page `at`, or map it and start a new one.
  const add = (at: number, pa: number, count: number, mmio: boolean): number => {
    if (pending !== undefined && !noMerge && pending.mmio === mmio && pending.pa + pending.size === pa) {
      pending.size += count * PAGE;
      return 0;
    }
    if (pending !== undefined) {
      const r = mapRun(iommu, dma, pending);
      if (r < 0) return r;
    }
    pending = { iova: dma.iova + at * PAGE, pa, size: count * PAGE, mmio };
    return 0;
  };
  for (let done = 0; done < total; ) {
    const va = dma.vaddr + done * PAGE;
    const io = mm.followIoPfn(va, write);
    if (io !== undefined) {
      if (typeof io === 'number') return io;
      const n = Math.min(io.pages, total - done, batch);
      const r = add(done, io.pa, n, true);
      if (r < 0) return r;
      done += n;
      continue;
    }
    const n = mm.pagesBeforeIo(va, Math.min(batch, total - done));
    const inj = injectedErrno(faults, 'vfio.pin', ENOMEM, { vaddr: va, pages: n });
    if (inj < 0) return inj;
    const pinned = pinUserPages(mm, va, n, write);
    if (typeof pinned === 'number') return pinned;
    dma.pins.push(pinned);
    iommu.mod.counters.pinnedPages.value += n;
    for (const [first, count] of contiguousRuns(pinned)) {
      const r = add(done + first, pinned.pas[first]!, count, false);
      if (r < 0) return r;
    }
    done += n;
  }
  return pending === undefined ? 0 : mapRun(iommu, dma, pending);
}

/** Charge one run to RLIMIT_MEMLOCK (vfio_lock_acct; reserved pfns are not counted) and map it into every domain (vfio_iommu_map). */
function mapRun(iommu: VfioIommu, dma: VfioDma, run: DmaRun): number {
  const npages = run.mmio === true ? 0 : run.size / PAGE;
  if (npages > 0) {
    const acct = accountLockedVm(dma.owner, npages, true);
    if (acct < 0) return acct;
    dma.lockedPages += npages;
  }
  const r = iommuMap(iommu, run, dma.prot);
  if (r < 0) {
    if (npages > 0) accountLockedVm(dma.owner, npages, false);
    dma.lockedPages -= npages;
    return r;
  }
  dma.runs.push(run);
  dma.size += run.size;
  return 0;
}

/** vfio_iommu_map(): one iommu_map() of the run per domain, unwound on failure. */
function iommuMap(iommu: VfioIommu, run: DmaRun, prot: number): number {
  const faults = iommu.host.platform.faults;
  for (let i = 0; i < iommu.domains.length; i++) {
    let r = injectedErrno(faults, 'vfio.iommu_map', ENOMEM, { iova: run.iova, size: run.size });
    if (r === 0) {
      iommu.mod.counters.mapCalls.value++;
      r = iommu.domains[i]!.domain.map(run.iova, run.pa, run.size, prot | IOMMU_CACHE);
    }
    if (r < 0) {
      for (let j = 0; j < i; j++) iommu.domains[j]!.domain.unmap(run.iova, run.size);
      return r;
    }
  }
  return 0;
}

/**
 * vfio_unmap_unpin(): remove the DMA's runs from every domain (the IOTLB is
 * flushed before iommu_unmap returns), then unpin its pages and uncharge its
 * locked memory. Device-memory runs hold no pin and no charge (put_pfn skips
 * reserved pfns), so only the IOMMU entries go for them.
 */
export function unmapUnpin(iommu: VfioIommu, dma: VfioDma): void {
  for (const d of iommu.domains) {
    for (const run of dma.runs) {
      iommu.mod.counters.unmapCalls.value++;
      d.domain.unmap(run.iova, run.size);
    }
  }
  for (const p of dma.pins) {
    unpinUserPages(dma.pinMm, p);
    iommu.mod.counters.pinnedPages.value -= p.count;
  }
  if (dma.lockedPages > 0) accountLockedVm(dma.owner, dma.lockedPages, false);
  dma.pins = [];
  dma.runs = [];
  dma.lockedPages = 0;
}

/** vfio_remove_dma(). */
export function removeDma(iommu: VfioIommu, dma: VfioDma): void {
  unmapUnpin(iommu, dma);
  iommu.dmas.remove(dma);
  dma.bitmap = false;
  if (dma.vaddrInvalid) iommu.vaddrInvalidCount--;
  iommu.dmaAvail++;
  iommu.host.platform.tracer.trace('vfio.unmap', 'vfio', { iova: dma.iova, size: dma.size });
}

/** vfio_change_dma_owner(): a MAP with VADDR from another process moves the locked-memory charge to it. */
function changeDmaOwner(dma: VfioDma, proc: Process): number {
  if (proc.mm === dma.owner.mm) return 0;
  const r = accountLockedVm(proc, dma.lockedPages, true);
  if (r < 0) return r;
  if (dma.owner.alive) accountLockedVm(dma.owner, dma.lockedPages, false);
  dma.owner = proc;
  return 0;
}
