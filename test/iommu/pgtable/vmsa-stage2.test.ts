import t from 'tap';
import fc from 'fast-check';
import { VmsaWalker, vmsaConfigError, type VmsaWalkConfig } from '../../../iommu/pgtable/vmsa-walker.ts';
import { NestedTableTranslator } from '../../../iommu/pgtable/nested.ts';
import { ACCESS_EXEC, ACCESS_PRIV, ACCESS_READ, ACCESS_WRITE, FaultKind, PERM_UW, PERM_W, WalkResult } from '../../../iommu/pgtable/types.ts';
import { GuestRam, bigRam, get64, put64, GiB } from './helpers.ts';
import { AF, BLOCK, DBM, PAGE, S2R, S2W, TABLE, idx, walkOnce } from './vmsa-fixtures.ts';

const walk = walkOnce;

t.test('stage 2: SL0 picks the start level and concatenated tables are indexed as one', async (t) => {
  const ram = bigRam();
  // 40-bit IPA, 4K: start at level 1 (SL0=1) with 2 concatenated level-1 tables.
  const root = 0x200000;
  const cfg: VmsaWalkConfig = { stage: 2, granule: 4096, tsz: 24, sl0: 1, ttb: root, oaBits: 48 };
  const w = new VmsaWalker(ram, cfg);
  t.equal(w.startLevel, 1);
  const ipa = 2 ** 39 + 3 * GiB + 0x1234; // second table of the pair
  t.equal(idx(ipa, 1, 12, 1024), 512 + 3);
  put64(ram, root + (512 + 3) * 8, BigInt(7 * GiB) | BLOCK | AF | S2R);
  const r = walk(w, ipa, ACCESS_READ);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 7 * GiB + 0x1234);
  t.equal(r.perms & (PERM_W | PERM_UW), 0);
  t.equal(walk(w, ipa, ACCESS_WRITE).fault, FaultKind.Permission);
  t.equal(r.memReads, 1);
});

t.test('stage 2: a start level inconsistent with S2T0SZ is a configuration error', async (t) => {
  const cfg: VmsaWalkConfig = { stage: 2, granule: 4096, tsz: 24, sl0: 0, ttb: 0, oaBits: 48 };
  t.match(vmsaConfigError(cfg), /inconsistent/, '40-bit IPA would need 2^19 level-2 entries');
  t.equal(vmsaConfigError({ ...cfg, tsz: 16 + 9, sl0: 1 }), null);
  const r = walk(new VmsaWalker(bigRam(), cfg), 0, 0);
  t.equal(r.fault, FaultKind.Translation);
  t.equal(r.faultLevel, 0);
  t.equal(vmsaConfigError({ ...cfg, granule: 65536, sl0: 3 }) !== null, true, '64K SL0=3 reserved');
});

t.test('stage 2: XN, FEAT_XNX, HD sets S2AP[1]', async (t) => {
  const ram = bigRam();
  const root = 0x300000;
  const cfg: VmsaWalkConfig = { stage: 2, granule: 4096, tsz: 34, sl0: 0, ttb: root, oaBits: 48 }; // 30-bit IPA, level 2
  const ipa = 0x2345_6000;
  const l3 = 0x301000;
  put64(ram, root + idx(ipa, 2, 12, 512) * 8, BigInt(l3) | TABLE);
  const leaf = l3 + idx(ipa, 3) * 8;
  const exec = (w: VmsaWalker, priv: boolean): number => walk(w, ipa, ACCESS_EXEC | (priv ? ACCESS_PRIV : 0)).fault;
  const plain = new VmsaWalker(ram, cfg);
  const xnx = new VmsaWalker(ram, { ...cfg, xnx: true });
  put64(ram, leaf, 0x9000_0000n | PAGE | AF | S2R | (1n << 53n)); // XN = 01
  t.equal(exec(plain, true), FaultKind.None, 'without XNX only XN[1] counts');
  t.equal(exec(xnx, true), FaultKind.Permission, 'XNX 01: not at EL1');
  t.equal(exec(xnx, false), FaultKind.None, 'XNX 01: EL0 may');
  put64(ram, leaf, 0x9000_0000n | PAGE | AF | S2R | (3n << 53n));
  t.equal(exec(xnx, true), FaultKind.None, 'XNX 11: EL1 may');
  t.equal(exec(xnx, false), FaultKind.Permission);
  t.equal(exec(plain, true), FaultKind.Permission);

  put64(ram, leaf, 0x9000_0000n | PAGE | AF | S2R | DBM);
  const hd = new VmsaWalker(ram, { ...cfg, ha: true, hd: true });
  const r = walk(hd, ipa, ACCESS_WRITE);
  t.equal(r.fault, FaultKind.None);
  t.equal(get64(ram, leaf) & S2W, S2W, 'S2AP[1] set = dirty');
  t.equal(r.perms & PERM_W, PERM_W);
});

