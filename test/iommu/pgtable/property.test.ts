/**
 * Random map/unmap sequences, every format and granule: the builder, the
 * hardware walker over the builder's tables, and a plain reference model of
 * leaves must agree on every result, translation, page size and permission,
 * and the tables must shrink back to the root.
 */
import t from 'tap';
import fc from 'fast-check';
import { createVmsaBuilder, type VmsaBuilderConfig } from '../../../iommu/pgtable/vmsa-builder.ts';
import { VmsaWalker } from '../../../iommu/pgtable/vmsa-walker.ts';
import { createIa32eBuilder } from '../../../iommu/pgtable/ia32e-builder.ts';
import { Ia32eWalker } from '../../../iommu/pgtable/ia32e-walker.ts';
import { createVtdSsBuilder } from '../../../iommu/pgtable/vtd-ss-builder.ts';
import { VtdSsWalker } from '../../../iommu/pgtable/vtd-ss-walker.ts';
import { ACCESS_PRIV, ACCESS_WRITE, FaultKind, WalkResult, type PageTableWalker } from '../../../iommu/pgtable/types.ts';
import { IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, type PageTableBuilder } from '../../../src/iommu-core/io-pgtable.ts';
import { EEXIST, ENOMEM } from '../../../src/uapi/errno.ts';
import { TestAllocator, bigRam } from './helpers.ts';

interface Subject {
  builder: PageTableBuilder;
  walker: PageTableWalker;
  alloc: TestAllocator;
  oaBits: number;
}

type Factory = () => Subject;

const TABLES = 2 ** 41;

function vmsa(cfg: VmsaBuilderConfig): Factory {
  return () => {
    const ram = bigRam();
    const alloc = new TestAllocator(ram, TABLES, TABLES + 2 ** 32);
    const b = createVmsaBuilder(ram, alloc, cfg);
    if (typeof b === 'number') throw new Error(`vmsa builder ${b}`);
    const walker = new VmsaWalker(ram, {
      stage: cfg.stage, granule: cfg.granule, tsz: b.tsz, sl0: b.sl0, sl2: b.sl2, ttb: b.root, oaBits: cfg.oaBits, ds: cfg.ds,
    });
    return { builder: b, walker, alloc, oaBits: cfg.oaBits };
  };
}

function ia32e(levels: 4 | 5): Factory {
  return () => {
    const ram = bigRam();
    const alloc = new TestAllocator(ram, TABLES, TABLES + 2 ** 32);
    const b = createIa32eBuilder(ram, alloc, { levels, maxPhysBits: 52 });
    if (typeof b === 'number') throw new Error('ia32e builder');
    const walker = new Ia32eWalker(ram, { levels, root: b.root, maxPhysBits: 52, nxe: true, wp: true });
    return { builder: b, walker, alloc, oaBits: 52 };
  };
}

function vtdss(levels: 3 | 4 | 5): Factory {
  return () => {
    const ram = bigRam();
    const alloc = new TestAllocator(ram, TABLES, TABLES + 2 ** 32);
    const b = createVtdSsBuilder(ram, alloc, { levels, haw: 48 });
    if (typeof b === 'number') throw new Error('vtd-ss builder');
    const walker = new VtdSsWalker(ram, { levels, root: b.root, haw: 48 });
    return { builder: b, walker, alloc, oaBits: 48 };
  };
}

