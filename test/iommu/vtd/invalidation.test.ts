import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import {
  CC_INV_DESC, DESC_CC, DESC_DEV_TLB, DESC_IEC, DESC_INV_WAIT, DESC_IOTLB, DESC_PC, DESC_PGRP_RESP, DESC_P_DEV_TLB,
  DESC_P_IOTLB, DEV_TLB_INV_DESC, FSTS_IQE, GCMD_QIE, IEC_INV_DESC, INV_WAIT_DESC, IOTLB_INV_DESC, IQEI,
  PASID_ENTRY, PC_INV_DESC, PGRP_RESP_DESC, PGTT_FIRST_STAGE, PGTT_SECOND_STAGE, P_DEV_TLB_INV_DESC, P_IOTLB_INV_DESC,
  SM_CONTEXT_ENTRY,
} from '../../../iommu/vtd/index.ts';
import type { VtdOptions } from '../../../iommu/vtd/vtd.ts';
import { Fx, PAGE, R } from './helpers.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;
const STATUS = 0x50_0000;

const d = Fx.desc;
const wait = (fields: Record<string, number> = {}) =>
  d(INV_WAIT_DESC, DESC_INV_WAIT, { SW: 1, STDATA: 0x600d, STADDR_LO: STATUS / 4, ...fields });
const iotlb = (g: number, did = 0, addr = 0, am = 0) => d(IOTLB_INV_DESC, DESC_IOTLB, { G: g, DID: did, ADDR: addr / PAGE, AM: am });
const piotlb = (g: number, did: number, pasid: number, addr = 0, am = 0) =>
  d(P_IOTLB_INV_DESC, DESC_P_IOTLB, { G: g, DID: did, PASID: pasid, ADDR: addr / PAGE, AM: am });
const cc = (g: number, did = 0, sid = 0, fm = 0) => d(CC_INV_DESC, DESC_CC, { G: g, DID: did, SID: sid, FM: fm });
const pc = (g: number, did = 0, pasid = 0) => d(PC_INV_DESC, DESC_PC, { G: g, DID: did, PASID: pasid });

/**
 * Scalable mode with a queue: RID_PASID 0 is second-stage (DID 3) over `ss`,
 * PASID 5 is first-stage (DID 4) over `fs`, both mapping IOVA and IOVA+4K to
 * PA and PA+4K; PA page i holds the byte 1 + i.
 */
function setup(opts: VtdOptions = {}) {
  const fx = new Fx(opts);
  const ss = fx.ss();
  const fs = fx.fs();
  for (const b of [ss, fs]) for (let i = 0; i < 2; i++) if (b.map(IOVA + i * PAGE, PA + i * PAGE, PAGE, RW) !== 0) throw new Error('map');
  for (let i = 0; i < 4; i++) fx.mem.write8(PA + i * PAGE, 1 + i);
  const { dir, ctxAt } = fx.scalable();
  const pe0 = fx.pasid(dir, 0, { PGTT: PGTT_SECOND_STAGE, AW: 2, DID: 3, SLPTPTR: ss.root / PAGE });
  const pe5 = fx.pasid(dir, 5, { PGTT: PGTT_FIRST_STAGE, DID: 4, FSPTPTR: fs.root / PAGE });
  fx.enable();
  fx.queue();
  /** Bytes seen at IOVA and IOVA+4K, without PASID and with PASID 5. */
  const seen = () => [0, 1].flatMap((i) => [fx.read(IOVA + i * PAGE, 1), fx.read(IOVA + i * PAGE, 1, { pasid: 5 })]).map((r) => (r.ok ? r.data![0]! : -1));
  /** Point both tables at PA pages 2 and 3 (the driver "forgets" to invalidate). */
  const remap = () => {
    for (const b of [ss, fs]) {
      b.unmap(IOVA, 2 * PAGE);
      for (let i = 0; i < 2; i++) b.map(IOVA + i * PAGE, PA + (2 + i) * PAGE, PAGE, RW);
    }
  };
  return { fx, ss, fs, dir, ctxAt, pe0, pe5, seen, remap };
}

t.test('IQT write processes the queue up to IQT; IQH follows; a wait descriptor writes its status', async (t) => {
  const { fx } = setup();
  fx.submit(iotlb(1), wait());
  t.equal(fx.iqh, 64);
  t.equal(fx.mem.read32(STATUS), 0x600d);
  t.equal(fx.board.counters.get('vtd.qi.descriptors'), 2);
  t.equal(fx.r32(R.FSTS!), 0);
});

