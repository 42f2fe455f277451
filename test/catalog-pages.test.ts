// The catalog's pages on a running platform with the city profile's catalog: who may see each page
// (401 for nobody, 403 for a resident, 404 for an agreement of other departments), search with facets
// and views, the request form (validation errors beside the fields, input kept and escaped), a request
// reviewed by the provider through the form (narrowed; the workflow's service task applies it a moment
// later), revoke and withdraw, the freshness dashboard, the public catalog (open entries only), hostile
// query strings, and English. Jobs run (the review's service task); the demo is off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { catalogPagePolicy } from '../src/base/catalog/pages.ts';
import { CATALOG_NAV_LABEL } from '../src/base/catalog/messages.ts';
import { getAgreement, noteArrival, type Agreement } from '../src/base/catalog/index.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import type { Db } from '../src/db/index.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const staff = (id: string, department: string, roles: { role: string; scope: string | null }[] = []): Actor => ({
  kind: 'staff',
  accountId: `00000000-0000-4000-8000-0000000c${id.padStart(4, '0')}`,
  name: `目录测试${id}`,
  department,
  post: '科员',
  roles,
});

// filled in before(): the provider's staff follow the conditional entry the tests request
const ACTORS: Record<string, Actor> = {
  citizen: { kind: 'citizen', accountId: '00000000-0000-4000-8000-0000000cf001', name: '张三', idNumber: '11010519491231002X' },
  admin: staff('1', 'SZ-DSJ', [{ role: 'catalog-admin', scope: null }]),
  security: staff('2', 'SZ-DSJ', [{ role: 'security-officer', scope: null }]),
};

async function resolveActor(req: FastifyRequest): Promise<Actor> {
  const h = req.headers['x-actor'];
  const c = /(?:^|;\s*)test_actor=([a-z0-9-]+)/.exec(req.headers.cookie ?? '')?.[1];
  const name = typeof h === 'string' ? h : c;
  return (name && ACTORS[name]) || ANONYMOUS;
}

let t: TestPlatform;
let url: string;
let db: Db;

