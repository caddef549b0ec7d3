import type { PageTableBuilder } from '../iommu-core/io-pgtable.ts';
import type { PhysMem } from '../memory/phys-mem.ts';
import { EINVAL, ENOMEM } from '../uapi/errno.ts';
import type { VmaFile } from './file-pages.ts';
import { Mm, protToIommu, PROT_WRITE, type Vma, type VmaIo } from './mm.ts';

const PAGE = 4096;

/** How a child's copies of file and I/O areas hold their files again (dup_mmap's get_file). */
export interface ForkDup {
  io(io: VmaIo): VmaIo;
  file(f: VmaFile): VmaFile;
}

/**
 * dup_mmap() for fork: a new mm over `pgtable` with a copy of every area.
 * Shared file and I/O areas get a new hold on their file and fault their
 * pages in themselves, as Linux leaves their PTEs uncopied (I/O pages are
 * reached by address). Private pages are shared copy-on-write,
 * write-protected on both sides (copy_present_pte), except a page the parent
 * may have pinned (an exclusive page with a pin: folio_maybe_dma_pinned),
 * which the child gets a copy of at once (copy_present_page), so the pinned
 * page stays the parent's and the parent's later writes still reach the
 * device. The child starts with nothing locked or pinned. The parent's
 * secondary TLBs (SVA) are told of the write-protection. -ENOMEM with the
 * child torn down again.
 */
export function forkMm(parent: Mm, pgtable: PageTableBuilder, dup: ForkDup): Mm | number {
  if (!parent.alive) return -EINVAL;
  const ps = parent.forkState();
  const child = new Mm(parent.mem, parent.pages, pgtable, ps.opts);
  child.pinPoint = parent.pinPoint;
  const cs = child.forkState();
  const ios = new Map<VmaIo, VmaIo>();
  const files = new Map<VmaFile, VmaFile>();
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of ps.vmas) {
    const c: Vma = { ...v };
    if (v.io !== undefined) {
      if (!ios.has(v.io)) ios.set(v.io, dup.io(v.io));
      c.io = ios.get(v.io)!;
    }
    if (v.file !== undefined) {
      if (!files.has(v.file)) {
        const f = dup.file(v.file);
        f.cache.addMapper(child);
        files.set(v.file, f);
      }
      c.file = files.get(v.file)!;
    }
    cs.vmas.push(c);
    if (v.io !== undefined || v.file?.shared === true) continue;
    for (let a = v.start; a < v.end; a += v.pageSize) {
      const head = ps.resident.get(a);
      if (head === undefined) continue;
      const exclusivePinned = !ps.cow.has(a) && parent.pages.pinned(head) > 0;
      const r = exclusivePinned ? copyIn(child, a, v, head) : shareCow(parent, child, a, v, head);
      if (r < 0) {
        child.teardown();
        return r;
      }
      lo = Math.min(lo, a);
      hi = Math.max(hi, a + v.pageSize);
    }
  }
  if (lo < hi) for (const n of ps.notifiers) n.invalidateRange(lo, hi);
  return child;
}

/** One private unit shared copy-on-write: the child maps it read-only, the parent's PTE loses write. */
function shareCow(parent: Mm, child: Mm, a: number, v: Vma, head: number): number {
  const ro = protToIommu(v.prot & ~PROT_WRITE);
  const r = child.pgtable.map(a, head, v.pageSize, ro);
  if (r < 0) return r;
  parent.pages.get(head);
  const ps = parent.forkState();
  const cs = child.forkState();
  cs.resident.set(a, head);
  cs.cow.add(a);
  if (!ps.cow.has(a)) {
    ps.cow.add(a);
    parent.pgtable.unmap(a, v.pageSize);
    parent.pgtable.map(a, head, v.pageSize, ro);
  }
  return 0;
}

/** copy_present_page(): the child gets its own copy of the parent's page at `a`. */
function copyIn(child: Mm, a: number, v: Vma, from: number): number {
  const fresh = child.pages.alloc(Math.log2(v.pageSize / PAGE));
  if (fresh === undefined) return -ENOMEM;
  copyRun(child.mem, from, fresh, v.pageSize);
  const r = child.pgtable.map(a, fresh, v.pageSize, protToIommu(v.prot));
  if (r < 0) {
    child.pages.put(fresh);
    return r;
  }
  child.forkState().resident.set(a, fresh);
  return 0;
}

/** Copy a page run into a fresh (zeroed) one, 64 KiB at a time, skipping zero chunks of sparse memory. */
export function copyRun(mem: PhysMem, from: number, to: number, bytes: number): void {
  const chunk = new Uint8Array(Math.min(bytes, 0x1_0000));
  for (let off = 0; off < bytes; off += chunk.length) {
    mem.readInto(from + off, chunk);
    if (chunk.some((b) => b !== 0)) mem.writeFrom(to + off, chunk);
  }
}
