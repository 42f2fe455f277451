// The workflow demo (GUSU_DEMO on): a handful of synthetic process instances so that the demo staff
// find tasks in their inboxes and 流程与效能 shows numbers — 企业开办并联审批 for demo enterprises at
// every stage (done quickly, done late, refused, waiting in parallel, overdue and escalated, just
// filed) and 联合发文会签 documents (issued, vetoed, being countersigned, waiting to be issued).
//
// Every command goes through the engine as a person's would (so the history, the audit trail and
// the notices are the engine's own); afterwards the seed moves the rows each command wrote back to
// a made-up time in the last few weeks (working days of the city calendar, office hours), with due
// dates and reminders recomputed from those times, so that durations and overdue rates vary. Every
// such instance says it is synthetic: its business key starts with DEMO- and its variables hold
// synthetic: true. Seeded once per database (setting 'workflow.demo'); several processes starting
// together seed once; a seed cut short is finished by the next start (starts are idempotent).
import type { Db } from '../../db/index.ts';
import { getSetting, setSetting } from '../../db/index.ts';
import type { ModuleContext } from '../../module.ts';
import type { Actor } from '../identity/policy.ts';
import { addDuration, isWorkingDay, remindAt } from './calendar.ts';
import { completeTask, findDefinition, fireTimer, startInstance, type Engine } from './engine.ts';
import type { ProcessModel, UserTaskNode } from './model.ts';

export const DEMO_SETTING = 'workflow.demo';
const LOCK = 'workflow.demo.seed';
/** a claim older than this was left by a process that died: the next start finishes the seed */
const STALE_CLAIM_MS = 10 * 60_000;

interface DemoState {
  status: 'seeding' | 'done';
  at: string;
  instances?: number;
}

/** A time of the demo: `n` working days before today (0: today), at hh:mm in the city (UTC+8). */
type When = [n: number, hhmm: string];

interface Step {
  /** the user task */
  node: string;
  /** for a countersign or parallel step: the department whose task this is */
  department?: string;
  outcome?: string;
  comment?: string;
  at: When;
}

interface Scenario {
  id: string;
  key: string;
  businessKey: string;
  variables: Record<string, unknown>;
  starter: string;
  startAt: When;
  steps: Step[];
}

/** synthetic staff for departments without a demo account (names are invented) */
const SYNTHETIC_STAFF: Record<string, [login: string | null, name: string, role: string]> = {
  'SZ-SCJG': ['demo.registrar', '许登记', 'case-handler'],
  'SZ-SW': [null, '何税务', 'case-handler'],
  'SZ-RS': [null, '罗社保', 'case-handler'],
  'SZ-GA': [null, '马刻章', 'case-handler'],
  'SZ-FGW': [null, '郑发改', 'case-handler'],
  'SZ-CZ': [null, '冯财政', 'case-handler'],
  'SZ-ZJ': ['demo.handler', '周承办', 'case-handler'],
  'SZ-MZ': ['demo.notices', '韩通知', 'case-handler'],
  'SZ-ZFB': ['demo.designer', '杨流程', 'process-designer'],
};

function syntheticId(department: string): string {
  let h = 0;
  for (const c of department) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `00000000-0000-4000-8000-${h.toString(16).padStart(12, '0').slice(-12)}`;
}

async function staffFor(db: Db, department: string): Promise<Actor> {
  const [login, name, role] = SYNTHETIC_STAFF[department] ?? [null, `演示人员（${department}）`, 'case-handler'];
  if (login) {
    try {
      const { rows } = await db.query<{ id: string; name: string }>(`select id, name from identity.account where kind = 'staff' and login = $1 and synthetic`, [login]);
      if (rows[0]) return { kind: 'staff', accountId: rows[0].id, name: rows[0].name, department, post: '科员', roles: [{ role, scope: department }] };
    } catch {
      // no identity schema: an invented member of staff
    }
  }
  return { kind: 'staff', accountId: syntheticId(department), name, department, post: '科员', roles: [{ role, scope: department }] };
}

