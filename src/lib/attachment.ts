/**
 * State that a module keeps about objects it does not own (a host's VFIO
 * module, a device file's iommufd binding, a machine's invariant state),
 * stored on the object itself under a private symbol: it lives and dies
 * with the object, as a WeakMap entry would, and nothing else sees it (the
 * property is not enumerable, so spreads, Object.keys and JSON leave it
 * out).
 *
 * Why not a module-level WeakMap: the map lives as long as the process, so
 * it is soon in the old generation, and V8's young-generation collector
 * keeps the value of each entry of an old WeakMap alive while the entry's
 * key is still young, even when the key is dead. A VfioModule holds its
 * host, so one such entry held a whole dropped machine until the next full
 * collection (src/lib/young.ts says what that cost).
 */
export class Attachment<K extends object, V> {
  private readonly key: symbol;

  constructor(what: string) {
    this.key = Symbol(what);
  }

  get(o: K): V | undefined {
    return (o as unknown as Record<symbol, V | undefined>)[this.key];
  }

  has(o: K): boolean {
    return this.get(o) !== undefined;
  }

  /** Attach `value` to `o`, replacing what was attached; returns `value`. */
  set(o: K, value: V): V {
    // Defined once per object, then assigned: never deleted (`delete` would turn the object into a slow dictionary).
    if (Object.prototype.hasOwnProperty.call(o, this.key)) (o as unknown as Record<symbol, V | undefined>)[this.key] = value;
    else Object.defineProperty(o, this.key, { value, writable: true, enumerable: false, configurable: false });
    return value;
  }

  /** Detach what is attached to `o`, if anything. */
  clear(o: K): void {
    if (Object.prototype.hasOwnProperty.call(o, this.key)) (o as unknown as Record<symbol, V | undefined>)[this.key] = undefined;
  }
}
