import t from 'tap';
import fc from 'fast-check';
import { GuestRam } from '../../src/memory/guest-ram.ts';
import { MemoryRegion, type MmioOps } from '../../src/memory/memory-region.ts';
import { findRange, flatten, type FlatRange } from '../../src/memory/flat-view.ts';
import { AddressSpace } from '../../src/memory/address-space.ts';

const nullOps: MmioOps = { read: () => 0, write: () => {} };
const mmio = (name: string, size: number) => MemoryRegion.mmio(name, size, nullOps);
const ram = (name: string, size: number) => MemoryRegion.ram(name, new GuestRam(Math.ceil(size / 4096) * 4096), 0, size);

/** [start, end, region name, offset] of each flat range, for compact comparisons. */
const shape = (ranges: readonly FlatRange[]) => ranges.map((r) => [r.start, r.end, r.region.name, r.offset]);

/** Which region and offset serve `addr` (undefined for nothing). */
const who = (ranges: FlatRange[], addr: number) => {
  const r = findRange(ranges, addr);
  return r === undefined ? undefined : [r.region.name, r.offset + (addr - r.start)];
};

t.test('a lone leaf fills its extent and nothing else', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0x100, ram('a', 0x80));
  t.same(shape(flatten(root)), [[0x100, 0x180, 'a', 0]]);
  const f = flatten(root);
  t.equal(findRange(f, 0xff), undefined);
  t.equal(findRange(f, 0x180), undefined, 'end is exclusive');
  t.same(who(f, 0x17f), ['a', 0x7f]);
});

t.test('the higher priority wins where regions overlap; the lower shows around it', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0, ram('low', 0x400), 0);
  root.addSubregion(0x100, mmio('high', 0x100), 1);
  t.same(shape(flatten(root)), [
    [0, 0x100, 'low', 0],
    [0x100, 0x200, 'high', 0],
    [0x200, 0x400, 'low', 0x200],
  ]);
});

t.test('priority, not insertion order, decides: a higher-priority region added first still wins', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0x100, mmio('high', 0x100), 5);
  root.addSubregion(0, ram('low', 0x400), -1);
  t.same(who(flatten(root), 0x150), ['high', 0x50]);
  t.same(who(flatten(root), 0x250), ['low', 0x250]);
});

t.test('at equal priority the region added later wins', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0, mmio('first', 0x200));
  root.addSubregion(0x100, mmio('second', 0x200));
  t.same(shape(flatten(root)), [
    [0, 0x100, 'first', 0],
    [0x100, 0x300, 'second', 0],
  ]);
  t.same(
    root.subregions().map((s) => s.region.name),
    ['second', 'first'],
    'subregions() lists them in the order they hide each other',
  );
});

t.test('a disabled region is invisible and lets the one below show through', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0, ram('ram', 0x1000), 0);
  const bar = mmio('bar', 0x100);
  root.addSubregion(0x800, bar, 1);
  t.same(who(flatten(root), 0x810), ['bar', 0x10]);
  bar.setEnabled(false);
  t.same(shape(flatten(root)), [[0, 0x1000, 'ram', 0]]);
  bar.setEnabled(true);
  t.same(who(flatten(root), 0x810), ['bar', 0x10]);
});

t.test('a disabled container hides all of its subregions', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  const c = MemoryRegion.container('c', 0x400);
  c.addSubregion(0, mmio('x', 0x100));
  root.addSubregion(0x200, c);
  c.setEnabled(false);
  t.same(flatten(root), []);
});

t.test('a moved region (setAddress) serves its new place and frees the old one', async (t) => {
  const root = MemoryRegion.container('root', 0x10000);
  root.addSubregion(0, ram('ram', 0x4000), 0);
  const bar = mmio('bar', 0x1000);
  root.addSubregion(0x1000, bar, 1);
  bar.setAddress(0x8000);
  t.equal(bar.address, 0x8000);
  t.same(shape(flatten(root)), [
    [0, 0x4000, 'ram', 0],
    [0x8000, 0x9000, 'bar', 0],
  ]);
});

