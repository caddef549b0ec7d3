import t from 'tap';
import { OPCODE, type DescriptorInput } from '../../../devices/dma-engine/descriptor.ts';
import type { DmaEngineOptions } from '../../../devices/dma-engine/dma-engine.ts';
import { PRI, PRI_CTRL, PRI_STATUS } from '../../../src/pci/caps/pri.ts';
import { pattern, setup, type Fixture } from './fixture.ts';

const PAGE = 4096;
const PASID = 5;
const SRC = 0x10_0000;
const DST = 0x20_0000;
const CR = 0x30_0000;

/**
 * SVA: ATS, PASID and PRI enabled, WQs shared (descriptors carry PASID 5),
 * source and completion records mapped for PASID 5, destinations not: the
 * engine has to page-fault them in.
 */
function sva(opts: DmaEngineOptions = {}, allocation = 16) {
  const f = setup(opts);
  f.enableSva(allocation);
  const src = f.ram(0x10_0000);
  const cr = f.ram(0x30_0000);
  f.agent.map(f.rid, PASID, SRC, src, 4 * PAGE);
  f.agent.map(f.rid, PASID, CR, cr, PAGE);
  f.mem.writeFrom(src, pattern(4 * PAGE));
  for (let wq = 0; wq < f.dev.workQueues.length; wq++) f.configWq(wq, { shared: true });
  const fill = (dst: number, len: number, slot: number): DescriptorInput => ({
    op: OPCODE.FILL, pasid: PASID, pattern: 0x5a5a5a5a5a5a5a5an, dst, length: len, rcr: true, completion: CR + 32 * slot,
  });
  const copy = (dst: number, len: number, slot: number): DescriptorInput => ({
    op: OPCODE.MEMMOVE, pasid: PASID, src: SRC, dst, length: len, rcr: true, completion: CR + 32 * slot,
  });
  const rec = (slot: number) => f.record(cr + 32 * slot);
  const ctrl = (v: number) => f.cfgWrite(f.priOff + PRI.CTRL, 2, v);
  return { ...f, fill, copy, rec, ctrl };
}

/** What the device reads at `iova` in PASID 5 now. */
function readBack(f: Fixture, iova: number, len: number): Uint8Array | string {
  const r = f.dev.dmaRead(BigInt(iova), len, { pasid: PASID });
  return r.ok ? r.data! : r.fault;
}

t.test('a descriptor touching unmapped pages sends page requests, waits for each response, retries and completes', async (t) => {
  const f = sva();
  f.submit(0, f.copy(DST, 2 * PAGE, 0));
  f.run();
  t.equal(f.rec(0).statusName, 'SUCCESS');
  t.same(f.agent.pageRequests.map((m) => [m.addr, m.pasid, m.read, m.write, m.last, m.prgIndex]), [
    [DST, PASID, false, true, true, 0],
    [DST + PAGE, PASID, false, true, true, 0],
  ]);
  t.ok(f.board.now() >= 2 * 2000, 'two response delays');
  t.same(readBack(f, DST, 2 * PAGE), pattern(2 * PAGE));
  t.equal(f.counter('pri.requests'), 2);
  t.equal(f.counter('pri.groups'), 2);
  t.equal(f.counter('pri.responses'), 2);
  t.equal(f.dev.pri.outstanding, 0);
});

t.test('consecutive missing pages go out as one group: one PRG index, Last on the final request', async (t) => {
  const f = sva({ atsRequestUnits: 4, maxPrgPages: 3 });
  f.submit(0, f.fill(DST, 4 * PAGE, 0));
  f.run();
  t.equal(f.rec(0).statusName, 'SUCCESS');
  t.same(f.agent.pageRequests.map((m) => [m.addr, m.last, m.prgIndex]), [
    [DST, false, 0],
    [DST + PAGE, false, 0],
    [DST + 2 * PAGE, true, 0],
    [DST + 3 * PAGE, true, 0],
  ], 'a group of three (maxPrgPages), then one');
  t.equal(f.counter('pri.groups'), 2);
  t.same(readBack(f, DST + 4 * PAGE - 8, 8), new Uint8Array(8).fill(0x5a));
});

t.test('page requests outstanding never exceed the allocation; further groups wait for credits', async (t) => {
  const f = sva({ atsRequestUnits: 4 }, 2);
  let max = 0;
  f.board.tracer.on('dma-engine.pri.request', () => {
    max = Math.max(max, f.dev.pri.outstanding);
  });
  f.submit(0, f.fill(DST, 4 * PAGE, 0)); // a four-page group, trimmed to the allocation
  f.submit(1, f.fill(DST + 0x30_0000, 8, 1));
  f.submit(2, f.fill(DST + 0x40_0000, 8, 2));
  f.run();
  for (const s of [0, 1, 2]) t.equal(f.rec(s).statusName, 'SUCCESS', `descriptor ${s}`);
  t.ok(max <= 2, `at most 2 outstanding (saw ${max})`);
  const times = f.agent.pageRequests.map((m) => m.time);
  t.ok(times[2]! > times[0]!, 'the third request waited for a response');
  t.equal(f.dev.pageRequests.queued, 0);
  t.equal(f.dev.pri.outstanding, 0);
});

