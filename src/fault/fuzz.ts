/**
 * Fuzzing of the input surfaces (issue 9, part 6). Each surface starts from
 * valid inputs and mutates them with a seeded PRNG:
 * - `uapi`: every VFIO (container, group, device, cdev) and iommufd ioctl,
 *   with mutated structs: bit flips, boundary values in a field (0, ~0, u64
 *   overflow, unaligned), a bad size/argsz, a short or long buffer, reserved
 *   fields set, random flags, integer arguments, wrong fds. The call must
 *   return a result >= 0 or a Linux errno (never throw); a size below any
 *   struct's header and a reserved field set on iommufd must fail.
 * - `iommu-regs`: random writes (fresh values, bit flips of the current
 *   value, 32 and 64 bit) to the IOMMU's MMIO registers at
 *   board.layout.iommuBase, then DMAs, a VFIO map/unmap, and the scheduler
 *   run with an event bound.
 * - `iommu-tables`: random contents written into the IOMMU's in-memory tables
 *   (stream table/STE, CD, root/context, PASID directory and entries, page
 *   tables), found by following pointers from the table base register, then
 *   DMAs with and without a PASID from cold caches.
 * - `dma-engine`: BAR writes through the VFIO device fd (registers, work
 *   queue configuration, ring base/tail, portals) and random or mutated
 *   descriptors in a ring the device fetches through the IOMMU.
 * Every case runs under guard(): an exception is a finding. The hardware
 * surfaces legitimately break translations (a corrupted STE translates
 * nothing), so for them only escaped exceptions count as violations; the
 * uapi surface keeps the full invariant check (bad input changes nothing).
 */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import * as ERRNO from '../host/errno.ts';
import { DMAE_REGS, WQ_REG } from '../../devices/dma-engine/regs.ts';
import type { Process } from '../host/process.ts';
import { CFG, COMMAND } from '../pci/header.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { Prng } from '../sim/prng.ts';
import * as IOMMUFD from '../uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../uapi/struct.ts';
import * as VFIO from '../uapi/vfio.ts';
import { VfioClient } from '../vfio/client.ts';
import { checkInvariants, formatViolations, guard, recordBaseline, type Violation } from './invariants.ts';

const PAGE = 4096;
const DEV0 = '0000:00:01.0';
const DEV1 = '0000:00:02.0';
const KNOWN_ERRNOS = new Set<number>((Object.values(ERRNO) as unknown[]).filter((v): v is number => typeof v === 'number'));

export type FuzzSurface = 'uapi' | 'iommu-regs' | 'iommu-tables' | 'dma-engine';

export interface FuzzReport {
  surface: FuzzSurface;
  machine: MachineKind;
  seed: number;
  cases: number;
  /** Per target (ioctl name, register, ...): cases and outcomes (errno names, DMA fault names, "ok"). */
  byTarget: Record<string, { cases: number; outcomes: Record<string, number> }>;
  /** Exceptions, unexpected results and invariant violations, each with the case number to replay. */
  problems: string[];
  /** Invariant violations counted (exceptions included). */
  violations: number;
  /** Slowest case, ms of wall time (a bound on hangs: nothing here may loop). */
  slowestMs: number;
}

function newReport(surface: FuzzSurface, machine: MachineKind, seed: number): FuzzReport {
  return { surface, machine, seed, cases: 0, byTarget: {}, problems: [], violations: 0, slowestMs: 0 };
}

function tally(r: FuzzReport, target: string, outcome: string): void {
  const t = (r.byTarget[target] ??= { cases: 0, outcomes: {} });
  t.cases++;
  t.outcomes[outcome] = (t.outcomes[outcome] ?? 0) + 1;
}

const errnoNames = new Map<number, string>();
for (const [k, v] of Object.entries(ERRNO)) if (typeof v === 'number' && !errnoNames.has(v)) errnoNames.set(v, k);

