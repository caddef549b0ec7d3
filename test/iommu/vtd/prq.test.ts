import t from 'tap';
import { decodeLayout } from '../../../src/hw/layout.ts';
import {
  DESC_INV_WAIT, DESC_PGRP_RESP, FSTS_IQE, INV_WAIT_DESC, IQEI, PAGE_REQ_DESC, PGRP_RESP_DESC, PGTT_PASSTHROUGH, PRS_PPR, PRS_PRO,
} from '../../../iommu/vtd/index.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import { AtsTestEndpoint } from './endpoint.ts';
import { Fx, PAGE, R } from './helpers.ts';

const PEDATA = 0x55;

/** Scalable mode with PRE for the endpoint at 00:02.0, a one-page page request queue and an unmasked page request event. */
function setup(ctx: Record<string, number> = { PRE: 1, DTE: 1 }) {
  const fx = new Fx();
  const ep = new AtsTestEndpoint(fx.board.scheduler);
  fx.board.rc.plug(ep, 2);
  ep.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  const { dir } = fx.scalable(ctx, ep.requesterId);
  fx.pasid(dir, 0, { PGTT: PGTT_PASSTHROUGH, DID: 1 });
  fx.enable();
  fx.queue();
  const prq = fx.page();
  fx.w64(R.PQH!, 0);
  fx.w64(R.PQA!, prq);
  fx.w32(R.PEDATA!, PEDATA);
  fx.w32(R.PEADDR!, 0xfee0_0000);
  fx.w32(R.PECTL!, 0);
  /** Page request descriptor `i`, decoded. */
  const desc = (i: number) => {
    const w: number[] = [];
    for (let k = 0; k < 8; k++) w.push(fx.mem.read32(prq + 32 * i + 4 * k));
    return decodeLayout(PAGE_REQ_DESC, w);
  };
  return { fx, ep, prq, desc, sid: ep.requesterId };
}

t.test('a page request is written at PQT with its fields; PPR is set and the page request event fires once', async (t) => {
  const { fx, ep, desc, sid } = setup();
  ep.request({ addr: 0x1234_5000, pasid: 7, write: true, read: true, privileged: true, prgIndex: 0x1a5, last: false });
  ep.request({ addr: 0x1234_6000, pasid: 7, prgIndex: 0x1a5, last: true });
  const d0 = desc(0);
  t.same([d0.TYPE, d0.PP, d0.RID, d0.PASID, d0.PM, d0.EXE, d0.RDR, d0.WRR, d0.LPIG, d0.PRGI, d0.ADDR * PAGE], [1, 1, sid, 7, 1, 0, 1, 1, 0, 0x1a5, 0x1234_5000]);
  t.equal(desc(1).LPIG, 1);
  t.equal(Number(fx.r64(R.PQT!)), 64, 'PQT advanced by two 32-byte descriptors');
  t.equal(fx.r32(R.PRS!) & PRS_PPR, PRS_PPR);
  t.equal(fx.board.msi.count(PEDATA), 1, 'one event while PPR stays set');
  fx.w32(R.PRS!, PRS_PPR);
  fx.w64(R.PQH!, 64);
  ep.request({ addr: 0x9000 });
  t.equal(fx.board.msi.count(PEDATA), 2, 'after software cleared PPR, a new request raises a new event');
  t.equal(desc(2).PP, 0, 'a request without PASID');
  t.equal(ep.responses.length, 0, 'software answers, not the unit');
});

t.test('PECTL.IM holds the page request event until unmasked', async (t) => {
  const { fx, ep } = setup();
  fx.w32(R.PECTL!, 0x8000_0000);
  ep.request({ addr: 0x1000 });
  t.equal(fx.board.msi.count(PEDATA), 0);
  t.equal(fx.r32(R.PECTL!), 0xc000_0000, 'IP');
  fx.w32(R.PECTL!, 0);
  t.equal(fx.board.msi.count(PEDATA), 1);
});

