import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_SUCCESS,
  iommu_fault_alloc,
  iommu_hwpt_alloc,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

t.test('q35-vtd: a user-space PRI handler reads the page fault from the fault queue, maps the page, answers, and the DMA completes', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const buf = p.mmap(PAGE, { populate: true }); // the handler's backing memory
  const baseline = m.host.allocator.pagesInUse;
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  const fa = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
  t.equal(p.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, fa), 0);
  const faultId = new StructView(iommu_fault_alloc, fa).num('out_fault_id');
  const ffd = new StructView(iommu_fault_alloc, fa).num('out_fault_fd');
  const ha = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: ioas, fault_id: faultId });
  t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, ha), 0, 'HWPT_ALLOC with a fault queue');
  const hwpt = new StructView(iommu_hwpt_alloc, ha).num('out_hwpt_id');
  t.same(attach(p, cdev, hwpt), [0, hwpt], 'the RID attached to the IOPF-capable HWPT');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);

  // The VMM's fault thread: poll the queue every microsecond of virtual time.
  const seen: StructView<keyof typeof iommu_hwpt_pgfault.fields>[] = [];
  let running = true;
  const poll = (): void => {
    if (!running) return;
    const d = p.read(ffd, 4 * iommu_hwpt_pgfault.size);
    if (d instanceof Uint8Array) {
      for (let off = 0; off < d.length; off += iommu_hwpt_pgfault.size) {
        const rec = new StructView(iommu_hwpt_pgfault, d.slice(off, off + iommu_hwpt_pgfault.size));
        seen.push(rec);
        const iova = Number(rec.big('addr')) & ~(PAGE - 1);
        t.equal(map(p, fd, ioas, buf, PAGE, iova)[0], 0, `fault at ${iova.toString(16)} mapped`);
        t.equal(p.write(ffd, encodeStruct(iommu_hwpt_page_response, { cookie: rec.num('cookie'), code: IOMMUFD_PAGE_RESP_SUCCESS })), 8);
      }
    }
    m.board.scheduler.schedule(1000, poll, 'vmm-fault-thread');
  };
  m.board.scheduler.schedule(1000, poll, 'vmm-fault-thread');

  const before = m.now();
  const w = dev.dmaWrite(0x7700_0000n + 0x10n, new Uint8Array([1, 2, 3, 4]));
  t.ok(w.ok, `the DMA completes after the page request (${w.ok ? '' : w.fault})`);
  t.ok(m.now() > before, 'the round trip took virtual time');
  t.equal(seen.length, 1, 'one page request');
  t.equal(seen[0]?.num('dev_id'), devId, 'the record names the device');
  t.ok(((seen[0]?.num('perm') ?? 0) & IOMMU_PGFAULT_PERM_WRITE) !== 0, 'a write request');
  t.equal(seen[0]?.num('flags'), IOMMU_PGFAULT_FLAGS_LAST_PAGE, 'flags as intel_prq_report set them: a request without PASID, last of its group');
  t.equal(seen[0]?.num('cookie'), 1, 'the first cookie is 1');
  t.same(p.memRead(buf + 0x10n, 4), new Uint8Array([1, 2, 3, 4]), 'the process sees the data');
  const r = dev.dmaRead(0x7700_0010n, 4);
  t.ok(r.ok, 'the mapped page now translates without a fault');
  t.equal(seen.length, 1);
  running = false;
  m.run();
  p.close(cdev);
  p.close(ffd);
  p.close(fd);
  t.equal(p.mm.pinnedVm, 0);
  t.equal(m.host.allocator.pagesInUse, baseline, 'every page the context and the domain used is back');
});
