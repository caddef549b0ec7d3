/**
 * Headless Chromium for the browser tests (npm run test:browser): the
 * system's Debian chromium driven by playwright-core, which downloads no
 * browser of its own. Each page records its console errors, page errors and
 * every request that would leave this machine (aborted, and reported).
 */
import { chromium, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../architecture/imports.ts';

/** Where the screenshots go, for a person to look at (git-ignored). */
export const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots');

export const CHROMIUM = process.env.IOEMU_CHROMIUM ?? '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh browser profile in a temporary directory, removed on close. */
export async function launch(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'ioemu-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 1000 },
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface WatchedPage {
  page: Page;
  /** Console messages of type error, and uncaught exceptions. */
  errors: string[];
  /** Requests to anywhere but this machine (file:, data:, blob:, 127.0.0.1 are local). */
  external: string[];
}

export async function watchedPage(b: Browser): Promise<WatchedPage> {
  const page = await b.context.newPage();
  const errors: string[] = [];
  const external: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(`console: ${m.text()}`)));
  page.on('pageerror', (e) => void errors.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (/^(file|data|blob|about):/.test(url) || /^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url)) return route.continue();
    external.push(url);
    return route.abort();
  });
  return { page, errors, external };
}

/**
 * Every `<svg>` of a frame that draws nothing or that a person could not read
 * at this width: each must have a real size, shapes in it, and text drawn at
 * 11 px or more after the SVG is scaled to its box.
 */
export async function unreadablePlots(page: Page | FrameLocator, selector = 'svg'): Promise<{ count: number; problems: string[] }> {
  return page.locator(selector).evaluateAll((svgs) => {
    const problems: string[] = [];
    for (const el of svgs as SVGSVGElement[]) {
      const name = el.getAttribute('aria-label') ?? '(unnamed)';
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue; // inside a closed <details>
      if (box.width < 200 || box.height < 40) problems.push(`${name}: only ${box.width}x${box.height} px`);
      if (el.querySelectorAll('rect,path,line,circle').length === 0) problems.push(`${name}: draws nothing`);
      const scale = box.width / (el.viewBox.baseVal?.width || box.width);
      for (const t of el.querySelectorAll('text')) {
        const px = parseFloat(getComputedStyle(t).fontSize) * scale;
        if (px < 11) {
          problems.push(`${name}: text "${t.textContent}" at ${px.toFixed(1)} px`);
          break;
        }
      }
    }
    return { count: svgs.length, problems };
  });
}

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, name);
}
