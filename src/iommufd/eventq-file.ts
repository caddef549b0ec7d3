/**
 * What every iommufd event queue shares (the "Common Event Queue Functions"
 * of drivers/iommu/iommufd/eventq.c): the anon-inode file over the queue
 * object, which holds the object and the iommufd context until it is
 * released (iommufd_eventq_init / iommufd_eventq_fops_release), and the
 * allocation tail of IOMMU_FAULT_QUEUE_ALLOC and IOMMU_VEVENTQ_ALLOC: an fd
 * for the file, the IDs copied back, everything undone when either fails.
 * Fault queues (fault.ts) and vEVENTQs (veventq.ts) differ only in what
 * read() and write() do and what closing the file drops.
 */
import type { Process } from '../host/process.ts';
import type { OpenFile } from '../host/vfs.ts';
import { POLLIN, POLLOUT, POLLRDNORM } from '../uapi/poll.ts';
import type { Respond } from './ioas.ts';
import type { IommufdCtx, IommufdObject } from './objects.ts';
import { young } from '../lib/young.ts';

/** The object behind an event queue file (struct iommufd_eventq). */
export interface EventqObject extends IommufdObject {
  readonly ctx: IommufdCtx;
  read(length: number): Uint8Array | number;
  /** Something waits to be read (the deliver list is not empty). */
  readonly readable: boolean;
  /** Absent: the file has no write op (vfs_write gives -EINVAL). */
  write?(data: Uint8Array): number;
  /** The file went: drop what only a reader could still take (fault groups are answered Invalid). */
  fileReleased?(): void;
}

/** The anon-inode file of an event queue ("[iommufd-pgfault]", "[iommufd-viommu-event]"). */
export class EventqFile implements OpenFile {
  private closed = false;
  readonly write?: (data: Uint8Array) => number;

  constructor(readonly queue: EventqObject) {
    queue.refs++;
    queue.ctx.hold();
    if (queue.write !== undefined) this.write = young((data: Uint8Array) => queue.write!(data));
  }

  read(length: number): Uint8Array | number {
    return this.queue.read(length);
  }

  /** iommufd_eventq_fops_poll(): a fault queue is always writable (responses); readable while records wait. */
  poll(): number {
    return (this.queue.type === 'fault' ? POLLOUT : 0) | (this.queue.readable ? POLLIN | POLLRDNORM : 0);
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.fileReleased?.();
    this.queue.refs--;
    this.queue.ctx.put();
  }
}

/**
 * The shared tail of an event queue's alloc ioctl, after the object is in the
 * table: install an fd for `file`, report the object ID and fd through
 * `setOut`, copy the struct back; if the fd cannot be had or the copy fails,
 * the file and the object go again (iommufd_object_abort_and_destroy).
 */
export function installEventq(
  ctx: IommufdCtx, obj: EventqObject, file: EventqFile, proc: Process, setOut: (id: number, fd: number) => void, respond: Respond,
): number {
  const fd = proc.installFile(file);
  if (fd < 0) {
    file.release();
    ctx.remove(obj);
    return fd;
  }
  setOut(obj.id, fd);
  const r = respond();
  if (r < 0) {
    proc.close(fd);
    ctx.remove(obj);
  }
  return r;
}
