import t from 'tap';
import { decodeLayout, encodeLayout, reservedBitsSet } from '../../../src/hw/layout.ts';
import {
  CD_LAYOUT,
  CMD_LAYOUTS,
  CMD_OP,
  CR0,
  EVT,
  EVT_FAULT_LAYOUT,
  GBPA,
  GERROR,
  IRQ_CTRL,
  L1STD_LAYOUT,
  PRIQ_LAYOUT,
  SHCFG_INCOMING,
  SMMU_REG,
  STE_LAYOUT,
  decodeSte,
  encodeCommand,
  SMMU_REGS,
  smmuFeatures,
} from '../../../iommu/smmuv3/index.ts';
import { EventInfo, decodeEvent, encodeEvent } from '../../../iommu/smmuv3/event.ts';
import { Harness, STRTAB } from './harness.ts';

const bits = (v: number, lsb: number, w = 1) => Math.floor(v / 2 ** lsb) % 2 ** w;

t.test('ID registers advertise what the model implements and nothing more', async (t) => {
  const h = new Harness();
  const idr0 = h.r32('IDR0');
  t.equal(bits(idr0, 0), 1, 'S2P');
  t.equal(bits(idr0, 1), 1, 'S1P');
  t.equal(bits(idr0, 2, 2), 0b10, 'TTF: AArch64 tables');
  t.equal(bits(idr0, 6, 2), 0b10, 'HTTU: access flag and dirty state');
  t.equal(bits(idr0, 13), 1, 'MSI');
  t.equal(bits(idr0, 19), 1, 'CD2L');
  t.equal(bits(idr0, 27, 2), 1, 'ST_LEVEL: 2-level stream table');
  t.equal(bits(idr0, 10), 1, 'ATS');
  t.equal(bits(idr0, 11), 1, 'NS1ATS: no split-stage ATS');
  t.equal(bits(idr0, 16), 1, 'PRI');
  t.equal(bits(idr0, 24, 2), 0b00, 'STALL_MODEL: stall and terminate');
  t.equal(bits(idr0, 26), 0, 'TERM_MODEL: RAZ/WI termination supported');
  const idr1 = h.r32('IDR1');
  t.equal(bits(idr1, 0, 6), 16, 'SIDSIZE');
  t.equal(bits(idr1, 6, 5), 20, 'SSIDSIZE');
  t.equal(bits(idr1, 11, 5), 19, 'PRIQS');
  t.equal(bits(h.r32('IDR3'), 10), 1, 'RIL: range invalidation');
  const idr5 = h.r32('IDR5');
  t.equal(bits(idr5, 0, 3), 5, 'OAS 48 bits');
  t.equal(bits(idr5, 4, 3), 0b111, '4K, 16K and 64K granules');
  t.equal(bits(idr5, 16, 16), 64, 'STALL_MAX');
  t.equal(new Harness({ oas: 52 }).r32('IDR5') & 7, 6, 'OAS 52 bits when asked');
  t.equal(h.r32('AIDR'), 0x02, 'SMMUv3.2');
  h.w32('IDR0', 0);
  t.equal(h.r32('IDR0'), idr0, 'ID registers are read-only');
});

t.test('CR0 updates are acknowledged in CR0ACK; reserved bits read as zero', async (t) => {
  const h = new Harness();
  t.equal(h.r32('CR0ACK'), 0);
  h.w32('CR0', CR0.SMMUEN | CR0.EVENTQEN | CR0.CMDQEN | CR0.PRIQEN | CR0.ATSCHK | 0xffff_ff00);
  t.equal(h.r32('CR0'), 0x1f);
  t.equal(h.r32('CR0ACK'), 0x1f);
  h.w32('CR0', CR0.CMDQEN);
  t.equal(h.r32('CR0ACK'), CR0.CMDQEN);
});

