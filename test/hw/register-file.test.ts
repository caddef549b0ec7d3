import t from 'tap';
import { RegisterFile } from '../../src/hw/register-file.ts';

const make = () =>
  new RegisterFile('dev', 0x40, [
    { name: 'ID', offset: 0x0, size: 4, access: 'ro', reset: 0x12345678 },
    { name: 'CTRL', offset: 0x4, size: 4, fields: [['EN', 0, 0], ['MODE', 6, 4], ['LOCKED', 8, 8, 'ro']] },
    { name: 'STS', offset: 0x8, size: 4, fields: [['ERR', 0, 0, 'w1c'], ['BUSY', 1, 1, 'ro']] },
    { name: 'DOORBELL', offset: 0xc, size: 4, access: 'wo' },
    { name: 'BASE', offset: 0x10, size: 8, reset: [0x1000, 0x2] },
  ]);

t.test('read-only registers ignore writes and read their reset value', async (t) => {
  const r = make();
  r.ops.write(0, 4, 0xffffffff);
  t.equal(r.ops.read(0, 4), 0x12345678);
});

t.test('bits outside every field are reserved: read 0, writes dropped', async (t) => {
  const r = make();
  r.ops.write(4, 4, 0xffffffff);
  t.equal(r.ops.read(4, 4), 0x71, 'EN and MODE written; LOCKED (ro) and reserved bits stay 0');
  t.equal(r.getField('CTRL', 'MODE'), 7);
});

t.test('RW1C bits clear only when written with 1', async (t) => {
  const r = make();
  r.setField('STS', 'ERR', 1);
  r.setField('STS', 'BUSY', 1);
  r.ops.write(8, 4, 0);
  t.equal(r.ops.read(8, 4), 3, 'writing 0 leaves ERR set');
  r.ops.write(8, 4, 1);
  t.equal(r.ops.read(8, 4), 2, 'writing 1 clears ERR; BUSY is read-only');
});

t.test('write-only registers read as zero but keep the written value for the device', async (t) => {
  const r = make();
  let seen = -1;
  r.onWrite('DOORBELL', () => (seen = r.get('DOORBELL')));
  r.ops.write(0xc, 4, 0xabc);
  t.equal(seen, 0xabc);
  t.equal(r.ops.read(0xc, 4), 0);
});

t.test('sub-word accesses read and merge the right byte lanes', async (t) => {
  const r = make();
  t.equal(r.ops.read(1, 1), 0x56);
  t.equal(r.ops.read(2, 2), 0x1234);
  r.ops.write(0x10, 4, 0xaabbccdd);
  r.ops.write(0x11, 1, 0x00);
  t.equal(r.ops.read(0x10, 4), 0xaabb00dd);
});

t.test('64-bit registers are two words, low first', async (t) => {
  const r = make();
  t.equal(r.get64('BASE'), 0x2_0000_1000n);
  r.ops.write(0x14, 4, 0x3);
  t.equal(r.getHi('BASE'), 3);
  t.equal(r.get64('BASE'), 0x3_0000_1000n);
});

t.test('hooks see the old value and reads can be computed', async (t) => {
  const r = make();
  const olds: number[] = [];
  r.onWrite('CTRL', (_reg, oldLo) => olds.push(oldLo));
  r.ops.write(4, 4, 1);
  r.ops.write(4, 4, 0);
  t.same(olds, [0, 1]);
  r.onRead('STS', () => 0x2);
  t.equal(r.ops.read(8, 4), 2);
});

t.test('unknown offsets read 0 and ignore writes; reset restores', async (t) => {
  const r = make();
  r.ops.write(0x30, 4, 5);
  t.equal(r.ops.read(0x30, 4), 0);
  r.ops.write(4, 4, 1);
  r.reset();
  t.equal(r.get('CTRL'), 0);
  t.match(r.describe('CTRL'), /EN=0 MODE=0 LOCKED=0/);
});

t.test('bad declarations are refused', async (t) => {
  t.throws(() => new RegisterFile('x', 8, [{ name: 'A', offset: 2, size: 4 }]));
  t.throws(() => new RegisterFile('x', 8, [{ name: 'A', offset: 0, size: 4 }, { name: 'B', offset: 0, size: 4 }]));
  t.throws(() => make().get('NOPE'));
});

t.test('files made from the same definitions share their shape but nothing of their state', async (t) => {
  const { defineRegisters } = await import('../../src/hw/registers.ts');
  const table = defineRegisters('blk', [
    { name: 'CTRL', offset: 0, size: 4, fields: [['EN', 0], ['IRQ', 1, 1, 'w1c']] },
    { name: 'BASE', offset: 8, size: 8, reset: [0x1000, 0x2] },
  ] as const);
  const a = new RegisterFile('a', 0x100, table);
  const b = new RegisterFile('b', 0x100, table);
  const seen: string[] = [];
  a.onWrite('CTRL', () => seen.push('a'));
  b.onRead('BASE', (_r, w) => (w === 0 ? 0xdead : 0xbeef));
  a.ops.write(0, 4, 0x3);
  a.setField('CTRL', 'IRQ', 1);
  t.equal(a.getField('CTRL', 'EN'), 1);
  t.equal(b.getField('CTRL', 'EN'), 0, "one file's write does not reach the other");
  t.equal(b.getField('CTRL', 'IRQ'), 0, "nor one file's field write");
  b.ops.write(0, 4, 0x1);
  t.same(seen, ['a'], "a hook belongs to the file it was set on");
  t.equal(a.ops.read(8, 4), 0x1000, 'no read hook on a: its reset value');
  t.equal(b.ops.read(8, 4), 0xdead, "b's read hook");
  t.equal(b.ops.read(12, 4), 0xbeef);
  a.set('BASE', 5, 6);
  a.reset();
  t.same([a.get('BASE'), a.getHi('BASE')], [0x1000, 0x2], 'reset gives the table reset values back');
  t.equal(table.withResets({ BASE: [1, 2] }), table.withResets({ BASE: [1, 2] }), 'the same resets: the same table');
  t.not(table.withResets({ BASE: [1, 2] }), table.withResets({ BASE: [1, 3] }), 'other resets: another table');
  const c = new RegisterFile('c', 0x100, table.withResets({ BASE: [7, 8] }));
  t.same([c.get('BASE'), c.getHi('BASE')], [7, 8], 'a derived table keeps its own resets');
  t.throws(() => new RegisterFile('d', 0x8, table), RangeError, 'a size too small for the table is refused (a shape per size)');
});
