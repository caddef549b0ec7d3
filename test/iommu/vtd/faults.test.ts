import t from 'tap';
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import {
  DESC_INV_WAIT, DESC_IOTLB, FSTS_IQE, FSTS_PFO, FSTS_PPF, INV_WAIT_DESC, IOTLB_INV_DESC, IQEI, PGTT_FIRST_STAGE,
  VTD_FAULT_REASONS, faultName,
} from '../../../iommu/vtd/index.ts';
import type { TraceRecord } from '../../../src/trace/tracer.ts';
import { Fx, PAGE, R } from './helpers.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;

function legacy(opts: ConstructorParameters<typeof Fx>[0] = {}) {
  const fx = new Fx(opts);
  const ss = fx.ss();
  if (ss.map(IOVA, PA, PAGE, RW) !== 0) throw new Error('map');
  fx.legacy({ TT: 0, AW: 2, DID: 1, SLPTPTR: ss.root / PAGE });
  fx.enable();
  return fx;
}
const unmapped = (fx: Fx, i: number) => fx.read(IOVA + (i + 1) * PAGE);
const fsts = (fx: Fx) => fx.r32(R.FSTS!);

t.test('the fault reason table has unique codes and names, legacy below 0x30 and scalable-mode ones from 0x30', async (t) => {
  t.equal(new Set(VTD_FAULT_REASONS.map((r) => r.code)).size, VTD_FAULT_REASONS.length);
  t.equal(new Set(VTD_FAULT_REASONS.map((r) => r.name)).size, VTD_FAULT_REASONS.length);
  for (const r of VTD_FAULT_REASONS) t.ok(r.code < 0x30 ? !r.name.startsWith('DMAR_SM_') : r.code < 0x38 || r.name.startsWith('DMAR_SM_'), r.name);
  t.equal(faultName(0x59), 'DMAR_SM_PASID_ENTRY_NOT_PRESENT');
  t.equal(faultName(0xee), 'DMAR_UNKNOWN_0xee');
});

t.test('FRCD records PRIV and EXE of a request with PASID, and AT of an untranslated request', async (t) => {
  const fx = new Fx();
  const fs = fx.fs();
  t.equal(fs.map(IOVA, PA, PAGE, RW | IOMMU_NOEXEC), 0);
  const { dir } = fx.scalable();
  fx.pasid(dir, 0x1234, { PGTT: PGTT_FIRST_STAGE, DID: 2, SRE: 1, ERE: 1, FSPTPTR: fs.root / PAGE });
  fx.enable();
  t.equal(fx.fault(fx.read(IOVA + 0x10, 4, { pasid: 0x1234, privileged: true, exec: true })), 'DMAR_SM_EXEC_DENIED');
  const f = fx.frcd(0);
  t.same({ FR: f.FR, PP: f.PP, PV: f.PV, PRIV: f.PRIV, EXE: f.EXE, T1: f.T1, T2: f.T2, AT: f.AT }, { FR: 0x82, PP: 1, PV: 0x1234, PRIV: 1, EXE: 1, T1: 1, T2: 0, AT: 0 });
});

t.test('PPF is the OR of the F bits; FRI names the first pending record; clearing F clears PPF', async (t) => {
  const fx = legacy();
  unmapped(fx, 0);
  unmapped(fx, 1);
  t.same([fx.frcd(0).F, fx.frcd(1).F, fx.frcd(2).F], [1, 1, 0]);
  t.equal(fsts(fx), FSTS_PPF | (0 << 8));
  fx.clearFrcd(0);
  t.equal(fsts(fx) & FSTS_PPF, FSTS_PPF, 'record 1 still pending');
  fx.clearFrcd(1);
  t.equal(fsts(fx), 0);
  unmapped(fx, 2);
  t.equal(fsts(fx), FSTS_PPF | (2 << 8), 'the next record is 2: FRI = 2');
  t.equal(fx.frcd(2).FI * PAGE, IOVA + 3 * PAGE);
});

