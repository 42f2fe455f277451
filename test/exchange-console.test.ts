// The exchange's console pages (/console/exchange) on a running platform: who may see them (401 for
// nobody, 403 for staff without an exchange role, 200 for exchange operators, platform administrators
// and security officers), what they show of rows written straight into the exchange tables (nodes and
// their health, throughput, members, subscription lag, dead letters, refusals), replaying dead letters
// through the CSRF-protected form (audited; read-only roles cannot), paging and filters, hostile query
// strings, and both languages. Jobs are off (GUSU_JOB_CONCURRENCY=0) and so is the demo (GUSU_DEMO=false,
// which would seed exchange members and traffic of its own): the rows are the test's alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exchangePagePolicy } from '../src/base/exchange/pages.ts';
import { EXCHANGE_NAV_LABEL } from '../src/base/exchange/messages.ts';
import { deadLetterCounts, listDeadLetters, memberOverview, nodeHealth, replayDeadLetters, subscriptionLag, throughput } from '../src/base/exchange/stats.ts';
import type { Db } from '../src/db/index.ts';
import { EXCHANGE_ACTORS, exchangeActor, exchangePagesModules, seedExchangeConsole, XSS, type Seeded } from './support/exchange-console.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let t: TestPlatform;
let url: string;
let db: Db;
let selfId: string;
let SUB: Seeded['sub'];
const ACTORS = EXCHANGE_ACTORS;

/** a page as a browser sees it: cookies kept (the CSRF cookie), acting as `as` */
class Page {
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
}

const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? assert.fail('no CSRF field on the page');
const h1s = (page: string) => (page.match(/<h1[\s>]/g) ?? []).length;
const q = async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.query<R>(sql, params)).rows;
/** the seqs of the dead-letter rows on a page, in order */
const seqsOf = (page: string) => [...page.matchAll(/name="item" value="[0-9a-f-]{36}:(\d+)"/g)].map((m) => Number(m[1]));

before(async () => {
  t = await startTestPlatform({ GUSU_JOB_CONCURRENCY: '0', GUSU_DEMO: 'false' }, exchangePagesModules(), { resolveActor: exchangeActor });
  url = t.url;
  db = t.platform.ctx.db;
  ({ selfId, sub: SUB } = await seedExchangeConsole(db));
});
after(async () => {
  await t?.stop();
});

const PAGES = ['/console/exchange', '/console/exchange/members', '/console/exchange/subscriptions', '/console/exchange/dead-letters', '/console/exchange/refusals'];

