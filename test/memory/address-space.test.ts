import t from 'tap';
import fc from 'fast-check';
import { GuestRam } from '../../src/memory/guest-ram.ts';
import { MemoryRegion, type AccessSize, type MmioAccessRules, type MmioOps } from '../../src/memory/memory-region.ts';
import { AddressSpace } from '../../src/memory/address-space.ts';
import { MEMTX_DECODE_ERROR, MEMTX_DEVICE_ERROR, MEMTX_OK, PAGE_SIZE } from '../../src/memory/phys-mem.ts';
import { Tracer, type TraceRecord } from '../../src/trace/tracer.ts';

type Call = ['r' | 'w', number, AccessSize, number?];

/** An MMIO device that records every handler call and returns `0x10000000 * size + offset` on reads. */
function recorder() {
  const calls: Call[] = [];
  const ops: MmioOps = {
    read(offset, size) {
      calls.push(['r', offset, size]);
      return (0x1000_0000 * size + offset) >>> 0;
    },
    write(offset, size, value) {
      calls.push(['w', offset, size, value]);
    },
  };
  return { calls, ops };
}

/** System memory: RAM [0, 64K), an MMIO device at 0x10_0000 (4K), nothing else; root spans 4 GiB. */
function fixture(rules: MmioAccessRules = {}) {
  const tracer = new Tracer();
  const events: TraceRecord[] = [];
  tracer.on('*', (r) => events.push(r));
  const ram = new GuestRam(0x10000);
  const root = MemoryRegion.container('system', 2 ** 32);
  root.addSubregion(0, MemoryRegion.ram('ram', ram));
  const dev = recorder();
  const mr = MemoryRegion.mmio('dev', PAGE_SIZE, dev.ops, rules);
  root.addSubregion(0x10_0000, mr);
  const as = new AddressSpace('sys', root, tracer);
  return { as, ram, root, mr, calls: dev.calls, events, tracer };
}
const DEV = 0x10_0000;
const HOLE = 0x20_0000;

t.test('RAM accesses through the address space reach the GuestRam at the region offset', async (t) => {
  const { as, ram } = fixture();
  as.write32(0x1234, 0xcafef00d);
  t.equal(ram.read32(0x1234), 0xcafef00d);
  ram.write64(0x2000, 0x0102030405060708n);
  t.equal(as.read64(0x2000), 0x0102030405060708n);
  t.equal(as.read16(0x2002), 0x0506);
  t.equal(as.read8(0x2007), 0x01);
  as.write64(0x3ffc, 0xaabbccdd11223344n);
  t.equal(ram.read64(0x3ffc), 0xaabbccdd11223344n);
});

t.test('a RAM window with an offset maps region offset 0 to that RAM offset', async (t) => {
  const block = new GuestRam(0x4000);
  const root = MemoryRegion.container('root', 0x10000);
  root.addSubregion(0x8000, MemoryRegion.ram('win', block, 0x1000, 0x2000));
  const as = new AddressSpace('as', root);
  as.write32(0x8000, 0x11111111);
  as.write8(0x9fff, 0x22);
  t.equal(block.read32(0x1000), 0x11111111);
  t.equal(block.read8(0x2fff), 0x22);
  t.equal(as.read8(0xa000), 0xff, 'past the window is nothing');
  t.throws(() => MemoryRegion.ram('bad', block, 0x3000, 0x2000), RangeError, 'a window past the block is refused');
});

t.test('MMIO handlers receive the exact offset, size and value of each access', async (t) => {
  const { as, calls } = fixture();
  as.write8(DEV + 0x13, 0xab);
  as.write16(DEV + 0x22, 0xbeef);
  as.write32(DEV + 0x44, 0xdeadbeef);
  t.same(calls, [
    ['w', 0x13, 1, 0xab],
    ['w', 0x22, 2, 0xbeef],
    ['w', 0x44, 4, 0xdeadbeef],
  ]);
  calls.length = 0;
  t.equal(as.read8(DEV + 0x7), (0x1000_0007) & 0xff);
  t.equal(as.read16(DEV + 0x8), (0x2000_0008) & 0xffff);
  t.equal(as.read32(DEV + 0xc), 0x4000_000c);
  t.same(calls, [
    ['r', 7, 1],
    ['r', 8, 2],
    ['r', 0xc, 4],
  ]);
});

