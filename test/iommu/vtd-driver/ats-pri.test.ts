import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { PASID_ENTRY, PRS_PRO, SM_CONTEXT_ENTRY, VTD_REG } from '../../../iommu/vtd/index.ts';
import { decodeLayout, encodeLayout } from '../../../src/hw/layout.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { atsDevice } from './fixture.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const IOVA = 0x10_0000;

t.test('probe enables PASID, ATS and PRI in the device; its context entry has DTE, PASIDE and PRE', async (t) => {
  const { driver, ep } = atsDevice();
  t.ok(ep.pasid.enabled && ep.ats.enabled);
  t.ok(ep.pri.enabled, 'PRI on from probe (intel_iommu_probe_finalize: iommu_enable_pci_pri)');
  t.same(driver.deviceState(ep), { ats: true, pre: true, pri: true, pasidBits: 16 });
  const ctx = decodeLayout(SM_CONTEXT_ENTRY, driver.tables.readContext(ep.requesterId));
  t.same([ctx.P, ctx.DTE, ctx.PASIDE, ctx.PRE, ctx.RID_PASID], [1, 1, 1, 1, 0]);
  t.equal(driver.maxPasids(ep), 2 ** 16);
});

t.test('ATS: translations come from the domain; unmap invalidates the device-TLB and waits for the completion', async (t) => {
  const { board, host, ep, group, owner, ram } = atsDevice();
  const d = host.iommu.allocPaging(ep) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  d.map(IOVA, ram, 0x4000, RW);
  board.sysmem.write32(ram + 0x1000, 0x5a5a);
  const c = ep.translate(IOVA + 0x1000);
  t.same([c.status, c.entries[0]!.translatedAddr, c.entries[0]!.read, c.entries[0]!.write], ['SC', ram + 0x1000, true, true]);
  const r = ep.translatedRead(ep.cached(IOVA + 0x1000)!.translatedAddr);
  t.ok(r.ok && r.data![0] === 0x5a, 'a translated read with the ATC entry');
  const before = board.now();
  const seen = ep.invalidations.length;
  t.equal(d.unmap(IOVA, 0x4000), 0x4000);
  t.same(ep.invalidations.slice(seen).map((r) => [r.pasid, r.addr, r.size]), [[-1, IOVA, 0x4000]]);
  t.equal(ep.cached(IOVA + 0x1000), undefined, 'the ATC entry is gone');
  t.equal(board.now() - before, ep.completionDelayNs, 'unmap returned only after the device completed');
  t.same(ep.translate(IOVA + 0x1000).entries.map((e) => [e.read, e.write]), [[false, false]], 'the IOTLB was invalidated too');
});

t.test('a device that never completes: unmap still returns, the time-out is reported as ITE', async (t) => {
  const { board, host, driver, ep, group, owner, ram } = atsDevice({ atsInvalidationTimeoutNs: 50_000 });
  const d = host.iommu.allocPaging(ep) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  d.map(IOVA, ram, 0x1000, RW);
  ep.answerInvalidations = false;
  const before = board.now();
  t.equal(d.unmap(IOVA, 0x1000), 0x1000);
  t.same(driver.faults.filter((f) => f.name === 'ITE').map((f) => f.sid), [ep.requesterId, ep.requesterId], 'the batch was retried once');
  t.equal(board.now() - before, 100_000, 'two time-outs of 50 us');
  t.equal(driver.qi.timeouts, 2);
  ep.answerInvalidations = true;
  d.map(IOVA, ram, 0x1000, RW);
  t.equal(d.unmap(IOVA, 0x1000), 0x1000);
  t.equal(driver.qi.timeouts, 2, 'the queue works again');
});

