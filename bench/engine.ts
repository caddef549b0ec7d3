import { createMachine } from '../machines/machine.ts';
import type { MachineKind } from '../machines/layout.ts';
import type { DmaEngine } from '../devices/dma-engine/dma-engine.ts';
import { DESC_STATUS, encodeDescriptor, OPCODE } from '../devices/dma-engine/descriptor.ts';
import { DMAE_BAR, WQ_REG, wqReg } from '../devices/dma-engine/regs.ts';
import { EngineUser } from '../tools/scenario/engine-user.ts';
import { vfioType1Setup } from '../tools/scenario/vmm.ts';
import type { Figures } from './harness.ts';

const PAGE = 4096;
const SIZES = [4096, 65536];
/** Ring slots, and descriptors per doorbell (a batch, as a driver queues work before ringing). */
const RING = 64;
const BATCH = 32;
/** Bytes copied per timed round (per size), and rounds (best kept). */
const BYTES_PER_ROUND = 2 * 2 ** 20;
const ROUNDS = 20;
/**
 * Wall time each loop runs before its timed rounds. V8 keeps optimising the
 * descriptor path for a few hundred milliseconds; timed from its first
 * hundred descriptors, a size's ratio moved by up to 3x between runs of an
 * idle machine (vtd 64k: 0.098 to 0.29 in three runs of 2026-12-07).
 */
const WARM_MS = 400;

/**
 * MEMMOVE throughput of the reference DMA engine with a warm ATC, against
 * copying the same bytes straight in guest memory, in one run. The engine
 * is driven as a user-space driver does (VFIO device fd; descriptors in a
 * ring in its memory, TAIL doorbells through the BAR, batches of 32), bound
 * to the process by SVA (ATS on), with source,
 * destination and completion record already faulted in and their
 * translations already in the ATC: every access is an ATC hit and a
 * Translated request, the hardware fast path (DESIGN.md §3).
 */
