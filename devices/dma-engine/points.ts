import type { InjectionActionKind, InjectionPointTable } from '../../src/fault/injector.ts';

/**
 * Fault-injection points of the DMA engine (machines/points.ts lists them
 * with the other built-in ones). Hooks receive a context with at least `dev`
 * (the device's name). Each declares exactly the actions its check() site
 * carries out.
 */
export const DMA_ENGINE_INJECTION_POINTS = {
  'dma-engine.ats.completion': {
    description:
      'a Translation Completion reaching the DMA engine: drop (lost: the request times out, ATS_TIMEOUT), fail (treated as Completer Abort, unless it is one), corrupt (xor the translated addresses, bits 0-52, with xorLo/xorHi; only when it carries translations)',
    actions: ['fail', 'drop', 'corrupt'],
    corruptMask: [0xffffffff, 0x1fffff],
  },
  'dma-engine.ats.inv-completion': {
    description: 'the Invalidation Completion the DMA engine sends: drop (never sent, so the IOMMU times out) or delay (ns added)',
    actions: ['drop', 'delay'],
  },
  'dma-engine.pri.request': {
    description: 'a Page Request Message leaving the DMA engine: drop (lost on the way: the group times out)',
    actions: ['drop'],
  },
  'dma-engine.pri.response': {
    description:
      'a PRG Response reaching the DMA engine: drop, delay (ns), corrupt (xor the 9-bit PRG index with xorLo: an unexpected index), fail (turned into Response Failure, unless it is one)',
    actions: ['fail', 'drop', 'delay', 'corrupt'],
    corruptMask: [0x1ff, 0],
  },
  'dma-engine.completion-record': {
    description: 'the DMA engine writing a completion record: fail (the error register reports it instead)',
    actions: ['fail'],
  },
} as const satisfies InjectionPointTable;

export type DmaEnginePointName = keyof typeof DMA_ENGINE_INJECTION_POINTS;

/** What some engine sites can carry out at a given hit (subsets of their point's actions; constant, so a hit allocates nothing). */
export const ENGINE_SITE_ACTIONS = {
  drop: ['drop'],
  dropFail: ['drop', 'fail'],
  dropDelayCorrupt: ['drop', 'delay', 'corrupt'],
} as const satisfies Record<string, readonly InjectionActionKind[]>;
