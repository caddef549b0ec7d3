/**
 * WASI preview1 (`wasi_snapshot_preview1`) for a program running as an
 * emulated process, on the global WebAssembly API alone (no node:wasi, so it
 * runs in a browser): the subset wasi-libc uses. Files are the process's:
 * fd 3 is the root directory (wasi-libc's one preopen), every path resolves
 * in the emulated host (/dev device nodes, /sys), every fd the program opens
 * is the process's fd with the same number, so an fd inside an ioctl struct
 * means what the program meant. stdio goes to callbacks. Clocks are virtual
 * time, sleeps and poll run the machine, random_get draws from the machine's
 * seeded PRNG. Anything else is ENOSYS. Results cross as WASI errno values
 * (errno.ts); the kernel's Linux errno is what the trace shows.
 */
import { DirectoryFile, SysfsAttrFile } from '../../src/host/sysfs-file.ts';
import { EAGAIN, EBADF, EEXIST, EFAULT, ENOENT, ENOSYS, ENOTDIR, EROFS, ESPIPE } from '../../src/uapi/errno.ts';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from '../../src/uapi/poll.ts';
import { wasiErrno } from './errno.ts';
import { ProgramExit, type Program } from './program.ts';
import type { Prng } from '../../src/sim/prng.ts';

// wasi/api.h values.
const FILETYPE = { UNKNOWN: 0, CHAR: 2, DIR: 3, REGULAR: 4, SYMLINK: 7 } as const;
const FDFLAGS_NONBLOCK = 1 << 2;
const OFLAGS_CREAT = 1 << 0;
const OFLAGS_DIRECTORY = 1 << 1;
const OFLAGS_EXCL = 1 << 2;
const OFLAGS_TRUNC = 1 << 3;
const EVENTTYPE_CLOCK = 0;
const EVENTTYPE_FD_READ = 1;
const EVENTTYPE_FD_WRITE = 2;
const SUBCLOCKFLAGS_ABSTIME = 1;
const EVENTRWFLAGS_HANGUP = 1;
const ALL_RIGHTS = (1n << 30n) - 1n;
/** The root directory: wasi-libc's preopen, the process's fd 3. */
export const ROOT_FD = 3;
/** CLOCK_REALTIME at virtual time 0: 2026-01-01T00:00:00Z, so dates print sensibly and the same every run. */
const REALTIME_BASE_NS = 1_767_225_600n * 1_000_000_000n;

type Ptr = number;

