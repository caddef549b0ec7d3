/**
 * Linux 7.3 intel-iommu and I/O page faults: PRI is enabled once, at probe
 * (intel_iommu_probe_finalize -> iommu_enable_pci_pri), and stays on until
 * release; every attachment of a domain with a fault handler takes a
 * reference (iopf_for_domain_set -> intel_iommu_enable_iopf, info->iopf_refcount),
 * the first putting the device on the IOPF queue (iopf_queue_add_device) and
 * the last one's detach taking it off (intel_iommu_disable_iopf ->
 * iopf_queue_remove_device).
 */
import t from 'tap';
import { EINVAL, ENODEV } from '../../../src/uapi/errno.ts';
import type { IommuDomain } from '../../../src/iommu-core/domain.ts';
import type { IopfHandler } from '../../../src/iommu-core/iopf.ts';
import type { SvaHandle } from '../../../src/iommu-core/sva.ts';
import { AtsTestEndpoint } from '../vtd/endpoint.ts';
import { atsDevice, machine } from './fixture.ts';

const answer: IopfHandler = (_dev, _reqs, respond) => respond('success');

type Host = ReturnType<typeof atsDevice>['host'];

/** A paging domain with a fault handler (iommufd: a HWPT allocated with a fault object). */
function faultDomain(host: Host, ep: AtsTestEndpoint, handler: IopfHandler = answer): IommuDomain {
  const d = host.iommu.allocPaging(ep) as IommuDomain;
  d.iopfHandler = handler;
  return d;
}

function plainDomain(host: Host, ep: AtsTestEndpoint): IommuDomain {
  return host.iommu.allocPaging(ep) as IommuDomain;
}

t.test('PRI is on from probe; the IOPF queue holds the device while a fault domain is attached, RID or PASID', async (t) => {
  const { board, host, driver, ep, group, owner } = atsDevice();
  t.ok(ep.pri.enabled, 'iommu_enable_pci_pri at probe');
  t.equal(driver.deviceState(ep)!.pri, true);
  t.notOk(host.iopf.hasDevice(ep), 'no fault domain yet: not on the queue');
  const plain = plainDomain(host, ep);
  t.equal(host.iommu.attachGroup(plain, group, owner), 0);
  t.notOk(host.iopf.hasDevice(ep), 'a domain without a fault handler takes no reference');
  t.equal(host.iommu.detachGroup(plain, group, owner), 0);

  const rid = faultDomain(host, ep);
  const pasid = faultDomain(host, ep);
  t.equal(host.iommu.attachGroup(rid, group, owner), 0);
  t.ok(host.iopf.hasDevice(ep), 'first fault domain: iopf_queue_add_device');
  t.equal(host.iommu.attachDevicePasid(pasid, ep, 5), 0);
  t.equal(host.iommu.detachGroup(rid, group, owner), 0);
  t.ok(host.iopf.hasDevice(ep), 'the PASID 5 fault domain keeps it on the queue');
  ep.request({ addr: 0x1000, pasid: 5, read: true, prgIndex: 1, last: true });
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[1, 'success']], 'handled by the PASID 5 domain');

  host.iommu.detachDevicePasid(pasid, ep, 5);
  t.notOk(host.iopf.hasDevice(ep), 'last fault domain detached: iopf_queue_remove_device');
  t.ok(ep.pri.enabled, 'PRI stays enabled until release');
  ep.request({ addr: 0x2000, pasid: 5, read: true, prgIndex: 2, last: true });
  ep.request({ addr: 0x3000, read: true, prgIndex: 3, last: true });
  board.scheduler.run();
  t.same(ep.responses.slice(1).map((r) => [r.prgIndex, r.code]), [[2, 'invalid'], [3, 'invalid']], 'answered Invalid');
  t.equal(host.iopf.outstanding, 0);
});

