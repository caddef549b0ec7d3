import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { E_D, E_G } from '../../../iommu/pgtable/ia32e-layout.ts';
import {
  DESC_DEV_TLB, DESC_INV_WAIT, DESC_P_DEV_TLB, DEV_TLB_INV_DESC, DEVTLB_ALL, FSTS_ICE, FSTS_ITE, INV_WAIT_DESC, P_DEV_TLB_INV_DESC,
  PGTT_FIRST_STAGE, PGTT_SECOND_STAGE, devTlbAddr, devTlbRange,
} from '../../../iommu/vtd/index.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import type { VtdOptions } from '../../../iommu/vtd/vtd.ts';
import { AtsTestEndpoint } from './endpoint.ts';
import { Fx, PAGE, R } from './helpers.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;
const STATUS = 0x50_0000;
const d = Fx.desc;
const wait = (data = 1) => d(INV_WAIT_DESC, DESC_INV_WAIT, { SW: 1, STDATA: data, STADDR_LO: STATUS / 4 });
const devtlb = (sid: number, addr: number, size = PAGE, mip = 0) => {
  const a = devTlbAddr(addr, size);
  return d(DEV_TLB_INV_DESC, DESC_DEV_TLB, { SID: sid, MIP: mip, S: a.s, ADDR: a.page });
};

/** Scalable mode, the ATS endpoint at 00:02.0 with DTE; RID_PASID 0 second-stage over `ss`, PASID 5 first-stage over `fs`. */
function setup(ctx: Record<string, number> = { DTE: 1 }, opts: VtdOptions = {}) {
  const fx = new Fx(opts);
  const ep = new AtsTestEndpoint(fx.board.scheduler);
  fx.board.rc.plug(ep, 2);
  ep.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const ss = fx.ss();
  const fs = fx.fs({ presetAccessDirty: false });
  const { dir } = fx.scalable(ctx, ep.requesterId);
  fx.pasid(dir, 0, { PGTT: PGTT_SECOND_STAGE, AW: 2, DID: 3, SLPTPTR: ss.root / PAGE });
  fx.pasid(dir, 5, { PGTT: PGTT_FIRST_STAGE, DID: 4, FSPTPTR: fs.root / PAGE });
  fx.enable();
  fx.queue();
  return { fx, ep, ss, fs, sid: ep.requesterId };
}

t.test('translation requests need DTE: without it UR, and fault 0x44 is recorded with AT = translation request', async (t) => {
  const { fx, ep, ss } = setup({});
  ss.map(IOVA, PA, PAGE, RW);
  t.same(ep.translate(IOVA), { status: 'UR', entries: [] });
  t.same([fx.frcd(0).FR, fx.frcd(0).AT], [0x44, 1]);
  t.same(ep.translatedRead(PA).ok, false, 'translated requests are blocked too');
  t.equal(fx.frcd(1).AT, 2);
});

t.test('a completion reports the page the walk found: size-aligned addresses, size, R and W', async (t) => {
  const { ep, ss } = setup();
  ss.map(0x20_0000, PA, 2 ** 21, RW);
  ss.map(IOVA, PA + 0x40_0000, PAGE, IOMMU_READ);
  const c = ep.translate(0x20_3000);
  t.equal(c.status, 'SC');
  t.same(c.entries[0], { translatedAddr: PA, untranslatedAddr: 0x20_0000, size: 2 ** 21, read: true, write: true, exec: false, priv: false, untranslatedOnly: false, global: false });
  const ro = ep.translate(IOVA, 2 * PAGE).entries;
  t.same(ro.map((e) => [e.untranslatedAddr, e.read, e.write]), [[IOVA, true, false], [IOVA + PAGE, false, false]], 'read-only page, then a page that is not mapped');
});

t.test('not-present and denied pages answer R = W = 0 without a record; a reserved bit answers UR and records 0x7a', async (t) => {
  const { fx, ep, ss } = setup();
  t.same(ep.translate(IOVA).entries.map((e) => [e.read, e.write]), [[false, false]]);
  t.equal(fx.frcd(0).F, 0, 'nothing recorded');
  ss.map(IOVA, PA, PAGE, RW);
  // An address bit at or above HAW (48) is reserved in a second-stage leaf.
  const pte = findLeaf(fx, ss.root, IOVA);
  fx.mem.write32(pte + 4, fx.mem.read32(pte + 4) | 0x0001_0000);
  t.same(ep.translate(IOVA), { status: 'UR', entries: [] });
  t.equal(fx.frcd(0).FR, 0x7a);
});

