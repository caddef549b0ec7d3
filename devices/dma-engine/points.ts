/**
 * Fault-injection points of the DMA engine (to be aggregated in
 * src/fault/points.ts). Hooks receive a context with at least `dev` (the
 * device's name).
 */
export const DMA_ENGINE_INJECTION_POINTS = {
  'dma-engine.ats.completion':
    'a Translation Completion reaching the DMA engine: drop (lost: the request times out, ATS_TIMEOUT), corrupt (xor the translated addresses with xorLo/xorHi), fail (treated as Completer Abort)',
  'dma-engine.ats.inv-completion':
    'the Invalidation Completion the DMA engine sends: drop (never sent, so the IOMMU times out) or delay (ns added)',
  'dma-engine.pri.request': 'a Page Request Message leaving the DMA engine: drop (lost on the way: the group times out)',
  'dma-engine.pri.response':
    'a PRG Response reaching the DMA engine: drop, delay (ns), corrupt (xor the PRG index with xorLo: an unexpected index), fail (turned into Response Failure)',
  'dma-engine.completion-record': 'the DMA engine writing a completion record: fail (the error register reports it instead)',
} as const;

export type DmaEnginePointName = keyof typeof DMA_ENGINE_INJECTION_POINTS;
