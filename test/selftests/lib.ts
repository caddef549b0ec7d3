/**
 * The shared part of our port of Linux 7.3's iommufd and VFIO selftests
 * (tools/testing/selftests/{iommu,vfio}). The kernel's tests run against the
 * iommufd selftest mock (IOMMU_TEST_OP_MOCK_DOMAIN, IOMMU_TEST_OP_ACCESS_*);
 * here a real endpoint of the machine stands in for the mock device: its VFIO
 * cdev is bound to the iommufd and attached to the IOAS, and what the mock
 * checks by looking into its own page table (IOMMU_TEST_OP_MD_CHECK_MAP) we
 * check with the device's DMA through the real SMMUv3 or VT-d.
 */
import type { Test } from 'tap';
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import {
  IOMMU_DESTROY,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  iommu_destroy,
  iommu_hwpt_alloc,
  iommu_ioas_alloc,
  iommu_ioas_copy,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_option,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
  vfio_device_detach_iommufd_pt,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../../src/uapi/vfio.ts';

export const MACHINES: readonly MachineKind[] = ['virt-smmuv3', 'q35-vtd'];
export const PAGE_SIZE = 4096;
/** The kernel's BUFFER_SIZE: PAGE_SIZE * 16 (iommufd.c setup_sizes). */
export const BUFFER_SIZE = PAGE_SIZE * 16;
/** hpage_pmd_size of both machines' 4K granule. */
export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
/** Where the mock domain's aperture starts (iommufd_test.h MOCK_APERTURE_START); below both machines' MSI windows. */
export const MOCK_APERTURE_START = 1n << 24n;
export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
export const U64_MAX = (1n << 64n) - 1n;

/**
 * The machine's endpoints (the default topology) by role. The plain test
 * device at 00:03.0 is the mock device (no PASID, like a mock device without
 * MOCK_FLAGS_DEVICE_PASID); the two DMA engines are the second mock device
 * and the PASID-capable one.
 */
export const STAND_INS = [
  { bdf: '0000:00:03.0', minor: 2 },
  { bdf: '0000:00:02.0', minor: 1 },
] as const;
export const PASID_STAND_IN = { bdf: '0000:00:01.0', minor: 0 } as const;

/** A device bound through its VFIO cdev: what test_cmd_mock_domain returns (stdev_id is the cdev here). */
export interface StandIn {
  fn: PciFunction;
  cdev: number;
  /** out_devid of VFIO_DEVICE_BIND_IOMMUFD: the kernel's idev_id. */
  idev: number;
  /** The HWPT the attach reported (pt_id written back). */
  hwpt: number;
}

export interface Sys {
  m: Machine;
  p: Process;
  /** The open /dev/iommu. */
  fd: number;
  /** The process's buffer (BUFFER_SIZE, aligned to HUGEPAGE_SIZE, filled with a pattern). */
  buffer: bigint;
}

/** A machine, a process with a huge memlock limit, /dev/iommu open and the kernel's `buffer`. */
export function boot(kind: MachineKind, opts: { memlockLimit?: number; capIpcLock?: boolean } = {}): Sys {
  const m = createMachine(kind, { ramBytes: 128 * 2 ** 20 });
  // The kernel's selftests run as root (global_options sets a root-only option).
  const p = m.host.spawn({ memlockLimit: opts.memlockLimit ?? 2 ** 40, capIpcLock: opts.capIpcLock, uid: 0 });
  const fd = p.open('/dev/iommu');
  if (fd < 0) throw new Error(`open /dev/iommu: ${fd}`);
  const buffer = allocBuffer(p, BUFFER_SIZE);
  return { m, p, fd, buffer };
}

/** posix_memalign(HUGEPAGE_SIZE) + mmap(MAP_FIXED) of the kernel's setup_sizes: a page-aligned, pattern-filled buffer. */
export function allocBuffer(p: Process, length: number): bigint {
  const va = p.mmap(length, { populate: true });
  if (va < 0n) throw new Error(`mmap ${va}`);
  fillPattern(p, va, length);
  return va;
}

export function fillPattern(p: Process, va: bigint, length: number, seed = 0x5a): void {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + (i >> 12) * 13 + seed) & 0xff;
  if (p.memWrite(va, b) < 0) throw new Error('memWrite');
}

