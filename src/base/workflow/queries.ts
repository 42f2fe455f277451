// What people read from the engine: a staff member's inbox, instances and their whole history, and
// the measurements of every process and step (count, median and p90 duration, overdue rate).
import type { Queryable } from '../../db/index.ts';
import type { Actor } from '../identity/policy.ts';
import type { Text } from '../../http/i18n.ts';
import { TASK_COLUMNS, type TaskRow } from './engine.ts';

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  perPage: number;
}

/**
 * The inbox (待办): open tasks assigned to this person by name, or to their department with no role
 * or a role they hold there (or city-wide), or escalated there to a role they hold. Oldest due first.
 */
export async function inbox(q: Queryable, actor: Actor, opts: { page?: number; perPage?: number; key?: string; overdueOnly?: boolean } = {}): Promise<Page<TaskRow>> {
  if (actor.kind !== 'staff') return { items: [], total: 0, page: 1, perPage: opts.perPage ?? 20 };
  const roles = actor.roles.filter((g) => g.scope === null || g.scope === actor.department).map((g) => g.role);
  const perPage = Math.min(Math.max(opts.perPage ?? 20, 1), 100);
  const page = Math.max(opts.page ?? 1, 1);
  const where = `t.status = 'open'
     and ((t.person = $1) or (t.person is null and t.department = $2 and (t.role is null or t.role = any($3::text[]) or t.escalated_to = any($3::text[]))))
     and ($4::text is null or t.key = $4) and (not $5 or t.due_at < now())`;
  const params = [actor.accountId, actor.department, roles, opts.key ?? null, opts.overdueOnly ?? false];
  const [items, total] = await Promise.all([
    q.query<TaskRow>(`select ${TASK_COLUMNS} from workflow.task t join workflow.instance i on i.id = t.instance_id where ${where} order by t.due_at nulls last, t.created_at limit $6 offset $7`, [...params, perPage, (page - 1) * perPage]),
    q.query<{ n: number }>(`select count(*)::int as n from workflow.task t where ${where}`, params),
  ]);
  return { items: items.rows, total: total.rows[0]!.n, page, perPage };
}

export interface InstanceSummary {
  id: string;
  key: string;
  version: number;
  name: Text;
  businessKey: string | null;
  status: 'running' | 'completed' | 'terminated';
  department: string | null;
  startedBy: string;
  startedAt: Date;
  endedAt: Date | null;
  incident: string | null;
}

const INSTANCE_COLUMNS = `i.id, i.key, i.version, d.name, i.business_key as "businessKey", i.status, i.department, i.started_by as "startedBy",
  i.started_at as "startedAt", i.ended_at as "endedAt", i.incident`;

export async function listInstances(
  q: Queryable,
  f: { key?: string; status?: string; department?: string | null; businessKey?: string; page?: number; perPage?: number } = {},
): Promise<Page<InstanceSummary>> {
  const perPage = Math.min(Math.max(f.perPage ?? 20, 1), 100);
  const page = Math.max(f.page ?? 1, 1);
  const where = `($1::text is null or i.key = $1) and ($2::text is null or i.status = $2) and ($3::text is null or i.department = $3) and ($4::text is null or i.business_key = $4)`;
  const params = [f.key ?? null, f.status ?? null, f.department ?? null, f.businessKey ?? null];
  const [items, total] = await Promise.all([
    q.query<InstanceSummary>(`select ${INSTANCE_COLUMNS} from workflow.instance i join workflow.definition d on d.id = i.definition_id where ${where} order by i.started_at desc, i.id limit $5 offset $6`, [...params, perPage, (page - 1) * perPage]),
    q.query<{ n: number }>(`select count(*)::int as n from workflow.instance i where ${where}`, params),
  ]);
  return { items: items.rows, total: total.rows[0]!.n, page, perPage };
}

export interface HistoryEvent {
  id: number;
  at: Date;
  kind: string;
  nodeId: string | null;
  taskId: string | null;
  actor: string | null;
  details: Record<string, unknown> | null;
}

export interface InstanceDetail extends InstanceSummary {
  variables: Record<string, unknown>;
  tasks: TaskRow[];
  history: HistoryEvent[];
}

export async function instanceDetail(q: Queryable, id: string): Promise<InstanceDetail | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  const { rows } = await q.query<InstanceSummary & { variables: Record<string, unknown> }>(`select ${INSTANCE_COLUMNS}, i.variables from workflow.instance i join workflow.definition d on d.id = i.definition_id where i.id = $1`, [id]);
  if (!rows[0]) return null;
  const [tasks, history] = await Promise.all([
    q.query<TaskRow>(`select ${TASK_COLUMNS} from workflow.task t join workflow.instance i on i.id = t.instance_id where t.instance_id = $1 order by t.created_at, t.countersign_index nulls first`, [id]),
    q.query<HistoryEvent>(`select id::int, at, kind, node_id as "nodeId", task_id as "taskId", actor, details from workflow.event where instance_id = $1 order by id limit 5000`, [id]),
  ]);
  return { ...rows[0], tasks: tasks.rows, history: history.rows };
}