const FORMATS: [string, Factory][] = [
  ['VMSAv8 stage 1, 4K', vmsa({ stage: 1, granule: 4096, iaBits: 48, oaBits: 48 })],
  ['VMSAv8 stage 2, 4K, concatenated', vmsa({ stage: 2, granule: 4096, iaBits: 40, oaBits: 44 })],
  ['VMSAv8 stage 1, 4K, LPA2 52-bit', vmsa({ stage: 1, granule: 4096, iaBits: 52, oaBits: 52, ds: true })],
  ['VMSAv8 stage 1, 16K', vmsa({ stage: 1, granule: 16384, iaBits: 47, oaBits: 48 })],
  ['VMSAv8 stage 2, 16K, concatenated', vmsa({ stage: 2, granule: 16384, iaBits: 42, oaBits: 48 })],
  ['VMSAv8 stage 1, 64K, 52-bit', vmsa({ stage: 1, granule: 65536, iaBits: 52, oaBits: 52 })],
  ['VMSAv8 stage 2, 64K', vmsa({ stage: 2, granule: 65536, iaBits: 48, oaBits: 48 })],
  ['IA-32e 4-level', ia32e(4)],
  ['IA-32e 5-level', ia32e(5)],
  ['VT-d second stage, 3-level', vtdss(3)],
  ['VT-d second stage, 4-level', vtdss(4)],
  ['VT-d second stage, 5-level', vtdss(5)],
];

interface Leaf {
  iova: number;
  size: number;
  pa: number;
  prot: number;
}

/** The reference: leaves keyed by their (size-aligned) start. */
class RefModel {
  readonly leaves = new Map<number, Leaf>();
  constructor(private readonly pgsizes: readonly number[]) {}

  find(a: number): Leaf | undefined {
    for (const s of this.pgsizes) {
      const l = this.leaves.get(a - (a % s));
      if (l !== undefined && l.size === s) return l;
    }
    return undefined;
  }

  map(iova: number, pa: number, size: number, prot: number): number {
    for (const l of this.leaves.values()) {
      if (l.iova < iova + size && iova < l.iova + l.size) return -EEXIST;
    }
    for (let done = 0; done < size; ) {
      let s = this.pgsizes[0]!;
      for (const c of this.pgsizes) {
        if (c <= size - done && (iova + done) % c === 0 && (pa + done) % c === 0) s = c;
      }
      this.leaves.set(iova + done, { iova: iova + done, size: s, pa: pa + done, prot });
      done += s;
    }
    return 0;
  }

  unmap(iova: number, size: number): number {
    let cursor = iova;
    while (cursor < iova + size) {
      const l = this.find(cursor);
      if (l === undefined) break;
      this.leaves.delete(l.iova);
      cursor = l.iova + l.size;
    }
    return cursor - iova;
  }
}

const opArb = fc.record({
  unmap: fc.boolean(),
  m: fc.nat(3),
  n: fc.nat(7),
  alIdx: fc.nat(5),
  k: fc.integer({ min: 1, max: 2 }),
  j: fc.nat(2),
  p: fc.nat(7),
  q: fc.nat(7),
  paDown: fc.boolean(),
  prot: fc.constantFrom(IOMMU_READ, IOMMU_READ | IOMMU_WRITE, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC),
  probe: fc.nat(),
  failAlloc: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 4 })),
});

function checkLeaf(subject: Subject, l: Leaf, offset: number, r: WalkResult): string | null {
  const a = l.iova + (offset % l.size);
  if (subject.builder.iovaToPhys(a) !== l.pa + (a - l.iova)) return `iovaToPhys(0x${a.toString(16)})`;
  if (!subject.walker.walk(a, ACCESS_PRIV, r)) return `walk(0x${a.toString(16)}) fault ${r.fault}@${r.level}`;
  if (r.outputAddr !== l.pa + (a - l.iova) || r.pageSize !== l.size) return `walk(0x${a.toString(16)}) → 0x${r.outputAddr.toString(16)}/${r.pageSize}`;
  const writable = subject.walker.walk(a, ACCESS_PRIV | ACCESS_WRITE, r);
  if (writable !== ((l.prot & IOMMU_WRITE) !== 0)) return `write permission at 0x${a.toString(16)}`;
  return null;
}

