import t from 'tap';
import fc from 'fast-check';
import { GuestRam, partsToNumber, u64ToParts } from '../../src/memory/guest-ram.ts';
import { MEMTX_DECODE_ERROR, MEMTX_OK, PAGE_SIZE } from '../../src/memory/phys-mem.ts';

const TIB = 2 ** 40;

t.test('a 1 TiB GuestRam costs nothing until written', async (t) => {
  const ram = new GuestRam(TIB);
  t.equal(ram.size, TIB);
  t.equal(ram.residentFrames, 0);
  t.equal(ram.residentBytes, 0);
});

t.test('reads of untouched RAM return zeros and allocate nothing', async (t) => {
  const ram = new GuestRam(TIB);
  for (const a of [0, 1, PAGE_SIZE - 1, 2 ** 32, 2 ** 39 + 12345, TIB - 8]) {
    t.equal(ram.read8(a), 0, `read8 @${a}`);
    t.equal(ram.read16(a), 0, `read16 @${a}`);
    t.equal(ram.read32(a), 0, `read32 @${a}`);
    t.equal(ram.read32Checked(a), 0, `read32Checked @${a}`);
    t.equal(ram.read64(a), 0n, `read64 @${a}`);
  }
  // A bulk read spanning many frames (and a frame boundary) in the top half.
  const buf = new Uint8Array(5 * PAGE_SIZE).fill(0x5a);
  t.equal(ram.readInto(TIB - 5 * PAGE_SIZE - 7, buf), MEMTX_OK);
  t.ok(buf.every((b) => b === 0), 'bulk read of untouched RAM is zeros');
  t.equal(ram.residentFrames, 0, 'still no frame allocated after reads');
  t.equal(ram.peekFrame(2 ** 39), undefined);
});

t.test('writes allocate exactly the frames they touch', async (t) => {
  const ram = new GuestRam(TIB);
  ram.write8(TIB - 1, 0x12);
  t.equal(ram.residentFrames, 1, 'write8 at the last byte: one frame');
  ram.write32(TIB - 2, 0); // straddles the end of the RAM: dropped
  t.equal(ram.residentFrames, 1, 'an out-of-range write allocates nothing');
  ram.write32(2 ** 35 + PAGE_SIZE - 2, 0); // crosses a frame boundary, even writing zeros
  t.equal(ram.residentFrames, 3, 'a u32 across a boundary touches two frames');
  ram.write16(2 ** 35 + PAGE_SIZE - 1, 0xffff); // same two frames again
  t.equal(ram.residentFrames, 3, 'rewriting touched frames allocates nothing');
  ram.write64(2 ** 36 + 8, 1n);
  t.equal(ram.residentFrames, 4);
  // bulk write: 3 pages starting 100 bytes into a frame spans 4 frames
  ram.writeFrom(2 ** 38 + 100, new Uint8Array(3 * PAGE_SIZE));
  t.equal(ram.residentFrames, 8);
  t.equal(ram.residentBytes, 8 * PAGE_SIZE);
  t.equal(ram.read8(TIB - 1), 0x12);
});

t.test('scalar accessors are little-endian', async (t) => {
  const ram = new GuestRam(16 * PAGE_SIZE);
  ram.write32(0x10, 0x11223344);
  t.same([0x10, 0x11, 0x12, 0x13].map((a) => ram.read8(a)), [0x44, 0x33, 0x22, 0x11]);
  t.equal(ram.read16(0x10), 0x3344);
  t.equal(ram.read16(0x12), 0x1122);
  ram.write64(0x20, 0xfedcba9876543210n);
  t.equal(ram.read32(0x20), 0x76543210);
  t.equal(ram.read32(0x24), 0xfedcba98, 'u32 with the top bit set reads as an unsigned number');
  t.equal(ram.read8(0x27), 0xfe);
  t.equal(ram.read64(0x20), 0xfedcba9876543210n);
  ram.write16(0x30, 0xbeef);
  t.same([ram.read8(0x30), ram.read8(0x31)], [0xef, 0xbe]);
});

