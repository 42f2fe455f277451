import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import pg from 'pg';
import { loadConfig } from '../src/config/index.ts';
import { backupDatabase, BackupError, parseBackup, readBackup, restoreDatabase, verifyBackup, type BackupEvent } from '../src/db/backup.ts';
import { copyRows } from '../src/db/copy.ts';
import { createDb, enqueue, readMigrations, startEmbedded, type Db } from '../src/db/index.ts';
import { migrationSources, startPlatform } from '../src/main.ts';
import { createTestDatabase, stopTestServer, withDatabase } from './support/db.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

const repo = path.resolve(import.meta.dirname, '..');
const migrations = readMigrations(migrationSources());
let tp: TestPlatform;
let db: Db;
let dir: string;
let full: string; // a backup of the database with the tricky rows, made while the platform ran

// values that break naive dump formats: COPY's own escapes, its terminator, control characters
const TRICKY = [
  'tab\there',
  'new\nline',
  'carriage\r\nreturn',
  'back\\slash \\N \\t',
  '\\.',
  '\\',
  '',
  '姑苏 · 苏州 🏯 Ω',
  '-- table x.y {"columns":[]}',
  '-- end {"sha256":"0"}',
];

/** count and md5 of every table Gusu backs up, in one comparable map */
async function contents(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // the same text whatever the server's defaults (the cross-version test compares two servers)
    await c.query(`set timezone = 'UTC'; set datestyle = 'ISO, YMD'; set extra_float_digits = 3`);
    const { rows: tables } = await c.query<{ s: string; t: string }>(
      `select n.nspname as s, c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'r' and ((n.nspname !~ '^pg_' and n.nspname not in ('information_schema', 'public')) or (n.nspname = 'public' and c.relname = 'gusu_migration'))
        order by 1, 2`,
    );
    const out: Record<string, string> = {};
    for (const { s, t } of tables) {
      const { rows } = await c.query(`select count(*)::int as n, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from ${s}.${t} x`);
      out[`${s}.${t}`] = `${rows[0].n} ${rows[0].h}`;
    }
    return out;
  } finally {
    await c.end();
  }
}

function cli(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, LOG_LEVEL: 'silent', ...env })) if (v !== undefined && k !== 'DATABASE_URL' && k !== 'GUSU_DATA_DIR') childEnv[k] = v;
  if (env.DATABASE_URL) childEnv.DATABASE_URL = env.DATABASE_URL;
  if (env.GUSU_DATA_DIR) childEnv.GUSU_DATA_DIR = env.GUSU_DATA_DIR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/gusu.js'), ...args], { cwd: repo, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Rewrites a backup's uncompressed body with edit, then re-seals it (a valid hash), as an attacker or a bug might. */
function reseal(from: string, to: string, edit: (body: string) => string): void {
  const text = zlib.gunzipSync(fs.readFileSync(from)).toString('utf8');
  const cut = text.lastIndexOf('\n-- end ') + 1;
  const trailer = JSON.parse(text.slice(cut + '-- end '.length));
  const body = edit(text.slice(0, cut));
  const bytes = Buffer.from(body);
  const sealed = { ...trailer, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  fs.writeFileSync(to, zlib.gzipSync(Buffer.concat([bytes, Buffer.from(`-- end ${JSON.stringify(sealed)}\n`)])));
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-backup-test-'));
  fs.chmodSync(dir, 0o755); // an embedded server (running as postgres when we are root) reaches into it
  tp = await startTestPlatform({ GUSU_JOB_CONCURRENCY: '0' }); // no background job may write between the snapshot and the comparison
  db = tp.platform.database.db;
  await db.tx(async (client) => {
    await copyRows(client, 'platform.setting', ['key', 'value'], [
      ...TRICKY.map((t, i) => [`tricky.${i}.${t}`, { text: t, list: TRICKY, n: i, nothing: null }]),
      ['tricky.big', { text: 'x\t\\\n'.repeat(300_000) }], // one value spanning many chunks
    ]);
    await copyRows(
      client,
      'population.person',
      ['id_number', 'name', 'sex', 'ethnicity', 'birth_date', 'county_code', 'street_code', 'community_code', 'address', 'phone', 'source', 'synthetic'],
      TRICKY.map((t, i) => [`32050819900101${900 + i}X`, `测试${i}`, i % 2 ? 'M' : 'F', '汉族', '1990-01-01', '320508', null, null, `地址 ${t}`, i % 3 ? null : t, 'test', false]),
    );
  });
  for (const t of TRICKY) await enqueue(db, 'test.tricky', { t }, { runAt: new Date(Date.now() + 86_400_000) });
  await db.query(`update platform.job set last_error = $1 where kind = 'test.tricky'`, [TRICKY.join('\u0001')]);
});

