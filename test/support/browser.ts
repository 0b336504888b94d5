// The portal in a real browser: Debian's Chromium driven by playwright-core, axe-core checks,
// screenshots at two widths, and the page-load figures (transferred JavaScript, paint times).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { en } from '../../ui/src/i18n/en/index.ts';
import { REPO_ROOT } from './berth.ts';
import { ensurePackages } from './system.ts';

/** Debian's Chromium binary (the /usr/bin/chromium wrapper prints a shell warning). */
export const CHROMIUM = '/usr/lib/chromium/chromium';

/** The built portal the tests serve: BERTH_PORTAL_DIR when set (a build of one's own), else dist/ui. */
export const PORTAL_DIR: string = process.env.BERTH_PORTAL_DIR || path.join(REPO_ROOT, 'dist', 'ui');

/** Where a run leaves its screenshots and figures (git ignores /.tmp/). */
export const SHOTS_DIR: string = path.join(REPO_ROOT, '.tmp', 'screenshots');
export const FIGURES_FILE: string = path.join(REPO_ROOT, '.tmp', 'portal-figures.json');

/** The two widths every page is looked at: a laptop and a phone. */
export const WIDE = { width: 1280, height: 800 } as const;
export const NARROW = { width: 390, height: 844 } as const;

/** Throws (never skips) when the portal has not been built: the browser tests need dist/ui. */
export function assertPortalBuilt(dir: string = PORTAL_DIR): void {
  if (!existsSync(path.join(dir, 'index.html'))) {
    throw new Error(`the web portal is not built (${path.join(dir, 'index.html')} is missing): run npm run build (npm ci runs it too)`);
  }
}

/** Installs Debian's chromium when missing (as root), then launches it headless. */
export async function launchChromium(): Promise<Browser> {
  // Noto CJK: the Chinese pages' screenshots show characters, not boxes.
  await ensurePackages([{ binary: 'chromium', pkg: 'chromium' }, { binary: '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc', pkg: 'fonts-noto-cjk' }]);
  return chromium.launch({ executablePath: CHROMIUM });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** One axe-core finding, as printed when the check fails. */
export interface AxeFinding {
  readonly page: string;
  readonly width: number;
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly helpUrl: string;
  readonly targets: string[];
}

/**
 * Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page as it is now. The script is evaluated
 * through the DevTools protocol rather than added as a <script>: the portal's CSP forbids inline
 * scripts, and the test must not switch the CSP off to look at the page.
 */
export async function runAxe(page: Page, name: string): Promise<AxeFinding[]> {
  const loaded = await page.evaluate('typeof window.axe === "object"');
  if (!loaded) await page.evaluate(`${axeSource}\n;true`);
  const violations = (await page.evaluate(`window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, targets: v.nodes.map((n) => n.target.join(' ')) })))`)) as Omit<AxeFinding, 'page' | 'width'>[];
  const width = page.viewportSize()?.width ?? 0;
  return violations.map((v) => ({ ...v, page: name, width }));
}

/** axe findings as lines a developer can act on. */
export function describeFindings(findings: readonly AxeFinding[]): string {
  return findings
    .map((f) => `${f.page} @${f.width}px: ${f.id} (${f.impact ?? 'n/a'}) ${f.help} — ${f.helpUrl}\n    ${f.targets.slice(0, 5).join('\n    ')}${f.targets.length > 5 ? `\n    … and ${f.targets.length - 5} more` : ''}`)
    .join('\n');
}

/** A file-name-safe form of a page's name. */
export function shotName(name: string): string {
  return name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase() || 'page';
}

/** Saves a full-page PNG as .tmp/screenshots/<name>-<width>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SHOTS_DIR, { recursive: true });
  const file = path.join(SHOTS_DIR, `${shotName(name)}-${page.viewportSize()?.width ?? 0}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** What one page load cost, measured in the browser. */
export interface LoadFigures {
  readonly page: string;
  /** Bytes of JavaScript as transferred (Content-Length of the encoded body), summed. */
  readonly jsTransferredBytes: number;
  readonly jsFiles: { url: string; bytes: number; encoding: string | null }[];
  readonly firstContentfulPaintMs: number | null;
  readonly domContentLoadedMs: number | null;
}

/**
 * Loads `url` in a fresh page of `context` (empty cache unless the context was used) and sums the
 * JavaScript transferred, from the responses' Content-Length (the compressed size when
 * Content-Encoding is set), plus first contentful paint and DOMContentLoaded from the
 * performance API. `ready` waits for what marks the page as shown.
 */
export async function measureLoad(context: BrowserContext, url: string, name: string, ready: (page: Page) => Promise<void>): Promise<LoadFigures> {
  const page = await context.newPage();
  const jsFiles: { url: string; bytes: number; encoding: string | null }[] = [];
  const pending: Promise<void>[] = [];
  page.on('response', (response) => {
    if (!/\.m?js(\?|$)/.test(new URL(response.url()).pathname)) return;
    pending.push(
      (async () => {
        const length = await response.headerValue('content-length');
        const encoding = await response.headerValue('content-encoding');
        const bytes = length !== null ? Number(length) : (await response.body()).length;
        jsFiles.push({ url: new URL(response.url()).pathname, bytes, encoding });
      })(),
    );
  });
  await page.goto(url);
  await ready(page);
  await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => undefined);
  await Promise.all(pending);
  const timing = (await page.evaluate(`(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { fcp: fcp ? fcp.startTime : null, dcl: nav ? nav.domContentLoadedEventEnd : null };
  })()`)) as { fcp: number | null; dcl: number | null };
  await page.close();
  const round = (n: number | null) => (n === null ? null : Math.round(n));
  return {
    page: name,
    jsTransferredBytes: jsFiles.reduce((sum, f) => sum + f.bytes, 0),
    jsFiles,
    firstContentfulPaintMs: round(timing.fcp),
    domContentLoadedMs: round(timing.dcl),
  };
}

