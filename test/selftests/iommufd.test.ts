/**
 * Linux 7.3 tools/testing/selftests/iommu/iommufd.c, ported case by case
 * (FIXTURE.VARIANT.TEST names kept) onto both machines. A real endpoint bound
 * through its VFIO cdev stands in for the mock device, its DMA for mock
 * accesses; see lib.ts. Cases that only exercise the selftest mock's own
 * test ops are skipped with the reason (docs/selftests-verdicts.md).
 */
import t, { type Test } from 'tap';
import type { MachineKind } from '../../machines/layout.ts';
import * as E from '../../src/uapi/errno.ts';
import {
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_fault_alloc,
  iommu_veventq_alloc,
  iommufd_vevent_header,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMU_VIOMMU_ALLOC,
  iommu_destroy,
  iommu_hw_info,
  iommu_hw_info_arm_smmuv3,
  iommu_hw_info_vtd,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_set_dirty_tracking,
  vfio_device_detach_iommufd_pt,
  iommu_hwpt_invalidate,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_change_process,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_unmap,
  iommu_iova_range,
  iommu_option,
  iommu_vdevice_alloc,
  iommu_vfio_ioas,
  iommu_viommu_alloc,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../../src/uapi/struct.ts';
import { s1Vste } from '../../iommu/guest/smmuv3.ts';
import {
  VFIO_API_VERSION,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
} from '../../src/uapi/vfio.ts';
import {
  attachPt,
  BUFFER_SIZE,
  boot,
  fillPattern,
  HUGEPAGE_SIZE,
  call,
  checkMap,
  destroy,
  hwptAlloc,
  ioasAlloc,
  ioasCopy,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  MACHINES,
  MOCK_APERTURE_START,
  mustStandIn,
  offsetofend,
  option,
  PAGE_SIZE,
  PASID_STAND_IN,
  runCases,
  STAND_INS,
  standIn,
  teardown,
  U64_MAX,
  type Ported,
  type StandIn,
  type Sys,
} from './lib.ts';

const P = BigInt(PAGE_SIZE);
/** IOMMU_HWPT_DATA_SELFTEST (iommufd_test.h): the mock's nested data type; a real driver supports neither it nor +1. */
const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
const MOCK_OPS = 'exercises the selftest mock through IOMMU_TEST_OP_* ioctls that only drivers/iommu/iommufd/selftest.c implements';

/** What the real IOMMUs give a paging domain, per machine: the aperture end, the reserved MSI window, the hw_info type. */
// infoFlags: the u32 that opens the driver's hw-info struct. SMMUv3's flags are 0; intel_iommu_hw_info sets
// IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 (bit 0) on every unit.
const HW: Record<MachineKind, { apertureEnd: bigint; msi: readonly [bigint, bigint]; infoType: number; infoSize: number; infoFlags: number; pasidWidth: number }> = {
  'virt-smmuv3': { apertureEnd: (1n << 48n) - 1n, msi: [0x800_0000n, 0x80f_ffffn], infoType: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, infoSize: iommu_hw_info_arm_smmuv3.size, infoFlags: 0, pasidWidth: 20 },
  'q35-vtd': { apertureEnd: (1n << 47n) - 1n, msi: [0xfee0_0000n, 0xfeef_ffffn], infoType: IOMMU_HW_INFO_TYPE_INTEL_VTD, infoSize: iommu_hw_info_vtd.size, infoFlags: 1, pasidWidth: 20 },
};

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd): just /dev/iommu open.

interface Plain extends Sys {
  kind: MachineKind;
}

/** TEST_LENGTH of cmd_length: short, long with a non-zero tail, exact, and long with a zero tail. */
function testLength<F extends string>(t: Test, s: Sys, def: StructDef<F>, req: number, last: F): void {
  const min = offsetofend(def, last);
  const b = new Uint8Array(def.size + 1);
  const view = new DataView(b.buffer);
  const go = (size: number, extra: number): number => {
    b.fill(0);
    view.setUint32(0, size, true);
    b[def.size] = extra;
    return s.p.ioctl(s.fd, req, b);
  };
  t.equal(go(min - 1, 0xff), -E.EINVAL, `${def.name}: size below the last field`);
  t.equal(go(def.size + 1, 0xff), -E.E2BIG, `${def.name}: longer with a non-zero tail`);
  const rc = go(def.size, 0xff);
  const again = go(def.size + 1, 0);
  if (rc !== 0) t.equal(again, rc, `${def.name}: a zero tail answers as the exact size (${rc})`);
  else t.equal(again, 0, `${def.name}: a zero tail works as the exact size`);
}