function outcomeOf(r: number): string {
  return r >= 0 ? 'ok' : (errnoNames.get(-r) ?? `errno ${-r}`);
}

function enableBme(dev: PciFunction): void {
  const cmd = dev.config.get16(CFG.COMMAND);
  if ((cmd & COMMAND.MASTER) === 0) dev.config.write(CFG.COMMAND, 2, cmd | COMMAND.MASTER | COMMAND.MEMORY);
}

function must(what: string, r: number | bigint): void {
  if (r < 0) throw new Error(`fuzz setup: ${what} returned ${r}`);
}

// --- uapi -------------------------------------------------------------------------------

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

const U64_MAX = 0xffff_ffff_ffff_ffffn;
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

function randomU64(rnd: Prng): bigint {
  return (BigInt(rnd.nextU32()) << 32n) | BigInt(rnd.nextU32());
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
        if (bytes.subarray(r.offset, r.offset + r.size).some((b) => b !== 0)) mustFail = true;
      }
    }
  }
  if (fd !== c.fds[spec.fd]) mustFail = false;
  return { arg: bytes, fd, what, mustFail };
}

export interface FuzzOptions {
  seed?: number;
  /** Cases per target (per ioctl, per register write burst, ...). */
  cases?: number;
  /** Full invariant check (with DMA probes) every this many cases (default 25). */
  checkEvery?: number;
}

/** Fuzz every VFIO and iommufd ioctl on one machine. */
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

/** Every process exits; then no exception may have escaped and (optionally) the full invariants hold. */
function finish(m: Machine, report: FuzzReport, tag: string, full: boolean): void {
  const td = guard(m, () => {
    for (const p of [...m.host.processes.values()]) p.exit();
    m.board.scheduler.run(100_000);
  });
  if ('exception' in td) report.problems.push(`${tag}: exit threw ${td.exception.split('\n')[0]}`);
  const v: Violation[] = checkInvariants(m).filter((x) => full || x.kind === 'exception');
  // Lazily allocated driver state (SVA tables, fault queues) is not a leak here: only flag leaks under full checks
  // for the uapi surface, where the reference baseline covers it (see fuzzUapi).
  const real = v.filter((x) => x.kind !== 'page-leak');
  report.violations += real.length;
  for (const x of real) report.problems.push(`${tag}, after exit: [${x.kind}] ${x.message.split('\n')[0]}`);
}

// --- IOMMU registers --------------------------------------------------------------------

function dmaRound(m: Machine, rnd: Prng, report: FuzzReport, target: string, iovas: readonly bigint[], pasid?: number): void {
  for (const bdf of [DEV0, DEV1, '0000:00:03.0']) {
    const dev = m.device(bdf) as unknown as PciFunction;
    enableBme(dev);
    const iova = iovas[rnd.int(0, iovas.length - 1)]! + BigInt(rnd.int(0, 511) * 8);
    const attrs = pasid !== undefined && bdf !== '0000:00:03.0' ? { pasid } : undefined;
    const g = guard(m, () => (rnd.chance(0.5) ? dev.dmaRead(iova, 8, attrs) : dev.dmaWrite(iova, new Uint8Array([rnd.int(0, 255)]), attrs)));
    if ('exception' in g) tally(report, target, 'exception');
    else tally(report, `${target} dma`, g.value.ok ? 'dma ok' : `dma ${g.value.fault}`);
  }
  const r = guard(m, () => m.board.scheduler.run(20_000));
  if ('exception' in r) tally(report, target, 'exception');
  else if (r.value >= 20_000) report.problems.push(`${target}: the scheduler still had events after 20000 (a model rescheduling forever?)`);
}

