import t from 'tap';
import { CR0, GERROR, IRQ_CTRL, PRI_RESP, Q_OVF, STE_CONFIG } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness, PRIQ } from './harness.ts';

const PAGE = 4096;
const ADDR = 0x7000_0000;

function responses(h: Harness) {
  return h.dev.responses.map((r) => [r.prgIndex, r.pasid, r.code]);
}

t.test('page requests become PRI queue records (§8.1): StreamID, PASID, Priv/Exec, R/W, Last, PRG index, address', async (t) => {
  const h = new Harness();
  h.enable();
  h.enablePriq();
  h.dev.pr(ADDR, { pasid: 9, privileged: true, exec: true, read: true, write: false, last: false, prgIndex: 0x1ab });
  h.dev.pr(ADDR + PAGE, { pasid: 9, write: true, prgIndex: 0x1ab });
  h.dev.pr(ADDR + 2 * PAGE, { privileged: true, exec: true, prgIndex: 3 });
  const pick = (r: Record<string, number>) => [r['StreamID'], r['SSV'], r['SubstreamID'], r['Priv'], r['Exec'], r['Read'], r['Write'], r['Last'], r['PRGIndex'], r['Address']];
  t.same(h.priRecords().map(pick), [
    [h.sid, 1, 9, 1, 1, 1, 0, 0, 0x1ab, ADDR],
    [h.sid, 1, 9, 0, 0, 0, 1, 1, 0x1ab, ADDR + PAGE],
    [h.sid, 0, 0, 0, 0, 0, 1, 1, 3, ADDR + 2 * PAGE],
  ], 'Priv and Exec only with a PASID prefix');
  t.same(h.dev.responses, [], 'nothing is answered by the SMMU itself');
  t.equal(h.counter('pri.recorded'), 3);
});

t.test('the PRI queue interrupt: the wired line without an MSI address, else the MSI; PRIQ_IRQEN gates both', async (t) => {
  const h = new Harness();
  h.enable();
  h.enablePriq();
  h.dev.pr(ADDR);
  t.same(h.irqs, [], 'PRIQ_IRQEN == 0');
  h.w32('IRQ_CTRL', IRQ_CTRL.PRIQ_IRQEN);
  h.dev.pr(ADDR);
  t.same(h.irqs, ['priq']);
  h.w32('PRIQ_IRQ_CFG0', DATA + 0x100);
  t.equal(h.r32('PRIQ_IRQ_CFG0'), 0, 'guarded while PRIQ_IRQEN == 1');
  h.w32('IRQ_CTRL', 0);
  h.w64('PRIQ_IRQ_CFG0', DATA + 0x100);
  h.w32('PRIQ_IRQ_CFG1', 0x77);
  h.w32('IRQ_CTRL', IRQ_CTRL.PRIQ_IRQEN);
  h.dev.pr(ADDR);
  t.equal(h.board.sysmem.read32(DATA + 0x100), 0x77, 'MSI data written');
  t.same(h.irqs, ['priq'], 'no wired line with an MSI');
});

t.test('a full PRI queue discards requests, flags OVFLG once and answers a discarded last request Success (§8.2)', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS });
  h.enablePriq(1);
  h.dev.pr(ADDR, { prgIndex: 1 });
  h.dev.pr(ADDR, { prgIndex: 2 });
  h.dev.pr(ADDR, { prgIndex: 3, last: false });
  h.dev.pr(ADDR + PAGE, { prgIndex: 3, pasid: 4 });
  t.equal((h.r32('PRIQ_PROD') & Q_OVF) >>> 0, Q_OVF, 'OVFLG');
  t.same(responses(h), [[3, -1, 'success']], 'only the discarded request with Last gets an automatic response; STE.PPAR == 0: no PASID');
  t.equal(h.counter('pri.auto_responses'), 1);
  t.equal(h.priRecords().length, 2);
  h.w32('PRIQ_CONS', (h.r32('PRIQ_CONS') & ~Q_OVF) | (h.r32('PRIQ_PROD') & Q_OVF));
  h.dev.pr(ADDR, { prgIndex: 5 });
  t.equal(h.priRecords().length, 1, 'recorded again once there is space');
  h.dev.pr(ADDR, { prgIndex: 6 });
  h.dev.pr(ADDR, { prgIndex: 7 });
  h.dev.pr(ADDR, { prgIndex: 8 });
  t.equal(h.r32('PRIQ_PROD') & Q_OVF, 0, 'a new overflow toggles OVFLG again');
});

