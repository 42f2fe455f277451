import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

function gusu(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['bin/gusu.js', ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent', ...env }, timeout: 60_000 });
}

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database.drop();
  await stopTestServer();
});

test('help lists the commands; no command is a usage error', () => {
  const r = gusu(['help']);
  assert.equal(r.status, 0);
  for (const c of ['serve', 'migrate', 'demo', 'backup', 'restore']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
  assert.equal(gusu([]).status, 2);
});

test('an unknown command exits 2 and says so', () => {
  const r = gusu(['fly']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^gusu: unknown command "fly"/);
});

test('a bad configuration value stops with one line naming the variable', () => {
  const r = gusu(['migrate'], { PORT: 'eighty' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'gusu: configuration error: PORT="eighty" is not valid: expected a whole number from 0 to 65535\n');
});

test('bad flags are usage errors', () => {
  const a = gusu(['demo', '--residents', 'many'], { DATABASE_URL: database.url });
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--residents expects a whole number/);
  const b = gusu(['demo', '--bogus'], { DATABASE_URL: database.url });
  assert.equal(b.status, 2);
  assert.match(b.stderr, /Unknown option '--bogus'/);
});

test('an unreachable database is one clear line and exit 1', () => {
  const r = gusu(['migrate'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^gusu migrate: .*ECONNREFUSED/);
  assert.ok(!r.stderr.includes('    at '), 'no stack trace');
});

test('migrate, then demo loads a deterministic synthetic city', () => {
  const m = gusu(['migrate'], { DATABASE_URL: database.url });
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /applied: platform\/001_jobs/);
  assert.equal(gusu(['migrate'], { DATABASE_URL: database.url }).stdout, 'nothing to apply\n');
  const d = gusu(['demo', '--residents', '500', '--enterprises', '50', '--seed', '7'], { DATABASE_URL: database.url });
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /loaded 500 residents and 50 enterprises \(seed 7/);
});

test('serve prints its URL, serves, and exits 0 on SIGTERM', async () => {
  const child = spawn(process.execPath, ['bin/gusu.js', 'serve'], {
    env: { ...process.env, DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'info', GUSU_DEMO_RESIDENTS: '100', GUSU_DEMO_ENTERPRISES: '10' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /portal and consoles: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  const r = await fetch(`${url}/readyz`);
  assert.equal(r.status, 200);
  // logs are JSON lines with request ids
  const logLine = out.split('\n').find((l) => l.startsWith('{') && l.includes('"request_id"'));
  if (logLine) assert.ok(JSON.parse(logLine).request_id);
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0);
  assert.match(out, /"msg":"stopped"/);
});