t.test('a sub-word MMIO write hands the handler only the bytes of its size', async (t) => {
  const { as, calls } = fixture();
  as.write8(DEV, 0x1ab);
  as.write16(DEV + 2, 0x12345);
  t.same(calls, [
    ['w', 0, 1, 0xab],
    ['w', 2, 2, 0x2345],
  ]);
});

t.test('a sub-word MMIO read returns only the bytes of its size, whatever the handler returns', async (t) => {
  const { as } = fixture();
  t.equal(as.read8(DEV + 0x10), 0x10, 'the recorder returns 0x10000010 for (0x10, 1)');
  t.equal(as.read16(DEV + 0x10), 0x0010);
});

t.test('an 8-byte MMIO access is split into two 4-byte accesses, low half first', async (t) => {
  const { as, calls } = fixture();
  as.write64(DEV + 0x18, 0x1122334455667788n);
  t.same(calls, [
    ['w', 0x18, 4, 0x55667788],
    ['w', 0x1c, 4, 0x11223344],
  ]);
  calls.length = 0;
  t.equal(as.read64(DEV + 0x20), (0x4000_0024n << 32n) | 0x4000_0020n);
  t.same(calls, [
    ['r', 0x20, 4],
    ['r', 0x24, 4],
  ]);
});

t.test('handlers with read64/write64 take an 8-byte access whole (QEMU impl.max_access_size 8); the rules still apply', async (t) => {
  const seen: string[] = [];
  const ops: MmioOps = {
    read: (o, size) => (seen.push(`r${size}@${o}`), 0),
    write: (o, size) => void seen.push(`w${size}@${o}`),
    read64: (o) => (seen.push(`r8@${o}`), 0x1122_3344_5566_7788n),
    write64: (o, v) => void seen.push(`w8@${o}=${v.toString(16)}`),
  };
  const root = MemoryRegion.container('system', 2 ** 32);
  root.addSubregion(DEV, MemoryRegion.mmio('dev8', PAGE_SIZE, ops, { minAccess: 4, maxAccess: 8 }));
  root.addSubregion(HOLE, MemoryRegion.mmio('dev4', PAGE_SIZE, ops, { maxAccess: 4 }));
  const as = new AddressSpace('sys', root);
  t.equal(as.read64(DEV + 8), 0x1122_3344_5566_7788n);
  as.write64(DEV + 16, 0xaabb_ccdd_0000_0001n);
  t.same(seen, ['r8@8', 'w8@16=aabbccdd00000001'], 'one call each');
  seen.length = 0;
  t.equal(as.read64(HOLE), 0xffff_ffff_ffff_ffffn, 'a region whose rules refuse 8 bytes: all ones');
  as.write64(HOLE, 1n);
  t.same(seen, [], 'and no handler call');
});

t.test('MMIO accesses smaller than minAccess read all-ones, drop writes and trace mem.invalid-access', async (t) => {
  const { as, calls, events } = fixture({ minAccess: 4 });
  t.equal(as.read8(DEV), 0xff);
  t.equal(as.read16(DEV + 2), 0xffff);
  t.doesNotThrow(() => as.write8(DEV + 1, 1));
  as.write16(DEV + 2, 1);
  t.same(calls, [], 'the handler never saw a refused access');
  t.same(
    events.map((e) => [e.name, e.source, e.args]),
    [
      ['mem.invalid-access', 'sys', { region: 'dev', offset: 0, size: 1, write: false }],
      ['mem.invalid-access', 'sys', { region: 'dev', offset: 2, size: 2, write: false }],
      ['mem.invalid-access', 'sys', { region: 'dev', offset: 1, size: 1, write: true }],
      ['mem.invalid-access', 'sys', { region: 'dev', offset: 2, size: 2, write: true }],
    ],
  );
  t.equal(as.read32(DEV + 4), 0x4000_0004, 'an allowed access still works');
});

