// Browser tests of the dashboard: Debian's Chromium through playwright-core (never a downloaded
// browser), the dashboard built from the current sources into a temporary folder, and a real
// server serving it. Skipped, saying so, where /usr/bin/chromium is missing, except under CI.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildDashboard } from '../../scripts/build-dashboard.ts';
import { CHROMIUM, launchChromium, noBrowser } from '../helpers/chromium.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** Screenshots for people: kept after the run (gitignored); the README's copies are in docs/images. */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts/dashboard');

export { CHROMIUM, noBrowser };

export async function builtDashboard(): Promise<{ dir: string; remove(): Promise<void> }> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'taskwire-dashboard-'));
  await buildDashboard(tmp);
  return { dir: tmp, remove: () => rm(tmp, { recursive: true, force: true }) };
}

/** Headless Chromium, as every browser test starts it (test/helpers/chromium.ts). */
export const launch = launchChromium;

/** A page that fails the test on any dialog (an XSS would alert) and collects console errors. */
export async function openPage(
  browser: Browser,
): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.setDefaultTimeout(20_000);
  return { page, dialogs, errors };
}

/** Opens the dashboard at `origin` signed in with `token` (the fragment link); resolves once it is live. */
export async function signIn(
  browser: Browser,
  origin: string,
  token: string,
): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const opened = await openPage(browser);
  await opened.page.goto(`${origin}/dashboard#token=${token}`);
  await opened.page.waitForSelector('[data-connection="live"]');
  await opened.page.waitForFunction(() =>
    /^\d+$/.test(document.querySelector('[data-stat="queued"]')?.textContent ?? ''),
  );
  return opened;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}
