import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('pci-tour: enumerates through ECAM, copies by DMA, interrupts and writes a Chrome trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ioemu-pci-tour-'));
  const traceFile = join(dir, 'trace.json');
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/pci-tour.ts', traceFile], { encoding: 'utf8' });
  t.match(out, /destination reads: "Hello from guest memory/);
  t.match(out, /MSI-X received: 1 message/);
  t.match(out, /BUS_MASTER_DISABLED/);
  const trace = JSON.parse(readFileSync(traceFile, 'utf8'));
  t.ok(Array.isArray(trace.traceEvents) && trace.traceEvents.length > 10);
  t.ok(trace.traceEvents.some((e: { name: string }) => e.name === 'msi.receive'));
  const again = execFileSync(process.execPath, ['--import', 'tsx', 'examples/pci-tour.ts', traceFile + '2'], { encoding: 'utf8' });
  t.equal(readFileSync(traceFile + '2', 'utf8'), readFileSync(traceFile, 'utf8'), 'same seed, same trace, byte for byte');
  t.equal(again.replace(/trace\.json2?/g, ''), out.replace(/trace\.json2?/g, ''));
});
