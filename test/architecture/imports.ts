/** Reading the imports of the tree's TypeScript files, for the architecture tests. */
import { readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..'));

export interface Import {
  file: string;
  line: number;
  text: string;
  spec: string;
}

/** Every import and re-export of a file: static (type-only included) and dynamic with a literal specifier. */
export function importsOf(file: string, source: string): Import[] {
  const out: Import[] = [];
  const rx = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  const lines = source.split('\n');
  let offset = 0;
  const lineAt: number[] = [];
  for (const l of lines) {
    lineAt.push(offset);
    offset += l.length + 1;
  }
  for (const m of source.matchAll(rx)) {
    const spec = (m[1] ?? m[2])!;
    const pos = m.index! + m[0].indexOf(spec);
    let line = lineAt.findIndex((start, i) => pos >= start && (i + 1 === lineAt.length || pos < lineAt[i + 1]!));
    out.push({ file, line: line + 1, text: lines[line]!.trim(), spec });
  }
  return out;
}


/** The .ts files below a folder of the repository, as repository-relative paths. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts)$/.test(e.name)) out.push(p);
  }
  return out;
}
