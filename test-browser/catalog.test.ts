// The catalog's pages in a real browser (headless Chromium via playwright-core), with the city
// profile's catalog: search through the form and a facet, an entry, the request form (its errors
// focused from the summary), the public catalog; no horizontal overflow on a 375px phone; an
// automated WCAG 2 A/AA check (axe-core, injected locally) in Chinese, English on one page and a
// phone on one page; screenshots in /tmp (catalog-console.png, catalog-public.png, …).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../src/config/index.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { startTestPlatform, type TestPlatform } from '../test/support/platform.ts';

const AXE = path.join(repoRoot, 'node_modules/axe-core/axe.min.js');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812 };

const ACTORS: Record<string, Actor> = {};
async function resolveActor(req: FastifyRequest): Promise<Actor> {
  const name = /(?:^|;\s*)test_actor=([a-z0-9-]+)/.exec(req.headers.cookie ?? '')?.[1];
  return (name && ACTORS[name]) || ANONYMOUS;
}

let t: TestPlatform;
let browser: Browser;
const contexts: BrowserContext[] = [];
const offsite: string[] = [];
const cspErrors: string[] = [];
let COND: { code: string; name: string; provider: string };
let OPEN: { code: string; name: string };
let agreementPath = '';
/** a second conditional entry: its request form stays a form after the first is requested */
let COND2: { code: string };

before(async () => {
  t = await startTestPlatform({ GUSU_DEMO: 'false', GUSU_JOB_CONCURRENCY: '0' }, [], { resolveActor });
  const db = t.platform.ctx.db;
  COND = (await db.query<typeof COND>(`select code, name, provider from catalog.entry where share_type = 'conditional' and kind <> 'base' and jsonb_array_length(items) >= 3 order by code limit 1`)).rows[0]!;
  OPEN = (await db.query<typeof OPEN>(`select code, name from catalog.entry where open order by code limit 1`)).rows[0]!;
  COND2 = (await db.query<typeof COND2>(`select code from catalog.entry where share_type = 'conditional' and kind <> 'base' and code <> $1 and provider not in ('SZ-RS', 'SZ-GA') order by code limit 1`, [COND.code])).rows[0]!;
  assert.ok(COND && OPEN && COND2, 'the city profile’s catalog is loaded');
  ACTORS.consumer = {
    kind: 'staff',
    accountId: '00000000-0000-4000-8000-0000000cb001',
    name: '目录浏览测试',
    department: COND.provider === 'SZ-RS' ? 'SZ-GA' : 'SZ-RS',
    post: '科员',
    roles: [],
  };
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

/** a browser signed in as staff of a consumer department (the test resolver reads the test_actor cookie), or anonymous */
async function open(viewport: { width: number; height: number }, opts: { bypassCSP?: boolean; anonymous?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: viewport.width < 600 ? 2 : 1, bypassCSP: opts.bypassCSP ?? false });
  contexts.push(context);
  if (!opts.anonymous) await context.addCookies([{ name: 'test_actor', value: 'consumer', domain: new URL(t.url).hostname, path: '/' }]);
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

async function axe(page: Page): Promise<string[]> {
  await page.evaluate(() => document.querySelectorAll('details').forEach((d) => d.setAttribute('open', '')));
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const a = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await a.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  });
}

