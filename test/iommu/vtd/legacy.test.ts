import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { CONTEXT_ENTRY, FSTS_PPF, GCMD_TE, ROOT_ENTRY, TT_PASSTHROUGH } from '../../../iommu/vtd/index.ts';
import type { VtdOptions } from '../../../iommu/vtd/vtd.ts';
import { Fx, PAGE, R } from './helpers.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;

/** Legacy mode, device context TT=00 AW=2 (4-level) DID 5 over a second-stage table mapping IOVA → PA. */
function setup(ctx: Record<string, number> = {}, prot = RW, opts: VtdOptions = {}) {
  const fx = new Fx(opts);
  const ss = fx.ss();
  if (ss.map(IOVA, PA, PAGE, prot) !== 0) throw new Error('map');
  const ctxAt = fx.legacy({ TT: 0, AW: 2, DID: 5, SLPTPTR: ss.root / PAGE, ...ctx });
  fx.enable();
  return { fx, ss, ctxAt };
}

t.test('legacy mode: root entry → context entry → second-stage tables translate a DMA, then the IOTLB hits', async (t) => {
  const { fx } = setup();
  fx.mem.write32(PA + 8, 0x1122_3344);
  const r = fx.read(IOVA + 8);
  t.ok(r.ok);
  t.same(r.ok && [...r.data!], [0x44, 0x33, 0x22, 0x11]);
  t.same(fx.writeDma(IOVA + 0x10, [9, 8, 7, 6]), { ok: true });
  t.equal(fx.mem.read32(PA + 0x10), 0x0607_0809);
  t.equal(fx.board.counters.get('vtd.walks'), 1, 'one walk; the write hit the IOTLB');
  t.equal(fx.board.counters.get('vtd.iotlb.hit'), 1);
  t.equal(fx.board.counters.get('vtd.context_cache.miss'), 1);
});

t.test('a write to a read-only page aborts with reason 0x5, recorded in FRCD 0 with SID, type and page address', async (t) => {
  const { fx } = setup({}, IOMMU_READ);
  t.ok(fx.read(IOVA).ok);
  t.equal(fx.fault(fx.writeDma(IOVA + 0x123, [1])), 'DMAR_PTE_WRITE_DENIED');
  const f = fx.frcd(0);
  t.equal(f.F, 1);
  t.equal(f.FR, 0x5);
  t.equal(f.SID, fx.sid);
  t.equal(f.FI * PAGE, IOVA, 'FI holds the page address');
  t.equal(f.T1, 0, 'T = 0: write');
  t.equal(f.PP, 0, 'no PASID');
  t.ok(fx.r32(R.FSTS!) & FSTS_PPF);
  t.equal((fx.r32(R.FSTS!) >>> 8) & 0xff, 0, 'FRI = 0');
});

t.test('a read of an unmapped IOVA aborts with reason 0x6 (read type)', async (t) => {
  const { fx } = setup();
  t.equal(fx.fault(fx.read(IOVA + PAGE)), 'DMAR_PTE_READ_DENIED');
  t.equal(fx.frcd(0).FR, 0x6);
  t.equal(fx.frcd(0).T1, 1, 'T = 1: read');
});

t.test('non-present root and context entries fault 0x1 and 0x2', async (t) => {
  const fx = new Fx();
  const root = fx.page();
  fx.setRoot(root, 0);
  fx.enable();
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_ROOT_NOT_PRESENT');
  const ctxTable = fx.page();
  fx.write(root, ROOT_ENTRY, { P: 1, CTP: ctxTable / PAGE });
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_NOT_PRESENT', 'not-present entries are not cached');
  t.equal(fx.frcd(1).FR, 0x2);
});

t.test('reserved bits in a present root or context entry fault 0xA / 0xB', async (t) => {
  const { fx, ctxAt } = setup();
  fx.mem.write32(ctxAt + 8, fx.mem.read32(ctxAt + 8) | 0x80); // bit 71 is reserved
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_RESERVED');
  const fx2 = new Fx();
  const root = fx2.page();
  fx2.write(root, ROOT_ENTRY, { P: 1, CTP: fx2.page() / PAGE });
  fx2.mem.write32(root + 8, 1); // bits 127:64 are reserved
  fx2.setRoot(root, 0);
  fx2.enable();
  t.equal(fx2.fault(fx2.read(IOVA)), 'DMAR_ROOT_RESERVED');
  t.equal(fx2.frcd(0).FR, 0xa);
});

t.test('a context entry with an unsupported AW, TT = 11 or TT = 01 without device-TLB support is invalid (0x3)', async (t) => {
  for (const ctx of [{ AW: 4 }, { AW: 0 }, { TT: 3 }, { TT: 1 }] as Record<string, number>[]) {
    const { fx } = setup(ctx, RW, { deviceTlb: false });
    t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_INVALID', JSON.stringify(ctx));
    t.equal(fx.frcd(0).FR, 0x3);
  }
});

