import t from 'tap';
import { readField } from '../../../src/hw/layout.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 } from '../../../src/uapi/iommufd.ts';
import { PASID_ENTRY, PGTT_FIRST_STAGE, PGTT_PASSTHROUGH, PGTT_SECOND_STAGE } from '../../../iommu/vtd/index.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { PasidCapability } from '../../../src/pci/caps/pasid.ts';
import { BarePcieFunction } from '../../pci/helpers.ts';
import { bare, machine } from './fixture.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const pgtt = (w: Uint32Array | undefined) => (w === undefined || readField(PASID_ENTRY, w, 'P') === 0 ? 0 : readField(PASID_ENTRY, w, 'PGTT'));

t.test('the driver brings the unit up through MMIO: queued invalidation, a scalable-mode root table, translation on', async (t) => {
  const { vtd, board, driver } = bare();
  t.ok(vtd.translationEnabled);
  t.equal(vtd.mode, 'scalable');
  t.ok(vtd.qiEnabled());
  t.ok(board.counters.get('vtd.qi.descriptors') >= 3, 'global context, PASID-cache and IOTLB invalidation at init');
  t.same(driver.faults, []);
});

t.test('hw_info is struct iommu_hw_info_vtd with CAP and ECAP; reserved regions are the IOAPIC/MSI window', async (t) => {
  const { driver, dev, vtd } = bare();
  const info = driver.hwInfo(dev);
  t.equal(info.type, IOMMU_HW_INFO_TYPE_INTEL_VTD);
  const dv = new DataView(info.data.buffer);
  t.equal(info.data.length, 24);
  t.same([dv.getUint32(0, true), dv.getUint32(8, true), dv.getUint32(16, true)], [IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, vtd.rf.get('CAP'), vtd.rf.get('ECAP')], 'flags: the erratum flag, always (intel_iommu_hw_info)');
  t.same(driver.getResvRegions(), [{ start: 0xfee0_0000, length: 0x10_0000, type: 'msi', prot: 0 }]);
  t.equal(driver.maxPasids(dev), 0, 'a device without PASID capability');
});

t.test('a claimed group is blocked: no PASID entry, DMA faults, and the fault interrupt fills driver.faults', async (t) => {
  const { board, driver, dev } = bare();
  t.equal(pgtt(driver.pasidEntryOf(dev, 0)), 0);
  t.same(dev.dmaRead(0x1000n, 4), { ok: false, fault: 'DMAR_SM_PASID_ENTRY_NOT_PRESENT' });
  board.scheduler.run();
  const f = driver.faults.at(-1)!;
  t.same([f.name, f.sid, f.addr, f.write], ['DMAR_SM_PASID_ENTRY_NOT_PRESENT', dev.requesterId, 0x1000, false]);
});

