import { type ConfigSpace, PCI_CONFIG_SIZE } from './config-space.ts';
import { CFG, STATUS } from './header.ts';

/**
 * The two capability lists of a function's configuration space.
 *
 * Standard capabilities (PCI Local Bus 3.0 §6.7, PCIe Base 7.5.1.1.11) live in
 * the first 256 bytes after the header: byte 0 is the Capability ID, byte 1
 * the offset of the next capability (0 ends the list); the list starts at the
 * Capabilities Pointer (0x34) and Status bit 4 says the list exists.
 *
 * Extended capabilities (PCIe Base 7.6.3) start at 0x100 with a 32-bit header:
 * ID [15:0], version [19:16], next offset [31:20]. An empty extended list is a
 * header of 0 at 0x100.
 *
 * Capabilities are allocated bottom-up, dword aligned, in the order they are
 * added. Running out of space is a bug in the device definition, so it throws.
 * All header bytes stay read-only (their wmask is 0).
 */
export const CAP_LIST = {
  /** First byte after the type 0/1 header. */
  STD_START: 0x40,
  /** Where the extended list begins (PCIe Base 7.6.3). */
  EXT_START: 0x100,
  /** Standard header: ID byte and next-pointer byte. */
  STD_ID: 0x00,
  STD_NEXT: 0x01,
  EXT_ID_MASK: 0x0000ffff,
  EXT_VERSION_MASK: 0x000f0000,
  EXT_NEXT_MASK: 0xfff00000,
  EXT_VERSION_SHIFT: 16,
  EXT_NEXT_SHIFT: 20,
} as const;

export interface CapabilityEntry {
  id: number;
  offset: number;
}

/** The longest list a well-formed space can hold; bounds walks of corrupt lists. */
const MAX_STD_CAPS = (PCI_CONFIG_SIZE - CAP_LIST.STD_START) / 4;

export class CapabilityList {
  private readonly cfg: ConfigSpace;
  private nextStd: number = CAP_LIST.STD_START;
  private nextExt: number = CAP_LIST.EXT_START;
  private lastStd: number | undefined;
  private lastExt: number | undefined;

  constructor(cfg: ConfigSpace) {
    this.cfg = cfg;
  }

  /**
   * Allocate a standard capability of `length` bytes (header included) and
   * link it at the end of the list. Returns its offset.
   */
  addStd(id: number, length: number): number {
    if (!Number.isInteger(id) || id < 1 || id > 0xff) throw new RangeError(`bad capability ID ${id}`);
    if (!Number.isInteger(length) || length < 2) throw new RangeError(`bad capability length ${length}`);
    const off = this.nextStd;
    if (off + length > PCI_CONFIG_SIZE) {
      throw new RangeError(`no room for capability 0x${id.toString(16)} (${length} bytes at 0x${off.toString(16)})`);
    }
    this.cfg.set8(off + CAP_LIST.STD_ID, id);
    this.cfg.set8(off + CAP_LIST.STD_NEXT, 0);
    if (this.lastStd === undefined) {
      this.cfg.set8(CFG.CAPABILITY_LIST, off);
      this.cfg.setBits16(CFG.STATUS, STATUS.CAP_LIST, true);
    } else {
      this.cfg.set8(this.lastStd + CAP_LIST.STD_NEXT, off);
    }
    this.lastStd = off;
    this.nextStd = alignUp4(off + length);
    return off;
  }

  /**
   * Allocate an extended capability of `length` bytes (header included) and
   * link it at the end of the extended list. Returns its offset.
   */
  addExt(id: number, version: number, length: number): number {
    if (this.cfg.size <= CAP_LIST.EXT_START) {
      throw new RangeError('extended capabilities need a 4 KiB PCIe configuration space');
    }
    if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw new RangeError(`bad extended capability ID ${id}`);
    if (!Number.isInteger(version) || version < 0 || version > 0xf) {
      throw new RangeError(`bad extended capability version ${version}`);
    }
    if (!Number.isInteger(length) || length < 4) throw new RangeError(`bad extended capability length ${length}`);
    const off = this.nextExt;
    if (off + length > this.cfg.size) {
      throw new RangeError(`no room for extended capability 0x${id.toString(16)} at 0x${off.toString(16)}`);
    }
    this.cfg.set32(off, extHeader(id, version, 0));
    if (this.lastExt !== undefined) {
      const prev = this.cfg.get32(this.lastExt);
      this.cfg.set32(this.lastExt, ((prev & ~CAP_LIST.EXT_NEXT_MASK) | (off << CAP_LIST.EXT_NEXT_SHIFT)) >>> 0);
    }
    this.lastExt = off;
    this.nextExt = alignUp4(off + length);
    return off;
  }

  findStd(id: number): number | undefined {
    return this.stdCaps().find((c) => c.id === id)?.offset;
  }

  findExt(id: number): number | undefined {
    return this.extCaps().find((c) => c.id === id)?.offset;
  }

  /** Walk the standard list as software would, from the Capabilities Pointer. */
  stdCaps(): CapabilityEntry[] {
    const out: CapabilityEntry[] = [];
    if ((this.cfg.get16(CFG.STATUS) & STATUS.CAP_LIST) === 0) return out;
    let off = this.cfg.get8(CFG.CAPABILITY_LIST) & ~3;
    while (off >= CAP_LIST.STD_START && out.length < MAX_STD_CAPS) {
      out.push({ id: this.cfg.get8(off + CAP_LIST.STD_ID), offset: off });
      off = this.cfg.get8(off + CAP_LIST.STD_NEXT) & ~3;
    }
    return out;
  }

  /** Walk the extended list from 0x100; a zero header means the list is empty. */
  extCaps(): CapabilityEntry[] {
    const out: CapabilityEntry[] = [];
    if (this.cfg.size <= CAP_LIST.EXT_START) return out;
    const maxCaps = (this.cfg.size - CAP_LIST.EXT_START) / 4;
    let off: number = CAP_LIST.EXT_START;
    while (off >= CAP_LIST.EXT_START && off + 4 <= this.cfg.size && out.length < maxCaps) {
      const header = this.cfg.get32(off);
      if (header === 0) break;
      out.push({ id: header & CAP_LIST.EXT_ID_MASK, offset: off });
      off = (header >>> CAP_LIST.EXT_NEXT_SHIFT) & ~3;
    }
    return out;
  }
}

export function extHeader(id: number, version: number, next: number): number {
  return (id | (version << CAP_LIST.EXT_VERSION_SHIFT) | (next << CAP_LIST.EXT_NEXT_SHIFT)) >>> 0;
}

function alignUp4(n: number): number {
  return (n + 3) & ~3;
}
