import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { startEmbedded } from '../src/db/index.ts';
import { ROOT_CLUSTER_HOME } from '../src/db/embedded.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-emb-'));
  fs.chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

function holdInChild(dir: string): Promise<import('node:child_process').ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/hold-embedded.ts', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
    child.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
}

test('first start initialises a private cluster on loopback with a secret password; a second start reuses it', async () => {
  const dir = tempDir();
  const logs: string[] = [];
  const first = await startEmbedded(dir, (m) => logs.push(m));
  assert.ok(logs.some((l) => l.includes('initialising')));
  assert.equal(fs.statSync(path.join(dir, 'pg-credentials.json')).mode & 0o777, 0o600);
  await query(first.url, `create table t (v text); insert into t values ('kept')`);
  const settings = await query(first.url, `select current_setting('listen_addresses') as l, current_setting('unix_socket_directories') as s, current_setting('server_encoding') as e`);
  assert.deepEqual(settings.rows[0], { l: '127.0.0.1', s: '', e: 'UTF8' });
  // the password is required
  const u = new URL(first.url);
  u.password = 'wrong';
  await assert.rejects(query(u.toString(), 'select 1'), /password authentication failed/);
  await first.stop();

  const second = await startEmbedded(dir, (m) => logs.push(m));
  assert.equal(logs.filter((l) => l.includes('initialising')).length, 1);
  assert.deepEqual((await query(second.url, 'select v from t')).rows, [{ v: 'kept' }]);
  await second.stop();
});

test('a server orphaned by kill -9 of its process is stopped and the data survives', async () => {
  const dir = tempDir();
  const child = await holdInChild(dir);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const pidFile = path.join(dir, 'pg', 'postmaster.pid');
  assert.ok(fs.existsSync(pidFile), 'the orphaned server still holds the cluster');
  const again = await startEmbedded(dir);
  assert.deepEqual((await query(again.url, 'select v from kept')).rows, [{ v: 'before kill' }]);
  await again.stop();
});

test('a second Gusu process on the same data directory is refused while the first lives', async () => {
  const dir = tempDir();
  const child = await holdInChild(dir);
  try {
    await assert.rejects(startEmbedded(dir), /another Gusu process \(pid \d+\) is using the data directory/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  const again = await startEmbedded(dir);
  await again.stop();
});

test('a missing credentials file is a clear error, not a hang', async () => {
  const dir = tempDir();
  const s = await startEmbedded(dir);
  await s.stop();
  fs.rmSync(path.join(dir, 'pg-credentials.json'));
  await assert.rejects(startEmbedded(dir), /pg-credentials.json is missing/);
});

test('as root in a directory the postgres user cannot enter (mktemp -d), the cluster lives under /var/lib/gusu, linked from the data directory', { skip: process.getuid?.() !== 0 ? 'only root runs the server as another user' : false }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-private-'));
  dirs.push(root);
  assert.equal(fs.statSync(root).mode & 0o777, 0o700);
  const dataDir = path.join(root, 'var');
  const server = await startEmbedded(dataDir);
  let real = '';
  try {
    const link = path.join(dataDir, 'pg');
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    real = fs.readlinkSync(link);
    assert.ok(real.startsWith(ROOT_CLUSTER_HOME + '/'), real);
    assert.ok(fs.existsSync(path.join(real, 'PG_VERSION')));
    await query(server.url, 'create table kept (v text); insert into kept values ($$private checkout$$)');
  } finally {
    await server.stop();
  }
  // a second start finds the same cluster through the link
  const again = await startEmbedded(dataDir);
  try {
    assert.deepEqual((await query(again.url, 'select v from kept')).rows, [{ v: 'private checkout' }]);
  } finally {
    await again.stop();
    fs.rmSync(path.dirname(real), { recursive: true, force: true });
  }
});
