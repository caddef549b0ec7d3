import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import { MSIX, MSIX_ENTRY, MSIX_FLAGS, MsixCapability, type MsixOptions } from '../../../src/pci/caps/msix.ts';
import { Tracer, type TraceRecord } from '../../../src/trace/tracer.ts';

function make(opts: Partial<MsixOptions> = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  const sent: [number, number][] = [];
  const msix = new MsixCapability(cfg, list, {
    vectors: 8,
    tableBar: 2,
    tableOffset: 0,
    pbaOffset: 0x800,
    send: (addr, data) => sent.push([addr, data]),
    ...opts,
  });
  const b = msix.offset;
  const tbl = msix.tableOps;
  /** Program entry `v` as a driver does: address, upper address, data (vector stays masked). */
  const program = (v: number, addr: number, data: number) => {
    tbl.write(v * 16 + MSIX_ENTRY.ADDR_LO, 4, addr);
    tbl.write(v * 16 + MSIX_ENTRY.ADDR_HI, 4, 0);
    tbl.write(v * 16 + MSIX_ENTRY.DATA, 4, data);
  };
  const unmask = (v: number) => tbl.write(v * 16 + MSIX_ENTRY.VECTOR_CTRL, 4, 0);
  const mask = (v: number) => tbl.write(v * 16 + MSIX_ENTRY.VECTOR_CTRL, 4, 1);
  const setCtrl = (v: number) => cfg.write(b + MSIX.FLAGS, 2, v);
  const pba = () => msix.pbaOps.read(0, 4);
  return { cfg, list, msix, sent, b, tbl, program, unmask, mask, setCtrl, pba };
}

t.test('the capability states table size N-1 and where table and PBA live, read-only', async (t) => {
  const { cfg, list, b } = make({ vectors: 2048, tableBar: 4, tableOffset: 0x2000, pbaBar: 5, pbaOffset: 0x10 });
  t.equal(list.findStd(MSIX.CAP_ID), b);
  t.equal(cfg.read(b + MSIX.FLAGS, 2), 0x7ff);
  t.equal(cfg.read(b + MSIX.TABLE, 4), 0x2000 | 4);
  t.equal(cfg.read(b + MSIX.PBA, 4), 0x10 | 5);
  cfg.write(b + MSIX.TABLE, 4, 0);
  cfg.write(b + MSIX.PBA, 4, 0);
  cfg.write(b + MSIX.FLAGS, 2, 0x7fff);
  t.equal(cfg.read(b + MSIX.TABLE, 4), 0x2004);
  t.equal(cfg.read(b + MSIX.PBA, 4), 0x15);
  t.equal(cfg.read(b + MSIX.FLAGS, 2), 0x47ff, 'only Function Mask and Enable are writable');
});

t.test('table and PBA sizes: 16 bytes per entry, a QWORD per 64 vectors', async (t) => {
  const { msix } = make({ vectors: 65 });
  t.equal(msix.tableSize, 65 * 16);
  t.equal(msix.pbaSize, 16);
  t.equal(msix.tableRegion.size, msix.tableSize);
  t.equal(msix.pbaRegion.size, msix.pbaSize);
});

t.test('table entries reset masked with address and data 0', async (t) => {
  const { msix, tbl } = make();
  for (let v = 0; v < 8; v++) {
    t.equal(tbl.read(v * 16 + MSIX_ENTRY.VECTOR_CTRL, 4), 1);
    t.equal(tbl.read(v * 16, 4), 0);
  }
  t.same(msix.entry(3), { address: 0, data: 0, masked: true });
});

t.test('vector control keeps only the Mask bit; address bits [1:0] read 0', async (t) => {
  const { tbl, msix } = make();
  tbl.write(MSIX_ENTRY.VECTOR_CTRL, 4, 0xfffffffe);
  t.equal(tbl.read(MSIX_ENTRY.VECTOR_CTRL, 4), 0);
  tbl.write(MSIX_ENTRY.ADDR_LO, 4, 0xfee0_1003);
  tbl.write(MSIX_ENTRY.ADDR_HI, 4, 0x1);
  tbl.write(MSIX_ENTRY.DATA, 4, 0xdeadbeef);
  t.same(msix.entry(0), { address: 0x1_fee0_1000, data: 0xdeadbeef, masked: false });
});

t.test('a QWORD write split in two DWORDs programs address and upper address', async (t) => {
  const { tbl, msix } = make();
  tbl.write(16, 4, 0xfee0_0000);
  tbl.write(20, 4, 0x0000_0010);
  t.equal(msix.entry(1).address, 0x10_fee0_0000);
});

t.test('an enabled, unmasked vector is sent at once', async (t) => {
  const { msix, program, unmask, setCtrl, sent, pba } = make();
  program(2, 0xfee0_0000, 0x41);
  unmask(2);
  setCtrl(MSIX_FLAGS.ENABLE);
  t.equal(msix.notify(2), 'sent');
  t.same(sent, [[0xfee0_0000, 0x41]]);
  t.equal(pba(), 0);
});

