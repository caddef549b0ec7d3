/**
 * The playground, built with esbuild and served on 127.0.0.1, in headless
 * Chromium: it loads with no console error, runs the default scenario on
 * both machines to PASSED in the page, shows the report with its plots, and
 * offers the trace, byte for byte the one `ioemu run` writes for the same
 * inputs; a bad plan is refused with a message. Screenshots:
 * test-results/screenshots/playground.png (after the run) and
 * playground-full.png.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../cli/main.ts';
import { buildPlayground, servePlayground } from '../../cli/playground.ts';
import { launch, screenshotPath, unreadablePlots, watchedPage } from './browser.ts';

const dir = mkdtempSync(join(tmpdir(), 'ioemu-playground-'));

t.test('the playground runs the default scenario in the page and hands out the same trace as the CLI', async (t) => {
  await buildPlayground(join(dir, 'site'));
  const { server, url } = await servePlayground(join(dir, 'site'), 0);
  t.teardown(() => void server.close());
  const b = await launch();
  t.teardown(() => b.close());
  const { page, errors, external } = await watchedPage(b);
  await page.goto(url);
  t.same(
    await page.locator('#scenario option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)),
    ['default', 'sva-ring', 'examples/edu/scenario.ts', 'examples/checksum/scenario.ts'],
    'the built-in scenarios and the examples',
  );

  await page.locator('details:has(#plan) > summary').click();
  await page.locator('#plan-preset').selectOption({ index: 1 });
  t.match(await page.locator('#plan').inputValue(), /"dma-engine\.pri\.request"/, 'a preset fills in the plan');
  await page.locator('#plan').fill('{ "rules": [ { "point": "no.such.point", "action": { "kind": "drop" } } ] }');
  await page.locator('#run').click();
  await page.waitForFunction(() => /Cannot run/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 60_000 });
  t.match(await page.locator('#status').innerText(), /no\.such\.point/, 'a plan naming no point is refused, with the reason');
  await page.locator('#plan').fill('');

  await page.locator('#machine').selectOption('all');
  await page.locator('#scenario').selectOption('default');
  await page.locator('#run').click();
  await page.locator('#result:not([hidden])').waitFor({ timeout: 180_000 });
  t.equal(await page.locator('#verdict').innerText(), 'PASSED');

  const report = page.frameLocator('#report');
  await report.locator('table.compare').waitFor();
  t.match(await report.locator('table.compare').innerText(), /virt-smmuv3\s+PASSED[\s\S]*q35-vtd\s+PASSED/);
  const plots = await unreadablePlots(report);
  t.ok(plots.count >= 10, `${plots.count} plots in the report`);
  t.same(plots.problems, [], 'the plots draw and read');

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-trace').click()]);
  const got = readFileSync((await download.path())!, 'utf8');
  const cliTrace = join(dir, 'cli.trace.json');
  t.equal(await main(['run', 'default', '--machine', 'all', '--trace', cliTrace, '--quiet'], { out: () => {}, err: () => {} }), 0);
  t.ok(got === readFileSync(cliTrace, 'utf8'), 'the downloaded trace is the CLI\'s, byte for byte');
  t.ok(JSON.parse(got).traceEvents.length > 1000);

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshotPath('playground.png') });
  await page.screenshot({ path: screenshotPath('playground-full.png'), fullPage: true });

  // The other scenarios run in the page too: a JSON one and the two example devices.
  await page.locator('#machine').selectOption('q35-vtd');
  for (const id of ['sva-ring', 'examples/edu/scenario.ts', 'examples/checksum/scenario.ts']) {
    await page.locator('#scenario').selectOption(id);
    await page.locator('#run').click();
    await page.waitForFunction(() => /^done/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 120_000 });
    t.equal(await page.locator('#verdict').innerText(), 'PASSED', `${id} on q35-vtd`);
    t.match(await page.frameLocator('#report').locator('h1').innerText(), /ioemu report/);
  }
  t.same(errors, [], 'no console error');
  t.same(external, [], 'nothing fetched from the network');
});