function vfioWorld(m: Machine): { p: Process; v: VfioClient; container: number; group: number; buf: bigint } {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DEV0))!.id}`);
  must('open', Math.min(container, group));
  must('SET_CONTAINER', v.setContainer(group, container));
  must('SET_IOMMU', v.setIommu(container, VFIO.VFIO_TYPE1v2_IOMMU));
  const buf = p.mmap(16 * PAGE);
  must('mmap', buf);
  must('memWrite', p.memWrite(buf, new Uint8Array(16 * PAGE).fill(0x22)));
  must('MAP_DMA', v.mapDma(container, { vaddr: buf, iova: 0x10_0000n, size: 16 * PAGE }));
  return { p, v, container, group, buf };
}

/** Random writes to the IOMMU's registers (fresh values and bit flips), each followed by DMAs and a VFIO map/unmap. */
export function fuzzIommuRegisters(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('iommu-regs', kind, seed);
  const cases = opts.cases ?? 100;
  const rnd = new Prng(seed).fork('iommu-regs');
  const perMachine = 10;
  for (let base = 0; base < cases; base += perMachine) {
    const m = createMachine(kind, { seed: seed + base });
    const s = guard(m, () => vfioWorld(m));
    if ('exception' in s) {
      report.problems.push(`${kind} iommu-regs setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const { iommuBase, iommuSize } = m.board.layout;
    for (let i = base; i < Math.min(cases, base + perMachine); i++) {
      const t0 = performance.now();
      // Registers live mostly in the first 0x200 bytes (and SMMUv3 page 1 at 0x10000).
      const span = rnd.chance(0.8) ? Math.min(0x200, iommuSize) : iommuSize;
      let off = rnd.int(0, span / 8 - 1) * 8 + (rnd.chance(0.3) ? 4 : 0);
      if (kind === 'virt-smmuv3' && rnd.chance(0.15)) off = 0x1_0000 + rnd.int(0, 0x1f) * 8;
      const wide = rnd.chance(0.4) && off % 8 === 0;
      const target = `${kind} reg 0x${off.toString(16)}`;
      const g = guard(m, () => {
        const addr = iommuBase + off;
        if (wide) {
          const cur = m.board.sysmem.read64(addr);
          const v = rnd.chance(0.5) ? randomU64(rnd) : cur ^ (1n << BigInt(rnd.int(0, 63)));
          m.board.sysmem.write64(addr, v);
        } else {
          const cur = m.board.sysmem.read32(addr);
          const v = rnd.chance(0.5) ? rnd.nextU32() : (cur ^ (1 << rnd.int(0, 31))) >>> 0;
          m.board.sysmem.write32(addr, v);
        }
      });
      report.cases++;
      tally(report, 'register writes', 'exception' in g ? 'exception' : 'ok');
      if ('exception' in g) report.problems.push(`${target} (seed ${seed} case ${i}): the write threw ${g.exception.split('\n')[0]}`);
      dmaRound(m, rnd, report, 'after register write', [0x10_0000n, 0x10_8000n, 0x20_0000n, w.buf]);
      // The driver programs hardware after the write: map and unmap through VFIO.
      const iova = BigInt(0x80_0000 + (i % perMachine) * 0x1_0000);
      const mr = guard(m, () => w.v.mapDma(w.container, { vaddr: w.buf, iova, size: 2 * PAGE }));
      const ur = guard(m, () => w.v.unmapDma(w.container, { iova, size: 2 * PAGE }));
      for (const r of [mr, ur]) {
        if ('exception' in r) report.problems.push(`${target} (seed ${seed} case ${i}): the driver threw ${r.exception.split('\n')[0]}`);
        else tally(report, 'VFIO map/unmap after register writes', typeof r.value === 'bigint' ? 'ok' : outcomeOf(r.value));
      }
      report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
    }
    finish(m, report, `${kind} iommu-regs machine ${base / perMachine}`, false);
  }
  return report;
}

// --- IOMMU tables -----------------------------------------------------------------------