t.test('scalar writes keep only the bytes of their size', async (t) => {
  const ram = new GuestRam(PAGE_SIZE);
  ram.write8(0, 0x1ab);
  ram.write16(2, 0x12345);
  ram.write64(8, -1n);
  t.equal(ram.read8(0), 0xab);
  t.equal(ram.read8(1), 0, 'write8 does not spill into the next byte');
  t.equal(ram.read16(2), 0x2345);
  t.equal(ram.read8(4), 0, 'write16 does not spill');
  t.equal(ram.read64(8), 0xffffffffffffffffn, 'write64 of -1 stores the u64 all-ones');
});

t.test('u16/u32/u64 accesses across a frame boundary read back what was written', async (t) => {
  const ram = new GuestRam(4 * PAGE_SIZE);
  const b = PAGE_SIZE; // boundary between frame 0 and 1
  ram.write16(b - 1, 0xa1b2);
  t.equal(ram.read16(b - 1), 0xa1b2, 'u16 at boundary-1');
  t.equal(ram.read8(b - 1), 0xb2);
  t.equal(ram.read8(b), 0xa1);
  for (let d = 1; d < 4; d++) {
    ram.write32(b - d, 0xc0ffee01 + d);
    t.equal(ram.read32(b - d), 0xc0ffee01 + d, `u32 at boundary-${d}`);
    t.equal(ram.read32Checked(b - d), 0xc0ffee01 + d);
  }
  for (let d = 1; d < 8; d++) {
    const v = 0x8877665544332211n + BigInt(d);
    ram.write64(2 * b - d, v);
    t.equal(ram.read64(2 * b - d), v, `u64 at boundary-${d}`);
  }
  ram.write32(2 * b - 2, 0xddccbbaa);
  t.same(
    [ram.read8(2 * b - 2), ram.read8(2 * b - 1), ram.read8(2 * b), ram.read8(2 * b + 1)],
    [0xaa, 0xbb, 0xcc, 0xdd],
    'bytes land on both sides of the boundary in LE order',
  );
});

t.test('bulk copies across several frames round-trip, including partial frames', async (t) => {
  const ram = new GuestRam(8 * PAGE_SIZE);
  const src = new Uint8Array(2 * PAGE_SIZE + 301);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
  const at = PAGE_SIZE - 17;
  t.equal(ram.writeFrom(at, src), MEMTX_OK);
  const dst = new Uint8Array(src.length);
  t.equal(ram.readInto(at, dst), MEMTX_OK);
  t.same(dst, src);
  t.equal(ram.read8(at - 1), 0, 'byte before the copy untouched');
  t.equal(ram.read8(at + src.length), 0, 'byte after the copy untouched');
  // readRange/writeRange with offsets into the buffers
  const big = new Uint8Array(32).fill(0xee);
  t.equal(ram.readRange(at + 5, big, 10, 8), MEMTX_OK);
  t.same([...big.subarray(10, 18)], [...src.subarray(5, 13)]);
  t.equal(big[9], 0xee);
  t.equal(big[18], 0xee, 'readRange writes only len bytes of dst');
  t.equal(ram.writeRange(0, src, 100, 4), MEMTX_OK);
  t.same([ram.read8(0), ram.read8(3), ram.read8(4)], [src[100], src[103], 0]);
});

