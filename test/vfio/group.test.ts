import t from 'tap';
import { EBADF, EBADFD, EBUSY, EFAULT, EINVAL, ENODEV } from '../../src/uapi/errno.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_group_status,
} from '../../src/uapi/vfio.ts';
import { TestDriver } from '../iommu-core/test-driver.ts';
import { cstr, deviceFd, domainOf, map, openAttached, openTyped, PAGE, s32, VARIANTS } from './fixture.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {

    function status(p: import('../../src/host/process.ts').Process, g: number, argsz = 8): [number, number] {
      const b = encodeStruct(vfio_group_status, { argsz });
      const r = p.ioctl(g, VFIO_GROUP_GET_STATUS, b);
      return [r, new StructView(vfio_group_status, b).num('flags')];
    }

    t.test('GROUP_GET_STATUS: VIABLE alone, VIABLE|CONTAINER_SET in a container, not viable while someone else owns the group', async (t) => {
      const f = v.setup();
      const { p, host } = f;
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.same(status(p, g), [0, VFIO_GROUP_FLAGS_VIABLE]);
      t.equal(status(p, g, 7)[0], -EINVAL, 'argsz below 8');
      t.equal(p.ioctl(g, VFIO_GROUP_GET_STATUS, new Uint8Array(4)), -EFAULT);
      const c = p.open('/dev/vfio/vfio');
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.same(status(p, g), [0, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET]);
      const other = {};
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(host.iommu.claimDmaOwner(host.iommu.groupOf(f.bare)!, other), 0);
      t.same(status(p, g2), [0, 0]);
      if (v.container === 'type1') {
        t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), -EBUSY, 'cannot take a group another owner holds');
        return;
      }
      // iommufd claims DMA ownership when a device is opened (iommufd_device_bind), not at
      // SET_CONTAINER; GET_STATUS then says VIABLE though GET_DEVICE_FD will fail (vfio_group_ioctl_get_status).
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0, 'iommufd: the group is set, nothing claimed yet');
      t.same(status(p, g2), [0, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET]);
      t.equal(deviceFd(p, g2, f.bare.bdf), -EBUSY, 'opening the device cannot claim the group another owner holds');
    });

    t.test('a group opens once at a time (EBUSY) and again after close', async (t) => {
      const f = v.setup();
      const { p } = f;
      const path = `/dev/vfio/${f.groupOf(f.dma)}`;
      const g = p.open(path);
      t.ok(g >= 0);
      t.equal(p.open(path), -EBUSY);
      t.equal(p.close(g), 0);
      t.ok(p.open(path) >= 0);
    });

    t.test('SET_CONTAINER: closed fd EBADF, neither a container nor an iommufd EBADFD, a second container EINVAL, short arg EFAULT', async (t) => {
      const f = v.setup();
      const { p } = f;
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      const c = p.open('/dev/vfio/vfio');
      const efd = p.eventfd();
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(77)), -EBADF);
      // vfio_group_ioctl_set_container(): "The FD passed is not recognized" (Linux 6.2+).
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(efd)), -EBADFD, 'an eventfd');
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(g)), -EBADFD, 'the group fd itself');
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, new Uint8Array(2)), -EFAULT);
      const at = p.mmap(4096);
      t.equal(p.memWrite(at, s32(c)), 4);
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, Number(at)), 0, 'a number is a user address holding the fd, as in Linux');
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(p.open('/dev/vfio/vfio'))), -EINVAL);
    });

    t.test('UNSET_CONTAINER: EINVAL without one; with a container EBUSY while device fds are open, with an iommufd allowed', async (t) => {
      const f = v.setup();
      const { p } = f;
      const g0 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g0, VFIO_GROUP_UNSET_CONTAINER, 0), -EINVAL);
      const [, g] = openTyped(p, f.groupOf(f.dma));
      const d = deviceFd(p, g, f.dma.bdf);
      t.ok(d >= 0);
      if (v.container === 'iommufd') {
        // vfio_group_ioctl_unset_container(): only a container counts users; the iommufd is just put.
        // The open device stays bound to the context (it holds its own reference) and keeps the group.
        t.equal(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
        t.same(status(p, g), [0, 0], 'no container set, and the group stays claimed by the bound device');
        t.equal(f.host.iommu.groupOf(f.dma)!.owner !== undefined, true);
        t.equal(p.close(d), 0);
        t.same(status(p, g), [0, VFIO_GROUP_FLAGS_VIABLE], 'the device closed: unbound, the group free');
        return;
      }
      t.equal(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0), -EBUSY);
      t.equal(p.close(d), 0);
      t.equal(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
    });

    t.test('GET_DEVICE_FD by BDF: unknown names ENODEV, no container (or, on type1, no IOMMU) EINVAL, unterminated names EFAULT', async (t) => {
      const f = v.setup();
      const { p } = f;
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.equal(deviceFd(p, g, f.dma.bdf), -EINVAL, 'no container');
      const c = p.open('/dev/vfio/vfio');
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      if (v.container === 'type1') t.equal(deviceFd(p, g, f.dma.bdf), -EINVAL, 'no IOMMU yet');
      // iommufd: vfio_df_group_open() needs group->iommufd only; SET_IOMMU is not needed (nor harmful).
      else t.ok(deviceFd(p, g, f.dma.bdf) >= 0, 'iommufd: the compat IOAS is there since SET_CONTAINER');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
      t.equal(deviceFd(p, g, '0000:00:09.0'), -ENODEV);
      t.equal(deviceFd(p, g, f.bare.bdf), -ENODEV, 'a device of another group');
      t.equal(p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new Uint8Array([0x30, 0x30])), -EFAULT);
      const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(f.dma.bdf));
      t.ok(d >= 0);
      t.ok(deviceFd(p, g, f.dma.bdf) >= 0, 'the group path may open a device more than once');
    });

    t.test('the group file stays until its device fds close; then the group leaves its container', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE }), 0);
      const d = deviceFd(p, g, f.dma.bdf);
      t.equal(p.close(g), 0);
      t.equal(p.open(`/dev/vfio/${f.groupOf(f.dma)}`), -EBUSY, 'still held by the device fd');
      t.equal(p.mm.pinnedVm, 1);
      t.equal(p.close(d), 0);
      t.equal(p.mm.pinnedVm, 0, 'the group left its container: the IOMMU and its mappings went');
      t.ok(p.open(`/dev/vfio/${f.groupOf(f.dma)}`) >= 0);
    });

    t.test('a group joining a container with mappings gets them replayed into its new domain', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.ok(deviceFd(p, g2, f.bare.bdf) >= 0, 'the device opens (iommufd attaches it now)');
      const d1 = domainOf(f, f.dma);
      const d2 = domainOf(f, f.bare);
      t.ok(d1 === d2, 'same IOMMU driver: the group joins the existing domain (iommufd: the IOAS\'s automatic HWPT)');
      for (let i = 0; i < 4; i++) t.equal(d2.iovaToPhys(0x10_0000 + i * PAGE), p.mm.physOf(Number(va) + i * PAGE));
    });

    // The second IOMMU is faked by swapping the group's driver, which only type1 reads (vfio_iommu_type1_attach_group
    // compares domain drivers); iommufd allocates through the device's probed driver, so the fake does not reach it.
    t.test('a group of another IOMMU gets its own domain with every mapping replayed; the last group leaving frees each domain', { skip: v.container === 'iommufd' && 'the driver swap only reaches type1' }, async (t) => {
      const f = v.setup();
      const { host, p } = f;
      // Make the bare function's group belong to a second IOMMU instance.
      const drv2 = new TestDriver(host);
      const g = host.iommu.groupOf(f.bare)!;
      Object.defineProperty(g, 'driver', { value: drv2 });
      const [c, g1, dev1] = openAttached(p, f);
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      const dev2 = deviceFd(p, g2, f.bare.bdf);
      t.ok(dev2 >= 0);
      const d1 = domainOf(f, f.dma);
      const d2 = domainOf(f, f.bare);
      t.ok(d1 !== d2, 'a separate domain');
      for (let i = 0; i < 4; i++) t.equal(d2.iovaToPhys(0x10_0000 + i * PAGE), p.mm.physOf(Number(va) + i * PAGE), 'replayed');
      t.equal(map(p, c, { vaddr: va, iova: 0x20_0000, size: PAGE }), 0);
      t.ok(d1.iovaToPhys(0x20_0000) >= 0 && d2.iovaToPhys(0x20_0000) >= 0, 'new maps go to both domains');
      t.equal(p.close(dev2), 0);
      t.equal(p.ioctl(g2, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(d2.isFreed, true, 'its domain went with it');
      t.equal(d1.iovaToPhys(0x10_0000) >= 0, true, 'the other keeps its mappings');
      t.equal(p.mm.pinnedVm, 5);
      t.equal(p.close(dev1), 0);
      t.equal(p.ioctl(g1, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(d1.isFreed, true, 'the last group leaving releases the domain');
      // type1 drops its mappings with the last group; iommufd keeps them in the IOAS (the container fd is open) but
      // unpins once no domain holds the pages (iopt_table_remove_domain of the last domain unfills it).
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('groups of the same IOMMU share one domain; the domain lives until the last group leaves', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g1, dev1] = openAttached(p, f);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      const dev2 = deviceFd(p, g2, f.bare.bdf);
      const d = domainOf(f, f.dma);
      t.ok(domainOf(f, f.bare) === d);
      t.equal(p.close(dev1), 0);
      t.equal(p.ioctl(g1, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(d.isFreed, false);
      t.equal(p.close(dev2), 0);
      t.equal(p.ioctl(g2, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(d.isFreed, true);
    });

    // Needs an IOMMU driver told to refuse; on the real machines fault-injection.test.ts fails attach by injection.
    t.test('an attach the IOMMU refuses fails SET_CONTAINER and leaves the group unclaimed', { skip: v.real && 'test driver only' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      f.driver!.refuseAttach.add(f.bare);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), -EINVAL);
      t.equal(f.host.iommu.groupOf(f.bare)!.owner, undefined);
      t.same(status(p, g2), [0, VFIO_GROUP_FLAGS_VIABLE], 'no container set');
    });

    t.test('/dev/vfio/<group> and sysfs vfio-dev entries exist for each bound device', async (t) => {
      const f = v.setup();
      const { p } = f;
      const n = v.real ? 4 : 2; // a real machine also has the two SVA-capable DMA engines
      const ids = [...Array(n).keys()];
      t.same(f.host.vfs.devicePaths('/dev/vfio/'), [...ids.map((i) => `/dev/vfio/${i}`), ...ids.map((i) => `/dev/vfio/devices/vfio${i}`), '/dev/vfio/vfio']);
      t.same(p.readdir(`/sys/bus/pci/devices/${f.dma.bdf}/vfio-dev`), ['vfio0']);
      t.same(p.readdir(`/sys/bus/pci/devices/${f.bare.bdf}/vfio-dev`), ['vfio1']);
      t.equal(p.readlink(`/sys/bus/pci/devices/${f.dma.bdf}/driver`), '../../../bus/pci/drivers/vfio-pci');
      t.equal(p.readFile(`/sys/bus/pci/devices/${f.dma.bdf}/vfio-dev/vfio0/dev`), '511:0\n');
    });
  });
}
