import t from 'tap';
import { EINVAL, ENOSPC, EOVERFLOW } from '../../src/uapi/errno.ts';
import { PROT_READ } from '../../src/host/mm.ts';
import type { IommuDomain } from '../../src/iommu-core/domain.ts';
import type { PageRequest } from '../../src/iommu-core/types.ts';
import { SvaHandle } from '../../src/iommu-core/sva.ts';
import { setup } from './test-driver.ts';

const req = (grpid: number, addr: number, last: boolean, pasid = 7, write = false): PageRequest => ({
  pasid, grpid, addr, read: true, write, exec: false, priv: false, last, needsPasid: true,
});

t.test('partial requests are collected per PRG index and handled together after the last one', async (t) => {
  const { board, core, iopf, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  const seen: number[][] = [];
  // The handler is set before the attach (iommufd: at HWPT allocation), so the attach puts the device on the queue.
  d.iopfHandler = (_dev, reqs, respond) => {
    seen.push(reqs.map((r) => r.addr));
    respond('success');
  };
  core.attachDevicePasid(d, a, 7);
  iopf.report(a, req(3, 0x1000, false));
  iopf.report(a, req(4, 0x9000, false));
  iopf.report(a, req(3, 0x2000, false));
  iopf.report(a, req(3, 0x3000, true));
  t.same(seen, [], 'handled later, as a workqueue would');
  t.equal(iopf.outstanding, 1);
  board.scheduler.run();
  t.same(seen, [[0x1000, 0x2000, 0x3000]]);
  t.same(driver.responses, [{ dev: a.bdf, grpid: 3, pasid: 7, code: 'success' }]);
  t.equal(board.now(), 500);
  t.same(iopf.latencies.sample, [500]);
  t.equal(iopf.latencies.count, 1);
  t.equal(iopf.latencies.mean, 500);
  iopf.report(a, req(4, 0xa000, true));
  board.scheduler.run();
  t.same(seen[1], [0x9000, 0xa000], 'the other group kept its partial request');
});

t.test('a group with no handler (or no domain on its PASID) is answered Invalid at once', async (t) => {
  const { core, iopf, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  iopf.report(a, req(1, 0x1000, true, 9));
  t.same(driver.responses.map((r) => r.code), ['invalid']);
  t.equal(iopf.outstanding, 0);
});

t.test('flush answers outstanding groups Invalid exactly once; a late answer is ignored', async (t) => {
  const { board, core, iopf, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  let later: ((c: 'success') => void) | undefined;
  d.iopfHandler = (_dev, _reqs, respond) => (later = respond);
  core.attachDevicePasid(d, a, 7);
  iopf.report(a, req(1, 0x1000, true));
  board.scheduler.run();
  t.equal(iopf.outstanding, 1, 'waiting for its handler to answer');
  t.equal(iopf.flush(a, 7), 1);
  later!('success');
  t.same(driver.responses.map((r) => r.code), ['invalid']);
});

t.test('too many partial requests poison their group, which is answered Invalid when it completes', async (t) => {
  const { board, core, dev, driver } = setup();
  const { IopfQueue } = await import('../../src/iommu-core/iopf.ts');
  const small = new IopfQueue(core, board.scheduler, board.tracer, board.counters, { maxPartial: 2 });
  driver.iopfQueue = small;
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  d.iopfHandler = (_dev, _r, respond) => respond('success');
  core.attachDevicePasid(d, a, 7);
  for (let i = 0; i < 3; i++) small.report(a, req(2, 0x1000 * i, false));
  small.report(a, req(2, 0x5000, true));
  board.scheduler.run();
  t.same(driver.responses.map((r) => r.code), ['invalid']);
});

t.test('SVA: one PASID per mm on every device; binding again returns the same bond; the PASID stays with the mm after the last unbind (iommu_sva_unbind_device frees none)', async (t) => {
  const { host, core, sva, dev } = setup();
  const a = dev(1);
  const b = dev(2);
  core.probe(a);
  core.probe(b);
  const p = host.spawn();
  const q = host.spawn();
  const h1 = sva.bind(a, p.mm, p.pid) as SvaHandle;
  const h2 = sva.bind(b, p.mm, p.pid) as SvaHandle;
  const h3 = sva.bind(a, p.mm, p.pid) as SvaHandle;
  const hq = sva.bind(a, q.mm, q.pid) as SvaHandle;
  t.equal(h1.pasid, h2.pasid, 'same PASID on both devices');
  t.equal(h3, h1, 'a repeated bind is the same bond');
  t.equal(h1.refs, 2);
  t.not(hq.pasid, h1.pasid, 'another mm, another PASID');
  t.equal(core.domainForPasid(a, h1.pasid), h1.domain);
  sva.unbind(h1);
  t.equal(core.domainForPasid(a, h1.pasid), h1.domain, 'still bound once');
  sva.unbind(h1);
  t.equal(core.domainForPasid(a, h1.pasid), undefined);
  t.equal(sva.pasidOf(p.mm), h2.pasid, 'b keeps the PASID');
  sva.unbind(h2);
  t.equal(sva.pasidOf(p.mm), h1.pasid, 'mm->pasid outlives the last bond: it goes with the mm (mm_pasid_drop)');
  const again = sva.bind(a, p.mm, p.pid) as SvaHandle;
  t.equal(again.pasid, h1.pasid, 'a later bind finds the same PASID');
  const r = host.spawn();
  t.not((sva.bind(b, r.mm, r.pid) as SvaHandle).pasid, h1.pasid, 'nobody else gets it meanwhile');
});

t.test('SVA PASIDs come from the global space bounded by the device (iommu_alloc_mm_data): EOVERFLOW when the mm already has one at or above max_pasids, ENOSPC when none is free below it', async (t) => {
  const { host, core, sva, dev, driver } = setup();
  const wide = dev(1);
  const narrow = dev(2);
  const none = dev(3);
  driver.maxPasidsOf.set(narrow, 2); // PASID 1 only
  driver.maxPasidsOf.set(none, 0);
  for (const d of [wide, narrow, none]) core.probe(d);
  const q = host.spawn();
  const p = host.spawn();
  t.equal((sva.bind(wide, q.mm, q.pid) as SvaHandle).pasid, 1);
  t.equal((sva.bind(wide, p.mm, p.pid) as SvaHandle).pasid, 2);
  t.equal(sva.bind(narrow, p.mm, p.pid), -EOVERFLOW, 'p holds PASID 2, beyond the narrow device');
  const r = host.spawn();
  t.equal(sva.bind(narrow, r.mm, r.pid), -ENOSPC, 'PASID 1, the only one below 2, is taken');
  t.equal(sva.pasidOf(r.mm), undefined, 'and r got none');
  t.equal(sva.bind(none, r.mm, r.pid), -ENOSPC, 'a device without PASIDs: iommu_alloc_global_pasid fails');
  t.equal(sva.bind(none, p.mm, p.pid), -EOVERFLOW, 'an mm with a PASID on a device without PASIDs');
  t.equal((sva.bind(narrow, q.mm, q.pid) as SvaHandle).pasid, 1, 'q\'s PASID 1 fits the narrow device');
});

t.test('SVA faults are resolved on the mm, and refused where the VMA forbids the access', async (t) => {
  const { board, host, core, sva, iopf: queue, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const p = host.spawn();
  const rw = Number(p.mmap(4 * 4096));
  const ro = Number(p.mmap(4096, { prot: PROT_READ }));
  const h = sva.bind(a, p.mm, p.pid) as SvaHandle;
  queue.report(a, req(1, rw, false, h.pasid, true));
  queue.report(a, req(1, rw + 4096, true, h.pasid, true));
  board.scheduler.run();
  t.equal(driver.responses.at(-1)!.code, 'success');
  t.ok(p.mm.physOf(rw) >= 0 && p.mm.physOf(rw + 4096) >= 0, 'both pages faulted in');
  queue.report(a, req(2, ro, true, h.pasid, true));
  board.scheduler.run();
  t.equal(driver.responses.at(-1)!.code, 'invalid', 'write to a read-only VMA');
  queue.report(a, req(3, 0x10, true, h.pasid));
  board.scheduler.run();
  t.equal(driver.responses.at(-1)!.code, 'invalid', 'no VMA');
});

t.test('process exit blocks its PASIDs (the mm release) but the bonds stay until unbound; faults on them are answered Invalid; the PASID is freed with the mm', async (t) => {
  const { board, host, core, sva, iopf, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const p = host.spawn();
  const addr = Number(p.mmap(4096));
  const h = sva.bind(a, p.mm, p.pid) as SvaHandle;
  t.ok(driver.pasidAttached.has(`${a.bdf}/${h.pasid}`), 'the PASID translates');
  iopf.report(a, req(1, addr, true, h.pasid));
  t.equal(iopf.outstanding, 1);
  p.exit();
  t.notOk(driver.pasidAttached.has(`${a.bdf}/${h.pasid}`), 'translation on the PASID stopped');
  t.ok(h.alive, 'the bond is still there');
  t.equal(core.domainForPasid(a, h.pasid), h.domain, 'and still attached as far as the core knows');
  board.scheduler.run();
  t.same(driver.responses.map((r) => r.code), ['invalid'], 'the pending fault finds no mm (mmget_not_zero fails)');
  t.equal(sva.bind(a, p.mm, p.pid), -EINVAL, 'a dead mm cannot be bound');
  t.equal(sva.pasidOf(p.mm), h.pasid, 'the PASID stays while a domain holds the mm');
  const q = host.spawn();
  t.not((sva.bind(a, q.mm, q.pid) as SvaHandle).pasid, h.pasid);
  const tables = host.allocator.pagesInUse;
  sva.unbind(h);
  t.notOk(h.alive);
  t.equal(core.domainForPasid(a, h.pasid), undefined);
  t.equal(sva.pasidOf(p.mm), undefined, 'mm dropped: mm_pasid_drop freed the PASID');
  t.ok(host.allocator.pagesInUse < tables, 'and the exited process\'s page table went with it');
  board.scheduler.run();
  t.equal(driver.responses.length, 1, 'nothing answered twice');
  t.same(sva.handles().map((x) => x.pid), [q.pid]);
});
