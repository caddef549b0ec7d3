/**
 * The host's MSI data values: the vectors (x86) or EventIDs (ITS) the kernel
 * programs into devices and IOMMUs. One allocator for the whole host, so no
 * two interrupt sources ever share a value: an MSI is recognised by the
 * message written to the doorbell, as the interrupt controller does.
 * Values below 0x100 are never handed out (the architectural exception and
 * legacy range on x86).
 */
export class MsiDataAllocator {
  private readonly used = new Uint8Array(0x10000);

  /** A naturally aligned block of `n` (a power of two) values: its base, or -1 when none is free. */
  alloc(n = 1): number {
    for (let base = 0x100; base + n <= this.used.length; base += n) {
      let free = true;
      for (let i = 0; i < n && free; i++) if (this.used[base + i] !== 0) free = false;
      if (!free) continue;
      this.used.fill(1, base, base + n);
      return base;
    }
    return -1;
  }

  free(base: number, n: number): void {
    this.used.fill(0, base, base + n);
  }
}
