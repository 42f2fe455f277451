import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { getSetting } from '../src/db/index.ts';
import { UsageError } from '../src/module.ts';
import { checkCsp, checkSettings, runSecurityCheck, securityCommand, securityModule, type SecurityReport } from '../src/base/security/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { startPlatform } from '../src/main.ts';
import { MODULES } from '../src/modules.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import { createTestDatabase } from './support/db.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let tp: TestPlatform;
let dataDir: string;

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-security-'));
  tp = await startTestPlatform({ GUSU_DATA_DIR: dataDir }, []);
});

after(async () => {
  await tp?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const quietly = async <T>(f: () => Promise<T>): Promise<T> => {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await f();
  } finally {
    process.stdout.write = write;
  }
};

test('a clean test platform has no critical or high findings, and an info line per passed check', async () => {
  const r = await runSecurityCheck({ db: tp.platform.ctx.db, config: tp.config });
  assert.equal(r.summary.critical, 0, JSON.stringify(r.findings, null, 2));
  assert.equal(r.summary.high, 0, JSON.stringify(r.findings, null, 2));
  assert.equal(r.ok, true);
  for (const id of ['audit.chain', 'certificates', 'files.permissions', 'csp']) {
    assert.ok(r.findings.some((f) => f.id === id && f.severity === 'info'), `info line for ${id}`);
  }
  assert.equal(await quietly(() => securityCommand.run(['check', '--json'], tp.config)), 0);
});

test('a key file readable by others is a high finding naming it', async () => {
  const file = path.join(dataDir, 'master.key');
  if (!fs.existsSync(file)) fs.writeFileSync(file, 'x', { mode: 0o600 });
  fs.chmodSync(file, 0o644);
  try {
    const r = await runSecurityCheck({ db: tp.platform.ctx.db, config: tp.config });
    const f = r.findings.find((x) => x.id === 'files.permissions' && x.severity === 'high');
    assert.ok(f, JSON.stringify(r.findings));
    assert.match(f.title.en + f.detail, /master\.key/);
    assert.equal(r.ok, false);
  } finally {
    fs.chmodSync(file, 0o600);
  }
});

test('settings below the baseline and a weak CSP are reported', () => {
  const exposed = loadConfig({ HOST: '0.0.0.0', GUSU_DEMO: 'true', GUSU_LOGIN_RATE_PER_MINUTE: '500' });
  const ids = checkSettings(exposed).map((f) => `${f.id}:${f.severity}`);
  assert.ok(ids.includes('settings.demo-exposed:high'));
  assert.ok(ids.includes('settings.tls:high'));
  assert.ok(ids.includes('settings.login-rate:medium'));
  const ok = loadConfig({ HOST: '0.0.0.0', GUSU_DEMO: 'false', GUSU_PUBLIC_URL: 'https://www.example.gov.cn' });
  assert.deepEqual(checkSettings(ok).map((f) => f.severity), ['info']);
  assert.equal(checkCsp()[0]!.severity, 'info');
  assert.equal(checkCsp("default-src 'self'; script-src 'self' 'unsafe-inline'")[0]!.severity, 'medium');
});

test('the job stores the report and schedules the next run', async () => {
  await securityModule.jobs!(tp.platform.ctx)['security.check']!({ id: 0, kind: 'security.check', payload: {} } as never, { signal: new AbortController().signal });
  const r = await getSetting<SecurityReport>(tp.platform.ctx.db, 'security.lastReport');
  assert.ok(r);
  assert.equal(typeof r.summary.info, 'number');
  const { rows } = await tp.platform.ctx.db.query<{ n: number }>(`select count(*)::int as n from platform.job where kind = 'security.check' and run_at > now()`);
  assert.ok(rows[0]!.n >= 1);
});

test('the console page needs sign-in; the CLI rejects bad usage', async () => {
  const res = await fetch(`${tp.url}/console/security`);
  assert.equal(res.status, 401);
  await assert.rejects(securityCommand.run([], tp.config), UsageError);
  await assert.rejects(securityCommand.run(['check', '--bogus'], tp.config), UsageError);
});

test('the console page shows the latest report to a security officer, not to other staff', async () => {
  const database = await createTestDatabase();
  const config = loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false', GUSU_DATA_DIR: dataDir });
  const staff = (role: string): Actor => ({ kind: 'staff', accountId: '00000000-0000-4000-8000-000000000001', name: '陆安全', department: 'SZ-DSJ', post: '科员', roles: [{ role, scope: null }] });
  let actor: Actor = staff('security-officer');
  const p = await startPlatform(config, { modules: MODULES, resolveActor: async () => actor });
  try {
    const url = `${p.listeners[0]!.url}/console/security?lang=en`;
    // (the start-up job may already have run: either page is fine here)
    const first = await fetch(url);
    assert.equal(first.status, 200);
    assert.match(await first.text(), /No security check has run yet|Findings of the latest check/);
    await securityModule.jobs!(p.ctx)['security.check']!({ id: 0, kind: 'security.check', payload: {} } as never, { signal: new AbortController().signal });
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /Findings of the latest check/);
    assert.match(body, /Audit chain intact/);
    actor = staff('dispatcher');
    assert.equal((await fetch(url)).status, 403);
  } finally {
    await p.close();
    await database.drop();
  }
});

// last: it breaks the audit chain of this database
test('a tampered audit row is a critical finding and the CLI exits 1', async () => {
  const db = tp.platform.ctx.db;
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from audit.entry');
  assert.ok(rows[0]!.n > 0, 'the platform has audited something');
  await db.tx(async (c) => {
    await c.query('set local session_replication_role = replica');
    await c.query(`update audit.entry set action = action || '.x' where seq = 1`);
  });
  const r = await runSecurityCheck({ db, config: tp.config });
  const f = r.findings.find((x) => x.id === 'audit.chain');
  assert.equal(f?.severity, 'critical');
  assert.equal(await quietly(() => securityCommand.run(['check'], tp.config)), 1);
});
