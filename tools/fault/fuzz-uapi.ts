/** Fuzzing of every VFIO and iommufd ioctl with mutated structs (see tools/fault/fuzz.ts). */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import { Prng } from '../../src/sim/prng.ts';
import * as IOMMUFD from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../../src/uapi/struct.ts';
import * as VFIO from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { applyMutation, EXPECTED_ERRNO, stateDigest, type MutationClass } from './errno-table.ts';
import { checkInvariants, formatViolations, guard, recordBaseline } from './invariants.ts';
import { DEV0, DEV1, KNOWN_ERRNOS, PAGE, U64_MAX, finish, must, newReport, outcomeOf, randomU64, tally, type FuzzOptions, type FuzzReport } from './fuzz-common.ts';

type FdKind = 'container' | 'group' | 'device' | 'cdev' | 'iommufd';

interface UapiCtx {
  m: Machine;
  p: Process;
  v: VfioClient;
  fds: Record<FdKind, number>;
  buf: bigint;
  ioas: number;
  devId: number;
  hwpt: number;
}

interface IoctlSpec {
  name: string;
  fd: FdKind;
  request: number;
  def?: StructDef;
  /** Integer-argument ioctls: a valid number. */
  int?: (c: UapiCtx) => number;
  /** Valid field values (size/argsz filled in automatically). */
  valid?: (c: UapiCtx, rnd: Prng) => Record<string, number | bigint>;
  /** Extra bytes after the struct (variable-length tails). */
  tail?: number;
}

const pageIova = (rnd: Prng) => BigInt(0x10_0000 + rnd.int(0, 63) * PAGE);

