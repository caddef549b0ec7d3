import t from 'tap';
import { DESC_STATUS, encodeDescriptor, OPCODE } from '../../devices/dma-engine/descriptor.ts';
import { DMAE_BAR, PORTAL, PORTAL_STATUS, WQ_REG, wqReg } from '../../devices/dma-engine/regs.ts';
import { TEST_CMD, TEST_MAGIC, TEST_REGS, TEST_STATUS } from '../../devices/test-dma-device.ts';
import { EBADF, EFAULT, EINVAL, ENODEV } from '../../src/uapi/errno.ts';
import { PROT_READ } from '../../src/host/mm.ts';
import type { Process } from '../../src/host/process.ts';
import { EngineUser } from '../../tools/scenario/engine-user.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { vfioPciIndexToOffset } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { deviceFd, map, openTyped, PAGE, VARIANTS, type MachineFixture } from './fixture.ts';

const CONFIG = vfioPciIndexToOffset(7);
const BAR = (i: number) => vfioPciIndexToOffset(i);
const le = (v: number, n = 4) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (v >>> (8 * i)) & 0xff;
  return b;
};
const u32 = (b: Uint8Array | number) => (typeof b === 'number' ? b : new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true));

/** The test device opened through its group, with memory decoding and bus mastering on in the user's view. */
function opened(f: MachineFixture) {
  const { p } = f;
  const [c, g] = openTyped(p, f.groupOf(f.dma));
  const d = deviceFd(p, g, f.dma.bdf);
  p.pwrite(d, le(COMMAND.MEMORY | COMMAND.MASTER, 2), CONFIG + BigInt(CFG.COMMAND));
  return { p, c, g, d };
}

