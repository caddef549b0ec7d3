import t from 'tap';
import { OPCODE } from '../../../devices/dma-engine/descriptor.ts';
import type { AtsTranslation } from '../../../src/pci/ats-messages.ts';
import type { TraceRecord } from '../../../src/trace/tracer.ts';
import { CR, DST, PAGE, SRC, mapBuf, pattern, setup, type Fixture } from './fixture.ts';

function entry(ua: number, pa: number, size: number, extra: Partial<AtsTranslation> = {}): AtsTranslation {
  return {
    translatedAddr: pa, untranslatedAddr: ua, size, read: true, write: true, exec: false, priv: false,
    untranslatedOnly: false, global: false, ...extra,
  };
}

function transactions(f: Fixture): { at: string; addr: number; write: boolean }[] {
  const out: { at: string; addr: number; write: boolean }[] = [];
  f.board.tracer.on('dma.transaction', (r) => out.push(r.args));
  return out;
}

t.test('with ATS enabled the first access misses and sends one Translation Request; later ones hit and go out Translated', async (t) => {
  const f = setup();
  const pa = mapBuf(f, SRC, 0x10_0000, PAGE);
  f.mem.writeFrom(pa, pattern(256));
  f.enableAts();
  const txns = transactions(f);
  const r1 = f.dev.dmaRead(BigInt(SRC), 64);
  const r2 = f.dev.dmaRead(BigInt(SRC + 128), 64);
  t.same(r1, { ok: true, data: pattern(64) });
  t.same(r2, { ok: true, data: pattern(192).subarray(128) });
  t.equal(f.agent.translationRequests.length, 1);
  t.same(f.agent.translationRequests[0], {
    requesterId: f.rid, pasid: -1, privileged: false, exec: false, addr: SRC, length: PAGE, noWrite: true,
  });
  t.equal(f.counter('atc.miss'), 1);
  t.equal(f.counter('atc.fill'), 1);
  t.equal(f.counter('atc.hit'), 2);
  t.same(txns.map((x) => [x.at, x.addr]), [['translated', pa], ['translated', pa + 128]]);
  const w = f.dev.dmaWrite(BigInt(SRC + 8), new Uint8Array([0xaa, 0xbb]));
  t.same(w, { ok: true });
  t.equal(f.mem.read16(pa + 8), 0xbbaa);
  t.equal(f.agent.translationRequests.length, 1, 'the read-write entry serves the write too');
});

t.test('descriptors translate through the ATC: round trips cost virtual time the first time only', async (t) => {
  const f = setup();
  const src = mapBuf(f, SRC, 0x10_0000, 2 * PAGE);
  const dst = mapBuf(f, DST, 0x20_0000, 2 * PAGE);
  const cr = mapBuf(f, CR, 0x30_0000, PAGE);
  f.mem.writeFrom(src, pattern(2 * PAGE));
  f.enableAts();
  f.configWq(0);
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 2 * PAGE, rcr: true, completion: CR });
  f.run();
  const first = f.board.now();
  t.equal(f.record(cr).statusName, 'SUCCESS');
  const b = new Uint8Array(2 * PAGE);
  f.mem.readInto(dst, b);
  t.same(b, pattern(2 * PAGE));
  t.equal(f.agent.translationRequests.length, 5, 'two source pages, two destination pages, the record');
  t.ok(first >= 5 * 500, 'each round trip costs atsLatencyNs');
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 2 * PAGE, rcr: true, completion: CR + 32 });
  f.run();
  t.equal(f.agent.translationRequests.length, 5, 'all hits the second time');
  t.ok(f.board.now() - first < first, 'and faster');
  t.equal(f.record(cr + 32).statusName, 'SUCCESS');
});

