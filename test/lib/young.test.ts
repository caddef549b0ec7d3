/**
 * Issue 22: a dropped machine must not outlive young-generation collections
 * (src/lib/young.ts). In a child process, nothing a machine makes while it
 * is built and used is allocated outside the young generation, and none of
 * its objects carries getters of its own; in the sources and the examples,
 * no function literal is assigned straight to a property, and no
 * module-level WeakMap is keyed by what a machine makes. And Attachment,
 * which replaces those WeakMaps, behaves as one.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Attachment } from '../../src/lib/attachment.ts';
import { young } from '../../src/lib/young.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const probe = fileURLToPath(new URL('./fixtures/young-probe.ts', import.meta.url));

t.test('a machine built and used is young: no pretenured closure, no getters of its own', async (t) => {
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--import', 'tsx', probe],
    { encoding: 'utf8', maxBuffer: 16 << 20 },
  );
  const results = JSON.parse(out.trim().split('\n').pop()!) as { kind: string; objects: number; old: string[]; ownGetters: string[] }[];
  t.equal(results.length, 2);
  for (const r of results) {
    t.ok(r.objects > 1000, `${r.kind}: the walk reached the machine (${r.objects} objects of its own)`);
    t.same(r.old, [], `${r.kind}: nothing of it is in the old generation`);
    t.same(r.ownGetters, [], `${r.kind}: no object of it has getters of its own`);
  }
});

/** The TypeScript sources that machines and campaign runs execute, and the examples users copy. */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name !== 'node_modules') walk(p);
      } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const dir of ['src', 'devices', 'iommu', 'machines', 'tools', 'cli', 'examples', 'scenarios']) walk(join(ROOT, dir));
  return out;
}

/** The text without comments (a line comment after `:` is kept: URLs in strings). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** A function literal assigned straight to a property or element (`a.b = () =>`, `a[i] ??= function`). */
const ASSIGNED_LITERAL = /(?:[\w$)]\s*\.\s*[\w$]+|\])\s*(?:\?\?|\|\||&&)?=(?![=>])\s*(?:async\s+)?(?:function\b|\([^()]*\)\s*(?::\s*[^=;{}]+)?=>|[\w$]+\s*=>)/g;

t.test('no function literal is assigned straight to a property: young() wraps it', async (t) => {
  const files = sources();
  t.ok(files.length > 200, `${files.length} files`);
  const found: string[] = [];
  for (const f of files) {
    const text = code(readFileSync(f, 'utf8'));
    for (const m of text.matchAll(ASSIGNED_LITERAL)) found.push(`${relative(ROOT, f)}:${text.slice(0, m.index).split('\n').length}: ${m[0]}`);
  }
  t.same(found, []);
  // The pattern finds what it is for.
  for (const bad of ['p.onInject = (pt, a) => {', 'this.write = (data: Uint8Array) => q(data)', 'job.onDone ??= (g) => x(g)', 'h[i] = function () {', 'o.f = async () => 1', 'o.g = x => x']) {
    t.ok(code(bad).match(ASSIGNED_LITERAL), `caught: ${bad}`);
  }
  for (const good of ['p.onInject = young((pt, a) => {', 'const f = () => 1;', 'if (a.b === (c) => d) {}', 'x.y = f(() => 1)', '{ read: (o) => o }']) {
    t.notOk(code(good).match(ASSIGNED_LITERAL), `left alone: ${good}`);
  }
});

/** Module-level WeakMaps whose keys live as long as the process (tables made once), so no machine's object is a key. */
const LONG_LIVED_KEYS = new Set([
  'src/hw/registers.ts: resolvedCache', // keyed by register field tables, made once per module
  'src/hw/register-file.ts: shapes', // keyed by register tables and definition lists, made once per device type
]);

t.test('no module-level WeakMap is keyed by what a machine makes: an Attachment holds that state', async (t) => {
  const found: string[] = [];
  for (const f of sources()) {
    const text = code(readFileSync(f, 'utf8'));
    for (const m of text.matchAll(/^(?:export\s+)?(?:const|let|var)\s+([\w$]+)\s*(?::[^=]+)?=\s*new WeakMap\b/gm)) found.push(`${relative(ROOT, f)}: ${m[1]}`);
  }
  t.same(found.filter((k) => !LONG_LIVED_KEYS.has(k)), []);
  t.same(found.filter((k) => LONG_LIVED_KEYS.has(k)).sort(), [...LONG_LIVED_KEYS].sort(), 'the allowed ones are still there (else drop them from the list)');
});

t.test('Attachment: state on the object, invisible to enumeration and copies', async (t) => {
  const a = new Attachment<object, { n: number }>('test state');
  const b = new Attachment<object, string>('other state');
  const o: Record<string, unknown> = { x: 1 };
  t.equal(a.get(o), undefined);
  t.notOk(a.has(o));
  const v = { n: 1 };
  t.equal(a.set(o, v), v, 'set returns the value');
  t.equal(a.get(o), v);
  t.ok(a.has(o));
  b.set(o, 'b');
  t.equal(b.get(o), 'b', 'two attachments do not meet');
  t.equal(a.get(o), v);
  t.same(Object.keys(o), ['x'], 'not enumerable');
  t.equal(JSON.stringify(o), '{"x":1}');
  t.equal(a.get({ ...o }), undefined, 'a spread copy does not carry it');
  const w = { n: 2 };
  a.set(o, w);
  t.equal(a.get(o), w, 'set again replaces');
  a.clear(o);
  t.equal(a.get(o), undefined);
  t.notOk(a.has(o));
  a.clear({}); // nothing attached: nothing to do
  a.set(o, v);
  t.equal(a.get(o), v, 'set after clear');
  t.equal(a.get({ x: 1 }), undefined, 'another object has nothing');
});

t.test('young is the identity', async (t) => {
  const f = (x: number) => x + 1;
  t.equal(young(f), f);
  t.equal(young(f)(1), 2);
});