t.test('a masked vector sets its pending bit and unmasking delivers it', async (t) => {
  const tracer = new Tracer();
  const traced: TraceRecord[] = [];
  tracer.on('msix.pending', (r) => traced.push(r));
  const { msix, program, unmask, setCtrl, sent, pba } = make({ tracer, bdf: '0000:00:03.0' });
  program(5, 0xfee0_0000, 0x55);
  setCtrl(MSIX_FLAGS.ENABLE);
  t.equal(msix.notify(5), 'pending');
  t.same(sent, []);
  t.equal(pba(), 1 << 5);
  t.same(traced.map((r) => r.args), [{ bdf: '0000:00:03.0', vector: 5 }]);
  msix.pbaOps.write(0, 4, 0);
  t.equal(pba(), 1 << 5, 'the PBA is read-only');
  unmask(5);
  t.same(sent, [[0xfee0_0000, 0x55]]);
  t.equal(pba(), 0);
});

t.test('Function Mask holds every vector pending until it is cleared', async (t) => {
  const { msix, program, unmask, setCtrl, sent, pba } = make();
  for (const v of [0, 7]) {
    program(v, 0xfee0_0000, v);
    unmask(v);
  }
  setCtrl(MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK);
  t.ok(msix.functionMasked);
  t.equal(msix.notify(0), 'pending');
  t.equal(msix.notify(7), 'pending');
  unmask(0);
  t.same(sent, [], 'unmasking the vector is not enough while the function is masked');
  t.equal(pba(), 0x81);
  setCtrl(MSIX_FLAGS.ENABLE);
  t.same(sent, [[0xfee0_0000, 0], [0xfee0_0000, 7]]);
  t.equal(pba(), 0);
});

t.test('interrupts raised while MSI-X is disabled pend until it is enabled', async (t) => {
  const { msix, program, unmask, setCtrl, sent } = make();
  program(1, 0xfee0_0000, 1);
  unmask(1);
  t.equal(msix.notify(1), 'pending');
  setCtrl(MSIX_FLAGS.ENABLE);
  t.same(sent, [[0xfee0_0000, 1]]);
});

t.test('a vector still masked stays pending when the function is unmasked', async (t) => {
  const { msix, program, mask, setCtrl, sent } = make();
  program(3, 0xfee0_0000, 3);
  mask(3);
  setCtrl(MSIX_FLAGS.ENABLE);
  msix.notify(3);
  setCtrl(MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK);
  setCtrl(MSIX_FLAGS.ENABLE);
  t.same(sent, []);
  t.ok(msix.pending(3));
  msix.clearPending(3);
  t.notOk(msix.pending(3), 'the device can withdraw a pending interrupt');
});

t.test('the PBA holds 64 vectors per QWORD, split into DWORD reads', async (t) => {
  const { msix } = make({ vectors: 100 });
  msix.notify(33);
  msix.notify(70);
  t.equal(msix.pbaOps.read(4, 4), 1 << 1, 'vector 33 is bit 1 of the upper DWORD');
  t.equal(msix.pbaOps.read(8, 4), 1 << 6, 'vector 70 is in the second QWORD');
});

t.test('byte and word table accesses touch just their bytes; out-of-range reads 0', async (t) => {
  const { tbl, msix, setCtrl, sent } = make();
  tbl.write(MSIX_ENTRY.DATA, 2, 0xbeef);
  tbl.write(MSIX_ENTRY.DATA + 3, 1, 0x12);
  t.equal(tbl.read(MSIX_ENTRY.DATA, 4), 0x1200beef);
  t.equal(tbl.read(MSIX_ENTRY.DATA + 1, 1), 0xbe);
  setCtrl(MSIX_FLAGS.ENABLE);
  msix.notify(0);
  tbl.write(MSIX_ENTRY.VECTOR_CTRL, 1, 0);
  t.equal(sent.length, 1, 'a byte write clearing Mask delivers too');
  t.equal(tbl.read(msix.tableSize, 4), 0);
  tbl.write(msix.tableSize + 4, 4, 0xffffffff);
  t.equal(msix.pbaOps.read(0x1000, 4), 0);
});

t.test('notify of a vector beyond the table is dropped', async (t) => {
  const { msix } = make();
  t.equal(msix.notify(8), 'dropped');
  t.equal(msix.notify(-1), 'dropped');
  t.equal(msix.notify(1.5), 'dropped');
});

t.test('reset masks every vector, clears the PBA and disables MSI-X', async (t) => {
  const { msix, program, unmask, setCtrl } = make();
  program(0, 0xfee0_0000, 1);
  unmask(0);
  msix.notify(1);
  setCtrl(MSIX_FLAGS.ENABLE);
  msix.reset();
  t.notOk(msix.enabled);
  t.same(msix.entry(0), { address: 0, data: 0, masked: true });
  t.notOk(msix.pending(1));
});

t.test('guest accesses of any size, offset and value never throw', async (t) => {
  const { tbl, msix, cfg, b } = make({ vectors: 3 });
  for (let off = -4; off < msix.tableSize + 8; off++) {
    for (const size of [1, 2, 4] as const) {
      tbl.write(off, size, 0xffffffff);
      tbl.read(off, size);
      msix.pbaOps.write(off, size, 0xffffffff);
      msix.pbaOps.read(off, size);
    }
  }
  for (let off = b; off < b + 12; off++) cfg.write(off, 4, 0xffffffff);
  t.pass();
});

t.test('impossible device definitions throw', async (t) => {
  t.throws(() => make({ vectors: 0 }), RangeError);
  t.throws(() => make({ vectors: 2049 }), RangeError);
  t.throws(() => make({ tableOffset: 4 }), RangeError, 'offsets are QWORD aligned');
  t.throws(() => make({ tableBar: 6 }), RangeError);
  t.throws(() => make({ pbaOffset: 0x40 }), RangeError, 'table and PBA overlap');
});