describe('who may see the pages', () => {
  test('nobody signed in: 401; staff without an exchange role and a resident: 403', async () => {
    for (const p of PAGES) {
      const anon = await new Page().fetch(p);
      assert.equal(anon.status, 401, p);
      assert.doesNotMatch(anon.text, /死信 \d|SZ\/GOV\/SZ-GA\/hukou/, `${p}: nothing shown`);
      for (const who of ['plain', 'ca', 'citizen']) assert.equal((await new Page(who).fetch(p)).status, 403, `${p} as ${who}`);
      for (const who of ['operator', 'admin', 'security']) {
        const r = await new Page(who).fetch(p);
        assert.equal(r.status, 200, `${p} as ${who}`);
        assert.equal(r.headers.get('cache-control'), 'no-store', p);
        assert.equal(h1s(r.text), 1, `${p}: one h1`);
        assert.match(r.text, /class="shell-console"/);
      }
    }
  });

  test('the replay form: only exchange operators and platform administrators', async () => {
    const form = { subscription: SUB.pull, all: '1' };
    assert.equal((await new Page().post('/console/exchange/dead-letters/replay', form)).status, 401);
    for (const who of ['plain', 'security', 'citizen']) assert.equal((await new Page(who).post('/console/exchange/dead-letters/replay', form)).status, 403, who);
    // a security officer sees the dead letters, without the form
    const seen = await new Page('security').fetch('/console/exchange/dead-letters');
    assert.doesNotMatch(seen.text, /name="item"|dead-letters\/replay/);
    assert.match(seen.text, /重放死信需要/);
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where status = 'dead'`))[0]!.n, 28, 'nothing was replayed');
  });

  test('the policy and the navigation label', () => {
    assert.deepEqual(
      exchangePagePolicy.map((r) => `${typeof r.who === 'object' ? r.who.role : r.who} ${r.resource}:${r.verb}`).sort(),
      [
        'exchange-operator dead-letter:replay',
        'exchange-operator exchange-console:read',
        'platform-admin dead-letter:replay',
        'platform-admin exchange-console:read',
        'security-officer exchange-console:read',
      ],
    );
    assert.deepEqual(EXCHANGE_NAV_LABEL, { zh: '数据交换', en: 'Data exchange' });
  });
});

describe('the queries', () => {
  test('node health, lag, throughput, dead letters and members', async () => {
    const nodes = await nodeHealth(db);
    assert.equal(nodes[0]!.id, selfId, 'this node first');
    assert.ok(nodes[0]!.isSelf);
    const wz = nodes.find((n) => n.id === 'node-320506')!;
    assert.equal(wz.status, 'down');
    assert.equal(wz.backlog, 7);
    assert.equal(wz.links.length, 1);
    assert.ok(wz.oldestWaitingSeconds! >= 7190 && wz.oldestWaitingSeconds! < 7400, String(wz.oldestWaitingSeconds));

    const lag = await subscriptionLag(db, { limit: 10, offset: 0 });
    assert.equal(lag.total, 3);
    assert.equal(lag.items[0]!.id, SUB.node, 'the longest-waiting first');
    assert.deepEqual([lag.items[0]!.ready, lag.items[0]!.leased, lag.items[0]!.dead], [5, 2, 0]);
    const legal = lag.items.find((s) => s.id === SUB.legal)!;
    assert.deepEqual([legal.ready, legal.dead, legal.doneLastHour, legal.oldestWaitingSeconds], [0, 3, 4, null]);
    assert.equal((await subscriptionLag(db, { limit: 10, offset: 0, resource: 'LEGAL' })).total, 1, 'case-insensitive');
    assert.equal((await subscriptionLag(db, { limit: 10, offset: 0, member: '%' })).total, 0, '% is only text');
    assert.equal((await subscriptionLag(db, { limit: 10, offset: 0, member: 'node-3205' })).items[0]!.id, SUB.node);

    const tp = await throughput(db);
    assert.equal(tp.minutes.length, 60);
    assert.equal(tp.received, 37, '30 + 7 in the last hour; the two-hour-old one not');
    assert.equal(tp.delivered, 4);

    const dead = await listDeadLetters(db, { subscription: SUB.legal, limit: 10, offset: 0 });
    assert.equal(dead.total, 3);
    assert.equal(dead.items[0]!.type, 'legal-entity.registered', 'the top-level type, not one inside data');
    assert.equal(dead.items[0]!.lastError, 'HTTP 503');
    assert.ok(dead.items[0]!.seq > dead.items[1]!.seq, 'newest first');
    assert.deepEqual(
      (await deadLetterCounts(db)).map((c) => [c.subscription, c.dead]),
      [
        [SUB.pull, 25],
        [SUB.legal, 3],
      ],
    );
    assert.equal(await replayDeadLetters(db, SUB.legal, []), 0, 'an empty list replays nothing');

    const members = await memberOverview(db, { q: 'HUKOU', limit: 10, offset: 0 });
    assert.equal(members.total, 1);
    assert.deepEqual(members.items[0]!.resources, ['population.person-changed']);
    assert.equal((await memberOverview(db, { q: 'sys01', limit: 10, offset: 0 })).items[0]!.subscriptions, 1);
  });
});

describe('the pages', () => {
  test('overview: this node, the nodes and their state, figures with links, throughput as a chart and a table', async () => {
    const { text } = await new Page('operator').fetch('/console/exchange');
    assert.match(text, /<html lang="zh-CN">/);
    assert.match(text, /<h1>数据交换<\/h1>/);
    assert.match(text, new RegExp(`<code>${selfId}</code>`));
    // nodes: up, down, unknown, each with its word (not colour alone)
    assert.match(text, /虎丘区数据交换节点<br><code>node-320505<\/code><\/th><td[^>]*><span class="badge badge-ok">在线<\/span>/);
    assert.match(text, /<code>node-320506<\/code><\/th><td[^>]*><span class="badge badge-problem">离线<\/span>/);
    assert.match(text, /<code>node-320507<\/code><\/th><td[^>]*><span class="badge badge-planned">未知<\/span><\/td><td[^>]*>从未<\/td>/);
    assert.match(text, new RegExp(`<code>${selfId}</code></th><td[^>]*><span class="badge badge-ok">本节点</span>`));
    // the down node's backlog (5 ready + 2 leased) and its oldest waiting message (two hours)
    assert.match(text, /<span class="badge badge-problem">离线<\/span><\/td><td[^>]*><time[^>]*>[^<]+<\/time><\/td><td class="num">7<\/td><td[^>]*>2 小时<\/td>/);
    assert.doesNotMatch(text, /<script>alert/);
    assert.match(text, /ECONNREFUSED &lt;script&gt;/);
    // figures and links
    assert.match(text, /<dt>死信<\/dt><dd>28<\/dd>/);
    assert.match(text, /<dt>24 小时内拒绝<\/dt><dd>5<\/dd>/);
    assert.match(text, /<dt>成员<\/dt><dd>25<\/dd>/);
    assert.match(text, /<a href="\/console\/exchange\/dead-letters">查看死信（28）<\/a>/);
    assert.match(text, /<a href="\/console\/exchange\/refusals">查看拒绝记录（24 小时内 5 条）<\/a>/);
    // throughput: two charts with a text alternative, and every minute in a table
    assert.match(text, /<dt>一小时内收到<\/dt><dd>37<\/dd>/);
    assert.match(text, /<dt>一小时内投递<\/dt><dd>4<\/dd>/);
    assert.equal((text.match(/<svg [^>]*role="img" aria-labelledby="chart-(received|delivered)-title chart-\1-desc"/g) ?? []).length, 2);
    assert.match(text, /<desc id="chart-received-desc">柱状图，共 60 分钟，从 \d\d:\d\d 到 \d\d:\d\d；合计 37，/);
    assert.equal((text.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#0d3b66">/g) ?? []).length > 5, true);
    assert.match(text, /<caption>每分钟吞吐量（最近的在前）<\/caption>/);
    assert.equal((text.match(/<tr><th scope="row" class="nowrap"><time datetime=/g) ?? []).length, 60);
    // no inline style or script (CSP)
    assert.doesNotMatch(text, /<script|style=/);
    // the tabs mark the current page
    assert.match(text, /<nav class="tabs" aria-label="数据交换各页"><ul><li><span aria-current="page">概览<\/span><\/li>/);
  });

  test('members: search, paging, names escaped', async () => {
    const p = new Page('operator');
    const first = await p.fetch('/console/exchange/members');
    assert.match(first.text, /符合条件的成员 25 个，第 1 \/ 2 页/);
    assert.equal((first.text.match(/<th scope="row" class="nowrap"><code>SZ\/GOV\//g) ?? []).length, 20);
    assert.match(first.text, /href="\/console\/exchange\/members\?page=2" rel="next"/);
    const second = await p.fetch('/console/exchange/members?page=2');
    assert.match(second.text, /&lt;img src=x onerror=alert\(1\)&gt;民政/);
    assert.doesNotMatch(second.text, /<img src=x/);
    assert.equal((second.text.match(/<th scope="row" class="nowrap"><code>SZ\/GOV\//g) ?? []).length, 5);
    assert.match(second.text, /rel="prev"/);
    const hukou = await p.fetch('/console/exchange/members?q=hukou');
    assert.match(hukou.text, /符合条件的成员 1 个/);
    assert.match(hukou.text, /<code>SZ\/GOV\/SZ-GA\/hukou<\/code>/);
    assert.match(hukou.text, /<code>population\.person-changed<\/code>/);
    assert.match(hukou.text, /value="hukou"/, 'the search stays in the box');
    const beyond = await p.fetch('/console/exchange/members?page=9');
    assert.equal(beyond.status, 200);
    assert.match(beyond.text, /没有第 9 页：共 2 页。/);
  });

  test('subscriptions: the lag table and its filters', async () => {
    const p = new Page('operator');
    const all = await p.fetch('/console/exchange/subscriptions');
    assert.match(all.text, /符合条件的订阅 3 个/);
    // the longest-waiting first: the node link, two hours
    const firstRow = /<tbody><tr>(.*?)<\/tr>/s.exec(all.text)![1]!;
    assert.match(firstRow, /节点 <code>node-320506<\/code>/);
    assert.match(firstRow, /<td class="num">5<\/td><td class="num">2<\/td><td class="num">0<\/td><td class="nowrap">2 小时<\/td>/);
    // dead letters link to their list
    assert.ok(all.text.includes(`href="/console/exchange/dead-letters?subscription=${SUB.pull}"`));
    const legal = await p.fetch('/console/exchange/subscriptions?resource=legal');
    assert.match(legal.text, /符合条件的订阅 1 个/);
    assert.match(legal.text, /<td class="num">4<\/td><\/tr>/, 'done in the last hour');
    const member = await p.fetch(`/console/exchange/subscriptions?member=${encodeURIComponent('SZ/GOV/SZ-MZ/sys01')}`);
    assert.match(member.text, /符合条件的订阅 1 个/);
    assert.match(member.text, /拉取/);
    const none = await p.fetch('/console/exchange/subscriptions?member=nobody');
    assert.match(none.text, /没有符合条件的有效订阅。/);
  });

  test('dead letters: filter by subscription, paging, the parsed event type, a checkbox per row', async () => {
    const p = new Page('operator');
    const all = await p.fetch('/console/exchange/dead-letters');
    assert.match(all.text, /死信 28 条，第 1 \/ 2 页/);
    assert.equal(seqsOf(all.text).length, 20);
    assert.match(all.text, /<code>population\.person-changed<\/code>/);
    assert.doesNotMatch(all.text, /nested-not-the-type/);
    assert.match(all.text, /lease expired 8 times &lt;script&gt;/);
    // every checkbox has its label
    for (const m of all.text.matchAll(/<input type="checkbox" id="([^"]+)"/g)) assert.ok(all.text.includes(`<label for="${m[1]}">`), m[1]);
    const sub = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.pull}`);
    assert.match(sub.text, /死信 25 条，第 1 \/ 2 页/);
    assert.ok(sub.text.includes(`<option value="${SUB.pull}" selected>population.person-changed → SZ/GOV/SZ-MZ/sys01 (25)</option>`));
    assert.match(sub.text, /重放该订阅的全部死信/);
    const page2 = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.pull}&page=2`);
    assert.equal(seqsOf(page2.text).length, 5);
    const ids = new Set([...seqsOf(sub.text), ...seqsOf(page2.text)]);
    assert.equal(ids.size, 25, 'the two pages together, no row twice');
    const small = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.legal}&perPage=2`);
    assert.match(small.text, /死信 3 条，第 1 \/ 2 页/);
    assert.ok(small.text.includes(`href="/console/exchange/dead-letters?subscription=${SUB.legal}&amp;perPage=2&amp;page=2"`));
    // a subscription without dead letters: an empty list, no form
    const empty = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.node}`);
    assert.match(empty.text, /没有死信。/);
    assert.doesNotMatch(empty.text, /dead-letters\/replay/);
  });

  test('refusals: counts over 24 hours by reason, the list by reason, details escaped', async () => {
    const p = new Page('security');
    const all = await p.fetch('/console/exchange/refusals');
    assert.match(all.text, /签名无效 \(bad-signature\)<\/a><\/th><td class="num">3<\/td>/);
    assert.match(all.text, /重放（同一事件内容不同） \(replay\)<\/a><\/th><td class="num">2<\/td>/);
    assert.doesNotMatch(all.text, /schema\)<\/a><\/th>/, 'two days ago: not in the 24-hour counts');
    assert.match(all.text, /<tfoot><tr><th scope="row" class="nowrap">合计<\/th><td class="num">5<\/td><\/tr><\/tfoot>/);
    assert.match(all.text, /拒绝记录 6 条/);
    assert.match(all.text, /other content &lt;script&gt;/);
    assert.doesNotMatch(all.text, /<script>alert/);
    const replay = await p.fetch('/console/exchange/refusals?reason=replay');
    assert.match(replay.text, /拒绝记录 2 条/);
    assert.match(replay.text, /<option value="replay" selected>/);
    const unknown = await p.fetch('/console/exchange/refusals?reason=no-such-reason');
    assert.match(unknown.text, /拒绝记录 0 条/);
  });

  test('in English: ?lang=en, and the links keep it', async () => {
    const p = new Page('operator');
    const en = await p.fetch('/console/exchange?lang=en');
    assert.match(en.text, /<html lang="en">/);
    assert.match(en.text, /<h1>Data exchange<\/h1>/);
    assert.match(en.text, /<span class="badge badge-problem">Down<\/span>/);
    assert.match(en.text, /<a href="\/console\/exchange\/dead-letters\?lang=en">See the dead letters \(28\)<\/a>/);
    assert.match(en.text, /Huqiu|node-320505 node/, 'the English node name');
    const dead = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.legal}&lang=en`);
    assert.match(dead.text, /3 dead letters, page 1 of 1/);
    assert.match(dead.text, /action="\/console\/exchange\/dead-letters\/replay\?lang=en"/);
    assert.match(dead.text, /<input type="hidden" name="lang" value="en">/);
    // the cookie the language switch sets works too
    p.cookies.set('lang', 'en');
    assert.match((await p.fetch('/console/exchange/refusals')).text, /<h1>Refusals<\/h1>/);
  });
});