t.test('an ATC entry stays, stale, after the mapping changes, until an Invalidation Request drops it', async (t) => {
  const f = setup({ invalidationDelayNs: 1000 });
  const old = mapBuf(f, SRC, 0x10_0000, PAGE);
  f.mem.writeFrom(old, new Uint8Array([1, 1, 1, 1]));
  f.enableAts();
  t.same(f.dev.dmaRead(BigInt(SRC), 4), { ok: true, data: new Uint8Array([1, 1, 1, 1]) });
  const fresh = mapBuf(f, SRC, 0x11_0000, PAGE);
  f.mem.writeFrom(fresh, new Uint8Array([2, 2, 2, 2]));
  t.same(f.dev.dmaRead(BigInt(SRC), 4), { ok: true, data: new Uint8Array([1, 1, 1, 1]) }, 'stale: nobody invalidated');
  t.ok(f.agent.invalidate(f.rid, { addr: SRC, itag: 3 }));
  t.equal(f.dev.atc.count, 0, 'dropped when the request arrives');
  t.same(f.dev.dmaRead(BigInt(SRC), 4), { ok: true, data: new Uint8Array([2, 2, 2, 2]) });
  t.equal(f.agent.invCompletions.length, 0, 'the completion comes later');
  f.run();
  t.same(f.agent.invCompletions, [{ rid: f.rid, itags: 1 << 3, cc: 1, time: 1000 }]);
  t.equal(f.counter('atc.invalidate'), 1);
  t.equal(f.counter('atc.invalidated'), 1);
});

t.test('an invalidation outside the entry leaves it; unmapping then invalidating makes the access fail', async (t) => {
  const f = setup();
  mapBuf(f, SRC, 0x10_0000, 2 * PAGE);
  f.enableAts();
  f.dev.dmaRead(BigInt(SRC), 8);
  f.agent.invalidate(f.rid, { addr: SRC + PAGE });
  t.equal(f.dev.atc.count, 1);
  f.agent.unmap(f.rid, -1, SRC, PAGE);
  f.agent.invalidate(f.rid, { addr: SRC, size: 2 * PAGE });
  t.same(f.dev.dmaRead(BigInt(SRC), 8), { ok: false, fault: 'ATS_NO_TRANSLATION' }, 'R=W=0 and no PRI');
});

t.test('more invalidations than the Invalidate Queue Depth are queued: at most the depth are in process', async (t) => {
  const f = setup({ invalidateQueueDepth: 2, invalidationDelayNs: 1000 });
  f.enableAts();
  for (let i = 0; i < 5; i++) f.agent.invalidate(f.rid, { addr: SRC, itag: i });
  f.run();
  t.same(f.agent.invCompletions.map((c) => [c.itags, c.time]), [[1, 1000], [2, 1000], [4, 2000], [8, 2000], [16, 3000]]);
  t.equal(f.counter('ats.inv-overflow'), 3);
  t.equal(f.dev.invalidations.pending, 0);
});

t.test('a read-only translation serves reads; a write asks again and, still refused without PRI, fails', async (t) => {
  const f = setup();
  mapBuf(f, SRC, 0x10_0000, PAGE, -1, 'r');
  f.enableAts();
  t.ok(f.dev.dmaRead(BigInt(SRC), 8).ok);
  t.same(f.dev.dmaWrite(BigInt(SRC), new Uint8Array(8)), { ok: false, fault: 'ATS_NO_TRANSLATION' });
  t.equal(f.agent.translationRequests.length, 2);
  t.equal(f.agent.translationRequests[1]!.noWrite, false, 'asked for write permission');
  t.ok(f.dev.dmaRead(BigInt(SRC), 8).ok, 'the read-only entry still serves reads');
  t.equal(f.agent.translationRequests.length, 2);
});

t.test('the STU sets the request granularity; entries smaller than it are malformed', async (t) => {
  const f = setup();
  const pa = mapBuf(f, SRC, 0x10_0000, 4 * PAGE);
  f.enableAts(1); // STU = 8 KiB
  t.same(f.dev.dmaRead(BigInt(SRC + PAGE), 8), { ok: false, fault: 'ATS_MALFORMED' }, '4 KiB entries from the agent');
  t.equal(f.agent.translationRequests[0]!.addr, SRC);
  t.equal(f.agent.translationRequests[0]!.length, 2 * PAGE);
  t.equal(f.dev.atc.count, 0, 'nothing of a malformed completion is cached');
  f.agent.translateHook = (req) => ({ status: 'SC', entries: [entry(req.addr, pa, 2 * PAGE)] });
  t.ok(f.dev.dmaRead(BigInt(SRC + PAGE), 8).ok);
  t.same(f.dev.atc.entries().map((e) => [e.untranslatedAddr, e.size]), [[SRC, 2 * PAGE]]);
  t.ok(f.dev.dmaRead(BigInt(SRC), 8).ok);
  t.equal(f.agent.translationRequests.length, 2, 'one 8 KiB entry serves both pages');
});

