import { injectedErrno as checkErrno, type FaultInjector, type InjectionPointTable } from '../fault/injector.ts';

/**
 * Fault-injection points of the iommufd front end (DESIGN.md §7), defined on
 * the machine's injector when iommufd registers. Each is a step of drivers/iommu/iommufd/ that can
 * fail in Linux (the places the kernel's iommufd_fail_nth selftest reaches
 * through iommufd_should_fail() and failing allocations); an injected
 * failure must unwind cleanly: no object, area, pin, charge or IOMMU entry
 * left behind.
 */
export const IOMMUFD_INJECTION_POINTS = {
  'iommufd.object_alloc': { description: 'iommufd_object_alloc(): allocating an object or its ID fails (ENOMEM): IOAS, HWPT, device bind, fault queue, vEVENTQ', actions: ['fail'] },
  'iommufd.area_alloc': { description: 'iopt_alloc_area_pages(): allocating a struct iopt_area (or the iopt_pages of a new mapping) fails (ENOMEM)', actions: ['fail'] },
  'iommufd.pin': { description: 'pfn_reader_user_pin(): pin_user_pages of a batch of user pages fails (EFAULT)', actions: ['fail'] },
  'iommufd.account': { description: 'pfn_reader_user_update_pinned(): charging the pinned pages to locked memory fails (ENOMEM)', actions: ['fail'] },
  'iommufd.domain_map': { description: 'batch_to_domain(): iommu_map of a run into a domain fails (ENOMEM)', actions: ['fail'] },
  'iommufd.domain_alloc': { description: 'iommufd_hwpt_paging_alloc(): the IOMMU driver fails to allocate the paging domain (ENOMEM)', actions: ['fail'] },
  'iommufd.fault_alloc': { description: 'iommufd_fault_alloc(): creating the fault queue file fails (ENOMEM)', actions: ['fail'] },
  'iommufd.vevent_alloc': { description: 'iommufd_viommu_report_event(): allocating a vEVENT for a reported event fails (ENOMEM): the event is lost, its sequence number goes to the LOST_EVENTS header at the tail', actions: ['fail'] },
} as const satisfies InjectionPointTable;

export type IommufdInjectionPointName = keyof typeof IOMMUFD_INJECTION_POINTS;

/** Check an iommufd injection point: the errno to fail with (negative), or 0 to go on. */
export function injectedErrno(faults: FaultInjector, name: IommufdInjectionPointName, fallback: number, ctx?: Record<string, unknown>): number {
  return checkErrno(faults, name, fallback, ctx);
}
