import t from 'tap';
import { TEST_CMD, TEST_REGS } from '../../devices/test-dma-device.ts';
import { createMachine, onEndpointProbed } from '../../machines/machine.ts';
import { EAGAIN } from '../../src/uapi/errno.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { VFIO_PCI_MSIX_IRQ_INDEX, vfioPciIndexToOffset } from '../../src/uapi/vfio.ts';
import { bindVfioPci } from '../../src/vfio/bind.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { MIB2, PAGE } from './fixture.ts';

// The machine hands every probed endpoint to vfio-pci, as CONTRACT.md says it will.
onEndpointProbed((m, fn) => void bindVfioPci(m.host, fn));

const le = (v: number, n = 4) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (v >>> (8 * i)) & 0xff;
  return b;
};

function open() {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn({ memlockLimit: 2 ** 40 });
  const v = new VfioClient(p);
  const dev = m.device('0000:00:03.0');
  const group = m.host.iommu.groupOf(dev)!.id;
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group}`);
  if (v.setContainer(g, c) !== 0 || v.setIommu(c, 3) !== 0) throw new Error('vfio setup');
  const d = v.deviceFd(g, dev.bdf);
  return { m, p, v, c, g, d, dev };
}

t.test('on the SMMUv3 machine: every endpoint has its group node and cdev', async (t) => {
  const { m } = open();
  t.same(m.host.vfs.devicePaths('/dev/vfio/').filter((x) => x.startsWith('/dev/vfio/devices/')), [
    '/dev/vfio/devices/vfio0',
    '/dev/vfio/devices/vfio1',
    '/dev/vfio/devices/vfio2',
  ]);
});

t.test('on the SMMUv3 machine: a DMA copy through VFIO mappings completes and its MSI-X reaches the eventfd', async (t) => {
  const { m, p, v, c, d } = open();
  const va = p.mmap(2 * PAGE, { populate: true });
  p.memWrite(va, new Uint8Array([1, 2, 3, 4]));
  t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: 2 * PAGE }), 0);
  const e = p.eventfd();
  t.equal(v.setIrqEventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, 0, [e]), 0);
  const bar0 = vfioPciIndexToOffset(0);
  p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), vfioPciIndexToOffset(7) + BigInt(CFG.COMMAND));
  p.pwrite(d, le(0x10_0000), bar0 + BigInt(TEST_REGS.SRC));
  p.pwrite(d, le(0x10_1000), bar0 + BigInt(TEST_REGS.DST));
  p.pwrite(d, le(4), bar0 + BigInt(TEST_REGS.LEN));
  p.pwrite(d, le(0), bar0 + BigInt(TEST_REGS.IRQ_VECTOR));
  p.pwrite(d, le(TEST_CMD.START), bar0 + BigInt(TEST_REGS.CMD));
  m.run();
  t.same([...(p.memRead(va + BigInt(PAGE), 4) as Uint8Array)], [1, 2, 3, 4], 'the device copied through the SMMU');
  const r = p.read(e, 8);
  t.not(r, -EAGAIN, 'the interrupt arrived');
});

t.test('on the SMMUv3 machine: 2M-backed memory maps as 2M blocks, and unmapping stops the DMA', async (t) => {
  const { m, p, v, c, dev } = open();
  const va = p.mmap(4 * MIB2, { hugepage: '2M', populate: true });
  const before = m.board.counters.get('vfio.map_calls');
  t.equal(v.mapDma(c, { vaddr: va, iova: 0x4000_0000n, size: 4 * MIB2 }), 0);
  t.ok(m.board.counters.get('vfio.map_calls') - before <= 4);
  const dom = m.host.iommu.domainForPasid(dev, -1)!;
  t.equal(dom.iovaToPhys(0x4000_0000 + MIB2 + 0x123), p.mm.physOf(Number(va) + MIB2 + 0x123));
  dev.config.write(CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.MASTER);
  t.ok(dev.dmaRead(0x4000_0000n + BigInt(MIB2), 4).ok);
  t.equal(v.unmapDma(c, { iova: 0x4000_0000n, size: 4 * MIB2 }), BigInt(4 * MIB2));
  t.equal(dev.dmaRead(0x4000_0000n + BigInt(MIB2), 4).ok, false, 'no stale translation after unmap');
});

t.test('on the SMMUv3 machine: BIND_PROCESS gives a PASID through which the DMA engine reaches the process\'s memory; exit ends it', async (t) => {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn();
  const v = new VfioClient(p);
  const dev = m.device('0000:00:01.0');
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(dev)!.id}`);
  t.equal(v.setContainer(g, c), 0);
  t.equal(v.setIommu(c, 3), 0);
  const pasid = v.bindProcess(c);
  t.ok(pasid >= 1);
  const va = p.mmap(PAGE);
  p.memWrite(va, new Uint8Array([9, 8, 7]));
  dev.config.write(CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.MASTER);
  const r = dev.dmaRead(va, 3, { pasid });
  t.ok(r.ok && [...r.data!].join() === '9,8,7', 'read through the process page table');
  p.exit();
  t.equal(m.host.sva.handles().length, 0);
  t.equal(dev.dmaRead(va, 3, { pasid }).ok, false, 'the PASID is gone with the process');
});
