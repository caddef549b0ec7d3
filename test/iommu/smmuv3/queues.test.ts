import t from 'tap';
import { CERROR, CR0, EVT, GERROR, IRQ_CTRL, Q_OVF, SYNC_CS, UUT_REASON, encodeCommand } from '../../../iommu/smmuv3/index.ts';
import { DATA, Harness } from './harness.ts';

const CMDQ = 0x4800_0000;
const consErr = (h: Harness) => (h.r32('CMDQ_CONS') >>> 24) & 0x7f;
const consRd = (h: Harness) => h.r32('CMDQ_CONS') & 0xfffff;

t.test('CMD_SYNC with CS == SIG_IRQ writes MSIData to MSIAddr (memory or the MSI doorbell)', async (t) => {
  const h = new Harness();
  h.enable();
  h.board.sysmem.write32(DATA, 0xffff_ffff);
  h.cmd('SYNC', { CS: SYNC_CS.IRQ, MSIAddr: DATA / 4, MSIData: 0x1234_5678 });
  t.equal(h.board.sysmem.read32(DATA), 0x1234_5678, 'polled memory location written');
  const doorbell = h.board.layout.msiBase + 0x40;
  h.cmd('SYNC', { CS: SYNC_CS.IRQ, MSIAddr: doorbell / 4, MSIData: 42 });
  t.equal(h.board.msi.count(42), 1, 'an MSI reached the interrupt controller');
  t.equal(h.board.msi.received.at(-1)?.addr, doorbell);
  t.same(h.irqs, [], 'no wired interrupt when an MSI is configured');
  t.equal(consRd(h), h.r32('CMDQ_PROD'), 'consumed');
});

t.test('CMD_SYNC with SIG_IRQ and no MSI address raises the wired line; SIG_NONE only advances CONS', async (t) => {
  const h = new Harness();
  h.enable();
  h.cmd('SYNC', { CS: SYNC_CS.IRQ });
  t.same(h.irqs, ['cmdq-sync']);
  h.cmd('SYNC', { CS: SYNC_CS.NONE });
  t.same(h.irqs, ['cmdq-sync']);
  t.equal(consRd(h), h.r32('CMDQ_PROD'));
});

t.test('an illegal command stops consumption with CERROR_ILL until GERRORN acknowledges', async (t) => {
  const h = new Harness();
  h.enable();
  const before = consRd(h);
  h.put(new Uint32Array([0x99, 0, 0, 0])); // reserved opcode
  h.cmd('CFGI_ALL');
  h.cmd('SYNC', { CS: SYNC_CS.IRQ });
  t.equal(consRd(h), before, 'CONS points at the erroneous command');
  t.equal(consErr(h), CERROR.ILL);
  t.ok(h.smmu.gerrorActive('CMDQ_ERR'));
  t.same(h.irqs, [], 'the later CMD_SYNC has not run');
  h.cmd('SYNC');
  t.equal(consRd(h), before, 'writing PROD does not restart a queue in error');
  h.writeWords(CMDQ + before * 16, encodeCommand('PREFETCH_CONFIG', { StreamID: 1 }));
  h.w32('GERRORN', h.r32('GERROR'));
  t.equal(consRd(h), h.r32('CMDQ_PROD'), 'acknowledging restarts consumption at the fixed command');
  t.same(h.irqs, ['cmdq-sync']);
});

