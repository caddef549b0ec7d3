/**
 * A line diff (longest common subsequence): the hunks where two outputs
 * differ, each with the lines only the real kernel printed and the lines
 * only ioemu printed, in order.
 */
export interface Hunk {
  /** 1-based line numbers where the hunk starts on each side. */
  linuxAt: number;
  ioemuAt: number;
  linux: string[];
  ioemu: string[];
}

export function diffLines(a: readonly string[], b: readonly string[]): Hunk[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the LCS of a[i..] and b[j..]
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= n; i++) lcs.push(new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const hunks: Hunk[] = [];
  let cur: Hunk | undefined;
  let i = 0;
  let j = 0;
  const open = (): Hunk => (cur ??= { linuxAt: i + 1, ioemuAt: j + 1, linux: [], ioemu: [] });
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      if (cur) hunks.push(cur), (cur = undefined);
      i++, j++;
    } else if (j >= m || (i < n && lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      open().linux.push(a[i++]!);
    } else {
      open().ioemu.push(b[j++]!);
    }
  }
  if (cur) hunks.push(cur);
  return hunks;
}
