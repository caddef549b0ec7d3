import t from 'tap';
import { IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import {
  GCMD_TE, PASID_DIR_ENTRY, PASID_ENTRY, PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASSTHROUGH, PGTT_SECOND_STAGE, SM_CONTEXT_ENTRY, isQualifiedFault,
} from '../../../iommu/vtd/index.ts';
import { BareFunction } from '../../pci/helpers.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { Fx, PAGE, R } from './helpers.ts';
import { newTranslationAnswer } from '../../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../../src/pci/transaction.ts';
import type { VtdOptions } from '../../../iommu/vtd/vtd.ts';

const IOVA = 0x40_0000;
const PA = 0x2000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;

/** Scalable mode with one PASID entry (`pasid`, default 0 = RID_PASID) holding `pe`. */
function sm(pe: Record<string, number>, ctx: Record<string, number> = {}, pasid = 0, opts: VtdOptions = {}) {
  const fx = new Fx(opts);
  const { dir, ctxAt } = fx.scalable(ctx);
  const peAt = fx.pasid(dir, pasid, pe);
  fx.enable();
  return { fx, dir, ctxAt, peAt };
}

/** First-stage-only PASID `pasid` over an IA-32e table mapping IOVA → PA with `prot`. */
function firstStage(prot: number, pe: Record<string, number> = {}, pasid = 5, presetAD = true) {
  const fx = new Fx();
  const fs = fx.fs({ presetAccessDirty: presetAD });
  if (fs.map(IOVA, PA, PAGE, prot) !== 0) throw new Error('map');
  const { dir } = fx.scalable();
  fx.pasid(dir, pasid, { PGTT: PGTT_FIRST_STAGE, DID: 4, FSPTPTR: fs.root / PAGE, ...pe });
  fx.enable();
  return { fx, fs, dir };
}

/** The leaf entry of `iova` in a 4-level table: its address and low dword. */
function leaf(fx: Fx, root: number, iova: number): { at: number; lo: number } {
  let table = root;
  for (let level = 4; ; level--) {
    const at = table + (Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
    const lo = fx.mem.read32(at);
    if (level === 1 || (lo & 0x80) !== 0) return { at, lo };
    table = (fx.mem.read32(at + 4) & 0xfffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
  }
}

const value = (fx: Fx, r: ReturnType<Fx['read']>) => (r.ok ? r.data![0]! : fx.fault(r));

t.test('second-stage-only PGTT translates requests without PASID through RID_PASID', async (t) => {
  const fx0 = new Fx();
  const ss = fx0.ss();
  t.equal(ss.map(IOVA, PA, PAGE, RW), 0);
  const { dir } = fx0.scalable({ RID_PASID: 9 });
  fx0.pasid(dir, 9, { PGTT: PGTT_SECOND_STAGE, AW: 2, DID: 3, SLPTPTR: ss.root / PAGE });
  fx0.enable();
  fx0.mem.write32(PA, 0x5a);
  t.equal(value(fx0, fx0.read(IOVA)), 0x5a);
  t.equal(fx0.board.counters.get('vtd.pasid_cache.miss'), 1);
  t.equal(value(fx0, fx0.read(IOVA)), 0x5a);
  t.equal(fx0.board.counters.get('vtd.walks'), 1, 'second DMA: context, PASID and IOTLB all cached');
});

t.test('first-stage-only PGTT translates a request with PASID; the RID_PASID entry is separate', async (t) => {
  const { fx } = firstStage(RW);
  fx.mem.write32(PA, 0x66);
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 5 })), 0x66);
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_PASID_ENTRY_NOT_PRESENT', 'RID_PASID 0 has no entry');
  t.equal(fx.frcd(0).FR, 0x59);
  t.equal(fx.frcd(0).PP, 0, 'the request had no PASID');
});