t.test('large translations cover many pages with one entry; misaligned ones are malformed', async (t) => {
  const f = setup();
  const pa = f.ram(0x20_0000); // 2 MiB aligned
  f.mem.writeFrom(pa + 0x1_2345, new Uint8Array([7]));
  f.agent.translateHook = () => ({ status: 'SC', entries: [entry(0x4000_0000, pa, 0x20_0000, { write: false })] });
  f.enableAts();
  t.same(f.dev.dmaRead(BigInt(0x4000_0000 + 0x1_2345), 1), { ok: true, data: new Uint8Array([7]) });
  t.ok(f.dev.dmaRead(BigInt(0x4000_0000 + 0x1f_f000), 8).ok);
  t.equal(f.agent.translationRequests.length, 1);
  f.agent.translateHook = (req) => ({ status: 'SC', entries: [entry(req.addr, pa + PAGE, 0x20_0000)] });
  t.same(f.dev.dmaRead(BigInt(0x8000_0000), 1), { ok: false, fault: 'ATS_MALFORMED' });
});

t.test('a U=1 translation makes the device use untranslated requests for that range', async (t) => {
  const f = setup();
  const pa = mapBuf(f, SRC, 0x10_0000, PAGE);
  f.mem.writeFrom(pa, pattern(16));
  f.agent.translateHook = (req) => ({ status: 'SC', entries: [entry(req.addr, 0, PAGE, { untranslatedOnly: true, read: false, write: false })] });
  f.enableAts();
  const txns = transactions(f);
  t.same(f.dev.dmaRead(BigInt(SRC), 16), { ok: true, data: pattern(16) });
  t.same(f.dev.dmaRead(BigInt(SRC), 16), { ok: true, data: pattern(16) });
  t.same(txns.map((x) => [x.at, x.addr]), [['untranslated', SRC], ['untranslated', SRC]]);
  t.equal(f.agent.translationRequests.length, 1, 'the U entry is cached');
});

t.test('a Translation Request answered UR fails the access ATS_UR, in dmaRead and in a completion record', async (t) => {
  const f = setup();
  mapBuf(f, SRC, 0x10_0000, PAGE);
  const cr = mapBuf(f, CR, 0x30_0000, PAGE);
  f.enableAts();
  f.agent.atsAllowed = false;
  t.same(f.dev.dmaRead(BigInt(SRC), 8), { ok: false, fault: 'ATS_UR' });
  f.agent.atsAllowed = true;
  f.agent.translateHook = (req) => (req.addr === CR ? { status: 'SC', entries: [entry(CR, cr, PAGE)] } : { status: 'UR', entries: [] });
  f.configWq(0);
  f.submit(0, { op: OPCODE.FILL, dst: SRC, length: 8, rcr: true, completion: CR });
  f.run();
  const r = f.record(cr);
  t.equal(r.statusName, 'PAGE_FAULT');
  t.equal(r.faultName, 'ATS_UR');
  t.equal(r.faultAddr, SRC);
});

t.test('the ATC replaces the least recently used entry', async (t) => {
  const f = setup({ atcEntries: 2 });
  mapBuf(f, SRC, 0x10_0000, 3 * PAGE);
  f.enableAts();
  const rd = (p: number) => f.dev.dmaRead(BigInt(SRC + p * PAGE), 4).ok;
  rd(0);
  rd(1);
  rd(0);
  rd(2); // evicts page 1
  t.equal(f.counter('atc.evict'), 1);
  t.equal(f.agent.translationRequests.length, 3);
  rd(0);
  t.equal(f.agent.translationRequests.length, 3, 'page 0 stayed');
  rd(1);
  t.equal(f.agent.translationRequests.length, 4, 'page 1 was evicted');
});

t.test('turning ATS off (or changing the STU) flushes the ATC, and the device goes back to untranslated requests', async (t) => {
  const f = setup();
  mapBuf(f, SRC, 0x10_0000, PAGE);
  f.enableAts();
  f.dev.dmaRead(BigInt(SRC), 4);
  f.enableAts(2);
  t.equal(f.dev.atc.count, 0);
  f.enableAts(0);
  f.dev.dmaRead(BigInt(SRC), 4);
  t.equal(f.dev.atc.count, 1);
  f.cfgWrite(f.atsOff + 6, 2, 0);
  t.equal(f.dev.atc.count, 0);
  const txns = transactions(f);
  t.ok(f.dev.dmaRead(BigInt(SRC), 4).ok);
  t.equal(txns[0]!.at, 'untranslated');
});