function scenarios(enterprises: { uscc: string; name: string }[], year: number): Scenario[] {
  const e = (i: number) => enterprises[i % Math.max(1, enterprises.length)] ?? { uscc: `SYN${String(i).padStart(15, '0')}`, name: `演示企业${i + 1}` };
  const estab = (i: number, id: string, startAt: When, steps: Step[]): Scenario => {
    const ent = e(i);
    return { id, key: 'enterprise.establishment', businessKey: `DEMO-${ent.uscc}`, variables: { synthetic: true, uscc: ent.uscc, enterpriseName: ent.name }, starter: 'SZ-SCJG', startAt, steps };
  };
  const doc = (n: number, id: string, title: string, lead: string, startAt: When, steps: Step[]): Scenario => ({
    id,
    key: 'office.document-countersign',
    businessKey: `DEMO-苏府办函〔${year}〕${n}号`,
    variables: { synthetic: true, title, leadDepartment: lead },
    starter: 'SZ-ZFB',
    startAt,
    steps,
  });
  return [
    // 企业开办: done within a day and a half
    estab(0, 'estab-1', [14, '09:30'], [
      { node: 'register', outcome: 'approve', comment: '材料齐全，准予登记。', at: [14, '11:05'] },
      { node: 'seal', at: [14, '16:10'] },
      { node: 'tax', at: [13, '10:20'] },
      { node: 'social', at: [13, '14:40'] },
    ]),
    // done, social insurance a day late
    estab(1, 'estab-2', [12, '09:10'], [
      { node: 'register', outcome: 'approve', at: [11, '15:00'] },
      { node: 'tax', at: [11, '16:30'] },
      { node: 'seal', at: [10, '10:00'] },
      { node: 'social', comment: '系统升级，延迟办理。', at: [9, '11:15'] },
    ]),
    estab(2, 'estab-3', [10, '14:00'], [
      { node: 'register', outcome: 'approve', at: [9, '09:30'] },
      { node: 'tax', at: [9, '11:00'] },
      { node: 'social', at: [9, '15:20'] },
      { node: 'seal', at: [8, '10:30'] },
    ]),
    estab(3, 'estab-4', [8, '10:40'], [
      { node: 'register', outcome: 'approve', at: [8, '15:50'] },
      { node: 'seal', at: [7, '09:40'] },
      { node: 'social', at: [7, '10:10'] },
      { node: 'tax', at: [7, '11:30'] },
    ]),
    // refused at registration
    estab(4, 'estab-5', [6, '10:00'], [{ node: 'register', outcome: 'reject', comment: '经营范围表述不规范，请补正后重新申请。', at: [5, '16:00'] }]),
    // registered; tax done, social insurance and the seal overdue (escalated)
    estab(5, 'estab-6', [4, '09:45'], [
      { node: 'register', outcome: 'approve', at: [4, '11:30'] },
      { node: 'tax', at: [3, '10:00'] },
    ]),
    // waiting at registration: overdue and escalated, due today, just filed
    estab(6, 'estab-7', [3, '10:20'], []),
    estab(7, 'estab-8', [1, '15:30'], []),
    estab(8, 'estab-9', [0, '09:05'], []),
    // 联合发文会签: issued; vetoed and returned; being countersigned; waiting to be issued
    doc(11, 'doc-1', '关于进一步优化营商环境的若干措施（合成演示）', 'SZ-ZJ', [11, '10:00'], [
      { node: 'countersign', department: 'SZ-ZJ', outcome: 'agree', at: [11, '15:00'] },
      { node: 'countersign', department: 'SZ-FGW', outcome: 'agree', at: [10, '10:00'] },
      { node: 'countersign', department: 'SZ-CZ', outcome: 'agree', comment: '资金安排按年度预算执行。', at: [9, '11:00'] },
      { node: 'check', at: [8, '10:00'] },
    ]),
    doc(15, 'doc-2', '关于调整公共停车收费标准的通知（合成演示）', 'SZ-ZJ', [6, '09:30'], [
      { node: 'countersign', department: 'SZ-CZ', outcome: 'agree', at: [6, '14:00'] },
      { node: 'countersign', department: 'SZ-FGW', outcome: 'object', comment: '需先行开展价格听证。', at: [5, '14:00'] },
    ]),
    doc(18, 'doc-3', '关于加强住宅小区物业管理的实施意见（合成演示）', 'SZ-ZJ', [2, '14:00'], [{ node: 'countersign', department: 'SZ-FGW', outcome: 'agree', at: [1, '10:00'] }]),
    doc(21, 'doc-4', '关于做好养老服务补贴发放工作的通知（合成演示）', 'SZ-MZ', [4, '10:00'], [
      { node: 'countersign', department: 'SZ-MZ', outcome: 'agree', at: [4, '11:00'] },
      { node: 'countersign', department: 'SZ-CZ', outcome: 'agree', at: [3, '15:30'] },
      { node: 'countersign', department: 'SZ-FGW', outcome: 'agree', at: [2, '09:50'] },
    ]),
  ];
}