t.test('first stage: W comes from a write walk that sets D; No Write leaves D clear; Priv is echoed; Exe needs ERE', async (t) => {
  const { fx, ep, fs } = setup();
  fs.map(IOVA, PA, PAGE, RW);
  const pte = findLeaf(fx, fs.root, IOVA);
  const nw = ep.translate(IOVA, PAGE, { pasid: 5, noWrite: true }).entries[0]!;
  t.same([nw.read, nw.write], [true, false], 'clean page and No Write: W = 0');
  t.equal(fx.mem.read32(pte) & E_D, 0, 'D still clear');
  const w = ep.translate(IOVA, PAGE, { pasid: 5 }).entries[0]!;
  t.same([w.read, w.write, w.priv, w.exec], [true, true, false, false]);
  t.not(fx.mem.read32(pte) & E_D, 0, 'the write walk set D');
  t.equal(ep.translate(IOVA, PAGE, { pasid: 5, exec: true }).entries[0]!.exec, false, 'ERE clear: Exe = 0');
  t.equal(ep.translate(IOVA, PAGE, { pasid: 5, priv: true }).status, 'UR', 'SRE clear: a privileged request is refused (0x5d)');
  t.equal(fx.frcd(0).FR, 0x5d);
});

t.test('a first-stage leaf with G reports a global translation', async (t) => {
  const { fx, ep, fs } = setup();
  fs.map(IOVA, PA, PAGE, RW);
  const pte = findLeaf(fx, fs.root, IOVA);
  fx.mem.write32(pte, fx.mem.read32(pte) | E_G);
  t.equal(ep.translate(IOVA, PAGE, { pasid: 5 }).entries[0]!.global, true);
});

t.test('without PASID the interrupt range answers R = 0, W = 1, U = 1', async (t) => {
  const { ep } = setup();
  const e = ep.translate(0xfee0_0000).entries[0]!;
  t.same([e.read, e.write, e.untranslatedOnly, e.size], [false, true, true, PAGE]);
});

t.test('translated requests pass untranslated with DTE; legacy TT = 01 answers translation requests from the second stage', async (t) => {
  const { fx, ep } = setup();
  fx.mem.write32(PA, 0x1234_5678);
  const r = ep.translatedRead(PA);
  t.ok(r.ok && new DataView(r.data!.buffer).getUint32(0, true) === 0x1234_5678);
  const lg = new Fx();
  const lep = new AtsTestEndpoint(lg.board.scheduler);
  lg.board.rc.plug(lep, 2);
  lep.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const ss = lg.ss();
  ss.map(IOVA, PA, PAGE, IOMMU_READ);
  lg.legacy({ TT: 1, AW: 2, DID: 9, SLPTPTR: ss.root / PAGE }, lep.requesterId);
  lg.enable();
  t.same(lep.translate(IOVA).entries.map((e) => [e.translatedAddr, e.read, e.write]), [[PA, true, false]]);
  t.ok(lep.translatedRead(PA).ok);
  t.ok(lg.read(IOVA).ok === false, 'the other device (no context entry) is unaffected');
});

t.test('the S encoding of device-TLB invalidation ranges', async (t) => {
  t.same(devTlbRange(0x400, false), { addr: 0x40_0000, size: PAGE });
  t.same(devTlbRange(0x400, true), { addr: 0x40_0000, size: 2 * PAGE }, 'bit 12 clear: 8 KiB');
  t.same(devTlbRange(0x403, true), { addr: 0x40_0000, size: 8 * PAGE }, 'two ones: 32 KiB');
  t.same(devTlbRange(2 ** 51 - 1, true), { addr: 0, size: DEVTLB_ALL }, 'ones up to bit 62: everything');
  for (const [a, s] of [[0x40_0000, PAGE], [0x40_0000, 2 ** 21], [0x4000_0000, 2 ** 30], [0, DEVTLB_ALL]] as const) {
    const e = devTlbAddr(a, s);
    t.same(devTlbRange(e.page, e.s === 1), { addr: a, size: s }, `round trip ${s}`);
  }
});

