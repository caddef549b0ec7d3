import t from 'tap';
import { Board } from '../../../machines/board.ts';
import { Host } from '../../../src/host/host.ts';
import { Smmuv3 } from '../../../iommu/smmuv3/smmuv3.ts';
import { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { STE_CONFIG, steField } from '../../../iommu/smmuv3/ste.ts';
import { IotlbGather, IOMMU_READ, IOMMU_WRITE } from '../../../src/iommu-core/io-pgtable.ts';
import { IommuDomain } from '../../../src/iommu-core/domain.ts';
import type { DriverViommu } from '../../../src/iommu-core/types.ts';
import { E2BIG, EINVAL, EIO, ENOENT, EOPNOTSUPP } from '../../../src/uapi/errno.ts';
import { IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3 } from '../../../src/uapi/iommufd.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { BareFunction } from '../../pci/helpers.ts';
import { GUEST_ASID, guestStage1, s1Vste, vcmds, vste } from '../../../iommu/guest/smmuv3.ts';

const RW = IOMMU_READ | IOMMU_WRITE;
const PAGE = 4096;
const GPA = 0x4000_0000; // guest RAM: 64 pages; its tables in the first 16
const GVA = 0x7000_0000;
const VSID = 0x42;

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
  // The VMM's stage 2: guest RAM at GPA, backed by 64 host pages.
  const parent = host.iommu.allocPaging(dev, { nestParent: true }) as IommuDomain;
  const ram = host.allocator.allocPages(6)!;
  t.equal(parent.map(GPA, ram, 64 * PAGE, RW), 0);
  const io = {
    read: (gpa: number, n: number) => {
      const b = new Uint8Array(n);
      board.sysmem.readInto(ram + gpa - GPA, b);
      return b;
    },
    write: (gpa: number, d: Uint8Array) => void board.sysmem.writeFrom(ram + gpa - GPA, d),
  };
  const guest = guestStage1(io, GPA, 16);
  const page = (i: number) => GPA + (16 + i) * PAGE;
  // What iommufd's vDEVICE table would answer: the device is vSID 0x42 once `bound`.
  const vdevs = { bound: true };
  const viommu = driver.viommuAlloc(dev, parent.driver, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, {
    findDev: (v: number) => (vdevs.bound && v === VSID ? dev : undefined),
    virtIdOf: (d: PciFunction) => (vdevs.bound && d === dev ? VSID : undefined),
  }) as DriverViommu;
  t.equal(typeof viommu, 'object');
  const nested = (data: Uint8Array) => {
    const d = viommu.allocDomainNested(dev, 0, IOMMU_HWPT_DATA_ARM_SMMUV3, data);
    if (typeof d === 'number') throw new Error(`nested ${d}`);
    return new IommuDomain(d);
  };
  const invalidate = (bytes: Uint8Array, entryLen = 16, type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) =>
    viommu.cacheInvalidate(type, entryLen, bytes.length / entryLen, () => bytes);
  const byte = (addr: number) => {
    const r = dev.dmaRead(BigInt(addr), 1);
    return r.ok ? r.data![0]! : -1;
  };
  return { board, host, driver, dev, group, owner, parent, ram, guest, page, viommu, vdevs, nested, invalidate, byte };
}

t.test('a vSMMU needs a nest-parent stage-2 domain of this SMMU', async (t) => {
  const f = setup();
  t.equal(f.driver.viommuSupported(f.dev, IOMMU_VIOMMU_TYPE_ARM_SMMUV3), true);
  t.equal(f.driver.viommuSupported(f.dev, 2), false, 'IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV is not this hardware');
  const s1 = f.host.iommu.allocPaging(f.dev) as IommuDomain;
  const vd = { findDev: () => undefined, virtIdOf: () => undefined };
  t.equal(f.driver.viommuAlloc(f.dev, s1.driver, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, vd), -EINVAL, 'a stage-1 domain');
  const s2 = f.host.iommu.allocPaging(f.dev, { nestParent: true }) as IommuDomain;
  t.type(f.driver.viommuAlloc(f.dev, s2.driver, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, vd), 'object');
});

