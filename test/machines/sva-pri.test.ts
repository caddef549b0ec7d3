import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { SvaHandle } from '../../src/iommu-core/sva.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';

/** Both machines take page requests through their IOMMU (virt-smmuv3 with the posted SMMUv3 PRI series: mainline denies them). */
const PRI_MACHINES = ['virt-smmuv3', 'q35-vtd'] as const;
const PRI = { smmuPri: 'posted-series' } as const;

for (const kind of PRI_MACHINES) {
  t.test(`${kind}: a DMA engine bound to a process by SVA reads its memory and faults untouched pages in through PRI`, async (t) => {
    const m = createMachine(kind, PRI);
    const dev = m.device('0000:00:01.0');
    const p = m.host.spawn();
    const va = p.mmap(16 * 4096);
    p.memWrite(va + 8192n, new TextEncoder().encode('hello sva'));
    const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
    t.type(h, 'object');
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const r = dev.dmaRead(va + 8192n, 9, { pasid: h.pasid });
    t.equal(r.ok && new TextDecoder().decode(r.data), 'hello sva');
    const untouched = va + 10n * 4096n;
    t.equal(p.mm.physOf(Number(untouched)), -1, 'not resident before');
    const before = m.now();
    t.ok(dev.dmaWrite(untouched, new Uint8Array([7, 7]), { pasid: h.pasid }).ok);
    t.ok(m.now() > before, 'the page request took virtual time');
    t.same(p.memRead(untouched, 2), new Uint8Array([7, 7]), 'the process sees what the device wrote');
    t.equal(m.board.counters.get('iopf.groups_answered'), 1);
    const ro = p.mmap(4096, { prot: 1 });
    const w = dev.dmaWrite(ro, new Uint8Array([1]), { pasid: h.pasid });
    t.equal(w.ok, false, `write to a read-only VMA refused (${w.ok ? '' : w.fault})`);
    m.host.sva.unbind(h);
    t.equal(dev.dmaRead(va + 8192n, 1, { pasid: h.pasid }).ok, false, 'unbound PASID no longer reaches the process');
  });
}

for (const kind of PRI_MACHINES) {
  t.test(`${kind}: after a bound process exits its PASID only faults (the mm release blocks it; the bond stays until unbind) and is not handed to the next process until the mm is dropped (mm_pasid_drop from __mmdrop)`, async (t) => {
    const m = createMachine(kind, PRI);
    const dev = m.device('0000:00:01.0');
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const sva = m.host.sva;
    const p = m.host.spawn();
    const va = p.mmap(4096, { populate: true });
    p.memWrite(va, new TextEncoder().encode('p secret'));
    const hp = sva.bind(dev, p.mm, p.pid) as SvaHandle;
    const old = hp.pasid;
    t.equal(new TextDecoder().decode((dev.dmaRead(va, 8, { pasid: old }) as { data: Uint8Array }).data), 'p secret');
    p.exit();
    t.ok(hp.alive, 'the bond stays until the driver unbinds');
    const after = dev.dmaRead(va, 8, { pasid: old });
    t.equal(after.ok, false, `the old PASID faults after exit (${after.ok ? '' : after.fault})`);
    // A new process at the same address: the old PASID must never reach it.
    const q = m.host.spawn();
    const vq = q.mmap(4096, { populate: true });
    q.memWrite(vq, new TextEncoder().encode('q secret'));
    const hq = sva.bind(dev, q.mm, q.pid) as SvaHandle;
    t.not(hq.pasid, old, 'the exited mm still holds its PASID');
    t.equal(dev.dmaRead(vq, 8, { pasid: old }).ok, false, 'the old PASID does not read the new process');
    t.equal(new TextDecoder().decode((dev.dmaRead(vq, 8, { pasid: hq.pasid }) as { data: Uint8Array }).data), 'q secret');
    m.run();
    // The driver lets go: the last reference to the exited mm goes, and so does its PASID.
    sva.unbind(hp);
    t.notOk(hp.alive);
    const r = m.host.spawn();
    const hr = sva.bind(dev, r.mm, r.pid) as SvaHandle;
    t.equal(hr.pasid, old, 'the lowest free PASID again, now the new mm\'s own');
  });
}

for (const kind of PRI_MACHINES) {
  t.test(`${kind}: after fork the SVA process's pages are write-protected; a device write takes a page request and breaks copy-on-write in the bound process only; the child has no PASID (mm_pasid_init)`, async (t) => {
    const m = createMachine(kind, PRI);
    const dev = m.device('0000:00:01.0');
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const p = m.host.spawn();
    const va = p.mmap(4096, { populate: true });
    p.memWrite(va, new Uint8Array([1, 2, 3, 4]));
    const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
    t.ok(dev.dmaRead(va, 4, { pasid: h.pasid }).ok, 'the device reads through the PASID (its IOTLB warm)');
    const child = p.fork();
    t.equal(m.host.sva.pasidOf(child.mm), undefined, 'the child has no PASID');
    const shared = p.mm.physOf(Number(va));
    t.equal(child.mm.physOf(Number(va)), shared, 'shared copy-on-write');
    const answered = m.board.counters.get('iopf.groups_answered');
    t.ok(dev.dmaWrite(va, new Uint8Array([9]), { pasid: h.pasid }).ok, 'the write completes');
    t.equal(m.board.counters.get('iopf.groups_answered'), answered + 1, 'after a page request for the write-protected page');
    t.same(p.memRead(va, 2), new Uint8Array([9, 2]), 'the bound process sees the device write');
    t.same(child.memRead(va, 2), new Uint8Array([1, 2]), 'the child keeps the old page');
    t.not(p.mm.physOf(Number(va)), child.mm.physOf(Number(va)));
    m.host.sva.unbind(h);
  });
}