t.test('wait with IF sets ICS.IWC and signals IEDATA at IEADDR, held while IECTL.IM is set', async (t) => {
  const { fx } = setup();
  fx.w32(R.IEDATA!, 0x4321);
  fx.w32(R.IEADDR!, 0xfee0_0000);
  fx.submit(wait({ SW: 0, IF: 1 }));
  t.equal(fx.r32(R.ICS!), 1, 'IWC');
  t.equal(fx.board.msi.count(0x4321), 0, 'masked at reset');
  t.equal(fx.r32(R.IECTL!), 0xc000_0000, 'IP set');
  fx.w32(R.IECTL!, 0);
  t.equal(fx.board.msi.count(0x4321), 1, 'unmasking sends the held message');
  t.equal(fx.r32(R.IECTL!), 0, 'IP cleared');
  fx.submit(wait({ SW: 0, IF: 1 }));
  t.equal(fx.board.msi.count(0x4321), 1, 'IWC still set: not a new interrupt condition');
  fx.w32(R.ICS!, 1);
  fx.submit(wait({ SW: 0, IF: 1 }));
  t.equal(fx.board.msi.count(0x4321), 2);
});

t.test('a masked completion interrupt is dropped when software clears IWC first', async (t) => {
  const { fx } = setup();
  fx.w32(R.IEDATA!, 0x99);
  fx.w32(R.IEADDR!, 0xfee0_0000);
  fx.submit(wait({ IF: 1 }));
  fx.w32(R.ICS!, 1);
  t.equal(fx.r32(R.IECTL!), 0x8000_0000, 'IP cleared by servicing IWC');
  fx.w32(R.IECTL!, 0);
  t.equal(fx.board.msi.count(0x99), 0);
});

t.test('IOTLB hits stay stale until an IOTLB descriptor of the right domain invalidates them', async (t) => {
  const { fx, seen, remap } = setup();
  t.same(seen(), [1, 1, 2, 2]);
  remap();
  t.same(seen(), [1, 1, 2, 2], 'stale: the driver did not invalidate');
  fx.submit(iotlb(2, 9));
  t.same(seen(), [1, 1, 2, 2], 'domain 9 is someone else');
  fx.submit(iotlb(2, 3));
  t.same(seen(), [3, 1, 4, 2], 'domain 3 (second stage) fresh; PASID 5 (domain 4) still stale');
  fx.submit(iotlb(1));
  t.same(seen(), [3, 3, 4, 4], 'global');
});

t.test('IOTLB page-selective-within-domain drops the 2^AM pages at ADDR of second-stage entries only', async (t) => {
  const { fx, seen, remap } = setup();
  seen();
  remap();
  fx.submit(iotlb(3, 3, IOVA + PAGE));
  t.same(seen(), [1, 1, 4, 2]);
  fx.submit(iotlb(3, 4, IOVA, 1));
  t.same(seen(), [1, 1, 4, 2], 'page-selective IOTLB does not reach first-stage entries');
  fx.submit(iotlb(3, 3, IOVA + PAGE, 1));
  t.same(seen(), [3, 1, 4, 2], 'AM = 1: the aligned pair');
});

t.test('PASID-based IOTLB: PASID-selective and page-selective-within-PASID drop first-stage entries of DID + PASID', async (t) => {
  const { fx, seen, remap } = setup();
  seen();
  remap();
  fx.submit(piotlb(3, 4, 5, IOVA));
  t.same(seen(), [1, 3, 2, 2], 'page within PASID');
  fx.submit(piotlb(2, 4, 6), piotlb(2, 5, 5));
  t.same(seen(), [1, 3, 2, 2], 'other PASID, other domain: nothing');
  fx.submit(piotlb(2, 3, 0));
  t.same(seen(), [1, 3, 2, 2], 'PASID-based invalidation does not reach second-stage-only entries');
  fx.submit(piotlb(2, 4, 5));
  t.same(seen(), [1, 3, 2, 4]);
});

