import t, { type Test } from 'tap';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { ENOENT, ENOTDIR, EINVAL, EISDIR, ESPIPE } from '../../src/uapi/errno.ts';
import { TestDriver } from '../iommu-core/test-driver.ts';
import { BareFunction } from '../pci/helpers.ts';

/** A host with one PCI function (1b36:10e0) at 0000:00:01.0 under the test IOMMU driver, and a process. */
function oneDevice(t: Test, kind: 'q35-vtd' | 'virt-smmuv3') {
  const board = new Board(kind, { ramBytes: 64 * 2 ** 20 });
  const host = new Host(board);
  host.iommu.registerDriver(new TestDriver(host));
  const f = new BareFunction('f', { vendorId: 0x1b36, deviceId: 0x10e0 });
  board.rc.plug(f, 1);
  t.equal(host.addPciDevice(f), 0);
  return { host, f, p: host.spawn() };
}

t.test('sysfs shows each PCI device, its IOMMU group, and the group members and reserved regions', async (t) => {
  const board = new Board('virt-smmuv3', { ramBytes: 64 * 2 ** 20 });
  const host = new Host(board);
  host.iommu.registerDriver(new TestDriver(host));
  const f = new BareFunction('f', { vendorId: 0x1b36, deviceId: 0x10e0 });
  board.rc.plug(f, 1);
  const g = new BareFunction('g');
  board.rc.plug(g, 2);
  t.equal(host.addPciDevice(f), 0);
  t.equal(host.addPciDevice(g), 0);
  const p = host.spawn();
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/vendor'), '0x1b36\n');
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/device'), '0x10e0\n');
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/class'), '0xff0000\n');
  // pci-sysfs.c: subsystem_vendor, subsystem_device ("0x%04x") and revision ("0x%02x") from the type 0 header.
  f.config.set16(0x2c, 0x1af4);
  f.config.set16(0x2e, 0x1100);
  f.config.set8(0x08, 0x10);
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/subsystem_vendor'), '0x1af4\n');
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/subsystem_device'), '0x1100\n');
  t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/revision'), '0x10\n');
  t.equal(p.readlink('/sys/bus/pci/devices/0000:00:02.0/iommu_group'), '../../../kernel/iommu_groups/1');
  t.same(p.readdir('/sys/kernel/iommu_groups'), ['0', '1']);
  t.same(p.readdir('/sys/kernel/iommu_groups/0/devices'), ['0000:00:01.0']);
  t.same(p.readdir('/sys/bus/pci/devices'), ['0000:00:01.0', '0000:00:02.0']);
  t.equal(p.readFile('/sys/kernel/iommu_groups/0/reserved_regions'), '0x0000000008000000 0x00000000080fffff msi\n');
  t.equal(p.readFile('/sys/kernel/iommu_groups/0/type'), 'DMA\n');
  t.equal(p.readFile('/sys/nothing'), -ENOENT);
  t.equal(p.readFile('/sys/kernel/iommu_groups/0'), -EISDIR);
  t.equal(p.readdir('/sys/bus/pci/devices/0000:00:01.0/vendor'), -ENOTDIR);
  t.equal(p.readlink('/sys/bus/pci/devices/0000:00:01.0/vendor'), -EINVAL);
});

t.test('the host reports the Linux release it follows where uname -r reads it (/proc/sys/kernel/osrelease)', async (t) => {
  const { LINUX_RELEASE, LINUX_SERIES } = await import('../../src/uapi/linux-release.ts');
  const board = new Board('q35-vtd', { ramBytes: 64 * 2 ** 20 });
  const host = new Host(board);
  const p = host.spawn();
  t.equal(LINUX_RELEASE, '7.3.4');
  t.ok(LINUX_RELEASE.startsWith(`${LINUX_SERIES}.`));
  t.equal(p.readFile('/proc/sys/kernel/osrelease'), `${LINUX_RELEASE}\n`);
});

t.test('open(2) of a sysfs attribute reads its text from the file position; a directory lists and refuses read', async (t) => {
  const { p } = oneDevice(t, 'q35-vtd');
  const fd = p.open('/sys/bus/pci/devices/0000:00:01.0/vendor');
  t.ok(fd >= 3);
  t.same(new TextDecoder().decode(p.read(fd, 3) as Uint8Array), '0x1');
  t.same(new TextDecoder().decode(p.read(fd, 100) as Uint8Array), 'b36\n', 'read on from the position');
  t.equal((p.read(fd, 100) as Uint8Array).length, 0, 'then end of file');
  t.same(new TextDecoder().decode(p.pread(fd, 4, 2n) as Uint8Array), '1b36', 'pread at an offset');
  t.equal(p.lseek(fd, 0n, 0), 0n);
  t.same(new TextDecoder().decode(p.read(fd, 6) as Uint8Array), '0x1b36', 'read again after seeking to 0');
  t.equal(p.lseek(fd, 0n, 2), -EINVAL, 'SEEK_END is EINVAL on a seq_file');
  t.equal(p.close(fd), 0);
  const dir = p.open('/sys/kernel/iommu_groups');
  t.ok(dir >= 3);
  t.equal(p.read(dir, 10), -EISDIR);
  const root = p.open('/');
  t.ok(root >= 3, 'the root directory opens');
  t.same(p.readdir('/'), ['dev', 'sys']);
  t.equal(p.open('/sys/nothing'), -ENOENT);
  t.equal(p.open('/sys/bus/pci/devices/0000:00:01.0/iommu_group'), -ENOENT, 'sysfs links are read with readlink, not followed');
  t.equal(p.lseek(p.eventfd(), 0n, 0), -ESPIPE, 'an eventfd cannot seek');
});

t.test('a sysfs path spelt with doubled slashes, "." components or a trailing slash reaches the same entry', async (t) => {
  const { p } = oneDevice(t, 'virt-smmuv3');
  for (const path of ['/sys/bus/pci/devices/0000:00:01.0/vendor', '//sys/bus//pci/devices/0000:00:01.0/vendor', '/sys/./bus/pci/devices/./0000:00:01.0/vendor']) {
    t.equal(p.readFile(path), '0x1b36\n', path);
  }
  t.same(p.readdir('/sys/kernel/iommu_groups/'), ['0'], 'a trailing slash');
  t.same(p.readdir('/sys/kernel/iommu_groups/.'), ['0'], 'a trailing "."');
  t.same(p.readdir('/sys/kernel//iommu_groups'), ['0']);
});