t.test('PRI round trip: SVA bind; a page request for an unpopulated page is served by the mm and answered Success', async (t) => {
  const { board, host, ep, driver } = atsDevice();
  const p = host.spawn();
  const va = p.mmap(4 * 4096);
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  t.type(h, 'object');
  t.ok(ep.pri.enabled, 'PRI is on (since probe)');
  t.same(driver.deviceState(ep)!.pri, true);
  t.same(ep.dmaWrite(va, new Uint8Array([9]), { pasid: h.pasid }), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' }, 'not populated yet');
  t.same(ep.translate(Number(va), 4096, { pasid: h.pasid }).entries.map((e) => [e.read, e.write]), [[false, false]]);
  ep.request({ addr: Number(va), pasid: h.pasid, read: true, write: true, prgIndex: 5, last: true });
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.pasid, r.code]), [[5, h.pasid, 'success']]);
  t.same(ep.translate(Number(va), 4096, { pasid: h.pasid }).entries.map((e) => [e.read, e.write]), [[true, true]], 'now mapped');
  t.ok(ep.dmaWrite(va, new Uint8Array([9]), { pasid: h.pasid }).ok);
  t.same(p.memRead(va, 1), new Uint8Array([9]));
  t.equal(board.counters.get('iopf.groups_answered'), 1);
});

t.test('a page group spanning several requests is answered once, after its last request', async (t) => {
  const { board, host, ep } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4 * 4096));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  for (let i = 0; i < 3; i++) ep.request({ addr: va + i * 4096, pasid: h.pasid, write: true, prgIndex: 7, last: i === 2 });
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[7, 'success']]);
  for (let i = 0; i < 3; i++) t.ok(ep.dmaRead(BigInt(va + i * 4096), 1, { pasid: h.pasid }).ok);
});

t.test('page requests outside any VMA, or that nobody handles, are answered Invalid Request', async (t) => {
  const { board, host, ep } = atsDevice();
  const p = host.spawn();
  p.mmap(4096);
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  ep.request({ addr: 0x1000_0000, pasid: h.pasid, prgIndex: 1, last: true });
  ep.request({ addr: 0x2000, prgIndex: 2, last: true });
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]).sort(), [[1, 'invalid'], [2, 'invalid']]);
});

t.test('a privileged page request is refused by the driver (Invalid Request), as Linux does', async (t) => {
  const { board, host, ep } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4096));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  ep.request({ addr: va, pasid: h.pasid, privileged: true, prgIndex: 3, last: true });
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[3, 'invalid']]);
});

t.test('page request queue overflow: the unit answers Success, the driver drains the queue and clears PRO', async (t) => {
  const { board, host, ep, vtd } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(256 * 4096));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  for (let i = 0; i < 128; i++) ep.request({ addr: va + i * 4096, pasid: h.pasid, prgIndex: i, last: true });
  t.not(vtd.rf.get('PRS') & PRS_PRO, 0, 'the 128th request overflowed');
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[127, 'success']], 'answered by the unit');
  board.scheduler.run();
  t.equal(vtd.rf.get('PRS') & PRS_PRO, 0, 'PRO cleared once the queue was empty');
  t.equal(ep.responses.length, 128, 'every group answered exactly once');
  t.equal(board.sysmem.read32(board.layout.iommuBase + VTD_REG.PQH!), board.sysmem.read32(board.layout.iommuBase + VTD_REG.PQT!));
});

t.test('SVA unbind tears the PASID down with a PASID-based device-TLB invalidation', async (t) => {
  const { host, ep } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4096, { populate: true }));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  t.ok(ep.translate(va, 4096, { pasid: h.pasid }).entries[0]!.read);
  t.ok(ep.cached(va, h.pasid));
  const seen = ep.invalidations.length;
  host.sva.unbind(h);
  // intel_pasid_tear_down_entry's device-TLB invalidation, then intel_iommu_drain_pasid_prq's.
  t.same(ep.invalidations.slice(seen).map((r) => [r.pasid, r.addr, r.size]), [[h.pasid, 0, 2 ** 64], [h.pasid, 0, 2 ** 64]]);
  t.equal(ep.cached(va, h.pasid), undefined);
  t.same(ep.translate(va, 4096, { pasid: h.pasid }), { status: 'UR', entries: [] }, 'PASID entry gone: UR');
});

