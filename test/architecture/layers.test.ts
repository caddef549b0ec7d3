/**
 * The folder tree is the layer diagram (DESIGN.md §2, docs/architecture.md):
 * every import, type-only ones included, points down or sideways within its
 * own folder, never up. This test reads every import of the tree and names
 * each one that reaches a higher floor, with its file and line.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { importsOf, ROOT, tsFiles } from './imports.ts';


/**
 * Each top-level folder and the folders it may import from (itself always).
 * src/ is the ground floor; iommu/ and devices/ stand on it side by side;
 * machines/ assembles them; tools/ runs machines (browser-safe); cli/ is the
 * Node-only command line; playground/ is the browser page that runs the
 * built-in scenarios and examples (browser-safe, beside cli/). bench,
 * examples, scenarios and test sit on top.
 */
const FLOORS: Readonly<Record<string, readonly string[]>> = {
  src: [],
  iommu: ['src'],
  devices: ['src'],
  machines: ['src', 'iommu', 'devices'],
  tools: ['src', 'iommu', 'devices', 'machines'],
  cli: ['src', 'iommu', 'devices', 'machines', 'tools'],
  playground: ['src', 'iommu', 'devices', 'machines', 'tools', 'scenarios', 'examples'],
  // Node only: the differential harness runs the rig and the ioemu command (cli/) on a scenario's machine (examples/edu).
  difftest: ['src', 'iommu', 'devices', 'machines', 'tools', 'cli', 'examples'],
};

/** The public façade may re-export from every floor (CONTRACT.md: everything is exported from src/index.ts). */
const FACADE = 'src/index.ts';

/** Floors whose code must run in a browser: no Node built-in modules. */
const BROWSER_SAFE = ['src', 'iommu', 'devices', 'machines', 'tools', 'playground'];
const NODE_BUILTIN = /^(node:|(fs|path|os|url|child_process|worker_threads|crypto|util|stream|events|module|process|readline|v8|vm|wasi|zlib|http|https|net|tty)(\/|$))/;

const floorOf = (file: string): string => file.split('/')[0]!;

/** The violations of the layer rules in a set of files: one message per offending import. */
function layerViolations(files: readonly { file: string; source: string }[]): string[] {
  const bad: string[] = [];
  for (const { file, source } of files) {
    const floor = floorOf(file);
    const allowed = FLOORS[floor];
    if (allowed === undefined) continue;
    for (const im of importsOf(file, source)) {
      if (BROWSER_SAFE.includes(floor) && NODE_BUILTIN.test(im.spec)) {
        bad.push(`${file}:${im.line}: ${floor}/ must run in a browser but imports the Node module "${im.spec}": ${im.text}`);
        continue;
      }
      if (!im.spec.startsWith('.')) continue;
      const target = normalize(join(dirname(file), im.spec));
      if (target.startsWith('..')) {
        bad.push(`${file}:${im.line}: imports from outside the repository: ${im.text}`);
        continue;
      }
      const to = floorOf(target);
      if (file === FACADE || to === floor || allowed.includes(to)) continue;
      bad.push(`${file}:${im.line}: ${floor}/ reaches up to ${to}/ (it may import ${[floor, ...allowed].join(', ')}): ${im.text}`);
    }
  }
  return bad;
}

t.test('no import reaches a higher floor, and browser-safe floors import no Node module', async (t) => {
  const files = Object.keys(FLOORS).flatMap((d) => tsFiles(d)).map((file) => ({ file: relative(ROOT, join(ROOT, file)), source: readFileSync(join(ROOT, file), 'utf8') }));
  t.ok(files.length > 200, `read ${files.length} files`);
  const bad = layerViolations(files);
  t.same(bad, [], bad.join('\n'));
});

t.test('the checker sees type-only, re-exported and dynamic imports, and names the line', async (t) => {
  const bad = layerViolations([
    { file: 'src/host/x.ts', source: "import { a } from './y.ts';\nimport type { Machine } from '../../machines/machine.ts';\n" },
    { file: 'src/pci/y.ts', source: "export { Smmuv3 } from '../../iommu/smmuv3/smmuv3.ts';" },
    { file: 'iommu/vtd/z.ts', source: "const m = await import('../../devices/dma-engine/index.ts');" },
    { file: 'tools/report/w.ts', source: "import { writeFileSync } from 'node:fs';" },
    { file: 'machines/v.ts', source: "import { x } from '../tools/scenario/scenario.ts';" },
    { file: 'src/index.ts', source: "export { createMachine } from '../machines/machine.ts';" },
    { file: 'cli/main.ts', source: "import { readFileSync } from 'node:fs';\nimport { run } from '../tools/scenario/scenario.ts';" },
  ]);
  t.same(bad, [
    "src/host/x.ts:2: src/ reaches up to machines/ (it may import src): import type { Machine } from '../../machines/machine.ts';",
    "src/pci/y.ts:1: src/ reaches up to iommu/ (it may import src): export { Smmuv3 } from '../../iommu/smmuv3/smmuv3.ts';",
    "iommu/vtd/z.ts:1: iommu/ reaches up to devices/ (it may import iommu, src): const m = await import('../../devices/dma-engine/index.ts');",
    'tools/report/w.ts:1: tools/ must run in a browser but imports the Node module "node:fs": import { writeFileSync } from \'node:fs\';',
    "machines/v.ts:1: machines/ reaches up to tools/ (it may import machines, src, iommu, devices): import { x } from '../tools/scenario/scenario.ts';",
  ]);
});
