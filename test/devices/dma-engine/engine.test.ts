import t from 'tap';
import { OPCODE, encodeDescriptor } from '../../../devices/dma-engine/descriptor.ts';
import {
  DMAE_MAGIC, DMAE_REGISTERS, DMAE_REGS, DMAE_VERSION, PORTAL_STATUS, regField, WQ_REG, WQ_REGISTERS,
} from '../../../devices/dma-engine/regs.ts';
import type { TraceRecord } from '../../../src/trace/tracer.ts';
import { CR, DST, PAGE, RING, SRC, buffers, mapBuf, pattern, readPa, setup } from './fixture.ts';

t.test('identity and capability registers describe the engine', async (t) => {
  const f = setup({ workQueues: 3, maxTransfer: 65536, atcEntries: 16, maxWqDepth: 8 });
  t.equal(f.reg32(DMAE_REGS.ID), DMAE_MAGIC);
  t.equal(f.reg32(DMAE_REGS.VERSION), DMAE_VERSION);
  const { CAP, ATC_CAP, WQ_CAP } = DMAE_REGISTERS;
  const cap = f.reg32(DMAE_REGS.CAP);
  t.equal(regField(CAP, cap, 'NUM_WQ'), 3, 'three WQs');
  t.equal(regField(CAP, cap, 'OPS'), 0xf, 'NOOP, MEMMOVE, FILL, COMPARE');
  t.equal(regField(CAP, cap, 'MSIX_VECTORS'), 4, 'MSI-X vectors: one per WQ and one for errors');
  t.equal(cap >>> 28, 0, 'reserved bits read 0');
  t.equal(f.reg32(DMAE_REGS.MAX_XFER), 65536);
  t.equal(regField(ATC_CAP, f.reg32(DMAE_REGS.ATC_CAP), 'ATC_ENTRIES'), 16);
  t.equal(regField(ATC_CAP, f.reg32(DMAE_REGS.ATC_CAP), 'MAX_PRG_PAGES'), 8, 'the default largest page request group');
  t.equal(regField(WQ_CAP, f.reg32(DMAE_REGS.WQ_CAP), 'MAX_DEPTH'), 8);
  t.equal(regField(WQ_CAP, f.reg32(DMAE_REGS.WQ_CAP), 'MAX_RING_LOG2'), 16);
  t.equal(f.reg32(DMAE_REGS.GENSTS), 1, 'enabled by the fixture');
  t.equal(f.wqReg(0, WQ_REG.DEPTH), 8, 'depth resets to the maximum');
  t.ok(f.atsOff >= 0x100 && f.priOff >= 0x100 && f.pasidOff >= 0x100, 'ATS, PRI and PASID extended capabilities');
  t.equal(f.dev.pcie.portType, 'rc-endpoint');
  t.ok(f.dev.pcie.flrCapable);
});

t.test('MEMMOVE through a portal copies by DMA, writes a SUCCESS record and raises the WQ vector', async (t) => {
  const f = setup();
  const { src, dst, cr } = buffers(f);
  f.mem.writeFrom(src, pattern(3 * PAGE));
  f.configWq(0, { vector: 1 });
  const st = f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 3 * PAGE, rcr: true, rci: true, completion: CR });
  t.equal(st, PORTAL_STATUS.ACCEPTED);
  t.equal(f.record(cr).status, 0, 'nothing before virtual time passes');
  f.run();
  t.same(readPa(f, dst, 3 * PAGE), pattern(3 * PAGE));
  const r = f.record(cr);
  t.equal(r.statusName, 'SUCCESS');
  t.equal(r.bytes, 3 * PAGE);
  t.equal(f.msiCount(1), 1, 'vector 1 raised once');
  t.ok(f.board.now() >= 100 + 2 * 3 * PAGE * 0.125, 'setup plus bytes at the modelled bandwidth');
  t.equal(f.wqReg(0, WQ_REG.COMPLETED), 1);
  t.equal(f.counter('descriptors'), 1);
  t.equal(f.counter('desc.ok'), 1);
});

