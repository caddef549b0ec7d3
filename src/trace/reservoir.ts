import { Prng } from '../sim/prng.ts';

/**
 * Bounded statistics of a stream of numbers (latencies, service times): the
 * exact count, sum, minimum and maximum, and a uniform sample of at most
 * `capacity` values (reservoir sampling, Vitter's Algorithm R, from a fixed
 * seed so a run stays reproducible). While no more than `capacity` values
 * were added, the sample is every value in the order added; after that its
 * memory stays constant however long the run, and quantiles taken from it
 * are estimates.
 */
export class Reservoir {
  readonly capacity: number;
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private readonly values: number[] = [];
  private readonly prng: Prng;

  constructor(capacity = 10_000, seed = 0x5eed) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`bad reservoir capacity ${capacity}`);
    this.capacity = capacity;
    this.prng = new Prng(seed);
  }

  add(x: number): void {
    this.count++;
    this.sum += x;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
    if (this.values.length < this.capacity) {
      this.values.push(x);
      return;
    }
    // Keep the new value with probability capacity/count, in place of a uniformly chosen one.
    const j = this.prng.int(0, this.count - 1);
    if (j < this.capacity) this.values[j] = x;
  }

  /** Mean of every value added (exact), 0 when none. */
  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** The sample (every value while count <= capacity), a copy. */
  get sample(): number[] {
    return this.values.slice();
  }

  /** True when the sample holds every value added. */
  get exact(): boolean {
    return this.count <= this.capacity;
  }

  clear(): void {
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
    this.values.length = 0;
  }
}