t.test('IRQ_CTRL updates are acknowledged in IRQ_CTRLACK', async (t) => {
  const h = new Harness();
  h.w32('IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN | IRQ_CTRL.GERROR_IRQEN);
  t.equal(h.r32('IRQ_CTRLACK'), 5);
});

t.test('GBPA ignores a write without UPDATE; an UPDATE completes at once', async (t) => {
  const h = new Harness();
  const reset = h.r32('GBPA');
  t.equal(reset, SMMU_REGS.pack('GBPA', { SHCFG: SHCFG_INCOMING }), 'reset: bypass, incoming shareability');
  h.w32('GBPA', GBPA.ABORT);
  t.equal(h.r32('GBPA'), reset, 'no UPDATE: ignored (SMMUv3.2)');
  h.w32('GBPA', GBPA.ABORT | GBPA.UPDATE);
  t.equal(h.r32('GBPA'), GBPA.ABORT, 'UPDATE reads back 0 once complete');
  t.equal(new Harness({ gbpaAbort: true }).r32('GBPA') & GBPA.ABORT, GBPA.ABORT, 'reset value of ABORT is an option');
});

t.test('a global error stays active until software toggles GERRORN to match', async (t) => {
  const h = new Harness();
  h.enable();
  h.w32('IRQ_CTRL', IRQ_CTRL.GERROR_IRQEN);
  h.put(new Uint32Array([0xff, 0, 0, 0]));
  t.equal(h.r32('GERROR') & GERROR.CMDQ_ERR, GERROR.CMDQ_ERR, 'activated by toggling GERROR');
  t.ok(h.smmu.gerrorActive('CMDQ_ERR'));
  t.same(h.irqs, ['gerror'], 'wired GERROR interrupt without an MSI address');
  // As Linux does: replace the bad command (here with CMD_SYNC) before acknowledging.
  const cons = h.r32('CMDQ_CONS') & 0xfffff;
  h.writeWords(0x4800_0000 + (cons % 256) * 16, encodeCommand('SYNC'));
  h.w32('GERRORN', h.r32('GERROR'));
  t.notOk(h.smmu.gerrorActive('CMDQ_ERR'), 'acknowledged');
  t.equal(h.r32('GERROR') & GERROR.CMDQ_ERR, GERROR.CMDQ_ERR, 'GERROR keeps its value: activity is GERROR != GERRORN');
  t.equal(h.r32('CMDQ_CONS') & 0xfffff, h.r32('CMDQ_PROD'), 'consumption restarted at the replaced command');
});

t.test('Guarded registers ignore writes while their guard is set', async (t) => {
  const h = new Harness();
  h.enable();
  h.w64('STRTAB_BASE', 0x1234_0000);
  t.equal(h.r32('STRTAB_BASE'), STRTAB, 'STRTAB_BASE while SMMUEN == 1');
  h.w32('CMDQ_CONS', 5);
  t.equal(h.r32('CMDQ_CONS') & 0xfffff, h.r32('CMDQ_PROD'), 'CMDQ_CONS while CMDQEN == 1');
  h.w32('IRQ_CTRL', IRQ_CTRL.EVENTQ_IRQEN);
  h.w32('EVENTQ_IRQ_CFG1', 0x55);
  t.equal(h.r32('EVENTQ_IRQ_CFG1'), 0, 'EVENTQ_IRQ_CFG1 while EVENTQ_IRQEN == 1');
  h.w32('CR0', 0);
  h.w64('STRTAB_BASE', 0x1234_0000);
  t.equal(h.r32('STRTAB_BASE'), 0x1234_0000, 'writable again once SMMUEN == 0');
});

t.test('the Event queue indexes live in Page 1 and alias at Page 0 offsets 0xA8/0xAC', async (t) => {
  const h = new Harness();
  t.equal(SMMU_REG.EVENTQ_PROD, 0x100a8);
  h.w32(0xa8, 3);
  t.equal(h.r32(0x100a8), 3);
  h.w32(0x100ac, 7);
  t.equal(h.r32(0xac), 7);
  t.equal(h.board.sysmem.read8(h.base + 0x20), 0xff, 'byte accesses are refused (32/64-bit only)');
});

t.test('STE layout: fields are numbered across the 512-bit entry and decode back', async (t) => {
  const w = encodeLayout(STE_LAYOUT, { V: 1, Config: 6, S2VMID: 0x77, S2T0SZ: 25, S2SL0: 1, S2AA64: 1, S2TTB: 0x12345, S2R: 1 });
  t.equal(w[4], 0x77, 'S2VMID is bits [143:128]: word 4');
  t.equal(w[5]! & 0x3f, 25, 'S2T0SZ is bits [165:160]');
  t.equal((w[6]! >>> 4) + 0, 0x12345, 'S2TTB starts at bit 196');
  const s = decodeSte(w, smmuFeatures());
  t.equal(s.illegal, null);
  t.equal(s.s2cfg?.ttb, 0x123450);
  t.equal(s.vmid, 0x77);
  const bad = w.slice();
  bad[15] = 1;
  t.same(reservedBitsSet(STE_LAYOUT, bad), [480], 'bit 480 is RES0');
  t.match(decodeSte(bad, smmuFeatures()).illegal, /RES0/);
  t.same(decodeLayout(L1STD_LAYOUT, encodeLayout(L1STD_LAYOUT, { Span: 9, L2Ptr: 0x1000 })), { Span: 9, L2Ptr: 0x1000 });
});

t.test('CD layout: TTB0 is bits [115:68], ASID [63:48], V bit 31', async (t) => {
  const w = encodeLayout(CD_LAYOUT, { V: 1, ASID: 0xbeef, TTB0: 0x4_0000_0000 / 16 });
  t.equal(w[0], 0x8000_0000);
  t.equal(w[1]! >>> 16, 0xbeef);
  t.equal(w[2], 0, 'TTB0[35:4] in word 2 from bit 68');
  t.equal(w[3], 0x4 >>> 0, 'TTB0[51:36]');
});

t.test('commands and event records use their architected layouts', async (t) => {
  const c = encodeCommand('TLBI_NH_VA', { VMID: 3, ASID: 9, Address: 0x12345, Leaf: 1, TG: 1, NUM: 4, TTL: 3 });
  t.equal(c[0]! & 0xff, CMD_OP.TLBI_NH_VA);
  t.equal(c[1], 3 | (9 << 16), 'VMID [47:32], ASID [63:48]');
  t.equal(c[2]! & 1, 1, 'Leaf is bit 64');
  t.equal((c[2]! >>> 8) & 3, 3, 'TTL [73:72]');
  t.equal((c[2]! >>> 10) & 3, 1, 'TG [75:74]');
  t.equal(c[2]! >>> 12, 0x12345, 'Address[31:12] from bit 76');
  t.ok(CMD_LAYOUTS[CMD_OP.SYNC]!.fields['MSIAddr'], 'CMD_SYNC has MSIAddr');
  const e = new EventInfo().reset(EVT.F_PERMISSION, 0x10, 5);
  e.inputAddr = 0x1234_5678_9000;
  e.read = false;
  e.s2 = true;
  e.cls = 2;
  e.addr2 = 0x9_8765_4000;
  const rec = encodeEvent(e);
  t.equal(rec[0], 0x13 | (1 << 11) | (5 << 12));
  t.equal(rec[1], 0x10);
  const d = decodeEvent(rec);
  t.equal(d['InputAddr'], 0x1234_5678_9000);
  t.equal(d['IPA'], 0x9_8765_4000 / 4096);
  t.equal(d['S2'], 1);
  t.equal(d['CLASS'], 2);
  t.equal(d['RnW'], 0);
  t.equal(EVT_FAULT_LAYOUT.bytes, 32);
  t.equal(PRIQ_LAYOUT.bytes, 16);
  t.equal(SMMU_REGS.offset('GERROR'), 0x60);
  t.equal(SMMU_REG.GERROR, 0x60);
});

t.test('register and command fields are typed: a misspelt or foreign field does not compile', async (t) => {
  const h = new Harness();
  t.equal(h.smmu.regs.getField('IDR0', 'HTTU'), 0b10);
  // @ts-expect-error misspelt field of IDR0
  t.throws(() => h.smmu.regs.getField('IDR0', 'HTTUU'));
  // @ts-expect-error a field of CR0 asked of CR1
  t.throws(() => SMMU_REGS.pack('CR1', { SMMUEN: 1 }));
  t.equal(SMMU_REGS.pack('CR1', { TABLE_SH: 3 }), 3 << 10);
  // @ts-expect-error misspelt command field
  t.throws(() => encodeCommand('TLBI_NH_VA', { ASIDD: 1 }));
  // @ts-expect-error CFGI_STE has no ASID
  t.throws(() => encodeCommand('CFGI_STE', { ASID: 1 }));
  // @ts-expect-error CFGI_ALL sets Range itself
  encodeCommand('CFGI_ALL', { Range: 3 });
  t.equal(decodeLayout(CMD_LAYOUTS[CMD_OP.CFGI_STE_RANGE]!, encodeCommand('CFGI_ALL', { StreamID: 5 })).Range, 31);
});
