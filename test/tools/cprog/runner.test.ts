/**
 * A C program as a process (tools/cprog): arguments, ids and page size; the
 * kernel's errnos as wasi-libc spells them; sysfs through libc; virtual time
 * for sleeps and poll; hangs and traps as exit statuses; the program's
 * memory shared with device DMA (also after the memory grows), a pinned page
 * unmapped by the program keeping its bytes for the device; every system
 * call in the trace; fault plans reaching the program as errnos.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createMachine, type Machine } from '../../../machines/machine.ts';
import type { MachineKind } from '../../../machines/layout.ts';
import { runProgram, ProgramLoadError, type ProgramOptions } from '../../../tools/cprog/runner.ts';
import { HANG_STATUS } from '../../../tools/cprog/program.ts';
import { programScenario } from '../../../tools/cprog/scenario.ts';
import { runScenario } from '../../../tools/scenario/scenario.ts';
import { checkInvariants } from '../../../tools/fault/invariants.ts';
import { buildC } from '../../../cli/build-cache.ts';

t.setTimeout(20 * 60_000);

const PROBE = readFileSync(new URL('./programs/probe.c', import.meta.url), 'utf8');
let probe: Uint8Array | undefined;
const build = async () => (probe ??= (await buildC({ 'probe.c': PROBE }, ['-O2', '-Wall', '-Werror'])).wasm);

async function run(args: string[], kind: MachineKind = 'q35-vtd', opts: ProgramOptions = {}, m: Machine = createMachine(kind)) {
  let out = '';
  let err = '';
  const r = await runProgram(m, await build(), { name: 'probe', args, stdout: (b) => (out += new TextDecoder().decode(b)), stderr: (b) => (err += new TextDecoder().decode(b)), ...opts });
  return { ...r, out, err, m };
}

t.test('arguments, environment, pid, uid and a 4 KiB page reach the program; its exit status comes back', async (t) => {
  const r = await run(['args'], 'q35-vtd', { env: { PROBE: 'yes' }, spawn: { uid: 1234 } });
  t.equal(r.status, 42);
  t.match(r.out, /argc=2 argv0=probe argv1=args env=yes pid=\d+ uid=1234 pagesize=4096\/4096/);
  t.match(r.out, new RegExp(`pid=${r.pid} `));
});

t.test('the kernel\'s errnos arrive as the program\'s errno names', async (t) => {
  const r = await run(['errno']);
  t.equal(r.status, 0);
  t.match(r.out, /open: -1 ENOENT/);
  t.match(r.out, /ioctl bad fd: -1 EBADF/);
  t.match(r.out, /SET_IOMMU before a group: -1 EINVAL/);
  t.match(r.out, /ioctl on stdout: -1 ENOTTY/);
  t.match(r.out, /create: -1 EROFS/);
});

t.test('sysfs through libc: fopen/fgets of an attribute, opendir/readdir, access of a device node', async (t) => {
  const r = await run(['sysfs']);
  t.match(r.out, /device id: 0x10e0\n/);
  t.match(r.out, /devices: 3\n/);
  t.match(r.out, /access \/dev\/iommu: 0/);
});

t.test('sleeps and poll timeouts take virtual time, exactly', async (t) => {
  const r = await run(['time'], 'q35-vtd', { callNs: 0 });
  t.match(r.out, /usleep\(2500\): 2500000 ns; poll of an idle eventfd for 7 ms: 0 after 7000000 ns/);
});

t.test('a blocking read nothing can satisfy ends the program as a hang; abort() as SIGABRT', async (t) => {
  const h = await run(['hang']);
  t.equal(h.status, HANG_STATUS);
  t.match(h.reason ?? '', /hung: read\(\d+\): nothing left to happen/);
  t.match(h.out, /reading an eventfd nobody signals\n$/);
  t.equal(h.m.host.processes.size, 0, 'the process exited');
  const a = await run(['abort']);
  t.equal(a.status, 128 + 6);
  t.match(a.reason ?? '', /aborted/);
});

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: device DMA and the program meet in the same bytes, also after the memory grows`, async (t) => {
    const r = await run(['dma'], kind);
    t.equal(r.status, 0, r.out);
    t.match(r.out, /copy: status 0x2, destination equals the source/);
    t.match(r.out, /after the memory grew: status 0x2, destination equals the source \(grown\)/);
    t.same(checkInvariants(r.m, { dma: false }), [], 'no page leaked, no pin left');
  });

  t.test(`${kind}: a page unmapped while pinned for DMA keeps its bytes for the device; the address is free again`, async (t) => {
    const r = await run(['pinned-munmap'], kind);
    t.equal(r.status, 0, r.out);
    t.match(r.out, /the next mmap reuses the same address, and reads zero/);
    t.match(r.out, /the device read 0xaa from the unmapped page \(the program's new page holds 0xbb\)/);
    t.match(r.out, /MAP_DMA of an unmapped range: -1 EFAULT/);
    t.same(checkInvariants(r.m, { dma: false }), [], 'the pins went with the container; nothing leaked');
  });
}

t.test('MAP_HUGETLB gives the program a 2 MiB page the device reaches through one mapping', async (t) => {
  const r = await run(['huge'], 'q35-vtd');
  t.equal(r.status, 0, r.out);
  t.match(r.out, /huge page at a 2 MiB boundary: yes/);
  t.match(r.out, /copy inside the huge page: status 0x2, verified/);
});

t.test('vfio_bitmap.data, a 32-bit pointer in a 64-bit field, reaches the kernel whole whatever its upper half held', async (t) => {
  const r = await run(['dirty'], 'virt-smmuv3');
  t.equal(r.status, 0, r.out);
  // Type1 reports every page pinned for the device as dirty (vfio_iova_dirty_bitmap): all four.
  t.match(r.out, /dirty bitmap: 0xf\n/);
});

t.test('every system call is a proc.syscall trace event with the ioctl named', async (t) => {
  const m = createMachine('q35-vtd', { trace: true });
  const r = await run(['errno'], 'q35-vtd', {}, m);
  const calls = m.trace!.events.filter((e) => e.name === 'proc.syscall').map((e) => e.args as { call: string; args: string; errno: string });
  t.ok(calls.length >= 6, `${calls.length} calls traced`);
  t.ok(calls.some((c) => c.call === 'open' && c.args.includes('dev/nothing') && c.errno === 'ENOENT'));
  t.ok(calls.some((c) => c.call === 'ioctl' && c.args.includes('VFIO_SET_IOMMU') && c.errno === 'EINVAL'));
  t.equal(r.status, 0);
});

t.test('a fault plan reaches the program: an injected MAP_DMA allocation failure is its ENOMEM, and the kernel unwinds', async (t) => {
  let out = '';
  const s = programScenario('probe', await build(), { args: ['dma'], stdout: (b) => (out += new TextDecoder().decode(b)) });
  const r = await runScenario(s, { machine: 'virt-smmuv3', plan: { rules: [{ point: 'vfio.dma_alloc', when: { nth: 1 }, action: { kind: 'fail' } }] } });
  t.match(out, /FAILED MAP_DMA: ENOMEM/);
  t.equal(s.result?.status, 1);
  t.notOk(r.ok, 'the scenario fails with the program');
  t.same(r.violations, [], 'invariants hold');
  t.equal(r.plans[0]?.rules[0]?.injected, 1);
});

t.test('a module that is not a program for ioemu is refused before it runs', async (t) => {
  await t.rejects(runProgram(createMachine('q35-vtd'), new Uint8Array([1, 2, 3])), ProgramLoadError);
  // A module importing something nobody provides (an env function, as an emscripten build would).
  const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 2, 9, 1, 3, 0x65, 0x6e, 0x76, 1, 0x66, 0, 0]);
  await t.rejects(runProgram(createMachine('q35-vtd'), wasm), /imports env\.f, which ioemu does not provide/);
});
