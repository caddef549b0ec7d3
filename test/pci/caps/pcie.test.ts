import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import {
  PCIE,
  PCIE_DEVCAP,
  PCIE_DEVCTL,
  PCIE_DEVSTA,
  PCIE_LNKCTL,
  PCIE_LNKSTA,
  PcieCapability,
  type PcieOptions,
} from '../../../src/pci/caps/pcie.ts';

function make(opts: Partial<PcieOptions> = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  const events: string[] = [];
  const pcie = new PcieCapability(cfg, list, {
    type: 'endpoint',
    onFlr: () => events.push('flr'),
    onLinkRetrain: () => events.push('retrain'),
    ...opts,
  });
  const b = pcie.offset;
  const r16 = (reg: number) => cfg.read(b + reg, 2);
  const r32 = (reg: number) => cfg.read(b + reg, 4);
  const w = (reg: number, size: number, v: number) => cfg.write(b + reg, size, v);
  return { cfg, list, pcie, events, b, r16, r32, w };
}

t.test('version 2 capability of 0x3C bytes with the Device/Port type', async (t) => {
  const types = [['endpoint', 0], ['root-port', 4], ['upstream', 5], ['downstream', 6], ['rc-endpoint', 9]] as const;
  for (const [type, code] of types) {
    const { list, r16, b } = make({ type, flr: type.endsWith('endpoint') });
    t.equal(list.findStd(PCIE.CAP_ID), b);
    t.equal(r16(PCIE.FLAGS), 2 | (code << 4), type);
    t.equal(list.addStd(0x09, 4), b + 0x3c);
  }
});

t.test('Device Capabilities: MPS supported, 8-bit tags, RBER and FLR, read-only', async (t) => {
  const { r32, w } = make({ maxPayload: 512 });
  const devcap = 2 | PCIE_DEVCAP.EXT_TAG | PCIE_DEVCAP.RBER | PCIE_DEVCAP.FLR;
  t.equal(r32(PCIE.DEVCAP), devcap);
  w(PCIE.DEVCAP, 4, 0);
  t.equal(r32(PCIE.DEVCAP), devcap);
  const port = make({ type: 'root-port' });
  t.equal(port.r32(PCIE.DEVCAP) & PCIE_DEVCAP.FLR, 0, 'ports are never FLR capable');
});

t.test('Device Control resets to RO + No Snoop + 512 B reads and takes its RW fields', async (t) => {
  const { pcie, r16, w } = make({ maxPayload: 256 });
  t.equal(r16(PCIE.DEVCTL), 0x2810);
  t.equal(pcie.maxPayloadSize, 128);
  t.equal(pcie.maxReadRequestSize, 512);
  t.ok(pcie.relaxedOrdering && pcie.noSnoop);
  w(PCIE.DEVCTL, 2, 0x7fff);
  t.equal(r16(PCIE.DEVCTL), 0x79ff, 'phantom functions and aux power are not implemented');
  t.equal(pcie.maxPayloadSize, 256, 'an MPS above the supported one is capped');
  t.equal(pcie.maxReadRequestSize, 4096);
  t.ok(pcie.reportingEnabled('fatal'));
});

t.test('Initiate FLR calls back and always reads 0', async (t) => {
  const { pcie, r16, w, events } = make();
  w(PCIE.DEVCTL, 2, PCIE_DEVCTL.FLR | PCIE_DEVCTL.RELAX_EN);
  t.same(events, ['flr']);
  t.equal(r16(PCIE.DEVCTL) & PCIE_DEVCTL.FLR, 0);
  w(PCIE.DEVCTL, 2, PCIE_DEVCTL.RELAX_EN);
  t.same(events, ['flr'], 'writing 0 does nothing');
  w(PCIE.DEVCTL + 1, 1, PCIE_DEVCTL.FLR >> 8);
  t.same(events, ['flr', 'flr'], 'a byte write of the upper half works too');
  t.ok(pcie.flrCapable);
});

t.test('a function without FLR ignores Initiate FLR', async (t) => {
  const { w, events, r16 } = make({ flr: false });
  w(PCIE.DEVCTL, 2, PCIE_DEVCTL.FLR);
  t.same(events, []);
  t.equal(r16(PCIE.DEVCTL) & PCIE_DEVCTL.FLR, 0);
});

t.test('Device Status error bits clear only when written with 1; Transactions Pending is RO', async (t) => {
  const { pcie, r16, w } = make();
  pcie.reportError('correctable');
  pcie.reportError('unsupported-request');
  pcie.setTransactionsPending(true);
  t.equal(r16(PCIE.DEVSTA), PCIE_DEVSTA.CED | PCIE_DEVSTA.URD | PCIE_DEVSTA.TRPND);
  w(PCIE.DEVSTA, 2, 0);
  t.equal(r16(PCIE.DEVSTA), PCIE_DEVSTA.CED | PCIE_DEVSTA.URD | PCIE_DEVSTA.TRPND);
  w(PCIE.DEVSTA, 2, PCIE_DEVSTA.URD | PCIE_DEVSTA.TRPND);
  t.equal(r16(PCIE.DEVSTA), PCIE_DEVSTA.CED | PCIE_DEVSTA.TRPND);
});