const IOMMUFD_CASES: Ported<Plain>[] = [
  { name: 'iommufd.simple_close', run: () => {} },
  {
    name: 'iommufd.cmd_fail',
    run: (t, s) => {
      t.equal(destroyRaw(s, 0), -E.ENOENT, 'object id is invalid');
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY, new Uint8Array(0)), -E.EFAULT, 'bad pointer');
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY - 1, encodeStruct(iommu_destroy, { size: 8 })), -E.ENOTTY, 'unknown ioctl (IOMMUFD_CMD_BASE - 1)');
    },
  },
  {
    name: 'iommufd.cmd_length',
    run: (t, s) => {
      testLength(t, s, iommu_destroy, IOMMU_DESTROY, 'id');
      testLength(t, s, iommu_hw_info, IOMMU_GET_HW_INFO, '__reserved');
      testLength(t, s, iommu_hwpt_alloc, IOMMU_HWPT_ALLOC, '__reserved');
      testLength(t, s, iommu_hwpt_invalidate, IOMMU_HWPT_INVALIDATE, '__reserved');
      testLength(t, s, iommu_ioas_alloc, IOMMU_IOAS_ALLOC, 'out_ioas_id');
      testLength(t, s, iommu_ioas_iova_ranges, IOMMU_IOAS_IOVA_RANGES, 'out_iova_alignment');
      testLength(t, s, iommu_ioas_allow_iovas, IOMMU_IOAS_ALLOW_IOVAS, 'allowed_iovas');
      testLength(t, s, iommu_ioas_map, IOMMU_IOAS_MAP, 'iova');
      testLength(t, s, iommu_ioas_copy, IOMMU_IOAS_COPY, 'src_iova');
      testLength(t, s, iommu_ioas_unmap, IOMMU_IOAS_UNMAP, 'length');
      testLength(t, s, iommu_option, IOMMU_OPTION, 'val64');
      testLength(t, s, iommu_vfio_ioas, IOMMU_VFIO_IOAS, '__reserved');
      testLength(t, s, iommu_ioas_map_file, IOMMU_IOAS_MAP_FILE, 'iova');
      testLength(t, s, iommu_viommu_alloc, IOMMU_VIOMMU_ALLOC, 'out_viommu_id');
      testLength(t, s, iommu_vdevice_alloc, IOMMU_VDEVICE_ALLOC, 'virt_id');
      testLength(t, s, iommu_ioas_change_process, IOMMU_IOAS_CHANGE_PROCESS, '__reserved');
    },
  },
  {
    name: 'iommufd.cmd_ex_fail',
    run: (t, s) => {
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 16, true);
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY, b), -E.ENOENT, 'object id is invalid and command is longer');
      dv.setBigUint64(8, 1n, true);
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY, b), -E.E2BIG, 'future area is non-zero');
      dv.setUint32(0, 8, true);
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY, b), -E.ENOENT, 'original command "works"');
      dv.setUint32(0, 7, true);
      t.equal(s.p.ioctl(s.fd, IOMMU_DESTROY, b), -E.EINVAL, 'short command fails');
    },
  },
  {
    name: 'iommufd.global_options',
    run: (t, s) => {
      t.same(option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET, val64: 1 }), [0, 0n]);
      t.equal(option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 1 })[0], 0, 'root may set it');
      t.equal(option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 2 })[0], -E.EINVAL);
      t.same(option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET }), [0, 1n]);
      t.equal(option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: 0 })[0], 0);
      t.equal(option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET })[0], -E.ENOENT, 'HUGE_PAGES needs an object');
      t.equal(option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET })[0], -E.ENOENT);
    },
  },
  {
    name: 'iommufd.simple_ioctls',
    run: (t, s) => {
      t.equal(s.p.ioctl(s.fd, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION);
      t.equal(s.p.ioctl(s.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
    },
  },
  {
    name: 'iommufd.unmap_cmd',
    run: (t, s) => {
      const u = (argsz: number, flags: number): number =>
        s.p.ioctl(s.fd, VFIO_IOMMU_UNMAP_DMA, encodeStruct(vfio_iommu_type1_dma_unmap, { argsz, flags, iova: MOCK_APERTURE_START, size: P }));
      t.equal(u(1, 0), -E.EINVAL, 'invalid argsz');
      t.equal(u(vfio_iommu_type1_dma_unmap.size, 1 << 31), -E.EINVAL, 'unknown flag');
      t.equal(u(vfio_iommu_type1_dma_unmap.size, 0), -E.ENODEV, 'no compat IOAS');
    },
  },
  {
    name: 'iommufd.map_cmd',
    run: (t, s) => {
      const m = (argsz: number, flags: number): number =>
        s.p.ioctl(s.fd, VFIO_IOMMU_MAP_DMA, encodeStruct(vfio_iommu_type1_dma_map, { argsz, flags, vaddr: s.buffer, iova: MOCK_APERTURE_START, size: P }));
      t.equal(m(1, 0), -E.EINVAL, 'invalid argsz');
      t.equal(m(vfio_iommu_type1_dma_map.size, 1 << 31), -E.EINVAL, 'unknown flag');
      t.equal(m(vfio_iommu_type1_dma_map.size, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE), -E.ENODEV, 'requires a domain to be attached');
    },
  },
  {
    name: 'iommufd.info_cmd',
    run: (t, s) => {
      const i = (argsz: number): number => s.p.ioctl(s.fd, VFIO_IOMMU_GET_INFO, encodeStruct(vfio_iommu_type1_info, { argsz }));
      t.equal(i(1), -E.EINVAL, 'invalid argsz');
      t.equal(i(vfio_iommu_type1_info.size), -E.ENODEV);
    },
  },
  {
    name: 'iommufd.set_iommu_cmd',
    run: (t, s) => {
      t.equal(s.p.ioctl(s.fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -E.ENODEV, 'requires a domain to be attached');
      t.equal(s.p.ioctl(s.fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -E.ENODEV);
    },
  },
  {
    name: 'iommufd.vfio_ioas',
    run: (t, s) => {
      const vi = (op: number, ioas = 0): [number, number] => {
        const [r, v] = call(s.p, s.fd, IOMMU_VFIO_IOAS, iommu_vfio_ioas, { op, ioas_id: ioas });
        return [r, v.num('ioas_id')];
      };
      t.equal(vi(IOMMU_VFIO_IOAS_GET)[0], -E.ENODEV, 'no compat IOAS');
      t.equal(vi(IOMMU_VFIO_IOAS_SET)[0], -E.ENOENT, 'invalid id for set');
      const ioas = ioasAlloc(s);
      t.equal(vi(IOMMU_VFIO_IOAS_SET, ioas)[0], 0, 'valid id for set');
      t.same(vi(IOMMU_VFIO_IOAS_GET), [0, ioas], 'the same id comes back from get');
      t.equal(vi(IOMMU_VFIO_IOAS_CLEAR)[0], 0, 'clear works');
      t.equal(vi(IOMMU_VFIO_IOAS_GET)[0], -E.ENODEV);
    },
  },
];

function destroyRaw(s: Sys, id: number): number {
  return s.p.ioctl(s.fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: iommu_destroy.size, id }));
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(change_process): CAP_IPC_LOCK dropped, one IOAS with a device (the kernel's mock domain).

const IOPT_PAGES_ACCOUNT = { account_none: 0, account_user: 1, account_mm: 2 } as const;

interface Change extends Sys {
  ioas: number;
  dev: StandIn;
  accounting: number;
}

function changeProcessCase(variant: keyof typeof IOPT_PAGES_ACCOUNT): Ported<Change> {
  return {
    name: `change_process.${variant}.basic`,
    run: (t, s) => {
      const mfd = s.p.memfd_create('mfd', 0);
      t.equal(s.p.ftruncate(mfd, BUFFER_SIZE), 0);
      const [rm, iova] = ioasMap(s, s.ioas, s.buffer, PAGE_SIZE);
      t.equal(rm, 0);
      const cp = (): number => call(s.p, s.fd, IOMMU_IOAS_CHANGE_PROCESS, iommu_ioas_change_process, {})[0];
      t.equal(cp(), -E.EINVAL, 'non-file maps exist');
      t.equal(ioasUnmap(s, s.ioas, iova, PAGE_SIZE)[0], 0);
      t.equal(ioasMapFile(s, s.ioas, mfd, 0, PAGE_SIZE)[0], 0);
      t.equal(cp(), 0, 'change process works in the current process');
      const parent = s.p;
      const child = parent.fork();
      // VmPin/VmLck in kB: one page.
      t.equal(parent.mm.pinnedVm, 1, 'the parent accounts for the pinned page before');
      if (s.accounting === IOPT_PAGES_ACCOUNT.account_mm) t.equal(parent.mm.lockedVm, 1);
      t.equal(child.mm.pinnedVm, 0);
      t.equal(child.mm.lockedVm, 0);
      t.equal(child.ioctl(s.fd, IOMMU_IOAS_CHANGE_PROCESS, encodeStruct(iommu_ioas_change_process, { size: iommu_ioas_change_process.size })), 0, 'change process in the child');
      t.equal(parent.mm.pinnedVm, 0, 'the parent accounts nothing after');
      t.equal(parent.mm.lockedVm, 0);
      t.equal(child.mm.pinnedVm, 1, 'the child accounts for it');
      if (s.accounting === IOPT_PAGES_ACCOUNT.account_mm) t.equal(child.mm.lockedVm, 1);
      child.exit();
      s.p.close(mfd);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_ioas): one IOAS, 0, 1 or 2 devices on it (mock_domains), a PASID-capable one.

interface IoasVariant {
  name: string;
  mockDomains: number;
  pasidCapable: boolean;
}

const IOAS_VARIANTS: IoasVariant[] = [
  { name: 'no_domain', mockDomains: 0, pasidCapable: false },
  { name: 'mock_domain', mockDomains: 1, pasidCapable: true },
  { name: 'two_mock_domain', mockDomains: 2, pasidCapable: false },
  // memory_limit = 16 (IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT) only caps temp_kmalloc() in pages.c, the
  // kernel's scratch buffers for pin batches: nothing a caller sees. ioemu has no such buffers, so the
  // variant runs as one device without the limit.
  { name: 'mock_domain_limit', mockDomains: 1, pasidCapable: false },
];

interface Ioas extends Sys {
  kind: MachineKind;
  v: IoasVariant;
  ioas: number;
  devs: StandIn[];
  /** self->stdev_id / hwpt_id / device_id: the last device attached (0 without one). */
  dev?: StandIn;
  hwpt: number;
  deviceId: number;
  baseIova: bigint;
  pasidDev?: StandIn;
  others: StandIn[];
}

/** The next endpoint no stand-in uses yet (the kernel just creates another mock device). */
function spareDevice(s: Ioas): { bdf: string; minor: number } {
  const used = new Set([...s.devs, ...s.others, ...(s.pasidDev ? [s.pasidDev] : [])].map((d) => d.fn.bdf));
  const all = [...STAND_INS, PASID_STAND_IN];
  const f = all.find((d) => !used.has(d.bdf));
  if (f === undefined) throw new Error('no spare endpoint');
  return f;
}

function ioasRanges(s: Sys, ioas: number, n: number): [number, number, bigint, { start: bigint; last: bigint }[]] {
  const buf = s.p.mmap(PAGE_SIZE, {});
  const [r, v] = call(s.p, s.fd, IOMMU_IOAS_IOVA_RANGES, iommu_ioas_iova_ranges, { ioas_id: ioas, num_iovas: n, allowed_iovas: buf });
  const raw = s.p.memRead(buf, PAGE_SIZE) as Uint8Array;
  const out = [];
  for (let i = 0; i < 4; i++) {
    const rv = new StructView(iommu_iova_range, raw.subarray(i * 16, i * 16 + 16));
    out.push({ start: rv.big('start'), last: rv.big('last') });
  }
  s.p.munmap(buf, PAGE_SIZE);
  return [r, v.num('num_iovas'), v.big('out_iova_alignment'), out];
}

function allowIovas(s: Sys, ioas: number, ranges: [bigint, bigint][]): number {
  const buf = s.p.mmap(PAGE_SIZE, {});
  ranges.forEach(([a, b], i) => s.p.memWrite(buf + BigInt(i * 16), encodeStruct(iommu_iova_range, { start: a, last: b })));
  const r = call(s.p, s.fd, IOMMU_IOAS_ALLOW_IOVAS, iommu_ioas_allow_iovas, { ioas_id: ioas, num_iovas: ranges.length, allowed_iovas: buf })[0];
  s.p.munmap(buf, PAGE_SIZE);
  return r;
}

function hwInfo(s: Sys, devId: number, type: number, dataLen: number): [number, StructView<keyof typeof iommu_hw_info.fields>, Uint8Array] {
  const buf = s.p.mmap(PAGE_SIZE, {});
  s.p.memWrite(buf, new Uint8Array(dataLen).fill(0xcc));
  const [r, v] = call(s.p, s.fd, IOMMU_GET_HW_INFO, iommu_hw_info, {
    dev_id: devId,
    data_len: dataLen,
    data_uptr: dataLen === 0 ? 0n : buf,
    out_data_type: type, // in_data_type shares the field
    flags: type !== IOMMU_HW_INFO_TYPE_DEFAULT ? IOMMU_HW_INFO_FLAG_INPUT_TYPE : 0,
  });
  const data = s.p.memRead(buf, Math.max(dataLen, 1)) as Uint8Array;
  s.p.munmap(buf, PAGE_SIZE);
  return [r, v, data];
}

/** check_access_rw through device DMA: reads and writes of 1..63 bytes at every offset around a page boundary. */
function checkDmaRw(t: Test, s: Sys, dev: StandIn, iova: bigint, va: bigint): void {
  let bad = 0;
  let n = 0;
  for (let a = iova + P - 50n; a < iova + P + 50n; a += 3n) {
    for (let len = 1; len < 64; len += 5) {
      n++;
      const r = dev.fn.dmaRead(a, len);
      const want = s.p.memRead(va + (a - iova), len) as Uint8Array;
      if (!r.ok || !sameBytes(r.data!, want)) bad++;
      const data = new Uint8Array(len).map((_, i) => (i * 31 + n) & 0xff);
      const w = dev.fn.dmaWrite(a, data);
      const got = s.p.memRead(va + (a - iova), len) as Uint8Array;
      if (!w.ok || !sameBytes(got, data)) bad++;
    }
  }
  t.equal(bad, 0, `${n} DMA reads and writes across a page boundary see the process's memory`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const ioasCases = (kind: MachineKind, v: IoasVariant): Ported<Ioas>[] => {
  const n = (c: string): string => `iommufd_ioas.${v.name}.${c}`;
  const hw = HW[kind];
  return [
    { name: n('ioas_auto_destroy'), run: () => {} },
    {
      name: n('ioas_destroy'),
      run: (t, s) => {
        if (s.dev) t.equal(destroy(s, s.ioas), -E.EBUSY, 'IOAS cannot be freed while a device has a HWPT using it');
        else t.equal(destroy(s, s.ioas), 0, 'can allocate and manually free an IOAS table');
      },
    },
    {
      name: n('alloc_hwpt_nested'),
      run: (t, s) => {
        if (s.dev) {
          t.equal(hwptAlloc(s, s.ioas, s.deviceId)[0], -E.ENOENT, 'dev_id is not a device');
          t.equal(hwptAlloc(s, s.deviceId, s.deviceId)[0], -E.EINVAL, 'pt_id is a device');
          t.equal(hwptAlloc(s, s.deviceId, s.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID)[0], -E.EOPNOTSUPP, 'NEST_PARENT | FAULT_ID_VALID');
          const [rp, parent] = hwptAlloc(s, s.deviceId, s.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
          t.equal(rp, 0, 'a nesting parent');
          const [rn, notWork] = hwptAlloc(s, s.deviceId, s.ioas, 0);
          t.equal(rn, 0, 'a plain paging HWPT');
          const data = s.p.mmap(PAGE_SIZE, { populate: true });
          const nested = (pt: number, flags: number, type: number, uptr: bigint, len: number): number =>
            hwptAlloc(s, s.deviceId, pt, flags, { data_type: type, data_uptr: uptr, data_len: len })[0];
          t.equal(nested(parent, 0, IOMMU_HWPT_DATA_NONE, data, 8), -E.EINVAL, 'DATA_NONE with data');
          t.equal(nested(parent, 0, IOMMU_HWPT_DATA_SELFTEST + 1, data, 8), -E.EOPNOTSUPP, 'a data type the driver lacks');
          t.equal(nested(parent, 0, IOMMU_HWPT_DATA_SELFTEST, data, 8), -E.EOPNOTSUPP, "the mock's own type is one no real driver has");
          t.equal(destroy(s, parent), 0);
          t.equal(destroy(s, notWork), 0);
          s.p.munmap(data, PAGE_SIZE);
        } else {
          t.equal(hwptAlloc(s, 0, s.ioas)[0], -E.ENOENT, 'no device 0');
          t.equal(hwptAlloc(s, 0, 0, 0, { data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: s.buffer })[0], -E.ENOENT);
        }
      },
    },
    {
      name: n('hwpt_attach'),
      run: (t, s) => {
        if (s.dev) {
          const d = standIn(s, s.hwpt, spareDevice(s));
          t.type(d, 'object', 'a device attached directly to a HWPT');
          if (typeof d === 'object') s.others.push(d);
        } else {
          t.equal(standIn(s, s.hwpt, spareDevice(s)), -E.ENOENT, 'no HWPT 0');
        }
      },
    },
    {
      name: n('ioas_area_destroy'),
      run: (t, s) => {
        t.equal(ioasMap(s, s.ioas, s.buffer, PAGE_SIZE, s.baseIova)[0], 0);
        if (s.dev) t.equal(destroy(s, s.ioas), -E.EBUSY);
        else t.equal(destroy(s, s.ioas), 0);
      },
    },
    {
      name: n('ioas_area_auto_destroy'),
      run: (t, s) => {
        for (let i = 0n; i < 10n; i++) t.equal(ioasMap(s, s.ioas, s.buffer, PAGE_SIZE, s.baseIova + i * P)[0], 0);
      },
    },
    {
      name: n('get_hw_info'),
      run: (t, s) => {
        if (s.dev) {
          const [r0, v0] = hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, 0);
          t.equal(r0, 0, 'a zero-size user buffer');
          t.equal(v0.num('out_data_type'), hw.infoType);
          t.equal(v0.num('data_len'), hw.infoSize, 'data_len is the driver struct');
          const [r1, v1] = hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, hw.infoSize);
          t.equal(r1, 0, 'the exact size');
          t.equal(v1.num('data_len'), hw.infoSize);
          t.equal(hwInfo(s, s.deviceId, hw.infoType + 1, hw.infoSize)[0], -E.EOPNOTSUPP, 'a wrong data_type');
          t.equal(hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_SELFTEST, hw.infoSize)[0], -E.EOPNOTSUPP, "the mock's type");
          t.equal(hwInfo(s, s.deviceId, hw.infoType, hw.infoSize)[0], 0, 'the right one');
          const [r2, v2, d2] = hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, hw.infoSize + 8);
          t.equal(r2, 0, 'a larger buffer');
          t.equal(v2.num('data_len'), hw.infoSize, 'data_len says what the kernel wrote');
          t.same(d2.subarray(hw.infoSize), new Uint8Array(8), 'the trailing bytes are zeroed');
          const [r3, , d3] = hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, 8);
          t.equal(r3, 0, 'a smaller buffer');
          t.equal(new DataView(d3.buffer, d3.byteOffset, 8).getUint32(0, true), hw.infoFlags, `the fields in range are written (flags ${hw.infoFlags})`);
          t.same(d3.subarray(4, 8), new Uint8Array(4), 'and the reserved/next field after them');
          t.equal(hwInfo(s, s.deviceId, IOMMU_HW_INFO_TYPE_DEFAULT, 0)[1].num('out_max_pasid_log2'), 0, 'max_pasid of a device without PASID');
          if (s.pasidDev) t.equal(hwInfo(s, s.pasidDev.idev, IOMMU_HW_INFO_TYPE_DEFAULT, 0)[1].num('out_max_pasid_log2'), hw.pasidWidth, 'max_pasid of the PASID-capable device');
        } else {
          t.equal(hwInfo(s, 0, IOMMU_HW_INFO_TYPE_DEFAULT, 16)[0], -E.ENOENT);
          t.equal(hwInfo(s, 0, IOMMU_HW_INFO_TYPE_DEFAULT, 24)[0], -E.ENOENT);
        }
      },
    },
    {
      name: n('area'),
      run: (t, s) => {
        for (let i = 0n; i < 10n; i++) t.equal(ioasUnmap(s, s.ioas, i * P, P)[0], -E.ENOENT, 'unmap fails if nothing is mapped');
        for (let i = 0n; i < 10n; i++) t.equal(ioasMap(s, s.ioas, s.buffer, PAGE_SIZE, s.baseIova + i * P)[0], 0);
        for (let i = 0n; i < 10n; i++) t.equal(ioasUnmap(s, s.ioas, s.baseIova + i * P, P)[0], 0, 'unmap works');
        t.equal(ioasMap(s, s.ioas, s.buffer, 2 * PAGE_SIZE, s.baseIova + 16n * P)[0], 0);
        t.equal(ioasUnmap(s, s.ioas, s.baseIova + 16n * P, P)[0], -E.ENOENT, 'split fails');
        t.equal(ioasUnmap(s, s.ioas, s.baseIova + 17n * P, P)[0], -E.ENOENT);
        for (const [len, at] of [[2, 16n], [1, 16n], [1, 17n], [2, 15n], [3, 15n]] as const) t.equal(ioasMap(s, s.ioas, s.buffer, len * PAGE_SIZE, s.baseIova + at * P)[0], -E.EEXIST, 'over map fails');
        t.equal(ioasUnmap(s, s.ioas, 0n, U64_MAX)[0], 0, 'unmap all works');
        t.equal(ioasUnmap(s, s.ioas, 0n, U64_MAX)[0], 0, 'unmap all succeeds on an empty IOAS');
      },
    },
    {
      name: n('unmap_fully_contained_areas'),
      run: (t, s) => {
        const base = s.baseIova + 4n * P;
        for (let i = 0n; i < 4n; i++) t.equal(ioasMap(s, s.ioas, s.buffer, 8 * PAGE_SIZE, base + i * 16n * P)[0], 0);
        t.equal(ioasUnmap(s, s.ioas, base - 4n * P, 8n * P)[0], -E.ENOENT, 'not fully contained');
        t.equal(ioasUnmap(s, s.ioas, base + 3n * 16n * P + 8n * P - 4n * P, 8n * P)[0], -E.ENOENT);
        t.same(ioasUnmap(s, s.ioas, base - 4n * P, 3n * 16n * P + 8n * P + 4n * P), [0, 32n * P], 'fully contained areas unmap');
      },
    },
    {
      name: n('area_auto_iova'),
      run: (t, s) => {
        const iovas: bigint[] = [];
        for (let i = 0; i < 10; i++) {
          const [r, iova] = ioasMap(s, s.ioas, s.buffer, PAGE_SIZE);
          t.equal(r, 0);
          iovas.push(iova);
        }
        for (const iova of iovas) t.equal(ioasUnmap(s, s.ioas, iova, P)[0], 0);
        const lowBit = (x: number): bigint => BigInt(x & -x);
        iovas.length = 0;
        for (let i = 0; i < 10; i++) {
          const length = PAGE_SIZE * (i + 1);
          // Without a domain nothing is pinned, so any user address maps.
          const [r, iova] = ioasMap(s, s.ioas, s.dev ? s.buffer : 1n << 31n, length);
          t.equal(r, 0);
          t.equal(iova % lowBit(length), 0n, `the kernel aligns the IOVA of ${length} bytes`);
          iovas.push(iova);
        }
        for (let i = 0; i < 10; i++) t.equal(ioasUnmap(s, s.ioas, iovas[i]!, PAGE_SIZE * (i + 1))[0], 0);
        // The mock's ADD_RESERVED block is left out; the real reserved region is the MSI window.
        if (s.dev) t.equal(allowIovas(s, s.ioas, [[hw.msi[0] - P, hw.msi[0] + P]]), -E.EADDRINUSE, 'an allowed region over the reserved MSI window');
        const range: [bigint, bigint] = s.dev ? [MOCK_APERTURE_START + P, MOCK_APERTURE_START + 600n * P - 1n] : [200n * P, 600n * P - 1n];
        t.equal(allowIovas(s, s.ioas, [range]), 0);
        iovas.length = 0;
        for (let i = 0; i < 10; i++) {
          const length = PAGE_SIZE * (i + 1);
          const [r, iova] = ioasMap(s, s.ioas, s.buffer, length);
          t.equal(r, 0);
          t.equal(iova % lowBit(length), 0n);
          t.ok(iova >= range[0] && iova + BigInt(length) <= range[1] + 1n, 'inside the allowed region');
          iovas.push(iova);
        }
        for (let i = 0; i < 10; i++) t.equal(ioasUnmap(s, s.ioas, iovas[i]!, PAGE_SIZE * (i + 1))[0], 0);
      },
    },
    { name: n('reserved_overflow'), skip: `IOMMU_TEST_OP_ADD_RESERVED: ${MOCK_OPS}` },
    {
      name: n('area_allowed'),
      // IOMMU_TEST_OP_ADD_RESERVED becomes a device attach: its reserved MSI window is added to the
      // IOAS by the same iopt_reserve_iova() (iopt_table_enforce_dev_resv_regions).
      run: (t, s) => {
        const near: [bigint, bigint] = [hw.msi[0] - 16n * P, hw.msi[0] + 600n * P];
        if (!s.dev) {
          t.equal(allowIovas(s, s.ioas, [near]), 0, 'an allowed range over where the MSI window will be');
          t.equal(standIn(s, s.ioas, spareDevice(s)), -E.EADDRINUSE, 'reserved intersects an allowed: the attach is refused');
          t.equal(allowIovas(s, s.ioas, []), 0, 'clear the allowed ranges');
          s.others.push(mustStandIn(s, s.ioas, spareDevice(s)));
        }
        // A device is attached now: its MSI window is reserved.
        t.equal(allowIovas(s, s.ioas, [near]), -E.EADDRINUSE, 'allowed intersects a reserved');
      },
    },
    {
      name: n('copy_area'),
      run: (t, s) => {
        t.equal(ioasMap(s, s.ioas, s.buffer, PAGE_SIZE, s.baseIova)[0], 0);
        t.equal(ioasCopy(s, s.ioas, s.ioas, s.baseIova, P, s.baseIova + P, IOMMU_IOAS_MAP_WRITEABLE)[0], 0, 'copy inside a single IOAS');
        const dst = ioasAlloc(s);
        t.equal(ioasCopy(s, dst, s.ioas, s.baseIova, P, 0n, IOMMU_IOAS_MAP_WRITEABLE)[0], 0, "copy between IOAS's");
      },
    },
    {
      name: n('iova_ranges'),
      run: (t, s) => {
        const [r, num, align, ranges] = ioasRanges(s, s.ioas, 256);
        t.equal(r, 0, 'the ranges can be read');
        if (!s.dev) {
          t.equal(num, 1);
          t.same(ranges[0], { start: 0n, last: U64_MAX });
          t.equal(align, 1n);
        } else {
          // The real domain: its aperture less the reserved MSI window (the mock has one range, its aperture).
          t.equal(num, 2, 'the aperture split by the MSI window');
          t.same(ranges.slice(0, 2), [
            { start: 0n, last: hw.msi[0] - 1n },
            { start: hw.msi[1] + 1n, last: hw.apertureEnd },
          ]);
          t.equal(align, P, 'the domain page size');
        }
        const [r2, num2, , ranges2] = ioasRanges(s, s.ioas, 0);
        t.equal(r2, -E.EMSGSIZE, 'buffer too small');
        t.equal(num2, s.dev ? 2 : 1, 'num_iovas says how many there are');
        t.same(ranges2[0], { start: 0n, last: 0n }, 'nothing written');
        if (s.dev) {
          const [r3, num3, , ranges3] = ioasRanges(s, s.ioas, 1);
          t.equal(r3, -E.EMSGSIZE);
          t.equal(num3, 2);
          t.same(ranges3[0], { start: 0n, last: hw.msi[0] - 1n }, 'the first range fits and is written');
          t.same(ranges3[1], { start: 0n, last: 0n });
        }
      },
    },
    {
      name: n('access_domain_destory'),
      run: (t, s) => {
        const size = 4 * 1024 * 1024;
        const buf = s.p.mmap(size, { hugepage: '2M', populate: true, shared: true });
        t.ok(buf > 0n, 'MAP_HUGETLB | MAP_POPULATE');
        t.equal(buf % BigInt(2 * 1024 * 1024), 0n, 'a hugetlb mapping is aligned to its page size');
        t.equal(ioasMap(s, s.ioas, buf, size, s.baseIova)[0], 0);
        // The mock access pins [base + 4K, +4K]; a device DMA reads through it instead.
        const d = s.dev ?? mustStandIn(s, s.ioas, spareDevice(s));
        if (!s.dev) s.others.push(d);
        checkMap(t, s, d, s.baseIova + P, buf + P, PAGE_SIZE);
        if (s.dev) {
          t.equal(s.p.close(s.dev.cdev), 0, 'destroying the device unpins across the huge page boundary');
          s.devs = s.devs.filter((x) => x !== s.dev);
          s.dev = undefined;
        }
        t.equal(ioasUnmap(s, s.ioas, s.baseIova, size)[0], 0);
        t.equal(s.p.munmap(buf, size), 0);
      },
    },
    { name: n('access_pin'), skip: 'IOMMU_TEST_OP_ACCESS_PAGES pins through an in-kernel iommufd_access (an emulated mdev); device DMA has no user-visible pin to check' },
    { name: n('access_pin_unmap'), skip: 'IOMMU_TEST_OP_ACCESS_PAGES with an unmap notifier of an in-kernel iommufd_access; no device-DMA counterpart' },
    {
      name: n('access_rw'),
      skip: v.mockDomains === 0 ? 'the mock access reads an IOAS without a domain; a device must be attached (giving it a domain) to DMA' : undefined,
      run: (t, s) => {
        const [r, iova] = ioasMap(s, s.ioas, s.buffer, BUFFER_SIZE);
        t.equal(r, 0);
        checkDmaRw(t, s, s.dev!, iova, s.buffer);
        t.equal(ioasUnmap(s, s.ioas, iova, BUFFER_SIZE)[0], 0);
      },
    },
    { name: n('access_rw_unaligned'), skip: "maps at an IOVA aligned to the mock's 2 KiB MOCK_PAGE_SIZE; both real IOMMUs have 4 KiB pages (-EINVAL)" },
    {
      name: n('fork_gone'),
      run: (t, s) => {
        const child = s.p.fork();
        const m = child.ioctl(s.fd, IOMMU_IOAS_MAP, encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags: IOMMU_IOAS_MAP_FIXED_IOVA | 6, ioas_id: s.ioas, user_va: s.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START }));
        t.equal(m, 0, 'the child maps its copy of the buffer');
        child.exit();
        if (s.dev) {
          // Everything was pinned within the fork: this copies from one domain to another.
          const d = standIn(s, s.ioas, spareDevice(s));
          t.type(d, 'object', 'another device attaches');
          if (typeof d === 'object') {
            s.others.push(d);
            checkMap(t, s, d, MOCK_APERTURE_START, s.buffer, BUFFER_SIZE, "the device reads the gone child's pages (same bytes as the parent's)");
          }
        } else {
          t.equal(standIn(s, s.ioas, spareDevice(s)), -E.EFAULT, 'pinning needs the mm, which is gone');
        }
      },
    },
    {
      name: n('fork_present'),
      run: (t, s) => {
        const child = s.p.fork();
        const m = child.ioctl(s.fd, IOMMU_IOAS_MAP, encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags: IOMMU_IOAS_MAP_FIXED_IOVA | 6, ioas_id: s.ioas, user_va: s.buffer, length: BigInt(BUFFER_SIZE), iova: MOCK_APERTURE_START }));
        t.equal(m, 0);
        // The child writes its copy (copy-on-write), so its pages differ from the parent's.
        child.memWrite(s.buffer, new Uint8Array(64).fill(0xc1));
        const d = standIn(s, s.ioas, spareDevice(s));
        t.type(d, 'object', 'a device attaches; the pages come from the remote process');
        if (typeof d === 'object') {
          s.others.push(d);
          const r = d.fn.dmaRead(MOCK_APERTURE_START, 64);
          if (s.dev) t.ok(r.ok, 'readable');
          else t.same(r.ok && r.data, new Uint8Array(64).fill(0xc1), "the device reads the child's pages");
        }
        child.exit();
      },
    },
    {
      name: n('ioas_option_huge_pages'),
      run: (t, s) => {
        const o = (op: number, val: number): [number, bigint] => option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op, val64: val, object_id: s.ioas });
        t.same(o(IOMMU_OPTION_OP_GET, 3), [0, 1n]);
        t.equal(o(IOMMU_OPTION_OP_SET, 0)[0], 0);
        t.same(o(IOMMU_OPTION_OP_GET, 3), [0, 0n]);
        t.equal(o(IOMMU_OPTION_OP_SET, 2)[0], -E.EINVAL);
        t.equal(o(IOMMU_OPTION_OP_SET, 1)[0], 0);
      },
    },
    {
      name: n('ioas_iova_alloc'),
      run: (t, s) => {
        let bad = 0;
        // The kernel sweeps every length below 2 pages; the real domains' page is 4 KiB (the mock's 2 KiB).
        for (let length = 1; length < PAGE_SIZE * 2; length += length < 64 ? 1 : 61) {
          if (v.mockDomains && length % PAGE_SIZE) {
            if (ioasMap(s, s.ioas, s.buffer, length)[0] !== -E.EINVAL) bad++;
          } else {
            const [r, iova] = ioasMap(s, s.ioas, s.buffer, length);
            if (r !== 0 || ioasUnmap(s, s.ioas, iova, length)[0] !== 0) bad++;
          }
        }
        const [r, iova] = ioasMap(s, s.ioas, s.buffer, PAGE_SIZE);
        t.equal(r, 0);
        t.equal(ioasUnmap(s, s.ioas, iova, PAGE_SIZE)[0], 0);
        t.equal(bad, 0, 'unaligned lengths fail only with a domain');
      },
    },
    {
      name: n('ioas_align_change'),
      run: (t, s) => {
        if (v.mockDomains) return;
        const o = (val: number): number => option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, val64: val, object_id: s.ioas })[0];
        t.equal(ioasMap(s, s.ioas, s.buffer, PAGE_SIZE, MOCK_APERTURE_START)[0], 0);
        t.equal(o(0), 0, 'upgrade to PAGE_SIZE alignment when things are aligned');
        t.equal(ioasMap(s, s.ioas, s.buffer + 2048n, PAGE_SIZE, MOCK_APERTURE_START + P)[0], -E.EINVAL, 'misalignment is rejected at map time');
        t.equal(o(0), 0);
        t.equal(o(1), 0, 'reduce alignment');
        t.equal(ioasMap(s, s.ioas, s.buffer + 2048n, PAGE_SIZE, MOCK_APERTURE_START + P)[0], 0);
        t.equal(o(0), -E.EADDRINUSE, 'misalignment is rejected during the upgrade');
        t.equal(ioasUnmap(s, s.ioas, MOCK_APERTURE_START + P, P)[0], 0);
        t.equal(ioasUnmap(s, s.ioas, MOCK_APERTURE_START, P)[0], 0);
      },
    },
    {
      name: n('copy_sweep'),
      run: (t, s) => {
        const dst = ioasAlloc(s);
        // MOCK_PAGE_SIZE (2 KiB) copies into an IOAS without a domain (alignment 1), so the length carries over.
        const len = 2048n;
        const last = v.mockDomains ? MOCK_APERTURE_START + BigInt(BUFFER_SIZE) - 1n : MOCK_APERTURE_START + BigInt(BUFFER_SIZE) - 2n;
        t.equal(ioasMap(s, s.ioas, s.buffer, last - MOCK_APERTURE_START + 1n, MOCK_APERTURE_START)[0], 0);
        const bad: string[] = [];
        let copies = 0;
        for (let iova = MOCK_APERTURE_START - P; iova <= last; iova += 511n) {
          const r = ioasCopy(s, dst, s.ioas, iova, len, MOCK_APERTURE_START, IOMMU_IOAS_MAP_WRITEABLE)[0];
          if (iova < MOCK_APERTURE_START || iova + len - 1n > last) {
            if (r !== -E.ENOENT) bad.push(`${iova.toString(16)}: ${r}, want ENOENT`);
          } else {
            copies++;
            if (r !== 0 || ioasUnmap(s, dst, MOCK_APERTURE_START, len)[0] !== 0) bad.push(`${iova.toString(16)}: ${r}, want 0`);
          }
        }
        t.same(bad, [], 'every copy answers as the kernel does');
        t.ok(copies > 0, `${copies} copies made`);
        t.equal(destroy(s, dst), 0);
      },
    },
    { name: n('dmabuf_simple'), skip: 'IOMMU_TEST_OP_DMABUF_GET: a dma-buf exported by the selftest module (and a 7.3.4 bug makes it fail on the rig)' },
    { name: n('dmabuf_revoke'), skip: 'IOMMU_TEST_OP_DMABUF_GET/REVOKE: a dma-buf exported by the selftest module (and a 7.3.4 bug makes it fail on the rig)' },
  ];
};

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_mock_domain): one IOAS with one or two devices; hugetlb and memfd-backed buffers.

