import t from 'tap';
import { RegisterFile } from '../../../src/hw/register-file.ts';
import {
  DMAE_ERROR, DMAE_REGISTERS, DMAE_REGS, DMAE_REGS_SIZE, regField, registerDefs, regValue, withField, WQ_REG, WQ_REGISTERS, wqReg,
} from '../../../devices/dma-engine/regs.ts';
import { setup } from './fixture.ts';

const CAPS = { workQueues: 16, opsMask: 0xf, msixVectors: 17, maxTransfer: 1 << 20, atcEntries: 64, maxPrgPages: 8, maxDepth: 32 };

t.test('each register is declared once: the offset maps and the register file come from the same table', async (t) => {
  t.equal(DMAE_REGS.ERROR, DMAE_REGISTERS.ERROR.offset);
  t.equal(WQ_REG.TAIL, WQ_REGISTERS.TAIL.offset);
  t.same(Object.keys(DMAE_REGS), Object.keys(DMAE_REGISTERS));
  // The register file refuses overlapping or out-of-range registers: sixteen WQ blocks fit BAR0.
  const file = new RegisterFile('dmae', DMAE_REGS_SIZE, registerDefs(CAPS));
  t.equal(file.def('WQ15_RETRIES').offset, wqReg(15, WQ_REG.RETRIES));
  t.same(file.def('ERROR').fields, [
    ['VALID', 0, 0, 'w1c'], ['OVERFLOW', 1, 1, 'w1c'], ['WQ_VALID', 2, 2, 'ro'], ['FAULT_WRITE', 3, 3, 'ro'],
    ['CODE', 15, 8, 'ro'], ['WQ', 23, 16, 'ro'], ['OPCODE', 31, 24, 'ro'],
  ], 'fields [name, msb, lsb, access], from the one declaration');
  t.equal(file.def('WQ0_RING_BASE').size, 8);
  t.equal(file.get('WQ3_VECTOR'), 0xffffffff, 'vectors reset to none');
  t.equal(file.get('WQ3_DEPTH'), 32, 'depth resets to the maximum');
  t.equal(regField(DMAE_REGISTERS.CAP, file.get('CAP'), 'MSIX_VECTORS'), 17);
});

t.test('field values encode and decode through the declarations, truncated to their width', async (t) => {
  const { PASID, CFG } = WQ_REGISTERS;
  t.equal(regValue(PASID, { PASID: 0x12345, PV: 1, PRIV: 1 }), 0x0031_2345);
  t.equal(regValue(PASID, { PASID: 0x1f_ffff }), 0xf_ffff, 'PASID is 20 bits');
  t.equal(regField(PASID, 0xffff_ffff, 'PASID'), 0xf_ffff);
  t.equal(regField(PASID, 0x0020_0000, 'PRIV'), 1);
  const cfg = regValue(CFG, { ENABLE: 1, SHARED: 1, PRIV_ALLOWED: 1 });
  t.equal(withField(CFG, cfg, 'ENABLE', 0), 0b110, 'the other fields stay');
  t.equal(regField(DMAE_REGISTERS.ERROR, regValue(DMAE_REGISTERS.ERROR, { CODE: 0x1ff }), 'CODE'), 0xff);
  // A misspelt field name does not compile.
  // @ts-expect-error: CFG has no field ENABLED
  t.throws(() => regValue(CFG, { ENABLED: 1 }));
  // @ts-expect-error: STATUS has OCCUPANCY, not OCCUPANCE
  t.throws(() => regField(WQ_REGISTERS.STATUS, 0, 'OCCUPANCE'));
});

t.test('software access follows the declared access of each field', async (t) => {
  const f = setup();
  const cap = f.reg32(DMAE_REGS.CAP);
  f.wreg32(DMAE_REGS.CAP, 0);
  t.equal(f.reg32(DMAE_REGS.CAP), cap, 'CAP is read-only');
  f.configWq(0);
  f.wreg32(wqReg(0, WQ_REG.STATUS), 0);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'ENABLED'), 1, 'STATUS is read-only');
  f.wreg32(wqReg(0, WQ_REG.CFG), 0xffff_ffff);
  t.equal(f.wqReg(0, WQ_REG.CFG), 0b111, 'bits in no field read 0');
  // Two errors: the first is latched, the second only sets OVERFLOW.
  f.doorbell(1, 1);
  f.doorbell(2, 1);
  const first = f.error();
  t.same([first.valid, first.overflow, first.code, first.wq], [true, true, DMAE_ERROR.WQ_DISABLED, 1]);
  f.wreg32(DMAE_REGS.ERROR, regValue(DMAE_REGISTERS.ERROR, { CODE: 0x77, WQ: 9 }));
  t.same([f.error().code, f.error().wq], [DMAE_ERROR.WQ_DISABLED, 1], 'CODE and WQ are read-only');
  f.wreg32(DMAE_REGS.ERROR, regValue(DMAE_REGISTERS.ERROR, { OVERFLOW: 1 }));
  t.same([f.error().valid, f.error().overflow], [true, false], 'OVERFLOW clears on a 1, VALID stays');
  f.clearError();
  t.equal(f.error().valid, false);
});
