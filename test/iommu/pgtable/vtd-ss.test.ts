import t from 'tap';
import { VtdSsWalker, type VtdSsWalkConfig } from '../../../iommu/pgtable/vtd-ss-walker.ts';
import { createVtdSsBuilder } from '../../../iommu/pgtable/vtd-ss-builder.ts';
import { formatLayout } from '../../../src/hw/layout.ts';
import { VTD_SS_ENTRY } from '../../../iommu/pgtable/vtd-ss-layout.ts';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UX, PERM_X, WalkResult } from '../../../iommu/pgtable/types.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { TestAllocator, bigRam, bit, get64, put64, GiB, MiB, KiB } from './helpers.ts';

const R = 1n;
const W = 2n;
const X = 4n;
const PS = bit(7);
const A = bit(8);
const D = bit(9);
const SNP = bit(11);
const TM = bit(62);

const ROOT = 0x10000;
const T3 = 0x11000;
const T2 = 0x12000;
const T1 = 0x13000;
const IOVA = 0x12_3456_7000 + 0x9ab; // < 2^39

function ix(a: number, level: number): number {
  return Math.floor(a / 2 ** (12 + 9 * (level - 1))) % 512;
}
const CFG: VtdSsWalkConfig = { levels: 4, root: ROOT, haw: 46 };

function chain(ram: ReturnType<typeof bigRam>, leaf: bigint, upper = R | W): void {
  put64(ram, ROOT + ix(IOVA, 4) * 8, BigInt(T3) | upper);
  put64(ram, T3 + ix(IOVA, 3) * 8, BigInt(T2) | upper);
  put64(ram, T2 + ix(IOVA, 2) * 8, BigInt(T1) | upper);
  put64(ram, T1 + ix(IOVA, 1) * 8, leaf);
}

function walk(w: VtdSsWalker, a: number, access: number): WalkResult {
  const r = new WalkResult();
  w.walk(a, access, r);
  return r;
}

t.test('4-level walk: rights are the AND over the levels', async (t) => {
  const ram = bigRam();
  chain(ram, 0x7_0000_0000n | R | W);
  const w = new VtdSsWalker(ram, CFG);
  let r = walk(w, IOVA, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 0x7_0000_0000 + (IOVA % 4096));
  t.equal(r.memReads, 4);
  t.equal(r.level, 1);
  chain(ram, 0x7_0000_0000n | R | W, R);
  r = walk(w, IOVA, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.Permission, 'W clear in a table entry');
  t.equal(r.faultLevel, 1);
  r = walk(w, IOVA, ACCESS_READ);
  t.equal(r.perms, PERM_R | PERM_UR | PERM_X | PERM_UX);
});

t.test('R = W = 0 is not present, at any level', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | X);
  const r = walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_READ);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 1);
  put64(ram, T3 + ix(IOVA, 3) * 8, BigInt(T2));
  t.equal(walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_READ).faultLevel, 3);
});

t.test('reserved bits: above HAW, bit 62, SNP in a table entry, PS in the top levels', async (t) => {
  const ram = bigRam();
  const w = new VtdSsWalker(ram, CFG);
  const cases: [string, () => void, number][] = [
    ['address bit 46', () => chain(ram, BigInt(2 ** 46) | R), 1],
    ['bit 62', () => chain(ram, 0x5000n | R | TM), 1],
    ['SNP in a non-leaf entry', () => chain(ram, 0x5000n | R, R | W | SNP), 4],
    ['PS in an SS-PML4E', () => chain(ram, 0x5000n | R, R | W | PS), 4],
    ['2M superpage with bit 12 set', () => {
      chain(ram, 0x5000n | R);
      put64(ram, T2 + ix(IOVA, 2) * 8, BigInt(2 * MiB) | bit(12) | R | PS);
    }, 2],
  ];
  for (const [name, arrange, level] of cases) {
    arrange();
    const r = walk(w, IOVA, ACCESS_READ);
    t.equal(r.fault, FaultKind.ReservedBit, name);
    t.equal(r.faultLevel, level, `${name}: level`);
  }
  chain(ram, 0x5000n | R | SNP);
  t.equal(walk(w, IOVA, ACCESS_READ).attrs, 1, 'SNP in a leaf is fine with snoop control');
  t.equal(walk(new VtdSsWalker(ram, { ...CFG, snoopControl: false }), IOVA, ACCESS_READ).fault, FaultKind.ReservedBit);
});

t.test('superpages: 1 GiB and 2 MiB leaves, reserved when CAP.SLLPS lacks them', async (t) => {
  const ram = bigRam();
  put64(ram, ROOT + ix(IOVA, 4) * 8, BigInt(T3) | R | W);
  put64(ram, T3 + ix(IOVA, 3) * 8, BigInt(9 * GiB) | R | PS);
  let r = walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_READ);
  t.equal(r.pageSize, GiB);
  t.equal(r.outputAddr, 9 * GiB + (IOVA % GiB));
  r = walk(new VtdSsWalker(ram, { ...CFG, superpage1G: false }), IOVA, ACCESS_READ);
  t.equal(r.fault, FaultKind.ReservedBit);
  t.equal(r.faultLevel, 3);
  put64(ram, T3 + ix(IOVA, 3) * 8, BigInt(T2) | R | W);
  put64(ram, T2 + ix(IOVA, 2) * 8, BigInt(4 * MiB) | R | PS);
  t.equal(walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_READ).pageSize, 2 * MiB);
});