t.test('misaligned MMIO accesses are refused unless the region accepts unaligned ones', async (t) => {
  const strict = fixture();
  t.equal(strict.as.read32(DEV + 2), 0xffffffff);
  strict.as.write16(DEV + 1, 0x1234);
  t.same(strict.calls, []);
  t.equal(strict.events.filter((e) => e.name === 'mem.invalid-access').length, 2);
  const loose = fixture({ unaligned: true });
  t.equal(loose.as.read32(DEV + 2), 0x4000_0002);
  loose.as.write16(DEV + 1, 0x1234);
  t.same(loose.calls, [
    ['r', 2, 4],
    ['w', 1, 2, 0x1234],
  ]);
  t.same(loose.events, []);
});

t.test('8-byte MMIO accesses obey the same size and alignment rules for reads and writes', async (t) => {
  // A 32-bit register file: an 8-byte access is larger than it accepts.
  const narrow = fixture({ maxAccess: 4 });
  t.equal(narrow.as.read64(DEV + 8), 0xffffffffffffffffn, 'read64 refused by maxAccess 4');
  narrow.as.write64(DEV + 8, 1n);
  t.same(narrow.calls, [], 'neither half reaches the handler');
  t.same(
    narrow.events.map((e) => [e.args]),
    [[{ region: 'dev', offset: 8, size: 8, write: false }], [{ region: 'dev', offset: 8, size: 8, write: true }]],
  );
  // Default rules: an 8-byte access must be 8-byte aligned.
  const d = fixture();
  t.equal(d.as.read64(DEV + 4), 0xffffffffffffffffn, 'read64 at a 4-but-not-8-aligned offset refused');
  d.as.write64(DEV + 4, 1n);
  t.same(d.calls, []);
  // A 64-bit-only register file accepts 8-byte accesses (still split for the handler).
  const wide = fixture({ minAccess: 8 });
  t.equal(wide.as.read64(DEV + 8), (0x4000_000cn << 32n) | 0x4000_0008n);
  t.equal(wide.as.read32(DEV + 8), 0xffffffff, 'a 4-byte access is below its minAccess');
});

t.test('accesses to nothing read all-ones, drop writes, trace mem.unassigned and never throw', async (t) => {
  const { as, events, ram } = fixture();
  t.equal(as.read8(HOLE), 0xff);
  t.equal(as.read16(HOLE), 0xffff);
  t.equal(as.read32(HOLE), 0xffffffff);
  t.equal(as.read64(HOLE), 0xffffffffffffffffn);
  t.doesNotThrow(() => {
    as.write8(HOLE, 0);
    as.write16(HOLE, 0);
    as.write32(HOLE, 0);
    as.write64(HOLE, 0n);
  });
  t.equal(ram.residentFrames, 0);
  t.same(
    events.map((e) => [e.name, e.source, e.args]),
    [
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 1, write: false }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 2, write: false }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 4, write: false }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 8, write: false }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 1, write: true }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 2, write: true }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 4, write: true }],
      ['mem.unassigned', 'sys', { as: 'sys', addr: HOLE, size: 8, write: true }],
    ],
    'one event per access, with its address, size and direction',
  );
});

t.test('accesses beyond the end of the root, or at negative addresses, are unassigned too', async (t) => {
  const { as, events } = fixture();
  const buf = new Uint8Array(64);
  t.equal(as.readInto(2 ** 32 - 16, buf), MEMTX_DECODE_ERROR);
  t.ok(buf.every((b) => b === 0xff));
  t.equal(as.read32(2 ** 40), 0xffffffff);
  t.equal(as.read8(-1), 0xff);
  t.same(
    events.map((e) => e.args),
    [
      { as: 'sys', addr: 2 ** 32 - 16, size: 64, write: false },
      { as: 'sys', addr: 2 ** 40, size: 4, write: false },
      { as: 'sys', addr: -1, size: 1, write: false },
    ],
    'a bulk access to nothing is one event, even past the end of the space',
  );
});

