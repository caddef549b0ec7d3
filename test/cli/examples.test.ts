import t from 'tap';
import { main } from '../../cli/main.ts';
import { runFaultQueueExample } from '../../examples/iommufd-fault-queue.ts';
import { runFaultPlanExample } from '../../examples/fault-plan.ts';
import { runSweepExample } from '../../examples/parameter-sweep.ts';
import { runQemuVfioSetup } from '../../examples/qemu-vfio-setup.ts';
import { runUserDriver } from '../../examples/vfio-user-driver.ts';
import { runSvaPri } from '../../examples/sva-pri.ts';
import { runNestedTranslation } from '../../examples/nested-translation.ts';
import { runCustomTopology } from '../../examples/custom-topology.ts';

const quiet = () => {};

t.test('checksum (docs/writing-a-device.md): a device of our own checksums a buffer it reads by DMA through VFIO, on both machines; its plan fails the read', async (t) => {
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  t.equal(await main(['run', 'examples/checksum/scenario.ts', '--machine', 'all'], io), 0, out);
  t.match(out, /checksum at 0000:00:04\.0 on virt-smmuv3: STATUS=1 SUM=260 after 105 ns, 1 interrupt\(s\)/);
  t.match(out, /checksum at 0000:00:04\.0 on q35-vtd: STATUS=1 SUM=260 after 105 ns, 1 interrupt\(s\)/);
  out = '';
  t.equal(await main(['run', 'examples/checksum/scenario.ts', '--inject', 'examples/checksum/plan.json'], io), 1, 'the injected fault fails the scenario');
  t.match(out, /STATUS=2 SUM=0/);
  t.match(out, /fault plan: checksum\.dma -> fail: 1 matching hit\(s\), 1 injected/);
});

t.test('iommufd-fault-queue: the user-space handler maps the faulting page, answers, and the DMA completes', async (t) => {
  const r = runFaultQueueExample(quiet);
  t.ok(r.ok);
  t.equal(r.faults, 1);
});

t.test('fault-plan: an allocation failure inside MAP_DMA returns ENOMEM and leaves no trace, on both machines', async (t) => {
  for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) {
    const r = runFaultPlanExample(kind, quiet);
    t.equal(r.result, -12, kind);
    t.equal(r.violations, 0, kind);
  }
});

t.test('parameter-sweep: one row per ATC size, each run passing', async (t) => {
  const rows = await runSweepExample([2, 64], quiet);
  t.equal(rows.length, 2);
  t.same(rows.map((r) => r['atc-entries']), [2, 64]);
  t.ok(rows.every((r) => r.ok === 1));
});

t.test('qemu-vfio-setup: QEMU\'s type1 ioctl sequence in QEMU\'s order, then a copy through the IOMMU with its MSI-X on an eventfd, on both machines', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const r = runQemuVfioSetup(kind, quiet);
    const calls = r.log.map((l) => l.replace(/[( =].*$/, ''));
    t.same(calls, [
      'readlink', 'open', 'VFIO_GROUP_GET_STATUS', 'open', 'VFIO_GET_API_VERSION', 'VFIO_CHECK_EXTENSION', 'VFIO_GROUP_SET_CONTAINER', 'VFIO_SET_IOMMU',
      'VFIO_IOMMU_GET_INFO', 'VFIO_IOMMU_MAP_DMA', 'VFIO_GROUP_GET_DEVICE_FD', 'VFIO_DEVICE_GET_INFO',
      ...Array(7).fill('VFIO_DEVICE_GET_REGION_INFO'), 'VFIO_DEVICE_GET_IRQ_INFO', 'VFIO_DEVICE_GET_IRQ_INFO', 'VFIO_DEVICE_SET_IRQS',
    ], kind);
    t.ok(r.log.every((l) => !/ = -\d/.test(l)), 'no call failed');
    t.match(r.copied, /^guest data copied by the test device through the /);
    t.equal(r.interrupts, 1, 'one MSI-X on the eventfd');
  }
});

t.test('vfio-user-driver: descriptors in IOVA space through a ring, one MSI-X per completion counted by the eventfd, on both machines', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const r = runUserDriver(kind, 3, quiet);
    t.same([r.completed, r.interrupts, r.verified], [3, 3, true], kind);
    t.ok(r.ns > 0, 'the copies took virtual time');
  }
});

t.test('sva-pri: a MEMMOVE to untouched process memory completes by PRI, one page request per page touched, on both machines', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const r = runSvaPri(kind, 4, quiet);
    t.equal(r.status, 'SUCCESS', kind);
    t.ok(r.verified);
    t.equal(r.pageRequests, 4 + 1, 'four destination pages and the completion record\'s page');
    t.equal(r.groupsAnswered, r.pageRequests);
  }
});

t.test('nested-translation: a guest table over a nest parent, DMA through both stages, stale until the forwarded invalidation, on both machines', async (t) => {
  const vendorCalls = {
    'q35-vtd': ['IOMMU_HWPT_ALLOC', 'IOMMU_HWPT_ALLOC', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'IOMMU_HWPT_INVALIDATE'],
    'virt-smmuv3': ['IOMMU_HWPT_ALLOC', 'IOMMU_VIOMMU_ALLOC', 'IOMMU_VDEVICE_ALLOC', 'IOMMU_HWPT_ALLOC', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'IOMMU_HWPT_INVALIDATE'],
  };
  for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) {
    const r = runNestedTranslation(kind, quiet);
    t.equal(r.first, 'guest page A', `${kind}: guest IOVA -> GPA -> host page`);
    t.ok(r.writeReached, `${kind}: a write lands in the VMM-backed guest page`);
    t.equal(r.beforeInvalidate, 'Guest page A', `${kind}: the IOTLB still holds the old translation`);
    t.equal(r.afterInvalidate, 'guest page B', `${kind}: the forwarded invalidation dropped it`);
    const tail = r.log.slice(-vendorCalls[kind].length).map((l) => l.replace(/[( =].*$/, ''));
    t.same(tail, vendorCalls[kind], `${kind}: the nesting ioctls`);
    t.match(r.log.at(-1)!, / = 0 \(entry_num 1\)$/, `${kind}: one invalidation entry handled`);
  }
});

t.test('custom-topology: groups as Linux forms them (ACS port, port without ACS, multi-function, PCIe-to-PCI bridge); the shared group DMAs through VFIO, on both machines', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const r = runCustomTopology(kind, quiet);
    t.same(Object.values(r.groups), [
      ['0000:00:04.0'], ['0000:01:00.0'], ['0000:00:05.0', '0000:02:00.0', '0000:02:00.1'], ['0000:00:06.0', '0000:00:06.1'], ['0000:00:07.0', '0000:03:01.0'],
    ], kind);
    t.equal(r.written, 'fn0 ok, fn1 ok');
    t.equal(r.bridgedRid, '0000:03:00.0', 'the bridge alias');
  }
});
