/**
 * `npm run bench`: prints one table and writes bench/results.json. Ratios are
 * measured inside one run (the machines are noisy); absolute rates are for
 * orientation only. Figures appear here as the parts that produce them land.
 *
 * `npm run bench -- engine pri` runs only the sections named (a section runs
 * when its name starts with one of the words: memory, dma, vfio, pri,
 * mappings, engine, cprog, campaign, soak, sparse) and prints them without
 * writing results.json, which always holds one full run.
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

const here = dirname(fileURLToPath(import.meta.url));

/** The sections in the order they print; each returns its figures. */
const sections: [name: string, run: () => Figures | Promise<Figures>][] = [
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
  ['sparse', () => {
    const child = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'sparse-child.ts')], { encoding: 'utf8' });
    const sparse = JSON.parse(child.trim().split('\n').pop()!) as { rss: number; resident: number };
    return { 'sparse.1t.rss_bytes': { value: sparse.rss, unit: 'bytes', target: '<= 1.2 GiB (1288490189)' } };
  }],
];

const only = process.argv.slice(2);
const unknown = only.filter((w) => !sections.some(([name]) => name.startsWith(w)));
if (unknown.length > 0) {
  console.error(`bench: no section starts with ${unknown.join(', ')} (sections: ${sections.map(([n]) => n).join(', ')})`);
  process.exit(2);
}
const figures: Figures = {};
for (const [name, run] of sections) {
  if (only.length > 0 && !only.some((w) => name.startsWith(w))) continue;
  Object.assign(figures, await run());
}

printTable(figures);
if (only.length === 0) {
  writeResults(join(here, 'results.json'), figures);
  console.log(`\nwrote ${join(here, 'results.json')}`);
} else {
  console.log('\n(sections chosen: results.json not written; it holds one full run)');
}
