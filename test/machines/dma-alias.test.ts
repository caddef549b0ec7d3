import t from 'tap';
import { machineBuilder } from '../../machines/builder.ts';
import type { Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { VtdDriver } from '../../iommu/vtd/driver/driver.ts';
import type { DmaEngine } from '../../devices/dma-engine/index.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { VFIO_TYPE1v2_IOMMU } from '../../src/uapi/vfio.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import type { Process } from '../../src/host/process.ts';

/**
 * Devices that reach the IOMMU under one requester ID (a bridge's DMA alias),
 * as Linux handles them (machines/README.md "DMA aliases"):
 * - VT-d (scalable mode, Linux 6.10+): context entries are set up for a
 *   device's own RID only, never for a bridge's alias, so requests under the
 *   alias use the context entry that ID already has;
 * - SMMUv3: the first master owns the alias StreamID; the others' probe fails
 *   with -ENODEV and they have no IOMMU group;
 * - nobody behind a PCI bridge gets ATS, PRI or PASID (no extended config space).
 */

const IOVA = 0x10_0000n;

function dma(m: Machine, bdf: string, iova: bigint, byte: number) {
  const d = m.device(bdf);
  d.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  return d.dmaWrite(iova, new Uint8Array([byte]));
}

/** A process with a type1 container holding `bdf`'s group, one page mapped at IOVA. */
function takeGroup(m: Machine, bdf: string, p: Process = m.host.spawn({ memlockLimit: 2 ** 26 })) {
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(bdf))!.id}`);
  const buf = p.mmap(4096);
  const setup = [v.setContainer(group, container), v.setIommu(container, VFIO_TYPE1v2_IOMMU), v.mapDma(container, { vaddr: buf, iova: IOVA, size: 4096 })];
  return { p, v, container, group, buf, setup };
}

const contextPresent = (m: Machine, rid: number) => ((m.iommuDriver as VtdDriver).tables.readContext(rid)[0]! & 1) === 1;

t.test('q35-vtd: context entries are programmed at each device\'s own requester ID, never at a bridge\'s alias', async (t) => {
  const m = machineBuilder('q35-vtd')
    .pcieToPciBridge('00:02.0', (br) => br.testDevice('01:01.0').testDevice('01:02.0'))
    .build({ ramBytes: 2 ** 27 });
  t.ok(contextPresent(m, 0x0010), 'the bridge 00:02.0');
  t.ok(contextPresent(m, 0x0109) === false && contextPresent(m, 0x0108) && contextPresent(m, 0x0110), '01:01.0 and 01:02.0');
  t.notOk(contextPresent(m, 0x0100), 'nothing at the alias 01:00.0 (pci_pasid_table_setup skips bridge aliases)');
  const s = takeGroup(m, '01:01.0');
  t.same(s.setup, [0, 0, 0]);
  for (const bdf of ['01:01.0', '01:02.0']) {
    const r = dma(m, bdf, IOVA, 1);
    t.same(r, { ok: false, fault: 'DMAR_SM_CONTEXT_NOT_PRESENT' }, `${bdf}: its requests under 01:00.0 find no context entry`);
  }
});

t.test('q35-vtd: behind a PCIe-to-PCI bridge every device uses the context entry (and PASID table) of the device at 00.0', async (t) => {
  const m = machineBuilder('q35-vtd')
    .pcieToPciBridge('00:02.0', (br) => br.testDevice('01:00.0').testDevice('01:02.0'))
    .build({ ramBytes: 2 ** 27 });
  const s = takeGroup(m, '01:02.0');
  t.same(s.setup, [0, 0, 0], 'the group (bridge, both devices) attached to the container');
  t.ok(dma(m, '01:00.0', IOVA, 0xa0).ok);
  t.ok(dma(m, '01:02.0', IOVA + 1n, 0xa2).ok);
  t.same(s.p.memRead(s.buf, 2), new Uint8Array([0xa0, 0xa2]));
  // Unset the container: the group leaves the container's domain for the kernel's (empty) default domain.
  t.equal(s.v.unsetContainer(s.group), 0);
  t.same(dma(m, '01:02.0', IOVA, 1), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' }, 'the default domain maps nothing');
  t.same(dma(m, '01:00.0', IOVA, 1), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' });
  // A new container takes the group again: both DMA again, through 01:00.0's PASID table.
  const c2 = s.p.open('/dev/vfio/vfio');
  t.same([s.v.setContainer(s.group, c2), s.v.setIommu(c2, VFIO_TYPE1v2_IOMMU), s.v.mapDma(c2, { vaddr: s.buf, iova: IOVA + 0x1000n, size: 4096 })], [0, 0, 0]);
  t.ok(dma(m, '01:02.0', IOVA + 0x1002n, 0xb2).ok && dma(m, '01:00.0', IOVA + 0x1000n, 0xb0).ok);
  t.same(s.p.memRead(s.buf, 3), new Uint8Array([0xb0, 0xa2, 0xb2]));
  // The process goes: its fds close, the group is released to its default domain (no mappings).
  s.p.exit();
  t.same(dma(m, '01:02.0', IOVA + 0x1000n, 1), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' }, 'back on the kernel\'s empty default domain');
});

t.test('q35-vtd: behind a conventional PCI bridge the devices use the bridge\'s own context entry, which follows the group', async (t) => {
  const m = machineBuilder('q35-vtd')
    .pciBridge('00:03.0', (br) => br.testDevice('01:00.0').testDevice('01:01.0'))
    .build({ ramBytes: 2 ** 27 });
  t.ok(contextPresent(m, 0x0018), 'the bridge 00:03.0 was probed into the group with its own entry');
  const s = takeGroup(m, '01:01.0');
  t.same(s.setup, [0, 0, 0]);
  t.ok(dma(m, '01:00.0', IOVA, 1).ok && dma(m, '01:01.0', IOVA + 1n, 2).ok);
  t.same(s.p.memRead(s.buf, 2), new Uint8Array([1, 2]));
  t.equal(s.v.unsetContainer(s.group), 0);
  t.same(dma(m, '01:00.0', IOVA, 1), { ok: false, fault: 'DMAR_SM_FS_PTE_NOT_PRESENT' }, 'the bridge\'s entry left with the group');
});

t.test('virt-smmuv3: the second device under one StreamID fails its IOMMU probe; the machine builds; its DMA goes through the first one\'s STE', async (t) => {
  const m = machineBuilder('virt-smmuv3')
    .pcieToPciBridge('00:02.0', (br) => br.testDevice('01:01.0').testDevice('01:02.0'))
    .pciBridge('00:03.0', (br) => br.testDevice('02:00.0'))
    .build({ ramBytes: 2 ** 27, trace: true });
  t.same(
    m.probeFailures.map((f) => [f.bdf, f.driver, f.errno]),
    [['0000:01:02.0', 'iommu', -19], ['0000:01:02.0', 'vfio-pci', -22], ['0000:02:00.0', 'iommu', -19], ['0000:02:00.0', 'vfio-pci', -22]],
  );
  t.equal(m.probeFailures[0]!.reason, 'Aliasing StreamID 0x100 (from 0000:01:01.0) unsupported, expect DMA to be broken');
  t.match(m.probeFailures[2]!.reason, /StreamID 0x18 \(from 0000:00:03\.0\)/, 'behind a conventional bridge the bridge itself owns the StreamID');
  t.ok(m.trace!.stringify().includes('"host.probe-failed"'), 'traced');
  const p = m.host.spawn({ memlockLimit: 2 ** 26 });
  t.same(p.readdir('/sys/bus/pci/devices/0000:01:02.0'), ['class', 'device', 'revision', 'subsystem_device', 'subsystem_vendor', 'vendor'], 'in sysfs, no iommu_group, no vfio-dev');
  t.equal(p.readlink('/sys/bus/pci/devices/0000:01:02.0/iommu_group'), -2);
  t.same(p.readdir(`/sys/kernel/iommu_groups/${m.host.iommu.groupOf(m.device('01:01.0'))!.id}/devices`), ['0000:00:02.0', '0000:01:01.0']);
  t.same(m.devices().map((d) => d.bdf), ['0000:01:01.0', '0000:01:02.0', '0000:02:00.0'], 'still endpoints of the machine');
  t.equal(m.host.iommu.groupOf(m.device('01:02.0')), undefined);
  t.same((p.readdir('/dev/vfio') as string[]).filter((n) => /^\d+$/.test(n)), [String(m.host.iommu.groupOf(m.device('01:01.0'))!.id)], 'one VFIO group node');
  // The SMMU sees 01:02.0's requests under 01:00.0, the StreamID 01:01.0's master owns: its DMA is
  // translated by whatever 01:01.0 is attached to ("expect DMA to be broken").
  const s = takeGroup(m, '01:01.0', p);
  t.same(s.setup, [0, 0, 0]);
  t.ok(dma(m, '01:02.0', IOVA + 2n, 0x22).ok, 'lands in the container\'s mapping of another device');
  t.same(p.memRead(s.buf + 2n, 1), new Uint8Array([0x22]));
  t.same(dma(m, '02:00.0', IOVA, 1), { ok: false, fault: 'F_TRANSLATION' }, 'the bridge 00:03.0\'s STE: its default domain, nothing mapped');
});

/** The same DMA engine on a root port with ACS (control) and behind a bridge; ATS, PASID, SVA. */
for (const [kind, where] of [
  ['q35-vtd', 'conventional PCI bridge'],
  ['q35-vtd', 'PCIe-to-PCI bridge'],
  ['virt-smmuv3', 'PCIe-to-PCI bridge'],
] as [MachineKind, string][]) {
  t.test(`${kind}: a DMA engine behind a ${where} gets no ATS, PRI or PASID from the host, so SVA bind fails`, async (t) => {
    const b = machineBuilder(kind).rootPort('00:02.0', { acs: true }, (rp) => rp.dmaEngine('01:00.0'));
    if (where === 'conventional PCI bridge') b.pciBridge('00:03.0', (br) => br.dmaEngine('02:00.0'));
    else b.pcieToPciBridge('00:03.0', (br) => br.dmaEngine('02:00.0'));
    const m = b.build({ ramBytes: 2 ** 28 });
    t.same(m.probeFailures, []);
    const p = m.host.spawn({ memlockLimit: 2 ** 26 });
    for (const bdf of ['01:00.0', '02:00.0']) takeGroup(m, bdf, p);
    const ok = m.device('01:00.0') as DmaEngine;
    const bridged = m.device('02:00.0') as DmaEngine;
    t.same([ok.ats.enabled, ok.pasid.enabled], [true, true], 'behind the ACS root port: ATS and PASID on');
    t.same([bridged.ats.enabled, bridged.pasid.enabled, bridged.pri.enabled], [false, false, false], 'behind the bridge: never enabled');
    t.type(m.host.sva.bind(ok, p.mm, p.pid), 'object', 'SVA on the root port device');
    const r = m.host.sva.bind(bridged, p.mm, p.pid);
    t.type(r, 'number', `SVA bind behind the bridge refused (${String(r)})`);
    t.ok((r as number) < 0);
    t.equal(m.host.iommu.driverOf(bridged)!.maxPasids(bridged), 0, 'no PASIDs');
  });
}

t.test('q35-vtd through iommufd: a group shared by two devices attaches once, follows a replace, and detaches with its last device', async (t) => {
  const { ioasAlloc, map, bind, attach } = await import('../iommufd/fixture.ts');
  const { encodeStruct } = await import('../../src/uapi/struct.ts');
  const { vfio_device_detach_iommufd_pt } = await import('../../src/uapi/iommufd.ts');
  const { VFIO_DEVICE_DETACH_IOMMUFD_PT } = await import('../../src/uapi/vfio.ts');
  const m = machineBuilder('q35-vtd')
    .pcieToPciBridge('00:02.0', (br) => br.testDevice('01:00.0').testDevice('01:02.0'))
    .build({ ramBytes: 2 ** 27 });
  const p = m.host.spawn({ memlockLimit: 2 ** 26 });
  const fd = p.open('/dev/iommu');
  const [ioas1, ioas2] = [ioasAlloc(p, fd), ioasAlloc(p, fd)];
  const buf = p.mmap(2 * 4096);
  t.same([map(p, fd, ioas1, buf, 4096, Number(IOVA))[0], map(p, fd, ioas2, buf + 4096n, 4096, Number(IOVA))[0]], [0, 0]);
  const minor = (bdf: string) => Number((p.readdir(`/sys/bus/pci/devices/${m.device(bdf).bdf}/vfio-dev`) as string[])[0]!.slice(4));
  const [a] = bind(p, fd, minor('01:00.0'));
  const [b] = bind(p, fd, minor('01:02.0'));
  const detach = (cdev: number) => p.ioctl(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size }));
  const both = (byte: number) => [dma(m, '01:00.0', IOVA, byte).ok, dma(m, '01:02.0', IOVA + 1n, byte + 1).ok];

  const [ra, hwpt] = attach(p, a, ioas1);
  t.equal(ra, 0);
  t.same(both(0x10), [true, true], 'the group is attached: the not-yet-attached device DMAs too (one domain for the group)');
  t.same(attach(p, b, ioas2), [-22, ioas2], 'the second device cannot take the group elsewhere (-EINVAL)');
  t.same(attach(p, b, ioas1), [0, hwpt], 'it joins the group\'s automatic HWPT');
  t.equal(detach(a), 0);
  t.same(both(0x20), [true, true], 'detaching one device leaves the group attached for the other');
  t.same(p.memRead(buf, 2), new Uint8Array([0x20, 0x21]));
  t.same(attach(p, a, ioas1), [0, hwpt], 'and the first joins again');
  // Replace through one device moves the whole group to the other IOAS.
  const [rr, hwpt2] = attach(p, b, ioas2);
  t.same([rr, hwpt2 !== hwpt], [0, true]);
  t.same(both(0x30), [true, true]);
  t.same(p.memRead(buf + 4096n, 2), new Uint8Array([0x30, 0x31]), 'both now through ioas2');
  t.same([detach(b), detach(a)], [0, 0]);
  t.same(dma(m, '01:00.0', IOVA, 1), { ok: false, fault: 'DMAR_SM_PASID_ENTRY_NOT_PRESENT' }, 'the last detach blocks the group (still owned by iommufd)');
  p.exit();
});