t.test('an input address beyond the context AW faults 0x4', async (t) => {
  const fx = new Fx();
  const ss = fx.ss({ levels: 3 });
  fx.legacy({ TT: 0, AW: 1, DID: 1, SLPTPTR: ss.root / PAGE });
  fx.enable();
  t.equal(fx.fault(fx.read(2 ** 39)), 'DMAR_ADDR_BEYOND_MGAW');
});

t.test('pass-through (TT = 10) maps every address to itself', async (t) => {
  const fx = new Fx();
  fx.legacy({ TT: TT_PASSTHROUGH, AW: 2, DID: 1 });
  fx.enable();
  fx.mem.write32(0x3000_0000, 0xabcd);
  const r = fx.read(0x3000_0000, 2);
  t.same(r.ok && [...r.data!], [0xcd, 0xab]);
  t.equal(fx.board.counters.get('vtd.walks'), 0);
});

t.test('a request with PASID in legacy mode faults 0x31 with PP and PV recorded', async (t) => {
  const { fx } = setup();
  t.equal(fx.fault(fx.read(IOVA, 4, { pasid: 7 })), 'DMAR_LEGACY_PASID_REQUEST');
  const f = fx.frcd(0);
  t.equal(f.FR, 0x31);
  t.equal(f.PP, 1);
  t.equal(f.PV, 7);
});

t.test('requests without PASID to 0xFEEx_xxxx are interrupts: delivered untranslated', async (t) => {
  const { fx } = setup();
  t.same(fx.writeDma(0xfee0_1000, [0x41, 0, 0, 0]), { ok: true });
  t.equal(fx.board.msi.count(0x41), 1);
  t.equal(fx.board.counters.get('vtd.faults'), 0);
});

t.test('a translation whose output is in the interrupt range faults 0xE', async (t) => {
  const { fx, ss } = setup();
  t.equal(ss.map(0x80_0000, 0xfee0_0000, PAGE, RW), 0);
  t.equal(fx.fault(fx.writeDma(0x80_0000, [1, 2, 3, 4])), 'DMAR_INTERRUPT_ADDR');
  t.equal(fx.board.msi.count(), 0);
});

t.test('FPD in the context entry suppresses fault recording; the request still aborts', async (t) => {
  const { fx } = setup({ FPD: 1 });
  t.equal(fx.fault(fx.read(IOVA + PAGE)), 'DMAR_PTE_READ_DENIED');
  t.equal(fx.frcd(0).F, 0);
  t.equal(fx.r32(R.FSTS!), 0);
  t.equal(fx.board.counters.get('vtd.faults.suppressed'), 1);
});

t.test('FPD in a non-present context entry suppresses LCT.2 (qualified, §7.1.3)', async (t) => {
  const { fx, ctxAt } = setup();
  fx.write(ctxAt, CONTEXT_ENTRY, { P: 0, FPD: 1 });
  fx.w64(R.CCMD!, (1n << 63n) | (1n << 61n));
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_NOT_PRESENT');
  t.equal(fx.frcd(0).F, 0);
  t.equal(fx.board.counters.get('vtd.faults.suppressed'), 1);
  fx.write(ctxAt, CONTEXT_ENTRY, { P: 0 });
  t.equal(fx.fault(fx.read(IOVA)), 'DMAR_CONTEXT_NOT_PRESENT');
  t.same([fx.frcd(0).F, fx.frcd(0).FR], [1, 0x02], 'without FPD: recorded');
});

t.test('context-cache: a changed context entry is used only after a CCMD invalidation', async (t) => {
  const { fx, ctxAt } = setup();
  const other = fx.ss();
  t.equal(other.map(IOVA, PA + PAGE, PAGE, RW), 0);
  fx.mem.write32(PA, 1);
  fx.mem.write32(PA + PAGE, 2);
  const word = () => { const r = fx.read(IOVA); return r.ok ? r.data![0] : -1; };
  t.equal(word(), 1);
  fx.write(ctxAt, CONTEXT_ENTRY, { P: 1, TT: 0, AW: 2, DID: 6, SLPTPTR: other.root / PAGE });
  fx.w64(R.IVA!, 0);
  fx.w64(R.IOTLB!, (1n << 63n) | (1n << 60n)); // global IOTLB invalidation
  t.equal(word(), 1, 'stale context entry (old tables) until the context-cache is invalidated');
  fx.w64(R.CCMD!, (1n << 63n) | (3n << 61n) | (BigInt(fx.sid) << 16n) | 5n); // device-selective
  t.equal(Number((fx.r64(R.CCMD!) >> 59n) & 3n), 3, 'CAIG: device-selective performed');
  t.equal(Number(fx.r64(R.CCMD!) >> 63n), 0, 'ICC cleared on completion');
  t.equal(word(), 2);
});

