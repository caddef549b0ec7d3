import t from 'tap';
import { VmsaWalker, type VmsaWalkConfig } from '../../../iommu/pgtable/vmsa-walker.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_READ, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UW, PERM_UX, PERM_W, PERM_X, WalkResult } from '../../../iommu/pgtable/types.ts';
import { GuestRam, bigRam, get64, put64, GiB, MiB, TiB } from './helpers.ts';
import { AF, AP1, AP2, APTABLE0, APTABLE1, BLOCK, DBM, NG, PAGE, PXN, TABLE, UXN, idx, walkOnce } from './vmsa-fixtures.ts';

const L0 = 0x10000;
const L1 = 0x11000;
const L2 = 0x12000;
const L3 = 0x13000;
const VA = 0x1234_5678_9abc; // < 2^48
const S1_4K: VmsaWalkConfig = { stage: 1, granule: 4096, tsz: 16, ttb: L0, oaBits: 48 };

/** A 4-level stage-1 chain for VA ending in `leaf` at L3 (leaf carries its own OA). */
function chain4k(ram: GuestRam, leaf: bigint, tableAttrs = 0n): void {
  put64(ram, L0 + idx(VA, 0) * 8, BigInt(L1) | TABLE | tableAttrs);
  put64(ram, L1 + idx(VA, 1) * 8, BigInt(L2) | TABLE);
  put64(ram, L2 + idx(VA, 2) * 8, BigInt(L3) | TABLE);
  put64(ram, L3 + idx(VA, 3) * 8, leaf);
}

const walk = walkOnce;

t.test('a 4-level 4K stage-1 walk reaches the page and counts four descriptor reads', async (t) => {
  const ram = bigRam();
  chain4k(ram, 0x8000_0000n | PAGE | AF | AP1);
  const w = new VmsaWalker(ram, S1_4K);
  const r = new WalkResult();
  t.ok(w.walk(VA, ACCESS_READ, r));
  t.equal(r.outputAddr, 0x8000_0000 + (VA % 4096));
  t.equal(r.pageSize, 4096);
  t.equal(r.level, 3);
  t.equal(r.memReads, 4);
  t.equal(r.memWrites, 0);
  t.equal(r.perms, PERM_R | PERM_W | PERM_UR | PERM_UW | PERM_UX, 'EL0-writable page is PXN');
  t.equal(r.fault, FaultKind.None);
});

t.test('blocks at level 1 (1 GiB) and level 2 (2 MiB) with the 4K granule', async (t) => {
  const ram = bigRam();
  put64(ram, L0 + idx(VA, 0) * 8, BigInt(L1) | TABLE);
  put64(ram, L1 + idx(VA, 1) * 8, BigInt(5 * GiB) | BLOCK | AF);
  const w = new VmsaWalker(ram, S1_4K);
  let r = walk(w, VA, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.pageSize, GiB);
  t.equal(r.level, 1);
  t.equal(r.outputAddr, 5 * GiB + (VA % GiB));
  t.equal(r.memReads, 2);

  put64(ram, L1 + idx(VA, 1) * 8, BigInt(L2) | TABLE);
  put64(ram, L2 + idx(VA, 2) * 8, BigInt(6 * GiB + 2 * MiB) | BLOCK | AF | NG | (3n << 2n));
  r = walk(w, VA, ACCESS_PRIV);
  t.equal(r.pageSize, 2 * MiB);
  t.equal(r.level, 2);
  t.equal(r.outputAddr, 6 * GiB + 2 * MiB + (VA % (2 * MiB)));
  t.equal(r.attrs, 3, 'AttrIndx');
  t.ok(r.nonGlobal, 'nG');
});

t.test('a block where the granule allows none is a translation fault at that level', async (t) => {
  const ram = bigRam();
  put64(ram, L0 + idx(VA, 0) * 8, BigInt(0) | BLOCK | AF);
  let r = walk(new VmsaWalker(ram, S1_4K), VA, 0);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 0, '4K level-0 block needs DS');
  chain4k(ram, 0x8000_0000n | BLOCK | AF);
  r = walk(new VmsaWalker(ram, S1_4K), VA, 0);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 3, 'level-3 descriptor with bit 1 clear is reserved');
});

