import fc from 'fast-check';
import t from 'tap';
import { OPCODE } from '../../../devices/dma-engine/descriptor.ts';
import { DMAE_REGS_SIZE } from '../../../devices/dma-engine/regs.ts';
import type { TraceRecord } from '../../../src/trace/tracer.ts';
import { stringifyExact } from '../../../src/trace/chrome-trace.ts';
import { pattern, setup } from './fixture.ts';

const PAGE = 4096;
const PASID = 5;
const SRC = 0x10_0000;
const DST = 0x20_0000;
const CR = 0x30_0000;

/** An SVA scenario: faults in, invalidation, an error; returns its trace as text. */
function scenario(): { trace: string[]; names: Set<string>; f: ReturnType<typeof setup> } {
  const f = setup({ atsRequestUnits: 2 });
  const trace: string[] = [];
  const names = new Set<string>();
  f.board.tracer.on('*', (r: TraceRecord) => {
    names.add(r.name);
    trace.push(`${r.ts} ${r.name} ${stringifyExact(r.args)}${r.dur !== undefined ? ` dur=${r.dur}` : ''}`);
  });
  f.enableSva(8);
  f.agent.map(f.rid, PASID, SRC, f.ram(0x10_0000), 2 * PAGE);
  f.agent.map(f.rid, PASID, CR, f.ram(0x30_0000), PAGE);
  f.mem.writeFrom(f.ram(0x10_0000), pattern(2 * PAGE));
  f.configWq(0, { shared: true });
  f.submit(0, { op: OPCODE.MEMMOVE, pasid: PASID, src: SRC, dst: DST, length: 2 * PAGE, rcr: true, completion: CR });
  f.run();
  f.agent.invalidate(f.rid, { addr: DST, pasid: PASID, size: 2 * PAGE, itag: 4 });
  f.dev.points['dma-engine.pri.response'].arm(() => ({ kind: 'corrupt', xorLo: 1 }));
  f.submit(0, { op: OPCODE.FILL, pasid: PASID, dst: 0x90_0000, length: 8 });
  f.dev.dmaRead(BigInt(SRC), 8, { pasid: PASID });
  f.run();
  return { trace, names, f };
}

t.test('the engine leaves typed trace events for descriptors, the ATC, page requests and errors; counters add up', async (t) => {
  const { names, f } = scenario();
  for (const n of [
    'dma-engine.desc.start', 'dma-engine.desc.complete', 'dma-engine.atc.miss', 'dma-engine.atc.fill', 'dma-engine.atc.hit',
    'dma-engine.atc.invalidate', 'dma-engine.pri.request', 'dma-engine.pri.response', 'dma-engine.error', 'fault.inject',
  ]) t.ok(names.has(n), n);
  const snap = f.board.counters.snapshot('dmae.');
  t.equal(snap['dmae.descriptors'], 2);
  t.equal(snap['dmae.desc.ok'], 1);
  t.equal(snap['dmae.desc.failed'], 1);
  t.equal(snap['dmae.pri.unexpected'], 1);
  t.equal(snap['dmae.atc.invalidate'], 1);
  t.ok(snap['dmae.atc.hit']! > 0 && snap['dmae.atc.miss']! > 0 && snap['dmae.ats.requests']! > 0);
});

t.test('the same scenario gives the same trace, event for event', async (t) => {
  t.same(scenario().trace, scenario().trace);
});

t.test('random descriptors, register writes and capability changes never throw and always drain', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('desc' as const), wq: fc.integer({ min: 0, max: 3 }), bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }), rcr: fc.boolean(), op: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('reg' as const), off: fc.integer({ min: 0, max: DMAE_REGS_SIZE / 4 - 1 }), value: fc.integer({ min: 0, max: 0xffffffff }) }),
    fc.record({ kind: fc.constant('cfg' as const), which: fc.integer({ min: 0, max: 3 }), value: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ kind: fc.constant('dma' as const), addr: fc.integer({ min: 0, max: 0x100_0000 }), len: fc.integer({ min: 0, max: 3 * PAGE }), pasid: fc.integer({ min: -1, max: 8 }) }),
    fc.record({ kind: fc.constant('inv' as const), addr: fc.integer({ min: 0, max: 0x40 }), pasid: fc.integer({ min: -1, max: 8 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
      const f = setup({ priTimeoutNs: 100_000, timing: { atsTimeoutNs: 10_000 } });
      f.enableSva(4);
      f.agent.map(f.rid, PASID, CR, f.ram(0x30_0000), PAGE);
      f.agent.map(f.rid, -1, CR, f.ram(0x30_0000), PAGE);
      for (let wq = 0; wq < 4; wq++) f.configWq(wq, { shared: wq % 2 === 0, ring: { base: 0x40_0000, size: 8 } });
      for (const o of ops) {
        if (o.kind === 'desc') {
          const b = o.bytes.slice();
          b[0] = o.op;
          if (o.rcr) {
            b[1] |= 1;
            new DataView(b.buffer).setBigUint64(8, BigInt(CR + 32 * (b[2]! & 0x7f)), true);
          }
          f.submit(o.wq, b);
        } else if (o.kind === 'reg') {
          f.wreg32(o.off * 4, o.value);
        } else if (o.kind === 'cfg') {
          const off = [f.atsOff + 6, f.priOff + 4, f.pasidOff + 6, f.priOff + 0xc][o.which]!;
          f.cfgWrite(off, o.which === 3 ? 4 : 2, o.value);
        } else if (o.kind === 'dma') {
          f.dev.dmaRead(BigInt(o.addr), o.len, o.pasid >= 0 ? { pasid: o.pasid } : undefined);
        } else {
          f.agent.invalidate(f.rid, { addr: o.addr * PAGE, pasid: o.pasid });
        }
        f.board.scheduler.runUntil(f.board.now() + 5000);
      }
      f.board.scheduler.run(1_000_000);
      return f.board.scheduler.pendingCount === 0 && f.dev.timers.pending === 0;
    }),
    { numRuns: 60, seed: 42 },
  );
  t.pass('no exception');
});