/** A path in the emulated host's tree, resolved from a directory fd. */
function joinPath(dir: string, rel: string): string {
  const parts = rel.startsWith('/') ? [] : dir.split('/').filter((p) => p !== '');
  for (const p of rel.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

export function wasiImports(prog: Program, prng: Prng): Record<string, (...a: never[]) => number | void> {
  const proc = prog.process;
  const vfs = prog.machine.host.vfs;
  const u8 = () => prog.memory.u8;
  const dv = () => prog.memory.dv;
  const dec = new TextDecoder();
  const str = (ptr: Ptr, len: number) => dec.decode(u8().subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0)));
  /** A Linux-level result (>= 0 or -errno) as WASI's errno return. */
  const ret = (r: number) => (r < 0 ? wasiErrno(r) : 0);

  const dirOf = (fd: number): string | number => {
    const f = proc.file(fd);
    if (f === undefined) return -EBADF;
    return f instanceof DirectoryFile ? f.path : -ENOTDIR;
  };

  /** What a path is in the emulated host (for stat and d_type), or undefined when nothing is there. */
  const typeOf = (path: string): number | undefined => {
    if (vfs.node(path) !== undefined) return FILETYPE.CHAR;
    const e = vfs.sysfsEntry(path);
    if (e !== undefined) return e.kind === 'file' ? FILETYPE.REGULAR : e.kind === 'link' ? FILETYPE.SYMLINK : FILETYPE.DIR;
    return typeof proc.readdir(path) === 'number' ? undefined : FILETYPE.DIR;
  };

  const fdType = (fd: number): number => {
    if (prog.isStdio(fd)) return FILETYPE.CHAR;
    const f = proc.file(fd);
    if (f instanceof DirectoryFile) return FILETYPE.DIR;
    if (f instanceof SysfsAttrFile) return FILETYPE.REGULAR;
    return prog.devices.has(fd) ? FILETYPE.CHAR : FILETYPE.UNKNOWN;
  };

  /** Gather iovecs (ptr, len pairs at `iovs`) into one buffer. */
  const gather = (iovs: Ptr, n: number): Uint8Array | number => {
    const d = dv();
    let total = 0;
    for (let i = 0; i < n; i++) total += d.getUint32(iovs + 8 * i + 4, true);
    const out = new Uint8Array(total);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const p = d.getUint32(iovs + 8 * i, true);
      const l = d.getUint32(iovs + 8 * i + 4, true);
      if (p + l > u8().length) return -EFAULT;
      out.set(u8().subarray(p, p + l), off);
      off += l;
    }
    return out;
  };
  const iovTotal = (iovs: Ptr, n: number): number => {
    let total = 0;
    for (let i = 0; i < n; i++) total += dv().getUint32(iovs + 8 * i + 4, true);
    return total;
  };
  /** Scatter `data` over the iovecs; returns the bytes placed. */
  const scatter = (iovs: Ptr, n: number, data: Uint8Array): number => {
    let off = 0;
    for (let i = 0; i < n && off < data.length; i++) {
      const p = dv().getUint32(iovs + 8 * i, true);
      const l = Math.min(dv().getUint32(iovs + 8 * i + 4, true), data.length - off);
      u8().set(data.subarray(off, off + l), p);
      off += l;
    }
    return off;
  };

  /** read(2) with blocking: a blocking fd whose file says -EAGAIN waits until it is readable. */
  const readFd = (fd: number, length: number): Uint8Array | number => {
    if (fd === 0) return prog.readStdin(length);
    if (prog.isStdio(fd)) return -EBADF;
    let r = proc.read(fd, length);
    if (r === -EAGAIN && prog.isBlocking(fd)) {
      prog.waitUntil(() => ((prog.pollMask(fd) ?? POLLERR) & (POLLIN | POLLERR | POLLHUP)) !== 0, `read(${fd})`);
      r = proc.read(fd, length);
    }
    return r;
  };

  const writeFd = (fd: number, data: Uint8Array): number => (prog.isStdio(fd) ? prog.writeStdio(fd, data) : proc.write(fd, data));

  const filestat = (buf: Ptr, type: number, size: number): void => {
    const d = dv();
    for (let i = 0; i < 64; i += 8) d.setBigUint64(buf + i, 0n, true);
    d.setUint8(buf + 16, type);
    d.setBigUint64(buf + 24, 1n, true);
    d.setBigUint64(buf + 32, BigInt(size), true);
  };

  return {
    args_sizes_get: (argc: Ptr, bufSize: Ptr) => {
      dv().setUint32(argc, prog.argv.length, true);
      dv().setUint32(bufSize, prog.argv.reduce((a, s) => a + new TextEncoder().encode(s).length + 1, 0), true);
      return 0;
    },
    args_get: (argv: Ptr, buf: Ptr) => putStrings(prog, prog.argv, argv, buf),
    environ_sizes_get: (count: Ptr, bufSize: Ptr) => {
      dv().setUint32(count, prog.envp.length, true);
      dv().setUint32(bufSize, prog.envp.reduce((a, s) => a + new TextEncoder().encode(s).length + 1, 0), true);
      return 0;
    },
    environ_get: (env: Ptr, buf: Ptr) => putStrings(prog, prog.envp, env, buf),

    clock_res_get: (_id: number, out: Ptr) => {
      dv().setBigUint64(out, 1n, true);
      return 0;
    },
    // A vDSO read on Linux, not a system call: no call cost, not traced.
    clock_time_get: (id: number, _precision: bigint, out: Ptr) => {
      const t = BigInt(Math.round(prog.now));
      dv().setBigUint64(out, id === 0 ? REALTIME_BASE_NS + t : t, true);
      return 0;
    },

    random_get: (buf: Ptr, len: number) => {
      const b = u8();
      for (let i = 0; i < len; i++) b[(buf >>> 0) + i] = prng.nextU32() & 0xff;
      return 0;
    },
    proc_exit: (code: number) => {
      throw new ProgramExit(code & 0xff);
    },
    proc_raise: () => wasiErrno(ENOSYS),
    sched_yield: () => ret(prog.call('sched_yield', () => '', () => 0)),

    fd_prestat_get: (fd: number, out: Ptr) => {
      if (fd !== ROOT_FD) return wasiErrno(EBADF);
      dv().setUint8(out, 0);
      dv().setUint32(out + 4, 1, true);
      return 0;
    },
    fd_prestat_dir_name: (fd: number, path: Ptr, len: number) => {
      if (fd !== ROOT_FD) return wasiErrno(EBADF);
      if (len >= 1) u8()[path] = 0x2f;
      return 0;
    },

    fd_fdstat_get: (fd: number, out: Ptr) =>
      ret(prog.call('fstat', () => `fd ${fd}`, () => {
        if (!prog.isStdio(fd) && proc.file(fd) === undefined) return -EBADF;
        const d = dv();
        d.setUint8(out, fdType(fd));
        d.setUint16(out + 2, prog.isBlocking(fd) || prog.isStdio(fd) ? 0 : FDFLAGS_NONBLOCK, true);
        // No seek/tell rights on stdio: wasi-libc's isatty() then says "a terminal" (line-buffered stdout).
        const rights = prog.isStdio(fd) ? ALL_RIGHTS & ~((1n << 2n) | (1n << 5n)) : ALL_RIGHTS;
        d.setBigUint64(out + 8, rights, true);
        d.setBigUint64(out + 16, ALL_RIGHTS, true);
        return 0;
      })),
    fd_fdstat_set_flags: (fd: number, flags: number) =>
      ret(prog.call('fcntl', () => `fd ${fd}, F_SETFL, ${flags & FDFLAGS_NONBLOCK ? 'O_NONBLOCK' : '0'}`, () => {
        if (!prog.isStdio(fd) && proc.file(fd) === undefined) return -EBADF;
        prog.setBlocking(fd, (flags & FDFLAGS_NONBLOCK) === 0);
        return 0;
      })),
    fd_filestat_get: (fd: number, buf: Ptr) =>
      ret(prog.call('fstat', () => `fd ${fd}`, () => {
        if (!prog.isStdio(fd) && proc.file(fd) === undefined) return -EBADF;
        // sysfs attributes report a page, as kernfs does.
        filestat(buf, fdType(fd), fdType(fd) === FILETYPE.REGULAR ? 4096 : 0);
        return 0;
      })),
    path_filestat_get: (dirfd: number, _flags: number, path: Ptr, len: number, buf: Ptr) => {
      const rel = str(path, len);
      return ret(prog.call('stat', () => `"${rel}"`, () => {
        const dir = dirOf(dirfd);
        if (typeof dir === 'number') return dir;
        const t = typeOf(joinPath(dir, rel));
        if (t === undefined) return -ENOENT;
        filestat(buf, t, t === FILETYPE.REGULAR ? 4096 : 0);
        return 0;
      }));
    },
    path_open: (dirfd: number, _dirflags: number, path: Ptr, len: number, oflags: number, _rb: bigint, _ri: bigint, fdflags: number, out: Ptr) => {
      const rel = str(path, len);
      return ret(prog.call('open', () => `"${rel}"${fdflags & FDFLAGS_NONBLOCK ? ', O_NONBLOCK' : ''}`, () => {
        const dir = dirOf(dirfd);
        if (typeof dir === 'number') return dir;
        const abs = joinPath(dir, rel);
        const exists = typeOf(abs) !== undefined;
        if ((oflags & (OFLAGS_CREAT | OFLAGS_TRUNC)) !== 0 && !exists) return -EROFS;
        if ((oflags & OFLAGS_EXCL) !== 0 && exists) return -EEXIST;
        if ((oflags & OFLAGS_DIRECTORY) !== 0 && exists && typeOf(abs) !== FILETYPE.DIR) return -ENOTDIR;
        const fd = proc.open(abs);
        if (fd < 0) return fd;
        prog.opened(fd, { nonblock: (fdflags & FDFLAGS_NONBLOCK) !== 0, device: vfs.node(abs) !== undefined });
        dv().setUint32(out, fd, true);
        return fd;
      }));
    },
    path_readlink: (dirfd: number, path: Ptr, len: number, buf: Ptr, bufLen: number, used: Ptr) => {
      const rel = str(path, len);
      return ret(prog.call('readlink', () => `"${rel}"`, () => {
        const dir = dirOf(dirfd);
        if (typeof dir === 'number') return dir;
        const t = proc.readlink(joinPath(dir, rel));
        if (typeof t === 'number') return t;
        const bytes = new TextEncoder().encode(t).subarray(0, bufLen);
        u8().set(bytes, buf);
        dv().setUint32(used, bytes.length, true);
        return bytes.length;
      }));
    },
    fd_readdir: (fd: number, buf: Ptr, bufLen: number, cookie: bigint, used: Ptr) =>
      ret(prog.call('getdents', () => `fd ${fd}`, () => {
        const f = proc.file(fd);
        if (f === undefined) return -EBADF;
        if (!(f instanceof DirectoryFile)) return -ENOTDIR;
        const names = f.entries();
        if (typeof names === 'number') return names;
        const all = ['.', '..', ...names];
        const enc = new TextEncoder();
        const out = new Uint8Array(bufLen);
        let n = 0;
        for (let i = Number(cookie); i < all.length && n < bufLen; i++) {
          const name = enc.encode(all[i]!);
          const ent = new Uint8Array(24 + name.length);
          const edv = new DataView(ent.buffer);
          edv.setBigUint64(0, BigInt(i + 1), true);
          edv.setBigUint64(8, BigInt(i + 1), true);
          edv.setUint32(16, name.length, true);
          const t = i < 2 ? FILETYPE.DIR : typeOf(joinPath(f.path, all[i]!)) ?? FILETYPE.UNKNOWN;
          edv.setUint8(20, t);
          ent.set(name, 24);
          // A last entry that does not fit is cut: bufused == buf_len tells libc to ask again.
          const take = Math.min(ent.length, bufLen - n);
          out.set(ent.subarray(0, take), n);
          n += take;
        }
        u8().set(out.subarray(0, n), buf);
        dv().setUint32(used, n, true);
        return n;
      })),

    fd_read: (fd: number, iovs: Ptr, n: number, nread: Ptr) =>
      ret(prog.call('read', () => `fd ${fd}, ${iovTotal(iovs, n)} bytes`, () => {
        const r = readFd(fd, iovTotal(iovs, n));
        if (typeof r === 'number') return r;
        const got = scatter(iovs, n, r);
        dv().setUint32(nread, got, true);
        return got;
      })),
    fd_write: (fd: number, iovs: Ptr, n: number, nwritten: Ptr) =>
      ret(prog.call('write', () => `fd ${fd}, ${iovTotal(iovs, n)} bytes`, () => {
        const data = gather(iovs, n);
        if (typeof data === 'number') return data;
        const r = writeFd(fd, data);
        if (r >= 0) dv().setUint32(nwritten, r, true);
        return r;
      })),
    fd_pread: (fd: number, iovs: Ptr, n: number, offset: bigint, nread: Ptr) =>
      ret(prog.call('pread', () => `fd ${fd}, ${iovTotal(iovs, n)} bytes, offset 0x${offset.toString(16)}`, () => {
        if (prog.isStdio(fd)) return -ESPIPE;
        const r = proc.pread(fd, iovTotal(iovs, n), offset);
        if (typeof r === 'number') return r;
        const got = scatter(iovs, n, r);
        dv().setUint32(nread, got, true);
        return got;
      })),
    fd_pwrite: (fd: number, iovs: Ptr, n: number, offset: bigint, nwritten: Ptr) =>
      ret(prog.call('pwrite', () => `fd ${fd}, ${iovTotal(iovs, n)} bytes, offset 0x${offset.toString(16)}`, () => {
        if (prog.isStdio(fd)) return -ESPIPE;
        const data = gather(iovs, n);
        if (typeof data === 'number') return data;
        const r = proc.pwrite(fd, data, offset);
        if (r >= 0) dv().setUint32(nwritten, r, true);
        return r;
      })),
    fd_seek: (fd: number, offset: bigint, whence: number, out: Ptr) =>
      ret(prog.call('lseek', () => `fd ${fd}, ${offset}, ${whence}`, () => {
        if (prog.isStdio(fd)) return -ESPIPE;
        const r = proc.lseek(fd, offset, whence);
        if (typeof r === 'number') return r;
        dv().setBigUint64(out, r, true);
        return 0;
      })),
    fd_tell: (fd: number, out: Ptr) =>
      ret(prog.call('lseek', () => `fd ${fd}, 0, SEEK_CUR`, () => {
        if (prog.isStdio(fd)) return -ESPIPE;
        const r = proc.lseek(fd, 0n, 1);
        if (typeof r === 'number') return r;
        dv().setBigUint64(out, r, true);
        return 0;
      })),
    fd_close: (fd: number) =>
      ret(prog.call('close', () => `fd ${fd}`, () => {
        if (prog.isStdio(fd)) return prog.closeStdio(fd);
        const r = proc.close(fd);
        if (r === 0) prog.closed(fd);
        return r;
      })),
    fd_sync: (fd: number) => ret(prog.call('fsync', () => `fd ${fd}`, () => (prog.isStdio(fd) || proc.file(fd) !== undefined ? 0 : -EBADF))),
    fd_datasync: (fd: number) => ret(prog.call('fdatasync', () => `fd ${fd}`, () => (prog.isStdio(fd) || proc.file(fd) !== undefined ? 0 : -EBADF))),
    fd_advise: () => 0,

    poll_oneoff: (subs: Ptr, events: Ptr, n: number, nevents: Ptr) => ret(pollOneoff(prog, subs, events, n, nevents)),
  };
}

