import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { TLB_S1, TLB_S2 } from '../../../iommu/smmuv3/iotlb.ts';
import { DATA, Harness } from './harness.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const IOVA = 0x1000_0000;
const IPA = 0x8000_0000;
const OLD = DATA;
const NEW = DATA + 0x10_0000;

/** Stage 1 (ASID 1, STE VMID 5) mapping `pages` pages at IOVA → OLD; OLD holds 1s, NEW holds 2s. */
function setup(pages = 1, o: { iotlbSize?: number; nonGlobal?: boolean } = {}) {
  const h = new Harness(o.iotlbSize === undefined ? {} : { iotlbSize: o.iotlbSize });
  h.enable();
  const b = h.table({ stage: 1, nonGlobal: o.nonGlobal ?? true });
  b.map(IOVA, OLD, pages * 4096, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64, S2VMID: 5 });
  for (let i = 0; i < pages; i++) {
    h.board.sysmem.write32(OLD + i * 4096, 1);
    h.board.sysmem.write32(NEW + i * 4096, 2);
  }
  /** Point every page at NEW in the tables (as a driver would), without invalidating. */
  const remap = () => {
    b.unmap(IOVA, pages * 4096);
    b.map(IOVA, NEW, pages * 4096, RW);
  };
  return { h, b, cd, remap };
}

t.test('after the first walk a translation comes from the IOTLB', async (t) => {
  const { h } = setup();
  t.equal(h.read32(IOVA), 1);
  const walks = h.counter('walks');
  t.equal(h.counter('iotlb.miss'), 1);
  for (let i = 0; i < 10; i++) h.read32(IOVA + 4 * i);
  t.equal(h.counter('walks'), walks, 'no further walks');
  t.equal(h.counter('iotlb.hit'), 10);
});

t.test('a stale translation is used until the matching TLBI', async (t) => {
  const cases: [string, Record<string, number>, boolean][] = [
    ['TLBI_NH_VA', { VMID: 5, ASID: 1, Address: IOVA / 4096 }, true],
    ['TLBI_NH_VA', { VMID: 5, ASID: 2, Address: IOVA / 4096 }, false],
    ['TLBI_NH_VA', { VMID: 6, ASID: 1, Address: IOVA / 4096 }, false],
    ['TLBI_NH_VA', { VMID: 5, ASID: 1, Address: IOVA / 4096 + 1 }, false],
    ['TLBI_NH_VAA', { VMID: 5, Address: IOVA / 4096 }, true],
    ['TLBI_NH_ASID', { VMID: 5, ASID: 1 }, true],
    ['TLBI_NH_ASID', { VMID: 5, ASID: 3 }, false],
    ['TLBI_NH_ALL', { VMID: 5 }, true],
    ['TLBI_NH_ALL', { VMID: 4 }, false],
    ['TLBI_S12_VMALL', { VMID: 5 }, true],
    ['TLBI_NSNH_ALL', {}, true],
    ['TLBI_S2_IPA', { VMID: 5, Address: IOVA / 4096 }, false],
  ];
  for (const [op, fields, hits] of cases) {
    const { h, remap } = setup();
    t.equal(h.read32(IOVA), 1);
    remap();
    t.equal(h.read32(IOVA), 1, `${op} ${JSON.stringify(fields)}: stale before`);
    h.cmd(op as 'TLBI_NH_VA', fields);
    t.equal(h.read32(IOVA), hits ? 2 : 1, `${op} ${JSON.stringify(fields)}: ${hits ? 'invalidates' : 'does not match'}`);
  }
});

t.test('stage 2 entries: TLBI_S2_IPA by VMID and IPA, TLBI_S12_VMALL by VMID; TLBI_NH_* leave them', async (t) => {
  for (const [op, fields, hits] of [
    ['TLBI_S2_IPA', { VMID: 7, Address: IPA / 4096 }, true],
    ['TLBI_S2_IPA', { VMID: 8, Address: IPA / 4096 }, false],
    ['TLBI_S12_VMALL', { VMID: 7 }, true],
    ['TLBI_NH_ALL', { VMID: 7 }, false],
  ] as const) {
    const h = new Harness();
    h.enable();
    const s2 = h.table({ stage: 2, iaBits: 40 });
    s2.map(IPA, OLD, 4096, RW);
    h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 7) });
    h.board.sysmem.write32(OLD, 1);
    h.board.sysmem.write32(NEW, 2);
    t.equal(h.read32(IPA), 1);
    s2.unmap(IPA, 4096);
    s2.map(IPA, NEW, 4096, RW);
    h.cmd(op, fields);
    t.equal(h.read32(IPA), hits ? 2 : 1, `${op} ${JSON.stringify(fields)}`);
    t.ok(h.smmu.iotlb.entries().every((e) => e.kind === TLB_S2));
  }
});

