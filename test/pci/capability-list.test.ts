import t from 'tap';
import { CAP_LIST, CapabilityList } from '../../src/pci/capability-list.ts';
import { ConfigSpace, PCI_CONFIG_SIZE } from '../../src/pci/config-space.ts';
import { CFG, STATUS } from '../../src/pci/header.ts';

const make = (size?: number) => {
  const cfg = new ConfigSpace(size);
  return { cfg, list: new CapabilityList(cfg) };
};

/** Walk the standard list through software reads only, as a driver would. */
function walkStd(cfg: ConfigSpace): [number, number][] {
  const out: [number, number][] = [];
  if ((cfg.read(CFG.STATUS, 2) & STATUS.CAP_LIST) === 0) return out;
  for (let off = cfg.read(CFG.CAPABILITY_LIST, 1) & ~3; off !== 0 && out.length < 48; off = cfg.read(off + 1, 1) & ~3) {
    out.push([cfg.read(off, 1), off]);
  }
  return out;
}

function walkExt(cfg: ConfigSpace): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let off = 0x100; off !== 0 && out.length < 960; ) {
    const h = cfg.read(off, 4);
    if (h === 0) break;
    out.push([h & 0xffff, (h >>> 16) & 0xf, off]);
    off = (h >>> 20) & ~3;
  }
  return out;
}

t.test('an empty space has no capability list and a zero extended header', async (t) => {
  const { cfg, list } = make();
  t.equal(cfg.read(CFG.STATUS, 2) & STATUS.CAP_LIST, 0);
  t.equal(cfg.read(CAP_LIST.EXT_START, 4), 0);
  t.same(list.stdCaps(), []);
  t.same(list.extCaps(), []);
  t.equal(list.findStd(0x05), undefined);
  t.equal(list.findExt(0x0f), undefined);
});

t.test('standard capabilities chain from 0x34, dword aligned from 0x40', async (t) => {
  const { cfg, list } = make();
  const a = list.addStd(0x05, 10);
  const b = list.addStd(0x11, 12);
  const c = list.addStd(0x10, 0x3c);
  t.equal(a, 0x40);
  t.equal(b, 0x4c, '10 bytes rounded up to 12');
  t.equal(c, 0x58);
  t.not(cfg.read(CFG.STATUS, 2) & STATUS.CAP_LIST, 0, 'Status says a list exists');
  t.same(walkStd(cfg), [[0x05, 0x40], [0x11, 0x4c], [0x10, 0x58]]);
  t.equal(cfg.read(c + 1, 1), 0, 'the last next pointer ends the list');
  t.equal(list.findStd(0x11), 0x4c);
  t.equal(list.findStd(0x01), undefined);
});

t.test('the capability pointer, headers and Capabilities List bit ignore writes', async (t) => {
  const { cfg, list } = make();
  const a = list.addStd(0x05, 12);
  list.addStd(0x11, 12);
  cfg.write(CFG.CAPABILITY_LIST, 1, 0x80);
  cfg.write(a, 2, 0xffff);
  cfg.write(CFG.STATUS, 2, 0);
  t.same(walkStd(cfg), [[0x05, 0x40], [0x11, 0x4c]]);
  t.not(cfg.read(CFG.STATUS, 2) & STATUS.CAP_LIST, 0);
});

t.test('extended capabilities start at 0x100 and chain through next [31:20]', async (t) => {
  const { cfg, list } = make();
  const a = list.addExt(0x0f, 1, 8);
  const b = list.addExt(0x13, 1, 16);
  const c = list.addExt(0x1b, 2, 8);
  t.equal(a, 0x100);
  t.same(walkExt(cfg), [[0x0f, 1, 0x100], [0x13, 1, 0x108], [0x1b, 2, 0x118]]);
  t.equal(cfg.read(c, 4) >>> 20, 0, 'the last header has next = 0');
  t.equal(list.findExt(0x13), b);
  t.same(list.extCaps().map((e) => e.id), [0x0f, 0x13, 0x1b]);
  cfg.write(a, 4, 0);
  t.equal(list.findExt(0x1b), c, 'extended headers are read-only');
});

t.test('running out of space is a device-definition bug and throws', async (t) => {
  const { list } = make();
  t.throws(() => list.addStd(0x09, 0xc1), RangeError);
  list.addStd(0x09, 0xbc);
  t.throws(() => list.addStd(0x09, 8), RangeError, 'nothing left after 0xfc');
  t.throws(() => list.addStd(0, 4), RangeError);
  const { list: ext } = make();
  t.throws(() => ext.addExt(0x0b, 1, 0x1000), RangeError);
  t.throws(() => ext.addExt(0x0b, 16, 8), RangeError, 'version is 4 bits');
});

t.test('a conventional 256-byte space has no extended list', async (t) => {
  const { list } = make(PCI_CONFIG_SIZE);
  t.throws(() => list.addExt(0x0f, 1, 8), RangeError);
  t.same(list.extCaps(), []);
});

t.test('a corrupt looping list does not hang the walk', async (t) => {
  const { cfg, list } = make();
  const a = list.addStd(0x05, 12);
  cfg.set8(a + 1, a); // points at itself
  t.ok(list.stdCaps().length <= 48);
  const e = list.addExt(0x0f, 1, 8);
  cfg.set32(e, 0x0f | (1 << 16) | (e << 20));
  t.ok(list.extCaps().length <= 960);
});
