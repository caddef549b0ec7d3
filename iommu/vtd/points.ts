/** Fault-injection points of the VT-d model (aggregated in src/fault/points.ts). */
export const VTD_INJECTION_POINTS = {} as const;