t.test('read32Checked returns the value, or -1 when nothing decodes or the region refuses', async (t) => {
  const { as, ram } = fixture({ minAccess: 4 });
  ram.write32(0x100, 0x80000001);
  t.equal(as.read32Checked(0x100), 0x80000001, 'RAM value (top bit set, still positive)');
  t.equal(as.read32Checked(HOLE), -1, 'unassigned');
  t.equal(as.read32Checked(0xfffe), -1, 'straddling the end of RAM into nothing');
  t.equal(as.read32Checked(DEV + 8), 0x4000_0008, 'MMIO value');
  t.equal(as.read32Checked(DEV + 2), -1, 'misaligned u32 the MMIO region refuses');
  t.equal(as.read32(DEV + 2), 0xffffffff, '... as read32 refuses it');
  // Default rules (any size 1..8, aligned): the misaligned u32 is refused as a
  // whole, not quietly served as two u16 reads.
  const d = fixture();
  t.equal(d.as.read32Checked(DEV + 2), -1, 'misaligned u32 under default rules');
  t.same(d.calls, [], 'and the handler was not called');
  t.equal(d.events.length, 1, 'one mem.invalid-access event');
});

t.test('a bulk read spanning RAM, a hole and RAM again fills the hole with all-ones and reports DECODE_ERROR', async (t) => {
  const ramA = new GuestRam(PAGE_SIZE);
  const ramB = new GuestRam(PAGE_SIZE);
  const tracer = new Tracer();
  const ev: TraceRecord[] = [];
  tracer.on('mem.unassigned', (r) => ev.push(r));
  const root = MemoryRegion.container('root', 0x10000);
  root.addSubregion(0x1000, MemoryRegion.ram('a', ramA));
  root.addSubregion(0x3000, MemoryRegion.ram('b', ramB));
  const as = new AddressSpace('as', root, tracer);
  ramA.fill(0, 0xaa, PAGE_SIZE);
  ramB.fill(0, 0xbb, PAGE_SIZE);
  const dst = new Uint8Array(PAGE_SIZE + 8);
  t.equal(as.readInto(0x2000 - 4, dst), MEMTX_DECODE_ERROR);
  t.same([...dst.subarray(0, 4)], [0xaa, 0xaa, 0xaa, 0xaa]);
  t.ok(dst.subarray(4, 4 + PAGE_SIZE).every((b) => b === 0xff));
  t.same([...dst.subarray(PAGE_SIZE + 4)], [0xbb, 0xbb, 0xbb, 0xbb]);
  t.same(ev.map((e) => e.args), [{ as: 'as', addr: 0x2000, size: PAGE_SIZE, write: false }]);
  // writes: the RAM parts land, the hole is dropped
  const src = new Uint8Array(PAGE_SIZE + 8).fill(0x11);
  t.equal(as.writeFrom(0x2000 - 4, src), MEMTX_DECODE_ERROR);
  t.equal(ramA.read32(PAGE_SIZE - 4), 0x11111111);
  t.equal(ramB.read32(0), 0x11111111);
  t.equal(ramB.read8(4), 0xbb);
  t.equal(as.readInto(0x1000, new Uint8Array(PAGE_SIZE)), MEMTX_OK);
});

t.test('a scalar access that straddles RAM and MMIO reaches both, byte-exactly', async (t) => {
  const ram = new GuestRam(PAGE_SIZE);
  const dev = recorder();
  const root = MemoryRegion.container('root', 0x10000);
  root.addSubregion(0, MemoryRegion.ram('ram', ram));
  root.addSubregion(PAGE_SIZE, MemoryRegion.mmio('dev', 0x100, dev.ops));
  const as = new AddressSpace('as', root);
  as.write32(PAGE_SIZE - 2, 0xa1b2c3d4);
  t.equal(ram.read16(PAGE_SIZE - 2), 0xc3d4);
  t.same(dev.calls, [['w', 0, 2, 0xa1b2]]);
});

t.test('a bulk MMIO access uses the widest aligned accesses the region accepts', async (t) => {
  const { as, calls } = fixture();
  const dst = new Uint8Array(11);
  t.equal(as.readInto(DEV + 1, dst), MEMTX_OK);
  t.same(calls, [
    ['r', 1, 1],
    ['r', 2, 2],
    ['r', 4, 4],
    ['r', 8, 4],
  ]);
  t.same([...dst.subarray(0, 3)], [0x01, 0x02, 0x00], 'each chunk contributes its own little-endian bytes');
  calls.length = 0;
  t.equal(as.writeFrom(DEV + 6, Uint8Array.of(1, 2, 3, 4, 5, 6, 7)), MEMTX_OK);
  t.same(calls, [
    ['w', 6, 2, 0x0201],
    ['w', 8, 4, 0x06050403],
    ['w', 12, 1, 0x07],
  ]);
});