interface MdVariant {
  name: string;
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}

const MD_VARIANTS: MdVariant[] = [
  { name: 'one_domain', mockDomains: 1, hugepages: false, file: false },
  { name: 'two_domains', mockDomains: 2, hugepages: false, file: false },
  { name: 'one_domain_hugepage', mockDomains: 1, hugepages: true, file: false },
  { name: 'two_domains_hugepage', mockDomains: 2, hugepages: true, file: false },
  { name: 'one_domain_file', mockDomains: 1, hugepages: false, file: true },
  { name: 'one_domain_file_hugepage', mockDomains: 1, hugepages: true, file: true },
];

interface Md extends Sys {
  v: MdVariant;
  ioas: number;
  devs: StandIn[];
  others: StandIn[];
  bufSize: number;
  /** The kernel's mfd / mfd_buffer: a memfd of BUFFER_SIZE mapped shared. */
  mfd: number;
  mfdBuffer: bigint;
}

/** mmap with the fixture's mmap_flags: MAP_SHARED | MAP_ANONYMOUS, plus MAP_HUGETLB | MAP_POPULATE for the hugepage variants. */
function mdMmap(s: Md, size: number): bigint {
  return s.p.mmap(size, s.v.hugepages ? { shared: true, hugepage: '2M', populate: true } : { shared: true });
}

