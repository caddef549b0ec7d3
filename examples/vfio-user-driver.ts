/**
 * A user-space driver for the DMA engine, as DPDK or SPDK drivers are
 * written: the process owns the device through VFIO type1 and reaches it only
 * through the device fd.
 *  - BARs and config space: pread/pwrite at the offsets
 *    VFIO_DEVICE_GET_REGION_INFO reports (tools/scenario/engine-user.ts).
 *  - DMA addresses are IOVAs: the driver's buffers and its descriptor ring
 *    live in its own memory, mapped into the container with MAP_DMA.
 *  - Completion interrupts: MSI-X vector 0 is wired to an eventfd with
 *    VFIO_DEVICE_SET_IRQS; each descriptor sets RCI, so the eventfd counts
 *    completions.
 * Run: npx tsx examples/vfio-user-driver.ts
 */
import {
  createMachine,
  type MachineKind,
  EngineUser,
  eventfdCount,
  msixEventfds,
  vfioPciRealize,
  vfioType1Setup,
  DESC_STATUS,
} from '../src/index.ts';

const KIB = 1024;
const IOVA = 0x10_0000_0000n; // where the driver maps its memory for the device
// Layout of the driver's 64 KiB DMA area (offsets from IOVA and from its VA alike).
const SRC = 0n;
const DST = 16n * 1024n;
const RING = 48n * 1024n; // 8 slots of 64 bytes
const RECORDS = 56n * 1024n; // one 32-byte completion record per descriptor

export interface UserDriverResult {
  completed: number;
  interrupts: number;
  verified: boolean;
  ns: number;
}

export function runUserDriver(kind: MachineKind, descriptors = 4, say: (s: string) => void = console.log): UserDriverResult {
  const m = createMachine(kind);
  const p = m.host.spawn({ memlockLimit: 16 * 2 ** 20 });
  const mem = p.mmap(64 * KIB, { populate: true });
  const { v, device } = vfioType1Setup(m, p, '0000:00:02.0', { guestRam: { vaddr: mem, iova: IOVA, size: 64 * KIB } });
  const probe = vfioPciRealize(v, device);
  const [irq] = msixEventfds(p, v, device, 1);
  say(`${kind}: DMA engine 0000:00:02.0 through VFIO: ${probe.regions.size - 1} BARs, ${probe.msixCount} MSI-X vectors; 64 KiB mapped at IOVA 0x${IOVA.toString(16)}`);

  const engine = new EngineUser(p, v, device);
  engine.enable();
  engine.configWq(0, { ring: { deviceAddr: IOVA + RING, vaddr: mem + RING, size: 8 }, vector: 0 });
  const chunk = 1024;
  const data = new Uint8Array(descriptors * chunk).map((_, i) => (i * 13 + 5) & 0xff);
  p.memWrite(mem + SRC, data);
  const t0 = m.now();
  for (let i = 0; i < descriptors; i++) {
    const off = BigInt(i * chunk);
    engine.memmove(0, { src: IOVA + SRC + off, dst: IOVA + DST + off, length: chunk, record: IOVA + RECORDS + BigInt(32 * i), rci: true });
  }
  m.run();
  const ns = m.now() - t0;
  let completed = 0;
  for (let i = 0; i < descriptors; i++) if (engine.record(mem + RECORDS + BigInt(32 * i)).status === DESC_STATUS.SUCCESS) completed++;
  const out = p.memRead(mem + DST, data.length);
  const verified = out instanceof Uint8Array && out.every((b, i) => b === data[i]);
  const interrupts = eventfdCount(p, irq!);
  say(`${kind}: ${descriptors} MEMMOVEs through an 8-slot ring in IOVA space: ${completed} completion records SUCCESS, ` +
    `destination ${verified ? 'verified' : 'WRONG'}, eventfd counted ${interrupts} interrupt(s), ${ns} ns of virtual time`);
  p.exit();
  return { completed, interrupts, verified, ns };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) runUserDriver(kind);
}
