/**
 * Linux 7.3 tools/testing/selftests/iommu/iommufd_fail_nth.c, ported case by
 * case onto both machines. The kernel fails the 1st, 2nd, ... allocation
 * (failslab, fail_page_alloc) of each TEST_FAIL_NTH body until it runs clean,
 * and checks after each run that nothing leaked; here runFailNth
 * (tools/fault/fail-nth.ts) fails the 1st, 2nd, ... injectable step of the
 * same body, across every injection point of the machine, and checks the
 * invariants (no leaked page, pin, charge, object or IOMMU entry) after each.
 * A real device bound through its VFIO cdev stands in for the mock device.
 */
import t from 'tap';
import type { Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_fault_alloc,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_iova_range,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
  vfio_device_detach_iommufd_pt,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../../src/uapi/vfio.ts';
import { runFailNth, type FailNthOperation } from '../../tools/fault/fail-nth.ts';
import { MACHINES, MOCK_APERTURE_START, PAGE_SIZE, PASID_STAND_IN, STAND_INS } from './lib.ts';

const BUFFER_SIZE = PAGE_SIZE * 16;
const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
/**
 * The kernel maps 262144 bytes in the map_* cases; every page is an injectable pin step here
 * (host.pin), so 64 KiB keeps the sweep short and still spans many pages.
 */
const MAP_LEN = 65536;

/** The state a TEST_FAIL_NTH body shares with its setup: the process, its buffers, and the fd it opens. */
interface Self {
  m: Machine;
  p: Process;
  fd: number;
  buffer: bigint;
  /** The kernel's mfd: a memfd of 256 KiB (map_file_domain maps that much of it). */
  mfd: number;
}

/** Thrown by a body at its first failed call: the kernel's `return -1`. */
class Failed {
  constructor(readonly errno: number) {}
}

function ok(r: number): number {
  if (r < 0) throw new Failed(r);
  return r;
}

function cmd<F extends string>(s: Self, fd: number, req: number, def: StructDef<F>, v: Partial<Record<F, number | bigint>>): StructView<F> {
  const base = 'size' in def.fields ? { size: def.size } : {};
  const b = encodeStruct(def, { ...base, ...v } as Partial<Record<F, number | bigint>>);
  ok(s.p.ioctl(fd, req, b));
  return new StructView(def, b);
}

function ioasAlloc(s: Self): number {
  return cmd(s, s.fd, IOMMU_IOAS_ALLOC, iommu_ioas_alloc, {}).num('out_ioas_id');
}

function ioasMap(s: Self, ioas: number, va: bigint, length: number, iova?: bigint): bigint {
  return cmd(s, s.fd, IOMMU_IOAS_MAP, iommu_ioas_map, {
    flags: RW | (iova !== undefined ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
    ioas_id: ioas,
    user_va: va,
    length: BigInt(length),
    iova: iova ?? 0n,
  }).big('iova');
}

/** _test_cmd_mock_domain: a device bound through its cdev and attached to ptId; its cdev is the stdev. */
function mockDomain(s: Self, ptId: number, which: { bdf: string; minor: number } = STAND_INS[0]): { cdev: number; idev: number } {
  const cdev = ok(s.p.open(`/dev/vfio/devices/vfio${which.minor}`));
  try {
    const idev = cmd(s, cdev, VFIO_DEVICE_BIND_IOMMUFD, vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: s.fd }).num('out_devid');
    attach(s, cdev, ptId);
    s.m.device(which.bdf).config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    return { cdev, idev };
  } catch (e) {
    s.p.close(cdev);
    throw e;
  }
}

function attach(s: Self, cdev: number, ptId: number, pasid?: number): void {
  cmd(s, cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, flags: pasid === undefined ? 0 : 1, pt_id: ptId, pasid: pasid ?? 0 });
}

function detachPasid(s: Self, cdev: number, pasid: number): void {
  cmd(s, cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size, flags: 1, pasid });
}

function hwptAlloc(s: Self, dev: number, pt: number, flags: number): number {
  return cmd(s, s.fd, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, { dev_id: dev, pt_id: pt, flags }).num('out_hwpt_id');
}