t.test('releasing a device tears down its PASIDs and context entry and turns PRI and ATS off', async (t) => {
  const { host, driver, ep } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4096, { populate: true }));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  t.ok(ep.dmaRead(BigInt(va), 4, { pasid: h.pasid }).ok);
  driver.releaseDevice(ep);
  t.equal(driver.tables.readContext(ep.requesterId)[0]! & 1, 0, 'context entry not present');
  t.notOk(ep.pri.enabled || ep.ats.enabled);
  t.same(ep.dmaRead(BigInt(va), 4, { pasid: h.pasid }), { ok: false, fault: 'DMAR_SM_CONTEXT_NOT_PRESENT' }, 'the context-cache was invalidated');
  t.equal(driver.deviceState(ep), undefined);
});

/** The invalidation descriptors the unit executes from now on: [type, formatted descriptor]. */
function qiLog(board: { tracer: { on(name: 'vtd.qi.desc', f: (r: { args: { type: string; desc: string } }) => void): unknown } }): [string, string][] {
  const log: [string, string][] = [];
  board.tracer.on('vtd.qi.desc', (r) => log.push([r.args.type, r.args.desc]));
  return log;
}

t.test('SVA unbind of a live bond drains the page requests of the PASID (intel_iommu_drain_pasid_prq)', async (t) => {
  const { board, host, ep, driver } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4 * 4096));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  t.equal(driver.deviceState(ep)!.pri, true);
  // A page request still in the queue when the bond goes: the handler takes it before the drain.
  ep.request({ addr: va, pasid: h.pasid, prgIndex: 3, last: true });
  const log = qiLog(board);
  host.sva.unbind(h);
  const types = log.map(([type]) => type);
  const drainAt = types.indexOf('pasid-cache');
  t.ok(drainAt >= 0, 'the teardown invalidated the PASID-cache');
  t.same(types.slice(drainAt, drainAt + 4), ['pasid-cache', 'pasid-iotlb', 'pasid-device-tlb', 'wait'], 'teardown: PASID-cache, p-IOTLB, device-TLB');
  // The queued request goes through the handler (iopf_queue_flush_dev) and is answered before the drain batch.
  t.same(log.slice(drainAt + 4, drainAt + 6).map(([type]) => type), ['page-group-response', 'wait'], 'the queued request answered');
  const tail = log.slice(drainAt + 6);
  t.same(tail.map(([type]) => type), ['wait', 'pasid-iotlb', 'pasid-device-tlb', 'wait'], 'then the drain batch');
  t.match(tail[0]![1], /FN=1/, 'a fenced wait first');
  t.notMatch(tail[0]![1], /SW=1/, 'without a status write');
  // The RID sits on no paging domain (blocked): FLPT_DEFAULT_DID.
  t.match(tail[1]![1], new RegExp(`DID=0x1 .*PASID=0x${h.pasid.toString(16)}|PASID=0x${h.pasid.toString(16)}.*DID=0x1`));
  t.match(tail[3]![1], /PD=1/, 'the closing wait drains page requests (PD)');
  t.same(driver.pasidEntryOf(ep, h.pasid), new Uint32Array(16), 'the entry is all zero');
  t.same(ep.responses.filter((r) => r.prgIndex === 3).map((r) => r.code), ['success'], 'answered while the bond still held the mm');
});

t.test('SVA mm release (intel_mm_release): the entry is torn down with fault_ignore; as in 7.3 it ends all zero and the later unbind does nothing', async (t) => {
  const { board, host, ep, driver } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4096, { populate: true }));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  t.ok(ep.translate(va, 4096, { pasid: h.pasid }).entries[0]!.read);
  const log = qiLog(board);
  const seen = ep.invalidations.length;
  p.exit();
  t.same(log.map(([type]) => type), ['pasid-cache', 'pasid-iotlb', 'pasid-device-tlb', 'wait'], 'PASID-cache, p-IOTLB and device-TLB flushed; no PRQ drain');
  t.notOk(log.some(([, d]) => /PD=1/.test(d)), 'no page-request drain at mm release');
  t.same(ep.invalidations.slice(seen).map((r) => [r.pasid, r.addr, r.size]), [[h.pasid, 0, 2 ** 64]]);
  // intel_pasid_clear_entry(fault_ignore) sets FPD only in a present entry; 7.3 cleared P just before.
  t.same(driver.pasidEntryOf(ep, h.pasid), new Uint32Array(16), 'all zero: no FPD');
  t.equal(host.sva.handles().length, 1, 'the bond stays until it is unbound');
  t.same(ep.translate(va, 4096, { pasid: h.pasid }), { status: 'UR', entries: [] }, 'the PASID no longer translates');
  board.scheduler.run();
  t.same(driver.faults.filter((f) => f.pasid === h.pasid).map((f) => f.reason), [0x59], 'the not-present fault is recorded');
  log.length = 0;
  host.sva.unbind(h);
  t.same(log, [], 'unbind: the entry is not present and has no FPD, nothing to flush or drain');
  t.equal(host.sva.handles().length, 0);
});

