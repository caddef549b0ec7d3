import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { CR0, EVT } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness } from './harness.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const IOVA = 0x1000_0000;
const PAGE = 4096;

/** Stage 1 with CD.S = 1 (and the given CD/STE fields); IOVA is not mapped yet. */
function stalling(h: Harness, cd: Record<string, number> = {}, ste: Record<string, number> = {}) {
  const b = h.table({ stage: 1 });
  b.map(IOVA + PAGE, DATA + PAGE, PAGE, RW);
  const at = h.alloc.alloc(64);
  h.writeCd(at, h.cdFor(b, 1, { S: 1, ...cd }));
  h.writeSte(h.sid, { Config: 5, S1ContextPtr: at / 64, ...ste });
  h.board.sysmem.write32(DATA, 0x5151);
  return b;
}

/** After `ns`, read the stall event and run `then` with it (software's fault handler). */
function handler(h: Harness, then: (ev: Record<string, number>) => void, ns = 100): Record<string, number>[] {
  const seen: Record<string, number>[] = [];
  h.board.scheduler.schedule(ns, () => {
    const evs = h.events();
    seen.push(...evs);
    if (evs[0] !== undefined) then(evs[0]);
  });
  return seen;
}

t.test('CD.S: a stage 1 fault stalls with Stall = 1 and a STAG, even with CD.R == 0; CMD_RESUME retry completes it', async (t) => {
  const h = new Harness();
  h.enable();
  const b = stalling(h, { R: 0 });
  const actions: string[] = [];
  h.board.tracer.on('smmuv3.stall', (r) => void actions.push(r.args.action));
  const seen = handler(h, (ev) => {
    b.map(IOVA, DATA, PAGE, RW);
    h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ac: 1 });
  });
  t.equal(h.read32(IOVA), 0x5151, 'the retried access completes');
  t.same(seen.map((e) => [e.EventType, e['Stall'], e['InputAddr'], e['RnW']]), [[EVT.F_TRANSLATION, 1, IOVA, 1]]);
  t.equal(h.board.now(), 100, 'it waited for the handler in virtual time');
  t.equal(h.smmu.stalledTransactions, 0);
  t.equal(h.counter('stalls'), 1);
  t.equal(h.counter('stall.resumes'), 1);
  t.same(actions, ['stalled', 'retry'], 'smmuv3.stall trace events');
});

t.test('CMD_RESUME with Ac == 0: Ab == 1 aborts; Ab == 0 terminates as CD.A says', async (t) => {
  const h = new Harness();
  h.enable();
  stalling(h);
  handler(h, (ev) => h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ab: 1 }));
  t.equal(h.read32(IOVA), 'F_TRANSLATION', 'aborted');
  stalling(h, { A: 0 });
  h.cmd('CFGI_ALL');
  handler(h, (ev) => h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']! }));
  t.equal(h.read32(IOVA), 0, 'terminated with CD.A == 0: read as zero');
});

t.test('CMD_STALL_TERM aborts the stream\'s stalled transactions; a RESUME for another StreamID or STAG is ignored', async (t) => {
  const h = new Harness();
  h.enable();
  stalling(h);
  handler(h, (ev) => {
    h.cmd('RESUME', { StreamID: h.sid + 1, STAG: ev['STAG']!, Ac: 1 });
    h.cmd('RESUME', { StreamID: h.sid, STAG: (ev['STAG']! + 1) & 0xffff, Ac: 1 });
    t.equal(h.smmu.stalledTransactions, 1, 'still stalled');
    h.cmd('STALL_TERM', { StreamID: h.sid });
  });
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  t.equal(h.smmu.stalledTransactions, 0);
});

t.test('a stall nobody resumes is aborted after the stall timeout', async (t) => {
  const h = new Harness({ stallTimeoutNs: 20_000 });
  h.enable();
  stalling(h);
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  t.equal(h.board.now(), 20_000);
  t.equal(h.counter('stall.timeouts'), 1);
  const [e] = h.events();
  t.equal(e?.['Stall'], 1);
});

t.test('a retry that faults again stalls again, with a new STAG', async (t) => {
  const h = new Harness();
  h.enable();
  const b = stalling(h);
  const stags: number[] = [];
  const resume = (ev: Record<string, number>) => {
    stags.push(ev['STAG']!);
    if (stags.length === 2) b.map(IOVA, DATA, PAGE, RW);
    h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ac: 1 });
    if (stags.length === 1) handler(h, resume);
  };
  handler(h, resume);
  t.equal(h.read32(IOVA), 0x5151);
  t.equal(stags.length, 2);
  t.not(stags[0], stags[1]);
});

t.test('stalls are only for stalling configurations and recordable events', async (t) => {
  const h = new Harness();
  h.enable();
  stalling(h, {}, { S1STALLD: 1 });
  t.equal(h.read32(IOVA), 'C_BAD_CD', 'STE.S1STALLD == 1 makes CD.S == 1 ILLEGAL');
  h.events();
  stalling(h);
  h.cmd('CFGI_ALL');
  h.w32('CR0', CR0.SMMUEN | CR0.CMDQEN);
  t.equal(h.read32(IOVA), 'F_TRANSLATION', 'the event queue is disabled: no stall, terminated at once');
  t.equal(h.board.now(), 0);
  h.w32('CR0', CR0.SMMUEN | CR0.CMDQEN | CR0.EVENTQEN);
  stalling(h, {}, { EATS: 1 });
  h.cmd('CFGI_ALL');
  const c = h.dev.tr(IOVA);
  t.same([c.status, c.entries[0]?.read, c.entries[0]?.write], ['SC', false, false], 'ATS Translation Requests never stall');
  t.equal(h.board.now(), 0);
  t.same(h.events(), []);
});

t.test('STE.S2S: stage 2 translation faults stall too', async (t) => {
  const h = new Harness();
  h.enable();
  const s2 = h.table({ stage: 2, iaBits: 40 });
  h.writeSte(h.sid, { Config: 6, ...h.s2For(s2, 1), S2S: 1 });
  h.board.sysmem.write32(DATA, 0x2525);
  const seen = handler(h, (ev) => {
    s2.map(0x8000_0000, DATA, PAGE, RW);
    h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ac: 1 });
  });
  t.equal(h.read32(0x8000_0000), 0x2525);
  t.same(seen.map((e) => [e.EventType, e['S2'], e['Stall']]), [[EVT.F_TRANSLATION, 1, 1]]);
});

t.test('injection: a lost CMD_RESUME leaves the transaction to the stall timeout; a failed one aborts it', async (t) => {
  const h = new Harness({ stallTimeoutNs: 5000 });
  h.enable();
  stalling(h);
  h.board.faults.failNth('smmuv3.stall', 1, { kind: 'drop' });
  handler(h, (ev) => h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ac: 1 }));
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  t.equal(h.board.now(), 5000);
  h.board.faults.failNth('smmuv3.stall', 1);
  handler(h, (ev) => h.cmd('RESUME', { StreamID: h.sid, STAG: ev['STAG']!, Ac: 1 }));
  t.equal(h.read32(IOVA), 'F_TRANSLATION');
  t.equal(h.board.now(), 5100);
});