/** The part of a body the kernel runs after fail_nth_enable(): failures return -errno, as `return -1`. */
function body(fn: (s: Self) => void): (m: Machine, s: Self) => number {
  return (_m, s) => {
    try {
      fn(s);
      return 0;
    } catch (e) {
      if (e instanceof Failed) return e.errno;
      throw e;
    }
  };
}

function setup(m: Machine, openFd: boolean): Self {
  const p = m.host.spawn({ memlockLimit: 2 ** 30, uid: 0 });
  const buffer = p.mmap(262144, { populate: true });
  const mfd = p.memfd_create('buffer', 0);
  if (mfd < 0 || p.ftruncate(mfd, 262144) < 0) throw new Error('memfd');
  return { m, p, fd: openFd ? p.open('/dev/iommu') : -1, buffer, mfd };
}

interface Case {
  name: string;
  /** What runs before fail_nth_enable() (not injected). */
  before?: (s: Self) => void;
  /** The body after fail_nth_enable() (injected). `open` says whether /dev/iommu is opened inside it. */
  run?: (s: Self) => void;
  openInside?: boolean;
  skip?: string;
}

const CASES: Case[] = [
  {
    name: 'basic',
    openInside: true,
    run: (s) => {
      s.fd = ok(s.p.open('/dev/iommu'));
      const ioas = ioasAlloc(s);
      const ranges = s.p.mmap(PAGE_SIZE, {});
      cmd(s, s.fd, IOMMU_IOAS_IOVA_RANGES, iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: 10, allowed_iovas: ranges });
      s.p.memWrite(ranges, encodeStruct(iommu_iova_range, { start: 16n * 1024n, last: BigInt(BUFFER_SIZE + 16 * 1024 * 600 - 1) }));
      cmd(s, s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: 1, allowed_iovas: ranges });
      const iova = ioasMap(s, ioas, s.buffer, BUFFER_SIZE);
      // sizeof(ranges): ten struct iommu_iova_range.
      cmd(s, s.fd, IOMMU_IOAS_COPY, iommu_ioas_copy, { flags: RW, dst_ioas_id: ioas, src_ioas_id: ioas, src_iova: iova, length: 10n * 16n });
      cmd(s, s.fd, IOMMU_IOAS_UNMAP, iommu_ioas_unmap, { ioas_id: ioas, iova, length: BigInt(BUFFER_SIZE) });
      // The failure path of no IOVA to unmap (its result is not checked).
      s.p.ioctl(s.fd, IOMMU_IOAS_UNMAP, encodeStruct(iommu_ioas_unmap, { size: iommu_ioas_unmap.size, ioas_id: ioas, iova, length: BigInt(BUFFER_SIZE) }));
    },
  },
  ...(['map_domain', 'map_file_domain'] as const).map(
    (name): Case => ({
      name,
      // _test_ioctl_set_temp_memory_limit(32) is a mock-only op: left out.
      before: (s) => {
        (s as Self & { ioas: number }).ioas = ioasAlloc(s);
      },
      run: (s) => {
        const ioas = (s as Self & { ioas: number }).ioas;
        const d = mockDomain(s, ioas);
        if (name === 'map_domain') ioasMap(s, ioas, s.buffer, MAP_LEN);
        else cmd(s, s.fd, IOMMU_IOAS_MAP_FILE, iommu_ioas_map_file, { flags: RW, ioas_id: ioas, fd: s.mfd, start: 0n, length: BigInt(MAP_LEN) });
        // _test_ioctl_destroy(stdev_id): the device goes (its cdev closes), then another attaches.
        ok(s.p.close(d.cdev));
        mockDomain(s, ioas);
      },
    }),
  ),
  {
    name: 'map_two_domains',
    before: (s) => {
      const ioas = ioasAlloc(s);
      (s as Self & { ioas: number; first: number }).ioas = ioas;
      (s as Self & { ioas: number; first: number }).first = mockDomain(s, ioas).cdev;
    },
    run: (s) => {
      const x = s as Self & { ioas: number; first: number };
      const d2 = mockDomain(s, x.ioas, STAND_INS[1]);
      ioasMap(s, x.ioas, s.buffer, MAP_LEN);
      ok(s.p.close(x.first));
      ok(s.p.close(d2.cdev));
      mockDomain(s, x.ioas);
      mockDomain(s, x.ioas, STAND_INS[1]);
    },
  },
  { name: 'access_rw', skip: 'IOMMU_TEST_OP_ACCESS_RW through an in-kernel iommufd_access (the mock access); device DMA takes no iommufd allocation to fail' },
  { name: 'access_pin', skip: 'IOMMU_TEST_OP_ACCESS_PAGES: pins through an in-kernel iommufd_access (the mock access)' },
  { name: 'access_pin_domain', skip: 'IOMMU_TEST_OP_ACCESS_PAGES with a domain: pins through an in-kernel iommufd_access (the mock access)' },
  {
    name: 'device',
    before: (s) => {
      const x = s as Self & { ioas: number; ioas2: number };
      x.ioas = ioasAlloc(s);
      x.ioas2 = ioasAlloc(s);
      ioasMap(s, x.ioas, s.buffer, PAGE_SIZE, MOCK_APERTURE_START);
      ioasMap(s, x.ioas2, s.buffer, PAGE_SIZE, MOCK_APERTURE_START);
    },
    // The mock vIOMMU, vdevice, HW queue, SELFTEST nested fault HWPT and vEVENTQ steps are left out (mock-only types).
    run: (s) => {
      const x = s as Self & { ioas: number; ioas2: number };
      const d = mockDomain(s, x.ioas, PASID_STAND_IN);
      const info = s.p.mmap(PAGE_SIZE, {});
      cmd(s, s.fd, IOMMU_GET_HW_INFO, iommu_hw_info, { dev_id: d.idev, data_len: 64, data_uptr: info });
      const hwpt = hwptAlloc(s, d.idev, x.ioas, IOMMU_HWPT_ALLOC_PASID);
      attach(s, d.cdev, x.ioas2);
      attach(s, d.cdev, hwpt);
      // The mock attaches its PASID to this nesting parent; a real SMMUv3 or VT-d PASID takes a
      // first-stage (or plain paging) domain, so the PASID goes to the paging HWPT above.
      // arm_smmu_domain_alloc_paging_flags() has no NEST_PARENT | PASID case (-EOPNOTSUPP); intel-iommu allocates it.
      const np = s.p.ioctl(s.fd, IOMMU_HWPT_ALLOC, encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, dev_id: d.idev, pt_id: x.ioas, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID }));
      if (np < 0 && !(s.m.kind === 'virt-smmuv3' && np === -95)) throw new Failed(np);
      const fault = cmd(s, s.fd, IOMMU_FAULT_QUEUE_ALLOC, iommu_fault_alloc, {});
      ok(s.p.close(fault.num('out_fault_fd')));
      const test = hwptAlloc(s, d.idev, x.ioas, IOMMU_HWPT_ALLOC_PASID);
      attach(s, d.cdev, hwpt, 200);
      attach(s, d.cdev, test, 200);
      detachPasid(s, d.cdev, 200);
    },
  },
];

for (const kind of MACHINES) {
  t.test(kind, async (t) => {
    for (const c of CASES) {
      const name = `basic_fail_nth.${c.name}`;
      if (c.skip !== undefined) {
        await t.test(name, { skip: c.skip }, () => {});
        continue;
      }
      await t.test(name, async (t) => {
        const op: FailNthOperation<Self> = {
          name,
          machine: kind as MachineKind,
          setup: (m) => {
            const s = setup(m, !c.openInside);
            c.before?.(s);
            return s;
          },
          run: body(c.run!),
        };
        const r = runFailNth(op);
        t.ok(r.completed, 'the run with nothing failed returns 0');
        t.ok(r.steps >= 1, `${r.steps} steps failed in turn (${JSON.stringify(r.byPoint)})`);
        t.same(r.problems, [], 'every failed step unwinds: an errno, no exception, no leak, no invariant broken');
      });
    }
  });
}
