/**
 * Field by field: every iommufd ioctl with one field wrong at a time gets
 * the kernel's errno (drivers/iommu/iommufd/main.c size rules and each
 * handler's checks, as tools/testing/selftests/iommu/iommufd.c asserts them)
 * and changes nothing: the object table, every IOAS's mappings, pins and
 * both locked-memory counters are as before. On both real machines.
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { E2BIG, EFAULT, EINVAL, ENOENT, EOPNOTSUPP, EOVERFLOW } from '../../src/uapi/errno.ts';
import { IommufdFile } from '../../src/iommufd/main.ts';
import { Ioas } from '../../src/iommufd/objects.ts';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  iommu_destroy,
  iommu_fault_alloc,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_invalidate,
  iommu_hwpt_set_dirty_tracking,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_unmap,
  iommu_option,
  iommu_vfio_ioas,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView, type StructDef } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE, RW } from './fixture.ts';

const FIXED = 1;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
type Fields = Record<string, number | bigint>;

interface Case {
  /** What is wrong. */
  what: string;
  req: number;
  def: StructDef;
  fields: Fields;
  errno: number;
  /** Bytes to pass (default the struct's size); more than the struct: the tail bytes, non-zero when `dirtyTail`. */
  bytes?: number;
  size?: number;
  dirtyTail?: boolean;
  /** Pass an unmapped user address instead of the struct. */
  badPointer?: boolean;
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: each wrong field gets the kernel's errno and changes nothing`, async (t) => {
    const m = createMachine(kind);
    const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const names = p.readdir('/sys/bus/pci/devices/0000:00:01.0/vfio-dev') as string[];
    const [cdev, devId] = bind(p, fd, Number(names[0]!.replace('vfio', '')));
    const [, hwpt] = attach(p, cdev, ioas);
    const va = p.mmap(16 * PAGE);
    t.equal(map(p, fd, ioas, va, 16 * PAGE, 0x40_0000)[0], 0, 'a mapping to protect');
    const unmapped = 0x10n; // below mmap_min_addr: never mapped
    // A fault queue to name (its fd is part of the state every case must leave alone).
    const fb = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
    t.equal(p.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, fb), 0);
    const faultId = new StructView(iommu_fault_alloc, fb).num('out_fault_id');
    const ok = (def: StructDef, f: Fields): Fields => ({ size: def.size, ...f });
    const mapOk = { flags: FIXED | RW, ioas_id: ioas, user_va: va, length: PAGE, iova: 0x100_0000 };
    const copyOk = { flags: FIXED | RW, dst_ioas_id: ioas, src_ioas_id: ioas, length: PAGE, dst_iova: 0x100_0000, src_iova: 0x40_0000 };
    const cases: Case[] = [
      // main.c: the generic size rules, on every command.
      { what: 'IOAS_ALLOC size below the minimum', req: IOMMU_IOAS_ALLOC, def: iommu_ioas_alloc, fields: {}, size: 8, errno: -EINVAL },
      { what: 'IOAS_ALLOC trailing non-zero bytes', req: IOMMU_IOAS_ALLOC, def: iommu_ioas_alloc, fields: {}, bytes: iommu_ioas_alloc.size + 8, size: iommu_ioas_alloc.size + 8, dirtyTail: true, errno: -E2BIG },
      { what: 'IOAS_ALLOC unmapped argument', req: IOMMU_IOAS_ALLOC, def: iommu_ioas_alloc, fields: {}, badPointer: true, errno: -EFAULT },
      { what: 'IOAS_MAP size below the minimum', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: mapOk, size: 24, errno: -EINVAL },
      { what: 'IOAS_MAP trailing non-zero bytes', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: mapOk, bytes: iommu_ioas_map.size + 4, size: iommu_ioas_map.size + 4, dirtyTail: true, errno: -E2BIG },
      // ioas.c handlers.
      { what: 'IOAS_ALLOC flags', req: IOMMU_IOAS_ALLOC, def: iommu_ioas_alloc, fields: { flags: 1 }, errno: -EOPNOTSUPP },
      { what: 'IOAS_MAP unknown flag', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, flags: FIXED | RW | 8 }, errno: -EOPNOTSUPP },
      { what: 'IOAS_MAP __reserved', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'IOAS_MAP neither READABLE nor WRITEABLE', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, flags: FIXED }, errno: -EINVAL },
      { what: 'IOAS_MAP no such IOAS', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, ioas_id: 999 }, errno: -ENOENT },
      { what: 'IOAS_MAP an ID of another type (the device)', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, ioas_id: devId }, errno: -ENOENT },
      { what: 'IOAS_MAP zero length', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, length: 0 }, errno: -EINVAL },
      { what: 'IOAS_MAP iova = ULONG_MAX', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, iova: U64_MAX }, errno: -EOVERFLOW },
      { what: 'IOAS_MAP iova + length wraps', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, iova: U64_MAX - BigInt(PAGE) + 1n, length: 2 * PAGE }, errno: -EOVERFLOW },
      { what: 'IOAS_MAP user_va + length wraps', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, user_va: U64_MAX - BigInt(PAGE) + 1n, length: 2 * PAGE }, errno: -EOVERFLOW },
      { what: 'IOAS_MAP iova not aligned to the domain page', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, iova: 0x100_0800 }, errno: -EINVAL },
      { what: 'IOAS_MAP length not aligned', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, length: PAGE + 1 }, errno: -EINVAL },
      { what: 'IOAS_MAP over the existing mapping', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, iova: 0x40_0000 }, errno: -17 },
      { what: 'IOAS_MAP unmapped user memory (pinned at once: a domain is attached)', req: IOMMU_IOAS_MAP, def: iommu_ioas_map, fields: { ...mapOk, user_va: 0x1000 }, errno: -EFAULT },
      { what: 'IOAS_COPY unknown flag', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, flags: FIXED | RW | 8 }, errno: -EOPNOTSUPP },
      { what: 'IOAS_COPY neither READABLE nor WRITEABLE', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, flags: FIXED }, errno: -EINVAL },
      { what: 'IOAS_COPY no such source', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, src_ioas_id: 999 }, errno: -ENOENT },
      { what: 'IOAS_COPY source range not mapped', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, src_iova: 0x200_0000 }, errno: -ENOENT },
      { what: 'IOAS_COPY no such destination', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, dst_ioas_id: 999 }, errno: -ENOENT },
      { what: 'IOAS_COPY length = ULONG_MAX', req: IOMMU_IOAS_COPY, def: iommu_ioas_copy, fields: { ...copyOk, length: U64_MAX }, errno: -EOVERFLOW },
      { what: 'IOAS_UNMAP no such IOAS', req: IOMMU_IOAS_UNMAP, def: iommu_ioas_unmap, fields: { ioas_id: 999, iova: 0x40_0000, length: PAGE }, errno: -ENOENT },
      { what: 'IOAS_UNMAP part of a mapping', req: IOMMU_IOAS_UNMAP, def: iommu_ioas_unmap, fields: { ioas_id: ioas, iova: 0x40_0000, length: PAGE }, errno: -ENOENT },
      { what: 'IOAS_UNMAP nothing mapped there', req: IOMMU_IOAS_UNMAP, def: iommu_ioas_unmap, fields: { ioas_id: ioas, iova: 0x200_0000, length: PAGE }, errno: -ENOENT },
      { what: 'IOAS_UNMAP zero length', req: IOMMU_IOAS_UNMAP, def: iommu_ioas_unmap, fields: { ioas_id: ioas, iova: 0x40_0000, length: 0 }, errno: -EINVAL },
      { what: 'IOAS_UNMAP iova + length wraps', req: IOMMU_IOAS_UNMAP, def: iommu_ioas_unmap, fields: { ioas_id: ioas, iova: 0x40_0000, length: U64_MAX - 0x10_0000n }, errno: -EOVERFLOW },
      { what: 'IOVA_RANGES __reserved', req: IOMMU_IOAS_IOVA_RANGES, def: iommu_ioas_iova_ranges, fields: { ioas_id: ioas, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'IOVA_RANGES no such IOAS', req: IOMMU_IOAS_IOVA_RANGES, def: iommu_ioas_iova_ranges, fields: { ioas_id: 999 }, errno: -ENOENT },
      { what: 'ALLOW_IOVAS __reserved', req: IOMMU_IOAS_ALLOW_IOVAS, def: iommu_ioas_allow_iovas, fields: { ioas_id: ioas, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'ALLOW_IOVAS unmapped array', req: IOMMU_IOAS_ALLOW_IOVAS, def: iommu_ioas_allow_iovas, fields: { ioas_id: ioas, num_iovas: 1, allowed_iovas: unmapped }, errno: -EFAULT },
      { what: 'OPTION unknown option', req: IOMMU_OPTION, def: iommu_option, fields: { option_id: 99, op: IOMMU_OPTION_OP_GET }, errno: -EOPNOTSUPP },
      { what: 'OPTION __reserved', req: IOMMU_OPTION, def: iommu_option, fields: { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'OPTION RLIMIT_MODE with an object_id', req: IOMMU_OPTION, def: iommu_option, fields: { option_id: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_GET, object_id: ioas }, errno: -EOPNOTSUPP },
      { what: 'VFIO_IOAS __reserved', req: IOMMU_VFIO_IOAS, def: iommu_vfio_ioas, fields: { op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'VFIO_IOAS unknown op', req: IOMMU_VFIO_IOAS, def: iommu_vfio_ioas, fields: { op: 9 }, errno: -EOPNOTSUPP },
      { what: 'VFIO_IOAS SET of a non-IOAS', req: IOMMU_VFIO_IOAS, def: iommu_vfio_ioas, fields: { op: IOMMU_VFIO_IOAS_SET, ioas_id: hwpt }, errno: -ENOENT },
      { what: 'DESTROY no such object', req: IOMMU_DESTROY, def: iommu_destroy, fields: { id: 999 }, errno: -ENOENT },
      { what: 'DESTROY an IOAS in use', req: IOMMU_DESTROY, def: iommu_destroy, fields: { id: ioas }, errno: -16 },
      // hw_pagetable.c, device.c, fault.c.
      { what: 'HWPT_ALLOC unknown flag', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { flags: 1 << 20, dev_id: devId, pt_id: ioas }, errno: -EOPNOTSUPP },
      { what: 'HWPT_ALLOC __reserved', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: ioas, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'HWPT_ALLOC no such device', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: 999, pt_id: ioas }, errno: -ENOENT },
      { what: 'HWPT_ALLOC dev_id names an IOAS', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: ioas, pt_id: ioas }, errno: -ENOENT },
      { what: 'HWPT_ALLOC no such pt (iommufd_hwpt_alloc: -EINVAL)', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: 999 }, errno: -EINVAL },
      { what: 'HWPT_ALLOC data_len without data_type', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: ioas, data_len: 8 }, errno: -EINVAL },
      // SMMUv3 nests only through a vIOMMU (no domain_alloc_nested: -EOPNOTSUPP before the parent is looked at).
      { what: 'HWPT_ALLOC nested on a parent that is not NEST_PARENT', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: hwpt, data_type: 1, data_len: 24, data_uptr: va }, errno: kind === 'virt-smmuv3' ? -EOPNOTSUPP : -EINVAL },
      // iommufd_hwpt_nested_alloc(): no vendor data is EOPNOTSUPP before the parent is looked at.
      { what: 'HWPT_ALLOC nested without vendor data, on a parent that is not NEST_PARENT', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: hwpt }, errno: -EOPNOTSUPP },
      // iommufd_hwpt_paging_alloc(): FAULT_ID_VALID with NEST_PARENT is EOPNOTSUPP, before any fault lookup.
      { what: 'HWPT_ALLOC NEST_PARENT | FAULT_ID_VALID, no such fault', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { flags: 1 | 4, dev_id: devId, pt_id: ioas, fault_id: 999 }, errno: -EOPNOTSUPP },
      { what: 'HWPT_ALLOC NEST_PARENT | FAULT_ID_VALID, a real fault queue', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { flags: 1 | 4, dev_id: devId, pt_id: ioas, fault_id: faultId }, errno: -EOPNOTSUPP },
      { what: 'HWPT_ALLOC FAULT_ID_VALID, no such fault (looked up after the HWPT is made, which then goes)', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { flags: 4, dev_id: devId, pt_id: ioas, fault_id: 999 }, errno: -ENOENT },
      { what: 'HWPT_ALLOC size below offsetofend(__reserved)', req: IOMMU_HWPT_ALLOC, def: iommu_hwpt_alloc, fields: { dev_id: devId, pt_id: ioas }, size: 20, errno: -EINVAL },
      { what: 'GET_HW_INFO flags', req: IOMMU_GET_HW_INFO, def: iommu_hw_info, fields: { dev_id: devId, flags: 1 << 7 }, errno: -EOPNOTSUPP },
      // iommufd_get_hw_info() takes IOMMU_HW_INFO_FLAG_INPUT_TYPE; the driver refuses a type that is not DEFAULT or its own.
      { what: 'GET_HW_INFO INPUT_TYPE asking for another IOMMU\'s info', req: IOMMU_GET_HW_INFO, def: iommu_hw_info, fields: { dev_id: devId, flags: 1, out_data_type: kind === 'q35-vtd' ? 2 : 1 }, errno: -EOPNOTSUPP },
      { what: 'GET_HW_INFO INPUT_TYPE with another flag', req: IOMMU_GET_HW_INFO, def: iommu_hw_info, fields: { dev_id: devId, flags: 3 }, errno: -EOPNOTSUPP },
      { what: 'GET_HW_INFO no such device', req: IOMMU_GET_HW_INFO, def: iommu_hw_info, fields: { dev_id: 999 }, errno: -ENOENT },
      { what: 'GET_HW_INFO unmapped data buffer', req: IOMMU_GET_HW_INFO, def: iommu_hw_info, fields: { dev_id: devId, data_len: 64, data_uptr: unmapped }, errno: -EFAULT },
      { what: 'SET_DIRTY_TRACKING unknown flag', req: IOMMU_HWPT_SET_DIRTY_TRACKING, def: iommu_hwpt_set_dirty_tracking, fields: { hwpt_id: hwpt, flags: 2 }, errno: -EOPNOTSUPP },
      { what: 'SET_DIRTY_TRACKING no such HWPT', req: IOMMU_HWPT_SET_DIRTY_TRACKING, def: iommu_hwpt_set_dirty_tracking, fields: { hwpt_id: 999, flags: 1 }, errno: -ENOENT },
      { what: 'SET_DIRTY_TRACKING on an HWPT without DIRTY_TRACKING', req: IOMMU_HWPT_SET_DIRTY_TRACKING, def: iommu_hwpt_set_dirty_tracking, fields: { hwpt_id: hwpt, flags: 1 }, errno: -EOPNOTSUPP },
      { what: 'GET_DIRTY_BITMAP unknown flag', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: hwpt, flags: 2, iova: 0x40_0000, length: PAGE, page_size: PAGE, data: va }, errno: -EOPNOTSUPP },
      { what: 'GET_DIRTY_BITMAP no such HWPT', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: 999, iova: 0x40_0000, length: PAGE, page_size: PAGE, data: va }, errno: -ENOENT },
      // iopt_read_and_clear_dirty_data(): iommufd_check_iova_range() runs before the dirty-ops check.
      { what: 'GET_DIRTY_BITMAP wrapping range, HWPT without dirty tracking', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: hwpt, iova: 0xffff_ffff_ffff_f000n, length: 0x2000, page_size: PAGE, data: va }, errno: -EOVERFLOW },
      { what: 'GET_DIRTY_BITMAP misaligned iova, HWPT without dirty tracking', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: hwpt, iova: 0x40_0800, length: PAGE, page_size: PAGE, data: va }, errno: -EINVAL },
      { what: 'GET_DIRTY_BITMAP page_size 0, HWPT without dirty tracking', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: hwpt, iova: 0x40_0000, length: PAGE, page_size: 0, data: va }, errno: -EINVAL },
      { what: 'GET_DIRTY_BITMAP valid range, HWPT without dirty tracking', req: IOMMU_HWPT_GET_DIRTY_BITMAP, def: iommu_hwpt_get_dirty_bitmap, fields: { hwpt_id: hwpt, iova: 0x40_0000, length: PAGE, page_size: PAGE, data: va }, errno: -EOPNOTSUPP },
      { what: 'HWPT_INVALIDATE __reserved', req: IOMMU_HWPT_INVALIDATE, def: iommu_hwpt_invalidate, fields: { hwpt_id: hwpt, __reserved: 1 }, errno: -EOPNOTSUPP },
      { what: 'HWPT_INVALIDATE entries but no data pointer', req: IOMMU_HWPT_INVALIDATE, def: iommu_hwpt_invalidate, fields: { hwpt_id: hwpt, entry_num: 1, entry_len: 16 }, errno: -EINVAL },
      { what: 'HWPT_INVALIDATE no such HWPT', req: IOMMU_HWPT_INVALIDATE, def: iommu_hwpt_invalidate, fields: { hwpt_id: 999 }, errno: -ENOENT },
      // iommufd_hwpt_invalidate(): entry_len above PAGE_SIZE or entry_num above 1 << 19 is EINVAL before the lookup.
      { what: 'HWPT_INVALIDATE entry_len above PAGE_SIZE', req: IOMMU_HWPT_INVALIDATE, def: iommu_hwpt_invalidate, fields: { hwpt_id: 999, data_uptr: va, entry_len: PAGE + 1, entry_num: 1 }, errno: -EINVAL },
      { what: 'HWPT_INVALIDATE entry_num above 1 << 19', req: IOMMU_HWPT_INVALIDATE, def: iommu_hwpt_invalidate, fields: { hwpt_id: 999, data_uptr: va, entry_len: 16, entry_num: 2 ** 19 + 1 }, errno: -EINVAL },
      { what: 'FAULT_QUEUE_ALLOC flags', req: IOMMU_FAULT_QUEUE_ALLOC, def: iommu_fault_alloc, fields: { flags: 1 }, errno: -EOPNOTSUPP },
    ];

    const ctx = (p.file(fd) as IommufdFile).ctx;
    const snapshot = () => ({
      objects: [...ctx.objects.values()].map((o) => `${o.id}:${o.type}:${o.refs}`).join(' '),
      areas: [...ctx.objects.values()].filter((o): o is Ioas => o instanceof Ioas).map((o) => o.iopt.areas.all().map((n) => `${n.start}-${n.last}`).join(',')).join(' | '),
      pinned: p.mm.pinnedVm,
      userLocked: p.user.lockedVm,
      mmLocked: p.mm.lockedVm,
      fds: [...Array(64).keys()].filter((i) => p.file(i) !== undefined).length,
    });
    const before = snapshot();
    for (const c of cases) {
      const size = c.size ?? c.def.size;
      const bytes = new Uint8Array(c.bytes ?? Math.max(size, c.def.size));
      bytes.set(encodeStruct(c.def, ok(c.def, { ...c.fields, size })).subarray(0, Math.min(bytes.length, c.def.size)));
      if (c.dirtyTail) bytes[bytes.length - 1] = 1;
      const r = p.ioctl(fd, c.req, c.badPointer === true ? Number(unmapped) : bytes);
      t.equal(r, c.errno, c.what);
      t.same(snapshot(), before, `${c.what}: nothing changed`);
    }
  });
}