t.test('a bulk MMIO access with parts the region refuses reports DEVICE_ERROR and traces each refused part', async (t) => {
  const { as, calls, events } = fixture({ minAccess: 4 });
  const dst = new Uint8Array(6);
  t.equal(as.readInto(DEV + 2, dst), MEMTX_DEVICE_ERROR);
  t.same([...dst], [0xff, 0xff, 0x04, 0x00, 0x00, 0x40], 'refused bytes read all-ones; the aligned u32 is read');
  t.same(calls, [['r', 4, 4]]);
  t.same(
    events.map((e) => [e.name, e.args]),
    [
      ['mem.invalid-access', { region: 'dev', offset: 2, size: 1, write: false }],
      ['mem.invalid-access', { region: 'dev', offset: 3, size: 1, write: false }],
    ],
  );
  events.length = 0;
  calls.length = 0;
  t.equal(as.writeFrom(DEV + 2, new Uint8Array(6)), MEMTX_DEVICE_ERROR);
  t.same(calls, [['w', 4, 4, 0]]);
  t.equal(events.length, 2);
});

t.test('overlays: a higher-priority MMIO hides RAM until it is disabled or moved', async (t) => {
  const { as, root, ram } = fixture();
  ram.write32(0x4000, 0x12345678);
  const dev = recorder();
  const bar = MemoryRegion.mmio('bar', PAGE_SIZE, dev.ops);
  root.addSubregion(0x4000, bar, 1);
  t.equal(as.read32(0x4000), 0x4000_0000, 'served by the BAR');
  bar.setEnabled(false);
  t.equal(as.read32(0x4000), 0x12345678, 'RAM shows through the disabled BAR');
  bar.setEnabled(true);
  t.equal(as.read32(0x4000), 0x4000_0000);
  bar.setAddress(0x8000_0000);
  t.equal(as.read32(0x4000), 0x12345678, 'RAM again after the BAR moved away');
  t.equal(as.read32(0x8000_0004), 0x4000_0004, 'the BAR at its new address');
  root.removeSubregion(bar);
  t.equal(as.read32(0x8000_0004), 0xffffffff, 'nothing after the BAR is removed');
});

t.test('an alias of RAM is the same memory at another address', async (t) => {
  const { as, root } = fixture();
  const ramRegion = root.subregions().find((s) => s.region.kind === 'ram')!.region;
  root.addSubregion(0x4000_0000, MemoryRegion.alias('ram-hi', ramRegion, 0x1000, 0x1000));
  as.write32(0x4000_0010, 0x5555aaaa);
  t.equal(as.read32(0x1010), 0x5555aaaa);
  t.equal(as.read32(0x4000_1000), 0xffffffff, 'past the alias window');
});

t.test('regions cannot be added twice, into a non-container or at a bad address', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  const leaf = MemoryRegion.mmio('m', 0x10, recorder().ops);
  root.addSubregion(0, leaf);
  t.throws(() => root.addSubregion(0x10, leaf));
  t.throws(() => leaf.addSubregion(0, MemoryRegion.container('x', 1)));
  t.throws(() => root.addSubregion(-1, MemoryRegion.container('y', 1)), RangeError);
  t.throws(() => MemoryRegion.container('z', 0), RangeError);
});

// ---------------------------------------------------------------------------
// Property: an AddressSpace of two RAM regions and an MMIO region behaves like
// one byte map, with holes reading all-ones and dropping writes.

const RAM_A = { base: 0x0000, size: 0x3000 };
const MMIO = { base: 0x3000, size: 0x100 };
const RAM_B = { base: 0x4000, size: 0x2000, blockOffset: 0x1000 };
const SPACE = 0x8000;
const EDGES = [0, 0x1000, 0x2000, 0x3000, 0x3100, 0x4000, 0x5000, 0x6000, SPACE];

const arbAddr = fc.oneof(
  fc.tuple(fc.constantFrom(...EDGES), fc.integer({ min: -9, max: 9 })).map(([e, d]) => e + d),
  fc.integer({ min: 0, max: SPACE + 16 }),
);

