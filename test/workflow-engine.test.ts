// The workflow engine on a real database: sequential and parallel approval (并联审批), countersign
// (会签: all, any, n of m, veto), exclusive gateways, timers (reminder, escalation, boundary),
// service tasks with retries, idempotent commands, versions, history and measurements, and that a
// crash in the middle of a command leaves the state before it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDb, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { auditModule, verifyAudit } from '../src/base/audit/index.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import { parseCalendar } from '../src/base/workflow/calendar.ts';
import {
  canWorkOn,
  completeTask,
  createEngine,
  deployDefinition,
  fireTimer,
  getTask,
  registerServiceHandler,
  runServiceTask,
  startInstance,
  terminateInstance,
  WorkflowError,
  type Engine,
  type TaskNotice,
} from '../src/base/workflow/engine.ts';
import { ModelError, type ProcessModel } from '../src/base/workflow/model.ts';
import { inbox, instanceDetail, processMetrics } from '../src/base/workflow/queries.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../src/config/index.ts';

const MIGRATIONS = readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }, { module: 'workflow', dir: path.join(repoRoot, 'src/base/workflow/migrations') }]);
const DEPARTMENTS = new Set(['SZ-SCJG', 'SZ-SW', 'SZ-RS', 'SZ-GA', 'SZ-ZFB', 'SZ-FGW', 'SZ-CZ', 'SZ-MZ', 'SZ-DSJ']);
const ROLES = new Set(['case-handler', 'department-lead', 'process-designer', 'platform-admin']);

let database: TestDatabase;
let db: Db;
let engine: Engine;
const notices: TaskNotice[] = [];

const staff = (department: string, roles: string[] = ['case-handler'], id = `00000000-0000-4000-8000-${department.replace(/\W/g, '').padEnd(12, '0').slice(0, 12).toLowerCase().replace(/[^0-9a-f]/g, '0')}`): Actor => ({
  kind: 'staff',
  accountId: id,
  name: `${department} 科员`,
  department,
  post: '科员',
  roles: roles.map((role) => ({ role, scope: department })),
});
const SYSTEM: Actor = { kind: 'system', id: 'test', department: 'SZ-DSJ' };

before(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 12 });
  await migrate(db, MIGRATIONS);
  const calendar = parseCalendar(JSON.parse(fs.readFileSync(path.join(repoRoot, 'profiles/suzhou/calendar.json'), 'utf8')));
  engine = createEngine(db, { calendar, departments: DEPARTMENTS, roles: ROLES, notify: async (_q, n) => void notices.push(n) });
});
after(async () => {
  await db?.close();
  await database?.drop();
  await stopTestServer();
});

function approval(key: string, extra: Partial<ProcessModel> = {}): ProcessModel {
  return {
    key,
    name: { zh: '测试审批', en: 'Test approval' },
    owner: 'SZ-SCJG',
    nodes: [
      { id: 'start', type: 'start' },
      { id: 'review', type: 'userTask', name: { zh: '审核', en: 'Review' }, assignee: { department: 'SZ-SCJG', role: 'case-handler' }, outcomes: ['approve', 'reject'], deadline: { workingDays: 2 }, remindBefore: { hours: 4 }, escalateTo: { role: 'department-lead' } },
      { id: 'decide', type: 'exclusiveGateway' },
      { id: 'approved', type: 'end' },
      { id: 'rejected', type: 'end' },
    ],
    flows: [
      { id: 'f1', from: 'start', to: 'review' },
      { id: 'f2', from: 'review', to: 'decide' },
      { id: 'f3', from: 'decide', to: 'approved', condition: 'reviewOutcome == "approve"' },
      { id: 'f4', from: 'decide', to: 'rejected', isDefault: true },
    ],
    ...extra,
  };
}

const parallel: ProcessModel = JSON.parse(fs.readFileSync(path.join(repoRoot, 'profiles/suzhou/processes/enterprise.establishment.json'), 'utf8'));
const countersign = (completion: 'all' | 'any' | { atLeast: number }, key: string): ProcessModel => ({
  key,
  name: { zh: '会签', en: 'Countersign' },
  owner: 'SZ-ZFB',
  nodes: [
    { id: 'start', type: 'start' },
    { id: 'sign', type: 'userTask', name: { zh: '会签', en: 'Sign' }, countersign: { assignees: [{ department: 'SZ-FGW' }, { department: 'SZ-CZ' }, { department: 'SZ-MZ' }], completion, vetoOutcome: 'object' }, outcomes: ['agree', 'object', 'abstain'] },
    { id: 'end', type: 'end' },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'sign' },
    { id: 'f2', from: 'sign', to: 'end' },
  ],
});

