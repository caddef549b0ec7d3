/**
 * Reading and clearing second-stage dirty bits (Linux
 * intel_iommu_read_and_clear_dirty with dma_sl_pte_test_and_clear_dirty):
 * walk the domain's second-stage table in guest memory over [iova, iova+size),
 * report each present leaf whose D bit (bit 9, set by the unit when the PASID
 * entry has SLADE) is set, and clear it unless NO_CLEAR. The caller flushes
 * the IOTLB over the cleared range, so the next write walks again and sets D
 * (the unit caches a clean leaf read-only).
 */
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { ia32eAddr, ia32eShift } from '../../pgtable/ia32e-layout.ts';
import { S_D, S_PS, S_R, S_W } from '../../pgtable/vtd-ss-layout.ts';

export interface DirtyScan {
  /** Some D bit was cleared: [start, end) needs an IOTLB flush. */
  cleared: boolean;
  start: number;
  end: number;
  /** Leaves found dirty. */
  dirty: number;
}

export function readAndClearSsDirty(
  mem: PhysMem,
  root: number,
  levels: number,
  iova: number,
  size: number,
  noClear: boolean,
  mark: (iova: number, size: number) => void,
): DirtyScan {
  const out: DirtyScan = { cleared: false, start: Infinity, end: 0, dirty: 0 };
  const end = iova + size;
  let at = iova;
  while (at < end) {
    let table = root;
    let step = 4096;
    for (let level = levels; level >= 1; level--) {
      const shift = ia32eShift(level);
      const span = 2 ** shift;
      const pa = table + (Math.floor(at / span) % 512) * 8;
      const lo = mem.read32(pa) >>> 0;
      const hi = mem.read32(pa + 4) >>> 0;
      step = span;
      if ((lo & (S_R | S_W)) === 0) break;
      const leaf = level === 1 || ((level === 2 || level === 3) && (lo & S_PS) !== 0);
      if (!leaf) {
        table = ia32eAddr(lo, hi);
        continue;
      }
      if ((lo & S_D) !== 0) {
        const base = at - (at % span);
        out.dirty++;
        mark(base, span);
        if (!noClear) {
          mem.write32(pa, (lo & ~S_D) >>> 0);
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
