import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { CERROR, CR0, EVT, GERROR, SYNC_CS } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness } from './harness.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const IOVA = 0x1000_0000;
const PAGE = 4096;
const MB2 = 2 ** 21;

/** Stage 1 with ATS allowed (EATS = 1): IOVA → DATA (RW), IOVA + 4K → DATA + 4K (read-only), a 2M block at IOVA + 2M. */
function ats(h: Harness, ste: Record<string, number> = {}, nonGlobal = true) {
  const b = h.table({ stage: 1, nonGlobal });
  b.map(IOVA, DATA, PAGE, RW);
  b.map(IOVA + PAGE, DATA + PAGE, PAGE, IOMMU_READ);
  b.map(IOVA + MB2, DATA + MB2, MB2, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: cd / 64, EATS: 1, ...ste });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  return { b, cd };
}

function entry(pa: number, ua: number, size: number, r: boolean, w: boolean, more: Record<string, boolean> = {}) {
  return { translatedAddr: pa, untranslatedAddr: ua, size, read: r, write: w, exec: false, priv: false, untranslatedOnly: false, global: false, ...more };
}

t.test('a Translation Request is answered from the walk: address, size, R/W, nothing recorded for an unmapped page', async (t) => {
  const h = new Harness();
  h.enable();
  ats(h);
  // The first request fetched the STE and the CD and walked four levels: 6 memory reads at the default 100 ns (DESIGN.md §3).
  t.same(h.dev.tr(IOVA + 0x10), { status: 'SC', entries: [entry(DATA, IOVA, PAGE, true, true)], latencyNs: 600 });
  t.same(h.dev.tr(IOVA + PAGE).entries, [entry(DATA + PAGE, IOVA + PAGE, PAGE, true, false)], 'a read-only page: W = 0');
  t.same(h.dev.tr(IOVA, { noWrite: true }).entries, [entry(DATA, IOVA, PAGE, true, false)], 'No Write: W is not granted');
  t.same(h.dev.tr(IOVA + MB2 + 5 * PAGE).entries, [entry(DATA + MB2, IOVA + MB2, MB2, true, true)], 'a 2M block: one size-aligned 2M entry');
  t.same(h.dev.tr(IOVA + 2 * PAGE).entries, [entry(0, IOVA + 2 * PAGE, PAGE, false, false)], 'unmapped: R = W = 0');
  t.same(h.events(), [], 'translation faults of Translation Requests are not recorded');
  t.equal(h.counter('ats.requests'), 5);
});

t.test('a request for several pages gets one entry per leaf', async (t) => {
  const h = new Harness();
  h.enable();
  ats(h);
  const c = h.dev.tr(IOVA, { length: 4 * PAGE });
  t.same(c.entries.map((e) => [e.untranslatedAddr - IOVA, e.read, e.write]), [[0, true, true], [PAGE, true, false], [2 * PAGE, false, false], [3 * PAGE, false, false]]);
});

t.test('ATS refused: EATS == 0 and bypass STEs get UR and F_BAD_ATS_TREQ; abort STEs and SMMUEN == 0 get UR silently', async (t) => {
  const h = new Harness();
  t.same(h.dev.tr(IOVA), { status: 'UR', entries: [] }, 'SMMUEN == 0');
  h.enable();
  ats(h, { EATS: 0 });
  t.same(h.dev.tr(IOVA, { noWrite: true }), { status: 'UR', entries: [] });
  t.same(h.events().map((e) => [e.EventType, e['StreamID'], e['InputAddr'], e['RnW']]), [[EVT.F_BAD_ATS_TREQ, h.sid, IOVA, 1]]);
  h.writeSte(h.sid, { Config: 4, EATS: 1 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.dev.tr(IOVA).status, 'UR', 'bypass STE');
  t.same(h.eventNames(), [EVT.F_BAD_ATS_TREQ], 'ATS is denied on bypass as though EATS == 0');
  h.writeSte(h.sid, { Config: 0 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.dev.tr(IOVA).status, 'UR');
  t.same(h.events(), [], 'abort STE: no event');
  h.writeSte(h.sid, { Config: 5, EATS: 1, S1CDMax: 21 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.dev.tr(IOVA).status, 'UR');
  t.same(h.eventNames(), [EVT.C_BAD_STE], 'configuration errors are recorded as for transactions');
});

t.test('with a PASID: Exe when asked and allowed, Priv echoed, G for a global leaf', async (t) => {
  const h = new Harness();
  h.enable();
  const b = h.table({ stage: 1, nonGlobal: false });
  b.map(IOVA, DATA, PAGE, RW);
  const table = h.alloc.alloc(64 * 4);
  for (let i = 0; i < 4; i++) h.writeCd(table + 64 * i, h.cdFor(b, i + 1));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: table / 64, S1CDMax: 2, S1DSS: 2, EATS: 1 });
  const [e] = h.dev.tr(IOVA, { pasid: 3, exec: true }).entries;
  t.same(e, entry(DATA, IOVA, PAGE, true, true, { exec: true, global: true }));
  const [p] = h.dev.tr(IOVA, { pasid: 1, exec: true, privileged: true }).entries;
  t.same(p, entry(DATA, IOVA, PAGE, true, true, { priv: true, global: true }), 'privileged: no execute of an EL0-writable page');
  const [r] = h.dev.tr(IOVA).entries;
  t.equal(r?.global, false, 'no PASID: no Global');
  t.equal(r?.exec, false, 'no PASID prefix: no execute');
});

t.test('stage 2 translates too; the entry is the smaller of the two leaves', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  s2.map(0x8000_0000, DATA, MB2, RW);
  h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 1), EATS: 1 });
  t.same(h.dev.tr(0x8000_0000 + 3 * PAGE).entries, [entry(DATA, 0x8000_0000, MB2, true, true)]);
  // Nested: the CD and stage 1 tables are IPAs too; map the table memory 1:1 at stage 2.
  s2.map(0x5000_0000, 0x5000_0000, 16 * MB2, RW);
  const s1 = h.table({ stage: 1, iaBits: 40 });
  s1.map(IOVA, 0x8000_0000 + 3 * PAGE, PAGE, RW);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(s1, 1));
  h.writeSte(h.sid, { Config: 7, ...h.s2For(s2, 1), S1ContextPtr: cd / 64, EATS: 1 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.same(h.dev.tr(IOVA).entries, [entry(DATA + 3 * PAGE, IOVA, PAGE, true, true)], 'nested: 4K stage 1 leaf over a 2M stage 2 block');
});

