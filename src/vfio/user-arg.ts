import { E2BIG, EFAULT, EINVAL } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { StructView, type StructDef } from '../uapi/struct.ts';

/**
 * The `arg` of a struct ioctl as the kernel sees it: a user pointer. A
 * Uint8Array is the struct's own bytes (updated in place where the kernel
 * copies results back; bytes beyond its end are unmapped, so -EFAULT); a
 * number is an address in the calling process, reached with
 * copy_from_user/copy_to_user.
 */
export class UserArg {
  private constructor(
    private readonly bytes: Uint8Array | undefined,
    private readonly addr: number,
    private readonly proc: Process,
  ) {}

  static of(arg: Uint8Array | number, proc: Process): UserArg | number {
    if (arg instanceof Uint8Array) return new UserArg(arg, 0, proc);
    if (!Number.isSafeInteger(arg) || arg < 0) return -EFAULT;
    return new UserArg(undefined, arg, proc);
  }

  /** copy_from_user of `len` bytes at `off`: a fresh copy, or -EFAULT. */
  read(off: number, len: number): Uint8Array | number {
    if (this.bytes !== undefined) {
      if (off < 0 || off + len > this.bytes.length) return -EFAULT;
      return this.bytes.slice(off, off + len);
    }
    return this.proc.copyFromUser(this.addr + off, len);
  }

  /** copy_to_user: 0 or -EFAULT. */
  write(off: number, data: Uint8Array): number {
    if (this.bytes !== undefined) {
      if (off < 0 || off + data.length > this.bytes.length) return -EFAULT;
      this.bytes.set(data, off);
      return 0;
    }
    return this.proc.copyToUser(this.addr + off, data);
  }

  /** strndup_user(): a NUL-terminated string of at most `max` bytes, or -EFAULT / -EINVAL. */
  readString(max: number): string | number {
    const out: number[] = [];
    for (let i = 0; i < max; i++) {
      const b = this.read(i, 1);
      if (typeof b === 'number') return b;
      if (b[0] === 0) return String.fromCharCode(...out);
      out.push(b[0]!);
    }
    return -EINVAL;
  }
}

/**
 * copy_struct_from_user(): a struct of `ksize` bytes from the user's `usize`
 * bytes: a shorter one zero-extended, a longer one only if the bytes past
 * `ksize` are zero (-E2BIG otherwise); -EFAULT where unreadable.
 */
export function copyStructFromUser(u: UserArg, ksize: number, usize: number): Uint8Array | number {
  const got = u.read(0, Math.min(usize, ksize));
  if (typeof got === 'number') return got;
  if (usize > ksize) {
    const tail = u.read(ksize, usize - ksize);
    if (typeof tail === 'number') return tail;
    if (tail.some((b) => b !== 0)) return -E2BIG;
  }
  const buf = new Uint8Array(ksize);
  buf.set(got);
  return buf;
}

/** copy_from_user of a struct's first `minsz` bytes into a zeroed struct-sized buffer, or -EFAULT. */
export function head<F extends string>(u: UserArg, def: StructDef<F>, minsz = def.size): StructView<F> | number {
  const bytes = u.read(0, minsz);
  if (typeof bytes === 'number') return bytes;
  const full = new Uint8Array(def.size);
  full.set(bytes);
  return new StructView(def, full);
}
