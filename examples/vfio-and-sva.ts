/**
 * The path a VMM and a user-space driver take on both machines:
 *  1. VFIO type1 as QEMU sets it up: container, group, SET_IOMMU, MAP_DMA of
 *     the process's memory, a device fd; the plain test device then copies
 *     between two IOVAs through the IOMMU and raises MSI-X into an eventfd.
 *  2. SVA: the DMA engine bound to the process (VFIO_IOMMU_BIND); its DMA
 *     with the process's PASID reaches the process's own page table, and an
 *     untouched page is faulted in through PRI where the IOMMU takes page
 *     requests.
 * Run: npx tsx examples/vfio-and-sva.ts
 */
import { createMachine, type Machine } from '../machines/machine.ts';
import { VfioClient } from '../src/vfio/client.ts';
import { VFIO_TYPE1v2_IOMMU, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from '../src/uapi/vfio.ts';
import { TEST_REGS, TEST_CMD } from '../devices/test-dma-device.ts';
import { CFG, COMMAND } from '../src/pci/header.ts';

export function runVfioAndSva(kind: 'virt-smmuv3' | 'q35-vtd', say: (s: string) => void): Machine {
  const m = createMachine(kind);
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const v = new VfioClient(p);
  const testdev = m.device('0000:00:03.0');
  const group = m.host.iommu.groupOf(testdev)!.id;

  // --- 1. VFIO type1, the QEMU way ---------------------------------------
  const container = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group}`);
  v.setContainer(g, container);
  v.setIommu(container, VFIO_TYPE1v2_IOMMU);
  const buf = p.mmap(2 * 4096);
  p.memWrite(buf, new TextEncoder().encode(`copied through the ${kind === 'q35-vtd' ? 'VT-d' : 'SMMUv3'} by VFIO`));
  const iova = 0x1_0000_0000n;
  const mapped = v.mapDma(container, { vaddr: buf, iova, size: 2 * 4096 });
  const dev = v.deviceFd(g, testdev.bdf);
  const bar0 = v.regionInfo(dev, VFIO_PCI_BAR0_REGION_INDEX);
  const efd = p.eventfd();
  v.setIrqEventfds(dev, VFIO_PCI_MSIX_IRQ_INDEX, 0, [efd]);
  if (typeof bar0 === 'number' || mapped !== 0) throw new Error(`VFIO setup failed (${mapped}, ${bar0})`);
  const cmd = p.pread(dev, 2, BigInt(0x7) << 40n) as Uint8Array; // config region, Command register
  p.pwrite(dev, new Uint8Array([(cmd[0]! | COMMAND.MASTER | COMMAND.MEMORY) & 0xff, cmd[1]!]), (7n << 40n) + BigInt(CFG.COMMAND));
  const w64 = (off: number, val: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, val, true);
    p.pwrite(dev, b, bar0.offset + BigInt(off));
  };
  const w32 = (off: number, val: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, val, true);
    p.pwrite(dev, b, bar0.offset + BigInt(off));
  };
  w64(TEST_REGS.SRC, iova);
  w64(TEST_REGS.DST, iova + 4096n);
  w32(TEST_REGS.LEN, 64);
  w32(TEST_REGS.IRQ_VECTOR, 0);
  w32(TEST_REGS.CMD, TEST_CMD.START);
  m.run();
  const out = p.memRead(buf + 4096n, 64) as Uint8Array;
  const irq = p.read(efd, 8);
  say(`${kind}: VFIO MAP_DMA ${mapped === 0 ? 'ok' : mapped}; device copy -> "${new TextDecoder().decode(out).replace(/\0+$/, '')}"; MSI-X eventfd ${irq instanceof Uint8Array ? 'signalled' : 'silent'}`);

  // --- 2. SVA with PRI -----------------------------------------------------
  const engine = m.device('0000:00:01.0');
  const ec = p.open('/dev/vfio/vfio');
  const eg = p.open(`/dev/vfio/${m.host.iommu.groupOf(engine)!.id}`);
  v.setContainer(eg, ec);
  v.setIommu(ec, VFIO_TYPE1v2_IOMMU);
  const pasid = v.bindProcess(ec);
  engine.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const mem = p.mmap(8 * 4096);
  p.memWrite(mem, new TextEncoder().encode('shared with the device'));
  const r = engine.dmaRead(mem, 22, { pasid });
  const t0 = m.now();
  const wr = engine.dmaWrite(mem + 5n * 4096n, new Uint8Array([1, 2, 3]), { pasid });
  say(`${kind}: SVA bound PASID ${pasid}; engine reads "${r.ok ? new TextDecoder().decode(r.data) : r.fault}"; write to an untouched page: ${wr.ok ? `ok after ${m.now() - t0} ns of page-request round trip` : wr.fault}`);
  return m;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) runVfioAndSva(kind, console.log);
}
