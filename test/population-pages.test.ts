// The population registry's staff console on a running platform: records seeded through the native
// API (公安户籍 as SZ-GA's system, 人社 as SZ-RS's to make name conflicts); who may see each page
// (401, 403, 404), the record masked for another department and whole for a steward (with the
// source-record history), as of a past date, the purpose required and written to the citizen's log,
// the steward's keep / replace / dispute through the forms with CSRF, the dispute answered by the
// source department's staff through theirs (applied by the workflow a moment later), the read-only
// review queues, hostile input, and English.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { makeIdNumber } from '../src/base/codes/index.ts';
import { accessesOfSubject } from '../src/base/audit/index.ts';
import { populationPagePolicy, POPULATION_NAV_LABEL } from '../src/base/registries/population/pages.ts';
import type { Db } from '../src/db/index.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const staff = (id: string, department: string, roles: { role: string; scope: string | null }[] = []): Actor => ({
  kind: 'staff',
  accountId: `00000000-0000-4000-8000-0000000d${id.padStart(4, '0')}`,
  name: `人口测试${id}`,
  department,
  post: '科员',
  roles,
});

const ACTORS: Record<string, Actor> = {
  'ga-system': { kind: 'system', id: 'ga-hukou-system', department: 'SZ-GA' },
  'rs-system': { kind: 'system', id: 'rs-system', department: 'SZ-RS' },
  rs: staff('1', 'SZ-RS'),
  ga: staff('2', 'SZ-GA'),
  steward: staff('3', 'SZ-DSJ', [{ role: 'registry-steward', scope: null }]),
  security: staff('4', 'SZ-DSJ', [{ role: 'security-officer', scope: null }]),
  jt: staff('5', 'SZ-JT'),
  citizen: { kind: 'citizen', accountId: '00000000-0000-4000-8000-0000000df001', name: '王建国', idNumber: '11010519491231002X' },
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
const XSS = '<script>alert("x")</script>';
const enc = encodeURIComponent;

async function api(who: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${p}`, { method, headers: { 'x-actor': who, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const hukou = (idNumber: string, name: string, extra: Record<string, unknown> = {}) => ({
  recordId: `hk-${idNumber}`,
  idNumber,
  name,
  sex: 'M',
  ethnicity: '汉族',
  birthDate: `${idNumber.slice(6, 10)}-${idNumber.slice(10, 12)}-${idNumber.slice(12, 14)}`,
  householdAddress: '苏州市姑苏区人民路100号（合成）',
  householdNo: 'H0001',
  divisionCode: idNumber.slice(0, 6),
  change: 'registered',
  changeDate: '2020-01-01',
  ...extra,
});
const insurance = (n: string, idNumber: string, name: string) => ({ recordNo: `R${n}`, idNumber, name, employer: '苏州某公司（合成）', insured: true, changeDate: '2025-01-01' });

// five people: a, disputed against the winner and corrected by 公安; b, kept; c, replaced; d, disputed
// against the challenger and confirmed by 人社; e, moved out (for as-of)
const ids = {
  a: makeIdNumber('320508', '19800115', '321'),
  b: makeIdNumber('320506', '19921203', '653'),
  c: makeIdNumber('320505', '19751010', '111'),
  d: makeIdNumber('320507', '19880808', '222'),
  e: makeIdNumber('320508', '19650301', '333'),
  /** an open conflict no test resolves (the queue keeps a form, and so a CSRF token, for every test) */
  f: makeIdNumber('320506', '19990909', '444'),
};
const conflictOf = async (key: string) => (await db.query<{ id: number; status: string }>(`select id::int as id, status from fusion.conflict where key = $1 and field = 'name' order by id desc limit 1`, [key])).rows[0]!;
const goldenName = async (key: string) => (await db.query<{ v: string; s: string }>(`select record->'name'->>'v' as v, record->'name'->>'s' as s from fusion.golden where key = $1`, [key])).rows[0]!;
const personPath = (id: string, purpose = '社保待遇资格核验', extra = '') => `/console/population/persons/${id}?purpose=${enc(purpose)}${extra}`;

before(async () => {
  t = await startTestPlatform({ GUSU_DEMO: 'false' }, [], { resolveActor });
  url = t.url;
  db = t.platform.ctx.db;
  const ga = await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', {
    records: [
      hukou(ids.a, '王建国'),
      hukou(ids.b, '李强'),
      hukou(ids.c, '张伟'),
      hukou(ids.d, '赵敏', { sex: 'F' }),
      hukou(ids.e, '陈静', { sex: 'F' }),
      hukou(ids.f, '周杰'),
      hukou(ids.a.slice(0, 17) + (ids.a[17] === '1' ? '2' : '1'), '坏号'),
    ],
  });
  assert.equal(ga.status, 200, JSON.stringify(ga.json));
  assert.equal(ga.json.created, 6);
  const rs = await api('rs-system', 'POST', '/api/v1/population/sources/rs-insurance/records', {
    records: [insurance('1', ids.a, '王建囯'), insurance('2', ids.b, '李墙'), insurance('3', ids.c, '张玮'), insurance('4', ids.d, '赵敏敏'), insurance('6', ids.f, '周傑'), { recordNo: 'R5', name: '无号人员', employer: '某单位（合成）', changeDate: '2025-02-01' }],
  });
  assert.equal(rs.status, 200, JSON.stringify(rs.json));
  assert.equal(rs.json.conflicts, 5);
  assert.equal(rs.json.unlinked, 1);
  // e's first record arrived ten days ago; it moved out today
  await db.query(`update fusion.source_record set received_at = now() - interval '10 days' where key = $1`, [ids.e]);
  const moved = await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [hukou(ids.e, '陈静', { recordId: 'hk-e2', sex: 'F', change: 'moved-out', changeDate: '2026-01-05', divisionCode: '320583' })] });
  assert.equal(moved.status, 200);
});
after(async () => {
  await t?.stop();
});

describe('who may see the pages', () => {
  test('401 for nobody, 403 for a resident; staff see the find page, the person page and the disputes; one h1, no-store', async () => {
    const all = ['/console/population', personPath(ids.a), '/console/population/conflicts', '/console/population/disputes', '/console/population/review'];
    for (const p of all) {
      const anon = await new Browser().fetch(p);
      assert.equal(anon.status, 401, p);
      assert.doesNotMatch(anon.text, /王/, `${p}: nothing shown`);
      assert.equal((await new Browser('citizen').fetch(p)).status, 403, `${p} as a resident`);
    }
    for (const p of ['/console/population', personPath(ids.a), '/console/population/disputes']) {
      for (const who of ['rs', 'jt', 'steward']) {
        const r = await new Browser(who).fetch(p);
        assert.equal(r.status, 200, `${p} as ${who}: ${r.text.slice(0, 300)}`);
        assert.equal(h1s(r.text), 1, `${p}: one h1`);
        assert.equal(r.headers.get('cache-control'), 'no-store', p);
        assert.match(r.text, /class="shell-console"/);
        assert.match(r.text, /<html lang="zh-CN">/);
      }
    }
  });

  test('the steward queues are the stewards’ (security officers read them without forms)', async () => {
    for (const p of ['/console/population/conflicts', '/console/population/review']) {
      assert.equal((await new Browser('rs').fetch(p)).status, 403, `${p} as other staff`);
      const st = await new Browser('steward').fetch(p);
      assert.equal(st.status, 200, p);
      assert.equal(h1s(st.text), 1);
      const so = await new Browser('security').fetch(p);
      assert.equal(so.status, 200, `${p} as a security officer`);
    }
    const so = await new Browser('security').fetch('/console/population/conflicts');
    assert.doesNotMatch(so.text, /method="post"/, 'no decision forms for a reader');
    assert.match(so.text, /需要基础数据管理员角色/);
    const st = await new Browser('steward').fetch('/console/population/conflicts');
    assert.match(st.text, /method="post"/);
    // tabs: other staff see no steward tabs
    const rs = await new Browser('rs').fetch('/console/population');
    assert.doesNotMatch(rs.text, /href="\/console\/population\/conflicts"/);
    assert.match((await new Browser('steward').fetch('/console/population')).text, /href="\/console\/population\/conflicts"/);
    // the POSTs: as the policy says
    assert.equal((await new Browser('rs').post('/console/population/conflicts/1/resolve', { decision: 'keep' })).status, 403);
    assert.equal((await new Browser().post('/console/population/disputes/1/answer', { outcome: 'confirm' })).status, 401);
    assert.equal((await new Browser('citizen').post('/console/population/disputes/1/answer', { outcome: 'confirm' })).status, 403);
  });

  test('404 for a person not in the registry, a conflict or dispute that does not exist', async () => {
    const nobody = makeIdNumber('320505', '19700101', '111');
    const r = await new Browser('rs').fetch(personPath(nobody));
    assert.equal(r.status, 404);
    assert.match(r.text, /没有找到该人员/);
    assert.match(r.text, /没有身份号码为 3205\*{10}\d{3}[\dX] 的人员/, 'the ID number is masked in the message');
    const st = new Browser('steward');
    const page = await st.fetch('/console/population/conflicts');
    assert.equal((await st.post('/console/population/conflicts/999999/resolve', { _csrf: csrfOf(page.text), decision: 'keep' })).status, 404);
    assert.equal((await st.post('/console/population/disputes/999999/answer', { _csrf: csrfOf(page.text), outcome: 'confirm' })).status, 404);
  });

  test('the policy and the console navigation', async () => {
    assert.ok(populationPagePolicy.some((r) => r.resource === 'population-console' && r.verb === 'read'));
    const r = await new Browser('rs').fetch('/console');
    assert.ok(r.text.includes(`href="/console/population"`) && r.text.includes(POPULATION_NAV_LABEL.zh), 'the console navigation names the registry');
  });
});

describe('a person', () => {
  test('another department sees the granted items, personal ones masked, each with its source; the read is in the citizen’s log', async () => {
    const r = await new Browser('rs').fetch(personPath(ids.a));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.match(r.text, /<h1>人员基础信息：王\*\*<\/h1>/);
    assert.match(r.text, /3205\*{10}\d{3}[\dX]/, 'the ID number masked');
    assert.match(r.text, /已屏蔽/);
    assert.match(r.text, /公安 · 公安户籍|公安局 · 公安户籍/, 'the source: department and source name');
    assert.doesNotMatch(r.text, /苏州某公司/, 'items outside the grant are not shown');
    assert.doesNotMatch(r.text, /人民路100号/, 'the household address is withheld');
    assert.ok(!r.text.includes(`<code>hk-${ids.a}</code>`), 'a source record id carrying the ID number is masked too');
    assert.doesNotMatch(r.text, /来源记录历史/, 'no history for other departments');
    assert.match(r.text, /用途：社保待遇资格核验/);
    const log = await accessesOfSubject(db, ids.a, { limit: 20 });
    assert.ok(log.items.some((e) => e.action === 'population.person.read' && e.department === 'SZ-RS' && e.purpose === '社保待遇资格核验'));
  });

  test('the provider sees its items unmasked; the steward every item, the history oldest first and the open conflicts', async () => {
    const ga = await new Browser('ga').fetch(personPath(ids.b, '户籍业务办理'));
    assert.match(ga.text, /<h1>人员基础信息：李强<\/h1>/);
    assert.match(ga.text, /人民路100号/);
    const st = await new Browser('steward').fetch(personPath(ids.b, '数据质量核查'));
    assert.equal(st.status, 200);
    assert.match(st.text, /苏州某公司（合成）/);
    assert.match(st.text, /来源记录历史/);
    const hk = st.text.indexOf(`<code>hk-${ids.b}</code>`);
    const rs = st.text.indexOf('<code>R2</code>');
    assert.ok(hk > 0 && rs > hk, 'history: oldest first');
    assert.match(st.text, /href="\/console\/population\/conflicts\?key=[0-9X]{18}&amp;status=open#conflict-\d+"/, 'links to the open conflict');
    const log = await accessesOfSubject(db, ids.b, { limit: 20 });
    assert.ok(log.items.some((e) => e.action === 'population.person.history' && e.purpose === '数据质量核查'));
  });

  test('as of a past date: the record as known then; before the person was known: 404', async () => {
    const now = await new Browser('ga').fetch(personPath(ids.e, '户籍业务办理'));
    assert.match(now.text, /已迁出/);
    const fiveDaysAgo = new Date(Date.now() - 5 * 86400_000 + 8 * 3600_000).toISOString().slice(0, 10);
    const then = await new Browser('ga').fetch(personPath(ids.e, '户籍业务办理', `&asOf=${fiveDaysAgo}`));
    assert.equal(then.status, 200);
    assert.match(then.text, /户籍在册/);
    assert.doesNotMatch(then.text, /已迁出/);
    assert.match(then.text, new RegExp(`截至 ${fiveDaysAgo} 日终时所知的记录`));
    const longAgo = await new Browser('ga').fetch(personPath(ids.e, '户籍业务办理', '&asOf=2000-01-01'));
    assert.equal(longAgo.status, 404);
    const bad = await new Browser('ga').fetch(personPath(ids.e, '户籍业务办理', '&asOf=2025-02-30'));
    assert.equal(bad.status, 400);
    assert.match(bad.text, /请按 年-月-日 填写日期/);
  });

  test('a purpose is required: without one nothing is read and the page asks for it', async () => {
    const before = (await accessesOfSubject(db, ids.c, { limit: 100 })).items.length;
    const r = await new Browser('rs').fetch(`/console/population/persons/${ids.c}`);
    assert.equal(r.status, 400);
    assert.match(r.text, /查看人员信息前请说明用途/);
    assert.match(r.text, /id="f-purpose"/);
    assert.doesNotMatch(r.text, /张/);
    const short = await new Browser('rs').fetch(personPath(ids.c, ' x '));
    assert.equal(short.status, 400);
    assert.equal((await accessesOfSubject(db, ids.c, { limit: 100 })).items.length, before, 'nothing read, nothing logged');
  });
});

describe('find a person', () => {
  test('by ID number: to the person’s page with the purpose; the form says the purpose is shown to the citizen', async () => {
    const b = new Browser('rs');
    const form = await b.fetch('/console/population');
    assert.equal(form.status, 200);
    assert.match(form.text, /谁查看了我的数据/);
    const r = await b.fetch(`/console/population?go=1&purpose=${enc('社保待遇资格核验')}&idNumber=${ids.a.toLowerCase()}`);
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), `/console/population/persons/${ids.a}?purpose=${enc('社保待遇资格核验').replace(/%20/g, '+')}`);
    // a link may prefill the ID number without searching
    const pre = await b.fetch(`/console/population?idNumber=${ids.a}`);
    assert.equal(pre.status, 200);
    assert.match(pre.text, new RegExp(`value="${ids.a}"`));
  });

  test('by name and birth date: a list as the grant shows it (masked, no links), linked for a steward', async () => {
    const q = `/console/population?go=1&purpose=${enc('资格核对')}&name=${enc('陈静')}&birthDate=1965-03-01`;
    const rs = await new Browser('rs').fetch(q);
    assert.equal(rs.status, 200);
    assert.match(rs.text, /找到 1 人/);
    assert.match(rs.text, /陈\*/);
    assert.doesNotMatch(rs.text, new RegExp(`/console/population/persons/${ids.e}`));
    assert.match(rs.text, /身份号码已屏蔽/);
    const st = await new Browser('steward').fetch(q);
    assert.match(st.text, new RegExp(`href="/console/population/persons/${ids.e}\\?purpose=`));
    const none = await new Browser('rs').fetch(`/console/population?go=1&purpose=${enc('资格核对')}&name=${enc('无此人')}&birthDate=1965-03-01`);
    assert.match(none.text, /没有找到该姓名和出生日期的人员/);
    const log = await accessesOfSubject(db, ids.e, { limit: 20 });
    assert.ok(log.items.some((e) => e.department === 'SZ-RS' && e.purpose === '资格核对'));
  });

  test('what is missing or wrong is said beside the field (400), input kept and escaped', async () => {
    const b = new Browser('rs');
    const none = await b.fetch('/console/population?go=1');
    assert.equal(none.status, 400);
    assert.match(none.text, /请填写查询用途/);
    assert.match(none.text, /请填写身份号码，或者同时填写姓名和出生日期/);
    assert.match(none.text, /href="#f-purpose"/);
    const bad = await b.fetch(`/console/population?go=1&purpose=xx&idNumber=${ids.a.slice(0, 17)}${ids.a[17] === '1' ? '2' : '1'}`);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /身份号码不正确/);
    const half = await b.fetch(`/console/population?go=1&purpose=xx&name=${enc(XSS)}`);
    assert.equal(half.status, 400);
    assert.match(half.text, /请按 年-月-日 填写出生日期/);
    assert.ok(!half.text.includes(XSS), 'the name is escaped');
    assert.match(half.text, /&lt;script&gt;/);
    const long = await b.fetch(`/console/population?go=1&purpose=${enc('用'.repeat(300))}&idNumber=${ids.a}`);
    assert.equal(long.status, 400);
    assert.match(long.text, /2 至 200 个字/);
  });
});

