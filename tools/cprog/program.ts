/**
 * A C program running as a process of a machine: its process and memory,
 * what the kernel side of its calls needs beyond the Process API (which fds
 * block, which came from a device node, stdio), virtual time, and the trace
 * of its system calls. The WASI imports (wasi.ts) and the shim's imports
 * (syscalls.ts) are written against this.
 *
 * Time: the program's own instructions take no virtual time; every call into
 * the host costs `callNs` (running the machine that far first, so a program
 * that polls a device register through pread sees the device progress), and
 * a call that waits (a blocking read, poll, a sleep) runs the machine until
 * what it waits for happens. A wait nothing can end (no event left, or only
 * events further than `hangNs` away) is a hang: the program ends (ProgramHang).
 */
import type { Machine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { errnoName, EBADF } from '../../src/uapi/errno.ts';
import { DEFAULT_POLLMASK } from '../../src/uapi/poll.ts';
import { ProgramMemory } from './memory.ts';

/** proc_exit(): unwinds the program. */
export class ProgramExit {
  constructor(readonly status: number) {}
}

/** A wait that can never end: the program would hang on Linux; here it ends with HANG_STATUS. */
export class ProgramHang extends Error {
  override name = 'ProgramHang';
}

/** Exit status of a program that hung (as timeout(1) reports one). */
export const HANG_STATUS = 124;

export interface StdioOptions {
  stdout?: (bytes: Uint8Array) => void;
  stderr?: (bytes: Uint8Array) => void;
  /** What reads of fd 0 return (then end of file); default: end of file at once. */
  stdin?: Uint8Array;
}

export interface TimeOptions {
  /** Virtual ns every call into the host costs (default 100). */
  callNs?: number;
  /** A wait with no event within this many virtual ns is a hang (default 60 s). */
  hangNs?: number;
}

export class Program {
  /** Set by attach() once the module is instantiated, before the program runs. */
  memory!: ProgramMemory;
  readonly pid: number;
  /** fds opened without O_NONBLOCK / EFD_NONBLOCK: reads wait where the kernel file says -EAGAIN. */
  private readonly blocking = new Set<number>();
  /** fds opened from a device node (character devices to fstat). */
  readonly devices = new Set<number>();
  private stdinPos = 0;
  private readonly stdioClosed = new Set<number>();
  readonly callNs: number;
  readonly hangNs: number;
  /** argv (argv[0] the program's name) and the environment as NAME=value strings. */
  argv: readonly string[] = ['prog'];
  envp: readonly string[] = [];
  /** Calls made so far. */
  calls = 0;
  private readonly tracing: boolean;

  constructor(
    readonly machine: Machine,
    readonly process: Process,
    readonly stdio: StdioOptions,
    time: TimeOptions,
  ) {
    this.pid = process.pid;
    this.callNs = time.callNs ?? 100;
    this.hangNs = time.hangNs ?? 60e9;
    this.tracing = machine.board.tracer.wants('proc.syscall');
  }

  /** The instantiated program's memory becomes the process's: 0 or -errno. */
  attach(memory: WebAssembly.Memory): number {
    this.memory = new ProgramMemory(this.machine, this.process, memory);
    return this.memory.attach();
  }

  get now(): number {
    return this.machine.board.scheduler.now;
  }

  /**
   * One system call: refresh the memory views, charge the call's virtual
   * time, run it, trace it. `run` returns a result >= 0 or -errno (Linux's).
   */
  call(name: string, args: () => string, run: () => number): number {
    this.memory.refresh();
    this.calls++;
    const s = this.machine.board.scheduler;
    if (this.callNs > 0) s.advance(this.callNs);
    if (!this.tracing) return run();
    const t0 = s.now;
    const r = run();
    const dur = s.now - t0;
    this.machine.board.tracer.trace('proc.syscall', `process ${this.pid}`, { pid: this.pid, call: name, args: args(), result: r, errno: r < 0 ? errnoName(r) : '' }, dur > 0 ? dur : undefined);
    return r;
  }

  /**
   * Run the machine until `ready()` or virtual time `deadline`: true when
   * ready. With no deadline and nothing left to happen, the program hangs.
   */
  waitUntil(ready: () => boolean, what: string, deadline = Infinity): boolean {
    const s = this.machine.board.scheduler;
    const limit = Math.min(deadline, s.now + this.hangNs);
    for (;;) {
      if (ready()) return true;
      const t = s.peekTime();
      if (t === undefined || t > limit) {
        if (deadline === Infinity) throw new ProgramHang(`${what}: nothing left to happen${t === undefined ? '' : ` within ${this.hangNs / 1e9} s of virtual time`} (it would wait forever)`);
        s.runUntil(deadline);
        return ready();
      }
      s.step();
    }
  }

  // --- fds ------------------------------------------------------------------------

  /** A new fd from the kernel: record whether it blocks and whether it is a device. */
  opened(fd: number, opts: { nonblock: boolean; device?: boolean }): void {
    this.blocking.delete(fd);
    this.devices.delete(fd);
    if (!opts.nonblock) this.blocking.add(fd);
    if (opts.device === true) this.devices.add(fd);
  }

  closed(fd: number): void {
    this.blocking.delete(fd);
    this.devices.delete(fd);
  }

  isBlocking(fd: number): boolean {
    return this.blocking.has(fd);
  }

  setBlocking(fd: number, blocking: boolean): void {
    if (blocking) this.blocking.add(fd);
    else this.blocking.delete(fd);
  }

  /** Readiness of an fd as poll(2) sees it (POLL* bits), or undefined for a closed one. */
  pollMask(fd: number): number | undefined {
    if (fd <= 2) return this.stdioClosed.has(fd) ? undefined : DEFAULT_POLLMASK;
    const f = this.process.file(fd);
    if (f === undefined) return undefined;
    return f.poll?.() ?? DEFAULT_POLLMASK;
  }

  // --- stdio ------------------------------------------------------------------------

  isStdio(fd: number): boolean {
    return fd >= 0 && fd <= 2;
  }

  writeStdio(fd: number, bytes: Uint8Array): number {
    if (this.stdioClosed.has(fd) || fd === 0) return -EBADF;
    const sink = fd === 1 ? this.stdio.stdout : this.stdio.stderr;
    sink?.(bytes.slice());
    return bytes.length;
  }

  readStdin(length: number): Uint8Array | number {
    if (this.stdioClosed.has(0)) return -EBADF;
    const src = this.stdio.stdin ?? new Uint8Array(0);
    const out = src.subarray(this.stdinPos, this.stdinPos + length);
    this.stdinPos += out.length;
    return out;
  }

  closeStdio(fd: number): number {
    if (this.stdioClosed.has(fd)) return -EBADF;
    this.stdioClosed.add(fd);
    return 0;
  }
}