after(async () => {
  await tp.platform.close().catch(() => undefined);
  await tp.database.drop();
  await stopTestServer();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('gusu backup writes a complete backup while the platform runs; restore refuses without --yes or while it runs', async () => {
  full = path.join(dir, 'full.gusu.gz');
  const r = await cli(['backup', full], { DATABASE_URL: tp.database.url });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backed up \d+ tables, \d+ rows .* in [\d.]+ s\n$/);
  assert.equal(fs.statSync(full).mode & 0o777, 0o600);
  assert.equal(fs.existsSync(`${full}.partial`), false);

  const [noYes, running, noFile] = await Promise.all([
    cli(['restore', full], { DATABASE_URL: tp.database.url }),
    cli(['restore', full, '--yes'], { DATABASE_URL: tp.database.url }),
    cli(['backup'], { DATABASE_URL: tp.database.url }),
  ]);
  assert.equal(noYes.code, 2);
  assert.match(noYes.stderr, /^gusu restore: restore replaces the whole database.*--yes/);
  assert.equal(running.code, 1);
  assert.match(running.stderr, /platform is running .*stop it first/);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /^gusu backup: expects one FILE/);
  await tp.platform.close();
  // not the platform's application_name, which `gusu restore` takes for a running platform
  db = createDb(tp.database.url, { max: 4, applicationName: 'gusu-test' });
});

test('the file format: JSON header, one section per table, trailer with counts and hash', async () => {
  const text = zlib.gunzipSync(fs.readFileSync(full)).toString('utf8');
  const lines = text.split('\n');
  const header = JSON.parse(lines[0]!);
  assert.equal(header.format, 'gusu-backup');
  assert.equal(header.version, 1);
  assert.ok(header.migrations.some((m: { module: string; id: string }) => m.module === 'platform' && m.id === '001_jobs'));
  assert.ok(header.sequences.some((s: { schema: string; name: string }) => s.schema === 'platform' && s.name === 'job_id_seq'));
  const person = lines.find((l) => l.startsWith('-- table population.person {'));
  assert.ok(person);
  const meta = JSON.parse(person.slice(person.indexOf('{')));
  assert.equal(meta.schema, 'population');
  assert.ok(['id_number', 'name', 'address', 'phone'].every((c) => meta.columns.includes(c)));
  const trailer = JSON.parse(lines.at(-2)!.replace(/^-- end /, ''));
  assert.equal(lines.at(-1), '');
  assert.equal(trailer.sha256, createHash('sha256').update(text.slice(0, text.lastIndexOf('-- end '))).digest('hex'));
  const info = await verifyBackup(full);
  assert.equal(info.trailer.counts['public.gusu_migration'], migrations.length);
  assert.ok(info.trailer.counts['population.person']! >= 300 + TRICKY.length);
});

test('parsing does not depend on where the chunks are cut', async () => {
  const raw = zlib.gunzipSync(fs.readFileSync(full));
  const collect = async (chunks: AsyncIterable<Buffer>) => {
    const data: Record<string, Buffer[]> = {};
    let current = '';
    for await (const ev of parseBackup(chunks) as AsyncGenerator<BackupEvent>) {
      if (ev.kind === 'table') current = `${ev.table.schema}.${ev.table.name}`;
      if (ev.kind === 'data') (data[current] ??= []).push(ev.chunk);
    }
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, createHash('sha256').update(Buffer.concat(v)).digest('hex')]));
  };
  async function* whole() {
    yield raw;
  }
  async function* ragged() {
    let seed = 7;
    for (let i = 0; i < raw.length; ) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const n = 1 + (seed % 97);
      yield raw.subarray(i, i + n);
      i += n;
    }
  }
  assert.deepEqual(await collect(ragged()), await collect(whole()));
});