describe('replaying dead letters', () => {
  test('needs the CSRF token of this browser', async () => {
    const p = new Page('operator');
    const page = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.legal}`);
    const [seq] = seqsOf(page.text);
    const item = `${SUB.legal}:${seq}`;
    assert.equal((await p.post('/console/exchange/dead-letters/replay', { item })).status, 403, 'no token');
    assert.equal((await p.post('/console/exchange/dead-letters/replay', { _csrf: 'forged', item })).status, 403, 'forged');
    const other = new Page('operator');
    assert.equal((await other.post('/console/exchange/dead-letters/replay', { _csrf: csrfOf(page.text), item })).status, 403, 'a token from another browser');
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where subscription = $1 and status = 'dead'`, [SUB.legal]))[0]!.n, 3);
  });

  test('selected rows go back to the queue, audited, with a confirmation', async () => {
    const p = new Page('operator');
    const page = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.pull}`);
    const [a, b] = seqsOf(page.text);
    const res = await p.post('/console/exchange/dead-letters/replay', [
      ['_csrf', csrfOf(page.text)],
      ['subscription', SUB.pull],
      ['item', `${SUB.pull}:${a}`],
      ['item', `${SUB.pull}:${b}`],
    ]);
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/console/exchange/dead-letters?subscription=${SUB.pull}&replayed=2`);
    const rows = await q<{ seq: number; status: string; attempts: number; last_error: string | null; next_at: Date }>(
      `select seq, status, attempts, last_error, next_at from exchange.delivery where subscription = $1 and seq = any($2::bigint[]) order by seq`,
      [SUB.pull, [a, b]],
    );
    assert.deepEqual(
      rows.map((r) => [r.status, r.attempts, r.last_error]),
      [
        ['ready', 0, null],
        ['ready', 0, null],
      ],
    );
    assert.ok(rows.every((r) => r.next_at.getTime() <= Date.now() + 1000));
    const confirmed = await p.fetch(res.headers.get('location')!);
    assert.match(confirmed.text, /<p role="status">已重放 2 条死信：它们已回到队列，将立即重新投递。<\/p>/);
    assert.match(confirmed.text, /死信 23 条/);
    const audit = await q<{ actor_kind: string; actor_id: string; resource_type: string; resource_id: string; outcome: string; details: string; request_id: string | null }>(
      `select actor_kind, actor_id, resource_type, resource_id, outcome, details, request_id from audit.entry where action = 'exchange.dead-letter.replay' order by seq`,
    );
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor_kind, 'staff');
    assert.equal(audit[0]!.actor_id, (ACTORS.operator as { accountId: string }).accountId);
    assert.equal(audit[0]!.resource_id, SUB.pull);
    assert.ok(audit[0]!.request_id);
    assert.deepEqual(JSON.parse(audit[0]!.details), { replayed: 2, seqs: [a, b] });
  });

  test('all of one subscription, by a platform administrator; nothing selected replays nothing', async () => {
    const p = new Page('admin');
    const page = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.pull}&lang=en`);
    const res = await p.post(`/console/exchange/dead-letters/replay?lang=en`, { _csrf: csrfOf(page.text), subscription: SUB.pull, all: '1' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/console/exchange/dead-letters?subscription=${SUB.pull}&replayed=23&lang=en`);
    assert.match((await p.fetch(res.headers.get('location')!)).text, /Replayed 23 dead letters/);
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where subscription = $1 and status = 'dead'`, [SUB.pull]))[0]!.n, 0);
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where subscription = $1 and status = 'ready'`, [SUB.pull]))[0]!.n, 25);
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where subscription = $1 and status = 'dead'`, [SUB.legal]))[0]!.n, 3, 'another subscription untouched');

    const nothing = await p.post('/console/exchange/dead-letters/replay', { _csrf: csrfOf(page.text) });
    assert.equal(nothing.status, 303);
    assert.equal(nothing.headers.get('location'), '/console/exchange/dead-letters?replayed=0');
    assert.match((await p.fetch(nothing.headers.get('location')!)).text, /没有重放任何死信/);
    const audits = await q<{ n: number }>(`select count(*)::int as n from audit.entry where action = 'exchange.dead-letter.replay'`);
    assert.equal(audits[0]!.n, 2, 'the empty form wrote nothing');
  });

  test('bad forms are refused and change nothing', async () => {
    const p = new Page('operator');
    const page = await p.fetch(`/console/exchange/dead-letters?subscription=${SUB.legal}`);
    const csrf = csrfOf(page.text);
    const forms: Record<string, string>[] = [
      { _csrf: csrf, item: 'not-an-item' },
      { _csrf: csrf, item: `${SUB.legal}:0` },
      { _csrf: csrf, item: `${SUB.legal}:99999999999999999999` },
      { _csrf: csrf, item: `${SUB.legal}:1 or 1=1` },
      { _csrf: csrf, all: '1' },
      { _csrf: csrf, all: 'yes', subscription: SUB.legal },
      { _csrf: csrf, subscription: `${SUB.legal}'--`, all: '1' },
      { _csrf: csrf, subscription: SUB.legal, all: '1', extra: 'x' },
    ];
    for (const form of forms) {
      const r = await p.post('/console/exchange/dead-letters/replay', form);
      assert.equal(r.status, 400, JSON.stringify(form));
    }
    const many = Array.from({ length: 501 }, (_, i) => ['item', `${SUB.legal}:${i + 1}`] as [string, string]);
    assert.equal((await p.post('/console/exchange/dead-letters/replay', [['_csrf', csrf], ...many])).status, 400, 'at most 500 in one form');
    assert.equal((await q<{ n: number }>(`select count(*)::int as n from exchange.delivery where subscription = $1 and status = 'dead'`, [SUB.legal]))[0]!.n, 3);
  });
});