t.test('raising the allocation releases a waiting group at once', async (t) => {
  const f = sva({}, 1);
  f.agent.autoRespond = false;
  f.submit(0, f.fill(DST, 8, 0));
  f.submit(1, f.fill(DST + 0x30_0000, 8, 1));
  f.board.scheduler.runUntil(10_000);
  t.equal(f.agent.pageRequests.length, 1);
  t.equal(f.dev.pageRequests.queued, 1);
  f.cfgWrite(f.priOff + PRI.ALLOC_REQ, 4, 2);
  t.equal(f.agent.pageRequests.length, 2);
});

t.test('Invalid Request fails the descriptor: PAGE_FAULT, PRI_INVALID, the address and the direction', async (t) => {
  const f = sva();
  f.agent.policy = () => 'invalid';
  f.submit(0, f.copy(DST + 0x100, 64, 0));
  f.run();
  const r = f.rec(0);
  t.equal(r.statusName, 'PAGE_FAULT');
  t.equal(r.faultName, 'PRI_INVALID');
  t.equal(r.faultAddr, DST + 0x100);
  t.ok(r.faultWrite);
  t.equal(r.bytes, 0);
  t.equal(f.priStatus() & (PRI_STATUS.RF | PRI_STATUS.UPRGI), 0, 'not a failure of the interface');
});

t.test('Response Failure sets RF, fails the descriptor and stops page requests until PRI Reset', async (t) => {
  const f = sva();
  f.agent.policy = () => 'failure';
  f.submit(0, f.fill(DST, 8, 0));
  f.run();
  t.equal(f.rec(0).faultName, 'PRI_FAILURE');
  t.equal(f.priStatus() & PRI_STATUS.RF, PRI_STATUS.RF);
  f.agent.policy = () => 'success';
  f.submit(0, f.fill(DST + PAGE, 8, 1));
  f.run();
  t.equal(f.rec(1).faultName, 'PRI_FAILURE', 'no page request while halted');
  t.equal(f.agent.pageRequests.length, 1);
  f.cfgWrite(f.priOff + PRI.STATUS, 2, PRI_STATUS.RF);
  t.equal(f.priStatus() & PRI_STATUS.RF, 0, 'RF is RW1C');
  f.submit(0, f.fill(DST + PAGE, 8, 2));
  f.run();
  t.equal(f.rec(2).faultName, 'PRI_FAILURE', 'clearing RF alone does not restart the interface');
  f.ctrl(0);
  f.ctrl(PRI_CTRL.RESET);
  f.ctrl(PRI_CTRL.ENABLE);
  f.submit(0, f.fill(DST + PAGE, 8, 3));
  f.run();
  t.equal(f.rec(3).statusName, 'SUCCESS', 'after a PRI Reset page requests flow again');
});

t.test('a response with an unknown PRG index (or another PASID) sets UPRGI and is otherwise ignored', async (t) => {
  const f = sva();
  f.agent.sendResponse(f.rid, 77, PASID, 'success');
  t.equal(f.priStatus() & PRI_STATUS.UPRGI, PRI_STATUS.UPRGI);
  f.cfgWrite(f.priOff + PRI.STATUS, 2, PRI_STATUS.UPRGI);
  t.equal(f.priStatus() & PRI_STATUS.UPRGI, 0);
  f.agent.autoRespond = false;
  f.submit(0, f.fill(DST, 8, 0));
  f.board.scheduler.runUntil(10_000);
  const m = f.agent.pageRequests[0]!;
  f.agent.sendResponse(f.rid, m.prgIndex, PASID + 1, 'success');
  t.equal(f.priStatus() & PRI_STATUS.UPRGI, PRI_STATUS.UPRGI, 'right index, wrong PASID');
  t.equal(f.dev.pri.outstanding, 1, 'the group still waits');
  f.agent.respond([m]);
  f.run();
  t.equal(f.rec(0).statusName, 'SUCCESS');
  t.equal(f.counter('pri.unexpected'), 2);
});

t.test('with no response the descriptor fails PRI_TIMEOUT; the request stays outstanding until its late response', async (t) => {
  const f = sva({ priTimeoutNs: 50_000 });
  f.agent.autoRespond = false;
  f.submit(0, f.fill(DST, 8, 0));
  f.run();
  t.equal(f.rec(0).faultName, 'PRI_TIMEOUT');
  t.ok(f.board.now() >= 50_000);
  t.equal(f.dev.pri.outstanding, 1, 'credits still held');
  f.agent.respond([f.agent.pageRequests[0]!]);
  t.equal(f.dev.pri.outstanding, 0);
  t.equal(f.priStatus() & PRI_STATUS.UPRGI, 0, 'a late response is not unexpected');
  t.equal(f.counter('pri.timeouts'), 1);
});

