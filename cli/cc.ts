/**
 * `ioemu cc`: clang for programs that run on ioemu (tools/cprog/compile.ts
 * says what is added), with the toolchain `npm ci` installed
 * (@yowasp/clang: clang, lld and wasi-libc as WebAssembly). clang works in a
 * tree of files of its own: the sources, the headers beside them and those
 * under -I directories are copied in at their absolute paths (under "host/"),
 * the arguments rewritten to match, and the files clang wrote are copied back.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { compile, ioemuHeaders, putFile, type RunClang, type Tree } from '../tools/cprog/compile.ts';
import { UsageError } from '../tools/scenario/scenario.ts';

export const CC_HELP = `Usage: ioemu cc [clang options] -o prog.wasm prog.c [more.c ...]
       ioemu cc --headers DIR

Compiles and links C for ioemu (wasm32-wasi, with the toolchain npm ci
installed: no system compiler is used). Linking adds ioemu's syscall shim;
the include path has Linux uapi headers written from ioemu's own tables
(<linux/vfio.h>, <linux/iommufd.h>, <linux/types.h>, <linux/ioctl.h>,
<linux/pci_regs.h>) and its devices' registers (<ioemu/dma-engine.h>,
<ioemu/test-device.h>). Any other clang option passes through (-O2, -Wall,
-D, -I, -c, ...). Run the result with "ioemu exec prog.wasm".

Options of ioemu cc itself:
  --headers DIR   write every header ioemu provides under DIR and stop
                  (for building the same program natively: gcc -idirafter DIR)
  -h, --help      this text

Exit status: 0 ok, 1 clang failed (its diagnostics are on stderr), 2 usage
error, 3 internal error.
`;

/** Options whose value is the next argument, and which of them name paths. */
const VALUE_OPTS = new Set(['-o', '-I', '-D', '-U', '-include', '-isystem', '-iquote', '-idirafter', '-L', '-l', '-x', '-MF', '-MT', '-MQ', '-Xlinker', '-arch', '-target']);
const PATH_OPTS = new Set(['-o', '-I', '-include', '-isystem', '-iquote', '-idirafter', '-L', '-MF']);
const HEADER_EXT = new Set(['.h', '.hh', '.hpp', '.inc', '.def']);
/** Files copied in from one directory tree at most (a -I of /usr/include would be absurd). */
const MAX_DIR_FILES = 5000;

const inTree = (hostPath: string) => `host${resolve(hostPath)}`;

function addFile(tree: Tree, hostPath: string): void {
  putFile(tree, inTree(hostPath), new Uint8Array(readFileSync(hostPath)));
}

/** Copy headers below `dir` into the tree (recursively for -I directories, one level for a source's own). */
function addHeaders(tree: Tree, dir: string, recursive: boolean, budget = { left: MAX_DIR_FILES }): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (budget.left <= 0 || n === 'node_modules' || n.startsWith('.')) continue;
    const p = join(dir, n);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (recursive) addHeaders(tree, p, true, budget);
    } else if (HEADER_EXT.has(extname(n))) {
      addFile(tree, p);
      budget.left--;
    }
  }
}

/** Every file of a tree, by path. */
function files(tree: Tree, prefix = ''): Map<string, string | Uint8Array> {
  const out = new Map<string, string | Uint8Array>();
  for (const [k, v] of Object.entries(tree)) {
    const p = prefix === '' ? k : `${prefix}/${k}`;
    if (typeof v === 'string' || v instanceof Uint8Array) out.set(p, v);
    else for (const [q, w] of files(v, p)) out.set(q, w);
  }
  return out;
}

function sameBytes(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const x = typeof a === 'string' ? new TextEncoder().encode(a) : a;
  const y = typeof b === 'string' ? new TextEncoder().encode(b) : b;
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function loadClang(): Promise<RunClang> {
  const mod = (await import('@yowasp/clang')) as unknown as { runClang: RunClang };
  return mod.runClang;
}

export interface CcIo {
  out(s: string): void;
  err(s: string): void;
}

/** Write ioemu's headers under `dir`. */
export function writeHeaders(dir: string): number {
  let n = 0;
  for (const [p, text] of Object.entries(ioemuHeaders())) {
    const target = join(dir, p);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    n++;
  }
  return n;
}

export async function cmdCc(args: string[], io: CcIo, runClang?: RunClang): Promise<number> {
  if (args.length === 0) throw new UsageError('cc needs clang arguments (see "ioemu cc --help")');
  if (args.includes('-h') || args.includes('--help')) return io.out(CC_HELP), 0;
  const h = args.indexOf('--headers');
  if (h >= 0) {
    const dir = args[h + 1];
    if (dir === undefined) throw new UsageError('--headers needs a directory');
    io.err(`ioemu cc: ${writeHeaders(dir)} headers written under ${dir}\n`);
    return 0;
  }
  const tree: Tree = {};
  const mapped: string[] = [];
  const sources: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_OPTS.has(a)) {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      if (a === '-I' || a === '-isystem' || a === '-iquote' || a === '-idirafter') addHeaders(tree, v, true);
      if (a === '-include' && existsSync(v)) addFile(tree, v);
      mapped.push(a, PATH_OPTS.has(a) ? inTree(v) : v);
      continue;
    }
    const joined = /^(-I|-o|-L|-iquote|-isystem)(.+)$/.exec(a);
    if (joined !== null) {
      if (joined[1] !== '-o' && joined[1] !== '-L') addHeaders(tree, joined[2]!, true);
      mapped.push(joined[1]! + inTree(joined[2]!));
      continue;
    }
    if (!a.startsWith('-') && existsSync(a) && statSync(a).isFile()) {
      addFile(tree, a);
      addHeaders(tree, dirname(resolve(a)), false);
      sources.push(a);
      mapped.push(inTree(a));
      continue;
    }
    mapped.push(a);
  }
  if (sources.length === 0) throw new UsageError('cc: no input file (give a .c file that exists)');
  if (!mapped.includes('-o') && !mapped.some((m) => m.startsWith('-o')) && !mapped.includes('-c')) mapped.push('-o', inTree('a.out'));
  const before = files(tree);
  const r = await compile(runClang ?? (await loadClang()), mapped, tree);
  if (r.log !== '') io.err(r.log.split('host/').join('/'));
  if (!r.ok) return 1;
  // Whatever clang wrote under host/ goes back to where the user named it.
  for (const [p, content] of files(r.files)) {
    if (!p.startsWith('host/')) continue;
    const old = before.get(p);
    if (old !== undefined && sameBytes(old, content)) continue;
    const target = p.slice('host'.length);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  return 0;
}
