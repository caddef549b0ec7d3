/**
 * The edu device driven the way a user-space driver drives it through VFIO
 * type1: the machine is the scenario's own (an edu at 0000:00:03.0, where
 * the rig of real Linux has QEMU's), and everything goes through the
 * uapi: config space, BAR0 registers with pread/pwrite, MSI on an eventfd,
 * DMA through the IOMMU.
 *
 *   ioemu run examples/edu/scenario.ts [--machine all] [--inject examples/edu/plan.json] [--trace t.json]
 *
 * Steps: identification and liveness; a factorial whose completion raises
 * MSI; a DMA round trip (host buffer -> device buffer -> another host
 * buffer) through a mapped IOVA; a DMA to an IOVA nothing maps, which the
 * IOMMU refuses (the device buffer reads zeros, as QEMU's does); the 28-bit
 * DMA mask (an IOVA above 256 MiB reaches the one 256 MiB lower).
 */
import {
  VFIO_PCI_BAR0_REGION_INDEX as BAR0,
  type MachineKind,
  type Scenario,
  type ScenarioContext,
  type TopologySpec,
  vfioType1Setup,
} from '../../src/index.ts';
import { EDU_BUFFER, EDU_DMA_CMD, EDU_ID, EDU_IRQ, EDU_REGS, EDU_STATUS, EduDevice } from './edu.ts';

export const EDU_BDF = '0000:00:03.0';
const PAGE = 4096;
/** Where the driver maps its buffer: below the device's 28-bit DMA mask. */
const IOVA = 0x10_0000n;
const LEN = 2048;

export const EDU_TOPOLOGY: readonly TopologySpec[] = [{ bdf: EDU_BDF, kind: (ctx, name) => new EduDevice(ctx, name), name: 'edu' }];

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + 7) & 0xff;
  return b;
}

