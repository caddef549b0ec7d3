import t from 'tap';
import { IotlbGather, IOMMU_READ, IOMMU_WRITE } from '../../src/iommu-core/io-pgtable.ts';
import type { Smmuv3Driver } from '../../iommu/smmuv3/driver/driver.ts';
import { STE_CONFIG, steField } from '../../iommu/smmuv3/ste.ts';
import { createMachine } from '../../machines/machine.ts';
import { E2BIG, EBUSY, EEXIST, EINVAL, EIO, ENOENT, EOPNOTSUPP } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_DESTROY,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_destroy,
  iommu_hwpt_alloc,
  iommu_hwpt_invalidate,
  iommu_vdevice_alloc,
  iommu_viommu_alloc,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { GUEST_ASID, guestStage1, s1Vste, vcmds, vste } from '../../iommu/guest/smmuv3.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

const GPA = 0x4000_0000; // the guest's RAM in the IOAS: 32 pages, its tables in the first 16
const GVA = 0x7000_0000;
const VSID = 0x42;
const RW = IOMMU_READ | IOMMU_WRITE;

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags: number, data?: Uint8Array, type = IOMMU_HWPT_DATA_ARM_SMMUV3): [number, number] {
  let uptr = 0n;
  if (data !== undefined) {
    uptr = p.mmap(PAGE);
    p.memWrite(uptr, data);
  }
  const b = encodeStruct(iommu_hwpt_alloc, {
    size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId,
    data_type: data === undefined ? 0 : type, data_len: data?.length ?? 0, data_uptr: uptr,
  });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return [r, new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id')];
}

function viommuAlloc(p: Process, fd: number, devId: number, hwpt: number, o: { type?: number; flags?: number; size?: number } = {}): [number, number] {
  const b = encodeStruct(iommu_viommu_alloc, {
    size: o.size ?? iommu_viommu_alloc.size, flags: o.flags ?? 0, type: o.type ?? IOMMU_VIOMMU_TYPE_ARM_SMMUV3, dev_id: devId, hwpt_id: hwpt,
  });
  const r = p.ioctl(fd, IOMMU_VIOMMU_ALLOC, b);
  return [r, new StructView(iommu_viommu_alloc, b).num('out_viommu_id')];
}

function vdeviceAlloc(p: Process, fd: number, viommu: number, devId: number, virtId: number | bigint, size = iommu_vdevice_alloc.size): [number, number] {
  const b = encodeStruct(iommu_vdevice_alloc, { size, viommu_id: viommu, dev_id: devId, virt_id: BigInt(virtId) });
  const r = p.ioctl(fd, IOMMU_VDEVICE_ALLOC, b);
  return [r, new StructView(iommu_vdevice_alloc, b).num('out_vdevice_id')];
}

function invalidate(p: Process, fd: number, id: number, entries: Uint8Array, o: { type?: number; len?: number; rsv?: number } = {}): [number, number] {
  const uptr = p.mmap(PAGE);
  p.memWrite(uptr, entries);
  const len = o.len ?? 16;
  const b = encodeStruct(iommu_hwpt_invalidate, {
    size: iommu_hwpt_invalidate.size, hwpt_id: id, data_uptr: uptr, data_type: o.type ?? IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
    entry_len: len, entry_num: entries.length / len, __reserved: o.rsv ?? 0,
  });
  return [p.ioctl(fd, IOMMU_HWPT_INVALIDATE, b), new StructView(iommu_hwpt_invalidate, b).num('entry_num')];
}

const destroy = (p: Process, fd: number, id: number) => p.ioctl(fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: iommu_destroy.size, id }));

/** virt-smmuv3 with a VMM process: guest RAM mapped at GPA in an IOAS, a NEST_PARENT HWPT, the guest's stage 1 in that RAM. */
function vm() {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  const ram = p.mmap(32 * PAGE, { populate: true });
  t.equal(map(p, fd, ioas, ram, 32 * PAGE, GPA)[0], 0);
  const io = {
    read: (gpa: number, n: number) => p.memRead(ram + BigInt(gpa - GPA), n) as Uint8Array,
    write: (gpa: number, d: Uint8Array) => void p.memWrite(ram + BigInt(gpa - GPA), d),
  };
  const guest = guestStage1(io, GPA, 16);
  const page = (i: number) => GPA + (16 + i) * PAGE;
  const [r, parent] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  t.equal(r, 0, 'NEST_PARENT HWPT');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const byte = (addr: number) => {
    const x = dev.dmaRead(BigInt(addr), 1);
    return x.ok ? x.data![0]! : -1;
  };
  return { m, dev, p, fd, ioas, cdev, devId, ram, guest, page, parent, byte };
}