t.test('a PASID entry with a reserved bit set faults 0x5A; FRCD holds the reason, SID and PASID', async (t) => {
  const { fx, dir } = firstStage(RW);
  const peAt = fx.pasid(dir, 6, { PGTT: PGTT_FIRST_STAGE, DID: 4, FSPTPTR: fx.page() / PAGE });
  fx.mem.write32(peAt, fx.mem.read32(peAt) | (1 << 10)); // bit 10: reserved
  t.equal(value(fx, fx.read(IOVA + 0x40, 4, { pasid: 6 })), 'DMAR_SM_PASID_ENTRY_RESERVED');
  const f = fx.frcd(0);
  t.same([f.F, f.FR, f.SID, f.PP, f.PV, f.FI * PAGE], [1, 0x5a, fx.sid, 1, 6, IOVA]);
  fx.clearFrcd(0);
  fx.mem.write32(peAt, fx.mem.read32(peAt) & ~(1 << 10));
  fx.mem.write32(peAt + 7 * 4, 0x100); // bit 232 (qword 3) is reserved too
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 6 })), 'DMAR_SM_PASID_ENTRY_RESERVED', 'erroneous entries are never cached');
  t.equal(fx.frcd(1).FR, 0x5a);
});

t.test('not-present scalable-mode root half, context entry, PASID directory entry and PASID entry', async (t) => {
  const fx = new Fx();
  const { root, ctxAt, dir } = fx.scalable();
  fx.enable();
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_PASID_DIR_NOT_PRESENT');
  fx.pasid(dir, 1, { PGTT: PGTT_PASSTHROUGH, DID: 1 });
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_PASID_ENTRY_NOT_PRESENT');
  fx.mem.write32(ctxAt, 0);
  fx.w64(R.CCMD!, (1n << 63n) | (1n << 61n));
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_CONTEXT_NOT_PRESENT');
  fx.mem.write32(root, 0);
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_ROOT_NOT_PRESENT', 'LP clear');
  t.same([0, 1, 2, 3].map((i) => fx.frcd(i).FR), [0x51, 0x59, 0x41, 0x39]);
});

t.test('devfn 128-255 use the upper half of the scalable-mode root entry (UP/UCTP)', async (t) => {
  const fx = new Fx();
  const hi = new BareFunction('hi');
  fx.board.rc.plug(hi, 16); // devfn 0x80
  hi.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const { dir } = fx.scalable({}, hi.requesterId);
  fx.pasid(dir, 0, { PGTT: PGTT_PASSTHROUGH, DID: 2 });
  fx.enable();
  t.ok(hi.dmaRead(0x1000n, 4).ok);
  t.equal(value(fx, fx.read(0x1000)), 'DMAR_SM_ROOT_NOT_PRESENT', 'the same root entry has LP clear');
});

t.test('an invalid PASID entry (reserved PGTT, unsupported AW or FLPM) faults 0x5B', async (t) => {
  for (const pe of [{ PGTT: 0 }, { PGTT: 5 }, { PGTT: PGTT_SECOND_STAGE, AW: 0 }, { PGTT: PGTT_FIRST_STAGE, FLPM: 2 }] as Record<string, number>[]) {
    const { fx } = sm({ DID: 1, ...pe });
    t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_PASID_ENTRY_INVALID', JSON.stringify(pe));
    t.equal(fx.frcd(0).FR, 0x5b);
  }
});

t.test('PASIDE clear blocks requests with PASID (0x45); a PASID beyond PDTS faults 0x46', async (t) => {
  const a = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, { PASIDE: 0 });
  t.ok(a.fx.read(IOVA).ok, 'requests without PASID still use RID_PASID');
  t.equal(value(a.fx, a.fx.read(IOVA, 4, { pasid: 0 })), 'DMAR_SM_CONTEXT_PASID_DISABLED');
  const b = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, { PDTS: 0 });
  t.equal(value(b.fx, b.fx.read(IOVA, 4, { pasid: 128 * 64 })), 'DMAR_SM_CONTEXT_PASID_TOO_LARGE', '2^7 directory entries');
  const c = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, { PDTS: 0, RID_PASID: 128 * 64 });
  t.equal(value(c.fx, c.fx.read(IOVA)), 'DMAR_SM_CONTEXT_RID_PASID_ERROR');
  const narrow = new Fx({ pasidBits: 8 });
  const { dir } = narrow.scalable();
  narrow.pasid(dir, 255, { PGTT: PGTT_PASSTHROUGH, DID: 1 });
  narrow.enable();
  t.ok(narrow.read(IOVA, 4, { pasid: 255 }).ok);
  t.equal(value(narrow, narrow.read(IOVA, 4, { pasid: 256 })), 'DMAR_SM_CONTEXT_PASID_TOO_LARGE', 'beyond ECAP.PSS');
});