function run(ctx: ScenarioContext): void {
  const m = ctx.machine;
  const p = m.host.spawn({ memlockLimit: 16 * PAGE });
  const { v, container, device } = vfioType1Setup(m, p, EDU_BDF);
  const r32 = (off: number) => v.barRead32(device, BAR0, off);
  const w32 = (off: number, value: number) => {
    const r = v.barWrite32(device, BAR0, off, value);
    if (r < 0) ctx.fail(`write 0x${off.toString(16)}: ${r}`);
  };
  const w64 = (off: number, value: bigint) => {
    const r = v.barWrite64(device, BAR0, off, value);
    if (r < 0) ctx.fail(`write64 0x${off.toString(16)}: ${r}`);
  };
  ctx.check(v.setBusMaster(device) === 0, 'Memory Space and Bus Master Enable set through the config region');

  const id = r32(EDU_REGS.ID);
  ctx.say(`edu at ${EDU_BDF} on ${ctx.kind}: identification 0x${id.toString(16).padStart(8, '0')}`);
  ctx.check(id === EDU_ID, `identification reads 0x${EDU_ID.toString(16)}`);
  w32(EDU_REGS.LIVENESS, 0x12345678);
  ctx.check(r32(EDU_REGS.LIVENESS) === (~0x12345678 >>> 0), 'liveness reads back the inverse');

  // Factorial with its interrupt, on MSI (one vector) signalled into an eventfd.
  const efd = v.msiEventfds(device, 1);
  if (typeof efd === 'number') return void ctx.fail(`MSI eventfd: ${efd}`);
  w32(EDU_REGS.STATUS, EDU_STATUS.IRQ_FACT);
  const t0 = m.now();
  w32(EDU_REGS.FACTORIAL, 10);
  ctx.check((r32(EDU_REGS.STATUS) & EDU_STATUS.COMPUTING) !== 0, 'computing until the machine runs');
  m.run();
  const fact = r32(EDU_REGS.FACTORIAL);
  ctx.say(`factorial of 10 = ${fact} after ${m.now() - t0} ns; interrupt status 0x${r32(EDU_REGS.IRQ_STATUS).toString(16)}, eventfd count ${v.eventfdCount(efd[0]!)}`);
  ctx.check(fact === 3628800, '10! = 3628800');
  ctx.check(r32(EDU_REGS.IRQ_STATUS) === EDU_IRQ.FACTORIAL, 'the factorial raised interrupt 0x1');
  w32(EDU_REGS.IRQ_ACK, EDU_IRQ.FACTORIAL);
  ctx.check(r32(EDU_REGS.IRQ_STATUS) === 0, 'acknowledged');

  // A DMA round trip through the IOMMU.
  const buf = p.mmap(2 * PAGE, { populate: true });
  if (buf < 0n) return void ctx.fail(`mmap: ${buf}`);
  p.memWrite(buf, pattern(LEN));
  ctx.check(v.mapDma(container, { vaddr: buf, iova: IOVA, size: 2 * PAGE }) === 0, 'VFIO_IOMMU_MAP_DMA of the buffer');
  const dma = (src: bigint, dst: bigint, count: number, cmd: number): number => {
    w64(EDU_REGS.DMA_SRC, src);
    w64(EDU_REGS.DMA_DST, dst);
    w64(EDU_REGS.DMA_COUNT, BigInt(count));
    const before = v.eventfdCount(efd[0]!);
    const start = m.now();
    w32(EDU_REGS.DMA_CMD, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ | cmd);
    m.run();
    ctx.metrics.sample('edu.dma_ns', m.now() - start);
    ctx.check((r32(EDU_REGS.DMA_CMD) & EDU_DMA_CMD.START) === 0, 'the command completed');
    w32(EDU_REGS.IRQ_ACK, EDU_IRQ.DMA);
    return before + v.eventfdCount(efd[0]!);
  };
  const base = BigInt(EDU_BUFFER.BASE);
  const irqs = dma(IOVA, base, LEN, 0) + dma(base, IOVA + BigInt(PAGE), LEN, EDU_DMA_CMD.TO_RAM);
  const back = p.memRead(buf + BigInt(PAGE), LEN);
  const same = back instanceof Uint8Array && back.every((b, i) => b === pattern(LEN)[i]);
  ctx.say(`DMA round trip of ${LEN} bytes through IOVA 0x${IOVA.toString(16)}: ${same ? 'data intact' : 'DATA DIFFERS'}, ${irqs} interrupt(s)`);
  ctx.check(same, 'the bytes came back through the device buffer');
  ctx.check(irqs === 2, 'each DMA raised its interrupt');

  // A DMA from an IOVA nothing maps: the IOMMU refuses it; the device buffer reads zeros.
  dma(0x80_0000n, base, 256, 0);
  dma(base, IOVA + BigInt(PAGE), 256, EDU_DMA_CMD.TO_RAM);
  const z = p.memRead(buf + BigInt(PAGE), 256);
  ctx.check(z instanceof Uint8Array && z.every((b) => b === 0), 'a refused read left zeros in the device buffer');
  ctx.say(`DMA from unmapped IOVA 0x800000: refused by the IOMMU, the device buffer holds zeros`);

  // The 28-bit DMA mask: IOVA + 256 MiB reaches IOVA.
  p.memWrite(buf, pattern(64));
  dma(IOVA + (1n << 28n), base, 64, 0);
  dma(base, IOVA + BigInt(PAGE), 64, EDU_DMA_CMD.TO_RAM);
  const masked = p.memRead(buf + BigInt(PAGE), 64);
  ctx.check(masked instanceof Uint8Array && masked.every((b, i) => b === pattern(64)[i]), 'an address above 2^28 is masked to 28 bits');
  ctx.say('DMA from IOVA 0x10100000 reached IOVA 0x100000 (28-bit DMA mask)');
  ctx.metrics.set('edu.factorial', fact);
  p.exit();
}

const scenario: Scenario = {
  name: 'edu',
  description: "QEMU's edu device through VFIO type1: identification, liveness, factorial with MSI, DMA through the IOMMU",
  devices: (_kind: MachineKind) => EDU_TOPOLOGY,
  run,
};
export default scenario;