/** memfd_mmap(): a memfd of `length`, mapped MAP_SHARED: [mfd, address]. */
function memfdMmap(s: Sys, length: number): [number, bigint] {
  const mfd = s.p.memfd_create('buffer', 0);
  if (mfd < 0 || s.p.ftruncate(mfd, length) < 0) throw new Error(`memfd ${mfd}`);
  const va = s.p.mmap(length, { fd: mfd, offset: 0n, shared: true });
  if (va < 0n) throw new Error(`mmap memfd ${va}`);
  return [mfd, va];
}

/** check_mock_iova through every device (the kernel checks hwpt_ids[0] and [1]). */
function checkMockIova(t: Test, s: Md, va: bigint, iova: bigint, length: number, msg?: string): void {
  for (const d of s.devs) checkMap(t, s, d, iova, va, length, msg ?? `${d.fn.bdf} reads the mapped pages`);
}

/** check_refs(buf, len, 1) as the process's pinned-page count: every page of the range pinned once. */
function checkPinned(t: Test, s: Sys, pages: number, msg = 'pinned once'): void {
  t.equal(s.p.mm.pinnedVm, pages, msg);
}

const mdCases = (v: MdVariant): Ported<Md>[] => {
  const n = (c: string): string => `iommufd_mock_domain.${v.name}.${c}`;
  return [
    {
      name: n('basic'),
      run: (t, s) => {
        if (v.file) {
          const [r, iova] = ioasMapFile(s, s.ioas, s.mfd, 0, PAGE_SIZE);
          t.equal(r, 0, 'a simple one page map');
          checkMockIova(t, s, s.mfdBuffer, iova, PAGE_SIZE);
          const [tmp] = memfdMmap(s, s.bufSize);
          t.equal(ioasMapFile(s, s.ioas, tmp, 0, s.bufSize + 1)[0], -E.EINVAL, 'beyond the file');
          t.equal(s.p.ftruncate(tmp, 0), 0);
          t.equal(ioasMapFile(s, s.ioas, tmp, 0, s.bufSize)[0], -E.EINVAL, 'a truncated file');
          s.p.close(tmp);
        } else {
          const [r, iova] = ioasMap(s, s.ioas, s.buffer, PAGE_SIZE);
          t.equal(r, 0, 'a simple one page map');
          checkMockIova(t, s, s.buffer, iova, PAGE_SIZE);
          const buf = mdMmap(s, s.bufSize);
          t.ok(buf > 0n, 'mmap');
          if (v.hugepages) t.equal(buf % BigInt(2 * 1024 * 1024), 0n, 'MAP_HUGETLB is aligned to its page size');
          t.equal(s.p.munmap(buf + BigInt(s.bufSize / 2), s.bufSize / 2), 0);
          t.equal(ioasMap(s, s.ioas, buf, s.bufSize)[0], -E.EFAULT, 'EFAULT half way through mapping');
          t.equal(s.p.munmap(buf, s.bufSize / 2), 0);
          t.equal(ioasMap(s, s.ioas, buf, s.bufSize)[0], -E.EFAULT, 'EFAULT on the first page');
        }
      },
    },
    {
      name: n('ro_unshare'),
      run: (t, s) => {
        // /proc/self/exe mapped MAP_PRIVATE becomes a memfd mapped MAP_PRIVATE: a private file page.
        const [mfd] = memfdMmap(s, PAGE_SIZE);
        s.p.pwrite(mfd, new Uint8Array(PAGE_SIZE).fill(0x7e), 0n);
        const buf = s.p.mmap(PAGE_SIZE, { fd: mfd, offset: 0n, shared: false });
        s.p.close(mfd);
        if (buf < 0n) {
          t.fail(`MAP_PRIVATE file mapping: ${buf}`);
          return;
        }
        const [r, iova] = ioasMap(s, s.ioas, buf, PAGE_SIZE, undefined, 4 /* IOMMU_IOAS_MAP_READABLE */);
        t.equal(r, 0);
        checkMockIova(t, s, buf, iova, PAGE_SIZE);
        s.p.memWrite(buf, new Uint8Array(PAGE_SIZE).fill(1));
        checkMockIova(t, s, buf, iova, PAGE_SIZE, 'the write after a read-only pin does not change the page (unshared at pin time)');
        t.equal(s.p.munmap(buf, PAGE_SIZE), 0);
      },
    },
    ...(['all_aligns', 'all_aligns_copy'] as const).map(
      (name): Ported<Md> => ({
        name: n(name),
        run: (t, s) => {
          // MOCK_PAGE_SIZE (2 KiB) steps become the real domains' 4 KiB page.
          const step = v.hugepages ? s.bufSize / 16 : PAGE_SIZE;
          let mfd = -1;
          let buf: bigint;
          if (v.file) [mfd, buf] = memfdMmap(s, s.bufSize);
          else buf = mdMmap(s, s.bufSize);
          fillPattern(s.p, buf, Math.min(s.bufSize, 16 * PAGE_SIZE));
          checkPinned(t, s, 0, 'nothing pinned');
          let combos = 0;
          for (let start = 0; start < s.bufSize; start += step) {
            for (let end = v.hugepages ? s.bufSize : start + PAGE_SIZE; end < s.bufSize; end += PAGE_SIZE) {
              const length = end - start;
              const [r, iova] = v.file ? ioasMapFile(s, s.ioas, mfd, start, length) : ioasMap(s, s.ioas, buf + BigInt(start), length);
              t.equal(r, 0, `map [${start}, ${end})`);
              let extra: StandIn | undefined;
              if (name === 'all_aligns_copy') {
                // Add and destroy a domain while the area exists.
                extra = mustStandIn(s, s.ioas, spareOf(s));
                checkMap(t, s, extra, iova, buf + BigInt(start), length, 'a device attached later reads it');
              }
              checkMockIova(t, s, buf + BigInt(start), iova, length);
              checkPinned(t, s, end / PAGE_SIZE - start / PAGE_SIZE);
              if (extra) t.equal(s.p.close(extra.cdev), 0);
              t.equal(ioasUnmap(s, s.ioas, iova, length)[0], 0);
              combos++;
            }
          }
          checkPinned(t, s, 0, 'nothing pinned after');
          t.equal(s.p.munmap(buf, s.bufSize), 0);
          if (v.file) s.p.close(mfd);
          t.pass(`${combos} start/length combinations`);
        },
      }),
    ),
    {
      name: n('user_copy'),
      run: (t, s) => {
        // The mock access's pin of the source is left out: the copy itself must pin the pages from an IOAS without domains.
        const buf = v.file ? s.mfdBuffer : s.buffer;
        const src = ioasAlloc(s);
        const [r1, srcIova] = v.file ? ioasMapFile({ ...s }, src, s.mfd, 0, BUFFER_SIZE) : ioasMap(s, src, buf, BUFFER_SIZE);
        t.equal(r1, 0);
        t.equal(ioasCopy(s, s.ioas, src, srcIova, BUFFER_SIZE, MOCK_APERTURE_START, IOMMU_IOAS_MAP_WRITEABLE)[0], 0, 'copy into the IOAS with domains');
        checkMockIova(t, s, buf, MOCK_APERTURE_START, BUFFER_SIZE);
        const next = ioasAlloc(s);
        const [r2, nextIova] = v.file ? ioasMapFile(s, next, s.mfd, 0, BUFFER_SIZE) : ioasMap(s, next, buf, BUFFER_SIZE);
        t.equal(r2, 0);
        t.equal(ioasUnmap(s, s.ioas, MOCK_APERTURE_START, BUFFER_SIZE)[0], 0, 'clean up the copied mapping');
        t.equal(destroy(s, src), 0, 'destroy the old IOAS');
        t.equal(ioasCopy(s, s.ioas, next, nextIova, BUFFER_SIZE, MOCK_APERTURE_START, IOMMU_IOAS_MAP_WRITEABLE)[0], 0, 'the same again from the new IOAS');
        checkMockIova(t, s, buf, MOCK_APERTURE_START, BUFFER_SIZE);
        t.equal(destroy(s, next), 0);
      },
    },
    {
      name: n('replace'),
      run: (t, s) => {
        const ioas = ioasAlloc(s);
        const d0 = s.devs[0]!;
        t.equal(attachPt(s, d0.cdev, ioas)[0], 0, 'replace onto another IOAS');
        if (v.mockDomains === 1) t.equal(attachPt(s, d0.cdev, d0.hwpt)[0], -E.ENOENT, 'the prior automatic HWPT was freed');
        t.equal(attachPt(s, d0.cdev, ioas)[0], 0);
        if (v.mockDomains >= 2) {
          const d1 = s.devs[1]!;
          t.equal(attachPt(s, d0.cdev, d1.hwpt)[0], 0);
          t.equal(attachPt(s, d0.cdev, d1.hwpt)[0], 0);
          t.equal(attachPt(s, d0.cdev, d0.hwpt)[0], 0);
        }
        t.equal(attachPt(s, d0.cdev, s.ioas)[0], 0);
        t.equal(destroy(s, ioas), 0);
      },
    },
    {
      name: n('alloc_hwpt'),
      run: (t, s) => {
        for (const d of s.devs) {
          t.equal(hwptAlloc(s, d.idev, s.ioas, ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0)[0], -E.EOPNOTSUPP, 'unknown flags');
          const [ra, h0] = hwptAlloc(s, d.idev, s.ioas, 0);
          const [rb, h1] = hwptAlloc(s, d.idev, s.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
          t.equal(ra, 0);
          t.equal(rb, 0);
          t.equal(attachPt(s, d.cdev, h0)[0], 0, 'rotate onto the first');
          t.equal(destroy(s, h0), -E.EBUSY);
          t.equal(attachPt(s, d.cdev, h1)[0], 0, 'onto the nesting parent');
          t.equal(destroy(s, h1), -E.EBUSY);
          t.equal(attachPt(s, d.cdev, s.ioas)[0], 0, 'back to the IOAS');
          t.equal(destroy(s, h1), 0);
          const other = mustStandIn(s, h0, spareOf(s));
          t.equal(s.p.close(other.cdev), 0);
          t.equal(destroy(s, h0), 0);
        }
      },
    },
  ];
};

function spareOf(s: { devs: StandIn[]; others: StandIn[] }): { bdf: string; minor: number } {
  const used = new Set([...s.devs, ...s.others].map((d) => d.fn.bdf));
  const f = [...STAND_INS, PASID_STAND_IN].find((d) => !used.has(d.bdf));
  if (f === undefined) throw new Error('no spare endpoint');
  return f;
}

function mdSetup(kind: MachineKind, v: MdVariant): Md {
  const s = boot(kind) as Md;
  s.v = v;
  s.ioas = ioasAlloc(s);
  s.devs = [];
  s.others = [];
  for (let i = 0; i < v.mockDomains; i++) s.devs.push(mustStandIn(s, s.ioas, STAND_INS[i]));
  s.bufSize = v.hugepages ? HUGEPAGE_SIZE * 2 : PAGE_SIZE * 8;
  [s.mfd, s.mfdBuffer] = memfdMmap(s, BUFFER_SIZE);
  fillPattern(s.p, s.mfdBuffer, BUFFER_SIZE, 0x33);
  return s;
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(vfio_compat_mock_domain): the IOAS made the VFIO compat IOAS with a device on it.

interface Compat extends Sys {
  version: number;
  ioas: number;
  dev: StandIn;
}

/** ioctl_check_buf: run the ioctl on a BUFFER_SIZE buffer and check nothing past the command's own size was written. */
function ioctlCheckBuf(t: Test, s: Sys, req: number, cmd: Uint8Array): Uint8Array {
  const b = new Uint8Array(BUFFER_SIZE).fill(0xaa);
  b.set(cmd);
  const len = new DataView(cmd.buffer, cmd.byteOffset).getUint32(0, true);
  b.fill(0xaa, len);
  t.equal(s.p.ioctl(s.fd, req, b), 0);
  t.ok(b.subarray(len).every((x) => x === 0xaa), 'nothing written past argsz');
  return b;
}

const compatCases = (kind: MachineKind, version: number, vname: string): Ported<Compat>[] => {
  const n = (c: string): string => `vfio_compat_mock_domain.${vname}.${c}`;
  const hw = HW[kind];
  return [
    { name: n('simple_close'), run: () => {} },
    {
      name: n('option_huge_pages'),
      run: (t, s) => {
        t.same(option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_GET, val64: 3, object_id: s.ioas }), [0, version === VFIO_TYPE1_IOMMU ? 0n : 1n]);
      },
    },
    {
      name: n('get_info'),
      run: (t, s) => {
        const info = (argsz: number): StructView<keyof typeof vfio_iommu_type1_info.fields> & { raw8: Uint8Array } => {
          const b = ioctlCheckBuf(t, s, VFIO_IOMMU_GET_INFO, encodeStruct(vfio_iommu_type1_info, { argsz }));
          return Object.assign(new StructView(vfio_iommu_type1_info, b), { raw8: b });
        };
        const flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
        let v = info(vfio_iommu_type1_info.fields.cap_offset.offset);
        t.not(v.big('iova_pgsizes'), 0n, 'pre-cap ABI');
        t.equal(v.num('flags'), flags);
        v = info(vfio_iommu_type1_info.size);
        t.equal(v.num('flags'), flags);
        t.equal(v.num('cap_offset'), 0, 'the caps do not fit');
        const caplen = v.num('argsz');
        t.ok(caplen > vfio_iommu_type1_info.size, 'argsz says how much the caps need');
        let chains = 0;
        const bad: string[] = [];
        for (let i = vfio_iommu_type1_info.size; i <= caplen; i++) {
          const w = info(i);
          if (w.num('flags') !== flags) bad.push(`${i}: flags`);
          if (w.num('cap_offset') === 0) continue;
          chains++;
          // check_vfio_info_cap_chain: every cap inside argsz, known, well formed.
          const dv = new DataView(w.raw8.buffer);
          let off = w.num('cap_offset');
          const argsz = w.num('argsz');
          for (;;) {
            if (off + 8 > argsz) {
              bad.push(`${i}: cap at ${off} past argsz ${argsz}`);
              break;
            }
            const id = dv.getUint16(off, true);
            const version = dv.getUint16(off + 2, true);
            const next = dv.getUint32(off + 4, true);
            const size = (next || argsz) - off;
            if (version !== 1) bad.push(`${i}: cap ${id} version ${version}`);
            if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
              const nr = dv.getUint32(off + 8, true);
              const r0s = dv.getBigUint64(off + 16, true);
              const r0e = dv.getBigUint64(off + 24, true);
              // The mock has one range, its aperture; the real domains have theirs less the MSI window.
              if (nr !== 2 || r0s !== 0n || r0e !== hw.msi[0] - 1n) bad.push(`${i}: iova ranges ${nr} ${r0s}-${r0e}`);
            } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
              if (size !== 12 && size !== 16) bad.push(`${i}: dma_avail size ${size}`);
            } else bad.push(`${i}: unknown cap ${id}`);
            if (next === 0) break;
            if (next < off || next + 8 > argsz) {
              bad.push(`${i}: next ${next}`);
              break;
            }
            off = next;
          }
        }
        t.same(bad, [], `every argsz up to ${caplen} gives a sound cap chain (${chains} with caps)`);
      },
    },
    {
      name: n('map'),
      run: (t, s) => {
        const m = (vaddr: bigint, iova: bigint, size: bigint): number =>
          s.p.ioctl(s.fd, VFIO_IOMMU_MAP_DMA, encodeStruct(vfio_iommu_type1_dma_map, { argsz: vfio_iommu_type1_dma_map.size, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size }));
        const u = (iova: bigint, size: bigint, flags = 0): [number, bigint] => {
          const b = encodeStruct(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size, flags, iova, size });
          const r = s.p.ioctl(s.fd, VFIO_IOMMU_UNMAP_DMA, b);
          return [r, new StructView(vfio_iommu_type1_dma_unmap, b).big('size')];
        };
        const B = BigInt(BUFFER_SIZE);
        t.equal(m(s.buffer, MOCK_APERTURE_START, B), 0, 'simple map');
        checkMap(t, s, s.dev, MOCK_APERTURE_START, s.buffer, BUFFER_SIZE);
        t.same(u(MOCK_APERTURE_START, B), [0, B], 'and unmap');
        t.equal(u(MOCK_APERTURE_START, B)[0], 0, 'unmap of empty is success');
        t.equal(m(s.buffer, MOCK_APERTURE_START, B), 0);
        t.equal(u(MOCK_APERTURE_START, B, VFIO_DMA_UNMAP_FLAG_ALL)[0], -E.EINVAL, 'UNMAP_FLAG_ALL requires 0 iova/size');
        t.same(u(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL), [0, B]);
        const pages: bigint[] = [];
        for (let i = 0n; i < B / P; i++) {
          pages.push(MOCK_APERTURE_START + i * P);
          t.equal(m(s.buffer + i * P, MOCK_APERTURE_START + i * P, P), 0, 'small pages');
        }
        // shuffle_array with a fixed permutation (deterministic).
        const order = pages.map((_, i) => pages[(i * 7 + 3) % pages.length]!);
        for (const iova of order) t.equal(u(iova, P)[0], 0);
      },
    },
    {
      name: n('huge_map'),
      run: (t, s) => {
        const size = HUGEPAGE_SIZE * 2;
        const buf = s.p.mmap(size, { shared: true, hugepage: '2M', populate: true });
        t.ok(buf > 0n);
        t.equal(s.p.ioctl(s.fd, VFIO_IOMMU_MAP_DMA, encodeStruct(vfio_iommu_type1_dma_map, { argsz: vfio_iommu_type1_dma_map.size, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr: buf, iova: MOCK_APERTURE_START, size: BigInt(size) })), 0);
        const piece = BigInt(size / 16);
        const order = Array.from({ length: 16 }, (_, i) => MOCK_APERTURE_START + BigInt((i * 5 + 2) % 16) * piece);
        for (const iova of order) {
          const r = s.p.ioctl(s.fd, VFIO_IOMMU_UNMAP_DMA, encodeStruct(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size, iova, size: piece }));
          if (version === VFIO_TYPE1_IOMMU) t.equal(r, 0, 'type1 mode can cut up larger mappings');
          else t.equal(r, -E.ENOENT, 'type1v2 always fails');
        }
      },
    },
  ];
};

