import t from 'tap';
import { EBUSY, EINVAL, EPERM } from '../../src/uapi/errno.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../src/iommu-core/io-pgtable.ts';
import { PcieRootPort } from '../../src/pci/root-port.ts';
import { IommuDomain } from '../../src/iommu-core/domain.ts';
import { BareFunction } from '../pci/helpers.ts';
import { setup } from './test-driver.ts';

const MIB = 2 ** 20;
const RW = IOMMU_READ | IOMMU_WRITE;

t.test('groups follow the topology: root-bus devices alone, everything below a root port together', async (t) => {
  const { board, core, dev } = setup();
  const a = dev(1);
  const b = dev(2);
  const port = new PcieRootPort(board.rc);
  board.rc.plug(port, 3);
  const c = new BareFunction('c');
  const d = new BareFunction('d');
  port.secondary.plug(c, 0);
  port.secondary.plug(d, 1);
  const mf0 = new BareFunction('mf0', { multifunction: true });
  const mf1 = new BareFunction('mf1', { multifunction: true });
  board.rc.plug(mf0, 5, 0);
  board.rc.plug(mf1, 5, 1);
  for (const f of [a, b, c, d, mf0, mf1]) t.equal(core.probe(f), 0);
  t.same(core.groups.map((g) => g.devices.map((x) => x.name)), [['d1'], ['d2'], ['c', 'd'], ['mf0', 'mf1']]);
  t.same(core.groups.map((g) => g.id), [0, 1, 2, 3], 'IDs in probe order');
});

t.test('probe attaches the group to its default domain; a user must claim ownership to attach', async (t) => {
  const { core, dev } = setup();
  const a = dev(1);
  core.probe(a);
  const g = core.groupOf(a)!;
  t.equal(g.domain, g.defaultDomain);
  const mine = core.allocPaging(a) as IommuDomain;
  const owner = {};
  t.equal(core.attachGroup(mine, g, owner), -EPERM, 'not the owner');
  t.equal(core.claimDmaOwner(g, owner), 0);
  t.equal(g.domain!.type, 'blocked', 'claimed groups are blocked');
  t.equal(core.claimDmaOwner(g, {}), -EBUSY, 'one owner at a time');
  t.equal(core.attachGroup(mine, g, owner), 0);
  const other = core.allocPaging(a) as IommuDomain;
  t.equal(core.attachGroup(other, g, owner), -EBUSY, 'detach before attaching another domain');
  t.equal(core.replaceGroupDomain(other, g, owner), 0, 'but replace swaps directly');
  t.equal(core.detachGroup(mine, g, owner), -EINVAL, 'mine is no longer attached');
  t.equal(core.detachGroup(other, g, owner), 0);
  core.releaseDmaOwner(g, owner);
  t.equal(g.domain, g.defaultDomain);
  t.equal(g.owner, undefined);
});

t.test('a group attaches as a whole and rolls back if one device refuses', async (t) => {
  const { board, core, driver } = setup();
  const port = new PcieRootPort(board.rc);
  board.rc.plug(port, 3);
  const c = new BareFunction('c');
  const d = new BareFunction('d');
  port.secondary.plug(c, 0);
  port.secondary.plug(d, 1);
  core.probe(c);
  core.probe(d);
  const g = core.groupOf(c)!;
  const owner = {};
  core.claimDmaOwner(g, owner);
  const blocked = g.domain!;
  const dom = core.allocPaging(c) as IommuDomain;
  driver.refuseAttach.add(d);
  t.equal(core.attachGroup(dom, g, owner), -EINVAL);
  t.equal(g.domain, blocked);
  t.equal(driver.attached.get(c), blocked.driver, 'c went back to the blocked domain');
  driver.refuseAttach.clear();
  t.equal(core.attachGroup(dom, g, owner), 0);
  t.equal(driver.attached.get(c), dom.driver);
  t.equal(driver.attached.get(d), dom.driver);
});

