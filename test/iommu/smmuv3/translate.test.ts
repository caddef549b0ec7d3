import t from 'tap';
import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE, type VmsaGranule } from '../../../iommu/pgtable/index.ts';
import { EVT, EVT_CLASS } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness } from './harness.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const IOVA = 0x1000_0000;
const IPA = 0x8000_0000;
const AF = 1 << 10;
const AP2 = 1 << 7;
const S2AP_W = 1 << 7;

/** Stage 1 only: one page at IOVA → DATA, CD with ASID 1. */
function stage1(h: Harness, o: { granule?: VmsaGranule; prot?: number; cd?: Record<string, number>; ste?: Record<string, number>; dbm?: boolean } = {}) {
  const g = o.granule ?? 4096;
  const b = h.table({ stage: 1, granule: g, dbm: o.dbm ?? false });
  b.map(IOVA, DATA, g, o.prot ?? RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1, o.cd));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64, ...o.ste });
  return { b, cd };
}

/** Substreams: a linear table of 2^cdmax CDs, CD i with ASID i + 1 over one stage 1 table. */
function substreams(h: Harness, cdmax: number, prot: number, ste: Record<string, number> = {}, cd: Record<string, number> = {}) {
  const b = h.table({ stage: 1 });
  b.map(IOVA, DATA, 4096, prot);
  const table = h.alloc.alloc(64 * 2 ** cdmax);
  for (let i = 0; i < 2 ** cdmax; i++) h.writeCd(table + 64 * i, h.cdFor(b, i + 1, cd));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: table / 64, S1CDMax: cdmax, ...ste });
  return { b, table };
}

t.test('stage 1 translates a VA through the CD tables, with 4K, 16K and 64K granules', async (t) => {
  for (const g of [4096, 16384, 65536] as const) {
    const h = new Harness();
    h.enable();
    stage1(h, { granule: g });
    h.board.sysmem.write32(DATA + 0x10, g);
    t.equal(h.read32(IOVA + 0x10), g, `${g / 1024}K read`);
    t.same(h.write(IOVA + 0x20, 0xfeed), { ok: true });
    t.equal(h.board.sysmem.read32(DATA + 0x20), 0xfeed, `${g / 1024}K write`);
    t.equal(h.read32(IOVA + g), 'F_TRANSLATION', 'the next page is not mapped');
    const [e] = h.events();
    t.equal(e?.EventType, EVT.F_TRANSLATION);
    t.equal(e?.['InputAddr'], IOVA + g);
    t.equal(e?.['S2'], 0);
    t.equal(e?.['CLASS'], EVT_CLASS.IN);
  }
});

t.test('stage 2 translates the input as an IPA', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  s2.map(IPA, DATA, 4096, RW);
  h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 7) });
  h.board.sysmem.write32(DATA, 0x2222);
  t.equal(h.read32(IPA), 0x2222);
  t.equal(h.read32(IPA + 0x1000), 'F_TRANSLATION');
  const [e] = h.events();
  t.equal(e?.['S2'], 1);
  t.equal(e?.['CLASS'], EVT_CLASS.IN);
  t.equal(e!['IPA']! * 4096, IPA + 0x1000);
  t.equal(h.read32(2 ** 41), 'F_TRANSLATION', 'an IPA beyond S2T0SZ');
});

t.test('nested: the CD and stage 1 tables are IPAs that stage 2 translates; the output IPA too', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  const s1 = h.table({ stage: 1 });
  s1.map(IOVA, IPA, 4096, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(s1, 3));
  // Stage 2 maps the table memory (and the CD) at IPA == PA, and IPA → DATA.
  s2.map(0x5000_0000, 0x5000_0000, 0x20_0000, RW);
  s2.map(IPA, DATA, 4096, RW);
  h.writeSte(h.sid, { Config: 7, S1ContextPtr: cd / 64, ...h.s2For(s2, 9) });
  h.board.sysmem.write32(DATA + 8, 0x3333);
  t.equal(h.read32(IOVA + 8), 0x3333);
  t.same(h.events(), []);
});

t.test('nested: a stage 2 fault on a stage 1 table address is S2 == 1, CLASS == TT, IPA = the table entry', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  const s1 = h.table({ stage: 1 });
  s1.map(IOVA, IPA, 4096, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(s1, 3));
  s2.map(cd - (cd % 4096), cd - (cd % 4096), 4096, RW); // only the CD's page
  h.writeSte(h.sid, { Config: 7, S1ContextPtr: cd / 64, ...h.s2For(s2, 9) });
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  const [e] = h.events();
  t.equal(e?.['S2'], 1);
  t.equal(e?.['CLASS'], EVT_CLASS.TT);
  t.equal(e!['IPA']! * 4096, s1.root - (s1.root % 4096), 'the stage 1 root table IPA');
  t.equal(e?.['TTRnW'], 1, 'a descriptor read');
});