/** a page as a browser sees it: cookies kept (the CSRF cookie), acting as `as` */
class Browser {
  cookies = new Map<string, string>();
  constructor(readonly as?: string) {
    if (as) this.cookies.set('test_actor', as);
  }
  async fetch(path: string, init: RequestInit = {}): Promise<{ status: number; text: string; headers: Headers }> {
    const headers = new Headers(init.headers);
    headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const res = await fetch(url + path, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    return { status: res.status, text: await res.text(), headers: res.headers };
  }
  post(path: string, fields: [string, string][] | Record<string, string>) {
    return this.fetch(path, { method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
  /** GETs the page with the form, then posts it with that page's CSRF token */
  async submit(formPage: string, action: string, fields: [string, string][]) {
    const page = await this.fetch(formPage);
    assert.equal(page.status, 200, `${formPage}: ${page.text.slice(0, 300)}`);
    return this.post(action, [['_csrf', csrfOf(page.text)], ...fields]);
  }
}

const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? assert.fail('no CSRF field on the page');
const h1s = (page: string) => (page.match(/<h1[\s>]/g) ?? []).length;
/** the entry codes of a results table, in order */
const codesOf = (page: string) => [...page.matchAll(/<th scope="row">(?:<span class="cell-wide">)?<a href="\/(?:console\/)?catalog\/entries\/([0-9]+\/[0-9]{6})[^"]*">/g)].map((m) => m[1]!);
const q1 = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.query<R>(sql, params)).rows[0]!;
const XSS = '<script>alert("x")</script>';
const today = () => new Date().toISOString().slice(0, 10);
const inDays = (d: number) => new Date(Date.now() + d * 86400_000).toISOString().slice(0, 10);

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** the entries the tests use, found in the profile's catalog by what they are */
let COND: { code: string; name: string; provider: string; items: { field: string; name: string }[] };
let OPEN: { code: string; name: string };
let CLOSED: { code: string; name: string };
let UNCOND: { code: string };
/** another conditional entry, of neither COND's provider nor SZ-JT: its request form gives anyone a CSRF token */
let COND2: { code: string };
let NONE: { code: string };
let CONSUMER: string;

before(async () => {
  t = await startTestPlatform({ GUSU_DEMO: 'false' }, [], { resolveActor });
  url = t.url;
  db = t.platform.ctx.db;
  const n = await q1<{ n: number }>('select count(*)::int as n from catalog.entry');
  assert.ok(n.n >= 20, `the city profile's catalog is loaded (${n.n} entries)`);
  COND = await q1(
    `select code, name, provider, items from catalog.entry where share_type = 'conditional' and kind <> 'base' and status = 'active' and jsonb_array_length(items) >= 3
      order by (provider = 'SZ-MZ') desc, code limit 1`,
  );
  OPEN = await q1(`select code, name from catalog.entry where open and status = 'active' order by code limit 1`);
  CLOSED = await q1(`select code, name from catalog.entry where not open order by code limit 1`);
  COND2 = await q1(`select code from catalog.entry where share_type = 'conditional' and kind <> 'base' and provider <> $1 and provider <> 'SZ-JT' order by code limit 1`, [COND.provider]);
  UNCOND = await q1(`select code from catalog.entry where share_type = 'unconditional' and kind <> 'base' and not open order by code limit 1`);
  NONE = await q1(`select code from catalog.entry where share_type = 'none' order by code limit 1`);
  CONSUMER = COND.provider === 'SZ-RS' ? 'SZ-GA' : 'SZ-RS';
  Object.assign(ACTORS, {
    consumer: staff('10', CONSUMER),
    other: staff('11', 'SZ-JT'),
    provider: staff('12', COND.provider),
    lead: staff('13', COND.provider, [{ role: 'department-lead', scope: COND.provider }]),
    third: staff('14', 'SZ-GJJ' === COND.provider ? 'SZ-YB' : 'SZ-GJJ'),
  });
});
after(async () => {
  await t?.stop();
});

describe('who may see the pages', () => {
  test('console pages: 401 for nobody, 403 for a resident, 200 for staff (one h1, no-store)', async () => {
    const pages = ['/console/catalog', `/console/catalog/entries/${COND.code}`, '/console/catalog/agreements', `/console/catalog/agreements/new?entry=${COND.code}`, '/console/catalog/freshness'];
    for (const p of pages) {
      const anon = await new Browser().fetch(p);
      assert.equal(anon.status, 401, p);
      assert.doesNotMatch(anon.text, new RegExp(COND.name), `${p}: nothing shown`);
      assert.equal((await new Browser('citizen').fetch(p)).status, 403, `${p} as a resident`);
      for (const who of ['consumer', 'admin']) {
        const r = await new Browser(who).fetch(p);
        assert.equal(r.status, 200, `${p} as ${who}: ${r.text.slice(0, 200)}`);
        assert.equal(h1s(r.text), 1, `${p}: one h1`);
        assert.equal(r.headers.get('cache-control'), 'no-store', p);
        assert.match(r.text, /class="shell-console"/);
        assert.match(r.text, /<html lang="zh-CN">/);
      }
    }
  });

  test('the public catalog is for everyone; the console navigation names the catalog', async () => {
    const r = await new Browser().fetch('/catalog');
    assert.equal(r.status, 200);
    assert.equal(h1s(r.text), 1);
    assert.match(r.text, /公共信息资源目录/);
    assert.match(r.text, /class="shell-portal"/);
    const c = await new Browser('consumer').fetch('/console');
    assert.match(c.text, /<a href="\/console\/catalog"[^>]*>资源目录<\/a>/);
  });

  test('the policy and the navigation label', () => {
    assert.deepEqual(catalogPagePolicy.map((r) => `${typeof r.who === 'object' ? r.who.role : r.who} ${r.resource}:${r.verb}`).sort(), ['anyone public-catalog:read', 'staff catalog-console:read']);
    assert.deepEqual(CATALOG_NAV_LABEL, { zh: '资源目录', en: 'Resource catalogue' });
  });
});

describe('search', () => {
  test('keywords find an entry by part of its name, tolerant of a missing character', async () => {
    const b = new Browser('consumer');
    for (const q of ['户籍', '户籍人信息']) {
      const r = await b.fetch(`/console/catalog?q=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200);
      assert.match(r.text, />户籍人口信息<\/a>/, q);
      assert.match(r.text, new RegExp(`value="${q}"`), 'the search box keeps the keywords');
    }
  });

  test('facets: counts, a link per value that filters, and the filters combine', async () => {
    const b = new Browser('consumer');
    const all = await b.fetch('/console/catalog');
    const total = (await q1<{ n: number }>(`select count(*)::int as n from catalog.entry where status = 'active'`)).n;
    assert.match(all.text, new RegExp(`共 ${total} 条资源，第 1 / ${Math.ceil(total / 20)} 页`));
    assert.equal(codesOf(all.text).length, 20, 'a page of 20');
    // the provider facet: the department's link, with its count
    const ga = (await q1<{ n: number }>(`select count(*)::int as n from catalog.entry where provider = 'SZ-GA' and status = 'active'`)).n;
    assert.match(all.text, new RegExp(`<a href="/console/catalog\\?provider=SZ-GA">市公安局（${ga} 条）</a>`));
    const byGa = await b.fetch('/console/catalog?provider=SZ-GA');
    const codes = codesOf(byGa.text);
    assert.equal(codes.length, Math.min(ga, 20));
    const providers = (await db.query<{ provider: string }>('select distinct provider from catalog.entry where code = any($1)', [codes])).rows.map((r) => r.provider);
    assert.deepEqual(providers, ['SZ-GA']);
    assert.match(byGa.text, /去掉条件：提供部门：市公安局/);
    assert.match(byGa.text, /<input type="hidden" name="provider" value="SZ-GA">/, 'a new search keeps the filter');
    // share type and kind together
    const r = await b.fetch('/console/catalog?shareType=conditional&kind=theme');
    const n = (await q1<{ n: number }>(`select count(*)::int as n from catalog.entry where share_type = 'conditional' and kind = 'theme' and status = 'active'`)).n;
    assert.match(r.text, new RegExp(`共 ${n} 条资源`));
    assert.ok(!/不予共享<\/span>/.test(r.text.split('id="results"')[1]!), 'no other share type among the results');
    // classification: a 项 from the facet
    const cls = (await q1<{ c: string; n: number }>(`select left(classification, 3) as c, count(*)::int as n from catalog.entry where status = 'active' group by 1 order by 2 desc limit 1`));
    assert.match((await b.fetch(`/console/catalog?classification=${cls.c}`)).text, new RegExp(`共 ${cls.n} 条资源`));
  });

  test('views: 公共目录 lists open entries only, 交换目录 no 不予共享; sort and pages', async () => {
    const b = new Browser('consumer');
    const open = (await q1<{ n: number }>(`select count(*)::int as n from catalog.entry where open and status = 'active'`)).n;
    const pub = await b.fetch('/console/catalog?view=public');
    assert.match(pub.text, new RegExp(`共 ${open} 条资源`));
    assert.match(pub.text, /<span aria-current="page">公共目录<\/span>/);
    const ex = await b.fetch('/console/catalog?view=exchange&shareType=none');
    assert.match(ex.text, /共 0 条资源/);
    assert.match(ex.text, /没有符合条件的资源/);
    const byName = codesOf((await b.fetch('/console/catalog?sort=published')).text);
    assert.equal(byName.length, 20);
    const p2 = await b.fetch('/console/catalog?page=2');
    assert.match(p2.text, /第 2 \//);
    assert.notDeepEqual(codesOf(p2.text), codesOf((await b.fetch('/console/catalog')).text));
    assert.match(p2.text, /rel="prev"/);
    const far = await b.fetch('/console/catalog?page=999');
    assert.equal(far.status, 200);
    assert.match(far.text, /没有第 999 页/);
  });

  test('hostile query strings: clean 400 or 404, never 500; input is escaped', async () => {
    const b = new Browser('consumer');
    const bad = [
      `/console/catalog?q=${'户'.repeat(300)}`,
      '/console/catalog?page=-1',
      '/console/catalog?page=abc',
      '/console/catalog?provider=%3Cscript%3E',
      '/console/catalog?shareType=maybe',
      '/console/catalog?classification=9',
      '/console/catalog?q=a%00b',
      '/console/catalog/entries/abc/def',
      '/console/catalog/entries/101001/1',
      '/console/catalog/agreements?status=nope',
      '/console/catalog/agreements/new?entry=..%2F..',
      '/console/catalog/agreements/not-a-uuid',
      '/console/catalog/freshness?department=%27%3B',
      `/catalog?q=${'x'.repeat(5000)}`,
      '/catalog?page=0',
    ];
    for (const p of bad) {
      const r = await b.fetch(p);
      assert.equal(r.status, 400, `${p}: ${r.status}`);
    }
    assert.equal((await b.fetch('/console/catalog/entries/999999/000001')).status, 400, 'not a classification code');
    for (const p of ['/console/catalog/entries/399999/000001', '/console/catalog/agreements/00000000-0000-4000-8000-000000000000', '/console/catalog/agreements/new?entry=399999/000001']) {
      assert.equal((await b.fetch(p)).status, 404, p);
    }
    const x = await b.fetch(`/console/catalog?q=${encodeURIComponent(XSS)}`);
    assert.equal(x.status, 200);
    assert.ok(!x.text.includes(XSS), 'the keywords are escaped');
    assert.match(x.text, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/);
    const px = await new Browser().fetch(`/catalog?q=${encodeURIComponent(XSS)}`);
    assert.ok(!px.text.includes(XSS));
  });
});

describe('an entry', () => {
  test('all its core metadata, items, sharing and freshness; the viewer may ask for it', async () => {
    await noteArrival(db, COND.code, new Date(Date.now() - 3600_000));
    const r = await new Browser('consumer').fetch(`/console/catalog/entries/${COND.code}`);
    assert.equal(r.status, 200);
    for (const label of ['资源代码', '资源分类', '目录类别', '提供部门', '资源格式', '更新周期', '发布日期', '维护部门及岗位', '交换资源', '共享类型', '共享条件', '共享方式', '法律依据', '向社会开放', '最近一次数据到达', '下次应更新', '关联资源']) {
      assert.match(r.text, new RegExp(`>${label}<`), label);
    }
    for (const it of COND.items) assert.match(r.text, new RegExp(`<code>${it.field}</code>`), it.field);
    assert.match(r.text, /有条件共享/);
    assert.match(r.text, new RegExp(`href="/console/catalog/agreements/new\\?entry=${COND.code.replace('/', '%2F')}">申请共享</a>`));
    // the provider's own staff: no request, their own data
    const p = await new Browser('provider').fetch(`/console/catalog/entries/${COND.code}`);
    assert.match(p.text, /是该资源的提供部门/);
    assert.doesNotMatch(p.text, />申请共享</);
  });

  test('an unconditionally shared entry: the subscription note, no request', async () => {
    const r = await new Browser('consumer').fetch(`/console/catalog/entries/${UNCOND.code}`);
    assert.match(r.text, /订阅说明/);
    assert.doesNotMatch(r.text, />申请共享</);
    const n = await new Browser('consumer').fetch(`/console/catalog/entries/${NONE.code}`);
    assert.match(n.text, /该资源不予共享/);
    // the request form says why instead of showing a form
    const f = await new Browser('consumer').fetch(`/console/catalog/agreements/new?entry=${UNCOND.code}`);
    assert.equal(f.status, 200);
    assert.match(f.text, /无需申请即可使用/);
    assert.doesNotMatch(f.text, /name="purpose"/);
  });
});

describe('requesting, deciding, revoking', () => {
  let id: string;

  test('the request form: errors beside the fields, the input kept (and escaped), no CSRF: 403', async () => {
    const b = new Browser('consumer');
    const form = `/console/catalog/agreements/new?entry=${COND.code}`;
    const page = await b.fetch(form);
    assert.match(page.text, /<label for="f-purpose">用途<\/label>/);
    assert.equal((page.text.match(/type="checkbox" name="item"/g) ?? []).length, COND.items.length);
    assert.match(page.text, new RegExp(`name="termStart"[^>]*value="${today()}"`));
    // nothing filled in, dates broken, an item that does not exist
    const r = await b.submit(form, '/console/catalog/agreements', [
      ['entry', COND.code],
      ['purpose', XSS],
      ['legalBasis', ' '],
      ['item', 'noSuchItem'],
      ['termStart', '2001-01-01'],
      ['termEnd', 'soon'],
    ]);
    assert.equal(r.status, 400);
    assert.match(r.text, /class="notice notice-warning error-summary" role="alert"/);
    assert.match(r.text, /<a href="#f-legalBasis">请填写法律依据/);
    assert.match(r.text, /<p class="field-error" id="f-legalBasis-error">/);
    assert.match(r.text, /<a href="#f-items">勾选的信息项不属于该资源/);
    assert.match(r.text, /<a href="#f-termStart">期限开始不能早于今天/);
    assert.match(r.text, /<a href="#f-termEnd">请填写期限结束日期/);
    assert.match(r.text, /aria-invalid="true"/);
    assert.doesNotMatch(r.text, /#f-purpose/, 'the purpose was long enough');
    assert.ok(!r.text.includes(XSS), 'the kept purpose is escaped');
    assert.match(r.text, />&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;<\/textarea>/);
    assert.match(r.text, /name="termEnd"[^>]*value="soon"/);
    // no items at all
    const none = await b.submit(form, '/console/catalog/agreements', [['entry', COND.code], ['purpose', '核对'], ['legalBasis', '依据'], ['termStart', today()], ['termEnd', inDays(30)]]);
    assert.equal(none.status, 400);
    assert.match(none.text, /请至少勾选一项信息项/);
    // without the token
    assert.equal((await b.post('/console/catalog/agreements', { entry: COND.code, purpose: '核对', legalBasis: '依据', item: COND.items[0]!.field, termStart: today(), termEnd: inDays(30) })).status, 403);
    // a resident, an anonymous caller
    assert.equal((await new Browser('citizen').post('/console/catalog/agreements', { entry: COND.code })).status, 403);
    assert.equal((await new Browser().post('/console/catalog/agreements', { entry: COND.code })).status, 401);
    assert.equal((await db.query(`select 1 from catalog.agreement where entry = $1`, [COND.code])).rowCount, 0, 'nothing was filed');
  });

  test('a good request files the agreement and starts its review; the page says so', async () => {
    const b = new Browser('consumer');
    const items = COND.items.slice(0, 3).map((i) => i.field);
    const r = await b.submit(`/console/catalog/agreements/new?entry=${COND.code}`, '/console/catalog/agreements', [
      ['entry', COND.code],
      ['purpose', `社会救助对象资格核对 ${XSS}`],
      ['legalBasis', '《社会救助暂行办法》第十一条'],
      ...items.map((f): [string, string] => ['item', f]),
      ['termStart', today()],
      ['termEnd', inDays(365)],
    ]);
    assert.equal(r.status, 303, r.text.slice(0, 500));
    const m = /^\/console\/catalog\/agreements\/([0-9a-f-]{36})\?done=requested$/.exec(r.headers.get('location') ?? '');
    assert.ok(m, r.headers.get('location') ?? '');
    id = m[1]!;
    const a = (await getAgreement(db, id))!;
    assert.equal(a.status, 'requested');
    assert.equal(a.consumer, CONSUMER);
    assert.deepEqual(a.itemsRequested, items);
    assert.ok(a.processInstance, 'the review started');
    const page = await b.fetch(r.headers.get('location')!);
    assert.equal(page.status, 200);
    assert.match(page.text, /共享申请已提交，等待提供部门/);
    assert.match(page.text, /审核中/);
    assert.ok(!page.text.includes(XSS), 'the purpose is escaped');
    assert.match(page.text, /撤回申请/, 'the consumer may withdraw');
    assert.doesNotMatch(page.text, /提交审核意见/, 'the consumer does not decide');
    // asking again: the form says a request is live
    const again = await b.fetch(`/console/catalog/agreements/new?entry=${COND.code}`);
    assert.match(again.text, /本部门已有该资源的共享申请或协议/);
    assert.match((await b.fetch(`/console/catalog/entries/${COND.code}`)).text, /本部门的共享申请正在审核中/);
    // who may read it: the two departments and the overseers; others get 404
    assert.equal((await new Browser('other').fetch(`/console/catalog/agreements/${id}`)).status, 404);
    for (const who of ['provider', 'admin', 'security']) assert.equal((await new Browser(who).fetch(`/console/catalog/agreements/${id}`)).status, 200, who);
    // the lists
    assert.match((await b.fetch('/console/catalog/agreements')).text, new RegExp(`href="/console/catalog/agreements/${id}"`));
    assert.match((await new Browser('provider').fetch('/console/catalog/agreements?role=provider&status=requested')).text, new RegExp(id));
    assert.doesNotMatch((await b.fetch('/console/catalog/agreements?role=provider')).text, new RegExp(id));
    assert.doesNotMatch((await new Browser('other').fetch('/console/catalog/agreements')).text, new RegExp(id));
    assert.match((await new Browser('admin').fetch(`/console/catalog/agreements?department=${CONSUMER}`)).text, new RegExp(id));
  });

  test('the provider narrows it through the form; a moment later the agreement grants those items', async () => {
    const b = new Browser('provider');
    const page = `/console/catalog/agreements/${id}`;
    const form = await b.fetch(page);
    assert.match(form.text, /审核共享申请/);
    assert.equal((form.text.match(/type="radio" name="outcome"/g) ?? []).length, 3);
    const a0 = (await getAgreement(db, id))!;
    // narrowing to every item, or with no outcome: errors, nothing decided
    const all = await b.submit(page, `${page}/decision`, [['outcome', 'narrow'], ...a0.itemsRequested.map((f): [string, string] => ['item', f])]);
    assert.equal(all.status, 400);
    assert.match(all.text, /缩减时请勾选至少一项、少于申请项数的信息项/);
    const noOutcome = await b.submit(page, `${page}/decision`, [['note', 'x']]);
    assert.equal(noOutcome.status, 400);
    assert.match(noOutcome.text, /<a href="#f-outcome">请选择审核结果/);
    // someone of another department cannot decide (404: they cannot see it), the consumer cannot work on the task
    assert.equal((await new Browser('other').submit(`/console/catalog/agreements/new?entry=${COND.code}`, `${page}/decision`, [['outcome', 'approve']])).status, 404);
    assert.equal((await new Browser('consumer').submit(page, `${page}/decision`, [['outcome', 'approve']])).status, 403);
    assert.equal((await getAgreement(db, id))!.status, 'requested');

    const keep = a0.itemsRequested[0]!;
    const r = await b.submit(page, `${page}/decision`, [['outcome', 'narrow'], ['item', keep], ['note', `仅提供核对所需信息项 ${XSS}`]]);
    assert.equal(r.status, 303, r.text.slice(0, 500));
    assert.equal(r.headers.get('location'), `${page}?done=decided`);
    // the service task applies it: 处理中 until then
    const soon = await b.fetch(r.headers.get('location')!);
    assert.equal(soon.status, 200);
    assert.match(soon.text, /处理中|已同意（缩减）/);
    const a = await until(async () => {
      const x = await getAgreement(db, id);
      return x && x.status !== 'requested' ? x : null;
    }, 'the decision applied');
    assert.equal(a.status, 'approved');
    assert.deepEqual(a.itemsGranted, [keep]);
    assert.ok(a.narrowed);
    const done = await new Browser('consumer').fetch(page);
    assert.match(done.text, /已同意（缩减）/);
    assert.ok(!done.text.includes(XSS), 'the note is escaped');
    assert.match(done.text, /仅提供核对所需信息项 &lt;script&gt;/);
    // the granted column: one 是 and the rest 否
    const grantedCol = [...done.text.matchAll(/<td[^>]*><span class="badge badge-(ok|problem)">(是|否)<\/span><\/td><\/tr>/g)].map((m) => m[2]);
    assert.deepEqual(grantedCol, ['是', ...a.itemsRequested.slice(1).map(() => '否')]);
    // the entry page now says what the department may use
    const entry = await new Browser('consumer').fetch(`/console/catalog/entries/${COND.code}`);
    assert.match(entry.text, /本部门依据共享协议可使用以下 1 项信息项/);
    assert.match(entry.text, new RegExp(`href="/console/catalog/agreements/${id}">查看共享协议`));
  });

  test('revoke: not for the provider’s plain staff, yes for its head of department', async () => {
    const page = `/console/catalog/agreements/${id}`;
    const plain = await new Browser('provider').fetch(page);
    assert.doesNotMatch(plain.text, /id="revoke"/);
    assert.equal((await new Browser('provider').submit(`/console/catalog/agreements/new?entry=${COND2.code}`, `${page}/revoke`, [['reason', '不再需要']])).status, 403);
    const lead = new Browser('lead');
    assert.match((await lead.fetch(page)).text, /id="revoke"/);
    const empty = await lead.submit(page, `${page}/revoke`, [['reason', ' ']]);
    assert.equal(empty.status, 400);
    assert.match(empty.text, /请填写撤销原因/);
    const r = await lead.submit(page, `${page}/revoke`, [['reason', '核对工作已结束']]);
    assert.equal(r.status, 303);
    assert.equal((await getAgreement(db, id))!.status, 'revoked');
    const after = await lead.fetch(r.headers.get('location')!);
    assert.match(after.text, /协议已撤销/);
    assert.match(after.text, /核对工作已结束/);
    // again: nothing to revoke (the form is gone; a stale post is a conflict on the page)
    const again = await lead.post(`${page}/revoke`, { _csrf: csrfOf((await lead.fetch(`/console/catalog/agreements/new?entry=${COND2.code}`)).text), reason: '再次撤销' });
    assert.equal(again.status, 409);
    assert.match(again.text, /操作未完成/);
  });

  test('withdraw: the consumer takes back a request under review', async () => {
    const b = new Browser('third');
    const r = await b.submit(`/console/catalog/agreements/new?entry=${COND.code}`, '/console/catalog/agreements', [
      ['entry', COND.code],
      ['purpose', '住房保障资格核对'],
      ['legalBasis', '《公共租赁住房管理办法》第七条'],
      ['item', COND.items[1]!.field],
      ['termStart', today()],
      ['termEnd', inDays(90)],
    ]);
    assert.equal(r.status, 303);
    const page = r.headers.get('location')!.split('?')[0]!;
    const wid = page.split('/').pop()!;
    assert.equal((await new Browser('consumer').post(`${page}/withdraw`, {})).status, 403, 'no CSRF token');
    assert.equal((await new Browser('other').submit(`/console/catalog/agreements/new?entry=${COND.code}`, `${page}/withdraw`, [])).status, 404, 'another department cannot see it');
    const w = await b.submit(page, `${page}/withdraw`, []);
    assert.equal(w.status, 303);
    const a: Agreement = (await getAgreement(db, wid))!;
    assert.equal(a.status, 'withdrawn');
    const shown = await b.fetch(w.headers.get('location')!);
    assert.match(shown.text, /申请已撤回/);
    assert.doesNotMatch(shown.text, /id="withdraw"/);
  });
});

describe('freshness', () => {
  test('counts on time, late and irregular; late first; a department filter', async () => {
    const b = new Browser('consumer');
    const r = await b.fetch('/console/catalog/freshness');
    assert.equal(r.status, 200);
    assert.match(r.text, /<dt>按时<\/dt>/);
    assert.match(r.text, /<dt>逾期<\/dt>/);
    assert.match(r.text, /<dt>不定期<\/dt>/);
    const body = r.text.split('id="list"')[1]!;
    const firstOnTime = body.indexOf('>按时<');
    const lastLate = body.lastIndexOf('>逾期<');
    assert.ok(lastLate > 0, 'some entries are late (no data has arrived)');
    assert.ok(firstOnTime === -1 || lastLate < firstOnTime, 'late first');
    const mine = await b.fetch(`/console/catalog/freshness?department=${COND.provider}&late=1`);
    assert.equal(mine.status, 200);
    assert.match(mine.text, new RegExp(`<option value="${COND.provider}" selected>`));
    assert.equal((await new Browser().fetch('/console/catalog/freshness')).status, 401);
  });
});

describe('the public catalog', () => {
  test('only open entries; an open entry’s page; 404 for the rest; links for machines', async () => {
    const b = new Browser();
    const r = await b.fetch('/catalog');
    const open = (await q1<{ n: number }>(`select count(*)::int as n from catalog.entry where open and status = 'active'`)).n;
    assert.match(r.text, new RegExp(`共 ${open} 条资源`));
    assert.match(r.text, /href="\/catalog\/dcat.jsonld"/);
    assert.match(r.text, /href="\/api\/3\/action\/package_search"/);
    const codes = codesOf(r.text);
    const opened = (await db.query<{ open: boolean }>('select open from catalog.entry where code = any($1)', [codes])).rows;
    assert.ok(opened.length > 0 && opened.every((x) => x.open));
    assert.doesNotMatch(r.text, /共享类型/, 'no share-type facet for the public');
    const e = await b.fetch(`/catalog/entries/${OPEN.code}`);
    assert.equal(e.status, 200);
    assert.equal(h1s(e.text), 1);
    assert.match(e.text, new RegExp(`<h1>${OPEN.name}</h1>`));
    assert.doesNotMatch(e.text, /维护部门及岗位|本部门的使用权限/, 'no internal details');
    assert.equal((await b.fetch(`/catalog/entries/${CLOSED.code}`)).status, 404);
    assert.equal((await b.fetch('/catalog/entries/399999/000001')).status, 404);
    assert.equal((await b.fetch('/catalog/entries/999999/000001')).status, 400);
    assert.equal((await b.fetch(`/catalog?provider=SZ-GA&q=${encodeURIComponent('信息')}`)).status, 200);
  });
});

describe('English', () => {
  test('the pages in English', async () => {
    const b = new Browser('consumer');
    const s = await b.fetch('/console/catalog?lang=en');
    assert.match(s.text, /<html lang="en">/);
    assert.match(s.text, /<h1>Government information-resource catalogue<\/h1>/);
    assert.match(s.text, /resources, page 1 of/);
    assert.match(s.text, /Shared without conditions|Shared on conditions/);
    assert.match(s.text, /href="\/console\/catalog\?provider=SZ-GA&amp;lang=en"/, 'links keep the language');
    const e = await b.fetch(`/console/catalog/entries/${COND.code}?lang=en`);
    assert.match(e.text, /Your department’s access/);
    assert.match(e.text, />(Request access|See the request|See the agreement)</);
    const f = await b.fetch('/console/catalog/freshness?lang=en');
    assert.match(f.text, /Data update timeliness/);
    const p = await new Browser().fetch('/catalog?lang=en');
    assert.match(p.text, /Public information-resource catalogue/);
  });
});
