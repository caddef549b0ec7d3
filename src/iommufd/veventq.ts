/**
 * Virtual event queues (drivers/iommu/iommufd/eventq.c IOMMUFD_OBJ_VEVENTQ,
 * driver.c iommufd_viommu_report_event, the vevent handler in
 * iommufd_private.h): IOMMU_VEVENTQ_ALLOC gives a vIOMMU one queue per
 * IOMMU_VEVENTQ_TYPE_* and an fd, through which the VMM reads the events the
 * IOMMU driver reports for devices behind the vIOMMU (an SMMUv3 event record
 * with the vSID in it), to inject them into the guest's virtual IOMMU.
 *
 * Queue rules, as the kernel's:
 * - every reported event takes the next sequence number, [0, INT_MAX] then 0;
 * - at most `depth` events wait; an event beyond that (or one whose
 *   allocation fails) is lost: the single LOST_EVENTS header is moved to the
 *   tail with the lost event's sequence number, and leaves the tail again
 *   when the next event is queued (the gap in sequence numbers then tells);
 * - read() returns whole records, header then data, as many as fit (at least
 *   a header's worth is required, -EINVAL; a first record that does not fit
 *   is -EINVAL); an empty queue reads 0 bytes; there is no write().
 * The vEVENTQ holds its vIOMMU, so IOMMU_DESTROY of the vIOMMU is -EBUSY
 * until the vEVENTQ is destroyed; its fd holds the vEVENTQ.
 */
import { EEXIST, EINVAL, ENOMEM, EOPNOTSUPP } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, IOMMU_VEVENTQ_TYPE_DEFAULT, iommufd_vevent_header, type iommu_veventq_alloc } from '../uapi/iommufd.ts';
import type { StructView } from '../uapi/struct.ts';
import { EventqFile, installEventq, type EventqObject } from './eventq-file.ts';
import type { Respond } from './ioas.ts';
import { injectedErrno } from './points.ts';
import { IommufdObject, type IommufdCtx } from './objects.ts';
import type { Viommu } from './viommu.ts';

/** VEVENTQ_MAX_DEPTH: the kernel's upper bound for veventq_depth. */
export const VEVENTQ_MAX_DEPTH = 2 ** 19;
const INT_MAX = 0x7fffffff;
const HDR = iommufd_vevent_header.size;

/** struct iommufd_vevent: a header and its data (none for the LOST_EVENTS header). */
interface Vevent {
  flags: number;
  sequence: number;
  data: Uint8Array | undefined;
}

/** struct iommufd_veventq */
export class VeventQueue extends IommufdObject implements EventqObject {
  readonly type = 'veventq';
  private readonly deliver: Vevent[] = [];
  /** The one pre-allocated LOST_EVENTS header (veventq->lost_events_header). */
  private readonly lost: Vevent = { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 0, data: undefined };
  /** Normal events waiting (the LOST_EVENTS header is not counted). */
  private numEvents = 0;
  private sequence = 0;
  /** Events lost so far (for tests and counters). */
  lostEvents = 0;

  constructor(
    readonly ctx: IommufdCtx,
    readonly viommu: Viommu,
    readonly veventqType: number,
    readonly depth: number,
  ) {
    super();
  }

  /** Records waiting to be read, the LOST_EVENTS header included (what poll() reports as EPOLLIN). */
  get pending(): number {
    return this.deliver.length;
  }

  get readable(): boolean {
    return this.deliver.length > 0;
  }