t.test('nested: a stage 2 fault fetching the CD is CLASS == CD', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  const cdIpa = 0x9000_0000;
  h.writeSte(h.sid, { Config: 7, S1ContextPtr: cdIpa / 64, ...h.s2For(s2, 9) });
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  const [e] = h.events();
  t.equal(e?.['CLASS'], EVT_CLASS.CD);
  t.equal(e!['IPA']! * 4096, cdIpa);
});

t.test('permissions: privileged and execute attributes come from the PASID prefix', async (t) => {
  const h = new Harness();
  h.enable();
  const { b } = substreams(h, 2, RW | IOMMU_PRIV);
  b.map(IOVA + 0x1000, DATA + 0x1000, 4096, IOMMU_READ | IOMMU_NOEXEC);
  t.equal(h.read32(IOVA, { pasid: 1 }), 'F_PERMISSION', 'unprivileged read of a privileged-only page');
  t.type(h.read32(IOVA, { pasid: 1, privileged: true }), 'number', 'privileged read');
  t.type(h.read32(IOVA, { pasid: 1, privileged: true, exec: true }), 'number', 'privileged execute');
  t.equal(h.read32(IOVA + 0x1000, { pasid: 2, exec: true }), 'F_PERMISSION', 'execute of an XN page');
  t.equal(h.write(IOVA + 0x1000, 1, { pasid: 2 }).ok, false, 'write of a read-only page');
  const ev = h.events();
  t.same(ev.map((e) => e.EventType), [EVT.F_PERMISSION, EVT.F_PERMISSION, EVT.F_PERMISSION]);
  t.same(ev.map((e) => [e['PnU'], e['InD'], e['RnW']]), [[0, 0, 1], [0, 1, 1], [0, 0, 0]]);
  t.equal(ev[0]?.['SubstreamID'], 1);
});

t.test('without a SubstreamID, S1DSS decides: terminate, bypass stage 1, or use CD 0', async (t) => {
  const h = new Harness();
  h.enable();
  substreams(h, 2, RW);
  h.board.sysmem.write32(DATA, 0x44);
  t.equal(h.read32(IOVA), 'F_STREAM_DISABLED', 'S1DSS == terminate');
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: 0, S1CDMax: 2, S1DSS: 1 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.read32(DATA), 0x44, 'S1DSS == bypass');
  const { table } = substreams(h, 2, RW, { S1DSS: 2 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.read32(IOVA), 0x44, 'S1DSS == substream 0');
  t.equal(h.read32(IOVA, { pasid: 0 }), 'F_STREAM_DISABLED', 'SubstreamID 0 is reserved for non-substream traffic');
  t.equal(h.read32(IOVA, { pasid: 4 }), 'C_BAD_SUBSTREAMID', 'SubstreamID >= 2^S1CDMax');
  t.same(h.eventNames(), [EVT.F_STREAM_DISABLED, EVT.F_STREAM_DISABLED, EVT.C_BAD_SUBSTREAMID]);
  t.ok(table > 0);
});

t.test('2-level CD tables: the L1CD locates 4K leaf tables; an invalid L1CD is C_BAD_SUBSTREAMID', async (t) => {
  const h = new Harness();
  h.enable();
  const b = h.table({ stage: 1 });
  b.map(IOVA, DATA, 4096, RW);
  const l1 = h.alloc.alloc(64);
  const leaf = h.alloc.alloc(4096);
  h.writeWords(l1 + 8, new Uint32Array([(leaf | 1) >>> 0, 0])); // L1CD[1] → SubstreamIDs 64..127
  h.writeCd(leaf + 5 * 64, h.cdFor(b, 9));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: l1 / 64, S1CDMax: 8, S1Fmt: 1 });
  h.board.sysmem.write32(DATA, 0x99);
  t.equal(h.read32(IOVA, { pasid: 69 }), 0x99, 'SubstreamID 69 = L1 index 1, leaf index 5');
  t.equal(h.read32(IOVA, { pasid: 5 }), 'C_BAD_SUBSTREAMID', 'L1CD[0].V == 0');
  const [e] = h.events();
  t.equal(e?.['SubstreamID'], 5);
});

