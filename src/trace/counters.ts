/** A named count that hot paths bump with `c.value++`, no lookup. */
export interface Counter {
  readonly name: string;
  value: number;
}

/**
 * Named counters of one machine, grouped by dotted names
 * ("smmuv3.iotlb.hit", "0000:00:01.0.atc.miss").
 */
export class Counters {
  private readonly byName = new Map<string, Counter>();

  counter(name: string): Counter {
    let c = this.byName.get(name);
    if (c === undefined) {
      c = { name, value: 0 };
      this.byName.set(name, c);
    }
    return c;
  }

  /** How many counters there are. */
  get size(): number {
    return this.byName.size;
  }

  /** Every counter, in creation order (a sampler's cheap walk; snapshot() sorts). */
  all(): IterableIterator<Readonly<Counter>> {
    return this.byName.values();
  }

  get(name: string): number {
    return this.byName.get(name)?.value ?? 0;
  }

  /** All counters whose name starts with `prefix`, sorted by name. */
  snapshot(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of [...this.byName.keys()].sort()) {
      if (name.startsWith(prefix)) out[name] = this.byName.get(name)!.value;
    }
    return out;
  }

  reset(prefix = ''): void {
    for (const c of this.byName.values()) if (c.name.startsWith(prefix)) c.value = 0;
  }
}
