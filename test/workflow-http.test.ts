// The workflow engine over HTTP on a running platform: the JSON API (deploy JSON and BPMN, start
// with an idempotency key, the inbox, completing tasks, histories, measurements) as different staff,
// a resident and nobody; the console pages (我的待办, a task with its CSRF-protected form, 流程与效能, a
// process, an instance) in both languages; the demo seed; and hostile input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import type { Actor } from '../src/base/identity/policy.ts';
import { ANONYMOUS } from '../src/base/identity/policy.ts';
import { exportBpmn } from '../src/base/workflow/bpmn.ts';
import { engineOf } from '../src/base/workflow/index.ts';
import { DEMO_SETTING, seedDemoWorkflow } from '../src/base/workflow/demo.ts';
import type { ProcessModel } from '../src/base/workflow/model.ts';
import { humanDuration } from '../src/base/workflow/pages.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { staffHolding } from '../src/base/identity/index.ts';
import { listMailbox } from '../src/base/messaging/index.ts';

const staff = (id: string, department: string, roles: [string, string | null][]): Actor => ({
  kind: 'staff',
  accountId: `00000000-0000-4000-8000-${id.padStart(12, '0')}`,
  name: `测试${department}`,
  department,
  post: '科员',
  roles: roles.map(([role, scope]) => ({ role, scope })),
});

/** who a request acts as: the x-actor header, or (from a page) the test_actor cookie */
const ACTORS: Record<string, Actor> = {
  scjg: staff('a1', 'SZ-SCJG', [['case-handler', 'SZ-SCJG']]),
  scjg2: staff('a2', 'SZ-SCJG', [['case-handler', 'SZ-SCJG']]),
  sw: staff('b1', 'SZ-SW', [['case-handler', 'SZ-SW']]),
  ga: staff('c1', 'SZ-GA', [['case-handler', 'SZ-GA']]),
  designer: staff('d1', 'SZ-SCJG', [['process-designer', 'SZ-SCJG']]),
  admin: staff('e1', 'SZ-DSJ', [['platform-admin', null]]),
  citizen: { kind: 'citizen', accountId: '00000000-0000-4000-8000-0000000000f1', name: '张三', idNumber: '11010519491231002X' },
};
async function resolveActor(req: FastifyRequest): Promise<Actor> {
  const h = req.headers['x-actor'];
  const c = /(?:^|;\s*)test_actor=([a-z0-9]+)/.exec(req.headers.cookie ?? '')?.[1];
  const name = typeof h === 'string' ? h : c;
  return (name && ACTORS[name]) || ANONYMOUS;
}

let t: TestPlatform;
let url: string;

before(async () => {
  t = await startTestPlatform({}, [], { resolveActor });
  url = t.url;
});
after(async () => {
  await t?.stop();
});

interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  headers: Headers;
}

