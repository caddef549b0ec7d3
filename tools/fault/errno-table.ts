/**
 * The exact errno Linux returns for each class of bad ioctl argument, per
 * ioctl (issue 9), for the uapi fuzzer's targeted cases. Sources:
 * - VFIO type1 (drivers/vfio/vfio_iommu_type1.c): every handler copies
 *   `minsz = offsetofend(..., last field)` and returns -EINVAL when
 *   `argsz < minsz || flags & ~mask`; vfio_dma_do_map/do_unmap return
 *   -EINVAL for an unaligned iova/size/vaddr and -EOVERFLOW when
 *   iova + size - 1 wraps (check_add_overflow). A larger argsz with trailing
 *   bytes is accepted (not checked).
 * - VFIO device (vfio_main.c, pci/vfio_pci_core.c): GET_INFO/REGION_INFO/
 *   IRQ_INFO/SET_IRQS -EINVAL for argsz < minsz, SET_IRQS -EINVAL for unknown
 *   flags (vfio_set_irqs_validate_and_prepare); the cdev's BIND_IOMMUFD
 *   -EINVAL for argsz < minsz or any flags, ATTACH/DETACH_IOMMUFD_PT -EINVAL
 *   for argsz < minsz or unknown flags (device_cdev.c).
 * - iommufd (drivers/iommu/iommufd/main.c iommufd_fops_ioctl): -EINVAL when
 *   `size < op->min_size`, -E2BIG from copy_struct_from_user when bytes past
 *   the kernel's struct are non-zero; handlers return -EOPNOTSUPP for unknown
 *   flags and non-zero __reserved fields, -ENOENT for an ID that names no
 *   object (iommufd_get_object), -EOVERFLOW when iova + length wraps
 *   (ioas.c, io_pagetable.c check_add_overflow), -EINVAL for a FIXED_IOVA
 *   not aligned to the IOAS's iova_alignment (iopt_check_iova).
 * - Any ioctl on a closed fd: -EBADF (fdget in the syscall).
 */
import type { Machine } from '../../machines/machine.ts';
import { E2BIG, EBADF, EINVAL, ENOENT, EOPNOTSUPP, EOVERFLOW } from '../../src/uapi/errno.ts';
import type { StructDef } from '../../src/uapi/struct.ts';
import { vfioModule } from '../../src/vfio/module.ts';
import { IommufdFile } from '../../src/iommufd/main.ts';

export type MutationClass = 'size-too-small' | 'unknown-flags' | 'reserved-set' | 'trailing-nonzero' | 'u64-wrap' | 'misaligned' | 'bad-id' | 'bad-fd';

