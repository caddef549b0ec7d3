/**
 * A campaign worker as one JavaScript module, built with esbuild from the
 * worker loop and the package's own scenario module, for scenarios of this
 * package (the built-in campaign runs and SCENARIOS).
 *
 * Why: a worker started through tsx loads and compiles some 220 TypeScript
 * modules for itself, about 1.9 s of CPU before its first run (on its
 * thread, on the process's one loader-hooks thread, on V8's background
 * threads), so on 2 cores two such workers were slower than one. A bundle
 * is built once per process (about 0.3 s) and a worker starts from it in
 * about 0.15 s of CPU. The bundle holds the only copy of the emulator in
 * its worker, so nothing is loaded twice; modules outside the package
 * (a user's scenario) keep the tsx worker, which imports them as they are.
 *
 * Each module keeps its own `import.meta.url` (inlined per file as it is
 * bundled), and stack traces name the TypeScript sources (an inline source
 * map, which the worker's bootstrap turns on before loading the bundle), so
 * results read as with tsx. The bundle is a file in the system's temporary
 * folder named by hashes of the module and of its text: the same sources
 * reuse it, and a new bundle of a module removes that module's older ones
 * once they have gone a day unused.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ScenarioRef } from '../../tools/campaign/types.ts';

/** The package's root folder URL (this file is cli/campaign/worker-bundle.ts). */
const ROOT = new URL('../../', import.meta.url).href;

const built = new Map<string, Promise<URL | undefined>>();
/** A module's older bundle unused this long is removed when a new one is written. */
const STALE_MS = 24 * 3600 * 1000;

/**
 * The file URL of the bundled worker for `scenario`'s module, or undefined
 * when the module is not one of this package's or esbuild is not there
 * (the runner then starts tsx workers).
 */
export function bundledWorker(scenario: ScenarioRef): Promise<URL | undefined> {
  const module = scenario.module.startsWith('file:') ? scenario.module : pathToFileURL(scenario.module).href;
  if (!module.startsWith(ROOT) || module.includes('/node_modules/') || !module.endsWith('.ts')) return Promise.resolve(undefined);
  let p = built.get(scenario.module);
  if (p === undefined) {
    p = build(scenario.module, module).catch(() => undefined);
    built.set(scenario.module, p);
  }
  return p;
}

async function build(key: string, moduleUrl: string): Promise<URL | undefined> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return undefined;
  }
  const rootDir = fileURLToPath(ROOT);
  const loop = fileURLToPath(new URL('./worker-loop.ts', import.meta.url));
  const entry = [
    `import { serveJobs } from ${JSON.stringify(loop)};`,
    `import * as scenario from ${JSON.stringify(fileURLToPath(moduleUrl))};`,
    `serveJobs(new Map([[${JSON.stringify(key)}, scenario]]));`,
  ].join('\n');
  const r = await esbuild.build({
    stdin: { contents: entry, resolveDir: rootDir, sourcefile: 'campaign-worker-entry.ts', loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    sourcemap: 'inline',
    // Stack traces need positions only (the sources are on disk): a third of the size.
    sourcesContent: false,
    // Source map paths as file URLs, so stack frames name the files as tsx's do.
    sourceRoot: ROOT,
    absWorkingDir: rootDir,
    logLevel: 'silent',
    // CommonJS dependencies bundled into an ES module still call require() for Node's own modules.
    banner: { js: `import { createRequire as __ioemuRequire } from 'node:module'; const require = __ioemuRequire(${JSON.stringify(moduleUrl)});` },
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(b) {
          // Every module of the package sees its own URL, not the bundle's.
          b.onLoad({ filter: /\.ts$/ }, async (args) => {
            const text = await readFile(args.path, 'utf8');
            if (!text.includes('import.meta.url')) return undefined;
            return { contents: text.replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
          });
        },
      },
    ],
  });
  const code = r.outputFiles[0]!.text;
  const dir = tmpdir();
  const prefix = `ioemu-campaign-worker-${hash(moduleUrl).slice(0, 8)}-`;
  const name = `${prefix}${hash(code).slice(0, 16)}.mjs`;
  const file = join(dir, name);
  if (existsSync(file)) {
    // In use again: it is not stale.
    const now = new Date();
    await utimes(file, now, now);
  } else {
    // Written beside and renamed into place, so a campaign starting at the same moment never reads half a file.
    const part = `${file}.${process.pid}.part`;
    await writeFile(part, code);
    await rename(part, file);
    // The same module's bundles of older sources, unused for a day: a campaign still running on one may start a worker from it.
    for (const other of await readdir(dir)) {
      if (!other.startsWith(prefix) || !other.endsWith('.mjs') || other === name) continue;
      const at = join(dir, other);
      const st = await stat(at).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > STALE_MS) await rm(at, { force: true });
    }
  }
  return pathToFileURL(file);
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
