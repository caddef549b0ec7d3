import t from 'tap';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { BareFunction, newBoard } from './helpers.ts';

t.test('writing all-ones to a 32-bit memory BAR reads back its size mask and type bits', async (t) => {
  const { board, cfg } = newBoard();
  board.rc.plug(new BareFunction('f', {}, [{ kind: 'mem32', size: 0x4000 }, { kind: 'mem32', size: 0x100, prefetchable: true }]), 1);
  const df = 1 << 3;
  cfg.write(0, df, CFG.BAR0, 4, 0xffffffff);
  t.equal(cfg.read(0, df, CFG.BAR0, 4), 0xffffc000);
  cfg.write(0, df, CFG.BAR0 + 4, 4, 0xffffffff);
  t.equal(cfg.read(0, df, CFG.BAR0 + 4, 4), 0xffffff08, 'prefetchable bit 3 is read-only 1');
});

t.test('a 64-bit BAR sizes across both dwords, including sizes above 4 GiB', async (t) => {
  const { board, cfg } = newBoard();
  board.rc.plug(new BareFunction('f', {}, [{ kind: 'mem64', size: 0x1000 }, { kind: 'mem64', size: 2 ** 33, prefetchable: true }]), 1);
  const df = 1 << 3;
  for (let i = 0; i < 4; i++) cfg.write(0, df, CFG.BAR0 + 4 * i, 4, 0xffffffff);
  t.equal(cfg.read(0, df, CFG.BAR0, 4), 0xfffff004, 'type 10b = 64-bit');
  t.equal(cfg.read(0, df, CFG.BAR0 + 4, 4), 0xffffffff);
  t.equal(cfg.read(0, df, CFG.BAR0 + 8, 4), 0x0000000c, 'no writable low address bits for 8 GiB');
  t.equal(cfg.read(0, df, CFG.BAR0 + 12, 4), 0xfffffffe);
});

t.test('an I/O BAR has bit 0 set and sizes in its low 16 bits', async (t) => {
  const { board, cfg } = newBoard();
  board.rc.plug(new BareFunction('f', {}, [{ kind: 'io', size: 0x20 }]), 1);
  cfg.write(0, 8, CFG.BAR0, 4, 0xffffffff);
  t.equal(cfg.read(0, 8, CFG.BAR0, 4), 0xffffffe1);
});

t.test('a BAR decodes only while Memory Space Enable is set, and moves when reprogrammed', async (t) => {
  const { board, cfg } = newBoard();
  const f = new BareFunction('f', {}, [{ kind: 'mem32', size: 0x1000 }]);
  board.rc.plug(f, 1);
  cfg.write(0, 8, CFG.BAR0, 4, 0xc000_0000);
  board.sysmem.write32(0xc000_0010, 7);
  t.equal(f.barData.get(0)![4], 0, 'not decoded with memory decoding off');
  t.equal(board.sysmem.read32(0xc000_0010), 0xffffffff);
  cfg.write(0, 8, CFG.COMMAND, 2, COMMAND.MEMORY);
  board.sysmem.write32(0xc000_0010, 7);
  t.equal(f.barData.get(0)![4], 7);
  cfg.write(0, 8, CFG.BAR0, 4, 0xc010_0000);
  t.equal(board.sysmem.read32(0xc000_0010), 0xffffffff, 'old address no longer decodes');
  t.equal(board.sysmem.read32(0xc010_0010), 7);
});

t.test('bad BAR definitions are device bugs and throw at construction', async (t) => {
  t.throws(() => new BareFunction('f', {}, [{ kind: 'mem32', size: 0x1800 }]));
  t.throws(() => new BareFunction('f', {}, [{ kind: 'mem32', size: 8 }]));
  t.throws(() => new BareFunction('f', {}, [{ kind: 'io', size: 512 }]));
});
