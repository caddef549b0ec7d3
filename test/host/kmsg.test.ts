/**
 * The kernel log and /dev/kmsg (kernel/printk/printk.c devkmsg_*), with what
 * the VT-d driver prints for DMA remapping faults (drivers/iommu/intel/dmar.c
 * dmar_fault / dmar_fault_do_one, ratelimited 10 per 5 s).
 */
import t from 'tap';
import { createMachine, vfioType1Setup } from '../../src/index.ts';

const BDF = '0000:00:03.0';

function setup() {
  const m = createMachine('q35-vtd');
  const p = m.host.spawn();
  const s = vfioType1Setup(m, p, BDF);
  s.v.setBusMaster(s.device);
  const log = p.open('/dev/kmsg');
  const lines = (): string[] => {
    const out: string[] = [];
    for (;;) {
      const r = p.read(log, 8192);
      if (typeof r === 'number') {
        if (r !== -11) out.push(`read: ${r}`);
        return out;
      }
      out.push(new TextDecoder().decode(r));
    }
  };
  return { m, p, log, lines, dev: m.device(BDF) };
}

t.test('a refused DMA prints dmar_fault\'s two lines, as /dev/kmsg records "prio,seq,usec,-;text"', async (t) => {
  const { m, log, lines, dev, p } = setup();
  t.ok(log >= 0, 'open /dev/kmsg');
  t.same(p.lseek(log, 0n, 2), 0n, 'SEEK_END');
  t.equal(p.lseek(log, 4n, 0), -29, 'only offset 0 (ESPIPE)');
  const r = dev.dmaRead(0x80_0000n, 64);
  t.equal(r.ok, false);
  m.run();
  const got = lines();
  t.equal(got.length, 2, got.join(''));
  t.match(got[0]!, /^3,\d+,\d+,-;DMAR: DRHD: handling fault status reg 2\n$/);
  t.match(got[1]!, /^3,\d+,\d+,-;DMAR: \[DMA Read NO_PASID\] Request device \[0000:00:03\.0\] fault addr 0x800000 \[fault reason 0x71\] SM: Present bit in first-level paging entry is clear\n$/);
  t.same(lines(), [], 'nothing more: EAGAIN');
  dev.dmaWrite(0x80_1000n, new Uint8Array(4));
  m.run();
  t.match(lines()[1] ?? '', /\[DMA Write NO_PASID\] .* fault addr 0x801000 /);
});

t.test('ratelimited as dmar_fault is: three calls per fault, ten per 5 s, then "callbacks suppressed"', async (t) => {
  const { m, lines, dev } = setup();
  const texts = () => lines().map((l) => l.slice(l.indexOf(';') + 1).trimEnd());
  for (let i = 0; i < 4; i++) {
    dev.dmaRead(0x80_0000n, 64);
    m.run();
  }
  const got = texts();
  t.equal(got.filter((l) => l.includes('handling fault status')).length, 4, 'the fourth interrupt still prints its first line (the tenth call)');
  t.equal(got.filter((l) => l.includes('Request device')).length, 3, 'but not its record');
  dev.dmaRead(0x80_0000n, 64);
  m.run();
  t.same(texts(), [], 'the fifth fault prints nothing');
  m.host.platform.scheduler.schedule(6_000_000_000, () => {}, 'test.wait');
  m.run();
  dev.dmaRead(0x80_0000n, 64);
  m.run();
  const after = texts();
  t.match(after[0] ?? '', /^dmar_fault: \d+ callbacks suppressed$/);
  t.match(after[1] ?? '', /handling fault status/);
});
