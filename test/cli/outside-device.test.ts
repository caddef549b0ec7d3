/**
 * Issue #19's acceptance: a device written in a folder outside the
 * repository, importing only the public entry (as `ioemu`, the package
 * name), registers an injection point and a trace event, runs under
 * `ioemu run <its scenario> --inject <plan> --trace <file>`, and both show
 * up; `ioemu points --scenario` lists its point.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const DEVICE = `import { MemoryRegion, PciFunction, type SimContext } from 'ioemu';

interface XorEvents { 'xor.computed': { dev: string; input: number; value: number } }

/** Writes to BAR0 store the value xor 0xffff; the result can be corrupted by a plan. */
export class XorDevice extends PciFunction {
  private value = 0;
  constructor(ctx: SimContext, name: string) {
    super(name, { vendorId: 0x1b36, deviceId: 0x10ff, classCode: 0xff0000 }, 0);
    const points = ctx.faults.define({ 'xor.result': { description: 'the xor result is computed with bits flipped', actions: ['corrupt'] } });
    const events = ctx.tracer.define<XorEvents>({ 'xor.computed': 'the xor device computed a value' });
    const ops = {
      read: () => this.value,
      write: (_off: number, _size: number, input: number) => {
        const a = points['xor.result'].check({ dev: this.bdf });
        this.value = (input ^ 0xffff ^ (a?.kind === 'corrupt' ? a.xorLo : 0)) >>> 0;
        events.trace('xor.computed', this.bdf, { dev: this.bdf, input, value: this.value });
      },
    };
    this.defineBar(0, { kind: 'mem32', size: 4096, region: MemoryRegion.mmio(name, 4096, ops, { minAccess: 4, maxAccess: 4 }) });
  }
}
`;

const SCENARIO = `import { VFIO_PCI_BAR0_REGION_INDEX, vfioType1Setup, type Scenario } from 'ioemu';
import { XorDevice } from './xor-device.ts';

const scenario: Scenario = {
  name: 'xor',
  description: 'a device from outside the tree, through VFIO',
  devices: [{ bdf: '0000:00:05.0', kind: (ctx, name) => new XorDevice(ctx, name), name: 'xor' }],
  run(ctx) {
    const p = ctx.machine.host.spawn();
    const { v, device } = vfioType1Setup(ctx.machine, p, '0000:00:05.0');
    ctx.check(v.setBusMaster(device) === 0, 'decoding on');
    v.barWrite32(device, VFIO_PCI_BAR0_REGION_INDEX, 0, 0x1234);
    const r = v.barRead32(device, VFIO_PCI_BAR0_REGION_INDEX, 0);
    ctx.say('xor -> 0x' + r.toString(16));
    ctx.metrics.set('xor.value', r);
  },
};
export default scenario;
`;

t.test('a device from a folder of its own: its point and trace event work like built-in ones', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ioemu-outside-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-device', type: 'module' }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'ioemu'), 'dir');
  writeFileSync(join(dir, 'xor-device.ts'), DEVICE);
  writeFileSync(join(dir, 'scenario.ts'), SCENARIO);
  writeFileSync(join(dir, 'plan.json'), JSON.stringify({ rules: [{ point: 'xor.result', when: { nth: 1 }, action: { kind: 'corrupt', xorLo: 0x10000 } }] }));
  let out = '';
  let err = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
  const trace = join(dir, 'trace.json');
  t.equal(await main(['run', join(dir, 'scenario.ts'), '--machine', 'all', '--inject', join(dir, 'plan.json'), '--trace', trace], io), 0, err);
  t.match(out, /xor -> 0x1edcb/, 'the corrupted result (0x1234 ^ 0xffff ^ 0x10000)');
  t.match(out, /fault plan: xor\.result -> corrupt: 1 matching hit\(s\), 1 injected/);
  const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; pid: number; args: Record<string, unknown> }[] }).traceEvents;
  t.equal(events.filter((e) => e.name === 'xor.computed').length, 2, 'its trace event, once per machine');
  t.equal(events.filter((e) => e.name === 'fault.inject' && e.args.point === 'xor.result').length, 2, 'its point fired on each machine');
  out = '';
  t.equal(await main(['points', '--scenario', join(dir, 'scenario.ts')], io), 0, err);
  t.match(out, /xor\.result\s+the xor result is computed with bits flipped \(actions: corrupt\)/);
  out = '';
  t.equal(await main(['points'], io), 0);
  t.notMatch(out, /xor\.result/, 'not a point of the default machines');
});