/** Seeds the demo instances once per database; null when another start did (or is doing) it. */
export async function seedDemoWorkflow(ctx: Pick<ModuleContext, 'db' | 'log'>, engine: Engine): Promise<{ instances: number } | null> {
  const db = ctx.db;
  if ((await getSetting<DemoState>(db, DEMO_SETTING))?.status === 'done') return null;
  const claimed = await db.tx(async (c) => {
    await c.query('select pg_advisory_xact_lock(hashtext($1))', [LOCK]);
    const s = await getSetting<DemoState>(c, DEMO_SETTING);
    if (s && (s.status === 'done' || Date.now() - Date.parse(s.at) < STALE_CLAIM_MS)) return false;
    await setSetting(c, DEMO_SETTING, { status: 'seeding', at: new Date().toISOString() } satisfies DemoState);
    return true;
  });
  if (!claimed) return null;

  const t0 = Date.now();
  const cal = engine.calendar;
  const { rows: clock } = await db.query<{ now: Date }>('select clock_timestamp() as now');
  // rows the engine writes from here on carry times from here on: those are the ones moved back
  const seedStart = new Date(clock[0]!.now.getTime() - 1000);
  const latest = new Date(seedStart.getTime() - 60_000);
  const today = new Date(seedStart.getTime() + 8 * 3600_000).toISOString().slice(0, 10);
  const workingDay = (n: number): string => {
    let d = new Date(`${today}T12:00:00+08:00`);
    const back = () => (d = new Date(d.getTime() - 86_400_000));
    while (!isWorkingDay(cal, d)) back();
    for (let i = 0; i < n; i++) {
      back();
      while (!isWorkingDay(cal, d)) back();
    }
    return new Date(d.getTime() + 8 * 3600_000).toISOString().slice(0, 10);
  };
  const time = ([n, hhmm]: When): Date => {
    const t = new Date(`${workingDay(n)}T${hhmm}:00+08:00`);
    return t > latest ? latest : t;
  };

  const { rows: enterprises } = await db.query<{ uscc: string; name: string }>(`select uscc, name from legal_entity.entity where synthetic order by uscc offset 1 limit 12`).catch(() => ({ rows: [] as { uscc: string; name: string }[] }));
  const models = new Map<string, ProcessModel>();
  const actors = new Map<string, Actor>();
  const actor = async (department: string) => {
    let a = actors.get(department);
    if (!a) actors.set(department, (a = await staffFor(db, department)));
    return a;
  };

  /** moves what the last command wrote (times from seedStart on) to `at`, with deadlines counted from `at` */
  async function backdate(instanceId: string, model: ProcessModel, at: Date): Promise<void> {
    await db.tx(async (q) => {
      const args = [instanceId, at, seedStart];
      await q.query(`update workflow.instance set started_at = case when started_at >= $3::timestamptz then $2::timestamptz else started_at end, ended_at = case when ended_at >= $3::timestamptz then $2::timestamptz else ended_at end where id = $1`, args);
      await q.query(`update workflow.event set at = $2::timestamptz where instance_id = $1 and at >= $3::timestamptz`, args);
      await q.query(`update workflow.token set created_at = case when created_at >= $3::timestamptz then $2::timestamptz else created_at end, ended_at = case when ended_at >= $3::timestamptz then $2::timestamptz else ended_at end where instance_id = $1 and (created_at >= $3::timestamptz or ended_at >= $3::timestamptz)`, args);
      await q.query(
        `update workflow.task set completed_at = case when completed_at >= $3::timestamptz then $2::timestamptz else completed_at end, reminded_at = case when reminded_at >= $3::timestamptz then $2::timestamptz else reminded_at end,
                escalated_at = case when escalated_at >= $3::timestamptz then $2::timestamptz else escalated_at end
          where instance_id = $1 and (completed_at >= $3::timestamptz or reminded_at >= $3::timestamptz or escalated_at >= $3::timestamptz)`,
        args,
      );
      const fresh = await q.query<{ id: string; node_id: string }>(`select id, node_id from workflow.task where instance_id = $1 and created_at >= $2::timestamptz`, [instanceId, seedStart]);
      for (const t of fresh.rows) {
        const node = model.nodes.find((n): n is UserTaskNode => n.id === t.node_id && n.type === 'userTask');
        const due = node?.deadline ? addDuration(cal, at, node.deadline) : null;
        const remind = due && node?.remindBefore ? remindAt(cal, due, node.remindBefore) : null;
        await q.query(`update workflow.task set created_at = $2, due_at = $3, remind_at = $4 where id = $1`, [t.id, at, due, remind]);
        if (due) await q.query(`update workflow.event set details = jsonb_set(details, '{dueAt}', to_jsonb($2::text)) where task_id = $1 and kind = 'task.created'`, [t.id, due.toISOString()]);
        // the engine's timers follow the task's (synthetic) times; past ones are fired below
        if (remind) await q.query(`update platform.job set run_at = $2 where unique_key = $1 and status = 'queued'`, [`wf:reminder:${t.id}`, remind]);
        if (due) await q.query(`update platform.job set run_at = $2 where unique_key = $1 and status = 'queued'`, [`wf:escalation:${t.id}`, due]);
      }
    });
  }

  let seeded = 0;
  for (const sc of scenarios(enterprises, Number(today.slice(0, 4)))) {
    const def = await findDefinition(db, sc.key);
    if (!def) continue; // another city profile without this process
    let model = models.get(def.id);
    if (!model) {
      model = (await db.query<{ model: ProcessModel }>('select model from workflow.definition where id = $1', [def.id])).rows[0]!.model;
      models.set(def.id, model);
    }
    try {
      const started = await startInstance(engine, { key: sc.key, businessKey: sc.businessKey, variables: sc.variables, idempotencyKey: `demo-seed:${sc.id}` }, await actor(sc.starter));
      if (!started.created) continue; // seeded by a start that was cut short
      await backdate(started.instanceId, model, time(sc.startAt));
      for (const step of sc.steps) {
        const { rows } = await db.query<{ id: string; department: string | null }>(
          `select id, department from workflow.task where instance_id = $1 and node_id = $2 and status = 'open' and ($3::text is null or department = $3) order by created_at, countersign_index nulls first limit 1`,
          [started.instanceId, step.node, step.department ?? null],
        );
        const task = rows[0];
        if (!task) throw new Error(`${sc.id}: no open task ${step.node}${step.department ? ` for ${step.department}` : ''}`);
        await completeTask(engine, { taskId: task.id, outcome: step.outcome, comment: step.comment }, await actor(task.department ?? sc.starter));
        await backdate(started.instanceId, model, time(step.at));
      }
      // what the timers would have done by now on the open tasks: reminders, then escalations
      const { rows: open } = await db.query<{ id: string; remind_at: Date | null; due_at: Date | null }>(
        `select id, remind_at, due_at from workflow.task where instance_id = $1 and status = 'open' order by created_at`,
        [started.instanceId],
      );
      for (const t of open) {
        if (t.remind_at && t.remind_at < latest && (await fireTimer(engine, { kind: 'reminder', taskId: t.id })) === 'fired') await backdate(started.instanceId, model, t.remind_at);
        if (t.due_at && t.due_at < latest && (await fireTimer(engine, { kind: 'escalation', taskId: t.id })) === 'fired') await backdate(started.instanceId, model, t.due_at);
      }
      seeded++;
    } catch (err) {
      // a demo that cannot be seeded must not stop the platform: say so, and carry on
      ctx.log.warn({ err: (err as Error).message, scenario: sc.id }, 'workflow demo instance not seeded');
    }
  }
  await setSetting(db, DEMO_SETTING, { status: 'done', at: new Date().toISOString(), instances: seeded } satisfies DemoState);
  if (seeded) ctx.log.info({ instances: seeded, ms: Date.now() - t0 }, 'workflow demo instances seeded (synthetic)');
  return { instances: seeded };
}