describe('definitions', () => {
  test('deploy: validated, versioned, the same model again is a no-op; a running instance keeps its version', async () => {
    const a = await deployDefinition(engine, approval('test.versions'), SYSTEM);
    assert.equal(a.created, true);
    assert.equal(a.definition.version, 1);
    const again = await deployDefinition(engine, approval('test.versions'), SYSTEM);
    assert.equal(again.created, false);
    assert.equal(again.definition.version, 1);
    const started = await startInstance(engine, { key: 'test.versions' }, staff('SZ-SCJG'));
    const v2 = approval('test.versions');
    (v2.nodes[1] as { deadline: object }).deadline = { workingDays: 5 };
    assert.equal((await deployDefinition(engine, v2, SYSTEM)).definition.version, 2);
    const d = await instanceDetail(db, started.instanceId);
    assert.equal(d!.version, 1, 'the running instance stays on version 1');
    const fresh = await startInstance(engine, { key: 'test.versions' }, staff('SZ-SCJG'));
    assert.equal((await instanceDetail(db, fresh.instanceId))!.version, 2);
  });

  test('invalid models are refused naming each problem', async () => {
    const bad = approval('test.bad');
    bad.nodes.push({ id: 'orphan', type: 'userTask', name: { zh: '孤立', en: 'Orphan' }, assignee: { department: 'SZ-NOPE' } });
    bad.flows.push({ id: 'f9', from: 'review', to: 'nowhere' });
    await assert.rejects(deployDefinition(engine, bad, SYSTEM), (err: unknown) => {
      assert.ok(err instanceof ModelError);
      assert.ok(err.problems.some((p) => p.includes('nowhere')), err.message);
      assert.ok(err.problems.some((p) => p.includes('SZ-NOPE')), err.message);
      return true;
    });
    for (const hostile of [null, [], 'x', { key: 'a', name: { zh: 'x', en: 'x' }, owner: 'SZ-SCJG', nodes: [{ id: '__proto__', type: 'start' }], flows: [] }, { ...approval('test.cond'), flows: [...approval('x').flows.slice(0, 2), { id: 'f3', from: 'decide', to: 'approved', condition: 'process.exit()' }, { id: 'f4', from: 'decide', to: 'rejected', isDefault: true }] }]) {
      await assert.rejects(deployDefinition(engine, hostile, SYSTEM), ModelError);
    }
  });
});

