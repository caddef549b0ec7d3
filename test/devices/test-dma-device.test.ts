import t from 'tap';
import { TestDmaDevice, TEST_REGS, TEST_STATUS, TEST_CMD, TEST_ERROR, TEST_MAGIC, TEST_NO_IRQ } from '../../devices/test-dma-device.ts';
import { MSIX } from '../../src/pci/caps/msix.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { listCapabilities } from '../../src/pci/lspci.ts';
import { newBoard } from '../pci/helpers.ts';

/** A booted board with the test device at 00:01.0, BARs assigned, MSI-X vector 0 aimed at the doorbell. */
function setup() {
  const { board, cfg } = newBoard('q35-vtd');
  const dev = new TestDmaDevice(board, 'td');
  board.rc.plug(dev, 1);
  const found = board.enumeratePci();
  const bars = found[0]!.bars;
  const bar0 = bars.find((b) => b.index === 0)!.addr!;
  const bar2 = bars.find((b) => b.index === 2)!.addr!;
  const mem = board.sysmem;
  mem.write32(bar2, board.layout.msiBase);
  mem.write32(bar2 + 8, 0x55);
  mem.write32(bar2 + 12, 0);
  const msix = listCapabilities(cfg, 0, 8).find((c) => c.id === MSIX.CAP_ID)!;
  cfg.write(0, 8, msix.offset + 2, 2, 0x8000);
  cfg.write(0, 8, CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.MASTER);
  const start = (src: number, dst: number, len: number, vector = 0) => {
    mem.write64(bar0 + TEST_REGS.SRC, BigInt(src));
    mem.write64(bar0 + TEST_REGS.DST, BigInt(dst));
    mem.write32(bar0 + TEST_REGS.LEN, len);
    mem.write32(bar0 + TEST_REGS.IRQ_VECTOR, vector);
    mem.write32(bar0 + TEST_REGS.CMD, TEST_CMD.START);
  };
  return { board, cfg, dev, bar0, mem, start };
}

t.test('identity registers read the magic and version; unknown registers read 0', async (t) => {
  const { mem, bar0 } = setup();
  t.equal(mem.read32(bar0 + TEST_REGS.ID), TEST_MAGIC);
  t.equal(mem.read32(bar0 + TEST_REGS.VERSION), 0x10000);
  t.equal(mem.read32(bar0 + 0x800), 0);
});

t.test('a copy runs by DMA after its virtual-time cost, then sets DONE and raises the MSI-X vector', async (t) => {
  const { board, mem, bar0, start } = setup();
  mem.writeFrom(0x1000, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  start(0x1000, 0x8000, 8);
  t.equal(mem.read32(bar0 + TEST_REGS.STATUS), TEST_STATUS.BUSY);
  t.equal(mem.read32(0x8000), 0, 'nothing copied before time passes');
  board.scheduler.run();
  t.ok(board.now() > 0, 'the copy took virtual time');
  t.equal(mem.read32(bar0 + TEST_REGS.STATUS), TEST_STATUS.DONE);
  t.equal(board.sysmem.read64(0x8000), 0x0807060504030201n);
  t.equal(board.msi.count(0x55), 1);
  t.equal(board.msi.received[0]!.rid, 0x08);
  t.equal(mem.read32(bar0 + TEST_REGS.COMPLETED), 1);
  mem.write32(bar0 + TEST_REGS.STATUS, TEST_STATUS.DONE);
  t.equal(mem.read32(bar0 + TEST_REGS.STATUS), 0, 'DONE is RW1C');
});

t.test('a copy from an address nothing decodes reports READ_FAULT and the ERROR status', async (t) => {
  const { board, mem, bar0, start } = setup();
  start(0x9000_0000, 0x8000, 64);
  board.scheduler.run();
  t.equal(mem.read32(bar0 + TEST_REGS.STATUS), TEST_STATUS.ERROR);
  t.equal(mem.read32(bar0 + TEST_REGS.ERROR), TEST_ERROR.READ_FAULT);
  t.equal(board.msi.count(0x55), 1, 'errors interrupt too');
});

t.test('bad lengths and a second START while busy are refused with their error codes', async (t) => {
  const { board, mem, bar0, start } = setup();
  start(0x1000, 0x2000, 0);
  t.equal(mem.read32(bar0 + TEST_REGS.ERROR), TEST_ERROR.BAD_LENGTH);
  start(0x1000, 0x2000, (1 << 20) + 1);
  t.equal(mem.read32(bar0 + TEST_REGS.ERROR), TEST_ERROR.BAD_LENGTH);
  start(0x1000, 0x2000, 16, TEST_NO_IRQ);
  start(0x1000, 0x2000, 16, TEST_NO_IRQ);
  t.equal(mem.read32(bar0 + TEST_REGS.ERROR), TEST_ERROR.BUSY);
  board.scheduler.run();
  t.equal(mem.read32(bar0 + TEST_REGS.COMPLETED), 1, 'the first copy still completes');
});

t.test('with MSI-X vector masked the interrupt is held pending and delivered on unmask', async (t) => {
  const { board, mem, start } = setup();
  const bar2 = board.enumeratePci()[0]!.bars.find((b) => b.index === 2)!.addr!;
  mem.write32(bar2 + 12, 1);
  start(0x1000, 0x2000, 16);
  board.scheduler.run();
  t.equal(board.msi.count(0x55), 0);
  t.equal(mem.read32(bar2 + 0x800) & 1, 1, 'PBA bit 0 pending');
  mem.write32(bar2 + 12, 0);
  t.equal(board.msi.count(0x55), 1);
  t.equal(mem.read32(bar2 + 0x800) & 1, 0);
});

t.test('Function Level Reset cancels a pending copy and restores registers', async (t) => {
  const { board, cfg, dev, mem, bar0, start } = setup();
  start(0x1000, 0x2000, 4096);
  const pcie = listCapabilities(cfg, 0, 8).find((c) => c.id === 0x10)!;
  cfg.write(0, 8, pcie.offset + 8, 2, 0x8000); // Device Control: Initiate Function Level Reset
  board.scheduler.run();
  t.equal(board.msi.count(), 0, 'no completion after reset');
  t.equal(dev.regs.get('COMPLETED'), 0);
  t.equal(dev.config.get16(CFG.COMMAND), 0, 'config space back to power-on values');
  t.equal(mem.read32(bar0 + TEST_REGS.ID), 0xffffffff, 'BAR no longer decodes after reset');
});
