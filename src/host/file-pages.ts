import type { Mm } from './mm.ts';

/**
 * The pages of a file as mappings see them (struct address_space of a
 * memfd): pages by index, allocated on first touch, and the mms that map
 * the file, for truncation to zap.
 */
export interface PageCache {
  /** i_size in bytes. */
  readonly size: number;
  /**
   * The page at `index`, allocated on first use (shmem_get_folio); the cache
   * keeps its own reference. -EFAULT past the end of the file (SIGBUS),
   * -ENOMEM when no memory is left.
   */
  page(index: number): number;
  /** `mm` maps the file (i_mmap); once per mapping, undone by removeMapper. */
  addMapper(mm: Mm): void;
  removeMapper(mm: Mm): void;
}

/** The file side of a file mapping: which file, at which offset, shared or private. */
export interface VmaFile {
  readonly cache: PageCache;
  /** User address of file offset `offset`; pieces split off by munmap/mprotect keep it. */
  readonly base: number;
  readonly offset: number;
  /** MAP_SHARED: the file's pages themselves; MAP_PRIVATE: read from the file, copied on write. */
  readonly shared: boolean;
  /** munmap or exit removed the last piece: the mapping lets go of the file (fput). */
  release(): void;
}
