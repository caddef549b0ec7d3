import t from 'tap';
import { OPCODE } from '../../../devices/dma-engine/index.ts';
import type { Smmuv3Driver } from '../../../iommu/smmuv3/driver/driver.ts';
import { CR0, IRQ_CTRL, SMMU_REG, STE_LAYOUT } from '../../../iommu/smmuv3/index.ts';
import { createMachine } from '../../../machines/machine.ts';
import { getBits } from '../../../src/hw/layout.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { ATS, ATS_CTRL } from '../../../src/pci/caps/ats.ts';
import { PRI, PRI_CTRL, PRI_STATUS } from '../../../src/pci/caps/pri.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { PAGE, engineMachine } from './engine.ts';

/** A process, its untouched buffers, and the engine bound to its mm. */
function sva() {
  const f = engineMachine();
  const p = f.m.host.spawn();
  const dst = p.mmap(8 * PAGE);
  const cr = p.mmap(PAGE);
  const h = f.m.host.sva.bind(f.dev, p.mm, p.pid) as SvaHandle;
  if (typeof h === 'number') throw new Error(`bind: ${h}`);
  const fill = (va: bigint, len: number, slot = 0) =>
    f.submit({ op: OPCODE.FILL, pasid: h.pasid, pattern: 0x1122334455667788n, dst: Number(va), length: len, rcr: true, completion: Number(cr) + 32 * slot });
  return { ...f, p, dst, cr, h, fill };
}

const ste = (w: Uint32Array, name: keyof typeof STE_LAYOUT.fields) => getBits(w, STE_LAYOUT.fields[name]);

t.test('bind brings up ATS and PRI: STE.EATS, ATS Control, PRI allocation/enable, the PRI queue with its MSI, CR0.ATSCHK', async (t) => {
  const f = sva();
  const w = f.driver.steOf(f.dev)!;
  t.equal(ste(w, 'EATS'), 1, 'STE.EATS = 1 (full ATS)');
  t.equal(ste(w, 'S1STALLD'), 1, 'the SMMU can stall but this master does not: S1STALLD');
  t.equal(f.cfgRead(f.dev.ats.offset + ATS.CTRL) & (ATS_CTRL.ENABLE | ATS_CTRL.STU), ATS_CTRL.ENABLE, 'ATS Enable, STU 0 (4K)');
  t.equal(f.cfgRead(f.dev.pri.offset + PRI.CTRL) & PRI_CTRL.ENABLE, PRI_CTRL.ENABLE);
  t.equal(f.cfgRead(f.dev.pri.offset + PRI.ALLOC_REQ, 4), 64, 'min(64, Outstanding Page Request Capacity)');
  const r = (off: number) => f.mem.read32(f.board.layout.iommuBase + off);
  t.equal(r(SMMU_REG.CR0ACK) & (CR0.PRIQEN | CR0.ATSCHK), CR0.PRIQEN | CR0.ATSCHK);
  t.equal(r(SMMU_REG.IRQ_CTRLACK) & IRQ_CTRL.PRIQ_IRQEN, IRQ_CTRL.PRIQ_IRQEN);
  t.equal(r(SMMU_REG.PRIQ_IRQ_CFG0), f.board.layout.msiBase, 'PRI queue MSI to the doorbell');
  t.ok(f.driver.atsEnabled(f.dev));
});