t.test('malformed commands are CERROR_ILL: RES0 bits, reserved encodings, SSec, EL2 without Hyp', async (t) => {
  const cases: [string, Uint32Array][] = [
    ['a RES0 bit in TLBI_NH_ALL', encodeCommand('TLBI_NH_ALL', { VMID: 1 }).map((w, i) => (i === 0 ? w | (1 << 20) : w))],
    ['CMD_SYNC.CS == 0b11', encodeCommand('SYNC', { CS: 3 })],
    ['TG != 0 with NUM == SCALE == TTL == 0', encodeCommand('TLBI_NH_VA', { TG: 1 })],
    ['NUM without TG', encodeCommand('TLBI_NH_VAA', { NUM: 3 })],
    ['16K TG with TTL == 1 (no IDR5.DS)', encodeCommand('TLBI_S2_IPA', { TG: 2, TTL: 1 })],
    ['SSec on the Non-secure queue', encodeCommand('CFGI_STE', { SSec: 1 })],
    ['TLBI_EL2_ALL without IDR0.Hyp', encodeCommand('TLBI_EL2_ALL')],
    ['TLBI_EL3_ALL', new Uint32Array([0x18, 0, 0, 0])],
    ['opcode 0', new Uint32Array(4)],
  ];
  for (const [what, words] of cases) {
    const h = new Harness();
    h.enable();
    h.put(words);
    t.equal(consErr(h), CERROR.ILL, what);
    t.ok(h.smmu.gerrorActive('CMDQ_ERR'), `${what}: CMDQ_ERR`);
  }
});

t.test('a command fetch that aborts is CERROR_ABT', async (t) => {
  const h = new Harness();
  h.enable();
  h.board.faults.failNth('smmuv3.cmdq_process', 1);
  h.cmd('SYNC');
  t.equal(consErr(h), CERROR.ABT);
  h.w32('GERRORN', h.r32('GERROR'));
  t.equal(consRd(h), h.r32('CMDQ_PROD'), 'the re-fetch succeeds after the acknowledgement');
});

t.test('PRI_RESP, RESUME and STALL_TERM with nothing to act on complete without error', async (t) => {
  const h = new Harness();
  h.enable();
  h.cmd('PRI_RESP', { StreamID: 8, Resp: 2 });
  h.cmd('RESUME', { StreamID: 8, STAG: 3 });
  h.cmd('STALL_TERM', { StreamID: 8 });
  h.cmd('SYNC');
  t.equal(consRd(h), h.r32('CMDQ_PROD'));
  t.notOk(h.smmu.gerrorActive('CMDQ_ERR'));
  h.cmd('PRI_RESP', { StreamID: 8, Resp: 3 });
  t.equal(consErr(h), CERROR.ILL, 'PRI_RESP.Resp == 0b11 is reserved');
});

t.test('commands wait while CMDQEN == 0 and run when the queue is enabled', async (t) => {
  const h = new Harness();
  h.enable();
  h.w32('CR0', CR0.SMMUEN | CR0.EVENTQEN);
  h.cmd('SYNC', { CS: SYNC_CS.IRQ });
  t.same(h.irqs, []);
  h.w32('CR0', CR0.SMMUEN | CR0.EVENTQEN | CR0.CMDQEN);
  t.same(h.irqs, ['cmdq-sync']);
});

t.test('a garbage PROD is bounded: one queue of commands is consumed per PROD write', async (t) => {
  const h = new Harness();
  h.enable({ cmdqLog2: 4 });
  for (let i = 0; i < 16; i++) h.writeWords(CMDQ + i * 16, encodeCommand('PREFETCH_CONFIG', { StreamID: i }));
  const start = consRd(h);
  const n = h.counter('commands');
  h.w32('CMDQ_PROD', 0xffff_ffff); // wrap + index bits: "full", plus RES0 noise
  t.equal(h.counter('commands') - n, 16, 'an inconsistent PROD (28 entries ahead) consumes one queue (16) and stops');
  t.equal(consRd(h), (start + 16) & 0x1f);
  h.w32('CMDQ_PROD', ((start + 16) & 0x1f) ^ 0x10); // exactly full: 16 commands
  t.equal(h.counter('commands') - n, 32);
  t.notOk(h.smmu.gerrorActive('CMDQ_ERR'));
});