t.test('execute needs X only when execute control is enabled', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | R, R | W | X);
  t.equal(walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_EXEC).fault, FaultKind.None, 'X ignored: read suffices');
  t.equal(walk(new VtdSsWalker(ram, { ...CFG, executeEnable: true }), IOVA, ACCESS_EXEC).fault, FaultKind.Permission);
  chain(ram, 0x5000n | R | X, R | W | X);
  t.equal(walk(new VtdSsWalker(ram, { ...CFG, executeEnable: true }), IOVA, ACCESS_EXEC).fault, FaultKind.None);
});

t.test('second-stage A/D: A on every entry used, D on the leaf for writes', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | R | W);
  const w = new VtdSsWalker(ram, { ...CFG, ad: true });
  let r = walk(w, IOVA, ACCESS_READ);
  t.equal(r.memWrites, 4);
  t.equal(get64(ram, ROOT + ix(IOVA, 4) * 8) & A, A);
  t.equal(get64(ram, T1 + ix(IOVA, 1) * 8) & (A | D), A);
  t.equal(r.perms & PERM_R, PERM_R);
  t.equal(r.perms & 2, 0, 'W withheld while clean');
  r = walk(w, IOVA, ACCESS_WRITE);
  t.equal(r.memWrites, 1);
  t.equal(get64(ram, T1 + ix(IOVA, 1) * 8) & (A | D), A | D);
  t.match(formatLayout(VTD_SS_ENTRY, [r.descLo, r.descHi]), /\bA=1\b.*\bD=1\b/);
  chain(ram, 0x5000n | R);
  t.equal(walk(new VtdSsWalker(ram, CFG), IOVA, ACCESS_READ).memWrites, 0, 'no A/D without SSADE');
});

t.test('3-level (39-bit) and 5-level tables; input above the width faults', async (t) => {
  const ram = bigRam();
  const w3 = new VtdSsWalker(ram, { levels: 3, root: 0x40000, haw: 46 });
  put64(ram, 0x40000 + ix(IOVA, 3) * 8, 0x41000n | R | W);
  put64(ram, 0x41000 + ix(IOVA, 2) * 8, BigInt(2 * MiB) | R | W | PS);
  let r = walk(w3, IOVA, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.memReads, 2);
  t.equal(walk(w3, 2 ** 39, ACCESS_READ).fault, FaultKind.InputRange);
  t.equal(walk(new VtdSsWalker(ram, { ...CFG, inputBits: 36 }), 2 ** 36, ACCESS_READ).fault, FaultKind.InputRange, 'MGAW');

  const a = 2 ** 50 + 0x3000;
  const tables = [0x50000, 0x51000, 0x52000, 0x53000, 0x54000];
  for (let level = 5; level >= 2; level--) put64(ram, tables[5 - level]! + ix(a, level) * 8, BigInt(tables[6 - level]!) | R | W);
  put64(ram, 0x54000 + ix(a, 1) * 8, 0xabc000n | R);
  r = walk(new VtdSsWalker(ram, { levels: 5, root: 0x50000, haw: 48 }), a, ACCESS_READ);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.memReads, 5);
  t.equal(r.outputAddr, 0xabc000);
});

t.test('VT-d second-stage builder: superpages, SNP, AW encoding, freeing', async (t) => {
  const ram = bigRam();
  const alloc = new TestAllocator(ram, 2 ** 40, 2 ** 40 + GiB);
  const b = createVtdSsBuilder(ram, alloc, { levels: 3, haw: 46, forceSnoop: true });
  if (typeof b === 'number') throw new Error('builder');
  t.equal(b.aw, 1);
  const w = new VtdSsWalker(ram, { levels: 3, root: b.root, haw: 46 });
  t.equal(b.map(0, 4 * GiB, GiB + 2 * MiB, IOMMU_READ | IOMMU_WRITE), 0);
  t.equal(b.stats.leafWrites, 2);
  let r = walk(w, 5, ACCESS_WRITE);
  t.equal(r.pageSize, GiB);
  t.equal(r.attrs, 1, 'SNP');
  t.equal(walk(w, GiB + 5, ACCESS_READ).pageSize, 2 * MiB);
  t.equal(b.map(2 * GiB, 0, 4 * KiB, IOMMU_READ), 0);
  r = walk(w, 2 * GiB, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.Permission);
  t.equal(b.map(2 * GiB, 0, 4 * KiB, IOMMU_WRITE), -17);
  t.equal(b.unmap(0, 4 * KiB), GiB);
  t.equal(b.unmap(GiB, 2 * MiB), 2 * MiB);
  t.equal(b.unmap(2 * GiB, 4 * KiB), 4 * KiB);
  t.equal(b.stats.tablePages, 1);
  t.equal(alloc.liveCount, 1);
  b.destroy();
  t.equal(alloc.liveCount, 0);
  t.same(alloc.errors, []);
  const no1g = createVtdSsBuilder(ram, alloc, { levels: 4, haw: 46, superpage1G: false });
  if (typeof no1g === 'number') throw new Error('builder');
  t.same(no1g.pgsizes, [4 * KiB, 2 * MiB]);
});
