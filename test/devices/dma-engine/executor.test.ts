import t from 'tap';
import { FAULT_REASON, OPCODE } from '../../../devices/dma-engine/descriptor.ts';
import { DMAE_ERROR, regField, WQ_REG, WQ_REGISTERS } from '../../../devices/dma-engine/regs.ts';
import type { TraceRecord } from '../../../src/trace/tracer.ts';
import { CR, DST, PAGE, RING, SRC, buffers, mapBuf, pattern, setup, type Fixture } from './fixture.ts';

/**
 * The executor's state machine, seen from outside: how many scheduler
 * events each path takes and what each wait costs in virtual time, with the
 * default timing (setupNs 100, 0.125 ns per byte, atsLatencyNs 500). The
 * test agent charges nothing for its walks, so every figure below is the
 * engine's own.
 */

/** Run until idle; the events executed and the descriptor's own duration (its desc.complete trace). */
function measure(f: Fixture): { events: number; ns: number } {
  const done: TraceRecord[] = [];
  const listener = (r: TraceRecord) => void done.push(r);
  f.board.tracer.on('dma-engine.desc.complete', listener);
  const before = f.board.scheduler.executed;
  f.run();
  f.board.tracer.off('dma-engine.desc.complete', listener);
  return { events: f.board.scheduler.executed - before, ns: done.length === 1 ? done[0]!.dur! : NaN };
}

const copy = (slot: number) => ({ op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: PAGE, rcr: true, completion: CR + 32 * slot });

t.test('with a warm ATC a descriptor takes two events, dispatch and settling, and setupNs plus its bytes', async (t) => {
  const f = setup();
  buffers(f);
  f.enableAts();
  f.configWq(0);
  f.submit(0, copy(0));
  f.run();
  f.submit(0, copy(1));
  t.same(measure(f), { events: 2, ns: 100 + 2 * PAGE * 0.125 });
  t.equal(f.record(f.ram(0x30_0000) + 32).statusName, 'SUCCESS');
});

t.test('a ring descriptor reads its slot in the dispatch event: still two events', async (t) => {
  const f = setup();
  buffers(f);
  mapBuf(f, RING, 0x40_0000, PAGE);
  f.enableAts();
  f.configWq(0, { ring: { base: RING, size: 4 } });
  f.ringWrite(f.ram(0x40_0000), 0, copy(0));
  f.ringWrite(f.ram(0x40_0000), 1, copy(1));
  f.doorbell(0, 1);
  f.run();
  f.doorbell(0, 2);
  t.same(measure(f), { events: 2, ns: 100 + (64 + 2 * PAGE) * 0.125 }, 'the slot is 64 bytes more');
});

t.test('each ATC miss waits a round trip that also pays what the job owed; the record miss comes after settling', async (t) => {
  const f = setup();
  buffers(f);
  f.enableAts();
  f.configWq(0);
  f.submit(0, copy(0));
  // dispatch 100, source miss 0 + 500, destination miss 512 (the source's bytes) + 500,
  // settling 512 (the destination's), record miss 500; the record's own 4 ns are not waited.
  t.same(measure(f), { events: 5, ns: 100 + 500 + 1012 + 512 + 500 });
});

t.test('a page request parks the job until its group ends; the access resumes one event later', async (t) => {
  const f = setup();
  f.enableSva();
  f.configWq(0, { shared: true });
  f.agent.map(f.rid, 5, CR, f.ram(0x30_0000), PAGE);
  f.submit(0, { op: OPCODE.FILL, pasid: 5, pattern: 0x1234n, dst: DST, length: PAGE, rcr: true, completion: CR });
  // dispatch 100, destination miss 500 (no permission: page request), the agent's response 2000,
  // resume 0, miss again 500, settling 512, record miss 500. The agent's response is an event of its own.
  t.same(measure(f), { events: 7, ns: 100 + 500 + 2000 + 0 + 500 + 512 + 500 });
  t.equal(f.record(f.ram(0x30_0000)).statusName, 'SUCCESS');
  t.equal(f.agent.pageRequests.length, 1);
});

t.test('a ring slot whose address space the PASID capability refuses is never read: the WQ halts there', async (t) => {
  const f = setup();
  mapBuf(f, RING, 0x40_0000, PAGE, 7);
  f.configWq(0, { ring: { base: RING, size: 4 }, pasid: 7 });
  f.doorbell(0, 1);
  f.run();
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.RING_FETCH_FAULT);
  t.equal(e.info, FAULT_REASON.PASID_INVALID, 'PASID is not enabled');
  t.equal(e.addr, RING);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'HALTED'), 1);
  t.equal(f.wqReg(0, WQ_REG.HEAD), 0);
  t.equal(f.counter('descriptors'), 0, 'no descriptor started');
  t.equal(f.dev.pageRequests.outstanding + f.agent.translationRequests.length, 0, 'nothing went out');
});

t.test('a lost Translation Completion for the ring slot halts the WQ after the completion timeout', async (t) => {
  const f = setup();
  buffers(f);
  mapBuf(f, RING, 0x40_0000, PAGE);
  f.enableAts();
  f.dev.points['dma-engine.ats.completion'].arm(() => ({ kind: 'drop' }));
  f.configWq(0, { ring: { base: RING, size: 4 } });
  f.ringWrite(f.ram(0x40_0000), 0, copy(0));
  f.doorbell(0, 1);
  f.run();
  t.equal(f.board.now(), 100 + 500 + 50_000, 'dispatch, the round trip, then atsTimeoutNs');
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.RING_FETCH_FAULT);
  t.equal(e.info, FAULT_REASON.ATS_TIMEOUT);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'BUSY'), 0, 'the WQ is idle again');
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'HALTED'), 1);
});

t.test('a lost Translation Completion for the record goes to the error register; the descriptor still completes', async (t) => {
  const f = setup();
  const { src, dst, cr } = buffers(f);
  f.mem.writeFrom(src, pattern(PAGE));
  f.enableAts();
  f.dev.points['dma-engine.ats.completion'].arm((_hit, ctx) => (ctx?.['addr'] === CR ? { kind: 'drop' } : undefined));
  f.configWq(0, { vector: 1 });
  f.submit(0, { ...copy(0), rci: true });
  const m = measure(f);
  t.equal(m.ns, 100 + 500 + 1012 + 512 + 500 + 50_000, 'settled, then the record waits out the completion timeout');
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.COMPLETION_WRITE_FAULT);
  t.equal(e.info, FAULT_REASON.ATS_TIMEOUT);
  t.equal(e.addr, CR);
  t.ok(e.write);
  t.equal(f.record(cr).status, 0, 'no record');
  const b = new Uint8Array(PAGE);
  f.mem.readInto(dst, b);
  t.same(b, pattern(PAGE), 'the data moved');
  t.equal(f.msiCount(1), 1, 'the completion interrupt');
  t.equal(f.counter('desc.ok'), 1, 'the descriptor itself succeeded');
});