const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** The table pages reachable from `roots` by following qwords that look like page pointers into RAM (depth 4, at most 64 pages). */
function tablePages(m: Machine, roots: readonly number[]): number[] {
  const ramEnd = m.board.layout.ram.reduce((e, r) => Math.max(e, r.gpa + r.size), 0);
  const seen = new Set<number>();
  let frontier = roots.map((r) => r - (r % PAGE));
  for (let depth = 0; depth < 4 && frontier.length > 0 && seen.size < 64; depth++) {
    const next: number[] = [];
    for (const pg of frontier) {
      if (seen.has(pg) || seen.size >= 64) continue;
      seen.add(pg);
      const bytes = new Uint8Array(PAGE);
      m.board.sysmem.readInto(pg, bytes);
      const dv = new DataView(bytes.buffer);
      for (let o = 0; o < PAGE; o += 8) {
        const q = dv.getBigUint64(o, true);
        if ((q & 1n) === 0n && (q & 0xfffn) !== 0n) continue;
        const a = Number(q & ADDR_MASK);
        if (a !== 0 && a < ramEnd && !seen.has(a)) next.push(a);
      }
    }
    frontier = next;
  }
  return [...seen];
}

function tableRoots(m: Machine): number[] {
  const base = m.board.layout.iommuBase;
  if (m.board.layout.kind === 'virt-smmuv3') {
    // SMMU_STRTAB_BASE (0x80): ADDR [51:6]; also the queue bases (CMDQ 0x90, EVTQ 0xa0, PRIQ 0xc0): [51:5].
    return [0x80, 0x90, 0xa0, 0xc0].map((o) => Number(m.board.sysmem.read64(base + o) & 0x000f_ffff_ffff_ffc0n)).filter((a) => a !== 0);
  }
  // VT-d RTADDR (0x20): RTA [63:12]; IQA (0x90): [63:12].
  return [0x20, 0x90].map((o) => Number(m.board.sysmem.read64(base + o) & ADDR_MASK)).filter((a) => a !== 0);
}

