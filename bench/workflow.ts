// The `workflow` scenario: the process engine on PostgreSQL (embedded in a temporary directory, or a
// fresh database on BENCH_DATABASE_URL's server). A two-step approval (受理审核 by a department's
// case handlers with a deadline, reminder and escalation, then 负责人审批) is deployed; 8 clients at
// once start instances, then complete their tasks — each completion one transaction that locks the
// instance, records the outcome and the history, moves the token on and opens the next task (or
// ends the instance). Beside each, a baseline measured in the same round at the same concurrency:
// the same number of plain single-row statements on an equivalent table (an insert per instance
// started; `update … set status = … where id = $1` per completion). The ratios are what the engine's
// bookkeeping costs over the least a database does for the same event.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PROFILE_DIR, loadCityProfile } from '../src/config/profile.ts';
import { migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { auditModule } from '../src/base/audit/index.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import { ROLES } from '../src/base/identity/roles.ts';
import { loadCalendar } from '../src/base/workflow/calendar.ts';
import { completeTask, createEngine, deployDefinition, startInstance, type Engine } from '../src/base/workflow/engine.ts';
import type { ProcessModel } from '../src/base/workflow/model.ts';
import { benchDatabase, median, percentile, round, type BenchOptions, type Figures } from './support.ts';

const CLIENTS = 8;
const KEY = 'bench.two-step-approval';
const WORKFLOW_MIGRATIONS = path.join(path.dirname(new URL(import.meta.url).pathname), '../src/base/workflow/migrations');

const MODEL: ProcessModel = {
  key: KEY,
  name: { zh: '基准测试：两级审批', en: 'Benchmark: two-step approval' },
  owner: 'SZ-SCJG',
  nodes: [
    { id: 'start', type: 'start' },
    {
      id: 'review',
      type: 'userTask',
      name: { zh: '受理审核', en: 'Review' },
      assignee: { department: 'SZ-SCJG', role: 'case-handler' },
      outcomes: ['approve', 'reject'],
      deadline: { workingDays: 2 },
      remindBefore: { hours: 4 },
      escalateTo: { role: 'department-lead' },
    },
    { id: 'decide', type: 'exclusiveGateway' },
    { id: 'sign', type: 'userTask', name: { zh: '负责人审批', en: 'Head signs' }, assignee: { department: 'SZ-SCJG', role: 'department-lead' }, outcomes: ['approve', 'reject'], deadline: { workingDays: 1 } },
    { id: 'approved', type: 'end' },
    { id: 'rejected', type: 'end' },
  ],
  flows: [
    { id: 'f1', from: 'start', to: 'review' },
    { id: 'f2', from: 'review', to: 'decide' },
    { id: 'f3', from: 'decide', to: 'sign', condition: 'reviewOutcome == "approve"' },
    { id: 'f4', from: 'decide', to: 'rejected', isDefault: true },
    { id: 'f5', from: 'sign', to: 'approved' },
  ],
};

const STARTER: Actor = { kind: 'staff', accountId: '00000000-0000-4000-8000-00000000be01', name: '基准测试', department: 'SZ-SCJG', post: '科员', roles: [{ role: 'case-handler', scope: 'SZ-SCJG' }] };
const HANDLER: Actor = { kind: 'staff', accountId: '00000000-0000-4000-8000-00000000be02', name: '基准测试', department: 'SZ-SCJG', post: '处长', roles: [{ role: 'case-handler', scope: 'SZ-SCJG' }, { role: 'department-lead', scope: 'SZ-SCJG' }] };

/** Runs `op` from CLIENTS clients at once until `seconds` pass or `take()` runs dry; returns count, elapsed and latencies. */
async function drive<T>(seconds: number | null, take: () => T | undefined, op: (item: T) => Promise<void>): Promise<{ n: number; s: number; latencies: number[] }> {
  const t0 = performance.now();
  const end = seconds === null ? Infinity : t0 + seconds * 1000;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const item = take();
        if (item === undefined) return;
        const a = performance.now();
        await op(item);
        latencies.push(performance.now() - a);
      }
    }),
  );
  return { n: latencies.length, s: (performance.now() - t0) / 1000, latencies };
}

