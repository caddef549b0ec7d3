import { EFAULT, EINVAL, ENOMEM } from '../uapi/errno.ts';
import type { Mm } from './mm.ts';
import type { Process } from './process.ts';

const PAGE = 4096;

/** Pages pinned by one pin_user_pages() call: the physical address of each 4 KiB page and the run it belongs to. */
export interface PinnedPages {
  va: number;
  count: number;
  pas: Float64Array;
  heads: Float64Array;
}

/**
 * pin_user_pages(FOLL_LONGTERM): fault in and pin `count` pages from `va`.
 * Each page takes a reference on its run (so it survives munmap and exit
 * until unpinned) and counts in mm->pinned_vm. All or nothing: on failure
 * nothing stays pinned and the errno says why (-EFAULT for an address or
 * access the VMA refuses, -ENOMEM when memory runs out). The 'host.pin'
 * injection point is checked once per batch (a page, or the rest of a huge
 * page): an injected failure unwinds the batches already pinned.
 */
export function pinUserPages(mm: Mm, va: number, count: number, write: boolean): PinnedPages | number {
  if (!Number.isSafeInteger(va) || va % PAGE !== 0 || !Number.isSafeInteger(count) || count <= 0) return -EINVAL;
  const pas = new Float64Array(count);
  const heads = new Float64Array(count);
  let i = 0;
  while (i < count) {
    const a = va + i * PAGE;
    const pt = mm.pinPoint;
    const inj = pt === undefined ? undefined : pt.check(pt.armed ? { vaddr: a, pinned: i } : undefined);
    if (inj !== undefined && inj.kind === 'fail') {
      unpinPageHeads(mm, heads, 0, i);
      return inj.errno === EFAULT ? -EFAULT : -ENOMEM;
    }
    // FOLL_LONGTERM: a copy-on-write page is unshared first (gup_must_unshare), so the pin is this mm's own page.
    const r = mm.faultIn(a, write, false, true);
    const v = r < 0 ? undefined : mm.findVma(a);
    const head = v === undefined ? undefined : mm.headOf(a);
    if (v === undefined || head === undefined) {
      unpinPageHeads(mm, heads, 0, i);
      return r === -ENOMEM ? -ENOMEM : -EFAULT;
    }
    // Every 4 KiB page of the same backing run (a huge page) at once: one lookup, one refcount update.
    const unit = Math.floor(a / v.pageSize) * v.pageSize;
    const n = Math.min(count - i, (unit + v.pageSize - a) / PAGE);
    mm.pages.pin(head, n);
    const first = head + (a - unit);
    for (let k = 0; k < n; k++) {
      pas[i + k] = first + k * PAGE;
      heads[i + k] = head;
    }
    i += n;
    mm.pinnedVm += n;
  }
  return { va, count, pas, heads };
}

/** Drop the references of pages [from, from+n) whose runs `heads` gives, batching pages of one run (unpin_user_pages). */
export function unpinPageHeads(mm: Mm, heads: Float64Array, from: number, n: number): void {
  let k = from;
  while (k < from + n) {
    const head = heads[k]!;
    let run = 1;
    while (k + run < from + n && heads[k + run] === head) run++;
    mm.pages.unpin(head, run);
    k += run;
  }
  mm.pinnedVm -= n;
}

/** unpin_user_pages() for pages [from, from+n) of a pin. */
export function unpinUserPages(mm: Mm, pinned: PinnedPages, from = 0, n = pinned.count - from): void {
  unpinPageHeads(mm, pinned.heads, from, n);
}

/** Split pinned pages into physically contiguous runs: [first page index, page count]. */
export function contiguousRuns(pinned: PinnedPages, from = 0, n = pinned.count - from): [number, number][] {
  return physicalRuns(from, n, (i) => pinned.pas[i]!);
}

/** Pages [from, from+n), `paOf` giving each one's physical address, as physically contiguous runs: [first page index, page count]. */
export function physicalRuns(from: number, n: number, paOf: (index: number) => number): [number, number][] {
  const runs: [number, number][] = [];
  if (n <= 0) return runs;
  let start = from;
  let prev = paOf(from);
  for (let i = from + 1; i < from + n; i++) {
    const pa = paOf(i);
    if (pa !== prev + PAGE) {
      runs.push([start, i - start]);
      start = i;
    }
    prev = pa;
  }
  runs.push([start, from + n - start]);
  return runs;
}

/**
 * Charge (or uncharge) `npages` to the process's locked memory, as
 * vfio_lock_acct does: over RLIMIT_MEMLOCK without CAP_IPC_LOCK is -ENOMEM
 * and charges nothing.
 */
export function accountLockedVm(proc: Process, npages: number, charge: boolean): number {
  const mm = proc.mm;
  if (!charge) {
    mm.lockedVm = Math.max(0, mm.lockedVm - npages);
    return 0;
  }
  if (!proc.capIpcLock && (mm.lockedVm + npages) * PAGE > proc.memlockLimit) return -ENOMEM;
  mm.lockedVm += npages;
  return 0;
}