t.test('clearing PRI Enable fails queued groups; Reset drops outstanding ones and the interface reads Stopped', async (t) => {
  const f = sva({}, 1);
  f.agent.autoRespond = false;
  f.submit(0, f.fill(DST, 8, 0));
  f.submit(1, f.fill(DST + 0x30_0000, 8, 1));
  f.board.scheduler.runUntil(10_000);
  t.equal(f.dev.pageRequests.queued, 1);
  f.ctrl(0);
  f.board.scheduler.runUntil(20_000);
  t.equal(f.rec(1).faultName, 'PRI_STOPPED', 'the queued group failed');
  t.equal(f.rec(0).status, 0, 'the sent one still waits for its response');
  t.equal(f.priStatus() & PRI_STATUS.STOPPED, 0, 'not Stopped with a request outstanding');
  f.ctrl(PRI_CTRL.RESET);
  t.equal(f.priStatus() & PRI_STATUS.STOPPED, PRI_STATUS.STOPPED);
  f.run();
  t.equal(f.rec(0).faultName, 'PRI_STOPPED');
  t.equal(f.dev.pri.outstanding, 0);
});

t.test('dmaRead/dmaWrite take the same path: a page request runs virtual time until the response, then retries', async (t) => {
  const f = sva();
  const before = f.board.now();
  t.same(f.dev.dmaWrite(BigInt(DST), new Uint8Array([1, 2, 3]), { pasid: PASID }), { ok: true });
  t.ok(f.board.now() - before >= 2000, 'the response delay passed');
  t.same(readBack(f, DST, 3), new Uint8Array([1, 2, 3]));
  f.agent.policy = () => 'invalid';
  t.same(f.dev.dmaRead(BigInt(DST + PAGE), 4, { pasid: PASID }), { ok: false, fault: 'PRI_INVALID' });
  f.agent.autoRespond = false;
  t.same(f.dev.dmaRead(BigInt(DST + 2 * PAGE), 4, { pasid: PASID }), { ok: false, fault: 'PRI_TIMEOUT' });
  f.ctrl(0);
  t.same(f.dev.dmaRead(BigInt(DST + 3 * PAGE), 4, { pasid: PASID }), { ok: false, fault: 'ATS_NO_TRANSLATION' });
  t.same(f.dev.dmaRead(BigInt(DST), 4, { pasid: 1 << 20 }), { ok: false, fault: 'PASID_INVALID' });
  t.same(f.dev.dmaRead(-1n, 4), { ok: false, fault: 'INVALID_ADDRESS' });
});

t.test('Success responses that map nothing are retried a bounded number of rounds (PRI_RETRIES)', async (t) => {
  const f = sva({ timing: { maxPriRetries: 2 } });
  f.agent.mapOnSuccess = false;
  f.submit(0, f.fill(DST, 8, 0));
  f.run();
  t.equal(f.rec(0).faultName, 'PRI_RETRIES');
  t.equal(f.agent.pageRequests.length, 2);
});

t.test('injection on PRG responses: drop, delay, wrong index, Response Failure', async (t) => {
  const f = sva({ priTimeoutNs: 40_000 });
  const p = f.dev.points['dma-engine.pri.response'];
  const run = (action: Parameters<typeof p.arm>[0], slot: number) => {
    p.arm(action);
    f.submit(0, f.fill(DST + slot * PAGE, 8, slot));
    f.run();
    p.disarm();
    return f.rec(slot);
  };
  t.equal(run(() => ({ kind: 'drop' }), 0).faultName, 'PRI_TIMEOUT', 'dropped');
  const t0 = f.board.now();
  t.equal(run(() => ({ kind: 'delay', ns: 7000 }), 1).statusName, 'SUCCESS', 'delayed');
  t.ok(f.board.now() - t0 >= 9000);
  t.equal(run(() => ({ kind: 'corrupt', xorLo: 0x100 }), 2).faultName, 'PRI_TIMEOUT', 'wrong index');
  t.equal(f.priStatus() & PRI_STATUS.UPRGI, PRI_STATUS.UPRGI);
  t.equal(run(() => ({ kind: 'fail' }), 3).faultName, 'PRI_FAILURE', 'turned into Response Failure');
  t.equal(f.priStatus() & PRI_STATUS.RF, PRI_STATUS.RF);
  t.equal(p.injected, 4);
});

t.test('injection: a page request lost on the way up times out', async (t) => {
  const f = sva({ priTimeoutNs: 30_000 });
  f.dev.points['dma-engine.pri.request'].arm(() => ({ kind: 'drop' }));
  f.submit(0, f.fill(DST, 8, 0));
  f.run();
  t.equal(f.rec(0).faultName, 'PRI_TIMEOUT');
  t.equal(f.agent.pageRequests.length, 0);
});
