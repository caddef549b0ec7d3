/**
 * VFIO_CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) on both machines, through the real
 * IOMMU drivers: vfio_domains_have_enforce_cache_coherency() (type1) and
 * iommufd_vfio_cc_iommu() (iommufd's compat container), each asking the
 * domain's enforce_cache_coherency op (VT-d: snoop control, ECAP.SC; SMMUv3:
 * every attached master CANWBS).
 */
import t from 'tap';
import { createMachine, type Machine, type MachineOptions } from '../../machines/machine.ts';
import { VtdDriver } from '../../iommu/vtd/driver/driver.ts';
import { Smmuv3Driver } from '../../iommu/smmuv3/driver/driver.ts';
import { PASID_ENTRY } from '../../iommu/vtd/index.ts';
import { decodeLayout } from '../../src/hw/layout.ts';
import { VFIO_DMA_CC_IOMMU, VFIO_TYPE1v2_IOMMU } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { ENODEV } from '../../src/uapi/errno.ts';

const DMA0 = '0000:00:01.0';

/** A container (type1 or iommufd's compat) with DMA0's group set and TYPE1v2 selected; the device opened. */
function container(m: Machine) {
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const v = new VfioClient(p);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DMA0))!.id}`);
  const cc = () => v.checkExtension(c, VFIO_DMA_CC_IOMMU);
  const before = cc();
  if (v.setContainer(g, c) !== 0 || v.setIommu(c, VFIO_TYPE1v2_IOMMU) !== 0) throw new Error('vfio setup');
  if (v.deviceFd(g, DMA0) < 0) throw new Error('device fd');
  return { p, v, c, g, cc, before };
}

function machine(kind: 'q35-vtd' | 'virt-smmuv3', opts: MachineOptions = {}, canwbs = false): Machine {
  const m = createMachine(kind, opts);
  // The IORT root complex's CANWBS flag is firmware's word (absent on device tree and older IORT).
  if (m.iommuDriver instanceof Smmuv3Driver) m.iommuDriver.pciRcCanwbs = canwbs;
  return m;
}

for (const backend of ['type1', 'iommufd'] as const) {
  t.test(`${backend}: q35-vtd with snoop control (ECAP.SC): 1, and the RID's first-stage PASID entry has PGSNP`, async (t) => {
    const m = machine('q35-vtd', { vfioContainer: backend });
    const { cc, before } = container(m);
    t.equal(before, backend === 'type1' ? 0 : -ENODEV, 'before SET_IOMMU: type1 0, iommufd -ENODEV (no compat IOAS)');
    t.equal(cc(), 1);
    const driver = m.iommuDriver as VtdDriver;
    const pe = decodeLayout(PASID_ENTRY, driver.pasidEntryOf(m.device(DMA0), 0)!);
    t.same([pe.P, pe.PGTT, pe.PGSNP], [1, 1, 1], 'first stage, page snoop forced (intel_pasid_setup_page_snoop_control)');
  });

  t.test(`${backend}: q35-vtd without snoop control: 0, no PGSNP`, async (t) => {
    const m = machine('q35-vtd', { vfioContainer: backend, vtd: { snoopControl: false } });
    const { cc } = container(m);
    t.equal(cc(), 0);
    const pe = decodeLayout(PASID_ENTRY, (m.iommuDriver as VtdDriver).pasidEntryOf(m.device(DMA0), 0)!);
    t.same([pe.P, pe.PGSNP], [1, 0]);
  });

  t.test(`${backend}: virt-smmuv3: 0 unless firmware says the root complex is CANWBS`, async (t) => {
    t.equal(container(machine('virt-smmuv3', { vfioContainer: backend })).cc(), 0, 'no CANWBS (device tree, QEMU virt)');
    t.equal(container(machine('virt-smmuv3', { vfioContainer: backend }, true)).cc(), 1, 'CANWBS: every master coherent');
  });
}