t.test('replacing a fault domain by another keeps the device on the queue; by a plain one takes it off', async (t) => {
  const { host, ep, group, owner } = atsDevice();
  const a = faultDomain(host, ep);
  const b = faultDomain(host, ep);
  const plain = plainDomain(host, ep);
  t.equal(host.iommu.attachGroup(a, group, owner), 0);
  t.equal(host.iommu.replaceGroupDomain(b, group, owner), 0);
  t.ok(host.iopf.hasDevice(ep), 'iopf_for_domain_replace: new reference first, then the old one dropped');
  t.equal(host.iommu.replaceGroupDomain(plain, group, owner), 0);
  t.notOk(host.iopf.hasDevice(ep));
});

t.test('a group still waiting for its handler is answered Invalid when the last fault domain is detached', async (t) => {
  const { board, host, ep, group, owner } = atsDevice();
  let seen = 0;
  const d = faultDomain(host, ep, () => seen++);
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  ep.request({ addr: 0x4000, write: true, prgIndex: 9, last: true });
  board.scheduler.run();
  t.equal(seen, 1, 'the handler has it and does not answer');
  t.equal(host.iopf.outstanding, 1);
  t.same(ep.responses, []);
  t.equal(host.iommu.detachGroup(d, group, owner), 0);
  board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[9, 'invalid']], 'iopf_queue_remove_device answered it');
  t.equal(host.iopf.outstanding, 0);
});

t.test('SVA binds count too: the device leaves the queue at the last unbind', async (t) => {
  const { host, ep } = atsDevice();
  const p1 = host.spawn();
  const p2 = host.spawn();
  const h1 = host.sva.bind(ep, p1.mm, p1.pid) as SvaHandle;
  const h2 = host.sva.bind(ep, p2.mm, p2.pid) as SvaHandle;
  t.type(h1, 'object');
  t.type(h2, 'object');
  t.ok(host.iopf.hasDevice(ep));
  host.sva.unbind(h1);
  t.ok(host.iopf.hasDevice(ep), "the other process's bond keeps it");
  host.sva.unbind(h2);
  t.notOk(host.iopf.hasDevice(ep), 'last unbind: off the queue');
  t.ok(ep.pri.enabled);
  const h3 = host.sva.bind(ep, p1.mm, p1.pid) as SvaHandle;
  t.type(h3, 'object', 'bound again');
  t.ok(host.iopf.hasDevice(ep), 'and back on the queue');
});

t.test('a PASID device whose PRG responses need no PASID: PRI stays off, fault domains are refused', async (t) => {
  const m = machine();
  const { dev: ep, group, owner } = m.add(new AtsTestEndpoint(m.board.scheduler, 'ats-ep', { prgRespPasidRequired: false }), 2);
  t.ok(ep.pasid.enabled && ep.ats.enabled);
  t.notOk(ep.pri.enabled, 'iommu_enable_pci_pri: PASID enabled and pci_prg_resp_pasid_required() false');
  t.same(m.driver.deviceState(ep), { ats: true, pre: true, pri: false, pasidBits: 16 });
  const d = faultDomain(m.host, ep);
  t.equal(m.host.iommu.attachGroup(d, group, owner), -ENODEV, 'intel_iommu_enable_iopf: PRI not enabled');
  t.notOk(m.host.iopf.hasDevice(ep));
  const plain = plainDomain(m.host, ep);
  t.equal(m.host.iommu.attachGroup(plain, group, owner), 0, 'a domain without a fault handler attaches');
  const p = m.host.spawn();
  t.equal(m.host.sva.bind(ep, p.mm, p.pid), -EINVAL, 'intel_iommu_sva_supported: PRI supported but not enabled');
});

t.test('release with a fault domain still attached: off the queue, PRI off', async (t) => {
  const { host, driver, ep, group, owner } = atsDevice();
  const d = faultDomain(host, ep);
  t.equal(host.iommu.attachGroup(d, group, owner), 0);
  t.ok(host.iopf.hasDevice(ep));
  driver.releaseDevice(ep);
  t.notOk(host.iopf.hasDevice(ep));
  t.notOk(ep.pri.enabled);
});