describe('hostile query strings', () => {
  test('not numbers, out of range, too long, repeated, control characters: 400 with the console page', async () => {
    const p = new Page('operator');
    for (const path of [
      '/console/exchange/members?page=abc',
      '/console/exchange/members?page=0',
      '/console/exchange/members?page=-1',
      '/console/exchange/members?page=1.5',
      '/console/exchange/members?page=99999999999',
      '/console/exchange/members?perPage=1000',
      '/console/exchange/members?page=1&page=2',
      `/console/exchange/members?q=${'x'.repeat(5000)}`,
      '/console/exchange/members?q=%00',
      '/console/exchange/subscriptions?resource=%1F',
      '/console/exchange/subscriptions?perPage=1e3',
      '/console/exchange/dead-letters?subscription=not-a-uuid',
      `/console/exchange/dead-letters?subscription=${encodeURIComponent(`${SUB.pull}' or '1'='1`)}`,
      '/console/exchange/dead-letters?replayed=-5',
      '/console/exchange/dead-letters?replayed=abc',
      `/console/exchange/refusals?reason=${encodeURIComponent(XSS)}`,
      `/console/exchange?lang=${'e'.repeat(50)}`,
    ]) {
      const r = await p.fetch(path);
      assert.equal(r.status, 400, path.slice(0, 80));
      assert.match(r.text, /class="shell-console"/, path.slice(0, 80));
      assert.doesNotMatch(r.text, /<script>alert/);
    }
  });

  test('markup and SQL in searches are only text: escaped, no match', async () => {
    const p = new Page('operator');
    for (const s of [XSS, '"><img src=x>', "' or 1=1; drop table exchange.member; --", '%', '_', '\\']) {
      for (const path of [`/console/exchange/members?q=${encodeURIComponent(s)}`, `/console/exchange/subscriptions?member=${encodeURIComponent(s)}&resource=${encodeURIComponent(s)}`]) {
        const r = await p.fetch(path);
        assert.equal(r.status, 200, path);
        assert.doesNotMatch(r.text, /<script>alert|<img src=x>/, path);
        assert.match(r.text, /(符合条件的成员|符合条件的订阅) 0 个/, path);
      }
    }
    assert.equal((await q<{ n: number }>('select count(*)::int as n from exchange.member'))[0]!.n, 25, 'the table is still there');
  });
});

