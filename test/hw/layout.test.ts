import t from 'tap';
import fc from 'fast-check';
import {
  decodeLayout, defineLayout, encodeLayout, fieldGet, fieldMasks, fieldPrep, formatLayout, getBits, getBits64, hasReservedBits, hiMask, loMask, maskBits,
  readField, readWords, reservedBitsSet, setBits, setBits64, wordMask, writeField, type FieldTable, type U64Halves,
} from '../../src/hw/layout.ts';

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

t.test('property: getBits reads the same value as a bit-by-bit reference, for fields inside one word, across two and across three', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 106 }), fc.integer({ min: 1, max: 53 }), fc.array(fc.nat({ max: 0xffffffff }), { minLength: 5, maxLength: 5 }), (lsb, width, init) => {
      const words = Uint32Array.from(init);
      let want = 0;
      for (let b = lsb + width - 1; b >= lsb; b--) want = want * 2 + ((words[b >> 5]! >>> (b & 31)) & 1);
      return getBits(words, { lsb, width }) === want;
    }),
    { numRuns: 2000, seed: 11 },
  );
  t.pass('2000 runs');
});

t.test('field names are typed: a misspelt field does not compile', async (t) => {
  const w = encodeLayout(L, { V: 1, CFG: 2 });
  t.equal(readField(L, w, 'CFG'), 2);
  // @ts-expect-error misspelt field
  t.throws(() => readField(L, w, 'CGF'));
  // @ts-expect-error misspelt field
  t.throws(() => encodeLayout(L, { VV: 1 }));
  // @ts-expect-error misspelt field
  t.equal(L.fields.PTRR, undefined);
  writeField(L, w, 'PTR', 7);
  t.equal(readField(L, w, 'PTR'), 7);
  // A function over a subset of fields takes any layout that has them.
  const v = (l: FieldTable<'V'>, words: ArrayLike<number>) => readField(l, words, 'V');
  t.equal(v(L, w), 1);
  // @ts-expect-error this layout has no field V
  t.throws(() => v(defineLayout('N', 4, [['X', 0]]), w));
});

t.test('each field carries its word, shift and mask; FIELD_GET/FIELD_PREP read them', async (t) => {
  const f = L.fields.PTR;
  t.same([f.word, f.shift, f.mask, f.msb], [0, 6, 0xffffffc0, 51], 'the part of PTR in its first word');
  t.equal(fieldGet(L.fields.CFG, 0b1010), 0b101);
  t.equal(fieldPrep(L.fields.CFG, 0b1111), 0b1110, 'value bits beyond the field are dropped');
  t.same(fieldMasks(defineLayout('R', 4, [['A', 0], ['B', 7, 4]])), { A: 1, B: 0xf0 });
  t.throws(() => fieldMasks(L), 'PTR crosses a word: no single mask');
  t.equal(L.fields.V.access, undefined);
  t.equal(defineLayout('R', 4, [['A', 3, 0, 'w1c']]).fields.A.access, 'w1c', 'the access column is kept');
});

t.test('16-bit structures: only their own bits are reserved', async (t) => {
  const R16 = defineLayout('R16', 2, [['LO', 3, 0], ['HI', 15]]);
  t.equal(R16.reservedMask[0], 0x7ff0);
  t.same(reservedBitsSet(R16, [0xffff_0010]), [4], 'bits 31:16 are outside the structure');
  t.throws(() => defineLayout('X', 2, [['A', 16]]), 'bit 16 is outside a 16-bit structure');
  t.throws(() => defineLayout('X', 3, [['A', 0]]), 'sizes are 1, 2 or whole words');
});

t.test('64-bit entries as u32 halves: masks per half and fields across them', async (t) => {
  const E = defineLayout('E', 8, [['P', 0], ['ADDR', 51, 12], ['XD', 63]]);
  t.same([loMask(E.fields.ADDR), hiMask(E.fields.ADDR)], [0xfffff000, 0xfffff]);
  t.same([loMask(E.fields.XD), hiMask(E.fields.XD)], [0, 0x8000_0000]);
  t.equal(maskBits(4, 8), 0xf0);
  t.equal(wordMask(E.fields.ADDR, 2), 0, 'no bits in a third word');
  const d: U64Halves = { lo: 1, hi: 0x8000_0000 };
  setBits64(d, E.fields.ADDR, 0xf_ffff_ffff);
  t.same(d, { lo: 0xfffff001, hi: 0x8000_ffff });
  t.equal(getBits64(d.lo, d.hi, E.fields.ADDR), 0xf_ffff_ffff);
  t.equal(getBits64(d.lo, d.hi, E.fields.XD), 1);
  t.equal(hasReservedBits(E, [d.lo, d.hi]), false);
  t.equal(hasReservedBits(E, [d.lo | 2, d.hi]), true);
});
