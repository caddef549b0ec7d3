import type { FaultInjector } from '../fault/injector.ts';
import type { Counters } from '../trace/counters.ts';
import type { Tracer } from '../trace/tracer.ts';
import type { Prng } from './prng.ts';
import type { Scheduler } from './scheduler.ts';

/** What a model needs from its machine: virtual time, randomness, tracing, counters and injection points. */
export interface SimContext {
  readonly scheduler: Scheduler;
  readonly prng: Prng;
  readonly tracer: Tracer;
  readonly counters: Counters;
  readonly faults: FaultInjector;
}