/** Random contents in the IOMMU's tables (STE/CD, root/context/PASID entries, page tables), then DMAs from cold caches. */
export function fuzzIommuTables(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('iommu-tables', kind, seed);
  const cases = opts.cases ?? 60;
  const rnd = new Prng(seed).fork('iommu-tables');
  for (let i = 0; i < cases; i++) {
    const t0 = performance.now();
    const m = createMachine(kind, { seed: seed + i });
    const s = guard(m, () => {
      const w = vfioWorld(m);
      const pasid = rnd.chance(0.6) ? w.v.bindProcess(w.container) : -1;
      return { ...w, pasid };
    });
    if ('exception' in s) {
      report.problems.push(`${kind} iommu-tables setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const pages = tablePages(m, tableRoots(m));
    const writes = rnd.int(1, 6);
    const what: string[] = [];
    for (let k = 0; k < writes && pages.length > 0; k++) {
      const pg = pages[rnd.int(0, pages.length - 1)]!;
      // Prefer non-zero (live) entries.
      let off = rnd.int(0, PAGE / 8 - 1) * 8;
      if (rnd.chance(0.7)) {
        for (let tries = 0; tries < 64; tries++) {
          const o = rnd.int(0, PAGE / 8 - 1) * 8;
          if (m.board.sysmem.read64(pg + o) !== 0n) {
            off = o;
            break;
          }
        }
      }
      const cur = m.board.sysmem.read64(pg + off);
      const mode = rnd.int(0, 3);
      const v = mode === 0 ? randomU64(rnd) : mode === 1 ? cur ^ (1n << BigInt(rnd.int(0, 63))) : mode === 2 ? (rnd.chance(0.5) ? 0n : U64_MAX) : cur ^ (randomU64(rnd) & 0xffn);
      m.board.sysmem.write64(pg + off, v);
      what.push(`0x${(pg + off).toString(16)}: 0x${cur.toString(16)} -> 0x${v.toString(16)}`);
    }
    report.cases++;
    const target = `${kind} tables`;
    tally(report, target, `${pages.length >= 8 ? '8+' : pages.length} table pages found`);
    const before = report.byTarget[target]?.outcomes.exception ?? 0;
    dmaRound(m, rnd, report, target, [0x10_0000n, 0x10_4000n, 0x10_f000n]);
    if (w.pasid >= 0) dmaRound(m, rnd, report, `${target} (PASID)`, [w.buf, w.buf + 0x8000n], w.pasid);
    if ((report.byTarget[target]?.outcomes.exception ?? 0) > before || (report.byTarget[`${target} (PASID)`]?.outcomes.exception ?? 0) > 0) {
      report.problems.push(`${target} case ${i} (seed ${seed}): an exception with ${what.join('; ')}`);
    }
    finish(m, report, `${target} case ${i} (seed ${seed}; ${what.join('; ')})`, false);
    report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
  }
  return report;
}

// --- DMA engine -------------------------------------------------------------------------

/** BAR writes through the VFIO device fd and random descriptors in a ring and portals. */
export function fuzzDmaEngine(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('dma-engine', kind, seed);
  const cases = opts.cases ?? 150;
  const rnd = new Prng(seed).fork('dma-engine');
  const perMachine = 25;
  const RING = 0x10_0000n;
  for (let base = 0; base < cases; base += perMachine) {
    const m = createMachine(kind, { seed: seed + base });
    const s = guard(m, () => {
      const w = vfioWorld(m);
      const dev = w.v.deviceFd(w.group, DEV0);
      must('device fd', dev);
      const bar0 = w.v.regionInfo(dev, 0);
      const bar4 = w.v.regionInfo(dev, 4);
      const cfg = w.v.regionInfo(dev, VFIO.VFIO_PCI_CONFIG_REGION_INDEX);
      if (typeof bar0 === 'number' || typeof bar4 === 'number' || typeof cfg === 'number') throw new Error('fuzz setup: region info');
      // Memory and Bus Master on, through config space as a VMM does.
      const cmd = new Uint8Array([COMMAND.MEMORY | COMMAND.MASTER, 0]);
      w.p.pwrite(dev, cmd, cfg.offset + BigInt(CFG.COMMAND));
      return { ...w, dev, bar0: bar0.offset, bar4: bar4.offset };
    });
    if ('exception' in s) {
      report.problems.push(`${kind} dma-engine setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const w32 = (off: bigint, v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v >>> 0, true);
      return w.p.pwrite(w.dev, b, off);
    };
    // A sane start: enabled device and WQ0 on a 16-entry ring at IOVA RING, half of the time.
    if (rnd.chance(0.5)) {
      w32(w.bar0 + BigInt(DMAE_REGS.GENCTRL), 1);
    }
    for (let i = base; i < Math.min(cases, base + perMachine); i++) {
      const t0 = performance.now();
      const what: string[] = [];
      const g = guard(m, () => {
        const kindOfCase = rnd.int(0, 3);
        if (kindOfCase === 0) {
          // A register write in BAR0.
          const off = rnd.chance(0.7) ? 0x100 + rnd.int(0, 3) * 0x40 + rnd.int(0, 15) * 4 : rnd.int(0, 0x3ff) * 4;
          const v = rnd.chance(0.3) ? [0, 1, 3, 7, 0xffffffff, 16, 8][rnd.int(0, 6)]! : rnd.nextU32();
          what.push(`BAR0+0x${off.toString(16)} = 0x${(v >>> 0).toString(16)}`);
          return w32(w.bar0 + BigInt(off), v);
        }
        if (kindOfCase === 1) {
          // A ring bring-up with random parameters, then a tail write.
          const wq = 0x100n + BigInt(rnd.int(0, 1) * 0x40);
          const reg = (r: number) => w.bar0 + wq + BigInt(r);
          w32(reg(WQ_REG.CFG), 0);
          w32(reg(WQ_REG.RING_BASE), Number(RING));
          w32(reg(WQ_REG.RING_BASE + 4), 0);
          w32(reg(WQ_REG.RING_SIZE), rnd.chance(0.8) ? 16 : rnd.nextU32());
          w32(reg(WQ_REG.PASID), rnd.chance(0.7) ? 0 : rnd.nextU32());
          w32(reg(WQ_REG.CFG), rnd.chance(0.8) ? 1 : rnd.int(0, 7));
          what.push('ring bring-up');
          return w32(reg(WQ_REG.TAIL), rnd.int(0, 20));
        }
        // A descriptor: valid-looking (MEMMOVE/FILL/COMPARE within the mapped buffer) then mutated.
        const d = new Uint8Array(64);
        const dv = new DataView(d.buffer);
        dv.setUint32(0, rnd.int(0, 4) | (rnd.chance(0.5) ? 1 << 8 : 0), true);
        dv.setBigUint64(8, rnd.chance(0.8) ? RING + 0xf000n : randomU64(rnd), true);
        dv.setBigUint64(16, rnd.chance(0.8) ? RING + BigInt(rnd.int(0, 15) * PAGE) : randomU64(rnd), true);
        dv.setBigUint64(24, rnd.chance(0.8) ? RING + BigInt(rnd.int(0, 15) * PAGE) : randomU64(rnd), true);
        dv.setUint32(32, rnd.chance(0.8) ? rnd.int(0, 2 * PAGE) : rnd.nextU32(), true);
        for (let k = rnd.int(0, 3); k > 0; k--) d[rnd.int(0, 63)]! ^= 1 << rnd.int(0, 7);
        if (kindOfCase === 2) {
          // Into the ring (process memory mapped at IOVA RING): slot n, then TAIL.
          const slot = rnd.int(0, 15);
          w.p.memWrite(w.buf + BigInt(slot * 64), d);
          what.push(`ring slot ${slot}: ${Buffer.from(d.subarray(0, 40)).toString('hex')}`);
          return w32(w.bar0 + 0x100n + BigInt(WQ_REG.TAIL), (slot + 1) % 17);
        }
        // Through the portal of WQ0 (sixteen 32-bit writes).
        for (let k = 0; k < 64; k += 4) w32(w.bar4 + BigInt(k), dv.getUint32(k, true));
        what.push(`portal: ${Buffer.from(d.subarray(0, 40)).toString('hex')}`);
        return 0;
      });
      report.cases++;
      if ('exception' in g) {
        tally(report, 'dma-engine', 'exception');
        report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): threw ${g.exception.split('\n')[0]}`);
      } else tally(report, 'dma-engine', typeof g.value === 'number' && g.value < 0 ? outcomeOf(g.value) : 'ok');
      const r = guard(m, () => m.board.scheduler.run(20_000));
      if ('exception' in r) report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): running the device threw ${r.exception.split('\n')[0]}`);
      else if (r.value >= 20_000) report.problems.push(`${kind} dma-engine case ${i}: still busy after 20000 events`);
      // The device moved bytes only inside mapped memory: VFIO's own invariants still hold.
      const v = checkInvariants(m, { dma: (i + 1) % 25 === 0 }).filter((x) => x.kind !== 'exception');
      if (v.length > 0) {
        report.violations += v.length;
        report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): ${formatViolations(v)}`);
      }
      report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
    }
    finish(m, report, `${kind} dma-engine machine ${base / perMachine}`, false);
  }
  return report;
}

/** All four surfaces on one machine. */
export function fuzzAll(kind: MachineKind, opts: FuzzOptions & { scale?: number } = {}): FuzzReport[] {
  const k = opts.scale ?? 1;
  const o = (n: number) => ({ ...opts, cases: Math.max(1, Math.round(n * k)) });
  return [fuzzUapi(kind, o(opts.cases ?? 40)), fuzzIommuRegisters(kind, o(100)), fuzzIommuTables(kind, o(60)), fuzzDmaEngine(kind, o(150))];
}
