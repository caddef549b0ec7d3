import t from 'tap';
import { readField } from '../../src/hw/layout.ts';
import { IotlbGather, IOMMU_READ, IOMMU_WRITE } from '../../src/iommu-core/io-pgtable.ts';
import type { VtdDriver } from '../../iommu/vtd/driver/driver.ts';
import { PASID_ENTRY, PGTT_NESTED } from '../../iommu/vtd/index.ts';
import { createMachine } from '../../machines/machine.ts';
import { EINVAL, EOPNOTSUPP } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { guestFirstStage, vtdInv, vtdS1 } from '../../iommu/guest/vtd.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

const GPA = 0x4000_0000; // the guest's RAM in the IOAS: 32 pages, its first-stage tables in the first 16
const GVA = 0x7000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags: number, data?: Uint8Array): [number, number] {
  let uptr = 0n;
  if (data !== undefined) {
    uptr = p.mmap(PAGE);
    p.memWrite(uptr, data);
  }
  const b = encodeStruct(iommu_hwpt_alloc, {
    size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId,
    data_type: data === undefined ? 0 : IOMMU_HWPT_DATA_VTD_S1, data_len: data?.length ?? 0, data_uptr: uptr,
  });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return [r, new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id')];
}

function invalidate(p: Process, fd: number, hwpt: number, entries: Uint8Array, type = 0): [number, number] {
  const uptr = p.mmap(PAGE);
  p.memWrite(uptr, entries);
  const b = encodeStruct(iommu_hwpt_invalidate, {
    size: iommu_hwpt_invalidate.size, hwpt_id: hwpt, data_uptr: uptr, data_type: type, entry_len: 24, entry_num: entries.length / 24,
  });
  return [p.ioctl(fd, IOMMU_HWPT_INVALIDATE, b), new StructView(iommu_hwpt_invalidate, b).num('entry_num')];
}

t.test('q35-vtd: NEST_PARENT + nested VTD_S1 HWPT: the guest table in IOAS memory, DMA GVA -> GPA -> HPA, HWPT_INVALIDATE refreshes it', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  // The VMM backs guest RAM with its own memory, mapped at the GPA in the IOAS.
  const ram = p.mmap(32 * PAGE, { populate: true });
  t.equal(map(p, fd, ioas, ram, 32 * PAGE, GPA)[0], 0);
  const io = {
    read: (gpa: number, n: number) => p.memRead(ram + BigInt(gpa - GPA), n) as Uint8Array,
    write: (gpa: number, d: Uint8Array) => void p.memWrite(ram + BigInt(gpa - GPA), d),
  };
  const { s1 } = guestFirstStage(io, GPA, 16);
  const page = (i: number) => GPA + (16 + i) * PAGE;
  t.equal(s1.map(GVA, page(0), PAGE, RW), 0);
  p.memWrite(ram + BigInt(16 * PAGE), new Uint8Array([0x61]));
  p.memWrite(ram + BigInt(17 * PAGE), new Uint8Array([0x62]));

  const [r1, parent] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  t.equal(r1, 0, 'HWPT_ALLOC NEST_PARENT');
  const [r0] = hwptAlloc(p, fd, devId, ioas, 0, vtdS1(s1.root));
  t.equal(r0, -EOPNOTSUPP, 'vendor data on an IOAS');
  const [r2, nested] = hwptAlloc(p, fd, devId, parent, 0, vtdS1(s1.root));
  t.equal(r2, 0, 'HWPT_ALLOC nested with struct iommu_hwpt_vtd_s1');
  t.same(attach(p, cdev, nested), [0, nested]);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const driver = m.host.iommu.driverOf(dev) as VtdDriver;
  const pe = driver.pasidEntryOf(dev, 0)!;
  t.equal(readField(PASID_ENTRY, pe, 'PGTT'), PGTT_NESTED, 'a nested PASID entry');
  t.equal(readField(PASID_ENTRY, pe, 'FSPTPTR') * PAGE, s1.root);
  t.equal(readField(PASID_ENTRY, pe, 'PGSNP'), 1, 'the parent forces snooping (iommufd_hwpt_paging_enforce_cc): PGSNP (pasid_pte_config_nested)');

  const byte = () => {
    const r = dev.dmaRead(BigInt(GVA), 1);
    return r.ok ? r.data![0] : -1;
  };
  t.equal(byte(), 0x61, 'GVA -> GPA -> HPA');
  t.ok(dev.dmaWrite(BigInt(GVA + 1), new Uint8Array([0x77])).ok);
  t.same(p.memRead(ram + BigInt(16 * PAGE + 1), 1), new Uint8Array([0x77]), 'the write reached the VMM-backed guest page');

  s1.unmap(GVA, PAGE, new IotlbGather());
  t.equal(s1.map(GVA, page(1), PAGE, RW), 0);
  t.equal(byte(), 0x61, 'stale until the guest invalidates');
  t.same(invalidate(p, fd, nested, vtdInv([{ addr: GVA, npages: 1 }]), 1), [-EINVAL, 0], 'data_type 1 is not IOMMU_HWPT_INVALIDATE_DATA_VTD_S1');
  t.same(invalidate(p, fd, nested, vtdInv([{ addr: GVA, npages: 1 }, { addr: GVA + 1, npages: 1 }])), [-EINVAL, 1], 'one done, then an unaligned address');
  t.equal(byte(), 0x62, 'the first entry was carried out');
  t.same(invalidate(p, fd, nested, vtdInv([{ addr: 0, npages: (1n << 64n) - 1n }])), [0, 1], 'everything');
});

t.test('q35-vtd: vendor structs follow __iommu_copy_struct_from_user: a VTD_S1 data_len or an invalidation entry_len above the struct is EINVAL even with a zero tail', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [, devId] = bind(p, fd, 0);
  const [, parent] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  const s1 = vtdS1(GPA);
  const long = new Uint8Array(32);
  long.set(s1);
  t.equal(hwptAlloc(p, fd, devId, parent, 0, long)[0], -EINVAL, 'data_len 32, zero tail');
  const [r, nested] = hwptAlloc(p, fd, devId, parent, 0, s1);
  t.equal(r, 0, 'data_len 24');
  const entry = vtdInv([{ addr: GVA, npages: 1 }]);
  const uptr = p.mmap(PAGE);
  const inv = (len: number): [number, number] => {
    const b = encodeStruct(iommu_hwpt_invalidate, { size: iommu_hwpt_invalidate.size, hwpt_id: nested, data_uptr: uptr, data_type: 0, entry_len: len, entry_num: 1 });
    return [p.ioctl(fd, IOMMU_HWPT_INVALIDATE, b), new StructView(iommu_hwpt_invalidate, b).num('entry_num')];
  };
  p.memWrite(uptr, new Uint8Array(64));
  p.memWrite(uptr, entry);
  t.same(inv(25), [-EINVAL, 0], 'entry_len sizeof + 1, zero tail: none done');
  t.same(inv(24), [0, 1]);
});