t.test('an invalid descriptor is a translation fault at its level', async (t) => {
  const ram = bigRam();
  put64(ram, L0 + idx(VA, 0) * 8, BigInt(L1) | TABLE);
  put64(ram, L1 + idx(VA, 1) * 8, BigInt(L2) | 2n); // type bit without valid
  const r = walk(new VmsaWalker(ram, S1_4K), VA, 0);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 1);
  t.equal(r.memReads, 2);
});

t.test('input outside T0SZ is a level-0 translation fault with no reads', async (t) => {
  const r = walk(new VmsaWalker(bigRam(), { ...S1_4K, tsz: 25 }), 2 ** 39, 0);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 0);
  t.equal(r.memReads, 0);
});

t.test('access flag clear faults, or is set in memory when HA is on', async (t) => {
  const ram = bigRam();
  chain4k(ram, 0x8000_0000n | PAGE);
  let r = walk(new VmsaWalker(ram, S1_4K), VA, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.AccessFlag);
  t.equal(r.faultLevel, 3);
  t.equal(get64(ram, L3 + idx(VA, 3) * 8) & AF, 0n, 'memory unchanged');

  r = walk(new VmsaWalker(ram, { ...S1_4K, ha: true }), VA, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.memWrites, 1);
  t.equal(get64(ram, L3 + idx(VA, 3) * 8) & AF, AF, 'AF written back');
  t.equal(BigInt(r.descLo) & AF, AF);
});

t.test('HA does not set AF when the access then faults on permissions', async (t) => {
  const ram = bigRam();
  chain4k(ram, 0x8000_0000n | PAGE | AP2);
  const r = walk(new VmsaWalker(ram, { ...S1_4K, ha: true }), VA, ACCESS_WRITE | ACCESS_PRIV);
  t.equal(r.fault, FaultKind.Permission);
  t.equal(get64(ram, L3 + idx(VA, 3) * 8) & AF, 0n);
});

t.test('stage-1 permissions: AP[2:1], UXN/PXN, EL0-writable implies PXN', async (t) => {
  const ram = bigRam();
  const w = new VmsaWalker(ram, S1_4K);
  const leaf = L3 + idx(VA, 3) * 8;
  chain4k(ram, 0x8000_0000n | PAGE | AF | AP2); // EL1 read-only, no EL0
  t.equal(walk(w, VA, ACCESS_WRITE | ACCESS_PRIV).fault, FaultKind.Permission);
  t.equal(walk(w, VA, ACCESS_PRIV).fault, FaultKind.None);
  let r = walk(w, VA, ACCESS_READ);
  t.equal(r.fault, FaultKind.Permission, 'EL0 has no access without AP[1]');
  t.equal(r.faultLevel, 3);

  put64(ram, leaf, 0x8000_0000n | PAGE | AF | AP1 | AP2 | UXN); // RO both, EL0 no exec
  t.equal(walk(w, VA, ACCESS_READ).fault, FaultKind.None);
  t.equal(walk(w, VA, ACCESS_EXEC).fault, FaultKind.Permission);
  r = walk(w, VA, ACCESS_EXEC | ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.perms, PERM_R | PERM_X | PERM_UR);

  put64(ram, leaf, 0x8000_0000n | PAGE | AF | PXN);
  t.equal(walk(w, VA, ACCESS_EXEC | ACCESS_PRIV).fault, FaultKind.Permission);

  put64(ram, leaf, 0x8000_0000n | PAGE | AF | AP1); // EL0 RW → PXN implied
  t.equal(walk(w, VA, ACCESS_EXEC | ACCESS_PRIV).fault, FaultKind.Permission);
  t.equal(walk(w, VA, ACCESS_EXEC).fault, FaultKind.None);

  const wxn = new VmsaWalker(ram, { ...S1_4K, wxn: true });
  t.equal(walk(wxn, VA, ACCESS_EXEC).fault, FaultKind.Permission, 'WXN: writable is XN');
});

