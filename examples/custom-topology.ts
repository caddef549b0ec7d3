/**
 * Describe your own PCI topology in a few lines and see how Linux would
 * group it: a root port with ACS (its device is isolated), a root port
 * without (the devices below share the port's group), a multi-function
 * device, and a PCIe-to-PCI bridge whose devices reach the IOMMU under the
 * bridge's alias requester ID. Then a VMM takes the two-device group through
 * VFIO and both devices DMA into its memory.
 * Run: npx tsx examples/custom-topology.ts
 */
import {
  machineBuilder,
  type MachineKind,
  VfioClient,
  VFIO_TYPE1v2_IOMMU,
  CFG,
  COMMAND,
  formatRequesterId,
} from '../src/index.ts';

export interface TopologyResult {
  /** Group ID -> its members, as /sys/kernel/iommu_groups shows them. */
  groups: Record<string, string[]>;
  /** What both devices of the shared group wrote, read back by the VMM. */
  written: string;
  /** The requester ID the IOMMU saw for the device behind the PCIe-to-PCI bridge. */
  bridgedRid: string;
}

export function runCustomTopology(kind: MachineKind, say: (s: string) => void): TopologyResult {
  const m = machineBuilder(kind)
    .rootPort('00:04.0', { acs: true }, (rp) => rp.dmaEngine('01:00.0'))
    .rootPort('00:05.0', (rp) => rp.testDevice('02:00.0').testDevice('02:00.1'))
    .testDevice('00:06.0')
    .testDevice('00:06.1')
    .pcieToPciBridge('00:07.0', (br) => br.testDevice('03:01.0'))
    .build({ seed: 7, ramBytes: 256 * 2 ** 20 });

  const p = m.host.spawn({ memlockLimit: 2 ** 26 });
  const groups: Record<string, string[]> = {};
  for (const id of p.readdir('/sys/kernel/iommu_groups') as string[]) {
    groups[id] = p.readdir(`/sys/kernel/iommu_groups/${id}/devices`) as string[];
    say(`${kind}: iommu_groups/${id}: ${groups[id]!.join(' ')}`);
  }

  // A VMM takes the group of the port without ACS: both functions below it come together.
  const v = new VfioClient(p);
  const [a, b] = [m.device('02:00.0'), m.device('02:00.1')];
  const groupId = m.host.iommu.groupOf(a)!.id;
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${groupId}`);
  const buf = p.mmap(4096);
  const iova = 0x1000_0000n;
  const setup = [v.setContainer(group, container), v.setIommu(container, VFIO_TYPE1v2_IOMMU), v.mapDma(container, { vaddr: buf, iova, size: 4096 })];
  const fds = [a, b].map((d) => v.deviceFd(group, d.bdf));
  if (setup.some((r) => r !== 0) || fds.some((fd) => fd < 0)) throw new Error(`VFIO setup failed: ${setup} ${fds}`);
  for (const [i, d] of [a, b].entries()) {
    d.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const r = d.dmaWrite(iova + BigInt(i * 8), new TextEncoder().encode(`fn${d.devfn & 7} ok`));
    if (!r.ok) throw new Error(`${d.bdf}: ${r.fault}`);
  }
  const written = [0n, 8n].map((off) => new TextDecoder().decode(p.memRead(buf + off, 6) as Uint8Array)).join(', ');
  say(`${kind}: group ${groupId} attached to one container; both functions wrote "${written}" through the IOMMU`);

  const bridged = m.device('03:01.0');
  const bridgedRid = formatRequesterId(bridged.upstreamRequesterId);
  say(`${kind}: ${bridged.bdf} is seen by the IOMMU as ${bridgedRid} (the PCIe-to-PCI bridge's alias)`);
  return { groups, written, bridgedRid };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) runCustomTopology(kind, console.log);
}
