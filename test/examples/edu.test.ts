/**
 * QEMU's edu device (examples/edu/), checked rule by rule against its
 * specification (QEMU docs/specs/edu.rst) through the uapi a user-space
 * driver has, and its scenario run by `ioemu run` with and without a plan
 * that fires the device's own injection points.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine, VFIO_PCI_BAR0_REGION_INDEX as BAR0, VFIO_PCI_CONFIG_REGION_INDEX, CFG, vfioType1Setup, type MachineKind } from '../../src/index.ts';
import { EDU_BUFFER, EDU_DMA_CMD, EDU_ID, EDU_IDENTITY, EDU_IRQ, EDU_REGS, EDU_STATUS, EduDevice } from '../../examples/edu/edu.ts';
import { EDU_BDF, EDU_TOPOLOGY } from '../../examples/edu/scenario.ts';
import { main } from '../../cli/main.ts';

const KINDS: MachineKind[] = ['virt-smmuv3', 'q35-vtd'];

function rig(kind: MachineKind) {
  const m = createMachine(kind, { devices: [...EDU_TOPOLOGY] });
  const p = m.host.spawn({ memlockLimit: 2 ** 20 });
  const s = vfioType1Setup(m, p, EDU_BDF);
  const { v, device } = s;
  const edu = m.device(EDU_BDF) as EduDevice;
  return {
    m, p, edu, ...s,
    r32: (off: number) => v.barRead32(device, BAR0, off),
    w32: (off: number, val: number) => v.barWrite32(device, BAR0, off, val),
    w64: (off: number, val: bigint) => v.barWrite64(device, BAR0, off, val),
  };
}

for (const kind of KINDS) {
  t.test(`${kind}: identity as QEMU gives it, a conventional PCI function with MSI and INTx pin A`, async (t) => {
    const { v, device } = rig(kind);
    t.equal(v.configRead(device, CFG.VENDOR_ID, 2), EDU_IDENTITY.vendorId);
    t.equal(v.configRead(device, CFG.DEVICE_ID, 2), EDU_IDENTITY.deviceId);
    t.equal(v.configRead(device, CFG.REVISION_ID, 1), 0x10);
    t.equal(v.configRead(device, 0x09, 1) | (v.configRead(device, CFG.CLASS_DEVICE, 2) << 8), 0x00ff00, "QEMU's class_id PCI_CLASS_OTHERS: base class 0x00, subclass 0xff");
    t.equal(v.configRead(device, CFG.INTERRUPT_PIN, 1), 1, 'INTA#');
    const cfg = v.regionInfo(device, VFIO_PCI_CONFIG_REGION_INDEX);
    t.equal(typeof cfg === 'number' ? cfg : cfg.size, 256n, 'no PCIe capability: 256 bytes of configuration space');
    const bar = v.regionInfo(device, BAR0);
    t.equal(typeof bar === 'number' ? bar : bar.size, 1n << 20n, 'BAR0 is 1 MiB');
  });

  t.test(`${kind}: registers: ID, liveness inversion, access sizes (4 below 0x80, 4 or 8 above)`, async (t) => {
    const { p, v, device, r32, w32 } = rig(kind);
    t.equal(v.setBusMaster(device), 0);
    t.equal(r32(EDU_REGS.ID), EDU_ID);
    t.equal(w32(EDU_REGS.ID, 5), 0);
    t.equal(r32(EDU_REGS.ID), EDU_ID, 'read-only');
    w32(EDU_REGS.LIVENESS, 0);
    t.equal(r32(EDU_REGS.LIVENESS), 0xffffffff);
    w32(EDU_REGS.LIVENESS, 0xf0f0_0001);
    t.equal(r32(EDU_REGS.LIVENESS), 0x0f0f_fffe);
    const info = v.regionInfo(device, BAR0);
    if (typeof info === 'number') throw new Error('region');
    const two = p.pread(device, 2, info.offset + BigInt(EDU_REGS.LIVENESS));
    t.same(two, new Uint8Array([0xff, 0xff]), 'a 2-byte read is refused: all ones');
    t.equal(r32(0x10), 0xffffffff, 'an unimplemented register reads all ones');
    t.equal(v.barRead64(device, BAR0, EDU_REGS.DMA_SRC), 0n, 'an 8-byte access to a DMA register');
  });

  t.test(`${kind}: 8-byte accesses reach edu whole (vfio_pci_core_do_io_rw's qword), as QEMU's edu_mmio_read/write take them`, async (t) => {
    const { v, device, r32, w32, w64 } = rig(kind);
    t.equal(v.setBusMaster(device), 0);
    w32(EDU_REGS.LIVENESS, 0x0f0f_0001);
    t.equal(v.barRead64(device, BAR0, EDU_REGS.ID), 0xffff_ffff_ffff_ffffn, 'below 0x80 an 8-byte read is all ones, not ID and liveness');
    t.equal(w64(EDU_REGS.ID, 0x1234_5678_0000_0000n), 0);
    t.equal(r32(EDU_REGS.LIVENESS), 0xf0f0_fffe, 'and an 8-byte write there changes nothing');
    w64(EDU_REGS.DMA_SRC, 0x1122_3344_5566_7788n);
    t.equal(v.barRead64(device, BAR0, EDU_REGS.DMA_SRC), 0x1122_3344_5566_7788n, 'a DMA register holds 64 bits');
    t.equal(r32(EDU_REGS.DMA_SRC), 0x5566_7788, 'a 4-byte read gives its low half');
    t.equal(r32(EDU_REGS.DMA_SRC + 4), 0xffff_ffff, '+4 is not a register');
    w32(EDU_REGS.DMA_SRC + 4, 0x99);
    w32(EDU_REGS.DMA_SRC, 0xabcd);
    t.equal(v.barRead64(device, BAR0, EDU_REGS.DMA_SRC), 0xabcdn, 'a 4-byte write sets the whole register; the one at +4 did nothing');
  });

  t.test(`${kind}: factorial: COMPUTING until done, u32 arithmetic, writes ignored while computing, interrupt only with IRQ_FACT`, async (t) => {
    const { m, r32, w32 } = rig(kind);
    w32(EDU_REGS.FACTORIAL, 5);
    t.equal(r32(EDU_REGS.STATUS) & EDU_STATUS.COMPUTING, EDU_STATUS.COMPUTING);
    t.equal(r32(EDU_REGS.FACTORIAL), 5, 'the input until the result is there');
    w32(EDU_REGS.FACTORIAL, 7);
    m.run();
    t.equal(r32(EDU_REGS.FACTORIAL), 120, 'the write during computation was ignored');
    t.equal(r32(EDU_REGS.STATUS), 0);
    t.equal(r32(EDU_REGS.IRQ_STATUS), 0, 'no interrupt without IRQ_FACT');
    w32(EDU_REGS.STATUS, EDU_STATUS.IRQ_FACT | EDU_STATUS.COMPUTING);
    t.equal(r32(EDU_REGS.STATUS), EDU_STATUS.IRQ_FACT, 'COMPUTING is read-only');
    w32(EDU_REGS.FACTORIAL, 13);
    m.run();
    t.equal(r32(EDU_REGS.FACTORIAL), 1932053504, '13! modulo 2^32');
    t.equal(r32(EDU_REGS.IRQ_STATUS), EDU_IRQ.FACTORIAL);
    w32(EDU_REGS.STATUS, 0);
    t.equal(r32(EDU_REGS.STATUS), 0, 'IRQ_FACT cleared by writing it 0');
  });

  t.test(`${kind}: interrupts: raise ORs into IRQ_STATUS, INTx follows it without MSI, acknowledge clears`, async (t) => {
    const { v, device, edu, r32, w32 } = rig(kind);
    const efd = v.intxEventfd(device);
    t.ok(efd >= 0, 'INTx trigger eventfd');
    w32(EDU_REGS.IRQ_RAISE, 0x30);
    w32(EDU_REGS.IRQ_RAISE, 0x3);
    t.equal(r32(EDU_REGS.IRQ_STATUS), 0x33);
    t.ok(edu.intx.level || v.eventfdCount(efd) > 0, 'INTx asserted (vfio-pci auto-masks it and signals the eventfd)');
    w32(EDU_REGS.IRQ_ACK, 0x30);
    t.equal(r32(EDU_REGS.IRQ_STATUS), 0x3);
    w32(EDU_REGS.IRQ_ACK, 0x3);
    t.equal(r32(EDU_REGS.IRQ_STATUS), 0);
    t.notOk(edu.intx.level, 'deasserted once nothing is pending');
  });

  t.test(`${kind}: DMA: registers frozen while a transfer is pending, 100 ms virtual delay, out-of-range refused`, async (t) => {
    const { m, p, v, container, device, r32, w32, w64, edu } = rig(kind);
    v.setBusMaster(device);
    const buf = p.mmap(4096, { populate: true });
    p.memWrite(buf, new Uint8Array([9, 8, 7, 6]));
    t.equal(v.mapDma(container, { vaddr: buf, iova: 0x20_0000n, size: 4096 }), 0);
    w64(EDU_REGS.DMA_SRC, 0x20_0000n);
    w64(EDU_REGS.DMA_DST, BigInt(EDU_BUFFER.BASE + 8));
    w64(EDU_REGS.DMA_COUNT, 4n);
    const t0 = m.now();
    w32(EDU_REGS.DMA_CMD, EDU_DMA_CMD.START);
    w64(EDU_REGS.DMA_COUNT, 99n);
    t.equal(v.barRead64(device, BAR0, EDU_REGS.DMA_COUNT), 4n, 'frozen while START is set');
    t.equal(r32(EDU_REGS.DMA_CMD) & EDU_DMA_CMD.START, EDU_DMA_CMD.START);
    m.run();
    t.equal(m.now() - t0, 100_000_000, 'the transfer ran 100 ms (virtual) after the command');
    t.same([...edu.buffer.subarray(8, 12)], [9, 8, 7, 6]);
    t.equal(r32(EDU_REGS.DMA_CMD) & EDU_DMA_CMD.START, 0);
    w64(EDU_REGS.DMA_DST, BigInt(EDU_BUFFER.BASE + EDU_BUFFER.SIZE - 2));
    w32(EDU_REGS.DMA_CMD, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ);
    m.run();
    t.equal(r32(EDU_REGS.IRQ_STATUS), EDU_IRQ.DMA, 'an out-of-range command still completes and interrupts');
    t.same([...edu.buffer.subarray(EDU_BUFFER.SIZE - 2)], [0, 0], 'but moves nothing');
    w32(EDU_REGS.DMA_CMD, EDU_DMA_CMD.TO_RAM);
    t.equal(r32(EDU_REGS.DMA_CMD) & EDU_DMA_CMD.START, 0, 'a command without START is ignored');
  });

  t.test(`${kind}: a read that runs from a mapped page into an unmapped one brings the mapped part, zeros for the rest (QEMU's per-page pci_dma_read)`, async (t) => {
    const { m, p, v, container, device, w32, w64, edu } = rig(kind);
    v.setBusMaster(device);
    const buf = p.mmap(4096, { populate: true });
    p.memWrite(buf, new Uint8Array(4096).fill(0x33));
    t.equal(v.mapDma(container, { vaddr: buf, iova: 0x20_0000n, size: 4096 }), 0);
    edu.buffer.fill(0xee);
    w64(EDU_REGS.DMA_SRC, 0x20_0c00n);
    w64(EDU_REGS.DMA_DST, BigInt(EDU_BUFFER.BASE));
    w64(EDU_REGS.DMA_COUNT, 0x800n);
    w32(EDU_REGS.DMA_CMD, EDU_DMA_CMD.START);
    m.run();
    t.ok(edu.buffer.subarray(0, 0x400).every((b) => b === 0x33), 'the mapped quarter arrived');
    t.ok(edu.buffer.subarray(0x400, 0x800).every((b) => b === 0), 'the unmapped page read as zeros');
  });

  t.test(`${kind}: a reset (VFIO_DEVICE_RESET is not offered: edu has no FLR) through the function returns the power-on state and cancels pending work`, async (t) => {
    const { m, v, device, r32, w32, edu } = rig(kind);
    w32(EDU_REGS.LIVENESS, 1);
    w32(EDU_REGS.FACTORIAL, 4);
    edu.reset();
    m.run();
    t.equal(v.setBusMaster(device), 0, 'the reset cleared the Command register: enable decoding again');
    t.equal(r32(EDU_REGS.FACTORIAL), 0, 'the pending factorial did not land after the reset');
    t.equal(r32(EDU_REGS.STATUS), 0);
    t.equal(r32(EDU_REGS.LIVENESS), 0);
  });
}

const capture = () => {
  let out = '';
  let err = '';
  return { io: { out: (s: string) => void (out += s), err: (s: string) => void (err += s) }, get out() { return out; }, get err() { return err; } };
};

t.test('ioemu run examples/edu/scenario.ts passes on both machines', async (t) => {
  const c = capture();
  t.equal(await main(['run', 'examples/edu/scenario.ts', '--machine', 'all', '--quiet'], c.io), 0, c.err);
  t.match(c.out, /edu on virt-smmuv3, seed 1: PASSED/);
  t.match(c.out, /edu on q35-vtd, seed 1: PASSED/);
});

t.test('with its plan, the device\'s own points fire and its own trace events land in the trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ioemu-edu-'));
  try {
    const trace = join(dir, 't.json');
    const c = capture();
    t.equal(await main(['run', 'examples/edu/scenario.ts', '--inject', 'examples/edu/plan.json', '--trace', trace], c.io), 0, c.err);
    t.match(c.out, /fault plan: edu\.dma -> delay: \d+ matching hit\(s\), 1 injected/);
    t.match(c.out, /fault plan: edu\.irq -> drop: \d+ matching hit\(s\), 1 injected/);
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; args: Record<string, unknown> }[] }).traceEvents;
    t.same(events.filter((e) => e.name === 'fault.inject').map((e) => e.args.point).sort(), ['edu.dma', 'edu.irq']);
    t.ok(events.some((e) => e.name === 'edu.dma' && e.args.outcome === 'ok' && e.args.ram === '0x100000'), 'edu.dma events with exact hex addresses');
    t.ok(events.some((e) => e.name === 'edu.irq' && e.args.via === 'dropped'), 'the dropped interrupt is in the trace');
    t.ok(events.some((e) => e.name === 'edu.factorial' && e.args.result === 3628800));
    const failPlan = join(dir, 'fail.json');
    writeFileSync(failPlan, JSON.stringify({ rules: [{ point: 'edu.dma', when: { nth: 1 }, action: { kind: 'fail' } }] }));
    const f = capture();
    t.equal(await main(['run', 'examples/edu/scenario.ts', '--inject', failPlan], f.io), 1, 'a failed transfer fails the scenario');
    t.match(f.out, /FAILED: the bytes came back through the device buffer/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rules: [{ point: 'edu.irq', action: { kind: 'delay', ns: 5 } }] }));
    const b = capture();
    t.equal(await main(['run', 'examples/edu/scenario.ts', '--inject', bad], b.io), 2, 'an action the point does not support is a usage error');
    t.match(b.err, /"edu\.irq" cannot delay \(it supports: drop\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
