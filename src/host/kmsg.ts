/**
 * The kernel log (kernel/printk/printk.c) and its reader, /dev/kmsg
 * (devkmsg_open/read/llseek/poll): records with a sequence number and a
 * timestamp in virtual time, read one record per read(2) as
 * "<prio>,<seq>,<usec>,-;<text>\n". Drivers print through printk(), with
 * the subsystem's pr_fmt prefix in the text ("DMAR: ..."), and rate-limit
 * through ratelimit() (lib/ratelimit.c ___ratelimit).
 */
import { EAGAIN, EINVAL, EPIPE, ESPIPE } from '../uapi/errno.ts';
import { POLLERR, POLLIN, POLLPRI, POLLRDNORM } from '../uapi/poll.ts';
import type { OpenFile } from './vfs.ts';

/** include/linux/kern_levels.h */
export const KERN_ERR = 3;
export const KERN_WARNING = 4;
export const KERN_INFO = 6;

export interface LogRecord {
  seq: number;
  /** Virtual time of the printk, in ns. */
  ns: number;
  level: number;
  text: string;
}

/** How many records the ring keeps (older ones are overwritten: a reader behind them gets -EPIPE). */
const RING_RECORDS = 4096;
/** CONSOLE_EXT_LOG_MAX-ish: devkmsg_read's buffer; a read shorter than the record is -EINVAL. */
const SEEK_SET = 0;
const SEEK_END = 2;
const SEEK_DATA = 3;

export class KernelLog {
  private readonly ring: LogRecord[] = [];
  private nextSeq = 0;
  /** syslog's clear_seq (SEEK_DATA goes there); nothing here clears the log, so it stays at the first record. */
  private readonly clearSeq = 0;
  private readonly limits = new Map<string, RateLimit>();

  constructor(private readonly now: () => number) {}

  /** printk(level, text): one record per line of text. */
  printk(level: number, text: string): void {
    for (const line of text.replace(/\n$/, '').split('\n')) {
      this.ring.push({ seq: this.nextSeq++, ns: this.now(), level, text: line });
      if (this.ring.length > RING_RECORDS) this.ring.shift();
    }
  }

  get records(): readonly LogRecord[] {
    return this.ring;
  }

  private get firstSeq(): number {
    return this.ring[0]?.seq ?? this.nextSeq;
  }

  /**
   * ___ratelimit for the state named `func` (a DEFINE_RATELIMIT_STATE(rs,
   * interval, burst) in that function): true when this call may print. A
   * call after the interval has passed first logs "<func>: N callbacks
   * suppressed" when calls were refused meanwhile.
   */
  ratelimit(func: string, intervalNs = 5_000_000_000, burst = 10): boolean {
    let rs = this.limits.get(func);
    const t = this.now();
    if (rs === undefined) {
      rs = { begin: t, left: burst, missed: 0 };
      this.limits.set(func, rs);
    }
    if (t > rs.begin + intervalNs) {
      rs.left = burst;
      rs.begin = t;
      if (rs.missed > 0) this.printk(KERN_WARNING, `${func}: ${rs.missed} callbacks suppressed`);
      rs.missed = 0;
    }
    if (rs.left > 0) {
      rs.left--;
      return true;
    }
    rs.missed++;
    return false;
  }

  /** An open /dev/kmsg (devkmsg_open): it reads from the first record still in the ring. */
  open(): OpenFile {
    let seq = this.firstSeq;
    return {
      read: (length) => {
        if (seq < this.firstSeq) {
          // devkmsg_read: the reader fell behind the ring; it restarts at the first record.
          seq = this.firstSeq;
          return -EPIPE;
        }
        const r = this.ring[seq - this.firstSeq];
        if (r === undefined) return -EAGAIN;
        const text = new TextEncoder().encode(`${r.level},${r.seq},${Math.floor(r.ns / 1000)},-;${r.text}\n`);
        if (text.length > length) return -EINVAL;
        seq++;
        return text;
      },
      // devkmsg_llseek: only offset 0; SEEK_SET the first record, SEEK_DATA after the last clear, SEEK_END the next one.
      llseek: (offset, whence) => {
        if (offset !== 0n) return -ESPIPE;
        if (whence === SEEK_SET) seq = this.firstSeq;
        else if (whence === SEEK_DATA) seq = Math.max(this.clearSeq, this.firstSeq);
        else if (whence === SEEK_END) seq = this.nextSeq;
        else return -EINVAL;
        return 0n;
      },
      // devkmsg_poll: readable when a record is there; POLLERR|POLLPRI when the reader fell behind.
      poll: () => (seq < this.firstSeq ? POLLIN | POLLRDNORM | POLLERR | POLLPRI : seq < this.nextSeq ? POLLIN | POLLRDNORM : 0),
    };
  }
}

interface RateLimit {
  begin: number;
  left: number;
  missed: number;
}
