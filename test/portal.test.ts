// The public portal, the console shell and the layout they share, over HTTP on a whole platform.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Compile } from 'typebox/compile';
import { repoRoot } from '../src/config/index.ts';
import { safeLocalPath } from '../src/http/layout.ts';
import { CitySummarySchema } from '../src/portals/public/city.ts';
import { SubsystemsSchema } from '../src/portals/public/index.ts';
import { providedIds, SUBSYSTEMS } from '../src/portals/public/subsystems.ts';
import { AS_STAFF, headerActor, startTestPlatform, type TestPlatform } from './support/platform.ts';

const HTML = { accept: 'text/html,application/xhtml+xml' };

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({}, [], { resolveActor: headerActor });
});
after(async () => {
  await t?.stop();
});

/** console pages are fetched as a (synthetic) staff member: the workbench is staff-only */
async function get(pathAndQuery: string, headers: Record<string, string> = HTML): Promise<{ status: number; headers: Headers; body: string }> {
  const staff = pathAndQuery.startsWith('/console') ? AS_STAFF : {};
  const r = await fetch(`${t.url}${pathAndQuery}`, { headers: { ...headers, ...staff }, redirect: 'manual' });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

/** The <li> of one subsystem card on the directory page. */
function subsystemCard(body: string, id: string): string {
  const m = new RegExp(`<li class="card[^"]*" id="subsystem-${id}">([\\s\\S]*?)</li>`).exec(body);
  assert.ok(m, `directory has a card for ${id}`);
  return m[1]!;
}

function headingLevels(body: string): number[] {
  return [...body.matchAll(/<h([1-6])[\s>]/g)].map((m) => Number(m[1]));
}

const PAGES = ['/', '/disclosure', '/services', '/participation', '/directory', '/disclosure/divisions', '/disclosure/departments', '/console', '/problems/not-found', '/no-such-page'];

describe('home page', () => {
  test('Chinese by default: lang="zh-CN", the portal name as the one h1, the three entry points', async () => {
    const r = await get('/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/html; charset=utf-8/);
    assert.match(r.body, /<html lang="zh-CN">/);
    assert.match(r.body, /<h1>中国苏州<\/h1>/);
    for (const [href, name] of [
      ['/disclosure', '信息公开'],
      ['/services', '在线办事'],
      ['/participation', '公众参与'],
    ]) {
      assert.match(r.body, new RegExp(`<a class="card-link" href="${href}">${name}</a>`));
    }
    assert.match(r.body, /合成演示数据 \/ Synthetic demo data/);
  });

  test('?lang=en gives English', async () => {
    const r = await get('/?lang=en');
    assert.match(r.body, /<html lang="en">/);
    assert.match(r.body, /<h1>China Suzhou<\/h1>/);
    assert.match(r.body, />Information disclosure</);
    assert.match(r.body, />Online services</);
    assert.match(r.body, />Public participation</);
    assert.doesNotMatch(r.body, />信息公开</);
  });

  test('the home page shows no personal data: no resident or enterprise counts', async () => {
    const main = /<main[\s\S]*<\/main>/.exec((await get('/')).body)![0];
    assert.doesNotMatch(main, /居民|法人|Residents|Legal entities/);
  });
});

describe('language switch', () => {
  test('GET /lang sets a year-long SameSite=Lax cookie and returns to the page', async () => {
    const r = await get('/lang?to=en&back=%2Fdirectory%3Fx%3D1');
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/directory?x=1');
    const cookie = r.headers.get('set-cookie')!;
    assert.match(cookie, /^lang=en;/);
    assert.match(cookie, /Max-Age=31536000/);
    assert.match(cookie, /Path=\//);
    assert.match(cookie, /SameSite=Lax/);
    const next = await get('/directory', { ...HTML, cookie: 'lang=en' });
    assert.match(next.body, /<html lang="en">/);
    assert.match(next.body, /<h1>All subsystems<\/h1>/);
  });

  test('the page links to the other language with the current path (without its ?lang=)', async () => {
    const r = await get('/services?lang=zh-CN&a=b');
    assert.match(r.body, /href="\/lang\?to=en&amp;back=%2Fservices%3Fa%3Db"/);
  });

  test('refuses open redirects: anything but a local path goes home', async () => {
    for (const back of ['//evil.example', 'https://evil.example', '/\\evil', '/\\/evil.example', 'http:/evil.example', 'javascript:alert(1)', '/\r\nSet-Cookie:x=1', '\t//evil.example', 'evil.example', '']) {
      const r = await get(`/lang?to=en&back=${encodeURIComponent(back)}`);
      assert.equal(r.status, 303, back);
      assert.equal(r.headers.get('location'), '/', `back=${JSON.stringify(back)}`);
    }
    assert.equal((await get('/lang?to=en&back=%2F%2Fevil.example')).headers.get('location'), '/');
    assert.equal((await get('/lang?to=en')).headers.get('location'), '/');
  });

  test('an unknown language sets no cookie', async () => {
    const r = await get(`/lang?to=${'x'.repeat(5000)}&back=/`);
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('set-cookie'), null);
  });

  test('safeLocalPath keeps local paths and drops everything else', () => {
    assert.equal(safeLocalPath('/a/b?c=1#d'), '/a/b?c=1#d');
    assert.equal(safeLocalPath('/%E4%B8%AD'), '/%E4%B8%AD');
    assert.equal(safeLocalPath('/中文'), '/%E4%B8%AD%E6%96%87');
    for (const bad of ['//x', '/\\x', 'x', 'https://x', '/\u0000', '/a\nb', 42, undefined, '/' + 'a'.repeat(3000)]) assert.equal(safeLocalPath(bad), '/');
  });
});

describe('directory', () => {
  test('lists every subsystem of the plan with its status: available exactly when a module provides it, the rest planned', async () => {
    const r = await get('/directory');
    assert.equal(r.status, 200);
    const available = providedIds(t.platform.ctx.modules);
    assert.ok(available.has('portal') && available.has('directory') && available.has('mailbox'));
    for (const s of SUBSYSTEMS) {
      const c = subsystemCard(r.body, s.id);
      assert.ok(c.includes(s.name.zh.replace(/&/g, '&amp;')), s.id);
      const expected = available.has(s.id) ? 'available' : 'planned';
      assert.match(c, new RegExp(`badge-${expected}">${expected === 'available' ? '已上线' : '规划中'}<`), s.id);
    }
    assert.match(subsystemCard(r.body, 'grid'), /网格化城市管理/);
    assert.doesNotMatch(subsystemCard(r.body, 'grid'), /<a /, 'a planned subsystem is not a link');
    assert.match(subsystemCard(r.body, 'portal'), /<a class="card-link" href="\/">/);
    for (const layer of ['基础层', '表现层', '应用层']) assert.match(r.body, new RegExp(`<h2 [^>]*>${layer}</h2>`));
  });

  test('section pages link only what works; planned items are labelled and unlinked', async () => {
    const services = await get('/services');
    assert.match(services.body, /规划中/);
    // the mailbox works (the messaging module provides it); every other service link is absent
    const links = [...services.body.matchAll(/<a class="card-link" href="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(links, ['/me/mailbox']);
    const participation = await get('/participation');
    assert.match(participation.body, /<a class="card-link" href="\/me\/mailbox">/);
    const disclosure = await get('/disclosure');
    assert.match(disclosure.body, /<a class="card-link" href="\/disclosure\/divisions">行政区划<\/a>/);
    assert.match(disclosure.body, /政务信息资源目录/);
    const divisions = await get('/disclosure/divisions');
    assert.match(divisions.body, /苏州工业园区/);
    assert.match(divisions.body, /姑苏区/);
    assert.doesNotMatch(divisions.body, /社区<\/td>/, 'no village-level units');
  });
});

describe('errors', () => {
  test('an unknown page is HTML for a browser, with the request id and a way home', async () => {
    const r = await get('/no-such-page', { ...HTML, 'x-request-id': 'req-portal-404' });
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type')!, /^text\/html/);
    assert.match(r.body, /<h1>未找到<\/h1>/);
    assert.match(r.body, /req-portal-404/);
    assert.match(r.body, /href="\/">返回首页</);
    assert.match(r.body, /href="\/problems\/not-found"/);
  });

  test('an unknown page is problem+json for anything else', async () => {
    for (const headers of [{ accept: 'application/json' }, {} as Record<string, string>]) {
      const r = await get('/no-such-page', headers);
      assert.equal(r.status, 404);
      assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
      assert.equal(JSON.parse(r.body).type, '/problems/not-found');
    }
  });

  test('a problem type is documented as a page', async () => {
    const r = await get('/problems/validation?lang=en');
    assert.equal(r.status, 200);
    assert.match(r.body, /<h1>Validation failed<\/h1>/);
  });
});

describe('hostile input', () => {
  test('a query string with markup is never reflected raw', async () => {
    const evil = '<script>alert(1)</script>';
    for (const p of ['/', '/directory', '/no-such-page', '/console']) {
      const r = await get(`${p}?q=${encodeURIComponent(evil)}&"onmouseover=x`);
      assert.ok(!r.body.includes('<script>alert(1)'), p);
      assert.ok(!r.body.includes('"onmouseover'), p);
    }
    const path404 = await get(`/${encodeURIComponent(evil)}`);
    assert.equal(path404.status, 404);
    assert.ok(!path404.body.includes('<script>'));
  });

  test('a very long or strange lang value is ignored', async () => {
    for (const lang of ['x'.repeat(10_000), 'en<script>', 'EN', 'zh-CN"><b>', '中文']) {
      const r = await get(`/?lang=${encodeURIComponent(lang)}`);
      assert.equal(r.status, 200);
      assert.match(r.body, /<html lang="zh-CN">/);
      assert.ok(!r.body.includes('xxxxxxxxxxxxxxxxxxxx'), 'long value not reflected');
      assert.ok(!r.body.includes('<script>') && !r.body.includes('"><b>'));
    }
    const cookie = await get('/', { ...HTML, cookie: `lang=${'y'.repeat(3000)}` });
    assert.match(cookie.body, /<html lang="zh-CN">/);
  });

  test('unicode in the path and query is escaped in links and text', async () => {
    const r = await get(`/directory?q=${encodeURIComponent('苏州 "引号" <标签> \u202e')}`);
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes('<标签>'));
    const nf = await get(`/${encodeURIComponent('园区<i>')}`);
    assert.equal(nf.status, 404);
    assert.ok(!nf.body.includes('<i>'));
  });
});

describe('JSON APIs', () => {
  test('/api/v1/city matches its schema and carries no village-level units', async () => {
    const r = await get('/api/v1/city', { accept: 'application/json' });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    const check = Compile(CitySummarySchema);
    assert.ok(check.Check(body), JSON.stringify(check.Errors(body).slice(0, 3)));
    assert.equal(body.city.portalName, '中国苏州');
    assert.equal(body.divisions.length, t.platform.ctx.profile.divisions.length);
    assert.ok(body.divisions.every((d) => d.children.length > 0 && d.children.every((s) => !('children' in s))));
    assert.ok(body.departments.length > 0);
  });

  test('/api/v1/subsystems matches its schema and agrees with the directory', async () => {
    const r = await get('/api/v1/subsystems', { accept: 'application/json' });
    const body = JSON.parse(r.body);
    const check = Compile(SubsystemsSchema);
    assert.ok(check.Check(body), JSON.stringify(check.Errors(body).slice(0, 3)));
    assert.equal(body.subsystems.length, SUBSYSTEMS.length);
    const status = Object.fromEntries(body.subsystems.map((s: { id: string; status: string }) => [s.id, s.status]));
    assert.equal(status.portal, 'available');
    assert.equal(status.directory, 'available');
    assert.equal(status.grid, 'planned');
    assert.equal(status.intranet, 'planned');
    assert.equal(status.mailbox, 'available');
    const available = providedIds(t.platform.ctx.modules).size;
    assert.equal(body.available, available);
    assert.equal(body.planned, SUBSYSTEMS.length - available);
  });

  test('both appear in the OpenAPI document with a tag', async () => {
    const doc = JSON.parse((await get('/api/openapi.json', { accept: 'application/json' })).body);
    for (const p of ['/api/v1/city', '/api/v1/subsystems']) {
      assert.ok(doc.paths[p]?.get, p);
      assert.deepEqual(doc.paths[p].get.tags, ['portal']);
      assert.ok(doc.paths[p].get.responses['200']);
    }
  });
});

describe('console', () => {
  test('shows platform status, aggregates per county, departments and the network, and points staff to sign-in', async () => {
    const r = await get('/console');
    assert.equal(r.status, 200);
    assert.match(r.body, /class="shell-console"/);
    assert.match(r.body, /<span class="brand-name">苏州市政务协同平台<\/span><span class="brand-sub">工作台 · 政务网（内部）<\/span>/);
    assert.match(r.body, /<title>工作台 - 苏州市政务协同平台<\/title>/);
    assert.match(r.body, /工作人员登录/);
    assert.match(r.body, /可连接，响应 \d+ 毫秒/);
    assert.match(r.body, /数据库迁移/);
    assert.match(r.body, /任务队列/);
    assert.match(r.body, /已载入 300 名合成居民和 100 家合成企业/);
    assert.match(r.body, /姑苏区/);
    assert.match(r.body, /苏州市公安局/);
    assert.match(r.body, /苏州市数据交换平台/);
    // the county totals add up to the demo load
    const total = /<tfoot><tr><th scope="row"[^>]*>合计<\/th><td class="code"><\/td><td class="num">([\d,]+)<\/td>/.exec(r.body);
    assert.ok(total);
    assert.equal(Number(total[1]!.replace(/,/g, '')), 300);
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });

  test('links the work sections the staff member may use, and only those', async () => {
    const r = await get('/console');
    assert.match(r.body, /<a href="\/console\/tasks">我的待办<\/a>/);
    assert.match(r.body, /<a href="\/console\/workflow">流程与效能<\/a>/);
    assert.doesNotMatch(r.body, /<a href="\/console\/ca">/, 'no CA role, no CA link');
    assert.doesNotMatch(r.body, /<a href="\/console\/admin\/roles">/);
  });

  test('is staff-only: anonymous callers get 401 with a sign-in link', async () => {
    const r = await fetch(`${t.url}/console`, { headers: HTML });
    assert.equal(r.status, 401);
    const body = await r.text();
    assert.match(body, /<html lang="zh-CN">/);
    assert.match(body, /href="\/console\/auth\/login\?back=%2Fconsole">登录<\/a>/);
    const json = await fetch(`${t.url}/console`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 401);
    assert.match(json.headers.get('content-type')!, /application\/problem\+json/);
  });

  test('no personal data: no names or identity numbers of residents', async () => {
    const r = await get('/console');
    assert.doesNotMatch(r.body, /\b\d{17}[\dX]\b/, 'no resident identity numbers');
    assert.doesNotMatch(r.body, /\b[0-9A-HJ-NPQRTUWXY]{18}\b/, 'no unified social credit codes');
  });
});

describe('every page', () => {
  test('has one h1, headings in order, a lang attribute, a skip link to the main landmark, and no inline script or style', async () => {
    for (const p of PAGES) {
      for (const q of ['', '?lang=en']) {
        const r = await get(p + q);
        assert.match(r.body, /^<!doctype html>/, p);
        assert.match(r.body, q ? /<html lang="en">/ : /<html lang="zh-CN">/, p + q);
        assert.equal((r.body.match(/<h1[\s>]/g) ?? []).length, 1, `${p}${q}: exactly one h1`);
        const levels = headingLevels(r.body);
        assert.equal(levels[0], 1, `${p}: the first heading is the h1`);
        for (let i = 1; i < levels.length; i++) assert.ok(levels[i]! <= levels[i - 1]! + 1, `${p}${q}: heading h${levels[i]} follows h${levels[i - 1]}`);
        assert.match(r.body, /<a class="skip-link" href="#main">/, p);
        assert.match(r.body, /<main id="main"/, p);
        assert.doesNotMatch(r.body, /<script(?![^>]*\bsrc=)[^>]*>/, `${p}: no inline script`);
        assert.doesNotMatch(r.body, /<style|\sstyle=/, `${p}: no inline style`);
        assert.match(r.body, /Synthetic demo data/, p);
      }
    }
  });

  test('loads no asset from another host (no CDN), and every local asset exists', async () => {
    const seen = new Set<string>();
    for (const p of PAGES) {
      const r = await get(p);
      for (const m of r.body.matchAll(/\s(?:src|href)="([^"]*)"/g)) {
        const url = m[1]!.replace(/&amp;/g, '&');
        assert.doesNotMatch(url, /^(?:[a-z][a-z0-9+.-]*:)?\/\//i, `${p}: ${url} points to another host`);
        if (url.startsWith('/assets/')) seen.add(url);
      }
    }
    assert.ok(seen.has('/assets/css/gusu.css'));
    for (const u of seen) assert.equal((await get(u, {})).status, 200, u);
    const css = fs.readFileSync(path.join(repoRoot, 'web/css/gusu.css'), 'utf8');
    assert.doesNotMatch(css, /url\(\s*["']?(?:https?:)?\/\//, 'the stylesheet loads nothing remote');
    assert.doesNotMatch(css, /@import|@font-face/, 'no external fonts');
    for (const u of [...seen].filter((x) => x.endsWith('.svg'))) {
      assert.doesNotMatch((await get(u, {})).body, /(?:href|src)="https?:/, u);
    }
  });
});

describe('faces', () => {
  let split: TestPlatform;
  async function freePort(): Promise<number> {
    return await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
  }
  before(async () => {
    split = await startTestPlatform({ PUBLIC_PORT: String(await freePort()), INTERNAL_PORT: String(await freePort()), GUSU_DEMO: 'false' }, [], { resolveActor: headerActor });
  });
  after(async () => {
    // not split.stop(): that would also stop the test server the main platform still uses
    await split?.platform.close();
    await split?.database.drop();
  });

  test('the console is served only on the internal face; the portal only on the public face; both can switch language', async () => {
    const pub = split.platform.listeners.find((l) => l.face === 'public')!.url;
    const internal = split.platform.listeners.find((l) => l.face === 'internal')!.url;
    assert.equal((await fetch(`${pub}/console`, { headers: { ...HTML, ...AS_STAFF } })).status, 404);
    assert.equal((await fetch(`${internal}/console`, { headers: { ...HTML, ...AS_STAFF } })).status, 200);
    assert.equal((await fetch(`${internal}/`, { headers: HTML })).status, 404);
    assert.equal((await fetch(`${pub}/api/v1/subsystems`)).status, 200);
    for (const base of [pub, internal]) assert.equal((await fetch(`${base}/lang?to=en&back=/`, { redirect: 'manual' })).status, 303);
    const noDemo = await (await fetch(`${internal}/console`, { headers: { ...HTML, ...AS_STAFF } })).text();
    assert.match(noDemo, /未载入演示数据/);
  });
});