t.test('a nested STE: the guest CD table (an IPA) over the parent stage 2 and VMID; DMA GVA -> GPA -> HPA', async (t) => {
  const f = setup();
  const { s1, cdTable } = f.guest;
  t.equal(s1.map(GVA, f.page(0), PAGE, RW), 0);
  f.board.sysmem.write8(f.ram + 16 * PAGE, 0x61);
  f.board.sysmem.write8(f.ram + 17 * PAGE, 0x62);
  const d = f.nested(s1Vste(cdTable, { EATS: 1 }));
  t.equal(f.host.iommu.replaceGroupDomain(d, f.group, f.owner), 0);
  const ste = f.driver.steOf(f.dev)!;
  t.equal(steField(ste, 'Config'), STE_CONFIG.NESTED);
  t.equal(steField(ste, 'S1ContextPtr') * 64, cdTable, 'S1ContextPtr is the guest CD table GPA');
  t.equal(steField(ste, 'S2VMID'), (f.parent.driver as unknown as { vmid: number }).vmid, "the parent's VMID");
  t.equal(steField(ste, 'MEV'), 1, 'events merged');
  t.equal(steField(ste, 'EATS'), 0, 'no ATS on a device without it, whatever the vSTE says');
  t.equal(f.byte(GVA), 0x61, 'through both stages');
  t.ok(f.dev.dmaWrite(BigInt(GVA + 1), new Uint8Array([0x77])).ok);
  t.equal(f.board.sysmem.read8(f.ram + 16 * PAGE + 1), 0x77);
  t.same(f.dev.dmaRead(BigInt(GVA + PAGE), 1), { ok: false, fault: 'F_TRANSLATION' }, 'unmapped in the guest stage 1');
});

t.test('guest TLBIs are forwarded with the VMID substituted; guest CFGI_CD with its vSID translated', async (t) => {
  const f = setup();
  const { s1, cdTable } = f.guest;
  s1.map(GVA, f.page(0), PAGE, RW);
  f.board.sysmem.write8(f.ram + 16 * PAGE, 0x61);
  f.board.sysmem.write8(f.ram + 17 * PAGE, 0x62);
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(s1Vste(cdTable)), f.group, f.owner), 0);
  t.equal(f.byte(GVA), 0x61);
  s1.unmap(GVA, PAGE, new IotlbGather());
  s1.map(GVA, f.page(1), PAGE, RW);
  t.equal(f.byte(GVA), 0x61, 'stale until the guest invalidates');
  // The guest writes its own idea of a VMID (0x77): the host must replace it or nothing is invalidated.
  t.same(f.invalidate(vcmds([['TLBI_NH_VA', { VMID: 0x77, ASID: GUEST_ASID, Address: GVA / PAGE, Leaf: 1 }]])), { done: 1, err: 0 });
  t.equal(f.byte(GVA), 0x62, 'the forwarded TLBI_NH_VA took the old translation out');
  s1.unmap(GVA, PAGE, new IotlbGather());
  s1.map(GVA, f.page(0), PAGE, RW);
  t.same(f.invalidate(vcmds([['TLBI_NSNH_ALL', {}]])), { done: 1, err: 0 }, 'TLBI_NSNH_ALL becomes TLBI_NH_ALL of the VMID');
  t.equal(f.byte(GVA), 0x61);
  t.same(f.invalidate(vcmds([['CFGI_CD', { StreamID: VSID, SubstreamID: 0, Leaf: 1 }], ['CFGI_CD_ALL', { StreamID: VSID }]])), { done: 2, err: 0 });
  t.same(f.invalidate(vcmds([['TLBI_NH_ASID', { ASID: GUEST_ASID }], ['CFGI_CD', { StreamID: 0x99 }], ['TLBI_NH_ALL', {}]])), { done: 1, err: -EIO }, 'an unknown vSID stops at that entry');
  t.same(f.invalidate(vcmds([['CFGI_STE', { StreamID: VSID }]])), { done: 0, err: -EIO }, 'CFGI_STE is not the guest\'s to send');
  t.same(f.invalidate(vcmds([['TLBI_S12_VMALL', { VMID: 1 }]])), { done: 0, err: -EIO }, 'nor stage-2 invalidation');
  t.same(f.invalidate(vcmds([['TLBI_NH_ALL', {}]]), 16, 0), { done: 0, err: -EINVAL }, 'IOMMU_HWPT_INVALIDATE_DATA_VTD_S1');
  t.same(f.invalidate(new Uint8Array(0)), { done: 0, err: -EINVAL }, 'no entries');
  const long = new Uint8Array(24);
  long.set(vcmds([['TLBI_NH_ALL', {}]]));
  t.same(f.invalidate(long, 24), { done: 1, err: 0 }, 'a longer entry with a zero tail');
  long[20] = 1;
  t.same(f.invalidate(long, 24), { done: 0, err: -E2BIG }, 'a longer entry with a non-zero tail');
  const short = vcmds([['TLBI_NSNH_ALL', {}]]).subarray(0, 8);
  t.same(f.invalidate(short, 8), { done: 1, err: 0 }, 'a shorter entry is zero-extended');
});