t.test('a malformed CD is ILLEGAL: C_BAD_CD', async (t) => {
  const h = new Harness();
  h.enable();
  const { b, cd } = stage1(h);
  const cases: [string, Record<string, number>][] = [
    ['V == 0', { V: 0 }],
    ['AA64 == 0', { AA64: 0 }],
    ['T0SZ above 39', { T0SZ: 40 }],
    ['TG0 reserved', { TG0: 3 }],
    ['big-endian tables', { ENDI: 1 }],
    ['TTB0 beyond IPS', { IPS: 0, TTB0: 2 ** 33 / 16 }],
    ['EPD1 == 0 with TG1 reserved', { EPD1: 0, TG1: 0 }],
    ['a RES0 bit (MPAM PARTID)', { IMPDEF: 0 }],
  ];
  for (const [what, fields] of cases) {
    h.writeCd(cd, h.cdFor(b, 1, fields));
    if (what.startsWith('a RES0')) h.board.sysmem.write32(cd + 44, 1);
    h.cmd('CFGI_CD', { StreamID: h.sid, SubstreamID: 0 });
    t.equal(h.read32(IOVA), 'C_BAD_CD', what);
    t.same(h.eventNames(), [EVT.C_BAD_CD], `${what}: recorded`);
  }
});

t.test('CD.R == 0 suppresses stage 1 fault records; CD.A == 0 completes them as RAZ/WI', async (t) => {
  const h = new Harness();
  h.enable();
  const { b, cd } = stage1(h, { cd: { R: 0 } });
  t.equal(h.read32(IOVA + 0x1000), 'F_TRANSLATION', 'still aborted');
  t.same(h.events(), [], 'but not recorded');
  h.writeCd(cd, h.cdFor(b, 1, { A: 0 }));
  h.cmd('CFGI_CD', { StreamID: h.sid, SubstreamID: 0 });
  h.board.sysmem.write32(DATA + 0x1000, 0xdead);
  t.equal(h.read32(IOVA + 0x1000), 0, 'RAZ');
  t.same(h.write(IOVA + 0x1000, 0x77), { ok: true }, 'WI');
  t.equal(h.board.sysmem.read32(DATA + 0x1000), 0xdead);
  t.same(h.eventNames(), [EVT.F_TRANSLATION, EVT.F_TRANSLATION], 'recorded (R == 1)');
});

t.test('STE.S2R == 0 suppresses stage 2 fault records; stage 2 faults always abort', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 1, { S2R: 0 }) });
  t.equal(h.read32(IPA), 'F_TRANSLATION');
  t.same(h.events(), []);
});

t.test('a descriptor read that aborts is F_WALK_EABT with the descriptor address', async (t) => {
  const h = new Harness();
  h.enable();
  const { b } = stage1(h);
  h.board.faults.failNth('smmuv3.walk_read', 1);
  t.equal(h.read32(IOVA), 'F_WALK_EABT');
  const [e] = h.events();
  t.equal(e?.EventType, EVT.F_WALK_EABT);
  t.equal(e?.['CLASS'], EVT_CLASS.TT);
  t.equal(e!['FetchAddr']! * 8, b.root + Math.floor(IOVA / 2 ** 39) * 8, 'the level 0 descriptor');
  t.type(h.read32(IOVA), 'number', 'the next walk succeeds');
});

t.test('HTTU: CD.HA sets the access flag; CD.HD marks a DBM page dirty on write', async (t) => {
  const h = new Harness();
  h.enable();
  const { b, cd } = stage1(h, { dbm: true });
  const pte = h.leafPte(b, IOVA);
  h.poke(pte, AP2, AF); // clean (DBM + read-only) and not accessed
  t.equal(h.read32(IOVA), 'F_ACCESS', 'AF == 0 without HA');
  t.equal(h.write(IOVA, 1).ok, false);
  t.same(h.eventNames(), [EVT.F_ACCESS, EVT.F_ACCESS]);
  h.writeCd(cd, h.cdFor(b, 1, { HA: 1, HD: 1 }));
  h.cmd('CFGI_CD', { StreamID: h.sid, SubstreamID: 0 });
  t.type(h.read32(IOVA), 'number');
  t.equal(h.board.sysmem.read32(pte) & (AF | AP2), AF | AP2, 'a read sets AF only');
  t.same(h.write(IOVA, 5), { ok: true });
  t.equal(h.board.sysmem.read32(pte) & AP2, 0, 'a write clears AP[2]: dirty');
  t.equal(h.board.sysmem.read32(DATA), 5);
});