t.test('overflow responses follow the STE (§8.2): PASID only with STE.PPAR, Response Failure for an invalid STE or SMMUEN == 0', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS, PPAR: 1 });
  h.enablePriq(0);
  h.dev.pr(ADDR, { prgIndex: 1 });
  h.dev.pr(ADDR, { prgIndex: 2, pasid: 7 });
  h.dev.pr(ADDR, { prgIndex: 3 });
  t.same(responses(h), [[2, 7, 'success'], [3, -1, 'success']], 'PPAR == 1: the PASID of a request that had one');
  t.same(h.events(), [], 'the STE lookup records nothing');
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS, V: 0 });
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 1 });
  h.dev.pr(ADDR, { prgIndex: 4, pasid: 7 });
  h.writeSte(h.sid, { Config: STE_CONFIG.S1_TRANS, S1CDMax: 31 });
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 1 });
  h.dev.pr(ADDR, { prgIndex: 5, pasid: 7 });
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS, PPAR: 1 });
  h.cmd('CFGI_STE', { StreamID: h.sid, Leaf: 1 });
  h.w32('CR0', h.r32('CR0') & ~CR0.SMMUEN);
  h.dev.pr(ADDR, { prgIndex: 6, pasid: 7 });
  t.same(responses(h).slice(2), [[4, -1, 'failure'], [5, -1, 'failure'], [6, -1, 'failure']], 'V == 0, ILLEGAL, SMMUEN == 0');
  t.same(h.events(), [], 'no C_BAD_STE for an automatic response');
});

t.test('PRIQEN == 0: page requests are discarded; every last one is answered Response Failure without PASID, a Stop Marker never', async (t) => {
  const h = new Harness();
  h.enable();
  h.dev.pr(ADDR, { prgIndex: 2, pasid: 1 });
  h.dev.pr(ADDR, { prgIndex: 3, last: false });
  h.dev.pr(0, { prgIndex: 4, pasid: 1, read: false, write: false, stopMarker: true });
  h.dev.pr(0, { prgIndex: 5, read: false, write: false });
  t.same(responses(h), [[2, -1, 'failure'], [5, -1, 'failure']], 'R = W = 0, L = 1 without a PASID is a page request (§8)');
  t.equal(h.counter('pri.discarded'), 4);
  h.enablePriq();
  h.dev.pr(0, { pasid: 1, read: false, write: false, stopMarker: true });
  const [r] = h.priRecords();
  t.same([r?.['Last'], r?.['Read'], r?.['Write'], r?.['SSV']], [1, 0, 0, 1], 'a Stop Marker is recorded like a request');
});

t.test('PRIQ_BASE and PRIQ_PROD are guarded by PRIQEN', async (t) => {
  const h = new Harness();
  h.enable();
  h.enablePriq(3);
  h.w64('PRIQ_BASE', PRIQ + 0x1000 + 5);
  t.equal(h.r32('PRIQ_BASE'), PRIQ + 3);
  h.w32('CR0', h.r32('CR0') & ~CR0.PRIQEN);
  h.w64('PRIQ_BASE', PRIQ + 5);
  t.equal(h.r32('PRIQ_BASE'), PRIQ + 5);
});

t.test('CMD_PRI_RESP sends a PRG Response downstream: Resp Deny/Fail/Success, the PASID only with SSV', async (t) => {
  const h = new Harness();
  h.enable();
  h.cmd('PRI_RESP', { StreamID: h.sid, PRGIndex: 0x1ff, Resp: PRI_RESP.SUCCESS });
  h.cmd('PRI_RESP', { StreamID: h.sid, SSV: 1, SubstreamID: 42, PRGIndex: 1, Resp: PRI_RESP.DENY });
  h.cmd('PRI_RESP', { StreamID: h.sid, SSV: 1, SubstreamID: 42, PRGIndex: 2, Resp: PRI_RESP.FAIL });
  h.cmd('PRI_RESP', { StreamID: 0x99, PRGIndex: 2, Resp: PRI_RESP.FAIL });
  t.same(responses(h), [[0x1ff, -1, 'success'], [1, 42, 'invalid'], [2, 42, 'failure']], 'a StreamID with no endpoint reaches nobody');
  t.ok(h.dev.responses.every((r) => !r.privileged && !r.exec));
  t.equal(h.counter('pri.responses'), 4);
});

