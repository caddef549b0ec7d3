/**
 * The differential harness's own rules (difftest/): the line diff, the
 * normalisation rules, and docs/linux-differences.md read as data, each
 * differing line explained by an entry or not.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { diffLines } from '../../difftest/diff.ts';
import { explain, parseDifferences } from '../../difftest/differences.ts';
import { normalise } from '../../difftest/normalise.ts';

t.test('the line diff gives the hunks where two outputs differ, with their lines on each side', async (t) => {
  t.same(diffLines(['a', 'b', 'c'], ['a', 'b', 'c']), []);
  t.same(diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']), [
    { linuxAt: 2, ioemuAt: 2, linux: ['b'], ioemu: ['x'] },
    { linuxAt: 5, ioemuAt: 5, linux: [], ioemu: ['e'] },
  ]);
  t.same(diffLines(['a', 'k1', 'k2', 'b'], ['a', 'b']), [{ linuxAt: 2, ioemuAt: 2, linux: ['k1', 'k2'], ioemu: [] }]);
});

t.test('normalisation hides timings and the group number that side was given, nothing else', async (t) => {
  const linux = { name: 'linux' as const, group: 3 };
  const ioemu = { name: 'ioemu' as const, group: 0 };
  t.same(normalise(['R x map -> 0 (6321 us)', 'R x dma MATCH (100042 us + 100854 us)', 'R x time.setup 47555 us'], linux), [
    'R x map -> 0 (time)',
    'R x dma MATCH (time)',
    'R x time.setup (time)',
  ]);
  t.same(normalise(['R type1 device.iommu_group 3', 'open /dev/vfio/3', 'group=4'], linux), ['R type1 device.iommu_group <EDU_GROUP>', 'open /dev/vfio/<EDU_GROUP>', 'group=4']);
  t.same(normalise(['R type1 device.iommu_group 0', 'R type1 device.iommu_group 3'], ioemu), ['R type1 device.iommu_group <EDU_GROUP>', 'R type1 device.iommu_group 3'], 'a wrong group still shows');
});

t.test('an entry explains a replaced line only with its counterpart, and its "same" part must agree', async (t) => {
  const diffs = parseDifferences(`
### two-sided
- linux: \`^(?<same>E x \\S+) -> -1 EBADFD$\`
- ioemu: \`^(?<same>E x \\S+) -> -1 EBADF$\`
- reason: r

### linux-only
- programs: \`^p1$\`
- linux: \`^only here$\`
- reason: r
`);
  t.equal(diffs.length, 2);
  const h = { linuxAt: 1, ioemuAt: 1, linux: ['E x bind -> -1 EBADFD', 'only here'], ioemu: ['E x bind -> -1 EBADF'] };
  t.same(explain(h, 'p1', diffs).map((v) => v.by), ['two-sided', 'linux-only', 'two-sided']);
  t.same(explain(h, 'p2', diffs).map((v) => v.by), ['two-sided', undefined, 'two-sided'], 'an entry for other programs does not apply');
  const other = { linuxAt: 1, ioemuAt: 1, linux: ['E x bind -> -1 EBADFD'], ioemu: ['E x open -> -1 EBADF'] };
  t.same(explain(other, 'p1', diffs).map((v) => v.by), [undefined, undefined], 'the same part differs: unexplained');
  const lone = { linuxAt: 1, ioemuAt: 1, linux: ['E x bind -> -1 EBADFD'], ioemu: [] };
  t.same(explain(lone, 'p1', diffs).map((v) => v.by), [undefined], 'no counterpart: unexplained');
  t.throws(() => parseDifferences('### e\n- reason: r\n'), /neither a linux nor an ioemu pattern/);
  t.throws(() => parseDifferences('### e\n- linux: `x`\n'), /no reason/);
  t.throws(() => parseDifferences('### e\n- linux: x\n- reason: r\n'), /one regular expression in backquotes/);
});

t.test('docs/linux-differences.md parses: every entry has a pattern and a reason', async (t) => {
  const diffs = parseDifferences(readFileSync(new URL('../../docs/linux-differences.md', import.meta.url), 'utf8'));
  t.ok(diffs.length >= 10, `${diffs.length} entries`);
  for (const d of diffs) t.ok(d.reason.length > 40, `${d.id} says why`);
});