export async function run(opts: BenchOptions): Promise<Figures> {
  const seconds = opts.seconds ?? (opts.quick ? 1 : 5);
  const rounds = opts.rounds ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-workflow-'));
  fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
  opts.log(`${process.env.BENCH_DATABASE_URL ? 'a fresh database on BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}, ${CLIENTS} clients, pool of ${CLIENTS}`);
  const bench = await benchDatabase(path.join(dir, 'db'), { scenario: 'workflow', max: CLIENTS });
  try {
    const db = bench.db;
    await migrate(db, readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }, { module: 'workflow', dir: WORKFLOW_MIGRATIONS }]));
    const profile = loadCityProfile(DEFAULT_PROFILE_DIR);
    const engine: Engine = createEngine(db, { calendar: loadCalendar(DEFAULT_PROFILE_DIR), departments: new Set(profile.departments.map((d) => d.code)), roles: new Set(ROLES.map((r) => r.id)) });
    await deployDefinition(engine, MODEL, { kind: 'system', id: 'bench', department: '' });
    // the baseline's table: as wide as a task row's everyday columns, indexed the same way
    await db.query(`create table bench_baseline (id bigserial primary key, instance_id uuid not null, department text not null, status text not null default 'open',
                      outcome text, created_at timestamptz not null default now(), completed_at timestamptz)`);
    await db.query(`create index bench_baseline_open on bench_baseline (department, created_at) where status = 'open'`);

    let seq = 0;
    const start = async () => {
      const r = await startInstance(engine, { key: KEY, businessKey: `BENCH-${++seq}`, variables: { applicant: '基准测试企业', amount: seq } }, STARTER);
      open.push(r.openTasks[0]!);
    };
    const complete = async (taskId: string) => {
      const r = await completeTask(engine, { taskId, outcome: 'approve', comment: '同意' }, HANDLER);
      for (const next of r.openTasks) open.push(next);
    };
    const open: string[] = [];

    // warm-up: the connections, the definition cache, the plans
    await drive(Math.min(1, seconds), () => true, start);
    await drive(Math.min(1, seconds), () => open.shift(), complete);
    open.length = 0;

    const results = { starts: [] as number[], startBase: [] as number[], transitions: [] as number[], updateBase: [] as number[] };
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      // instances started; then as many plain inserts
      const s = await drive(seconds, () => true, start);
      const sb = await drive(null, (() => {
        let left = s.n;
        return () => (left-- > 0 ? true : undefined);
      })(), async () => void (await db.query(`insert into bench_baseline (instance_id, department) values ($1, $2)`, [crypto.randomUUID(), 'SZ-SCJG'])));
      // completions: the tasks just opened (each approval opens the second step), shuffled
      for (let j = open.length - 1; j > 0; j--) {
        const k = Math.floor(Math.random() * (j + 1));
        [open[j], open[k]] = [open[k]!, open[j]!];
      }
      const c = await drive(seconds, () => open.shift(), complete);
      latencies.push(...c.latencies);
      // as many plain updates, of rows picked at random
      const { rows } = await db.query<{ id: number }>('select id from bench_baseline order by random() limit $1', [c.n]);
      const ids = rows.map((r) => r.id);
      const cb = await drive(null, () => ids.pop(), async (id) => void (await db.query(`update bench_baseline set status = $2, outcome = $3, completed_at = now() where id = $1`, [id, 'completed', 'approve'])));
      results.starts.push(s.n / s.s);
      results.startBase.push(sb.n / sb.s);
      results.transitions.push(c.n / c.s);
      results.updateBase.push(cb.n / cb.s);
      opts.log(
        `round ${i + 1}: ${Math.round(s.n / s.s)} instances/s (plain inserts ${Math.round(sb.n / sb.s)}/s), ` +
          `${Math.round(c.n / c.s)} transitions/s${c.n && open.length === 0 && c.s < seconds * 0.9 ? ' (ran out of open tasks)' : ''} (plain updates ${Math.round(cb.n / cb.s)}/s)`,
      );
      open.length = 0;
    }
    const sorted = latencies.sort((a, b) => a - b);
    const instances = median(results.starts);
    const instancesBase = median(results.startBase);
    const transitions = median(results.transitions);
    const updates = median(results.updateBase);
    const { rows: counts } = await db.query<{ instances: number; completed: number; events: number }>(
      `select (select count(*)::int from workflow.instance) as instances, (select count(*)::int from workflow.instance where status = 'completed') as completed, (select count(*)::int from workflow.event) as events`,
    );
    opts.log(`  ${counts[0]!.instances} instances (${counts[0]!.completed} completed), ${counts[0]!.events} history events; transition latency p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99 ${percentile(sorted, 0.99).toFixed(2)} ms`);
    return {
      instances_per_s: round(instances),
      instances_baseline_per_s: round(instancesBase),
      instances_ratio: round(instances / instancesBase),
      transitions_per_s: round(transitions),
      transition_p50_ms: round(percentile(sorted, 0.5)),
      transition_p99_ms: round(percentile(sorted, 0.99)),
      baseline_updates_per_s: round(updates),
      transition_ratio: round(transitions / updates),
    };
  } finally {
    await bench.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