t.test('copy() moves bytes in the direction it is given; an empty write allocates nothing', async (t) => {
  const ram = new GuestRam(TIB);
  const src = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
  t.equal(ram.copy(PAGE_SIZE - 20, src, 0, 40, true), MEMTX_OK, 'a small write across a frame boundary');
  const back = new Uint8Array(44).fill(0xee);
  t.equal(ram.copy(PAGE_SIZE - 20, back, 2, 40, false), MEMTX_OK);
  t.same([...back.subarray(2, 42)], [...src], 'read back at the buffer offset');
  t.same([back[0], back[1], back[42], back[43]], [0xee, 0xee, 0xee, 0xee], 'nothing outside [off, off+len) touched');
  t.equal(ram.residentFrames, 2);
  t.equal(ram.copy(2 ** 39, src, 0, 0, true), MEMTX_OK);
  t.equal(ram.residentFrames, 2, 'a zero-length write allocated no frame');
  t.equal(ram.copy(TIB - 4, back, 0, 8, false), MEMTX_DECODE_ERROR, 'past the end: nothing copied');
  t.same([...back.subarray(0, 8)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 'a failed read gives all-ones');
});

t.test('accesses outside the RAM read all-ones, drop writes and report DECODE_ERROR', async (t) => {
  const size = 4 * PAGE_SIZE;
  const ram = new GuestRam(size);
  t.equal(ram.read8(size), 0xff);
  t.equal(ram.read8(-1), 0xff);
  t.equal(ram.read16(size - 1), 0xffff, 'u16 straddling the end');
  t.equal(ram.read32(size - 2), 0xffffffff, 'u32 straddling the end');
  t.equal(ram.read32Checked(size - 2), -1);
  t.equal(ram.read32Checked(size), -1);
  t.equal(ram.read32Checked(size - 4), 0, 'the last in-range u32 is fine');
  t.equal(ram.read64(size - 4), 0xffffffff00000000n, 'the in-range half reads 0, the outside half all-ones');
  const dst = new Uint8Array(8);
  t.equal(ram.readInto(size - 4, dst), MEMTX_DECODE_ERROR);
  t.ok(dst.every((b) => b === 0xff), 'a failed bulk read fills all-ones');
  ram.write8(size, 1);
  ram.write32(size - 2, 0xffffffff);
  t.equal(ram.writeFrom(size - 4, new Uint8Array(8).fill(9)), MEMTX_DECODE_ERROR);
  t.equal(ram.fill(size - 1, 1, 2), MEMTX_DECODE_ERROR);
  t.equal(ram.residentFrames, 0, 'none of the failed writes allocated or wrote anything');
  t.equal(ram.read16(size - 2), 0);
});

t.test('zero-fill of untouched frames allocates nothing; non-zero fill allocates what it covers', async (t) => {
  const ram = new GuestRam(16 * PAGE_SIZE);
  t.equal(ram.fill(0, 0, 16 * PAGE_SIZE), MEMTX_OK);
  t.equal(ram.residentFrames, 0);
  t.equal(ram.fill(PAGE_SIZE - 3, 0xaa, PAGE_SIZE + 6), MEMTX_OK);
  t.equal(ram.residentFrames, 3, 'fill of [4093, 4093+4102) covers frames 0, 1, 2');
  t.equal(ram.read8(PAGE_SIZE - 4), 0);
  t.equal(ram.read8(PAGE_SIZE - 3), 0xaa);
  t.equal(ram.read32(2 * PAGE_SIZE - 2), 0xaaaaaaaa);
  t.equal(ram.read8(2 * PAGE_SIZE + 2), 0xaa);
  t.equal(ram.read8(2 * PAGE_SIZE + 3), 0);
  t.equal(ram.fill(PAGE_SIZE, 0, 4), MEMTX_OK, 'zero-fill of a touched frame zeroes it');
  t.equal(ram.read32(PAGE_SIZE), 0);
  t.equal(ram.read8(PAGE_SIZE + 4), 0xaa);
});

t.test('discard drops whole frames inside the range; they read as zero again', async (t) => {
  const ram = new GuestRam(16 * PAGE_SIZE);
  ram.fill(0, 0x11, 8 * PAGE_SIZE);
  t.equal(ram.residentFrames, 8);
  ram.discard(2 * PAGE_SIZE, 3 * PAGE_SIZE);
  t.equal(ram.residentFrames, 5);
  t.equal(ram.read8(2 * PAGE_SIZE), 0);
  t.equal(ram.read8(5 * PAGE_SIZE - 1), 0);
  t.equal(ram.read8(2 * PAGE_SIZE - 1), 0x11, 'frame before the range kept');
  t.equal(ram.read8(5 * PAGE_SIZE), 0x11, 'frame after the range kept');
  // An unaligned range drops only the frames fully inside it.
  ram.discard(5 * PAGE_SIZE + 1, 2 * PAGE_SIZE);
  t.equal(ram.residentFrames, 4, 'only frame 6 lies fully inside [5*4K+1, 7*4K+1)');
  t.equal(ram.read8(5 * PAGE_SIZE + 1), 0x11);
  t.equal(ram.read8(6 * PAGE_SIZE), 0);
  t.equal(ram.read8(7 * PAGE_SIZE), 0x11);
});

t.test('the constructor refuses sizes that are not positive multiples of a page', async (t) => {
  t.throws(() => new GuestRam(0), RangeError);
  t.throws(() => new GuestRam(PAGE_SIZE + 1), RangeError);
  t.throws(() => new GuestRam(-PAGE_SIZE), RangeError);
  t.throws(() => new GuestRam(2 ** 60), RangeError, 'beyond 2^53 is not exact');
});

t.test('u64 part helpers split and join exactly', async (t) => {
  t.same(u64ToParts(0xfedcba9876543210n), [0x76543210, 0xfedcba98]);
  t.same(u64ToParts(-1n), [0xffffffff, 0xffffffff]);
  t.equal(partsToNumber(0x76543210, 0x1fffff), 2 ** 53 - 1 - 0x89abcdef);
  const ram = new GuestRam(PAGE_SIZE);
  ram.write64Parts(PAGE_SIZE - 8, 0x89abcdef, 0x01234567);
  t.equal(ram.read64(PAGE_SIZE - 8), 0x0123456789abcdefn);
});

// ---------------------------------------------------------------------------
// Property: GuestRam behaves like a plain byte map (untouched = 0, out of range
// = all-ones / dropped), and allocates exactly the frames written.

type RamOp =
  | { k: 'w'; size: 1 | 2 | 4; addr: number; v: number }
  | { k: 'w64'; addr: number; v: bigint }
  | { k: 'wb'; addr: number; data: Uint8Array }
  | { k: 'fill'; addr: number; byte: number; len: number }
  | { k: 'discard'; page: number; pages: number }
  | { k: 'r'; size: 1 | 2 | 4 | 8; addr: number }
  | { k: 'rc'; addr: number }
  | { k: 'rb'; addr: number; len: number };

const RAM_PAGES = 4;
const RAM_SIZE = RAM_PAGES * PAGE_SIZE;
// Addresses near frame boundaries and the ends, where the bugs live.
const arbAddr = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: RAM_PAGES + 1 }), fc.integer({ min: -9, max: 9 })).map(([p, d]) => p * PAGE_SIZE + d),
  fc.integer({ min: 0, max: RAM_SIZE + 16 }),
);
const arbOp: fc.Arbitrary<RamOp> = fc.oneof(
  fc.record({ k: fc.constant('w' as const), size: fc.constantFrom(1 as const, 2 as const, 4 as const), addr: arbAddr, v: fc.nat({ max: 0xffffffff }) }),
  fc.record({ k: fc.constant('w64' as const), addr: arbAddr, v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ k: fc.constant('wb' as const), addr: arbAddr, data: fc.uint8Array({ minLength: 0, maxLength: 40 }) }),
  fc.record({ k: fc.constant('fill' as const), addr: arbAddr, byte: fc.constantFrom(0, 0x5a), len: fc.integer({ min: 0, max: PAGE_SIZE + 10 }) }),
  fc.record({ k: fc.constant('discard' as const), page: fc.integer({ min: 0, max: RAM_PAGES }), pages: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ k: fc.constant('r' as const), size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const), addr: arbAddr }),
  fc.record({ k: fc.constant('rc' as const), addr: arbAddr }),
  fc.record({ k: fc.constant('rb' as const), addr: arbAddr, len: fc.integer({ min: 0, max: 40 }) }),
);

