/**
 * Fuzzing of every input surface (issue 9, part 6): mutated uapi structs for
 * every VFIO and iommufd ioctl, random IOMMU register writes and table
 * contents, DMA engine BAR writes and descriptors. No exception, no hang, a
 * Linux errno or the architecture's error, invariants intact.
 *
 * IOEMU_FUZZ_SCALE=<k> multiplies the case counts (soak runs);
 * IOEMU_FUZZ_SEED=<n> picks the seed (each problem names the seed and case).
 */
import t from 'tap';
import { fuzzDmaEngine, fuzzIommuRegisters, fuzzIommuTables, fuzzUapi, type FuzzReport } from '../../../tools/fault/fuzz.ts';
import { checkUapiErrnos } from '../../../tools/fault/fuzz-uapi.ts';
import { EXPECTED_ERRNO } from '../../../tools/fault/errno-table.ts';

const SCALE = Number(process.env.IOEMU_FUZZ_SCALE ?? 1);
const SEED = Number(process.env.IOEMU_FUZZ_SEED ?? 1);
const n = (x: number) => Math.max(1, Math.round(x * SCALE));

function summary(r: FuzzReport): string {
  const targets = Object.keys(r.byTarget).length;
  return `${r.cases} cases over ${targets} targets, slowest ${r.slowestMs.toFixed(1)} ms`;
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: every VFIO and iommufd ioctl answers mutated structs with a result or a Linux errno, changing nothing it refuses`, async (t) => {
    const r = fuzzUapi(kind, { seed: SEED, cases: n(30) });
    t.ok(Object.keys(r.byTarget).length >= 40, `every ioctl fuzzed (${Object.keys(r.byTarget).length})`);
    t.same(r.problems, [], summary(r));
    t.equal(r.violations, 0);
  });

  t.test(`${kind}: each mutation class (size too small, unknown flags, reserved set, trailing bytes, u64 wrap, misalignment, bad ID or fd) gets Linux's exact errno and changes nothing`, async (t) => {
    const r = checkUapiErrnos(kind, SEED);
    const expected = Object.values(EXPECTED_ERRNO).reduce((n, x) => n + Object.keys(x).length, 0);
    t.equal(r.cases, expected, `${r.cases} targeted cases over ${Object.keys(EXPECTED_ERRNO).length} ioctls`);
    t.same(r.problems, []);
  });

  t.test(`${kind}: random IOMMU register writes raise no exception in the model or the driver, and the scheduler stays bounded`, async (t) => {
    const r = fuzzIommuRegisters(kind, { seed: SEED, cases: n(60) });
    t.same(r.problems, [], summary(r));
  });

  t.test(`${kind}: random IOMMU table contents give the architecture's errors, never an exception`, async (t) => {
    const r = fuzzIommuTables(kind, { seed: SEED, cases: n(40) });
    t.same(r.problems, [], summary(r));
    const faults = Object.entries(r.byTarget)
      .filter(([k]) => k.endsWith('dma'))
      .flatMap(([, v]) => Object.keys(v.outcomes));
    t.ok(faults.some((f) => f !== 'dma ok'), `corrupted tables fault DMAs: ${[...new Set(faults)].join(', ')}`);
  });

  t.test(`${kind}: DMA engine BAR writes and random descriptors raise no exception and break no VFIO invariant`, async (t) => {
    const r = fuzzDmaEngine(kind, { seed: SEED, cases: n(100) });
    t.same(r.problems, [], summary(r));
    t.equal(r.violations, 0);
  });
}