t.test('context-cache descriptor: a changed scalable-mode context entry is seen only after invalidation', async (t) => {
  const { fx, dir, ctxAt, seen } = setup();
  seen();
  fx.write(ctxAt, SM_CONTEXT_ENTRY, { P: 1, PASIDE: 0, PDTS: 7, PASIDDIRPTR: dir / PAGE });
  t.same(seen(), [1, 1, 2, 2], 'PASIDE cleared but the cached context still has it');
  fx.submit(cc(3, 0, fx.sid + 1));
  t.same(seen(), [1, 1, 2, 2], 'device-selective for another device');
  fx.submit(cc(3, 0, fx.sid | 7, 3));
  t.same(seen(), [1, -1, 2, -1], 'FM = 3 masks the function number');
  fx.write(ctxAt, SM_CONTEXT_ENTRY, { P: 1, PASIDE: 1, PDTS: 7, PASIDDIRPTR: dir / PAGE });
  fx.submit(cc(2, 1234));
  t.same(seen(), [1, 1, 2, 2], 'domain-selective ignores DID in scalable mode');
  fx.write(ctxAt, SM_CONTEXT_ENTRY, {});
  fx.submit(cc(1));
  t.same(seen(), [-1, -1, -1, -1], 'global');
});

t.test('PASID-cache descriptor: a changed PASID entry is seen only after a PASID-cache invalidation', async (t) => {
  const { fx, pe5, seen, fs } = setup();
  seen();
  fx.write(pe5, PASID_ENTRY, { P: 1, PGTT: PGTT_FIRST_STAGE, DID: 4, FSPTPTR: fs.root / PAGE, SRE: 0, FPD: 1 });
  fx.mem.write32(pe5, 0);
  fx.submit(piotlb(2, 4, 5));
  t.same(seen(), [1, 1, 2, 2], 'IOTLB flushed, PASID entry still cached');
  fx.submit(pc(1, 4, 6), pc(1, 3, 5));
  t.same(seen(), [1, 1, 2, 2], 'PASID-selective needs both DID and PASID');
  fx.submit(pc(1, 4, 5));
  t.same(seen(), [1, -1, 2, -1]);
  t.equal(fx.frcd(0).FR, 0x59);
});

t.test('PASID-cache descriptor: domain-selective and global', async (t) => {
  const { fx, pe0, pe5, seen } = setup();
  seen();
  fx.mem.write32(pe0, 0);
  fx.mem.write32(pe5, 0);
  fx.submit(iotlb(1));
  fx.submit(pc(0, 4));
  t.same(seen(), [1, -1, 2, -1], 'domain 4 only');
  fx.submit(pc(3));
  t.same(seen(), [-1, -1, -1, -1]);
});

t.test('a bad descriptor sets FSTS.IQE and IQERCD, leaves IQH on it and stops the queue until software clears IQE', async (t) => {
  const { fx } = setup();
  fx.submit(wait({ STDATA: 1 }), d(IOTLB_INV_DESC, 0x0f), wait({ STDATA: 2 }));
  t.equal(fx.mem.read32(STATUS), 1, 'the descriptor before the bad one ran');
  t.equal(fx.iqh, 32, 'IQH points at the bad descriptor');
  t.ok(fx.r32(R.FSTS!) & FSTS_IQE);
  t.equal(Number(fx.r64(R.IQERCD!) & 0xfn), IQEI.INVALID_TYPE);
  fx.w64(R.IQT!, fx.r64(R.IQT!));
  t.equal(fx.mem.read32(STATUS), 1, 'nothing is fetched while IQE is set');
  const fixed = wait({ STDATA: 3 });
  for (let i = 0; i < 8; i++) fx.mem.write32(fx.r32(R.IQA!) - (fx.r32(R.IQA!) % PAGE) + 32 + 4 * i, fixed[i]!);
  fx.w32(R.FSTS!, FSTS_IQE);
  t.equal(fx.iqh, 96, 'clearing IQE resumes fetching at IQH');
  t.equal(fx.mem.read32(STATUS), 2, 'the repaired descriptor and the rest ran');
});

