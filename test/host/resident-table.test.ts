/**
 * An mm's resident-page table (src/host/resident-table.ts): the same answers
 * as a map of unit to head, and a leaf (2 MiB of VA) is held only while a
 * unit in it is resident, so a long run over ever new VA does not grow.
 */
import t from 'tap';
import fc from 'fast-check';
import { ResidentTable } from '../../src/host/resident-table.ts';

const MIB2 = 2 ** 21;

t.test('answers as a map of unit to head does', (t) => {
  // Units from a few leaves, low and high in the 57-bit VA space, so sets and deletes collide.
  const unit = fc.tuple(fc.constantFrom(0, 1, 7, 2 ** 35 - 1), fc.integer({ min: 0, max: 511 })).map(([leaf, slot]) => leaf * MIB2 + slot * 4096);
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), unit, head: fc.integer({ min: 0, max: 2 ** 40 }).map((h) => h * 4096) }),
    fc.record({ kind: fc.constant('delete' as const), unit }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    const table = new ResidentTable();
    const model = new Map<number, number>();
    for (const o of ops) {
      if (o.kind === 'set') {
        table.set(o.unit, o.head);
        model.set(o.unit, o.head);
      } else {
        if (table.delete(o.unit) !== model.delete(o.unit)) return false;
      }
      if (table.size !== model.size) return false;
    }
    for (const [u, h] of model) if (table.get(u) !== h || !table.has(u)) return false;
    const keys = [...table.keys()].sort((a, b) => a - b);
    const want = [...model.keys()].sort((a, b) => a - b);
    if (keys.join() !== want.join()) return false;
    // A leaf per 2 MiB with a resident unit, and no other.
    return table.leafCount === new Set(want.map((u) => Math.floor(u / MIB2))).size;
  }));
  t.end();
});

t.test('a leaf goes with its last unit, also the one at hand', (t) => {
  const table = new ResidentTable();
  table.set(0x20_0000, 0x1000);
  table.set(0x20_1000, 0x2000);
  t.equal(table.leafCount, 1);
  t.ok(table.delete(0x20_0000));
  t.equal(table.leafCount, 1, 'a unit is still resident in the leaf');
  t.ok(table.delete(0x20_1000));
  t.equal(table.leafCount, 0, 'the empty leaf is freed');
  t.equal(table.get(0x20_1000), undefined, 'the freed leaf is not found through the last-used shortcut');
  t.notOk(table.delete(0x20_1000));
  table.set(0x20_1000, 0x3000);
  t.equal(table.get(0x20_1000), 0x3000, 'a new leaf takes the unit again');
  t.equal(table.leafCount, 1);
  t.end();
});

t.test('mapping and unmapping over ever new VA keeps one leaf', (t) => {
  const table = new ResidentTable();
  let most = 0;
  for (let i = 0; i < 20_000; i++) {
    const va = i * 4096 * 64; // a new leaf every 8 units
    table.set(va, 0x1000);
    if (i > 0) table.delete((i - 1) * 4096 * 64);
    most = Math.max(most, table.leafCount);
  }
  t.equal(table.size, 1);
  t.ok(most <= 2, `at most two leaves at a time (saw ${most})`);
  t.end();
});

t.test('bad units and heads', (t) => {
  const table = new ResidentTable();
  t.throws(() => table.set(0x1234, 0x1000), RangeError);
  t.throws(() => table.set(0x1000, -1), RangeError);
  t.equal(table.get(0x1234), undefined);
  t.notOk(table.delete(0x1234));
  t.equal(table.leafCount, 0);
  t.end();
});