t.test('SVA with PRI: a FILL over untouched process memory completes once page requests are served', async (t) => {
  const f = sva();
  f.fill(f.dst, 3 * PAGE);
  f.m.run();
  const rec = f.record(f.p, f.cr);
  t.equal(rec.statusName, 'SUCCESS');
  t.equal(rec.bytes, 3 * PAGE);
  const back = f.p.memRead(f.dst + BigInt(3 * PAGE - 8), 8) as Uint8Array;
  t.same([...back], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  t.ok(f.counter('smmuv3.pri.recorded') >= 4, 'page requests for the destination and the completion record reached the PRI queue');
  t.equal(f.driver.queues.pageRequests, f.counter('smmuv3.pri.recorded'), 'the driver drained every record into host.iopf');
  t.equal(f.counter('smmuv3.pri.responses'), f.counter('dma0.pri.groups'), 'one CMD_PRI_RESP per group');
  t.equal(f.counter('smmuv3.pri.auto_responses'), 0);
  t.ok(f.counter('smmuv3.ats.requests') > 0);
  t.equal(f.dev.pri.outstanding, 0);
  t.equal(f.m.host.iopf.outstanding, 0);
});

t.test('SVA with PRI: MEMMOVE from CPU-written memory into untouched memory; the responses carry the PASID (PRG Response PASID Required)', async (t) => {
  const f = sva();
  const src = f.p.mmap(2 * PAGE);
  const data = new Uint8Array(2 * PAGE).map((_, i) => (i * 7) % 251);
  f.p.memWrite(src, data);
  const seen: number[] = [];
  f.board.tracer.on('smmuv3.pri.resp', (r) => void seen.push(r.args.ssid));
  f.submit({ op: OPCODE.MEMMOVE, pasid: f.h.pasid, src: Number(src), dst: Number(f.dst) + PAGE, length: 2 * PAGE, rcr: true, completion: Number(f.cr) });
  f.m.run();
  t.equal(f.record(f.p, f.cr).statusName, 'SUCCESS');
  t.same(f.p.memRead(f.dst + BigInt(PAGE), 2 * PAGE), data);
  t.ok(seen.length > 0 && seen.every((s) => s === f.h.pasid));
});

t.test('munmap: the mmu notifier invalidates the TLB, then the ATC (CMD_ATC_INV with the PASID, then CMD_SYNC)', async (t) => {
  const f = sva();
  f.fill(f.dst, PAGE);
  f.m.run();
  t.equal(f.record(f.p, f.cr).statusName, 'SUCCESS');
  const order: string[] = [];
  f.board.tracer.on('smmuv3.tlbi', (r) => void order.push(r.args.op));
  f.board.tracer.on('smmuv3.atc.inv', (r) => void order.push(`ATC_INV ${r.args.what} ssid=${r.args.ssid}`));
  f.board.tracer.on('smmuv3.sync', (r) => void order.push(`SYNC ${r.args.state}`));
  const dropped = f.counter('dma0.atc.invalidated');
  t.equal(f.p.munmap(f.dst, 8 * PAGE), 0);
  t.same(order, ['TLBI_NH_ASID', `ATC_INV send ssid=${f.h.pasid}`, 'SYNC wait', `ATC_INV complete ssid=${f.h.pasid}`, 'SYNC complete']);
  t.ok(f.counter('dma0.atc.invalidated') > dropped, 'the device dropped its ATC entries');
  t.equal(f.driver.cmdq.timeouts, 0);
  f.fill(f.dst, 8, 1);
  f.m.run();
  const rec = f.record(f.p, f.cr + 32n);
  t.same([rec.statusName, rec.faultName], ['PAGE_FAULT', 'PRI_INVALID'], 'the page request for unmapped memory is answered Invalid');
});

t.test('a DMA paging domain: unmap sends CMD_ATC_INV for the range (no PASID), and no stale ATC translation remains', async (t) => {
  const f = engineMachine();
  const host = f.m.host;
  const group = host.iommu.groupOf(f.dev)!;
  const owner = {};
  host.iommu.claimDmaOwner(group, owner);
  const d = host.iommu.allocPaging(f.dev);
  if (typeof d === 'number') throw new Error('alloc');
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.ok(f.driver.atsEnabled(f.dev), 'ATS on for a translating domain');
  const ram = host.allocator.allocPages(4)!;
  f.mem.write32(ram + 0x1000, 0xcafe);
  t.equal(d.map(0x10_0000, ram, 4 * PAGE, 3), 0);
  const r = f.dev.dmaRead(0x10_1000n, 4);
  t.ok(r.ok && r.data![0] === 0xfe, 'through a Translation Request and the ATC');
  const sent: [number, number, bigint][] = [];
  f.board.tracer.on('smmuv3.atc.inv', (e) => void (e.args.what === 'send' && sent.push([e.args.ssid, e.args.addr, e.args.size])));
  t.equal(d.unmap(0x10_1000, 2 * PAGE), 2 * PAGE);
  t.same(sent, [[-1, 0x10_0000, BigInt(4 * PAGE)]], 'the range rounded out to an aligned power of two');
  t.same(f.dev.dmaRead(0x10_1000n, 4), { ok: false, fault: 'ATS_NO_TRANSLATION' });
  t.ok(f.dev.dmaRead(0x10_0000n, 4).ok, 'the rest still translates');
});

t.test('an identity domain turns ATS off at the device (before the bypass STE) and flushes its ATC', async (t) => {
  const f = engineMachine();
  const host = f.m.host;
  const group = host.iommu.groupOf(f.dev)!;
  const owner = {};
  host.iommu.claimDmaOwner(group, owner);
  t.equal(host.iommu.attachGroup(host.iommu.identityDomain(group)!, group, owner), 0);
  t.equal(ste(f.driver.steOf(f.dev)!, 'EATS'), 0);
  t.equal(f.cfgRead(f.dev.ats.offset + ATS.CTRL) & ATS_CTRL.ENABLE, 0);
  t.notOk(f.driver.atsEnabled(f.dev));
  t.ok(f.driver.atcInvalidations > 0);
  const ram = host.allocator.allocPages(1)!;
  f.mem.write32(ram, 0x1234);
  const r = f.dev.dmaRead(BigInt(ram), 4);
  t.ok(r.ok && r.data![0] === 0x34, 'untranslated requests bypass');
});

t.test('PRI Response Failure: the device stops page requests (RF); re-enabling IOPF resets its PRI (RF stays, as Linux leaves it) and SVA works again', async (t) => {
  const f = sva();
  const dom = f.m.host.iommu.domainForPasid(f.dev, f.h.pasid)!;
  const handler = dom.iopfHandler;
  const codes: string[] = [];
  f.board.tracer.on('smmuv3.pri.resp', (r) => void codes.push(r.args.code));
  dom.iopfHandler = (_d, _reqs, respond) => respond('failure');
  f.p.memWrite(f.cr, new Uint8Array(PAGE)); // the completion records need no page request
  f.fill(f.dst, 8);
  f.m.run();
  const rec = f.record(f.p, f.cr);
  t.same([rec.statusName, rec.faultName], ['PAGE_FAULT', 'PRI_FAILURE']);
  t.same(codes, ['failure'], 'CMD_PRI_RESP with Resp = Fail became a Response Failure');
  t.equal(f.cfgRead(f.dev.pri.offset + PRI.STATUS) & PRI_STATUS.RF, PRI_STATUS.RF);
  f.fill(f.dst, 8, 1);
  f.m.run();
  t.equal(f.record(f.p, f.cr + 32n).faultName, 'PRI_FAILURE', 'halted: no more page requests');
  dom.iopfHandler = handler;
  f.driver.disableIopf(f.dev);
  t.equal(f.driver.enableIopf(f.dev), 0);
  // pci_reset_pri() ends the halt; Response Failure is an RW1C status bit that pci_reset_pri and pci_enable_pri never write.
  t.equal(f.cfgRead(f.dev.pri.offset + PRI.STATUS) & PRI_STATUS.RF, PRI_STATUS.RF, 'RF still set: the kernel does not clear it');
  t.equal(f.cfgRead(f.dev.pri.offset + PRI.CTRL) & PRI_CTRL.ENABLE, PRI_CTRL.ENABLE, 'PRI enabled again');
  f.fill(f.dst, 8, 2);
  f.m.run();
  t.equal(f.record(f.p, f.cr + 64n).statusName, 'SUCCESS');
});

t.test('an ATC invalidation the device never completes: CERROR_ATC_INV_SYNC is reported and the SYNC repeated', async (t) => {
  const f = sva();
  f.fill(f.dst, PAGE);
  f.m.run();
  f.board.faults.failNth('dma-engine.ats.inv-completion', 1, { kind: 'drop' });
  const before = f.m.now();
  t.equal(f.p.munmap(f.dst, PAGE), 0);
  t.equal(f.driver.cmdq.atcTimeouts, 1);
  t.equal(f.driver.cmdq.timeouts, 0, 'the repeated SYNC completed');
  t.ok(f.m.now() - before >= 500_000, 'after the SMMU\'s ATC invalidation timeout');
  t.ok(f.driver.events.some((e) => e.name === 'CMDQ_ERR(3)'));
});

t.test('a stall-capable device without PRI: faults stall, go through the event queue to host.iopf and are resumed', async (t) => {
  const { PasidCapability } = await import('../../../src/pci/caps/pasid.ts');
  const { BarePcieFunction } = await import('../../pci/helpers.ts');
  class StallDev extends BarePcieFunction {
    constructor() {
      super('staller');
      new PasidCapability(this.config, this.caps, { maxPasidWidth: 8 });
    }
  }
  const machine = createMachine('virt-smmuv3', { ramBytes: 128 * 2 ** 20, devices: [{ bdf: '0000:00:04.0', kind: () => new StallDev() }] });
  const driver = machine.iommuDriver as Smmuv3Driver;
  const dev = machine.device('0000:00:04.0');
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  driver.setStallCapable(dev);
  const p = machine.host.spawn();
  const va = p.mmap(2 * PAGE);
  const h = machine.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
  t.type(h, 'object');
  t.equal(ste(driver.steOf(dev)!, 'S1STALLD'), 0, 'stalls allowed for this stream');
  const r = dev.dmaWrite(va + 8n, new Uint8Array([1, 2, 3]), { pasid: h.pasid });
  t.same(r, { ok: true }, 'the stalled write was retried after the fault was served');
  t.same([...(p.memRead(va + 8n, 3) as Uint8Array)], [1, 2, 3]);
  const ev = driver.events.find((e) => e.fields['Stall'] === 1);
  t.equal(ev?.name, 'F_TRANSLATION');
  t.equal(ev?.ssid, h.pasid);
  t.equal(machine.board.counters.get('smmuv3.stall.resumes'), 1);
  p.munmap(va, 2 * PAGE);
  t.same(dev.dmaRead(va, 4, { pasid: h.pasid }), { ok: false, fault: 'F_TRANSLATION' }, 'an unresolvable fault is resumed with abort');
});

t.test('the PRI queue base keeps its LOG2SIZE next to the WA bit (a 64-bit register value built exactly)', async (t) => {
  const { createMachine } = await import('../../../machines/machine.ts');
  const { SMMU_REG } = await import('../../../iommu/smmuv3/regs.ts');
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20, smmuPri: 'posted-series' });
  const drv = m.iommuDriver as unknown as { enableIopf(d: unknown): number };
  t.equal(drv.enableIopf(m.device('0000:00:01.0')), 0);
  const base = m.board.layout.iommuBase;
  t.equal(m.board.sysmem.read32(base + SMMU_REG.PRIQ_BASE) & 0x1f, 8, 'LOG2SIZE = 8');
  t.equal(m.board.sysmem.read32(base + SMMU_REG.PRIQ_BASE + 4) >>> 30, 1, 'WA (bit 62) set');
  t.equal(m.board.sysmem.read32(base + SMMU_REG.EVENTQ_BASE) & 0x1f, 7, 'event queue LOG2SIZE = 7');
});
