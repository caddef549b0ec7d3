import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import { PASID, PASID_CAP, PASID_CTRL, PasidCapability, type PasidOptions } from '../../../src/pci/caps/pasid.ts';

function make(opts: Partial<PasidOptions> = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  let changes = 0;
  const pasid = new PasidCapability(cfg, list, { maxPasidWidth: 20, onChange: () => changes++, ...opts });
  const b = pasid.offset;
  const ctrl = (v: number) => cfg.write(b + PASID.CTRL, 2, v);
  return { cfg, list, pasid, b, ctrl, changes: () => changes };
}

t.test('PASID is extended capability 0x001B with a read-only capability register', async (t) => {
  const { cfg, list, pasid, b } = make({ exec: true, priv: true, maxPasidWidth: 16 });
  t.equal(list.findExt(PASID.CAP_ID), b);
  t.equal(cfg.read(b + PASID.CAP, 2), PASID_CAP.EXEC | PASID_CAP.PRIV | (16 << 8));
  cfg.write(b + PASID.CAP, 2, 0);
  t.equal(pasid.maxPasidWidth, 16);
  t.ok(pasid.execSupported && pasid.privSupported);
});

t.test('Exec and Priv enables stay 0 when not supported', async (t) => {
  const { cfg, pasid, b, ctrl } = make();
  ctrl(0xffff);
  t.equal(cfg.read(b + PASID.CTRL, 2), PASID_CTRL.ENABLE);
  t.ok(pasid.enabled);
  t.notOk(pasid.execEnabled);
  t.notOk(pasid.privEnabled);
});

t.test('Exec and Priv enables are writable when supported; changes call back', async (t) => {
  const { cfg, pasid, b, ctrl, changes } = make({ exec: true, priv: true });
  ctrl(0xffff);
  t.equal(cfg.read(b + PASID.CTRL, 2), PASID_CTRL.ENABLE | PASID_CTRL.EXEC | PASID_CTRL.PRIV);
  t.ok(pasid.execEnabled && pasid.privEnabled);
  ctrl(0xffff);
  t.equal(changes(), 1);
});

t.test('pasidAllowed checks enable, width and the attribute enables', async (t) => {
  const { pasid, ctrl } = make({ maxPasidWidth: 8, priv: true, exec: true });
  t.notOk(pasid.pasidAllowed(1), 'not while PASID is disabled');
  ctrl(PASID_CTRL.ENABLE);
  t.ok(pasid.pasidAllowed(0));
  t.ok(pasid.pasidAllowed(255));
  t.notOk(pasid.pasidAllowed(256), 'beyond Max PASID Width');
  t.notOk(pasid.pasidAllowed(-1));
  t.notOk(pasid.pasidAllowed(1, true), 'privileged needs Privileged Mode Enable');
  t.notOk(pasid.pasidAllowed(1, false, true), 'execute needs Execute Permission Enable');
  ctrl(PASID_CTRL.ENABLE | PASID_CTRL.PRIV | PASID_CTRL.EXEC);
  t.ok(pasid.pasidAllowed(1, true, true));
});

t.test('reset disables everything', async (t) => {
  const { pasid, ctrl } = make({ exec: true });
  ctrl(PASID_CTRL.ENABLE | PASID_CTRL.EXEC);
  pasid.reset();
  t.notOk(pasid.enabled);
  t.notOk(pasid.execEnabled);
});

t.test('guest writes of any size and value never throw; bad definitions do', async (t) => {
  const { cfg, b } = make();
  for (let off = b; off < b + 8; off++) for (const size of [1, 2, 4]) cfg.write(off, size, 0xffffffff);
  t.throws(() => make({ maxPasidWidth: 0 }), RangeError);
  t.throws(() => make({ maxPasidWidth: 21 }), RangeError);
});
