/**
 * A VMM setting up a VFIO type1 container exactly as QEMU's legacy backend
 * does (hw/vfio/container.c, then hw/vfio/pci.c), on both machines, and
 * printing each syscall with its result:
 *   readlink iommu_group, open the group, VFIO_GROUP_GET_STATUS (viable?),
 *   open /dev/vfio/vfio, VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION(TYPE1v2),
 *   VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO (with its
 *   capability chain: page sizes, IOVA ranges, DMA mappings available),
 *   VFIO_IOMMU_MAP_DMA of "guest RAM", VFIO_GROUP_GET_DEVICE_FD,
 *   VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO (BARs, config),
 *   VFIO_DEVICE_GET_IRQ_INFO (ERR, MSI-X), VFIO_DEVICE_SET_IRQS (MSI-X to an
 *   eventfd, as when the guest enables MSI-X).
 * Then the guest's driver runs the plain test device: a copy between two
 * guest-physical addresses (IOVAs in the container), through the IOMMU, with
 * the completion interrupt arriving on the eventfd.
 * Run: npx tsx examples/qemu-vfio-setup.ts
 */
import {
  createMachine,
  TEST_CMD,
  TEST_REGS,
  CFG,
  COMMAND,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  eventfdCount,
  msixEventfds,
  vfioPciRealize,
  vfioType1Setup,
  type MachineKind,
} from '../src/index.ts';

const MIB = 2 ** 20;
/** Where this VMM puts guest RAM in the IOVA space (QEMU: the guest-physical address). */
const GUEST_RAM_GPA = 0x4000_0000n;

export interface QemuSetupResult {
  log: string[];
  copied: string;
  interrupts: number;
}

export function runQemuVfioSetup(kind: MachineKind, say: (s: string) => void = console.log): QemuSetupResult {
  const m = createMachine(kind);
  const p = m.host.spawn({ memlockLimit: 64 * MIB });
  const bdf = '0000:00:03.0'; // the plain test device
  // Guest RAM: the VMM's own memory (2 MiB pages, as with hugetlbfs), mapped by
  // QEMU's memory listener as soon as the container is up.
  const ram = p.mmap(4 * MIB, { hugepage: '2M' });
  const t1 = vfioType1Setup(m, p, bdf, { guestRam: { vaddr: ram, iova: GUEST_RAM_GPA, size: 4 * MIB } });
  const log = [...t1.log];
  const dev = vfioPciRealize(t1.v, t1.device);
  log.push(...dev.log);
  const [efd] = msixEventfds(p, t1.v, t1.device, 1);
  log.push(`VFIO_DEVICE_SET_IRQS(MSIX, start 0, count 1, DATA_EVENTFD|ACTION_TRIGGER, [fd ${efd}]) = 0`);
  say(`${kind}: QEMU's VFIO type1 sequence for ${bdf} (group ${t1.groupId}):`);
  for (const l of log) say(`  ${l}`);

  // The guest's driver: Memory + Bus Master through the config region, then the copy through BAR0.
  const cfg = dev.regions.get(VFIO_PCI_CONFIG_REGION_INDEX)!;
  const bar0 = dev.regions.get(VFIO_PCI_BAR0_REGION_INDEX)!;
  p.pwrite(t1.device, new Uint8Array([COMMAND.MEMORY | COMMAND.MASTER, 0]), cfg.offset + BigInt(CFG.COMMAND));
  const msg = new TextEncoder().encode(`guest data copied by the test device through the ${kind === 'q35-vtd' ? 'VT-d' : 'SMMUv3'}`);
  p.memWrite(ram + 0x1000n, msg);
  const reg = (off: number, val: bigint | number, bytes: 4 | 8) => {
    const b = new Uint8Array(bytes);
    if (bytes === 8) new DataView(b.buffer).setBigUint64(0, BigInt(val), true);
    else new DataView(b.buffer).setUint32(0, Number(val), true);
    p.pwrite(t1.device, b, bar0.offset + BigInt(off));
  };
  reg(TEST_REGS.SRC, GUEST_RAM_GPA + 0x1000n, 8);
  reg(TEST_REGS.DST, GUEST_RAM_GPA + 0x20_0000n, 8); // in the second 2 MiB page
  reg(TEST_REGS.LEN, msg.length, 4);
  reg(TEST_REGS.IRQ_VECTOR, 0, 4);
  reg(TEST_REGS.CMD, TEST_CMD.START, 4);
  m.run();
  const out = p.memRead(ram + 0x20_0000n, msg.length);
  const copied = out instanceof Uint8Array ? new TextDecoder().decode(out) : `read failed (${out})`;
  const interrupts = eventfdCount(p, efd!);
  say(`  the guest's copy: "${copied}"; MSI-X eventfd count ${interrupts}`);
  p.exit();
  return { log, copied, interrupts };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) runQemuVfioSetup(kind);
}
