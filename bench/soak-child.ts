/**
 * Run in its own process (node --expose-gc) by bench/soak.ts: one machine,
 * `dmas` DMA writes on warm translations and `faults` page faults resolved
 * through PRI, in ten equal tenths, with the live heap (after a full GC)
 * taken at the end of each tenth. Prints one JSON line.
 *
 * usage: soak-child.ts KIND DMAS FAULTS
 *
 * The DMA engine is bound to a process by SVA (ATS and PRI on). The DMAs
 * write 64 bytes each over 256 pages the CPU touched first (ATC hits). The
 * faults come in blocks: the process maps 1024 untouched pages, the device
 * writes one byte to each (ATS miss, page request, the host's fault handler,
 * PRG response, retry), and the process unmaps them (the mmu notifier
 * invalidates the device's translations). So the process's own memory stays
 * the same from one tenth to the next, and what the heap gains is what the
 * emulator keeps per DMA or per fault.
 */
import { createMachine } from '../machines/machine.ts';
import type { MachineKind } from '../machines/layout.ts';
import type { SvaHandle } from '../src/iommu-core/sva.ts';
import { CFG, COMMAND } from '../src/pci/header.ts';

const PAGE = 4096;
const BLOCK = 1024;
const WARM_PAGES = 256;

const [kind, dmasArg, faultsArg] = process.argv.slice(2) as [MachineKind, string, string];
const dmas = Number(dmasArg);
const faults = Number(faultsArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
if (!(dmas % 10 === 0 && faults % (10 * BLOCK) === 0)) throw new Error(`DMAs must be a multiple of 10, faults of ${10 * BLOCK}`);

const m = createMachine(kind, { ramBytes: 512 * 2 ** 20 });
const dev = m.device('0000:00:01.0');
const p = m.host.spawn();
const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
if (typeof h === 'number') throw new Error(`SVA bind failed (${h})`);
dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
const attrs = { pasid: h.pasid };
const warm = p.mmap(WARM_PAGES * PAGE);
p.memWrite(warm, new Uint8Array(WARM_PAGES * PAGE));
const data = new Uint8Array(64).fill(0x5a);
const one = new Uint8Array([1]);
const answered = () => m.board.counters.get('iopf.groups_answered');

const heap: number[] = [];
let dmaFailed = 0;
const t0 = performance.now();
const answered0 = answered();
for (let tenth = 0; tenth < 10; tenth++) {
  const blocks = faults / 10 / BLOCK;
  const dmasPerBlock = Math.floor(dmas / 10 / Math.max(1, blocks));
  let dmasLeft = dmas / 10;
  for (let b = 0; b < Math.max(1, blocks); b++) {
    const n = b === Math.max(1, blocks) - 1 ? dmasLeft : dmasPerBlock;
    for (let i = 0; i < n; i++) {
      const r = dev.dmaWrite(warm + BigInt(((i * 37) % WARM_PAGES) * PAGE + (i % 64) * 64), data, attrs);
      if (!r.ok) dmaFailed++;
    }
    dmasLeft -= n;
    if (blocks === 0) break;
    const va = p.mmap(BLOCK * PAGE);
    for (let i = 0; i < BLOCK; i++) dev.dmaWrite(va + BigInt(i * PAGE), one, attrs);
    p.munmap(va, BLOCK * PAGE);
  }
  m.run();
  gc();
  heap.push(process.memoryUsage().heapUsed);
}
const seconds = (performance.now() - t0) / 1000;
const faultsAnswered = answered() - answered0;
process.stdout.write(JSON.stringify({ kind, dmas, faults, faultsAnswered, dmaFailed, seconds, heap }) + '\n');
