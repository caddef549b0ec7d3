import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { DmaEngine } from '../../devices/dma-engine/index.ts';
import { TestDmaDevice } from '../../devices/test-dma-device.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: default devices probed, grouped, bound to vfio-pci, and their DMA blocked until a user attaches`, async (t) => {
    const m = createMachine(kind);
    t.same(m.devices().map((d) => d.bdf), ['0000:00:01.0', '0000:00:02.0', '0000:00:03.0']);
    t.same(m.devices().map((d) => m.host.iommu.groupOf(d)!.id), [0, 1, 2]);
    const p = m.host.spawn();
    t.same(p.readdir('/dev/vfio'), ['0', '1', '2', 'devices', 'vfio']);
    t.same(p.readdir('/dev/vfio/devices'), ['vfio0', 'vfio1', 'vfio2']);
    t.equal(p.readFile('/sys/bus/pci/devices/0000:00:01.0/vendor'), '0x1b36\n');
    const d = m.device('0000:00:03.0');
    d.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
    const r = d.dmaRead(BigInt(m.board.layout.ram[0]!.gpa + 0x10_0000), 4);
    t.equal(r.ok, false, `blocked: ${r.ok ? '' : r.fault}`);
  });
}

t.test('virt-smmuv3 has the default devices, each in its own IOMMU group, behind the SMMU', async (t) => {
  const m = createMachine('virt-smmuv3');
  t.same(m.devices().map((d) => d.bdf), ['0000:00:01.0', '0000:00:02.0', '0000:00:03.0']);
  t.ok(m.device('0000:00:01.0') instanceof DmaEngine);
  t.ok(m.device('00:02.0') instanceof DmaEngine);
  t.ok(m.device('0000:00:03.0') instanceof TestDmaDevice);
  t.throws(() => m.device('0000:00:09.0'));
  const groups = m.devices().map((d) => m.host.iommu.groupOf(d)!.id);
  t.same(groups, [0, 1, 2]);
  const p = m.host.spawn();
  t.equal(p.readlink('/sys/bus/pci/devices/0000:00:02.0/iommu_group'), '../../../kernel/iommu_groups/1');
  t.equal(m.now(), 0);
});

t.test('a device in no user domain cannot reach memory: its DMA faults at the SMMU', async (t) => {
  const m = createMachine('virt-smmuv3');
  const d = m.device('0000:00:03.0');
  d.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  t.same(d.dmaRead(BigInt(m.board.layout.ram[0]!.gpa), 4), { ok: false, fault: 'F_TRANSLATION' });
  m.run();
  t.equal((m.iommuDriver as unknown as { events: { name: string }[] }).events.at(-1)?.name, 'F_TRANSLATION');
});

t.test('machines are deterministic for a seed and reject bad device lists', async (t) => {
  t.equal(createMachine('virt-smmuv3', { seed: 5 }).board.prng.nextU32(), createMachine('virt-smmuv3', { seed: 5 }).board.prng.nextU32());
  t.throws(() => createMachine('virt-smmuv3', { devices: [{ bdf: '0000:00:01.0', kind: 'test-device' }, { bdf: '00:01.0', kind: 'test-device' }] }));
  t.throws(() => createMachine('virt-smmuv3', { devices: [{ bdf: 'nope', kind: 'test-device' }] }));
  const custom = createMachine('virt-smmuv3', { devices: [{ bdf: '0000:00:05.0', kind: (ctx, name) => new TestDmaDevice(ctx, name) }] });
  t.same(custom.devices().map((d) => d.bdf), ['0000:00:05.0']);
});
