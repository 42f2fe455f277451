import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createDb, enqueue, jobCounts, migrate, platformMigrations, readMigrations, startWorker, type Db } from '../src/db/index.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

let database: TestDatabase;
let db: Db;

before(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 8 });
  await migrate(db, readMigrations([platformMigrations]));
});
after(async () => {
  await db.close();
  await database.drop();
  await stopTestServer();
});

test('a job runs once and is marked done', async () => {
  const seen: unknown[] = [];
  const id = await enqueue(db, 'test.once', { n: 1 });
  const worker = startWorker(db, { 'test.once': async (job) => void seen.push(job.payload) }, { concurrency: 0 });
  assert.equal(await worker.drain(), 1);
  await worker.stop();
  assert.deepEqual(seen, [{ n: 1 }]);
  const { rows } = await db.query('select status, attempts from platform.job where id = $1', [id]);
  assert.deepEqual(rows[0], { status: 'done', attempts: 1 });
});

test('two workers sharing the queue never run the same job twice (SKIP LOCKED)', async () => {
  const ids: number[] = [];
  for (let i = 0; i < 200; i++) ids.push((await enqueue(db, 'test.shared', { i }))!);
  const runs = new Map<number, number>();
  const handler = async (job: { id: number }) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 1));
  };
  const a = startWorker(db, { 'test.shared': handler }, { concurrency: 4, pollMs: 10 });
  const b = startWorker(db, { 'test.shared': handler }, { concurrency: 4, pollMs: 10 });
  for (let i = 0; i < 500 && runs.size < 200; i++) await new Promise((r) => setTimeout(r, 20));
  await Promise.all([a.stop(), b.stop()]);
  assert.equal(runs.size, 200);
  assert.ok([...runs.values()].every((n) => n === 1), 'each job ran exactly once');
});

test('a failing job is retried with back-off, then dead-lettered with its error', async () => {
  const id = (await enqueue(db, 'test.fail', {}, { maxAttempts: 2 }))!;
  const worker = startWorker(db, { 'test.fail': async () => { throw new Error('department system down'); } }, { concurrency: 0 });
  await worker.drain();
  let row = (await db.query('select status, attempts, last_error, run_at > now() as later from platform.job where id = $1', [id])).rows[0];
  assert.deepEqual(row, { status: 'queued', attempts: 1, last_error: 'department system down', later: true });
  await db.query('update platform.job set run_at = now() where id = $1', [id]);
  await worker.drain();
  row = (await db.query('select status, attempts, last_error from platform.job where id = $1', [id])).rows[0];
  assert.deepEqual(row, { status: 'dead', attempts: 2, last_error: 'department system down' });
  await worker.stop();
});

test('a job whose process died (lease passed) is claimed again', async () => {
  const id = (await enqueue(db, 'test.lease', {}))!;
  await db.query(`update platform.job set status = 'running', attempts = 1, locked_by = 'dead-host:1', locked_until = now() - interval '1 second' where id = $1`, [id]);
  let ran = 0;
  const worker = startWorker(db, { 'test.lease': async () => void ran++ }, { concurrency: 0 });
  await worker.drain();
  await worker.stop();
  assert.equal(ran, 1);
  assert.equal((await db.query('select status, attempts from platform.job where id = $1', [id])).rows[0]?.attempts, 2);
});

test('a job not yet due is not run; a unique key enqueues once', async () => {
  await enqueue(db, 'test.later', {}, { runAt: new Date(Date.now() + 3_600_000) });
  assert.ok(await enqueue(db, 'test.timer', {}, { uniqueKey: 'timer:2026-11-27' }));
  assert.equal(await enqueue(db, 'test.timer', {}, { uniqueKey: 'timer:2026-11-27' }), null);
  let ran = 0;
  const worker = startWorker(db, { 'test.later': async () => void ran++, 'test.timer': async () => void ran++ }, { concurrency: 0 });
  assert.equal(await worker.drain(), 1);
  await worker.stop();
  assert.equal(ran, 1);
  // once done, the key is free again
  assert.ok(await enqueue(db, 'test.timer', {}, { uniqueKey: 'timer:2026-11-27' }));
});

test('stop() waits for an in-flight job to finish', async () => {
  await enqueue(db, 'test.slow', {});
  let finished = false;
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const worker = startWorker(db, { 'test.slow': async () => { started(); await new Promise((r) => setTimeout(r, 300)); finished = true; } }, { concurrency: 1, pollMs: 10 });
  await startedP;
  await worker.stop();
  assert.equal(finished, true);
});

test('a malformed job kind is refused by the database', async () => {
  await assert.rejects(enqueue(db, 'Bad Kind; drop table', {}), /job_kind_check/);
  const counts = await jobCounts(db);
  assert.equal(typeof counts.queued, 'number');
});

test('migrations: applied once, an edited applied migration is refused, a failing one leaves nothing', async () => {
  const again = await migrate(db, readMigrations([platformMigrations]));
  assert.deepEqual(again, []);
  const edited = readMigrations([platformMigrations]).map((m) => ({ ...m, checksum: 'x' }));
  await assert.rejects(migrate(db, edited), /was changed after it was applied/);
  const broken = [{ module: 'broken', id: '001_x', sql: 'create table platform.half (id int); select 1/0;', checksum: 'c' }];
  await assert.rejects(migrate(db, broken), /migration broken\/001_x failed: division by zero/);
  assert.equal((await db.query(`select to_regclass('platform.half') as t`)).rows[0]?.t, null);
});
