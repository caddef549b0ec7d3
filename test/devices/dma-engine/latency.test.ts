import t from 'tap';
import { Board } from '../../../machines/board.ts';
import { Host } from '../../../src/host/host.ts';
import { Smmuv3 } from '../../../iommu/smmuv3/smmuv3.ts';
import { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { VtdIommu } from '../../../iommu/vtd/vtd.ts';
import { VtdDriver } from '../../../iommu/vtd/driver/driver.ts';
import { DmaEngine } from '../../../devices/dma-engine/dma-engine.ts';
import { OPCODE, decodeCompletion, encodeDescriptor } from '../../../devices/dma-engine/descriptor.ts';
import {
  DMAE_BAR, DMAE_REGISTERS, DMAE_REGS, PORTAL, regValue, WQ_REG, WQ_REGISTERS, wqReg,
} from '../../../devices/dma-engine/regs.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import { ATS } from '../../../src/pci/caps/ats.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';

/**
 * DESIGN.md §3: a translation that misses the IOTLB costs virtual time (its
 * table fetches and page-walk reads, priced by the model's `walkReadNs` and
 * `tableFetchNs`), a hit costs nothing, and the DMA engine charges what its
 * accesses cost to the descriptor's completion time.
 */
type Kind = 'virt-smmuv3' | 'q35-vtd';
const IOVA = 0x4000_0000;
const LEN = 4 * 4096;

/** A board with the real IOMMU model (priced as `costs` says) and driver, and a DMA engine in a paging domain, ATS off. */
function setup(kind: Kind, costs: { walkReadNs?: number; tableFetchNs?: number } = {}, ats = true) {
  const board = new Board(kind, { ramBytes: 2 ** 27 });
  const host = new Host(board);
  const label = kind === 'virt-smmuv3' ? 'smmuv3' : 'vtd';
  if (kind === 'virt-smmuv3') {
    const smmu = new Smmuv3(board, board.sysmem, costs);
    board.sysmemRoot.addSubregion(board.layout.iommuBase, smmu.region, 1);
    board.rc.remapper = smmu;
    host.iommu.registerDriver(new Smmuv3Driver(host, board.layout.iommuBase));
  } else {
    const vtd = new VtdIommu(board, board.sysmem, costs);
    board.sysmemRoot.addSubregion(board.layout.iommuBase, vtd.region, 1);
    board.rc.remapper = vtd;
    host.iommu.registerDriver(new VtdDriver(host, board.layout.iommuBase));
  }
  const dev = new DmaEngine(board, { name: 'dmae' });
  board.rc.plug(dev, 1);
  const found = board.enumeratePci().find((f) => f.bdf === dev.bdf)!;
  const bar = (i: number) => found.bars.find((b) => b.index === i)!.addr!;
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  host.addPciDevice(dev);
  const group = host.iommu.groupOf(dev)!;
  const owner = {};
  host.iommu.claimDmaOwner(group, owner);
  const domain = host.iommu.allocPaging(dev) as IommuDomain;
  host.iommu.attachGroup(domain, group, owner);
  // The driver enabled ATS; without it every access is an untranslated request the IOMMU translates itself.
  if (!ats) dev.config.write(dev.ats.offset + ATS.CTRL, 2, 0);
  // Source, destination and completion record: 4 KiB pages (a run starting 4 KiB in), so each page is its own walk.
  const ram = host.allocator.allocPages(6)! + 4096;
  t.equal(domain.map(IOVA, ram, 12 * 4096, 3), 0, 'mapped');
  const mem = board.sysmem;
  const regs = bar(DMAE_BAR.REGS);
  mem.write32(regs + DMAE_REGS.GENCTRL, regValue(DMAE_REGISTERS.GENCTRL, { ENABLE: 1 }));
  mem.write32(regs + wqReg(0, WQ_REG.CFG), regValue(WQ_REGISTERS.CFG, { ENABLE: 1 }));
  // The descriptor's own time, from dispatch to completion (the engine traces it), not whatever else the scheduler runs.
  const durations: number[] = [];
  board.tracer.on('dma-engine.desc.complete', (r) => void durations.push(r.dur!));
  board.scheduler.run();
  const src = IOVA;
  const dst = IOVA + LEN;
  const cr = IOVA + 2 * LEN;
  let done = 0;
  /** Run one MEMMOVE through WQ 0 and return how long it took in virtual ns, with the walk reads and fetches it caused. */
  const memmove = () => {
    const reads0 = board.counters.get(`${label}.walk.reads`);
    const fetches0 = fetchesOf();
    const bytes = encodeDescriptor({ op: OPCODE.MEMMOVE, src, dst, length: LEN, rcr: true, completion: cr });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const portal = bar(DMAE_BAR.PORTALS);
    for (let q = 0; q < 8; q++) mem.write64(portal + q * 8, dv.getBigUint64(q * 8, true));
    t.equal(mem.read32(portal + PORTAL.STATUS), 0, 'accepted');
    board.scheduler.run();
    t.equal(durations.length, ++done, 'one descriptor completed');
    const rec = new Uint8Array(32);
    mem.readInto(ram + 2 * LEN, rec);
    t.equal(decodeCompletion(rec).statusName, 'SUCCESS');
    return {
      ns: durations.at(-1)!,
      reads: board.counters.get(`${label}.walk.reads`) - reads0,
      fetches: fetchesOf() - fetches0,
    };
  };
  const fetchesOf = () => {
    const r = board.rc.remapper as unknown as { config?: { fetches: number }; loader?: { fetches: number } };
    return r.config?.fetches ?? r.loader!.fetches;
  };
  return { board, domain, memmove, label };
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: a descriptor whose translations miss completes later than the same one with IOTLB hits`, async (t) => {
    const f = setup(kind);
    const free = setup(kind, { walkReadNs: 0, tableFetchNs: 0 });
    const cold = f.memmove();
    const warm = f.memmove();
    const freeCold = free.memmove();
    t.ok(cold.reads > 0, `the first one walked (${cold.reads} reads)`);
    t.ok(cold.fetches > 0, `and fetched its configuration (${cold.fetches} structures)`);
    t.equal(warm.reads, 0, 'the second one hit the IOTLB: no walk');
    t.equal(warm.fetches, 0, 'and fetched no configuration');
    t.ok(cold.ns > warm.ns, `cold ${cold.ns} ns > warm ${warm.ns} ns`);
    t.equal(cold.ns - freeCold.ns, cold.reads * 100 + cold.fetches * 100, 'the walks and fetches cost the default 100 ns each');
  });

  t.test(`${kind}: the cost follows walkReadNs and tableFetchNs`, async (t) => {
    const z = setup(kind, { walkReadNs: 0, tableFetchNs: 0 });
    const a = setup(kind, { walkReadNs: 30, tableFetchNs: 0 });
    const b = setup(kind, { walkReadNs: 1000, tableFetchNs: 250 });
    const [zCold, zWarm] = [z.memmove(), z.memmove()];
    const [aCold, aWarm] = [a.memmove(), a.memmove()];
    const [bCold, bWarm] = [b.memmove(), b.memmove()];
    t.same([aCold.reads, aCold.fetches], [zCold.reads, zCold.fetches], 'the same walks and fetches whatever the prices');
    t.same([bCold.reads, bCold.fetches], [zCold.reads, zCold.fetches]);
    t.same([aWarm.ns, bWarm.ns], [zWarm.ns, zWarm.ns], 'hits cost the same whatever the prices');
    t.equal(aCold.ns - zCold.ns, zCold.reads * 30, '30 ns per read, fetches free');
    t.equal(bCold.ns - zCold.ns, zCold.reads * 1000 + zCold.fetches * 250, '1000 ns per read, 250 per fetch');
  });

  t.test(`${kind}: with ATS off the untranslated requests carry the same costs`, async (t) => {
    const f = setup(kind, {}, false);
    const free = setup(kind, { walkReadNs: 0, tableFetchNs: 0 }, false);
    const cold = f.memmove();
    const warm = f.memmove();
    const [freeCold, freeWarm] = [free.memmove(), free.memmove()];
    t.equal(f.board.counters.get('dmae.ats.requests'), 0, 'no Translation Request was sent');
    t.ok(cold.reads > 0 && warm.reads === 0, 'the IOTLB missed, then hit');
    t.equal(warm.ns, freeWarm.ns, 'hits cost nothing');
    t.equal(cold.ns - freeCold.ns, cold.reads * 100 + cold.fetches * 100, 'misses cost their reads and fetches');
  });

  t.test(`${kind}: the same machine gives the same virtual times`, async (t) => {
    const x = setup(kind);
    const y = setup(kind);
    t.same([x.memmove(), x.memmove()], [y.memmove(), y.memmove()]);
  });
}