t.test('virt-smmuv3: VIOMMU_ALLOC, VDEVICE_ALLOC, HWPT_ALLOC on the vIOMMU with a vSTE; DMA GVA -> GPA -> HPA; guest invalidations forwarded', async (t) => {
  const v = vm();
  const { p, fd, devId, guest } = v;
  t.equal(guest.s1.map(GVA, v.page(0), PAGE, RW), 0);
  p.memWrite(v.ram + BigInt(16 * PAGE), new Uint8Array([0x61]));
  p.memWrite(v.ram + BigInt(17 * PAGE), new Uint8Array([0x62]));
  const [r1, viommu] = viommuAlloc(p, fd, devId, v.parent);
  t.equal(r1, 0, 'VIOMMU_ALLOC');
  const [r2, vdev] = vdeviceAlloc(p, fd, viommu, devId, VSID);
  t.equal(r2, 0, 'VDEVICE_ALLOC with the vSID');
  const [r3, nested] = hwptAlloc(p, fd, devId, viommu, 0, s1Vste(guest.cdTable));
  t.equal(r3, 0, 'HWPT_ALLOC with pt_id = the vIOMMU and struct iommu_hwpt_arm_smmuv3');
  t.same(attach(p, v.cdev, nested), [0, nested]);
  const driver = v.m.host.iommu.driverOf(v.dev) as Smmuv3Driver;
  const ste = driver.steOf(v.dev)!;
  t.equal(steField(ste, 'Config'), STE_CONFIG.NESTED, 'a nested STE');
  t.equal(steField(ste, 'S1ContextPtr') * 64, guest.cdTable);
  t.equal(v.byte(GVA), 0x61, 'GVA -> GPA -> HPA');
  t.ok(v.dev.dmaWrite(BigInt(GVA + 1), new Uint8Array([0x77])).ok);
  t.same(p.memRead(v.ram + BigInt(16 * PAGE + 1), 1), new Uint8Array([0x77]), 'the write reached the VMM-backed guest page');

  guest.s1.unmap(GVA, PAGE, new IotlbGather());
  guest.s1.map(GVA, v.page(1), PAGE, RW);
  t.equal(v.byte(GVA), 0x61, 'stale until the guest invalidates');
  t.same(invalidate(p, fd, viommu, vcmds([['TLBI_NH_VA', { VMID: 5, ASID: GUEST_ASID, Address: GVA / PAGE }], ['CFGI_STE', { StreamID: VSID }]])), [-EIO, 1], 'one forwarded, then a command the guest may not send');
  t.equal(v.byte(GVA), 0x62, 'the TLBI ran with the VMID substituted');
  t.same(invalidate(p, fd, viommu, vcmds([['CFGI_CD', { StreamID: VSID }], ['CFGI_CD_ALL', { StreamID: VSID }], ['TLBI_NSNH_ALL', {}]])), [0, 3], 'CFGI_CD by vSID, NSNH_ALL');
  t.same(invalidate(p, fd, viommu, vcmds([['CFGI_CD', { StreamID: VSID + 1 }]])), [-EIO, 0], 'a vSID with no vDEVICE');
  t.same(invalidate(p, fd, viommu, vcmds([['TLBI_NH_ALL', {}]]), { type: 0 }), [-EINVAL, 0], 'IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 on this vIOMMU');
  t.same(invalidate(p, fd, viommu, new Uint8Array(0)), [-EINVAL, 0], 'no entries: the ARM vIOMMU wants at least one');
  t.same(invalidate(p, fd, viommu, vcmds([['TLBI_NH_ALL', {}]]), { rsv: 1 }), [-EOPNOTSUPP, 0], '__reserved');
  const long = new Uint8Array(32);
  long.set(vcmds([['TLBI_NH_ALL', {}]]));
  long[31] = 1;
  t.same(invalidate(p, fd, viommu, long, { len: 32 }), [-E2BIG, 0], 'an entry longer than a command, non-zero tail');
  long[31] = 0;
  t.same(invalidate(p, fd, viommu, long, { len: 32 }), [0, 1], 'longer with a zero tail is fine here (iommu_copy_struct_from_full_user_array)');
  t.same(invalidate(p, fd, nested, vcmds([['TLBI_NH_ALL', {}]])), [-EOPNOTSUPP, 0], 'the nested HWPT itself takes no invalidation');

  // Destruction order: the vIOMMU holds the parent; the vDEVICE and nested HWPT hold the vIOMMU.
  t.equal(destroy(p, fd, v.parent), -EBUSY, 'the parent while a vIOMMU uses it');
  t.equal(destroy(p, fd, viommu), -EBUSY, 'the vIOMMU while a vDEVICE and a nested HWPT use it');
  t.equal(destroy(p, fd, vdev), 0, 'a vDEVICE');
  t.equal(destroy(p, fd, vdev), -ENOENT);
  t.same(invalidate(p, fd, viommu, vcmds([['CFGI_CD', { StreamID: VSID }]])), [-EIO, 0], 'its vSID is gone');
  t.equal(destroy(p, fd, nested), -EBUSY, 'the nested HWPT while attached');
  t.same(attach(p, v.cdev, v.parent)[0], 0, 'back to the parent (stage 2 only)');
  t.equal(destroy(p, fd, nested), 0);
  t.equal(destroy(p, fd, viommu), 0, 'the vIOMMU once nothing uses it');
});