function compatSetup(kind: MachineKind, version: number): Compat {
  const s = boot(kind) as Compat;
  s.version = version;
  s.ioas = ioasAlloc(s);
  s.dev = mustStandIn(s, s.ioas);
  if (call(s.p, s.fd, IOMMU_VFIO_IOAS, iommu_vfio_ioas, { op: IOMMU_VFIO_IOAS_SET, ioas_id: s.ioas })[0] !== 0) throw new Error('VFIO_IOAS_SET');
  const r = s.p.ioctl(s.fd, VFIO_SET_IOMMU, version);
  if (r !== 0) throw new Error(`VFIO_SET_IOMMU ${r}`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_dirty_tracking): a device on an IOAS; HWPTs with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. The
// mock's IOMMU_TEST_OP_DIRTY (which sets dirty bits by hand) becomes device DMA writes, which the
// SMMUv3 (HTTU) and VT-d (second-stage A/D) models record in their page tables.

interface DirtyVariant {
  name: string;
  /** The kernel's buffer_size, and ours (the 64M and 128M ones are stress sizes; we keep 2 and 4 bitmap pages' worth less). */
  kernelSize: number;
  size: number;
  hugepages: boolean;
}

const MIB = 1024 * 1024;
const DIRTY_VARIANTS: DirtyVariant[] = [
  { name: 'domain_dirty8k', kernelSize: 8 * 1024, size: 8 * 1024, hugepages: false },
  { name: 'domain_dirty16k', kernelSize: 16 * 1024, size: 16 * 1024, hugepages: false },
  { name: 'domain_dirty64k', kernelSize: 64 * 1024, size: 64 * 1024, hugepages: false },
  { name: 'domain_dirty128k', kernelSize: 128 * 1024, size: 128 * 1024, hugepages: false },
  { name: 'domain_dirty320k', kernelSize: 320 * 1024, size: 320 * 1024, hugepages: false },
  { name: 'domain_dirty64M', kernelSize: 64 * MIB, size: 4 * MIB, hugepages: false },
  { name: 'domain_dirty64M_huge', kernelSize: 64 * MIB, size: 8 * MIB, hugepages: true },
  { name: 'domain_dirty128M', kernelSize: 128 * MIB, size: 8 * MIB, hugepages: false },
  { name: 'domain_dirty128M_huge', kernelSize: 128 * MIB, size: 16 * MIB, hugepages: true },
];

interface Dirty extends Sys {
  v: DirtyVariant;
  ioas: number;
  dev: StandIn;
  others: StandIn[];
  dbuf: bigint;
  bitmap: bigint;
}

function setDirtyTracking(s: Sys, hwpt: number, on: boolean): number {
  return call(s.p, s.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, iommu_hwpt_set_dirty_tracking, { hwpt_id: hwpt, flags: on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0 })[0];
}

function getDirtyBitmap(s: Sys, hwpt: number, length: number, iova: bigint, pageSize: number, bitmap: bigint, flags: number): number {
  return call(s.p, s.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, iommu_hwpt_get_dirty_bitmap, { hwpt_id: hwpt, flags, iova, length: BigInt(length), page_size: BigInt(pageSize), data: bitmap })[0];
}

/**
 * _test_mock_dirty_bitmaps with device writes: every other IOPTE (pte_page_size) is written by the
 * device, GET_DIRTY_BITMAP reports exactly those (each as pte_page_size / page_size bits), and a
 * second read reports nothing (or the same with NO_CLEAR).
 */
function dirtyBitmaps(t: Test, s: Dirty, hwpt: number, length: number, iova: bigint, pageSize: number, pteSize: number, bitmap: bigint, flags: number): void {
  const nbits = length / pageSize;
  const npte = pteSize / pageSize;
  const pteset = 2 * npte;
  const bytes = Math.ceil(nbits / 8);
  let writes = 0;
  for (let i = 0; i < nbits; i += pteset) {
    const r = s.dev.fn.dmaWrite(iova + BigInt(i * pageSize), new Uint8Array([0xd1]));
    if (!r.ok) t.fail(`DMA write at ${i}: ${r.fault}`);
    writes++;
  }
  const read = (): Uint8Array => {
    s.p.memWrite(bitmap, new Uint8Array(bytes));
    t.equal(getDirtyBitmap(s, hwpt, length, iova, pageSize, bitmap, flags), 0, 'GET_DIRTY_BITMAP');
    return s.p.memRead(bitmap, bytes) as Uint8Array;
  };
  const bit = (b: Uint8Array, i: number): boolean => ((b[i >> 3]! >> (i & 7)) & 1) === 1;
  let b = read();
  const bad: number[] = [];
  for (let i = 0; i < nbits; i++) if (bit(b, i) !== (i % pteset < npte)) bad.push(i);
  t.same(bad.slice(0, 8), [], `${writes} written IOPTEs read back dirty, the others clean`);
  b = read();
  bad.length = 0;
  const noClear = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  for (let i = 0; i < nbits; i++) if (bit(b, i) !== (noClear && i % pteset < npte)) bad.push(i);
  t.same(bad.slice(0, 8), [], noClear ? 'NO_CLEAR kept them' : 'read already: all clean');
}

const dirtyCases = (v: DirtyVariant): Ported<Dirty>[] => {
  const n = (c: string): string => `iommufd_dirty_tracking.${v.name}.${c}`;
  const bitmapRuns = (flags: number): Ported<Dirty>['run'] => (t, s) => {
    // The real domains track at their page size (4 KiB), where the mock tracks MOCK_PAGE_SIZE.
    const pte = v.hugepages ? HUGEPAGE_SIZE : PAGE_SIZE;
    t.equal(ioasMap(s, s.ioas, s.dbuf, v.size, MOCK_APERTURE_START)[0], 0);
    const [r, hwpt] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    t.equal(r, 0);
    t.equal(attachPt(s, s.dev.cdev, hwpt)[0], 0, 'the device moves onto the dirty-tracking HWPT');
    t.equal(setDirtyTracking(s, hwpt, true), 0);
    dirtyBitmaps(t, s, hwpt, v.size, MOCK_APERTURE_START, PAGE_SIZE, pte, s.bitmap, flags);
    dirtyBitmaps(t, s, hwpt, v.size, MOCK_APERTURE_START, PAGE_SIZE, pte, s.bitmap + 2048n, flags);
    dirtyBitmaps(t, s, hwpt, v.size, MOCK_APERTURE_START, PAGE_SIZE, pte, s.bitmap + 0xff1n, flags);
    t.equal(attachPt(s, s.dev.cdev, s.ioas)[0], 0);
    t.equal(destroy(s, hwpt), 0);
  };
  return [
    {
      name: n('enforce_dirty'),
      run: (t, s) => {
        // The mock's MOCK_FLAGS_DEVICE_NO_DIRTY halves are left out: dirty tracking is the IOMMU's, so every device here has it.
        const [r, hwpt] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        t.equal(r, 0, 'a dirty-tracking HWPT');
        const d = standIn(s, hwpt, spareOf({ devs: [s.dev], others: s.others }));
        t.type(d, 'object', 'another device attaches to it');
        if (typeof d === 'object') t.equal(s.p.close(d.cdev), 0);
        t.equal(destroy(s, hwpt), 0);
      },
    },
    {
      name: n('set_dirty_tracking'),
      run: (t, s) => {
        const [r, hwpt] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        t.equal(r, 0);
        const d = mustStandIn(s, hwpt, spareOf({ devs: [s.dev], others: s.others }));
        t.equal(setDirtyTracking(s, hwpt, true), 0);
        t.equal(setDirtyTracking(s, hwpt, false), 0);
        t.equal(s.p.close(d.cdev), 0);
        t.equal(destroy(s, hwpt), 0);
      },
    },
    {
      name: n('pasid_set_dirty_tracking'),
      run: (t, s) => {
        const [r, hwpt] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        t.equal(r, 0, 'a PASID-compatible dirty-tracking HWPT');
        const d = mustStandIn(s, hwpt, PASID_STAND_IN);
        t.equal(attachPt(s, d.cdev, hwpt, 100)[0], 0, 'PASID 100 attaches');
        t.equal(setDirtyTracking(s, hwpt, true), 0);
        t.equal(setDirtyTracking(s, hwpt, false), 0);
        t.equal(detachPtPasid(s, d.cdev, 100), 0);
        t.equal(s.p.close(d.cdev), 0);
        t.equal(destroy(s, hwpt), 0);
      },
    },
    {
      name: n('device_dirty_capability'),
      run: (t, s) => {
        const [r, hwpt] = hwptAlloc(s, s.dev.idev, s.ioas, 0);
        t.equal(r, 0);
        const d = mustStandIn(s, hwpt, spareOf({ devs: [s.dev], others: s.others }));
        const [ri, vi] = hwInfo(s, s.dev.idev, IOMMU_HW_INFO_TYPE_DEFAULT, 0);
        t.equal(ri, 0);
        t.equal(Number(vi.big('out_capabilities')) & IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING);
        t.equal(s.p.close(d.cdev), 0);
        t.equal(destroy(s, hwpt), 0);
      },
    },
    { name: n('get_dirty_bitmap'), run: bitmapRuns(0) },
    { name: n('get_dirty_bitmap_no_clear'), run: bitmapRuns(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) },
  ];
};

function detachPtPasid(s: Sys, cdev: number, pasid: number): number {
  return call(s.p, cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size, flags: 1, pasid })[0];
}