t.test('a non-present PASID entry with FPD (what fault_ignore teardowns before the 7.3 P-clear wrote) silences DMA faults; unbind clears it and drains', async (t) => {
  const { board, host, ep, driver } = atsDevice();
  const p = host.spawn();
  const va = Number(p.mmap(4096, { populate: true }));
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  p.exit();
  // Put FPD into the (now all-zero) entry, as pasid_clear_entry_with_fpd would: walk context → directory → table.
  const ctx = decodeLayout(SM_CONTEXT_ENTRY, driver.tables.readContext(ep.requesterId));
  const dirEntry = board.sysmem.read32(ctx.PASIDDIRPTR * 4096 + Math.floor(h.pasid / 64) * 8);
  const entryAt = (dirEntry & ~0xfff) + (h.pasid % 64) * 64;
  t.same(driver.pasidEntryOf(ep, h.pasid), new Uint32Array(16));
  board.sysmem.write32(entryAt, encodeLayout(PASID_ENTRY, { FPD: 1 })[0]!);
  const before = driver.faults.length;
  t.same(ep.translate(va, 4096, { pasid: h.pasid }), { status: 'UR', entries: [] }, 'the request still aborts');
  t.notOk(ep.dmaRead(BigInt(va), 4, { pasid: h.pasid }).ok);
  board.scheduler.run();
  t.equal(driver.faults.length, before, 'no fault recorded: FPD');
  t.equal(board.counters.get('vtd.faults.suppressed'), 2);
  const log = qiLog(board);
  host.sva.unbind(h);
  t.same(driver.pasidEntryOf(ep, h.pasid), new Uint32Array(16), 'unbind cleared the entry');
  t.same(log.map(([type]) => type), ['wait', 'pasid-iotlb', 'pasid-device-tlb', 'wait'], 'no flush of a non-present entry, only the drain');
  t.match(log[3]![1], /PD=1/);
  t.notOk(ep.dmaRead(BigInt(va), 4, { pasid: h.pasid }).ok);
  board.scheduler.run();
  t.same(driver.faults.slice(before).map((f) => [f.reason, f.pasid]), [[0x59, h.pasid]], 'without FPD the fault is recorded again');
});

t.test('the RID teardown drains page requests only while a fault-handling domain is on the device (iopf_refcount)', async (t) => {
  const { board, host, ep, group, owner } = atsDevice();
  const p = host.spawn();
  p.mmap(4096, { populate: true });
  const d = host.iommu.allocPaging(ep) as IommuDomain;
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  const h = host.sva.bind(ep, p.mm, p.pid) as SvaHandle;
  const log = qiLog(board);
  t.equal(host.iommu.detachGroup(d, group, owner), 0);
  const drain = log.filter(([, desc]) => /PD=1/.test(desc));
  t.equal(drain.length, 1, 'the SVA bond holds a reference: the RID (IOMMU_NO_PASID) is drained');
  const did = (d.driver as unknown as { did: number }).did;
  t.ok(log.some(([type, desc]) => type === 'iotlb' && desc.includes(`G=2 `) && desc.includes(`DID=0x${did.toString(16)}}`)), 'domain-selective IOTLB of the RID domain');
  host.sva.unbind(h);
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  log.length = 0;
  t.equal(host.iommu.detachGroup(d, group, owner), 0);
  t.ok(log.length > 0, 'the entry is torn down and flushed');
  t.notOk(log.some(([, desc]) => /PD=1/.test(desc)), 'no fault-handling domain left: no drain');
});
