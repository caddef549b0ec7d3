/** Fuzzing of the hardware surfaces: IOMMU registers and tables, and the DMA engine (see tools/fault/fuzz.ts). */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { DESCRIPTOR, DESC_BYTES } from '../../devices/dma-engine/descriptor.ts';
import { DMAE_REGISTERS, DMAE_REGS, regValue, WQ_REG, WQ_REGISTERS, wqReg } from '../../devices/dma-engine/regs.ts';
import { setBits, type BitField } from '../../src/hw/layout.ts';
import { SMMU_REGS } from '../../iommu/smmuv3/regs.ts';
import { VTD_REGS } from '../../iommu/vtd/regs.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { Prng } from '../../src/sim/prng.ts';
import * as VFIO from '../../src/uapi/vfio.ts';
import { checkInvariants, formatViolations, guard } from './invariants.ts';
import { DEV0, PAGE, U64_MAX, dmaRound, finish, must, newReport, outcomeOf, randomU64, tally, vfioWorld, type FuzzOptions, type FuzzReport } from './fuzz-common.ts';

/** Random writes to the IOMMU's registers (fresh values and bit flips), each followed by DMAs and a VFIO map/unmap. */
export function fuzzIommuRegisters(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('iommu-regs', kind, seed);
  const cases = opts.cases ?? 100;
  const rnd = new Prng(seed).fork('iommu-regs');
  const perMachine = 10;
  for (let base = 0; base < cases; base += perMachine) {
    const m = createMachine(kind, { seed: seed + base });
    const s = guard(m, () => vfioWorld(m));
    if ('exception' in s) {
      report.problems.push(`${kind} iommu-regs setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const { iommuBase, iommuSize } = m.board.layout;
    for (let i = base; i < Math.min(cases, base + perMachine); i++) {
      const t0 = performance.now();
      // Registers live mostly in the first 0x200 bytes (and SMMUv3 page 1 at 0x10000).
      const span = rnd.chance(0.8) ? Math.min(0x200, iommuSize) : iommuSize;
      let off = rnd.int(0, span / 8 - 1) * 8 + (rnd.chance(0.3) ? 4 : 0);
      if (kind === 'virt-smmuv3' && rnd.chance(0.15)) off = 0x1_0000 + rnd.int(0, 0x1f) * 8;
      const wide = rnd.chance(0.4) && off % 8 === 0;
      const target = `${kind} reg 0x${off.toString(16)}`;
      const g = guard(m, () => {
        const addr = iommuBase + off;
        if (wide) {
          const cur = m.board.sysmem.read64(addr);
          const v = rnd.chance(0.5) ? randomU64(rnd) : cur ^ (1n << BigInt(rnd.int(0, 63)));
          m.board.sysmem.write64(addr, v);
        } else {
          const cur = m.board.sysmem.read32(addr);
          const v = rnd.chance(0.5) ? rnd.nextU32() : (cur ^ (1 << rnd.int(0, 31))) >>> 0;
          m.board.sysmem.write32(addr, v);
        }
      });
      report.cases++;
      tally(report, 'register writes', 'exception' in g ? 'exception' : 'ok');
      if ('exception' in g) report.problems.push(`${target} (seed ${seed} case ${i}): the write threw ${g.exception.split('\n')[0]}`);
      dmaRound(m, rnd, report, 'after register write', [0x10_0000n, 0x10_8000n, 0x20_0000n, w.buf]);
      // The driver programs hardware after the write: map and unmap through VFIO.
      const iova = BigInt(0x80_0000 + (i % perMachine) * 0x1_0000);
      const mr = guard(m, () => w.v.mapDma(w.container, { vaddr: w.buf, iova, size: 2 * PAGE }));
      const ur = guard(m, () => w.v.unmapDma(w.container, { iova, size: 2 * PAGE }));
      for (const r of [mr, ur]) {
        if ('exception' in r) report.problems.push(`${target} (seed ${seed} case ${i}): the driver threw ${r.exception.split('\n')[0]}`);
        else tally(report, 'VFIO map/unmap after register writes', typeof r.value === 'bigint' ? 'ok' : outcomeOf(r.value));
      }
      report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
    }
    finish(m, report, `${kind} iommu-regs machine ${base / perMachine}`, false);
  }
  return report;
}

// --- IOMMU tables -----------------------------------------------------------------------

const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** The table pages reachable from `roots` by following qwords that look like page pointers into RAM (depth 4, at most 64 pages). */
function tablePages(m: Machine, roots: readonly number[]): number[] {
  const ramEnd = m.board.layout.ram.reduce((e, r) => Math.max(e, r.gpa + r.size), 0);
  const seen = new Set<number>();
  let frontier = roots.map((r) => r - (r % PAGE));
  for (let depth = 0; depth < 4 && frontier.length > 0 && seen.size < 64; depth++) {
    const next: number[] = [];
    for (const pg of frontier) {
      if (seen.has(pg) || seen.size >= 64) continue;
      seen.add(pg);
      const bytes = new Uint8Array(PAGE);
      m.board.sysmem.readInto(pg, bytes);
      const dv = new DataView(bytes.buffer);
      for (let o = 0; o < PAGE; o += 8) {
        const q = dv.getBigUint64(o, true);
        if ((q & 1n) === 0n && (q & 0xfffn) !== 0n) continue;
        const a = Number(q & ADDR_MASK);
        if (a !== 0 && a < ramEnd && !seen.has(a)) next.push(a);
      }
    }
    frontier = next;
  }
  return [...seen];
}

/** Where the tables and queues the driver programmed start: the IOMMU's base-address registers, read by field. */
function tableRoots(m: Machine): number[] {
  const base = m.board.layout.iommuBase;
  const words = (offset: number) => {
    const v = m.board.sysmem.read64(base + offset);
    return [Number(BigInt.asUintN(32, v)), Number(v >> 32n)];
  };
  // Address bits above 51 are not address bits.
  const addr = (field: number, lsb: number) => (field % 2 ** (52 - lsb)) * 2 ** lsb;
  if (m.board.layout.kind === 'virt-smmuv3') {
    // SMMU_STRTAB_BASE.ADDR [55:6]; the queue bases' ADDR [55:5].
    return (['STRTAB_BASE', 'CMDQ_BASE', 'EVENTQ_BASE', 'PRIQ_BASE'] as const)
      .map((r) => addr(SMMU_REGS.get(r, words(SMMU_REGS.offset(r)), 'ADDR'), SMMU_REGS.field(r, 'ADDR').lsb))
      .filter((a) => a !== 0);
  }
  // VT-d RTADDR.RTA [63:12], IQA.IQA [63:12].
  return [
    addr(VTD_REGS.get('RTADDR', words(VTD_REGS.offset('RTADDR')), 'RTA'), 12),
    addr(VTD_REGS.get('IQA', words(VTD_REGS.offset('IQA')), 'IQA'), 12),
  ].filter((a) => a !== 0);
}

/** Random contents in the IOMMU's tables (STE/CD, root/context/PASID entries, page tables), then DMAs from cold caches. */
export function fuzzIommuTables(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('iommu-tables', kind, seed);
  const cases = opts.cases ?? 60;
  const rnd = new Prng(seed).fork('iommu-tables');
  for (let i = 0; i < cases; i++) {
    const t0 = performance.now();
    const m = createMachine(kind, { seed: seed + i });
    const s = guard(m, () => {
      const w = vfioWorld(m);
      const pasid = rnd.chance(0.6) ? w.v.bindProcess(w.container) : -1;
      return { ...w, pasid };
    });
    if ('exception' in s) {
      report.problems.push(`${kind} iommu-tables setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const pages = tablePages(m, tableRoots(m));
    const writes = rnd.int(1, 6);
    const what: string[] = [];
    for (let k = 0; k < writes && pages.length > 0; k++) {
      const pg = pages[rnd.int(0, pages.length - 1)]!;
      // Prefer non-zero (live) entries.
      let off = rnd.int(0, PAGE / 8 - 1) * 8;
      if (rnd.chance(0.7)) {
        for (let tries = 0; tries < 64; tries++) {
          const o = rnd.int(0, PAGE / 8 - 1) * 8;
          if (m.board.sysmem.read64(pg + o) !== 0n) {
            off = o;
            break;
          }
        }
      }
      const cur = m.board.sysmem.read64(pg + off);
      const mode = rnd.int(0, 3);
      const v = mode === 0 ? randomU64(rnd) : mode === 1 ? cur ^ (1n << BigInt(rnd.int(0, 63))) : mode === 2 ? (rnd.chance(0.5) ? 0n : U64_MAX) : cur ^ (randomU64(rnd) & 0xffn);
      m.board.sysmem.write64(pg + off, v);
      what.push(`0x${(pg + off).toString(16)}: 0x${cur.toString(16)} -> 0x${v.toString(16)}`);
    }
    report.cases++;
    const target = `${kind} tables`;
    tally(report, target, `${pages.length >= 8 ? '8+' : pages.length} table pages found`);
    const before = report.byTarget[target]?.outcomes.exception ?? 0;
    dmaRound(m, rnd, report, target, [0x10_0000n, 0x10_4000n, 0x10_f000n]);
    if (w.pasid >= 0) dmaRound(m, rnd, report, `${target} (PASID)`, [w.buf, w.buf + 0x8000n], w.pasid);
    if ((report.byTarget[target]?.outcomes.exception ?? 0) > before || (report.byTarget[`${target} (PASID)`]?.outcomes.exception ?? 0) > 0) {
      report.problems.push(`${target} case ${i} (seed ${seed}): an exception with ${what.join('; ')}`);
    }
    finish(m, report, `${target} case ${i} (seed ${seed}; ${what.join('; ')})`, false);
    report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
  }
  return report;
}

// --- DMA engine -------------------------------------------------------------------------

/** BAR writes through the VFIO device fd and random descriptors in a ring and portals. */
export function fuzzDmaEngine(kind: MachineKind, opts: FuzzOptions = {}): FuzzReport {
  const seed = opts.seed ?? 1;
  const report = newReport('dma-engine', kind, seed);
  const cases = opts.cases ?? 150;
  const rnd = new Prng(seed).fork('dma-engine');
  const perMachine = 25;
  const RING = 0x10_0000n;
  for (let base = 0; base < cases; base += perMachine) {
    const m = createMachine(kind, { seed: seed + base });
    const s = guard(m, () => {
      const w = vfioWorld(m);
      const dev = w.v.deviceFd(w.group, DEV0);
      must('device fd', dev);
      const bar0 = w.v.regionInfo(dev, 0);
      const bar4 = w.v.regionInfo(dev, 4);
      const cfg = w.v.regionInfo(dev, VFIO.VFIO_PCI_CONFIG_REGION_INDEX);
      if (typeof bar0 === 'number' || typeof bar4 === 'number' || typeof cfg === 'number') throw new Error('fuzz setup: region info');
      // Memory and Bus Master on, through config space as a VMM does.
      const cmd = new Uint8Array([COMMAND.MEMORY | COMMAND.MASTER, 0]);
      w.p.pwrite(dev, cmd, cfg.offset + BigInt(CFG.COMMAND));
      return { ...w, dev, bar0: bar0.offset, bar4: bar4.offset };
    });
    if ('exception' in s) {
      report.problems.push(`${kind} dma-engine setup threw ${s.exception.split('\n')[0]}`);
      break;
    }
    const w = s.value;
    const w32 = (off: bigint, v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v >>> 0, true);
      return w.p.pwrite(w.dev, b, off);
    };
    // A sane start: enabled device and WQ0 on a 16-entry ring at IOVA RING, half of the time.
    if (rnd.chance(0.5)) {
      w32(w.bar0 + BigInt(DMAE_REGS.GENCTRL), regValue(DMAE_REGISTERS.GENCTRL, { ENABLE: 1 }));
    }
    for (let i = base; i < Math.min(cases, base + perMachine); i++) {
      const t0 = performance.now();
      const what: string[] = [];
      const g = guard(m, () => {
        const kindOfCase = rnd.int(0, 3);
        if (kindOfCase === 0) {
          // A register write in BAR0.
          const off = rnd.chance(0.7) ? wqReg(rnd.int(0, 3), rnd.int(0, 15) * 4) : rnd.int(0, 0x3ff) * 4;
          const v = rnd.chance(0.3) ? [0, 1, 3, 7, 0xffffffff, 16, 8][rnd.int(0, 6)]! : rnd.nextU32();
          what.push(`BAR0+0x${off.toString(16)} = 0x${(v >>> 0).toString(16)}`);
          return w32(w.bar0 + BigInt(off), v);
        }
        if (kindOfCase === 1) {
          // A ring bring-up with random parameters, then a tail write.
          const wq = rnd.int(0, 1);
          const reg = (r: number) => w.bar0 + BigInt(wqReg(wq, r));
          w32(reg(WQ_REG.CFG), 0);
          w32(reg(WQ_REG.RING_BASE), Number(RING));
          w32(reg(WQ_REG.RING_BASE + 4), 0);
          w32(reg(WQ_REG.RING_SIZE), rnd.chance(0.8) ? 16 : rnd.nextU32());
          w32(reg(WQ_REG.PASID), rnd.chance(0.7) ? 0 : rnd.nextU32());
          w32(reg(WQ_REG.CFG), rnd.chance(0.8) ? regValue(WQ_REGISTERS.CFG, { ENABLE: 1 }) : rnd.int(0, 7));
          what.push('ring bring-up');
          return w32(reg(WQ_REG.TAIL), rnd.int(0, 20));
        }
        // A descriptor: valid-looking (MEMMOVE/FILL/COMPARE within the mapped buffer) then mutated.
        const F = DESCRIPTOR.fields;
        const words = new Uint32Array(DESC_BYTES / 4);
        const set64 = (lo: BitField, hi: BitField, v: bigint) => {
          setBits(words, lo, Number(v & 0xffff_ffffn));
          setBits(words, hi, Number((v >> 32n) & 0xffff_ffffn));
        };
        setBits(words, F.OPCODE, rnd.int(0, 4));
        setBits(words, F.RCR, rnd.chance(0.5) ? 1 : 0);
        set64(F.COMPL_LO, F.COMPL_HI, rnd.chance(0.8) ? RING + 0xf000n : randomU64(rnd));
        set64(F.SRC_LO, F.SRC_HI, rnd.chance(0.8) ? RING + BigInt(rnd.int(0, 15) * PAGE) : randomU64(rnd));
        set64(F.DST_LO, F.DST_HI, rnd.chance(0.8) ? RING + BigInt(rnd.int(0, 15) * PAGE) : randomU64(rnd));
        setBits(words, F.LENGTH, rnd.chance(0.8) ? rnd.int(0, 2 * PAGE) : rnd.nextU32());
        const d = new Uint8Array(words.buffer);
        const dv = new DataView(d.buffer);
        for (let k = rnd.int(0, 3); k > 0; k--) d[rnd.int(0, 63)]! ^= 1 << rnd.int(0, 7);
        if (kindOfCase === 2) {
          // Into the ring (process memory mapped at IOVA RING): slot n, then TAIL.
          const slot = rnd.int(0, 15);
          w.p.memWrite(w.buf + BigInt(slot * 64), d);
          what.push(`ring slot ${slot}: ${Buffer.from(d.subarray(0, 40)).toString('hex')}`);
          return w32(w.bar0 + BigInt(wqReg(0, WQ_REG.TAIL)), (slot + 1) % 17);
        }
        // Through the portal of WQ0 (sixteen 32-bit writes).
        for (let k = 0; k < 64; k += 4) w32(w.bar4 + BigInt(k), dv.getUint32(k, true));
        what.push(`portal: ${Buffer.from(d.subarray(0, 40)).toString('hex')}`);
        return 0;
      });
      report.cases++;
      if ('exception' in g) {
        tally(report, 'dma-engine', 'exception');
        report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): threw ${g.exception.split('\n')[0]}`);
      } else tally(report, 'dma-engine', typeof g.value === 'number' && g.value < 0 ? outcomeOf(g.value) : 'ok');
      const r = guard(m, () => m.board.scheduler.run(20_000));
      if ('exception' in r) report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): running the device threw ${r.exception.split('\n')[0]}`);
      else if (r.value >= 20_000) report.problems.push(`${kind} dma-engine case ${i}: still busy after 20000 events`);
      // The device moved bytes only inside mapped memory: VFIO's own invariants still hold.
      const v = checkInvariants(m, { dma: (i + 1) % 25 === 0 }).filter((x) => x.kind !== 'exception');
      if (v.length > 0) {
        report.violations += v.length;
        report.problems.push(`${kind} dma-engine case ${i} (seed ${seed}; ${what.join('; ')}): ${formatViolations(v)}`);
      }
      report.slowestMs = Math.max(report.slowestMs, performance.now() - t0);
    }
    finish(m, report, `${kind} dma-engine machine ${base / perMachine}`, false);
  }
  return report;
}