t.test('virt-smmuv3: VIOMMU_ALLOC errnos', async (t) => {
  const v = vm();
  const { p, fd, devId, ioas } = v;
  t.equal(viommuAlloc(p, fd, devId, v.parent, { size: 20 })[0], -EINVAL, 'size below offsetofend(out_viommu_id)');
  t.equal(viommuAlloc(p, fd, devId, v.parent, { size: 24 })[0], 0, 'the v6.13 size (no data_len/data_uptr)');
  t.equal(viommuAlloc(p, fd, devId, v.parent, { flags: 1 })[0], -EOPNOTSUPP, 'flags');
  t.equal(viommuAlloc(p, fd, devId, v.parent, { type: 0 })[0], -EOPNOTSUPP, 'IOMMU_VIOMMU_TYPE_DEFAULT');
  t.equal(viommuAlloc(p, fd, devId, v.parent, { type: 2 })[0], -EOPNOTSUPP, 'IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV');
  t.equal(viommuAlloc(p, fd, 99, v.parent)[0], -ENOENT, 'unknown device');
  t.equal(viommuAlloc(p, fd, devId, ioas)[0], -ENOENT, 'an IOAS is not a paging HWPT');
  const [, plain] = hwptAlloc(p, fd, devId, ioas, 0);
  t.equal(viommuAlloc(p, fd, devId, plain)[0], -EINVAL, 'not a NEST_PARENT');
  const big = encodeStruct(iommu_viommu_alloc, { size: 48, type: 1, dev_id: devId, hwpt_id: v.parent }, 48);
  big[47] = 1;
  t.equal(p.ioctl(fd, IOMMU_VIOMMU_ALLOC, big), -E2BIG, 'non-zero bytes past the struct');
});

