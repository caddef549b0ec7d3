/**
 * Builds the playground (playground/: a static page that runs ioemu in the
 * browser) with esbuild, from the same sources as the CLI, without network,
 * and serves it on this machine: `npm run playground` (then open the URL it
 * prints). `--build DIR` only writes the files; `--port N` picks the port.
 */
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = join(ROOT, 'playground');

/** Bundle the page's script and the worker, copy the HTML and CSS into `out`. */
export async function buildPlayground(out: string): Promise<void> {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { playground: join(SOURCES, 'main.ts'), worker: join(SOURCES, 'worker.ts') },
    outdir: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'playground.css']) copyFileSync(join(SOURCES, f), join(out, f));
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };

/** Serve the files of `dir` on 127.0.0.1:`port` (0: any free port); resolves once listening. */
export function servePlayground(dir: string, port: number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path.endsWith('/') ? join(path, 'index.html') : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(readFileSync(file));
  });
  return new Promise((ok) => {
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : port}/` });
    });
  });
}

async function cli(args: string[]): Promise<void> {
  const at = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = resolve(at('--build') ?? join(ROOT, 'playground', 'dist'));
  await buildPlayground(out);
  if (args.includes('--build')) {
    process.stdout.write(`playground built in ${out}\n`);
    return;
  }
  const { url } = await servePlayground(out, Number(at('--port') ?? 8021));
  process.stdout.write(`ioemu playground: ${url} (Ctrl-C stops it)\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`playground: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
