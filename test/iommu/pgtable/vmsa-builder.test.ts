import t from 'tap';
import { createVmsaBuilder, VmsaBuilder, type VmsaBuilderConfig } from '../../../iommu/pgtable/vmsa-builder.ts';
import { VmsaWalker } from '../../../iommu/pgtable/vmsa-walker.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_READ, ACCESS_WRITE, FaultKind, WalkResult } from '../../../iommu/pgtable/types.ts';
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE, IotlbGather } from '../../../src/iommu-core/io-pgtable.ts';
import { EEXIST, EINVAL, ENOMEM, ERANGE } from '../../../src/uapi/errno.ts';
import { GuestRam, TestAllocator, bigRam, GiB, MiB, KiB, TiB } from './helpers.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const TABLES = 2 ** 40;

function setup(cfg: VmsaBuilderConfig, ram: GuestRam = bigRam()) {
  const alloc = new TestAllocator(ram, TABLES, TABLES + GiB);
  const b = createVmsaBuilder(ram, alloc, cfg);
  if (typeof b === 'number') throw new Error(`builder: ${b}`);
  const walker = new VmsaWalker(ram, {
    stage: cfg.stage, granule: cfg.granule, tsz: b.tsz, sl0: b.sl0, sl2: b.sl2, ttb: b.root, oaBits: cfg.oaBits, ds: cfg.ds,
  });
  t.equal(walker.configError, null, `${b.format} walker config`);
  return { ram, alloc, b, walker };
}

function walk(w: VmsaWalker, va: number, access = ACCESS_PRIV): WalkResult {
  const r = new WalkResult();
  w.walk(va, access, r);
  return r;
}

const S1: VmsaBuilderConfig = { stage: 1, granule: 4096, iaBits: 48, oaBits: 48 };

t.test('a 2 MiB-aligned 2 MiB region becomes one level-2 block', async (t) => {
  const { b, walker } = setup(S1);
  t.equal(b.map(0x4000_0000 + 2 * MiB, 0x8_0000_0000, 2 * MiB, RW), 0);
  t.equal(b.stats.leafWrites, 1);
  t.equal(b.stats.tablePages, 3, 'root + level 1 + level 2');
  const r = walk(walker, 0x4000_0000 + 2 * MiB + 0x1234);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.level, 2);
  t.equal(r.pageSize, 2 * MiB);
  t.equal(r.outputAddr, 0x8_0000_0000 + 0x1234);
});

t.test('1 GiB aligned maps a level-1 block; misalignment between iova and pa forces pages', async (t) => {
  const { b, walker } = setup(S1);
  t.equal(b.map(3 * GiB, 7 * GiB, GiB, RW), 0);
  t.equal(b.stats.leafWrites, 1);
  t.equal(walk(walker, 3 * GiB + 5).level, 1);
  t.equal(b.map(8 * GiB, 9 * GiB + 4 * KiB, 2 * MiB, RW), 0, 'pa is only 4K aligned');
  t.equal(b.stats.leafWrites, 1 + 512);
});

t.test('an unaligned start fills pages up to the block boundary, then blocks, then pages', async (t) => {
  const { b, walker } = setup(S1);
  const iova = 2 * MiB - 4 * KiB;
  t.equal(b.map(iova, 0x10_0000_0000 + iova, 4 * MiB + 8 * KiB, RW), 0);
  t.equal(b.stats.leafWrites, 1 + 2 + 1, 'one page, two 2M blocks, one page');
  t.equal(walk(walker, iova).pageSize, 4 * KiB);
  t.equal(walk(walker, 2 * MiB).pageSize, 2 * MiB);
  t.equal(walk(walker, 6 * MiB).pageSize, 4 * KiB);
  t.equal(b.iovaToPhys(4 * MiB + 77), 0x10_0000_0000 + 4 * MiB + 77);
});

t.test('unmap of part of a block removes the whole block and returns its size', async (t) => {
  const { b, walker } = setup(S1);
  b.map(0, GiB, 2 * MiB, RW);
  t.equal(b.unmap(0, 4 * KiB), 2 * MiB);
  t.equal(walk(walker, 0x1000).fault, FaultKind.Translation);
  t.equal(b.stats.leaves, 0);
});

t.test('unmapping nothing returns 0; a hole ends the unmap', async (t) => {
  const { b } = setup(S1);
  t.equal(b.unmap(0, 8 * KiB), 0);
  b.map(0, GiB, 8 * KiB, RW);
  b.map(16 * KiB, GiB, 4 * KiB, RW);
  t.equal(b.unmap(0, 20 * KiB), 8 * KiB, 'stops at the hole at 8K');
  t.equal(b.iovaToPhys(16 * KiB), GiB, 'beyond the hole untouched');
  t.equal(b.unmap(4 * KiB, 2), 0, 'misaligned size');
});