t.test('virt-smmuv3: VDEVICE_ALLOC and HWPT_ALLOC-on-vIOMMU errnos; attach rules', async (t) => {
  const v = vm();
  const { p, fd, devId, guest } = v;
  const [, viommu] = viommuAlloc(p, fd, devId, v.parent);
  const [, devId2] = bind(p, fd, 1);
  t.equal(vdeviceAlloc(p, fd, viommu, devId, VSID, 16)[0], -EINVAL, 'size below offsetofend(virt_id)');
  t.equal(vdeviceAlloc(p, fd, 99, devId, VSID)[0], -ENOENT, 'unknown vIOMMU');
  t.equal(vdeviceAlloc(p, fd, v.parent, devId, VSID)[0], -ENOENT, 'a HWPT is not a vIOMMU');
  t.equal(vdeviceAlloc(p, fd, viommu, 99, VSID)[0], -ENOENT, 'unknown device');
  t.equal(vdeviceAlloc(p, fd, viommu, devId, VSID)[0], 0);
  t.equal(vdeviceAlloc(p, fd, viommu, devId, VSID + 1)[0], -EEXIST, 'a device has one vDEVICE');
  t.equal(vdeviceAlloc(p, fd, viommu, devId2, VSID)[0], -EEXIST, 'a vSID is taken once');
  t.equal(vdeviceAlloc(p, fd, viommu, devId2, 2n ** 63n)[0], 0, 'any unsigned long');

  const good = s1Vste(guest.cdTable);
  t.equal(hwptAlloc(p, fd, devId, viommu, IOMMU_HWPT_ALLOC_NEST_PARENT, good)[0], -EOPNOTSUPP, 'flags other than FAULT_ID_VALID');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0)[0], -EOPNOTSUPP, 'no vendor data');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, good, IOMMU_HWPT_DATA_VTD_S1)[0], -EINVAL, 'IOMMU_HWPT_DATA_VTD_S1');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, good.subarray(0, 12))[0], -EINVAL, 'shorter than the struct');
  const long = new Uint8Array(24);
  long.set(good);
  long[20] = 1;
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, long)[0], -EINVAL, 'longer, non-zero tail (__iommu_copy_struct_from_user)');
  long[20] = 0;
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, long)[0], -EINVAL, 'longer, zero tail');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, s1Vste(guest.cdTable, { MEV: 1 }))[0], -EIO, 'a vSTE field the host owns');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, vste({ V: 1, Config: STE_CONFIG.S2_TRANS }))[0], -EIO, 'Config S2 translate');
  t.equal(hwptAlloc(p, fd, devId, viommu, 0, s1Vste(guest.cdTable, { EATS: 3 }))[0], -EIO, 'EATS reserved');
  const zeroLen = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, dev_id: devId, pt_id: viommu, data_type: IOMMU_HWPT_DATA_ARM_SMMUV3 });
  t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, zeroLen), -EINVAL, 'a data type with data_len 0');

  // A nested HWPT is the vIOMMU's, not the allocating device's: another device of the same SMMU may attach it.
  const [r, nested] = hwptAlloc(p, fd, devId2, viommu, 0, good);
  t.equal(r, 0);
  t.equal(attach(p, v.cdev, nested)[0], 0, 'device 1 (with its vDEVICE) attaches it');
  const [, bypass] = hwptAlloc(p, fd, devId, viommu, 0, vste({ V: 1, Config: STE_CONFIG.BYPASS }));
  t.equal(attach(p, v.cdev, bypass)[0], 0, 'bypass vSTE');
  const driver = v.m.host.iommu.driverOf(v.dev) as Smmuv3Driver;
  t.equal(steField(driver.steOf(v.dev)!, 'Config'), STE_CONFIG.S2_TRANS, 'a bypass vSTE is the stage 2 alone');
});

t.test('virt-smmuv3: a translating nested HWPT cannot attach without a vDEVICE (-ENOENT); unbinding a device destroys its vDEVICE', async (t) => {
  const v = vm();
  const { p, fd, devId, guest } = v;
  const [, viommu] = viommuAlloc(p, fd, devId, v.parent);
  const [, nested] = hwptAlloc(p, fd, devId, viommu, 0, s1Vste(guest.cdTable));
  t.equal(attach(p, v.cdev, nested)[0], -ENOENT, 'no vSID for the device');
  const [, abort] = hwptAlloc(p, fd, devId, viommu, 0, vste({ V: 0 }));
  t.equal(attach(p, v.cdev, abort)[0], 0, 'an abort vSTE needs none');
  t.equal(v.byte(GPA), -1, 'and aborts');
  const [, vdev] = vdeviceAlloc(p, fd, viommu, devId, VSID);
  t.equal(attach(p, v.cdev, nested)[0], 0, 'with its vDEVICE');
  t.equal(attach(p, v.cdev, v.parent)[0], 0);
  t.equal(p.close(v.cdev), 0, 'closing the cdev unbinds the device');
  t.equal(destroy(p, fd, vdev), -ENOENT, 'its vDEVICE went with it');
  t.equal(destroy(p, fd, nested), 0);
  t.equal(destroy(p, fd, abort), 0);
  t.equal(destroy(p, fd, viommu), 0, 'nothing holds the vIOMMU any more');
  t.equal(destroy(p, fd, v.parent), 0);
});

t.test('q35-vtd: VIOMMU_ALLOC of an ARM SMMUv3 vIOMMU is EOPNOTSUPP', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [, devId] = bind(p, fd, 0);
  const [, parent] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  t.equal(viommuAlloc(p, fd, devId, parent)[0], -EOPNOTSUPP);
});
