/**
 * fail-nth over the iommufd operations (the kernel's iommufd_fail_nth
 * selftest): each injectable step of map, copy, attach, HWPT alloc, fault
 * queue alloc and the VFIO compat MAP_DMA fails in turn; the call must
 * return an errno and leave no object, area, pin, charge or IOMMU entry.
 */
import t from 'tap';
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { runFailNth, type FailNthOperation } from '../../tools/fault/fail-nth.ts';
import type { Process } from '../../src/host/process.ts';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_COPY,
  iommu_fault_alloc,
  iommu_hwpt_alloc,
  iommu_ioas_copy,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_TYPE1v2_IOMMU } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { vste } from '../../iommu/guest/smmuv3.ts';
import { STE_CONFIG } from '../../iommu/smmuv3/ste.ts';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_vdevice_alloc,
  iommu_viommu_alloc,
} from '../../src/uapi/iommufd.ts';
import { attach, bind, ioasAlloc, map, PAGE, RW } from './fixture.ts';

const DMA0 = '0000:00:01.0';

interface Ctx {
  p: Process;
  fd: number;
  cdev: number;
  devId: number;
  ioas: number;
  buf: bigint;
}

function minorOf(m: Machine, p: Process, bdf: string): number {
  const names = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  if (typeof names === 'number' || names.length === 0) throw new Error(`no vfio-dev for ${bdf}`);
  return Number(names[0]!.replace('vfio', ''));
}

/** A process with /dev/iommu, an IOAS, DMA0 bound (not attached unless asked) and a 16-page buffer. */
function base(m: Machine, attached: boolean, mapped: boolean): Ctx {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, minorOf(m, p, DMA0));
  const buf = p.mmap(16 * PAGE);
  if (attached && attach(p, cdev, ioas)[0] < 0) throw new Error('attach');
  if (mapped && map(p, fd, ioas, buf, 16 * PAGE, 0x40_0000)[0] < 0) throw new Error('map');
  return { p, fd, cdev, devId, ioas, buf };
}

function op(kind: MachineKind, name: string, attached: boolean, mapped: boolean, run: (s: Ctx) => number): FailNthOperation<Ctx> {
  return { name: `${kind}: ${name}`, machine: kind, setup: (m) => base(m, attached, mapped), run: (_m, s) => run(s) };
}

function ops(kind: MachineKind): FailNthOperation<Ctx>[] {
  return [
    op(kind, 'IOMMU_IOAS_MAP into an attached IOAS', true, false, (s) => map(s.p, s.fd, s.ioas, s.buf, 16 * PAGE, 0x40_0000)[0]),
    op(kind, 'IOMMU_IOAS_COPY into a second IOAS the device is attached to', false, true, (s) => {
      const dst = ioasAlloc(s.p, s.fd);
      if (dst < 0) return dst;
      const a = attach(s.p, s.cdev, dst)[0];
      if (a < 0) return a;
      const b = encodeStruct(iommu_ioas_copy, { size: iommu_ioas_copy.size, flags: RW | 1, dst_ioas_id: dst, src_ioas_id: s.ioas, length: 8 * PAGE, dst_iova: 0x80_0000, src_iova: 0x40_0000 });
      return s.p.ioctl(s.fd, IOMMU_IOAS_COPY, b);
    }),
    op(kind, 'VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS holding mappings', false, true, (s) => attach(s.p, s.cdev, s.ioas)[0]),
    op(kind, 'IOMMU_FAULT_QUEUE_ALLOC + IOMMU_HWPT_ALLOC with it', false, true, (s) => {
      const fb = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
      const r = s.p.ioctl(s.fd, IOMMU_FAULT_QUEUE_ALLOC, fb);
      if (r < 0) return r;
      const faultId = new StructView(iommu_fault_alloc, fb).num('out_fault_id');
      const hb = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: s.devId, pt_id: s.ioas, fault_id: faultId });
      const h = s.p.ioctl(s.fd, IOMMU_HWPT_ALLOC, hb);
      if (h < 0) return h;
      return attach(s.p, s.cdev, new StructView(iommu_hwpt_alloc, hb).num('out_hwpt_id'))[0];
    }),
  ];
}

