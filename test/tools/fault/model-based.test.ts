/**
 * Model-based tests (issue 9, part 5): random command sequences across VFIO,
 * SVA and iommufd on both machines, checked against a reference model of what
 * each device may reach, then the invariants. fast-check shrinks a failing
 * sequence to a minimal one (printed as JSON: replay with runSequence()).
 *
 * IOEMU_MBT_RUNS=<n> runs n sequences per machine instead of 40 (soak runs);
 * IOEMU_MBT_SEED=<n> fixes fast-check's seed.
 */
import t from 'tap';
import fc from 'fast-check';
import { MB_BUF_PAGES, MB_SLOTS, runSequence, type Command } from '../../../tools/fault/model-based.ts';

const RUNS = Number(process.env.IOEMU_MBT_RUNS ?? 40);
const SEED = process.env.IOEMU_MBT_SEED === undefined ? undefined : Number(process.env.IOEMU_MBT_SEED);

const io = fc.constantFrom<0 | 1>(0, 1);
const world = fc.constantFrom<'V' | 'F'>('V', 'F');
const slot = fc.nat({ max: MB_SLOTS - 1 });
const page = fc.nat({ max: MB_BUF_PAGES - 1 });
const npages = fc.integer({ min: 1, max: 6 });
const byte = fc.nat({ max: 255 });

export const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('vfioMap' as const), page, npages, slot, write: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('vfioUnmap' as const), slot, npages: fc.integer({ min: 1, max: 8 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('vfioUnmapIndex' as const), index: fc.nat({ max: 7 }) }), weight: 1 },
  { arbitrary: fc.constantFrom<Command>({ op: 'svaBind' }, { op: 'svaUnbind' }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ioasMap' as const), ioas: io, page, npages, slot, write: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('ioasUnmap' as const), ioas: io, slot, npages: fc.integer({ min: 1, max: 8 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ioasUnmapIndex' as const), ioas: io, index: fc.nat({ max: 7 }) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ioasUnmapAll' as const), ioas: io }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('ioasCopy' as const), src: io, dst: io, srcSlot: slot, npages: fc.integer({ min: 1, max: 4 }), dstSlot: slot }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('attach' as const), ioas: io }), weight: 2 },
  { arbitrary: fc.constant<Command>({ op: 'detach' }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('dma' as const), world, slot, write: fc.boolean(), value: byte }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('svaDma' as const), page, write: fc.boolean(), value: byte }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('svaFault' as const), write: fc.boolean(), value: byte }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('cpuWrite' as const), world, page, value: byte }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('exit' as const), world }), weight: 1 },
);

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: every device reaches exactly what the reference model says, across random VFIO/SVA/iommufd sequences`, async (t) => {
    let sequences = 0;
    let dmas = 0;
    const started = Date.now();
    const prop = fc.property(fc.array(command, { minLength: 1, maxLength: 20, size: 'max' }), (cmds) => {
      sequences++;
      const r = runSequence(kind, cmds);
      dmas += r.dmas;
      if (!r.ok) throw new Error(`command ${r.at}: ${r.failure}`);
    });
    const out = fc.check(prop, { numRuns: RUNS, seed: SEED });
    if (out.failed) {
      t.fail(`minimal failing sequence (seed ${out.seed}, path ${out.counterexamplePath}): ${JSON.stringify(out.counterexample?.[0])}\n${String(out.errorInstance)}`);
    } else t.pass(`${sequences} sequences, ${dmas} DMAs checked against the model in ${Date.now() - started} ms`);
  });
}

t.test('a known sequence replays: map, copy, attach, DMA write seen by the process, unmap, DMA faults', async (t) => {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const r = runSequence(kind, [
      { op: 'ioasMap', ioas: 0, page: 3, npages: 2, slot: 4, write: true },
      { op: 'ioasCopy', src: 0, dst: 1, srcSlot: 4, npages: 2, dstSlot: 10 },
      { op: 'attach', ioas: 1 },
      { op: 'dma', world: 'F', slot: 11, write: true, value: 0x5a },
      { op: 'ioasUnmap', ioas: 1, slot: 10, npages: 2 },
      { op: 'dma', world: 'F', slot: 11, write: false, value: 0 },
      { op: 'vfioMap', page: 0, npages: 4, slot: 0, write: false },
      { op: 'dma', world: 'V', slot: 2, write: true, value: 1 },
      { op: 'svaBind' },
      { op: 'svaDma', page: 5, write: true, value: 7 },
      { op: 'exit', world: 'V' },
    ], { checkEachStep: true });
    t.same(r, { ok: true, commands: 11, dmas: r.dmas }, `${kind}: ${r.failure ?? 'ok'}`);
  }
});