t.test('device-TLB invalidation: an ATS invalidation goes to the device; the wait after it completes when the device answers', async (t) => {
  const { fx, ep, sid } = setup();
  fx.submit(devtlb(sid, IOVA, 2 ** 21), wait(7));
  t.equal(ep.invalidations.length, 1);
  t.same(ep.invalidations.map((r) => [r.pasid, r.addr, r.size, r.global]), [[-1, IOVA - (IOVA % 2 ** 21), 2 ** 21, false]]);
  t.equal(fx.mem.read32(STATUS), 0, 'the wait is held');
  t.equal(fx.iqh, 64, 'IQH is past the held wait');
  fx.board.scheduler.run();
  t.equal(fx.mem.read32(STATUS), 7, 'status written once the completion arrived');
  t.equal(fx.board.now(), 200);
  fx.submit(d(P_DEV_TLB_INV_DESC, DESC_P_DEV_TLB, { SID: sid, PASID: 5, G: 1, ADDR: IOVA / PAGE }), wait(8));
  t.same([ep.invalidations[1]!.pasid, ep.invalidations[1]!.global], [5, true]);
  fx.board.scheduler.run();
  t.equal(fx.mem.read32(STATUS), 8);
});

t.test('MIP bounds outstanding invalidations per device; completions with CC > 1 need every message', async (t) => {
  const { fx, ep, sid } = setup();
  ep.completionCount = 2;
  fx.submit(devtlb(sid, 0, PAGE, 1), devtlb(sid, PAGE, PAGE, 1), devtlb(sid, 2 * PAGE, PAGE, 1), wait(3));
  t.equal(ep.invalidations.length, 1, 'MIP = 1: one at a time');
  fx.board.scheduler.run();
  t.same(ep.invalidations.map((r) => [r.itag, r.time]), [[0, 0], [0, 200], [0, 400]], 'each sent when the previous completed, tag reused');
  t.equal(fx.mem.read32(STATUS), 3);
});

t.test('a device that never answers: ITE with ITESID after the timeout, the wait is aborted, fetching resumes when ITE is cleared', async (t) => {
  const { fx, ep, sid } = setup({ DTE: 1 }, { atsInvalidationTimeoutNs: 10_000 });
  fx.w32(R.FEDATA!, 0x77);
  fx.w32(R.FEADDR!, 0xfee0_0000);
  fx.w32(R.FECTL!, 0);
  ep.answerInvalidations = false;
  fx.submit(devtlb(sid, IOVA), wait(5));
  fx.board.scheduler.run();
  t.equal(fx.board.now(), 10_000);
  t.not(fx.r32(R.FSTS!) & FSTS_ITE, 0, 'ITE');
  t.equal(Number((fx.r64(R.IQERCD!) >> 32n) & 0xffffn), sid, 'ITESID');
  t.equal(fx.mem.read32(STATUS), 0, 'the wait was aborted');
  t.equal(fx.board.msi.count(0x77), 1, 'fault event');
  t.equal(fx.board.counters.get('vtd.devtlb.timeouts'), 1);
  fx.submit(wait(6));
  t.equal(fx.mem.read32(STATUS), 0, 'nothing is fetched while ITE is set');
  fx.w32(R.FSTS!, FSTS_ITE);
  t.equal(fx.mem.read32(STATUS), 6, 'clearing ITE resumes at IQH');
});

t.test('an invalidation completion nobody waits for is ICE with ICESID', async (t) => {
  const { fx, sid } = setup();
  fx.vtd.atsInvalidationCompleted(sid, 1 << 3, 1);
  t.not(fx.r32(R.FSTS!) & FSTS_ICE, 0);
  t.equal(Number(fx.r64(R.IQERCD!) >> 48n), sid);
});

t.test('injection vtd.ats_inv_complete: a dropped completion times out; a delayed one completes later', async (t) => {
  const { fx, sid } = setup({ DTE: 1 }, { atsInvalidationTimeoutNs: 5_000 });
  const p = fx.board.faults.point('vtd.ats_inv_complete');
  p.arm((hit) => (hit === 1 ? { kind: 'delay', ns: 1000 } : { kind: 'drop' }));
  fx.submit(devtlb(sid, 0), wait(1));
  fx.board.scheduler.run();
  t.equal(fx.mem.read32(STATUS), 1);
  t.equal(fx.board.now(), 1200);
  fx.submit(devtlb(sid, 0), wait(2));
  fx.board.scheduler.run();
  t.equal(fx.mem.read32(STATUS), 1, 'dropped: the wait never completes');
  t.not(fx.r32(R.FSTS!) & FSTS_ITE, 0);
});

/** Address of the 4 KiB leaf entry for `iova` in a 4-level x86-format table at `root`. */
function findLeaf(fx: Fx, root: number, iova: number): number {
  let table = root;
  for (let level = 4; level > 1; level--) {
    const e = table + 8 * (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512);
    table = (fx.mem.read32(e) & 0xffff_f000) + (fx.mem.read32(e + 4) & 0xfffff) * 2 ** 32;
  }
  return table + 8 * (Math.floor(iova / PAGE) % 512);
}
