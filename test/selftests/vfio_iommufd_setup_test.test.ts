/**
 * Linux 7.3 tools/testing/selftests/vfio/vfio_iommufd_setup_test.c, ported
 * onto both machines: the cdev of the test device at 0000:00:03.0 and
 * /dev/iommu, opened fresh for each case.
 */
import t, { type Test } from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { IOMMU_IOAS_ALLOC, iommu_ioas_alloc, vfio_device_attach_iommufd_pt, vfio_device_bind_iommufd, vfio_device_detach_iommufd_pt } from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_DEVICE_GET_INFO, vfio_device_info } from '../../src/uapi/vfio.ts';
import { DEVICE_BDF, MACHINES } from './libvfio.ts';

interface Cdev {
  p: Process;
  cdev: number;
  iommufd: number;
}

const bind = (s: Cdev, iommufd = s.iommufd): number => s.p.ioctl(s.cdev, VFIO_DEVICE_BIND_IOMMUFD, encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd }));
const getInfo = (s: Cdev): number => s.p.ioctl(s.cdev, VFIO_DEVICE_GET_INFO, encodeStruct(vfio_device_info, { argsz: vfio_device_info.size }));
const attach = (s: Cdev, pt: number): number => s.p.ioctl(s.cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: pt }));
const detach = (s: Cdev): number => s.p.ioctl(s.cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size }));
function ioasAlloc(s: Cdev): [number, number] {
  const b = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  const r = s.p.ioctl(s.iommufd, IOMMU_IOAS_ALLOC, b);
  return [r, new StructView(iommu_ioas_alloc, b).num('out_ioas_id')];
}

const CASES: [string, (t: Test, s: Cdev) => void][] = [
  [
    'bind',
    (t, s) => {
      t.equal(bind(s), 0);
      t.equal(getInfo(s), 0, 'GET_INFO works once bound');
    },
  ],
  ['get_info_without_bind_fails', (t, s) => t.not(getInfo(s), 0)],
  ['bind_bad_iommufd_fails', (t, s) => t.not(bind(s, -2), 0)],
  [
    'repeated_bind_fails',
    (t, s) => {
      t.equal(bind(s), 0);
      t.not(bind(s), 0);
    },
  ],
  [
    'attach_detatch_pt',
    (t, s) => {
      t.equal(bind(s), 0);
      const [r, ioas] = ioasAlloc(s);
      t.equal(r, 0);
      t.equal(attach(s, ioas), 0);
      t.equal(detach(s), 0);
    },
  ],
  [
    'attach_invalid_pt_fails',
    (t, s) => {
      t.equal(bind(s), 0);
      t.not(attach(s, 0xffff_ffff), 0);
    },
  ],
];

for (const kind of MACHINES) {
  t.test(kind, async (t) => {
    for (const [name, run] of CASES) {
      await t.test(`vfio_cdev.${name}`, async (t) => {
        const m = createMachine(kind, { ramBytes: 64 * 2 ** 20 });
        const p = m.host.spawn({ uid: 0 });
        const names = p.readdir(`/sys/bus/pci/devices/${DEVICE_BDF}/vfio-dev`);
        t.ok(Array.isArray(names) && names.length === 1, 'the cdev is found in sysfs (vfio_pci_get_cdev_path)');
        const s: Cdev = { p, cdev: p.open(`/dev/vfio/devices/${(names as string[])[0]}`), iommufd: p.open('/dev/iommu') };
        t.ok(s.cdev >= 0 && s.iommufd >= 0, 'FIXTURE_SETUP opens both');
        run(t, s);
        t.equal(p.close(s.cdev), 0);
        t.equal(p.close(s.iommufd), 0);
      });
    }
  });
}