function memmoveRates(kind: MachineKind): { rates: Map<number, { engine: number; straight: number; atcMisses: number }>; noopNs: number } {
  const m = createMachine(kind, { ramBytes: 512 * 2 ** 20 });
  const p = m.host.spawn();
  const { v, container, device } = vfioType1Setup(m, p, '0000:00:01.0');
  const pasid = v.bindProcess(container);
  if (pasid < 0) throw new Error(`VFIO_IOMMU_BIND failed (${pasid})`);
  const engine = m.device('0000:00:01.0') as DmaEngine;
  if (!engine.ats.enabled) throw new Error('ATS is off: the ATC would not be used');
  const user = new EngineUser(p, v, device);
  user.enable();
  const ring = p.mmap(RING * 64);
  user.configWq(0, { pasid, ring: { deviceAddr: ring, vaddr: ring, size: RING } });
  const maxSize = Math.max(...SIZES);
  const src = p.mmap(maxSize);
  const dst = p.mmap(maxSize);
  const rec = p.mmap(PAGE);
  // The CPU touches everything first: no page request in the timed loop.
  p.memWrite(src, new Uint8Array(maxSize).map((_, i) => (i * 13 + 1) & 0xff));
  p.memWrite(dst, new Uint8Array(maxSize));
  p.memWrite(rec, new Uint8Array(PAGE));
  const misses = () => m.board.counters.get(`${engine.name}.atc.miss`);

  const bar0 = v.regionInfo(device, DMAE_BAR.REGS);
  if (typeof bar0 === 'number') throw new Error(`BAR0 region info (${bar0})`);
  const tailAt = bar0.offset + BigInt(wqReg(0, WQ_REG.TAIL));
  let tail = 0;
  const copies = (size: number, n: number, op: number = OPCODE.MEMMOVE) => {
    const desc = encodeDescriptor({ op, rcr: true, rci: false, completion: Number(rec), src: Number(src), dst: Number(dst), length: size });
    for (let i = 0; i < RING; i++) p.memWrite(ring + BigInt(64 * i), desc);
    const doorbell = new Uint8Array(4);
    for (let i = 0; i < n; i += BATCH) {
      tail = (tail + BATCH) % RING;
      new DataView(doorbell.buffer).setUint32(0, tail, true);
      p.pwrite(device, doorbell, tailAt);
      m.run();
    }
    const r = user.record(rec);
    if (r.status !== DESC_STATUS.SUCCESS) throw new Error(`descriptor ${op} of ${size}: ${r.statusName}`);
  };

  // The straight copy: the same byte counts between two guest-physical RAM ranges, page by page.
  const from = m.board.ramAddress(256 * 2 ** 20);
  const to = m.board.ramAddress(384 * 2 ** 20);
  // Both ranges hold data first, as the engine's source and destination do (a never-written frame reads as zeros without a copy).
  m.board.sysmem.writeFrom(from, new Uint8Array(maxSize).map((_, i) => (i * 7 + 3) & 0xff));
  m.board.sysmem.writeFrom(to, new Uint8Array(maxSize));
  const bounce = new Uint8Array(PAGE);
  const straight = (size: number, n: number) => {
    for (let i = 0; i < n; i++) {
      for (let off = 0; off < size; off += PAGE) {
        m.board.sysmem.readRange(from + off, bounce, 0, PAGE);
        m.board.sysmem.writeRange(to + off, bounce, 0, PAGE);
      }
    }
  };

  const out = new Map<number, { engine: number; straight: number; atcMisses: number }>();
  for (const size of SIZES) {
    const n = BYTES_PER_ROUND / size;
    // Warm the ATC, and the JIT for both loops, alternating as the timed rounds do.
    for (const t0 = performance.now(); performance.now() - t0 < WARM_MS;) {
      copies(size, n);
      straight(size, n);
    }
    const m0 = misses();
    let e = Infinity;
    let s = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      let t0 = process.hrtime.bigint();
      copies(size, n);
      e = Math.min(e, Number(process.hrtime.bigint() - t0) / 1e9);
      t0 = process.hrtime.bigint();
      straight(size, n);
      s = Math.min(s, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    out.set(size, { engine: BYTES_PER_ROUND / e, straight: BYTES_PER_ROUND / s, atcMisses: misses() - m0 });
  }
  // What a descriptor costs without data: the same ring, doorbells and completion records, NOOP descriptors.
  const NOOPS = 512;
  for (const t0 = performance.now(); performance.now() - t0 < WARM_MS;) copies(0, NOOPS, OPCODE.NOOP);
  let noop = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    copies(0, NOOPS, OPCODE.NOOP);
    noop = Math.min(noop, Number(process.hrtime.bigint() - t0) / NOOPS);
  }
  return { rates: out, noopNs: noop };
}

export function engineFigures(kind: MachineKind = 'q35-vtd'): Figures {
  const { rates, noopNs } = memmoveRates(kind);
  const figures: Figures = {};
  const machine = kind === 'q35-vtd' ? 'vtd' : 'smmuv3';
  figures[`engine.noop.${machine}.ns_per_desc`] = {
    value: noopNs, unit: 'ns', target: 'orientation (a NOOP descriptor with a completion record: fetch, decode, two events, record; what every descriptor pays before its data)',
  };
  for (const [size, r] of rates) {
    const label = `${machine}.${size / 1024}k`;
    if (r.atcMisses !== 0) throw new Error(`MEMMOVE ${label}: ${r.atcMisses} ATC misses in the timed loop (not warm)`);
    const target = size === 4096 ? '>= 0.2' : '>= 0.75';
    figures[`engine.memmove.${label}.ratio`] = { value: r.engine / r.straight, unit: 'ratio', target: `${target} (engine / straight copy in guest memory; 1 = memcpy speed)` };
    figures[`engine.memmove.${label}.gb_per_s`] = { value: r.engine / 1e9, unit: 'GB/s', target: `orientation (straight copy ${(r.straight / 1e9).toFixed(2)} GB/s)` };
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  console.log(engineFigures((process.argv[2] as MachineKind | undefined) ?? 'q35-vtd'));
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
