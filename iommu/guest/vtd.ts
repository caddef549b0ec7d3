/**
 * The guest half of VT-d nested translation: what a guest kernel's
 * intel-iommu driver behind a virtual VT-d sets up in its own memory (a
 * first-stage IA-32e table whose pointers and outputs are GPAs) and the
 * vendor structs the VMM passes to iommufd for it (include/uapi/linux/
 * iommufd.h: struct iommu_hwpt_vtd_s1 for IOMMU_HWPT_ALLOC, struct
 * iommu_hwpt_vtd_s1_invalidate entries for IOMMU_HWPT_INVALIDATE).
 */
import { createIa32eBuilder, type Ia32eBuilder } from '../pgtable/ia32e-builder.ts';
import { iommu_hwpt_vtd_s1, iommu_hwpt_vtd_s1_invalidate } from '../../src/uapi/iommufd.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import { GuestMem, guestAllocator, type ByteAccess } from './guest-mem.ts';

/** A guest's first-stage IA-32e (4-level) table, its pages taken from guest pages [tableBase, tableBase + pages * 4K). */
export function guestFirstStage(io: ByteAccess, tableBase: number, pages: number): { mem: GuestMem; s1: Ia32eBuilder } {
  const mem = new GuestMem(io);
  const s1 = createIa32eBuilder(mem, guestAllocator(mem, tableBase, pages), { levels: 4, maxPhysBits: 48 });
  if (typeof s1 === 'number') throw new Error(`ia32e builder ${s1}`);
  return { mem, s1 };
}

/** struct iommu_hwpt_vtd_s1 for a guest table at GPA `pgtbl` (flags: IOMMU_VTD_S1_SRE/EAFE/WPE). */
export function vtdS1(pgtbl: number, flags = 0, addrWidth = 48, reserved = 0): Uint8Array {
  return encodeStruct(iommu_hwpt_vtd_s1, { flags: BigInt(flags), pgtbl_addr: BigInt(pgtbl), addr_width: addrWidth, __reserved: reserved });
}

/** An array of struct iommu_hwpt_vtd_s1_invalidate (flags: IOMMU_VTD_INV_FLAGS_LEAF). */
export function vtdInv(entries: { addr: bigint | number; npages: bigint | number; flags?: number; reserved?: number }[]): Uint8Array {
  const size = iommu_hwpt_vtd_s1_invalidate.size;
  const out = new Uint8Array(size * entries.length);
  entries.forEach((e, i) => {
    const b = encodeStruct(iommu_hwpt_vtd_s1_invalidate, { addr: BigInt(e.addr), npages: BigInt(e.npages), flags: e.flags ?? 0, __reserved: e.reserved ?? 0 });
    out.set(b, i * size);
  });
  return out;
}