t.test('event records are written at PROD; an MSI or the wired line signals them per IRQ_CTRL', async (t) => {
  const h = new Harness();
  h.enable();
  h.read32(DATA); // V == 0: C_BAD_STE
  t.equal(h.r32('EVENTQ_PROD'), 1);
  t.same(h.irqs, [], 'EVENTQ_IRQEN == 0: no interrupt');
  h.w32('IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN);
  h.read32(DATA);
  t.same(h.irqs, ['eventq'], 'wired without an MSI address');
  h.w32('IRQ_CTRL', 0);
  h.w64('EVENTQ_IRQ_CFG0', h.board.layout.msiBase + 0x40);
  h.w32('EVENTQ_IRQ_CFG1', 0x77);
  h.w32('IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN);
  h.read32(DATA);
  t.equal(h.board.msi.count(0x77), 1, 'an MSI with EVENTQ_IRQ_CFG1 data');
  t.same(h.eventNames(), [EVT.C_BAD_STE, EVT.C_BAD_STE, EVT.C_BAD_STE]);
});

t.test('a full Event queue drops records and toggles OVFLG once until OVACKFLG acknowledges', async (t) => {
  const h = new Harness();
  h.enable({ evtqLog2: 1 }); // 2 entries
  for (let i = 0; i < 4; i++) h.read32(DATA);
  const prod = h.r32('EVENTQ_PROD');
  t.equal(prod & 3, 2, 'two records: index 0 and the wrap flag set');
  t.equal(prod >>> 31, 1, 'overflow flagged');
  t.equal(h.counter('events.dropped'), 2);
  t.equal(h.events().length, 2);
  t.equal(h.r32('EVENTQ_CONS') >>> 31, 0, 'not yet acknowledged');
  h.w32('EVENTQ_CONS', (h.r32('EVENTQ_CONS') & 3) | Q_OVF);
  for (let i = 0; i < 3; i++) h.read32(DATA);
  t.equal(h.r32('EVENTQ_PROD') >>> 31, 0, 'a new overflow toggles OVFLG again');
  t.equal(h.r32('EVENTQ_PROD') & 3, 0, 'PROD wrapped back to index 0, wrap flag clear');
});

t.test('an Event queue write that aborts loses the record and stops the queue until acknowledged', async (t) => {
  const h = new Harness();
  h.enable();
  h.board.faults.failNth('smmuv3.evtq_write', 1);
  h.read32(DATA);
  t.equal(h.r32('EVENTQ_PROD'), 0, 'PROD does not move');
  t.ok(h.smmu.gerrorActive('EVENTQ_ABT_ERR'));
  h.read32(DATA);
  t.equal(h.r32('EVENTQ_PROD'), 0, 'the queue is not writable while the error is active');
  h.w32('GERRORN', h.r32('GERROR'));
  h.read32(DATA);
  t.equal(h.r32('EVENTQ_PROD'), 1);
});

t.test('an MSI write that aborts activates MSI_EVENTQ_ABT_ERR', async (t) => {
  const h = new Harness();
  h.enable();
  h.w64('EVENTQ_IRQ_CFG0', h.board.layout.msiBase);
  h.w32('IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN);
  h.board.faults.failNth('smmuv3.msi', 1);
  h.read32(DATA);
  t.equal(h.r32('GERROR') & GERROR.MSI_EVENTQ_ABT_ERR, GERROR.MSI_EVENTQ_ABT_ERR);
  t.equal(h.r32('EVENTQ_PROD'), 1, 'the record itself was written');
});

t.test('a Translation Request sent as a memory transaction is F_UUT', async (t) => {
  const h = new Harness();
  h.enable();
  const txn = { requesterId: h.sid, pasid: -1, privileged: false, exec: false, at: 'translation-request' as const, addr: DATA, length: 4, write: false };
  const c = h.board.rc.dma(txn, new Uint8Array(4), 0);
  t.same(c, { status: 'UR', fault: 'F_UUT' });
  const [e] = h.events();
  t.equal(e?.EventType, EVT.F_UUT);
  t.equal(e?.['Reason'], UUT_REASON.ATS_TRANSLATION_REQUEST);
  t.equal(e?.['InputAddr'], DATA);
});
