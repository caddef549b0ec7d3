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
