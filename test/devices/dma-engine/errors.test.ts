import t from 'tap';
import { DESC_STATUS, FAULT_REASON, OPCODE, encodeDescriptor } from '../../../devices/dma-engine/descriptor.ts';
import {
  DMAE_ERROR, DMAE_REGS, PORTAL_STATUS, regField, WQ_CONFIG_ERROR, WQ_REG, WQ_REGISTERS,
} from '../../../devices/dma-engine/regs.ts';
import { CR, DST, PAGE, RING, SRC, buffers, mapBuf, setup } from './fixture.ts';

t.test('malformed descriptors complete with an error status and never throw', async (t) => {
  const f = setup({ maxTransfer: 8192 });
  const { cr } = buffers(f);
  f.configWq(0);
  const raw = encodeDescriptor({ op: OPCODE.NOOP, rcr: true, completion: CR });
  raw[40] = 0x80; // bit 327: reserved
  f.submit(0, raw);
  f.submit(0, { op: 9, rcr: true, completion: CR + 32 });
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 8193, rcr: true, completion: CR + 64 });
  f.submit(0, { op: OPCODE.MEMMOVE, src: 2 ** 53 - 8, dst: DST, length: 64, rcr: true, completion: CR + 96 });
  f.submit(0, { op: OPCODE.FILL, dst: 2 ** 60, length: 64, rcr: true, completion: CR + 128 });
  f.run();
  const r = [0, 1, 2, 3, 4].map((i) => f.record(cr + 32 * i));
  t.equal(r[0]!.statusName, 'RESERVED_NONZERO');
  t.equal(r[0]!.info, 327);
  t.equal(r[1]!.statusName, 'INVALID_OPCODE');
  t.equal(r[1]!.info, 9);
  t.equal(r[2]!.statusName, 'TRANSFER_TOO_LARGE');
  t.equal(r[2]!.info, 8192);
  t.equal(r[3]!.statusName, 'ADDRESS_RANGE');
  t.equal(r[3]!.info, 0, 'the source');
  t.equal(r[4]!.statusName, 'ADDRESS_RANGE');
  t.equal(r[4]!.info, 1, 'the destination');
  t.equal(f.counter('desc.failed'), 5);
  t.notOk(f.error().valid, 'reported in the records, not the error register');
});

t.test('errors of descriptors without a completion record latch the error register; OVERFLOW keeps the first', async (t) => {
  const f = setup();
  buffers(f);
  f.wreg32(DMAE_REGS.ERR_VECTOR, 4);
  f.configWq(0);
  f.submit(0, { op: 7 });
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: 0x7000_0000, length: 64 });
  f.run();
  let e = f.error();
  t.ok(e.valid);
  t.ok(e.overflow, 'the second error overflowed');
  t.equal(e.code, DESC_STATUS.INVALID_OPCODE);
  t.ok(e.wqValid);
  t.equal(e.opcode, 7);
  t.equal(f.msiCount(4), 1, 'ERR_VECTOR raised for the latched error');
  f.clearError();
  t.notOk(f.error().valid);
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: 0x7000_0000, length: 64 });
  f.run();
  e = f.error();
  t.equal(e.code, DESC_STATUS.PAGE_FAULT);
  t.ok(e.write);
  t.equal(e.addr, 0x7000_0000);
  t.equal(e.info, FAULT_REASON.IOMMU_UR);
});

t.test('PASID beyond the width, PASID disabled, PV on a dedicated WQ and refused privilege go to the error register', async (t) => {
  const f = setup({ maxPasidWidth: 8 });
  const { cr } = buffers(f);
  f.configWq(0, { shared: true });
  f.configWq(1);
  const cases: [number, object, number, number][] = [
    [0, { op: OPCODE.NOOP, pasid: 3 }, DESC_STATUS.PASID_INVALID, 3], // PASID not enabled yet
    [1, { op: OPCODE.NOOP, pasid: 3 }, DESC_STATUS.INVALID_FLAGS, 0],
    [0, { op: OPCODE.NOOP, pasid: 256 }, DESC_STATUS.PASID_INVALID, 256],
    [0, { op: OPCODE.NOOP, pasid: 3, priv: true }, DESC_STATUS.PRIV_DENIED, 3],
  ];
  for (const [i, [wq, d, code, info]] of cases.entries()) {
    if (i === 2) f.enablePasid();
    f.submit(wq, { ...d, rcr: true, completion: CR } as never);
    f.run();
    const e = f.error();
    t.equal(e.code, code, `case ${i}: code`);
    t.equal(e.info, info, `case ${i}: info`);
    t.equal(e.wq, wq);
    f.clearError();
  }
  t.equal(f.record(cr).status, 0, 'no record is written into an address space that was refused');
});