t.test('nested containers add their offsets and clip subregions to their own extent', async (t) => {
  const root = MemoryRegion.container('root', 0x10000);
  const outer = MemoryRegion.container('outer', 0x2000);
  const inner = MemoryRegion.container('inner', 0x800);
  inner.addSubregion(0x700, mmio('leaf', 0x400)); // sticks 0x300 out of inner
  outer.addSubregion(0x1000, inner);
  root.addSubregion(0x4000, outer);
  t.same(shape(flatten(root)), [[0x5700, 0x5800, 'leaf', 0]], 'only the part inside inner is visible');
});

t.test("a container's own priority ranks its whole subtree, but its empty parts are transparent", async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0, ram('ram', 0x1000), 1);
  const c = MemoryRegion.container('c', 0x1000);
  c.addSubregion(0x100, mmio('dev', 0x100), 100); // high inside c, but c is low in root
  root.addSubregion(0, c, 0);
  t.same(shape(flatten(root)), [[0, 0x1000, 'ram', 0]], 'the subtree of a lower-priority container is hidden');
  root.removeSubregion(c);
  root.addSubregion(0, c, 2);
  t.same(shape(flatten(root)), [
    [0, 0x100, 'ram', 0],
    [0x100, 0x200, 'dev', 0],
    [0x200, 0x1000, 'ram', 0x200],
  ]);
});

t.test('an alias shows a window of its target at the alias offset', async (t) => {
  const root = MemoryRegion.container('root', 0x10000);
  const r = ram('ram', 0x4000);
  root.addSubregion(0, r);
  root.addSubregion(0x8000, MemoryRegion.alias('hi', r, 0x1000, 0x800));
  t.same(shape(flatten(root)), [
    [0, 0x4000, 'ram', 0],
    [0x8000, 0x8800, 'ram', 0x1000],
  ]);
});

t.test('an alias of a container shows what the container shows, with its priorities', async (t) => {
  const root = MemoryRegion.container('root', 0x10000);
  const c = MemoryRegion.container('c', 0x1000);
  c.addSubregion(0, ram('r', 0x1000), 0);
  c.addSubregion(0x400, mmio('m', 0x100), 1);
  root.addSubregion(0x2000, MemoryRegion.alias('a', c, 0x300, 0x300));
  t.same(shape(flatten(root)), [
    [0x2000, 0x2100, 'r', 0x300],
    [0x2100, 0x2200, 'm', 0],
    [0x2200, 0x2300, 'r', 0x500],
  ]);
});

t.test('changes to an alias target re-render every address space that shows it', async (t) => {
  const root = MemoryRegion.container('root', 0x10000);
  const c = MemoryRegion.container('c', 0x1000); // not in root: seen only through the alias
  const m = mmio('m', 0x100);
  c.addSubregion(0, m);
  root.addSubregion(0x4000, MemoryRegion.alias('a', c, 0, 0x1000));
  const as = new AddressSpace('as', root);
  t.equal(as.lookup(0x4010)?.region.name, 'm');
  m.setAddress(0x800);
  t.equal(as.lookup(0x4010), undefined, 'old place is empty after the target moved');
  t.equal(as.lookup(0x4810)?.region.name, 'm');
});

t.test('the root clips everything to its own size', async (t) => {
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0xf00, mmio('m', 0x1000));
  t.same(shape(flatten(root)), [[0xf00, 0x1000, 'm', 0]]);
});

// ---------------------------------------------------------------------------
// Property: flatten() serves each address from the region a brute-force
// per-address resolution picks (highest priority, then last added; disabled
// invisible; aliases followed; containers clip).

interface Spec {
  kind: 'ram' | 'mmio' | 'container' | 'alias';
  addr: number;
  size: number;
  priority: number;
  enabled: boolean;
  children: Spec[];
  aliasTarget: number; // index into the pool of standalone targets
  aliasOffset: number;
}

