/**
 * MSI-X through VFIO for a device behind a PCIe-to-PCI bridge (q35-vtd; on
 * SMMUv3 Linux refuses the aliased StreamID, see test/machines/builder.test.ts).
 * The device's MSI write reaches the root complex with the bridge's alias
 * requester ID (secondary bus, devfn 00.0), so the host cannot recognise its
 * interrupts by the device's own ID: what identifies each vector is the
 * message the host programmed (its data value at the doorbell). Both VFIO
 * container backends.
 */
import t from 'tap';
import { machineBuilder } from '../../machines/builder.ts';
import { TEST_CMD, TEST_REGS, type TestDmaDevice } from '../../devices/test-dma-device.ts';
import { EAGAIN } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { VFIO_PCI_MSIX_IRQ_INDEX, VFIO_TYPE1v2_IOMMU, vfioPciIndexToOffset } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';

const PAGE = 4096;
const DEV = '0000:01:01.0';
const ALIAS_RID = 0x0100; // 01:00.0: the PCIe-to-PCI bridge's secondary bus, devfn 0

const le = (v: number, n = 4): Uint8Array => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (v >>> (8 * i)) & 0xff;
  return b;
};

const count = (p: Process, efd: number): number => {
  const r = p.read(efd, 8);
  return typeof r === 'number' ? (r === -EAGAIN ? 0 : r) : Number(new DataView(r.buffer).getBigUint64(0, true));
};

for (const container of ['type1', 'iommufd'] as const) {
  t.test(`q35-vtd, ${container} container: MSI-X eventfds fire for a device behind a PCIe-to-PCI bridge, whose writes carry the alias RID`, async (t) => {
    const m = machineBuilder('q35-vtd')
      .testDevice('00:01.0')
      .pcieToPciBridge('00:07.0', (br) => br.testDevice('01:01.0'))
      .build({ ramBytes: 64 * 2 ** 20, vfioContainer: container });
    const fn = m.device(DEV);
    t.equal(fn.upstreamRequesterId, ALIAS_RID, 'the IOMMU sees the bridge alias');
    t.not(fn.requesterId, ALIAS_RID);
    const p = m.host.spawn({ memlockLimit: 2 ** 26 });
    const v = new VfioClient(p);
    const c = p.open('/dev/vfio/vfio');
    const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(fn)!.id}`);
    t.equal(v.setContainer(g, c), 0);
    t.equal(v.setIommu(c, VFIO_TYPE1v2_IOMMU), 0);
    const d = v.deviceFd(g, DEV);
    t.ok(d >= 0, 'device fd');
    const efds = [p.eventfd(), p.eventfd()];
    t.equal(v.setIrqEventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, 0, efds), 0, 'two MSI-X vectors with eventfds');
    const va = p.mmap(2 * PAGE, { populate: true });
    t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: 2 * PAGE }), 0);
    const bar0 = vfioPciIndexToOffset(0);
    p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), vfioPciIndexToOffset(7) + BigInt(CFG.COMMAND));
    const before = m.board.msi.received.length;
    p.pwrite(d, le(0x10_0000), bar0 + BigInt(TEST_REGS.SRC));
    p.pwrite(d, le(0x10_1000), bar0 + BigInt(TEST_REGS.DST));
    p.pwrite(d, le(64), bar0 + BigInt(TEST_REGS.LEN));
    p.pwrite(d, le(1), bar0 + BigInt(TEST_REGS.IRQ_VECTOR));
    p.pwrite(d, le(TEST_CMD.START), bar0 + BigInt(TEST_REGS.CMD));
    m.run();
    // The IOMMU's own event interrupts (rid -1) may reach the doorbell too: look at vector 1's message.
    const data1 = (fn as TestDmaDevice).msix.entry(1).data;
    const msgs = m.board.msi.received.slice(before).filter((x) => x.data === data1);
    t.equal(msgs.length, 1, "one MSI with vector 1's data reached the doorbell");
    t.equal(msgs[0]?.rid, ALIAS_RID, 'written with the alias requester ID');
    t.equal(count(p, efds[1]!), 1, 'vector 1 signalled its eventfd');
    t.equal(count(p, efds[0]!), 0, 'vector 0 did not');
    t.equal(m.board.counters.get('vfio.irqs'), 1);
  });
}

t.test('q35-vtd: a message with a vector data value that misses the doorbell address signals nothing', async (t) => {
  const m = machineBuilder('q35-vtd').pcieToPciBridge('00:07.0', (br) => br.testDevice('01:01.0')).build({ ramBytes: 64 * 2 ** 20 });
  const fn = m.device(DEV);
  const p = m.host.spawn({ memlockLimit: 2 ** 26 });
  const v = new VfioClient(p);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(fn)!.id}`);
  t.equal(v.setContainer(g, c), 0);
  t.equal(v.setIommu(c, VFIO_TYPE1v2_IOMMU), 0);
  const d = v.deviceFd(g, DEV);
  const efd = p.eventfd();
  t.equal(v.setIrqEventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, 0, [efd]), 0);
  // The data value the host programmed into entry 0 of the device's MSI-X table.
  const data = (fn as TestDmaDevice).msix.entry(0).data;
  m.board.msi.deliver(m.board.msi.base + 4, data, ALIAS_RID);
  t.equal(count(p, efd), 0, 'another address in the doorbell page: not this vector');
  m.board.msi.deliver(m.board.msi.base, data, ALIAS_RID);
  t.equal(count(p, efd), 1, 'the programmed address and data: this vector');
});