const mmapFd = (p: Process, d: number, length: number, offset: bigint, extra: { prot?: number; shared?: boolean } = {}) => p.mmap(length, { fd: d, offset, ...extra });

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {
    t.test('an mmapped BAR reaches the device registers: loads read them, stores write them', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      const bar0 = mmapFd(p, d, PAGE, BAR(0));
      t.ok(bar0 > 0n, 'mapped');
      t.equal(u32(p.memRead(bar0 + BigInt(TEST_REGS.ID), 4)), TEST_MAGIC, 'ID through the mapping');
      t.equal(p.memWrite(bar0 + BigInt(TEST_REGS.LEN), le(0x1234)), 4);
      t.equal(u32(p.pread(d, 4, BAR(0) + BigInt(TEST_REGS.LEN))), 0x1234, 'the same register through pread');
      t.equal(f.dma.regs.get('LEN'), 0x1234, 'and in the device');
      t.equal(p.mm.pinnedVm, 0, 'device memory is not pinned or charged');
    });

    t.test('driving the test device through its mmapped BAR: the doorbell store starts a DMA copy between IOVAs', async (t) => {
      const f = v.setup();
      const { p, c, d } = opened(f);
      const va = p.mmap(2 * PAGE, { populate: true });
      p.memWrite(va, new Uint8Array([5, 6, 7, 8]));
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 2 * PAGE }), 0);
      const regs = mmapFd(p, d, PAGE, BAR(0));
      const w = (off: number, val: number) => p.memWrite(regs + BigInt(off), le(val));
      w(TEST_REGS.SRC, 0x10_0000);
      w(TEST_REGS.DST, 0x10_1000);
      w(TEST_REGS.LEN, 4);
      w(TEST_REGS.CMD, TEST_CMD.START);
      f.board.scheduler.run();
      t.equal(u32(p.memRead(regs + BigInt(TEST_REGS.STATUS), 4)) & TEST_STATUS.DONE, TEST_STATUS.DONE, 'DONE');
      t.same([...(p.memRead(va + BigInt(PAGE), 4) as Uint8Array)], [5, 6, 7, 8], 'copied through the IOMMU');
    });

    t.test('mmap argument rules (vfio_pci_core_mmap): MAP_SHARED only, BARs only, within the BAR, page-aligned offset; not a mmappable file is ENODEV', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      t.equal(mmapFd(p, d, PAGE, BAR(0), { shared: false }), BigInt(-EINVAL), 'MAP_PRIVATE');
      t.equal(mmapFd(p, d, PAGE, CONFIG), BigInt(-EINVAL), 'config space');
      t.equal(mmapFd(p, d, PAGE, BAR(6)), BigInt(-EINVAL), 'ROM');
      t.equal(mmapFd(p, d, PAGE, BAR(8)), BigInt(-EINVAL), 'VGA');
      t.equal(mmapFd(p, d, PAGE, BAR(9)), BigInt(-EINVAL), 'beyond the regions');
      t.equal(mmapFd(p, d, PAGE, BAR(1)), BigInt(-EINVAL), 'an absent BAR');
      t.equal(mmapFd(p, d, 2 * PAGE, BAR(0)), BigInt(-EINVAL), 'longer than the BAR');
      t.equal(mmapFd(p, d, PAGE, BAR(0) + BigInt(PAGE)), BigInt(-EINVAL), 'past its end');
      t.equal(mmapFd(p, d, PAGE, BAR(0) + 0x100n), BigInt(-EINVAL), 'unaligned offset');
      t.equal(mmapFd(p, d, 0, BAR(0)), BigInt(-EINVAL), 'zero length');
      t.equal(mmapFd(p, 99, PAGE, BAR(0)), BigInt(-EBADF));
      t.equal(mmapFd(p, p.eventfd(), PAGE, 0n), BigInt(-ENODEV), 'an eventfd has no mmap');
      t.equal(p.mm.areas().length, 0, 'nothing was mapped');
      const cd = p.open('/dev/vfio/devices/vfio1');
      t.equal(mmapFd(p, cd, PAGE, BAR(0)), BigInt(-EINVAL), 'an unbound cdev grants nothing');
    });

    t.test('the MSI-X BAR maps whole (MSIX_MAPPABLE), table page included; pread/pwrite still hide the table', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      const vc = new VfioClient(p);
      const info = vc.regionInfo(d, 2);
      if (typeof info === 'number') throw new Error(`region info ${info}`);
      t.equal(info.msixMappable, true);
      const bar2 = vc.mmapRegion(d, info, PAGE);
      t.ok(bar2 > 0n);
      t.equal(u32(p.memRead(bar2 + 12n, 4)), 1, 'entry 0 Vector Control: masked, read from the table itself');
      t.equal(u32(p.pread(d, 4, BAR(2) + 12n)), 0xffffffff, 'the read() path fills the table with ones');
    });

    t.test('memory decoding off in the user\'s command register: accesses fault (SIGBUS) until it is back on', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      const bar0 = mmapFd(p, d, PAGE, BAR(0));
      p.pwrite(d, le(0, 2), CONFIG + BigInt(CFG.COMMAND));
      t.equal(p.memRead(bar0, 4), -EFAULT);
      t.equal(p.memWrite(bar0 + BigInt(TEST_REGS.LEN), le(1)), -EFAULT);
      p.pwrite(d, le(COMMAND.MEMORY, 2), CONFIG + BigInt(CFG.COMMAND));
      t.equal(u32(p.memRead(bar0, 4)), TEST_MAGIC);
    });

    t.test('protection: a read-only mapping refuses stores; the mapping is never pinnable', async (t) => {
      const f = v.setup();
      const { p, c, d } = opened(f);
      const ro = mmapFd(p, d, PAGE, BAR(0), { prot: PROT_READ });
      t.equal(u32(p.memRead(ro, 4)), TEST_MAGIC);
      t.equal(p.memWrite(ro + BigInt(TEST_REGS.LEN), le(1)), -EFAULT);
      // READ|WRITE over a read-only BAR mmap: follow_fault_pfn refuses the write (map-mmio.test.ts covers BAR maps).
      t.equal(map(p, c, { vaddr: ro, iova: 0x20_0000, size: PAGE }), -EFAULT);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('the mapping holds the device: close keeps it working, munmap lets the device go (disabled on last close)', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      const bar0 = mmapFd(p, d, PAGE, BAR(0));
      t.equal(p.close(d), 0);
      t.equal(f.vdma.openCount, 1, 'still open through the mapping');
      t.equal(u32(p.memRead(bar0, 4)), TEST_MAGIC, 'and still reachable');
      t.equal(p.munmap(bar0, PAGE), 0);
      t.equal(f.vdma.openCount, 0, 'the last reference went with the mapping');
      t.equal(p.memRead(bar0, 4), -EFAULT);
    });

    t.test('two mappings and a partial munmap: the device stays until the last piece goes; exit tears everything down', async (t) => {
      const f = v.setup();
      const { p, d } = opened(f);
      const a = mmapFd(p, d, PAGE, BAR(0));
      const b = mmapFd(p, d, PAGE, BAR(2));
      t.equal(p.close(d), 0);
      t.equal(p.munmap(a, PAGE), 0);
      t.equal(f.vdma.openCount, 1, 'BAR2 mapping still holds it');
      p.exit();
      t.equal(f.vdma.openCount, 0, 'exit unmapped the rest');
      void b;
    });

    t.test('DMA engine driven through its mmapped BARs as DPDK/SPDK do: a ring doorbell and a portal store, descriptors and data in IOVA space', { skip: !v.real && 'the DMA engine sits on the real machines' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const vc = new VfioClient(p);
      const [c, g] = openTyped(p, f.groupOf(f.sva));
      const d = deviceFd(p, g, f.sva.bdf);
      const IOVA = 0x1_0000_0000n;
      const mem = p.mmap(16 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: mem, iova: IOVA, size: 16 * PAGE }), 0);
      const engine = new EngineUser(p, vc, d);
      engine.enable();
      const RING = 8n * BigInt(PAGE);
      engine.configWq(0, { ring: { deviceAddr: IOVA + RING, vaddr: mem + RING, size: 8 } });
      engine.configWq(1, {});
      const info0 = vc.regionInfo(d, DMAE_BAR.REGS);
      const info4 = vc.regionInfo(d, DMAE_BAR.PORTALS);
      if (typeof info0 === 'number' || typeof info4 === 'number') throw new Error('region info');
      const regs = vc.mmapRegion(d, info0, PAGE);
      const portals = vc.mmapRegion(d, info4, Number(info4.size));
      t.ok(regs > 0n && portals > 0n, 'BAR0 and the portal BAR mapped');
      const data = new Uint8Array(256).map((_, i) => (i * 7 + 3) & 0xff);
      p.memWrite(mem, data);
      // Ring: the descriptor goes into the ring slot in memory, the doorbell is a store to TAIL in the mapped BAR0.
      p.memWrite(mem + RING, encodeDescriptor({ op: OPCODE.MEMMOVE, rcr: true, completion: Number(IOVA) + 12 * PAGE, src: Number(IOVA), dst: Number(IOVA) + PAGE, length: 256 }));
      t.equal(p.memWrite(regs + BigInt(wqReg(0, WQ_REG.TAIL)), le(1)), 4, 'doorbell');
      // Portal: the 64-byte descriptor stored straight into WQ 1's portal page (MOVDIR64B-like), then PORTAL.STATUS.
      const desc = encodeDescriptor({ op: OPCODE.MEMMOVE, rcr: true, completion: Number(IOVA) + 12 * PAGE + 32, src: Number(IOVA), dst: Number(IOVA) + 2 * PAGE, length: 256 });
      t.equal(p.memWrite(portals + BigInt(PORTAL.PAGE), desc), 64);
      t.equal(u32(p.memRead(portals + BigInt(PORTAL.PAGE + PORTAL.STATUS), 4)), PORTAL_STATUS.ACCEPTED);
      f.machine!.run();
      t.equal(engine.record(mem + BigInt(12 * PAGE)).status, DESC_STATUS.SUCCESS, 'ring descriptor completed');
      t.equal(engine.record(mem + BigInt(12 * PAGE + 32)).status, DESC_STATUS.SUCCESS, 'portal descriptor completed');
      t.same(p.memRead(mem + BigInt(PAGE), 256), data, 'ring copy');
      t.same(p.memRead(mem + BigInt(2 * PAGE), 256), data, 'portal copy');
      t.equal(u32(p.memRead(regs + BigInt(wqReg(0, WQ_REG.COMPLETED)), 4)), 1, 'COMPLETED read through the mapping');
    });
  });
}
