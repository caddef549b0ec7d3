/**
 * The corpus: C programs that run unmodified on the rig (real Linux 7.3,
 * QEMU q35 + VT-d + edu at 0000:00:03.0) and on ioemu (`ioemu exec` on
 * q35-vtd with ioemu's edu at the same address), each run with its
 * arguments. Every program prints facts, one per line (errnos by name,
 * fields in hex, DMA outcomes), never addresses the kernel picks.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface CorpusRun {
  /** Unique: names the recorded output (difftest/recorded/<id>.txt). */
  id: string;
  source: string;
  args: string[];
}

const HERE = new URL('.', import.meta.url).pathname;
/** The rig (../shared/rig next to the repository, or IOEMU_RIG). */
export const RIG_DIR = process.env.IOEMU_RIG ?? join(HERE, '..', '..', 'shared', 'rig');
const RIG_EXAMPLE = join(RIG_DIR, 'examples', 'edu-vfio.c');
const own = (name: string) => join(HERE, 'programs', name);

export const CORPUS: readonly CorpusRun[] = [
  // The rig's own example, by path (not copied: it is the rig's).
  { id: 'rig-edu-vfio-type1', source: RIG_EXAMPLE, args: ['type1', '0000:00:03.0'] },
  { id: 'rig-edu-vfio-iommufd', source: RIG_EXAMPLE, args: ['iommufd', '0000:00:03.0'] },
  // Ours.
  { id: 'edu-driver-type1', source: own('edu-driver.c'), args: ['type1'] },
  { id: 'edu-driver-iommufd', source: own('edu-driver.c'), args: ['iommufd'] },
  { id: 'errno-type1', source: own('errno-sweep.c'), args: ['type1'] },
  { id: 'errno-iommufd', source: own('errno-sweep.c'), args: ['iommufd'] },
  { id: 'errno-cdev', source: own('errno-sweep.c'), args: ['cdev'] },
  { id: 'errno-domain', source: own('errno-sweep.c'), args: ['domain'] },
  { id: 'errno-dirty', source: own('errno-sweep.c'), args: ['dirty'] },
];

export const sourceHere = (r: CorpusRun): boolean => existsSync(r.source);