t.test('FILL repeats the 8-byte pattern over the destination', async (t) => {
  const f = setup();
  const { dst, cr } = buffers(f);
  f.configWq(0);
  f.submit(0, { op: OPCODE.FILL, pattern: 0x0807060504030201n, dst: DST + 3, length: 21, rcr: true, completion: CR });
  f.run();
  const got = readPa(f, dst, 32);
  t.same([...got.subarray(0, 3)], [0, 0, 0]);
  t.same([...got.subarray(3, 24)], [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5]);
  t.equal(got[24], 0);
  t.equal(f.record(cr).statusName, 'SUCCESS');
});

t.test('COMPARE reports equality, or a mismatch with the offset of the first difference', async (t) => {
  const f = setup();
  const { src, dst, cr } = buffers(f);
  f.mem.writeFrom(src, pattern(PAGE + 100));
  f.mem.writeFrom(dst, pattern(PAGE + 100));
  f.configWq(0);
  f.submit(0, { op: OPCODE.COMPARE, src: SRC, dst: DST, length: PAGE + 100, rcr: true, completion: CR });
  f.run();
  let r = f.record(cr);
  t.equal(r.statusName, 'SUCCESS');
  t.equal(r.result, 0);
  f.mem.write8(dst + PAGE + 7, 0xee);
  f.submit(0, { op: OPCODE.COMPARE, src: SRC, dst: DST, length: PAGE + 100, rcr: true, completion: CR + 32 });
  f.run();
  r = f.record(cr + 32);
  t.equal(r.statusName, 'COMPARE_MISMATCH');
  t.equal(r.result, 1);
  t.equal(r.bytes, PAGE + 7);
});

t.test('overlapping MEMMOVE moves the bytes as memmove does', async (t) => {
  const f = setup();
  const { src } = buffers(f);
  f.mem.writeFrom(src, pattern(64));
  f.configWq(0);
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: SRC + 8, length: 64 });
  f.run();
  t.same(readPa(f, src + 8, 64), pattern(64));
});

t.test('NOOP completes with SUCCESS and moves nothing', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.configWq(0);
  f.submit(0, { op: OPCODE.NOOP, rcr: true, rci: true, completion: CR });
  f.run();
  t.equal(f.record(cr).statusName, 'SUCCESS');
  t.equal(f.record(cr).bytes, 0);
  t.equal(f.msiCount(0), 1);
});

t.test('ring descriptors run in order from HEAD to TAIL and HEAD follows', async (t) => {
  const f = setup();
  const { src, dst, cr } = buffers(f);
  mapBuf(f, RING, 0x40_0000, PAGE);
  const ring = f.ram(0x40_0000);
  f.mem.writeFrom(src, pattern(256));
  f.configWq(1, { ring: { base: RING, size: 4 } });
  for (let i = 0; i < 3; i++) {
    f.ringWrite(ring, i, { op: OPCODE.MEMMOVE, src: SRC + 64 * i, dst: DST + 64 * i, length: 64, rcr: true, completion: CR + 32 * i });
  }
  f.doorbell(1, 3);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(1, WQ_REG.STATUS), 'BUSY'), 1);
  f.run();
  t.same(readPa(f, dst, 192), pattern(192));
  for (let i = 0; i < 3; i++) t.equal(f.record(cr + 32 * i).statusName, 'SUCCESS', `slot ${i}`);
  t.equal(f.wqReg(1, WQ_REG.HEAD), 3);
  // Wrap around: slots 3, 0.
  f.ringWrite(ring, 3, { op: OPCODE.FILL, pattern: 0x1111111111111111n, dst: DST + 0x800, length: 8 });
  f.ringWrite(ring, 0, { op: OPCODE.FILL, pattern: 0x2222222222222222n, dst: DST + 0x808, length: 8 });
  f.doorbell(1, 1);
  f.run();
  t.equal(f.wqReg(1, WQ_REG.HEAD), 1);
  t.equal(f.mem.read64(dst + 0x800), 0x1111111111111111n);
  t.equal(f.mem.read64(dst + 0x808), 0x2222222222222222n);
  t.equal(f.wqReg(1, WQ_REG.COMPLETED), 5);
});

