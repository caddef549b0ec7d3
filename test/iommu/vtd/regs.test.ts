import t from 'tap';
import { decodeLayout } from '../../../src/hw/layout.ts';
import {
  FRCD_REG_OFFSET, GCMD_IRE, GCMD_QIE, GCMD_SFL, GCMD_SRTP, GCMD_TE, GCMD_WBF, GSTS_QIES, GSTS_RTPS, GSTS_TES,
  IOTLB_REG_OFFSET, VTD_REG, VTD_REGS,
} from '../../../iommu/vtd/index.ts';
import { Fx, R } from './helpers.ts';

const cap = (fx: Fx) => decodeLayout(VTD_REGS.layout('CAP'), [fx.r32(R.CAP!), fx.r32(R.CAP! + 4)]);
const ecap = (fx: Fx) => decodeLayout(VTD_REGS.layout('ECAP'), [fx.r32(R.ECAP!), fx.r32(R.ECAP! + 4)]);

t.test('registers sit at the offsets of VT-d §10.4', async (t) => {
  const expect: Record<string, number> = {
    VER: 0x0, CAP: 0x8, ECAP: 0x10, GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, CCMD: 0x28, FSTS: 0x34, FECTL: 0x38,
    FEDATA: 0x3c, FEADDR: 0x40, FEUADDR: 0x44, AFLOG: 0x58, PMEN: 0x64, IQH: 0x80, IQT: 0x88, IQA: 0x90, ICS: 0x9c,
    IECTL: 0xa0, IEDATA: 0xa4, IEADDR: 0xa8, IEUADDR: 0xac, IQERCD: 0xb0, PQH: 0xc0, PQT: 0xc8, PQA: 0xd0, PRS: 0xdc,
    PECTL: 0xe0, PEDATA: 0xe4, PEADDR: 0xe8, PEUADDR: 0xec,
  };
  for (const [name, off] of Object.entries(expect)) t.equal((VTD_REG as Readonly<Record<string, number>>)[name], off, name);
});

t.test('CAP advertises what the model implements, and FRO/NFR locate the fault recording registers', async (t) => {
  const fx = new Fx({ faultRecords: 4 });
  const c = cap(fx);
  t.equal(c.SAGAW, 0b01110, '3-, 4- and 5-level second stage');
  t.equal(c.MGAW + 1, 57);
  t.equal(c.ND, 6, '64K domains');
  t.equal(c.FRO * 16, FRCD_REG_OFFSET);
  t.equal(c.NFR + 1, 4);
  t.equal(c.PSI, 1, 'page-selective invalidation');
  t.equal(c.SLLPS, 0b0011, '2 MiB and 1 GiB second-stage pages');
  t.equal(c.FL1GP, 1);
  t.equal(c.FL5LP, 1);
  t.equal(c.CM, 0, 'not-present entries are never cached');
  t.equal(c.RWBF, 0);
  t.equal(c.AFL, 0);
  t.ok(c.MAMV >= 9, 'a 2 MiB page can be invalidated with one PSI');
  t.equal(fx.r32(R.VER!), 0x30);
});

t.test('ECAP advertises scalable mode, both stages, nesting, PASID, QI, device-TLBs and page requests', async (t) => {
  const e = ecap(new Fx());
  for (const f of ['SMTS', 'FLTS', 'SLTS', 'NEST', 'PASID', 'QI', 'PT', 'SC', 'C', 'SMPWCS', 'SRS', 'ERS', 'EAFS', 'SLADS', 'RPS', 'DT', 'PRS', 'PDS'] as const) {
    t.equal(e[f], 1, f);
  }
  t.equal(e.PSS + 1, 20, '20-bit PASIDs');
  t.equal(e.IRO * 16, IOTLB_REG_OFFSET);
  for (const f of ['IR', 'EIM', 'DIT', 'NWFS', 'VCS', 'ADMS'] as const) t.equal(e[f], 0, `${f} = 0`);
  const off = ecap(new Fx({ deviceTlb: false, pageRequests: false }));
  t.same([off.DT, off.PRS, off.PDS], [0, 0, 0], 'device-TLB and page requests can be left out');
  t.equal(ecap(new Fx({ pasidBits: 16 })).PSS + 1, 16);
  t.equal(cap(new Fx({ fiveLevel: false })).SAGAW, 0b00110);
});

t.test('CAP and ECAP are read-only', async (t) => {
  const fx = new Fx();
  const before = fx.r64(R.CAP!);
  fx.w64(R.CAP!, 0n);
  fx.w64(R.ECAP!, 0n);
  t.equal(fx.r64(R.CAP!), before);
  t.not(fx.r64(R.ECAP!), 0n);
});

