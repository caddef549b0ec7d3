import t from 'tap';
import { PcieRootPort } from '../../src/pci/root-port.ts';
import { CFG } from '../../src/pci/header.ts';
import { BareFunction, newBoard } from './helpers.ts';

t.test('enumeration numbers buses below bridges and assigns every BAR inside the windows', async (t) => {
  const { board, cfg } = newBoard('q35-vtd');
  board.rc.plug(new BareFunction('a', {}, [{ kind: 'mem32', size: 0x4000 }, { kind: 'mem64', size: 0x10_0000, prefetchable: true }]), 1);
  const p1 = new PcieRootPort(board.rc, 'p1');
  board.rc.plug(p1, 2);
  const p2 = new PcieRootPort(board.rc, 'p2');
  p1.secondary.plug(p2, 0);
  const deep = new BareFunction('deep', {}, [{ kind: 'mem32', size: 0x1000 }]);
  p2.secondary.plug(deep, 3);
  const found = board.enumeratePci();
  t.same(found.map((f) => f.bdf), ['0000:00:01.0', '0000:00:02.0', '0000:01:00.0', '0000:02:03.0']);
  t.equal(p1.secondaryBus, 1);
  t.equal(p1.subordinateBus, 2);
  t.equal(p2.secondaryBus, 2);
  t.equal(deep.bdf, '0000:02:03.0');
  const a = found[0]!;
  t.same(a.bars.map((b) => [b.index, b.kind, b.size]), [[0, 'mem32', 0x4000], [1, 'mem64', 0x10_0000]]);
  const [lo, hi] = board.layout.mmio32;
  t.ok(a.bars[0]!.addr! >= lo && a.bars[0]!.addr! <= hi);
  t.ok(a.bars[1]!.addr! >= board.layout.mmio64[0], '64-bit prefetchable BAR in the high window');
  const deepBar = found[3]!.bars[0]!.addr!;
  const w1 = p1.memoryWindow()!;
  const w2 = p2.memoryWindow()!;
  t.ok(deepBar >= w2[0] && deepBar + 0xfff <= w2[1], 'inside the inner bridge window');
  t.ok(w2[0] >= w1[0] && w2[1] <= w1[1], 'inner window nested in the outer one');
  board.sysmem.write32(deepBar + 4, 0xdead);
  t.equal(deep.barData.get(0)![1], 0xdead, 'reachable through both bridges');
  t.equal(cfg.read(2, (3 << 3), CFG.VENDOR_ID, 2), 0x1234);
});

t.test('a BAR outside a bridge window is not reachable from the CPU', async (t) => {
  const { board, cfg } = newBoard('q35-vtd');
  const p = new PcieRootPort(board.rc, 'p');
  board.rc.plug(p, 2);
  const d = new BareFunction('d', {}, [{ kind: 'mem32', size: 0x1000 }]);
  p.secondary.plug(d, 0);
  board.enumeratePci();
  const w = p.memoryWindow()!;
  // Move the BAR above the window: the bridge must not forward it.
  const outside = w[1] + 1;
  cfg.write(1, 0, CFG.BAR0, 4, outside);
  board.sysmem.write32(outside, 1);
  t.equal(d.barData.get(0)![0], 0);
  t.equal(board.sysmem.read32(outside), 0xffffffff);
});