t.test('without DTE, translation requests and translated requests fault (0x44; 0xD in legacy mode without TT = 01)', async (t) => {
  const { fx } = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 });
  const out = newTranslationAnswer();
  const txn = (at: DmaTransaction['at']): DmaTransaction => ({ requesterId: fx.sid, pasid: -1, privileged: false, exec: false, at, addr: IOVA, length: 4, write: false });
  t.notOk(fx.vtd.translate(txn('translation-request'), IOVA, out));
  t.same([out.status, out.fault], ['UR', 'DMAR_SM_CONTEXT_DTE_CLEAR']);
  t.notOk(fx.vtd.translate(txn('translated'), IOVA, out));
  t.equal(fx.frcd(1).AT, 2, 'AT of the translated request recorded');
  t.ok(fx.vtd.translate(txn('untranslated'), IOVA, out));
  fx.gcmd(GCMD_TE, false);
  t.notOk(fx.vtd.translate(txn('translation-request'), IOVA, out), 'translation disabled: still not understood');
  t.equal(out.fault, 'UNSUPPORTED_REQUEST');
  const lg = new Fx();
  lg.legacy({ TT: 2, AW: 2, DID: 1 });
  lg.enable();
  t.notOk(lg.vtd.translate({ ...txn('translated'), requesterId: lg.sid }, IOVA, out));
  t.equal(out.fault, 'DMAR_CONTEXT_TT_BLOCKED');
});

t.test('a scalable-mode context entry with DTE or PRE set is reserved without device-TLB / page-request support (0x42)', async (t) => {
  for (const ctx of [{ DTE: 1 }, { PRE: 1 }] as Record<string, number>[]) {
    const { fx } = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, ctx, 0, { deviceTlb: false, pageRequests: false });
    t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_CONTEXT_RESERVED');
  }
});

t.test('first stage U/S: a user request to a supervisor page faults 0x81; a supervisor request needs SRE', async (t) => {
  const { fx } = firstStage(RW | IOMMU_PRIV, { SRE: 1 });
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 5 })), 'DMAR_SM_FS_USER_DENIED');
  t.equal(fx.frcd(0).FR, 0x81);
  t.ok(fx.read(IOVA, 4, { pasid: 5, privileged: true }).ok);
  const noSre = firstStage(RW, { SRE: 0 });
  t.equal(value(noSre.fx, noSre.fx.read(IOVA, 4, { pasid: 5, privileged: true })), 'DMAR_SM_PASID_SRE_CLEAR');
  const f = noSre.fx.frcd(0);
  t.same([f.FR, f.PRIV, f.EXE], [0x5d, 1, 0]);
});

t.test('first stage R/W: writes to a read-only page fault 0x85; supervisor writes honour R/W only with WPE', async (t) => {
  const { fx } = firstStage(IOMMU_READ, { SRE: 1, WPE: 0 });
  t.equal(value(fx, fx.writeDma(IOVA, [1], { pasid: 5 })), 'DMAR_SM_PTE_WRITE_DENIED');
  t.ok(fx.writeDma(IOVA, [1], { pasid: 5, privileged: true }).ok, 'WPE = 0: supervisor may write');
  const wp = firstStage(IOMMU_READ, { SRE: 1, WPE: 1 });
  t.equal(value(wp.fx, wp.fx.writeDma(IOVA, [1], { pasid: 5, privileged: true })), 'DMAR_SM_PTE_WRITE_DENIED');
});

t.test('first stage XD: execute requests need ERE (0x5C) and fault on XD pages (0x82)', async (t) => {
  const { fx } = firstStage(RW | IOMMU_NOEXEC, { ERE: 1 });
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 5, exec: true })), 'DMAR_SM_EXEC_DENIED');
  t.same([fx.frcd(0).FR, fx.frcd(0).EXE], [0x82, 1]);
  t.ok(fx.read(IOVA, 4, { pasid: 5 }).ok, 'plain reads are fine');
  const x = firstStage(RW, { ERE: 1 });
  t.ok(x.fx.read(IOVA, 4, { pasid: 5, exec: true }).ok);
  const noEre = firstStage(RW, { ERE: 0 });
  t.equal(value(noEre.fx, noEre.fx.read(IOVA, 4, { pasid: 5, exec: true })), 'DMAR_SM_PASID_ERE_CLEAR');
});

