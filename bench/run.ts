/**
 * `npm run bench`: prints one table and writes bench/results.json. Ratios are
 * measured inside one run (the machines are noisy); absolute rates are for
 * orientation only. Figures appear here as the parts that produce them land.
 *
 * `npm run bench -- engine pri` runs only the sections named (a section runs
 * when its name starts with one of the words: memory, dma, vfio, pri,
 * mappings, engine, cprog, campaign, soak, sparse) and prints them without
 * writing results.json, which always holds one full run. `soak-full` (10
 * million DMAs and a million PRI faults, minutes) runs only when named.
 *
 * Each section runs in a process of its own (this file with `--section`):
 * in one process, code warmed by earlier sections with other machines and
 * other shapes ran later sections' hot paths slower (a NOOP engine
 * descriptor took about 4.3 us after the sections before it, about 1.5 us
 * in a process of its own), so a figure depended on what ran before it.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printTable, writeResults, type Figures } from './harness.ts';
import { memoryFigures } from './memory.ts';
import { iommuFigures } from './iommu.ts';
import { vfioFigures } from './vfio.ts';
import { priFigures } from './pri.ts';
import { mappingFigures } from './mappings.ts';
import { engineFigures } from './engine.ts';
import { cprogFigures } from './cprog.ts';
import { campaignFigures } from './campaign.ts';
import { FULL_SOAK, soakFigures } from './soak.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The sections in the order they print; each returns its figures. An opt-in section runs only when named. */
const sections: [name: string, run: () => Figures | Promise<Figures>, optIn?: 'opt-in'][] = [
  ['memory', () => memoryFigures()],
  ['dma.smmuv3', () => iommuFigures('virt-smmuv3')],
  ['dma.vtd', () => iommuFigures('q35-vtd')],
  ['vfio', () => vfioFigures()],
  ['pri', () => priFigures()],
  ['mappings', () => mappingFigures('virt-smmuv3')],
  ['engine.smmuv3', () => engineFigures('virt-smmuv3')],
  ['engine.vtd', () => engineFigures('q35-vtd')],
  ['cprog', () => cprogFigures()],
  ['campaign', () => campaignFigures()],
  ['soak', () => soakFigures()],
  ['soak-full', () => soakFigures(FULL_SOAK, 'soak.full'), 'opt-in'],
  ['sparse', () => {
    const child = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'sparse-child.ts')], { encoding: 'utf8' });
    const sparse = JSON.parse(child.trim().split('\n').pop()!) as { rss: number; resident: number };
    return { 'sparse.1t.rss_bytes': { value: sparse.rss, unit: 'bytes', target: '<= 1.2 GiB (1288490189)' } };
  }],
];

// A child: run one section, its figures as JSON on the last line of stdout.
if (process.argv[2] === '--section') {
  const section = sections.find(([name]) => name === process.argv[3]);
  if (section === undefined) throw new Error(`bench: no section ${process.argv[3]}`);
  const f = await section[1]();
  process.stdout.write(`\n${JSON.stringify(f)}\n`);
  process.exit(0);
}

/** Run a section in a fresh process (tsx, as this one) and return its figures. */
function runSection(name: string): Figures {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--section', name], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 2 ** 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Figures;
}

const only = process.argv.slice(2);
const unknown = only.filter((w) => !sections.some(([name]) => name.startsWith(w)));
if (unknown.length > 0) {
  console.error(`bench: no section starts with ${unknown.join(', ')} (sections: ${sections.map(([n]) => n).join(', ')})`);
  process.exit(2);
}
const figures: Figures = {};
for (const [name, , optIn] of sections) {
  if (only.length === 0 ? optIn !== undefined : !only.some((w) => name === w || (optIn === undefined && name.startsWith(w)))) continue;
  Object.assign(figures, runSection(name));
}

printTable(figures);
if (only.length === 0) {
  writeResults(join(here, 'results.json'), figures);
  console.log(`\nwrote ${join(here, 'results.json')}`);
} else {
  console.log('\n(sections chosen: results.json not written; it holds one full run)');
}
