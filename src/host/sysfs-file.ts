/**
 * Files opened under /sys and on directories (open(2) of a sysfs attribute
 * or a directory, as C programs and libc's fopen/opendir do): an attribute
 * reads like kernfs's seq_file (the text is made by the attribute's show()
 * when a read starts at offset 0, then read on from the file position), a
 * directory lists its entries (getdents) and refuses read() with -EISDIR.
 */
import { EINVAL, EISDIR, ENOENT, ESPIPE } from '../uapi/errno.ts';
import type { OpenFile, Vfs } from './vfs.ts';

/** lseek whence values (include/uapi/linux/fs.h). */
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

export class SysfsAttrFile implements OpenFile {
  private text = new Uint8Array(0);
  private pos = 0;

  constructor(
    readonly path: string,
    private readonly show: () => string,
  ) {}

  private contents(fromStart: boolean): Uint8Array {
    if (fromStart) this.text = new TextEncoder().encode(this.show());
    return this.text;
  }

  read(length: number): Uint8Array | number {
    const t = this.contents(this.pos === 0);
    const out = t.slice(this.pos, this.pos + length);
    this.pos += out.length;
    return out;
  }

  pread(length: number, offset: bigint): Uint8Array | number {
    const t = this.contents(offset === 0n);
    const off = offset > BigInt(t.length) ? t.length : Number(offset);
    return t.slice(off, off + length);
  }

  /** generic_file_llseek on a seq_file: SEEK_SET and SEEK_CUR; SEEK_END is -EINVAL (seq_lseek). */
  llseek(offset: bigint, whence: number): bigint | number {
    const to = whence === SEEK_SET ? offset : whence === SEEK_CUR ? BigInt(this.pos) + offset : -1n;
    if (whence !== SEEK_SET && whence !== SEEK_CUR) return -EINVAL;
    if (to < 0n || to > 2n ** 53n) return -EINVAL;
    this.pos = Number(to);
    return to;
  }
}

/** An open directory: its names (without "." and ".."), taken when listed. */
export class DirectoryFile implements OpenFile {
  constructor(
    readonly path: string,
    private readonly list: () => string[] | number,
  ) {}

  entries(): string[] | number {
    return this.list();
  }

  read(): number {
    return -EISDIR;
  }

  pread(): number {
    return -EISDIR;
  }

  llseek(offset: bigint, whence: number): bigint | number {
    return whence === SEEK_SET && offset === 0n ? 0n : -ESPIPE;
  }
}

/**
 * open(2) of a path that is not a device node: a sysfs attribute, or a
 * directory (the root, /dev and what lies below it, sysfs directories).
 * -ENOENT when nothing is there. Sysfs symlinks are read with readlink(2),
 * not followed: their text is Linux's, relative to the /sys/devices tree
 * this host does not lay out (programs take the link's last component).
 */
export function openNonDevice(vfs: Vfs, path: string, readdir: (path: string) => string[] | number): OpenFile | number {
  const e = vfs.sysfsEntry(path);
  if (e?.kind === 'file') return new SysfsAttrFile(path, e.read);
  if (e?.kind === 'link') return -ENOENT;
  const list = readdir(path);
  if (typeof list === 'number') return list;
  return new DirectoryFile(path, () => readdir(path));
}
