// The exchange's console pages in a real browser (headless Chromium via playwright-core), as an
// exchange operator: the overview (nodes, throughput chart) and the dead letters with their replay
// form (tick, submit, the confirmation), no horizontal overflow on a 375px phone, 44px targets, an
// automated WCAG 2 A/AA check (axe-core, injected locally) in both languages, and screenshots
// (/tmp/exchange-console.png, /tmp/exchange-dead-letters.png and screenshots/).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../src/config/index.ts';
import { exchangeActor, exchangePagesModules, seedExchangeConsole, type Seeded } from '../test/support/exchange-console.ts';
import { startTestPlatform, type TestPlatform } from '../test/support/platform.ts';

const SCREENSHOTS = path.join(repoRoot, 'screenshots');
const AXE = path.join(repoRoot, 'node_modules/axe-core/axe.min.js');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812 };
const PAGES = ['/console/exchange', '/console/exchange/members', '/console/exchange/subscriptions', '/console/exchange/dead-letters', '/console/exchange/refusals'];

let t: TestPlatform;
let browser: Browser;
let seeded: Seeded;
const contexts: BrowserContext[] = [];
const offsite: string[] = [];
const cspErrors: string[] = [];

before(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  t = await startTestPlatform({ GUSU_JOB_CONCURRENCY: '0', GUSU_DEMO: 'false' }, exchangePagesModules(), { resolveActor: exchangeActor });
  seeded = await seedExchangeConsole(t.platform.ctx.db);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.stop();
});

/** a browser acting as an exchange operator (the test resolver reads the test_actor cookie) */
async function open(viewport: { width: number; height: number }, opts: { bypassCSP?: boolean; as?: string } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: viewport.width < 600 ? 2 : 1, bypassCSP: opts.bypassCSP ?? false });
  contexts.push(context);
  await context.addCookies([{ name: 'test_actor', value: opts.as ?? 'operator', domain: new URL(t.url).hostname, path: '/console' }]);
  const page = await context.newPage();
  const origin = new URL(t.url).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== origin) offsite.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  return page;
}

async function noHorizontalOverflow(page: Page, width: number, where: string): Promise<void> {
  const { scrollWidth, culprit } = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].find((e) => e.getBoundingClientRect().right > w + 0.5 && !e.closest('.table-wrap') && !e.closest('details:not([open])'));
    return { scrollWidth: document.documentElement.scrollWidth, culprit: wide ? `${wide.tagName}.${wide.className}` : null };
  });
  assert.ok(scrollWidth <= width, `${where}: page is ${scrollWidth}px wide at ${width}px (${culprit})`);
}

