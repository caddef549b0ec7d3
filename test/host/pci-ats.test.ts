/**
 * The host's ATS/PRI/PASID support (src/host/pci-ats.ts, the role of Linux's
 * drivers/pci/ats.c) on a real machine's functions: the board, its
 * topology, firmware enumeration and the kernel's ACS set-up as
 * createMachine does them, but no IOMMU driver, so nothing but the test
 * touches the capabilities. Each case states the kernel's answer.
 */
import t from 'tap';
import { Board } from '../../machines/board.ts';
import { createMachine } from '../../machines/machine.ts';
import { plugTopology, type TopologySpec } from '../../machines/topology.ts';
import type { DmaEngine } from '../../devices/dma-engine/index.ts';
import { Host } from '../../src/host/host.ts';
import { enableAcs } from '../../src/host/pci-acs.ts';
import { PCI_ATS_MIN_STU, PCI_PASID_CAP_EXEC, PCI_PASID_CAP_PRIV } from '../../src/host/pci-ats.ts';
import { ATS, ATS_CTRL } from '../../src/pci/caps/ats.ts';
import { PASID, PASID_CTRL } from '../../src/pci/caps/pasid.ts';
import { PRI, PRI_CTRL } from '../../src/pci/caps/pri.ts';
import type { PciFunction } from '../../src/pci/pci-function.ts';
import { EBUSY, EINVAL } from '../../src/uapi/errno.ts';

const DEFAULT: TopologySpec[] = [
  { bdf: '00:01.0', kind: 'dma-engine' },
  { bdf: '00:03.0', kind: 'test-device' },
];

/** A board with its devices plugged, numbered and ACS-enabled by the kernel, and a host with no IOMMU driver. */
function bench(kind: 'q35-vtd' | 'virt-smmuv3' = 'q35-vtd', devices: TopologySpec[] = DEFAULT) {
  const board = new Board(kind, { ramBytes: 64 * 2 ** 20 });
  const placed = plugTopology(board, devices);
  board.enumeratePci();
  for (const p of placed) enableAcs(board.pciConfig, p.fn.busNumber, p.fn.devfn);
  const host = new Host(board);
  const fn = (bdf: string): PciFunction => placed.find((p) => p.bdf.endsWith(bdf))!.fn;
  /** Configuration writes from now on, as [bdf, offset, value]. */
  const writes: [string, number, number][] = [];
  board.tracer.on('pci.config.write', (e) => void writes.push([e.args.bdf, e.args.offset, e.args.value]));
  return { board, host, fn, engine: (bdf = '00:01.0') => fn(bdf) as DmaEngine, writes };
}

t.test('a function without the capabilities: enables are -EINVAL, queries say so, disables write nothing', async (t) => {
  const { host, fn, writes } = bench();
  const d = host.pciAts(fn('00:03.0'));
  t.same([d.atsCap, d.priCap, d.pasidCap], [0, 0, 0]);
  t.notOk(d.atsSupported());
  t.notOk(d.priSupported());
  t.notOk(d.atsPageAligned());
  t.notOk(d.prgRespPasidRequired());
  t.equal(d.enableAts(12), -EINVAL, 'pci_enable_ats: !pci_ats_supported');
  t.equal(d.prepareAts(12), -EINVAL);
  t.equal(d.atsQueueDepth(), -EINVAL);
  t.equal(d.enablePri(32), -EINVAL, 'pci_enable_pri: no pri_cap');
  t.equal(d.resetPri(), -EINVAL);
  t.equal(d.enablePasid(0), -EINVAL, 'pci_enable_pasid: no pasid_cap');
  t.equal(d.pasidFeatures(), -EINVAL);
  t.equal(d.maxPasids(), -EINVAL);
  t.equal(d.pasidStatus(), -EINVAL);
  d.disableAts();
  d.disablePri();
  d.disablePasid();
  t.same(writes, [], 'nothing was written');
  t.equal(host.pciAts(fn('00:03.0')), d, 'one per function, as struct pci_dev');
});

