/**
 * IOAS ioctls and IOMMU_OPTION (drivers/iommu/iommufd/ioas.c): each takes
 * the decoded struct (already size-checked by the dispatcher) and returns 0
 * (after `respond`) or -errno, changing nothing on error.
 */
import { EBADF, EBUSY, EFAULT, EINVAL, EMSGSIZE, ENOENT, ENOMEM, EOPNOTSUPP, EOVERFLOW, EPERM } from '../uapi/errno.ts';
import { accountLockedVm } from '../host/pin.ts';
import type { Process } from '../host/process.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../iommu-core/io-pgtable.ts';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  iommu_iova_range,
  type iommu_ioas_alloc,
  type iommu_ioas_allow_iovas,
  type iommu_ioas_change_process,
  type iommu_ioas_copy,
  type iommu_ioas_map_file,
  type iommu_ioas_iova_ranges,
  type iommu_ioas_map,
  type iommu_ioas_unmap,
  type iommu_option,
} from '../uapi/iommufd.ts';
import { encodeStruct, StructView, U64_MAX } from '../uapi/struct.ts';
import type { Span } from './io-pagetable.ts';
import { IOVA_MAX, PAGE, Pages } from './pages.ts';
import { Ioas, type IommufdCtx } from './objects.ts';

type View<D> = D extends { fields: Readonly<Record<infer F extends string, unknown>> } ? StructView<F> : never;
export type Respond = () => number;

/** ULONG_MAX on a 64-bit kernel. */
const ULONG_MAX = U64_MAX;
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

export function ioasAlloc(ctx: IommufdCtx, v: View<typeof iommu_ioas_alloc>, respond: Respond): number {
  if (v.num('flags') !== 0) return -EOPNOTSUPP;
  const fail = ctx.allocFails('ioas');
  if (fail < 0) return fail;
  const ioas = ctx.add(new Ioas(ctx.host.platform.faults));
  v.setNum('out_ioas_id', ioas.id);
  const r = respond();
  if (r < 0) ctx.remove(ioas);
  return r;
}

function getIoas(ctx: IommufdCtx, id: number): Ioas | number {
  return ctx.get<Ioas>(id, 'ioas');
}

/** A u64 from user space as an IOVA or length this emulator represents, or undefined. */
function fit(v: bigint): number | undefined {
  return v <= BigInt(IOVA_MAX) ? Number(v) : undefined;
}

/**
 * The checks IOAS_MAP and IOAS_MAP_FILE share, in their order: unknown
 * flags -EOPNOTSUPP, an iova or length of ULONG_MAX -EOVERFLOW, neither
 * READABLE nor WRITEABLE -EINVAL.
 */
