import type { InjectionPointTable } from '../fault/injector.ts';

/** Fault-injection points of the host kernel's memory management (DESIGN.md §7). */
export const HOST_INJECTION_POINTS = {
  'host.page_alloc': { description: 'the host physical page allocator fails an allocation (ENOMEM)', actions: ['fail'] },
  'host.pin': { description: 'pin_user_pages (VFIO, iommufd): pinning one batch of user pages fails (fail: ENOMEM, or EFAULT with errno EFAULT); the batches already pinned are unpinned', actions: ['fail'] },
} as const satisfies InjectionPointTable;
