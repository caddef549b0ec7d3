/**
 * PASID-compatible HWPTs (drivers/iommu/iommufd/device.c
 * iommufd_hwpt_pasid_compat, as the selftest iommufd_device_pasid.pasid_attach
 * checks it): a PASID attaches only to a HWPT allocated with
 * IOMMU_HWPT_ALLOC_PASID, and only while the RID sits on such a HWPT (or on
 * none); the RID cannot move onto a HWPT without the flag while PASIDs are
 * attached; the automatic HWPT of an IOAS attach is allocated with flags 0,
 * so a PASID never attaches to an IOAS. Each refusal is -EINVAL and changes
 * nothing. On both real machines.
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { IommufdFile } from '../../src/iommufd/main.ts';
import { IommufdDevice } from '../../src/iommufd/objects.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { EINVAL, EOPNOTSUPP } from '../../src/uapi/errno.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  VFIO_DEVICE_ATTACH_PASID,
  iommu_hwpt_alloc,
  vfio_device_attach_iommufd_pt,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT } from '../../src/uapi/vfio.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags: number): number {
  const b = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return r < 0 ? r : new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id');
}

function attachPasid(p: Process, cdev: number, ptId: number, pasid: number): number {
  const b = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: ptId, pasid });
  return p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: a PASID attaches only to a PASID-compatible HWPT, and only beside a PASID-compatible RID (iommufd_hwpt_pasid_compat)`, async (t) => {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const dev = m.device('0000:00:01.0');
    const p = m.host.spawn({ memlockLimit: 2 ** 30 });
    const va = p.mmap(4 * PAGE, { populate: true });
    p.memWrite(va, new Uint8Array([9, 8, 7, 6]));
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    t.equal(map(p, fd, ioas, va, 4 * PAGE, 0x20_0000)[0], 0);
    const [cdev, devId] = bind(p, fd, 0);
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const ctx = (p.file(fd) as IommufdFile).ctx;
    const snapshot = () =>
      [...ctx.objects.values()].map((o) => `${o.id}:${o.type}:${o.refs}${o instanceof IommufdDevice ? `@${o.attached?.id}/${[...o.pasids].map(([k, h]) => `${k}=${h.id}`)}` : ''}`).join(' ');

    const plain = hwptAlloc(p, fd, devId, ioas, 0);
    const compat = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_PASID);
    const parent = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    t.ok(plain > 0 && compat > 0 && parent > 0, 'three paging HWPTs');

    // The RID on the IOAS: its automatic HWPT has flags 0.
    t.equal(attach(p, cdev, ioas)[0], 0);
    let before = snapshot();
    t.equal(attachPasid(p, cdev, compat, 5), -EINVAL, 'the RID sits on a HWPT without ALLOC_PASID');
    t.equal(snapshot(), before, 'nothing changed');

    // The RID on a PASID-compatible HWPT.
    t.equal(attach(p, cdev, compat)[0], 0, 'RID replaced onto the PASID-compatible HWPT');
    before = snapshot();
    t.equal(attachPasid(p, cdev, ioas, 5), -EINVAL, 'an IOAS: its automatic HWPT is never PASID-compatible');
    t.equal(attachPasid(p, cdev, plain, 5), -EINVAL, 'a HWPT allocated without ALLOC_PASID');
    t.equal(attachPasid(p, cdev, parent, 5), -EINVAL, 'a nest parent allocated without ALLOC_PASID');
    t.equal(snapshot(), before, 'nothing changed');
    t.equal(attachPasid(p, cdev, compat, 5), 0, 'PASID 5 on the PASID-compatible HWPT');
    const rd = dev.dmaRead(0x20_0000n, 4, { pasid: 5 });
    t.same(rd.ok ? [...rd.data!] : rd.fault, [9, 8, 7, 6], 'DMA with PASID 5 translates');

    // With a PASID attached the RID cannot leave for a HWPT without ALLOC_PASID.
    before = snapshot();
    t.equal(attach(p, cdev, plain)[0], -EINVAL, 'RID replace onto a HWPT without ALLOC_PASID');
    t.equal(attach(p, cdev, ioas)[0], -EINVAL, 'RID replace onto the IOAS (automatic HWPT, flags 0)');
    t.equal(snapshot(), before, 'nothing changed');
    t.ok(dev.dmaRead(0x20_0000n, 4).ok, 'the RID still translates through the PASID-compatible HWPT');
  });
}

t.test('virt-smmuv3: a nest parent cannot be PASID-compatible (arm_smmu_domain_alloc_paging_flags: NEST_PARENT | PASID is -EOPNOTSUPP); q35-vtd allows it (intel_iommu_domain_alloc_second_stage)', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const p = m.host.spawn();
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const [, devId] = bind(p, fd, 0);
    const r = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID);
    if (kind === 'virt-smmuv3') t.equal(r, -EOPNOTSUPP, kind);
    else t.ok(r > 0, kind);
  }
});