/** Run a struct-based ioctl: [result, view of what the kernel wrote back]. */
export function call<F extends string>(p: Process, fd: number, req: number, def: StructDef<F>, v: Partial<Record<F, number | bigint>>, size = def.size): [number, StructView<F>, Uint8Array] {
  const base = 'size' in def.fields ? { size: def.size } : {};
  const b = encodeStruct(def, { ...base, ...v } as Partial<Record<F, number | bigint>>, Math.max(size, def.size));
  const r = p.ioctl(fd, req, b);
  return [r, new StructView(def, b), b];
}

export function destroy(s: Sys, id: number): number {
  return call(s.p, s.fd, IOMMU_DESTROY, iommu_destroy, { id })[0];
}

export function ioasAlloc(s: Sys): number {
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_ALLOC, iommu_ioas_alloc, {});
  if (r !== 0) throw new Error(`IOAS_ALLOC ${r}`);
  return v.num('out_ioas_id');
}

/** _test_ioctl_ioas_map: [result, iova]. A defined iova means IOMMU_IOAS_MAP_FIXED_IOVA. */
export function ioasMap(s: Sys, ioas: number, va: bigint, length: number | bigint, iova?: bigint, flags = RW): [number, bigint] {
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_MAP, iommu_ioas_map, {
    flags: flags | (iova !== undefined ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
    ioas_id: ioas,
    user_va: va,
    length: BigInt(length),
    iova: iova ?? 0n,
  });
  return [r, v.big('iova')];
}

export function ioasMapFile(s: Sys, ioas: number, mfd: number, start: number | bigint, length: number | bigint, iova?: bigint, flags = RW): [number, bigint] {
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_MAP_FILE, iommu_ioas_map_file, {
    flags: flags | (iova !== undefined ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
    ioas_id: ioas,
    fd: mfd,
    start: BigInt(start),
    length: BigInt(length),
    iova: iova ?? 0n,
  });
  return [r, v.big('iova')];
}

/** _test_ioctl_ioas_unmap: [result, length written back]. */
export function ioasUnmap(s: Sys, ioas: number, iova: bigint | number, length: bigint | number): [number, bigint] {
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_UNMAP, iommu_ioas_unmap, { ioas_id: ioas, iova: BigInt(iova), length: BigInt(length) });
  return [r, v.big('length')];
}

export function ioasCopy(s: Sys, dst: number, src: number, srcIova: bigint, length: number | bigint, dstIova?: bigint, flags = RW): [number, bigint] {
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_COPY, iommu_ioas_copy, {
    flags: flags | (dstIova !== undefined ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
    dst_ioas_id: dst,
    src_ioas_id: src,
    length: BigInt(length),
    dst_iova: dstIova ?? 0n,
    src_iova: srcIova,
  });
  return [r, v.big('dst_iova')];
}

export function option(s: Sys, v: { option_id: number; op: number; object_id?: number; val64?: bigint | number }): [number, bigint] {
  const [r, view] = call(s.p, s.fd, IOMMU_OPTION, iommu_option, { ...v, val64: BigInt(v.val64 ?? 0) });
  return [r, view.big('val64')];
}

export function hwptAlloc(s: Sys, devId: number, ptId: number, flags = 0, extra: Partial<Record<keyof typeof iommu_hwpt_alloc.fields, number | bigint>> = {}): [number, number] {
  const [r, v] = call(s.p, s.fd, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, { dev_id: devId, pt_id: ptId, flags, ...extra });
  return [r, v.num('out_hwpt_id')];
}