t.test('mapping over an existing mapping fails with EEXIST and changes nothing', async (t) => {
  const { b, alloc } = setup(S1);
  t.equal(b.map(2 * MiB, GiB, 2 * MiB, RW), 0);
  const before = { ...b.stats, live: alloc.liveCount };
  t.equal(b.map(0, 2 * GiB, 4 * MiB, RW), -EEXIST, 'second half overlaps the block');
  t.equal(b.map(2 * MiB + 4 * KiB, 2 * GiB, 4 * KiB, RW), -EEXIST, 'page under a block');
  t.same({ ...b.stats, leafWrites: before.leafWrites, leafClears: before.leafClears, live: alloc.liveCount }, before);
  t.equal(b.iovaToPhys(0), -1, 'the partial first half was rolled back');
  t.equal(b.iovaToPhys(2 * MiB + 5), GiB + 5);
  b.map(4 * MiB, 3 * GiB, 4 * KiB, RW);
  t.equal(b.map(4 * MiB - 2 * MiB, 5 * GiB, 4 * MiB, RW), -EEXIST, 'block over a table');
});

t.test('allocation failure at every step leaves the tables as they were', async (t) => {
  for (let n = 1; n <= 4; n++) {
    const { b, alloc } = setup(S1);
    b.map(0, GiB, 4 * KiB, RW);
    const pages = b.stats.tablePages;
    alloc.failOnCall = alloc.allocCalls + n;
    const rc = b.map(512 * GiB + 4 * KiB, 2 * GiB, 8 * KiB, RW);
    if (n <= 3) {
      t.equal(rc, -ENOMEM, `fail allocation ${n}`);
      t.equal(b.stats.tablePages, pages);
      t.equal(alloc.liveCount, pages);
      t.equal(b.iovaToPhys(512 * GiB + 4 * KiB), -1);
    } else {
      t.equal(rc, 0, 'only 3 allocations were needed');
    }
    t.same(alloc.errors, []);
  }
});

t.test('empty tables are freed on unmap; destroy frees the rest', async (t) => {
  const { b, alloc } = setup(S1);
  b.map(0x1234_5000, GiB, 12 * KiB, RW);
  b.map(5 * GiB, GiB, GiB, RW);
  t.equal(alloc.liveCount, 4);
  t.equal(b.unmap(0x1234_5000, 12 * KiB), 12 * KiB);
  t.equal(b.stats.tablePages, 2, 'root + the level-1 table holding the 1G block');
  t.equal(b.unmap(5 * GiB, GiB), GiB);
  t.equal(b.stats.tablePages, 1);
  t.equal(alloc.liveCount, 1);
  b.map(0, 0, 4 * KiB, RW);
  b.destroy();
  t.equal(alloc.liveCount, 0);
  t.same(alloc.errors, []);
  t.equal(b.map(0, 0, 4 * KiB, RW), -EINVAL, 'destroyed');
});

t.test('a gather parks emptied tables until the driver has invalidated', async (t) => {
  const { b, alloc } = setup(S1);
  b.map(0, GiB, 8 * KiB, RW);
  const g = new IotlbGather();
  t.equal(b.unmap(0, 8 * KiB, g), 8 * KiB);
  t.equal(g.start, 0);
  t.equal(g.end, 8 * KiB);
  t.equal(g.pgsize, 4 * KiB);
  t.ok(g.tablesRemoved);
  t.equal(g.freed.length, 6, 'three table pages parked');
  t.equal(alloc.liveCount, 4, 'not freed yet');
  b.releaseGathered(g);
  t.equal(alloc.liveCount, 1);
});

t.test('bad arguments: EINVAL for misalignment or no access, ERANGE beyond the address sizes', async (t) => {
  const { b } = setup({ ...S1, iaBits: 39, oaBits: 40 });
  t.equal(b.map(0x800, 0, 4 * KiB, RW), -EINVAL);
  t.equal(b.map(0, 0, 4 * KiB, IOMMU_CACHE), -EINVAL);
  t.equal(b.map(2 ** 39 - 4 * KiB, 0, 8 * KiB, RW), -ERANGE);
  t.equal(b.map(0, 2 ** 40, 4 * KiB, RW), -ERANGE);
  t.equal(createVmsaBuilder(bigRam(), new TestAllocator(bigRam(), 0, GiB), { ...S1, iaBits: 60 }), -EINVAL);
});