type AsOp =
  | { k: 'w'; size: 1 | 2 | 4; addr: number; v: number }
  | { k: 'w64'; addr: number; v: bigint }
  | { k: 'wb'; addr: number; data: Uint8Array }
  | { k: 'r'; size: 1 | 2 | 4 | 8; addr: number }
  | { k: 'rc'; addr: number }
  | { k: 'rb'; addr: number; len: number };

const arbAsOp: fc.Arbitrary<AsOp> = fc.oneof(
  fc.record({ k: fc.constant('w' as const), size: fc.constantFrom(1 as const, 2 as const, 4 as const), addr: arbAddr, v: fc.nat({ max: 0xffffffff }) }),
  fc.record({ k: fc.constant('w64' as const), addr: arbAddr, v: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ k: fc.constant('wb' as const), addr: arbAddr, data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ k: fc.constant('r' as const), size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const), addr: arbAddr }),
  fc.record({ k: fc.constant('rc' as const), addr: arbAddr }),
  fc.record({ k: fc.constant('rb' as const), addr: arbAddr, len: fc.integer({ min: 0, max: 300 }) }),
);

const inside = (r: { base: number; size: number }, a: number) => a >= r.base && a < r.base + r.size;

class SpaceModel {
  bytes = new Map<number, number>();
  decoded(a: number): boolean {
    return inside(RAM_A, a) || inside(MMIO, a) || inside(RAM_B, a);
  }
  write(a: number, bs: ArrayLike<number>): void {
    for (let i = 0; i < bs.length; i++) if (this.decoded(a + i)) this.bytes.set(a + i, bs[i]! & 0xff);
  }
  read(a: number, n: number): number[] {
    return Array.from({ length: n }, (_, i) => (this.decoded(a + i) ? this.bytes.get(a + i) ?? 0 : 0xff));
  }
  allDecoded(a: number, n: number): boolean {
    for (let i = 0; i < n; i++) if (!this.decoded(a + i)) return false;
    return true;
  }
}
const le = (bs: number[]) => bs.reduceRight((acc, b) => acc * 256 + b, 0);
const leBig = (bs: number[]) => bs.reduceRight((acc, b) => (acc << 8n) | BigInt(b), 0n);
const bytesOf = (v: number | bigint, n: number) =>
  Array.from({ length: n }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));