/** Open a device's cdev and VFIO_DEVICE_BIND_IOMMUFD it: [cdev, devid] (or [-errno, 0]). */
export function bindCdev(s: Sys, minor: number, iommufd = s.fd): [number, number] {
  const cdev = s.p.open(`/dev/vfio/devices/vfio${minor}`);
  if (cdev < 0) return [cdev, 0];
  const [r, v] = call(s.p, cdev, VFIO_DEVICE_BIND_IOMMUFD, vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  if (r < 0) {
    s.p.close(cdev);
    return [r, 0];
  }
  return [cdev, v.num('out_devid')];
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT (attach or replace): [result, pt_id written back]. */
export function attachPt(s: Sys, cdev: number, ptId: number, pasid?: number): [number, number] {
  const [r, v] = call(s.p, cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfio_device_attach_iommufd_pt, {
    argsz: vfio_device_attach_iommufd_pt.size,
    flags: pasid === undefined ? 0 : 1,
    pt_id: ptId,
    pasid: pasid ?? 0,
  });
  return [r, v.num('pt_id')];
}

export function detachPt(s: Sys, cdev: number, pasid?: number): number {
  return call(s.p, cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfio_device_detach_iommufd_pt, {
    argsz: vfio_device_detach_iommufd_pt.size,
    flags: pasid === undefined ? 0 : 1,
    pasid: pasid ?? 0,
  })[0];
}

/**
 * test_cmd_mock_domain: bind a real device and attach it to `ptId` (an IOAS
 * or a HWPT); its bus mastering is enabled so its DMA can check the mapping.
 * Returns the stand-in, or a negative errno when the attach fails.
 */
export function standIn(s: Sys, ptId: number, which: { bdf: string; minor: number } = STAND_INS[0]): StandIn | number {
  const [cdev, idev] = bindCdev(s, which.minor);
  if (cdev < 0) return cdev;
  const [r, hwpt] = attachPt(s, cdev, ptId);
  if (r < 0) {
    s.p.close(cdev);
    return r;
  }
  const fn = s.m.device(which.bdf);
  fn.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  return { fn, cdev, idev, hwpt };
}

export function mustStandIn(s: Sys, ptId: number, which?: { bdf: string; minor: number }): StandIn {
  const d = standIn(s, ptId, which);
  if (typeof d === 'number') throw new Error(`stand-in attach ${d}`);
  return d;
}

/**
 * IOMMU_TEST_OP_MD_CHECK_MAP through a real device: a DMA read of
 * [iova, iova + length) returns the process's bytes at va.
 */
export function checkMap(t: Test, s: Sys, dev: StandIn, iova: bigint, va: bigint, length: number, msg = 'the device reads the mapped memory'): void {
  // Every page of the range, sampled at both of its ends (whole-range reads are slow and add nothing:
  // a page is mapped as a whole).
  const bad: string[] = [];
  const end = iova + BigInt(length);
  for (let a = iova; a < end; ) {
    const pageEnd = (a / 4096n + 1n) * 4096n;
    const stop = pageEnd < end ? pageEnd : end;
    const n = Number(stop - a);
    const spots: [bigint, number][] = n <= 32 ? [[a, n]] : [[a, 16], [stop - 16n, 16]];
    for (const [at, len] of spots) {
      const got = dev.fn.dmaRead(at, len);
      const want = s.p.memRead(va + (at - iova), len) as Uint8Array;
      if (!got.ok) bad.push(`${at.toString(16)}: ${got.fault}`);
      else if (!got.data!.every((x, i) => x === want[i])) bad.push(`${at.toString(16)}: other bytes`);
    }
    a = stop;
  }
  t.same(bad.slice(0, 4), [], msg);
}

/**
 * teardown_iommufd: close the iommufd (and the stand-ins' cdevs, which hold
 * it), then what IOMMU_TEST_OP_MD_CHECK_REFS checks: no page of the
 * process is still pinned.
 */
export function teardown(t: Test, s: Sys, devs: (StandIn | undefined)[] = []): void {
  t.equal(s.p.close(s.fd), 0, 'close(/dev/iommu)');
  for (const d of devs) if (d !== undefined) s.p.close(d.cdev);
  t.equal(s.p.mm.pinnedVm, 0, 'teardown: no page left pinned');
}

export function offsetofend<F extends string>(def: StructDef<F>, f: F): number {
  return def.fields[f].offset + def.fields[f].size;
}

/**
 * One kernel TEST_F: its fixture and variant names as the kernel spells them
 * (`fixture.variant.case`, or `fixture.case` without variants), the body, or
 * the reason it cannot be ported (then it is t.skip'ed with that reason).
 */
export interface Ported<C> {
  name: string;
  run?: (t: Test, c: C) => void | Promise<void>;
  skip?: string;
}

/** Run every case on one machine as a subtest named as the kernel names it. */
export async function runCases<C>(t: Test, cases: Ported<C>[], setup: (t: Test) => C, teardownFn: (t: Test, c: C) => void): Promise<void> {
  for (const k of cases) {
    if (k.skip !== undefined) {
      await t.test(k.name, { skip: k.skip }, () => {});
      continue;
    }
    await t.test(k.name, async (t) => {
      const c = setup(t);
      await k.run!(t, c);
      teardownFn(t, c);
    });
  }
}
