/**
 * What legitimately differs between a run on the rig (real Linux 7.3 in
 * QEMU) and a run on ioemu, rewritten to the same text before the outputs
 * are compared. Each rule names what it hides and why; nothing else is
 * rewritten, so every other difference is reported (and must be explained in
 * docs/linux-differences.md or fixed).
 */

/** What a rule may know about the side whose output it rewrites. */
export interface Side {
  /** 'linux' (the rig) or 'ioemu'. */
  name: 'linux' | 'ioemu';
  /** The IOMMU group number of the edu device on that side (EDU_GROUP). */
  group: number;
}

export interface NormalisationRule {
  id: string;
  /** What it rewrites and why that may differ. */
  why: string;
  apply(line: string, side: Side): string;
}

export const NORMALISATION_RULES: readonly NormalisationRule[] = [
  {
    id: 'timings',
    why: 'wall-clock durations ("123 us", "(100042 us + 100854 us)"): the rig measures QEMU TCG in real time, ioemu virtual time',
    // The rig README's own sed: s/\(?[0-9]+ us( \+ [0-9]+ us)?\)?/(time)/g
    apply: (line) => line.replace(/\(?[0-9]+ us( \+ [0-9]+ us)?\)?/g, '(time)'),
  },
  {
    id: 'group-number',
    why: "the IOMMU group number is an ID the kernel allocates in probe order (the rig's q35 has 3 functions probed before edu, ioemu's edu machine none); " +
      'only the number equal to that side\'s EDU_GROUP is replaced, so a wrong group still shows',
    apply: (line, side) =>
      line.replace(/(iommu_group[ =]|\/dev\/vfio\/|group=)([0-9]+)\b/g, (all, pre: string, n: string) => (Number(n) === side.group ? `${pre}<EDU_GROUP>` : all)),
  },
];

export function normalise(lines: readonly string[], side: Side): string[] {
  return lines.map((l) => NORMALISATION_RULES.reduce((s, r) => r.apply(s, side), l));
}
