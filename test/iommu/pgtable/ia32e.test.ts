import t from 'tap';
import { Ia32eWalker, type Ia32eWalkConfig } from '../../../iommu/pgtable/ia32e-walker.ts';
import { createIa32eBuilder } from '../../../iommu/pgtable/ia32e-builder.ts';
import { VtdSsWalker } from '../../../iommu/pgtable/vtd-ss-walker.ts';
import { NestedTableTranslator } from '../../../iommu/pgtable/nested.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_READ, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UW, PERM_UX, PERM_W, PERM_X, WalkResult } from '../../../iommu/pgtable/types.ts';
import { IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { EEXIST } from '../../../src/uapi/errno.ts';
import { TestAllocator, bigRam, bit, get64, put64, GiB, MiB, KiB } from './helpers.ts';

const P = 1n;
const RW = bit(1);
const US = bit(2);
const A = bit(5);
const D = bit(6);
const PS = bit(7);
const G = bit(8);
const EA = bit(10);
const XD = bit(63);
const TBL = P | RW | US;

const PML4 = 0x10000;
const PDPT = 0x11000;
const PD = 0x12000;
const PT = 0x13000;
const LA = 0x7f12_3456_7abc; // < 2^47

function ix(la: number, level: number): number {
  return Math.floor(la / 2 ** (12 + 9 * (level - 1))) % 512;
}
const CFG: Ia32eWalkConfig = { levels: 4, root: PML4, maxPhysBits: 46, nxe: true, wp: true };

function chain(ram: ReturnType<typeof bigRam>, leaf: bigint, upper = TBL): void {
  put64(ram, PML4 + ix(LA, 4) * 8, BigInt(PDPT) | upper);
  put64(ram, PDPT + ix(LA, 3) * 8, BigInt(PD) | upper);
  put64(ram, PD + ix(LA, 2) * 8, BigInt(PT) | upper);
  put64(ram, PT + ix(LA, 1) * 8, leaf);
}

function walk(w: Ia32eWalker | VtdSsWalker, la: number, access: number): WalkResult {
  const r = new WalkResult();
  w.walk(la, access, r);
  return r;
}

t.test('4-level walk to a 4K page sets A at every level and D on a write', async (t) => {
  const ram = bigRam();
  chain(ram, 0x1_2345_6000n | P | RW | US);
  const w = new Ia32eWalker(ram, CFG);
  let r = walk(w, LA, ACCESS_READ);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 0x1_2345_6000 + (LA % 4096));
  t.equal(r.level, 1);
  t.equal(r.memReads, 4);
  t.equal(r.memWrites, 4, 'A set in PML4E, PDPTE, PDE, PTE');
  t.equal(get64(ram, PML4 + ix(LA, 4) * 8) & A, A);
  t.equal(get64(ram, PT + ix(LA, 1) * 8) & (A | D), A, 'read does not dirty');
  t.equal(r.perms & PERM_UW, 0, 'clean page: W withheld until a write walk');
  t.ok(r.nonGlobal);
  r = walk(w, LA, ACCESS_WRITE);
  t.equal(r.memWrites, 1, 'only the D update remains');
  t.equal(get64(ram, PT + ix(LA, 1) * 8) & (A | D), A | D);
  t.equal(r.perms, PERM_R | PERM_W | PERM_UR | PERM_UW | PERM_UX | PERM_X);
  r = walk(w, LA, ACCESS_WRITE);
  t.equal(r.memWrites, 0);
});

t.test('A/D stay clear when the config disables them, and a faulting access sets nothing', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | P | US);
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, ad: false }), LA, ACCESS_READ).memWrites, 0);
  t.equal(walk(new Ia32eWalker(ram, CFG), LA, ACCESS_WRITE).fault, FaultKind.Permission);
  t.equal(get64(ram, PML4 + ix(LA, 4) * 8) & A, 0n);
});

t.test('EAFE sets the extended-accessed bit with A', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | P | US | A);
  const r = walk(new Ia32eWalker(ram, { ...CFG, eafe: true }), LA, ACCESS_READ);
  t.equal(r.memWrites, 4);
  t.equal(get64(ram, PT + ix(LA, 1) * 8) & EA, EA);
});

t.test('2 MiB pages at the PDE and 1 GiB pages at the PDPTE; bit 12 is PAT there', async (t) => {
  const ram = bigRam();
  put64(ram, PML4 + ix(LA, 4) * 8, BigInt(PDPT) | TBL);
  put64(ram, PDPT + ix(LA, 3) * 8, BigInt(3 * GiB) | P | PS | US | bit(12) | G);
  const w = new Ia32eWalker(ram, CFG);
  let r = walk(w, LA, ACCESS_READ);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.level, 3);
  t.equal(r.pageSize, GiB);
  t.equal(r.outputAddr, 3 * GiB + (LA % GiB));
  t.equal(r.attrs, 4, 'PAT bit');
  t.notOk(r.nonGlobal);
  put64(ram, PDPT + ix(LA, 3) * 8, BigInt(PD) | TBL);
  put64(ram, PD + ix(LA, 2) * 8, BigInt(6 * MiB) | P | PS | US);
  r = walk(w, LA, ACCESS_READ);
  t.equal(r.level, 2);
  t.equal(r.outputAddr, 6 * MiB + (LA % (2 * MiB)));
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, page1G: false }), LA, ACCESS_READ).fault, FaultKind.None);
});