t.test('first stage A/D: a read sets A, a write sets D, EAFE also sets the extended-accessed bit', async (t) => {
  const { fx, fs } = firstStage(RW, { EAFE: 1 }, 5, false);
  t.equal(leaf(fx, fs.root, IOVA).lo & 0x460, 0, 'A, D and EA clear');
  t.ok(fx.read(IOVA, 4, { pasid: 5 }).ok);
  t.equal(leaf(fx, fs.root, IOVA).lo & 0x460, 0x420, 'A and EA set, D clear');
  t.ok(fx.writeDma(IOVA, [1], { pasid: 5 }).ok);
  t.equal(leaf(fx, fs.root, IOVA).lo & 0x460, 0x460, 'the write walked again (clean entry not writable) and set D');
  t.equal(fx.board.counters.get('vtd.walks'), 2);
  t.ok(fx.writeDma(IOVA, [2], { pasid: 5 }).ok);
  t.equal(fx.board.counters.get('vtd.walks'), 2, 'dirty entry cached writable');
});

t.test('second stage in scalable mode with SLADE sets A and D in second-stage entries', async (t) => {
  const fx = new Fx();
  const ss = fx.ss();
  t.equal(ss.map(IOVA, PA, PAGE, RW), 0);
  const { dir } = fx.scalable();
  fx.pasid(dir, 0, { PGTT: PGTT_SECOND_STAGE, AW: 2, DID: 3, SLPTPTR: ss.root / PAGE, SLADE: 1 });
  fx.enable();
  t.ok(fx.read(IOVA).ok);
  t.equal(leaf(fx, ss.root, IOVA).lo & 0x300, 0x100);
  t.ok(fx.writeDma(IOVA, [3]).ok);
  t.equal(leaf(fx, ss.root, IOVA).lo & 0x300, 0x300);
});

/** Nested: second stage identity-maps the table pool and maps GPA 0x3000_0000 → PA; first stage IOVA → GPA. */
function nested(ssTableProt = RW, mapPool = true, aw = 2) {
  const fx = new Fx();
  const ss = fx.ss({ levels: (aw + 2) as 3 | 4 | 5 });
  const fs = fx.fs({ presetAccessDirty: false });
  if (fs.map(IOVA, 0x3000_0000, PAGE, RW) !== 0) throw new Error('fs map');
  if (mapPool && ss.map(0, 0, 0x1000_0000, ssTableProt) !== 0) throw new Error('pool map');
  if (ss.map(0x3000_0000, PA, PAGE, RW) !== 0) throw new Error('gpa map');
  const { dir } = fx.scalable();
  fx.pasid(dir, 2, { PGTT: PGTT_NESTED, DID: 7, AW: aw, SLPTPTR: ss.root / PAGE, FSPTPTR: fs.root / PAGE });
  fx.enable();
  return { fx, fs, ss };
}

t.test('nested: first-stage output goes through the second stage; table fetches too', async (t) => {
  const { fx } = nested();
  fx.mem.write32(PA + 4, 0x77);
  t.equal(value(fx, fx.read(IOVA + 4, 4, { pasid: 2 })), 0x77);
  t.ok(fx.writeDma(IOVA + 8, [1, 2], { pasid: 2 }).ok);
  t.equal(fx.mem.read32(PA + 8) & 0xffff, 0x0201);
});

t.test('nested: a first-stage table the second stage does not map faults 0x79; a read-only one refuses the A/D write (0x77)', async (t) => {
  const a = nested(RW, false);
  t.equal(value(a.fx, a.fx.read(IOVA, 4, { pasid: 2 })), 'DMAR_SM_SS_PTE_NOT_PRESENT');
  const b = nested(IOMMU_READ);
  t.equal(value(b.fx, b.fx.read(IOVA, 4, { pasid: 2 })), 'DMAR_SM_NESTED_FS_TABLE_WRITE_DENIED');
});