t.test('ATC entries are tagged by PASID and privilege', async (t) => {
  const f = setup();
  const p1 = mapBuf(f, SRC, 0x10_0000, PAGE, 1);
  const p2 = mapBuf(f, SRC, 0x11_0000, PAGE, 2);
  f.mem.write8(p1, 1);
  f.mem.write8(p2, 2);
  f.enableAts();
  f.enablePasid();
  t.same(f.dev.dmaRead(BigInt(SRC), 1, { pasid: 1 }), { ok: true, data: new Uint8Array([1]) });
  t.same(f.dev.dmaRead(BigInt(SRC), 1, { pasid: 2 }), { ok: true, data: new Uint8Array([2]) });
  t.same(f.dev.dmaRead(BigInt(SRC), 1, { pasid: 2, privileged: true }), { ok: true, data: new Uint8Array([2]) });
  t.equal(f.agent.translationRequests.length, 3);
  t.equal(f.agent.translationRequests[2]!.privileged, true);
  f.agent.invalidate(f.rid, { addr: SRC, pasid: 1 });
  t.same(f.dev.atc.entries().map((e) => e.pasid), [2, 2], 'only PASID 1 dropped');
  f.agent.invalidate(f.rid, { addr: SRC });
  t.equal(f.dev.atc.count, 0, 'an invalidation without PASID drops every PASID');
  t.same(f.dev.dmaRead(BigInt(SRC), 1, { pasid: 1 << 20 }), { ok: false, fault: 'PASID_INVALID' });
});

t.test('injection: a lost Translation Completion times out (ATS_TIMEOUT)', async (t) => {
  const f = setup({ timing: { atsTimeoutNs: 40_000 } });
  mapBuf(f, SRC, 0x10_0000, PAGE);
  const cr = mapBuf(f, CR, 0x30_0000, PAGE);
  f.enableAts();
  const p = f.dev.points['dma-engine.ats.completion'];
  p.arm((_hit, ctx) => (ctx?.['addr'] === SRC ? { kind: 'drop' } : undefined));
  t.same(f.dev.dmaRead(BigInt(SRC), 4), { ok: false, fault: 'ATS_TIMEOUT' });
  f.configWq(0);
  f.submit(0, { op: OPCODE.FILL, dst: SRC, length: 8, rcr: true, completion: CR });
  f.run();
  const r = f.record(cr);
  t.equal(r.faultName, 'ATS_TIMEOUT');
  t.ok(f.board.now() >= 40_000, 'after the completion timeout');
  t.equal(p.injected, 2);
});

t.test('injection: a corrupted Translation Completion sends the access to the wrong page, or is malformed', async (t) => {
  const f = setup();
  const pa = mapBuf(f, SRC, 0x10_0000, PAGE);
  f.mem.write8(pa, 1);
  f.mem.write8(pa + PAGE, 9);
  f.enableAts();
  const p = f.dev.points['dma-engine.ats.completion'];
  p.arm(() => ({ kind: 'corrupt', xorLo: PAGE }));
  t.same(f.dev.dmaRead(BigInt(SRC), 1), { ok: true, data: new Uint8Array([9]) }, 'the cache believes what it got');
  f.agent.invalidate(f.rid, { addr: SRC });
  p.arm(() => ({ kind: 'corrupt', xorLo: 0x10 }));
  t.same(f.dev.dmaRead(BigInt(SRC), 1), { ok: false, fault: 'ATS_MALFORMED' });
  p.arm(() => ({ kind: 'fail' }));
  t.same(f.dev.dmaRead(BigInt(SRC), 1), { ok: false, fault: 'ATS_CA' });
});

t.test('injection: a dropped Invalidation Completion never reaches the IOMMU; a delayed one arrives later', async (t) => {
  const f = setup({ invalidationDelayNs: 500 });
  f.enableAts();
  const faults: TraceRecord[] = [];
  f.board.tracer.on('fault.inject', (r) => faults.push(r));
  const p = f.dev.points['dma-engine.ats.inv-completion'];
  p.arm((hit) => (hit === 1 ? { kind: 'drop' } : { kind: 'delay', ns: 10_000 }));
  f.agent.invalidate(f.rid, { addr: SRC, itag: 1 });
  f.agent.invalidate(f.rid, { addr: SRC, itag: 2 });
  f.run();
  t.same(f.agent.invCompletions.map((c) => [c.itags, c.time]), [[4, 10_500]]);
  t.equal(faults.length, 2, 'each injection is traced');
});