t.test('map uses the largest pages alignment allows: 1 GiB of 2 MiB-aligned memory is 512 block entries', async (t) => {
  const { core, dev } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  t.equal(d.map(0x4000_0000, 0x8000_0000, 2 ** 30, RW), 0);
  t.equal(d.driver.stats!.leafWrites, 1, 'one 1 GiB block');
  t.equal(d.map(0x1000_0000, 0x4020_0000, 4 * MIB, RW), 0);
  t.equal(d.driver.stats!.leafWrites, 3, 'two 2 MiB blocks');
  t.equal(d.map(0x2000_1000, 0x4100_1000, 2 * MIB, RW), 0);
  t.equal(d.driver.stats!.leafWrites, 3 + 512, 'misaligned: 4 KiB pages');
  t.equal(d.iovaToPhys(0x2000_1234), 0x4100_1234);
});

t.test('map runs stop where a larger page becomes possible', async (t) => {
  const { core, dev } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  // 4 KiB pages up to the 2 MiB boundary, then one 2 MiB block.
  t.equal(d.map(0x1ff000, 0x1ff000, 0x201000, RW), 0);
  t.equal(d.driver.stats!.leafWrites, 2);
  t.equal(d.mapCalls, 2);
});

t.test('map refuses misalignment and overlap, and unwinds a map that fails part-way', async (t) => {
  const { host, core, dev } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  t.equal(d.map(0x1001, 0x2000, 0x1000, RW), -EINVAL);
  t.equal(d.map(0x1000, 0x2000, 0, RW), -EINVAL);
  t.equal(d.map(0x10_0000, 0x20_0000, 0x2000, RW), 0);
  t.equal(d.map(0x10_1000, 0x30_0000, 0x1000, RW), -17, 'EEXIST over a mapping');
  // Table pages run out half way: nothing of this call may remain.
  const leaves = (d.driver as unknown as { pgtable: { stats: { leaves: number } } }).pgtable.stats.leaves;
  host.platform.faults.failNth('host.page_alloc', 3);
  const r = d.map(0x7f_ffe0_0000, 0x40_0000, 4 * MIB, RW);
  t.equal(r, -12);
  t.equal((d.driver as unknown as { pgtable: { stats: { leaves: number } } }).pgtable.stats.leaves, leaves);
  t.equal(d.iovaToPhys(0x7f_ffe0_0000), -1);
});

t.test('unmap returns the bytes removed, takes blocks whole, and invalidates before returning', async (t) => {
  const { core, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  d.map(0x20_0000, 0x20_0000, 2 * MIB, RW);
  t.equal(d.unmap(0x20_0000, 0x1000), 2 * MIB, 'a block goes whole');
  t.same(driver.flushes, ['range 200000-400000']);
  t.equal(d.unmap(0x20_0000, 0x1000), 0, 'nothing left');
  t.equal(d.unmap(0x20_0001, 0x1000), 0, 'misaligned');
});

t.test('PASID attach: singleton groups only, within the PASID width, one domain per PASID', async (t) => {
  const { board, core, dev, driver } = setup();
  const a = dev(1);
  core.probe(a);
  const d = core.allocPaging(a) as IommuDomain;
  t.equal(core.attachDevicePasid(d, a, 0), -EINVAL);
  t.equal(core.attachDevicePasid(d, a, 1 << 16), -EINVAL);
  t.equal(core.attachDevicePasid(d, a, 5), 0);
  t.equal(core.attachDevicePasid(d, a, 5), -EBUSY);
  t.equal(core.domainForPasid(a, 5), d);
  core.detachDevicePasid(d, a, 5);
  t.equal(core.domainForPasid(a, 5), undefined);
  t.notOk(driver.pasidAttached.has(`${a.bdf}/5`), 'the PASID is blocked again');
  const port = new PcieRootPort(board.rc);
  board.rc.plug(port, 3);
  const c = new BareFunction('c');
  const e = new BareFunction('e');
  port.secondary.plug(c, 0);
  port.secondary.plug(e, 1);
  core.probe(c);
  core.probe(e);
  t.equal(core.attachDevicePasid(d, c, 5), -EINVAL, 'multi-device group');
});

t.test('reserved regions come from the driver per device and per group', async (t) => {
  const { core, dev } = setup();
  const a = dev(1);
  core.probe(a);
  t.same(core.resvRegions(a), [{ start: 0x800_0000, length: 0x10_0000, type: 'sw-msi', prot: 3 }]);
  t.equal(core.groupResvRegions(core.groupOf(a)!).length, 1);
});