t.test('a paging domain is first stage: mapped IOVAs reach RAM, unmapped ones fault 0x71', async (t) => {
  const { board, host, driver, dev, group, owner, ram } = bare();
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.equal(pgtt(driver.pasidEntryOf(dev, 0)), PGTT_FIRST_STAGE);
  t.equal(d.map(0x10_0000, ram, 0x4000, RW), 0);
  t.ok(dev.dmaWrite(0x10_0010n, new Uint8Array([1, 2, 3, 4])).ok);
  t.equal(board.sysmem.read32(ram + 0x10), 0x04030201);
  t.same(dev.dmaRead(0x20_0000n, 4), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' });
  board.scheduler.run();
  t.same([driver.faults.at(-1)!.reason, driver.faults.at(-1)!.addr], [0x71, 0x20_0000]);
});

t.test('unmap invalidates the IOTLB before it returns: no stale translation', async (t) => {
  const { board, host, dev, group, owner, ram } = bare();
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  d.map(0x10_0000, ram, 0x4000, RW);
  t.ok(dev.dmaRead(0x10_1000n, 4).ok, 'fills the IOTLB');
  const hits = board.counters.get('vtd.iotlb.hit');
  t.ok(dev.dmaRead(0x10_1000n, 4).ok);
  t.ok(board.counters.get('vtd.iotlb.hit') > hits, 'second access hits');
  t.equal(d.unmap(0x10_0000, 0x4000), 0x4000);
  t.same(dev.dmaRead(0x10_1000n, 4), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' });
});

t.test('large and unaligned unmaps are invalidated exactly (page-selective AM, or PASID-selective beyond MAMV)', async (t) => {
  const { host, dev, group, owner } = bare();
  const big = host.allocator.allocPages(10)!;
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  t.equal(d.map(0x4000_0000, big, 0x1f_f000, RW), 0, '511 pages');
  const offs = [0, 0x1000, 0x10_0000, 0x1f_e000];
  for (const off of offs) t.ok(dev.dmaRead(BigInt(0x4000_0000 + off), 4).ok);
  d.unmap(0x4000_0000, 0x1f_f000);
  for (const off of offs) t.notOk(dev.dmaRead(BigInt(0x4000_0000 + off), 4).ok, `0x${off.toString(16)} invalidated`);
  t.equal(d.map(0x3fff_f000, big, 0x2000, RW), 0, 'two pages across a 1 GiB boundary');
  for (const a of [0x3fff_f000, 0x4000_0000]) t.ok(dev.dmaRead(BigInt(a), 4).ok);
  d.unmap(0x3fff_f000, 0x2000);
  for (const a of [0x3fff_f000, 0x4000_0000]) t.notOk(dev.dmaRead(BigInt(a), 4).ok);
});

t.test('identity passes through (PGTT 100b); a nest-parent domain is second stage (PGTT 010b)', async (t) => {
  const { board, host, driver, dev, group, owner, ram } = bare();
  const id = host.iommu.identityDomain(group)!;
  t.equal(host.iommu.attachGroup(id, group, owner), 0);
  t.equal(pgtt(driver.pasidEntryOf(dev, 0)), PGTT_PASSTHROUGH);
  board.sysmem.write32(ram, 0xabcd);
  const r = dev.dmaRead(BigInt(ram), 4);
  t.ok(r.ok && r.data![0] === 0xcd);
  host.iommu.detachGroup(id, group, owner);
  t.notOk(dev.dmaRead(BigInt(ram), 4).ok, 'blocked again: the pass-through entry was flushed from the PASID cache');
  const s2 = host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  t.equal(host.iommu.attachGroup(s2, group, owner), 0);
  t.equal(pgtt(driver.pasidEntryOf(dev, 0)), PGTT_SECOND_STAGE);
  s2.map(0x8000_0000, ram, 0x1000, RW);
  const r2 = dev.dmaRead(0x8000_0000n, 4);
  t.ok(r2.ok && r2.data![0] === 0xcd, 'GPA -> PA through the second stage');
  s2.unmap(0x8000_0000, 0x1000);
  t.same(dev.dmaRead(0x8000_0000n, 4), { ok: false, fault: 'DMAR_SM_SS_PTE_NOT_PRESENT' });
  t.equal(host.iommu.allocNested(dev, s2, 1, new Uint8Array(16)), -22, 'struct iommu_hwpt_vtd_s1 shorter than its 24 bytes: -EINVAL');
});

t.test('replacing a domain flushes the old PASID entry: DMA sees the new mapping at once', async (t) => {
  const { board, host, dev, group, owner, ram } = bare();
  const a = host.iommu.allocPaging(dev) as IommuDomain;
  const b = host.iommu.allocPaging(dev) as IommuDomain;
  a.map(0x1_0000, ram, 0x1000, RW);
  b.map(0x1_0000, ram + 0x1000, 0x1000, RW);
  board.sysmem.write32(ram, 0xaa);
  board.sysmem.write32(ram + 0x1000, 0xbb);
  const byte = () => {
    const r = dev.dmaRead(0x1_0000n, 1);
    return r.ok ? r.data![0] : -1;
  };
  host.iommu.attachGroup(a, group, owner);
  t.equal(byte(), 0xaa);
  t.equal(host.iommu.replaceGroupDomain(b, group, owner), 0);
  t.equal(byte(), 0xbb);
});

t.test('SVA on a PASID: pre-populated process memory through the process page table; unbind removes the PASID', async (t) => {
  const m = machine();
  class PasidDev extends BarePcieFunction {
    constructor() {
      super('pasid-dev');
      new PasidCapability(this.config, this.caps, { maxPasidWidth: 8 });
    }
  }
  const { dev } = m.add(new PasidDev(), 1);
  t.equal(m.driver.maxPasids(dev), 256, 'PASID width from the device capability');
  const p = m.host.spawn();
  const va = p.mmap(4 * 4096, { populate: true });
  p.memWrite(va, new Uint8Array([42]));
  const h = m.host.sva.bind(dev, p.mm, p.pid);
  t.type(h, 'object', 'bound');
  const sva = h as SvaHandle;
  t.equal(pgtt(m.driver.pasidEntryOf(dev, sva.pasid)), PGTT_FIRST_STAGE);
  const r = dev.dmaRead(va, 1, { pasid: sva.pasid });
  t.ok(r.ok && r.data![0] === 42, 'DMA with the PASID reads the process memory');
  t.ok(dev.dmaWrite(va + 1n, new Uint8Array([7]), { pasid: sva.pasid }).ok);
  t.same(p.memRead(va + 1n, 1), new Uint8Array([7]));
  t.same(dev.dmaRead(va, 1, { pasid: sva.pasid, privileged: true }), { ok: false, fault: 'DMAR_SM_PASID_SRE_CLEAR' }, 'user requests only');
  t.notOk(dev.dmaRead(va, 1).ok, 'without the PASID the RID is blocked');
  m.host.sva.unbind(sva);
  t.same(dev.dmaRead(va, 1, { pasid: sva.pasid }), { ok: false, fault: 'DMAR_SM_PASID_ENTRY_NOT_PRESENT' }, 'after unbind the PASID is gone');
});

t.test('munmap in a bound process invalidates the PASID: the device loses the page', async (t) => {
  const m = machine();
  class PasidDev extends BarePcieFunction {
    constructor() {
      super('pasid-dev');
      new PasidCapability(this.config, this.caps, { maxPasidWidth: 8 });
    }
  }
  const { dev } = m.add(new PasidDev(), 1);
  const p = m.host.spawn();
  const va = p.mmap(2 * 4096, { populate: true });
  const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
  t.ok(dev.dmaRead(va + 4096n, 4, { pasid: h.pasid }).ok, 'cached in the IOTLB');
  t.equal(p.munmap(va + 4096n, 4096), 0);
  t.notOk(dev.dmaRead(va + 4096n, 4, { pasid: h.pasid }).ok, 'the mmu notifier flushed the PASID');
  t.ok(dev.dmaRead(va, 4, { pasid: h.pasid }).ok);
});

/** The 4-level second-stage leaf PTE of `iova` (low dword) under `root`. */
function ssLeaf(mem: { read32(a: number): number }, root: number, iova: number): number {
  let table = root;
  for (let level = 4; ; level--) {
    const at = table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
    const lo = mem.read32(at);
    if (level === 1 || (lo & 0x80) !== 0) return lo;
    table = (mem.read32(at + 4) & 0xfffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
  }
}

t.test('enforce_cache_coherency on a first-stage domain: PGSNP in the attached RID entry, flushed; later attachments carry it', async (t) => {
  const { host, driver, board, dev, group, owner } = bare();
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.equal(readField(PASID_ENTRY, driver.pasidEntryOf(dev, 0)!, 'PGSNP'), 0);
  const types: string[] = [];
  board.tracer.on('vtd.qi.desc', (r) => types.push(r.args.type));
  t.equal(d.driver.enforceCacheCoherency!(), true, 'intel_iommu_enforce_cache_coherency_fs');
  const pe = driver.pasidEntryOf(dev, 0)!;
  t.same([readField(PASID_ENTRY, pe, 'P'), readField(PASID_ENTRY, pe, 'PGTT'), readField(PASID_ENTRY, pe, 'PGSNP')], [1, PGTT_FIRST_STAGE, 1]);
  t.same(types, ['pasid-cache', 'pasid-iotlb', 'wait'], 'intel_pasid_flush_present: PASID-cache and PASID-based IOTLB (no ATS here)');
  types.length = 0;
  t.equal(d.driver.enforceCacheCoherency!(), true, 'already forcing: nothing to do');
  t.same(types, []);
  // Detached and attached again: the entry is written from the domain, PGSNP included (PASID_FLAG_PAGE_SNOOP).
  t.equal(host.iommu.detachGroup(d, group, owner), 0);
  t.equal(readField(PASID_ENTRY, driver.pasidEntryOf(dev, 0)!, 'P'), 0);
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.equal(readField(PASID_ENTRY, driver.pasidEntryOf(dev, 0)!, 'PGSNP'), 1);
});

t.test('enforce_cache_coherency on a second-stage domain: SNP in every leaf mapped afterwards', async (t) => {
  const { host, board, dev, group, owner, ram } = bare();
  const d = host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.equal(d.map(0x10_0000, ram, 0x1000, RW), 0);
  t.equal(d.driver.enforceCacheCoherency!(), true, 'intel_iommu_enforce_cache_coherency_ss');
  t.equal(d.map(0x20_0000, ram, 0x1000, RW), 0);
  const root = (d.driver as unknown as { builder: { root: number } }).builder.root;
  const SNP = 1 << 11;
  t.equal(ssLeaf(board.sysmem, root, 0x20_0000) & SNP, SNP, 'mapped after: SNP');
  t.equal(ssLeaf(board.sysmem, root, 0x10_0000) & SNP, 0, 'Linux asks before mapping; an earlier leaf is left as it was');
});

t.test('without snoop control (ECAP.SC = 0) no domain with a device attached can enforce coherency', async (t) => {
  const { host, driver, dev, group, owner } = bare({ snoopControl: false });
  t.equal(driver.enforceCacheCoherencyCapable(dev), false, 'IOMMU_CAP_ENFORCE_CACHE_COHERENCY');
  const fs = host.iommu.allocPaging(dev) as IommuDomain;
  t.equal(host.iommu.attachGroup(fs, group, owner), 0);
  t.equal(fs.driver.enforceCacheCoherency!(), false);
  t.equal(readField(PASID_ENTRY, driver.pasidEntryOf(dev, 0)!, 'PGSNP'), 0);
  host.iommu.detachGroup(fs, group, owner);
  const ss = host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  t.equal(ss.driver.enforceCacheCoherency!(), true, 'no device attached yet: domain_support_force_snooping is vacuously true');
  t.equal(host.iommu.attachGroup(ss, group, owner), -22, 'paging_domain_compatible_second_stage: FORCE_COHERENCE needs ECAP.SC (-EINVAL)');
});