test('restore brings back every table exactly, and identity columns and sequences continue after it', async () => {
  // the backup the CLI made above is of the same data: take a second one in-process and compare both
  const before = await contents(tp.database.url);
  const maxJob = (await db.query<{ m: number }>('select max(id)::int as m from platform.job')).rows[0]!.m;
  const file = path.join(dir, 'inproc.gusu.gz');
  const made = await backupDatabase(db, file);
  assert.equal(made.tables, Object.keys(before).length);

  await db.query(`delete from population.person where source = 'test'`);
  await db.query(`update platform.setting set value = '"changed"'`);
  await db.query(`truncate legal_entity.entity`);
  for (let i = 0; i < 5; i++) await enqueue(db, 'test.later');
  assert.notDeepEqual(await contents(tp.database.url), before);

  const restored = await restoreDatabase(db, file, migrations);
  assert.equal(restored.rows, made.rows);
  assert.deepEqual(restored.applied, []);
  assert.deepEqual(await contents(tp.database.url), before);

  const { rows } = await db.query<{ t: string; error: string }>(`select payload->>'t' as t, last_error as error from platform.job where kind = 'test.tricky' order by id`);
  assert.deepEqual(rows.map((r) => r.t), TRICKY);
  assert.equal(rows[0]!.error, TRICKY.join('\u0001'));
  const big = await db.query<{ n: number }>(`select length(value->>'text') as n from platform.setting where key = 'tricky.big'`);
  assert.equal(big.rows[0]!.n, 4 * 300_000);

  const next = await enqueue(db, 'test.after-restore');
  assert.ok(next! > maxJob, `new job id ${next} must be above the restored ${maxJob}`);

  // and the CLI's backup, made while the platform ran, restores to the same contents (but for the
  // job queue, which the running platform's worker may have moved on since)
  await db.query(`delete from platform.setting`);
  const cliRestore = await cli(['restore', full, '--yes'], { DATABASE_URL: tp.database.url });
  assert.equal(cliRestore.code, 0, cliRestore.stderr);
  assert.match(cliRestore.stdout, /^restored \d+ tables, \d+ rows .* in [\d.]+ s\n$/);
  const { 'platform.job': _jobs, ...rest } = await contents(tp.database.url);
  const { 'platform.job': _jobsBefore, ...restBefore } = before;
  assert.deepEqual(rest, restBefore);
  const check = await cli(['restore', full, '--check'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /is complete and intact/);
});

test('a damaged, foreign or incompatible file is refused and the database is left as it was', async () => {
  const before = await contents(tp.database.url);
  const bytes = fs.readFileSync(full);
  const bad = (name: string) => path.join(dir, name);

  fs.writeFileSync(bad('truncated.gz'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  fs.writeFileSync(bad('edited.gz'), Buffer.from(bytes).fill(bytes[bytes.length >> 1]! ^ 0x5a, bytes.length >> 1, (bytes.length >> 1) + 1));
  fs.writeFileSync(bad('cut-before-trailer.gz'), zlib.gzipSync(zlib.gunzipSync(bytes).subarray(0, -200)));
  fs.writeFileSync(bad('not-gzip.gz'), 'hello');
  fs.writeFileSync(bad('not-ours.gz'), zlib.gzipSync('{"format":"something-else"}\n'));
  // edited inside and recompressed, but not re-sealed: only the hash can tell
  fs.writeFileSync(bad('recompressed.gz'), zlib.gzipSync(Buffer.from(zlib.gunzipSync(bytes).toString('utf8').replace('汉族', '满族'))));
  const cases: [string, RegExp][] = [
    ['truncated.gz', /damaged or truncated/],
    // one flipped byte of the deflate stream: gzip's CRC, a garbled line, or our checksum, depending on the byte
    ['edited.gz', /damaged|truncated|checksum/],
    ['cut-before-trailer.gz', /truncated/],
    ['not-gzip.gz', /damaged or truncated/],
    ['not-ours.gz', /not a Gusu backup/],
    ['recompressed.gz', /checksum does not match/],
    ['missing.gz', /no such file/],
  ];
  for (const [name, message] of cases) {
    await assert.rejects(restoreDatabase(db, bad(name), migrations), (err: Error) => err instanceof BackupError && message.test(err.message), name);
  }

  reseal(full, bad('unknown-migration.gz'), (body) => body.replace('"migrations":[', '"migrations":[{"module":"future","id":"001_flying_cars","checksum":"00"},'));
  await assert.rejects(restoreDatabase(db, bad('unknown-migration.gz'), migrations), /migrations future\/001_flying_cars are unknown to this code/);
  reseal(full, bad('changed-migration.gz'), (body) => body.replace(/("module":"platform","id":"001_jobs","checksum":")[0-9a-f]+/, '$1abc'));
  await assert.rejects(restoreDatabase(db, bad('changed-migration.gz'), migrations), /platform\/001_jobs differ from this code/);

  // a sealed file whose rows break a constraint: found only by PostgreSQL, mid-restore
  reseal(full, bad('violates.gz'), (body) => {
    const at = body.indexOf('\n-- table population.person ');
    const row = body.indexOf('\n', at + 1) + 1;
    return body.slice(0, row) + body.slice(row).replace(/\t[MF]\t/, '\tX\t');
  });
  await verifyBackup(bad('violates.gz'));
  await assert.rejects(restoreDatabase(db, bad('violates.gz'), migrations), /person_sex_check/);
  reseal(full, bad('duplicate.gz'), (body) => {
    const at = body.indexOf('\n-- table population.person ');
    const start = body.indexOf('\n', at + 1) + 1;
    const line = body.slice(start, body.indexOf('\n', start) + 1);
    return body.slice(0, start) + line + body.slice(start);
  });
  await assert.rejects(restoreDatabase(db, bad('duplicate.gz'), migrations), /row counts do not match/);

  for (const name of ['truncated.gz', 'unknown-migration.gz', 'violates.gz']) {
    const r = await cli(['restore', bad(name), '--yes'], { DATABASE_URL: tp.database.url });
    assert.equal(r.code, 1, name);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.deepEqual(await contents(tp.database.url), before);
});

test('a backup restores across PostgreSQL major versions (the external server and the embedded one)', { skip: !process.env.TEST_DATABASE_URL && 'needs TEST_DATABASE_URL (a second server)' }, async () => {
  const before = await contents(tp.database.url);
  const embeddedDir = path.join(dir, 'cross');
  const server = await startEmbedded(embeddedDir);
  const other = await createTestDatabase();
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('create database cross_test');
    await admin.end();
    const embeddedUrl = withDatabase(server.url, 'cross_test');
    const e = createDb(embeddedUrl, { max: 2 });
    const o = createDb(other.url, { max: 2 });
    try {
      await restoreDatabase(e, full, migrations); // made on the external server
      assert.deepEqual(await contents(embeddedUrl), before);
      const again = path.join(dir, 'from-embedded.gusu.gz');
      await backupDatabase(e, again);
      assert.notEqual((await verifyBackup(again)).header.postgres_version_num, (await verifyBackup(full)).header.postgres_version_num);
      await restoreDatabase(o, again, migrations);
      assert.deepEqual(await contents(other.url), before);
    } finally {
      await e.close();
      await o.close();
    }
  } finally {
    await other.drop();
    await server.stop();
  }
});

// about the embedded server itself (it starts one whatever TEST_DATABASE_URL says): the PostgreSQL pass
// of CI has nothing to add to it, and skips it for CI's time budget
test('backup and restore with the embedded server: while the platform runs (backup) and when it does not', { skip: process.env.TEST_DATABASE_URL ? 'embedded server only: run in the embedded pass' : false }, async () => {
  const dataDir = path.join(dir, 'embedded');
  const config = loadConfig({ GUSU_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO_RESIDENTS: '50', GUSU_DEMO_ENTERPRISES: '10' });
  const platform = await startPlatform(config);
  let closed = false;
  try {
    await platform.database.db.query(`insert into platform.setting (key, value) values ('marker', '"before"')`);
    const file = path.join(dir, 'embedded.gusu.gz');
    const [backup, none] = await Promise.all([cli(['backup', file], { GUSU_DATA_DIR: dataDir }), cli(['backup', path.join(dir, 'x.gz')], { GUSU_DATA_DIR: path.join(dir, 'no-such-dir') })]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no embedded database in/);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /running platform's embedded database/);
    const refused = await cli(['restore', file, '--yes'], { GUSU_DATA_DIR: dataDir });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is running on the embedded database .*stop it first/);

    await platform.database.db.query(`update platform.setting set value = '"after"' where key = 'marker'`);
    await platform.close();
    closed = true;
    const restore = await cli(['restore', file, '--yes'], { GUSU_DATA_DIR: dataDir });
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /^restored .* into the embedded database in /);
    // and onto a new machine: a data directory that has no cluster yet
    const [offline, fresh] = await Promise.all([
      cli(['backup', path.join(dir, 'embedded-offline.gusu.gz')], { GUSU_DATA_DIR: dataDir }),
      cli(['restore', file, '--yes'], { GUSU_DATA_DIR: path.join(dir, 'fresh') }),
    ]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /^restored /);

    const again = await startPlatform(config);
    try {
      const { rows } = await again.database.db.query(`select value from platform.setting where key = 'marker'`);
      assert.equal(rows[0]?.value, 'before');
    } finally {
      await again.close();
    }
  } finally {
    if (!closed) await platform.close();
  }
});