t.test('fault overflow: a full next record sets PFO and loses the fault; while PFO is set nothing is recorded', async (t) => {
  const fx = legacy({ faultRecords: 2 });
  unmapped(fx, 0);
  unmapped(fx, 1);
  unmapped(fx, 2);
  t.equal(fsts(fx) & FSTS_PFO, FSTS_PFO);
  t.equal(fx.board.counters.get('vtd.faults.overflow'), 1);
  t.equal(fx.frcd(0).FI * PAGE, IOVA + PAGE, 'record 0 kept the first fault');
  fx.clearFrcd(0);
  unmapped(fx, 3);
  t.equal(fx.frcd(0).F, 0, 'PFO still set: not recorded although record 0 is free');
  fx.w32(R.FSTS!, FSTS_PFO);
  t.equal(fsts(fx) & FSTS_PFO, 0, 'PFO is RW1C');
  unmapped(fx, 4);
  t.equal(fx.frcd(0).FI * PAGE, IOVA + 5 * PAGE, 'recording resumes at the internal index (wrapped to 0)');
  t.equal(fx.board.counters.get('vtd.faults'), 5);
  t.equal(fx.board.counters.get('vtd.faults.recorded'), 3);
});

t.test('fault event: FEDATA is written to FEADDR when a fault sets PPF, not again while PPF stays set', async (t) => {
  const fx = legacy();
  fx.w32(R.FEDATA!, 0x45);
  fx.w32(R.FEADDR!, 0xfee0_0000);
  fx.w32(R.FECTL!, 0);
  unmapped(fx, 0);
  t.equal(fx.board.msi.count(0x45), 1);
  unmapped(fx, 1);
  t.equal(fx.board.msi.count(0x45), 1, 'PPF already set: no new interrupt condition');
  fx.clearFrcd(0);
  fx.clearFrcd(1);
  unmapped(fx, 2);
  t.equal(fx.board.msi.count(0x45), 2);
});

t.test('fault event masked: IP is set and the message sent on unmask; servicing the faults first clears IP silently', async (t) => {
  const fx = legacy();
  fx.w32(R.FEDATA!, 0x46);
  fx.w32(R.FEADDR!, 0xfee0_0000);
  unmapped(fx, 0);
  t.equal(fx.r32(R.FECTL!), 0xc000_0000, 'IM and IP');
  t.equal(fx.board.msi.count(), 0);
  fx.w32(R.FECTL!, 0);
  t.equal(fx.board.msi.count(0x46), 1);
  t.equal(fx.r32(R.FECTL!), 0);
  fx.w32(R.FECTL!, 0x8000_0000);
  fx.clearFrcd(0);
  unmapped(fx, 1);
  t.equal(fx.r32(R.FECTL!), 0xc000_0000);
  fx.clearFrcd(1);
  t.equal(fx.r32(R.FECTL!), 0x8000_0000, 'PPF clear: IP cleared');
  fx.w32(R.FECTL!, 0);
  t.equal(fx.board.msi.count(0x46), 1, 'no message after servicing');
});

t.test('the fault event is a memory write through the system address space (FEADDR may point at RAM)', async (t) => {
  const fx = legacy();
  fx.w32(R.FEDATA!, 0xbeef);
  fx.w32(R.FEADDR!, 0x60_0000);
  fx.w32(R.FECTL!, 0);
  unmapped(fx, 0);
  t.equal(fx.mem.read32(0x60_0000), 0xbeef);
});

t.test('a root table in unbacked memory faults 0x8; a reserved TTM faults 0x30 on every DMA', async (t) => {
  const fx = new Fx();
  fx.setRoot(0x8000_0000, 0);
  fx.enable();
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_ROOT_FETCH_ERROR');
  fx.setRoot(0x10_0000, 3);
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_RTADDR_INVALID');
  t.equal(fx.frcd(1).FR, 0x30);
});

t.test('injection vtd.walk_read: a failed paging-entry read is a fetch error; a corrupted entry faults as the corruption says', async (t) => {
  const fx = legacy();
  fx.board.faults.failNth('vtd.walk_read', 2);
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_PTE_FETCH_ERROR');
  t.ok(fx.read(IOVA).ok, 'the next walk succeeds');
  fx.w64(R.IOTLB!, (1n << 63n) | (1n << 60n));
  fx.board.faults.failNth('vtd.walk_read', 4, { kind: 'corrupt', xorLo: 3 });
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_PTE_READ_DENIED', 'R and W flipped off in the leaf');
  t.equal(fx.board.faults.point('vtd.walk_read').injected, 2);
});

