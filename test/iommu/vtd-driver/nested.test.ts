import t from 'tap';
import { readField } from '../../../src/hw/layout.ts';
import { IotlbGather, IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import type { NestedDomain } from '../../../iommu/vtd/driver/nested.ts';
import type { SsDomain } from '../../../iommu/vtd/driver/domains.ts';
import { PASID_ENTRY, PGTT_NESTED } from '../../../iommu/vtd/index.ts';
import { EINVAL, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import { atsDevice, bare } from './fixture.ts';
import { guestFirstStage, vtdInv, vtdS1 } from '../../../iommu/guest/vtd.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const GPA = 0x4000_0000; // guest RAM: 32 pages, tables in the first 16, data in the rest
const GVA = 0x7000_0000;
const U64_MAX = (1n << 64n) - 1n;

/** A nest parent mapping guest RAM GPA -> host pages, and a guest first-stage table in that GPA space. */
function guest(m: ReturnType<typeof bare> | ReturnType<typeof atsDevice>, dev: Parameters<typeof m.host.iommu.allocPaging>[0]) {
  const hpa = m.host.allocator.allocPages(5)!;
  const s2 = m.host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  s2.map(GPA, hpa, 32 * 4096, RW);
  const io = {
    read: (gpa: number, n: number) => {
      const b = new Uint8Array(n);
      m.board.sysmem.readInto(hpa + gpa - GPA, b);
      return b;
    },
    write: (gpa: number, d: Uint8Array) => void m.board.sysmem.writeFrom(hpa + gpa - GPA, d),
  };
  const { s1 } = guestFirstStage(io, GPA, 16);
  const page = (i: number) => ({ gpa: GPA + (16 + i) * 4096, hpa: hpa + (16 + i) * 4096 });
  return { hpa, s2, s1, page };
}

t.test('a nested domain installs PGTT=nested: FSPTPTR the guest table (GPA), SLPTPTR the parent, the parent DID; DMA goes GVA -> GPA -> HPA', async (t) => {
  const m = bare();
  const { s2, s1, page } = guest(m, m.dev);
  s1.map(GVA, page(0).gpa, 4096, RW);
  m.board.sysmem.write32(page(0).hpa, 0x5a5a);
  const n = m.host.iommu.allocNested(m.dev, s2, 1, vtdS1(s1.root)) as IommuDomain;
  t.type(n, 'object');
  t.equal(m.host.iommu.attachGroup(n, m.group, m.owner), 0);
  const pe = m.driver.pasidEntryOf(m.dev, 0)!;
  t.equal(readField(PASID_ENTRY, pe, 'PGTT'), PGTT_NESTED);
  t.equal(readField(PASID_ENTRY, pe, 'FSPTPTR') * 4096, s1.root, 'FSPTPTR is the guest-physical table address');
  const parent = s2.driver as SsDomain;
  t.equal(readField(PASID_ENTRY, pe, 'SLPTPTR') * 4096, parent.builder.root);
  t.equal(readField(PASID_ENTRY, pe, 'DID'), parent.did);
  t.equal(readField(PASID_ENTRY, pe, 'SRE'), 0);
  const r = m.dev.dmaRead(BigInt(GVA), 4);
  t.ok(r.ok && r.data![0] === 0x5a && r.data![1] === 0x5a, 'GVA -> GPA (guest table) -> HPA (parent)');
  t.ok(m.dev.dmaWrite(BigInt(GVA + 8), new Uint8Array([9])).ok);
  t.equal(m.board.sysmem.read8(page(0).hpa + 8), 9);
  t.notOk(m.dev.dmaRead(BigInt(GVA + 0x1000), 4).ok, 'unmapped in the guest table: fault');
});

t.test('a guest table change is stale until cacheInvalidateUser; the entry becomes PASID-based IOTLB invalidation', async (t) => {
  const m = bare();
  const { s2, s1, page } = guest(m, m.dev);
  s1.map(GVA, page(0).gpa, 4096, RW);
  m.board.sysmem.write8(page(0).hpa, 0xaa);
  m.board.sysmem.write8(page(1).hpa, 0xbb);
  const n = m.host.iommu.allocNested(m.dev, s2, 1, vtdS1(s1.root)) as IommuDomain;
  m.host.iommu.attachGroup(n, m.group, m.owner);
  const byte = () => {
    const r = m.dev.dmaRead(BigInt(GVA), 1);
    return r.ok ? r.data![0] : -1;
  };
  t.equal(byte(), 0xaa);
  s1.unmap(GVA, 4096, new IotlbGather());
  s1.map(GVA, page(1).gpa, 4096, RW);
  t.equal(byte(), 0xaa, 'the IOTLB still holds the old GVA translation');
  const d = n.driver as NestedDomain;
  t.same(d.cacheInvalidateUser(0, vtdInv([{ addr: GVA, npages: 1, flags: 1 }]), 24, 1), { done: 1, err: 0 });
  t.equal(byte(), 0xbb, 'after HWPT_INVALIDATE the new guest mapping is used');
  s1.unmap(GVA, 4096, new IotlbGather());
  s1.map(GVA, page(0).gpa, 4096, RW);
  t.same(d.cacheInvalidateUser(0, vtdInv([{ addr: 0, npages: U64_MAX }]), 24, 1), { done: 1, err: 0 }, 'addr 0, npages U64_MAX: everything');
  t.equal(byte(), 0xaa);
  s2.unmap(page(0).gpa, 4096);
  t.notOk(m.dev.dmaRead(BigInt(GVA), 1).ok, 'an unmap in the parent drops the nested translation at once');
});

t.test('allocation checks: data type, parent, struct size and trailing bytes, flags and reserved', async (t) => {
  const m = bare();
  const { s2, s1 } = guest(m, m.dev);
  const fs = m.host.iommu.allocPaging(m.dev) as IommuDomain;
  const a = (p: IommuDomain, type: number, data: Uint8Array) => m.host.iommu.allocNested(m.dev, p, type, data);
  t.equal(a(s2, 2, vtdS1(s1.root)), -EOPNOTSUPP, 'not IOMMU_HWPT_DATA_VTD_S1');
  t.equal(a(fs, 1, vtdS1(s1.root)), -EINVAL, 'the parent must be a second-stage nest parent');
  t.equal(a(s2, 1, vtdS1(s1.root).subarray(0, 20)), -EINVAL, 'shorter than the struct');
  // __iommu_copy_struct_from_user(): data_len above sizeof(struct iommu_hwpt_vtd_s1) is -EINVAL, zero tail or not.
  const long = new Uint8Array(32);
  long.set(vtdS1(s1.root));
  t.equal(a(s2, 1, long), -EINVAL, 'longer with zero trailing bytes');
  long[30] = 1;
  t.equal(a(s2, 1, long), -EINVAL, 'longer with a non-zero tail');
  t.equal(a(s2, 1, vtdS1(s1.root, 8)), -EOPNOTSUPP, 'unknown flag');
  t.equal(a(s2, 1, vtdS1(s1.root, 0, 48, 1)), -EOPNOTSUPP, '__reserved');
  const w39 = a(s2, 1, vtdS1(s1.root, 0, 39)) as IommuDomain;
  t.equal(m.host.iommu.attachGroup(w39, m.group, m.owner), -EINVAL, 'addr_width 39 refused at attach (intel_pasid_setup_nested)');
  const w57 = a(s2, 1, vtdS1(s1.root, 0, 57)) as IommuDomain;
  t.equal(m.driver.caps.FL5LP, 1, 'this unit has 5-level first stage');
  t.equal(m.host.iommu.attachGroup(w57, m.group, m.owner), 0, 'addr_width 57 with CAP.FL5LP');
  t.equal(readField(PASID_ENTRY, m.driver.pasidEntryOf(m.dev, 0)!, 'FLPM'), 1, 'FLPM = 5-level');
  m.host.iommu.detachGroup(w57, m.group, m.owner);
  const sre = a(s2, 1, vtdS1(s1.root, 1 | 4 | 2)) as IommuDomain;
  t.equal(m.host.iommu.attachGroup(sre, m.group, m.owner), 0);
  const pe = m.driver.pasidEntryOf(m.dev, 0)!;
  t.same([readField(PASID_ENTRY, pe, 'SRE'), readField(PASID_ENTRY, pe, 'WPE'), readField(PASID_ENTRY, pe, 'EAFE')], [1, 1, 1], 'SRE, WPE, EAFE from the flags');
});

t.test('cacheInvalidateUser: wrong type EINVAL with none done; stops at the first bad entry and counts the good ones', async (t) => {
  const m = bare();
  const { s2, s1 } = guest(m, m.dev);
  const n = (m.host.iommu.allocNested(m.dev, s2, 1, vtdS1(s1.root)) as IommuDomain).driver as NestedDomain;
  const good = { addr: 0x1000, npages: 2 };
  t.same(n.cacheInvalidateUser(1, vtdInv([good]), 24, 1), { done: 0, err: -EINVAL }, 'type 1 is not VTD_S1 (0)');
  t.same(n.cacheInvalidateUser(0, vtdInv([good, { addr: 0x1001, npages: 1 }, good]), 24, 3), { done: 1, err: -EINVAL }, 'address not 4K aligned');
  t.same(n.cacheInvalidateUser(0, vtdInv([good, good, { addr: 0x1000, npages: U64_MAX }]), 24, 3), { done: 2, err: -EINVAL }, 'U64_MAX pages from a non-zero address');
  t.same(n.cacheInvalidateUser(0, vtdInv([{ ...good, flags: 2 }]), 24, 1), { done: 0, err: -EOPNOTSUPP }, 'unknown flag');
  t.same(n.cacheInvalidateUser(0, vtdInv([{ ...good, reserved: 1 }]), 24, 1), { done: 0, err: -EOPNOTSUPP }, '__reserved');
  t.same(n.cacheInvalidateUser(0, vtdInv([good]).subarray(0, 16), 16, 1), { done: 0, err: -EINVAL }, 'entry_len below the struct');
  // iommu_copy_struct_from_user_array(): entry_len above sizeof(struct iommu_hwpt_vtd_s1_invalidate) is -EINVAL.
  const wide = new Uint8Array(25);
  wide.set(vtdInv([good]));
  t.same(n.cacheInvalidateUser(0, wide, 25, 1), { done: 0, err: -EINVAL }, 'entry_len sizeof + 1, zero tail');
  wide[24] = 1;
  t.same(n.cacheInvalidateUser(0, wide, 25, 1), { done: 0, err: -EINVAL }, 'entry_len sizeof + 1, non-zero tail');
  t.same(n.cacheInvalidateUser(0, vtdInv([{ addr: 0x1000, npages: 0 }]), 24, 1), { done: 1, err: 0 }, 'npages 0 is accepted and flushes nothing');
});

t.test('on a PASID of an ATS device: the nested entry at that PASID, and invalidation reaches the device-TLB', async (t) => {
  const m = atsDevice();
  const { s2, s1, page } = guest(m, m.ep);
  s1.map(GVA, page(0).gpa, 4096, RW);
  m.board.sysmem.write8(page(0).hpa, 0x11);
  const n = m.host.iommu.allocNested(m.ep, s2, 1, vtdS1(s1.root)) as IommuDomain;
  t.equal(n.driver.setDevPasid!(m.ep, 7), 0);
  t.equal(readField(PASID_ENTRY, m.driver.pasidEntryOf(m.ep, 7)!, 'PGTT'), PGTT_NESTED);
  const r = m.ep.dmaRead(BigInt(GVA), 1, { pasid: 7 });
  t.ok(r.ok && r.data![0] === 0x11);
  const before = m.ep.invalidations.length;
  t.same((n.driver as NestedDomain).cacheInvalidateUser(0, vtdInv([{ addr: GVA, npages: 1 }]), 24, 1), { done: 1, err: 0 });
  m.board.scheduler.run();
  t.ok(m.ep.invalidations.length > before, 'a PASID-based device-TLB invalidation reached the device');
  t.equal(m.ep.invalidations.at(-1)!.pasid, 7);
});