describe('the exchange console in a browser', () => {
  test('overview: the heading, the nodes with their state, the throughput charts; screenshot', async () => {
    const page = await open(DESKTOP);
    const res = await page.goto(`${t.url}/console/exchange`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal((await page.locator('h1').textContent())?.trim(), '数据交换');
    assert.equal(await page.locator('.tabs [aria-current="page"]').textContent(), '概览');
    // the down node's row says so in words
    const down = page.locator('tr', { hasText: 'node-320506' });
    assert.equal((await down.locator('.badge').textContent())?.trim(), '离线');
    // both charts are drawn, with a name for assistive technology
    const charts = page.locator('svg[role="img"]');
    assert.equal(await charts.count(), 2);
    for (let i = 0; i < 2; i++) {
      const box = await charts.nth(i).boundingBox();
      assert.ok(box && box.width > 300 && box.height > 60, JSON.stringify(box));
      assert.ok((await charts.nth(i).locator('rect[fill="#0d3b66"]').count()) > 0, 'bars drawn');
    }
    // the per-minute table opens from its summary
    const summary = page.locator('details > summary');
    await summary.click();
    assert.ok(await page.locator('details table caption').isVisible());
    await summary.click();
    await page.screenshot({ path: '/tmp/exchange-console.png', fullPage: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'exchange-console-desktop-zh.png'), fullPage: true });
  });

  test('dead letters: tick two, replay them, see the confirmation; screenshot', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/console/exchange/dead-letters`);
    assert.equal((await page.locator('h1').textContent())?.trim(), '死信');
    // filter by subscription through the form
    await page.selectOption('#f-subscription', seeded.sub.pull);
    await Promise.all([page.waitForURL(/subscription=/), page.locator('form[aria-labelledby="filter"] button[type="submit"]').click()]);
    assert.match(await page.locator('#list + p').textContent() ?? '', /死信 25 条/);
    // no column is squeezed to a character a line: every row stays short
    const heights = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect().height));
    assert.ok(Math.max(...heights) < 160, `rows up to ${Math.max(...heights)}px tall`);
    await page.screenshot({ path: '/tmp/exchange-dead-letters.png', fullPage: true });
    // tick two rows through their labels
    const labels = page.locator('tbody label');
    assert.equal(await labels.count(), 20);
    await labels.nth(0).click();
    await labels.nth(1).click();
    assert.equal(await page.locator('tbody input[type="checkbox"]:checked').count(), 2);
    await Promise.all([page.waitForURL(/replayed=2/), page.locator('form[action$="/replay"] button', { hasText: '重放所选死信' }).click()]);
    assert.equal((await page.locator('[role="status"]').textContent())?.trim(), '已重放 2 条死信：它们已回到队列，将立即重新投递。');
    assert.match(await page.locator('#list + p').textContent() ?? '', /死信 23 条/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'exchange-dead-letters-desktop-zh.png'), fullPage: true });
  });

  test('no table row is squeezed tall at desktop width', async () => {
    const page = await open(DESKTOP);
    for (const p of PAGES) {
      await page.goto(`${t.url}${p}`);
      const heights = await page.locator('main tbody tr').evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect().height));
      assert.ok(heights.length > 0 && Math.max(...heights) < 160, `${p}: rows up to ${Math.max(...heights)}px tall`);
    }
  });

  test('nothing overflows horizontally on a 375px-wide phone (every page in zh, the busiest in en); screenshots', async () => {
    const page = await open(PHONE);
    for (const p of [...PAGES, '/console/exchange?lang=en', '/console/exchange/dead-letters?lang=en']) {
      await page.goto(`${t.url}${p}`);
      await noHorizontalOverflow(page, PHONE.width, p);
    }
    await page.goto(`${t.url}/console/exchange`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'exchange-console-mobile-zh.png'), fullPage: true });
    await page.goto(`${t.url}/console/exchange/dead-letters?lang=en`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'exchange-dead-letters-mobile-en.png'), fullPage: true });
  });

  test('links and buttons of the pages are at least 44px tall', async () => {
    const page = await open(PHONE);
    for (const p of PAGES) {
      await page.goto(`${t.url}${p}`);
      const small = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('.tabs a, .tabs [aria-current], .actions a, .button, .breadcrumbs a, .primary-nav a')]
          .map((e) => ({ text: e.textContent?.trim(), h: e.getBoundingClientRect().height }))
          .filter((e) => e.h < 44),
      );
      assert.deepEqual(small, [], p);
    }
  });

  test('axe-core finds no WCAG 2 A/AA violations (every page; phone and English on the busiest; operator and read-only)', async () => {
    const desktop = await open(DESKTOP, { bypassCSP: true });
    const phone = await open(PHONE, { bypassCSP: true });
    const readOnly = await open(DESKTOP, { bypassCSP: true, as: 'security' });
    const problems: string[] = [];
    const targets: [Page, string][] = [];
    // every page in Chinese on a desktop; English and the phone on the two busiest pages
    for (const p of PAGES) targets.push([desktop, p]);
    for (const p of ['/console/exchange', '/console/exchange/dead-letters']) targets.push([desktop, `${p}?lang=en`], [phone, p]);
    targets.push([desktop, `/console/exchange/dead-letters?subscription=${seeded.sub.pull}&replayed=2`], [readOnly, '/console/exchange/dead-letters']);
    for (const [pg, p] of targets) {
      await pg.goto(`${t.url}${p}`);
      // the per-minute table too
      await pg.evaluate(() => document.querySelectorAll('details').forEach((d) => d.setAttribute('open', '')));
      await pg.addScriptTag({ path: AXE });
      const violations = await pg.evaluate(async () => {
        const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
        const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
      });
      for (const v of violations) problems.push(`${p} @${pg.viewportSize()?.width}px: ${v}`);
    }
    assert.deepEqual(problems, []);
  });

  test('no page loaded anything from another host, and no CSP violation was reported', () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(cspErrors, []);
  });
});
