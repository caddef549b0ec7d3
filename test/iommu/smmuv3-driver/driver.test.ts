import t from 'tap';
import { Board } from '../../../machines/board.ts';
import { Host } from '../../../src/host/host.ts';
import { Smmuv3 } from '../../../iommu/smmuv3/smmuv3.ts';
import { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { STE_CONFIG } from '../../../iommu/smmuv3/ste.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { BareFunction, BarePcieFunction } from '../../pci/helpers.ts';

const RW = IOMMU_READ | IOMMU_WRITE;

function setup() {
  const board = new Board('virt-smmuv3', { ramBytes: 512 * 2 ** 20 });
  const smmu = new Smmuv3(board, board.sysmem);
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
  const ram = host.allocator.allocPages(4)!;
  return { board, smmu, host, driver, dev, group, owner, ram };
}

t.test('the driver brings the SMMU up through MMIO: queues, stream table, SMMUEN', async (t) => {
  const { board, smmu } = setup();
  t.equal(smmu.regs.get('CR0ACK') & 0xd, 0xd, 'SMMUEN, EVENTQEN and CMDQEN acknowledged');
  t.equal(board.counters.get('smmuv3.commands') > 0, true);
});

t.test('a claimed group is blocked: DMA aborts with the STE Config=abort', async (t) => {
  const { dev, driver } = setup();
  t.equal(driver.steOf(dev)![0]! & 0xf, 1 | (STE_CONFIG.ABORT << 1));
  t.notOk(dev.dmaRead(0x1000n, 4).ok);
});

t.test('a stage-1 paging domain: mapped IOVAs reach RAM, unmapped ones fault with F_TRANSLATION in the event queue', async (t) => {
  const { board, host, driver, dev, group, owner, ram } = setup();
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.equal(d.map(0x10_0000, ram, 0x4000, RW), 0);
  t.ok(dev.dmaWrite(0x10_0010n, new Uint8Array([1, 2, 3, 4])).ok);
  t.equal(board.sysmem.read32(ram + 0x10), 0x04030201);
  const r = dev.dmaRead(0x20_0000n, 4);
  t.same(r, { ok: false, fault: 'F_TRANSLATION' });
  board.scheduler.run();
  const ev = driver.events.at(-1)!;
  t.equal(ev.name, 'F_TRANSLATION');
  t.equal(ev.sid, dev.requesterId);
  t.equal(ev.addr, 0x20_0000);
});

t.test('unmap invalidates the IOTLB before it returns: no stale translation', async (t) => {
  const { board, host, dev, group, owner, ram } = setup();
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  d.map(0x10_0000, ram, 0x4000, RW);
  t.ok(dev.dmaRead(0x10_1000n, 4).ok, 'fills the IOTLB');
  const hits = board.counters.get('smmuv3.iotlb.hit');
  t.ok(dev.dmaRead(0x10_1000n, 4).ok);
  t.ok(board.counters.get('smmuv3.iotlb.hit') > hits, 'second access hits');
  t.equal(d.unmap(0x10_0000, 0x4000), 0x4000);
  t.same(dev.dmaRead(0x10_1000n, 4), { ok: false, fault: 'F_TRANSLATION' });
});

t.test('range invalidation covers large unmaps exactly', async (t) => {
  const { host, dev, group, owner } = setup();
  const big = host.allocator.allocPages(10)!;
  const d = host.iommu.allocPaging(dev) as IommuDomain;
  host.iommu.attachGroup(d, group, owner);
  t.equal(d.map(0x4000_0000, big, 0x1f_f000, RW), 0, 'not 2M aligned in length: 511 pages');
  for (const off of [0, 0x1000, 0x10_0000, 0x1f_e000]) t.ok(dev.dmaRead(BigInt(0x4000_0000 + off), 4).ok);
  d.unmap(0x4000_0000, 0x1f_f000);
  for (const off of [0, 0x1000, 0x10_0000, 0x1f_e000]) t.notOk(dev.dmaRead(BigInt(0x4000_0000 + off), 4).ok, `0x${off.toString(16)} invalidated`);
});

t.test('identity domain bypasses; a stage-2 nest-parent domain translates through S2', async (t) => {
  const { board, host, driver, dev, group, owner, ram } = setup();
  const id = host.iommu.identityDomain(group)!;
  t.equal(host.iommu.attachGroup(id, group, owner), 0);
  t.equal(driver.steOf(dev)![0]! & 0xe, STE_CONFIG.BYPASS << 1);
  board.sysmem.write32(ram, 0xabcd);
  const r = dev.dmaRead(BigInt(ram), 4);
  t.ok(r.ok && r.data![0] === 0xcd);
  host.iommu.detachGroup(id, group, owner);
  const s2 = host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  t.equal(host.iommu.attachGroup(s2, group, owner), 0);
  t.equal(driver.steOf(dev)![0]! & 0xe, STE_CONFIG.S2_TRANS << 1);
  s2.map(0x8000_0000, ram, 0x1000, RW);
  const r2 = dev.dmaRead(0x8000_0000n, 4);
  t.ok(r2.ok && r2.data![0] === 0xcd, 'IPA -> PA through stage 2');
  s2.unmap(0x8000_0000, 0x1000);
  t.notOk(dev.dmaRead(0x8000_0000n, 4).ok);
});

t.test('PASID attach installs a CD at that SubstreamID; detach removes it', async (t) => {
  const board = new Board('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const smmu = new Smmuv3(board, board.sysmem);
  board.sysmemRoot.addSubregion(board.layout.iommuBase, smmu.region, 1);
  board.rc.remapper = smmu;
  const host = new Host(board);
  const driver = new Smmuv3Driver(host, board.layout.iommuBase);
  host.iommu.registerDriver(driver);
  const { PasidCapability } = await import('../../../src/pci/caps/pasid.ts');
  class PasidDev extends BarePcieFunction {
    constructor() {
      super('pasid-dev');
      new PasidCapability(this.config, this.caps, { maxPasidWidth: 8 });
    }
  }
  const dev = new PasidDev();
  board.rc.plug(dev, 1);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  host.addPciDevice(dev);
  t.equal(driver.maxPasids(dev), 256, 'PASID width from the device capability');
  const p = host.spawn();
  const va = p.mmap(4 * 4096, { populate: true });
  p.memWrite(va, new Uint8Array([42]));
  const h = host.sva.bind(dev, p.mm, p.pid);
  t.type(h, 'object', 'bound');
  const sva = h as SvaHandle;
  t.equal(driver.steOf(dev)![0]! & 0xe, STE_CONFIG.S1_TRANS << 1, 'the STE points at the CD table');
  const r = dev.dmaRead(va, 1, { pasid: sva.pasid });
  t.ok(r.ok && r.data![0] === 42, 'DMA with the PASID reads the process memory');
  t.notOk(dev.dmaRead(va, 1).ok, 'without the PASID the RID is blocked');
  host.sva.unbind(sva);
  t.notOk(dev.dmaRead(va, 1, { pasid: sva.pasid }).ok, 'after unbind the PASID is gone');
});