describe('a stored envelope that is not JSON (written past the node)', () => {
  test('the dead letters are still listed, their type unknown', async () => {
    const [broken] = await q<{ seq: number }>(
      `insert into exchange.message (source, id, member, resource, digest, event, origin) values ('SZ/GOV/SZ-GA/hukou', 'evt-broken', 'SZ/GOV/SZ-GA/hukou', 'population.person-changed', repeat('b', 64), '{not json', $1) returning seq`,
      [selfId],
    );
    const seq = broken!.seq;
    await db.query(`insert into exchange.delivery (subscription, seq, status, attempts, last_error) values ($1, $2, 'dead', 8, 'bad')`, [SUB.node, seq]);
    const listed = await listDeadLetters(db, { subscription: SUB.node, limit: 10, offset: 0 });
    assert.equal(listed.total, 1);
    assert.equal(listed.items[0]!.type, null);
    assert.equal(listed.items[0]!.id, 'evt-broken');
    const all = await listDeadLetters(db, { limit: 50, offset: 0 });
    assert.equal(all.items.find((d) => d.seq !== seq && d.subscription === SUB.legal)?.type, 'legal-entity.registered', 'the others keep their type');
    const page = await new Page('operator').fetch(`/console/exchange/dead-letters?subscription=${SUB.node}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /evt-broken/);
  });
});