describe('the catalog in a browser', () => {
  test('search: keywords through the form, then a facet; screenshot', async () => {
    const page = await open(DESKTOP);
    const res = await page.goto(`${t.url}/console/catalog`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal((await page.locator('h1').textContent())?.trim(), '政务信息资源目录');
    await page.screenshot({ path: '/tmp/catalog-console.png', fullPage: true });
    await page.fill('#f-q', '户籍');
    await Promise.all([page.waitForURL(/q=/), page.locator('form[role="search"] button[type="submit"]').click()]);
    assert.ok(await page.locator('tbody th a', { hasText: '户籍人口信息' }).count(), 'found by part of its name');
    // a facet value: every result is then of that provider
    const facet = page.locator('#facet-shareType + ul a').first();
    const label = (await facet.textContent())!.replace(/（.*$/, '');
    await Promise.all([page.waitForURL(/shareType=/), facet.click()]);
    const badges = await page.locator('tbody td .badge').allTextContents();
    assert.ok(badges.length > 0 && badges.filter((b) => /共享/.test(b)).every((b) => b === label), `${label}: ${badges.join(',')}`);
    await page.screenshot({ path: '/tmp/catalog-console-filtered.png', fullPage: true });
  });

  test('an entry, then its request form: the error summary leads to the fields', async () => {
    const page = await open(DESKTOP);
    await page.goto(`${t.url}/console/catalog/entries/${COND.code}`);
    assert.equal((await page.locator('h1').textContent())?.trim(), COND.name);
    await page.screenshot({ path: '/tmp/catalog-entry.png', fullPage: true });
    await Promise.all([page.waitForURL(/agreements\/new/), page.locator('a', { hasText: '申请共享' }).click()]);
    assert.ok(await page.locator('#f-purpose').isVisible());
    // submit with nothing filled in (the form has novalidate: the server says what is missing)
    await Promise.all([page.waitForLoadState('load'), page.locator('form[method="post"] button[type="submit"]').click()]);
    const summary = page.locator('.error-summary');
    assert.ok(await summary.isVisible());
    assert.match((await summary.textContent()) ?? '', /请填写用途/);
    await summary.locator('a[href="#f-purpose"]').click();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'f-purpose', 'the summary link moves focus to the field');
    await page.screenshot({ path: '/tmp/catalog-request-errors.png', fullPage: true });
    // filled in properly: the agreement's page, under review; axe on it
    await page.fill('#f-purpose', '政务服务效能监督核查');
    await page.fill('#f-legalBasis', '《优化营商环境条例》第五十七条');
    const boxes = page.locator('input[name="item"]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await Promise.all([page.waitForURL(/\/agreements\/[0-9a-f-]{36}\?done=requested/), page.locator('form[method="post"] button[type="submit"]').click()]);
    assert.match((await page.locator('h1').textContent()) ?? '', /^共享协议：/);
    assert.match((await page.locator('[role="status"]').textContent()) ?? '', /共享申请已提交/);
    await page.screenshot({ path: '/tmp/catalog-agreement.png', fullPage: true });
    agreementPath = new URL(page.url()).pathname;
  });

  test('the public catalog and an open entry; screenshot', async () => {
    const page = await open(DESKTOP, { anonymous: true });
    const res = await page.goto(`${t.url}/catalog`);
    assert.equal(res?.status(), 200);
    assert.equal((await page.locator('h1').textContent())?.trim(), '公共信息资源目录');
    await page.screenshot({ path: '/tmp/catalog-public.png', fullPage: true });
    await Promise.all([page.waitForURL(/\/catalog\/entries\//), page.locator('tbody th a').first().click()]);
    assert.equal(await page.locator('h1').count(), 1);
  });

  test('nothing overflows horizontally on a 375px-wide phone; screenshot', async () => {
    const page = await open(PHONE);
    for (const p of ['/console/catalog', `/console/catalog/entries/${COND.code}`, `/console/catalog/agreements/new?entry=${COND.code}`, '/console/catalog/agreements', '/console/catalog/freshness', '/catalog', `/catalog/entries/${OPEN.code}`, '/console/catalog?lang=en']) {
      await page.goto(`${t.url}${p}`);
      await noHorizontalOverflow(page, PHONE.width, p);
    }
    await page.goto(`${t.url}/console/catalog`);
    await page.screenshot({ path: '/tmp/catalog-console-phone.png', fullPage: true });
  });

  test('axe-core finds no WCAG 2 A/AA violations (Chinese; English on the search; a phone on the search and the public catalog)', async () => {
    const desktop = await open(DESKTOP, { bypassCSP: true });
    const phone = await open(PHONE, { bypassCSP: true });
    const anon = await open(DESKTOP, { bypassCSP: true, anonymous: true });
    const targets: [Page, string][] = [
      [desktop, '/console/catalog'],
      [desktop, '/console/catalog?provider=SZ-GA&q=%E4%BF%A1%E6%81%AF'],
      [desktop, `/console/catalog/entries/${COND.code}`],
      [desktop, `/console/catalog/agreements/new?entry=${COND2.code}`],
      [desktop, '/console/catalog/agreements'],
      [desktop, '/console/catalog/freshness'],
      [desktop, '/console/catalog?lang=en'],
      [phone, '/console/catalog'],
      [phone, '/catalog'],
      [anon, '/catalog'],
      [anon, `/catalog/entries/${OPEN.code}`],
    ];
    const problems: string[] = [];
    for (const [pg, p] of targets) {
      const res = await pg.goto(`${t.url}${p}`);
      assert.equal(res?.status(), 200, p);
      for (const v of await axe(pg)) problems.push(`${p} @${pg.viewportSize()?.width}px: ${v}`);
    }
    if (agreementPath) {
      await desktop.goto(`${t.url}${agreementPath}`);
      for (const v of await axe(desktop)) problems.push(`${agreementPath}: ${v}`);
    }
    // the request form with its errors shown
    await desktop.goto(`${t.url}/console/catalog/agreements/new?entry=${COND2.code}`);
    await Promise.all([desktop.waitForLoadState('load'), desktop.locator('form[method="post"] button[type="submit"]').click()]);
    for (const v of await axe(desktop)) problems.push(`request form with errors: ${v}`);
    assert.deepEqual(problems, []);
  });

  test('no page loaded anything from another host, and no CSP violation was reported', () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(cspErrors, []);
  });
});
