// The catalog and its sharing agreements end to end: the city profile's catalog (validated at load),
// Chinese search with facets, agreements requested, reviewed on the workflow engine (approve,
// narrow, refuse), revoked; and enforcement in the exchange: a member receives only the items its
// department's agreement grants, re-signed by the node, and nothing once the agreement is revoked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { caContextFor, issueCertificate } from '../src/base/identity/ca/index.ts';
import { signBatch, signRequest, verifyEvent, exchangeOf, type UnsignedEvent } from '../src/base/exchange/index.ts';
import { loadCatalogProfile, getAgreement, accessFor, searchEntries, projectItems, reportLateEntries, noteArrival, freshness, type Agreement } from '../src/base/catalog/index.ts';
import { ProfileError, DEFAULT_PROFILE_DIR } from '../src/config/profile.ts';
import type { Alg } from '../src/base/identity/crypto/index.ts';

const staff = (id: string, department: string, roles: { role: string; scope: string | null }[] = []): Actor => ({ kind: 'staff', accountId: `00000000-0000-4000-8000-0000000000${id}`, name: `测试${id}`, department, post: '科员', roles });
const ACTORS: Record<string, Actor> = {
  rs: staff('b1', 'SZ-RS'),
  mz: staff('b2', 'SZ-MZ'),
  'mz-lead': staff('b3', 'SZ-MZ', [{ role: 'department-lead', scope: 'SZ-MZ' }]),
  admin: staff('b4', 'SZ-DSJ', [{ role: 'catalog-admin', scope: null }, { role: 'exchange-operator', scope: null }]),
  ga: staff('b5', 'SZ-GA'),
};
const as = (who: string) => ({ 'x-test-actor': who });

let tp: TestPlatform;
let marriage: string; // the conditional entry the exchange carries as civil.marriage
let marriageItems: string[];

