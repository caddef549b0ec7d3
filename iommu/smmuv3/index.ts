/**
 * The Arm SMMUv3 model and the layouts a driver shares with it (see
 * smmuv3.ts for the model, regs/ste/cd/cmd/event for the formats).
 */
export { Smmuv3, type Smmuv3Options, type Smmuv3IrqLine, type AtsDownstream } from './smmuv3.ts';
export * from './regs.ts';
export * from './caps.ts';
export * from './ste.ts';
export * from './cd.ts';
export * from './cmd.ts';
export * from './event.ts';
export { queueEmpty, queueFull, queueNext } from './queue.ts';
export { UUT_REASON } from './translate.ts';
export { SMMUV3_INJECTION_POINTS } from './points.ts';