/** ioctl name -> class -> the errno (positive) Linux returns. Classes not listed do not apply to that ioctl. */
export const EXPECTED_ERRNO: Record<string, Partial<Record<MutationClass, number>>> = {
  VFIO_IOMMU_GET_INFO: { 'size-too-small': EINVAL, 'bad-fd': EBADF },
  VFIO_IOMMU_MAP_DMA: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'u64-wrap': EOVERFLOW, misaligned: EINVAL, 'bad-fd': EBADF },
  VFIO_IOMMU_UNMAP_DMA: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'u64-wrap': EOVERFLOW, misaligned: EINVAL, 'bad-fd': EBADF },
  VFIO_IOMMU_DIRTY_PAGES: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'bad-fd': EBADF },
  VFIO_GROUP_GET_STATUS: { 'size-too-small': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_GET_INFO: { 'size-too-small': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_GET_REGION_INFO: { 'size-too-small': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_GET_IRQ_INFO: { 'size-too-small': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_SET_IRQS: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_BIND_IOMMUFD: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'bad-fd': EBADF },
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'bad-id': ENOENT, 'bad-fd': EBADF },
  VFIO_DEVICE_DETACH_IOMMUFD_PT: { 'size-too-small': EINVAL, 'unknown-flags': EINVAL, 'bad-fd': EBADF },
  IOMMU_DESTROY: { 'size-too-small': EINVAL, 'trailing-nonzero': E2BIG, 'bad-id': ENOENT, 'bad-fd': EBADF },
  IOMMU_IOAS_ALLOC: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_IOAS_ALLOW_IOVAS: { 'size-too-small': EINVAL, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-id': ENOENT, 'bad-fd': EBADF },
  IOMMU_IOAS_IOVA_RANGES: { 'size-too-small': EINVAL, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-id': ENOENT, 'bad-fd': EBADF },
  IOMMU_IOAS_MAP: {
    'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'u64-wrap': EOVERFLOW, misaligned: EINVAL, 'bad-id': ENOENT, 'bad-fd': EBADF,
  },
  IOMMU_IOAS_COPY: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_IOAS_UNMAP: { 'size-too-small': EINVAL, 'trailing-nonzero': E2BIG, 'u64-wrap': EOVERFLOW, 'bad-id': ENOENT, 'bad-fd': EBADF },
  IOMMU_OPTION: { 'size-too-small': EINVAL, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_VFIO_IOAS: { 'size-too-small': EINVAL, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_HWPT_ALLOC: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-id': EINVAL, 'bad-fd': EBADF }, // a bad pt_id: get_object(ANY) failure is -EINVAL
  IOMMU_GET_HW_INFO: { 'size-too-small': EINVAL, 'trailing-nonzero': E2BIG, 'bad-id': ENOENT, 'bad-fd': EBADF },
  IOMMU_HWPT_SET_DIRTY_TRACKING: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_HWPT_GET_DIRTY_BITMAP: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_HWPT_INVALIDATE: { 'size-too-small': EINVAL, 'reserved-set': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
  IOMMU_FAULT_QUEUE_ALLOC: { 'size-too-small': EINVAL, 'unknown-flags': EOPNOTSUPP, 'trailing-nonzero': E2BIG, 'bad-fd': EBADF },
};

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const BAD_ID = 0xdead;

function put(bytes: Uint8Array, offset: number, size: number, value: bigint): void {
  for (let i = 0; i < size && offset + i < bytes.length; i++) bytes[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

function field(def: StructDef, name: string) {
  return (def.fields as Record<string, { offset: number; size: number } | undefined>)[name];
}

/** The IOVA and length fields of a struct, when it has them. */
function iovaFields(def: StructDef): { iova?: { offset: number; size: number }; len?: { offset: number; size: number } } {
  const out: { iova?: { offset: number; size: number }; len?: { offset: number; size: number } } = {};
  const iova = field(def, 'iova') ?? field(def, 'dst_iova');
  const len = field(def, 'size') !== undefined && def.order[0]!.name !== 'size' ? field(def, 'size') : field(def, 'length');
  if (iova !== undefined) out.iova = iova;
  if (len !== undefined) out.len = len;
  return out;
}

/**
 * Apply one mutation class to a valid encoding of `def` (its first field the
 * argsz/size). Returns the new bytes, or undefined when the class has no
 * field to act on in this struct.
 */
export function applyMutation(cls: MutationClass, def: StructDef, valid: Uint8Array): Uint8Array | undefined {
  const b = valid.slice();
  switch (cls) {
    case 'size-too-small':
      put(b, 0, 4, 4n);
      return b;
    case 'unknown-flags': {
      const f = field(def, 'flags');
      if (f === undefined) return undefined;
      put(b, f.offset, f.size, BigInt(new DataView(b.buffer, b.byteOffset).getUint32(f.offset, true) | 0x8000_0000) & 0xffff_ffffn);
      return b;
    }
    case 'reserved-set': {
      const f = def.order.find((x) => x.name === '__reserved');
      if (f === undefined) return undefined;
      put(b, f.offset, 1, 1n);
      return b;
    }
    case 'trailing-nonzero': {
      const ext = new Uint8Array(b.length + 8);
      ext.set(b);
      ext.fill(0xa5, b.length);
      put(ext, 0, 4, BigInt(ext.length));
      return ext;
    }
    case 'u64-wrap': {
      const { iova, len } = iovaFields(def);
      if (iova === undefined || len === undefined) return undefined;
      put(b, iova.offset, 8, U64_MAX - 0xfffn);
      put(b, len.offset, 8, 0x2000n);
      return b;
    }
    case 'misaligned': {
      const { iova } = iovaFields(def);
      if (iova === undefined) return undefined;
      const v = new DataView(b.buffer, b.byteOffset).getBigUint64(iova.offset, true);
      put(b, iova.offset, 8, v | 0x800n);
      return b;
    }
    case 'bad-id': {
      const f = field(def, 'ioas_id') ?? field(def, 'id') ?? field(def, 'pt_id') ?? field(def, 'dev_id');
      if (f === undefined) return undefined;
      put(b, f.offset, f.size, BigInt(BAD_ID));
      return b;
    }
    case 'bad-fd':
      return b;
  }
}

/**
 * What a refused call must leave unchanged, as text: pages in use and
 * referenced, each process's locked/pinned pages and open fds, every VFIO
 * container's DMA ranges, every iommufd object.
 */
export function stateDigest(m: Machine): string {
  const parts: string[] = [`pages ${m.host.allocator.pagesInUse}/${m.host.pages.liveRuns}`];
  for (const p of m.host.processes.values()) {
    const fds: number[] = [];
    const objs: string[] = [];
    for (let fd = 0; fd < 256; fd++) {
      const f = p.file(fd);
      if (f === undefined) continue;
      fds.push(fd);
      if (f instanceof IommufdFile) for (const [id, o] of f.ctx.objects) objs.push(`${id}:${o.constructor.name}`);
    }
    parts.push(`pid ${p.pid} locked ${p.mm.lockedVm} pinned ${p.mm.pinnedVm} fds ${fds.join(',')} objects ${objs.join(',')}`);
  }
  for (const g of vfioModule(m.host).groups.values()) {
    const io = g.container?.iommu;
    if (io !== undefined) parts.push(`group ${g.iommuGroup.id} dmas ${[...io.dmas].map((d) => `${d.iova}+${d.size}`).join(',')}`);
  }
  return parts.join('\n');
}
