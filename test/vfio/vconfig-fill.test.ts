/**
 * vfio-pci's shadow of config space at open (vfio_config_init,
 * vfio_fill_vconfig_bytes): the header and every capability are read in the
 * widest aligned accesses that fit, dwords where they can be, as Linux does,
 * not byte by byte.
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { vfioType1Setup } from '../../tools/scenario/vmm.ts';

t.test('the shadow is filled in dwords', async (t) => {
  for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) {
    const m = createMachine(kind);
    const bdf = '0000:00:01.0';
    const p = m.host.spawn();
    m.board.rc.traceConfigReads = true;
    const reads: { offset: number; size: number }[] = [];
    let opening = false;
    m.board.tracer.on('pci.config.read', (r) => {
      if (opening && r.args.bdf === bdf) reads.push({ offset: r.args.offset as number, size: r.args.size as number });
    });
    opening = true;
    vfioType1Setup(m, p, bdf);
    opening = false;
    const ext = reads.filter((r) => r.offset >= 0x100);
    t.ok(ext.length > 0, `${kind}: the extended capabilities were read`);
    // (The kernel's ATS/PRI/PASID code reads its 16-bit registers with word reads of its own.)
    t.same(ext.filter((r) => r.size === 1), [], `${kind}: no extended-space byte read`);
    const covered = new Set(ext.filter((r) => r.size === 4).map((r) => r.offset));
    const engine = m.device(bdf);
    for (const c of engine.caps.extCaps()) t.ok(covered.has(c.offset), `${kind}: extended capability 0x${c.id.toString(16)} at 0x${c.offset.toString(16)} read`);
    const header = reads.filter((r) => r.offset < 0x40);
    t.ok(header.some((r) => r.offset === 0 && r.size === 4), `${kind}: the header's first dword in one read`);
  }
});