t.test('link registers report speed and width; ports have Link Disable and Retrain', async (t) => {
  const ep = make({ link: { speed: 3, width: 4 } });
  t.equal(ep.pcie.linkSpeed, 3);
  t.equal(ep.pcie.linkWidth, 4);
  t.equal(ep.r32(PCIE.LNKCAP2), 0b1110, 'speeds 2.5, 5 and 8 GT/s supported');
  ep.w(PCIE.LNKCTL, 2, 0xffff);
  t.equal(ep.r16(PCIE.LNKCTL), PCIE_LNKCTL.ASPMC | PCIE_LNKCTL.RCB | PCIE_LNKCTL.CCC | PCIE_LNKCTL.ES);
  ep.w(PCIE.LNKSTA, 2, 0xffff);
  t.equal(ep.r16(PCIE.LNKSTA), 3 | (4 << 4), 'Link Status is read-only for an endpoint');

  const rp = make({ type: 'root-port' });
  rp.w(PCIE.LNKCTL, 2, PCIE_LNKCTL.RL);
  t.same(rp.events, ['retrain']);
  t.equal(rp.r16(PCIE.LNKCTL) & PCIE_LNKCTL.RL, 0, 'Retrain Link reads 0');
  t.not(rp.r16(PCIE.LNKSTA) & PCIE_LNKSTA.LBMS, 0, 'retraining sets Link Bandwidth Management Status');
  rp.w(PCIE.LNKSTA, 2, PCIE_LNKSTA.LBMS);
  t.equal(rp.r16(PCIE.LNKSTA) & PCIE_LNKSTA.LBMS, 0, 'LBMS is RW1C');
  rp.w(PCIE.LNKCTL, 2, PCIE_LNKCTL.LD);
  t.ok(rp.pcie.linkDisabled);
});

t.test('a root complex integrated endpoint has no link registers', async (t) => {
  const { r32, w } = make({ type: 'rc-endpoint' });
  w(PCIE.LNKCTL, 2, 0xffff);
  t.equal(r32(PCIE.LNKCAP), 0);
  t.equal(r32(PCIE.LNKCTL), 0);
});

t.test('Device Control 2: completion timeout fields writable only when supported', async (t) => {
  const { pcie, r16, w } = make();
  w(PCIE.DEVCTL2, 2, 0xffff);
  t.equal(r16(PCIE.DEVCTL2), 0x1f);
  t.equal(pcie.completionTimeoutValue, 0xf);
  t.ok(pcie.completionTimeoutDisabled);
  const none = make({ completionTimeoutRanges: 0, completionTimeoutDisable: false, ltr: true });
  none.w(PCIE.DEVCTL2, 2, 0xffff);
  t.equal(none.r16(PCIE.DEVCTL2), 0x400, 'only LTR enable');
  const ds = make({ type: 'downstream', ariForwarding: true });
  ds.w(PCIE.DEVCTL2, 2, 0x20);
  t.ok(ds.pcie.ariForwardingEnabled);
});

t.test('reset restores device control, clears errors and keeps link settings', async (t) => {
  const { pcie, r16, w } = make();
  w(PCIE.DEVCTL, 2, 0);
  w(PCIE.DEVCTL2, 2, 0x5);
  w(PCIE.LNKCTL, 2, PCIE_LNKCTL.CCC);
  pcie.reportError('fatal');
  pcie.reset();
  t.equal(r16(PCIE.DEVCTL), 0x2810);
  t.equal(r16(PCIE.DEVCTL2), 0);
  t.equal(r16(PCIE.DEVSTA), 0);
  t.equal(r16(PCIE.LNKCTL), PCIE_LNKCTL.CCC);
});

t.test('guest writes of any size and value never throw', async (t) => {
  for (const type of ['endpoint', 'root-port', 'rc-endpoint'] as const) {
    const { cfg, b } = make({ type, flr: type !== 'root-port' });
    for (let off = b; off < b + 0x3c; off++) for (const size of [1, 2, 4]) cfg.write(off, size, 0xffffffff);
  }
  t.pass();
});

t.test('impossible device definitions throw', async (t) => {
  t.throws(() => make({ maxPayload: 100 }), RangeError);
  t.throws(() => make({ type: 'root-port', flr: true }), RangeError);
  t.throws(() => make({ ariForwarding: true }), RangeError);
  t.throws(() => make({ link: { width: 3 } }), RangeError);
});