t.test('CCMD domain-selective drops the context entries of that domain only', async (t) => {
  const { fx, ctxAt } = setup();
  t.ok(fx.read(IOVA).ok);
  fx.mem.write32(ctxAt, 0); // not present now
  fx.w64(R.CCMD!, (1n << 63n) | (2n << 61n) | 9n);
  t.ok(fx.read(IOVA).ok, 'DID 9 is not the device\'s domain');
  fx.w64(R.CCMD!, (1n << 63n) | (2n << 61n) | 5n);
  t.equal(fx.fault(fx.read(IOVA + 4)), 'DMAR_CONTEXT_NOT_PRESENT');
});

t.test('IOTLB register: page-selective drops only the addressed pages, domain-selective the rest', async (t) => {
  const { fx, ss } = setup();
  t.equal(ss.map(IOVA + PAGE, PA + PAGE, PAGE, RW), 0);
  fx.mem.write32(PA, 1);
  fx.mem.write32(PA + PAGE, 2);
  fx.mem.write32(PA + 2 * PAGE, 3);
  fx.mem.write32(PA + 3 * PAGE, 4);
  const at = (a: number) => { const r = fx.read(a); return r.ok ? r.data![0] : -1; };
  t.same([at(IOVA), at(IOVA + PAGE)], [1, 2]);
  ss.unmap(IOVA, 2 * PAGE);
  t.equal(ss.map(IOVA, PA + 2 * PAGE, PAGE, RW), 0);
  t.equal(ss.map(IOVA + PAGE, PA + 3 * PAGE, PAGE, RW), 0);
  t.same([at(IOVA), at(IOVA + PAGE)], [1, 2], 'both stale');
  fx.w64(R.IVA!, IOVA);
  fx.w64(R.IOTLB!, (1n << 63n) | (3n << 60n) | (5n << 32n));
  t.equal(Number((fx.r64(R.IOTLB!) >> 57n) & 3n), 3, 'IAIG: page-selective');
  t.same([at(IOVA), at(IOVA + PAGE)], [3, 2], 'only the first page');
  fx.w64(R.IOTLB!, (1n << 63n) | (2n << 60n) | (4n << 32n));
  t.same([at(IOVA), at(IOVA + PAGE)], [3, 2], 'another domain: nothing');
  fx.w64(R.IOTLB!, (1n << 63n) | (2n << 60n) | (5n << 32n));
  t.same([at(IOVA), at(IOVA + PAGE)], [3, 4]);
});

t.test('IOTLB register: AM covers 2^AM pages; AM above MAMV is refused (IAIG 0)', async (t) => {
  const { fx, ss } = setup();
  t.equal(ss.map(IOVA + PAGE, PA + PAGE, PAGE, RW), 0);
  t.ok(fx.read(IOVA).ok && fx.read(IOVA + PAGE).ok);
  t.equal(fx.vtd.iotlb.size, 2);
  fx.w64(R.IVA!, IOVA | 40);
  fx.w64(R.IOTLB!, (1n << 63n) | (3n << 60n) | (5n << 32n));
  t.equal(Number((fx.r64(R.IOTLB!) >> 57n) & 3n), 0);
  t.equal(fx.vtd.iotlb.size, 2);
  fx.w64(R.IVA!, (IOVA + PAGE) | 1);
  fx.w64(R.IOTLB!, (1n << 63n) | (3n << 60n) | (5n << 32n));
  t.equal(fx.vtd.iotlb.size, 0, 'AM = 1 from an unaligned address covers the aligned pair');
});

t.test('register-based invalidation is ignored while queued invalidation is enabled', async (t) => {
  const { fx } = setup();
  t.ok(fx.read(IOVA).ok);
  fx.queue();
  fx.w64(R.IOTLB!, (1n << 63n) | (1n << 60n));
  t.equal(Number((fx.r64(R.IOTLB!) >> 57n) & 3n), 0, 'IAIG = 0');
  t.equal(fx.vtd.iotlb.size, 1);
});

t.test('a 2 MiB second-stage superpage is one IOTLB entry', async (t) => {
  const fx = new Fx();
  const ss = fx.ss();
  t.equal(ss.map(0x4000_0000, 0x2000_0000, 2 ** 21, RW), 0);
  fx.legacy({ TT: 0, AW: 2, DID: 1, SLPTPTR: ss.root / PAGE });
  fx.enable();
  fx.mem.write32(0x2010_0000, 77);
  t.ok(fx.read(0x4000_0000).ok);
  const r = fx.read(0x4010_0000);
  t.equal(r.ok && r.data![0], 77);
  t.equal(fx.board.counters.get('vtd.walks'), 1);
  t.equal(fx.vtd.iotlb.size, 1);
});

t.test('clearing TE turns remapping off: DMA passes untranslated again', async (t) => {
  const { fx } = setup();
  t.notOk(fx.read(PA).ok, 'PA is not mapped as an IOVA');
  fx.gcmd(GCMD_TE, false);
  t.ok(fx.read(PA).ok);
});