t.test('invalid descriptors and their IQEI', async (t) => {
  const cases: [string, Uint32Array, number][] = [
    ['reserved bit', Uint32Array.of(0x0000_0102, 0, 0, 0, 0, 0, 0, 0), IQEI.RESERVED_FIELD],
    ['bits 255:128 are reserved', Uint32Array.of(0x12, 0, 0, 0, 1, 0, 0, 0), IQEI.RESERVED_FIELD],
    ['IOTLB G = 00', iotlb(0), IQEI.RESERVED_FIELD],
    ['IOTLB AM above MAMV', iotlb(3, 1, 0, 30), IQEI.RESERVED_FIELD],
    ['context-cache G = 00', cc(0), IQEI.RESERVED_FIELD],
    ['PASID-cache G = 10', pc(2), IQEI.RESERVED_FIELD],
    ['PASID-based IOTLB G = 01', piotlb(1, 1, 1), IQEI.RESERVED_FIELD],
    ['wait with PD (no ECAP.PDS)', wait({ PD: 1 }), IQEI.RESERVED_FIELD],
    ['device-TLB without ECAP.DT', d(DEV_TLB_INV_DESC, DESC_DEV_TLB, { SID: 8 }), IQEI.INVALID_TYPE],
    ['PASID-based device-TLB without ECAP.DT', d(P_DEV_TLB_INV_DESC, DESC_P_DEV_TLB, { SID: 8 }), IQEI.INVALID_TYPE],
    ['interrupt entry cache (no interrupt remapping)', d(IEC_INV_DESC, DESC_IEC, { G: 1 }), IQEI.INVALID_TYPE],
    ['page group response without ECAP.PRS', d(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: 8 }), IQEI.INVALID_TYPE],
    ['type 0', new Uint32Array(8), IQEI.INVALID_TYPE],
  ];
  for (const [what, desc, iqei] of cases) {
    const { fx } = setup({ deviceTlb: false, pageRequests: false });
    fx.submit(desc);
    t.equal(Number(fx.r64(R.IQERCD!) & 0xfn), iqei, what);
    t.equal(fx.iqh, 0, `${what}: IQH stays`);
  }
});

t.test('queue setup errors: IQT misaligned for 256-bit descriptors (6), IQT beyond the queue (1), 128-bit descriptors in scalable mode (5)', async (t) => {
  const a = setup();
  a.fx.w64(R.IQT!, 0x10);
  t.equal(Number(a.fx.r64(R.IQERCD!) & 0xfn), IQEI.TAIL_MISALIGNED);
  const b = setup();
  b.fx.w64(R.IQT!, 0x2000);
  t.equal(Number(b.fx.r64(R.IQERCD!) & 0xfn), IQEI.INVALID_TAIL);
  const c = setup();
  c.fx.gcmd(GCMD_QIE, false);
  c.fx.queue(false);
  c.fx.submit(wait());
  t.equal(Number(c.fx.r64(R.IQERCD!) & 0xfn), IQEI.INVALID_WIDTH);
  t.equal(c.fx.mem.read32(STATUS), 0);
});

t.test('IQE raises the fault event interrupt (FEDATA at FEADDR) when unmasked', async (t) => {
  const { fx } = setup();
  fx.w32(R.FEDATA!, 0x31);
  fx.w32(R.FEADDR!, 0xfee0_0000);
  fx.w32(R.FECTL!, 0);
  fx.submit(iotlb(0));
  t.equal(fx.board.msi.count(0x31), 1);
});

t.test('the queue wraps around and stays bounded', async (t) => {
  const { fx } = setup();
  for (let i = 0; i < 5; i++) fx.submit(...Array.from({ length: 50 }, (_, k) => wait({ STDATA: i * 100 + k })));
  t.equal(fx.mem.read32(STATUS), 449);
  t.equal(fx.iqh, (250 % 128) * 32);
  t.equal(fx.board.counters.get('vtd.qi.descriptors'), 250);
});

t.test('disabling queued invalidation resets IQH; writing IQA resets it too', async (t) => {
  const { fx } = setup();
  fx.submit(wait());
  t.equal(fx.iqh, 32);
  fx.gcmd(GCMD_QIE, false);
  t.equal(fx.iqh, 0);
});

t.test('legacy mode accepts 128-bit descriptors', async (t) => {
  const fx = new Fx();
  const ss = fx.ss();
  ss.map(IOVA, PA, PAGE, RW);
  fx.legacy({ TT: 0, AW: 2, DID: 2, SLPTPTR: ss.root / PAGE });
  fx.enable();
  fx.queue(false);
  t.ok(fx.read(IOVA).ok);
  fx.submit(iotlb(2, 2), wait());
  t.equal(fx.iqh, 32);
  t.equal(fx.vtd.iotlb.size, 0);
  t.equal(fx.mem.read32(STATUS), 0x600d);
});