t.test('nested: a GPA the second stage does not map faults 0x79; beyond its AW 0x84', async (t) => {
  const { fx, fs } = nested(RW, true, 1);
  t.equal(fs.map(IOVA + PAGE, 0x3000_1000, PAGE, RW), 0);
  t.equal(fs.map(IOVA + 2 * PAGE, 2 ** 40, PAGE, RW), 0);
  t.equal(value(fx, fx.read(IOVA + PAGE, 4, { pasid: 2 })), 'DMAR_SM_SS_PTE_NOT_PRESENT');
  t.equal(value(fx, fx.read(IOVA + 2 * PAGE, 4, { pasid: 2 })), 'DMAR_SM_NESTED_OUTPUT_BEYOND_AW', '3-level second stage: 39 bits');
  t.ok(fx.read(IOVA, 4, { pasid: 2 }).ok);
});

t.test('pass-through PGTT maps addresses to themselves; requests with PASID to the interrupt range fault 0x87', async (t) => {
  const { fx } = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, {}, 3);
  fx.mem.write32(0x3000_0000, 0x99);
  t.equal(value(fx, fx.read(0x3000_0000, 4, { pasid: 3 })), 0x99);
  t.equal(value(fx, fx.writeDma(0xfee0_0000, [1, 0, 0, 0], { pasid: 3 })), 'DMAR_SM_INTERRUPT_ADDR');
  t.equal(fx.board.msi.count(), 0);
});

t.test('FPD in the PASID entry, directory entry or context entry suppresses recording', async (t) => {
  for (const where of ['pe', 'ctx'] as const) {
    const { fx } = sm({ PGTT: PGTT_FIRST_STAGE, DID: 1, FSPTPTR: 0x100, FPD: where === 'pe' ? 1 : 0 }, { FPD: where === 'ctx' ? 1 : 0 });
    t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_FS_PTE_NOT_PRESENT', where);
    t.equal(fx.frcd(0).F, 0);
    t.equal(fx.board.counters.get('vtd.faults.suppressed'), 1);
  }
  const { fx, dir } = sm({ PGTT: PGTT_FIRST_STAGE, DID: 1, FSPTPTR: 0x100 });
  fx.mem.write32(dir, fx.mem.read32(dir) | 2);
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_FS_PTE_NOT_PRESENT');
  t.equal(fx.frcd(0).F, 0, 'directory entry FPD');
});

t.test('FPD in a non-present PASID entry suppresses the not-present fault (SPT.2 is qualified, §7.1.3)', async (t) => {
  const { fx, dir } = firstStage(RW);
  // Linux's SVA mm release leaves exactly this: qword 0 = FPD, everything else zero (pasid_clear_entry_with_fpd).
  const peAt = fx.pasid(dir, 7, {});
  fx.write(peAt, PASID_ENTRY, { P: 0, FPD: 1 });
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 7 })), 'DMAR_SM_PASID_ENTRY_NOT_PRESENT', 'the request still aborts');
  t.equal(fx.frcd(0).F, 0, 'nothing recorded');
  t.equal(fx.r32(R.FSTS!), 0, 'no PPF, no fault event');
  t.equal(fx.board.counters.get('vtd.faults.suppressed'), 1);
  // The same entry without FPD: recorded.
  fx.write(peAt, PASID_ENTRY, { P: 0 });
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 7 })), 'DMAR_SM_PASID_ENTRY_NOT_PRESENT');
  t.same([fx.frcd(0).F, fx.frcd(0).FR, fx.frcd(0).PV], [1, 0x59, 7]);
});

t.test('FPD in a non-present context entry or PASID directory entry suppresses their not-present faults', async (t) => {
  const { fx, ctxAt } = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 });
  fx.write(ctxAt, SM_CONTEXT_ENTRY, { P: 0, FPD: 1 });
  fx.w64(R.CCMD!, (1n << 63n) | (1n << 61n));
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_CONTEXT_NOT_PRESENT');
  t.equal(fx.frcd(0).F, 0, 'SCT.2 with FPD: not recorded');
  const d = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, {}, 0);
  d.fx.write(d.dir + 8, PASID_DIR_ENTRY, { P: 0, FPD: 1 }); // directory entry of PASIDs 64-127
  t.equal(value(d.fx, d.fx.read(IOVA, 4, { pasid: 70 })), 'DMAR_SM_PASID_DIR_NOT_PRESENT');
  t.equal(d.fx.frcd(0).F, 0, 'SPD.2 with FPD: not recorded');
  t.equal(value(d.fx, d.fx.read(IOVA, 4, { pasid: 200 })), 'DMAR_SM_PASID_DIR_NOT_PRESENT');
  t.equal(d.fx.frcd(0).FR, 0x51, 'another directory entry without FPD: recorded');
});