describe('the steward queue', () => {
  test('keep and replace through the forms (CSRF required; a decision required)', async () => {
    const st = new Browser('steward');
    const b = await conflictOf(ids.b);
    const c = await conflictOf(ids.c);
    assert.equal(b.status, 'open');
    const page = await st.fetch('/console/population/conflicts');
    assert.match(page.text, new RegExp(`id="conflict-${b.id}"`));
    assert.match(page.text, /李墙/);
    assert.match(page.text, /人社 · 人社就业与社会保险|人社局 · 人社就业与社会保险/);
    // the queue view is in the citizen's log
    assert.ok((await accessesOfSubject(db, ids.b, { limit: 50 })).items.some((e) => e.action === 'population.conflict.read'));
    assert.equal((await st.post(`/console/population/conflicts/${b.id}/resolve`, { decision: 'keep' })).status, 403, 'no CSRF token');
    const empty = await st.post(`/console/population/conflicts/${b.id}/resolve`, { _csrf: csrfOf(page.text), note: XSS });
    assert.equal(empty.status, 400);
    assert.match(empty.text, /请选择处理方式/);
    assert.match(empty.text, new RegExp(`href="#f-decision-${b.id}"`));
    assert.ok(!empty.text.includes(XSS), 'the note is escaped');
    const kept = await st.submit('/console/population/conflicts', `/console/population/conflicts/${b.id}/resolve`, [['decision', 'keep'], ['note', '户籍为准']]);
    assert.equal(kept.status, 303);
    const done = await st.fetch(kept.headers.get('location')!);
    assert.match(done.text, new RegExp(`冲突 #${b.id} 已处理：保留现用值`));
    assert.equal((await conflictOf(ids.b)).status, 'kept');
    assert.equal((await goldenName(ids.b)).v, '李强');
    const replaced = await st.submit('/console/population/conflicts', `/console/population/conflicts/${c.id}/resolve`, [['decision', 'replace']]);
    assert.equal(replaced.status, 303);
    assert.equal((await conflictOf(ids.c)).status, 'replaced');
    assert.deepEqual(await goldenName(ids.c), { v: '张玮', s: 'steward' });
    // again: no longer open
    const again = await st.submit('/console/population/conflicts?status=all', `/console/population/conflicts/${c.id}/resolve`, [['decision', 'keep']]);
    assert.equal(again.status, 409);
    assert.match(again.text, /已不是待处理状态/);
    // the kept one under its status
    const keptList = await st.fetch('/console/population/conflicts?status=kept');
    assert.match(keptList.text, new RegExp(`id="conflict-${b.id}"`));
    assert.match(keptList.text, /户籍为准/);
  });

  test('a dispute against the winner goes to 公安; their staff correct it through the disputes page and it is applied', async () => {
    const st = new Browser('steward');
    const a = await conflictOf(ids.a);
    const noSide = await st.submit('/console/population/conflicts', `/console/population/conflicts/${a.id}/resolve`, [['decision', 'dispute']]);
    assert.equal(noSide.status, 400);
    assert.match(noSide.text, /请选择异议针对哪个值/);
    const d = await st.submit('/console/population/conflicts', `/console/population/conflicts/${a.id}/resolve`, [['decision', 'dispute'], ['against', 'winner'], ['note', `人社记录为王建囯，请核实 ${XSS}`]]);
    assert.equal(d.status, 303, d.text.slice(0, 400));
    const done = await st.fetch(d.headers.get('location')!);
    assert.match(done.text, /已提出数据异议，核实任务已发给/);
    assert.equal((await conflictOf(ids.a)).status, 'disputed');
    // 人社's staff do not see it, and may not answer it
    const rsPage = await new Browser('rs').fetch('/console/population/disputes');
    assert.doesNotMatch(rsPage.text, new RegExp(`id="dispute-${a.id}"`));
    // (人社's staff have no form to take a token from: the steward's CSRF cookie and token stand in, so only the authorization refuses)
    const rs = new Browser('rs');
    const stPage = await st.fetch('/console/population/conflicts');
    rs.cookies.set('gusu_csrf', st.cookies.get('gusu_csrf')!);
    assert.equal((await rs.post(`/console/population/disputes/${a.id}/answer`, { _csrf: csrfOf(stPage.text), outcome: 'confirm' })).status, 403);
    // 公安's staff: the task, the note (escaped), the form
    const ga = new Browser('ga');
    const page = await ga.fetch('/console/population/disputes');
    assert.match(page.text, new RegExp(`id="dispute-${a.id}"`));
    assert.match(page.text, /人社记录为王建囯/);
    assert.ok(!page.text.includes(XSS));
    const missing = await ga.post(`/console/population/disputes/${a.id}/answer`, { _csrf: csrfOf(page.text), outcome: 'correct' });
    assert.equal(missing.status, 400);
    assert.match(missing.text, /请填写更正后的值/);
    const ok = await ga.submit('/console/population/disputes', `/console/population/disputes/${a.id}/answer`, [['outcome', 'correct'], ['value', '王建囯']]);
    assert.equal(ok.status, 303, ok.text.slice(0, 400));
    assert.match((await ga.fetch(ok.headers.get('location')!)).text, /已答复：已更正/);
    await until(async () => (await conflictOf(ids.a)).status === 'corrected', 'the correction to be applied');
    assert.deepEqual(await goldenName(ids.a), { v: '王建囯', s: 'ga-hukou' });
    const person = await new Browser('ga').fetch(personPath(ids.a, '户籍业务办理'));
    assert.match(person.text, new RegExp(`<code>dispute:${a.id}</code>`), 'the provenance names the dispute');
  });

  test('a dispute against the challenger goes to 人社; confirmed, the conflict is closed as kept', async () => {
    const st = new Browser('steward');
    const dd = await conflictOf(ids.d);
    const r = await st.submit('/console/population/conflicts', `/console/population/conflicts/${dd.id}/resolve`, [['decision', 'dispute'], ['against', 'challenger']]);
    assert.equal(r.status, 303);
    assert.doesNotMatch((await new Browser('ga').fetch('/console/population/disputes')).text, new RegExp(`id="dispute-${dd.id}"`));
    const rs = new Browser('rs');
    const form = await rs.fetch('/console/population/disputes');
    const ok = await rs.post(`/console/population/disputes/${dd.id}/answer`, [['_csrf', csrfOf(form.text)], ['outcome', 'confirm']]);
    assert.equal(ok.status, 303);
    await until(async () => (await conflictOf(ids.d)).status === 'kept', 'the confirmation to be applied');
    assert.equal((await goldenName(ids.d)).v, '赵敏');
    // answered twice: said plainly
    const again = await rs.post(`/console/population/disputes/${dd.id}/answer`, [['_csrf', csrfOf(form.text)], ['outcome', 'confirm']]);
    assert.equal(again.status, 409);
    assert.match(again.text, /已不在待核实状态/);
  });
});

