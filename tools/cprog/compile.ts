/**
 * What `ioemu cc` hands clang (browser-safe: the caller brings clang itself,
 * e.g. @yowasp/clang's runClang, and the files): the target, the generated
 * uapi and device headers, the shim, and the flags that lay the program's
 * memory out for a process (stack first, so the low 64 KiB below
 * mmap_min_addr hold only the bottom of the stack).
 */
import { COMPAT_H, SHIM_C, SHIM_WRAPPED, SYS_VFS_H } from './shim.ts';
import { uapiHeaders } from './uapi-headers.ts';
import { deviceHeaders } from './device-headers.ts';

/** A directory tree of files, as @yowasp/clang takes and returns it. */
export interface Tree {
  [name: string]: Tree | string | Uint8Array;
}

/** Where ioemu's own files sit in the tree clang sees. */
export const IOEMU_DIR = 'ioemu-cc';
export const INCLUDE_DIR = `${IOEMU_DIR}/include`;
export const SHIM_PATH = `${IOEMU_DIR}/shim.c`;
/** The process's stack: 1 MiB at the bottom of memory (wasm-ld --stack-first). */
export const STACK_BYTES = 2 ** 20;

/** Every header a program may include from ioemu, by include path. */
export function ioemuHeaders(): Record<string, string> {
  return { ...uapiHeaders(), ...deviceHeaders(), 'ioemu/compat.h': COMPAT_H, 'sys/vfs.h': SYS_VFS_H };
}

/** Put `content` at a slash-separated path of `tree`. */
export function putFile(tree: Tree, path: string, content: string | Uint8Array): void {
  const parts = path.split('/').filter((p) => p !== '');
  let dir = tree;
  for (const p of parts.slice(0, -1)) {
    const next = dir[p];
    if (next === undefined) dir = dir[p] = {};
    else if (typeof next === 'object' && !(next instanceof Uint8Array)) dir = next;
    else throw new Error(`${path}: ${p} is a file`);
  }
  dir[parts[parts.length - 1]!] = content;
}

/** The file at a slash-separated path of `tree`, if any. */
export function getFile(tree: Tree, path: string): string | Uint8Array | undefined {
  let node: Tree | string | Uint8Array | undefined = tree;
  for (const p of path.split('/').filter((x) => x !== '')) {
    if (node === undefined || typeof node === 'string' || node instanceof Uint8Array) return undefined;
    node = node[p];
  }
  return typeof node === 'string' || node instanceof Uint8Array ? node : undefined;
}

/** Add ioemu's headers and shim to a tree. */
export function addIoemuFiles(tree: Tree): void {
  for (const [p, text] of Object.entries(ioemuHeaders())) putFile(tree, `${INCLUDE_DIR}/${p}`, text);
  putFile(tree, SHIM_PATH, SHIM_C);
}

/** Does this clang command line stop before linking (-c, -S, -E, -M...)? */
export function compilesOnly(args: readonly string[]): boolean {
  return args.some((a) => a === '-c' || a === '-S' || a === '-E' || a === '-fsyntax-only' || a === '-M' || a === '-MM');
}

/**
 * The clang command line for the user's arguments (paths already as the tree
 * has them): wasm32-wasip1, wasi-libc's emulations C programs expect (mmap
 * and getpid declarations, signal(), clock()), ioemu's headers after the
 * user's -I directories, and when linking: the shim, the wrapped functions,
 * the stack first.
 */
export function clangArgs(userArgs: readonly string[]): string[] {
  const args = [
    'clang',
    '--target=wasm32-wasip1',
    '-D__ioemu__=1',
    '-D_WASI_EMULATED_MMAN',
    '-D_WASI_EMULATED_SIGNAL',
    '-D_WASI_EMULATED_PROCESS_CLOCKS',
    '-D_WASI_EMULATED_GETPID',
    '-isystem',
    INCLUDE_DIR,
    '-include',
    'ioemu/compat.h',
    ...userArgs,
  ];
  if (compilesOnly(userArgs)) return args;
  return [
    ...args,
    SHIM_PATH,
    '-lwasi-emulated-signal',
    '-lwasi-emulated-process-clocks',
    '-Wl,--stack-first',
    `-Wl,-z,stack-size=${STACK_BYTES}`,
    `-Wl,${SHIM_WRAPPED.map((f) => `--wrap=${f}`).join(',')}`,
  ];
}

/** The signature of @yowasp/clang's runClang (files in, files out; throws with exit code on failure). */
export type RunClang = (args: string[] | null, files: Tree, options?: { stdout?: ((b: Uint8Array | null) => void) | null; stderr?: ((b: Uint8Array | null) => void) | null; fetchProgress?: () => void }) => Promise<Tree | undefined> | Tree | undefined;

export interface CompileResult {
  ok: boolean;
  /** The tree after clang ran (outputs included), when it succeeded. */
  files: Tree;
  /** clang's diagnostics. */
  log: string;
}

/**
 * Compile and link with ioemu's files: `userArgs` name files of `files` by
 * their tree paths. Diagnostics are collected, never thrown.
 */
export async function compile(runClang: RunClang, userArgs: readonly string[], files: Tree): Promise<CompileResult> {
  const tree: Tree = { ...files };
  addIoemuFiles(tree);
  let log = '';
  const dec = new TextDecoder();
  const sink = (b: Uint8Array | null) => {
    if (b !== null) log += dec.decode(b, { stream: true });
  };
  try {
    // Fetch the toolchain's resources first, quietly (runClang's inner steps would print progress lines).
    await runClang(null, {}, { fetchProgress: () => {} });
    const out = await runClang(clangArgs(userArgs), tree, { stdout: sink, stderr: sink, fetchProgress: () => {} });
    return { ok: true, files: out ?? tree, log };
  } catch (e) {
    const err = e as { code?: number; message?: string };
    if (typeof err.code === 'number') return { ok: false, files: tree, log };
    throw e;
  }
}