t.test('the capabilities are found by walking the extended list, as pci_find_ext_capability does', async (t) => {
  const { host, engine } = bench();
  const e = engine();
  const d = host.pciAts(e);
  t.same([d.atsCap, d.priCap, d.pasidCap], [e.ats.offset, e.pri.offset, e.pasid.offset]);
  t.ok(d.atsSupported() && d.priSupported());
  t.ok(d.prgRespPasidRequired(), 'PRG Response PASID Required, read when PRI was found (pci_pri_init)');
  t.equal(d.atsQueueDepth(), 8, 'the engine\'s Invalidate Queue Depth');
  t.ok(d.atsPageAligned());
  t.equal(d.maxPasids(), 2 ** 20);
  t.equal(d.pasidFeatures(), PCI_PASID_CAP_PRIV, 'privileged mode, no execute');
});

t.test('pci_enable_ats: STU from the page shift with Enable in one write; a second enable is -EBUSY; disable keeps the STU', async (t) => {
  const { host, engine, writes } = bench();
  const e = engine();
  const d = host.pciAts(e);
  t.equal(d.enableAts(PCI_ATS_MIN_STU - 1), -EINVAL, 'a page shift below 4 KiB');
  t.equal(d.enableAts(13), 0);
  t.same(writes, [[e.bdf, e.ats.offset + ATS.CTRL, ATS_CTRL.ENABLE | 1]], 'one write: Enable, STU 1');
  t.ok(e.ats.enabled);
  t.equal(e.ats.smallestTranslationUnit, 8192);
  t.ok(d.atsEnabled);
  t.equal(d.atsStu, 13);
  t.equal(d.enableAts(13), -EBUSY, 'already enabled (the kernel WARNs)');
  t.equal(d.prepareAts(12), -EBUSY, 'no STU change while enabled');
  d.disableAts();
  t.notOk(e.ats.enabled);
  t.equal(e.ats.stu, 1, 'the STU stays');
  t.notOk(d.atsEnabled);
  const n = writes.length;
  d.disableAts();
  t.equal(writes.length, n, 'disabling a disabled ATS writes nothing');
});

t.test('pci_prepare_ats: the STU without Enable; an untrusted function gets no ATS at all', async (t) => {
  const { host, engine } = bench();
  const e = engine();
  const d = host.pciAts(e);
  t.equal(d.prepareAts(14), 0);
  t.same([e.ats.enabled, e.ats.stu], [false, 2]);
  d.untrusted = true;
  t.notOk(d.atsSupported(), 'pci_ats_supported: untrusted');
  t.equal(d.enableAts(12), -EINVAL);
  t.notOk(e.ats.enabled);
});

t.test('PRI: reset, then enable with min(reqs, capacity) outstanding requests; the kernel\'s -EBUSY cases', async (t) => {
  const { host, engine, writes } = bench();
  const e = engine();
  const d = host.pciAts(e);
  t.equal(d.resetPri(), 0);
  t.same(writes, [[e.bdf, e.pri.offset + PRI.CTRL, PRI_CTRL.RESET]], 'pci_reset_pri writes Reset alone');
  t.equal(d.enablePri(1000), 0);
  t.same([e.pri.enabled, e.pri.allocation, d.priReqsAlloc], [true, 64, 64], 'capped at the capacity');
  t.equal(d.enablePri(16), -EBUSY, 'already enabled');
  t.equal(d.resetPri(), -EBUSY, 'pci_reset_pri needs PRI disabled');
  d.disablePri();
  t.notOk(e.pri.enabled);
  t.notOk(d.priEnabled);
  // The function still awaits responses to two page requests: it is not Stopped.
  e.pri.setOutstanding(2);
  t.notOk(e.pri.stopped);
  t.equal(d.enablePri(16), -EBUSY, 'not Stopped: requests outstanding');
  t.equal(d.resetPri(), 0);
  t.ok(e.pri.stopped, 'the reset dropped them');
  t.equal(d.enablePri(16), 0);
  t.same([e.pri.enabled, e.pri.allocation], [true, 16]);
});

