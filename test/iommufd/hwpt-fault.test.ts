import t from 'tap';
import { POLLIN, POLLOUT, POLLRDNORM } from '../../src/uapi/poll.ts';
import { EBUSY, EINVAL, ENOENT, EOPNOTSUPP, ESPIPE } from '../../src/uapi/errno.ts';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  iommu_destroy,
  iommu_fault_alloc,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_hwpt_page_response,
  iommu_hwpt_pgfault,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import type { PageRequest } from '../../src/iommu-core/types.ts';
import { attach, bind, ioasAlloc, map, PAGE, setup } from './fixture.ts';

function hwptAlloc(f: ReturnType<typeof setup>, devId: number, ptId: number, flags = 0, faultId = 0): [number, number] {
  const b = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId, fault_id: faultId });
  const r = f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, b);
  return [r, new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id')];
}

/** IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID (include/linux/iommu.h), copied into the record's flags. */
const FAULT_RESPONSE_NEEDS_PASID = 1 << 3;
const req = (grpid: number, addr: number, last: boolean): PageRequest => ({ pasid: 1, grpid, addr, read: true, write: false, exec: false, priv: false, last, needsPasid: true });

t.test('HWPT_ALLOC paging on an IOAS: mirrors existing mappings; errnos for flags, dev, pt', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(4 * PAGE);
  t.equal(map(f.p, f.fd, ioas, va, 4 * PAGE, 0x100000)[0], 0);
  const [cdev, devId] = bind(f.p, f.fd, f.vdma.minor);
  t.equal(hwptAlloc(f, devId, ioas, 1 << 10)[0], -EOPNOTSUPP, 'unknown flag');
  t.equal(hwptAlloc(f, 99, ioas)[0], -ENOENT, 'unknown device');
  t.equal(hwptAlloc(f, devId, 99)[0], -EINVAL, 'unknown pt: iommufd_hwpt_alloc turns the failed lookup into -EINVAL');
  t.equal(hwptAlloc(f, devId, devId)[0], -EINVAL, 'pt is not an IOAS or HWPT');
  const [r, hwpt] = hwptAlloc(f, devId, ioas);
  t.equal(r, 0);
  t.equal(f.p.mm.pinnedVm, 4, 'a user HWPT joins the IOAS at once: pinned');
  t.same(attach(f.p, cdev, hwpt), [0, hwpt]);
  t.ok(f.host.iommu.domainForPasid(f.dma, -1)!.iovaToPhys(0x100000) >= 0);
  t.equal(f.p.ioctl(f.fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: 8, id: hwpt })), -EBUSY);
  f.p.close(cdev);
  t.equal(f.p.ioctl(f.fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: 8, id: hwpt })), 0, 'user HWPT outlives the device until destroyed');
  t.equal(f.p.mm.pinnedVm, 0);
  t.end();
});

t.test('GET_HW_INFO reports the driver type and reserved bytes must be zero', (t) => {
  const f = setup();
  const [, devId] = bind(f.p, f.fd, f.vdma.minor);
  const b = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, dev_id: devId });
  t.equal(f.p.ioctl(f.fd, IOMMU_GET_HW_INFO, b), 0);
  t.equal(new StructView(iommu_hw_info, b).num('out_max_pasid_log2'), 16);
  const bad = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, dev_id: devId });
  bad[iommu_hw_info.fields.__reserved.offset] = 1;
  t.equal(f.p.ioctl(f.fd, IOMMU_GET_HW_INFO, bad), -EOPNOTSUPP);
  t.end();
});

