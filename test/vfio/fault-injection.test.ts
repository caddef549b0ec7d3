import t from 'tap';
import { InjectionPoint } from '../../src/fault/injector.ts';
import { TestDriver } from '../iommu-core/test-driver.ts';
import { VFIO_DMA_UNMAP_FLAG_ALL } from '../../src/uapi/vfio.ts';
import { VFIO_INJECTION_POINTS, type VfioInjectionPointName } from '../../src/vfio/points.ts';
import { assertNothingLeft, map, openTyped, PAGE, unmap, VARIANTS, type MachineFixture } from './fixture.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {

    /** The board's point: the VFIO module defined it when it loaded. */
    function point(f: MachineFixture, name: VfioInjectionPointName): InjectionPoint {
      return f.board.faults.point(name);
    }

    t.test('every VFIO injection point is described', async (t) => {
      for (const [name, spec] of Object.entries(VFIO_INJECTION_POINTS)) {
        t.match(name, /^vfio\./);
        t.ok(spec.description.length > 10);
        t.same(spec.actions, ['fail'], 'a VFIO step can only fail');
      }
    });

    t.test('fail-nth over MAP_DMA: each failing step unwinds to nothing (pins, IOMMU entries, accounting)', { skip: !v.heavy && 'heavy case: q35-vtd only' }, async (t) => {
      for (const name of ['vfio.dma_alloc', 'vfio.pin', 'vfio.iommu_map'] as const) {
        for (let n = 1; n < 20; n++) {
          const f = v.setup();
          const { p } = f;
          const [c] = openTyped(p, f.groupOf(f.dma));
          const va = p.mmap(1100 * PAGE, { populate: true });
          const pt = point(f, name);
          const target = pt.hits + n;
          pt.arm((hit) => (hit === target ? { kind: 'fail' } : undefined));
          const r = map(p, c, { vaddr: va, iova: 0x100_0000, size: 1100 * PAGE });
          pt.disarm();
          if (r === 0) {
            t.same(unmap(p, c, { iova: 0, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL })[0], 0);
            break;
          }
          t.ok(r < 0, `${name} #${n} fails the map`);
          assertNothingLeft(t, f, 0x100_0000, 1100 * PAGE);
        }
      }
    });

    // Forces a second IOMMU instance by swapping in another test driver: a topology the real machines (one IOMMU each) do not have.
    t.test('an injected failure at attach (domain allocation, replay) fails SET_CONTAINER and leaves the group free', { skip: v.real && 'test driver only' }, async (t) => {
      for (const name of ['vfio.domain_alloc', 'vfio.replay'] as const) {
        const f = v.setup();
        const { p } = f;
        const [c] = openTyped(p, f.groupOf(f.dma));
        const va = p.mmap(PAGE, { populate: true });
        t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE }), 0);
        const g = f.host.iommu.groupOf(f.bare)!;
        // Another IOMMU instance, so the group needs a domain of its own (and a replay).
        Object.defineProperty(g, 'driver', { value: new TestDriver(f.host) });
        const pt = point(f, name);
        pt.arm(() => ({ kind: 'fail' }));
        const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
        const r = p.ioctl(g2, 0x3b68, new Uint8Array(new Int32Array([c]).buffer));
        pt.disarm();
        t.ok(r < 0, `${name}: SET_CONTAINER fails (${r})`);
        t.equal(g.owner, undefined);
        t.equal(g.domain, g.defaultDomain);
      }
    });

    t.test('an injected vector allocation failure is ENOSPC and leaves MSI-X off', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [, g] = openTyped(p, f.groupOf(f.dma));
      const d = p.ioctl(g, 0x3b6a, new Uint8Array([...f.dma.bdf].map((x) => x.charCodeAt(0)).concat(0)));
      const pt = point(f, 'vfio.irq_alloc');
      pt.arm(() => ({ kind: 'fail' }));
      const b = new Uint8Array(24);
      const dv = new DataView(b.buffer);
      [24, 4 | 32, 2, 0, 1].forEach((v, i) => dv.setUint32(4 * i, v, true));
      dv.setInt32(20, p.eventfd(), true);
      t.equal(p.ioctl(d, 0x3b6e, b), -28);
      t.equal(f.dma.msix.enabled, false);
    });
  });
}
