/**
 * A function's configuration space with per-bit write semantics (QEMU's
 * config/wmask/w1cmask): bits not in `wmask` are read-only, bits in `w1cmask`
 * are cleared by writing 1 (RW1C), and everything unimplemented reads 0.
 * Device code initialises registers with the `set*` helpers, which bypass the
 * masks; software goes through `read`/`write`, which apply them and then run
 * the write hooks of the registers touched (BAR remapping, MSI-X enable, PRI
 * reset, ...).
 */
/** `oldBytes` holds the written bytes' values before the write; it is valid only during the call. */
export type ConfigWriteHook = (offset: number, size: number, oldBytes: Uint8Array) => void;

interface HookEntry {
  start: number;
  end: number;
  fn: ConfigWriteHook;
}

/** Conventional PCI config space size, and PCIe's with extended capabilities. */
export const PCI_CONFIG_SIZE = 256;
export const PCIE_CONFIG_SIZE = 4096;

export class ConfigSpace {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly wmask: Uint8Array;
  readonly w1cmask: Uint8Array;
  private readonly hooks: HookEntry[] = [];
  /**
   * The old bytes of the writes in progress, a buffer per nesting depth (a
   * hook may write config space again, e.g. a reset) and length: a machine's
   * set-up makes hundreds of config writes, and none needs its own copy.
   */
  private readonly oldBytes: Uint8Array[] = [];
  private depth = 0;

  constructor(size: number = PCIE_CONFIG_SIZE) {
    this.size = size;
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
  }

  // --- device-side initialisation (no masks) ---------------------------

  get8(off: number): number {
    return this.bytes[off]!;
  }
  get16(off: number): number {
    return this.bytes[off]! | (this.bytes[off + 1]! << 8);
  }
  get32(off: number): number {
    return (this.get16(off) | (this.get16(off + 2) << 16)) >>> 0;
  }
  set8(off: number, v: number): void {
    this.bytes[off] = v;
  }
  set16(off: number, v: number): void {
    this.bytes[off] = v;
    this.bytes[off + 1] = v >>> 8;
  }
  set32(off: number, v: number): void {
    this.set16(off, v & 0xffff);
    this.set16(off + 2, v >>> 16);
  }

  /** Declare which bits of a register software may write (`size` bytes at `off`). */
  setWritable(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[off + i] = mask >>> (8 * i);
  }

  /** Declare RW1C bits (they are also made writable, so a 1 can reach them). */
  setW1C(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) {
      const m = (mask >>> (8 * i)) & 0xff;
      this.w1cmask[off + i] = m;
      this.wmask[off + i] = this.wmask[off + i]! & ~m;
    }
  }

  /** Set or clear status bits from the device side (e.g. an RW1C error bit). */
  setBits16(off: number, bits: number, on: boolean): void {
    this.set16(off, on ? this.get16(off) | bits : this.get16(off) & ~bits);
  }

  /** Run `fn` after software writes any byte of [start, start+len). */
  onWrite(start: number, len: number, fn: ConfigWriteHook): void {
    this.hooks.push({ start, end: start + len, fn });
  }

  // --- software access ---------------------------------------------------

  /** Read as software sees it; bytes beyond the space read as 0 (unimplemented). */
  read(off: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const o = off + i;
      v |= (o < this.size ? this.bytes[o]! : 0) << (8 * i);
    }
    return v >>> 0;
  }

  /** Write as software does: read-only bits keep their value, RW1C bits clear on 1. */
  write(off: number, size: number, value: number): void {
    if (off < 0 || off >= this.size) return;
    const n = Math.min(size, this.size - off);
    let old: Uint8Array;
    if (n <= 4) {
      // One buffer per depth and length (hooks read the length of what was written from it).
      const key = this.depth * 4 + n - 1;
      old = this.oldBytes[key] ?? (this.oldBytes[key] = new Uint8Array(n));
      for (let i = 0; i < n; i++) old[i] = this.bytes[off + i]!;
    } else {
      old = this.bytes.slice(off, off + n);
    }
    for (let i = 0; i < n; i++) {
      const o = off + i;
      const v = (value >>> (8 * i)) & 0xff;
      const wm = this.wmask[o]!;
      const w1c = this.w1cmask[o]!;
      let b = (this.bytes[o]! & ~wm) | (v & wm);
      b &= ~(v & w1c);
      this.bytes[o] = b;
    }
    this.depth++;
    try {
      const hooks = this.hooks;
      for (let i = 0; i < hooks.length; i++) {
        const h = hooks[i]!;
        if (off < h.end && off + n > h.start) h.fn(off, n, old);
      }
    } finally {
      this.depth--;
    }
  }
}
