/**
 * The `ioemu` imports the shim (shim.ts) calls: what WASI has no word for.
 * Arguments are the program's own: an ioctl's argument is the integer or user
 * address it passed, and the kernel copies structs from and to process memory
 * as Linux does. Results are a value, or a negative errno in WASI's numbering
 * (the shim stores it in errno).
 */
import * as vfio from '../../src/uapi/vfio.ts';
import * as iommufd from '../../src/uapi/iommufd.ts';
import { EINVAL, ENOTTY } from '../../src/uapi/errno.ts';
import { PROT_WRITE } from '../../src/host/mm.ts';
import { VfioDeviceFile } from '../../src/vfio/device-file.ts';
import { wasiErrno } from './errno.ts';
import type { Program } from './program.ts';

// Linux's mmap flags (the same numbers in wasi-libc's sys/mman.h).
const MAP_POPULATE = 0x8000;
const MAP_HUGETLB = 0x40000;
const MAP_HUGE_SHIFT = 26;
const MAP_HUGE_1GB = 30;
// wasi-libc's eventfd flags: EFD_SEMAPHORE 1, EFD_NONBLOCK = O_NONBLOCK = __WASI_FDFLAGS_NONBLOCK.
const EFD_SEMAPHORE = 1;
const EFD_NONBLOCK = 4;

/** Request number -> its uapi name(s), for the trace. VFIO reuses numbers across fd types: both names show. */
const REQUEST_NAMES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string[]>();
  for (const t of [vfio, iommufd] as Record<string, unknown>[]) {
    for (const [k, v] of Object.entries(t)) {
      if (typeof v !== 'number' || !/^(VFIO|IOMMU)_[A-Z0-9_]+$/.test(k) || v >>> 8 !== 0x3b || (v & 0xff) < vfio.VFIO_BASE) continue;
      m.set(v, [...(m.get(v) ?? []), k]);
    }
  }
  return new Map([...m].map(([k, v]) => [k, v.join('|')]));
})();

export function ioctlName(request: number): string {
  return REQUEST_NAMES.get(request >>> 0) ?? `0x${(request >>> 0).toString(16)}`;
}

/** A Linux-level result as the shim wants it: the value, or -errno in WASI numbers. */
const out = (r: number): number => (r < 0 ? -wasiErrno(r) : r);
const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;

/**
 * struct vfio_bitmap's `data` is a pointer: 4 bytes on wasm32 and 8 in the
 * kernel's struct, so its upper half is padding the program never wrote.
 * Before the two calls that read it (VFIO_IOMMU_UNMAP_DMA with
 * GET_DIRTY_BITMAP, VFIO_IOMMU_DIRTY_PAGES with GET_BITMAP on a container),
 * that half is zeroed: in both the pointer sits at byte 40 of the argument.
 */
function zeroBitmapPointerHigh(prog: Program, fd: number, request: number, arg: number): void {
  const unmap = request === vfio.VFIO_IOMMU_UNMAP_DMA;
  if (!unmap && request !== vfio.VFIO_IOMMU_DIRTY_PAGES) return;
  if (prog.process.file(fd) instanceof VfioDeviceFile) return; // VFIO_DEVICE_FEATURE shares the number
  if (!prog.memory.inside(arg, 48)) return;
  const flags = prog.memory.dv.getUint32(arg + 4, true);
  const wants = unmap ? vfio.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP : vfio.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if ((flags & wants) !== 0) prog.memory.dv.setUint32(arg + 44, 0, true);
}

export function ioemuImports(prog: Program): Record<string, (...a: number[]) => number> {
  const proc = prog.process;
  return {
    ioctl: (fd, request, arg) =>
      out(prog.call('ioctl', () => `fd ${fd}, ${ioctlName(request)}, ${hex(arg)}`, () => {
        if (prog.isStdio(fd)) return -ENOTTY;
        const a = arg >>> 0;
        zeroBitmapPointerHigh(prog, fd, request >>> 0, a);
        return proc.ioctl(fd, request >>> 0, a);
      })),

    map: (addr, length, prot, flags) =>
      out(prog.call('mmap', () => `${hex(addr)}, ${length}, prot ${prot}, flags ${hex(flags)}, MAP_FIXED`, () => {
        const a = addr >>> 0;
        const len = length >>> 0;
        if (!prog.memory.inside(a, len)) return -EINVAL;
        const huge = (flags & MAP_HUGETLB) === 0 ? undefined : (flags >>> MAP_HUGE_SHIFT) === MAP_HUGE_1GB ? '1G' : '2M';
        // Fresh pages replace what was there (pinned pages keep a copy), then read zero, as new anonymous memory does.
        const r = proc.mmap(len, { addr: BigInt(a), fixed: true, prot, ...(huge ? { hugepage: huge } : {}) });
        if (r < 0n) return Number(r);
        prog.memory.u8.fill(0, a, a + len);
        if ((flags & MAP_POPULATE) !== 0) {
          for (let p = a; p < a + len; p += 4096) {
            const f = proc.mm.faultIn(p, (prot & PROT_WRITE) !== 0);
            if (f < 0) return f;
          }
        }
        return 0;
      })),

    unmap: (addr, length) => out(prog.call('munmap', () => `${hex(addr)}, ${length >>> 0}`, () => proc.munmap(BigInt(addr >>> 0), length >>> 0))),

    protect: (addr, length, prot) => out(prog.call('mprotect', () => `${hex(addr)}, ${length >>> 0}, ${prot}`, () => proc.mprotect(BigInt(addr >>> 0), length >>> 0, prot))),

    eventfd: (initval, flags) =>
      out(prog.call('eventfd', () => `${initval >>> 0}, ${flags & EFD_NONBLOCK ? 'EFD_NONBLOCK' : '0'}`, () => {
        // EFD_SEMAPHORE is not modelled (src/host/eventfd.ts): refused rather than misbehaving.
        if ((flags & EFD_SEMAPHORE) !== 0) return -EINVAL;
        const fd = proc.eventfd(initval >>> 0);
        if (fd >= 0) prog.opened(fd, { nonblock: (flags & EFD_NONBLOCK) !== 0 });
        return fd;
      })),

    getpid: () => prog.call('getpid', () => '', () => proc.pid),
    getuid: () => prog.call('getuid', () => '', () => proc.uid),
  };
}
