import { createMachine } from '../machines/machine.ts';
import { benchMap } from '../src/vfio/bench-map.ts';
import type { Figures } from './harness.ts';

/**
 * MAP_DMA of 1 GiB through VFIO on the SMMUv3 machine: backed by 2M pages
 * (physically contiguous runs, one IOMMU map call each, 2M block entries)
 * versus by scattered 4K pages, timed in the same run.
 */
export function vfioFigures(): Figures {
  const m = createMachine('virt-smmuv3', { ramBytes: 3 * 2 ** 30 });
  const group = m.host.iommu.groupOf(m.device('0000:00:03.0'))!.id;
  const f = benchMap(m.host, group, () => performance.now());
  return {
    'vfio.map1g.2m_vs_4k.time_ratio': { value: f.timeRatio, unit: 'ratio', target: '>= 50' },
    'vfio.map1g.2m.ptes': { value: f.ptes2m, unit: 'entries', target: '<= 512' },
    'vfio.map1g.2m.map_calls': { value: f.mapCalls2m, unit: 'calls', target: 'one per contiguous run' },
    'vfio.map1g.4k.ptes': { value: f.ptes4k, unit: 'entries', target: 'orientation (262144)' },
  };
}