async function api(who: string | null, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${tp.url}${p}`, {
    method,
    headers: { ...(who ? as(who) : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const today = () => new Date().toISOString().slice(0, 10);
const inDays = (d: number) => new Date(Date.now() + d * 86400_000).toISOString().slice(0, 10);

async function request(who: string, entry: string, items: string[], extra: Record<string, unknown> = {}) {
  return api(who, 'POST', '/api/v1/catalog/agreements', { entry, purpose: '低保对象婚姻状况核对', legalBasis: '《社会救助暂行办法》第十一条', items, termStart: today(), termEnd: inDays(365), ...extra });
}

async function decided(id: string): Promise<Agreement> {
  return until(async () => {
    const a = await getAgreement(tp.platform.ctx.db, id);
    return a && a.status !== 'requested' ? a : null;
  }, `agreement ${id} decided`);
}

before(async () => {
  tp = await startTestPlatform({ GUSU_DEMO: 'false' }, [], { resolveActor: async (req) => ACTORS[String(req.headers['x-test-actor'])] ?? ANONYMOUS });
  const { rows } = await tp.platform.ctx.db.query<{ code: string; items: { field: string }[] }>(`select code, items from catalog.entry where exchange_resource = 'civil.marriage'`);
  assert.ok(rows[0], 'the demo catalog names the entry that carries civil.marriage');
  marriage = rows[0].code;
  marriageItems = rows[0].items.map((i) => i.field);
});
after(async () => tp?.stop());

describe('the city profile catalog', () => {
  it('ships at least 60 entries from at least 15 departments, all valid', () => {
    const c = loadCatalogProfile(DEFAULT_PROFILE_DIR);
    assert.ok(c.entries.length >= 60, `${c.entries.length} entries`);
    assert.ok(new Set(c.entries.map((e) => e.provider)).size >= 15);
    for (const name of ['户籍人口信息', '婚姻登记信息', '社会保险参保信息', '不动产登记信息', '出生医学证明信息', '企业登记信息', '纳税信用等级信息']) {
      assert.ok(c.entries.some((e) => e.name === name), name);
    }
    assert.ok(c.entries.filter((e) => e.share.type === 'none').every((e) => e.share.legalBasis));
  });

  it('refuses a broken catalog file and says which file, entry and rule', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-catalog-'));
    try {
      fs.mkdirSync(path.join(dir, 'catalog'));
      fs.copyFileSync(path.join(DEFAULT_PROFILE_DIR, 'departments.json'), path.join(dir, 'departments.json'));
      fs.copyFileSync(path.join(DEFAULT_PROFILE_DIR, 'catalog', 'classification.json'), path.join(dir, 'catalog', 'classification.json'));
      const entries = JSON.parse(fs.readFileSync(path.join(DEFAULT_PROFILE_DIR, 'catalog', 'entries.json'), 'utf8')) as { entries: any[] };
      const write = (mutate: (e: any[]) => void) => {
        const copy = structuredClone(entries.entries);
        mutate(copy);
        fs.writeFileSync(path.join(dir, 'catalog', 'entries.json'), JSON.stringify({ entries: copy }));
      };
      const none = entries.entries.findIndex((e) => e.share.type === 'none');
      write((e) => delete e[none].share.legalBasis);
      assert.throws(() => loadCatalogProfile(dir), (err: Error) => err instanceof ProfileError && /entries\.json/.test(err.message) && /legalBasis/.test(err.message));
      write((e) => (e[0].related = ['199999/000001']));
      assert.throws(() => loadCatalogProfile(dir), /names no entry/);
      write((e) => (e[1].code = e[0].code));
      assert.throws(() => loadCatalogProfile(dir), /appears twice|must start with/);
      write((e) => (e[0].provider = 'SZ-NOPE'));
      assert.throws(() => loadCatalogProfile(dir), /no department SZ-NOPE/);
      write((e) => (e[0].items = [...e[0].items, e[0].items[0]]));
      assert.throws(() => loadCatalogProfile(dir), /appears twice/);
      write((e) => (e[0].share.type = 'unknown'));
      assert.throws(() => loadCatalogProfile(dir), /share\.type/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('search', () => {
  it('finds 户籍人口信息 by 户籍, with a character missing and with one extra', async () => {
    for (const q of ['户籍', '户籍人信息', '户籍人口的信息', '户籍人口信息']) {
      const r = await searchEntries(tp.platform.ctx.db, { q });
      assert.ok(r.items.some((e) => e.name === '户籍人口信息'), `${q}: ${r.items.map((e) => e.name).join(', ')}`);
    }
    const exact = await searchEntries(tp.platform.ctx.db, { q: '户籍人口信息' });
    assert.equal(exact.items[0]!.name, '户籍人口信息', 'the exact name ranks first');
  });

  it('facets count what the filters leave, and the filters combine', async () => {
    const all = await searchEntries(tp.platform.ctx.db, { limit: 5 });
    const sum = (k: 'provider' | 'shareType' | 'kind' | 'updateCycle') => all.facets![k].reduce((n, f) => n + f.count, 0);
    for (const k of ['provider', 'shareType', 'kind', 'updateCycle'] as const) assert.equal(sum(k), all.total, k);
    const ga = await searchEntries(tp.platform.ctx.db, { provider: 'SZ-GA', shareType: 'unconditional' });
    assert.ok(ga.total > 0 && ga.items.every((e) => e.provider === 'SZ-GA' && e.share.type === 'unconditional'));
    assert.deepEqual(ga.facets!.provider.map((f) => f.value), ['SZ-GA']);
  });

  it('shows anonymous callers the public catalog only, staff everything', async () => {
    const anon = await api(null, 'GET', '/api/v1/catalog/entries?limit=100');
    assert.equal(anon.status, 200);
    assert.ok(anon.json.items.length > 0 && anon.json.items.every((e: any) => e.open.open === true));
    const st = await api('rs', 'GET', '/api/v1/catalog/entries?limit=100');
    assert.ok(st.json.total > anon.json.total);
    const hidden = st.json.items.find((e: any) => !e.open.open);
    assert.equal((await api(null, 'GET', `/api/v1/catalog/entries/${hidden.code}`)).status, 404);
    assert.equal((await api('rs', 'GET', `/api/v1/catalog/entries/${hidden.code}`)).status, 200);
  });

  it('takes hostile queries without harm', async () => {
    for (const q of ["'; drop table catalog.entry; --", '%_%\\', '\u0000x', '户籍%', ' ']) {
      const r = await api('rs', 'GET', `/api/v1/catalog/entries?q=${encodeURIComponent(q)}`);
      assert.ok(r.status === 200 || r.status === 400, `${JSON.stringify(q)}: ${r.status}`);
    }
    assert.equal((await api('rs', 'GET', `/api/v1/catalog/entries?q=${'户'.repeat(300)}`)).status, 400);
    assert.equal((await api('rs', 'GET', '/api/v1/catalog/entries?limit=100000')).status, 400);
    assert.equal((await api('rs', 'GET', '/api/v1/catalog/entries?shareType=everything')).status, 400);
    assert.equal((await api('rs', 'GET', '/api/v1/catalog/entries/10100/1')).status, 400);
    assert.equal((await api('rs', 'GET', '/api/v1/catalog/entries/999999/000001')).status, 400);
    assert.equal((await api('rs', 'GET', '/api/v1/catalog/entries/399999/000001')).status, 404);
    const n = (await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from catalog.entry')).rows[0]!.n;
    assert.ok(n >= 60);
  });
});

describe('freshness', () => {
  it('flags entries whose data did not arrive within their cycle, and tells the maintainer once', async () => {
    const db = tp.platform.ctx.db;
    const daily = (await db.query<{ code: string }>(`select code from catalog.entry where update_cycle = 'daily' order by code limit 2`)).rows.map((r) => r.code);
    await noteArrival(db, daily[0]!, new Date(Date.now() - 3600_000));
    await noteArrival(db, daily[1]!, new Date(Date.now() - 5 * 86400_000));
    const f = await freshness(db);
    assert.equal(f.find((x) => x.code === daily[0])!.late, false);
    assert.equal(f.find((x) => x.code === daily[1])!.late, true);
    assert.ok(f.filter((x) => x.updateCycle === 'irregular').every((x) => !x.late && x.dueAt === null));
    const api1 = await api('rs', 'GET', '/api/v1/catalog/freshness?late=true');
    assert.equal(api1.status, 200);
    assert.ok(api1.json.items.some((x: any) => x.code === daily[1]) && !api1.json.items.some((x: any) => x.code === daily[0]));
    assert.equal((await api(null, 'GET', '/api/v1/catalog/freshness')).status, 401);
    const first = await reportLateEntries(tp.platform.ctx);
    assert.ok(first >= 1);
    assert.equal(await reportLateEntries(tp.platform.ctx), 0, 'told once per lateness');
    // data came after the notice, then stopped again: a new lateness, told again
    await db.query(`update catalog.arrival set late_notified_at = now() - interval '10 days' where entry = $1`, [daily[1]]);
    await noteArrival(db, daily[1]!, new Date(Date.now() - 4 * 86400_000));
    assert.equal(await reportLateEntries(tp.platform.ctx), 1, 'late again after new data: told again');
  });
});

describe('sharing agreements', () => {
  it('refuses requests that are malformed, for open or unshared entries, or for another department', async () => {
    const bad = await request('rs', marriage, ['nope']);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.json), /has no item/);
    assert.equal((await request('rs', marriage, [marriageItems[0]!], { termStart: '2001-01-01' })).status, 400);
    assert.equal((await request('rs', marriage, [marriageItems[0]!], { termEnd: inDays(-1) })).status, 400);
    assert.equal((await request('rs', marriage, [marriageItems[0]!], { termEnd: inDays(5000) })).status, 400);
    assert.equal((await request('rs', marriage, [marriageItems[0]!], { purpose: '' })).status, 400);
    assert.equal((await request('rs', marriage, [marriageItems[0]!], { consumer: 'SZ-GA' })).status, 403, 'a department asks for itself only');
    assert.equal((await request('mz', marriage, [marriageItems[0]!])).status, 409, 'the provider needs no agreement');
    assert.equal((await request(null as unknown as string, marriage, [marriageItems[0]!])).status, 401);
    const open = (await tp.platform.ctx.db.query<{ code: string }>(`select code from catalog.entry where kind = 'base' limit 1`)).rows[0]!.code;
    assert.equal((await request('rs', open, ['x'])).status, 409, 'base entries need no agreement');
    const none = (await tp.platform.ctx.db.query<{ code: string; f: string }>(`select code, items->0->>'field' as f from catalog.entry where share_type = 'none' limit 1`)).rows[0]!;
    assert.equal((await request('rs', none.code, [none.f])).status, 403);
    assert.equal((await api('rs', 'POST', '/api/v1/catalog/agreements', '{"entry":')).status, 400);
  });

  it('a request is reviewed by the provider on the workflow engine: narrowed, then granted items only', async () => {
    const want = marriageItems.slice(0, 4);
    const r = await request('rs', marriage, want);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.status, 'requested');
    assert.ok(r.json.processInstance, 'the review process started');
    assert.equal((await request('rs', marriage, want)).status, 409, 'one live request per entry and department');
    // the task is in the provider's inbox, not the consumer's
    const inbox = await api('mz', 'GET', '/api/v1/workflow/tasks');
    assert.ok(JSON.stringify(inbox.json).includes(r.json.processInstance), 'the provider has the review task');
    assert.equal((await api('rs', 'POST', `/api/v1/catalog/agreements/${r.json.id}/decision`, { outcome: 'approve' })).status, 403, 'the consumer cannot approve its own request');
    assert.equal((await api('ga', 'GET', `/api/v1/catalog/agreements/${r.json.id}`)).status, 404, 'an uninvolved department does not see it');
    assert.equal((await api('mz', 'POST', `/api/v1/catalog/agreements/${r.json.id}/decision`, { outcome: 'narrow', items: ['nope'] })).status, 400);
    assert.equal((await api('mz', 'POST', `/api/v1/catalog/agreements/${r.json.id}/decision`, { outcome: 'narrow', items: want.slice(0, 2), note: '仅核对所需' })).status, 202);
    const a = await decided(r.json.id);
    assert.equal(a.status, 'approved');
    assert.equal(a.narrowed, true);
    assert.deepEqual(a.itemsGranted, want.slice(0, 2));
    const g = await accessFor(tp.platform.ctx.db, marriage, 'SZ-RS');
    assert.deepEqual(g?.items, want.slice(0, 2));
    assert.equal(g?.partial, true);
    assert.equal(await accessFor(tp.platform.ctx.db, marriage, 'SZ-GA').then((x) => x?.basis ?? null), (await tp.platform.ctx.db.query(`select 1 from catalog.agreement where entry = $1 and consumer = 'SZ-GA' and status = 'approved'`, [marriage])).rowCount ? 'agreement' : null);
    assert.deepEqual(projectItems({ [want[0]!]: 1, [want[1]!]: 2, [want[2]!]: 3, extra: 4 }, g!), { [want[0]!]: 1, [want[1]!]: 2 });
    const audit = await tp.platform.ctx.db.query<{ action: string }>(`select action from audit.entry where resource_type = 'sharing-agreement' and resource_id = $1 order by seq`, [r.json.id]);
    assert.deepEqual(audit.rows.map((x) => x.action), ['catalog.agreement.request', 'catalog.agreement.decide']);
  });

  it('a refusal grants nothing; a withdrawn request ends its review', async () => {
    const ga = await request('ga', marriage, [marriageItems[0]!]);
    assert.equal(ga.status, 201);
    assert.equal((await api('mz', 'POST', `/api/v1/catalog/agreements/${ga.json.id}/decision`, { outcome: 'refuse', note: '用途不符' })).status, 202);
    assert.equal((await decided(ga.json.id)).status, 'refused');
    assert.equal(await accessFor(tp.platform.ctx.db, marriage, 'SZ-GA'), null);
    const again = await request('ga', marriage, [marriageItems[0]!]);
    assert.equal(again.status, 201, 'after a refusal a department may ask again');
    assert.equal((await api('rs', 'POST', `/api/v1/catalog/agreements/${again.json.id}/withdraw`)).status, 404, 'only the consumer withdraws');
    const w = await api('ga', 'POST', `/api/v1/catalog/agreements/${again.json.id}/withdraw`);
    assert.equal(w.status, 200);
    assert.equal(w.json.status, 'withdrawn');
    const inst = await tp.platform.ctx.db.query<{ status: string }>('select status from workflow.instance where id = $1', [again.json.processInstance]);
    assert.equal(inst.rows[0]!.status, 'terminated');
  });
});

describe('enforcement in the exchange', () => {
  interface Member {
    id: string;
    key: string;
    alg: Alg;
  }
  const members: Record<string, Member> = {};
  async function member(code: string, subsystem: string): Promise<Member> {
    const ca = caContextFor(tp.platform.ctx);
    const c = await issueCertificate(tp.platform.ctx.db, ca, { kind: 'system', id: 'test' }, { alg: 'ecdsa-p256-sha256', subject: { kind: 'system', systemId: subsystem, department: code, name: `${code} ${subsystem}` } });
    const res = await api('admin', 'POST', '/api/v1/exchange/members', { memberClass: 'GOV', memberCode: code, subsystem, name: `${code} ${subsystem}`, certificate: c.certificate });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return { id: `SZ/GOV/${code}/${subsystem}`, key: c.privateKey!, alg: 'ecdsa-p256-sha256' };
  }
  async function call(m: Member, method: string, p: string, body?: unknown, type = 'application/json') {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const res = await fetch(`${tp.url}${p}`, { method, headers: { ...signRequest({ member: m.id }, { privateKey: m.key, alg: m.alg }, { method, path: p, body: text }), ...(text ? { 'content-type': type } : {}) }, body: text });
    const raw = await res.text();
    return { status: res.status, json: raw ? JSON.parse(raw) : null };
  }
  let n = 0;
  const marriageEvent = (m: Member, data: Record<string, unknown>): UnsignedEvent => ({
    specversion: '1.0',
    id: `m-${++n}-${crypto.randomUUID()}`,
    source: `urn:gusu:member:${m.id}`,
    type: 'cn.gov.suzhou.civil.marriage.registered',
    gusumember: m.id,
    gusuresource: 'civil.marriage',
    gusukey: String(data.idNumber ?? n),
    data,
  });
  const fullRecord = () => Object.fromEntries(marriageItems.map((f) => [f, f === 'idNumber' || f === 'spouseIdNumber' ? '320505199001011234' : f === 'date' ? '2026-05-20' : f === 'kind' ? 'marriage' : `值-${f}`]));

  it('delivers only the granted items, re-signed by the node; nothing after revocation', async () => {
    const db = tp.platform.ctx.db;
    members.mz = await member('SZ-MZ', 'marriage-test');
    members.rs = await member('SZ-RS', 'assist');
    members.ga = await member('SZ-GA', 'hukou-test');
    // the exchange resource the catalog entry names: its schema allows every item of the entry
    const schema = { type: 'object', properties: Object.fromEntries(marriageItems.map((f) => [f, { type: 'string' }])), additionalProperties: false };
    const put = await api('admin', 'PUT', '/api/v1/exchange/resources/civil.marriage', { name: '婚姻登记信息', provider: members.mz.id, schema });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    // SZ-GA's request was refused above: it may not subscribe
    const gaSub = await call(members.ga, 'POST', '/api/v1/exchange/subscriptions', { resource: 'civil.marriage', delivery: 'pull' });
    assert.equal(gaSub.status, 403);
    assert.equal(gaSub.json.reason, 'not-entitled');
    // SZ-RS has the narrowed agreement
    const sub = await call(members.rs, 'POST', '/api/v1/exchange/subscriptions', { resource: 'civil.marriage', delivery: 'pull' });
    assert.equal(sub.status, 201, JSON.stringify(sub.json));
    const granted = (await accessFor(db, marriage, 'SZ-RS'))!.items;
    const b = signBatch([marriageEvent(members.mz, fullRecord()), marriageEvent(members.mz, fullRecord())], members.mz.key, members.mz.alg);
    const pub = await call(members.mz, 'POST', '/api/v1/exchange/events', { batch: b.header, events: b.events, proofs: b.proofs }, 'application/cloudevents-batch+json');
    assert.equal(pub.status, 200, JSON.stringify(pub.json));
    // the catalog's freshness hears that data arrived for the entry
    await until(async () => (await db.query(`select 1 from catalog.arrival where entry = $1 and last_at > now() - interval '1 minute'`, [marriage])).rowCount, 'the arrival noted');
    const pulled = await call(members.rs, 'GET', `/api/v1/exchange/subscriptions/${sub.json.id}/events?max=10`);
    assert.equal(pulled.status, 200);
    assert.equal(pulled.json.events.length, 2);
    const rt = exchangeOf(tp.platform.ctx);
    for (const d of pulled.json.events) {
      assert.deepEqual(Object.keys(d.event.data).sort(), [...granted].sort(), 'only the granted items reach the consumer');
      for (const f of marriageItems.filter((x) => !granted.includes(x))) assert.ok(!JSON.stringify(d.event).includes(`值-${f}`), `${f} never leaves the node`);
      assert.equal(d.event.gusuviewby, rt.self.id);
      assert.equal(d.event.gusuitems, granted.join(' '));
      assert.ok(verifyEvent(d.event, rt.self.publicKey).ok, 'the cut event verifies with the node key');
      assert.equal(d.proof.view.entry, marriage);
    }
    assert.equal((await call(members.rs, 'POST', `/api/v1/exchange/subscriptions/${sub.json.id}/ack`, { seqs: pulled.json.events.map((e: any) => e.seq) })).status, 200);

    // the provider's department lead revokes; the very next message is refused and logged
    const agreement = (await db.query<{ id: string }>(`select id from catalog.agreement where entry = $1 and consumer = 'SZ-RS' and status = 'approved'`, [marriage])).rows[0]!.id;
    assert.equal((await api('mz', 'POST', `/api/v1/catalog/agreements/${agreement}/revoke`, { reason: '停止使用' })).status, 403, 'revoking is for the lead');
    const rv = await api('mz-lead', 'POST', `/api/v1/catalog/agreements/${agreement}/revoke`, { reason: '核对工作结束' });
    assert.equal(rv.status, 200, JSON.stringify(rv.json));
    const before = (await db.query<{ n: number }>(`select count(*)::int as n from exchange.refusal where reason = 'not-entitled'`)).rows[0]!.n;
    const b2 = signBatch([marriageEvent(members.mz, fullRecord())], members.mz.key, members.mz.alg);
    assert.equal((await call(members.mz, 'POST', '/api/v1/exchange/events', { batch: b2.header, events: b2.events, proofs: b2.proofs }, 'application/cloudevents-batch+json')).status, 200);
    const after = await call(members.rs, 'GET', `/api/v1/exchange/subscriptions/${sub.json.id}/events?max=10`);
    assert.ok(after.status === 200 || after.status === 404, String(after.status));
    assert.equal(after.status === 200 ? after.json.events.length : 0, 0, 'nothing reaches the consumer after revocation');
    const refusedNow = (await db.query<{ n: number }>(`select count(*)::int as n from exchange.refusal where reason = 'not-entitled'`)).rows[0]!.n;
    assert.ok(refusedNow > before, 'the refused delivery is logged');
    const dead = await db.query<{ last_error: string }>(`select last_error from exchange.delivery where subscription = $1 and status = 'dead'`, [sub.json.id]);
    assert.ok(dead.rows.length >= 1 && /not-entitled/.test(dead.rows[0]!.last_error));
    const s = await db.query<{ status: string }>('select status from exchange.subscription where id = $1', [sub.json.id]);
    assert.equal(s.rows[0]!.status, 'cancelled');
  });

  it('base entries: any department subscribes, and its use is recorded', async () => {
    const db = tp.platform.ctx.db;
    const base = (await db.query<{ code: string; exchange_resource: string }>(`select code, exchange_resource from catalog.entry where kind = 'base' and exchange_resource is not null order by code limit 1`)).rows[0];
    assert.ok(base, 'a base entry carried by the exchange');
    const provider = await member('SZ-GA', 'base-provider');
    const schema = { type: 'object' };
    assert.equal((await api('admin', 'PUT', `/api/v1/exchange/resources/${base.exchange_resource}`, { name: 'base', provider: provider.id, schema })).status, 200);
    const sub = await call(members.rs!, 'POST', '/api/v1/exchange/subscriptions', { resource: base.exchange_resource, delivery: 'pull' });
    assert.equal(sub.status, 201, JSON.stringify(sub.json));
    const rec = await db.query<{ basis: string; status: string }>(`select basis, status from catalog.agreement where entry = $1 and consumer = 'SZ-RS'`, [base.code]);
    assert.deepEqual(rec.rows, [{ basis: 'open', status: 'approved' }]);
  });
});

describe('gusu catalog', () => {
  const gusu = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['bin/gusu.js', 'catalog', ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent', DATABASE_URL: tp.database.url, ...env }, timeout: 60_000 });

  it('checks a catalog profile, and names the file and rule of a broken one', () => {
    const ok = gusu(['check']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /93 entries from 27 departments/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-catalog-cli-'));
    try {
      fs.cpSync(DEFAULT_PROFILE_DIR, dir, { recursive: true });
      const file = path.join(dir, 'catalog', 'entries.json');
      const data = JSON.parse(fs.readFileSync(file, 'utf8'));
      data.entries[3].maintainer.department = 'SZ-XX';
      fs.writeFileSync(file, JSON.stringify(data));
      const bad = gusu(['check', dir]);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /entries\.json: entries\[3\].*no department SZ-XX/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('searches, shows an entry and lists freshness from the database', () => {
    const s = gusu(['search', '户籍', '--json']);
    assert.equal(s.status, 0, s.stderr);
    const r = JSON.parse(s.stdout);
    assert.ok(r.items.some((e: any) => e.name === '户籍人口信息'));
    const show = gusu(['show', r.items[0].code]);
    assert.equal(show.status, 0);
    assert.match(show.stdout, /信息项/);
    assert.equal(gusu(['show', '101001/999999']).status, 1);
    const f = gusu(['freshness', '--late']);
    assert.equal(f.status, 0);
    assert.match(f.stdout, /^\d+ entries, \d+ late/);
  });

  it('refuses bad arguments with usage (exit 2)', () => {
    for (const args of [['bogus'], [], ['show'], ['show', "1'; drop"], ['search', '--share', 'all'], ['search', '--limit', '0'], ['search', '--nope']]) {
      const r = gusu(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const nodb = gusu(['search', 'x'], { DATABASE_URL: '', GUSU_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-empty-')) });
    assert.notEqual(nodb.status, 0);
    assert.match(nodb.stderr, /no embedded database/);
  });
});
