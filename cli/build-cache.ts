/**
 * Compile C (for tests and benchmarks) with the toolchain npm ci installed, once per content:
 * modules are cached under the OS temp directory by a hash of the sources,
 * the arguments and everything ioemu adds (headers, shim), so a test run
 * compiles a program only when something it depends on changed.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { clangArgs, compile, getFile, ioemuHeaders, type RunClang } from '../tools/cprog/compile.ts';
import { SHIM_C } from '../tools/cprog/shim.ts';

const CACHE = join(tmpdir(), 'ioemu-cprog-cache');

let clang: RunClang | undefined;
async function runClang(): Promise<RunClang> {
  clang ??= ((await import('@yowasp/clang')) as unknown as { runClang: RunClang }).runClang;
  return clang;
}

export interface Built {
  wasm: Uint8Array;
  /** Milliseconds clang took (0 from the cache). */
  ms: number;
}

/**
 * Build `files` (name -> C text; the .c ones are compiled) with extra clang
 * arguments. Throws with clang's diagnostics when it fails.
 */
export async function buildC(files: Record<string, string>, args: readonly string[] = ['-O2', '-Wall']): Promise<Built> {
  const h = createHash('sha256');
  h.update(JSON.stringify([files, args, clangArgs(args), ioemuHeaders(), SHIM_C]));
  const key = h.digest('hex').slice(0, 32);
  const path = join(CACHE, `${key}.wasm`);
  if (existsSync(path)) return { wasm: new Uint8Array(readFileSync(path)), ms: 0 };
  const t0 = Date.now();
  const sources = Object.keys(files).filter((f) => f.endsWith('.c'));
  const r = await compile(await runClang(), [...args, '-o', 'out.wasm', ...sources], { ...files });
  const wasm = r.ok ? getFile(r.files, 'out.wasm') : undefined;
  if (!(wasm instanceof Uint8Array)) throw new Error(`clang failed for ${sources.join(' ')}:\n${r.log}`);
  mkdirSync(CACHE, { recursive: true });
  // Write then rename: test files compiling the same program in parallel never read half a module.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, wasm);
  renameSync(tmp, path);
  return { wasm, ms: Date.now() - t0 };
}

/** Build files from disk: each path's text under its base name (headers beside them included by the caller). */
export async function buildFiles(paths: readonly string[], args?: readonly string[]): Promise<Built> {
  const files: Record<string, string> = {};
  for (const p of paths) files[basename(p)] = readFileSync(p, 'utf8');
  return buildC(files, args);
}