t.test('pci_enable_pasid: only supported features; -EBUSY when enabled; disable clears the Control register', async (t) => {
  const { host, engine } = bench();
  const e = engine();
  const d = host.pciAts(e);
  t.equal(d.enablePasid(PCI_PASID_CAP_EXEC), -EINVAL, 'the engine has no execute permission');
  t.equal(d.enablePasid(PCI_PASID_CAP_PRIV | 1), -EINVAL, 'Enable is not a feature');
  t.notOk(e.pasid.enabled, 'nothing was enabled');
  t.equal(d.enablePasid(PCI_PASID_CAP_PRIV), 0);
  t.same([e.pasid.enabled, e.pasid.privEnabled, e.pasid.execEnabled], [true, true, false]);
  t.equal(d.pasidStatus(), PASID_CTRL.ENABLE | PASID_CTRL.PRIV);
  t.equal(d.pasidFeaturesEnabled, PCI_PASID_CAP_PRIV);
  t.equal(d.enablePasid(PCI_PASID_CAP_PRIV), -EBUSY);
  d.disablePasid();
  t.equal(e.config.get16(e.pasid.offset + PASID.CTRL), 0);
  t.notOk(d.pasidEnabled);
  t.equal(d.enablePasid(0), 0, 'PASID without Execute or Privileged');
  t.same([e.pasid.enabled, e.pasid.privEnabled], [true, false]);
});

t.test('pci_enable_pasid needs ACS Request Redirect and Upstream Forwarding on every port up to the root', async (t) => {
  const { host, engine } = bench('virt-smmuv3', [
    { bdf: '00:01.0', kind: 'root-port', acs: true, children: [{ bdf: '01:00.0', kind: 'dma-engine' }] },
    { bdf: '00:02.0', kind: 'root-port', children: [{ bdf: '02:00.0', kind: 'dma-engine' }] },
  ]);
  const isolated = host.pciAts(engine('01:00.0'));
  const open = host.pciAts(engine('02:00.0'));
  t.equal(isolated.enablePasid(PCI_PASID_CAP_PRIV), 0, 'below a root port with ACS');
  t.equal(open.enablePasid(PCI_PASID_CAP_PRIV), -EINVAL, 'below a root port without ACS');
  t.notOk(engine('02:00.0').pasid.enabled);
  t.ok(open.atsSupported(), 'ATS does not depend on ACS');
});

t.test('behind a PCIe-to-PCI bridge the kernel sees no extended capabilities, so none of the three', async (t) => {
  const { host, engine } = bench('q35-vtd', [{ bdf: '00:01.0', kind: 'pcie-pci-bridge', children: [{ bdf: '01:00.0', kind: 'dma-engine' }] }]);
  const e = engine('01:00.0');
  const d = host.pciAts(e);
  t.ok(e.ats.offset >= 0x100, 'the model has them');
  t.same([d.atsCap, d.priCap, d.pasidCap], [0, 0, 0]);
  t.equal(d.enableAts(12), -EINVAL);
  t.equal(d.enablePasid(0), -EINVAL);
});

for (const kind of ['q35-vtd', 'virt-smmuv3'] as const) {
  t.test(`${kind}: the IOMMU driver enables PASID before ATS and disables it after ATS, through this module`, async (t) => {
    const m = createMachine(kind, { ramBytes: 128 * 2 ** 20 });
    const dev = m.device('0000:00:01.0') as DmaEngine;
    const d = m.host.pciAts(dev);
    t.ok(d.pasidEnabled && d.atsEnabled, 'probe (and the default domain) left both on');
    const order: string[] = [];
    m.board.tracer.on('pci.config.write', (e) => {
      if (e.args.bdf !== dev.bdf) return;
      if (e.args.offset === dev.ats.offset + ATS.CTRL) order.push(`ats ${(e.args.value & ATS_CTRL.ENABLE) !== 0 ? 'on' : 'off'}`);
      if (e.args.offset === dev.pasid.offset + PASID.CTRL) order.push(`pasid ${(e.args.value & PASID_CTRL.ENABLE) !== 0 ? 'on' : 'off'}`);
    });
    m.iommuDriver.releaseDevice(dev);
    t.same(order, ['ats off', 'pasid off'], 'release: ATS first');
    t.notOk(d.pasidEnabled || d.atsEnabled || dev.pasid.enabled || dev.ats.enabled);
    order.length = 0;
    t.equal(m.iommuDriver.probeDevice(dev), 0);
    // VT-d turns ATS on at probe; SMMUv3 when an STE that translates is installed (attach).
    t.same(order, kind === 'q35-vtd' ? ['pasid on', 'ats on'] : ['pasid on'], 'probe: PASID first');
    t.ok(d.pasidEnabled);
  });
}