class RamModel {
  bytes = new Map<number, number>();
  frames = new Set<number>();
  inRange(a: number, n: number): boolean {
    return a >= 0 && a + n <= RAM_SIZE;
  }
  touch(a: number, n: number): void {
    for (let i = 0; i < n; i++) this.frames.add(Math.floor((a + i) / PAGE_SIZE));
  }
  writeBytes(a: number, bs: ArrayLike<number>): void {
    if (!this.inRange(a, bs.length)) return;
    this.touch(a, bs.length);
    for (let i = 0; i < bs.length; i++) this.bytes.set(a + i, bs[i]! & 0xff);
  }
  readBytes(a: number, n: number): number[] {
    if (!this.inRange(a, n)) return new Array<number>(n).fill(0xff);
    return Array.from({ length: n }, (_, i) => this.bytes.get(a + i) ?? 0);
  }
  le(bs: number[]): number {
    return bs.reduceRight((acc, b) => acc * 256 + b, 0);
  }
}

t.test('GuestRam matches a byte-map reference model under random accesses', async (t) => {
  fc.assert(
    fc.property(fc.array(arbOp, { minLength: 1, maxLength: 60 }), (ops) => {
      const ram = new GuestRam(RAM_SIZE);
      const m = new RamModel();
      for (const op of ops) {
        switch (op.k) {
          case 'w': {
            const bs = Array.from({ length: op.size }, (_, i) => (op.v >>> (8 * i)) & 0xff);
            if (op.size === 1) ram.write8(op.addr, op.v);
            else if (op.size === 2) ram.write16(op.addr, op.v);
            else ram.write32(op.addr, op.v);
            m.writeBytes(op.addr, bs);
            break;
          }
          case 'w64': {
            ram.write64(op.addr, op.v);
            // two u32 halves, each checked on its own
            const lo = Array.from({ length: 4 }, (_, i) => Number((op.v >> BigInt(8 * i)) & 0xffn));
            const hi = Array.from({ length: 4 }, (_, i) => Number((op.v >> BigInt(32 + 8 * i)) & 0xffn));
            m.writeBytes(op.addr, lo);
            m.writeBytes(op.addr + 4, hi);
            break;
          }
          case 'wb': {
            const rc = ram.writeFrom(op.addr, op.data);
            if (rc !== (m.inRange(op.addr, op.data.length) ? MEMTX_OK : MEMTX_DECODE_ERROR)) return false;
            m.writeBytes(op.addr, op.data);
            break;
          }
          case 'fill': {
            const rc = ram.fill(op.addr, op.byte, op.len);
            if (rc !== (m.inRange(op.addr, op.len) ? MEMTX_OK : MEMTX_DECODE_ERROR)) return false;
            if (m.inRange(op.addr, op.len)) {
              for (let i = 0; i < op.len; i++) m.bytes.set(op.addr + i, op.byte);
              if (op.byte !== 0) m.touch(op.addr, op.len);
            }
            break;
          }
          case 'discard': {
            ram.discard(op.page * PAGE_SIZE, op.pages * PAGE_SIZE);
            for (let p = op.page; p < op.page + op.pages; p++) {
              m.frames.delete(p);
              for (let i = 0; i < PAGE_SIZE; i++) m.bytes.delete(p * PAGE_SIZE + i);
            }
            break;
          }
          case 'r': {
            if (op.size === 8) {
              const want = (BigInt(m.le(m.readBytes(op.addr + 4, 4))) << 32n) | BigInt(m.le(m.readBytes(op.addr, 4)));
              if (ram.read64(op.addr) !== want) return false;
            } else {
              const got = op.size === 1 ? ram.read8(op.addr) : op.size === 2 ? ram.read16(op.addr) : ram.read32(op.addr);
              if (got !== m.le(m.readBytes(op.addr, op.size))) return false;
            }
            break;
          }
          case 'rc': {
            const want = m.inRange(op.addr, 4) ? m.le(m.readBytes(op.addr, 4)) : -1;
            if (ram.read32Checked(op.addr) !== want) return false;
            break;
          }
          case 'rb': {
            const dst = new Uint8Array(op.len);
            const rc = ram.readInto(op.addr, dst);
            if (rc !== (m.inRange(op.addr, op.len) ? MEMTX_OK : MEMTX_DECODE_ERROR)) return false;
            const want = m.readBytes(op.addr, op.len);
            if (!want.every((b, i) => dst[i] === b)) return false;
            break;
          }
        }
        if (ram.residentFrames !== m.frames.size) return false;
      }
      // final full comparison
      const all = new Uint8Array(RAM_SIZE);
      ram.readInto(0, all);
      return m.readBytes(0, RAM_SIZE).every((b, i) => all[i] === b);
    }),
    { numRuns: 150 },
  );
  t.pass('model agrees');
});

