/**
 * Nested translation on q35-vtd, as a VMM with a virtual IOMMU runs it:
 *  1. The VMM backs guest RAM with its own memory and maps it into an IOAS
 *     at the guest-physical addresses (stage 2: GPA -> host physical).
 *  2. IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_NEST_PARENT on the IOAS: the
 *     stage-2 domain that nested domains may sit on.
 *  3. The guest kernel builds a first-stage IA-32e table in its own RAM (the
 *     table's pointers and outputs are GPAs) for an IOVA of its choice.
 *  4. IOMMU_HWPT_ALLOC on the parent with IOMMU_HWPT_DATA_VTD_S1
 *     (struct iommu_hwpt_vtd_s1: the guest table's GPA, its address width):
 *     a nested HWPT; the device is attached to it (a PASID entry with
 *     PGTT = nested).
 *  5. A DMA to the guest IOVA is translated through both stages:
 *     guest IOVA -> GPA (guest table) -> host physical (the parent).
 *  6. The guest remaps its IOVA to another page: the IOTLB still holds the
 *     old translation until the guest invalidates it, which the VMM forwards
 *     with IOMMU_HWPT_INVALIDATE (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entries).
 * (SMMUv3 nesting goes through IOMMU_VIOMMU_ALLOC and is not shown here.)
 * Run: npx tsx examples/nested-translation.ts
 */
import { createMachine } from '../machines/machine.ts';
import { IotlbGather, IOMMU_READ, IOMMU_WRITE } from '../iommu/pgtable/types.ts';
import type { Process } from '../src/host/process.ts';
import { CFG, COMMAND } from '../src/pci/header.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
  vfio_device_attach_iommufd_pt,
} from '../src/uapi/iommufd.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT } from '../src/uapi/vfio.ts';
import { encodeStruct, StructView } from '../src/uapi/struct.ts';
import { ioasMap, iommufdSetup } from '../src/node/cli/vmm.ts';
// The guest side (a PhysMem over the VMM's memory, the guest's table
// builder, the two vendor structs) is shared with the VT-d nesting tests.
import { guestFirstStage, vtdInv, vtdS1 } from '../test/iommu/vtd-driver/guest.ts';

const PAGE = 4096;
const GPA = 0x4000_0000; // guest RAM: 32 pages; the guest's page tables in the first 16
const GUEST_IOVA = 0x7000_0000; // what the guest's driver gives its device
/** enum iommu_hwpt_invalidate_data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0. */
const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;

function check(r: number, what: string): void {
  if (r < 0) throw new Error(`${what} failed (${r})`);
}

/** Put `bytes` in the VMM's memory and return the pointer (ioctl data_uptr). */
function userBuf(p: Process, bytes: Uint8Array): bigint {
  const va = p.mmap(PAGE);
  p.memWrite(va, bytes);
  return va;
}

export interface NestedResult {
  first: string;
  beforeInvalidate: string;
  afterInvalidate: string;
  writeReached: boolean;
}