const ROOT = 64;
const arbEnabled = fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });
const arbLeaf: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constantFrom('ram' as const, 'mmio' as const, 'alias' as const),
  addr: fc.integer({ min: 0, max: ROOT - 1 }),
  size: fc.integer({ min: 1, max: 24 }),
  priority: fc.integer({ min: -1, max: 2 }),
  enabled: arbEnabled,
  children: fc.constant([] as Spec[]),
  aliasTarget: fc.nat({ max: 2 }),
  aliasOffset: fc.nat({ max: 12 }),
});
const arbContainer: fc.Arbitrary<Spec> = fc.record({
  kind: fc.constant('container' as const),
  addr: fc.integer({ min: 0, max: ROOT - 1 }),
  size: fc.integer({ min: 1, max: 40 }),
  priority: fc.integer({ min: -1, max: 2 }),
  enabled: arbEnabled,
  children: fc.array(arbLeaf, { maxLength: 3 }),
  aliasTarget: fc.constant(0),
  aliasOffset: fc.constant(0),
});
const arbTree = fc.array(fc.oneof({ weight: 3, arbitrary: arbLeaf }, { weight: 1, arbitrary: arbContainer }), {
  minLength: 1,
  maxLength: 6,
});

/** The reference: an independent record of the tree, resolved address by address. */
interface RefNode {
  mr: MemoryRegion;
  kind: Spec['kind'];
  size: number;
  enabled: boolean;
  aliasOf?: RefNode;
  aliasOffset: number;
  subs: { node: RefNode; addr: number; priority: number; order: number }[];
}

function resolve(n: RefNode, a: number): [MemoryRegion, number] | undefined {
  if (!n.enabled || a < 0 || a >= n.size) return undefined;
  if (n.kind === 'ram' || n.kind === 'mmio') return [n.mr, a];
  if (n.kind === 'alias') return resolve(n.aliasOf!, a + n.aliasOffset);
  const order = [...n.subs].sort((x, y) => y.priority - x.priority || y.order - x.order);
  for (const s of order) {
    const r = resolve(s.node, a - s.addr);
    if (r !== undefined) return r;
  }
  return undefined;
}

function build(specs: Spec[]) {
  let order = 0;
  let id = 0;
  // Standalone alias targets: a RAM leaf, an MMIO leaf, and a small container with two overlapping leaves.
  const mkLeaf = (kind: 'ram' | 'mmio', size: number): RefNode => {
    const name = `${kind}${id++}`;
    const mr = kind === 'ram' ? ram(name, size) : mmio(name, size);
    return { mr, kind, size, enabled: true, aliasOffset: 0, subs: [] };
  };
  const tc: RefNode = { mr: MemoryRegion.container('tc', 16), kind: 'container', size: 16, enabled: true, aliasOffset: 0, subs: [] };
  for (const [addr, size, prio] of [[0, 16, 0], [4, 4, 1]] as const) {
    const leaf = mkLeaf('mmio', size);
    tc.mr.addSubregion(addr, leaf.mr, prio);
    tc.subs.push({ node: leaf, addr, priority: prio, order: order++ });
  }
  const targets = [mkLeaf('ram', 20), mkLeaf('mmio', 20), tc];

  const root: RefNode = { mr: MemoryRegion.container('root', ROOT), kind: 'container', size: ROOT, enabled: true, aliasOffset: 0, subs: [] };
  const all: { node: RefNode; parent: RefNode }[] = [];
  const place = (parent: RefNode, s: Spec) => {
    let node: RefNode;
    if (s.kind === 'alias') {
      const target = targets[s.aliasTarget]!;
      node = { mr: MemoryRegion.alias(`alias${id++}`, target.mr, s.aliasOffset, s.size), kind: 'alias', size: s.size, enabled: true, aliasOf: target, aliasOffset: s.aliasOffset, subs: [] };
    } else if (s.kind === 'container') {
      node = { mr: MemoryRegion.container(`c${id++}`, s.size), kind: 'container', size: s.size, enabled: true, aliasOffset: 0, subs: [] };
      for (const c of s.children) place(node, c);
    } else {
      node = mkLeaf(s.kind, s.size);
    }
    parent.mr.addSubregion(s.addr, node.mr, s.priority);
    parent.subs.push({ node, addr: s.addr, priority: s.priority, order: order++ });
    if (!s.enabled) {
      node.mr.setEnabled(false);
      node.enabled = false;
    }
    all.push({ node, parent });
  };
  for (const s of specs) place(root, s);
  return { root, all, targets };
}