function dirtySetup(kind: MachineKind, v: DirtyVariant): Dirty {
  const s = boot(kind) as Dirty;
  s.v = v;
  s.others = [];
  const size = v.hugepages ? Math.max(v.size, HUGEPAGE_SIZE) : v.size;
  s.dbuf = s.p.mmap(size, v.hugepages ? { shared: true, hugepage: '2M', populate: true } : { shared: true });
  if (s.dbuf < 0n) throw new Error(`mmap ${s.dbuf}`);
  s.bitmap = s.p.mmap(Math.ceil(v.size / PAGE_SIZE / 8) + 2 * PAGE_SIZE, {});
  s.ioas = ioasAlloc(s);
  // Without huge pages the IOAS maps page by page (IOMMU_OPTION_HUGE_PAGES = 0), as in the kernel.
  if (!v.hugepages) option(s, { option_id: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, val64: 0, object_id: s.ioas });
  s.dev = mustStandIn(s, s.ioas);
  return s;
}

// ---------------------------------------------------------------------------------------------
// FIXTURE(iommufd_viommu) and FIXTURE(iommufd_device_pasid). The no_viommu variant has no device and
// ports as is; mock_viommu is built on IOMMU_VIOMMU_TYPE_SELFTEST and the mock's nested data type.

const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
const VIOMMU_CASES = ['viommu_auto_destroy', 'viommu_negative_tests', 'viommu_alloc_nested_iopf', 'viommu_alloc_with_data', 'vdevice_alloc', 'vdevice_cache', 'hw_queue', 'vdevice_tombstone'];

