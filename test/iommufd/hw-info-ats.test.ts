/**
 * IOMMU_GET_HW_INFO's out_capabilities reports IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED
 * for a device that cannot use ATS (iommufd_get_hw_info asks the driver for
 * IOMMU_CAP_PCI_ATS_SUPPORTED: intel_iommu_capable's info->ats_supported,
 * arm_smmu_capable's arm_smmu_ats_supported). The rig's real 7.3.4 answers
 * capabilities=0x8 for QEMU's edu, which has no ATS capability.
 */
import t from 'tap';
import { createMachine, iommufdSetup, IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED, IOMMU_HW_CAP_DIRTY_TRACKING, type MachineKind } from '../../src/index.ts';

for (const kind of ['virt-smmuv3', 'q35-vtd'] as MachineKind[]) {
  t.test(`${kind}: ATS-capable DMA engine: no ATS_NOT_SUPPORTED; plain test device: ATS_NOT_SUPPORTED`, async (t) => {
    const m = createMachine(kind);
    const p = m.host.spawn({ memlockLimit: 2 ** 24 });
    const engine = iommufdSetup(m, p, '0000:00:01.0');
    t.equal(engine.hwInfo.capabilities & BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED), 0n, 'the engine does ATS');
    t.equal(engine.hwInfo.capabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING), BigInt(IOMMU_HW_CAP_DIRTY_TRACKING), 'dirty tracking as before');
    const q = m.host.spawn({ memlockLimit: 2 ** 24 });
    const plain = iommufdSetup(m, q, '0000:00:03.0');
    t.equal(plain.hwInfo.capabilities & BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED), BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED), 'no ATS capability: ATS_NOT_SUPPORTED');
  });
}
