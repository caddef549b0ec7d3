/**
 * The C examples (examples/c/): each built with ioemu's toolchain and run to
 * PASS on both machines, in each of its modes; and, where gcc is installed,
 * each also builds natively against Linux's uapi headers (the kernel tree's
 * 7.3 headers when present, else the system's) with ioemu's device headers.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../../machines/machine.ts';
import { runProgram } from '../../tools/cprog/runner.ts';
import { writeHeaders } from '../../cli/cc.ts';
import { buildC } from '../../cli/build-cache.ts';
import { hasGcc, hasLinuxUapi, LINUX_UAPI } from '../tools/cprog/native.ts';

// Building with clang-in-WebAssembly takes seconds per program (far more on a loaded machine) before the cache has it.
t.setTimeout(20 * 60_000);

const DIR = 'examples/c';
const COMMON = readFileSync(join(DIR, 'vfio-common.h'), 'utf8');
const KINDS = ['virt-smmuv3', 'q35-vtd'] as const;

/** Each example with the argument lists it is run with; `pri`: it needs page requests serviced (on SMMUv3, the posted series). */
const EXAMPLES: { file: string; runs: string[][]; expect: RegExp; pri?: boolean }[] = [
  { file: 'dma-engine-vfio.c', runs: [['type1'], ['iommufd']], expect: /4 completion records SUCCESS, 4 interrupts, destination verified/ },
  { file: 'iommufd-fault-queue.c', runs: [[]], expect: /SUCCESS after 5 page faults in 5 groups, destination verified/, pri: true },
  { file: 'sva-pri.c', runs: [['4']], expect: /MEMMOVE of 4 pages between process pointers \(PASID \d+\): SUCCESS, destination verified/, pri: true },
  { file: 'test-device-copy.c', runs: [['type1'], ['iommufd']], expect: /STATUS 0x2 \(DONE\), ERROR 0, 1 interrupt\(s\), destination verified/ },
];

for (const ex of EXAMPLES) {
  t.test(`${ex.file}: runs to PASS on both machines`, async (t) => {
    const { wasm } = await buildC({ [ex.file]: readFileSync(join(DIR, ex.file), 'utf8'), 'vfio-common.h': COMMON }, ['-O2', '-Wall', '-Wextra', '-Werror']);
    for (const kind of KINDS) {
      for (const args of ex.runs) {
        const m = createMachine(kind, ex.pri === true ? { smmuPri: 'posted-series' } : {});
        let out = '';
        let err = '';
        const r = await runProgram(m, wasm, { args, stdout: (b) => (out += new TextDecoder().decode(b)), stderr: (b) => (err += new TextDecoder().decode(b)) });
        const what = `${kind} ${args.join(' ')}`;
        t.equal(r.status, 0, `${what}: exit status 0${err ? `; stderr: ${err}` : ''}`);
        t.match(out, ex.expect, what);
        t.match(out, /^PASS/m, what);
        t.equal(m.host.processes.size, 0, `${what}: the process is gone`);
      }
    }
  });
}

/** Linux uapi headers to build against natively: a copy of the 7.3 tree's, or the system's. */
function linuxHeaders(): { flags: string[]; iommufd: boolean } | undefined {
  const tree = LINUX_UAPI;
  if (hasLinuxUapi()) {
    const dir = mkdtempSync(join(tmpdir(), 'ioemu-uapi-'));
    mkdirSync(join(dir, 'linux'));
    for (const h of ['vfio.h', 'iommufd.h']) copyFileSync(join(tree, h), join(dir, 'linux', h));
    // Uninstalled uapi headers still carry the kernel's annotations, which headers_install strips.
    return { flags: ['-D__user=', '-D__counted_by(x)=', '-I', dir], iommufd: true };
  }
  return existsSync('/usr/include/linux/vfio.h') ? { flags: [], iommufd: existsSync('/usr/include/linux/iommufd.h') } : undefined;
}

t.test('every C example also builds natively with gcc against Linux headers', async (t) => {
  const linux = linuxHeaders();
  if (!hasGcc() || linux === undefined) {
    t.comment('skipped: no gcc or no Linux uapi headers on this machine');
    return;
  }
  const ioemuDir = mkdtempSync(join(tmpdir(), 'ioemu-headers-'));
  writeHeaders(ioemuDir);
  for (const ex of EXAMPLES) {
    if (!linux.iommufd) {
      t.comment(`skipped ${ex.file}: the system's headers lack <linux/iommufd.h>`);
      continue;
    }
    const out = join(ioemuDir, ex.file.replace(/\.c$/, ''));
    // ioemu's own headers come after the system's: only <ioemu/...> is taken from there.
    execFileSync('gcc', ['-Wall', '-Wextra', '-Werror', ...linux.flags, '-idirafter', ioemuDir, '-o', out, join(DIR, ex.file)], { stdio: 'pipe' });
    t.ok(existsSync(out), `${ex.file} built natively`);
  }
});