t.test('fault queue: faults read as iommu_hwpt_pgfault groups, answered by write, the rest Invalid on close', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const [cdev, devId] = bind(f.p, f.fd, f.vdma.minor);
  const fa = encodeStruct(iommu_fault_alloc, { size: iommu_fault_alloc.size });
  t.equal(f.p.ioctl(f.fd, IOMMU_FAULT_QUEUE_ALLOC, fa), 0);
  const fv = new StructView(iommu_fault_alloc, fa);
  const faultId = fv.num('out_fault_id');
  const ffd = fv.num('out_fault_fd');
  const [r, hwpt] = hwptAlloc(f, devId, ioas, IOMMU_HWPT_FAULT_ID_VALID, faultId);
  t.equal(r, 0);
  t.equal(attach(f.p, cdev, hwpt)[0], 0);
  // The faults carry PASID 1: put the same domain on PASID 1 so the IOPF queue finds its handler.
  t.equal(f.host.iommu.attachDevicePasid(f.host.iommu.domainForPasid(f.dma, -1)!, f.dma, 1), 0);
  t.equal(f.p.file(ffd)!.poll!(), POLLOUT, 'poll: writable, nothing to read yet');
  f.host.iopf.report(f.dma, req(3, 0x5000, false));
  f.host.iopf.report(f.dma, req(3, 0x6000, true));
  f.host.iopf.report(f.dma, req(4, 0x7000, true));
  f.board.scheduler.run();
  const sz = iommu_hwpt_pgfault.size;
  t.equal(f.p.file(ffd)!.poll!(), POLLOUT | POLLIN | POLLRDNORM, 'poll: groups wait to be read');
  t.equal(f.p.read(ffd, sz + 1), -ESPIPE, 'not a multiple of the record');
  const data = f.p.read(ffd, 3 * sz) as Uint8Array;
  t.equal(f.p.file(ffd)!.poll!(), POLLOUT, 'poll: all read');
  t.equal(data.length, 3 * sz, 'both groups delivered whole');
  const r0 = new StructView(iommu_hwpt_pgfault, data.subarray(0, sz));
  const r1 = new StructView(iommu_hwpt_pgfault, data.subarray(sz, 2 * sz));
  t.equal(r0.num('dev_id'), devId);
  t.equal(r0.num('grpid'), 3);
  // iommufd_compose_fault_message() copies prm.flags as the driver set them: these requests need their
  // PASID in the response (VT-d's intel_prq_report sets IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID, bit 3).
  t.equal(r0.num('flags'), IOMMU_PGFAULT_FLAGS_PASID_VALID | FAULT_RESPONSE_NEEDS_PASID);
  t.equal(r1.num('flags'), IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE | FAULT_RESPONSE_NEEDS_PASID);
  t.equal(r0.num('cookie'), r1.num('cookie'), 'one cookie per group');
  // Cookies are the lowest free value from 1 (xa_alloc on an XA_FLAGS_ALLOC1 xarray).
  t.equal(r0.num('cookie'), 1);
  t.equal(new StructView(iommu_hwpt_pgfault, data.subarray(2 * sz)).num('cookie'), 2);
  const resp = encodeStruct(iommu_hwpt_page_response, { cookie: r0.num('cookie'), code: 0 });
  t.equal(f.p.write(ffd, resp), 8);
  t.equal(f.p.write(ffd, resp), -EINVAL, 'cookie already answered');
  t.same(f.driver.responses.map((x) => [x.grpid, x.code]), [[3, 'success']]);
  // Cookie 1 is free again: the next group read gets it. A read too short for the first group is -EINVAL.
  f.host.iopf.report(f.dma, req(5, 0x8000, false));
  f.host.iopf.report(f.dma, req(5, 0x9000, true));
  f.board.scheduler.run();
  t.equal(f.p.read(ffd, sz), -EINVAL, 'one record of a two-request group (iommufd_fault_fops_read)');
  t.equal(f.p.read(ffd, 0), -EINVAL, 'a zero count while a group waits');
  const again = f.p.read(ffd, 2 * sz) as Uint8Array;
  t.equal(new StructView(iommu_hwpt_pgfault, again.subarray(0, sz)).num('cookie'), 1, 'the lowest free cookie');
  t.equal(f.p.write(ffd, encodeStruct(iommu_hwpt_page_response, { cookie: 1, code: 0 })), 8);
  const empty = f.p.read(ffd, 0);
  t.ok(empty instanceof Uint8Array && empty.length === 0, 'with nothing waiting a zero count reads 0 bytes');
  t.equal(f.p.ioctl(f.fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: 8, id: faultId })), -EBUSY, 'fd and HWPT hold the fault object');
  t.equal(f.p.close(ffd), 0);
  t.same(f.driver.responses.map((x) => [x.grpid, x.code]), [[3, 'success'], [5, 'success'], [4, 'invalid']], 'unanswered group answered on close');
  f.p.close(cdev);
  t.end();
});
