/**
 * A board-level tour, below the host kernel: it builds the hardware of a
 * virt-smmuv3 board with 1 TiB of sparse RAM (no IOMMU, no host), plugs the
 * plain test device on the root bus and another behind a root port,
 * enumerates PCI through ECAM as firmware does, prints what it found (lspci
 * style), programs a DMA copy and its MSI-X interrupt through MMIO as a bare
 * driver would, runs virtual time, and writes a Chrome trace that Perfetto
 * opens. (`npm start` runs the whole-machine default scenario instead.)
 * Run: npx tsx examples/pci-tour.ts [trace-file]
 */
import { writeFileSync } from 'node:fs';
import {
  Board,
  TestDmaDevice,
  TEST_REGS,
  TEST_STATUS,
  TEST_CMD,
  PcieRootPort,
  describeFunction,
  listCapabilities,
  ecamAccessor,
  CFG,
  COMMAND,
  formatRequesterId,
  MSIX,
  ChromeTraceSink,
} from '../src/index.ts';

const TIB = 2 ** 40;
const traceFile = process.argv[2] ?? 'ioemu-pci-tour.trace.json';

const board = new Board('virt-smmuv3', { seed: 1, ramBytes: TIB });
const sink = new ChromeTraceSink(board.tracer, { scenario: 'pci-tour', machine: board.kind });
const say = (s = '') => console.log(s);

say(`ioemu PCI tour: ${board.kind} board, ${board.ram.size / TIB} TiB RAM at 0x${board.layout.ram[0]!.gpa.toString(16)}`);

// --- memory: sparse until touched -----------------------------------------
const ramBase = board.layout.ram[0]!.gpa;
const src = ramBase + 0x10_0000;
const dst = ramBase + 0xff_0000_0000; // 1020 GiB into RAM
const pattern = new TextEncoder().encode('Hello from guest memory, copied by DMA through the bus-master path.');
board.sysmem.writeFrom(src, pattern);
say(`wrote ${pattern.length} bytes at 0x${src.toString(16)}; RAM resident: ${board.ram.residentBytes} bytes of ${board.ram.size}`);
say(`read of unassigned 0x0: 0x${board.sysmem.read32(0).toString(16)} (all-ones, traced, no exception)`);

// --- PCI topology ----------------------------------------------------------
const dev0 = new TestDmaDevice(board, 'test-dma0');
board.rc.plug(dev0, 3);
const port = new PcieRootPort(board.rc, 'rp0');
board.rc.plug(port, 4);
const dev1 = new TestDmaDevice(board, 'test-dma1');
port.secondary.plug(dev1, 0);

const found = board.enumeratePci();
const cfg = ecamAccessor(board.sysmem, board.layout.ecamBase);
say(`\nPCI enumeration through ECAM at 0x${board.layout.ecamBase.toString(16)}: ${found.length} functions`);
for (const f of found) say(describeFunction(cfg, f.bus, f.devfn));

// --- program the device as a driver would ------------------------------------
const bar0 = found.find((f) => f.bdf === dev0.bdf)!.bars.find((b) => b.index === 0)!.addr!;
const bar2 = found.find((f) => f.bdf === dev0.bdf)!.bars.find((b) => b.index === 2)!.addr!;
const msix = listCapabilities(cfg, 0, dev0.devfn).find((c) => c.id === MSIX.CAP_ID)!;
// MSI-X vector 0 -> the interrupt controller's doorbell, data 0x41.
board.sysmem.write32(bar2 + 0, board.layout.msiBase + 0x40);
board.sysmem.write32(bar2 + 4, 0);
board.sysmem.write32(bar2 + 8, 0x41);
board.sysmem.write32(bar2 + 12, 0); // unmask
const ctrl = cfg.read(0, dev0.devfn, msix.offset + 2, 2);
cfg.write(0, dev0.devfn, msix.offset + 2, 2, ctrl | 0x8000); // MSI-X Enable
cfg.write(0, dev0.devfn, CFG.COMMAND, 2, cfg.read(0, dev0.devfn, CFG.COMMAND, 2) | COMMAND.MASTER);

board.sysmem.write64(bar0 + TEST_REGS.SRC, BigInt(src));
board.sysmem.write64(bar0 + TEST_REGS.DST, BigInt(dst));
board.sysmem.write32(bar0 + TEST_REGS.LEN, pattern.length);
board.sysmem.write32(bar0 + TEST_REGS.IRQ_VECTOR, 0);
board.sysmem.write32(bar0 + TEST_REGS.CMD, TEST_CMD.START);
say(`\nstarted a ${pattern.length}-byte copy at t=${board.now()} ns; STATUS=0x${board.sysmem.read32(bar0 + TEST_REGS.STATUS).toString(16)} (busy)`);
board.scheduler.run();
const status = board.sysmem.read32(bar0 + TEST_REGS.STATUS);
const copied = new Uint8Array(pattern.length);
board.sysmem.readInto(dst, copied);
say(`copy finished at t=${board.now()} ns; STATUS=0x${status.toString(16)} (${status & TEST_STATUS.DONE ? 'done' : 'not done'})`);
say(`destination reads: "${new TextDecoder().decode(copied)}"`);
const irq = board.msi.received.at(-1);
say(`MSI-X received: ${board.msi.count()} message(s); last data=0x${irq?.data.toString(16)} from requester ${irq === undefined ? '-' : formatRequesterId(irq.rid)} at t=${irq?.time} ns`);

// --- bus master disable aborts DMA -----------------------------------------
cfg.write(0, dev0.devfn, CFG.COMMAND, 2, cfg.read(0, dev0.devfn, CFG.COMMAND, 2) & ~COMMAND.MASTER);
const aborted = dev0.dmaRead(BigInt(src), 16);
say(`with Bus Master Enable clear, a DMA read gives: ${aborted.ok ? 'ok?!' : aborted.fault}`);

say(`\ncounters: ${JSON.stringify(board.counters.snapshot())}`);

say(`RAM resident after the run: ${board.ram.residentBytes} bytes (of a 1 TiB address space)`);
const text = sink.stringify();
writeFileSync(traceFile, text);
const bytes = text.length;
say(`trace: ${sink.events.length} events, ${bytes} bytes -> ${traceFile} (open in https://ui.perfetto.dev)`);