t.test('table attributes restrict the subtree unless HPD', async (t) => {
  const ram = bigRam();
  chain4k(ram, 0x8000_0000n | PAGE | AF | AP1, APTABLE1 | APTABLE0);
  let r = walk(new VmsaWalker(ram, S1_4K), VA, ACCESS_PRIV);
  // EL0 execute follows UXN alone in AArch64 (execute-only memory), so UX survives APTable[0].
  t.equal(r.perms, PERM_R | PERM_X | PERM_UX, 'APTable[1] read-only, APTable[0] no EL0 data access');
  t.equal(walk(new VmsaWalker(ram, S1_4K), VA, ACCESS_WRITE | ACCESS_PRIV).fault, FaultKind.Permission);
  r = walk(new VmsaWalker(ram, { ...S1_4K, hpd: true }), VA, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
});

t.test('HD with DBM: a write clears AP[2] in memory, a read leaves the page clean and W off', async (t) => {
  const ram = bigRam();
  const leaf = L3 + idx(VA, 3) * 8;
  chain4k(ram, 0x8000_0000n | PAGE | AF | AP2 | DBM);
  const w = new VmsaWalker(ram, { ...S1_4K, ha: true, hd: true });
  let r = walk(w, VA, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.perms & PERM_W, 0, 'clean: a cached entry must re-walk for a write');
  t.equal(get64(ram, leaf) & AP2, AP2);
  r = walk(w, VA, ACCESS_PRIV | ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.memWrites, 1);
  t.equal(get64(ram, leaf) & AP2, 0n, 'dirty');
  t.equal(r.perms & PERM_W, PERM_W);

  put64(ram, leaf, 0x8000_0000n | PAGE | AF | AP2); // no DBM: plain read-only
  t.equal(walk(w, VA, ACCESS_PRIV | ACCESS_WRITE).fault, FaultKind.Permission);
  put64(ram, leaf, 0x8000_0000n | PAGE | AF | AP2 | DBM);
  const noHd = new VmsaWalker(ram, { ...S1_4K, ha: true });
  t.equal(walk(noHd, VA, ACCESS_PRIV | ACCESS_WRITE).fault, FaultKind.Permission, 'DBM ignored without HD');
});

t.test('output address size: TTB, next table and leaf above IPS fault', async (t) => {
  const ram = bigRam();
  const cfg = { ...S1_4K, oaBits: 40 };
  let r = walk(new VmsaWalker(ram, { ...cfg, ttb: 2 ** 40 }), VA, 0);
  t.equal(r.fault, FaultKind.AddressSize);
  t.equal(r.faultLevel, 0);
  t.equal(r.memReads, 0);

  put64(ram, L0 + idx(VA, 0) * 8, BigInt(2 ** 40 + L1) | TABLE);
  r = walk(new VmsaWalker(ram, cfg), VA, 0);
  t.equal(r.fault, FaultKind.AddressSize);
  t.equal(r.faultLevel, 0);

  chain4k(ram, BigInt(2 ** 41) | PAGE | AF);
  r = walk(new VmsaWalker(ram, cfg), VA, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.AddressSize);
  t.equal(r.faultLevel, 3);
});

t.test('a table in unbacked memory is an external abort at the level reading it', async (t) => {
  const ram = new GuestRam(64 * MiB);
  put64(ram, L0 + idx(VA, 0) * 8, BigInt(L1) | TABLE);
  put64(ram, L1 + idx(VA, 1) * 8, BigInt(GiB) | TABLE); // beyond the RAM
  const r = walk(new VmsaWalker(ram, S1_4K), VA, 0);
  t.equal(r.fault, FaultKind.ExternalAbort);
  t.equal(r.faultLevel, 2);
  t.equal(r.memReads, 3);
});

t.test('64K granule with 52-bit OA: OA[51:48] from bits 15:12, 4 TiB level-1 blocks', async (t) => {
  const ram = bigRam();
  const cfg: VmsaWalkConfig = { stage: 1, granule: 65536, tsz: 12, ttb: 2 ** 50, oaBits: 52 };
  const w = new VmsaWalker(ram, cfg);
  t.equal(w.startLevel, 1);
  const va = 2 ** 51 + 0x1234_5678;
  const l2 = 3 * 2 ** 48 + 0x20000; // table above 2^48
  const l1Entries = 2 ** (52 - 42);
  put64(ram, 2 ** 50 + idx(va, 1, 16, l1Entries) * 8, BigInt(l2 % 2 ** 48) | (BigInt(Math.floor(l2 / 2 ** 48)) << 12n) | TABLE);
  const l3 = 0x30000;
  put64(ram, l2 + idx(va, 2, 16) * 8, BigInt(l3) | TABLE);
  const out = 0xa * 2 ** 48 + 0x5_0000;
  put64(ram, l3 + idx(va, 3, 16) * 8, BigInt(out % 2 ** 48) | (BigInt(Math.floor(out / 2 ** 48)) << 12n) | PAGE | AF);
  let r = walk(w, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, out + (va % 65536));
  t.equal(r.pageSize, 65536);

  const blockOut = 5 * 4 * TiB;
  put64(ram, 2 ** 50 + idx(va, 1, 16, l1Entries) * 8, BigInt(blockOut % 2 ** 48) | (BigInt(Math.floor(blockOut / 2 ** 48)) << 12n) | BLOCK | AF);
  r = walk(w, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.level, 1);
  t.equal(r.pageSize, 4 * TiB);
  t.equal(r.outputAddr, blockOut + (va % (4 * TiB)));

  r = walk(new VmsaWalker(ram, { ...cfg, pa52: false }), va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.Translation, 'no 64K level-1 block without 52-bit PA');
  t.equal(r.faultLevel, 1);
});

t.test('LPA2 (DS) 4K: 52-bit input starts at level -1, OA[51:50] in bits 9:8, level-0 blocks', async (t) => {
  const ram = bigRam();
  const ttb = 0x40000;
  const cfg: VmsaWalkConfig = { stage: 1, granule: 4096, tsz: 12, ttb, oaBits: 52, ds: true };
  const w = new VmsaWalker(ram, cfg);
  t.equal(w.startLevel, -1);
  const va = 2 ** 51 + 2 ** 49 + 0x7654_3210;
  const enc = (a: number): bigint => BigInt(a % 2 ** 50) | (BigInt(Math.floor(a / 2 ** 50)) << 8n);
  const l0 = 3 * 2 ** 50 + 0x1000;
  put64(ram, ttb + idx(va, -1, 12, 16) * 8, enc(l0) | TABLE);
  const block = 2 * 2 ** 50 + 512 * GiB * 3;
  put64(ram, l0 + idx(va, 0) * 8, enc(block) | BLOCK | AF);
  const r = walk(w, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.level, 0);
  t.equal(r.pageSize, 512 * GiB);
  t.equal(r.outputAddr, block + (va % (512 * GiB)));
  t.equal(r.memReads, 2);
});

t.test('16K granule: 4-level walk with a 2-entry level-0 table and 32 MiB blocks', async (t) => {
  const ram = bigRam();
  const cfg: VmsaWalkConfig = { stage: 1, granule: 16384, tsz: 16, ttb: 0x100000, oaBits: 48 };
  const w = new VmsaWalker(ram, cfg);
  t.equal(w.startLevel, 0);
  const va = 2 ** 47 + 0x1234_5678;
  put64(ram, 0x100000 + idx(va, 0, 14, 2) * 8, 0x104000n | TABLE);
  put64(ram, 0x104000 + idx(va, 1, 14) * 8, 0x108000n | TABLE);
  put64(ram, 0x108000 + idx(va, 2, 14) * 8, BigInt(64 * MiB) | BLOCK | AF);
  const r = walk(w, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.pageSize, 32 * MiB);
  t.equal(r.outputAddr, 64 * MiB + (va % (32 * MiB)));
});