function putStrings(prog: Program, list: readonly string[], ptrs: Ptr, buf: Ptr): number {
  const enc = new TextEncoder();
  let off = buf;
  list.forEach((s, i) => {
    prog.memory.dv.setUint32(ptrs + 4 * i, off, true);
    const b = enc.encode(s);
    prog.memory.u8.set(b, off);
    prog.memory.u8[off + b.length] = 0;
    off += b.length + 1;
  });
  return 0;
}

/**
 * poll_oneoff: clock subscriptions (sleeps, poll's timeout) and fd
 * readiness (wasi-libc's poll/select). Ready fds are reported at once; else
 * the machine runs until one is ready or the earliest clock expires.
 */
function pollOneoff(prog: Program, subs: Ptr, events: Ptr, n: number, nevents: Ptr): number {
  interface Sub {
    userdata: bigint;
    type: number;
    fd: number;
    deadline: number;
  }
  const list: Sub[] = [];
  const d0 = prog.memory.dv;
  for (let i = 0; i < n; i++) {
    const s = subs + 48 * i;
    const type = d0.getUint8(s + 8);
    const sub: Sub = { userdata: d0.getBigUint64(s, true), type, fd: -1, deadline: Infinity };
    if (type === EVENTTYPE_CLOCK) {
      const timeout = Number(d0.getBigUint64(s + 24, true));
      const abs = (d0.getUint16(s + 40, true) & SUBCLOCKFLAGS_ABSTIME) !== 0;
      const id = d0.getUint32(s + 16, true);
      // An absolute CLOCK_REALTIME deadline is on the realtime clock: take its base off.
      sub.deadline = abs ? (id === 0 ? timeout - Number(REALTIME_BASE_NS) : timeout) : prog.now + prog.callNs + timeout;
    } else sub.fd = d0.getUint32(s + 16, true);
    list.push(sub);
  }
  const fds = list.filter((s) => s.type !== EVENTTYPE_CLOCK);
  const sleep = fds.length === 0;
  const describe = () =>
    sleep ? `${Math.max(0, Math.min(...list.map((s) => s.deadline)) - prog.now)} ns` : `fds [${fds.map((s) => `${s.fd}${s.type === EVENTTYPE_FD_WRITE ? 'w' : 'r'}`).join(' ')}]`;
  return prog.call(sleep ? 'nanosleep' : 'poll', describe, () => {
    const deadline = Math.min(...list.map((s) => s.deadline));
    const readyOf = (s: Sub): boolean => {
      if (s.type === EVENTTYPE_CLOCK) return prog.now >= s.deadline;
      const m = prog.pollMask(s.fd);
      if (m === undefined) return true; // reported with EBADF
      return (m & (s.type === EVENTTYPE_FD_READ ? POLLIN | POLLRDNORM | POLLERR | POLLHUP : POLLOUT | POLLWRNORM | POLLERR | POLLHUP)) !== 0;
    };
    prog.waitUntil(() => list.some(readyOf), sleep ? 'sleep' : `poll(${fds.map((s) => s.fd).join(', ')})`, deadline);
    const d = prog.memory.dv;
    let k = 0;
    for (const s of list) {
      if (!readyOf(s)) continue;
      const e = events + 32 * k++;
      for (let i = 0; i < 32; i += 8) d.setBigUint64(e + i, 0n, true);
      d.setBigUint64(e, s.userdata, true);
      d.setUint8(e + 10, s.type);
      if (s.type !== EVENTTYPE_CLOCK) {
        const m = prog.pollMask(s.fd);
        if (m === undefined) d.setUint16(e + 8, wasiErrno(EBADF), true);
        else {
          d.setBigUint64(e + 16, 1n, true);
          if ((m & POLLHUP) !== 0) d.setUint16(e + 24, EVENTRWFLAGS_HANGUP, true);
        }
      }
    }
    d.setUint32(nevents, k, true);
    return k;
  });
}

/** ENOSYS stubs for every other preview1 function a module imports. */
export function wasiStub(prog: Program, name: string): () => number {
  return () => wasiErrno(prog.call(name, () => '', () => -ENOSYS));
}