t.test('GCMD/GSTS: each command bit is mirrored by its status bit, GCMD reads as zero', async (t) => {
  const fx = new Fx();
  t.equal(fx.r32(R.GSTS!), 0, 'everything off at reset');
  t.equal(fx.gcmd(GCMD_SRTP, true) & GSTS_RTPS, GSTS_RTPS, 'SRTP completes: RTPS');
  t.equal(fx.r32(R.GCMD!), 0, 'GCMD is write-only');
  const sts = fx.gcmd(GCMD_TE, true);
  t.ok(sts & GSTS_TES, 'TE → TES');
  t.ok(fx.vtd.translationEnabled);
  t.equal((fx.gcmd(GCMD_QIE, true) & (GSTS_QIES | GSTS_TES)) >>> 0, (GSTS_QIES | GSTS_TES) >>> 0, 'QIE → QIES, TES kept');
  t.equal(fx.gcmd(GCMD_TE, false) & GSTS_TES, 0, 'clearing TE clears TES');
  t.equal(fx.r32(R.GSTS!) & GSTS_QIES, GSTS_QIES, 'QIES unaffected');
  t.equal(fx.gcmd(GCMD_QIE, false) & GSTS_QIES, 0);
  fx.w32(R.GSTS!, 0xffff_ffff);
  t.equal(fx.r32(R.GSTS!) & ~GSTS_RTPS, 0, 'GSTS is read-only');
});

t.test('GCMD commands the unit does not support (IRE, SFL, WBF) leave their status clear', async (t) => {
  const fx = new Fx();
  for (const bit of [GCMD_IRE, GCMD_SFL, GCMD_WBF]) t.equal(fx.gcmd(bit, true), 0);
});

t.test('SRTP latches RTADDR: a later RTADDR write has no effect until the next SRTP', async (t) => {
  const fx = new Fx();
  fx.w64(R.RTADDR!, 0x12_3000n | (1n << 10n));
  fx.gcmd(GCMD_SRTP, true);
  t.equal(fx.vtd.mode, 'scalable');
  fx.w64(R.RTADDR!, 0x45_6000n);
  t.equal(fx.vtd.mode, 'scalable', 'not latched yet');
  t.equal(fx.r64(R.RTADDR!), 0x45_6000n, 'RTADDR reads back what was written');
  fx.gcmd(GCMD_SRTP, true);
  t.equal(fx.vtd.mode, 'legacy');
  fx.w64(R.RTADDR!, 3n << 10n);
  fx.gcmd(GCMD_SRTP, true);
  t.equal(fx.vtd.mode, 'invalid', 'TTM 11 is reserved');
});

t.test('FECTL/IECTL/PECTL reset with the interrupt masked', async (t) => {
  const fx = new Fx();
  for (const r of ['FECTL', 'IECTL', 'PECTL'] as const) t.equal(fx.r32(R[r]!), 0x8000_0000, r);
  fx.w32(R.FECTL!, 0xffff_ffff);
  t.equal(fx.r32(R.FECTL!), 0x8000_0000, 'IP is read-only, other bits reserved');
});

t.test('a DMA with translation disabled passes through untranslated', async (t) => {
  const fx = new Fx();
  fx.mem.write32(0x20_0000, 0xdead_beef);
  const r = fx.read(0x20_0000);
  t.ok(r.ok);
  t.same(r.ok && [...r.data!], [0xef, 0xbe, 0xad, 0xde]);
  t.equal(fx.board.counters.get('vtd.walks'), 0);
});

t.test('register fields are typed per register, fault recording registers included', async (t) => {
  const fx = new Fx({ faultRecords: 2 });
  const rf = fx.vtd.rf;
  t.equal(rf.getField('CAP', 'FRO') * 16, FRCD_REG_OFFSET, 'a field across bit 32 of a 64-bit register reads exactly');
  t.equal(rf.getField('FRCD1_HI', 'F'), 0);
  // @ts-expect-error FI is in the low half of a fault record
  t.throws(() => rf.getField('FRCD1_HI', 'FI'));
  // @ts-expect-error misspelt field
  t.throws(() => rf.getField('CCMD', 'ICCC'));
  // @ts-expect-error a GSTS field is not a GCMD field
  t.throws(() => VTD_REGS.pack('GCMD', { TES: 1 }));
  t.equal(VTD_REGS.pack('GCMD', { TE: 1 }), GCMD_TE);
  t.equal(VTD_REGS.pack64('RTADDR', { RTA: 0x12_3456_7890, TTM: 1 }), (0x12_3456_7890n << 12n) | (1n << 10n));
});