async function api(method: string, path: string, as?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const h: Record<string, string> = { accept: 'application/json', ...headers };
  if (as) h['x-actor'] = as;
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const res = await fetch(url + path, { method, headers: h, body: payload, redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** a page as a browser sees it: cookies kept (the CSRF cookie), acting as `as` */
class Page {
  cookies = new Map<string, string>();
  constructor(readonly as: string) {
    this.cookies.set('test_actor', as);
  }
  private cookie(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  async fetch(path: string, init: RequestInit = {}): Promise<{ status: number; text: string; headers: Headers }> {
    const headers = new Headers(init.headers);
    headers.set('cookie', this.cookie());
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const res = await fetch(url + path, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    return { status: res.status, text: await res.text(), headers: res.headers };
  }
  post(path: string, fields: Record<string, string>) {
    return this.fetch(path, { method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }
}

const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? assert.fail('no CSRF field on the page');
const h1s = (page: string) => (page.match(/<h1[\s>]/g) ?? []).length;

function approval(key: string): ProcessModel {
  return {
    key,
    name: { zh: '测试两级审批', en: 'Test two-step approval' },
    owner: 'SZ-SCJG',
    nodes: [
      { id: 'start', type: 'start' },
      { id: 'review', type: 'userTask', name: { zh: '受理审核', en: 'Review' }, assignee: { department: 'SZ-SCJG', role: 'case-handler' }, outcomes: ['approve', 'reject'], deadline: { workingDays: 2 } },
      { id: 'decide', type: 'exclusiveGateway' },
      { id: 'tax', type: 'userTask', name: { zh: '税务办理', en: 'Tax' }, assignee: { department: 'SZ-SW', role: 'case-handler' }, deadline: { workingDays: 1 } },
      { id: 'done', type: 'end', name: { zh: '办结', en: 'Done' } },
      { id: 'refused', type: 'end' },
    ],
    flows: [
      { id: 'f1', from: 'start', to: 'review' },
      { id: 'f2', from: 'review', to: 'decide' },
      { id: 'f3', from: 'decide', to: 'tax', condition: 'reviewOutcome == "approve"', name: { zh: '通过', en: 'Approved' } },
      { id: 'f4', from: 'decide', to: 'refused', isDefault: true },
      { id: 'f5', from: 'tax', to: 'done' },
    ],
  };
}

const KEY = 'test.http-approval';
let instanceId = '';
let reviewTask = '';

describe('the JSON API', () => {
  test('deploy: 201, the same again 200 unchanged; only the owner’s designer or an administrator', async () => {
    assert.equal((await api('POST', '/api/v1/workflow/definitions', undefined, approval(KEY))).status, 401);
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'citizen', approval(KEY))).status, 403);
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'scjg', approval(KEY))).status, 403, 'a case handler does not deploy');
    const first = await api('POST', '/api/v1/workflow/definitions', 'designer', approval(KEY));
    assert.equal(first.status, 201, first.text);
    assert.deepEqual([first.body.key, first.body.version, first.body.created], [KEY, 1, true]);
    assert.equal(first.headers.get('location'), `/api/v1/workflow/definitions/${KEY}?version=1`);
    const again = await api('POST', '/api/v1/workflow/definitions', 'admin', approval(KEY));
    assert.equal(again.status, 200);
    assert.equal(again.body.created, false);
    const other = { ...approval('test.http-other'), owner: 'SZ-SW' };
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'designer', other)).status, 403, 'the SZ-SCJG designer does not deploy an SZ-SW process');
    const invalid = await api('POST', '/api/v1/workflow/definitions', 'admin', { ...approval('test.invalid'), flows: [] });
    assert.equal(invalid.status, 400);
    assert.ok(Array.isArray(invalid.body.errors) && invalid.body.errors.length > 0, 'every problem is named');
    const list = await api('GET', '/api/v1/workflow/definitions', 'sw');
    assert.ok(list.body.items.some((d: { key: string }) => d.key === KEY));
    assert.ok(list.body.items.some((d: { key: string }) => d.key === 'enterprise.establishment'), 'the city’s shipped processes are deployed at start');
  });

  test('deploy BPMN 2.0 XML (Content-Type: application/xml), and read a definition back as BPMN', async () => {
    const xml = await exportBpmn(approval('test.http-bpmn'));
    const r = await api('POST', '/api/v1/workflow/definitions', 'admin', xml, { 'content-type': 'application/xml' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.key, 'test.http-bpmn');
    const again = await api('POST', '/api/v1/workflow/definitions', 'admin', xml, { 'content-type': 'application/xml' });
    assert.equal(again.status, 200, 'the same process again is unchanged');
    const back = await api('GET', `/api/v1/workflow/definitions/${KEY}?format=bpmn`, 'sw');
    assert.equal(back.status, 200);
    assert.match(back.headers.get('content-type') ?? '', /application\/xml/);
    assert.match(back.text, /<bpmn:definitions|<definitions/);
    const json = await api('GET', '/api/v1/workflow/definitions/test.http-bpmn', 'sw');
    assert.equal(json.body.source, 'bpmn');
    assert.equal(json.body.model.nodes.length, approval(KEY).nodes.length);
  });

  test('start with an Idempotency-Key: 201, a retry 200 with the same instance', async () => {
    const body = { key: KEY, businessKey: 'T-0001', variables: { applicant: '测试企业' } };
    const a = await api('POST', '/api/v1/workflow/instances', 'scjg', body, { 'idempotency-key': 'http-test-1' });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.openTasks.length, 1);
    const b = await api('POST', '/api/v1/workflow/instances', 'scjg', body, { 'idempotency-key': 'http-test-1' });
    assert.equal(b.status, 200);
    assert.equal(b.body.instanceId, a.body.instanceId);
    instanceId = a.body.instanceId;
    reviewTask = a.body.openTasks[0];
    assert.equal((await api('POST', '/api/v1/workflow/instances', undefined, body)).status, 401);
    assert.equal((await api('POST', '/api/v1/workflow/instances', 'citizen', body)).status, 403);
    assert.equal((await api('POST', '/api/v1/workflow/instances', 'scjg', { key: 'no.such-process' })).status, 404);
  });

  test('a new task is a notice in the mailbox of the department’s staff holding the role (and not of others)', async () => {
    const db = t.platform.ctx.db;
    const holders = await staffHolding(db, 'SZ-SCJG', 'case-handler');
    assert.ok(holders.length >= 1, 'the demo has a SZ-SCJG case handler');
    const box = await listMailbox(db, t.platform.ctx.profile, `s:${holders[0]}`, 'zh-CN');
    assert.ok(JSON.stringify(box).includes('新待办'), JSON.stringify(box).slice(0, 500));
    const others = await staffHolding(db, 'SZ-SW', null);
    for (const id of others) assert.ok(!JSON.stringify(await listMailbox(db, t.platform.ctx.profile, `s:${id}`, 'zh-CN')).includes('T-0001'));
  });

  test('the inbox: the department’s case handlers see the task, others do not', async () => {
    const mine = await api('GET', `/api/v1/workflow/tasks?key=${KEY}`, 'scjg2');
    assert.equal(mine.status, 200);
    assert.deepEqual(
      mine.body.items.map((x: { id: string }) => x.id),
      [reviewTask],
    );
    assert.equal(mine.body.items[0].businessKey, 'T-0001');
    assert.equal(mine.body.items[0].overdue, false);
    const theirs = await api('GET', `/api/v1/workflow/tasks?key=${KEY}`, 'sw');
    assert.equal(theirs.body.items.length, 0);
    assert.equal((await api('GET', '/api/v1/workflow/tasks', undefined)).status, 401);
    assert.equal((await api('GET', '/api/v1/workflow/tasks', 'citizen')).status, 403);
  });

  test('complete: 403 for another department, 400 for a bad outcome, 200, the same again 200, a different one 409', async () => {
    const path = `/api/v1/workflow/tasks/${reviewTask}/complete`;
    assert.equal((await api('POST', path, 'sw', { outcome: 'approve' })).status, 403);
    const bad = await api('POST', path, 'scjg', { outcome: 'maybe' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.detail, /approve, reject/);
    const ok = await api('POST', path, 'scjg', { outcome: 'approve', comment: '同意' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.already, false);
    assert.equal(ok.body.openTasks.length, 1, 'on to the tax step');
    const retry = await api('POST', path, 'scjg', { outcome: 'approve', comment: '同意' });
    assert.equal(retry.status, 200);
    assert.equal(retry.body.already, true);
    const other = await api('POST', path, 'scjg2', { outcome: 'reject' });
    assert.equal(other.status, 409);
    const tax = await api('GET', `/api/v1/workflow/tasks?key=${KEY}`, 'sw');
    assert.equal(tax.body.items.length, 1, 'the tax office now has it');
  });

  test('instance detail with its history; another department’s instance is 403', async () => {
    const d = await api('GET', `/api/v1/workflow/instances/${instanceId}`, 'scjg');
    assert.equal(d.status, 200);
    const kinds = d.body.history.map((e: { kind: string }) => e.kind);
    assert.deepEqual(kinds.slice(0, 4), ['instance.started', 'task.created', 'task.completed', 'gateway.taken']);
    assert.equal(d.body.variables.reviewOutcome, 'approve');
    assert.equal((await api('GET', `/api/v1/workflow/instances/${instanceId}`, 'sw')).status, 200, 'a department with a task in it reads it');
    assert.equal((await api('GET', `/api/v1/workflow/instances/${instanceId}`, 'ga')).status, 403);
    assert.equal((await api('GET', `/api/v1/workflow/instances/${instanceId}`, 'admin')).status, 200);
    assert.equal((await api('GET', `/api/v1/workflow/instances/${instanceId}`, 'citizen')).status, 403);
    assert.equal((await api('GET', `/api/v1/workflow/instances/${instanceId}`)).status, 401);
    const list = await api('GET', `/api/v1/workflow/instances?key=${KEY}`, 'ga');
    assert.equal(list.body.total, 0, 'the list is the caller’s department');
  });

  test('metrics: per process and per step', async () => {
    const m = await api('GET', `/api/v1/workflow/metrics?key=${KEY}`, 'ga');
    assert.equal(m.status, 200);
    assert.equal(m.body.items[0].instances, 1);
    assert.deepEqual(
      m.body.items[0].steps.map((s: { nodeId: string }) => s.nodeId),
      ['review', 'tax'],
    );
    const future = await api('GET', '/api/v1/workflow/metrics?since=2999-01-01', 'ga');
    assert.deepEqual(future.body.items, []);
    assert.equal((await api('GET', '/api/v1/workflow/metrics?since=yesterday', 'ga')).status, 400);
  });
});

