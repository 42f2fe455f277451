// The authorization matrix: every route of both faces against every kind of actor and every role
// the policies mention. A route the policy denies must answer 401 (anonymous) or 403 before doing
// anything; a route it allows must not. Routes without a declared action cannot even start
// (src/http/server.ts), which this file also proves.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { startPlatform, type Platform } from '../src/main.ts';
import { MODULES } from '../src/modules.ts';
import { routesOf } from '../src/http/server.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import type { GusuModule } from '../src/module.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

let database: TestDatabase;
let platform: Platform;

// the test stands in for sign-in: the actor comes from a header only this test's resolver reads
const resolveActor = async (req: { headers: Record<string, string | string[] | undefined> }): Promise<Actor> => {
  const h = req.headers['x-test-actor'];
  return typeof h === 'string' ? (JSON.parse(h) as Actor) : { kind: 'anonymous' };
};

before(async () => {
  database = await createTestDatabase();
  const config = loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO_RESIDENTS: '50', GUSU_DEMO_ENTERPRISES: '10' });
  platform = await startPlatform(config, { listen: false, resolveActor });
});
after(async () => {
  await platform.close();
  await database.drop();
  await stopTestServer();
});

function actors(): [string, Actor][] {
  const roles = new Set<string>();
  for (const r of platform.ctx.policy.rules) if (typeof r.who === 'object') roles.add(r.who.role);
  const base: [string, Actor][] = [
    ['anonymous', { kind: 'anonymous' }],
    ['citizen', { kind: 'citizen', accountId: 'a-c', name: '张三', idNumber: '11010519491231002X' }],
    ['enterprise', { kind: 'enterprise', accountId: 'a-e', name: '李四', uscc: '91350100M000100Y43', entityName: '示例公司' }],
    ['staff without roles', { kind: 'staff', accountId: 'a-s', name: '王五', department: 'SZ-GA', post: '科员', roles: [] }],
    ['department system', { kind: 'system', id: 'sys-1', department: 'SZ-GA' }],
  ];
  for (const role of roles) base.push([`staff with ${role}`, { kind: 'staff', accountId: `a-${role}`, name: '赵六', department: 'SZ-GA', post: '科员', roles: [{ role, scope: null }] }]);
  return base;
}

function concrete(url: string): string {
  return url.replace(/:[A-Za-z_]+/g, 'x').replace(/\*$/, 'x');
}

test('every route on every face names an action that some policy declares', () => {
  for (const l of platform.listeners) {
    const routes = routesOf(l.app);
    assert.ok(routes.length > 10, `routes were collected for ${l.face}`);
    for (const r of routes) assert.ok(platform.ctx.policy.actions.has(r.action), `${r.method} ${r.url}: ${r.action}`);
  }
});

test('every route against every actor: denied ones get 401/403, allowed ones do not', async () => {
  const failures: string[] = [];
  let checked = 0;
  for (const l of platform.listeners) {
    for (const r of routesOf(l.app)) {
      if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
      for (const [label, actor] of actors()) {
        const allowed = platform.ctx.policy.can(actor, r.action);
        const res = await l.app.inject({
          method: r.method as 'GET',
          url: concrete(r.url),
          headers: { 'x-test-actor': JSON.stringify(actor), accept: 'application/json', 'content-type': 'application/json' },
          ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { payload: '{}' }),
        });
        checked++;
        const refused = res.statusCode === 401 || res.statusCode === 403;
        if (allowed && refused) failures.push(`${r.method} ${r.url} as ${label}: allowed by policy but got ${res.statusCode}`);
        if (!allowed && !refused) failures.push(`${r.method} ${r.url} as ${label}: denied by policy but got ${res.statusCode}`);
        if (!allowed && refused) assert.equal(res.statusCode, actor.kind === 'anonymous' ? 401 : 403, `${r.method} ${r.url} as ${label}`);
      }
    }
  }
  assert.ok(checked > 50);
  assert.deepEqual(failures, []);
});

test('a route with no declared action stops start-up', async () => {
  const rogue: GusuModule = { name: 'rogue', publicRoutes: (app) => void app.get('/api/v1/rogue', async () => ({})) };
  const db2 = await createTestDatabase();
  try {
    const config = loadConfig({ DATABASE_URL: db2.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false' });
    await assert.rejects(startPlatform(config, { listen: false, modules: [...MODULES, rogue] }), /route GET \/api\/v1\/rogue names no action/);
  } finally {
    await db2.drop();
  }
});

test('a route whose action no policy allows stops start-up', async () => {
  const rogue: GusuModule = { name: 'rogue', publicRoutes: (app) => void app.get('/api/v1/rogue', { config: { action: 'secret:read' } }, async () => ({})) };
  const db2 = await createTestDatabase();
  try {
    const config = loadConfig({ DATABASE_URL: db2.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false' });
    await assert.rejects(startPlatform(config, { listen: false, modules: [...MODULES, rogue] }), /needs "secret:read", which no policy allows anyone/);
  } finally {
    await db2.drop();
  }
});
