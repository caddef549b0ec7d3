/**
 * A virtual-time axis that collapses idle stretches. A run is bursts of
 * microseconds of work separated by long waits (a 10 ms page-request
 * timeout): on a linear axis the bursts are squashed against its ends. Here
 * every stretch with no event longer than a threshold becomes a narrow
 * break of fixed width, and the bursts share the rest of the width, each
 * drawn linearly, so each burst reads at its own scale.
 */

/** A stretch of virtual time and the horizontal span it gets. */
export interface AxisPiece {
  from: number;
  to: number;
  x0: number;
  x1: number;
}

export interface TimeAxis {
  /** The stretches drawn to scale, left to right. */
  readonly pieces: readonly AxisPiece[];
  /** The idle stretches collapsed into breaks, between pieces. */
  readonly gaps: readonly AxisPiece[];
  /** Horizontal position (0..width) of virtual time `ns`. */
  x(ns: number): number;
}

export interface TimeAxisOptions {
  /** Width a collapsed gap takes (default 36). */
  gapWidth?: number;
  /** A gap is collapsed when longer than this fraction of the whole span (default 0.05) ... */
  gapFraction?: number;
  /** ... and than this many ns (default 2000). */
  minGapNs?: number;
  /** Each piece gets at least this fraction of the width the pieces share (default 0.12). */
  minPieceFraction?: number;
}

/**
 * The axis for events at `times` (virtual ns) over [0, endNs], `width` wide.
 * With no long idle stretch it is one linear piece, as a plain axis.
 */
export function collapsedTimeAxis(times: readonly number[], endNs: number, width: number, o: TimeAxisOptions = {}): TimeAxis {
  const end = Math.max(1, endNs, ...times);
  const pts = [...new Set([0, ...times.map((t) => Math.min(Math.max(0, t), end)), end])].sort((a, b) => a - b);
  const threshold = Math.max(o.minGapNs ?? 2000, (o.gapFraction ?? 0.05) * end);
  const stretches: [number, number][] = [];
  let from = pts[0]!;
  for (let i = 1; i < pts.length; i++) {
    if (pts[i]! - pts[i - 1]! > threshold) {
      stretches.push([from, pts[i - 1]!]);
      from = pts[i]!;
    }
  }
  stretches.push([from, pts[pts.length - 1]!]);
  const gapWidth = Math.min(o.gapWidth ?? 36, width / (2 * stretches.length));
  const shared = width - gapWidth * (stretches.length - 1);
  const active = stretches.reduce((a, [f, t]) => a + (t - f), 0);
  const floor = (o.minPieceFraction ?? 0.12) * (active > 0 ? active : 1);
  const weights = stretches.map(([f, t]) => Math.max(t - f, floor));
  const total = weights.reduce((a, b) => a + b, 0);
  const pieces: AxisPiece[] = [];
  const gaps: AxisPiece[] = [];
  let x = 0;
  stretches.forEach(([f, t], i) => {
    if (i > 0) {
      gaps.push({ from: stretches[i - 1]![1], to: f, x0: x, x1: x + gapWidth });
      x += gapWidth;
    }
    const w = (shared * weights[i]!) / total;
    pieces.push({ from: f, to: t, x0: x, x1: x + w });
    x += w;
  });
  return {
    pieces,
    gaps,
    x(ns: number): number {
      for (const p of pieces) {
        // A piece with no length (one instant) puts it in the middle of its span.
        if (ns >= p.from && ns <= p.to) return p.to === p.from ? (p.x0 + p.x1) / 2 : p.x0 + ((ns - p.from) / (p.to - p.from)) * (p.x1 - p.x0);
      }
      for (const g of gaps) if (ns > g.from && ns < g.to) return g.x0 + ((ns - g.from) / (g.to - g.from)) * (g.x1 - g.x0);
      return ns < pieces[0]!.from ? 0 : width;
    },
  };
}

/**
 * Round tick values inside [from, to] at a step of 1, 2 or 5 times a power
 * of ten ns, at most `max` of them (at least the two ends when nothing round
 * fits).
 */
export function niceTicks(from: number, to: number, max: number): number[] {
  if (!(to > from) || max < 1) return [from];
  const raw = (to - from) / Math.max(1, max);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(from / step) * step; v <= to + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out.length > 0 ? out : [from, to];
}