  /** iommufd_viommu_report_event() once the queue is found: 0, or -ENOMEM when the event was lost to a failed allocation. */
  report(data: Uint8Array): number {
    let rc = 0;
    let ev = this.lost;
    if (this.numEvents === this.depth) {
      this.lostEvents++;
    } else if (injectedErrno(this.ctx.host.platform.faults, 'iommufd.vevent_alloc', ENOMEM, { viommu: this.viommu.id, type: this.veventqType }) < 0) {
      rc = -ENOMEM;
      this.lostEvents++;
    } else {
      ev = { flags: 0, sequence: 0, data: data.slice() };
      this.numEvents++;
    }
    // iommufd_vevent_handler(): the LOST_EVENTS header leaves the tail as anything is queued (it may come back at once).
    if (this.deliver[this.deliver.length - 1] === this.lost) this.deliver.pop();
    ev.sequence = this.sequence;
    this.sequence = (this.sequence + 1) & INT_MAX;
    this.deliver.push(ev);
    this.ctx.host.platform.tracer.trace('iommufd.vevent', 'iommufd', {
      veventq: this.id, viommu: this.viommu.id, type: this.veventqType, sequence: ev.sequence, lost: ev === this.lost, queued: this.numEvents,
    });
    return rc;
  }

  /** iommufd_veventq_fops_read() */
  read(length: number): Uint8Array | number {
    if (length < HDR) return -EINVAL;
    const out: Uint8Array[] = [];
    let done = 0;
    while (this.deliver.length > 0) {
      const cur = this.deliver[0]!;
      if (HDR > length - done) break;
      const len = cur.data?.length ?? 0;
      if (cur !== this.lost && HDR + len > length - done) {
        // A first record that cannot fit at all is an error, not an empty read.
        if (done === 0) return -EINVAL;
        break;
      }
      this.deliver.shift();
      const rec = new Uint8Array(HDR + len);
      const dv = new DataView(rec.buffer);
      dv.setUint32(0, cur.flags, true);
      dv.setUint32(4, cur.sequence, true);
      if (cur.data !== undefined) rec.set(cur.data, HDR);
      if (cur !== this.lost) this.numEvents--;
      out.push(rec);
      done += rec.length;
    }
    const buf = new Uint8Array(done);
    let off = 0;
    for (const r of out) {
      buf.set(r, off);
      off += r.length;
    }
    return buf;
  }

  /** iommufd_veventq_abort(): drop what is queued and let go of the vIOMMU. */
  destroy(): void {
    this.deliver.length = 0;
    this.numEvents = 0;
    if (this.viommu.veventqs.get(this.veventqType) === this) this.viommu.veventqs.delete(this.veventqType);
    this.viommu.refs--;
  }
}

type AllocView = StructView<keyof typeof iommu_veventq_alloc.fields>;

/**
 * iommufd_veventq_alloc(): flags, __reserved or type DEFAULT -EOPNOTSUPP;
 * depth 0 or above VEVENTQ_MAX_DEPTH -EINVAL; not a vIOMMU -ENOENT; a queue
 * of that type already -EEXIST. Any other type is accepted, as the kernel
 * does (only the driver decides what it reports).
 */
export function veventqAlloc(ctx: IommufdCtx, v: AllocView, respond: Respond, proc: Process): number {
  const type = v.num('type');
  if (v.num('flags') !== 0 || v.num('__reserved') !== 0 || type === IOMMU_VEVENTQ_TYPE_DEFAULT) return -EOPNOTSUPP;
  const depth = v.num('veventq_depth');
  if (depth === 0 || depth > VEVENTQ_MAX_DEPTH) return -EINVAL;
  const viommu = ctx.get<Viommu>(v.num('viommu_id'), 'viommu');
  if (typeof viommu === 'number') return viommu;
  if (viommu.veventqs.has(type)) return -EEXIST;
  const fail = ctx.allocFails('veventq');
  if (fail < 0) return fail;
  const q = ctx.add(new VeventQueue(ctx, viommu, type, depth));
  viommu.refs++;
  viommu.veventqs.set(type, q);
  return installEventq(ctx, q, new EventqFile(q), proc, (id, fd) => {
    v.setNum('out_veventq_id', id);
    v.setNum('out_veventq_fd', fd);
  }, respond);
}

/** iommufd_viommu_report_event(): -EOPNOTSUPP when the vIOMMU has no vEVENTQ of that type. */
export function reportVevent(viommu: Viommu, type: number, data: Uint8Array): number {
  if (data.length === 0) return -EINVAL;
  const q = viommu.veventqs.get(type);
  return q === undefined ? -EOPNOTSUPP : q.report(data);
}
