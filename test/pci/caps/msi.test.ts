import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import { MSI, MSI_FLAGS, MsiCapability, type MsiOptions } from '../../../src/pci/caps/msi.ts';

function make(opts: Partial<MsiOptions> = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  const sent: [number, number][] = [];
  const changes: number[] = [];
  const msi = new MsiCapability(cfg, list, {
    vectors: 4,
    send: (addr, data) => sent.push([addr, data]),
    onChange: (c) => changes.push(c.allocatedVectors),
    ...opts,
  });
  const b = msi.offset;
  const flags = () => cfg.read(b + MSI.FLAGS, 2);
  return { cfg, list, msi, sent, changes, b, flags };
}

t.test('Message Control advertises the layout read-only', async (t) => {
  const { cfg, list, msi, b, flags } = make({ vectors: 8, perVectorMask: true });
  t.equal(list.findStd(MSI.CAP_ID), b);
  t.equal(flags(), (3 << 1) | MSI_FLAGS.ADDR64 | MSI_FLAGS.PVM);
  cfg.write(b + MSI.FLAGS, 2, 0xffff);
  t.equal(flags() & ~(MSI_FLAGS.ENABLE | MSI_FLAGS.MME), (3 << 1) | MSI_FLAGS.ADDR64 | MSI_FLAGS.PVM);
  t.ok(msi.enabled);
});

t.test('the four layouts put data, mask and pending where the spec says', async (t) => {
  const cases: [boolean, boolean, number, number][] = [
    [false, false, MSI.DATA_32, 0x4c],
    [true, false, MSI.DATA_64, 0x50],
    [false, true, MSI.DATA_32, 0x54],
    [true, true, MSI.DATA_64, 0x58],
  ];
  for (const [addr64, pvm, dataOff, nextCap] of cases) {
    const { cfg, list, msi, b } = make({ addr64, perVectorMask: pvm });
    cfg.write(b + dataOff, 2, 0x4321);
    t.equal(msi.data, 0x4321, `data at ${dataOff} (64-bit ${addr64}, PVM ${pvm})`);
    t.equal(list.addStd(0x09, 4), nextCap, 'the capability is as long as its layout');
  }
});

t.test('address bits [1:0] and the upper address of a 32-bit function are read-only', async (t) => {
  const { cfg, msi, b } = make({ addr64: false });
  cfg.write(b + MSI.ADDRESS_LO, 4, 0xfee0_0003);
  t.equal(cfg.read(b + MSI.ADDRESS_LO, 4), 0xfee0_0000);
  t.equal(msi.address, 0xfee0_0000);
  const w = make();
  w.cfg.write(w.b + MSI.ADDRESS_LO, 4, 0x1000);
  w.cfg.write(w.b + MSI.ADDRESS_HI, 4, 0x2);
  t.equal(w.msi.address, 0x2_0000_1000);
});

t.test('Multiple Message Enable above Capable is clamped to what was requested', async (t) => {
  const { cfg, msi, b, changes } = make({ vectors: 4 });
  cfg.write(b + MSI.FLAGS, 2, MSI_FLAGS.ENABLE | (5 << 4));
  t.equal(msi.allocatedVectors, 4);
  t.same(changes, [4]);
});

t.test('notify sends address and data with the vector in the low MME bits', async (t) => {
  const { cfg, msi, b, sent } = make({ vectors: 4 });
  cfg.write(b + MSI.ADDRESS_LO, 4, 0xfee0_0000);
  cfg.write(b + MSI.DATA_64, 2, 0x4043);
  t.equal(msi.notify(0), 'dropped', 'nothing is sent while MSI is disabled');
  cfg.write(b + MSI.FLAGS, 2, MSI_FLAGS.ENABLE | (2 << 4));
  t.equal(msi.notify(1), 'sent');
  t.equal(msi.notify(3), 'sent');
  t.equal(msi.notify(4), 'dropped', 'vector beyond those granted');
  t.same(sent, [[0xfee0_0000, 0x4041], [0xfee0_0000, 0x4043]]);
});

t.test('with per-vector masking a masked vector goes pending and unmasking delivers it', async (t) => {
  const { cfg, msi, b, sent } = make({ vectors: 2, perVectorMask: true });
  cfg.write(b + MSI.ADDRESS_LO, 4, 0xfee0_0000);
  cfg.write(b + MSI.DATA_64, 2, 0x20);
  cfg.write(b + MSI.FLAGS, 2, MSI_FLAGS.ENABLE | (1 << 4));
  cfg.write(b + MSI.MASK_64, 4, 0b10);
  t.equal(msi.notify(1), 'pending');
  t.same(sent, []);
  t.equal(cfg.read(b + MSI.PENDING_64, 4), 0b10);
  cfg.write(b + MSI.PENDING_64, 4, 0);
  t.equal(cfg.read(b + MSI.PENDING_64, 4), 0b10, 'Pending Bits are read-only');
  cfg.write(b + MSI.MASK_64, 4, 0);
  t.same(sent, [[0xfee0_0000, 0x21]]);
  t.equal(cfg.read(b + MSI.PENDING_64, 4), 0);
  t.notOk(msi.pending(1));
});

t.test('mask bits of vectors not implemented are reserved', async (t) => {
  const { cfg, b } = make({ vectors: 4, perVectorMask: true });
  cfg.write(b + MSI.MASK_64, 4, 0xffffffff);
  t.equal(cfg.read(b + MSI.MASK_64, 4), 0xf);
});

t.test('without per-vector masking there are no mask registers and nothing goes pending', async (t) => {
  const { cfg, msi, b } = make({ vectors: 1 });
  cfg.write(b + MSI.FLAGS, 2, MSI_FLAGS.ENABLE);
  t.notOk(msi.masked(0));
  t.equal(msi.notify(0), 'sent');
});

t.test('reset clears enable and everything software programmed', async (t) => {
  const { cfg, msi, b } = make({ perVectorMask: true });
  cfg.write(b + MSI.FLAGS, 2, MSI_FLAGS.ENABLE);
  cfg.write(b + MSI.ADDRESS_LO, 4, 0xfee0_0000);
  cfg.write(b + MSI.MASK_64, 4, 1);
  msi.notify(0);
  msi.reset();
  t.notOk(msi.enabled);
  t.equal(msi.address, 0);
  t.notOk(msi.masked(0));
  t.notOk(msi.pending(0));
});

t.test('guest writes of any size and value never throw', async (t) => {
  const { cfg, b } = make({ vectors: 32, perVectorMask: true });
  for (let off = b; off < b + 0x18; off++) {
    for (const size of [1, 2, 4]) cfg.write(off, size, 0xffffffff);
  }
  t.pass();
});

t.test('device definitions with an impossible vector count throw', async (t) => {
  t.throws(() => make({ vectors: 3 }), RangeError);
  t.throws(() => make({ vectors: 64 }), RangeError);
});
