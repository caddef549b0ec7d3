/**
 * Run a compiled C program (a wasm32-wasi module, from `ioemu cc` or any
 * WASI toolchain) as one process of a machine: its arguments, environment
 * and stdio, its memory as the process's memory (memory.ts), its system
 * calls through WASI (wasi.ts) and the shim (syscalls.ts). Browser-safe: only
 * the global WebAssembly API. Returns the exit status: the program's own,
 * 128 + signal for a trap (abort: SIGABRT, a wild access: SIGSEGV), or
 * HANG_STATUS when it waited for something that could never happen.
 */
import { CallerError } from '../../src/errors.ts';
import type { Machine } from '../../machines/machine.ts';
import type { SpawnOptions } from '../../src/host/process.ts';
import { HANG_STATUS, Program, ProgramExit, ProgramHang, type StdioOptions, type TimeOptions } from './program.ts';
import { ROOT_FD, wasiImports, wasiStub } from './wasi.ts';
import { ioemuImports } from './syscalls.ts';

export interface ProgramOptions extends StdioOptions, TimeOptions {
  /** argv[0] (default 'prog'). */
  name?: string;
  /** argv[1..]. */
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** The process's limits and identity (host.spawn; default: Linux's 8 MiB RLIMIT_MEMLOCK, uid 1000). */
  spawn?: SpawnOptions;
}

export interface ProgramResult {
  /** Exit status as a shell reports it (0-255). */
  status: number;
  pid: number;
  /** Why the program ended if not by exit(): a trap or a hang, in words. */
  reason?: string;
  /** System calls it made. */
  calls: number;
}

/**
 * The module given cannot run here (not WebAssembly, an import nobody
 * provides, no memory, no _start): the caller's input is at fault, not ioemu
 * and not the program's own logic (`ioemu exec` exits 2).
 */
export class ProgramLoadError extends CallerError {
  override name = 'ProgramLoadError';
}

const SIGABRT = 6;
const SIGSEGV = 11;

/** Compile a module (asynchronously: browsers refuse large synchronous compiles). */
export async function loadModule(wasm: Uint8Array | WebAssembly.Module): Promise<WebAssembly.Module> {
  if (wasm instanceof WebAssembly.Module) return wasm;
  try {
    return await WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new ProgramLoadError(`not a WebAssembly module: ${(e as Error).message}`);
  }
}

/** The import object: every import the module names, or a ProgramLoadError naming the one we lack. */
function imports(module: WebAssembly.Module, prog: Program): WebAssembly.Imports {
  const wasi = wasiImports(prog, prog.machine.board.prng.fork(`cprog ${prog.pid}`));
  const ioemu = ioemuImports(prog);
  const out: Record<string, Record<string, WebAssembly.ImportValue>> = { wasi_snapshot_preview1: {}, ioemu: {} };
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') throw new ProgramLoadError(`the module imports ${imp.kind} ${imp.module}.${imp.name}; only functions are provided`);
    if (imp.module === 'wasi_snapshot_preview1') out.wasi_snapshot_preview1![imp.name] = (wasi[imp.name] ?? wasiStub(prog, imp.name)) as WebAssembly.ImportValue;
    else if (imp.module === 'ioemu' && ioemu[imp.name] !== undefined) out.ioemu![imp.name] = ioemu[imp.name] as WebAssembly.ImportValue;
    else throw new ProgramLoadError(`the module imports ${imp.module}.${imp.name}, which ioemu does not provide (build with "ioemu cc")`);
  }
  return out;
}

/** Run `wasm` as a new process of `machine` until it exits. */
export async function runProgram(machine: Machine, wasm: Uint8Array | WebAssembly.Module, opts: ProgramOptions = {}): Promise<ProgramResult> {
  const module = await loadModule(wasm);
  const process = machine.host.spawn(opts.spawn);
  const prog = new Program(machine, process, { ...(opts.stdout ? { stdout: opts.stdout } : {}), ...(opts.stderr ? { stderr: opts.stderr } : {}), ...(opts.stdin ? { stdin: opts.stdin } : {}) }, opts);
  prog.argv = [opts.name ?? 'prog', ...(opts.args ?? [])];
  prog.envp = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  try {
    const instance = await WebAssembly.instantiate(module, imports(module, prog));
    const memory = instance.exports.memory;
    const start = instance.exports._start;
    if (!(memory instanceof WebAssembly.Memory)) throw new ProgramLoadError('the module exports no memory');
    if (typeof start !== 'function') throw new ProgramLoadError('the module has no _start (build a command, not a library)');
    const r = prog.attach(memory);
    if (r < 0) throw new ProgramLoadError(`mapping the program's memory into its process failed (${r})`);
    // wasi-libc's preopen: the root directory, the process's fd 3.
    const root = process.open('/');
    if (root !== ROOT_FD) throw new ProgramLoadError(`the root directory opened as fd ${root}, not ${ROOT_FD}`);
    prog.opened(root, { nonblock: false });
    const ended = runStart(start as () => void);
    return { status: ended.status, pid: process.pid, calls: prog.calls, ...(ended.reason !== undefined ? { reason: ended.reason } : {}) };
  } finally {
    process.exit();
    prog.memory?.detach();
  }
}

function runStart(start: () => void): { status: number; reason?: string } {
  try {
    start();
    return { status: 0 };
  } catch (e) {
    if (e instanceof ProgramExit) return { status: e.status };
    if (e instanceof ProgramHang) return { status: HANG_STATUS, reason: `hung: ${e.message}` };
    if (e instanceof WebAssembly.RuntimeError) {
      const abort = /unreachable/.test(e.message);
      return { status: 128 + (abort ? SIGABRT : SIGSEGV), reason: `${abort ? 'aborted' : 'crashed'}: ${e.message}` };
    }
    if (e instanceof RangeError && /call stack/i.test(e.message)) return { status: 128 + SIGSEGV, reason: 'crashed: stack overflow' };
    throw e;
  }
}
