/**
 * Reading and clearing HTTU dirty state in a stage-1 VMSAv8-64 table (Linux
 * io-pgtable-arm arm_lpae_read_and_clear_dirty with IO_PGTABLE_QUIRK_ARM_HD).
 * Writable leaves are built with DBM set (Arm ARM D8.4.6 "Hardware
 * management of the dirty state"): AP[2] = 1 with DBM = 1 is
 * writable-clean, and the SMMU clears AP[2] on the first write through the
 * leaf (CD.HA/HD). So a leaf with DBM = 1 and AP[2] = 0 is writable-dirty;
 * clearing sets AP[2] again. A clean leaf is only cached read-only, so once
 * the caller has invalidated the TLB over the cleared range, the next write
 * walks and dirties the leaf again.
 */
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { D_AP2, D_TYPE, D_VALID, DH_DBM, levelShift, vmsaDescAddr, type VmsaAddrFormat } from '../../pgtable/vmsa-layout.ts';

const ADDR_4K: VmsaAddrFormat = { pageShift: 12, ds: false, oa52Lpa64k: false };

export interface DirtyScan {
  /** Some leaf was cleared: [start, end) needs a TLB invalidation. */
  cleared: boolean;
  start: number;
  end: number;
  /** Leaves found dirty. */
  dirty: number;
}

/** The walk geometry of a 4 KiB-granule stage-1 table (what the driver's VmsaBuilder made). */
export interface S1Geometry {
  root: number;
  startLevel: number;
  iaBits: number;
}

/**
 * Visit the leaves over [iova, iova+size): report each writable-dirty one
 * through `mark` and, unless `noClear`, make it writable-clean again.
 */
export function readAndClearS1Dirty(
  mem: PhysMem,
  g: S1Geometry,
  iova: number,
  size: number,
  noClear: boolean,
  mark: ((iova: number, size: number) => void) | undefined,
): DirtyScan {
  const out: DirtyScan = { cleared: false, start: Infinity, end: 0, dirty: 0 };
  const end = iova + size;
  let at = iova;
  while (at < end) {
    let table = g.root;
    let step = 4096;
    for (let level = g.startLevel; level <= 3; level++) {
      const shift = levelShift(12, level);
      const span = 2 ** shift;
      const entries = level === g.startLevel ? 2 ** (g.iaBits - shift) : 512;
      const pa = table + (Math.floor(at / span) % entries) * 8;
      const lo = mem.read32(pa) >>> 0;
      const hi = mem.read32(pa + 4) >>> 0;
      step = span;
      if ((lo & D_VALID) === 0) break;
      if (level < 3 && (lo & D_TYPE) !== 0) {
        table = vmsaDescAddr(lo, hi, ADDR_4K);
        continue;
      }
      // iopte_writeable_dirty(): DBM set and AP[2] (read-only / writable-clean) clear.
      if ((hi & DH_DBM) !== 0 && (lo & D_AP2) === 0) {
        const base = at - (at % span);
        out.dirty++;
        mark?.(base, span);
        if (!noClear) {
          mem.write32(pa, (lo | D_AP2) >>> 0);
          out.cleared = true;
          out.start = Math.min(out.start, base);
          out.end = Math.max(out.end, base + span);
        }
      }
      break;
    }
    at = at - (at % step) + step;
  }
  return out;
}