t.test('prot bits become stage-1 permissions the walker enforces', async (t) => {
  const { b, walker } = setup(S1);
  b.map(0, GiB, 4 * KiB, IOMMU_READ);
  b.map(4 * KiB, GiB, 4 * KiB, RW | IOMMU_NOEXEC);
  b.map(8 * KiB, GiB, 4 * KiB, RW | IOMMU_PRIV);
  t.equal(walk(walker, 0, ACCESS_WRITE | ACCESS_PRIV).fault, FaultKind.Permission);
  t.equal(walk(walker, 0, ACCESS_READ).fault, FaultKind.None, 'unprivileged read allowed');
  t.equal(walk(walker, 4 * KiB, ACCESS_EXEC).fault, FaultKind.Permission);
  t.equal(walk(walker, 4 * KiB, ACCESS_WRITE).fault, FaultKind.None);
  t.equal(walk(walker, 8 * KiB, ACCESS_READ).fault, FaultKind.Permission, 'privileged only');
  t.equal(walk(walker, 8 * KiB, ACCESS_WRITE | ACCESS_PRIV).fault, FaultKind.None);
});

t.test('stage 2 concatenates the start level: 40-bit IPA starts at level 1 with two tables', async (t) => {
  const { b, walker } = setup({ stage: 2, granule: 4096, iaBits: 40, oaBits: 48 });
  t.equal(b.startLevel, 1);
  t.equal(b.sl0, 1);
  t.equal(b.rootBytes, 8 * KiB);
  t.equal(b.map(2 ** 39 + GiB, 3 * GiB, GiB, IOMMU_READ), 0);
  const r = walk(walker, 2 ** 39 + GiB + 99, ACCESS_READ);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 3 * GiB + 99);
  t.equal(r.memReads, 1, 'one lookup: the level-1 block in the second concatenated table');
  t.equal(walk(walker, 2 ** 39 + GiB, ACCESS_WRITE).fault, FaultKind.Permission);
});

t.test('stage 2 without concatenation keeps level 0', async (t) => {
  const { b, walker } = setup({ stage: 2, granule: 4096, iaBits: 40, oaBits: 48, concatenate: false });
  t.equal(b.startLevel, 0);
  b.map(4 * KiB, 0, 4 * KiB, RW);
  t.equal(walk(walker, 4 * KiB, ACCESS_WRITE).memReads, 4);
});

t.test('64K granule with 52-bit addresses maps above 2^48 on both sides', async (t) => {
  const { b, walker } = setup({ stage: 1, granule: 65536, iaBits: 52, oaBits: 52 });
  t.equal(b.startLevel, 1);
  t.same(b.pgsizes, [64 * KiB, 512 * MiB, 4 * TiB]);
  const iova = 2 ** 51 + 3 * 64 * KiB;
  const pa = 2 ** 50 + 2 ** 49 + 7 * 64 * KiB;
  t.equal(b.map(iova, pa, 128 * KiB, RW), 0);
  const r = walk(walker, iova + 64 * KiB + 3);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, pa + 64 * KiB + 3);
  t.equal(b.map(4 * TiB, 8 * TiB, 4 * TiB, RW), 0);
  t.equal(walk(walker, 4 * TiB + 5).level, 1, '4 TiB level-1 block');
});

t.test('16K granule and LPA2 4K: blocks and 52-bit output', async (t) => {
  const s16 = setup({ stage: 1, granule: 16384, iaBits: 47, oaBits: 48 });
  t.same(s16.b.pgsizes, [16 * KiB, 32 * MiB]);
  s16.b.map(32 * MiB, 64 * MiB, 32 * MiB, RW);
  t.equal(walk(s16.walker, 32 * MiB + 1).pageSize, 32 * MiB);

  const lpa2 = setup({ stage: 1, granule: 4096, iaBits: 52, oaBits: 52, ds: true });
  t.equal(lpa2.b.startLevel, -1);
  const pa = 3 * 2 ** 50 + 2 * MiB;
  lpa2.b.map(2 ** 51, pa, 4 * MiB, RW);
  const r = walk(lpa2.walker, 2 ** 51 + 2 * MiB + 1);
  t.equal(r.outputAddr, pa + 2 * MiB + 1);
  t.equal(r.pageSize, 2 * MiB);
  t.equal(r.memReads, 4, 'levels -1, 0, 1, 2');
});

t.test('a restricted page-size bitmap is honoured', async (t) => {
  const { b } = setup({ ...S1, pgsizeBitmap: 4 * KiB | 2 * MiB });
  t.same(b.pgsizes, [4 * KiB, 2 * MiB]);
  b.map(0, 0, GiB, RW);
  t.equal(b.stats.leafWrites, 512);
  t.ok(b instanceof VmsaBuilder);
});