export interface StepMetrics {
  nodeId: string;
  name: Text;
  tasks: number;
  completed: number;
  open: number;
  medianMinutes: number | null;
  p90Minutes: number | null;
  /** completed after the deadline, or open past it, over those with a deadline */
  overdueRate: number | null;
}

export interface ProcessMetrics {
  key: string;
  name: Text;
  instances: number;
  running: number;
  completed: number;
  medianMinutes: number | null;
  p90Minutes: number | null;
  overdueRate: number | null;
  steps: StepMetrics[];
}

const minutes = (col: string, p: number, filter: string) => `(percentile_cont(${p}) within group (order by extract(epoch from ${col}) / 60) filter (where ${filter}))::float8`;

/** 流程效能: per definition and per step. `since` limits to instances started from then. */
export async function processMetrics(q: Queryable, opts: { key?: string; since?: Date } = {}): Promise<ProcessMetrics[]> {
  const since = opts.since ?? new Date(0);
  const key = opts.key ?? null;
  const [procs, steps, overdue] = await Promise.all([
    q.query<Omit<ProcessMetrics, 'steps' | 'overdueRate' | 'name'>>(
      `select i.key, count(*)::int as instances, count(*) filter (where i.status = 'running')::int as running,
              count(*) filter (where i.status = 'completed')::int as completed,
              ${minutes('i.ended_at - i.started_at', 0.5, "i.status = 'completed'")} as "medianMinutes",
              ${minutes('i.ended_at - i.started_at', 0.9, "i.status = 'completed'")} as "p90Minutes"
         from workflow.instance i where i.started_at >= $1 and ($2::text is null or i.key = $2) group by i.key order by i.key`,
      [since, key],
    ),
    q.query<Omit<StepMetrics, 'name'> & { key: string }>(
      `select t.key, t.node_id as "nodeId", count(*)::int as tasks, count(*) filter (where t.status = 'completed')::int as completed,
              count(*) filter (where t.status = 'open')::int as open,
              ${minutes('t.completed_at - t.created_at', 0.5, "t.status = 'completed'")} as "medianMinutes",
              ${minutes('t.completed_at - t.created_at', 0.9, "t.status = 'completed'")} as "p90Minutes",
              (count(*) filter (where t.due_at is not null and ((t.status = 'completed' and t.completed_at > t.due_at) or (t.status = 'open' and now() > t.due_at)))::float8
                 / nullif(count(*) filter (where t.due_at is not null and t.status <> 'cancelled'), 0)) as "overdueRate"
         from workflow.task t join workflow.instance i on i.id = t.instance_id
        where i.started_at >= $1 and ($2::text is null or t.key = $2) group by t.key, t.node_id order by t.key, min(t.created_at)`,
      [since, key],
    ),
    q.query<{ key: string; rate: number | null }>(
      `select t.key, (count(distinct t.instance_id) filter (where (t.status = 'completed' and t.completed_at > t.due_at) or (t.status = 'open' and now() > t.due_at)))::float8
                / nullif(count(distinct t.instance_id) filter (where t.due_at is not null), 0) as rate
         from workflow.task t join workflow.instance i on i.id = t.instance_id
        where i.started_at >= $1 and ($2::text is null or t.key = $2) and t.status <> 'cancelled' group by t.key`,
      [since, key],
    ),
  ]);
  const names = await q.query<{ key: string; name: Text; model: { nodes: { id: string; name?: Text }[] } }>(
    `select distinct on (key) key, name, model from workflow.definition where ($1::text is null or key = $1) order by key, version desc`,
    [key],
  );
  const byKey = new Map(names.rows.map((r) => [r.key, r]));
  const overdueBy = new Map(overdue.rows.map((r) => [r.key, r.rate]));
  return procs.rows.map((p) => {
    const def = byKey.get(p.key);
    const nodeName = (id: string): Text => def?.model.nodes.find((n) => n.id === id)?.name ?? { zh: id, en: id };
    return {
      ...p,
      name: def?.name ?? { zh: p.key, en: p.key },
      overdueRate: overdueBy.get(p.key) ?? null,
      steps: steps.rows.filter((s) => s.key === p.key).map(({ key: _k, ...s }) => ({ ...s, name: nodeName(s.nodeId) })),
    };
  });
}