t.test('FPD does not suppress faults that are not qualified: a PASID-table fetch error (SPT.1) is recorded', async (t) => {
  const { fx, dir } = sm({ PGTT: PGTT_PASSTHROUGH, DID: 1 }, { FPD: 1 });
  // Directory entry of PASIDs 64-127 pointing at a table beyond memory.
  fx.write(dir + 8, PASID_DIR_ENTRY, { P: 1, SMPTBLPTR: 0xf_ffff_f000 / PAGE });
  t.equal(value(fx, fx.read(IOVA, 4, { pasid: 70 })), 'DMAR_SM_PASID_ENTRY_FETCH_ERROR');
  t.same([fx.frcd(0).F, fx.frcd(0).FR], [1, 0x58], 'recorded although the context entry has FPD');
  t.equal(isQualifiedFault(0x58), false);
  t.equal(isQualifiedFault(0x59), true);
  t.equal(isQualifiedFault(0x41), true);
  t.equal(isQualifiedFault(0x40), false, 'SCT.1: the context entry could not be read');
});

t.test('RID_PRIV gives requests without PASID supervisor privilege', async (t) => {
  const fx = new Fx();
  const fs = fx.fs();
  t.equal(fs.map(IOVA, PA, PAGE, RW | IOMMU_PRIV), 0);
  const { dir, ctxAt } = fx.scalable({ RID_PRIV: 0 });
  fx.pasid(dir, 0, { PGTT: PGTT_FIRST_STAGE, DID: 1, SRE: 1, FSPTPTR: fs.root / PAGE });
  fx.enable();
  t.equal(value(fx, fx.read(IOVA)), 'DMAR_SM_FS_USER_DENIED');
  fx.write(ctxAt, SM_CONTEXT_ENTRY, { P: 1, PASIDE: 1, PDTS: 7, PASIDDIRPTR: dir / PAGE, RID_PRIV: 1 });
  fx.w64(R.CCMD!, (1n << 63n) | (1n << 61n));
  t.ok(fx.read(IOVA).ok);
});

t.test('IOTLB entries are tagged by domain and PASID: one IOVA, two PASIDs, two translations', async (t) => {
  const fx = new Fx();
  const a = fx.fs();
  const b = fx.fs();
  t.equal(a.map(IOVA, PA, PAGE, RW), 0);
  t.equal(b.map(IOVA, PA + PAGE, PAGE, RW), 0);
  const { dir } = fx.scalable();
  fx.pasid(dir, 1, { PGTT: PGTT_FIRST_STAGE, DID: 1, FSPTPTR: a.root / PAGE });
  fx.pasid(dir, 2, { PGTT: PGTT_FIRST_STAGE, DID: 1, FSPTPTR: b.root / PAGE });
  fx.enable();
  fx.mem.write32(PA, 1);
  fx.mem.write32(PA + PAGE, 2);
  t.same([value(fx, fx.read(IOVA, 4, { pasid: 1 })), value(fx, fx.read(IOVA, 4, { pasid: 2 }))], [1, 2]);
  t.same([value(fx, fx.read(IOVA, 4, { pasid: 1 })), value(fx, fx.read(IOVA, 4, { pasid: 2 }))], [1, 2]);
  t.equal(fx.vtd.iotlb.size, 2);
});

t.test('5-level first stage (FLPM = 01) translates addresses above 2^48', async (t) => {
  const fx = new Fx();
  const fs = fx.fs({ levels: 5 });
  const high = 2 ** 50 + IOVA;
  t.equal(fs.map(high, PA, PAGE, RW), 0);
  const { dir } = fx.scalable();
  fx.pasid(dir, 0, { PGTT: PGTT_FIRST_STAGE, DID: 1, FLPM: 1, FSPTPTR: fs.root / PAGE });
  fx.enable();
  fx.mem.write32(PA, 0x55);
  t.equal(value(fx, fx.read(high)), 0x55);
  t.equal(PASID_ENTRY.bytes, 64);
});