t.test('vSTE validation (arm_smmu_validate_vste) and allocation rules', async (t) => {
  const f = setup();
  const alloc = (data: Uint8Array, flags = 0, type = IOMMU_HWPT_DATA_ARM_SMMUV3) => {
    const d = f.viommu.allocDomainNested(f.dev, flags, type, data);
    return typeof d === 'number' ? d : 0;
  };
  const good = s1Vste(f.guest.cdTable);
  t.equal(alloc(good), 0);
  t.equal(alloc(good, 1), -EOPNOTSUPP, 'flags');
  t.equal(alloc(good, 0, 1), -EINVAL, 'IOMMU_HWPT_DATA_VTD_S1');
  t.equal(alloc(good.subarray(0, 8)), -EINVAL, 'shorter than struct iommu_hwpt_arm_smmuv3');
  // __iommu_copy_struct_from_user(): data_len above sizeof(struct iommu_hwpt_arm_smmuv3) is -EINVAL, zero tail or not.
  const long = new Uint8Array(24);
  long.set(good);
  t.equal(alloc(long), -EINVAL, 'longer, zero tail');
  long[23] = 1;
  t.equal(alloc(long), -EINVAL, 'longer, non-zero tail');
  t.equal(alloc(vste({ V: 0, Config: 0b110, MEV: 1 })), 0, 'V = 0: anything goes, it becomes an abort vSTE');
  t.equal(alloc(vste({ V: 1, Config: STE_CONFIG.S2_TRANS })), -EIO, 'Config S2 translate');
  t.equal(alloc(vste({ V: 1, Config: STE_CONFIG.NESTED })), -EIO, 'Config nested');
  t.equal(alloc(vste({ V: 1, Config: 0b001 })), -EIO, 'reserved Config');
  t.equal(alloc(s1Vste(f.guest.cdTable, { EATS: 2 })), -EIO, 'EATS split-stage');
  t.equal(alloc(s1Vste(f.guest.cdTable, { MEV: 1 })), -EIO, 'MEV is the host\'s');
  t.equal(alloc(s1Vste(f.guest.cdTable, { SHCFG: 1 })), -EIO, 'SHCFG is the host\'s');
  t.equal(alloc(s1Vste(2 ** 52)), -EIO, 'S1ContextPtr beyond bit 51');
  t.equal(alloc(s1Vste(f.guest.cdTable, { S1STALLD: 1, S1CIR: 1, S1COR: 1, S1CSH: 3, S1DSS: 1, EATS: 1 })), 0, 'every allowed field');
});

t.test('attach rules: a translating vSTE needs the vDEVICE (-ENOENT); abort and bypass vSTEs do not; bypass is stage 2 only', async (t) => {
  const f = setup();
  f.vdevs.bound = false;
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(s1Vste(f.guest.cdTable)), f.group, f.owner), -ENOENT);
  f.board.sysmem.write8(f.ram + 20 * PAGE, 0x5a);
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(vste({ V: 1, Config: STE_CONFIG.BYPASS })), f.group, f.owner), 0);
  const ste = f.driver.steOf(f.dev)!;
  t.equal(steField(ste, 'Config'), STE_CONFIG.S2_TRANS, 'a bypass vSTE is the parent stage 2');
  t.equal(f.byte(GPA + 20 * PAGE), 0x5a, 'GPA -> HPA');
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(vste({ V: 0 })), f.group, f.owner), 0);
  t.equal(steField(f.driver.steOf(f.dev)!, 'Config'), STE_CONFIG.ABORT, 'a non-valid vSTE is an abort STE');
  t.equal(f.byte(GPA + 20 * PAGE), -1);
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(vste({ V: 1, Config: STE_CONFIG.ABORT })), f.group, f.owner), 0);
  t.equal(steField(f.driver.steOf(f.dev)!, 'Config'), STE_CONFIG.ABORT);
});

t.test('a stage-2 unmap in the nest parent also drops the nested stage-1 entries of its VMID', async (t) => {
  const f = setup();
  const { s1, cdTable } = f.guest;
  s1.map(GVA, f.page(0), PAGE, RW);
  f.board.sysmem.write8(f.ram + 16 * PAGE, 0x61);
  t.equal(f.host.iommu.replaceGroupDomain(f.nested(s1Vste(cdTable)), f.group, f.owner), 0);
  t.equal(f.byte(GVA), 0x61);
  t.equal(f.parent.unmap(GPA + 16 * PAGE, PAGE), PAGE);
  t.same(f.dev.dmaRead(BigInt(GVA), 1), { ok: false, fault: 'F_TRANSLATION' }, 'the GPA behind the GVA is gone');
});