t.test('a full queue sets PRO and discards requests; the unit answers a group end Success; PRO discards until cleared', async (t) => {
  const { fx, ep } = setup();
  for (let i = 0; i < 127; i++) ep.request({ addr: i * PAGE, prgIndex: i % 512, last: false });
  t.equal(Number(fx.r64(R.PQT!)), 127 * 32, '127 of 128 entries used: the queue is full');
  fx.w32(R.PRS!, PRS_PPR);
  ep.request({ addr: 0x20_0000, pasid: 3, prgIndex: 9, last: true });
  t.equal(fx.r32(R.PRS!) & PRS_PRO, PRS_PRO, 'PRO');
  t.same(ep.responses.map((r) => [r.prgIndex, r.pasid, r.code]), [[9, 3, 'success']], 'automatic Success: the device will ask again');
  t.equal(fx.board.msi.count(PEDATA), 2, 'PRO set while PPR and PRO were clear: an event');
  fx.w64(R.PQH!, 127 * 32);
  ep.request({ addr: 0x30_0000, prgIndex: 10, last: true });
  t.equal(Number(fx.r64(R.PQT!)), 127 * 32, 'still discarded while PRO is set');
  t.equal(ep.responses.length, 2);
  ep.request({ addr: 0x40_0000, prgIndex: 11, last: false });
  t.equal(ep.responses.length, 2, 'no answer for a request that does not end its group');
  fx.w32(R.PRS!, PRS_PRO);
  ep.request({ addr: 0x50_0000, prgIndex: 12, last: true });
  t.equal(Number(fx.r64(R.PQT!)), 0, 'queued again, the tail wrapped');
  t.equal(fx.board.counters.get('vtd.prq.overflow'), 3);
});

t.test('blocked page requests are recorded as page requests (T1:T2 = 01) and answered Invalid Request', async (t) => {
  const { fx, ep } = setup({ DTE: 1 });
  ep.request({ addr: 0x7000, pasid: 2, prgIndex: 4, last: true });
  const f = fx.frcd(0);
  t.same([f.FR, f.T1, f.T2, f.PV, f.PP], [0x47, 0, 1, 2, 1], 'PRE clear');
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[4, 'invalid']]);
  const lg = new Fx();
  const lep = new AtsTestEndpoint(lg.board.scheduler);
  lg.board.rc.plug(lep, 2);
  lep.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
  lg.legacy({ TT: 2, AW: 2, DID: 1 }, lep.requesterId);
  lg.enable();
  lep.request({ addr: 0x7000, last: true });
  t.equal(lg.frcd(0).FR, 0x32, 'legacy mode');
  t.equal(lep.responses[0]!.code, 'invalid');
});

t.test('a page group response descriptor sends a PRG Response to its RID; a reserved response code is IQE', async (t) => {
  const { fx, ep, sid } = setup();
  fx.submit(Fx.desc(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: sid, PP: 1, PASID: 6, PRGI: 0x33, LPIG: 1, RC: 1 }));
  t.same(ep.responses.map((r) => [r.pasid, r.prgIndex, r.code]), [[6, 0x33, 'invalid']]);
  fx.submit(Fx.desc(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: sid, PRGI: 1, RC: 0 }));
  t.same(ep.responses[1]!.pasid, -1, 'PP clear: no PASID');
  fx.submit(Fx.desc(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: sid, PRGI: 2, RC: 5 }));
  t.not(fx.r32(R.FSTS!) & FSTS_IQE, 0);
  t.equal(Number(fx.r64(R.IQERCD!) & 0xfn), IQEI.RESERVED_FIELD);
});

t.test('a wait descriptor with PD (page request drain, ECAP.PDS) completes', async (t) => {
  const { fx } = setup();
  fx.submit(Fx.desc(INV_WAIT_DESC, DESC_INV_WAIT, { SW: 1, PD: 1, STDATA: 9, STADDR_LO: 0x50_0000 / 4 }));
  t.equal(fx.mem.read32(0x50_0000), 9);
});

t.test('injection vtd.prq_write: a failed descriptor write answers the group Response Failure; drop loses it', async (t) => {
  const { fx, ep } = setup();
  fx.board.faults.point('vtd.prq_write').arm((hit) => (hit === 1 ? { kind: 'fail' } : { kind: 'drop' }));
  ep.request({ addr: 0x1000, prgIndex: 1, last: true });
  ep.request({ addr: 0x2000, prgIndex: 2, last: true });
  t.same(ep.responses.map((r) => [r.prgIndex, r.code]), [[1, 'failure']]);
  t.equal(Number(fx.r64(R.PQT!)), 0);
});

t.test('injection vtd.prg_response delays a PRG Response', async (t) => {
  const { fx, ep, sid } = setup();
  fx.board.faults.point('vtd.prg_response').arm(() => ({ kind: 'delay', ns: 500 }));
  fx.submit(Fx.desc(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: sid, PRGI: 3, RC: 0 }));
  t.equal(ep.responses.length, 0);
  fx.board.scheduler.run();
  t.same(ep.responses.map((r) => [r.prgIndex, r.time]), [[3, 500]]);
});
