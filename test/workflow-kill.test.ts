// kill -9 of a process in the middle of workflow commands: every command is one transaction, so the
// state after the kill is a state between commands (no task without its token, no completed step
// without its next tasks, a history that matches the tasks, an intact audit chain), and every
// instance then runs to its end from where it stopped.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createDb, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { repoRoot } from '../src/config/index.ts';
import { auditModule, verifyAudit } from '../src/base/audit/index.ts';
import { parseCalendar } from '../src/base/workflow/calendar.ts';
import { completeTask, createEngine, deployDefinition, type Engine } from '../src/base/workflow/engine.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const SYSTEM = { kind: 'system' as const, id: 'test', department: 'SZ-DSJ' };
let database: TestDatabase;
let db: Db;
let engine: Engine;

before(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 6 });
  await migrate(db, readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }, { module: 'workflow', dir: path.join(repoRoot, 'src/base/workflow/migrations') }]));
  const calendar = parseCalendar(JSON.parse(fs.readFileSync(path.join(repoRoot, 'profiles/suzhou/calendar.json'), 'utf8')));
  engine = createEngine(db, { calendar, departments: new Set(['SZ-SCJG', 'SZ-SW', 'SZ-RS', 'SZ-GA']), roles: new Set(['case-handler', 'department-lead']) });
  await deployDefinition(engine, JSON.parse(fs.readFileSync(path.join(repoRoot, 'profiles/suzhou/processes/enterprise.establishment.json'), 'utf8')), SYSTEM);
});
after(async () => {
  await db?.close();
  await database?.drop();
  await stopTestServer();
});

/** Runs the churn script until it has finished `instances` instances, then kills it with SIGKILL. */
function churnThenKill(instances: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/fixtures/workflow-churn.ts'), database.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let done = 0;
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      done += (c.toString().match(/^done /gm) ?? []).length;
      if (done >= instances) child.kill('SIGKILL');
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(done);
      else reject(new Error(`the churn process ended by itself (${code}): ${err.slice(0, 2000)}`));
    });
  });
}

test('kill -9 mid-command leaves a consistent state, and every instance then runs to its end', async () => {
  const finished = await churnThenKill(25);
  assert.ok(finished >= 25, `the churn process finished ${finished} instances before the kill`);
  const q = async (sql: string) => (await db.query<{ n: number }>(sql)).rows[0]!.n;
  // no open task without a waiting token, no waiting token at a user task without an open task
  assert.equal(await q(`select count(*)::int as n from workflow.task t join workflow.token k on k.id = t.token_id where t.status = 'open' and k.state <> 'waiting'`), 0);
  assert.equal(await q(`select count(*)::int as n from workflow.token k where k.state = 'waiting' and k.node_id in ('register', 'tax', 'social', 'seal') and not exists (select 1 from workflow.task t where t.token_id = k.id and t.status = 'open')`), 0);
  // an approved registration always has its three parallel tasks
  assert.equal(await q(`select count(*)::int as n from workflow.task r where r.node_id = 'register' and r.outcome = 'approve' and (select count(*) from workflow.task p where p.instance_id = r.instance_id and p.node_id in ('tax', 'social', 'seal')) <> 3`), 0);
  // completed instances have nothing left; the history matches the tasks
  assert.equal(await q(`select count(*)::int as n from workflow.instance i where i.status = 'completed' and exists (select 1 from workflow.token k where k.instance_id = i.id and k.state = 'waiting')`), 0);
  assert.equal(await q(`select ((select count(*) from workflow.task where status = 'completed') - (select count(*) from workflow.event where kind = 'task.completed'))::int as n`), 0);
  assert.equal(await q(`select count(*)::int as n from workflow.instance i where i.status = 'completed' and (select count(*) from workflow.event e where e.instance_id = i.id and e.kind = 'gateway.joined') <> 1`), 0);
  assert.equal((await verifyAudit(db)).ok, true, 'the audit chain holds');

  // resume: whatever was left open is completed from here, and every instance ends
  const running = await q(`select count(*)::int as n from workflow.instance where status = 'running'`);
  assert.ok(running >= 1, 'the kill left instances in the middle');
  for (let round = 0; round < 5; round++) {
    const open = await db.query<{ id: string; node_id: string }>(`select id, node_id from workflow.task where status = 'open'`);
    if (!open.rows.length) break;
    for (const t of open.rows) await completeTask(engine, { taskId: t.id, ...(t.node_id === 'register' ? { outcome: 'approve' } : {}) }, SYSTEM);
  }
  assert.equal(await q(`select count(*)::int as n from workflow.instance where status <> 'completed'`), 0);
  assert.equal(await q(`select count(*)::int as n from workflow.instance i where (select count(*) from workflow.event e where e.instance_id = i.id and e.kind = 'gateway.joined') <> 1`), 0);
  assert.equal((await verifyAudit(db)).ok, true);
});
