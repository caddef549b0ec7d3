import t from 'tap';
import { EVT, GBPA } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness, STRTAB } from './harness.ts';

const BYPASS = 4;

t.test('with SMMUEN == 0 transactions bypass with GBPA attributes, or abort when GBPA.ABORT is set', async (t) => {
  const h = new Harness();
  h.board.sysmem.write32(DATA, 0x1234);
  t.equal(h.read32(DATA), 0x1234, 'bypass by default');
  h.w32('CR0', 4); // event queue on, SMMU off
  h.w32('GBPA', GBPA.ABORT | GBPA.UPDATE);
  t.equal(h.read32(DATA), 'GBPA_ABORT');
  t.same(h.write(DATA, 1), { ok: false, fault: 'GBPA_ABORT' });
  t.equal(h.board.sysmem.read32(DATA), 0x1234, 'nothing written');
  t.same(h.events(), [], 'no event is recorded while SMMUEN == 0');
});

t.test('a linear Stream table is indexed by StreamID; Config == bypass passes DMA through', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: BYPASS });
  h.cmd('CFGI_STE', { StreamID: h.sid });
  h.board.sysmem.write32(DATA, 0xabcd);
  t.equal(h.read32(DATA), 0xabcd);
  t.same(h.write(DATA + 4, 0x55), { ok: true });
  t.equal(h.board.sysmem.read32(DATA + 4), 0x55);
});

t.test('STE.Config == abort terminates silently (no event)', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: 0 });
  t.equal(h.read32(DATA), 'STE_ABORT');
  h.writeSte(h.sid, { Config: 2 }); // reserved 0b0xx behaves as abort
  h.cmd('CFGI_STE', { StreamID: h.sid });
  t.equal(h.read32(DATA), 'STE_ABORT');
  t.same(h.events(), []);
});

t.test('an STE with V == 0 gives C_BAD_STE carrying the StreamID and SubstreamID', async (t) => {
  const h = new Harness();
  h.enable();
  t.equal(h.read32(DATA, { pasid: 5 }), 'C_BAD_STE');
  const [e] = h.events();
  t.equal(e?.EventType, EVT.C_BAD_STE);
  t.equal(e?.['StreamID'], h.sid);
  t.equal(e?.['SSV'], 1);
  t.equal(e?.['SubstreamID'], 5);
});

t.test('malformed STEs are ILLEGAL: C_BAD_STE', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  const cases: [string, Record<string, number>][] = [
    ['a RES0 bit (bit 56, between S1ContextPtr and S1CDMax)', { Config: BYPASS }],
    ['S2AA64 == 0 (AArch32 tables unsupported)', { Config: 6, ...h.s2For(s2, 1), S2AA64: 0 }],
    ['S2T0SZ beyond 39', { Config: 6, ...h.s2For(s2, 1), S2T0SZ: 40 }],
    ['S2SL0 inconsistent with S2T0SZ (level 2 start cannot resolve 40 bits)', { Config: 6, ...h.s2For(s2, 1), S2SL0: 0 }],
    ['S2TG reserved', { Config: 6, ...h.s2For(s2, 1), S2TG: 3 }],
    ['EATS == 0b10: split-stage ATS without support (IDR0.NS1ATS == 1)', { Config: 6, ...h.s2For(s2, 1), EATS: 2 }],
    ['EATS == 0b11 (reserved)', { Config: 6, ...h.s2For(s2, 1), EATS: 3 }],
    ['S1CDMax beyond SSIDSIZE', { Config: 5, S1CDMax: 21 }],
  ];
  for (const [what, fields] of cases) {
    h.writeSte(h.sid, fields);
    if (what.startsWith('a RES0')) h.board.sysmem.write32(h.steAddr(h.sid) + 4, 0x0100_0000 | h.board.sysmem.read32(h.steAddr(h.sid) + 4));
    h.cmd('CFGI_STE', { StreamID: h.sid });
    t.equal(h.read32(DATA), 'C_BAD_STE', what);
    t.same(h.events().map((e) => [e.EventType, e['StreamID'], e['SSV']]), [[EVT.C_BAD_STE, h.sid, 0]], `${what}: recorded with its StreamID`);
  }
});

