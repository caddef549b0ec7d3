/**
 * A VMM on virt-smmuv3 with a nested SMMUv3 setup, for vEVENTQ tests and
 * fault-injection scenarios: guest RAM at GPA in an IOAS, a NEST_PARENT HWPT,
 * a vIOMMU, device 0's vDEVICE with vSID VSID, and a nested HWPT over the
 * guest's stage 1 (iommu/guest/smmuv3.ts) attached; plus IOMMU_VEVENTQ_ALLOC.
 */
import type { Smmuv3Driver } from '../../iommu/smmuv3/driver/driver.ts';
import { guestStage1, s1Vste } from '../../iommu/guest/smmuv3.ts';
import { createMachine } from '../../machines/machine.ts';
import { recordBaseline } from '../../tools/fault/invariants.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  iommu_hwpt_alloc,
  iommu_vdevice_alloc,
  iommu_veventq_alloc,
  iommu_viommu_alloc,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

export const GPA = 0x4000_0000; // guest RAM in the IOAS: 32 pages, the guest's tables in the first 16
export const GVA = 0x7000_0000; // not mapped by the guest's stage 1 unless a test maps it
export const VSID = 0x42;

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags: number, data?: Uint8Array): number {
  let uptr = 0n;
  if (data !== undefined) {
    uptr = p.mmap(PAGE);
    p.memWrite(uptr, data);
  }
  const b = encodeStruct(iommu_hwpt_alloc, {
    size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId,
    data_type: data === undefined ? 0 : IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: data?.length ?? 0, data_uptr: uptr,
  });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  if (r < 0) throw new Error(`HWPT_ALLOC ${r}`);
  return new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id');
}

export type AllocFields = Partial<Record<keyof typeof iommu_veventq_alloc.fields, number>>;

/** IOMMU_VEVENTQ_ALLOC: [result, vEVENTQ ID, fd]. */
export function veventqAlloc(p: Process, fd: number, viommu: number, o: AllocFields = {}, size = iommu_veventq_alloc.size): [number, number, number] {
  const b = encodeStruct(iommu_veventq_alloc, { size, viommu_id: viommu, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventq_depth: 8, ...o }, Math.max(size, iommu_veventq_alloc.size));
  const r = p.ioctl(fd, IOMMU_VEVENTQ_ALLOC, b);
  const v = new StructView(iommu_veventq_alloc, b.subarray(0, iommu_veventq_alloc.size));
  return [r, v.num('out_veventq_id'), v.num('out_veventq_fd')];
}

/** A VMM on virt-smmuv3: device 0 attached to a nested HWPT whose guest stage 1 lives in the VMM's guest RAM; vSID VSID. */
export function vm(opts: { trace?: boolean; baseline?: boolean } = {}) {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20, trace: opts.trace });
  if (opts.baseline === true) recordBaseline(m);
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  const ram = p.mmap(32 * PAGE, { populate: true });
  map(p, fd, ioas, ram, 32 * PAGE, GPA);
  const guest = guestStage1({
    read: (gpa, n) => p.memRead(ram + BigInt(gpa - GPA), n) as Uint8Array,
    write: (gpa, d) => void p.memWrite(ram + BigInt(gpa - GPA), d),
  }, GPA, 16);
  const parent = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  const vb = encodeStruct(iommu_viommu_alloc, { size: iommu_viommu_alloc.size, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, dev_id: devId, hwpt_id: parent });
  if (p.ioctl(fd, IOMMU_VIOMMU_ALLOC, vb) !== 0) throw new Error('VIOMMU_ALLOC');
  const viommu = new StructView(iommu_viommu_alloc, vb).num('out_viommu_id');
  const db = encodeStruct(iommu_vdevice_alloc, { size: iommu_vdevice_alloc.size, viommu_id: viommu, dev_id: devId, virt_id: BigInt(VSID) });
  if (p.ioctl(fd, IOMMU_VDEVICE_ALLOC, db) !== 0) throw new Error('VDEVICE_ALLOC');
  const vdev = new StructView(iommu_vdevice_alloc, db).num('out_vdevice_id');
  const nested = hwptAlloc(p, fd, devId, viommu, 0, s1Vste(guest.cdTable));
  if (attach(p, cdev, nested)[0] !== 0) throw new Error('attach nested');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const driver = m.host.iommu.driverOf(dev) as Smmuv3Driver;
  /** A DMA read of one byte at `addr`, then the event queue drained (the driver's threaded IRQ runs). */
  const fault = (addr: number, write = false) => {
    const r = write ? dev.dmaWrite(BigInt(addr), new Uint8Array([1])) : dev.dmaRead(BigInt(addr), 1);
    m.run();
    return r.ok ? 'ok' : r.fault;
  };
  return { m, dev, p, fd, ioas, cdev, devId, ram, guest, parent, viommu, vdev, nested, driver, fault };
}