t.test('a doorbell past the ring end is refused, reported, and TAIL keeps its value', async (t) => {
  const f = setup();
  buffers(f);
  mapBuf(f, RING, 0x40_0000, PAGE);
  f.configWq(0, { ring: { base: RING, size: 8 } });
  f.doorbell(0, 8);
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.DOORBELL_RANGE);
  t.equal(e.info, 8);
  t.equal(f.wqReg(0, WQ_REG.TAIL), 0);
  f.run();
  t.equal(f.counter('descriptors'), 0);
});

t.test('portal writes and doorbells to a disabled WQ are discarded and reported', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  t.equal(f.submit(3, { op: OPCODE.NOOP, rcr: true, completion: CR }), PORTAL_STATUS.DISABLED);
  t.equal(f.error().code, DMAE_ERROR.WQ_DISABLED);
  t.equal(f.error().wq, 3);
  f.clearError();
  f.doorbell(3, 1);
  t.equal(f.error().code, DMAE_ERROR.WQ_DISABLED);
  f.run();
  t.equal(f.record(cr).status, 0);
});

t.test('WQ enable refuses a misaligned ring, and any enable while the device is disabled', async (t) => {
  const f = setup();
  f.configWq(0, { ring: { base: RING + 8, size: 4 } });
  t.equal(regField(WQ_REGISTERS.CFG, f.wqReg(0, WQ_REG.CFG), 'ENABLE'), 0, 'ENABLE cleared');
  t.equal(f.error().code, DMAE_ERROR.WQ_CONFIG_INVALID);
  t.equal(f.error().info, WQ_CONFIG_ERROR.RING_ALIGN);
  f.clearError();
  f.wreg32(DMAE_REGS.GENCTRL, 0);
  f.configWq(1);
  t.equal(f.error().code, DMAE_ERROR.DEVICE_DISABLED);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(1, WQ_REG.STATUS), 'ENABLED'), 0);
});

t.test('clearing GENCTRL.ENABLE disables every WQ and discards what waits; the running descriptor finishes', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.configWq(0);
  for (let i = 0; i < 3; i++) f.submit(0, { op: OPCODE.NOOP, rcr: true, completion: CR + 32 * i });
  f.wreg32(DMAE_REGS.GENCTRL, 0);
  f.run();
  t.equal(f.reg32(DMAE_REGS.GENSTS), 0);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'ENABLED'), 0);
  t.equal(f.record(cr).statusName, 'SUCCESS', 'the first was already dispatched');
  t.equal(f.record(cr + 32).status, 0);
  t.equal(f.record(cr + 64).status, 0);
  t.equal(f.counter('wq0.discarded'), 2);
});

t.test('with Bus Master Enable clear, DMA aborts before the fabric and the record write fault is reported', async (t) => {
  const f = setup();
  buffers(f);
  f.configWq(0);
  f.setMaster(false);
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 64, rcr: true, rci: true, completion: CR });
  f.run();
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.COMPLETION_WRITE_FAULT);
  t.equal(e.info, FAULT_REASON.BUS_MASTER_DISABLED);
  t.equal(e.addr, CR);
  t.equal(f.msiCount(0), 0, 'no MSI without bus mastering');
  const r = f.dev.dmaRead(BigInt(SRC), 16);
  t.same(r, { ok: false, fault: 'BUS_MASTER_DISABLED' });
});

t.test('a ring slot that cannot be read halts the WQ at that slot', async (t) => {
  const f = setup();
  buffers(f);
  f.configWq(0, { ring: { base: RING, size: 4 } }); // the ring is not mapped
  f.doorbell(0, 2);
  f.run();
  const e = f.error();
  t.equal(e.code, DMAE_ERROR.RING_FETCH_FAULT);
  t.equal(e.addr, RING);
  t.equal(e.info, FAULT_REASON.IOMMU_UR);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'HALTED'), 1);
  t.equal(f.wqReg(0, WQ_REG.HEAD), 0);
  t.equal(f.counter('descriptors'), 0);
});

t.test('a completion record write failed by injection is reported in the error register', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.dev.points['dma-engine.completion-record'].arm(() => ({ kind: 'fail' }));
  f.configWq(0);
  f.submit(0, { op: OPCODE.NOOP, rcr: true, rci: true, completion: CR });
  f.run();
  t.equal(f.error().code, DMAE_ERROR.COMPLETION_WRITE_FAULT);
  t.equal(f.record(cr).status, 0);
  t.equal(f.msiCount(0), 1, 'the interrupt still comes');
});

t.test('a misaligned completion record address is reported in the error register with the address', async (t) => {
  const f = setup();
  buffers(f);
  f.configWq(0);
  f.submit(0, { op: OPCODE.NOOP, rcr: true, completion: CR + 8 });
  f.run();
  const e = f.error();
  t.equal(e.code, DESC_STATUS.CR_ADDR_INVALID);
  t.equal(e.addr, CR + 8);
  t.equal(e.info, 8);
});