const viommuNoViommu: Ported<Sys>[] = VIOMMU_CASES.map((c): Ported<Sys> => {
  const name = `iommufd_viommu.no_viommu.${c}`;
  if (c === 'viommu_auto_destroy') return { name, run: () => {} };
  if (c === 'viommu_negative_tests')
    return {
      name,
      run: (t, s) => {
        t.equal(call(s.p, s.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, { dev_id: 0, hwpt_id: 0, type: IOMMU_VIOMMU_TYPE_SELFTEST })[0], -E.ENOENT, 'no device 0');
      },
    };
  if (c === 'vdevice_alloc')
    return {
      name,
      run: (t, s) => {
        t.equal(call(s.p, s.fd, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, { viommu_id: 0, dev_id: 0, virt_id: 0x99n })[0], -E.ENOENT, 'no vIOMMU 0');
      },
    };
  // The kernel SKIPs these for no_viommu too.
  return { name, skip: 'Skipping test for variant no_viommu (as in the kernel)' };
});
/**
 * mock_viommu on virt-smmuv3 with the real vIOMMU (IOMMU_VIOMMU_TYPE_ARM_SMMUV3) in place of the
 * mock's, and a stage-1 vSTE (IOMMU_HWPT_DATA_ARM_SMMUV3) as the nested HWPT's data. intel-iommu has
 * no vIOMMU (no viommu_init op): VIOMMU_ALLOC answers EOPNOTSUPP on q35-vtd, so there it is skipped.
 */
interface Viommu extends Sys {
  ioas: number;
  dev: StandIn;
  hwpt: number;
  viommu: number;
  nested: number;
  vsteBuf: bigint;
}

const VIOMMU_ON_SMMU_ONLY = 'intel-iommu has no vIOMMU in 7.3 (no viommu_init op): IOMMU_VIOMMU_ALLOC is EOPNOTSUPP on VT-d';

function viommuAlloc(s: Sys, dev: number, hwpt: number, type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3): [number, number] {
  const [r, v] = call(s.p, s.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, { dev_id: dev, hwpt_id: hwpt, type });
  return [r, v.num('out_viommu_id')];
}

function vdeviceAlloc(s: Sys, viommu: number, dev: number, virtId: bigint): [number, number] {
  const [r, v] = call(s.p, s.fd, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, { viommu_id: viommu, dev_id: dev, virt_id: virtId });
  return [r, v.num('out_vdevice_id')];
}

function nestedOnViommu(s: Viommu, flags = 0, faultId = 0): [number, number] {
  return hwptAlloc(s, s.dev.idev, s.viommu, flags, { data_type: IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16, data_uptr: s.vsteBuf, fault_id: faultId });
}

function viommuSetup(kind: MachineKind): Viommu {
  const s = boot(kind) as Viommu;
  s.ioas = ioasAlloc(s);
  s.dev = mustStandIn(s, s.ioas);
  const [rp, parent] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  if (rp !== 0) throw new Error(`nest parent ${rp}`);
  s.hwpt = parent;
  const [rv, viommu] = viommuAlloc(s, s.dev.idev, parent);
  if (rv !== 0) throw new Error(`VIOMMU_ALLOC ${rv}`);
  s.viommu = viommu;
  s.vsteBuf = s.p.mmap(PAGE_SIZE, { populate: true });
  // A stage-1 translate vSTE (a CD table at GPA 1 MiB): attaching to it needs a vDEVICE first
  // (arm_smmu_attach_prepare_vmaster; an abort or bypass vSTE would not).
  s.p.memWrite(s.vsteBuf, s1Vste(0x10_0000));
  const [rn, nested] = nestedOnViommu(s);
  if (rn !== 0) throw new Error(`nested ${rn}`);
  s.nested = nested;
  return s;
}

