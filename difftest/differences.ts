/**
 * docs/linux-differences.md, read as data: each entry (a "### id" heading)
 * names the lines it explains with regular expressions, one per side:
 *
 *   ### vtd-legacy-vs-scalable
 *   - programs: `^edu-`            (optional: which corpus runs; default all)
 *   - linux: `cap_reg=0x00d2008c22260286`
 *   - ioemu: `cap_reg=0x11d2078c22380e06`
 *   - reason: ...
 *
 * An entry with both patterns explains a differing line on one side only when
 * the same hunk of the diff has a line on the other side matching the other
 * pattern (a replaced line); when both patterns have a group named `same`,
 * that part must be the same text on both lines. An entry with one pattern
 * explains a line that only that side prints.
 */
import { readFileSync } from 'node:fs';
import type { Hunk } from './diff.ts';

export interface Difference {
  id: string;
  programs?: RegExp;
  linux?: RegExp;
  ioemu?: RegExp;
  reason: string;
}

export function parseDifferences(text: string, file = 'docs/linux-differences.md'): Difference[] {
  const out: Difference[] = [];
  let cur: Partial<Difference> & { id?: string } = {};
  let at = 0;
  const flush = () => {
    if (cur.id === undefined) return;
    if (cur.linux === undefined && cur.ioemu === undefined) throw new Error(`${file}:${at}: entry ${cur.id} has neither a linux nor an ioemu pattern`);
    if (!cur.reason) throw new Error(`${file}:${at}: entry ${cur.id} has no reason`);
    out.push(cur as Difference);
  };
  text.split('\n').forEach((line, n) => {
    const h = /^### +([a-z0-9][a-z0-9-]*)\s*$/.exec(line);
    if (h) {
      flush();
      cur = { id: h[1]! };
      at = n + 1;
      return;
    }
    if (cur.id === undefined) return;
    const f = /^- (programs|linux|ioemu|reason): (.*)$/.exec(line);
    if (!f) return;
    const [, key, value] = f;
    if (key === 'reason') {
      cur.reason = value!.trim();
      return;
    }
    const re = /^`(.+)`$/.exec(value!.trim());
    if (!re) throw new Error(`${file}:${n + 1}: ${key} must be one regular expression in backquotes`);
    (cur as Record<string, RegExp>)[key!] = new RegExp(re[1]!);
  });
  flush();
  const ids = new Set<string>();
  for (const d of out) {
    if (ids.has(d.id)) throw new Error(`${file}: entry ${d.id} twice`);
    ids.add(d.id);
  }
  return out;
}

export function loadDifferences(path: string): Difference[] {
  return parseDifferences(readFileSync(path, 'utf8'), path);
}

export interface Verdict {
  side: 'linux' | 'ioemu';
  line: string;
  /** The entry that explains it, or undefined: unexplained. */
  by?: string;
}

/** Each differing line of a hunk, with the entry that explains it. */
export function explain(h: Hunk, program: string, diffs: readonly Difference[]): Verdict[] {
  const usable = diffs.filter((d) => d.programs === undefined || d.programs.test(program));
  const verdict = (side: 'linux' | 'ioemu', line: string): Verdict => {
    const other = side === 'linux' ? h.ioemu : h.linux;
    const d = usable.find((d) => {
      const mine = side === 'linux' ? d.linux : d.ioemu;
      const theirs = side === 'linux' ? d.ioemu : d.linux;
      const m = mine?.exec(line);
      if (!m) return false;
      if (theirs === undefined) return true;
      return other.some((o) => {
        const n = theirs.exec(o);
        return n !== null && n.groups?.same === m.groups?.same;
      });
    });
    return d ? { side, line, by: d.id } : { side, line };
  };
  return [...h.linux.map((l) => verdict('linux', l)), ...h.ioemu.map((l) => verdict('ioemu', l))];
}
