import t from 'tap';
import { createMachine } from '../../../machines/machine.ts';
import type { MachineKind } from '../../../machines/layout.ts';
import { EINVAL } from '../../../src/uapi/errno.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { IOMMU_HW_INFO_TYPE_ARM_SMMUV3, IOMMU_HW_INFO_TYPE_INTEL_VTD } from '../../../src/uapi/iommufd.ts';
import { iommufdSetup, VmmError } from '../../../tools/scenario/vmm.ts';

const KINDS: MachineKind[] = ['virt-smmuv3', 'q35-vtd'];
const IOVA = 0x2_0000_0000n;
/** Each IOMMU's MSI window, which IOMMU_IOAS_IOVA_RANGES leaves out (the SMMUv3 software MSI region, the x86 interrupt range). */
const MSI_HOLE: Record<string, [bigint, bigint]> = { 'virt-smmuv3': [0x800_0000n, 0x80f_ffffn], 'q35-vtd': [0xfee0_0000n, 0xfeef_ffffn] };

function vmm(kind: MachineKind) {
  const m = createMachine(kind);
  const p = m.host.spawn({ memlockLimit: 2 ** 28 });
  const ram = p.mmap(64 * 1024, { populate: true });
  return { m, p, ram };
}

t.test("iommufdSetup issues QEMU's iommufd backend sequence in QEMU's order (hw/vfio/iommufd.c iommufd_cdev_attach), on both machines", async (t) => {
  for (const kind of KINDS) {
    const { m, p, ram } = vmm(kind);
    const s = iommufdSetup(m, p, '0000:00:02.0', { guestRam: { vaddr: ram, iova: IOVA, size: 64 * 1024 } });
    t.same(s.log.map((l) => l.replace(/[( =].*$/, '')), [
      'readdir', 'read', 'open', 'open', 'VFIO_DEVICE_BIND_IOMMUFD', 'IOMMU_IOAS_ALLOC', 'IOMMU_GET_HW_INFO', 'IOMMU_HWPT_ALLOC',
      'VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'IOMMU_IOAS_IOVA_RANGES', 'IOMMU_IOAS_IOVA_RANGES', 'IOMMU_IOAS_MAP', 'VFIO_DEVICE_GET_INFO', 'IOMMU_GET_HW_INFO',
    ], kind);
    t.same(s.log.filter((l) => / = -\d/.test(l)).map((l) => l.replace(/^(\S+)\(.* = (-\d+).*$/, '$1 $2')), ['IOMMU_IOAS_IOVA_RANGES -90'],
      `${kind}: the only refused call is the sizing IOVA_RANGES (EMSGSIZE)`);
    t.match(s.log[2]!, /^open\(\/dev\/vfio\/devices\/vfio\d+\) = \d+$/, 'the cdev named in sysfs');
    t.equal(s.hwInfo.type, kind === 'q35-vtd' ? IOMMU_HW_INFO_TYPE_INTEL_VTD : IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    t.equal(s.dirtyTracking, (s.hwInfo.capabilities & 1n) === 1n, 'DIRTY_TRACKING requested exactly when the IOMMU reports it');
    t.ok(s.hwpt !== s.ioas && s.hwpt > 0, 'a HWPT of its own on the IOAS');
    t.equal(s.iovaAlignment, 4096n);
    const [lo, hi] = MSI_HOLE[kind]!;
    t.ok(s.iovaRanges.length >= 2 && s.iovaRanges.every((r) => r.last < lo || r.start > hi), `${kind}: the MSI window is not usable IOVA`);
    t.ok(s.iovaRanges.some((r) => r.start <= IOVA && r.last >= IOVA + 0xffffn), 'guest RAM sits in a usable range');

    // The device is attached to that HWPT, which holds the IOAS's mapping.
    const dev = m.device('0000:00:02.0');
    p.memWrite(ram + 0x100n, new TextEncoder().encode('via iommufd'));
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const r = dev.dmaRead(IOVA + 0x100n, 11);
    t.equal(r.ok ? new TextDecoder().decode(r.data) : r.fault, 'via iommufd', `${kind}: DMA through the mapped guest RAM`);
    t.notOk(dev.dmaRead(IOVA + 0x10000n, 4).ok, 'nothing mapped past guest RAM');
  }
});

t.test('iommufdSetup names the call that failed: a second cdev open of a bound device cannot bind (vfio_df_open: EINVAL)', async (t) => {
  for (const kind of KINDS) {
    const { m, p } = vmm(kind);
    iommufdSetup(m, p, '0000:00:01.0');
    t.throws(() => iommufdSetup(m, p, '0000:00:01.0'), { name: VmmError.name, message: new RegExp(`^VFIO_DEVICE_BIND_IOMMUFD\\(iommufd \\d+\\) failed \\(${-EINVAL}\\)$`) }, kind);
  }
});
