import t from 'tap';
import { Board } from '../../../machines/board.ts';
import { Host } from '../../../src/host/host.ts';
import { Smmuv3 } from '../../../iommu/smmuv3/smmuv3.ts';
import { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { cdField } from '../../../iommu/smmuv3/cd.ts';
import { steField } from '../../../iommu/smmuv3/ste.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { IommuDomain } from '../../../src/iommu-core/domain.ts';
import { EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import { IOMMU_HW_CAP_DIRTY_TRACKING } from '../../../src/uapi/iommufd.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { BareFunction } from '../../pci/helpers.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const PAGE = 4096;
const IOVA = 0x10_0000;

/** An SMMUv3 brought up by the driver; `httu` overrides IDR0.HTTU before the driver probes it. */
function setup(httu?: number) {
  const board = new Board('virt-smmuv3', { ramBytes: 512 * 2 ** 20 });
  const smmu = new Smmuv3(board, board.sysmem);
  if (httu !== undefined) smmu.regs.setField('IDR0', 'HTTU', httu);
  board.sysmemRoot.addSubregion(board.layout.iommuBase, smmu.region, 1);
  board.rc.remapper = smmu;
  const host = new Host(board);
  const driver = new Smmuv3Driver(host, board.layout.iommuBase);
  host.iommu.registerDriver(driver);
  const dev = new BareFunction('ep');
  board.rc.plug(dev, 1);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  t.equal(host.addPciDevice(dev), 0);
  const group = host.iommu.groupOf(dev)!;
  const owner = {};
  host.iommu.claimDmaOwner(group, owner);
  return { board, smmu, host, driver, dev, group, owner };
}

/** A dirty-tracking domain attached to the device, `pages` 4K pages mapped at IOVA. */
function dirtyDomain(f: ReturnType<typeof setup>, pages: number, prot = RW) {
  const d = f.host.iommu.allocPaging(f.dev, { dirtyTracking: true });
  if (typeof d === 'number') throw new Error(`alloc ${d}`);
  t.equal(f.host.iommu.attachGroup(d, f.group, f.owner), 0);
  const ram = f.host.allocator.allocPages(Math.ceil(Math.log2(pages)))!; // an order: 2^order pages
  t.equal(d.map(IOVA, ram, pages * PAGE, prot), 0);
  return { d, ram };
}

/** Read (and unless noClear, clear) the dirty pages: their indexes from IOVA. */
function dirtyPages(d: IommuDomain, pages: number, noClear = false): number[] {
  const out: number[] = [];
  const r = d.driver.readAndClearDirty!(IOVA, pages * PAGE, noClear, (iova, size) => {
    for (let a = iova; a < iova + size; a += PAGE) out.push((a - IOVA) / PAGE);
  });
  t.equal(r, 0);
  return out;
}

t.test('HTTU with dirty state advertised: IOMMU_HW_CAP_DIRTY_TRACKING; the domain has DBM leaves and a CD with HA and HD', async (t) => {
  const f = setup();
  t.equal(f.driver.hwInfo(f.dev).capabilities & IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING);
  dirtyDomain(f, 2);
  const ste = f.driver.steOf(f.dev)!;
  const cd0 = steField(ste, 'S1ContextPtr') * 64;
  const cd = new Uint32Array(16);
  for (let i = 0; i < 16; i++) cd[i] = f.board.sysmem.read32(cd0 + 4 * i);
  t.equal(cdField(cd, 'HA'), 1, 'CD.HA');
  t.equal(cdField(cd, 'HD'), 1, 'CD.HD');
});

t.test('a new writable mapping starts writable-dirty (io-pgtable maps DBM with AP[2] clear); clearing makes it clean', async (t) => {
  const f = setup();
  const { d } = dirtyDomain(f, 4);
  t.same(dirtyPages(d, 4, true), [0, 1, 2, 3], 'all dirty, NO_CLEAR');
  t.same(dirtyPages(d, 4), [0, 1, 2, 3], 'read and clear');
  t.same(dirtyPages(d, 4), [], 'clean now');
});

t.test('DMA writes through the SMMU dirty their pages; reads do not; NO_CLEAR keeps them; a write after the clear is seen again', async (t) => {
  const f = setup();
  const { d, ram } = dirtyDomain(f, 8);
  dirtyPages(d, 8);
  t.ok(f.dev.dmaRead(BigInt(IOVA + PAGE), 8).ok);
  t.ok(f.dev.dmaWrite(BigInt(IOVA + 2 * PAGE + 8), new Uint8Array([0xaa])).ok, 'write to a writable-clean leaf');
  t.equal(f.board.sysmem.read8(ram + 2 * PAGE + 8), 0xaa);
  t.ok(f.dev.dmaWrite(BigInt(IOVA + 6 * PAGE), new Uint8Array([1])).ok);
  t.same(dirtyPages(d, 8, true), [2, 6], 'written pages are dirty, the read one is not');
  t.same(dirtyPages(d, 8, true), [2, 6], 'NO_CLEAR left them');
  t.same(dirtyPages(d, 8), [2, 6]);
  t.same(dirtyPages(d, 8), []);
  // The write filled the IOTLB with a writable entry; the clear must have invalidated it.
  t.ok(f.dev.dmaWrite(BigInt(IOVA + 2 * PAGE), new Uint8Array([2])).ok);
  t.same(dirtyPages(d, 8), [2], 'the second write walked again and set the dirty state');
});

t.test('read-only mappings never report dirty; a 2M block reports its whole span', async (t) => {
  const f = setup();
  const { d } = dirtyDomain(f, 2, IOMMU_READ);
  t.same(dirtyPages(d, 2), [], 'no DBM on read-only leaves');
  t.notOk(f.dev.dmaWrite(BigInt(IOVA), new Uint8Array([1])).ok, 'and writes are refused');
  const base2m = f.host.allocator.allocPages(9)!; // order 9: 2 MiB, naturally aligned
  t.equal(base2m % 2 ** 21, 0);
  t.equal(d.map(0x4000_0000, base2m, 2 ** 21, RW), 0);
  const spans: [number, number][] = [];
  d.driver.readAndClearDirty!(0x4000_0000, 2 ** 21, false, (iova, size) => spans.push([iova, size]));
  t.same(spans, [[0x4000_0000, 2 ** 21]], 'one 2 MiB leaf');
  t.ok(f.dev.dmaWrite(0x4010_0000n, new Uint8Array([1])).ok);
  spans.length = 0;
  d.driver.readAndClearDirty!(0x4000_0000, 2 ** 21, false, (iova, size) => spans.push([iova, size]));
  t.same(spans, [[0x4000_0000, 2 ** 21]], 'dirty again after a write into it (block TLB entry was invalidated)');
});

t.test('set_dirty_tracking is accepted both ways (HTTU stays on); a domain without dirty tracking refuses both ops', async (t) => {
  const f = setup();
  const { d } = dirtyDomain(f, 1);
  t.equal(d.driver.setDirtyTracking!(true), 0);
  t.equal(d.driver.setDirtyTracking!(false), 0);
  const plain = f.host.iommu.allocPaging(f.dev) as IommuDomain;
  t.equal(plain.driver.setDirtyTracking!(true), -EOPNOTSUPP);
  t.equal(plain.driver.readAndClearDirty!(IOVA, PAGE, false, () => {}), -EOPNOTSUPP);
});

t.test('EOPNOTSUPP: an SMMU whose HTTU has no dirty state (IDR0.HTTU = 0b01), and a dirty-tracking nest parent', async (t) => {
  const f = setup(0b01);
  t.equal(f.driver.hwInfo(f.dev).capabilities & IOMMU_HW_CAP_DIRTY_TRACKING, 0, 'no capability reported');
  t.equal(f.host.iommu.allocPaging(f.dev, { dirtyTracking: true }), -EOPNOTSUPP);
  t.type(f.host.iommu.allocPaging(f.dev), IommuDomain, 'plain paging domains still work');
  const g = setup();
  t.equal(g.host.iommu.allocPaging(g.dev, { dirtyTracking: true, nestParent: true }), -EOPNOTSUPP);
});