describe('running', () => {
  before(async () => {
    await deployDefinition(engine, approval('test.approval'), SYSTEM);
    await deployDefinition(engine, parallel, SYSTEM);
    await deployDefinition(engine, countersign('all', 'test.cs-all'), SYSTEM);
    await deployDefinition(engine, countersign('any', 'test.cs-any'), SYSTEM);
    await deployDefinition(engine, countersign({ atLeast: 2 }, 'test.cs-two'), SYSTEM);
  });

  test('a task goes to the department and role, shows in the inbox with a working-day deadline, and the gateway follows the outcome', async () => {
    const clerk = staff('SZ-SCJG');
    const s = await startInstance(engine, { key: 'test.approval', businessKey: 'APP-1' }, clerk);
    assert.equal(s.status, 'running');
    assert.equal(s.openTasks.length, 1);
    const task = (await getTask(db, s.openTasks[0]!))!;
    assert.equal(task.department, 'SZ-SCJG');
    assert.equal(task.role, 'case-handler');
    assert.ok(task.dueAt && task.dueAt.getTime() > Date.now());
    assert.ok(notices.some((n) => n.kind === 'assigned' && n.task.id === task.id));
    const box = await inbox(db, clerk);
    assert.ok(box.items.some((t) => t.id === task.id));
    assert.equal((await inbox(db, staff('SZ-SW'))).items.some((t) => t.id === task.id), false, 'not in another department’s inbox');
    assert.equal((await inbox(db, staff('SZ-SCJG', []))).items.some((t) => t.id === task.id), false, 'not for staff without the role');
    assert.equal(canWorkOn(staff('SZ-SW'), task), false);
    await assert.rejects(completeTask(engine, { taskId: task.id, outcome: 'maybe' }, clerk), (e: unknown) => e instanceof WorkflowError && e.code === 'invalid');
    const done = await completeTask(engine, { taskId: task.id, outcome: 'approve', comment: '材料齐全' }, clerk);
    assert.equal(done.status, 'completed');
    const d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.variables.reviewOutcome, 'approve');
    assert.deepEqual(
      d.history.map((h) => h.kind),
      ['instance.started', 'task.created', 'task.completed', 'gateway.taken', 'instance.completed'],
    );
    assert.equal((d.history.find((h) => h.kind === 'gateway.taken')!.details as { flow: string }).flow, 'f3');
  });

  test('completing twice: the same completion is answered as done, a different one is a conflict; nothing moves twice', async () => {
    const clerk = staff('SZ-SCJG');
    const s = await startInstance(engine, { key: 'test.approval' }, clerk);
    const id = s.openTasks[0]!;
    const [a, b] = await Promise.all([completeTask(engine, { taskId: id, outcome: 'reject' }, clerk), completeTask(engine, { taskId: id, outcome: 'reject' }, clerk)]);
    assert.deepEqual([a.already, b.already].sort(), [false, true]);
    await assert.rejects(completeTask(engine, { taskId: id, outcome: 'approve' }, clerk), (e: unknown) => e instanceof WorkflowError && e.code === 'conflict');
    const d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.history.filter((h) => h.kind === 'instance.completed').length, 1);
    assert.equal(d.variables.reviewOutcome, 'reject');
  });

  test('start with an idempotency key: a retry returns the first instance', async () => {
    const clerk = staff('SZ-SCJG');
    const [a, b] = await Promise.all([startInstance(engine, { key: 'test.approval', idempotencyKey: 'req-42' }, clerk), startInstance(engine, { key: 'test.approval', idempotencyKey: 'req-42' }, clerk)].map((p) => p.catch((e: unknown) => e)));
    const ok = [a, b].filter((x): x is Awaited<ReturnType<typeof startInstance>> => !(x instanceof Error));
    assert.ok(ok.length >= 1);
    const again = await startInstance(engine, { key: 'test.approval', idempotencyKey: 'req-42' }, clerk);
    assert.equal(again.created, false);
    assert.equal(again.instanceId, ok[0]!.instanceId);
    const { rows } = await db.query(`select count(*)::int as n from workflow.instance where idempotency_key = 'req-42'`);
    assert.equal(rows[0]!.n, 1);
  });

  test('并联审批: three departments at once, joined when all are done', async () => {
    const s = await startInstance(engine, { key: 'enterprise.establishment', businessKey: '91320500MA1XXXXX' }, staff('SZ-SCJG'));
    const reg = await completeTask(engine, { taskId: s.openTasks[0]!, outcome: 'approve' }, staff('SZ-SCJG'));
    assert.equal(reg.openTasks.length, 3);
    const tasks = await Promise.all(reg.openTasks.map((id) => getTask(db, id)));
    assert.deepEqual(tasks.map((t) => t!.department).sort(), ['SZ-GA', 'SZ-RS', 'SZ-SW']);
    // all three complete concurrently: the join fires exactly once
    const results = await Promise.all(tasks.map((t) => completeTask(engine, { taskId: t!.id }, staff(t!.department!))));
    assert.deepEqual(results.map((r) => r.status).filter((x) => x === 'completed').length, 1);
    const d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.status, 'completed');
    assert.equal(d.history.filter((h) => h.kind === 'gateway.joined').length, 1);
    const waiting = await db.query(`select count(*)::int as n from workflow.token where instance_id = $1 and state = 'waiting'`, [s.instanceId]);
    assert.equal(waiting.rows[0]!.n, 0);
  });

  test('会签: all waits for every department; any takes the first; n of m takes n; a veto ends it at once', async () => {
    const sign = async (key: string, outcomes: string[]) => {
      const s = await startInstance(engine, { key }, SYSTEM);
      assert.equal(s.openTasks.length, 3);
      let last = s;
      for (const [i, o] of outcomes.entries()) {
        const t = (await getTask(db, s.openTasks[i]!))!;
        last = { ...(await completeTask(engine, { taskId: t.id, outcome: o }, staff(t.department!))), created: true };
      }
      return { last, detail: (await instanceDetail(db, s.instanceId))! };
    };
    const all2 = await sign('test.cs-all', ['agree', 'agree']);
    assert.equal(all2.last.status, 'running', 'all: two of three is not enough');
    const all3 = await sign('test.cs-all', ['agree', 'agree', 'abstain']);
    assert.equal(all3.last.status, 'completed');
    assert.equal(all3.detail.variables.signOutcome, 'agree', 'the outcome most chose');
    const any = await sign('test.cs-any', ['abstain']);
    assert.equal(any.last.status, 'completed');
    assert.equal(any.detail.tasks.filter((t) => t.status === 'cancelled').length, 2, 'the others are cancelled');
    const two = await sign('test.cs-two', ['agree', 'agree']);
    assert.equal(two.last.status, 'completed');
    const veto = await sign('test.cs-all', ['object']);
    assert.equal(veto.last.status, 'completed', 'one objection ends the countersign');
    assert.equal(veto.detail.variables.signOutcome, 'object');
  });

  test('timers: the reminder before the deadline, escalation after it to the head of department, each once', async () => {
    const s = await startInstance(engine, { key: 'test.approval' }, staff('SZ-SCJG'));
    const id = s.openTasks[0]!;
    const jobs = await db.query<{ payload: { kind: string }; run_at: Date }>(`select payload, run_at from platform.job where kind = 'workflow.timer' and payload->>'taskId' = $1 order by run_at`, [id]);
    assert.deepEqual(jobs.rows.map((j) => j.payload.kind), ['reminder', 'escalation']);
    const task = (await getTask(db, id))!;
    assert.equal(jobs.rows[1]!.run_at.getTime(), task.dueAt!.getTime());
    assert.equal(await fireTimer(engine, { kind: 'reminder', taskId: id }), 'fired');
    assert.equal(await fireTimer(engine, { kind: 'reminder', taskId: id }), 'stale', 'a redelivered reminder does nothing');
    assert.equal(await fireTimer(engine, { kind: 'escalation', taskId: id }), 'fired');
    assert.equal(await fireTimer(engine, { kind: 'escalation', taskId: id }), 'stale');
    const t = (await getTask(db, id))!;
    assert.equal(t.escalatedTo, 'department-lead');
    assert.ok(notices.some((n) => n.kind === 'escalated' && n.task.id === id));
    // the head of department now sees it and may complete it; a plain clerk of another role may not
    const head = staff('SZ-SCJG', ['department-lead'], '00000000-0000-4000-8000-0000000000ee');
    assert.ok((await inbox(db, head)).items.some((x) => x.id === id));
    assert.ok(canWorkOn(head, t));
    await completeTask(engine, { taskId: id, outcome: 'approve' }, head);
    assert.equal(await fireTimer(engine, { kind: 'reminder', taskId: id }), 'stale', 'timers of a finished task do nothing');
  });

  test('a timer boundary event: interrupting cancels the task and leaves by its flow; non-interrupting adds a path', async () => {
    const model: ProcessModel = {
      key: 'test.boundary',
      name: { zh: '超时自动处理', en: 'Automatic on timeout' },
      owner: 'SZ-MZ',
      nodes: [
        { id: 'start', type: 'start' },
        { id: 'wait', type: 'userTask', name: { zh: '办理', en: 'Handle' }, assignee: { department: 'SZ-MZ' } },
        { id: 'nudge', type: 'timerBoundary', attachedTo: 'wait', after: { hours: 1 }, interrupting: false },
        { id: 'timeout', type: 'timerBoundary', attachedTo: 'wait', after: { workingDays: 3 } },
        { id: 'remind', type: 'userTask', name: { zh: '催办', en: 'Chase' }, assignee: { department: 'SZ-DSJ' } },
        { id: 'auto', type: 'serviceTask', handler: 'set-variables', input: { autoApproved: true } },
        { id: 'done', type: 'end' },
        { id: 'chased', type: 'end' },
        { id: 'timedOut', type: 'end' },
      ],
      flows: [
        { id: 'f1', from: 'start', to: 'wait' },
        { id: 'f2', from: 'wait', to: 'done' },
        { id: 'f3', from: 'nudge', to: 'remind' },
        { id: 'f4', from: 'remind', to: 'chased' },
        { id: 'f5', from: 'timeout', to: 'auto' },
        { id: 'f6', from: 'auto', to: 'timedOut' },
      ],
    };
    await deployDefinition(engine, model, SYSTEM);
    const s = await startInstance(engine, { key: 'test.boundary' }, staff('SZ-MZ'));
    const { rows } = await db.query<{ payload: { kind: 'boundary'; instanceId: string; tokenId: number; boundaryId: string } }>(`select payload from platform.job where kind = 'workflow.timer' and payload->>'instanceId' = $1 order by run_at`, [s.instanceId]);
    assert.deepEqual(rows.map((r) => r.payload.boundaryId), ['nudge', 'timeout']);
    assert.equal(await fireTimer(engine, rows[0]!.payload), 'fired');
    let d = (await instanceDetail(db, s.instanceId))!;
    assert.deepEqual(d.tasks.filter((t) => t.status === 'open').map((t) => t.nodeId).sort(), ['remind', 'wait']);
    assert.equal(await fireTimer(engine, rows[1]!.payload), 'fired');
    assert.equal(await fireTimer(engine, rows[1]!.payload), 'stale');
    d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.tasks.find((t) => t.nodeId === 'wait')!.status, 'cancelled');
    // the service task runs as a job
    const svc = await db.query<{ payload: { instanceId: string; tokenId: number } }>(`select payload from platform.job where kind = 'workflow.service' and payload->>'instanceId' = $1`, [s.instanceId]);
    assert.equal(await runServiceTask(engine, svc.rows[0]!.payload, { isLast: false }), 'done');
    assert.equal(await runServiceTask(engine, svc.rows[0]!.payload, { isLast: false }), 'stale', 'a redelivered service job does nothing');
    d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.variables.autoApproved, true);
    assert.equal(d.status, 'running', 'the chase task is still open');
    await completeTask(engine, { taskId: d.tasks.find((t) => t.nodeId === 'remind')!.id }, staff('SZ-DSJ'));
    assert.equal((await instanceDetail(db, s.instanceId))!.status, 'completed');
  });

  test('a failing service task is retried; on its last attempt the instance shows an incident; a later success clears it', async () => {
    let fail = true;
    registerServiceHandler('test.flaky', async () => {
      if (fail) throw new Error('the tax system is down');
      return { taxNo: 'T-1' };
    });
    const model: ProcessModel = {
      key: 'test.service',
      name: { zh: '服务任务', en: 'Service task' },
      owner: 'SZ-SW',
      nodes: [
        { id: 'start', type: 'start' },
        { id: 'call', type: 'serviceTask', handler: 'test.flaky' },
        { id: 'end', type: 'end' },
      ],
      flows: [
        { id: 'f1', from: 'start', to: 'call' },
        { id: 'f2', from: 'call', to: 'end' },
      ],
    };
    await deployDefinition(engine, model, SYSTEM);
    const s = await startInstance(engine, { key: 'test.service' }, SYSTEM);
    const p = (await db.query<{ payload: { instanceId: string; tokenId: number } }>(`select payload from platform.job where kind = 'workflow.service' and payload->>'instanceId' = $1`, [s.instanceId])).rows[0]!.payload;
    await assert.rejects(runServiceTask(engine, p, { isLast: false }), /down/);
    assert.equal((await instanceDetail(db, s.instanceId))!.incident, null);
    await assert.rejects(runServiceTask(engine, p, { isLast: true }), /down/);
    assert.match((await instanceDetail(db, s.instanceId))!.incident!, /tax system is down/);
    fail = false;
    assert.equal(await runServiceTask(engine, p, { isLast: false }), 'done');
    const d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.status, 'completed');
    assert.equal(d.incident, null);
    assert.equal(d.variables.taxNo, 'T-1');
  });

  test('a crash in the middle of a command leaves the state before it (one transaction per command)', async () => {
    const s = await startInstance(engine, { key: 'enterprise.establishment' }, staff('SZ-SCJG'));
    const before = await db.query(`select (select count(*) from workflow.task where instance_id = $1)::int as tasks, (select count(*) from workflow.event where instance_id = $1)::int as events`, [s.instanceId]);
    // the notifier fails after the first of three parallel tasks is written: nothing of the command may remain
    const crashing = { ...engine, notify: async (_q: unknown, n: TaskNotice) => {
      if (n.task.department === 'SZ-RS') throw new Error('power cut');
    } } as Engine;
    await assert.rejects(completeTask(crashing, { taskId: s.openTasks[0]!, outcome: 'approve' }, staff('SZ-SCJG')), /power cut/);
    const after = await db.query(`select (select count(*) from workflow.task where instance_id = $1)::int as tasks, (select count(*) from workflow.event where instance_id = $1)::int as events`, [s.instanceId]);
    assert.deepEqual(after.rows[0], before.rows[0]);
    assert.equal((await getTask(db, s.openTasks[0]!))!.status, 'open');
    // and the same command then succeeds
    const ok = await completeTask(engine, { taskId: s.openTasks[0]!, outcome: 'approve' }, staff('SZ-SCJG'));
    assert.equal(ok.openTasks.length, 3);
  });

  test('terminate: open tasks cancelled, audited; the audit chain holds', async () => {
    const s = await startInstance(engine, { key: 'test.approval' }, staff('SZ-SCJG'));
    await terminateInstance(engine, s.instanceId, '申请人撤回', SYSTEM);
    const d = (await instanceDetail(db, s.instanceId))!;
    assert.equal(d.status, 'terminated');
    assert.equal(d.tasks[0]!.status, 'cancelled');
    await assert.rejects(terminateInstance(engine, s.instanceId, 'again', SYSTEM), (e: unknown) => e instanceof WorkflowError && e.code === 'conflict');
    await assert.rejects(completeTask(engine, { taskId: d.tasks[0]!.id, outcome: 'approve' }, staff('SZ-SCJG')), (e: unknown) => e instanceof WorkflowError && e.code === 'conflict');
    assert.equal((await verifyAudit(db)).ok, true);
  });

  test('hostile input: unknown keys and ids, oversized or badly named variables', async () => {
    await assert.rejects(startInstance(engine, { key: 'no.such' }, SYSTEM), (e: unknown) => e instanceof WorkflowError && e.code === 'not-found');
    await assert.rejects(startInstance(engine, { key: 'test.approval', variables: { big: 'x'.repeat(70_000) } }, SYSTEM), (e: unknown) => e instanceof WorkflowError && e.code === 'invalid');
    await assert.rejects(startInstance(engine, { key: 'test.approval', variables: { 'a b': 1 } }, SYSTEM), (e: unknown) => e instanceof WorkflowError && e.code === 'invalid');
    await assert.rejects(startInstance(engine, { key: 'test.approval', variables: [] as never }, SYSTEM), (e: unknown) => e instanceof WorkflowError);
    await assert.rejects(completeTask(engine, { taskId: "'; drop table workflow.task; --" }, SYSTEM), (e: unknown) => e instanceof WorkflowError && e.code === 'not-found');
  });

  test('measurements: count, median and p90 per process and step, and the overdue rate', async () => {
    // two tasks of test.approval made overdue on paper
    await db.query(`update workflow.task set due_at = created_at - interval '1 minute' where key = 'test.approval' and status = 'completed' and id in (select id from workflow.task where key = 'test.approval' and status = 'completed' order by created_at limit 2)`);
    const all = await processMetrics(db);
    const m = all.find((p) => p.key === 'test.approval')!;
    assert.ok(m.instances >= 4);
    assert.ok(m.completed >= 2);
    assert.ok(m.medianMinutes !== null && m.p90Minutes !== null && m.p90Minutes >= m.medianMinutes);
    const review = m.steps.find((s) => s.nodeId === 'review')!;
    assert.equal(review.name.zh, '审核');
    assert.ok(review.overdueRate !== null && review.overdueRate > 0 && review.overdueRate <= 1);
    assert.ok(m.overdueRate !== null && m.overdueRate > 0);
    const est = all.find((p) => p.key === 'enterprise.establishment')!;
    assert.deepEqual(est.steps.map((s) => s.nodeId).slice(0, 1), ['register']);
  });
});
