/**
 * `ioemu cc` and `ioemu exec` from the command line (in process): help,
 * usage errors (2), clang's failure (1), a module that cannot run (3), the
 * program's own exit status, --machine all, --trace with the syscalls,
 * --inject reaching the program, --headers.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type Io } from '../../cli/main.ts';
import { buildC } from '../../cli/build-cache.ts';

t.setTimeout(20 * 60_000);

const dir = mkdtempSync(join(tmpdir(), 'ioemu-cprog-cli-'));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => void (out += s), err: (s) => void (err += s) };
  const code = await main(argv, io);
  return { code, out, err };
}

const PROBE = readFileSync(new URL('../tools/cprog/programs/probe.c', import.meta.url), 'utf8');

t.test('help names cc and exec; each has its own page', async (t) => {
  t.match((await cli('help')).out, /ioemu cc \[clang options\][^]*ioemu exec \[options\] prog\.wasm/);
  const cc = await cli('help', 'cc');
  t.match(cc.out, /--headers DIR/);
  const ex = await cli('exec', '--help');
  t.equal(ex.code, 0);
  for (const w of ['--machine', '--seed', '--inject', '--trace', '--report', '--memlock', '--env', '124']) t.match(ex.out, w);
});

t.test('usage errors exit 2', async (t) => {
  for (const argv of [['cc'], ['cc', '-O2', join(dir, 'missing.c')], ['exec'], ['exec', join(dir, 'missing.wasm')], ['exec', '--machine', 'pdp11', 'x.wasm'], ['exec', '--bogus', 'x.wasm']]) {
    const r = await cli(...argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.err, /^ioemu: /);
  }
});

t.test('ioemu cc compiles a program with its own header beside it; clang errors exit 1 with the diagnostics', async (t) => {
  writeFileSync(join(dir, 'answer.h'), '#define ANSWER 7\n');
  writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\n#include <linux/vfio.h>\n#include "answer.h"\nint main(void) { printf("api %d answer %d\\n", VFIO_API_VERSION, ANSWER); return ANSWER; }\n');
  const out = join(dir, 'hello.wasm');
  const r = await cli('cc', '-O2', '-o', out, join(dir, 'hello.c'));
  t.equal(r.code, 0, r.err);
  t.ok(existsSync(out), 'the module was written where -o said');
  const e = await cli('exec', '--quiet', out);
  t.equal(e.code, 7, 'the program\'s exit status');
  t.equal(e.out, 'api 0 answer 7\n');
  writeFileSync(join(dir, 'broken.c'), 'int main(void) { return undeclared; }\n');
  const b = await cli('cc', '-o', join(dir, 'broken.wasm'), join(dir, 'broken.c'));
  t.equal(b.code, 1);
  t.match(b.err, /broken\.c:1:\d+: error: use of undeclared identifier 'undeclared'/);
  t.notOk(b.err.includes('host/'), 'paths are the user\'s own');
});

t.test('ioemu exec: status passthrough on every machine, the trace, a fault plan, a module that cannot run', async (t) => {
  const prog = join(dir, 'probe.wasm');
  writeFileSync(prog, (await buildC({ 'probe.c': PROBE }, ['-O2', '-Wall', '-Werror'])).wasm);
  const all = await cli('exec', '--machine', 'all', '--env', 'PROBE=x', prog, 'args');
  t.equal(all.code, 42);
  t.equal(all.out.match(/argc=2 argv0=probe\.wasm argv1=args env=x/g)?.length, 2, 'ran on both machines');
  t.match(all.err, /on virt-smmuv3: exit status 42[^]*on q35-vtd: exit status 42/);

  const trace = join(dir, 't.json');
  const tr = await cli('exec', '--quiet', '--trace', trace, prog, 'errno');
  t.equal(tr.code, 0);
  const events = JSON.parse(readFileSync(trace, 'utf8')).traceEvents as { name: string; args: { call?: string } }[];
  t.ok(events.some((e) => e.name === 'proc.syscall' && e.args.call === 'ioctl'), 'the ioctls are in the trace');

  const plan = join(dir, 'plan.json');
  writeFileSync(plan, JSON.stringify({ rules: [{ point: 'vfio.dma_alloc', when: { nth: 1 }, action: { kind: 'fail' } }] }));
  const inj = await cli('exec', '--inject', plan, prog, 'dma');
  t.equal(inj.code, 1);
  t.match(inj.out, /FAILED MAP_DMA: ENOMEM/);
  t.match(inj.err, /fault plan: vfio\.dma_alloc -> fail: 1 matching hit\(s\), 1 injected/);

  const bad = join(dir, 'bad.wasm');
  writeFileSync(bad, 'not wasm');
  const b = await cli('exec', bad);
  t.equal(b.code, 2, 'a file that is not WebAssembly is bad input');
  t.match(b.err, /not a WebAssembly module/);
});

t.test('ioemu cc --headers writes every header a native build needs', async (t) => {
  const h = join(dir, 'headers');
  const r = await cli('cc', '--headers', h);
  t.equal(r.code, 0);
  for (const p of ['linux/vfio.h', 'linux/iommufd.h', 'ioemu/dma-engine.h', 'ioemu/test-device.h']) t.ok(existsSync(join(h, p)), p);
});
