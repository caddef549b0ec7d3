/**
 * The drivers' per-fault encoders (a review left-over of issue 22): the
 * SMMUv3 CMD_PRI_RESP (§4.6.1), and the VT-d page group response (§6.5.2.14)
 * and invalidation wait (§6.5.2.8) descriptors are written field by field
 * into reused words, for speed. Each must give exactly the words the
 * generic encoder gives from the same layout table, whatever was in the
 * reused words before, and the model's decoding must read the values back.
 */
import t from 'tap';
import fc from 'fast-check';
import { readField } from '../../src/hw/layout.ts';
import { CMD, encodeCommand, encodePriResp } from '../../iommu/smmuv3/cmd.ts';
import { DESC_INV_WAIT, DESC_PGRP_RESP, INV_WAIT_DESC, PGRP_RESP_DESC, waitStatusAddr } from '../../iommu/vtd/inv-desc.ts';
import { desc, pageGroupResponseDesc, waitDesc } from '../../iommu/vtd/driver/descs.ts';

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
/** Words left over from an earlier descriptor: the encoder must clear them. */
const stale = fc.uint32Array({ minLength: 8, maxLength: 8 });
const sameWords = (a: Uint32Array, b: Uint32Array) => a.length === b.length && a.every((w, i) => w === b[i]);

t.test('encodePriResp gives what encodeCommand gives', async (t) => {
  fc.assert(fc.property(
    u32, fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 0xfffff }), fc.integer({ min: 0, max: 0x1ff }), fc.integer({ min: 0, max: 2 }),
    fc.uint32Array({ minLength: 4, maxLength: 4 }),
    (sid, ssv, ssid, prg, resp, into) => {
      const fast = encodePriResp(into, sid, ssv, ssid, prg, resp);
      const generic = encodeCommand('PRI_RESP', { StreamID: sid, SSV: ssv, SubstreamID: ssid, PRGIndex: prg, Resp: resp });
      if (!sameWords(fast, generic)) return false;
      const f = CMD.PRI_RESP;
      return readField(f, fast, 'StreamID') === sid && readField(f, fast, 'SubstreamID') === ssid && readField(f, fast, 'PRGIndex') === prg
        && readField(f, fast, 'Resp') === resp && readField(f, fast, 'SSV') === ssv;
    },
  ), { numRuns: 300 });
  t.pass('300 cases agree');
});

t.test('pageGroupResponseDesc gives what the layout gives (PP set only with a PASID)', async (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -1, max: 0xfffff }), fc.integer({ min: 0, max: 0x1ff }), fc.boolean(), fc.integer({ min: 0, max: 15 }), stale,
    (rid, pasid, prgi, lpig, rc, into) => {
      const fast = pageGroupResponseDesc(rid, pasid, prgi, lpig, rc, into);
      const slow = desc(PGRP_RESP_DESC, DESC_PGRP_RESP, { RID: rid, PP: pasid >= 0 ? 1 : 0, PASID: Math.max(0, pasid), PRGI: prgi, LPIG: lpig ? 1 : 0, RC: rc });
      if (!sameWords(fast, slow)) return false;
      return readField(PGRP_RESP_DESC, fast, 'PP') === (pasid >= 0 ? 1 : 0) && readField(PGRP_RESP_DESC, fast, 'RC') === rc;
    },
  ), { numRuns: 300 });
  t.pass('300 cases agree');
});

t.test('waitDesc gives what the layout gives, and the model reads its status address back', async (t) => {
  fc.assert(fc.property(
    u32, fc.integer({ min: 0, max: 2 ** 46 / 4 - 1 }).map((dw) => dw * 4), fc.boolean(), stale,
    (data, addr, pd, into) => {
      const fast = waitDesc(data, addr, pd, into);
      const slow = desc(INV_WAIT_DESC, DESC_INV_WAIT, {
        SW: 1, PD: pd ? 1 : 0, STDATA: data, STADDR_LO: (addr % 2 ** 32) / 4, STADDR_HI: Math.floor(addr / 2 ** 32),
      });
      if (!sameWords(fast, slow)) return false;
      return waitStatusAddr(fast) === addr && readField(INV_WAIT_DESC, fast, 'STDATA') === data && readField(INV_WAIT_DESC, fast, 'SW') === 1;
    },
  ), { numRuns: 300 });
  t.pass('300 cases agree');
});