t.test('a StreamID beyond the Stream table is C_BAD_STREAMID, recorded only with CR2.RECINVSID', async (t) => {
  const h = new Harness();
  h.enable({ log2size: 3 }); // 8 StreamIDs; the endpoint is StreamID 8
  t.equal(h.sid, 8);
  t.equal(h.read32(DATA), 'C_BAD_STREAMID');
  const [e] = h.events();
  t.equal(e?.EventType, EVT.C_BAD_STREAMID);
  t.equal(e?.['StreamID'], 8);
  const quiet = new Harness();
  quiet.enable({ log2size: 3, recinvsid: false });
  t.equal(quiet.read32(DATA), 'C_BAD_STREAMID');
  t.same(quiet.events(), [], 'not recorded without RECINVSID');
});

t.test('a 2-level Stream table: the L1STD Span sizes the L2 array; outside it is C_BAD_STREAMID', async (t) => {
  const h = new Harness();
  h.enable({ fmt: '2lvl', split: 6, log2size: 16 });
  const l2 = h.alloc.alloc(16 * 64);
  h.writeL1std(0, 5, l2); // 2^(5-1) = 16 STEs for StreamIDs 0..15
  h.writeSte(h.sid, { Config: BYPASS }, l2 + h.sid * 64);
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 0 });
  h.board.sysmem.write32(DATA, 77);
  t.equal(h.read32(DATA), 77, 'StreamID 8 through L1STD[0] and L2 index 8');
  h.writeL1std(0, 3, l2); // now only 4 STEs
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 1 });
  t.equal(h.read32(DATA), 77, 'a leaf CFGI_STE keeps the cached L1STD');
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 0 });
  t.equal(h.read32(DATA), 'C_BAD_STREAMID', 'L2 index 8 >= 2^(Span-1)');
  h.writeL1std(0, 0, 0);
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 0 });
  t.equal(h.read32(DATA), 'C_BAD_STREAMID', 'Span 0: invalid');
  h.writeL1std(0, 8, l2);
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 0 });
  t.equal(h.read32(DATA), 'C_BAD_STREAMID', 'Span > SPLIT + 1');
  t.equal(h.eventNames().length, 3);
});

t.test('an STE fetch that aborts gives F_STE_FETCH with FetchAddr, and is not cached', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: BYPASS });
  h.board.faults.failNth('smmuv3.ste_fetch', 1);
  t.equal(h.read32(DATA), 'F_STE_FETCH');
  const [e] = h.events();
  t.equal(e?.EventType, EVT.F_STE_FETCH);
  t.equal(e!['FetchAddr']! * 8, h.steAddr(h.sid));
  h.board.sysmem.write32(DATA, 9);
  t.equal(h.read32(DATA), 9, 'the next transaction fetches again and succeeds');
  const far = new Harness();
  far.enable();
  far.w32('CR0', 0xc);
  far.w64('STRTAB_BASE', 0x9000_0000); // nothing decodes there
  far.w32('CR0', 0xd);
  far.cmd('CFGI_STE_RANGE', { Range: 31 });
  t.equal(far.read32(DATA), 'F_STE_FETCH', 'a fetch from unbacked memory aborts too');
});

t.test('a SubstreamID with stage 1 disabled is C_BAD_SUBSTREAMID', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: BYPASS });
  t.equal(h.read32(DATA, { pasid: 3 }), 'C_BAD_SUBSTREAMID');
  const [e] = h.events();
  t.equal(e?.EventType, EVT.C_BAD_SUBSTREAMID);
  t.equal(e?.['SubstreamID'], 3);
  t.equal(STRTAB % 64, 0);
});