export function runNestedTranslation(say: (s: string) => void = console.log): NestedResult {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const { iommufd: fd, device: cdev, devId, ioas } = iommufdSetup(m, p, dev.bdf);

  // 1. Guest RAM, stage 2.
  const ram = p.mmap(32 * PAGE, { populate: true });
  ioasMap(p, fd, ioas, ram, BigInt(GPA), 32 * PAGE);
  const gpaToVa = (gpa: number) => ram + BigInt(gpa - GPA);

  // 2. The nest parent.
  const pa = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: devId, pt_id: ioas });
  check(p.ioctl(fd, IOMMU_HWPT_ALLOC, pa), 'IOMMU_HWPT_ALLOC(NEST_PARENT)');
  const parent = new StructView(iommu_hwpt_alloc, pa).num('out_hwpt_id');

  // 3. The guest's first stage: GUEST_IOVA -> guest page 16.
  const io = {
    read: (gpa: number, n: number) => p.memRead(gpaToVa(gpa), n) as Uint8Array,
    write: (gpa: number, d: Uint8Array) => void p.memWrite(gpaToVa(gpa), d),
  };
  const { s1 } = guestFirstStage(io, GPA, 16);
  const guestPage = (i: number) => GPA + (16 + i) * PAGE;
  check(s1.map(GUEST_IOVA, guestPage(0), PAGE, IOMMU_READ | IOMMU_WRITE), 'guest map');
  p.memWrite(gpaToVa(guestPage(0)), new TextEncoder().encode('guest page A'));
  p.memWrite(gpaToVa(guestPage(1)), new TextEncoder().encode('guest page B'));

  // 4. The nested HWPT, and the attach.
  const s1data = vtdS1(s1.root);
  const na = encodeStruct(iommu_hwpt_alloc, {
    size: iommu_hwpt_alloc.size, dev_id: devId, pt_id: parent,
    data_type: IOMMU_HWPT_DATA_VTD_S1, data_len: s1data.length, data_uptr: userBuf(p, s1data),
  });
  check(p.ioctl(fd, IOMMU_HWPT_ALLOC, na), 'IOMMU_HWPT_ALLOC(VTD_S1)');
  const nested = new StructView(iommu_hwpt_alloc, na).num('out_hwpt_id');
  const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: nested });
  check(p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at), 'VFIO_DEVICE_ATTACH_IOMMUFD_PT(nested)');
  say(`IOAS ${ioas}: guest RAM at GPA 0x${GPA.toString(16)}; HWPT ${parent} NEST_PARENT (stage 2); HWPT ${nested} nested with the guest's table at GPA 0x${s1.root.toString(16)}; device attached`);

  // 5. Both stages.
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const read = () => {
    const r = dev.dmaRead(BigInt(GUEST_IOVA), 12);
    return r.ok ? new TextDecoder().decode(r.data) : r.fault;
  };
  const first = read();
  say(`DMA read at guest IOVA 0x${GUEST_IOVA.toString(16)}: "${first}" (guest IOVA -> GPA 0x${guestPage(0).toString(16)} -> host page)`);
  const w = dev.dmaWrite(BigInt(GUEST_IOVA), new TextEncoder().encode('G'));
  const seen = p.memRead(gpaToVa(guestPage(0)), 1);
  const writeReached = w.ok && seen instanceof Uint8Array && seen[0] === 'G'.charCodeAt(0);
  say(`DMA write through both stages ${writeReached ? 'reached the VMM-backed guest page' : 'did NOT arrive'}`);

  // 6. The guest remaps; stale until it invalidates.
  s1.unmap(GUEST_IOVA, PAGE, new IotlbGather());
  check(s1.map(GUEST_IOVA, guestPage(1), PAGE, IOMMU_READ | IOMMU_WRITE), 'guest remap');
  const beforeInvalidate = read();
  say(`the guest remapped the IOVA to page B; before invalidating, the device still reads "${beforeInvalidate}" (the IOTLB's cached entry)`);
  const inv = vtdInv([{ addr: GUEST_IOVA, npages: 1 }]);
  const ib = encodeStruct(iommu_hwpt_invalidate, {
    size: iommu_hwpt_invalidate.size, hwpt_id: nested, data_uptr: userBuf(p, inv),
    data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, entry_len: inv.length, entry_num: 1,
  });
  check(p.ioctl(fd, IOMMU_HWPT_INVALIDATE, ib), 'IOMMU_HWPT_INVALIDATE');
  const afterInvalidate = read();
  say(`IOMMU_HWPT_INVALIDATE (${new StructView(iommu_hwpt_invalidate, ib).num('entry_num')} entry handled); now the device reads "${afterInvalidate}"`);
  p.exit();
  return { first, beforeInvalidate, afterInvalidate, writeReached };
}

if (import.meta.url === `file://${process.argv[1]}`) runNestedTranslation();
