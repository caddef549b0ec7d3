import { EFAULT } from '../uapi/errno.ts';
import { StructView, type StructDef } from '../uapi/struct.ts';
import { vfio_info_cap_header } from '../uapi/vfio.ts';
import type { UserArg } from './user-arg.ts';

/**
 * An INFO capability chain (vfio_info_cap_add / vfio_info_cap_shift in
 * vfio_main.c): each capability is padded to 8 bytes and appended; its
 * header's `next` is the offset of the following one, relative to the start
 * of the INFO struct once the chain is placed after it; the last one's next
 * is 0.
 */
export class InfoCaps {
  private readonly parts: Uint8Array[] = [];
  private total = 0;

  get size(): number {
    return this.total;
  }

  /** Append a capability of `bytes` (whose first 8 bytes are its header). Returns the bytes to fill. */
  add(id: number, version: number, bytes: number): Uint8Array {
    const size = Math.ceil(bytes / 8) * 8;
    const buf = new Uint8Array(size);
    const h = new StructView(vfio_info_cap_header, buf);
    h.setNum('id', id);
    h.setNum('version', version);
    this.parts.push(buf);
    this.total += size;
    return buf;
  }

  /** Append a capability laid out by `def` (header fields id/version/next first), filled from `values`. */
  addStruct<F extends string>(def: StructDef<F>, id: number, version: number, extra = 0): { view: StructView<F>; bytes: Uint8Array } {
    const bytes = this.add(id, version, def.size + extra);
    return { view: new StructView(def, bytes), bytes };
  }

  /** The chain as it goes after an INFO struct of `infoSize` bytes, with `next` offsets shifted. */
  build(infoSize: number): Uint8Array {
    const out = new Uint8Array(this.total);
    let off = 0;
    for (let i = 0; i < this.parts.length; i++) {
      const p = this.parts[i]!;
      out.set(p, off);
      const next = i + 1 < this.parts.length ? infoSize + off + p.length : 0;
      new StructView(vfio_info_cap_header, out.subarray(off, off + 8)).setNum('next', next);
      off += p.length;
    }
    return out;
  }
}

/**
 * Finish an INFO ioctl as vfio does: with a chain and room for it (argsz)
 * the chain is copied after the struct and cap_offset names it; without room
 * argsz is raised to what is needed and cap_offset is 0. Then the struct's
 * first `copySz` bytes are copied back. 0 or -EFAULT.
 */
export function writeInfo<F extends string>(u: UserArg, info: StructView<F>, copySz: number, caps: InfoCaps): number {
  const v = info as unknown as StructView<'argsz' | 'cap_offset'>;
  const infoSize = info.def.size;
  if (caps.size > 0) {
    if (v.num('argsz') < infoSize + caps.size) {
      v.setNum('argsz', infoSize + caps.size);
      v.setNum('cap_offset', 0);
    } else {
      if (u.write(infoSize, caps.build(infoSize)) < 0) return -EFAULT;
      v.setNum('cap_offset', infoSize);
    }
  }
  return u.write(0, info.bytes.subarray(0, copySz)) < 0 ? -EFAULT : 0;
}
