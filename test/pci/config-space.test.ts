import t from 'tap';
import { ConfigSpace } from '../../src/pci/config-space.ts';

t.test('read-only bits keep their value whatever software writes', async (t) => {
  const c = new ConfigSpace();
  c.set16(0, 0x1234);
  c.write(0, 2, 0xffff);
  t.equal(c.read(0, 2), 0x1234);
});

t.test('writable bits take the written value, only within the mask', async (t) => {
  const c = new ConfigSpace();
  c.setWritable(4, 2, 0x0007);
  c.write(4, 2, 0xffff);
  t.equal(c.read(4, 2), 0x0007);
  c.write(4, 1, 0x02);
  t.equal(c.read(4, 2), 0x0002);
});

t.test('RW1C bits clear only when written with 1', async (t) => {
  const c = new ConfigSpace();
  c.setW1C(6, 2, 0xf900);
  c.set16(6, 0x3010);
  c.write(6, 2, 0x0000);
  t.equal(c.read(6, 2), 0x3010, 'zeros change nothing');
  c.write(6, 2, 0x1000);
  t.equal(c.read(6, 2), 0x2010, 'a 1 clears that bit only; the RO bit 4 stays');
  c.write(6, 2, 0xffff);
  t.equal(c.read(6, 2), 0x0010);
});

t.test('unimplemented registers read 0 and writes beyond the space are ignored', async (t) => {
  const c = new ConfigSpace(256);
  t.equal(c.read(0x80, 4), 0);
  c.write(0x100, 4, 0xffffffff);
  t.equal(c.read(0xfe, 4), 0, 'bytes past the end read 0');
});

t.test('write hooks fire for overlapping writes with the old bytes', async (t) => {
  const c = new ConfigSpace();
  c.setWritable(0x10, 4, 0xffffffff);
  const seen: [number, number, number[]][] = [];
  c.onWrite(0x12, 2, (off, size, old) => seen.push([off, size, [...old]]));
  c.write(0x10, 2, 0xaaaa);
  c.write(0x10, 4, 0x11223344);
  c.write(0x13, 1, 0x55);
  t.same(seen, [
    [0x10, 4, [0xaa, 0xaa, 0, 0]],
    [0x13, 1, [0x11]],
  ]);
});

t.test('a hook that writes config space again sees its own old bytes, and the outer hooks keep theirs', async (t) => {
  const c = new ConfigSpace();
  c.setWritable(0x10, 4, 0xffffffff);
  c.setWritable(0x20, 2, 0xffff);
  c.set32(0x10, 0x44332211);
  c.set16(0x20, 0xbbaa);
  const seen: string[] = [];
  // The first hook on 0x10 writes 0x20 (as a reset hook rewrites other registers); a second hook on 0x10 runs after it.
  c.onWrite(0x10, 4, (off, n, old) => {
    seen.push(`outer-1 ${off} ${n} ${[...old].join(',')}`);
    c.write(0x20, 2, 0x1234);
  });
  c.onWrite(0x20, 2, (off, n, old) => seen.push(`inner ${off} ${n} ${[...old].join(',')}`));
  c.onWrite(0x10, 4, (off, n, old) => seen.push(`outer-2 ${off} ${n} ${[...old].join(',')}`));
  c.write(0x10, 4, 0x01020304);
  t.same(seen, ['outer-1 16 4 17,34,51,68', 'inner 32 2 170,187', 'outer-2 16 4 17,34,51,68']);
  seen.length = 0;
  c.write(0x11, 2, 0);
  t.same(seen.slice(0, 1), ['outer-1 17 2 3,2'], 'a 2-byte write: two old bytes');
});
