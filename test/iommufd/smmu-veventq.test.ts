/**
 * vEVENTQ on virt-smmuv3 through the binary uapi: a device behind a nested
 * (guest stage 1 over VMM stage 2) HWPT faults in the guest's stage 1, the
 * SMMUv3 driver reports the event to the vIOMMU's IOMMU_VEVENTQ_TYPE_ARM_SMMUV3
 * queue with the vSID in place of the StreamID, and the VMM reads
 * struct iommufd_vevent_header + struct iommu_vevent_arm_smmuv3 records.
 */
import t from 'tap';
import { EVT } from '../../iommu/smmuv3/event.ts';
import { IOMMU_READ, IOMMU_WRITE } from '../../src/iommu-core/io-pgtable.ts';
import { checkInvariants } from '../../tools/fault/invariants.ts';
import { E2BIG, EBUSY, EEXIST, EINVAL, ENOENT, EOPNOTSUPP, ESPIPE } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { VEVENTQ_MAX_DEPTH } from '../../src/iommufd/veventq.ts';
import {
  IOMMU_DESTROY,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  iommu_destroy,
  iommu_veventq_alloc,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import { PAGE } from './fixture.ts';
import { GPA, GVA, veventqAlloc, vm, VSID } from './smmu-vm.ts';

const REC = 8 + 32; // header + struct iommu_vevent_arm_smmuv3

const destroy = (p: Process, fd: number, id: number) => p.ioctl(fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: iommu_destroy.size, id }));

/** Split what read() returned into records: [flags, sequence, evt words (u32) or undefined]. */
function records(buf: Uint8Array): [number, number, Uint32Array | undefined][] {
  const out: [number, number, Uint32Array | undefined][] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  for (let off = 0; off < buf.length;) {
    const flags = dv.getUint32(off, true);
    const seq = dv.getUint32(off + 4, true);
    off += 8;
    if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
      out.push([flags, seq, undefined]);
      continue;
    }
    const w = new Uint32Array(8);
    for (let i = 0; i < 8; i++) w[i] = dv.getUint32(off + 4 * i, true);
    out.push([flags, seq, w]);
    off += 32;
  }
  return out;
}

const bytes = (x: Uint8Array | number): Uint8Array => {
  if (typeof x === 'number') throw new Error(`read ${x}`);
  return x;
};

t.test('a guest stage-1 miss reaches the VMM as one record: vSID in the StreamID field, the faulting address and access', async (t) => {
  const v = vm();
  const [r, id, qfd] = veventqAlloc(v.p, v.fd, v.viommu);
  t.equal(r, 0, 'IOMMU_VEVENTQ_ALLOC');
  t.ok(id > 0 && qfd >= 0, 'an object ID and an fd');
  t.same(bytes(v.p.read(qfd, 4096)), new Uint8Array(0), 'nothing yet: an empty read');

  t.equal(v.fault(GVA + 0x10), 'F_TRANSLATION', 'the DMA aborts on the guest stage-1 miss');
  const hostSid = v.driver.events.at(-1)!.sid;
  t.not(hostSid, VSID, 'the host logged the physical StreamID');
  const [[flags, seq, w]] = records(bytes(v.p.read(qfd, 4096))) as [[number, number, Uint32Array]];
  t.equal(flags, 0);
  t.equal(seq, 0, 'the first sequence number');
  t.equal(w[0]! & 0xff, EVT.F_TRANSLATION, 'evt[0] EventType');
  t.equal(w[1], VSID, 'evt[0] StreamID [63:32] is the vSID');
  t.equal((w[3]! >>> 3) & 1, 1, 'RnW: a read');
  t.equal((w[3]! >>> 7) & 1, 0, 'S2 clear: a stage-1 fault');
  t.equal(w[4]! + w[5]! * 2 ** 32, GVA + 0x10, 'evt[2] InputAddr');
  t.same(bytes(v.p.read(qfd, 4096)), new Uint8Array(0), 'read once');

  t.equal(v.fault(GVA + 0x2000, true), 'F_TRANSLATION');
  const [[, seq1, w1]] = records(bytes(v.p.read(qfd, REC))) as [[number, number, Uint32Array]];
  t.equal(seq1, 1, 'the next sequence number');
  t.equal((w1[3]! >>> 3) & 1, 0, 'RnW: a write');
  t.equal(w1[4], GVA + 0x2000);
  t.equal(v.driver.queues.eventsForwarded, 2, 'both went to the vEVENTQ');

  // Mapped now: no fault, no event.
  t.equal(v.guest.s1.map(GVA, GPA + 16 * PAGE, PAGE, IOMMU_READ | IOMMU_WRITE), 0);
  t.equal(v.fault(GVA), 'ok');
  t.same(bytes(v.p.read(qfd, 4096)), new Uint8Array(0));
});