describe('the review queues', () => {
  test('rejected records with the reason and unlinked records with their status; no fake linking buttons', async () => {
    const r = await new Browser('steward').fetch('/console/population/review');
    assert.equal(r.status, 200);
    assert.match(r.text, /GB 11643/);
    assert.match(r.text, /<code>R5<\/code>/);
    assert.match(r.text, /待关联/);
    assert.match(r.text, /尚未提供：本页只读/);
    assert.doesNotMatch(r.text, /method="post"/);
    const f = await new Browser('steward').fetch('/console/population/review?ustatus=linked');
    assert.doesNotMatch(f.text, /<code>R5<\/code>/);
    assert.equal((await new Browser('steward').fetch('/console/population/review?ustatus=bogus')).status, 400);
  });
});

describe('hostile input and English', () => {
  test('clean 400 for bad parameters, never 500; everything escaped', async () => {
    const b = new Browser('steward');
    for (const p of [
      '/console/population/persons/12345?purpose=xx',
      `/console/population/persons/${ids.a.slice(0, 17)}Y?purpose=xx`,
      `/console/population/persons/${ids.a}?purpose=${enc('x'.repeat(5000))}`,
      `/console/population/persons/${ids.a}?purpose=${enc('a\u0000b')}`,
      `/console/population?purpose=${enc('x'.repeat(5000))}`,
      '/console/population/conflicts?status=bogus',
      '/console/population/conflicts?page=0',
      '/console/population/conflicts?key=123',
      '/console/population/disputes?page=-1',
      '/console/population/review?rpage=abc',
    ]) {
      const r = await b.fetch(p);
      assert.equal(r.status, 400, `${p}: ${r.status}`);
    }
    const page = await b.fetch('/console/population/conflicts');
    assert.equal((await b.post('/console/population/conflicts/abc/resolve', { _csrf: csrfOf(page.text), decision: 'keep' })).status, 400);
    assert.equal((await b.post(`/console/population/conflicts/1/resolve`, { _csrf: csrfOf(page.text), decision: 'burn' })).status, 400);
    assert.equal((await b.post(`/console/population/conflicts/1/resolve`, { _csrf: csrfOf(page.text), decision: 'keep', extra: 'x' })).status, 400);
    const x = await b.fetch(personPath(ids.b, XSS));
    assert.equal(x.status, 200);
    assert.ok(!x.text.includes(XSS), 'the purpose is escaped');
    const beyond = await b.fetch('/console/population/conflicts?page=999');
    assert.equal(beyond.status, 200);
    assert.match(beyond.text, /没有第 999 页/);
  });

  test('English', async () => {
    const b = new Browser('steward');
    const f = await b.fetch('/console/population?lang=en');
    assert.match(f.text, /<html lang="en">/);
    assert.match(f.text, /<h1>Population base registry<\/h1>/);
    assert.match(f.text, /Who looked at my data/);
    assert.match(f.text, /href="\/console\/population\/conflicts\?lang=en"/, 'links keep the language');
    const p = await b.fetch(personPath(ids.b, 'quality check', '&lang=en'));
    assert.match(p.text, /Source-record history/);
    assert.match(p.text, /Male/);
    const c = await b.fetch('/console/population/conflicts?status=all&lang=en');
    assert.match(c.text, /<h1>Conflict queue<\/h1>/);
    assert.match(c.text, /Kept/);
    const r = await b.fetch('/console/population/review?lang=en');
    assert.match(r.text, /not built yet/);
  });
});
