import { createIa32eBuilder } from '../iommu/pgtable/ia32e-builder.ts';
import { createVmsaBuilder } from '../iommu/pgtable/vmsa-builder.ts';
import type { CpuArch } from '../src/host/platform.ts';
import type { TablePageAllocator } from '../src/iommu-core/io-pgtable.ts';
import type { PhysMem } from '../src/memory/phys-mem.ts';

/**
 * x86-64 with 4-level paging (q35-vtd): user space ends at 2^47 minus the
 * guard page (TASK_SIZE_MAX, arch/x86/include/asm/page_64.h), mmap placement
 * starts below 0x7f00_0000_0000, and the first MiB of RAM stays with the
 * firmware (Linux reserves it: reserve_real_mode / trim_low_memory_range).
 * Process page tables are IA-32e 4-level with 46-bit physical addresses.
 */
export const X86_64: CpuArch = Object.freeze({
  name: 'x86_64',
  taskSizeMax: (1n << 47n) - 4096n,
  mmapBase: 0x7f00_0000_0000,
  lowReserve: 0x10_0000,
  newPageTable: (mem: PhysMem, alloc: TablePageAllocator) => createIa32eBuilder(mem, alloc, { levels: 4, maxPhysBits: 46 }),
});

/**
 * arm64 with 48-bit VAs and 4 KiB pages (virt-smmuv3): user space is the
 * lower half, [0, 2^48) (TASK_SIZE_64); process page tables are VMSAv8-64
 * stage 1 with non-global leaves (ASID-tagged, as user mappings are).
 */
export const ARM64: CpuArch = Object.freeze({
  name: 'arm64',
  taskSizeMax: 1n << 48n,
  mmapBase: 0xffff_0000_0000,
  lowReserve: 0,
  newPageTable: (mem: PhysMem, alloc: TablePageAllocator) => createVmsaBuilder(mem, alloc, { stage: 1, granule: 4096, iaBits: 48, oaBits: 48, nonGlobal: true }),
});