t.test('non-present entries fault at their level', async (t) => {
  const ram = bigRam();
  put64(ram, PML4 + ix(LA, 4) * 8, BigInt(PDPT) | TBL);
  put64(ram, PDPT + ix(LA, 3) * 8, BigInt(PD) | RW | US); // P clear
  const r = walk(new Ia32eWalker(ram, CFG), LA, ACCESS_READ);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 3);
});

t.test('reserved bits in a present entry fault with their level', async (t) => {
  const ram = bigRam();
  const w = new Ia32eWalker(ram, CFG);
  const cases: [string, () => void, number][] = [
    ['address bit above MAXPHYADDR', () => chain(ram, BigInt(2 ** 46) | P | US), 1],
    ['PS in a PML4E', () => chain(ram, 0x5000n | P, TBL | PS), 4],
    ['2M page with bit 13 set', () => {
      chain(ram, 0x5000n | P);
      put64(ram, PD + ix(LA, 2) * 8, BigInt(2 * MiB) | bit(13) | P | PS | US);
    }, 2],
    ['1G page with bit 29 set', () => {
      chain(ram, 0x5000n | P);
      put64(ram, PDPT + ix(LA, 3) * 8, BigInt(GiB) | bit(29) | P | PS | US);
    }, 3],
  ];
  for (const [name, arrange, level] of cases) {
    arrange();
    const r = walk(w, LA, ACCESS_READ);
    t.equal(r.fault, FaultKind.ReservedBit, name);
    t.equal(r.faultLevel, level, `${name}: level`);
  }
  chain(ram, 0x5000n | P | US | XD);
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, nxe: false }), LA, ACCESS_READ).fault, FaultKind.ReservedBit, 'XD without NXE');
  put64(ram, PDPT + ix(LA, 3) * 8, BigInt(GiB) | P | PS | US);
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, page1G: false }), LA, ACCESS_READ).fault, FaultKind.ReservedBit, 'PS in PDPTE without 1G pages');
});

t.test('user/supervisor, WP, XD, SMEP and SMAP', async (t) => {
  const ram = bigRam();
  chain(ram, 0x5000n | P | A | D); // supervisor read-only page
  const w = new Ia32eWalker(ram, CFG);
  t.equal(walk(w, LA, ACCESS_READ).fault, FaultKind.Permission, 'user read of a supervisor page');
  t.equal(walk(w, LA, ACCESS_PRIV).fault, FaultKind.None);
  t.equal(walk(w, LA, ACCESS_PRIV | ACCESS_WRITE).fault, FaultKind.Permission, 'WP=1');
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, wp: false }), LA, ACCESS_PRIV | ACCESS_WRITE).fault, FaultKind.None, 'WP=0');

  chain(ram, 0x5000n | P | US | RW | A | D, P | US); // R/W clear in the upper levels
  t.equal(walk(w, LA, ACCESS_WRITE).fault, FaultKind.Permission, 'R/W must be set at every level');

  chain(ram, 0x5000n | P | US | RW | A | D | XD);
  t.equal(walk(w, LA, ACCESS_EXEC).fault, FaultKind.Permission, 'XD with NXE');
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, nxe: false }), LA, ACCESS_EXEC).fault, FaultKind.ReservedBit);

  chain(ram, 0x5000n | P | US | RW | A | D);
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, smep: true }), LA, ACCESS_PRIV | ACCESS_EXEC).fault, FaultKind.Permission, 'SMEP');
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, smap: true }), LA, ACCESS_PRIV).fault, FaultKind.Permission, 'SMAP');
  t.equal(walk(new Ia32eWalker(ram, { ...CFG, smap: true }), LA, ACCESS_READ).fault, FaultKind.None);
});

t.test('5-level paging walks a PML5 and reaches beyond 2^48', async (t) => {
  const ram = bigRam();
  const la = 2 ** 52 + 2 ** 48 * 3 + 0x1234_5000;
  const pml5 = 0x20000;
  const tables = [pml5, 0x21000, 0x22000, 0x23000, 0x24000];
  for (let level = 5; level >= 2; level--) put64(ram, tables[5 - level]! + ix(la, level) * 8, BigInt(tables[6 - level]!) | TBL);
  put64(ram, 0x24000 + ix(la, 1) * 8, BigInt(2 ** 45) | P | US | RW);
  const w = new Ia32eWalker(ram, { ...CFG, levels: 5, root: pml5 });
  const r = walk(w, la, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.memReads, 5);
  t.equal(r.outputAddr, 2 ** 45 + (la % 4096));
  t.equal(walk(new Ia32eWalker(ram, CFG), 2 ** 47, ACCESS_READ).fault, FaultKind.InputRange, 'non-canonical for 4-level');
});

