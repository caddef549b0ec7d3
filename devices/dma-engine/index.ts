/** The reference PASID/ATS/PRI DMA engine (see README.md in this folder). */
export { DmaEngine, type DmaEngineOptions } from './dma-engine.ts';
export * from './regs.ts';
export {
  DESCRIPTOR, COMPLETION, DESC_BYTES, COMPLETION_BYTES, COMPLETION_ALIGN, OPCODE, DESC_STATUS, FAULT_REASON, FAULT_NAMES,
  encodeDescriptor, decodeCompletion, statusName, opcodeName, type DescriptorInput, type CompletionRecord,
} from './descriptor.ts';
export { Atc, type AtcEntry } from './atc.ts';
export { type EngineTiming } from './executor.ts';
export { DMA_ENGINE_INJECTION_POINTS, type DmaEnginePointName } from './points.ts';
export { type EnginePoint, type EnginePoints } from './faults.ts';
