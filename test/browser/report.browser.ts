/**
 * The report `npm start` writes, opened in headless Chromium: it loads with
 * no console error and fetches nothing, its plots draw and read at 1280 px
 * without zooming, the event table is collapsed and filters and pages, and
 * the page fits the window's width. Screenshots: test-results/screenshots/
 * report.png (the first screen) and report-full.png (the whole page).
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { main } from '../../cli/main.ts';
import { launch, screenshotPath, unreadablePlots, watchedPage } from './browser.ts';

const dir = mkdtempSync(join(tmpdir(), 'ioemu-report-'));
const html = join(dir, 'ioemu-report.html');
const quiet = { out: () => {}, err: (s: string) => void process.stderr.write(s) };

t.test('the report of the default scenario on both machines reads in a browser', async (t) => {
  t.equal(await main(['run', 'default', '--machine', 'all', '--report', html, '--quiet'], quiet), 0, 'npm start\'s run passes');
  const b = await launch();
  t.teardown(() => b.close());
  const { page, errors, external } = await watchedPage(b);
  await page.goto(pathToFileURL(html).href);
  await page.waitForLoadState('load');

  const plots = await unreadablePlots(page);
  t.ok(plots.count >= 10, `${plots.count} plots (histograms, activity, counters, hit rates per machine)`);
  t.same(plots.problems, [], 'every visible plot draws something, with text of 11 px or more');
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling at 1280 px');
  t.match(await page.locator('table.compare').innerText(), /virt-smmuv3\s+PASSED[\s\S]*q35-vtd\s+PASSED/, 'the machines compared at the top');

  const table = page.locator('details.events').first();
  t.equal(await table.evaluate((d) => (d as HTMLDetailsElement).open), false, 'the event table is collapsed');
  await table.locator('summary').click();
  const info = table.locator('[data-p=info]');
  const pages = Number((await info.innerText()).match(/of (\d+)/)![1]);
  t.ok(pages > 10, `${pages} pages of events`);
  await table.locator('select[data-f=event]').selectOption('fault.inject');
  t.match(await info.innerText(), /page 1 of 1 \(1 events\)/, 'filtered to the injected fault');
  t.match(await table.locator('tbody').innerText(), /fault\.inject/);
  await table.locator('select[data-f=event]').selectOption('');
  await table.locator('[data-p=next]').click();
  t.match(await info.innerText(), new RegExp(`page 2 of ${pages}`), 'next page');
  await table.locator('summary').click();

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshotPath('report.png') });
  await page.screenshot({ path: screenshotPath('report-full.png'), fullPage: true });
  t.same(errors, [], 'no console error');
  t.same(external, [], 'nothing fetched from the network');
  t.ok(readFileSync(screenshotPath('report.png')).length > 10_000, 'screenshot written');
});
