/**
 * Every TypeScript block of docs/writing-a-device.md names the example file
 * it comes from on its first line (`// examples/x/y.ts`, whole file, or
 * `// examples/x/y.ts (excerpt)`) and must stand in that file as written,
 * with `'ioemu'` for the public entry's relative path. The files are
 * type-checked by npm test and run by the example tests, so every snippet
 * of the guide compiles and works.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The ```ts blocks of a Markdown text. */
export function tsBlocks(md: string): string[] {
  return [...md.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** Problems with the guide's blocks: a block that names no file, or is not in the file it names. */
export function snippetProblems(md: string, readFile: (path: string) => string | undefined): string[] {
  const out: string[] = [];
  for (const [i, block] of tsBlocks(md).entries()) {
    const first = block.split('\n', 1)[0]!;
    const m = /^\/\/ (examples\/[\w./-]+\.ts)( \(excerpt\))?$/.exec(first);
    if (m === null) {
      out.push(`block ${i + 1} does not name its file on its first line: ${first}`);
      continue;
    }
    const path = m[1]!;
    const source = readFile(path);
    if (source === undefined) {
      out.push(`block ${i + 1}: ${path} does not exist`);
      continue;
    }
    const entry = relative(dirname(path), 'src/index.ts');
    const body = block.slice(first.length + 1).replaceAll("from 'ioemu'", `from '${entry}'`);
    const ok = m[2] === undefined ? source === body : source.includes(body);
    if (!ok) out.push(`block ${i + 1} is not ${m[2] === undefined ? 'the whole of' : 'a piece of'} ${path} as written; update the guide or the file`);
  }
  return out;
}

t.test('every block of the guide stands in the example file it names', async (t) => {
  const md = readFileSync(join(ROOT, 'docs', 'writing-a-device.md'), 'utf8');
  t.ok(tsBlocks(md).length >= 8, `${tsBlocks(md).length} blocks`);
  const read = (p: string) => {
    try {
      return readFileSync(join(ROOT, p), 'utf8');
    } catch {
      return undefined;
    }
  };
  const problems = snippetProblems(md, read);
  t.same(problems, [], problems.join('\n'));
});

t.test('the check catches a block that drifted from its file, and one that names none', async (t) => {
  const files: Record<string, string> = { 'examples/a/b.ts': "import { X } from '../../src/index.ts';\nconst y = 1;\n" };
  const md = "```ts\n// examples/a/b.ts\nimport { X } from 'ioemu';\nconst y = 1;\n```\n```ts\n// examples/a/b.ts (excerpt)\nconst y = 2;\n```\n```ts\nconst z = 3;\n```\n";
  t.same(snippetProblems(md, (p) => files[p]), [
    'block 2 is not a piece of examples/a/b.ts as written; update the guide or the file',
    'block 3 does not name its file on its first line: const z = 3;',
  ]);
});