t.test('range invalidation removes [Address, Address + (NUM+1) * 2^SCALE * granule) and nothing else', async (t) => {
  const { h } = setup(8);
  for (let i = 0; i < 8; i++) h.read32(IOVA + i * 4096);
  t.equal(h.smmu.iotlb.size, 8);
  h.cmd('TLBI_NH_VA', { VMID: 5, ASID: 1, Address: IOVA / 4096 + 2, TG: 1, NUM: 2, SCALE: 0, TTL: 0 });
  const left = h.smmu.iotlb.entries().map((e) => (e.ia - IOVA) / 4096).sort();
  t.same(left, [0, 1, 5, 6, 7], 'pages 2..4 removed');
  h.cmd('TLBI_NH_VA', { VMID: 5, ASID: 1, Address: IOVA / 4096, TG: 1, NUM: 1, SCALE: 1, TTL: 2 });
  t.equal(h.smmu.iotlb.size, 5, 'TTL == 2 (level 2 leaves) does not reach level 3 pages');
  h.cmd('TLBI_NH_VA', { VMID: 5, ASID: 1, Address: IOVA / 4096, TG: 3, NUM: 0, SCALE: 0, TTL: 3 });
  t.equal(h.smmu.iotlb.size, 5, 'TG == 64K does not reach 4K-granule entries');
  h.cmd('TLBI_NH_VAA', { VMID: 5, Address: IOVA / 4096, TG: 1, NUM: 1, SCALE: 1, TTL: 3, Leaf: 1 });
  t.same(h.smmu.iotlb.entries().map((e) => (e.ia - IOVA) / 4096).sort(), [5, 6, 7], '(1+1) * 2^1 = 4 pages from page 0, leaf-only');
  t.notOk(h.smmu.gerrorActive('CMDQ_ERR'));
});

t.test('a block mapping is one IOTLB entry; a TLBI by any address inside it removes it', async (t) => {
  const h = new Harness();
  h.enable();
  const b = h.table({ stage: 1 });
  b.map(0x4000_0000, DATA, 0x20_0000, RW); // 2 MiB block
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64 });
  h.read32(0x4000_0000);
  h.read32(0x4010_0000);
  t.equal(h.smmu.iotlb.size, 1);
  t.equal(h.smmu.iotlb.entries()[0]?.size, 0x20_0000);
  h.cmd('TLBI_NH_VA', { ASID: 1, Address: 0x4018_0000 / 4096 });
  t.equal(h.smmu.iotlb.size, 0);
});

t.test('global entries (nG == 0) match every ASID: TLBI_NH_ASID keeps them, TLBI_NH_VA removes them', async (t) => {
  const { h } = setup(1, { nonGlobal: false });
  h.read32(IOVA);
  t.equal(h.smmu.iotlb.entries()[0]?.kind, TLB_S1);
  h.cmd('TLBI_NH_ASID', { VMID: 5, ASID: 1 });
  t.equal(h.smmu.iotlb.size, 1, 'non-global entries only');
  h.cmd('TLBI_NH_VA', { VMID: 5, ASID: 9, Address: IOVA / 4096 });
  t.equal(h.smmu.iotlb.size, 0, 'by VA, global entries regardless of ASID');
});

t.test('the IOTLB replaces the least recently used entry and counts evictions', async (t) => {
  const { h } = setup(4, { iotlbSize: 3 });
  for (let i = 0; i < 3; i++) h.read32(IOVA + i * 4096);
  h.read32(IOVA); // page 0 is now the most recent
  h.read32(IOVA + 3 * 4096); // evicts page 1
  t.equal(h.counter('iotlb.evict'), 1);
  t.same(h.smmu.iotlb.entries().map((e) => (e.ia - IOVA) / 4096), [3, 0, 2]);
});

t.test('configuration caches: a changed STE or CD is not seen until CMD_CFGI_*', async (t) => {
  const { h, b, cd } = setup();
  t.equal(h.read32(IOVA), 1);
  h.writeSte(h.sid, { Config: 0 });
  t.equal(h.read32(IOVA), 1, 'the cached STE still translates');
  h.cmd('CFGI_STE_RANGE', { StreamID: 0, Range: 2 }); // StreamIDs 0..7
  t.equal(h.read32(IOVA), 1, 'a range that does not cover StreamID 8');
  h.cmd('CFGI_STE_RANGE', { StreamID: 12, Range: 3 }); // 8..15
  t.equal(h.read32(IOVA), 'STE_ABORT');
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64, S2VMID: 5 });
  h.cmd('CFGI_ALL');
  t.equal(h.read32(IOVA), 1);
  h.writeCd(cd, h.cdFor(b, 1, { V: 0 }));
  t.equal(h.read32(IOVA), 1, 'the cached CD still translates');
  h.cmd('CFGI_CD', { StreamID: h.sid, SubstreamID: 1 });
  t.equal(h.read32(IOVA), 1, 'another SubstreamID');
  h.cmd('CFGI_CD', { StreamID: h.sid, SubstreamID: 0 });
  t.equal(h.read32(IOVA), 'C_BAD_CD');
  h.writeCd(cd, h.cdFor(b, 1));
  h.cmd('CFGI_CD_ALL', { StreamID: h.sid });
  t.equal(h.read32(IOVA), 1);
});