t.test('a stream whose stages are all bypassed (S1DSS == bypass) is answered U = 1', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: h.alloc.alloc(64) / 64, S1CDMax: 2, S1DSS: 1, EATS: 1 });
  const [e] = h.dev.tr(IOVA + PAGE).entries;
  t.equal(e?.untranslatedOnly, true);
  t.equal(e?.untranslatedAddr, IOVA);
  t.equal(e?.size, MB2);
});

t.test('an external abort during the walk is recorded (F_WALK_EABT) and answered CA', async (t) => {
  const h = new Harness();
  h.enable();
  ats(h);
  h.board.faults.failNth('smmuv3.walk_read', 1);
  t.same(h.dev.tr(IOVA), { status: 'CA', entries: [] });
  t.same(h.eventNames(), [EVT.F_WALK_EABT]);
  h.board.faults.failNth('smmuv3.ats_treq', 1);
  t.same(h.dev.tr(IOVA), { status: 'CA', entries: [] }, 'injected: the request is answered CA');
  t.equal(h.counter('ats.refused'), 2);
});

t.test('Translated transactions: ATSCHK == 0 passes them unchecked; ATSCHK == 1 checks STE.EATS', async (t) => {
  const h = new Harness();
  h.board.sysmem.write32(DATA, 0xabcd);
  t.equal(h.dev.translatedRead(DATA).status, 'SC', 'SMMUEN == 0, GBPA bypass');
  h.enable();
  ats(h, { EATS: 0 });
  const r = h.dev.translatedRead(DATA);
  t.equal(r.status, 'SC', 'ATSCHK == 0: no Stream table lookup');
  t.equal(r.data[0], 0xcd);
  h.w32('CR0', h.r32('CR0') | CR0.ATSCHK);
  t.equal(h.r32('CR0ACK') & CR0.ATSCHK, CR0.ATSCHK);
  t.same({ ...h.dev.translatedRead(DATA), data: undefined }, { status: 'UR', fault: 'F_TRANSL_FORBIDDEN', data: undefined });
  t.same(h.events().map((e) => [e.EventType, e['InputAddr'], e['SSV']]), [[EVT.F_TRANSL_FORBIDDEN, DATA, 0]]);
  ats(h, { EATS: 1 });
  t.equal(h.dev.translatedRead(DATA).status, 'SC', 'EATS == 1: the address is already physical');
  h.writeSte(h.sid, { Config: 0 });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.dev.translatedRead(DATA).fault, 'STE_ABORT');
  t.same(h.events(), [], 'abort STE: no event');
});

t.test('CMD_ATC_INV sends an Invalidation Request: StreamID, PASID, size-aligned range, Global', async (t) => {
  const h = new Harness();
  h.enable();
  h.cmd('ATC_INV', { StreamID: h.sid, Address: (IOVA + 3 * PAGE) / PAGE, Size: 2 });
  h.cmd('ATC_INV', { StreamID: h.sid, SSV: 1, SubstreamID: 7, Global: 1, Size: 52 });
  h.cmd('ATC_INV', { StreamID: h.sid, Global: 1, Address: IOVA / PAGE });
  t.same(h.dev.invalidations.map(({ time: _, ...r }) => r), [
    { itag: 0, pasid: -1, global: false, addr: IOVA, size: 4 * PAGE },
    { itag: 1, pasid: 7, global: true, addr: 0, size: 2 ** 64 },
    { itag: 2, pasid: -1, global: false, addr: IOVA, size: PAGE },
  ]);
  t.equal(h.counter('atc.inv'), 3);
});