t.test('injection vtd.context_fetch and vtd.pasid_fetch: fetch-error fault reasons', async (t) => {
  const fx = legacy();
  fx.board.faults.failNth('vtd.context_fetch', 1);
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_FETCH_ERROR');
  t.ok(fx.read(IOVA).ok);
  const sm = new Fx();
  const { dir } = sm.scalable();
  sm.pasid(dir, 0, { PGTT: 4, DID: 1 });
  sm.enable();
  sm.board.faults.failNth('vtd.pasid_fetch', 1);
  t.equal(sm.fault(sm.read(IOVA)), 'DMAR_SM_PASID_ENTRY_FETCH_ERROR');
  t.ok(sm.read(IOVA).ok);
});

t.test('injection vtd.fault_record: the fault is lost, the request still aborts', async (t) => {
  const fx = legacy();
  fx.board.faults.failNth('vtd.fault_record', 1, { kind: 'drop' });
  t.equal(fx.fault(unmapped(fx, 0)), 'DMAR_PTE_READ_DENIED');
  t.equal(fx.frcd(0).F, 0);
  t.equal(fx.board.counters.get('vtd.faults.lost'), 1);
  unmapped(fx, 1);
  t.equal(fx.frcd(0).F, 1);
});

t.test('injection vtd.inv_queue_process: fail stops the queue with IQEI 2, drop skips a descriptor', async (t) => {
  const fx = legacy();
  fx.queue();
  const wait = (v: number) => Fx.desc(INV_WAIT_DESC, DESC_INV_WAIT, { SW: 1, STDATA: v, STADDR_LO: 0x50_0000 / 4 });
  fx.board.faults.failNth('vtd.inv_queue_process', 2, { kind: 'drop' });
  fx.submit(wait(1), wait(2));
  t.equal(fx.mem.read32(0x50_0000), 1, 'the second wait was dropped');
  t.equal(fx.iqh, 64);
  fx.board.faults.failNth('vtd.inv_queue_process', 1);
  fx.submit(Fx.desc(IOTLB_INV_DESC, DESC_IOTLB, { G: 1 }));
  t.ok(fsts(fx) & FSTS_IQE);
  t.equal(Number(fx.r64(R.IQERCD!) & 0xfn), IQEI.FETCH_ERROR);
});

t.test('injection vtd.msi: drop loses the message, delay sends it later in virtual time', async (t) => {
  const fx = legacy();
  fx.w32(R.FEDATA!, 0x47);
  fx.w32(R.FEADDR!, 0xfee0_0000);
  fx.w32(R.FECTL!, 0);
  fx.board.faults.failNth('vtd.msi', 1, { kind: 'drop' });
  unmapped(fx, 0);
  t.equal(fx.board.msi.count(), 0);
  fx.clearFrcd(0);
  fx.board.faults.failNth('vtd.msi', 1, { kind: 'delay', ns: 500 });
  unmapped(fx, 1);
  t.equal(fx.board.msi.count(), 0);
  fx.board.scheduler.run();
  t.equal(fx.board.msi.count(0x47), 1);
  t.equal(fx.board.now(), 500);
});

t.test('every architectural action leaves a typed vtd.* trace event', async (t) => {
  const fx = new Fx();
  const seen = new Map<string, TraceRecord>();
  fx.board.tracer.on('*', (r) => { if (r.name.startsWith('vtd.') && !seen.has(r.name)) seen.set(r.name, r); });
  const ss = fx.ss();
  ss.map(IOVA, PA, PAGE, RW);
  fx.legacy({ TT: 0, AW: 2, DID: 1, SLPTPTR: ss.root / PAGE });
  fx.enable();
  fx.read(IOVA);
  fx.read(IOVA + PAGE);
  fx.queue();
  fx.w32(R.IEADDR!, 0xfee0_0000);
  fx.w32(R.IECTL!, 0);
  fx.submit(Fx.desc(IOTLB_INV_DESC, DESC_IOTLB, { G: 1 }), Fx.desc(INV_WAIT_DESC, DESC_INV_WAIT, { IF: 1 }), new Uint32Array(8));
  for (const n of ['vtd.gsts', 'vtd.root', 'vtd.entry.load', 'vtd.walk', 'vtd.translate', 'vtd.fault', 'vtd.fault.record', 'vtd.invalidate', 'vtd.qi.desc', 'vtd.qi.wait', 'vtd.qi.error', 'vtd.irq']) {
    t.ok(seen.has(n), n);
  }
  t.match(seen.get('vtd.fault')!.args, { reason: 6, name: 'DMAR_PTE_READ_DENIED', recorded: true });
  t.match(seen.get('vtd.walk')!.args, { stage: 'second-stage', ok: true, pa: PA, pageSize: PAGE });
});
