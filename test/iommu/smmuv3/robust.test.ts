import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE } from '../../../iommu/pgtable/index.ts';
import { SMMU_REG } from '../../../iommu/smmuv3/index.ts';
import { Prng } from '../../../src/sim/prng.ts';
import { DATA, Harness, STRTAB } from './harness.ts';

const CMDQ = 0x4800_0000;

t.test('garbage structures, commands and registers never make the model throw or hang', async (t) => {
  const rng = new Prng(7);
  const h = new Harness({ iotlbSize: 16 });
  h.enable({ cmdqLog2: 6, evtqLog2: 3 });
  const b = h.table({ stage: 1 });
  b.map(0x1000_0000, DATA, 0x10_0000, IOMMU_READ | IOMMU_WRITE);
  const cdTable = h.alloc.alloc(64 * 16);
  const u32 = () => rng.nextU32();
  const noisy = (w: Uint32Array) => w.map((v) => (rng.chance(0.04) ? v ^ (1 << rng.int(0, 31)) : v) >>> 0);
  let completed = 0;
  const outcomes = new Map<string, number>();
  const regs = Object.entries(SMMU_REG).filter(([n]) => !n.startsWith('IDR'));
  for (let i = 0; i < 400; i++) {
    const sid = h.sid;
    // A plausible STE or CD with a few bits flipped, or pure noise.
    const ste = new Uint32Array(16);
    if (rng.chance(0.2)) for (let w = 0; w < 16; w++) ste[w] = u32();
    else {
      ste[0] = (cdTable | (rng.int(4, 7) << 1) | 1) >>> 0; // V, Config, S1ContextPtr
      ste[1] = (rng.int(0, 4) << 27) >>> 0; // S1CDMax
      ste[2] = rng.int(0, 3); // S1DSS
    }
    h.writeWords(h.steAddr(sid), rng.chance(0.3) ? noisy(ste) : ste);
    for (let c = 0; c < 4; c++) {
      const cd = new Uint32Array(16);
      cd[0] = (16 | (1 << 31) | (1 << 30)) >>> 0;
      cd[1] = (5 | (1 << 9) | (3 << 13)) >>> 0;
      cd[2] = b.root >>> 0;
      h.writeWords(cdTable + 64 * c, noisy(cd));
    }
    if (rng.chance(0.1)) h.writeWords(STRTAB + rng.int(0, 64) * 8, new Uint32Array([u32(), u32()]));
    // Random commands, sometimes a garbage PROD.
    for (let c = 0; c < rng.int(0, 4); c++) h.writeWords(CMDQ + rng.int(0, 63) * 16, new Uint32Array([rng.int(0, 0x50), u32(), u32() & 0xfff, u32()]));
    if (rng.chance(0.3)) h.w32('CMDQ_PROD', u32());
    h.cmd('CFGI_ALL');
    if (rng.chance(0.3)) h.w32('GERRORN', h.r32('GERROR'));
    if (rng.chance(0.05)) {
      const [, off] = regs[rng.int(0, regs.length - 1)]!;
      h.w32(off, u32());
    }
    if (rng.chance(0.05)) {
      h.w32('CR0', 0xc);
      h.w32('STRTAB_BASE_CFG', rng.chance(0.5) ? u32() : 16);
    }
    if (rng.chance(0.9)) h.w32('CR0', 0xd); // mostly enabled
    const attrs = rng.chance(0.5) ? { pasid: rng.int(0, 20), privileged: rng.chance(0.5), exec: rng.chance(0.3) } : undefined;
    const addr = rng.chance(0.7) ? 0x1000_0000 + rng.int(0, 0x20_0000) : rng.int(0, 2 ** 52);
    const r = rng.chance(0.5) ? h.read(addr, rng.int(1, 8192), attrs) : h.write(addr, new Uint8Array(rng.int(1, 64)), attrs);
    t.type(r.ok, 'boolean');
    const k = r.ok ? 'ok' : r.fault;
    outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    h.events();
    completed++;
  }
  t.equal(completed, 400, 'every transaction completed');
  t.ok(outcomes.size >= 5, `a spread of outcomes: ${JSON.stringify([...outcomes])}`);
});

t.test('garbage ATS and PRI traffic (Translation Requests, page requests, Translated transactions, ATC invalidations) never throws or hangs', async (t) => {
  const rng = new Prng(11);
  const h = new Harness({ iotlbSize: 16, atcInvTimeoutNs: 20_000, stallTimeoutNs: 20_000 });
  h.enable({ cmdqLog2: 6, evtqLog2: 3 });
  h.enablePriq(2);
  const b = h.table({ stage: 1 });
  b.map(0x1000_0000, DATA, 0x10_0000, IOMMU_READ | IOMMU_WRITE);
  const cd = h.alloc.alloc(64);
  h.writeCd(cd, h.cdFor(b, 1));
  const statuses = new Set<string>();
  for (let i = 0; i < 300; i++) {
    h.writeSte(h.sid, { Config: rng.int(0, 7), S1ContextPtr: cd / 64, EATS: rng.int(0, 3), S1DSS: rng.int(0, 2) });
    if (rng.chance(0.5)) h.board.sysmem.write32(h.steAddr(h.sid) + 4 * rng.int(0, 15), rng.nextU32());
    h.cmd('CFGI_ALL');
    if (rng.chance(0.3)) h.w32('CR0', rng.chance(0.5) ? 0x1f : 0x0d);
    h.dev.autoComplete = rng.chance(0.8);
    const addr = rng.chance(0.7) ? 0x1000_0000 + rng.int(0, 0x20_0000) : rng.int(0, 2 ** 52);
    const c = h.dev.tr(addr, { pasid: rng.chance(0.3) ? rng.int(0, 8) : -1, length: 4096 * rng.int(1, 40), noWrite: rng.chance(0.5), exec: rng.chance(0.2) });
    statuses.add(c.status);
    h.dev.pr(addr, { prgIndex: rng.int(0, 511), last: rng.chance(0.7), pasid: rng.chance(0.5) ? rng.int(0, 1 << 20) : -1 });
    t.type(h.dev.translatedRead(addr, rng.int(1, 64)).status, 'string');
    h.cmd('ATC_INV', { StreamID: rng.chance(0.8) ? h.sid : rng.int(0, 0xffff), Size: rng.int(0, 63), Address: rng.int(0, 2 ** 40) });
    h.cmd('SYNC', { CS: rng.int(0, 2) });
    h.run(rng.int(0, 30_000));
    if (rng.chance(0.5)) h.w32('GERRORN', h.r32('GERROR'));
    h.events();
    h.priRecords();
  }
  t.ok(statuses.size >= 2, `Translation Request outcomes: ${[...statuses]}`);
});
