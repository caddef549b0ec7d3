/**
 * A virt-smmuv3 machine whose DMA engine at 00:01.0 is programmed the way
 * its driver would (devices/dma-engine/README.md): BARs found through ECAM,
 * Memory and Bus Master on, the engine enabled, shared work queues taking
 * descriptors with their PASID through the portals. The SMMU is set up by
 * the machine's own Smmuv3Driver; ATS, PASID and PRI are the driver's to
 * enable.
 */
import {
  COMPLETION_BYTES, DMAE_BAR, DMAE_REGISTERS, DMAE_REGS, PORTAL, WQ_REG, WQ_REGISTERS, decodeCompletion, encodeDescriptor, regValue, wqReg,
  type CompletionRecord, type DescriptorInput,
} from '../../../devices/dma-engine/index.ts';
import type { DmaEngine } from '../../../devices/dma-engine/index.ts';
import type { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import type { Smmuv3 } from '../../../iommu/smmuv3/smmuv3.ts';
import { createMachine, type MachineOptions } from '../../../machines/machine.ts';
import type { Process } from '../../../src/host/process.ts';
import { ecamAccessor } from '../../../src/pci/enumerate.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';

export const PAGE = 4096;

export function engineMachine(opts: MachineOptions = {}, bdf = '0000:00:01.0') {
  // PRI servicing is the posted SMMUv3 PRI series' (mainline Linux 7.3 denies page requests).
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20, smmuPri: 'posted-series', ...opts });
  const board = m.board;
  const dev = m.device(bdf) as DmaEngine;
  const driver = m.iommuDriver as Smmuv3Driver;
  const smmu = m.iommu as Smmuv3;
  const mem = board.sysmem;
  const cfg = ecamAccessor(mem, board.layout.ecamBase);
  const cfgRead = (off: number, size: 1 | 2 | 4 = 2) => cfg.read(dev.busNumber, dev.devfn, off, size);
  const bar = (i: number) => ((cfgRead(CFG.BAR0 + 4 * i, 4) & ~0xf) >>> 0) + cfgRead(CFG.BAR0 + 4 * i + 4, 4) * 2 ** 32;
  cfg.write(dev.busNumber, dev.devfn, CFG.COMMAND, 2, COMMAND.MEMORY | COMMAND.MASTER);
  const regs = bar(DMAE_BAR.REGS);
  const portals = bar(DMAE_BAR.PORTALS);
  mem.write32(regs + DMAE_REGS.GENCTRL, regValue(DMAE_REGISTERS.GENCTRL, { ENABLE: 1 }));
  const wqCfg = regValue(WQ_REGISTERS.CFG, { ENABLE: 1, SHARED: 1 });
  for (let wq = 0; wq < dev.workQueues.length; wq++) mem.write32(regs + wqReg(wq, WQ_REG.CFG), wqCfg);
  const f = {
    m, board, dev, driver, smmu, mem, cfgRead,
    /** Submit a descriptor to WQ `wq`'s portal (eight 64-bit writes); PORTAL.STATUS. */
    submit(d: DescriptorInput, wq = 0): number {
      const bytes = encodeDescriptor(d);
      const dv = new DataView(bytes.buffer);
      const p = portals + wq * PORTAL.PAGE;
      for (let q = 0; q < 8; q++) mem.write64(p + q * 8, dv.getBigUint64(q * 8, true));
      return mem.read32(p + PORTAL.STATUS);
    },
    /** The completion record at `va` in the process, as its CPU reads it. */
    record(p: Process, va: bigint): CompletionRecord {
      const b = p.memRead(va, COMPLETION_BYTES);
      if (typeof b === 'number') throw new Error(`completion record unreadable: ${b}`);
      return decodeCompletion(b);
    },
    counter: (name: string) => board.counters.get(name),
  };
  return f;
}