t.test('an adopted frame is the outside memory itself, handed back untouched on discard', async (t) => {
  const ram = new GuestRam(64 * PAGE_SIZE);
  const outside = new Uint8Array(4 * PAGE_SIZE);
  const view = outside.subarray(PAGE_SIZE, 2 * PAGE_SIZE);
  ram.write8(3 * PAGE_SIZE, 0x77); // the frame had contents of its own: adoption replaces them
  ram.adoptFrame(3 * PAGE_SIZE, view);
  t.ok(ram.isAdopted(3 * PAGE_SIZE + 5));
  outside[PAGE_SIZE + 8] = 0xab;
  t.equal(ram.read8(3 * PAGE_SIZE + 8), 0xab, 'a store outside is a load inside');
  ram.write32(3 * PAGE_SIZE + 16, 0x11223344);
  t.equal(outside[PAGE_SIZE + 16], 0x44, 'a store inside is a load outside');
  t.equal(ram.read8(3 * PAGE_SIZE), 0, 'the old contents are gone');
  ram.discard(3 * PAGE_SIZE, PAGE_SIZE);
  t.notOk(ram.isAdopted(3 * PAGE_SIZE));
  t.equal(ram.read8(3 * PAGE_SIZE + 8), 0, 'discarded: reads zero again');
  t.equal(outside[PAGE_SIZE + 8], 0xab, 'the outside bytes were not zeroed');
  ram.write8(5 * PAGE_SIZE, 1); // a fresh frame: never the adopted one, which was not pooled
  outside[PAGE_SIZE + 100] = 9;
  t.equal(ram.read8(5 * PAGE_SIZE + 100), 0);
});

