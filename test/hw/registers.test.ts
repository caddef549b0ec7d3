import t from 'tap';
import { defineRegisters } from '../../src/hw/registers.ts';
import { RegisterFile } from '../../src/hw/register-file.ts';

const CTRL_BITS = [['EN', 0], ['MODE', 6, 4]] as const;
const REGS = defineRegisters('dev', [
  { name: 'ID', offset: 0x0, size: 4, access: 'ro', reset: 0x12345678 },
  { name: 'CTRL', offset: 0x4, size: 4, fields: CTRL_BITS },
  { name: 'CTRLACK', offset: 0x8, size: 4, fields: CTRL_BITS, access: 'ro' },
  { name: 'STS', offset: 0xc, size: 4, fields: [['ERR', 0, 0, 'w1c'], ['BUSY', 1, 1, 'ro']] },
  { name: 'BASE', offset: 0x10, size: 8, fields: [['LOG2SIZE', 4, 0], ['ADDR', 55, 5], ['RA', 62]] },
]);

t.test('typed', async (t) => {
  const r = new RegisterFile('dev', 0x40, REGS);
  r.setField('CTRL', 'MODE', 5);
  t.equal(r.getField('CTRL', 'MODE'), 5);
  // @ts-expect-error misspelt field
  t.throws(() => r.getField('CTRL', 'MOD'));
  // @ts-expect-error field of another register
  t.throws(() => r.getField('CTRL', 'ERR'));
  // @ts-expect-error misspelt register
  t.throws(() => r.get('CTLR'));
  // @ts-expect-error register without fields
  t.throws(() => r.getField('ID', 'X'));
  r.setField('BASE', 'ADDR', 2 ** 49 + 3);
  t.equal(r.getField('BASE', 'ADDR'), 2 ** 49 + 3);
  t.equal(REGS.pack('CTRL', { EN: 1, MODE: 2 }), 0x21);
  // @ts-expect-error misspelt field in pack
  t.throws(() => REGS.pack('CTRL', { EN: 1, MDE: 2 }));
});

t.test('a register table drives the file: access types, resets, 64-bit fields, handles', async (t) => {
  const r = new RegisterFile('dev', 0x40, REGS.withResets({ BASE: [0x20, 0x8000_0001] }));
  r.ops.write(0x4, 4, 0xffff_ffff);
  t.equal(r.get('CTRL'), 0x71, 'EN and MODE written, reserved bits dropped');
  r.ops.write(0x8, 4, 0xffff_ffff);
  t.equal(r.get('CTRLACK'), 0, 'the same fields, read-only in another register');
  r.setField('STS', 'ERR', 1);
  r.ops.write(0xc, 4, 1);
  t.equal(r.getField('STS', 'ERR'), 0, 'w1c from the access column');
  t.equal(r.get64('BASE'), 0x8000_0001_0000_0020n, 'get64 is exact');
  t.equal(r.getField('BASE', 'ADDR'), 2 ** 27 + 1, 'ADDR[55:5] read across the two words');
  t.equal(r.getField('BASE', 'RA'), 0);
  const addr = r.fieldRef('BASE', 'ADDR');
  addr.set(2 ** 50 - 1);
  t.equal(r.getField('BASE', 'ADDR'), 2 ** 50 - 1, 'a handle writes the same field');
  t.equal(addr.get(), 2 ** 50 - 1);
  t.match(r.describe('CTRL'), /^CTRL = 0x71 \(EN=1 MODE=7\)$/);
  t.equal(r.format('CTRL'), 'CTRL{EN=1 MODE=7}');
  t.equal(REGS.writableMask('CTRL'), 0x71);
  t.equal(REGS.w1cMask('STS'), 1);
  t.equal(REGS.get('BASE', [0x20, 0x8000_0001], 'ADDR'), 2 ** 27 + 1);
  t.equal(REGS.pack64('BASE', { RA: 1, LOG2SIZE: 3 }), (1n << 62n) | 3n);
  t.throws(() => new RegisterFile('x', 8, [{ name: 'A', offset: 0, size: 4, fields: [['X', 32]] }]), 'a field beyond the register');
});