t.test('a first-stage walk nested on a VT-d second stage reports its second-stage faults', async (t) => {
  const ram = bigRam();
  // Second stage: GPA [0, 1 GiB) → HPA [4 GiB, 5 GiB) with one 1G superpage.
  const ssRoot = 0x100000;
  put64(ram, ssRoot, 0x101000n | 3n);
  put64(ram, 0x101000, BigInt(4 * GiB) | 3n | PS);
  const ss = new VtdSsWalker(ram, { levels: 4, root: ssRoot, haw: 46 });
  const hpa = (gpa: number) => 4 * GiB + gpa;
  put64(ram, hpa(PML4) + ix(LA, 4) * 8, BigInt(PDPT) | TBL);
  put64(ram, hpa(PDPT) + ix(LA, 3) * 8, BigInt(PD) | TBL);
  put64(ram, hpa(PD) + ix(LA, 2) * 8, BigInt(2 * MiB) | P | PS | US | RW);
  const w = new Ia32eWalker(ram, { ...CFG, tableAddrTranslator: new NestedTableTranslator(ss) });
  let r = walk(w, LA, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 2 * MiB + (LA % (2 * MiB)), 'a GPA; the model translates it');
  // 3 first-stage reads, each through a 2-read second-stage walk, and the 3 A/D
  // write-backs re-translated for write (another 2 reads each).
  t.equal(r.memReads, 3 + 3 * 2 + 3 * 2);
  t.equal(r.memWrites, 3);
  t.equal(get64(ram, hpa(PD) + ix(LA, 2) * 8) & (A | D), A | D, 'A/D written at the translated address');
  put64(ram, hpa(PML4) + ix(LA, 4) * 8, BigInt(GiB + PDPT) | TBL); // PDPT at a GPA without second-stage mapping
  r = walk(w, LA, ACCESS_READ);
  t.equal(r.fault, FaultKind.Stage2);
  t.equal(r.faultLevel, 3);
  t.ok(r.s2OnTableWalk);
  t.equal(r.s2FaultKind, FaultKind.Translation);
  t.equal(r.s2FaultLevel, 3);
});

t.test('IA-32e builder: 2M and 1G pages, preset A/D, prot to U/S, R/W, XD', async (t) => {
  const ram = bigRam();
  const alloc = new TestAllocator(ram, 2 ** 40, 2 ** 40 + GiB);
  const b = createIa32eBuilder(ram, alloc, { levels: 4, maxPhysBits: 46 });
  if (typeof b === 'number') throw new Error('builder');
  const w = new Ia32eWalker(ram, { ...CFG, root: b.root });
  t.same(b.pgsizes, [4 * KiB, 2 * MiB, GiB]);
  t.equal(b.map(GiB, 2 * GiB, GiB + 2 * MiB + 4 * KiB, IOMMU_READ | IOMMU_WRITE), 0);
  t.equal(b.stats.leafWrites, 3);
  let r = walk(w, GiB + 5, ACCESS_WRITE);
  t.equal(r.pageSize, GiB);
  t.equal(r.memWrites, 0, 'A and D preset: hardware writes nothing');
  t.equal(walk(w, 2 * GiB + 7, ACCESS_READ).pageSize, 2 * MiB);
  t.equal(walk(w, 2 * GiB + 2 * MiB, ACCESS_READ).pageSize, 4 * KiB);
  t.equal(b.map(0, 0, 4 * KiB, IOMMU_READ | IOMMU_PRIV | IOMMU_NOEXEC), 0);
  t.equal(walk(w, 0, ACCESS_READ).fault, FaultKind.Permission, 'supervisor page');
  r = walk(w, 0, ACCESS_PRIV | ACCESS_EXEC);
  t.equal(r.fault, FaultKind.Permission, 'XD');
  t.equal(walk(w, 0, ACCESS_PRIV | ACCESS_WRITE).fault, FaultKind.Permission, 'read-only under WP');
  t.equal(b.map(GiB + 4 * KiB, 0, 4 * KiB, IOMMU_READ), -EEXIST);
  t.equal(b.unmap(GiB + 8 * KiB, 4 * KiB), GiB - 8 * KiB, 'the 1G page goes whole; bytes count from iova to its end');
  t.equal(b.iovaToPhys(GiB), -1);
  t.equal(b.unmap(2 * GiB, 2 * MiB + 4 * KiB), 2 * MiB + 4 * KiB);
  t.equal(b.unmap(0, 4 * KiB), 4 * KiB);
  t.equal(b.stats.tablePages, 1);
  b.destroy();
  t.equal(alloc.liveCount, 0);
  t.same(alloc.errors, []);
});
