/** Fault-injection points of the SMMUv3 model (aggregated in src/fault/points.ts). */
export const SMMUV3_INJECTION_POINTS = {} as const;
