/**
 * Fuzzing of the input surfaces (issue 9, part 6). Each surface starts from
 * valid inputs and mutates them with a seeded PRNG:
 * - `uapi`: every VFIO (container, group, device, cdev) and iommufd ioctl,
 *   with mutated structs: bit flips, boundary values in a field (0, ~0, u64
 *   overflow, unaligned), a bad size/argsz, a short or long buffer, reserved
 *   fields set, random flags, integer arguments, wrong fds. The call must
 *   return a result >= 0 or a Linux errno (never throw); a size below any
 *   struct's header and a reserved field set on iommufd must fail.
 * - `iommu-regs`: random writes (fresh values, bit flips of the current
 *   value, 32 and 64 bit) to the IOMMU's MMIO registers at
 *   board.layout.iommuBase, then DMAs, a VFIO map/unmap, and the scheduler
 *   run with an event bound.
 * - `iommu-tables`: random contents written into the IOMMU's in-memory tables
 *   (stream table/STE, CD, root/context, PASID directory and entries, page
 *   tables), found by following pointers from the table base register, then
 *   DMAs with and without a PASID from cold caches.
 * - `dma-engine`: BAR writes through the VFIO device fd (registers, work
 *   queue configuration, ring base/tail, portals) and random or mutated
 *   descriptors in a ring the device fetches through the IOMMU.
 * Every case runs under guard(): an exception is a finding. The hardware
 * surfaces legitimately break translations (a corrupted STE translates
 * nothing), so for them only escaped exceptions count as violations; the
 * uapi surface keeps the full invariant check (bad input changes nothing).
 */
import type { MachineKind } from '../../machines/layout.ts';
import type { FuzzOptions, FuzzReport } from './fuzz-common.ts';
import { fuzzUapi } from './fuzz-uapi.ts';
import { fuzzDmaEngine, fuzzIommuRegisters, fuzzIommuTables } from './fuzz-hw.ts';

export type { FuzzOptions, FuzzReport, FuzzSurface } from './fuzz-common.ts';
export { fuzzUapi } from './fuzz-uapi.ts';
export { fuzzDmaEngine, fuzzIommuRegisters, fuzzIommuTables } from './fuzz-hw.ts';

/** All four surfaces on one machine. */
export function fuzzAll(kind: MachineKind, opts: FuzzOptions & { scale?: number } = {}): FuzzReport[] {
  const k = opts.scale ?? 1;
  const o = (n: number) => ({ ...opts, cases: Math.max(1, Math.round(n * k)) });
  return [fuzzUapi(kind, o(opts.cases ?? 40)), fuzzIommuRegisters(kind, o(100)), fuzzIommuTables(kind, o(60)), fuzzDmaEngine(kind, o(150))];
}