for (const [name, factory] of FORMATS) {
  t.test(`${name}: builder, walker and reference agree over random map/unmap`, async (t) => {
    const pgsizes = factory().builder.pgsizes;
    const min = pgsizes[0]!;
    const big = pgsizes[pgsizes.length - 1]!;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 14 }), (ops) => {
        const subject = factory();
        const { builder, alloc } = subject;
        const ref = new RefModel(pgsizes);
        const r = new WalkResult();
        const paBase = 2 ** (subject.oaBits - 2);
        for (const op of ops) {
          const al = pgsizes[op.alIdx % pgsizes.length]!;
          let iova = big * op.m + al * op.n;
          if (op.unmap) {
            // Half the unmaps aim inside an existing leaf, often not at its start.
            if (op.n % 2 === 0 && ref.leaves.size > 0) {
              const target = [...ref.leaves.values()][op.probe % ref.leaves.size]!;
              iova = target.iova + min * (op.q % (target.size / min));
            }
            const size = op.j === 0 ? al * op.k : min * op.j;
            const got = builder.unmap(iova, size);
            const want = ref.unmap(iova, size);
            if (got !== want) throw new Error(`unmap(0x${iova.toString(16)}, 0x${size.toString(16)}) = ${got}, want ${want}`);
          } else {
            const idx = pgsizes.indexOf(al);
            // Sometimes align pa one size lower than iova, forcing smaller leaves (at most 512 of them).
            const lower = idx > 0 && op.paDown && al / pgsizes[idx - 1]! <= 512 ? pgsizes[idx - 1]! : al;
            const pa = paBase + big * op.p + lower * op.q;
            const size = al * op.k + min * op.j;
            // Sometimes make one of the next allocations fail: all-or-nothing then.
            const before = { pages: builder.stats.tablePages, leaves: builder.stats.leaves, live: alloc.liveCount };
            alloc.failOnCall = op.failAlloc > 0 ? alloc.allocCalls + op.failAlloc : 0;
            const got = builder.map(iova, pa, size, op.prot);
            alloc.failOnCall = 0;
            if (got === -ENOMEM) {
              const after = { pages: builder.stats.tablePages, leaves: builder.stats.leaves, live: alloc.liveCount };
              if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`ENOMEM changed state: ${JSON.stringify(after)}`);
              continue;
            }
            const want = ref.map(iova, pa, size, op.prot);
            if (got !== want) throw new Error(`map(0x${iova.toString(16)}, 0x${pa.toString(16)}, 0x${size.toString(16)}) = ${got}, want ${want}`);
          }
          // Probe one address after every step: mapped or not, all three agree.
          const probe = big * (op.probe % 4) + min * (op.probe % 4099);
          const l = ref.find(probe);
          if (l === undefined) {
            if (builder.iovaToPhys(probe) !== -1) throw new Error(`0x${probe.toString(16)} should be unmapped`);
            if (subject.walker.walk(probe, ACCESS_PRIV, r) || r.fault !== FaultKind.Translation) throw new Error('walker sees a mapping');
          } else {
            const err = checkLeaf(subject, l, probe - l.iova, r);
            if (err !== null) throw new Error(err);
          }
        }
        if (builder.stats.leaves !== ref.leaves.size) throw new Error(`leaves ${builder.stats.leaves} vs ${ref.leaves.size}`);
        let i = 0;
        for (const l of ref.leaves.values()) {
          if (i++ % Math.max(1, Math.floor(ref.leaves.size / 24)) !== 0) continue;
          const err = checkLeaf(subject, l, l.size - 1, r) ?? checkLeaf(subject, l, 0, r);
          if (err !== null) throw new Error(err);
        }
        for (const l of [...ref.leaves.values()]) {
          if (builder.unmap(l.iova, l.size) !== l.size) throw new Error('final unmap');
        }
        if (builder.stats.tablePages !== 1 || alloc.liveCount !== 1) throw new Error(`tables left: ${builder.stats.tablePages}`);
        builder.destroy();
        if ((alloc.liveCount as number) !== 0 || alloc.errors.length > 0) throw new Error(`allocator: ${alloc.liveCount} live, ${alloc.errors.join('; ')}`);
        return true;
      }),
      { numRuns: 100 },
    );
    t.pass('100 random sequences agree');
  });
}
