/** Shared pieces of the fuzzers (tools/fault/fuzz.ts): reports, tallies, the usual machine set-up and teardown. */
import type { Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import * as ERRNO from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import type { Prng } from '../../src/sim/prng.ts';
import * as VFIO from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { checkInvariants, guard, type Violation } from './invariants.ts';


export const PAGE = 4096;
export const DEV0 = '0000:00:01.0';
export const DEV1 = '0000:00:02.0';
export const KNOWN_ERRNOS = new Set<number>((Object.values(ERRNO) as unknown[]).filter((v): v is number => typeof v === 'number'));

export type FuzzSurface = 'uapi' | 'iommu-regs' | 'iommu-tables' | 'dma-engine';

export interface FuzzReport {
  surface: FuzzSurface;
  machine: MachineKind;
  seed: number;
  cases: number;
  /** Per target (ioctl name, register, ...): cases and outcomes (errno names, DMA fault names, "ok"). */
  byTarget: Record<string, { cases: number; outcomes: Record<string, number> }>;
  /** Exceptions, unexpected results and invariant violations, each with the case number to replay. */
  problems: string[];
  /** Invariant violations counted (exceptions included). */
  violations: number;
  /** Slowest case, ms of wall time (a bound on hangs: nothing here may loop). */
  slowestMs: number;
}

export function newReport(surface: FuzzSurface, machine: MachineKind, seed: number): FuzzReport {
  return { surface, machine, seed, cases: 0, byTarget: {}, problems: [], violations: 0, slowestMs: 0 };
}

export function tally(r: FuzzReport, target: string, outcome: string): void {
  const t = (r.byTarget[target] ??= { cases: 0, outcomes: {} });
  t.cases++;
  t.outcomes[outcome] = (t.outcomes[outcome] ?? 0) + 1;
}

export const errnoNames = new Map<number, string>();
for (const [k, v] of Object.entries(ERRNO)) if (typeof v === 'number' && !errnoNames.has(v)) errnoNames.set(v, k);

export function outcomeOf(r: number): string {
  return r >= 0 ? 'ok' : (errnoNames.get(-r) ?? `errno ${-r}`);
}

export function enableBme(dev: PciFunction): void {
  const cmd = dev.config.get16(CFG.COMMAND);
  if ((cmd & COMMAND.MASTER) === 0) dev.config.write(CFG.COMMAND, 2, cmd | COMMAND.MASTER | COMMAND.MEMORY);
}

export function must(what: string, r: number | bigint): void {
  if (r < 0) throw new Error(`fuzz setup: ${what} returned ${r}`);
}

// --- uapi -------------------------------------------------------------------------------

export interface FuzzOptions {
  seed?: number;
  /** Cases per target (per ioctl, per register write burst, ...). */
  cases?: number;
  /** Full invariant check (with DMA probes) every this many cases (default 25). */
  checkEvery?: number;
}

/** Fuzz every VFIO and iommufd ioctl on one machine. */
/** Every process exits; then no exception may have escaped and (optionally) the full invariants hold. */
export function finish(m: Machine, report: FuzzReport, tag: string, full: boolean): void {
  const td = guard(m, () => {
    for (const p of [...m.host.processes.values()]) p.exit();
    m.board.scheduler.run(100_000);
  });
  if ('exception' in td) report.problems.push(`${tag}: exit threw ${td.exception.split('\n')[0]}`);
  const v: Violation[] = checkInvariants(m).filter((x) => full || x.kind === 'exception');
  // Lazily allocated driver state (SVA tables, fault queues) is not a leak here: only flag leaks under full checks
  // for the uapi surface, where the reference baseline covers it (see fuzzUapi).
  const real = v.filter((x) => x.kind !== 'page-leak');
  report.violations += real.length;
  for (const x of real) report.problems.push(`${tag}, after exit: [${x.kind}] ${x.message.split('\n')[0]}`);
}


export function dmaRound(m: Machine, rnd: Prng, report: FuzzReport, target: string, iovas: readonly bigint[], pasid?: number): void {
  for (const bdf of [DEV0, DEV1, '0000:00:03.0']) {
    const dev = m.device(bdf) as unknown as PciFunction;
    enableBme(dev);
    const iova = iovas[rnd.int(0, iovas.length - 1)]! + BigInt(rnd.int(0, 511) * 8);
    const attrs = pasid !== undefined && bdf !== '0000:00:03.0' ? { pasid } : undefined;
    const g = guard(m, () => (rnd.chance(0.5) ? dev.dmaRead(iova, 8, attrs) : dev.dmaWrite(iova, new Uint8Array([rnd.int(0, 255)]), attrs)));
    if ('exception' in g) tally(report, target, 'exception');
    else tally(report, `${target} dma`, g.value.ok ? 'dma ok' : `dma ${g.value.fault}`);
  }
  const r = guard(m, () => m.board.scheduler.run(20_000));
  if ('exception' in r) tally(report, target, 'exception');
  else if (r.value >= 20_000) report.problems.push(`${target}: the scheduler still had events after 20000 (a model rescheduling forever?)`);
}

export function vfioWorld(m: Machine): { p: Process; v: VfioClient; container: number; group: number; buf: bigint } {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DEV0))!.id}`);
  must('open', Math.min(container, group));
  must('SET_CONTAINER', v.setContainer(group, container));
  must('SET_IOMMU', v.setIommu(container, VFIO.VFIO_TYPE1v2_IOMMU));
  const buf = p.mmap(16 * PAGE);
  must('mmap', buf);
  must('memWrite', p.memWrite(buf, new Uint8Array(16 * PAGE).fill(0x22)));
  must('MAP_DMA', v.mapDma(container, { vaddr: buf, iova: 0x10_0000n, size: 16 * PAGE }));
  return { p, v, container, group, buf };
}

export const U64_MAX = 0xffff_ffff_ffff_ffffn;

export function randomU64(rnd: Prng): bigint {
  return (BigInt(rnd.nextU32()) << 32n) | BigInt(rnd.nextU32());
}
