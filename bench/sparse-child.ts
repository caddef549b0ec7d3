/**
 * Run in its own process by bench/run.ts: build a board with 1 TiB of RAM,
 * touch 1 GiB of it spread over the space, and report resident memory.
 */
import { Board } from '../machines/board.ts';

const GIB = 2 ** 30;
const board = new Board('virt-smmuv3', { ramBytes: 1024 * GIB });
const base = board.layout.ram[0]!.gpa;
const chunk = new Uint8Array(1 << 20).fill(0xa5);
// 1024 MiB-sized chunks, one at the start of every GiB of the 1 TiB.
for (let i = 0; i < 1024; i++) board.sysmem.writeFrom(base + i * GIB, chunk);
globalThis.gc?.();
const rss = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ rss, resident: board.ram.residentBytes }) + '\n');
