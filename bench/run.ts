/**
 * `npm run bench`: prints one table and writes bench/results.json. Ratios are
 * measured inside one run (the machines are noisy); absolute rates are for
 * orientation only. Figures appear here as the parts that produce them land.
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

const here = dirname(fileURLToPath(import.meta.url));
const figures: Figures = {};

Object.assign(figures, memoryFigures());
Object.assign(figures, iommuFigures('virt-smmuv3'));
Object.assign(figures, iommuFigures('q35-vtd'));
Object.assign(figures, vfioFigures());
Object.assign(figures, priFigures());
Object.assign(figures, mappingFigures('virt-smmuv3'));
Object.assign(figures, engineFigures('virt-smmuv3'));
Object.assign(figures, engineFigures('q35-vtd'));
Object.assign(figures, await cprogFigures());

const child = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'sparse-child.ts')], { encoding: 'utf8' });
const sparse = JSON.parse(child.trim().split('\n').pop()!) as { rss: number; resident: number };
figures['sparse.1t.rss_bytes'] = { value: sparse.rss, unit: 'bytes', target: '<= 1.2 GiB (1288490189)' };

printTable(figures);
writeResults(join(here, 'results.json'), figures);
console.log(`\nwrote ${join(here, 'results.json')}`);