t.test('not forwarded: stage-2 faults (the VMM did not map the GPA), and events with no vEVENTQ (logged only)', async (t) => {
  const v = vm();
  t.equal(v.fault(GVA), 'F_TRANSLATION');
  t.equal(v.driver.queues.eventsUnhandled, 1, 'no vEVENTQ: the event is only logged');
  const [, , qfd] = veventqAlloc(v.p, v.fd, v.viommu);
  t.same(bytes(v.p.read(qfd, 4096)), new Uint8Array(0), 'an event from before the queue existed is not in it');

  t.equal(v.guest.s1.map(GVA, 0x5000_0000, PAGE, IOMMU_READ | IOMMU_WRITE), 0, 'the guest maps a GPA outside the IOAS');
  t.equal(v.fault(GVA), 'F_TRANSLATION');
  t.equal(v.driver.events.at(-1)!.fields['S2'], 1, 'a stage-2 fault');
  t.same(bytes(v.p.read(qfd, 4096)), new Uint8Array(0), 'stage-2 faults are the host\'s, not the guest\'s');
  t.equal(v.driver.queues.eventsUnhandled, 2);
  t.equal(v.driver.queues.eventsForwarded, 0);
});

t.test('read() sizes: at least a header (-EINVAL), whole records only, a first record that cannot fit -EINVAL; no write, no pread', async (t) => {
  const v = vm();
  const [, , qfd] = veventqAlloc(v.p, v.fd, v.viommu);
  t.equal(v.p.read(qfd, 7), -EINVAL, 'shorter than a header, even when empty');
  t.same(bytes(v.p.read(qfd, 8)), new Uint8Array(0), 'a header\'s worth on an empty queue reads 0 bytes');
  v.fault(GVA);
  v.fault(GVA + PAGE);
  t.equal(v.p.read(qfd, 8), -EINVAL, 'room for the header but not the event');
  t.equal(v.p.read(qfd, REC - 1), -EINVAL);
  const one = bytes(v.p.read(qfd, 2 * REC - 1));
  t.equal(one.length, REC, 'one whole record of the two');
  t.same(records(one).map((r) => r[1]), [0]);
  t.same(records(bytes(v.p.read(qfd, 4096))).map((r) => r[1]), [1], 'the second is still there');
  t.equal(v.p.write(qfd, new Uint8Array(8)), -EINVAL, 'a vEVENTQ has no write()');
  t.equal(v.p.pread(qfd, 64, 0n), -ESPIPE, 'not seekable');
});

