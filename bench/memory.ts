import { Board } from '../machines/board.ts';
import { CFG, COMMAND } from '../src/pci/header.ts';
import { TestDmaDevice } from '../devices/test-dma-device.ts';
import { bestSeconds, type Figures } from './harness.ts';

/**
 * Guest-memory and bus-master baselines: the cost of writing bytes straight
 * into guest RAM, and of the same bytes as a device DMA on the identity path
 * (no IOMMU). The IOMMU figures later divide by the first of these.
 */
export function memoryFigures(): Figures {
  const board = new Board('q35-vtd', { ramBytes: 2 ** 30 });
  const dev = new TestDmaDevice(board, 'bench-dev');
  board.rc.plug(dev, 1);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const out: Figures = {};
  for (const size of [4096, 65536]) {
    const buf = new Uint8Array(size).fill(7);
    const ops = Math.max(200, (64 << 20) / size);
    const direct = bestSeconds(() => {
      for (let i = 0; i < ops; i++) board.sysmem.writeFrom(0x10_0000 + (i % 256) * size, buf);
    });
    const dma = bestSeconds(() => {
      for (let i = 0; i < ops; i++) dev.dmaWrite(BigInt(0x10_0000 + (i % 256) * size), buf);
    });
    const label = size === 4096 ? '4k' : '64k';
    out[`memory.direct.${label}.bytes_per_s`] = { value: (ops * size) / direct, unit: 'B/s', target: 'baseline' };
    out[`dma.identity.${label}.ratio`] = { value: direct / dma, unit: 'ratio', target: 'no IOMMU; >= 0.8 expected' };
  }
  return out;
}
