import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { startPlatform, type Platform } from '../src/main.ts';
import { appendAudit } from '../src/base/audit/index.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const ZHANG = '11010519491231002X';
const actors: Record<string, Actor> = {
  zhang: { kind: 'citizen', accountId: 'c-1', name: '张三', idNumber: ZHANG },
  staff: { kind: 'staff', accountId: 's-1', name: '李四', department: 'SZ-GA', post: '民警', roles: [] },
};
let database: TestDatabase;
let platform: Platform;
let url: string;
before(async () => {
  database = await createTestDatabase();
  const config = loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false' });
  platform = await startPlatform(config, { resolveActor: async (req) => actors[String(req.headers['x-test-actor'])] ?? { kind: 'anonymous' } });
  url = `${platform.listeners[0]!.url}/me/data-accesses`;
});
after(async () => {
  await platform.close();
  await database.drop();
  await stopTestServer();
});

test('a signed-in resident sees who read their data, with department and purpose; others do not', async () => {
  const gaName = platform.ctx.profile.departments.find((d) => d.code === 'SZ-GA')!.name;
  await appendAudit(platform.database.db, {
    actor: { kind: 'staff', id: 's-9', department: 'SZ-GA' },
    action: 'population.person.read',
    resource: { type: 'person', id: ZHANG },
    subject: ZHANG,
    purpose: '户籍业务办理<script>',
    outcome: 'ok',
  });
  await appendAudit(platform.database.db, { actor: { kind: 'staff', id: 's-9', department: 'SZ-GA' }, action: 'population.person.read', resource: { type: 'person', id: 'x' }, subject: '310101197405100023', purpose: '别人的记录', outcome: 'ok' });
  const r = await fetch(url, { headers: { 'x-test-actor': 'zhang', accept: 'text/html' } });
  assert.equal(r.status, 200);
  const body = await r.text();
  assert.match(body, /<h1>谁查看了我的数据<\/h1>/);
  assert.ok(body.includes(gaName));
  assert.ok(body.includes('户籍业务办理&lt;script&gt;'), 'purpose shown, escaped');
  assert.ok(!body.includes('别人的记录'), 'only this resident’s accesses');
  const en = await (await fetch(`${url}?lang=en`, { headers: { 'x-test-actor': 'zhang' } })).text();
  assert.match(en, /Who looked at my data/);
  assert.equal((await fetch(url, { headers: { accept: 'text/html' } })).status, 401);
  assert.equal((await fetch(url, { headers: { 'x-test-actor': 'staff', accept: 'text/html' } })).status, 403);
  assert.equal((await fetch(`${url}?before=abc`, { headers: { 'x-test-actor': 'zhang' } })).status, 400);
});