t.test('overflow: events beyond the depth are lost; one LOST_EVENTS header at the tail carries the last lost sequence number', async (t) => {
  const v = vm();
  const [, , qfd] = veventqAlloc(v.p, v.fd, v.viommu, { veventq_depth: 2 });
  for (let i = 0; i < 5; i++) v.fault(GVA + i * PAGE);
  const got = records(bytes(v.p.read(qfd, 4096)));
  t.same(got.map(([f, s, w]) => [f, s, w?.[4]]), [
    [0, 0, GVA],
    [0, 1, GVA + PAGE],
    [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 4, undefined],
  ], 'two events, then the header: sequence numbers 2-4 were lost');
  v.fault(GVA + 9 * PAGE);
  t.same(records(bytes(v.p.read(qfd, 4096))).map(([f, s]) => [f, s]), [[0, 5]], 'the queue has room again, numbering goes on');

  // Full again; the reader takes one, and the next event replaces the LOST_EVENTS header (the gap tells).
  for (let i = 0; i < 3; i++) v.fault(GVA + i * PAGE); // 6, 7 queued; 8 lost
  t.same(records(bytes(v.p.read(qfd, REC))).map(([f, s]) => [f, s]), [[0, 6]]);
  v.fault(GVA); // 9 queued behind 7, the header leaves the tail
  t.same(records(bytes(v.p.read(qfd, 4096))).map(([f, s]) => [f, s]), [[0, 7], [0, 9]], 'a gap of one: sequence 8 was lost');

  // A LOST_EVENTS header alone fits in a header's worth of read.
  for (let i = 0; i < 3; i++) v.fault(GVA + i * PAGE); // 10, 11 queued; 12 lost
  bytes(v.p.read(qfd, 2 * REC));
  t.same(records(bytes(v.p.read(qfd, 8))).map(([f, s]) => [f, s]), [[IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 12]]);
});

t.test('injection point iommufd.vevent_alloc: the event is lost (LOST_EVENTS header) and nothing else changes', async (t) => {
  const v = vm();
  const [, , qfd] = veventqAlloc(v.p, v.fd, v.viommu);
  v.m.host.platform.faults.failNth('iommufd.vevent_alloc', 2);
  for (let i = 0; i < 2; i++) v.fault(GVA + i * PAGE);
  t.same(records(bytes(v.p.read(qfd, 4096))).map(([f, s]) => [f, s]), [[0, 0], [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 1]]);
  v.fault(GVA);
  t.same(records(bytes(v.p.read(qfd, 4096))).map(([f, s]) => [f, s]), [[0, 2]]);
});

t.test('trace: iommufd.vevent for queued and lost events', async (t) => {
  const v = vm({ trace: true });
  const seen: string[] = [];
  v.m.host.platform.tracer.on('iommufd.vevent', (e) => void seen.push(`${e.args.sequence}:${e.args.lost}:${e.args.queued}`));
  veventqAlloc(v.p, v.fd, v.viommu, { veventq_depth: 1 });
  v.fault(GVA);
  v.fault(GVA + PAGE);
  t.same(seen, ['0:false:1', '1:true:1']);
});

t.test('IOMMU_VEVENTQ_ALLOC errnos; each refusal creates nothing', async (t) => {
  const v = vm();
  const { p, fd, viommu } = v;
  t.equal(veventqAlloc(p, fd, viommu, {}, 24)[0], -EINVAL, 'size below offsetofend(out_veventq_fd)');
  t.equal(veventqAlloc(p, fd, viommu, { flags: 1 })[0], -EOPNOTSUPP, 'flags');
  t.equal(veventqAlloc(p, fd, viommu, { __reserved: 1 })[0], -EOPNOTSUPP, '__reserved');
  t.equal(veventqAlloc(p, fd, viommu, { type: 0 })[0], -EOPNOTSUPP, 'IOMMU_VEVENTQ_TYPE_DEFAULT');
  t.equal(veventqAlloc(p, fd, viommu, { veventq_depth: 0 })[0], -EINVAL, 'depth 0');
  t.equal(veventqAlloc(p, fd, viommu, { veventq_depth: VEVENTQ_MAX_DEPTH + 1 })[0], -EINVAL, 'depth above 2^19');
  t.equal(veventqAlloc(p, fd, 99)[0], -ENOENT, 'unknown vIOMMU');
  t.equal(veventqAlloc(p, fd, v.parent)[0], -ENOENT, 'a HWPT is not a vIOMMU');
  const big = encodeStruct(iommu_veventq_alloc, { size: 40, viommu_id: viommu, type: 1, veventq_depth: 1 }, 40);
  big[39] = 1;
  t.equal(p.ioctl(fd, IOMMU_VEVENTQ_ALLOC, big), -E2BIG, 'non-zero bytes past the struct');
  const [r, id] = veventqAlloc(p, fd, viommu, {}, 28);
  t.equal(r, 0, 'size 28 (no __reserved) is enough');
  t.equal(id, v.nested + 1, 'the first ID after the existing objects: none of the refusals took one');
  t.equal(veventqAlloc(p, fd, viommu)[0], -EEXIST, 'one vEVENTQ per type per vIOMMU');
  t.equal(veventqAlloc(p, fd, viommu, { type: IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV, veventq_depth: VEVENTQ_MAX_DEPTH })[0], 0,
    'another type, at the maximum depth (the kernel leaves types to the driver)');
  const fail = veventqAlloc(p, fd, viommu, { type: 3 });
  v.m.host.platform.faults.failNth('iommufd.object_alloc', 1);
  t.equal(veventqAlloc(p, fd, viommu, { type: 4 })[0], -12, 'iommufd.object_alloc: -ENOMEM');
  t.equal(fail[0], 0);
  t.equal(veventqAlloc(p, fd, viommu, { type: 4 })[1], fail[1] + 1, 'the failed allocation left no object behind');
});

