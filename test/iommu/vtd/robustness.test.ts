import t from 'tap';
import fc from 'fast-check';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { PGTT_FIRST_STAGE, VTD_REGS } from '../../../iommu/vtd/index.ts';
import { newTranslationAnswer } from '../../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../../src/pci/transaction.ts';
import { Fx, PAGE, R } from './helpers.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;

t.test('the model never throws and always terminates on garbage tables, registers and descriptors', async (t) => {
  const word = fc.integer({ min: 0, max: 0xffff_ffff });
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(word, { minLength: 64, maxLength: 64 }),
      fc.array(fc.tuple(fc.constantFrom(...VTD_REGS.specs.map((s) => s.offset), 0x220, 0x22c), word), { maxLength: 12 }),
      fc.array(fc.record({ addr: fc.integer({ min: 0, max: 2 ** 48 }), pasid: fc.integer({ min: -1, max: 2 ** 20 - 1 }), write: fc.boolean(), priv: fc.boolean(), exec: fc.boolean() }), { maxLength: 8 }),
      (scalable, junk, regs, dmas) => {
        const fx = new Fx({ faultRecords: 2, iotlbEntries: 4 });
        // Root, context, directory and PASID table pages all filled with the same junk, pointing at each other.
        const pages = [fx.page(), fx.page(), fx.page(), fx.page()];
        for (const p of pages) for (let i = 0; i < PAGE / 4; i++) fx.mem.write32(p + 4 * i, junk[i % 64]!);
        fx.w32(R.FECTL!, 0);
        fx.w32(R.FEADDR!, 0xfee0_0000);
        fx.setRoot(pages[0]!, scalable ? 1 : 0);
        fx.enable();
        fx.queue(scalable);
        fx.submit(...Array.from({ length: 8 }, (_, k) => Uint32Array.from(junk.slice(k * 8, k * 8 + 8))));
        for (const [off, v] of regs) fx.w32(off, v);
        for (const d of dmas) {
          const attrs = d.pasid >= 0 ? { pasid: d.pasid, privileged: d.priv, exec: d.exec } : undefined;
          const r = d.write ? fx.writeDma(d.addr, [1, 2, 3, 4], attrs) : fx.read(d.addr, 8, attrs);
          if (!r.ok && r.fault === '') return false;
        }
        return true;
      },
    ),
    { numRuns: 150, seed: 7 },
  );
  t.pass('no exception');
});

t.test('ATS and PRI traffic on garbage tables and queues never throws; every scheduled event ends', async (t) => {
  const word = fc.integer({ min: 0, max: 0xffff_ffff });
  const sid = fc.integer({ min: 0, max: 0xffff });
  fc.assert(
    fc.property(
      fc.array(word, { minLength: 64, maxLength: 64 }),
      fc.array(
        fc.oneof(
          fc.record({ k: fc.constant('treq' as const), sid, addr: fc.integer({ min: 0, max: 2 ** 48 }), pasid: fc.integer({ min: -1, max: 2 ** 20 - 1 }), len: fc.integer({ min: 0, max: 2 ** 22 }), nw: fc.boolean() }),
          fc.record({ k: fc.constant('preq' as const), sid, addr: fc.integer({ min: 0, max: 2 ** 48 }), pasid: fc.integer({ min: -1, max: 2 ** 20 - 1 }), last: fc.boolean(), prg: fc.integer({ min: 0, max: 511 }) }),
          fc.record({ k: fc.constant('done' as const), sid, tags: word, cc: fc.integer({ min: 0, max: 9 }) }),
        ),
        { maxLength: 24 },
      ),
      (junk, msgs) => {
        const fx = new Fx({ faultRecords: 2, iotlbEntries: 4, atsInvalidationTimeoutNs: 1000 });
        const pages = [fx.page(), fx.page(), fx.page(), fx.page()];
        for (const p of pages) for (let i = 0; i < PAGE / 4; i++) fx.mem.write32(p + 4 * i, junk[i % 64]!);
        fx.w64(R.PQA!, pages[3]!);
        fx.w32(R.PECTL!, 0);
        fx.setRoot(pages[0]!, 1);
        fx.enable();
        fx.queue(true);
        // Junk descriptors with device-TLB (3, 8), page group response (9) and wait (5) types.
        const types = [3, 8, 9, 5, 3, 8, 5, 9];
        fx.submit(...types.map((ty, k) => Uint32Array.from(junk.slice(k * 8, k * 8 + 8), (v, i) => (i === 0 ? (v & ~0xe0f) | ty : v))));
        for (const m of msgs) {
          if (m.k === 'treq') {
            const c = fx.vtd.atsTranslate({ requesterId: m.sid, pasid: m.pasid, privileged: false, exec: false, addr: m.addr, length: m.len, noWrite: m.nw });
            if (c.status === 'SC' && c.entries.some((e) => e.size < PAGE || e.untranslatedAddr % e.size !== 0)) return false;
          } else if (m.k === 'preq') {
            fx.vtd.pageRequest({ requesterId: m.sid, pasid: m.pasid, privileged: false, exec: false, addr: m.addr - (m.addr % PAGE), read: true, write: false, last: m.last, prgIndex: m.prg });
          } else {
            fx.vtd.atsInvalidationCompleted(m.sid, m.tags, m.cc);
          }
        }
        return fx.board.scheduler.run(10_000) < 10_000;
      },
    ),
    { numRuns: 100, seed: 11 },
  );
  t.pass('no exception');
});