t.test('privatizeFrame leaves a copy behind and lets the outside memory go', async (t) => {
  const ram = new GuestRam(16 * PAGE_SIZE);
  const outside = new Uint8Array(PAGE_SIZE).fill(0x5c);
  ram.adoptFrame(2 * PAGE_SIZE, outside);
  ram.privatizeFrame(2 * PAGE_SIZE);
  t.notOk(ram.isAdopted(2 * PAGE_SIZE));
  outside.fill(0);
  t.equal(ram.read8(2 * PAGE_SIZE + 77), 0x5c, 'the copy keeps the bytes of the moment');
  ram.write8(2 * PAGE_SIZE, 1);
  t.equal(outside[0], 0, 'and no longer reaches the outside');
  ram.privatizeFrame(4 * PAGE_SIZE); // a frame of our own (or none): nothing happens
  t.equal(ram.residentFrames, 1);
});

t.test('adoptFrame refuses what is not one whole frame of this RAM', async (t) => {
  const ram = new GuestRam(4 * PAGE_SIZE);
  t.throws(() => ram.adoptFrame(0, new Uint8Array(100)));
  t.throws(() => ram.adoptFrame(100, new Uint8Array(PAGE_SIZE)));
  t.throws(() => ram.adoptFrame(4 * PAGE_SIZE, new Uint8Array(PAGE_SIZE)));
});