describe('hostile input', () => {
  test('an oversized body is 413, malformed JSON 400, XML with a DOCTYPE 400', async () => {
    const big = JSON.stringify({ ...approval('test.big'), description: { zh: 'x'.repeat(2 * 1024 * 1024), en: '' } });
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'admin', big)).status, 413);
    const bigXml = `<?xml version="1.0"?><definitions>${' '.repeat(1100 * 1024)}</definitions>`;
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'admin', bigXml, { 'content-type': 'application/xml' })).status, 413);
    assert.equal((await api('POST', '/api/v1/workflow/definitions', 'admin', '{"key": "test.x", ')).status, 400);
    assert.equal((await api('POST', '/api/v1/workflow/instances', 'scjg', '{not json')).status, 400);
    const xxe = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;</definitions>`;
    const r = await api('POST', '/api/v1/workflow/definitions', 'admin', xxe, { 'content-type': 'application/xml' });
    assert.equal(r.status, 400);
    assert.doesNotMatch(r.text, /root:/);
    const garbage = await api('POST', '/api/v1/workflow/definitions', 'admin', '<definitions><process', { 'content-type': 'application/xml' });
    assert.equal(garbage.status, 400);
  });

  test('unknown keys are 404; SQL-ish ids 400 or 404; huge page numbers refused or answered with an empty page', async () => {
    assert.equal((await api('GET', '/api/v1/workflow/definitions/no.such-key', 'sw')).status, 404);
    assert.equal((await api('GET', `/api/v1/workflow/instances/00000000-0000-4000-8000-000000000000`, 'admin')).status, 404);
    for (const id of ["1' or '1'='1", '1;drop table workflow.task', '../../etc/passwd', 'x'.repeat(300)]) {
      const a = await api('GET', `/api/v1/workflow/instances/${encodeURIComponent(id)}`, 'admin');
      assert.ok(a.status === 400 || a.status === 404, `${id}: ${a.status}`);
      const b = await api('POST', `/api/v1/workflow/tasks/${encodeURIComponent(id)}/complete`, 'scjg', { outcome: 'approve' });
      assert.ok(b.status === 400 || b.status === 404, `${id}: ${b.status}`);
      const p = await new Page('scjg').fetch(`/console/tasks/${encodeURIComponent(id)}`);
      assert.ok(p.status === 400 || p.status === 404, `${id}: ${p.status}`);
    }
    assert.equal((await api('GET', `/api/v1/workflow/definitions/${encodeURIComponent("x' union select 1--")}`, 'sw')).status, 400);
    assert.equal((await api('GET', '/api/v1/workflow/tasks?page=99999999999', 'scjg')).status, 400);
    const far = await api('GET', '/api/v1/workflow/tasks?page=100000', 'scjg');
    assert.equal(far.status, 200);
    assert.deepEqual(far.body.items, []);
    assert.equal((await new Page('scjg').fetch('/console/tasks?page=99999999999')).status, 400);
    const farPage = await new Page('scjg').fetch('/console/tasks?page=100000');
    assert.equal(farPage.status, 200);
    assert.match(farPage.text, /第 100000 页不存在/);
    assert.equal((await new Page('scjg').fetch('/console/tasks?perPage=1000')).status, 400);
    assert.equal((await new Page('scjg').fetch('/console/workflow?since=2025-02-30')).status, 400);
    assert.equal((await new Page('scjg').fetch(`/console/workflow/processes/${encodeURIComponent('a;b')}`)).status, 400);
    assert.equal((await new Page('scjg').fetch('/console/workflow/processes/no.such-key')).status, 404);
  });

  test('variables too large or with names not allowed are 400', async () => {
    const huge = await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, variables: { blob: 'x'.repeat(70 * 1024) } });
    assert.equal(huge.status, 400);
    const badName = await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, variables: { 'a b': 1 } });
    assert.equal(badName.status, 400);
  });

  test('U+0000 (which PostgreSQL text cannot hold) in variables, a business key, a comment or a reason is 400, not 500', async () => {
    assert.equal((await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, variables: { a: { b: ['x\u0000y'] } } })).status, 400);
    assert.equal((await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, businessKey: 'x\u0000y' })).status, 400);
    const started = await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, businessKey: 'T-NUL' });
    assert.equal((await api('POST', `/api/v1/workflow/tasks/${started.body.openTasks[0]}/complete`, 'scjg', { outcome: 'approve', comment: 'x\u0000y' })).status, 400);
    assert.equal((await api('POST', `/api/v1/workflow/instances/${started.body.instanceId}/terminate`, 'admin', { reason: 'x\u0000y' })).status, 400);
    assert.equal((await api('POST', `/api/v1/workflow/instances/${started.body.instanceId}/terminate`, 'admin', { reason: 'test' })).status, 200);
  });
});

describe('the console pages', () => {
  test('我的待办 and a task page render: one h1, the table, the form with its CSRF field; English on request', async () => {
    const p = new Page('scjg');
    const inbox = await p.fetch('/console/tasks');
    assert.equal(inbox.status, 200);
    assert.equal(h1s(inbox.text), 1);
    assert.match(inbox.text, /<th scope="col"[^>]*>办理期限<\/th>/);
    assert.match(inbox.text, /class="table-wrap"/);
    const en = await p.fetch('/console/tasks?lang=en');
    assert.match(en.text, /<html lang="en">/);
    assert.match(en.text, /<h1>My tasks<\/h1>/);
    const home = await p.fetch('/console');
    assert.match(home.text, /<a href="\/console\/tasks">我的待办<\/a>/, 'the workbench links to the inbox');
    assert.match(home.text, /<a href="\/console\/workflow">流程与效能<\/a>/);
    assert.equal((await new Page('nobody').fetch('/console/tasks')).status, 401);
    assert.equal((await new Page('citizen').fetch('/console/tasks')).status, 403);
  });

  test('completing a task through the form: CSRF required, then 303 to the inbox with a notice; errors shown on the page', async () => {
    const started = await api('POST', '/api/v1/workflow/instances', 'scjg', { key: KEY, businessKey: 'T-FORM-1' });
    const taskId = started.body.openTasks[0] as string;
    const p = new Page('scjg');
    const inbox = await p.fetch(`/console/tasks?key=${KEY}`);
    assert.match(inbox.text, new RegExp(`href="/console/tasks/${taskId}"`));
    const page = await p.fetch(`/console/tasks/${taskId}`);
    assert.equal(page.status, 200);
    assert.equal(h1s(page.text), 1);
    assert.match(page.text, /<legend>办理结果<\/legend>/);
    assert.match(page.text, /<input type="radio" name="outcome" value="approve"/);
    assert.match(page.text, /<ol class="timeline">/);
    const csrf = csrfOf(page.text);
    const action = `/console/tasks/${taskId}/complete`;

    assert.equal((await p.post(action, { outcome: 'approve' })).status, 403, 'no CSRF token');
    assert.equal((await p.post(action, { _csrf: 'forged', outcome: 'approve' })).status, 403);
    const stranger = new Page('sw');
    await stranger.fetch(`/console/tasks/${taskId}`);
    assert.equal((await stranger.post(action, { _csrf: csrfOf(page.text), outcome: 'approve' })).status, 403, 'a token from another browser');

    const invalid = await p.post(action, { _csrf: csrf, outcome: 'maybe' });
    assert.equal(invalid.status, 400);
    assert.match(invalid.text, /role="alert"/);
    assert.match(invalid.text, /提交的内容有误/);
    assert.equal(h1s(invalid.text), 1);

    const done = await p.post(action, { _csrf: csrf, outcome: 'approve', comment: '<script>alert(1)</script> 同意' });
    assert.equal(done.status, 303, done.text);
    assert.equal(done.headers.get('location'), `/console/tasks?done=${taskId}`);
    const after = await p.fetch(`/console/tasks?done=${taskId}`);
    assert.match(after.text, /已办理「受理审核」（T-FORM-1）：通过/);
    assert.doesNotMatch(after.text, new RegExp(`href="/console/tasks/${taskId}"`), 'gone from the inbox');

    // someone else of the department, on the page they loaded before: a clear conflict, nothing changed
    const late = new Page('scjg2');
    const latePage = await late.fetch(`/console/tasks/${taskId}`);
    assert.doesNotMatch(latePage.text, /name="outcome"/, 'a completed task has no form');
    const conflict = await late.post(action, { _csrf: csrfOf((await late.fetch('/console/workflow/processes/' + KEY)).text), outcome: 'reject' });
    assert.equal(conflict.status, 409);
    assert.match(conflict.text, /已由他人办理/);

    const detail = await api('GET', `/api/v1/workflow/instances/${started.body.instanceId}`, 'scjg');
    const completed = detail.body.tasks.find((x: { id: string }) => x.id === taskId);
    assert.equal(completed.outcome, 'approve');
    assert.equal(completed.comment, '<script>alert(1)</script> 同意');
    const instancePage = await p.fetch(`/console/workflow/instances/${started.body.instanceId}`);
    assert.equal(instancePage.status, 200);
    assert.doesNotMatch(instancePage.text, /<script>alert/, 'escaped');
    assert.match(instancePage.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  test('流程与效能, a process and an instance render; staff start an instance from the process page', async () => {
    const p = new Page('scjg');
    const overview = await p.fetch('/console/workflow');
    assert.equal(overview.status, 200);
    assert.equal(h1s(overview.text), 1);
    assert.match(overview.text, /企业开办并联审批/);
    assert.match(overview.text, new RegExp(`href="/console/workflow/processes/${KEY.replace('.', '\\.')}"`));
    assert.match((await p.fetch('/console/workflow?since=2020-01-01&lang=en')).text, /Processes and performance/);

    const proc = await p.fetch(`/console/workflow/processes/${KEY}`);
    assert.equal(proc.status, 200);
    assert.equal(h1s(proc.text), 1);
    assert.match(proc.text, new RegExp(`href="/api/v1/workflow/definitions/${KEY.replace('.', '\\.')}\\?format=bpmn"`));
    assert.match(proc.text, /<caption>各环节的任务数、时长与逾期率<\/caption>/);
    const form = await p.post(`/console/workflow/processes/${KEY}/start`, { _csrf: csrfOf(proc.text), businessKey: 'T-START-1', idem: '4a6b7c8d-0000-4000-8000-000000000001' });
    assert.equal(form.status, 303, form.text);
    const location = form.headers.get('location')!;
    assert.match(location, /^\/console\/workflow\/instances\/[0-9a-f-]{36}\?done=started$/);
    const again = await p.post(`/console/workflow/processes/${KEY}/start`, { _csrf: csrfOf(proc.text), businessKey: 'T-START-1', idem: '4a6b7c8d-0000-4000-8000-000000000001' });
    assert.equal(again.headers.get('location'), location, 'a double submit starts one instance');
    const inst = await p.fetch(location);
    assert.equal(inst.status, 200);
    assert.equal(h1s(inst.text), 1);
    assert.match(inst.text, /流程实例已启动/);
    assert.match(inst.text, /发起流程/);
    assert.match(inst.text, /T-START-1/);

    // a process whose assignees name a ${variable}: a department list for it
    const zfb = new Page('admin');
    const cs = await zfb.fetch('/console/workflow/processes/office.document-countersign');
    assert.match(cs.text, /<select id="f-v_leadDepartment" name="v_leadDepartment" required/);
    const missing = await zfb.post('/console/workflow/processes/office.document-countersign/start', { _csrf: csrfOf(cs.text), businessKey: 'T-DOC-1', idem: '4a6b7c8d-0000-4000-8000-000000000002' });
    assert.equal(missing.status, 400);
    assert.match(missing.text, /leadDepartment: required/);
    const started = await zfb.post('/console/workflow/processes/office.document-countersign/start', { _csrf: csrfOf(cs.text), businessKey: 'T-DOC-1', v_leadDepartment: 'SZ-JT', idem: '4a6b7c8d-0000-4000-8000-000000000003' });
    assert.equal(started.status, 303, started.text);
    const instPage = await zfb.fetch(started.headers.get('location')!);
    assert.match(instPage.text, /市交通运输局/);

    assert.equal((await new Page('ga').fetch(location)).status, 403, 'another department’s instance');
    assert.equal((await new Page('citizen').fetch('/console/workflow')).status, 403);
  });

  test('durations read as people say them', () => {
    assert.equal(humanDuration(192, 'zh-CN'), '3.2 小时');
    assert.equal(humanDuration(192, 'en'), '3.2 h');
    assert.equal(humanDuration(30, 'zh-CN'), '30 分钟');
    assert.equal(humanDuration(60 * 24 * 4.5, 'en'), '4.5 d');
    assert.equal(humanDuration(null, 'en'), '—');
  });
});

describe('the demo', () => {
  test('synthetic instances at every stage, seeded once; the department’s staff find them in the inbox', async () => {
    const db = t.platform.ctx.db;
    const { rows } = await db.query<{ status: string; n: number }>(`select status, count(*)::int as n from workflow.instance where business_key like 'DEMO-%' and (variables->>'synthetic')::boolean group by status order by status`);
    const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    assert.ok(by.completed! >= 4 && by.running! >= 4, JSON.stringify(by));
    assert.equal((await db.query(`select 1 from workflow.instance where business_key like 'DEMO-%' and started_at > now() - interval '1 day' and status = 'completed'`)).rowCount, 0, 'completed ones lie in the past');
    assert.equal(await seedDemoWorkflow(t.platform.ctx, engineOf(t.platform.ctx)), null, 'a second start seeds nothing');
    const setting = await db.query<{ value: { status: string } }>('select value from platform.setting where key = $1', [DEMO_SETTING]);
    assert.equal(setting.rows[0]!.value.status, 'done');
    // two starts at once on a database whose seed was cut short: one finishes it, adding nothing twice
    const count = async () => (await db.query<{ n: number }>(`select count(*)::int as n from workflow.instance where business_key like 'DEMO-%'`)).rows[0]!.n;
    const before = await count();
    await db.query('delete from platform.setting where key = $1', [DEMO_SETTING]);
    const both = await Promise.all([seedDemoWorkflow(t.platform.ctx, engineOf(t.platform.ctx)), seedDemoWorkflow(t.platform.ctx, engineOf(t.platform.ctx))]);
    assert.equal(both.filter((x) => x !== null).length, 1, 'one of them seeds');
    assert.equal(await count(), before, 'the idempotency keys keep the instances single');
    const inbox = await api('GET', '/api/v1/workflow/tasks?key=enterprise.establishment', 'scjg');
    assert.ok(inbox.body.items.length >= 3);
    assert.ok(inbox.body.items.some((x: { overdue: boolean }) => x.overdue), 'one is overdue');
    assert.ok(inbox.body.items.every((x: { businessKey: string }) => x.businessKey.startsWith('DEMO-')));
    const metrics = await api('GET', '/api/v1/workflow/metrics?key=enterprise.establishment', 'scjg');
    const m = metrics.body.items[0];
    assert.ok(m.completed >= 4 && m.medianMinutes > 60 && m.p90Minutes >= m.medianMinutes, JSON.stringify(m));
    const page = await new Page('scjg').fetch('/console/tasks?overdue=1');
    assert.match(page.text, /逾期/);
    assert.match(page.text, /已督办升级/);
  });
});