t.test('nested: stage-1 table addresses go through stage 2; its failure is a stage-2 fault on the walk', async (t) => {
  const ram = bigRam();
  // Stage 2: 32-bit IPA, 4K, start level 1 (SL0=1), identity-ish 1 GiB blocks at +16 GiB.
  const s2root = 0x400000;
  const s2cfg: VmsaWalkConfig = { stage: 2, granule: 4096, tsz: 32, sl0: 1, ttb: s2root, oaBits: 48 };
  put64(ram, s2root + 0 * 8, BigInt(16 * GiB) | BLOCK | AF | S2R | S2W);
  const s2 = new VmsaWalker(ram, s2cfg);
  // Stage 1 tables live at IPA 0x10000.. i.e. PA 16 GiB + 0x10000.
  const base = 16 * GiB;
  const va = 0x7000_1000;
  const s1cfg: VmsaWalkConfig = { stage: 1, granule: 4096, tsz: 33, ttb: 0x10000, oaBits: 48, tableAddrTranslator: new NestedTableTranslator(s2) };
  const s1 = new VmsaWalker(ram, s1cfg);
  t.equal(s1.startLevel, 1);
  put64(ram, base + 0x10000 + idx(va, 1) * 8, 0x11000n | TABLE);
  put64(ram, base + 0x11000 + idx(va, 2) * 8, 0x12000n | TABLE);
  put64(ram, base + 0x12000 + idx(va, 3) * 8, 0x3000_0000n | PAGE | AF);
  let r = walk(s1, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.None);
  t.equal(r.outputAddr, 0x3000_0000, 'stage-1 output is an IPA; the model translates it');
  t.equal(r.memReads, 6, 'three stage-1 reads, each with one stage-2 read');

  put64(ram, base + 0x11000 + idx(va, 2) * 8, 0x4000_2000n | TABLE); // table at IPA 1 GiB: no stage-2 mapping
  r = walk(s1, va, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.Stage2);
  t.equal(r.faultLevel, 3, 'while fetching the level-3 descriptor');
  t.ok(r.s2OnTableWalk);
  t.equal(r.s2FaultKind, FaultKind.Translation);
  t.equal(r.s2FaultLevel, 1);
  t.equal(r.s2FaultAddr, 0x4000_2000 + idx(va, 3) * 8);
});

t.test('nested: a hardware AF update needs stage-2 write permission on the table', async (t) => {
  const ram = bigRam();
  const s2root = 0x400000;
  put64(ram, s2root, BigInt(16 * GiB) | BLOCK | AF | S2R); // read-only stage 2
  const s2 = new VmsaWalker(ram, { stage: 2, granule: 4096, tsz: 32, sl0: 1, ttb: s2root, oaBits: 48 });
  const base = 16 * GiB;
  const s1 = new VmsaWalker(ram, {
    stage: 1, granule: 4096, tsz: 39, ttb: 0x10000, oaBits: 48, ha: true, tableAddrTranslator: new NestedTableTranslator(s2),
  });
  put64(ram, base + 0x10000 + idx(0x5000, 2, 12) * 8, 0x11000n | TABLE);
  put64(ram, base + 0x11000 + idx(0x5000, 3) * 8, 0x3000_0000n | PAGE);
  const r = walk(s1, 0x5000, ACCESS_PRIV);
  t.equal(r.fault, FaultKind.Stage2);
  t.equal(r.s2FaultKind, FaultKind.Permission);
  t.ok(r.s2OnTableWalk);
});

t.test('garbage tables never throw and never read more than one descriptor per level', async (t) => {
  const configs: VmsaWalkConfig[] = [
    { stage: 1, granule: 4096, tsz: 16, ttb: 0, oaBits: 48 },
    { stage: 1, granule: 16384, tsz: 16, ttb: 0, oaBits: 48 },
    { stage: 1, granule: 65536, tsz: 12, ttb: 0, oaBits: 52 },
    { stage: 1, granule: 4096, tsz: 12, ttb: 0, oaBits: 52, ds: true, ha: true, hd: true },
    { stage: 2, granule: 4096, tsz: 24, sl0: 1, ttb: 0, oaBits: 40, ha: true, hd: true },
  ];
  const WINDOW = 0x10000;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.boolean()), { minLength: 1, maxLength: 32 }),
      fc.nat(configs.length - 1),
      fc.nat(2 ** 52 - 1),
      fc.nat(7),
      (words, ci, va, access) => {
        const ram = new GuestRam(2 ** 30);
        // Every slot of a 64 KiB window holds garbage; "local" descriptors point back into it.
        for (let i = 0; i < WINDOW / 8; i++) {
          const [lo, hi, local] = words[i % words.length]!;
          ram.write32(i * 8, local ? lo & (WINDOW - 1) : lo);
          ram.write32(i * 8 + 4, local ? 0 : hi);
        }
        const w = new VmsaWalker(ram, configs[ci]!);
        const r = new WalkResult();
        w.walk(va, access, r);
        return r.memReads <= 5 && (r.fault !== FaultKind.None ? r.pageSize === 0 : r.pageSize > 0);
      },
    ),
    { numRuns: 120 },
  );
  t.pass('garbage walks ended in a result or a fault');
});
