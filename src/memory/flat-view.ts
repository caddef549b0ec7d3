import type { MemoryRegion } from './memory-region.ts';

/** One piece of the flattened memory map: [start, end) served by a leaf region. */
export interface FlatRange {
  start: number;
  end: number;
  /** A 'ram' or 'mmio' region. */
  region: MemoryRegion;
  /** Offset inside `region` that `start` corresponds to. */
  offset: number;
}

/**
 * Render a region tree into a sorted list of non-overlapping ranges (QEMU's
 * FlatView). Regions are visited highest priority first; each fills only the
 * gaps left by those before it, which is what makes overlap and priority work.
 */
export function flatten(root: MemoryRegion): FlatRange[] {
  const out: FlatRange[] = [];
  render(root, 0, 0, root.size, out, 0);
  return out;
}

const MAX_DEPTH = 64;

function render(
  mr: MemoryRegion,
  base: number,
  clipStart: number,
  clipEnd: number,
  out: FlatRange[],
  depth: number,
): void {
  // An alias loop is a configuration bug; stop rather than recurse forever.
  if (!mr.enabled || depth > MAX_DEPTH) return;
  const start = Math.max(base, clipStart);
  const end = Math.min(base + mr.size, clipEnd);
  if (start >= end) return;
  switch (mr.kind) {
    case 'alias':
      render(mr.aliasOf!, base - mr.aliasOffset, start, end, out, depth + 1);
      return;
    case 'container':
      for (const s of mr.subregions()) render(s.region, base + s.addr, start, end, out, depth + 1);
      return;
    default:
      fillGaps(out, start, end, mr, base);
  }
}

/** Insert the parts of [start, end) that `out` does not cover yet, keeping it sorted. */
function fillGaps(out: FlatRange[], start: number, end: number, region: MemoryRegion, base: number): void {
  let i = firstEndingAfter(out, start);
  let cursor = start;
  while (cursor < end) {
    const next = out[i];
    if (next === undefined || next.start >= end) {
      out.splice(i, 0, { start: cursor, end, region, offset: cursor - base });
      return;
    }
    if (next.start > cursor) {
      out.splice(i, 0, { start: cursor, end: next.start, region, offset: cursor - base });
      i++;
    }
    cursor = Math.max(cursor, out[i]!.end);
    i++;
  }
}

/** Index of the first range whose end is beyond `addr`. */
function firstEndingAfter(ranges: FlatRange[], addr: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The range containing `addr`, or undefined. */
export function findRange(ranges: FlatRange[], addr: number): FlatRange | undefined {
  const r = ranges[firstEndingAfter(ranges, addr)];
  return r !== undefined && r.start <= addr ? r : undefined;
}
