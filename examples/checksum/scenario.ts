/**
 * The checksum engine driven from a process through VFIO type1, as a
 * user-space driver drives it: Bus Master Enable through the config region
 * (vfio-pci leaves it off), a buffer mapped with VFIO_IOMMU_MAP_DMA, MSI-X
 * vector 0 on an eventfd, registers through BAR0.
 *
 *   ioemu run examples/checksum/scenario.ts [--machine all] [--inject examples/checksum/plan.json]
 */
import { DEFAULT_DEVICES, VFIO_PCI_BAR0_REGION_INDEX as BAR0, vfioType1Setup, type Scenario } from '../../src/index.ts';
import { ChecksumDevice, CSUM_REGS, CSUM_STATUS } from './device.ts';

export const CSUM_BDF = '0000:00:04.0';
const IOVA = 0x4000_0000n;

const scenario: Scenario = {
  name: 'checksum',
  description: 'a checksum engine of our own, plugged in at 00:04.0 and driven through VFIO',
  devices: [...DEFAULT_DEVICES, { bdf: CSUM_BDF, kind: (ctx, name) => new ChecksumDevice(ctx, name), name: 'csum' }],
  run(ctx) {
    const m = ctx.machine;
    const p = m.host.spawn({ memlockLimit: 2 ** 24 });
    const { v, container, device } = vfioType1Setup(m, p, CSUM_BDF);
    ctx.check(v.setBusMaster(device) === 0, 'Bus Master Enable set through the config region');
    const irq = v.msixEventfds(device, 1);
    if (typeof irq === 'number') return ctx.fail(`MSI-X eventfd: ${irq}`);
    const buf = p.mmap(4096, { populate: true });
    p.memWrite(buf, new Uint8Array([1, 2, 3, 4, 250]));
    ctx.check(v.mapDma(container, { vaddr: buf, iova: IOVA, size: 4096 }) === 0, 'buffer mapped');
    v.barWrite64(device, BAR0, CSUM_REGS.ADDR, IOVA);
    v.barWrite32(device, BAR0, CSUM_REGS.LEN, 5);
    const t0 = m.now();
    v.barWrite32(device, BAR0, CSUM_REGS.GO, 1);
    m.run();
    const status = v.barRead32(device, BAR0, CSUM_REGS.STATUS);
    const sum = v.barRead32(device, BAR0, CSUM_REGS.SUM);
    ctx.say(`checksum at ${CSUM_BDF} on ${ctx.kind}: STATUS=${status} SUM=${sum} after ${m.now() - t0} ns, ${v.eventfdCount(irq[0]!)} interrupt(s)`);
    ctx.metrics.set('checksum.sum', sum);
    ctx.check(status === CSUM_STATUS.DONE, 'STATUS says DONE');
    ctx.check(sum === 260, 'SUM is 1 + 2 + 3 + 4 + 250');
    p.exit();
  },
};
export default scenario;