function ioctlSpecs(): IoctlSpec[] {
  const I = IOMMUFD;
  const V = VFIO;
  const rw = I.IOMMU_IOAS_MAP_READABLE | I.IOMMU_IOAS_MAP_WRITEABLE;
  return [
    { name: 'VFIO_GET_API_VERSION', fd: 'container', request: V.VFIO_GET_API_VERSION, int: () => 0 },
    { name: 'VFIO_CHECK_EXTENSION', fd: 'container', request: V.VFIO_CHECK_EXTENSION, int: () => V.VFIO_TYPE1v2_IOMMU },
    { name: 'VFIO_SET_IOMMU', fd: 'container', request: V.VFIO_SET_IOMMU, int: () => V.VFIO_TYPE1v2_IOMMU },
    { name: 'VFIO_IOMMU_GET_INFO', fd: 'container', request: V.VFIO_IOMMU_GET_INFO, def: V.vfio_iommu_type1_info, valid: () => ({}), tail: 256 },
    {
      name: 'VFIO_IOMMU_MAP_DMA',
      fd: 'container',
      request: V.VFIO_IOMMU_MAP_DMA,
      def: V.vfio_iommu_type1_dma_map,
      valid: (c, rnd) => ({ flags: 3, vaddr: c.buf + BigInt(rnd.int(0, 7) * PAGE), iova: pageIova(rnd), size: BigInt(rnd.int(1, 8) * PAGE) }),
    },
    { name: 'VFIO_IOMMU_UNMAP_DMA', fd: 'container', request: V.VFIO_IOMMU_UNMAP_DMA, def: V.vfio_iommu_type1_dma_unmap, valid: (_c, rnd) => ({ iova: pageIova(rnd), size: BigInt(rnd.int(1, 8) * PAGE) }), tail: 24 },
    { name: 'VFIO_IOMMU_DIRTY_PAGES', fd: 'container', request: V.VFIO_IOMMU_DIRTY_PAGES, def: V.vfio_iommu_type1_dirty_bitmap, valid: (_c, rnd) => ({ flags: 1 << rnd.int(0, 2) }), tail: 40 },
    { name: 'VFIO_IOMMU_BIND', fd: 'container', request: V.VFIO_IOMMU_BIND, def: V.vfio_iommu_type1_bind, valid: () => ({ flags: V.VFIO_IOMMU_BIND_PROCESS }), tail: 16 },
    { name: 'VFIO_IOMMU_UNBIND', fd: 'container', request: V.VFIO_IOMMU_UNBIND, def: V.vfio_iommu_type1_bind, valid: () => ({ flags: V.VFIO_IOMMU_BIND_PROCESS }), tail: 16 },
    { name: 'VFIO_IOMMU_ENABLE', fd: 'container', request: V.VFIO_IOMMU_ENABLE, int: () => 0 },
    { name: 'VFIO_GROUP_GET_STATUS', fd: 'group', request: V.VFIO_GROUP_GET_STATUS, def: V.vfio_group_status, valid: () => ({}) },
    { name: 'VFIO_GROUP_SET_CONTAINER', fd: 'group', request: V.VFIO_GROUP_SET_CONTAINER, int: (c) => c.fds.container },
    { name: 'VFIO_GROUP_GET_DEVICE_FD', fd: 'group', request: V.VFIO_GROUP_GET_DEVICE_FD, def: undefined },
    { name: 'VFIO_DEVICE_GET_INFO', fd: 'device', request: V.VFIO_DEVICE_GET_INFO, def: V.vfio_device_info, valid: () => ({}), tail: 64 },
    { name: 'VFIO_DEVICE_GET_REGION_INFO', fd: 'device', request: V.VFIO_DEVICE_GET_REGION_INFO, def: V.vfio_region_info, valid: (_c, rnd) => ({ index: rnd.int(0, 9) }), tail: 128 },
    { name: 'VFIO_DEVICE_GET_IRQ_INFO', fd: 'device', request: V.VFIO_DEVICE_GET_IRQ_INFO, def: V.vfio_irq_info, valid: (_c, rnd) => ({ index: rnd.int(0, 4) }) },
    {
      name: 'VFIO_DEVICE_SET_IRQS',
      fd: 'device',
      request: V.VFIO_DEVICE_SET_IRQS,
      def: V.vfio_irq_set,
      valid: (_c, rnd) => ({ flags: V.VFIO_IRQ_SET_DATA_NONE | V.VFIO_IRQ_SET_ACTION_TRIGGER, index: V.VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: rnd.int(0, 2) }),
      tail: 16,
    },
    { name: 'VFIO_DEVICE_RESET', fd: 'device', request: V.VFIO_DEVICE_RESET, int: () => 0 },
    { name: 'VFIO_DEVICE_FEATURE', fd: 'device', request: V.VFIO_DEVICE_FEATURE, def: undefined },
    { name: 'VFIO_DEVICE_BIND_IOMMUFD', fd: 'cdev', request: V.VFIO_DEVICE_BIND_IOMMUFD, def: I.vfio_device_bind_iommufd, valid: (c) => ({ iommufd: c.fds.iommufd }) },
    { name: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: 'cdev', request: V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, def: I.vfio_device_attach_iommufd_pt, valid: (c) => ({ pt_id: c.ioas }) },
    { name: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', fd: 'cdev', request: V.VFIO_DEVICE_DETACH_IOMMUFD_PT, def: I.vfio_device_detach_iommufd_pt, valid: () => ({}) },
    { name: 'IOMMU_DESTROY', fd: 'iommufd', request: I.IOMMU_DESTROY, def: I.iommu_destroy, valid: (c, rnd) => ({ id: rnd.int(0, 8) === 0 ? c.ioas : rnd.int(0, 12) }) },
    { name: 'IOMMU_IOAS_ALLOC', fd: 'iommufd', request: I.IOMMU_IOAS_ALLOC, def: I.iommu_ioas_alloc, valid: () => ({}) },
    {
      name: 'IOMMU_IOAS_ALLOW_IOVAS',
      fd: 'iommufd',
      request: I.IOMMU_IOAS_ALLOW_IOVAS,
      def: I.iommu_ioas_allow_iovas,
      valid: (c, rnd) => ({ ioas_id: c.ioas, num_iovas: rnd.int(0, 2), allowed_iovas: c.buf + BigInt(15 * PAGE) }),
    },
    {
      name: 'IOMMU_IOAS_COPY',
      fd: 'iommufd',
      request: I.IOMMU_IOAS_COPY,
      def: I.iommu_ioas_copy,
      valid: (c, rnd) => ({ flags: rw | I.IOMMU_IOAS_MAP_FIXED_IOVA, dst_ioas_id: c.ioas, src_ioas_id: c.ioas, length: BigInt(rnd.int(1, 4) * PAGE), dst_iova: pageIova(rnd), src_iova: pageIova(rnd) }),
    },
    {
      name: 'IOMMU_IOAS_IOVA_RANGES',
      fd: 'iommufd',
      request: I.IOMMU_IOAS_IOVA_RANGES,
      def: I.iommu_ioas_iova_ranges,
      valid: (c, rnd) => ({ ioas_id: c.ioas, num_iovas: rnd.int(0, 4), allowed_iovas: c.buf + BigInt(14 * PAGE) }),
    },
    {
      name: 'IOMMU_IOAS_MAP',
      fd: 'iommufd',
      request: I.IOMMU_IOAS_MAP,
      def: I.iommu_ioas_map,
      valid: (c, rnd) => ({ flags: rw | I.IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: c.ioas, user_va: c.buf + BigInt(rnd.int(0, 7) * PAGE), length: BigInt(rnd.int(1, 8) * PAGE), iova: pageIova(rnd) }),
    },
    { name: 'IOMMU_IOAS_UNMAP', fd: 'iommufd', request: I.IOMMU_IOAS_UNMAP, def: I.iommu_ioas_unmap, valid: (c, rnd) => ({ ioas_id: c.ioas, iova: pageIova(rnd), length: BigInt(rnd.int(1, 8) * PAGE) }) },
    { name: 'IOMMU_OPTION', fd: 'iommufd', request: I.IOMMU_OPTION, def: I.iommu_option, valid: (c, rnd) => ({ option_id: rnd.int(0, 1), op: rnd.int(0, 1), object_id: rnd.chance(0.5) ? c.ioas : 0, val64: BigInt(rnd.int(0, 1)) }) },
    { name: 'IOMMU_VFIO_IOAS', fd: 'iommufd', request: I.IOMMU_VFIO_IOAS, def: I.iommu_vfio_ioas, valid: (c, rnd) => ({ ioas_id: c.ioas, op: rnd.int(0, 2) }) },
    { name: 'IOMMU_HWPT_ALLOC', fd: 'iommufd', request: I.IOMMU_HWPT_ALLOC, def: I.iommu_hwpt_alloc, valid: (c, rnd) => ({ flags: rnd.chance(0.5) ? I.IOMMU_HWPT_ALLOC_NEST_PARENT : 0, dev_id: c.devId, pt_id: c.ioas }) },
    { name: 'IOMMU_GET_HW_INFO', fd: 'iommufd', request: I.IOMMU_GET_HW_INFO, def: I.iommu_hw_info, valid: (c) => ({ dev_id: c.devId, data_len: 64, data_uptr: c.buf + BigInt(13 * PAGE) }) },
    { name: 'IOMMU_HWPT_SET_DIRTY_TRACKING', fd: 'iommufd', request: I.IOMMU_HWPT_SET_DIRTY_TRACKING, def: I.iommu_hwpt_set_dirty_tracking, valid: (c, rnd) => ({ flags: rnd.int(0, 1), hwpt_id: c.hwpt }) },
    {
      name: 'IOMMU_HWPT_GET_DIRTY_BITMAP',
      fd: 'iommufd',
      request: I.IOMMU_HWPT_GET_DIRTY_BITMAP,
      def: I.iommu_hwpt_get_dirty_bitmap,
      valid: (c, rnd) => ({ hwpt_id: c.hwpt, iova: pageIova(rnd), length: BigInt(8 * PAGE), page_size: BigInt(PAGE), data: c.buf + BigInt(12 * PAGE) }),
    },
    { name: 'IOMMU_HWPT_INVALIDATE', fd: 'iommufd', request: I.IOMMU_HWPT_INVALIDATE, def: I.iommu_hwpt_invalidate, valid: (c) => ({ hwpt_id: c.hwpt, data_uptr: c.buf + BigInt(11 * PAGE), entry_len: 32, entry_num: 1 }) },
    { name: 'IOMMU_FAULT_QUEUE_ALLOC', fd: 'iommufd', request: I.IOMMU_FAULT_QUEUE_ALLOC, def: I.iommu_fault_alloc, valid: () => ({}) },
    { name: 'IOMMU_IOAS_MAP_FILE', fd: 'iommufd', request: I.IOMMU_IOAS_MAP_FILE, def: undefined },
    { name: 'IOMMU_VIOMMU_ALLOC', fd: 'iommufd', request: I.IOMMU_VIOMMU_ALLOC, def: undefined },
    { name: 'IOMMU_VDEVICE_ALLOC', fd: 'iommufd', request: I.IOMMU_VDEVICE_ALLOC, def: undefined },
    { name: 'IOMMU_IOAS_CHANGE_PROCESS', fd: 'iommufd', request: I.IOMMU_IOAS_CHANGE_PROCESS, def: undefined },
    { name: 'IOMMU_VEVENTQ_ALLOC', fd: 'iommufd', request: I.IOMMU_VEVENTQ_ALLOC, def: undefined },
  ];
}

function uapiSetup(m: Machine): UapiCtx {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  must('open container', container);
  const group = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DEV0))!.id}`);
  must('open group', group);
  must('SET_CONTAINER', v.setContainer(group, container));
  must('SET_IOMMU', v.setIommu(container, VFIO.VFIO_TYPE1v2_IOMMU));
  const device = v.deviceFd(group, DEV0);
  must('GET_DEVICE_FD', device);
  const iommufd = p.open('/dev/iommu');
  must('open /dev/iommu', iommufd);
  const a = encodeStruct(IOMMUFD.iommu_ioas_alloc, { size: IOMMUFD.iommu_ioas_alloc.size });
  must('IOAS_ALLOC', p.ioctl(iommufd, IOMMUFD.IOMMU_IOAS_ALLOC, a));
  const ioas = new StructView(IOMMUFD.iommu_ioas_alloc, a).num('out_ioas_id');
  const names = p.readdir(`/sys/bus/pci/devices/${DEV1}/vfio-dev`);
  if (typeof names === 'number' || names.length === 0) throw new Error('fuzz setup: no vfio-dev');
  const cdev = p.open(`/dev/vfio/devices/${names[0]}`);
  must('open cdev', cdev);
  const b = encodeStruct(IOMMUFD.vfio_device_bind_iommufd, { argsz: IOMMUFD.vfio_device_bind_iommufd.size, iommufd });
  must('BIND_IOMMUFD', p.ioctl(cdev, VFIO.VFIO_DEVICE_BIND_IOMMUFD, b));
  const devId = new StructView(IOMMUFD.vfio_device_bind_iommufd, b).num('out_devid');
  const h = encodeStruct(IOMMUFD.iommu_hwpt_alloc, { size: IOMMUFD.iommu_hwpt_alloc.size, dev_id: devId, pt_id: ioas });
  const hr = p.ioctl(iommufd, IOMMUFD.IOMMU_HWPT_ALLOC, h);
  const hwpt = hr < 0 ? 0 : new StructView(IOMMUFD.iommu_hwpt_alloc, h).num('out_hwpt_id');
  const at = encodeStruct(IOMMUFD.vfio_device_attach_iommufd_pt, { argsz: IOMMUFD.vfio_device_attach_iommufd_pt.size, pt_id: ioas });
  must('ATTACH', p.ioctl(cdev, VFIO.VFIO_DEVICE_ATTACH_IOMMUFD_PT, at));
  const buf = p.mmap(16 * PAGE);
  must('mmap', buf);
  must('memWrite', p.memWrite(buf, new Uint8Array(16 * PAGE).fill(0x11)));
  must('MAP_DMA', v.mapDma(container, { vaddr: buf, iova: 0x400_0000n, size: 4 * PAGE }));
  return { m, p, v, fds: { container, group, device, cdev, iommufd }, buf, ioas, devId, hwpt };
}

const BOUNDARY64 = [0n, 1n, 0xfffn, 0x1000n, 0x7fff_ffffn, 0xffff_ffffn, 0x1_0000_0000n, 1n << 52n, 1n << 63n, U64_MAX, U64_MAX - 0xfffn, U64_MAX - 0x1000n + 1n];
const BOUNDARY32 = [0, 1, 2, 3, 7, 8, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000];

/** Write `value` (clamped to the field's width) into field `f` of `bytes`, if the buffer holds it. */
function setField(bytes: Uint8Array, offset: number, size: number, value: bigint): void {
  for (let i = 0; i < size && offset + i < bytes.length; i++) bytes[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}


interface Mutated {
  arg: Uint8Array | number;
  fd: number;
  /** What was done (for the replay message). */
  what: string[];
  /** The call must fail. */
  mustFail: boolean;
}

function mutate(spec: IoctlSpec, c: UapiCtx, rnd: Prng): Mutated {
  const what: string[] = [];
  let fd = c.fds[spec.fd];
  let mustFail = false;
  if (rnd.chance(0.04)) {
    fd = [-1, 999, c.fds.container, c.fds.group, c.fds.device, c.fds.cdev, c.fds.iommufd][rnd.int(0, 6)]!;
    what.push(`fd ${fd}`);
  }
  if (spec.int !== undefined) {
    const n = rnd.chance(0.3) ? spec.int(c) : rnd.chance(0.5) ? BOUNDARY32[rnd.int(0, BOUNDARY32.length - 1)]! : rnd.nextU32() | 0;
    what.push(`int ${n}`);
    return { arg: rnd.chance(0.1) ? new Uint8Array(rnd.int(0, 16)) : n, fd, what, mustFail };
  }
  if (spec.def === undefined) {
    // No struct known here: random bytes of random length, or a device name.
    if (spec.request === VFIO.VFIO_GROUP_GET_DEVICE_FD) {
      const names = [DEV0, DEV1, '', '0000:00:01', 'x'.repeat(rnd.int(0, 300)), `${DEV0}\0junk`];
      const s = names[rnd.int(0, names.length - 1)]!;
      const b = new Uint8Array(s.length + (rnd.chance(0.8) ? 1 : 0));
      for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
      what.push(`name "${s.slice(0, 20)}"${b.length === s.length ? ' (no NUL)' : ''}`);
      return { arg: b, fd, what, mustFail };
    }
    const b = new Uint8Array(rnd.int(0, 96));
    for (let i = 0; i < b.length; i++) b[i] = rnd.int(0, 255);
    if (b.length >= 4 && rnd.chance(0.6)) setField(b, 0, 4, BigInt(b.length));
    what.push(`${b.length} random bytes`);
    return { arg: b, fd, what, mustFail };
  }
  const def = spec.def;
  const sizeField = def.order[0]!.name === 'size' || def.order[0]!.name === 'argsz' ? def.order[0]!.name : undefined;
  const total = def.size + (spec.tail ?? 0);
  const values: Record<string, number | bigint> = { ...(spec.valid?.(c, rnd) ?? {}) };
  if (sizeField !== undefined) values[sizeField] = total;
  let bytes = encodeStruct(def, values as Partial<Record<string, number | bigint>>, total);
  const n = rnd.int(1, 3);
  for (let k = 0; k < n; k++) {
    const f = def.order[rnd.int(0, def.order.length - 1)]!;
    switch (rnd.int(0, 7)) {
      case 0: {
        if (bytes.length === 0) break;
        const i = rnd.int(0, bytes.length - 1);
        bytes[i]! ^= 1 << rnd.int(0, 7);
        what.push(`flip byte ${i}`);
        break;
      }
      case 1: {
        const v = f.size >= 8 ? BOUNDARY64[rnd.int(0, BOUNDARY64.length - 1)]! : BigInt(BOUNDARY32[rnd.int(0, BOUNDARY32.length - 1)]!);
        setField(bytes, f.offset, Math.min(f.size, 8), v);
        what.push(`${f.name}=0x${v.toString(16)}`);
        break;
      }
      case 2: {
        if (sizeField === undefined) break;
        const v = [0, 4, 7, def.size - 1, def.size + 8, total + 4096, 0xffff_ffff, rnd.nextU32()][rnd.int(0, 7)]!;
        setField(bytes, 0, 4, BigInt(v));
        what.push(`${sizeField}=${v}`);
        break;
      }
      case 3: {
        const len = rnd.int(0, def.size - 1);
        bytes = bytes.slice(0, len);
        what.push(`buffer cut to ${len} bytes`);
        break;
      }
      case 4: {
        const ext = new Uint8Array(bytes.length + rnd.int(1, 64));
        ext.set(bytes);
        for (let i = bytes.length; i < ext.length; i++) ext[i] = rnd.chance(0.5) ? 0 : rnd.int(0, 255);
        bytes = ext;
        what.push(`buffer extended to ${ext.length}`);
        break;
      }
      case 5: {
        const res = def.order.filter((x) => /reserved|pad/.test(x.name));
        if (res.length === 0) break;
        const r = res[rnd.int(0, res.length - 1)]!;
        setField(bytes, r.offset, Math.min(r.size, 8), BigInt(rnd.int(1, 255)));
        what.push(`${r.name} set`);
        break;
      }
      case 6: {
        const fl = def.fields['flags' as keyof typeof def.fields] as { offset: number; size: number } | undefined;
        if (fl === undefined) break;
        const v = rnd.chance(0.5) ? 1 << rnd.int(0, 31) : rnd.nextU32();
        setField(bytes, fl.offset, fl.size, BigInt(v >>> 0));
        what.push(`flags=0x${(v >>> 0).toString(16)}`);
        break;
      }
      default: {
        const v = f.size >= 8 ? randomU64(rnd) : BigInt(rnd.nextU32());
        setField(bytes, f.offset, Math.min(f.size, 8), v);
        what.push(`${f.name}=random 0x${v.toString(16)}`);
      }
    }
  }
  // Checks on a mutated size only apply when the mutation did not cut the header.
  if (sizeField !== undefined && bytes.length >= 4) {
    const sz = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
    if (sz < 8) mustFail = true;
    // iommufd refuses a struct with a reserved field set, where both the size and the buffer cover it.
    if (spec.fd === 'iommufd') {
      for (const r of def.order.filter((x) => /reserved/.test(x.name))) {
        if (r.offset + r.size > Math.min(sz, bytes.length)) continue;
        // iommufd_hwpt_alloc() (7.3) checks __reserved only; __reserved2 is documented "must be 0" but not checked.
        if (def.name === 'iommu_hwpt_alloc' && r.name === '__reserved2') continue;
        if (bytes.subarray(r.offset, r.offset + r.size).some((b) => b !== 0)) mustFail = true;
      }
    }
  }
  if (fd !== c.fds[spec.fd]) mustFail = false;
  return { arg: bytes, fd, what, mustFail };
}

export function fuzzUapi(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('uapi', kind, seed);
  const perIoctl = opts.cases ?? 40;
  const checkEvery = opts.checkEvery ?? 25;
  for (const spec of ioctlSpecs()) {
    const rnd = new Prng(seed).fork(spec.name);
    const m = createMachine(kind, { seed });
    recordBaseline(m);
    const s = guard(m, () => uapiSetup(m));
    if ('exception' in s) {
      report.problems.push(`${kind} ${spec.name}: setup threw ${s.exception}`);
      continue;
    }
    const c = s.value;
    for (let i = 0; i < perIoctl; i++) {
      const mu = mutate(spec, c, rnd);
      const t0 = performance.now();
      const g = guard(m, () => c.p.ioctl(mu.fd, spec.request, mu.arg));
      report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
      report.cases++;
      const tag = `${kind} ${spec.name} case ${i} (seed ${seed}: ${mu.what.join(', ')})`;
      if ('exception' in g) {
        tally(report, spec.name, 'exception');
        report.problems.push(`${tag}: threw ${g.exception.split('\n')[0]}`);
        continue;
      }
      const r = g.value;
      tally(report, spec.name, typeof r === 'number' ? outcomeOf(r) : `non-number ${String(r)}`);
      if (typeof r !== 'number' || !Number.isInteger(r)) report.problems.push(`${tag}: returned ${String(r)}, not an integer`);
      else if (r < 0 && !KNOWN_ERRNOS.has(-r)) report.problems.push(`${tag}: returned ${r}, not a Linux errno`);
      else if (mu.mustFail && r >= 0) report.problems.push(`${tag}: accepted (${r}); a too-small size or a set reserved field must fail`);
      const full = (i + 1) % checkEvery === 0;
      const v = checkInvariants(m, { dma: full }).filter((x) => x.kind !== 'exception');
      if (v.length > 0) {
        report.violations += v.length;
        report.problems.push(`${tag}: ${formatViolations(v)}`);
        break; // the state is broken; later cases would repeat it
      }
    }
    finish(m, report, `${kind} ${spec.name}`, true);
  }
  return report;
}


export interface ErrnoTableReport {
  /** Targeted cases run (one per ioctl and mutation class that applies). */
  cases: number;
  /** Per "ioctl class": the errno returned (name), for the record. */
  results: Record<string, string>;
  /** Cases where the errno differs from Linux's, or the machine changed. */
  problems: string[];
}

/**
 * The targeted half of the uapi fuzzer: for every ioctl and every mutation
 * class EXPECTED_ERRNO lists for it, a valid struct mutated in that one way
 * must fail with exactly Linux's errno and change nothing (stateDigest
 * before and after, then the invariants).
 */
export function checkUapiErrnos(kind: MachineKind, seed = 1): ErrnoTableReport {
  const out: ErrnoTableReport = { cases: 0, results: {}, problems: [] };
  const m = createMachine(kind, { seed });
  const c = uapiSetup(m);
  const rnd = new Prng(seed).fork('errno-table');
  for (const spec of ioctlSpecs()) {
    const table = EXPECTED_ERRNO[spec.name];
    if (table === undefined || spec.def === undefined) continue;
    const def = spec.def;
    const sizeField = def.order[0]!.name;
    const total = def.size + (spec.tail ?? 0);
    for (const [cls, errno] of Object.entries(table) as [MutationClass, number][]) {
      const valid = encodeStruct(def, { ...(spec.valid?.(c, rnd) ?? {}), [sizeField]: total } as Partial<Record<string, number | bigint>>, total);
      const arg = applyMutation(cls, def, valid);
      if (arg === undefined) {
        out.problems.push(`${kind} ${spec.name} ${cls}: the struct has no field for this class (fix EXPECTED_ERRNO)`);
        continue;
      }
      const fd = cls === 'bad-fd' ? 999 : c.fds[spec.fd];
      const before = stateDigest(m);
      const g = guard(m, () => c.p.ioctl(fd, spec.request, arg));
      out.cases++;
      const tag = `${kind} ${spec.name} ${cls}`;
      if ('exception' in g) {
        out.problems.push(`${tag}: threw ${g.exception.split('\n')[0]}`);
        continue;
      }
      out.results[`${spec.name} ${cls}`] = outcomeOf(g.value);
      if (g.value !== -errno) out.problems.push(`${tag}: returned ${outcomeOf(g.value)} (${g.value}); Linux returns ${outcomeOf(-errno)}`);
      const after = stateDigest(m);
      if (after !== before) out.problems.push(`${tag}: the refused call changed the machine:\n  before: ${before.replace(/\n/g, ' | ')}\n  after:  ${after.replace(/\n/g, ' | ')}`);
    }
  }
  const v = checkInvariants(m, { dma: true });
  if (v.length > 0) out.problems.push(`${kind}: after the refused calls: ${formatViolations(v)}`);
  return out;
}
