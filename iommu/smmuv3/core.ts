/**
 * The services the SMMUv3 model's parts share (registers, memory, feature
 * set, injection points, tracing), gathered so each part takes one
 * reference instead of many.
 */
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { RegisterFile } from '../../src/hw/register-file.ts';
import type { SmmuRegMap } from './regs.ts';
import { formatLayout, type Layout } from '../../src/hw/layout.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type { AtsInvalidationRequest, PrgResponse } from '../../src/pci/ats-messages.ts';
import type { Scheduler } from '../../src/sim/scheduler.ts';
import type { Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import type { SmmuFeatures } from './caps.ts';
import { CD_LAYOUT, L1CD_LAYOUT } from './cd.ts';
import type { StageEnv } from './stage.ts';
import { L1STD_LAYOUT, STE_LAYOUT } from './ste.ts';

export interface SmmuPoints {
  readonly walkRead: InjectionPoint;
  readonly steFetch: InjectionPoint;
  readonly cdFetch: InjectionPoint;
  readonly evtqWrite: InjectionPoint;
  readonly cmdqProcess: InjectionPoint;
  readonly msi: InjectionPoint;
  readonly priqWrite: InjectionPoint;
  readonly atcInv: InjectionPoint;
  readonly atcInvComplete: InjectionPoint;
  readonly atsTreq: InjectionPoint;
  readonly priResp: InjectionPoint;
  readonly stall: InjectionPoint;
}

/** The downstream half of the ATS/PRI protocol: where the SMMU sends messages to endpoints (the root complex). */
export interface AtsDownstream {
  sendAtsInvalidation(requesterId: number, req: AtsInvalidationRequest): boolean;
  sendPrgResponse(requesterId: number, resp: PrgResponse): boolean;
}

export interface SmmuCore {
  readonly regs: RegisterFile<SmmuRegMap>;
  /** The system address space: table fetches, queue accesses and MSIs go here. */
  readonly mem: PhysMem;
  readonly features: SmmuFeatures;
  readonly points: SmmuPoints;
  readonly stageEnv: StageEnv;
  readonly tracer: Tracer;
  readonly counters: Counters;
  /** Trace source and counter prefix ("smmuv3"). */
  readonly source: string;
  /** Virtual time: ATC invalidation and stall timeouts, deferred CMD_SYNC completion. */
  readonly scheduler: Scheduler;
  /** Where ATS Invalidation Requests and PRG Responses go (undefined: nowhere; they are lost). */
  readonly downstream: AtsDownstream | undefined;
}

const LAYOUTS: Readonly<Record<string, Layout>> = {
  STE: STE_LAYOUT, CD: CD_LAYOUT, L1STD: L1STD_LAYOUT, L1CD: L1CD_LAYOUT,
};

/** "STE{V=1 Config=5 ...}" for traces. */
export function describeStructure(kind: string, words: ArrayLike<number>): string {
  const l = LAYOUTS[kind];
  return l === undefined ? '' : formatLayout(l, words);
}