t.test('an address space of two RAM regions and an MMIO region matches a byte-map reference model', async (t) => {
  fc.assert(
    fc.property(fc.array(arbAsOp, { minLength: 1, maxLength: 50 }), (ops) => {
      const tracer = new Tracer();
      let unassignedBytes = 0;
      let invalid = 0;
      tracer.on('mem.unassigned', (r) => (unassignedBytes += r.args.size));
      tracer.on('mem.invalid-access', () => invalid++);
      const blockA = new GuestRam(RAM_A.size);
      const blockB = new GuestRam(0x4000);
      // MMIO device backed by its own byte store (accepts any size, any alignment)
      const regs = new Map<number, number>();
      const ops0: MmioOps = {
        read: (off, size) => le(Array.from({ length: size }, (_, i) => regs.get(off + i) ?? 0)),
        write: (off, size, v) => {
          for (let i = 0; i < size; i++) regs.set(off + i, (v >>> (8 * i)) & 0xff);
        },
      };
      const root = MemoryRegion.container('root', SPACE);
      root.addSubregion(RAM_A.base, MemoryRegion.ram('a', blockA));
      root.addSubregion(MMIO.base, MemoryRegion.mmio('m', MMIO.size, ops0, { unaligned: true }));
      root.addSubregion(RAM_B.base, MemoryRegion.ram('b', blockB, RAM_B.blockOffset, RAM_B.size));
      const as = new AddressSpace('as', root, tracer);
      const m = new SpaceModel();
      let expectUnassigned = 0;
      const holes = (a: number, n: number) => {
        let k = 0;
        for (let i = 0; i < n; i++) if (!m.decoded(a + i)) k++;
        return k;
      };
      for (const op of ops) {
        switch (op.k) {
          case 'w':
            if (op.size === 1) as.write8(op.addr, op.v);
            else if (op.size === 2) as.write16(op.addr, op.v);
            else as.write32(op.addr, op.v);
            m.write(op.addr, bytesOf(op.v, op.size));
            expectUnassigned += holes(op.addr, op.size);
            break;
          case 'w64':
            as.write64(op.addr, op.v);
            m.write(op.addr, bytesOf(op.v, 8));
            expectUnassigned += holes(op.addr, 8);
            break;
          case 'wb': {
            const rc = as.writeFrom(op.addr, op.data);
            if (rc !== (m.allDecoded(op.addr, op.data.length) ? MEMTX_OK : MEMTX_DECODE_ERROR)) return false;
            m.write(op.addr, op.data);
            expectUnassigned += holes(op.addr, op.data.length);
            break;
          }
          case 'r': {
            const want = m.read(op.addr, op.size);
            if (op.size === 8) {
              if (as.read64(op.addr) !== leBig(want)) return false;
            } else {
              const got = op.size === 1 ? as.read8(op.addr) : op.size === 2 ? as.read16(op.addr) : as.read32(op.addr);
              if (got !== le(want)) return false;
            }
            expectUnassigned += holes(op.addr, op.size);
            break;
          }
          case 'rc': {
            const want = m.allDecoded(op.addr, 4) ? le(m.read(op.addr, 4)) : -1;
            if (as.read32Checked(op.addr) !== want) return false;
            expectUnassigned += holes(op.addr, 4);
            break;
          }
          case 'rb': {
            const dst = new Uint8Array(op.len);
            const rc = as.readInto(op.addr, dst);
            if (rc !== (m.allDecoded(op.addr, op.len) ? MEMTX_OK : MEMTX_DECODE_ERROR)) return false;
            const want = m.read(op.addr, op.len);
            if (!want.every((b, i) => dst[i] === b)) return false;
            expectUnassigned += holes(op.addr, op.len);
            break;
          }
        }
        // every byte that hit nothing is covered by a mem.unassigned event, and only those
        if (unassignedBytes !== expectUnassigned) return false;
      }
      // the RAM blocks hold exactly what the model says, at the right offsets
      for (let a = 0; a < RAM_A.size; a++) if (blockA.read8(a) !== (m.bytes.get(RAM_A.base + a) ?? 0)) return false;
      for (let a = 0; a < RAM_B.size; a++) {
        if (blockB.read8(RAM_B.blockOffset + a) !== (m.bytes.get(RAM_B.base + a) ?? 0)) return false;
      }
      if (blockB.read8(0) !== 0 || blockB.read8(0x3fff) !== 0) return false;
      return invalid === 0;
    }),
    { numRuns: 150 },
  );
  t.pass('model agrees');
});

t.test('write64Parts(addr, lo, hi) is write64 of hi * 2^32 + lo: in RAM, across a RAM page, to MMIO (split or whole) and to nothing', async (t) => {
  const { as, ram, calls, events } = fixture();
  as.write64Parts(0x2000, 0x05060708, 0x01020304);
  t.equal(ram.read64(0x2000), 0x0102030405060708n);
  as.write64Parts(0x3ffc, 0x11223344, 0xaabbccdd);
  t.equal(as.read64(0x3ffc), 0xaabbccdd11223344n, 'across a frame boundary');
  as.write64Parts(DEV + 0x18, 0x55667788, 0x11223344);
  t.same(calls, [
    ['w', 0x18, 4, 0x55667788],
    ['w', 0x1c, 4, 0x11223344],
  ], 'split into two 4-byte writes, low half first, as write64');
  as.write64Parts(0x2008, -1, -2);
  t.equal(ram.read64(0x2008), 0xfffffffeffffffffn, 'halves taken as u32');
  const before = events.length;
  as.write64Parts(HOLE, 1, 2);
  t.ok(events.slice(before).some((e) => e.name === 'mem.unassigned'), 'a write to nothing is traced and dropped');
  const seen: string[] = [];
  const root = MemoryRegion.container('system', 2 ** 32);
  root.addSubregion(DEV, MemoryRegion.mmio('dev8', PAGE_SIZE, { read: () => 0, write: () => {}, write64: (o, v) => void seen.push(`w8@${o}=${v.toString(16)}`) }, { minAccess: 4, maxAccess: 8 }));
  new AddressSpace('sys', root).write64Parts(DEV + 16, 1, 0xaabbccdd);
  t.same(seen, ['w8@16=aabbccdd00000001'], 'a handler with write64 takes it whole');
});
