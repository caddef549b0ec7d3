/**
 * Examples are what users copy: they import only the public entry
 * (src/index.ts, the package's "." export), their own files and scenario
 * files, so everything they use is public (issue #19). This test reads every
 * example's imports and names each one that reaches into the tree.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { importsOf, ROOT, tsFiles } from './imports.ts';

const PUBLIC_ENTRY = 'src/index.ts';

/** Imports of example files that reach into the tree instead of the public entry. */
export function privateImports(list: readonly { file: string; source: string }[]): string[] {
  const bad: string[] = [];
  for (const { file, source } of list) {
    for (const im of importsOf(file, source)) {
      if (!im.spec.startsWith('.')) continue;
      const target = normalize(join(dirname(file), im.spec));
      if (target === PUBLIC_ENTRY || target.startsWith('examples/') || target.startsWith('scenarios/')) continue;
      bad.push(`${file}:${im.line}: reaches into the tree (${target}); import from ${relative(dirname(file), PUBLIC_ENTRY)} instead: ${im.text}`);
    }
  }
  return bad;
}

t.test('examples import only the public entry, their own files and scenarios', async (t) => {
  const list = tsFiles('examples').map((file) => ({ file, source: readFileSync(join(ROOT, file), 'utf8') }));
  t.ok(list.length >= 10, `read ${list.length} example files`);
  const bad = privateImports(list);
  t.same(bad, [], bad.join('\n'));
});

t.test('the check names a deep import and accepts the public entry', async (t) => {
  t.same(privateImports([{ file: 'examples/a/b.ts', source: "import { X } from '../../src/index.ts';\nimport { Y } from '../../src/pci/bar.ts';\nimport { Z } from './c.ts';" }]), [
    "examples/a/b.ts:2: reaches into the tree (src/pci/bar.ts); import from ../../src/index.ts instead: import { Y } from '../../src/pci/bar.ts';",
  ]);
});

t.test('package.json exports the public entry', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string> };
  t.equal(pkg.exports['.'], `./${PUBLIC_ENTRY}`);
});