t.test('frames whose numbers agree in their low 32 bits stay apart (the recent-frame slots keep whole frame numbers)', async (t) => {
  const ram = new GuestRam(2 ** 46);
  const a = 5 * PAGE_SIZE;
  const b = (2 ** 32 + 5) * PAGE_SIZE;
  ram.write32(a, 0x11111111);
  ram.write32(b, 0x22222222);
  t.equal(ram.read32(a), 0x11111111);
  t.equal(ram.read32(b), 0x22222222);
  t.equal(ram.read32(b + PAGE_SIZE * 16), 0, 'a frame of the same slot never written reads zero');
  t.equal(ram.residentFrames, 2);
});

t.test('a frame read after discard, adoption or privatisation is the frame now there, not one remembered', async (t) => {
  const ram = new GuestRam(64 * PAGE_SIZE);
  ram.write8(3 * PAGE_SIZE, 7);
  t.equal(ram.read8(3 * PAGE_SIZE), 7);
  ram.discard(3 * PAGE_SIZE, PAGE_SIZE);
  t.equal(ram.read8(3 * PAGE_SIZE), 0, 'discarded: zero');
  const outside = new Uint8Array(PAGE_SIZE).fill(9);
  ram.adoptFrame(3 * PAGE_SIZE, outside);
  t.equal(ram.read8(3 * PAGE_SIZE), 9, 'adopted: the outside bytes');
  ram.privatizeFrame(3 * PAGE_SIZE);
  outside.fill(1);
  t.equal(ram.read8(3 * PAGE_SIZE), 9, 'privatised: the copy, not the outside memory');
  ram.write8(3 * PAGE_SIZE, 4);
  t.equal(outside[0], 1, 'a write after privatisation does not reach the outside memory');
});

t.test('whole frames written from inside a larger buffer: the page views it keeps follow the buffer, its offset and its bytes', async (t) => {
  // Buffers written page by page again and again (a bounce buffer) go through cached page views; every case must still
  // copy the bytes the buffer holds now, at the offset given, whichever buffer it is.
  fc.assert(
    fc.property(
      fc.array(fc.record({ buf: fc.integer({ min: 0, max: 3 }), page: fc.integer({ min: 0, max: 7 }), frame: fc.integer({ min: 0, max: 15 }), shift: fc.integer({ min: 0, max: 1 }), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 40 }),
      (ops) => {
        const ram = new GuestRam(16 * PAGE_SIZE);
        const model = new Uint8Array(16 * PAGE_SIZE);
        // Two small buffers, a subarray of a larger one (non-zero byteOffset), and one past the cache's size limit.
        const big = new Uint8Array(12 * PAGE_SIZE);
        const bufs = [new Uint8Array(8 * PAGE_SIZE + 1), new Uint8Array(8 * PAGE_SIZE + 1), big.subarray(3 * PAGE_SIZE + 5), new Uint8Array(2 ** 20 + 8 * PAGE_SIZE)];
        for (const op of ops) {
          const buf = bufs[op.buf]!;
          // The buffer's bytes change between writes: a view made earlier must show the new ones.
          const off = op.page * PAGE_SIZE + op.shift;
          buf.fill(op.byte, off, off + PAGE_SIZE);
          buf[off + 7] = op.byte ^ 0x5a;
          if (ram.copy(op.frame * PAGE_SIZE, buf, off, PAGE_SIZE, true) !== MEMTX_OK) return false;
          model.set(buf.subarray(off, off + PAGE_SIZE), op.frame * PAGE_SIZE);
        }
        const out = new Uint8Array(16 * PAGE_SIZE);
        ram.copy(0, out, 0, out.length, false);
        return out.every((b, i) => b === model[i]);
      },
    ),
    { numRuns: 300 },
  );
});
