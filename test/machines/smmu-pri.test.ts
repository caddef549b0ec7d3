/**
 * PRI on virt-smmuv3 (machines/README.md "PRI on virt-smmuv3"): by default
 * the emulated arm-smmu-v3 driver is Linux 7.3's, which services no page
 * request (arm_smmu_handle_ppr logs "unexpected PRI request received" and
 * answers CMD_PRI_RESP Deny; arm_smmu_enable_iopf takes stall masters only,
 * so a PCIe master never gets PRI enabled). MachineOptions.smmuPri =
 * 'posted-series' keeps the PRI servicing of the posted SMMUv3 PRI series.
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { Smmuv3Driver } from '../../iommu/smmuv3/driver/driver.ts';
import { CR0, type Smmuv3 } from '../../iommu/smmuv3/index.ts';
import type { DmaEngine } from '../../devices/dma-engine/dma-engine.ts';
import type { SvaHandle } from '../../src/iommu-core/sva.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { MACHINE_PARAMS, parseParam } from '../../tools/scenario/params.ts';
import { machineFor } from '../../tools/scenario/scenario.ts';

const BDF = '0000:00:01.0';

function setup(smmuPri?: 'mainline' | 'posted-series') {
  const m = createMachine('virt-smmuv3', smmuPri === undefined ? {} : { smmuPri });
  const dev = m.device(BDF) as DmaEngine;
  const p = m.host.spawn();
  const h = m.host.sva.bind(dev, p.mm, p.pid) as SvaHandle;
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const responses: string[] = [];
  m.board.tracer.on('dma-engine.pri.response', (e) => void responses.push(`${e.args.prg} ${e.args.code} pasid ${e.args.pasid}`));
  return { m, dev, p, h, driver: m.iommuDriver as Smmuv3Driver, smmu: m.iommu as Smmuv3, responses };
}

t.test('virt-smmuv3 defaults to mainline: SVA binds with ATS but no PRI, the PRI queue is up from reset, an untouched page faults at the device', async (t) => {
  const { m, dev, p, h, driver, smmu } = setup();
  t.equal(driver.priMode, 'mainline');
  t.equal(smmu.regs.get('CR0ACK') & CR0.PRIQEN, CR0.PRIQEN, 'PRIQEN from arm_smmu_device_reset');
  t.ok(dev.ats.enabled, 'ATS enabled at attach');
  t.notOk(dev.pri.enabled, 'pci_enable_pri() is never called by mainline arm-smmu-v3');
  const va = p.mmap(4 * 4096);
  const w = dev.dmaWrite(va, new Uint8Array([1]), { pasid: h.pasid });
  t.equal(w.ok, false, `the write fails at the device (${w.ok ? '' : w.fault})`);
  t.equal(p.mm.physOf(Number(va)), -1, 'no page was faulted in');
  t.equal(m.board.counters.get('iopf.requests'), 0);
  t.equal(m.board.counters.get('smmuv3.pri.recorded'), 0, 'no page request was sent');
  t.same(driver.log, []);
});

t.test('mainline: a page request that reaches the SMMU anyway is logged as unexpected and denied (Invalid Request); nothing is faulted in', async (t) => {
  const { m, dev, p, h, driver, responses } = setup('mainline');
  // The device's PRI turned on behind the driver's back (as a user-space driver could through config space).
  const pdev = m.host.pciAts(dev);
  t.equal(pdev.enablePri(8), 0);
  const va = p.mmap(4 * 4096);
  const w = dev.dmaWrite(va + 4096n, new Uint8Array([1]), { pasid: h.pasid });
  t.equal(w.ok, false, `the write fails (${w.ok ? '' : w.fault})`);
  m.run();
  t.equal(m.board.counters.get('smmuv3.pri.recorded'), 1, 'recorded in the PRI queue');
  t.equal(p.mm.physOf(Number(va + 4096n)), -1, 'no page was faulted in');
  t.equal(m.board.counters.get('iopf.requests'), 0, 'nothing reached the I/O page-fault queue');
  t.same(responses, [`0 invalid pasid ${h.pasid}`], 'CMD_PRI_RESP Deny with the record\'s PASID: Invalid Request');
  const sid = dev.requesterId.toString(16).padStart(8, '0');
  const iova = (Number(va) + 4096).toString(16).padStart(16, '0');
  t.match(driver.log[0], /^arm-smmu-v3 [0-9a-f]+\.smmuv3: unexpected PRI request received:$/);
  t.equal(driver.log[1]?.replace(/^arm-smmu-v3 [0-9a-f]+\.smmuv3: /, ''), `\tsid 0x${sid}.0x${h.pasid.toString(16).padStart(5, '0')}: [0L] unprivileged W access at iova 0x${iova}`);
  t.equal(driver.log.length, 2);
});

t.test("posted-series: PRI is enabled on the master and a page request is serviced", async (t) => {
  const { m, dev, p, h, driver, smmu, responses } = setup('posted-series');
  t.equal(driver.priMode, 'posted-series');
  t.equal(smmu.regs.get('CR0ACK') & CR0.PRIQEN, CR0.PRIQEN, 'PRI queue brought up on first use');
  t.ok(dev.pri.enabled, 'the device\'s PRI enabled with IOPF');
  const va = p.mmap(4 * 4096);
  t.ok(dev.dmaWrite(va, new Uint8Array([7]), { pasid: h.pasid }).ok);
  t.same(p.memRead(va, 1), new Uint8Array([7]), 'faulted in, the process sees the write');
  t.equal(m.board.counters.get('iopf.groups_answered'), 1);
  t.same(responses.map((r) => r.split(' ')[1]), ['success']);
  t.same(driver.log, []);
});

t.test('--param smmu-pri: a word parameter; it sets MachineOptions.smmuPri over a scenario\'s options', async (t) => {
  const spec = MACHINE_PARAMS['smmu-pri']!;
  t.equal(parseParam('smmu-pri', spec, 'posted-series'), 1);
  t.throws(() => parseParam('smmu-pri', spec, 'on'), /--param smmu-pri=on: must be one of mainline, posted-series/);
  const posted = machineFor('virt-smmuv3', 1, {}, { options: { smmuPri: 'posted-series' } });
  t.equal((posted.iommuDriver as Smmuv3Driver).priMode, 'posted-series');
  const over = machineFor('virt-smmuv3', 1, { 'smmu-pri': 'mainline' }, { options: { smmuPri: 'posted-series' } });
  t.equal((over.iommuDriver as Smmuv3Driver).priMode, 'mainline');
  t.equal((machineFor('virt-smmuv3', 1, {}).iommuDriver as Smmuv3Driver).priMode, 'mainline');
});