/** Compare every address, starting at `first` (so a lookup cache primed there is exercised first). */
function agrees(root: RefNode, lookup: (a: number) => FlatRange | undefined, first = -2): boolean {
  const span = ROOT + 6;
  for (let k = 0; k < span; k++) {
    const a = ((first + 2 + k) % span) - 2;
    const want = resolve(root, a);
    const r = lookup(a);
    if (want === undefined) {
      if (r !== undefined) return false;
      continue;
    }
    if (r === undefined || r.region !== want[0] || r.offset + (a - r.start) !== want[1]) return false;
  }
  return true;
}

function wellFormed(ranges: readonly FlatRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (!(r.start < r.end) || r.start < 0 || r.end > ROOT) return false;
    if (r.region.kind !== 'ram' && r.region.kind !== 'mmio') return false;
    if (i > 0 && ranges[i - 1]!.end > r.start) return false;
  }
  return true;
}

t.test('flatten agrees with a brute-force per-address resolution on random region trees', async (t) => {
  fc.assert(
    fc.property(arbTree, (specs) => {
      const { root } = build(specs);
      const ranges = flatten(root.mr);
      return wellFormed(ranges) && agrees(root, (a) => findRange(ranges, a));
    }),
    { numRuns: 200 },
  );
  t.pass('flatten agrees');
});

type Mutation = (
  | { k: 'move'; which: number; addr: number }
  | { k: 'toggle'; which: number }
  | { k: 'target-toggle'; which: number }
) & { probe: number };

t.test('an AddressSpace follows moves and enable/disable anywhere in the tree, including alias targets', async (t) => {
  // `probe`: an address looked up just before the change and checked first after it (a stale lookup cache shows there).
  const probe = fc.integer({ min: 0, max: ROOT - 1 });
  const arbMut: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ k: fc.constant('move' as const), which: fc.nat(), addr: fc.integer({ min: 0, max: ROOT - 1 }), probe }),
    fc.record({ k: fc.constant('toggle' as const), which: fc.nat(), probe }),
    fc.record({ k: fc.constant('target-toggle' as const), which: fc.nat({ max: 3 }), probe }),
  );
  fc.assert(
    fc.property(arbTree, fc.array(arbMut, { maxLength: 8 }), (specs, muts) => {
      const { root, all, targets } = build(specs);
      const as = new AddressSpace('as', root.mr);
      if (!agrees(root, (a) => as.lookup(a))) return false;
      for (const m of muts) {
        as.lookup(m.probe);
        if (m.k === 'target-toggle') {
          // targets[2]'s children are leaves 0 and 1 of the standalone container
          const tc = targets[2]!;
          const n = m.which < 2 ? tc.subs[m.which]!.node : targets[m.which - 2]!;
          n.enabled = !n.enabled;
          n.mr.setEnabled(n.enabled);
        } else {
          const { node, parent } = all[m.which % all.length]!;
          if (m.k === 'move') {
            node.mr.setAddress(m.addr);
            parent.subs.find((s) => s.node === node)!.addr = m.addr;
          } else {
            node.enabled = !node.enabled;
            node.mr.setEnabled(node.enabled);
          }
        }
        if (!agrees(root, (a) => as.lookup(a), m.probe)) return false;
        if (!wellFormed(as.flatRanges())) return false;
      }
      return true;
    }),
    { numRuns: 150 },
  );
  t.pass('address space follows the tree');
});
