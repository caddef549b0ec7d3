/**
 * `fn` itself. Wrap a function literal in it when the literal is assigned
 * straight to a property or an element (`point.onInject = young((p) => ...)`,
 * also with `??=`).
 *
 * Why: V8's parser takes a function literal on the right of such an
 * assignment for a method that lives as long as its object, and V8
 * allocates the closure in the old generation. The young-generation
 * collector (the scavenger) treats every pointer from the old generation
 * into the young one as live, so an old closure over part of a machine
 * (its `this`, a local) keeps the whole machine through every young
 * collection after the machine is dropped, until the next full collection.
 * Passed as an argument, the literal is allocated young, as the rest of
 * the machine is.
 *
 * Two other shapes hold a dropped machine the same way, and are avoided
 * for the same reason: getters in an object literal (V8 gives each such
 * literal a hidden class of its own, kept in the old generation, that
 * holds the getters: use a class with prototype getters, as EngineLink in
 * devices/dma-engine/dma-engine.ts), and module-level WeakMaps keyed by a
 * machine's objects (an old WeakMap keeps an entry's value through young
 * collections while its key is young: use an Attachment,
 * src/lib/attachment.ts).
 *
 * What it cost (docs/performance.md, "Dropped machines outlived young
 * collections"): a campaign worker builds and drops a machine every few
 * milliseconds, and about 170 KB of each (a third of what it allocates)
 * was copied by the scavenger, then promoted, then found dead by the next
 * mark-compact. test/lib/young.test.ts keeps the three shapes out.
 */
export function young<F extends (...args: never[]) => unknown>(fn: F): F {
  return fn;
}
