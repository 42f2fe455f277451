// The portal and console in a real browser (headless Chromium via playwright-core): headings and
// entry points, the language switch and its cookie, no horizontal overflow on a 375px phone, the
// skip link, an automated WCAG 2 A/AA check (axe-core, injected locally), and screenshots.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../src/config/index.ts';
import { headerActor, startTestPlatform, type TestPlatform } from '../test/support/platform.ts';

const SCREENSHOTS = path.join(repoRoot, 'screenshots');
const AXE = path.join(repoRoot, 'node_modules/axe-core/axe.min.js');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812 };

let t: TestPlatform;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** requests to any host but ours, and CSP violations, seen by any page */
const offsite: string[] = [];
const cspErrors: string[] = [];

before(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  t = await startTestPlatform({}, [], { resolveActor: headerActor });
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

async function open(viewport: { width: number; height: number }, opts: { bypassCSP?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: viewport.width < 600 ? 2 : 1, bypassCSP: opts.bypassCSP ?? false });
  contexts.push(context);
  // the workbench is staff-only: console pages are seen as a synthetic staff member (tests only)
  await context.addCookies([{ name: 'test_actor', value: 'staff', domain: new URL(t.url).hostname, path: '/console' }]);
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
    const wide = [...document.querySelectorAll('body *')].find((e) => e.getBoundingClientRect().right > w + 0.5 && !e.closest('.table-wrap'));
    return { scrollWidth: document.documentElement.scrollWidth, culprit: wide ? `${wide.tagName}.${wide.className}` : null };
  });
  assert.ok(scrollWidth <= width, `${where}: page is ${scrollWidth}px wide at ${width}px (${culprit})`);
}

describe('public portal in a browser', () => {
  test('home: the heading, the three entry points, and a screenshot (desktop, Chinese)', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/`);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal((await page.locator('h1').textContent())?.trim(), '中国苏州');
    for (const name of ['信息公开', '在线办事', '公众参与']) {
      const link = page.locator('.cards .card-link', { hasText: name });
      assert.equal(await link.count(), 1, name);
      assert.ok(await link.isVisible(), name);
    }
    // the fonts render CJK: the heading is wider than a row of fallback boxes would be tall
    const box = await page.locator('h1').boundingBox();
    assert.ok(box && box.width > 60 && box.height > 20);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'home-desktop-zh.png'), fullPage: true });
  });

  test('the language switch shows English and the choice persists on the next page (cookie)', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/`);
    await Promise.all([page.waitForURL(`${t.url}/`), page.locator('.lang-switch a[lang="en"]').click()]);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal((await page.locator('h1').textContent())?.trim(), 'China Suzhou');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'home-desktop-en.png'), fullPage: true });
    await Promise.all([page.waitForURL(`${t.url}/directory`), page.locator('.primary-nav a', { hasText: 'All subsystems' }).click()]);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal((await page.locator('h1').textContent())?.trim(), 'All subsystems');
    const cookies = await page.context().cookies();
    const lang = cookies.find((c) => c.name === 'lang');
    assert.equal(lang?.value, 'en');
    assert.equal(lang?.sameSite, 'Lax');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'directory-desktop-en.png'), fullPage: true });
    // and back to Chinese
    await Promise.all([page.waitForURL(`${t.url}/directory`), page.locator('.lang-switch a[lang="zh-CN"]').click()]);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  });

  test('nothing overflows horizontally on a 375px-wide phone; screenshots (mobile, zh and en)', async () => {
    const page = await open(PHONE);
    for (const [p, shot] of [
      ['/', 'home-mobile-zh.png'],
      ['/?lang=en', 'home-mobile-en.png'],
      ['/directory', 'directory-mobile-zh.png'],
      ['/services?lang=en', null],
      ['/disclosure/divisions', null],
      ['/console', 'console-mobile-zh.png'],
      ['/console?lang=en', null],
      ['/no-such-page', null],
    ] as const) {
      await page.goto(`${t.url}${p}`);
      await noHorizontalOverflow(page, PHONE.width, p);
      if (shot) await page.screenshot({ path: path.join(SCREENSHOTS, shot), fullPage: true });
    }
  });

  test('touch targets in the header and navigation are at least 44px tall', async () => {
    const page = await open(PHONE);
    await page.goto(`${t.url}/`);
    const small = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.lang-switch a, .primary-nav a, .brand, .breadcrumbs a, .site-footer li a')]
        .map((e) => ({ text: e.textContent?.trim(), h: e.getBoundingClientRect().height }))
        .filter((e) => e.h < 44),
    );
    assert.deepEqual(small, []);
  });

  test('the skip link is hidden until focused, then visible, and moves focus to main', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/directory`);
    const skip = page.locator('a.skip-link');
    const before = await skip.boundingBox();
    assert.ok(!before || before.y + before.height <= 0, 'off-screen before focus');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
    const shown = await skip.boundingBox();
    assert.ok(shown && shown.y >= 0 && shown.height >= 30, `visible when focused: ${JSON.stringify(shown)}`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'skip-link-focused.png') });
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
  });

  test('focus is visible on links (an outline or a changed background)', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/`);
    const link = page.locator('.primary-nav a', { hasText: '信息公开' });
    const plain = await link.evaluate((e) => getComputedStyle(e).borderBottomColor + getComputedStyle(e).backgroundColor);
    await link.focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const focused = await link.evaluate((e) => getComputedStyle(e).borderBottomColor + getComputedStyle(e).backgroundColor);
    assert.notEqual(focused, plain);
  });

  test('axe-core finds no WCAG 2 A/AA violations on the home, directory and console pages', async () => {
    // axe is injected as an inline script, which the page's CSP rightly forbids: bypass it here only
    const page = await open(DESKTOP, { bypassCSP: true });
    const phone = await open(PHONE, { bypassCSP: true });
    const problems: string[] = [];
    for (const p of ['/', '/?lang=en', '/directory', '/services', '/disclosure/divisions', '/console', '/console?lang=en', '/no-such-page']) {
      for (const pg of [page, phone]) {
        await pg.goto(`${t.url}${p}`);
        await pg.addScriptTag({ path: AXE });
        const violations = await pg.evaluate(async () => {
          const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
          const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
          return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
        });
        for (const v of violations) problems.push(`${p} @${pg.viewportSize()?.width}px: ${v}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('desktop console screenshots (zh, en)', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/console`);
    assert.equal((await page.locator('.brand-name').textContent())?.trim(), '苏州市政务协同平台');
    assert.equal((await page.locator('.brand-sub').textContent())?.trim(), '工作台 · 政务网（内部）');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-desktop-zh.png'), fullPage: true });
    await page.goto(`${t.url}/console?lang=en`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'console-desktop-en.png'), fullPage: true });
    await page.goto(`${t.url}/services`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'services-desktop-zh.png'), fullPage: true });
    await page.goto(`${t.url}/no-such-page`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'not-found-desktop-zh.png'), fullPage: true });
  });

  test('no page loaded anything from another host, and no CSP violation was reported', () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(cspErrors, []);
  });
});
