import t from 'tap';
import { EFAULT, EINVAL, EPERM, ESRCH } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PID,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_UNBIND,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_iommu_type1_bind,
  vfio_iommu_type1_bind_process,
} from '../../src/uapi/vfio.ts';
import { bindVfioPci } from '../../src/vfio/bind.ts';
import { vfioModule } from '../../src/vfio/module.ts';
import { BareFunction } from '../pci/helpers.ts';
import { openTyped, PAGE, s32, variantsWith } from './fixture.ts';

for (const v of variantsWith('sva-bind')) {
  t.test(v.name, async (t) => {

    function bindBytes(o: { flags?: number; pflags?: number; pid?: number; argsz?: number } = {}): Uint8Array {
      const b = new Uint8Array(20);
      b.set(encodeStruct(vfio_iommu_type1_bind, { argsz: o.argsz ?? 20, flags: o.flags ?? VFIO_IOMMU_BIND_PROCESS }));
      b.set(encodeStruct(vfio_iommu_type1_bind_process, { flags: o.pflags ?? 0, pid: o.pid ?? 0 }), 8);
      return b;
    }

    function bind(p: Process, c: number, o: Parameters<typeof bindBytes>[0] = {}, req = VFIO_IOMMU_BIND): [number, number] {
      const b = bindBytes(o);
      const r = p.ioctl(c, req, b);
      return [r, new StructView(vfio_iommu_type1_bind_process, b.subarray(8)).num('pasid')];
    }

    t.test('BIND_PROCESS binds the caller to every device of the container and returns its PASID; binding again returns the same PASID', async (t) => {
      const f = v.setup();
      const { p, host } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      const [r, pasid] = bind(p, c);
      t.equal(r, 0);
      t.ok(pasid >= 1);
      t.same(host.sva.handles().map((h) => [h.dev.bdf, h.pasid]), [[f.sva.bdf, pasid]]);
      t.same(bind(p, c), [0, pasid]);
      t.equal(host.sva.handles().length, 1);
    });

    t.test('the device\'s DMA tagged with the PASID reaches the bound process\'s memory', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      const va = p.mmap(PAGE);
      p.memWrite(va, new Uint8Array([0x5a]));
      const [, pasid] = bind(p, c);
      f.sva.config.write(4, 2, 0x6);
      const r = f.sva.dmaRead(va, 1, { pasid });
      t.ok(r.ok && r.data![0] === 0x5a);
      t.equal(f.sva.dmaRead(va, 1, { pasid: pasid + 1 }).ok, false, 'another PASID does not');
    });

    t.test('BIND_PID binds another process the caller may ptrace (same uid or root): EPERM otherwise, ESRCH for no such process', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      const same = f.spawn({ uid: 1000 });
      const other = f.spawn({ uid: 2000 });
      t.equal(bind(p, c, { pflags: VFIO_IOMMU_BIND_PID, pid: other.pid })[0], -EPERM);
      t.equal(bind(p, c, { pflags: VFIO_IOMMU_BIND_PID, pid: 99999 })[0], -ESRCH);
      const [r, pasid] = bind(p, c, { pflags: VFIO_IOMMU_BIND_PID, pid: same.pid });
      t.equal(r, 0);
      t.equal(f.host.sva.pasidOf(same.mm), pasid);
      const root = f.spawn({ uid: 0 });
      const [rc] = openTyped(root, f.groupOf(f.sva2));
      t.equal(bind(root, rc, { pflags: VFIO_IOMMU_BIND_PID, pid: other.pid })[0], 0, 'root may');
    });

    t.test('bind header rules: flags must be exactly BIND_PROCESS, unknown process flags and short argsz are EINVAL, a short buffer is EFAULT', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      t.equal(bind(p, c, { flags: 0 })[0], -EINVAL);
      t.equal(bind(p, c, { flags: 3 })[0], -EINVAL);
      t.equal(bind(p, c, { pflags: 2 })[0], -EINVAL);
      t.equal(bind(p, c, { argsz: 19 })[0], -EINVAL);
      t.equal(bind(p, c, { argsz: 7 })[0], -EINVAL);
      t.equal(p.ioctl(c, VFIO_IOMMU_BIND, bindBytes().subarray(0, 12)), -EFAULT);
      t.equal(f.host.sva.handles().length, 0);
    });

    t.test('UNBIND removes the bond; unbinding what is not bound is ESRCH', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      t.equal(bind(p, c)[0], 0);
      t.equal(bind(p, c, {}, VFIO_IOMMU_UNBIND)[0], 0);
      t.equal(f.host.sva.handles().length, 0);
      t.equal(bind(p, c, {}, VFIO_IOMMU_UNBIND)[0], -ESRCH);
    });

    t.test('a group attached later gets the existing bonds replayed, with the same PASID', async (t) => {
      const f = v.setup();
      const { p, host } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      const [, pasid] = bind(p, c);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.sva2)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.same(host.sva.handles().map((h) => [h.dev.bdf, h.pasid]).sort(), [[f.sva.bdf, pasid], [f.sva2.bdf, pasid]]);
    });

    t.test('multi-device groups are refused (EINVAL): at BIND, and when such a group joins a container with bonds', async (t) => {
      const m0 = new BareFunction('m0', { multifunction: true });
      const m1 = new BareFunction('m1', { multifunction: true });
      const f = v.setup({
        plug: [
          { bdf: '0000:00:04.0', fn: m0 },
          { bdf: '0000:00:04.1', fn: m1 },
        ],
      });
      bindVfioPci(f.host, m0);
      bindVfioPci(f.host, m1);
      t.equal(f.groupOf(m0), f.groupOf(m1), 'one group');
      const { p, host } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      t.equal(bind(p, c)[0], 0);
      const gm = p.open(`/dev/vfio/${f.groupOf(m0)}`);
      t.equal(p.ioctl(gm, VFIO_GROUP_SET_CONTAINER, s32(c)), -EINVAL, 'the bond cannot be replayed onto two devices');
      t.equal(host.iommu.groupOf(m0)!.owner, undefined, 'and the group was let go');
      const c2 = p.open('/dev/vfio/vfio');
      t.equal(p.ioctl(gm, VFIO_GROUP_SET_CONTAINER, s32(c2)), 0);
      t.equal(p.ioctl(c2, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
      t.equal(bind(p, c2)[0], -EINVAL);
      t.equal(host.sva.handles().length, 1, 'only the first container\'s bond');
    });

    t.test('process exit blocks its PASID but the bond stays (no mm_exit callback since the iommu-sva rework): UNBIND of the dead pid is ESRCH, container release removes every bond and the PASIDs go with their mms', async (t) => {
      const f = v.setup();
      const { p, host } = f;
      const [c] = openTyped(p, f.groupOf(f.sva));
      const other = f.spawn();
      const ova = other.mmap(PAGE, { populate: true });
      other.memWrite(ova, new Uint8Array([0x33]));
      const [r0, opasid] = bind(p, c, { pflags: VFIO_IOMMU_BIND_PID, pid: other.pid });
      t.equal(r0, 0);
      t.equal(bind(p, c)[0], 0);
      t.equal(host.sva.handles().length, 2);
      f.sva.config.write(4, 2, 0x6);
      t.ok(f.sva.dmaRead(ova, 1, { pasid: opasid }).ok, 'the bound process\'s memory through its PASID');
      other.exit();
      t.equal(host.sva.handles().length, 2, 'the exited process\'s bond stays');
      t.equal(f.sva.dmaRead(ova, 1, { pasid: opasid }).ok, false, 'but its PASID no longer translates');
      const iommu = vfioModule(host).groups.get(host.iommu.groupOf(f.sva)!)!.container!.iommu!;
      t.same(iommu.sva.count, 2);
      t.equal(bind(p, c, { pflags: VFIO_IOMMU_BIND_PID, pid: other.pid }, VFIO_IOMMU_UNBIND)[0], -ESRCH, 'no such process any more');
      t.equal(host.sva.pasidOf(other.mm), opasid, 'the PASID stays with the exited mm while bound');
      p.exit();
      t.equal(host.sva.handles().length, 0, 'the container went with the caller: every bond unbound');
      t.equal(host.sva.pasidOf(other.mm), undefined, 'and the exited mm, dropped, gave its PASID back');
    });
  });
}
