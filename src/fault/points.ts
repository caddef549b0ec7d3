/**
 * Every fault-injection point, named and described in one place (DESIGN.md
 * §7). Names are stable: plans and tests refer to them. Add a point here when
 * the code that checks it lands.
 */
export const INJECTION_POINTS = {
  'host.page_alloc': 'the host physical page allocator fails an allocation (ENOMEM)',
} as const;

export type InjectionPointName = keyof typeof INJECTION_POINTS;