/**
 * An English message of the portal's catalogue with its {placeholders} filled: how the pages name
 * their controls. Keys are typed: a key the catalogue lost fails the type check.
 */
export function L(key: keyof typeof en, vars: Record<string, string | number> = {}): string {
  const template: string = en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/** Matches a label that starts with `text` (a field may add "(optional)" after its name). */
export function startsWith(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
}

/** Waits until a page has settled: its <h1> shown and no request in flight for a moment. */
export async function settle(page: Page): Promise<void> {
  await page.locator('h1').first().waitFor({ state: 'visible' });
  await page.waitForLoadState('networkidle', { timeout: 4_000 }).catch(() => undefined);
}

const keyPattern = new RegExp(`(^|[^\\w.])(${Object.keys(en).map((k) => k.replaceAll('.', '\\.')).join('|')})([^\\w.]|$)`);

/** Message keys shown instead of their text, in the page's text, title or labels (aria-label, placeholder, title, alt). */
export async function leakedKeys(page: Page, name: string): Promise<string[]> {
  const strings = (await page.evaluate(`[document.body.innerText, document.title, ...[...document.querySelectorAll('[aria-label],[placeholder],[title],[alt]')].flatMap((el) => ['aria-label', 'placeholder', 'title', 'alt'].map((a) => el.getAttribute(a) ?? ''))]`)) as string[];
  return [...new Set(strings.flatMap((s) => s.split('\n')).filter((line) => keyPattern.test(line)))].map((line) => `${name}: ${line.slice(0, 120)}`);
}

/**
 * What every page visited must pass, gathered over a run and asserted at its end (so a step still
 * does its own work when a page has an accessibility fault): axe findings, message keys shown
 * instead of text, and the list of pages seen.
 */
export class PageChecks {
  readonly findings: AxeFinding[] = [];
  readonly keyLeaks: string[] = [];
  readonly visited: string[] = [];

  /**
   * Opens `url` (or stays on the current page when null), waits for it to settle, checks it with
   * axe at 1280 px (and at 390 px with `narrowAxe`), and saves a screenshot at both widths.
   */
  async visit(page: Page, url: string | null, name: string, options: { narrowAxe?: boolean } = {}): Promise<void> {
    if (url !== null) await page.goto(url);
    await settle(page);
    this.visited.push(name);
    this.keyLeaks.push(...(await leakedKeys(page, name)));
    this.findings.push(...(await runAxe(page, name)));
    await screenshot(page, name);
    await page.setViewportSize(NARROW);
    await page.waitForTimeout(150);
    if (options.narrowAxe) this.findings.push(...(await runAxe(page, name)));
    await screenshot(page, name);
    await page.setViewportSize(WIDE);
  }
}
