/**
 * A fault-injection plan against a driver: the VT-d (or SMMUv3) driver's
 * page tables live in host pages; the plan makes the host page allocator
 * fail the 2nd allocation made while a process maps memory with VFIO
 * MAP_DMA. The ioctl must fail with the kernel's errno and roll back
 * completely; the invariant checker confirms nothing leaked and every
 * mapping that remains translates. The same plan can be given to the CLI:
 *   npx tsx bin/ioemu run default --inject my-plan.json
 * Run: npx tsx examples/fault-plan.ts [virt-smmuv3|q35-vtd]
 */
import {
  createMachine,
  applyPlan,
  type FaultPlan,
  checkInvariants,
  formatViolations,
  recordBaseline,
  vfioType1Setup,
} from '../src/index.ts';

export const PLAN: FaultPlan = {
  rules: [{ point: 'host.page_alloc', when: { nth: 2 }, action: { kind: 'fail', errno: 'ENOMEM' } }],
};

export function runFaultPlanExample(kind: 'virt-smmuv3' | 'q35-vtd' = 'q35-vtd', say: (s: string) => void = console.log): { result: number; violations: number } {
  const m = createMachine(kind);
  recordBaseline(m);
  const p = m.host.spawn({ memlockLimit: 2 ** 26 });
  const { v, container } = vfioType1Setup(m, p, '0000:00:03.0');
  const buf = p.mmap(2 * 2 ** 20, { populate: true });
  const applied = applyPlan(m, PLAN);
  const r = v.mapDma(container, { vaddr: buf, iova: 0x8000_0000n, size: 2 * 2 ** 20 });
  applied.disarm();
  const s = applied.rules[0]!;
  say(`${kind}: plan ${s.rule.point} nth ${s.rule.when?.nth} -> ${s.rule.action.kind}: ${s.matched} allocation(s) seen, ${s.injected} failed`);
  say(`${kind}: VFIO_IOMMU_MAP_DMA of 2 MiB returned ${r}${r === -12 ? ' (ENOMEM, as the kernel would)' : ''}`);
  const again = v.mapDma(container, { vaddr: buf, iova: 0x8000_0000n, size: 2 * 2 ** 20 });
  say(`${kind}: the same MAP_DMA without the fault: ${again}`);
  p.exit();
  m.run();
  const violations = checkInvariants(m);
  say(violations.length === 0 ? `${kind}: invariants hold: nothing leaked, nothing stale` : formatViolations(violations));
  return { result: r, violations: violations.length };
}

if (import.meta.url === `file://${process.argv[1]}`) runFaultPlanExample((process.argv[2] as 'virt-smmuv3' | 'q35-vtd' | undefined) ?? 'q35-vtd');