t.test('a PRI record write that aborts: GERROR.PRIQ_ABT_ERR, the request is answered Response Failure, the queue stops', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS, PPAR: 1 });
  h.enablePriq();
  h.board.faults.failNth('smmuv3.priq_write', 1);
  h.dev.pr(ADDR, { prgIndex: 1, pasid: 3 });
  t.equal(h.r32('GERROR') & GERROR.PRIQ_ABT_ERR, GERROR.PRIQ_ABT_ERR);
  t.equal(h.r32('PRIQ_PROD'), 0);
  h.dev.pr(ADDR, { prgIndex: 2, pasid: 3 });
  h.dev.pr(ADDR, { prgIndex: 3, last: false });
  t.same(responses(h), [[1, -1, 'failure'], [2, -1, 'failure']], 'then discarded as if disabled until acknowledged: Response Failure, no PASID');
  h.w32('GERRORN', h.r32('GERROR'));
  h.dev.pr(ADDR, { prgIndex: 3 });
  t.equal(h.priRecords().length, 1);
});

t.test('injection: PRG Responses lost, turned into Response Failure, or delayed', async (t) => {
  const h = new Harness();
  h.enable();
  h.board.faults.failNth('smmuv3.pri_resp', 1, { kind: 'drop' });
  h.cmd('PRI_RESP', { StreamID: h.sid, PRGIndex: 1, Resp: PRI_RESP.SUCCESS });
  h.board.faults.failNth('smmuv3.pri_resp', 1);
  h.cmd('PRI_RESP', { StreamID: h.sid, PRGIndex: 2, Resp: PRI_RESP.SUCCESS });
  h.board.faults.failNth('smmuv3.pri_resp', 1, { kind: 'delay', ns: 500 });
  h.cmd('PRI_RESP', { StreamID: h.sid, PRGIndex: 3, Resp: PRI_RESP.SUCCESS });
  t.same(responses(h), [[2, -1, 'failure']]);
  h.run(500);
  t.same(responses(h), [[2, -1, 'failure'], [3, -1, 'success']]);
  h.board.faults.failNth('smmuv3.priq_write', 1, { kind: 'drop' });
  h.enablePriq();
  h.dev.pr(ADDR, { prgIndex: 9 });
  t.equal(h.priRecords().length, 0);
  t.equal(h.dev.responses.length, 2, 'a dropped record is lost silently');
});

t.test('trace events: smmuv3.priq for each page request, smmuv3.pri.resp for each PRG Response, smmuv3.ats for each Translation Request', async (t) => {
  const h = new Harness();
  h.enable();
  h.writeSte(h.sid, { Config: STE_CONFIG.BYPASS });
  h.enablePriq(1);
  const seen: string[] = [];
  h.board.tracer.on('smmuv3.priq', (r) => void seen.push(`priq ${r.args.prg} ${r.args.outcome}`));
  h.board.tracer.on('smmuv3.pri.resp', (r) => void seen.push(`resp ${r.args.prg} ${r.args.code}${r.args.auto ? ' auto' : ''}`));
  h.board.tracer.on('smmuv3.ats', (r) => void seen.push(`ats ${r.args.status}`));
  h.dev.pr(ADDR, { prgIndex: 1 });
  h.dev.pr(ADDR, { prgIndex: 2 });
  h.dev.pr(ADDR, { prgIndex: 3 });
  h.cmd('PRI_RESP', { StreamID: h.sid, PRGIndex: 1, Resp: PRI_RESP.SUCCESS });
  h.dev.tr(ADDR);
  t.same(seen, ['priq 1 recorded', 'priq 2 recorded', 'priq 3 overflow', 'resp 3 success auto', 'resp 1 success', 'ats UR']);
});