t.test('a portal submission to a full WQ reads RETRY and queues nothing', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.configWq(0, { depth: 2 });
  const noop = (i: number) => ({ op: OPCODE.NOOP, rcr: true, completion: CR + 32 * i });
  t.equal(f.submit(0, noop(0)), PORTAL_STATUS.ACCEPTED);
  t.equal(f.submit(0, noop(1)), PORTAL_STATUS.ACCEPTED);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'QFULL'), 1);
  t.equal(regField(WQ_REGISTERS.STATUS, f.wqReg(0, WQ_REG.STATUS), 'OCCUPANCY'), 2);
  t.equal(f.submit(0, noop(2)), PORTAL_STATUS.RETRY);
  t.equal(f.wqReg(0, WQ_REG.RETRIES), 1);
  f.run();
  t.equal(f.record(cr + 64).status, 0, 'the refused descriptor never ran');
  t.equal(f.wqReg(0, WQ_REG.COMPLETED), 2);
  t.equal(f.submit(0, noop(2)), PORTAL_STATUS.ACCEPTED, 'accepted once the queue drained');
  f.run();
  t.equal(f.record(cr + 64).statusName, 'SUCCESS');
});

t.test('a descriptor written as 32-bit portal writes submits on the write covering byte 63', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.configWq(2);
  const bytes = encodeDescriptor({ op: OPCODE.NOOP, rcr: true, completion: CR });
  const dv = new DataView(bytes.buffer);
  const portal = f.bar4 + 2 * 0x1000;
  for (let i = 0; i < 15; i++) f.mem.write32(portal + 4 * i, dv.getUint32(4 * i, true));
  f.run();
  t.equal(f.dev.workQueues[2]!.occupancy, 0, 'nothing submitted yet');
  f.mem.write32(portal + 60, dv.getUint32(60, true));
  f.run();
  t.equal(f.record(cr).statusName, 'SUCCESS');
});

t.test('without ATS the engine issues untranslated requests and reports the IOMMU abort with the faulting page', async (t) => {
  const f = setup();
  const { src, dst, cr } = buffers(f);
  f.agent.unmap(f.rid, -1, DST + PAGE, PAGE);
  f.mem.writeFrom(src, pattern(2 * PAGE));
  const done: TraceRecord[] = [];
  f.board.tracer.on('dma-engine.desc.complete', (r) => done.push(r));
  const ats: TraceRecord[] = [];
  f.board.tracer.on('dma.transaction', (r) => ats.push(r));
  f.configWq(0);
  f.submit(0, { op: OPCODE.MEMMOVE, src: SRC, dst: DST, length: 2 * PAGE, rcr: true, completion: CR });
  f.run();
  const r = f.record(cr);
  t.equal(r.statusName, 'PAGE_FAULT');
  t.equal(r.faultName, 'IOMMU_UR');
  t.equal(r.faultAddr, DST + PAGE);
  t.ok(r.faultWrite);
  t.equal(r.bytes, PAGE, 'the first page was written');
  t.same(readPa(f, dst, PAGE), pattern(PAGE));
  t.equal((done[0]!.args as { fault: string }).fault, 'F_TRANSLATION', 'the IOMMU fault is named in the trace');
  t.ok(ats.every((x) => (x.args as { at: string }).at === 'untranslated'));
  t.equal(f.agent.translationRequests.length, 0);
});

t.test('FLR resets registers, queues, caches and cancels pending work', async (t) => {
  const f = setup();
  const { cr } = buffers(f);
  f.enableSva(8);
  f.configWq(0);
  f.dev.dmaRead(BigInt(SRC), 64);
  t.equal(f.dev.atc.count, 1);
  f.submit(0, { op: OPCODE.NOOP, rcr: true, completion: CR });
  f.wreg32(DMAE_REGS.ERR_VECTOR, 1);
  f.flr();
  f.run();
  t.equal(f.record(cr).status, 0, 'the pending descriptor never completes');
  t.equal(f.dev.atc.count, 0);
  t.equal(f.dev.timers.pending, 0);
  t.notOk(f.dev.ats.enabled);
  t.notOk(f.dev.pri.enabled);
  t.ok(f.dev.pri.stopped);
  t.notOk(f.dev.pasid.enabled);
  t.equal(f.dev.regs.get('ERR_VECTOR'), 0xffffffff);
  t.equal(f.dev.regs.get('GENCTRL'), 0);
  t.notOk(f.dev.workQueues[0]!.enabled);
  t.notOk(f.dev.busMasterEnabled);
});