const viommuMock = (kind: MachineKind): Ported<Viommu>[] =>
  VIOMMU_CASES.map((c): Ported<Viommu> => {
    const name = `iommufd_viommu.mock_viommu.${c}`;
    if (kind !== 'virt-smmuv3') return { name, skip: VIOMMU_ON_SMMU_ONLY };
    switch (c) {
      case 'viommu_auto_destroy':
        return { name, run: () => {} };
      case 'viommu_negative_tests':
        return {
          name,
          run: (t, s) => {
            t.equal(viommuAlloc(s, s.dev.idev, 0)[0], -E.ENOENT, 'invalid hwpt (hwpt_id=0)');
            const [r, plain] = hwptAlloc(s, s.dev.idev, s.ioas, 0);
            t.equal(r, 0);
            t.equal(viommuAlloc(s, s.dev.idev, plain)[0], -E.EINVAL, 'not a nesting parent');
            t.equal(destroy(s, plain), 0);
            t.equal(viommuAlloc(s, s.dev.idev, s.hwpt, 0xdead)[0], -E.EOPNOTSUPP, 'an unsupported vIOMMU type');
            t.equal(destroy(s, s.hwpt), -E.EBUSY, 'the parent is held by the vIOMMU');
            t.equal(destroy(s, s.viommu), -E.EBUSY, 'the vIOMMU is held by the nested HWPT');
          },
        };
      case 'viommu_alloc_nested_iopf':
        return {
          name,
          // The IOPF trigger (IOMMU_TEST_OP_TRIGGER_IOPF) is left out.
          run: (t, s) => {
            const [rf, fv] = call(s.p, s.fd, IOMMU_FAULT_QUEUE_ALLOC, iommu_fault_alloc, {});
            t.equal(rf, 0);
            const faultId = fv.num('out_fault_id');
            t.equal(nestedOnViommu(s, IOMMU_HWPT_FAULT_ID_VALID, 0xffff_ffff)[0], -E.ENOENT, 'no such fault queue');
            t.equal(nestedOnViommu(s, (IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0, faultId)[0], -E.EOPNOTSUPP, 'an unknown flag');
            const [ri, iopf] = nestedOnViommu(s, IOMMU_HWPT_FAULT_ID_VALID, faultId);
            t.equal(ri, 0, 'a nested HWPT with a fault queue');
            t.equal(attachPt(s, s.dev.cdev, iopf)[0], -E.ENOENT, 'a vDEVICE must come before attaching to a nested HWPT');
            t.equal(vdeviceAlloc(s, s.viommu, s.dev.idev, 0x99n)[0], 0);
            t.equal(attachPt(s, s.dev.cdev, iopf)[0], 0);
            t.equal(destroy(s, iopf), -E.EBUSY);
            t.equal(attachPt(s, s.dev.cdev, s.ioas)[0], 0);
            t.equal(destroy(s, iopf), 0);
            t.equal(s.p.close(fv.num('out_fault_fd')), 0);
            t.equal(destroy(s, faultId), 0);
          },
        };
      case 'vdevice_alloc':
        return {
          name,
          // The mock's vEVENT trigger (IOMMU_TEST_OP_TRIGGER_VEVENTS) and the reads of those events are left out.
          run: (t, s) => {
            t.equal(attachPt(s, s.dev.cdev, s.nested)[0], -E.ENOENT, 'a vDEVICE must come before attaching to a nested HWPT');
            const veventq = (depth: number): [number, number, number] => {
              const [r, v] = call(s.p, s.fd, IOMMU_VEVENTQ_ALLOC, iommu_veventq_alloc, { viommu_id: s.viommu, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventq_depth: depth });
              return [r, v.num('out_veventq_id'), v.num('out_veventq_fd')];
            };
            t.equal(veventq(0)[0], -E.EINVAL, 'depth 0');
            t.equal(veventq((1 << 19) + 1)[0], -E.EINVAL, 'depth above 1 << 19');
            const [rm, qm, fm] = veventq(1 << 19);
            t.equal(rm, 0, 'depth 1 << 19');
            t.equal(s.p.close(fm), 0);
            t.equal(destroy(s, qm), 0);
            const [r2, q2, f2] = veventq(2);
            t.equal(r2, 0);
            t.equal(veventq(2)[0], -E.EEXIST, 'one vEVENTQ per type');
            t.equal(s.p.read(f2, 0), -E.EINVAL, 'a read of 0 bytes');
            t.equal(s.p.read(f2, iommufd_vevent_header.size - 1), -E.EINVAL, 'a read below the header size');
            const [rd, vdev] = vdeviceAlloc(s, s.viommu, s.dev.idev, 0x99n);
            t.equal(rd, 0);
            t.equal(attachPt(s, s.dev.cdev, s.nested)[0], 0);
            t.equal(vdeviceAlloc(s, s.viommu, s.dev.idev, 0x99n)[0], -E.EEXIST);
            t.equal(attachPt(s, s.dev.cdev, s.ioas)[0], 0);
            t.equal(destroy(s, vdev), 0);
            const [rd2, vdev2] = vdeviceAlloc(s, s.viommu, s.dev.idev, 0x88n);
            t.equal(rd2, 0, 'again with 0x88');
            t.equal(attachPt(s, s.dev.cdev, s.nested)[0], 0);
            t.equal(attachPt(s, s.dev.cdev, s.ioas)[0], 0);
            t.equal(s.p.close(f2), 0);
            t.equal(destroy(s, vdev2), 0);
            t.equal(destroy(s, q2), 0);
          },
        };
      case 'vdevice_tombstone':
        return {
          name,
          run: (t, s) => {
            const [r, vdev] = vdeviceAlloc(s, s.viommu, s.dev.idev, 0x99n);
            t.equal(r, 0);
            t.equal(s.p.close(s.dev.cdev), 0, 'the device goes (the stdev destroyed)');
            t.equal(destroy(s, vdev), -E.ENOENT, 'and its vDEVICE with it');
          },
        };
      case 'viommu_alloc_with_data':
        return { name, skip: "IOMMU_VIOMMU_TYPE_SELFTEST's driver data and its mmap'ed loopback page: the SMMUv3 vIOMMU takes no data and has no mmap" };
      case 'vdevice_cache':
        return { name, skip: 'IOMMU_TEST_OP_DEV_CHECK_CACHE checks the mock vIOMMU\'s device cache entries (the SMMUv3 vIOMMU invalidation array is tested in test/iommufd/smmu-nested.test.ts)' };
      default:
        return { name, skip: 'IOMMU_HW_QUEUE_TYPE_SELFTEST: the SMMUv3 vIOMMU has no HW queue (only tegra241-cmdqv does)' };
    }
  });
/**
 * iommufd_device_pasid.*.pasid_attach without its nested parts: the PASID-compatibility rules
 * (iommufd_hwpt_pasid_compat) between the RID's HWPT and a PASID's, attach/replace/detach of a
 * PASID, and a device without PASID refusing one. The mock's IOMMU_HWPT_DATA_SELFTEST nested
 * HWPTs, its vIOMMU, the IOPF trigger and IOMMU_TEST_OP_PASID_CHECK_HWPT are left out.
 */
interface PasidFx extends Sys {
  ioas: number;
  dev: StandIn;
  noPasid?: StandIn;
}

const devicePasid = (v: 'no_pasid' | 'has_pasid'): Ported<PasidFx> => ({
  name: `iommufd_device_pasid.${v}.pasid_attach`,
  run: (t, s) => {
    let pasid = 100;
    t.equal(detachPtPasid(s, s.dev.cdev, pasid), 0, 'detaching a PASID never attached is not an error');
    const [rp, parent] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    t.equal(rp, 0, 'a nesting parent (not PASID-compatible)');
    const [rs, s2] = hwptAlloc(s, s.dev.idev, s.ioas, IOMMU_HWPT_ALLOC_PASID);
    t.equal(rs, 0, 'a PASID-compatible paging HWPT');
    t.equal(attachPt(s, s.dev.cdev, parent)[0], 0, 'the RID on a non-PASID-compatible HWPT');
    t.equal(attachPt(s, s.dev.cdev, s2, pasid)[0], -E.EINVAL, 'then a PASID attach fails');
    t.equal(attachPt(s, s.dev.cdev, s2)[0], 0, 'the RID on the PASID-compatible HWPT');
    t.equal(attachPt(s, s.dev.cdev, s2, pasid)[0], 0, 'then a PASID attaches');
    t.equal(attachPt(s, s.dev.cdev, parent)[0], -E.EINVAL, 'the RID cannot move to a non-PASID-compatible HWPT while a PASID is attached');
    t.equal(detachPtPasid(s, s.dev.cdev, pasid), 0);
    if (s.noPasid) {
      t.equal(attachPt(s, s.noPasid.cdev, parent, pasid)[0], -E.EINVAL, 'a device without PASID: the parent');
      t.equal(attachPt(s, s.noPasid.cdev, s2, pasid)[0], -E.EINVAL, 'a device without PASID: a PASID-compatible HWPT');
    }
    t.equal(attachPt(s, s.dev.cdev, parent, pasid)[0], -E.EINVAL, 'a PASID on a non-PASID-compatible HWPT');
    t.equal(attachPt(s, s.dev.cdev, s.ioas, pasid)[0], -E.EINVAL, "a PASID on an IOAS (its automatic HWPT has flags 0)");
    t.equal(attachPt(s, s.dev.cdev, s2, pasid)[0], 0, 'a PASID on the PASID-compatible HWPT');
    // The mock's attach op answers EBUSY here; through the cdev a second attach is iommufd_device_replace()
    // (vfio_iommufd_physical_pasid_attach_ioas finds the PASID in vdev->pasids).
    t.equal(attachPt(s, s.dev.cdev, s2, pasid)[0], 0, 'attaching an attached PASID again replaces');
    t.equal(detachPtPasid(s, s.dev.cdev, pasid), 0);
    pasid = 200;
    t.equal(attachPt(s, s.dev.cdev, s2, pasid)[0], 0);
    t.equal(attachPt(s, s.dev.cdev, s.ioas, pasid)[0], -E.EINVAL, 'replace onto an IOAS fails');
    t.equal(detachPtPasid(s, s.dev.cdev, pasid), 0);
    t.equal(attachPt(s, s.dev.cdev, s.ioas)[0], 0, 'the RID back on the IOAS');
    t.equal(destroy(s, parent), 0);
    t.equal(destroy(s, s2), 0);
  },
});

function ioasSetup(kind: MachineKind, v: IoasVariant): Ioas {
  const s = boot(kind) as Ioas;
  s.kind = kind;
  s.v = v;
  s.ioas = ioasAlloc(s);
  s.devs = [];
  s.others = [];
  s.hwpt = 0;
  s.deviceId = 0;
  s.baseIova = 0n;
  for (let i = 0; i < v.mockDomains; i++) {
    s.devs.push(mustStandIn(s, s.ioas, STAND_INS[i]));
  }
  // self->stdev_id/hwpt_id/device_id: the plain (non-PASID) device, as the kernel's mock devices are.
  if (s.devs.length > 0) {
    s.dev = s.devs[0]!;
    s.hwpt = s.dev.hwpt;
    s.deviceId = s.dev.idev;
    s.baseIova = MOCK_APERTURE_START;
  }
  if (v.pasidCapable) {
    s.pasidDev = mustStandIn(s, s.ioas, PASID_STAND_IN);
  }
  return s;
}

for (const kind of MACHINES) {
  t.test(kind, async (t) => {
    await runCases<Plain>(
      t,
      IOMMUFD_CASES,
      () => ({ ...boot(kind), kind }),
      (t, s) => teardown(t, s),
    );
    for (const variant of Object.keys(IOPT_PAGES_ACCOUNT) as (keyof typeof IOPT_PAGES_ACCOUNT)[]) {
      await runCases<Change>(
        t,
        [changeProcessCase(variant)],
        () => {
          const s = boot(kind, { capIpcLock: false, memlockLimit: 2 ** 30 }) as Change;
          s.accounting = IOPT_PAGES_ACCOUNT[variant];
          if (s.accounting !== IOPT_PAGES_ACCOUNT.account_none) option(s, { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, val64: s.accounting === IOPT_PAGES_ACCOUNT.account_mm ? 1 : 0 });
          s.ioas = ioasAlloc(s);
          s.dev = mustStandIn(s, s.ioas);
          return s;
        },
        (t, s) => teardown(t, s, [s.dev]),
      );
    }
    for (const v of IOAS_VARIANTS) {
      await runCases<Ioas>(
        t,
        ioasCases(kind, v),
        () => ioasSetup(kind, v),
        (t, s) => teardown(t, s, [...s.devs, ...s.others, s.pasidDev]),
      );
    }
    for (const v of MD_VARIANTS) {
      await runCases<Md>(
        t,
        mdCases(v),
        () => mdSetup(kind, v),
        (t, s) => teardown(t, s, [...s.devs, ...s.others]),
      );
    }
    for (const [vname, version] of [['Ver1v2', VFIO_TYPE1v2_IOMMU], ['Ver1v0', VFIO_TYPE1_IOMMU]] as const) {
      await runCases<Compat>(
        t,
        compatCases(kind, version, vname),
        () => compatSetup(kind, version),
        (t, s) => teardown(t, s, [s.dev]),
      );
    }
    for (const v of DIRTY_VARIANTS) {
      await runCases<Dirty>(
        t,
        dirtyCases(v),
        () => dirtySetup(kind, v),
        (t, s) => teardown(t, s, [s.dev, ...s.others]),
      );
    }
    await runCases<Sys>(t, viommuNoViommu, () => boot(kind), (t, s) => teardown(t, s));
    await runCases<Viommu>(t, viommuMock(kind), () => viommuSetup(kind), (t, s) => teardown(t, s, [s.dev]));
    for (const v of ['no_pasid', 'has_pasid'] as const) {
      await runCases<PasidFx>(
        t,
        [devicePasid(v)],
        () => {
          const s = boot(kind) as PasidFx;
          s.ioas = ioasAlloc(s);
          s.dev = mustStandIn(s, s.ioas, PASID_STAND_IN);
          if (v === 'no_pasid') s.noPasid = mustStandIn(s, s.ioas, STAND_INS[0]);
          return s;
        },
        (t, s) => teardown(t, s, [s.dev, s.noPasid]),
      );
    }
  });
}