t.test('hot path: IOTLB hits neither walk nor refetch structures, and are fast', async (t) => {
  const fx = new Fx();
  const fs = fx.fs();
  t.equal(fs.map(IOVA, PA, 2 ** 21, IOMMU_READ | IOMMU_WRITE), 0);
  const { dir } = fx.scalable();
  fx.pasid(dir, 1, { PGTT: PGTT_FIRST_STAGE, DID: 1, FSPTPTR: fs.root / PAGE });
  fx.enable();
  const txn: DmaTransaction = { requesterId: fx.sid, pasid: 1, privileged: false, exec: false, at: 'untranslated', addr: IOVA, length: 64, write: false };
  const out = newTranslationAnswer();
  t.ok(fx.vtd.translate(txn, IOVA, out));
  const walks = fx.board.counters.get('vtd.walks');
  const n = 200_000;
  const start = performance.now();
  let sum = 0;
  for (let i = 0; i < n; i++) {
    fx.vtd.translate(txn, IOVA + ((i * 64) % 2 ** 21), out);
    sum += out.pa;
  }
  const ms = performance.now() - start;
  t.ok(sum > 0);
  t.equal(fx.board.counters.get('vtd.walks'), walks, 'no walk');
  t.equal(fx.board.counters.get('vtd.iotlb.hit'), n);
  t.equal(fx.vtd.iotlb.size, 1, 'one 2 MiB entry');
  // Orientation only (a wall-clock bound fails on a loaded machine); speed is a bench row.
  t.comment(`${n} hits in ${ms.toFixed(1)} ms, ${((ms * 1e6) / n).toFixed(0)} ns per IOTLB hit`);
});

t.test('an IOTLB of N entries evicts the least recently used', async (t) => {
  const fx = new Fx({ iotlbEntries: 2 });
  const ss = fx.ss();
  for (let i = 0; i < 3; i++) t.equal(ss.map(IOVA + i * PAGE, PA + i * PAGE, PAGE, IOMMU_READ), 0);
  fx.legacy({ TT: 0, AW: 2, DID: 1, SLPTPTR: ss.root / PAGE });
  fx.enable();
  fx.read(IOVA);
  fx.read(IOVA + PAGE);
  fx.read(IOVA);
  fx.read(IOVA + 2 * PAGE); // evicts IOVA + PAGE
  t.equal(fx.board.counters.get('vtd.iotlb.evict'), 1);
  const walks = fx.board.counters.get('vtd.walks');
  fx.read(IOVA);
  t.equal(fx.board.counters.get('vtd.walks'), walks, 'IOVA was recently used: still cached');
  fx.read(IOVA + PAGE);
  t.equal(fx.board.counters.get('vtd.walks'), walks + 1);
});