/** The legacy container sequence on a machine whose /dev/vfio/vfio is an iommufd. */
function compatMapDma(kind: MachineKind): FailNthOperation<{ v: VfioClient; c: number; buf: bigint }> {
  return {
    name: `${kind}: VFIO_IOMMU_MAP_DMA on an iommufd-provided /dev/vfio/vfio (device attached through its group)`,
    machine: () => createMachine(kind, { vfioContainer: 'iommufd' }),
    setup(m) {
      const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
      const v = new VfioClient(p);
      const c = p.open('/dev/vfio/vfio');
      const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DMA0))!.id}`);
      if (v.setContainer(g, c) < 0 || v.setIommu(c, VFIO_TYPE1v2_IOMMU) < 0) throw new Error('container');
      const buf = p.mmap(16 * PAGE);
      v.deviceFd(g, DMA0);
      return { v, c, buf };
    },
    run: (_m, s) => s.v.mapDma(s.c, { vaddr: s.buf, iova: 0x40_0000n, size: 16 * PAGE }),
  };
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  for (const o of [...ops(kind), compatMapDma(kind)]) {
    t.test(`${o.name}: every failed step unwinds with an errno and breaks no invariant`, async (t) => {
      const r = runFailNth(o as Parameters<typeof runFailNth>[0]);
      t.ok(r.completed, 'the uninjected run succeeds');
      t.ok(r.steps >= 1, `${r.steps} steps exercised (${JSON.stringify(r.byPoint)})`);
      t.ok(Object.keys(r.byPoint).some((p) => p.startsWith('iommufd.')), 'iommufd points were among them');
      t.same(r.problems, [], 'no exception, no invariant violated');
      for (const rec of r.records) if (typeof rec.result === 'number' && rec.point?.startsWith('iommufd.')) t.ok(rec.result < 0, `${rec.point} failed the call`);
    });
  }
}

// The vIOMMU objects come from iommufd's object allocator as every other object does
// (_iommufd_object_alloc_ucmd for the vIOMMU, _iommufd_object_alloc for the vDEVICE,
// __iommufd_object_alloc for a nested HWPT on a vIOMMU), so fail-nth reaches each.
t.test('virt-smmuv3: VIOMMU_ALLOC, VDEVICE_ALLOC and a nested HWPT on the vIOMMU each take one iommufd object allocation', async (t) => {
  const r = runFailNth(
    {
      name: 'viommu objects',
      machine: 'virt-smmuv3',
      setup: (m) => {
        const s = base(m, true, true);
        const hb = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: s.devId, pt_id: s.ioas });
        if (s.p.ioctl(s.fd, IOMMU_HWPT_ALLOC, hb) !== 0) throw new Error('nest parent');
        return { ...s, parent: new StructView(iommu_hwpt_alloc, hb).num('out_hwpt_id') };
      },
      run: (_m, s) => {
        const vb = encodeStruct(iommu_viommu_alloc, { size: iommu_viommu_alloc.size, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, dev_id: s.devId, hwpt_id: s.parent });
        const v = s.p.ioctl(s.fd, IOMMU_VIOMMU_ALLOC, vb);
        if (v < 0) return v;
        const viommu = new StructView(iommu_viommu_alloc, vb).num('out_viommu_id');
        const d = s.p.ioctl(s.fd, IOMMU_VDEVICE_ALLOC, encodeStruct(iommu_vdevice_alloc, { size: iommu_vdevice_alloc.size, viommu_id: viommu, dev_id: s.devId, virt_id: 1n }));
        if (d < 0) return d;
        const data = s.p.mmap(PAGE, { populate: true });
        s.p.memWrite(data, vste({ V: 1, Config: STE_CONFIG.ABORT }));
        return s.p.ioctl(s.fd, IOMMU_HWPT_ALLOC, encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, dev_id: s.devId, pt_id: viommu, data_type: IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16, data_uptr: data }));
      },
    },
    { points: ['iommufd.object_alloc'] },
  );
  t.ok(r.completed, 'the uninjected run succeeds');
  t.equal(r.byPoint['iommufd.object_alloc'], 3, 'three object allocations failed in turn: vIOMMU, vDEVICE, nested HWPT');
  t.same(r.problems, [], 'each failed with an errno and left nothing behind');
});