function checkMapArgs(flags: number, iova64: bigint, len64: bigint): number {
  if ((flags & ~MAP_FLAGS) !== 0) return -EOPNOTSUPP;
  if (iova64 >= ULONG_MAX || len64 >= ULONG_MAX) return -EOVERFLOW;
  if ((flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) return -EINVAL;
  return 0;
}

function protOf(flags: number): number {
  let prot = 0;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

export function ioasMap(ctx: IommufdCtx, v: View<typeof iommu_ioas_map>, respond: Respond, proc: Process): number {
  const flags = v.num('flags');
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const iova64 = v.big('iova');
  const len64 = v.big('length');
  const c = checkMapArgs(flags, iova64, len64);
  if (c < 0) return c;
  const ioas = getIoas(ctx, v.num('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const at = mapUserPages(ctx, ioas, proc, v.big('user_va'), len64, fixed ? iova64 : undefined, protOf(flags));
  if (at < 0) return at;
  v.setBig('iova', at);
  const r = respond();
  if (r < 0) ioas.iopt.unmapRange(at, at + Number(len64) - 1);
  else ctx.host.platform.tracer.trace('iommufd.map', 'iommufd', { ioas: ioas.id, iova: at, length: Number(len64), uptr: Number(v.big('user_va')), compat: false });
  return r;
}

/**
 * iopt_map_user_pages(): map `len64` bytes of the caller's memory from
 * `uptr64` at `iova64` (FIXED_IOVA) or at an IOVA the allocator picks, with
 * `prot` (IOMMU_READ/IOMMU_WRITE). Charged as the context says (none with
 * CAP_IPC_LOCK). The IOVA, or -errno with nothing changed.
 */
export function mapUserPages(ctx: IommufdCtx, ioas: Ioas, proc: Process, uptr64: bigint, len64: bigint, iova64: bigint | undefined, prot: number): number {
  // iopt_alloc_user_pages(): the user range wrapping -EOVERFLOW, then (iopt_alloc_pages) a zero length or one
  // past SIZE_MAX - PAGE_SIZE -EINVAL.
  if (uptr64 + len64 > ULONG_MAX) return -EOVERFLOW;
  if (len64 === 0n || len64 > ULONG_MAX - BigInt(PAGE)) return -EINVAL;
  const uptr = fit(uptr64);
  const length = fit(len64);
  if (uptr === undefined || length === undefined || uptr + length > 2 ** 57) {
    // Memory no process has (past 2^57, or more bytes than this emulator can count). Linux takes user pages
    // lazily, so iopt_alloc_area_pages and iopt_check_iova answer first (IoPagetable.checkIova; without
    // FIXED_IOVA only the length's alignment); only pinning the pages then fails.
    if (iova64 !== undefined) {
      const r = ioas.iopt.checkIova(iova64, len64);
      if (r < 0) return r;
    } else if (len64 % BigInt(ioas.iopt.iovaAlignment) !== 0n) {
      return -EINVAL;
    }
    return -EFAULT;
  }
  const mode = proc.capIpcLock ? 'none' : ctx.accountMode;
  const pages = new Pages(proc, uptr, length, (prot & IOMMU_WRITE) !== 0, mode, ctx.host.platform.faults);
  return ioas.iopt.mapPieces([{ pages, startByte: uptr - pages.va, length }], iova64, prot);
}

/**
 * iommufd_ioas_map_file(): flags as IOAS_MAP (-EOPNOTSUPP), iova or length
 * of ULONG_MAX -EOVERFLOW, no READABLE/WRITEABLE -EINVAL, the IOAS
 * (-ENOENT); then iopt_map_file_pages(): length 0 -EINVAL, start + length
 * wrapping -EOVERFLOW, no such fd -EBADF. Any file is taken; only pinning
 * (now if the IOAS has a domain, else when one comes) needs a memfd and the
 * range within its size (memfd_pin_folios: -EINVAL). The pages hold the
 * file and are charged to the caller.
 */
export function ioasMapFile(ctx: IommufdCtx, v: View<typeof iommu_ioas_map_file>, respond: Respond, proc: Process): number {
  const flags = v.num('flags');
  const iova64 = v.big('iova');
  const len64 = v.big('length');
  const c = checkMapArgs(flags, iova64, len64);
  if (c < 0) return c;
  const ioas = getIoas(ctx, v.num('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const start64 = v.big('start');
  if (len64 === 0n) return -EINVAL;
  if (start64 + len64 - 1n > ULONG_MAX) return -EOVERFLOW;
  const file = proc.file(v.num('fd'));
  if (file === undefined) return -EBADF;
  const start = fit(start64);
  const length = fit(len64);
  if (start === undefined || length === undefined || start + length > IOVA_MAX) return -EOVERFLOW;
  const iova = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0 ? iova64 : undefined;
  const files = ctx.host.files;
  files.get(file);
  const mode = proc.capIpcLock ? 'none' : ctx.accountMode;
  const prot = protOf(flags);
  const pages = new Pages(proc, start, length, (prot & IOMMU_WRITE) !== 0, mode, ctx.host.platform.faults, { kind: 'file', file, release: () => files.put(file) });
  const at = ioas.iopt.mapPieces([{ pages, startByte: start - pages.va, length }], iova, prot);
  if (at < 0) {
    pages.released();
    return at;
  }
  v.setBig('iova', at);
  const r = respond();
  if (r < 0) ioas.iopt.unmapRange(at, at + length - 1);
  else ctx.host.platform.tracer.trace('iommufd.map', 'iommufd', { ioas: ioas.id, iova: at, length, uptr: start, compat: false });
  return r;
}

/**
 * iommufd_ioas_change_process(): every area of every IOAS must map a file
 * (-EINVAL otherwise; nothing changes); the pinned pages of each pages
 * object whose owner is not the caller (need_charge_update: the mm, and in
 * user mode also the user_struct) are charged to the caller first, per
 * accounting mode (charge_current: -ENOMEM over its RLIMIT_MEMLOCK, nothing
 * changed), then uncharged from the old owner; every pages object then
 * belongs to the caller (change_mm). As in Linux, pages the old owner pinned
 * without accounting (CAP_IPC_LOCK) keep their pinned_vm on the old mm.
 */
export function ioasChangeProcess(ctx: IommufdCtx, v: View<typeof iommu_ioas_change_process>, proc: Process): number {
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const all = new Set<Pages>();
  for (const o of ctx.objects.values()) {
    if (!(o instanceof Ioas)) continue;
    for (const n of o.iopt.areas.all()) {
      if (n.value.pages.source.kind !== 'file') return -EINVAL;
      all.add(n.value.pages);
    }
  }
  const moving = [...all].filter((p) => p.accountMode !== 'none' && (p.proc.mm !== proc.mm || (p.accountMode === 'user' && p.proc.user !== proc.user)));
  let user = 0;
  let mm = 0;
  for (const p of moving) {
    if (p.accountMode === 'user') user += p.npinned;
    else mm += p.npinned;
  }
  if (user > 0 && proc.user.charge(user, proc.memlockLimit) < 0) return -ENOMEM;
  if (mm > 0 && accountLockedVm(proc, mm, true) < 0) {
    if (user > 0) proc.user.uncharge(user);
    return -ENOMEM;
  }
  proc.mm.pinnedVm += user + mm;
  for (const p of moving) {
    if (p.accountMode === 'user') p.proc.user.uncharge(p.npinned);
    else accountLockedVm(p.proc, p.npinned, false);
    p.proc.mm.pinnedVm -= p.npinned;
  }
  for (const p of all) p.proc = proc;
  return 0;
}

export function ioasCopy(ctx: IommufdCtx, v: View<typeof iommu_ioas_copy>, respond: Respond): number {
  const flags = v.num('flags');
  if ((flags & ~MAP_FLAGS) !== 0) return -EOPNOTSUPP;
  const len64 = v.big('length');
  const src64 = v.big('src_iova');
  const dst64 = v.big('dst_iova');
  if (len64 >= ULONG_MAX || src64 >= ULONG_MAX || dst64 >= ULONG_MAX) return -EOVERFLOW;
  if ((flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) return -EINVAL;
  const src = getIoas(ctx, v.num('src_ioas_id'));
  if (typeof src === 'number') return src;
  const length = fit(len64);
  const srcIova = fit(src64);
  if (length === undefined || srcIova === undefined) return -EOVERFLOW;
  const pieces = src.iopt.getPieces(srcIova, length);
  if (typeof pieces === 'number') return pieces;
  const dst = getIoas(ctx, v.num('dst_ioas_id'));
  if (typeof dst === 'number') return dst;
  if ((flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0 && pieces.some((p) => !p.pages.writable)) return -EPERM;
  const iova = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0 ? dst64 : undefined;
  const at = dst.iopt.mapPieces(pieces, iova, protOf(flags));
  if (at < 0) return at;
  v.setBig('dst_iova', at);
  const r = respond();
  if (r < 0) dst.iopt.unmapRange(at, at + length - 1);
  else ctx.host.platform.tracer.trace('iommufd.copy', 'iommufd', { ioas: dst.id, src: src.id, srcIova, iova: at, length });
  return r;
}

export function ioasUnmap(ctx: IommufdCtx, v: View<typeof iommu_ioas_unmap>, respond: Respond): number {
  const ioas = getIoas(ctx, v.num('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const iova64 = v.big('iova');
  const len64 = v.big('length');
  let unmapped: number;
  if (iova64 === 0n && len64 === U64_MAX) {
    unmapped = ioas.iopt.unmapAll();
  } else {
    if (iova64 >= ULONG_MAX || len64 >= ULONG_MAX) return -EOVERFLOW;
    if (len64 === 0n) return -EINVAL;
    if (iova64 + len64 - 1n > ULONG_MAX) return -EOVERFLOW;
    const iova = fit(iova64);
    if (iova === undefined) return -ENOENT;
    const lastBig = iova64 + len64 - 1n;
    const last = lastBig > BigInt(IOVA_MAX) ? IOVA_MAX : Number(lastBig);
    unmapped = ioas.iopt.unmapRange(iova, last);
    if (unmapped < 0) return unmapped;
    // iommufd_ioas_unmap(): a range holding no mapping is -ENOENT here (the VFIO compat unmap says 0).
    if (unmapped === 0) return -ENOENT;
  }
  v.setBig('length', unmapped);
  ctx.host.platform.tracer.trace('iommufd.unmap', 'iommufd', { ioas: ioas.id, iova: iova64, requested: len64, length: unmapped, compat: false });
  return respond();
}

/** The holes of the IOAS's reserved ranges over [0, ULONG_MAX] (a reservation reaching IOVA_MAX reaches ULONG_MAX). */
export function iovaHoles(ioas: Ioas): [bigint, bigint][] {
  const holes: [bigint, bigint][] = [];
  let cur = 0n;
  for (const r of ioas.iopt.reservedSpans()) {
    if (BigInt(r.start) > cur) holes.push([cur, BigInt(r.start) - 1n]);
    cur = r.last >= IOVA_MAX ? ULONG_MAX + 1n : BigInt(r.last) + 1n;
  }
  if (cur <= ULONG_MAX) holes.push([cur, ULONG_MAX]);
  return holes;
}

export function ioasIovaRanges(ctx: IommufdCtx, v: View<typeof iommu_ioas_iova_ranges>, respond: Respond, proc: Process): number {
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const ioas = getIoas(ctx, v.num('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const max = v.num('num_iovas');
  const ptr = v.big('allowed_iovas');
  const holes = iovaHoles(ioas);
  for (let i = 0; i < holes.length && i < max; i++) {
    const e = encodeStruct(iommu_iova_range, { start: holes[i]![0], last: holes[i]![1] });
    if (proc.copyToUser(ptr + BigInt(i * iommu_iova_range.size), e) < 0) return -EFAULT;
  }
  v.setNum('num_iovas', holes.length);
  v.setBig('out_iova_alignment', ioas.iopt.iovaAlignment);
  const r = respond();
  if (r < 0) return r;
  return holes.length > max ? -EMSGSIZE : 0;
}

export function ioasAllowIovas(ctx: IommufdCtx, v: View<typeof iommu_ioas_allow_iovas>, proc: Process): number {
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const ioas = getIoas(ctx, v.num('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const n = v.num('num_iovas');
  const ptr = v.big('allowed_iovas');
  const spans: Span[] = [];
  for (let i = 0; i < n; i++) {
    const b = proc.copyFromUser(ptr + BigInt(i * iommu_iova_range.size), iommu_iova_range.size);
    if (typeof b === 'number') return -EFAULT;
    const rv = new StructView(iommu_iova_range, b);
    const s = rv.big('start');
    const l = rv.big('last');
    // iommufd_ioas_load_iovas(): an empty or reversed range (start >= last) is refused.
    if (s >= l) return -EINVAL;
    const start = fit(s) ?? IOVA_MAX;
    const last = fit(l) ?? IOVA_MAX;
    if (spans.some((x) => x.start <= last && x.last >= start)) return -EINVAL;
    spans.push({ start, last });
  }
  return ioas.iopt.setAllowed(spans);
}

export function option(ctx: IommufdCtx, v: View<typeof iommu_option>, respond: Respond, proc: Process): number {
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const op = v.num('op');
  const val = v.big('val64');
  switch (v.num('option_id')) {
    case IOMMU_OPTION_RLIMIT_MODE: {
      if (v.num('object_id') !== 0) return -EOPNOTSUPP;
      if (op === IOMMU_OPTION_OP_GET) {
        v.setBig('val64', ctx.accountMode === 'mm' ? 1 : 0);
        return respond();
      }
      if (op !== IOMMU_OPTION_OP_SET) return -EOPNOTSUPP;
      // CAP_SYS_RESOURCE: root here.
      if (proc.uid !== 0) return -EPERM;
      if (ctx.objects.size > 0) return -EBUSY;
      if (val === 0n) ctx.accountMode = 'user';
      else if (val === 1n) ctx.accountMode = 'mm';
      else return -EINVAL;
      return respond();
    }
    case IOMMU_OPTION_HUGE_PAGES: {
      const ioas = getIoas(ctx, v.num('object_id'));
      if (typeof ioas === 'number') return ioas;
      if (op === IOMMU_OPTION_OP_GET) {
        v.setBig('val64', ioas.iopt.disableLargePages ? 0 : 1);
        return respond();
      }
      if (op !== IOMMU_OPTION_OP_SET) return -EOPNOTSUPP;
      if (val !== 0n && val !== 1n) return -EINVAL;
      const r = ioas.iopt.setLargePages(val === 1n);
      return r < 0 ? r : respond();
    }
    default:
      return -EOPNOTSUPP;
  }
}
