import t from 'tap';
import { execFileSync } from 'node:child_process';
import { runChecksumExample } from '../../examples/write-a-device.ts';
import { runFaultQueueExample } from '../../examples/iommufd-fault-queue.ts';
import { runFaultPlanExample } from '../../examples/fault-plan.ts';
import { runSweepExample } from '../../examples/parameter-sweep.ts';

const quiet = () => {};

t.test('write-a-device: a new device plugged into a machine checksums a buffer it reads by DMA through VFIO and VT-d', async (t) => {
  t.equal(runChecksumExample(quiet), 1 + 2 + 3 + 4 + 250);
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/write-a-device.ts'], { encoding: 'utf8' });
  t.match(out, /STATUS=1 SUM=260/);
});

t.test('iommufd-fault-queue: the user-space handler maps the faulting page, answers, and the DMA completes', async (t) => {
  const r = runFaultQueueExample(quiet);
  t.ok(r.ok);
  t.equal(r.faults, 1);
});

t.test('fault-plan: an allocation failure inside MAP_DMA returns ENOMEM and leaves no trace, on both machines', async (t) => {
  for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) {
    const r = runFaultPlanExample(kind, quiet);
    t.equal(r.result, -12, kind);
    t.equal(r.violations, 0, kind);
  }
});

t.test('parameter-sweep: one row per ATC size, each run passing', async (t) => {
  const rows = await runSweepExample([2, 64], quiet);
  t.equal(rows.length, 2);
  t.same(rows.map((r) => r['atc-entries']), [2, 64]);
  t.ok(rows.every((r) => r.ok === 1));
});