t.test('CMD_SYNC completes only once earlier ATC invalidations have completed', async (t) => {
  const h = new Harness();
  h.enable();
  h.cmd('ATC_INV', { StreamID: h.sid, Size: 52 });
  h.cmd('SYNC', { CS: SYNC_CS.IRQ });
  const sync = h.cons().rd;
  t.equal(h.r32('CMDQ_PROD') - sync, 1, 'CONS waits on the SYNC');
  t.same(h.irqs, []);
  h.cmd('TLBI_NSNH_ALL');
  t.equal(h.cons().rd, sync, 'later commands wait behind it');
  h.run(999);
  t.same(h.irqs, []);
  h.run(1);
  t.same(h.irqs, ['cmdq-sync'], 'the completion arrived: the SYNC signals');
  t.equal(h.cons().rd, h.r32('CMDQ_PROD'), 'and the queue runs on');
  t.equal(h.smmu.atcInvalidationsOutstanding, 0);
});

t.test('an ATC invalidation that never completes: CERROR_ATC_INV_SYNC, then a repeated SYNC completes', async (t) => {
  const h = new Harness({ atcInvTimeoutNs: 10_000 });
  h.enable();
  h.dev.autoComplete = false;
  h.cmd('ATC_INV', { StreamID: h.sid, Size: 52 });
  h.cmd('SYNC', { CS: SYNC_CS.IRQ });
  const sync = h.cons().rd;
  h.run(10_000);
  t.same(h.cons(), { rd: sync, err: CERROR.ATC_INV_SYNC }, 'CONS stays on the SYNC with ERR');
  t.ok(h.smmu.gerrorActive('CMDQ_ERR'));
  t.equal(h.counter('atc.inv.timeout'), 1);
  h.dev.complete(0);
  t.equal(h.counter('atc.inv.unexpected'), 1, 'a late completion is ignored');
  h.w32('GERRORN', h.r32('GERROR'));
  t.equal(h.cons().rd, h.r32('CMDQ_PROD'), 'repeating the SYNC completes');
  t.same(h.irqs, ['cmdq-sync']);
});

t.test('32 ITags per StreamID: a 33rd invalidation waits for a free tag', async (t) => {
  const h = new Harness();
  h.enable();
  for (let i = 0; i < 33; i++) h.cmd('ATC_INV', { StreamID: h.sid, Address: i });
  t.equal(h.dev.invalidations.length, 32);
  t.equal(new Set(h.dev.invalidations.map((r) => r.itag)).size, 32);
  h.cmd('SYNC');
  h.run(1000);
  t.equal(h.dev.invalidations.length, 33, 'sent once tags were free');
  t.equal(h.dev.invalidations[32]!.itag, 0);
  h.run(1000);
  t.equal(h.cons().rd, h.r32('CMDQ_PROD'));
});

t.test('a completion with Completion Count 2 needs two messages', async (t) => {
  const h = new Harness();
  h.enable();
  h.dev.autoComplete = false;
  h.cmd('ATC_INV', { StreamID: h.sid, Size: 52 });
  h.cmd('SYNC');
  h.dev.complete(0, 2);
  t.ok(h.smmu.atcInvalidationsOutstanding === 1 && h.cons().rd !== h.r32('CMDQ_PROD'));
  h.dev.complete(0, 2);
  t.equal(h.cons().rd, h.r32('CMDQ_PROD'));
});

t.test('injection: a lost Invalidation Request times the SYNC out; a delayed completion delays it', async (t) => {
  const h = new Harness({ atcInvTimeoutNs: 5000 });
  h.enable();
  h.board.faults.failNth('smmuv3.atc_inv', 1, { kind: 'drop' });
  h.cmd('ATC_INV', { StreamID: h.sid, Size: 52 });
  h.cmd('SYNC');
  t.equal(h.dev.invalidations.length, 0);
  h.run(5000);
  t.equal(h.cons().err, CERROR.ATC_INV_SYNC);
  h.w32('GERRORN', h.r32('GERROR'));
  h.board.faults.failNth('smmuv3.atc_inv_complete', 1, { kind: 'delay', ns: 3000 });
  h.cmd('ATC_INV', { StreamID: h.sid, Size: 52 });
  h.cmd('SYNC');
  h.run(1000);
  t.not(h.cons().rd, h.r32('CMDQ_PROD'));
  h.run(3000);
  t.equal(h.cons().rd, h.r32('CMDQ_PROD'));
  t.equal(h.r32('GERROR') ^ h.r32('GERRORN'), 0);
  t.equal(GERROR.CMDQ_ERR & (h.r32('GERROR') ^ h.r32('GERRORN')), 0);
});
