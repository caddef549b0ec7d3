import t from 'tap';
import fc from 'fast-check';
import { defineLayout, getBits, setBits, encodeLayout, decodeLayout, reservedBitsSet, formatLayout, readWords } from '../../src/hw/layout.ts';

const L = defineLayout('TEST', 16, [
  ['V', 0],
  ['CFG', 3, 1],
  ['PTR', 51, 6],
  ['HI', 127, 100],
] as const);

t.test('fields spanning words read and write exactly, up to 53 bits', async (t) => {
  const w = encodeLayout(L, { V: 1, CFG: 5, PTR: 0x3_ffff_ffff_ffc0 / 64, HI: 0xabcdef1 });
  t.equal(getBits(w, L.fields.V), 1);
  t.equal(getBits(w, L.fields.CFG), 5);
  t.equal(getBits(w, L.fields.PTR), 0x3_ffff_ffff_ffc0 / 64);
  t.equal(w[0]! & 0x3f, 0b001011, 'V and CFG in the low bits; PTR starts at bit 6');
  t.same(decodeLayout(L, w), { V: 1, CFG: 5, PTR: 0x3_ffff_ffff_ffc0 / 64, HI: 0xabcdef1 });
});

t.test('bits outside every field are reported as reserved', async (t) => {
  const w = encodeLayout(L, { V: 1 });
  t.same(reservedBitsSet(L, w), []);
  w[0] = (w[0]! | (1 << 4) | (1 << 5)) >>> 0;
  w[2] = 0x80000000;
  t.same(reservedBitsSet(L, w), [4, 5, 95]);
  t.match(formatLayout(L, w), /RES0!bits=4,5,95/);
});

t.test('bad declarations throw', async (t) => {
  t.throws(() => defineLayout('X', 8, [['A', 3, 0], ['B', 4, 3]]), 'overlap');
  t.throws(() => defineLayout('X', 8, [['A', 64, 0]]), 'too wide');
  t.throws(() => defineLayout('X', 8, [['A', 1, 0], ['A', 3, 2]]), 'duplicate');
  t.throws(() => encodeLayout(L, { NOPE: 1 } as never));
});

t.test('readWords reads a descriptor from memory', async (t) => {
  const mem = new Map([[0x100, 7], [0x104, 9]]);
  t.same([...readWords((a) => mem.get(a) ?? 0, 0x100, 8)], [7, 9]);
});

t.test('property: set then get round-trips and leaves other fields alone', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1, max: 53 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.array(fc.nat(), { minLength: 5, maxLength: 5 }), (lsb, width, frac, init) => {
      if (lsb + width > 160) return true;
      const f = { name: 'f', lsb, width };
      const words = Uint32Array.from(init.map((x) => x >>> 0));
      const before = Uint32Array.from(words);
      const v = Math.floor(frac * (2 ** width - 1));
      setBits(words, f, v);
      if (getBits(words, f) !== v) return false;
      for (let b = 0; b < 160; b++) {
        if (b >= lsb && b < lsb + width) continue;
        const bit = (x: Uint32Array) => (x[b >> 5]! >>> (b & 31)) & 1;
        if (bit(words) !== bit(before)) return false;
      }
      return true;
    }),
    { numRuns: 300, seed: 7 },
  );
  t.pass('300 runs');
});
