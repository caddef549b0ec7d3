import { EAGAIN, EINVAL } from '../uapi/errno.ts';
import { POLLERR, POLLIN, POLLOUT } from '../uapi/poll.ts';
import type { OpenFile } from './vfs.ts';

const MAX = 0xffff_ffff_ffff_fffen;

/**
 * eventfd(2) in non-blocking mode: an 8-byte counter. write() adds, read()
 * returns the counter and resets it (-EAGAIN at zero), as without
 * EFD_SEMAPHORE. Kernel code signals it (VFIO interrupts, fault queues).
 */
export class EventFd implements OpenFile {
  private counter: bigint;
  /** Called whenever the counter rises (a poller waking up). */
  onSignal: (() => void) | undefined;

  constructor(initval = 0) {
    this.counter = BigInt(initval >>> 0);
  }

  get value(): bigint {
    return this.counter;
  }

  /** eventfd_signal() from kernel code. */
  signal(n = 1n): void {
    this.counter = this.counter + n > MAX ? MAX : this.counter + n;
    this.onSignal?.();
  }

  /** eventfd_poll(): readable while the counter is non-zero, writable while 1 more fits, an error at ULLONG_MAX. */
  poll(): number {
    let m = 0;
    if (this.counter > 0n) m |= POLLIN;
    if (this.counter === 0xffff_ffff_ffff_ffffn) m |= POLLERR;
    if (this.counter < MAX) m |= POLLOUT;
    return m;
  }

  read(length: number): Uint8Array | number {
    if (length < 8) return -EINVAL;
    if (this.counter === 0n) return -EAGAIN;
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, this.counter, true);
    this.counter = 0n;
    return out;
  }

  write(data: Uint8Array): number {
    if (data.length < 8) return -EINVAL;
    const v = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
    if (v === 0xffff_ffff_ffff_ffffn) return -EINVAL;
    if (this.counter + v > MAX) return -EAGAIN;
    this.counter += v;
    if (v > 0n) this.onSignal?.();
    return 8;
  }
}
