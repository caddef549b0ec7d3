import type { MsiController } from '../irq/msi-controller.ts';
import type { AddressSpace } from '../memory/address-space.ts';
import type { PhysMem } from '../memory/phys-mem.ts';
import type { PageTableBuilder, TablePageAllocator } from '../iommu-core/io-pgtable.ts';
import type { ConfigAccessor } from '../pci/enumerate.ts';
import type { SimContext } from '../sim/context.ts';
import type { RamSpan } from './page-allocator.ts';

/**
 * The CPU architecture as the kernel sees it: the user address-space layout
 * and the format of process page tables (arch/x86 or arch/arm64).
 */
export interface CpuArch {
  /** 'x86_64' or 'arm64' (uname -m). */
  readonly name: string;
  /**
   * TASK_SIZE_MAX: the end of user space as access_ok() checks it (x86-64
   * 4-level: 2^47 - PAGE_SIZE, the guard page below the canonical hole;
   * arm64 with 48-bit VAs: 2^48).
   */
  readonly taskSizeMax: bigint;
  /** Where top-down mmap placement starts (mm->mmap_base). */
  readonly mmapBase: number;
  /** RAM below this physical address is kept from the page allocator (x86's first MiB, for firmware). */
  readonly lowReserve: number;
  /** A new, empty process page table in this architecture's format, or a negative errno. */
  newPageTable(mem: PhysMem, alloc: TablePageAllocator): PageTableBuilder | number;
}

/**
 * What the host kernel needs from the machine it runs on: virtual time,
 * randomness, tracing, counters and injection points (SimContext), system
 * memory, the interrupt controller's MSI doorbell, PCI configuration access
 * (ECAM), the RAM it may allocate from, and the CPU architecture. The
 * machine (machines/board.ts) provides it; nothing in src/ knows machine kinds.
 */
export interface HostPlatform extends SimContext {
  readonly sysmem: AddressSpace;
  readonly msi: MsiController;
  /** Configuration space as the kernel's PCI code reads it. */
  readonly pciConfig: ConfigAccessor;
  /** The RAM the page allocator manages. */
  readonly ramSpans: readonly RamSpan[];
  /** Give back the frames of freed pages (they read as zeros again). */
  discardRam(gpa: number, bytes: number): void;
  readonly cpu: CpuArch;
}
