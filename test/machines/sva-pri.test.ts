import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { SvaHandle } from '../../src/iommu-core/sva.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';

/** Both machines take page requests through their IOMMU. */
const PRI_MACHINES = ['virt-smmuv3', 'q35-vtd'] as const;

for (const kind of PRI_MACHINES) {
  t.test(`${kind}: a DMA engine bound to a process by SVA reads its memory and faults untouched pages in through PRI`, async (t) => {
    const m = createMachine(kind);
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