t.test('lifetimes: the vEVENTQ holds the vIOMMU, its fd holds the vEVENTQ; closing with events pending leaks nothing', async (t) => {
  const v = vm({ baseline: true });
  const { p, fd } = v;
  const [, id, qfd] = veventqAlloc(p, fd, v.viommu);
  v.fault(GVA);
  v.fault(GVA + PAGE);
  t.equal(destroy(p, fd, id), -EBUSY, 'the vEVENTQ while its fd is open');
  t.equal(p.close(qfd), 0, 'close with two events pending');
  t.equal(p.read(qfd, 4096), -9, 'the fd is gone');
  t.equal(v.p.close(v.cdev), 0, 'unbinding the device takes its vDEVICE');
  t.equal(destroy(p, fd, v.nested), 0);
  t.equal(destroy(p, fd, v.viommu), -EBUSY, 'the vIOMMU while its vEVENTQ exists');
  t.equal(destroy(p, fd, id), 0, 'the vEVENTQ once its fd is closed');
  t.equal(destroy(p, fd, v.viommu), 0, 'then the vIOMMU');

  // The iommufd closed first: the vEVENTQ fd keeps the context (and its objects) until it closes.
  const w = vm({ baseline: true });
  const [, , wfd] = veventqAlloc(w.p, w.fd, w.viommu);
  w.fault(GVA);
  t.equal(w.p.close(w.cdev), 0);
  t.equal(w.p.close(w.fd), 0, 'close /dev/iommu with the vEVENTQ fd still open');
  t.equal(records(bytes(w.p.read(wfd, 4096))).length, 1, 'the queue is still readable');
  t.equal(w.p.close(wfd), 0, 'the last holder: every object goes');
  w.p.exit();
  t.same(checkInvariants(w.m, { dma: false }), [], 'no page, pin or charge left behind');
  v.p.exit();
  t.same(checkInvariants(v.m, { dma: false }), []);
});

t.test('a configuration error of the guest (its CD not valid: C_BAD_CD) is forwarded too, with the vSID', async (t) => {
  const v = vm();
  const [, , qfd] = veventqAlloc(v.p, v.fd, v.viommu);
  v.guest.mem.writeFrom(v.guest.cdTable, new Uint8Array(64)); // CD 0 with V = 0, before any DMA fetched it
  t.equal(v.fault(GVA), 'C_BAD_CD');
  const [[, seq, w]] = records(bytes(v.p.read(qfd, 4096))) as [[number, number, Uint32Array]];
  t.equal(seq, 0);
  t.equal(w[0]! & 0xff, EVT.C_BAD_CD);
  t.equal(w[1], VSID);
});
