import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Type } from 'typebox';
import { problem } from '../src/http/problems.ts';
import type { GusuModule } from '../src/module.ts';
import { allow } from '../src/base/identity/policy.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let releaseSlow: () => void = () => undefined;
let slowStarted: () => void = () => undefined;

// a module that exists only in this test, to exercise the error model and shutdown
const call = { action: 'probe:call' };
const probe: GusuModule = {
  name: 'probe',
  policies: allow('anyone', 'call', 'probe'),
  publicRoutes(app) {
    app.post(
      '/api/v1/probe',
      { config: call, schema: { tags: ['probe'], body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 20 }), n: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }) } },
      async (req) => ({ ok: true, body: req.body }),
    );
    app.get('/api/v1/probe/crash', { config: call }, async () => {
      throw new Error('secret internal detail at /srv/gusu/src/x.ts:12');
    });
    app.get('/api/v1/probe/conflict', { config: call }, async () => {
      throw problem('conflict', 'the case was already closed', { caseId: 'C-1' });
    });
    app.get('/api/v1/probe/slow', { config: call }, async () => {
      slowStarted();
      await new Promise<void>((r) => (releaseSlow = r));
      return { finished: true };
    });
  },
  internalRoutes(app) {
    app.get('/api/v1/probe/internal', { config: call }, async () => ({ face: 'internal' }));
  },
};

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({}, [probe]);
});
after(async () => {
  await t.stop();
});

const json = { accept: 'application/json' };

test('healthz and readyz', async () => {
  const h = await fetch(`${t.url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });
  const r = await fetch(`${t.url}/readyz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ready' });
  t.platform.state.ready = false;
  const down = await fetch(`${t.url}/readyz`);
  t.platform.state.ready = true;
  assert.equal(down.status, 503);
  assert.match(down.headers.get('content-type')!, /^application\/problem\+json/);
  assert.equal((await down.json()).type, '/problems/unavailable');
});

test('request ids: a sane one is echoed, a hostile one replaced', async () => {
  const a = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(a.headers.get('x-request-id'), 'abc-123');
  const b = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': '<script>alert(1)</script>' } });
  assert.match(b.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
});

test('metrics in Prometheus text format', async () => {
  await fetch(`${t.url}/healthz`);
  const m = await fetch(`${t.url}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type')!, /^text\/plain/);
  const text = await m.text();
  assert.match(text, /gusu_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
  assert.match(text, /gusu_process_cpu_user_seconds_total/);
});

test('unknown API path: problem+json 404 with a stable type and the request id', async () => {
  const r = await fetch(`${t.url}/api/v1/nothing-here?x=<b>`, { headers: json });
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
  const body = await r.json();
  assert.equal(body.type, '/problems/not-found');
  assert.equal(body.status, 404);
  assert.equal(body.title, '未找到');
  assert.equal(body.instance, `urn:gusu:request:${r.headers.get('x-request-id')}`);
  const en = await (await fetch(`${t.url}/api/v1/nothing-here?lang=en`, { headers: json })).json();
  assert.equal(en.title, 'Not found');
});

test('unknown page for a browser: an HTML error page', async () => {
  const r = await fetch(`${t.url}/no-such-page`, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type')!, /^text\/html/);
  assert.match(await r.text(), /<html lang="zh-CN"/);
});

test('validation errors name the field', async () => {
  const r = await fetch(`${t.url}/api/v1/probe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '', n: -1 }) });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.type, '/problems/validation');
  assert.ok(Array.isArray(body.errors) && body.errors.length >= 1);
  assert.equal(body.errors[0].in, 'body');
  const extra = await fetch(`${t.url}/api/v1/probe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a', n: 1, admin: true }) });
  assert.equal(extra.status, 400);
  const ok = await fetch(`${t.url}/api/v1/probe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '苏州', n: 1 }) });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { ok: true, body: { name: '苏州', n: 1 } });
});

test('malformed, oversized and mistyped bodies', async () => {
  const post = (body: string, type = 'application/json') => fetch(`${t.url}/api/v1/probe`, { method: 'POST', headers: { 'content-type': type }, body });
  const bad = await post('{"name": "a", ');
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).type, '/problems/bad-request');
  const big = await post(JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024), n: 1 }));
  assert.equal(big.status, 413);
  assert.equal((await big.json()).type, '/problems/payload-too-large');
  const xml = await post('<a/>', 'application/xml');
  assert.equal(xml.status, 415);
  assert.equal((await xml.json()).type, '/problems/unsupported-media-type');
  const proto = await post('{"__proto__": {"admin": true}, "name": "a", "n": 1}');
  assert.equal(proto.status, 400);
});

test('an unexpected error is a 500 problem without internals', async () => {
  const r = await fetch(`${t.url}/api/v1/probe/crash`, { headers: json });
  assert.equal(r.status, 500);
  const text = await r.text();
  assert.ok(!text.includes('secret'), 'no error message leaks');
  assert.ok(!text.includes('/srv/'), 'no path leaks');
  assert.ok(!text.includes('at '), 'no stack trace');
  assert.equal(JSON.parse(text).type, '/problems/internal');
});

test('a thrown problem keeps its status and extensions', async () => {
  const r = await fetch(`${t.url}/api/v1/probe/conflict`, { headers: json });
  assert.equal(r.status, 409);
  const body = await r.json();
  assert.deepEqual([body.type, body.detail, body.caseId], ['/problems/conflict', 'the case was already closed', 'C-1']);
});

test('security headers on every response', async () => {
  const r = await fetch(`${t.url}/healthz`);
  assert.match(r.headers.get('content-security-policy')!, /default-src 'self'/);
  assert.match(r.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
});

test('the OpenAPI document lists the API routes and the browsable page serves local assets', async () => {
  const doc = await (await fetch(`${t.url}/api/openapi.json`)).json();
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.paths['/healthz'] && doc.paths['/readyz'] && doc.paths['/metrics'] && doc.paths['/api/v1/probe']);
  assert.ok(!doc.paths['/'], 'pages are not in the API document');
  const ui = await fetch(`${t.url}/api/docs/`);
  assert.equal(ui.status, 200);
  const page = await ui.text();
  assert.ok(!/(src|href)="https?:/.test(page), 'no asset from another host');
});

test('problem types are documented at their type URI', async () => {
  const r = await fetch(`${t.url}/problems/validation`, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 200);
  assert.match(await r.text(), /输入校验未通过/);
  assert.equal((await fetch(`${t.url}/problems/nope`, { headers: json })).status, 404);
});

test('graceful shutdown: an in-flight request finishes, then the server closes', async () => {
  const started = new Promise<void>((r) => (slowStarted = r));
  const inFlight = fetch(`${t.url}/api/v1/probe/slow`);
  await started;
  const closing = t.platform.close();
  await new Promise((r) => setTimeout(r, 100));
  releaseSlow();
  const r = await inFlight;
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { finished: true });
  await closing;
  // a fresh connection is refused once the listener has closed
  await assert.rejects(fetch(`${t.url}/healthz`, { headers: { connection: 'close' } }));
});