t.test('HTTU at stage 2: S2HA sets AF, S2HD sets S2AP[1] of a DBM page on write', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40, dbm: true });
  s2.map(IPA, DATA, 4096, RW);
  const pte = h.leafPte(s2, IPA);
  h.poke(pte, 0, AF | S2AP_W);
  h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 1, { S2HA: 1, S2HD: 1 }) });
  t.type(h.read32(IPA), 'number');
  t.equal(h.board.sysmem.read32(pte) & (AF | S2AP_W), AF);
  t.same(h.write(IPA, 3), { ok: true });
  t.equal(h.board.sysmem.read32(pte) & S2AP_W, S2AP_W, 'writable-dirty');
});

t.test('CD.AFFD: AF == 0 is treated as 1 and never written', async (t) => {
  const h = new Harness();
  h.enable();
  const { b } = stage1(h, { cd: { AFFD: 1 } });
  const pte = h.leafPte(b, IOVA);
  h.poke(pte, 0, AF);
  t.type(h.read32(IOVA), 'number');
  t.equal(h.board.sysmem.read32(pte) & AF, 0);
});

t.test('stage 1 output beyond the CD IPS is F_ADDR_SIZE', async (t) => {
  const h = new Harness();
  h.enable();
  const b = h.table({ stage: 1 });
  b.map(IOVA, 2 ** 33, 4096, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1, { IPS: 0 })); // 32-bit IPA
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64 });
  t.equal(h.read32(IOVA), 'F_ADDR_SIZE');
});

t.test('S2PTW: a stage 1 table in Device memory at stage 2 is a stage 2 Permission fault', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  const s1 = h.table({ stage: 1 });
  s1.map(IOVA, IPA, 4096, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(s1, 3));
  s2.map(0x5000_0000, 0x5000_0000, 0x20_0000, RW | IOMMU_MMIO);
  s2.map(IPA, DATA, 4096, RW);
  h.writeSte(h.sid, { Config: 7, S1ContextPtr: cd / 64, ...h.s2For(s2, 9, { S2PTW: 1 }) });
  t.equal(h.read32(IOVA), 'F_PERMISSION');
  const [e] = h.events();
  t.equal(e?.['S2'], 1);
  t.equal(e?.['CLASS'], EVT_CLASS.CD, 'the CD fetch is the first Device access');
});

t.test('CD.PAN: a privileged data access to a page unprivileged software may access faults', async (t) => {
  const h = new Harness();
  h.enable();
  substreams(h, 1, RW, {}, { PAN: 1 });
  t.equal(h.read32(IOVA, { pasid: 1, privileged: true }), 'F_PERMISSION');
  t.type(h.read32(IOVA, { pasid: 1 }), 'number', 'unprivileged access is unaffected');
  substreams(h, 1, RW);
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.type(h.read32(IOVA, { pasid: 1, privileged: true }), 'number', 'without PAN');
});

t.test('STE.PRIVCFG/INSTCFG override the incoming attributes', async (t) => {
  const h = new Harness();
  h.enable();
  stage1(h, { prot: RW | IOMMU_PRIV, ste: { PRIVCFG: 3 } });
  t.type(h.read32(IOVA), 'number', 'PRIVCFG == privileged: a plain read reaches an EL1-only page');
  stage1(h, { prot: RW | IOMMU_NOEXEC, ste: { INSTCFG: 3 } });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  h.cmd('TLBI_NH_ASID', { ASID: 1 }); // same ASID, new tables
  t.equal(h.read32(IOVA), 'F_PERMISSION', 'INSTCFG == instruction: reads are fetches of an XN page');
  t.same(h.write(IOVA, 1), { ok: true }, 'writes stay data');
});

t.test('with a 52-bit OAS (IDR5.VAX == 1) a 64K-granule CD may translate 52-bit VAs (T0SZ 12)', async (t) => {
  const va = 2 ** 51 + 0x10_0000;
  for (const oas of [52, 48] as const) {
    const h = new Harness({ oas });
    h.enable();
    const b = h.table({ stage: 1, granule: 65536, iaBits: 52, oaBits: 52 });
    b.map(va, DATA, 65536, RW);
    const cd = h.alloc.alloc(64);
    h.writeCd(cd, h.cdFor(b, 1, { IPS: 6 }));
    h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64 });
    h.board.sysmem.write32(DATA, 52);
    t.equal(h.read32(va), oas === 52 ? 52 : 'C_BAD_CD', `OAS ${oas}`);
  }
});
