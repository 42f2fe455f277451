// The one process engine (业务协同). Every command — start an instance, complete a task, fire a
// timer, finish a service task — is one PostgreSQL transaction that locks the instance, moves its
// tokens as far as they go (through gateways, to the next wait state) and commits: a kill -9 at any
// point leaves either the state before the command or the state after it. Timers and service tasks
// are jobs on the platform's one queue (at least once); their handlers check that the token they
// were made for is still where it was, so running one twice changes nothing.
import { createHash } from 'node:crypto';
import type { Db, Queryable } from '../../db/index.ts';
import { enqueue } from '../../db/index.ts';
import { appendAudit } from '../audit/index.ts';
import { auditActorOf } from '../identity/index.ts';
import type { Actor } from '../identity/policy.ts';
import type { Text } from '../../http/i18n.ts';
import { addDuration, remindAt, type WorkingCalendar } from './calendar.ts';
import { serviceHandler, serviceHandlerNames } from './handlers.ts';
import { condition, evaluate } from './expr.ts';
import { compileModel, validateModel, variableRef, type Assignee, type CompiledModel, type ProcessModel, type UserTaskNode, type ValidationContext } from './model.ts';

export const TIMER_JOB = 'workflow.timer';
export const SERVICE_JOB = 'workflow.service';
const MAX_VARIABLES_BYTES = 64 * 1024;
const MAX_STEPS_PER_COMMAND = 10_000;

/** An error a caller made (unknown definition, task already done, bad outcome): HTTP maps `code`. */
export class WorkflowError extends Error {
  constructor(
    readonly code: 'not-found' | 'conflict' | 'invalid' | 'forbidden',
    message: string,
  ) {
    super(message);
  }
}

export { registerServiceHandler, serviceHandlerNames, type ServiceHandler } from './handlers.ts';

/** Who gets told about a task: the engine calls this inside its transaction (a notice is queued, not sent). */
export interface TaskNotice {
  kind: 'assigned' | 'reminder' | 'escalated';
  task: { id: string; name: Text; instanceId: string; key: string; department: string | null; role: string | null; person: string | null; dueAt: Date | null; escalatedTo: string | null };
}
export type Notifier = (q: Queryable, notice: TaskNotice) => Promise<void>;

export interface Engine {
  db: Db;
  calendar: WorkingCalendar;
  validation: Omit<ValidationContext, 'handlers' | 'parseCondition'>;
  notify: Notifier | null;
  /** compiled definitions by id (immutable once deployed) */
  cache: Map<string, CompiledModel>;
}

export function createEngine(db: Db, opts: { calendar: WorkingCalendar; departments: ReadonlySet<string>; roles: ReadonlySet<string>; notify?: Notifier | null }): Engine {
  return { db, calendar: opts.calendar, validation: { departments: opts.departments, roles: opts.roles }, notify: opts.notify ?? null, cache: new Map() };
}

export function validationContext(engine: Engine): ValidationContext {
  return { ...engine.validation, handlers: serviceHandlerNames(), parseCondition: condition };
}

function actorId(a: Actor): string {
  switch (a.kind) {
    case 'anonymous':
      return 'anonymous';
    case 'system':
      return `system:${a.id}`;
    default:
      return `${a.kind}:${a.accountId}`;
  }
}

function checkVariables(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new WorkflowError('invalid', `${what}: expected an object of variables`);
  // PostgreSQL text and jsonb cannot hold U+0000: refused here as the caller's error, not a 500
  let nul = false;
  const size = Buffer.byteLength(JSON.stringify(v, (k: string, x: unknown) => ((k.includes('\u0000') || (typeof x === 'string' && x.includes('\u0000'))) && (nul = true), x)));
  if (nul) throw new WorkflowError('invalid', `${what}: text may not contain U+0000 (NUL)`);
  if (size > MAX_VARIABLES_BYTES) throw new WorkflowError('invalid', `${what}: ${size} bytes of variables, at most ${MAX_VARIABLES_BYTES}`);
  for (const k of Object.keys(v)) if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(k)) throw new WorkflowError('invalid', `${what}: variable name ${JSON.stringify(k.slice(0, 70))} is not allowed`);
  return v as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Definitions

export interface DefinitionRow {
  id: string;
  key: string;
  version: number;
  name: Text;
  owner: string;
  checksum: string;
  source: 'json' | 'bpmn';
  deployedAt: Date;
  deployedBy: string;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * Validates and deploys a model as the next version of its key. Deploying the model the latest
 * version already has changes nothing and returns that version (`created: false`).
 */
export async function deployDefinition(engine: Engine, input: unknown, by: Actor, source: 'json' | 'bpmn' = 'json'): Promise<{ definition: DefinitionRow; created: boolean }> {
  const model = validateModel(input, validationContext(engine));
  const checksum = createHash('sha256').update(canonical(model)).digest('hex');
  return engine.db.tx(async (client) => {
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`workflow.definition:${model.key}`]);
    const latest = await client.query<{ version: number; checksum: string; id: string }>('select id, version, checksum from workflow.definition where key = $1 order by version desc limit 1', [model.key]);
    if (latest.rows[0]?.checksum === checksum) return { definition: (await getDefinition(client, latest.rows[0].id))!, created: false };
    const version = (latest.rows[0]?.version ?? 0) + 1;
    const { rows } = await client.query<{ id: string }>(
      'insert into workflow.definition (key, version, name, owner, model, checksum, source, deployed_by) values ($1, $2, $3, $4, $5, $6, $7, $8) returning id',
      [model.key, version, JSON.stringify(model.name), model.owner, JSON.stringify(model), checksum, source, actorId(by)],
    );
    await appendAudit(client, { actor: auditActorOf(by, 'workflow'), action: 'workflow.definition.deploy', resource: { type: 'process-definition', id: `${model.key}@${version}` }, outcome: 'ok', details: { source, checksum } });
    return { definition: (await getDefinition(client, rows[0]!.id))!, created: true };
  });
}

const DEF_COLUMNS = `id, key, version, name, owner, checksum, source, deployed_at as "deployedAt", deployed_by as "deployedBy"`;

export async function getDefinition(q: Queryable, id: string): Promise<DefinitionRow | null> {
  const { rows } = await q.query<DefinitionRow>(`select ${DEF_COLUMNS} from workflow.definition where id = $1`, [id]);
  return rows[0] ?? null;
}

export async function findDefinition(q: Queryable, key: string, version?: number): Promise<DefinitionRow | null> {
  const { rows } = version
    ? await q.query<DefinitionRow>(`select ${DEF_COLUMNS} from workflow.definition where key = $1 and version = $2`, [key, version])
    : await q.query<DefinitionRow>(`select ${DEF_COLUMNS} from workflow.definition where key = $1 order by version desc limit 1`, [key]);
  return rows[0] ?? null;
}

export async function definitionModel(engine: Engine, q: Queryable, definitionId: string): Promise<CompiledModel> {
  let c = engine.cache.get(definitionId);
  if (!c) {
    const { rows } = await q.query<{ model: ProcessModel }>('select model from workflow.definition where id = $1', [definitionId]);
    if (!rows[0]) throw new WorkflowError('not-found', `no process definition ${definitionId}`);
    c = compileModel(rows[0].model);
    engine.cache.set(definitionId, c);
  }
  return c;
}

export async function listDefinitions(q: Queryable): Promise<(DefinitionRow & { versions: number; running: number })[]> {
  const { rows } = await q.query<DefinitionRow & { versions: number; running: number }>(
    `select ${DEF_COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')}, v.versions, coalesce(r.running, 0)::int as running
       from (select key, max(version) as version, count(*)::int as versions from workflow.definition group by key) v
       join workflow.definition d on d.key = v.key and d.version = v.version
       left join (select key, count(*) as running from workflow.instance where status = 'running' group by key) r on r.key = d.key
      order by d.key`,
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Running

interface InstanceRow {
  id: string;
  definition_id: string;
  key: string;
  version: number;
  business_key: string | null;
  status: 'running' | 'completed' | 'terminated';
  variables: Record<string, unknown>;
  department: string | null;
}

/** What one command did, for the caller (and the benchmark's transition count). */
export interface Step {
  instanceId: string;
  status: InstanceRow['status'];
  transitions: number;
  openTasks: string[];
}

interface Run {
  engine: Engine;
  q: Queryable;
  inst: InstanceRow;
  model: CompiledModel;
  actor: string;
  transitions: number;
  now: Date;
  changedVariables: boolean;
}

function newRun(engine: Engine, q: Queryable, inst: InstanceRow, model: CompiledModel, actor: Actor): Run {
  return { engine, q, inst, model, actor: actorId(actor), transitions: 0, now: new Date(), changedVariables: false };
}

async function event(r: Run, kind: string, nodeId: string | null, details?: Record<string, unknown>, taskId?: string): Promise<void> {
  await r.q.query('insert into workflow.event (instance_id, kind, node_id, task_id, actor, details) values ($1, $2, $3, $4, $5, $6)', [r.inst.id, kind, nodeId, taskId ?? null, r.actor, details ? JSON.stringify(details) : null]);
}

function resolve(value: string | undefined, vars: Record<string, unknown>, what: string): string | null {
  if (value === undefined) return null;
  const ref = variableRef(value);
  if (!ref) return value;
  const v = vars[ref];
  if (typeof v !== 'string' || !v) throw new WorkflowError('invalid', `${what}: variable ${ref} is not set`);
  return v;
}

function resolveAssignee(r: Run, a: Assignee, node: UserTaskNode): { department: string | null; role: string | null; person: string | null } {
  const department = resolve(a.department, r.inst.variables, `${node.id}.assignee.department`);
  if (department && r.engine.validation.departments && !r.engine.validation.departments.has(department)) throw new WorkflowError('invalid', `${node.id}: no department ${department}`);
  return { department, role: a.role ?? null, person: resolve(a.person, r.inst.variables, `${node.id}.assignee.person`) };
}

async function createTasks(r: Run, tokenId: number, node: UserTaskNode): Promise<void> {
  const assignees = node.countersign ? node.countersign.assignees : [node.assignee!];
  const due = node.deadline ? addDuration(r.engine.calendar, r.now, node.deadline) : null;
  const remind = due && node.remindBefore ? remindAt(r.engine.calendar, due, node.remindBefore) : null;
  for (const [i, a] of assignees.entries()) {
    const who = resolveAssignee(r, a, node);
    const { rows } = await r.q.query<{ id: string }>(
      `insert into workflow.task (instance_id, token_id, node_id, key, name, department, role, person, countersign_index, due_at, remind_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id`,
      [r.inst.id, tokenId, node.id, r.inst.key, JSON.stringify(node.name), who.department, who.role, who.person, node.countersign ? i : null, due, remind],
    );
    const taskId = rows[0]!.id;
    await event(r, 'task.created', node.id, { ...who, dueAt: due?.toISOString() ?? null }, taskId);
    if (remind && remind > r.now) await enqueue(r.q, TIMER_JOB, { kind: 'reminder', taskId }, { runAt: remind, uniqueKey: `wf:reminder:${taskId}` });
    if (due && node.escalateTo) await enqueue(r.q, TIMER_JOB, { kind: 'escalation', taskId }, { runAt: due, uniqueKey: `wf:escalation:${taskId}` });
    await r.engine.notify?.(r.q, { kind: 'assigned', task: { id: taskId, name: node.name, instanceId: r.inst.id, key: r.inst.key, ...who, dueAt: due, escalatedTo: null } });
  }
  for (const b of r.model.boundaries.get(node.id) ?? []) {
    const at = addDuration(r.engine.calendar, r.now, b.after);
    await enqueue(r.q, TIMER_JOB, { kind: 'boundary', instanceId: r.inst.id, tokenId, boundaryId: b.id }, { runAt: at, uniqueKey: `wf:boundary:${tokenId}:${b.id}` });
  }
}

/** Moves tokens from `arrivals` (token id and the node it has just reached) to their next wait states. */
async function advance(r: Run, arrivals: { tokenId: number | null; nodeId: string }[]): Promise<void> {
  const queue = [...arrivals];
  while (queue.length) {
    if (++r.transitions > MAX_STEPS_PER_COMMAND) throw new Error(`instance ${r.inst.id}: more than ${MAX_STEPS_PER_COMMAND} steps in one command (a loop without a wait state?)`);
    const { tokenId: existing, nodeId } = queue.shift()!;
    if (r.inst.status !== 'running') return;
    const node = r.model.nodes.get(nodeId)!;
    const out = r.model.outgoing.get(nodeId) ?? [];
    const newToken = async (state: 'waiting' | 'done') =>
      (await r.q.query<{ id: number }>(`insert into workflow.token (instance_id, node_id, state, ended_at) values ($1, $2, $3, case when $3 = 'done' then now() end) returning id`, [r.inst.id, nodeId, state])).rows[0]!.id;
    const finish = async (id: number | null) => {
      if (id !== null) await r.q.query(`update workflow.token set state = 'done', ended_at = now() where id = $1`, [id]);
    };
    switch (node.type) {
      case 'start':
      case 'timerBoundary':
        await finish(existing);
        queue.push({ tokenId: null, nodeId: out[0]!.to });
        break;
      case 'end': {
        await finish(existing);
        if (node.terminate) {
          await r.q.query(`update workflow.task set status = 'cancelled' where instance_id = $1 and status = 'open'`, [r.inst.id]);
          await r.q.query(`update workflow.token set state = 'cancelled', ended_at = now() where instance_id = $1 and state = 'waiting'`, [r.inst.id]);
        }
        const live = await r.q.query(`select 1 from workflow.token where instance_id = $1 and state = 'waiting' limit 1`, [r.inst.id]);
        if (!live.rowCount && !queue.length) {
          r.inst.status = 'completed';
          await r.q.query(`update workflow.instance set status = 'completed', ended_at = now() where id = $1`, [r.inst.id]);
          await event(r, 'instance.completed', node.id);
        } else {
          await event(r, 'end.reached', node.id);
        }
        break;
      }
      case 'userTask': {
        const id = existing ?? (await newToken('waiting'));
        await createTasks(r, id, node);
        break;
      }
      case 'serviceTask': {
        const id = existing ?? (await newToken('waiting'));
        await enqueue(r.q, SERVICE_JOB, { instanceId: r.inst.id, tokenId: id }, { uniqueKey: `wf:service:${id}`, maxAttempts: 8 });
        break;
      }
      case 'exclusiveGateway': {
        await finish(existing);
        let taken = out.length === 1 ? out[0] : out.find((f) => !f.isDefault && f.condition !== undefined && evaluate(condition(f.condition), r.inst.variables));
        taken ??= out.find((f) => f.isDefault);
        if (!taken) {
          const msg = `${node.id}: no outgoing flow's condition holds and there is no default flow`;
          throw new WorkflowError('invalid', msg);
        }
        if (out.length > 1) await event(r, 'gateway.taken', node.id, { flow: taken.id });
        queue.push({ tokenId: null, nodeId: taken.to });
        break;
      }
      case 'parallelGateway': {
        const incoming = r.model.incoming.get(nodeId) ?? [];
        if (incoming.length > 1) {
          // join: wait until a token has come in on every incoming flow
          await finish(existing);
          await newToken('waiting');
          const waiting = await r.q.query<{ id: number }>(`select id from workflow.token where instance_id = $1 and node_id = $2 and state = 'waiting' order by id limit $3`, [r.inst.id, nodeId, incoming.length]);
          if (waiting.rows.length < incoming.length) break;
          await r.q.query(`update workflow.token set state = 'done', ended_at = now() where id = any($1::bigint[])`, [waiting.rows.map((w) => w.id)]);
          await event(r, 'gateway.joined', node.id, { tokens: waiting.rows.length });
        } else {
          await finish(existing);
        }
        for (const f of out) queue.push({ tokenId: null, nodeId: f.to });
        break;
      }
    }
  }
}

async function lockInstance(engine: Engine, q: Queryable, instanceId: string): Promise<{ inst: InstanceRow; model: CompiledModel }> {
  const { rows } = await q.query<InstanceRow>('select id, definition_id, key, version, business_key, status, variables, department from workflow.instance where id = $1 for update', [instanceId]);
  if (!rows[0]) throw new WorkflowError('not-found', `no process instance ${instanceId}`);
  return { inst: rows[0], model: await definitionModel(engine, q, rows[0].definition_id) };
}

async function finishRun(r: Run): Promise<Step> {
  if (r.changedVariables) await r.q.query('update workflow.instance set variables = $2 where id = $1', [r.inst.id, JSON.stringify(r.inst.variables)]);
  const open = await r.q.query<{ id: string }>(`select id from workflow.task where instance_id = $1 and status = 'open' order by created_at, countersign_index`, [r.inst.id]);
  return { instanceId: r.inst.id, status: r.inst.status, transitions: r.transitions, openTasks: open.rows.map((t) => t.id) };
}

export interface StartInput {
  key: string;
  version?: number;
  variables?: Record<string, unknown>;
  businessKey?: string;
  /** the department the instance is started for (defaults to the starting staff member's) */
  department?: string;
  /** a retried start with the same key returns the instance the first one created */
  idempotencyKey?: string;
}

export async function startInstance(engine: Engine, input: StartInput, by: Actor): Promise<Step & { created: boolean }> {
  const variables = checkVariables(input.variables, 'variables');
  if (input.businessKey !== undefined && (typeof input.businessKey !== 'string' || input.businessKey.length > 200 || input.businessKey.includes('\u0000'))) throw new WorkflowError('invalid', 'businessKey: at most 200 characters, no U+0000');
  if (input.idempotencyKey !== undefined && (typeof input.idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(input.idempotencyKey))) throw new WorkflowError('invalid', 'idempotencyKey: 1 to 200 visible ASCII characters');
  const def = await findDefinition(engine.db, input.key, input.version);
  if (!def) throw new WorkflowError('not-found', input.version ? `no process definition ${input.key} version ${input.version}` : `no process definition ${input.key}`);
  const department = input.department ?? (by.kind === 'staff' || by.kind === 'system' ? by.department : null);
  return engine.db.tx(async (q) => {
    if (input.idempotencyKey) {
      const prior = await q.query<{ id: string }>('select id from workflow.instance where idempotency_key = $1', [input.idempotencyKey]);
      if (prior.rows[0]) {
        const { inst, model } = await lockInstance(engine, q, prior.rows[0].id);
        return { ...(await finishRun(newRun(engine, q, inst, model, by))), created: false };
      }
    }
    const { rows } = await q.query<InstanceRow>(
      `insert into workflow.instance (definition_id, key, version, business_key, variables, department, started_by, idempotency_key)
       values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (idempotency_key) do nothing
       returning id, definition_id, key, version, business_key, status, variables, department`,
      [def.id, def.key, def.version, input.businessKey ?? null, JSON.stringify(variables), department || null, actorId(by), input.idempotencyKey ?? null],
    );
    if (!rows[0]) throw new WorkflowError('conflict', 'an instance with this idempotency key is being started: retry');
    const r = newRun(engine, q, rows[0], await definitionModel(engine, q, def.id), by);
    await event(r, 'instance.started', r.model.start.id, { version: def.version, businessKey: input.businessKey ?? null });
    await advance(r, [{ tokenId: null, nodeId: r.model.start.id }]);
    const step = await finishRun(r);
    // the audit append last: it holds the chain's head until commit
    await appendAudit(q, { actor: auditActorOf(by, 'workflow'), action: 'workflow.instance.start', resource: { type: 'process-instance', id: r.inst.id }, outcome: 'ok', details: { key: def.key, version: def.version, businessKey: input.businessKey ?? null } });
    return { ...step, created: true };
  });
}

// ---------------------------------------------------------------------------------------------
// Tasks

export interface TaskRow {
  id: string;
  instanceId: string;
  nodeId: string;
  key: string;
  name: Text;
  department: string | null;
  role: string | null;
  person: string | null;
  countersignIndex: number | null;
  status: 'open' | 'completed' | 'cancelled';
  outcome: string | null;
  comment: string | null;
  createdAt: Date;
  dueAt: Date | null;
  remindedAt: Date | null;
  escalatedAt: Date | null;
  escalatedTo: string | null;
  completedAt: Date | null;
  completedBy: string | null;
  completedByName: string | null;
  businessKey: string | null;
  version: number;
}

export const TASK_COLUMNS = `t.id, t.instance_id as "instanceId", t.node_id as "nodeId", t.key, t.name, t.department, t.role, t.person,
  t.countersign_index as "countersignIndex", t.status, t.outcome, t.comment, t.created_at as "createdAt", t.due_at as "dueAt",
  t.reminded_at as "remindedAt", t.escalated_at as "escalatedAt", t.escalated_to as "escalatedTo", t.completed_at as "completedAt",
  t.completed_by as "completedBy", t.completed_by_name as "completedByName", i.business_key as "businessKey", i.version`;

export async function getTask(q: Queryable, id: string): Promise<TaskRow | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  const { rows } = await q.query<TaskRow>(`select ${TASK_COLUMNS} from workflow.task t join workflow.instance i on i.id = t.instance_id where t.id = $1`, [id]);
  return rows[0] ?? null;
}

/**
 * May this person work on this task: it is theirs by name, or it is their department's and they
 * hold the role it asks for (in that department or city-wide), or it was escalated to a role they
 * hold there. Declared in the policy as the condition of task:complete.
 */
export function canWorkOn(actor: Actor, task: Pick<TaskRow, 'department' | 'role' | 'person' | 'escalatedTo'>): boolean {
  if (actor.kind === 'system') return true;
  if (actor.kind !== 'staff') return false;
  if (task.person) return task.person === actor.accountId;
  if (!task.department || task.department !== actor.department) return false;
  const holds = (role: string) => actor.roles.some((g) => g.role === role && (g.scope === null || g.scope === actor.department));
  if (!task.role || holds(task.role)) return true;
  return !!task.escalatedTo && holds(task.escalatedTo);
}

export interface CompleteInput {
  taskId: string;
  outcome?: string;
  variables?: Record<string, unknown>;
  comment?: string;
}

export async function completeTask(engine: Engine, input: CompleteInput, by: Actor, opts: { authorize?: (task: TaskRow) => void } = {}): Promise<Step & { already: boolean }> {
  const variables = checkVariables(input.variables, 'variables');
  if (input.comment !== undefined && (typeof input.comment !== 'string' || input.comment.length > 2000 || input.comment.includes('\u0000'))) throw new WorkflowError('invalid', 'comment: at most 2,000 characters, no U+0000');
  const task0 = await getTask(engine.db, input.taskId);
  if (!task0) throw new WorkflowError('not-found', `no task ${input.taskId}`);
  return engine.db.tx(async (q) => {
    const { inst, model } = await lockInstance(engine, q, task0.instanceId);
    const task = (await getTask(q, input.taskId))!;
    opts.authorize?.(task);
    const node = model.nodes.get(task.nodeId) as UserTaskNode;
    const r = newRun(engine, q, inst, model, by);
    if (task.status === 'completed') {
      // a retry of the same completion is answered as done; a different one is a conflict
      if (task.completedBy === actorId(by) && task.outcome === (input.outcome ?? null)) return { ...(await finishRun(r)), already: true };
      throw new WorkflowError('conflict', `the task was already completed${task.outcome ? ` (${task.outcome})` : ''}`);
    }
    if (task.status === 'cancelled' || inst.status !== 'running') throw new WorkflowError('conflict', 'the task is no longer open');
    const outcomes = node.outcomes ?? [];
    if (outcomes.length && (input.outcome === undefined || !outcomes.includes(input.outcome))) throw new WorkflowError('invalid', `outcome: expected one of ${outcomes.join(', ')}`);
    if (!outcomes.length && input.outcome !== undefined) throw new WorkflowError('invalid', 'this task has no outcomes to choose');
    const name = by.kind === 'staff' ? by.name : by.kind === 'system' ? by.id : null;
    const completedRow = await q.query<{ token_id: string }>(
      `update workflow.task set status = 'completed', outcome = $2, comment = $3, completed_at = now(), completed_by = $4, completed_by_name = $5 where id = $1 returning token_id`,
      [task.id, input.outcome ?? null, input.comment ?? null, actorId(by), name],
    );
    const tokenId = Number(completedRow.rows[0]!.token_id);
    await event(r, 'task.completed', node.id, { outcome: input.outcome ?? null, ...(input.comment ? { comment: input.comment } : {}) }, task.id);
    if (Object.keys(variables).length) {
      Object.assign(inst.variables, variables);
      r.changedVariables = true;
    }
    const outcomeVar = node.outcomeVariable ?? `${node.id}Outcome`;
    let done = true;
    if (node.countersign) {
      const { rows } = await q.query<{ status: string; outcome: string | null }>(`select status, outcome from workflow.task where token_id = $1 and node_id = $2`, [tokenId, node.id]);
      const completed = rows.filter((t) => t.status === 'completed');
      const c = node.countersign;
      const vetoed = c.vetoOutcome !== undefined && completed.some((t) => t.outcome === c.vetoOutcome);
      const need = c.completion === 'all' ? rows.length : c.completion === 'any' ? 1 : c.completion.atLeast;
      done = vetoed || completed.length >= need;
      if (done) {
        const tally: Record<string, number> = {};
        for (const t of completed) if (t.outcome) tally[t.outcome] = (tally[t.outcome] ?? 0) + 1;
        // the aggregate: the veto if one was cast, else the outcome most chose (ties: the earlier in the list)
        const aggregate = vetoed ? c.vetoOutcome! : outcomes.length ? outcomes.reduce((best, o) => ((tally[o] ?? 0) > (tally[best] ?? 0) ? o : best), outcomes[0]!) : null;
        inst.variables[`${node.id}Tally`] = tally;
        if (aggregate) inst.variables[outcomeVar] = aggregate;
        r.changedVariables = true;
        const cancelled = await q.query(`update workflow.task set status = 'cancelled' where token_id = $1 and status = 'open'`, [tokenId]);
        await event(r, 'countersign.done', node.id, { completed: completed.length, of: rows.length, vetoed, outcome: aggregate, cancelled: cancelled.rowCount });
      }
    } else if (input.outcome !== undefined) {
      inst.variables[outcomeVar] = input.outcome;
      r.changedVariables = true;
    }
    if (done) {
      await q.query(`update workflow.token set state = 'done', ended_at = now() where id = $1 and state = 'waiting'`, [tokenId]);
      await advance(r, [{ tokenId: null, nodeId: (r.model.outgoing.get(node.id) ?? [])[0]!.to }]);
    }
    const step = await finishRun(r);
    await appendAudit(q, { actor: auditActorOf(by, 'workflow'), action: 'workflow.task.complete', resource: { type: 'task', id: task.id }, outcome: 'ok', details: { instance: inst.id, key: inst.key, node: node.id, outcome: input.outcome ?? null } });
    return { ...step, already: false };
  });
}

// ---------------------------------------------------------------------------------------------
// Timers and service tasks (job handlers)

export interface TimerPayload {
  kind: 'reminder' | 'escalation' | 'boundary';
  taskId?: string;
  instanceId?: string;
  tokenId?: number;
  boundaryId?: string;
}

function noticeTask(t: TaskRow, escalatedTo: string | null): TaskNotice['task'] {
  return { id: t.id, name: t.name, instanceId: t.instanceId, key: t.key, department: t.department, role: t.role, person: t.person, dueAt: t.dueAt, escalatedTo };
}

export async function fireTimer(engine: Engine, p: TimerPayload): Promise<'fired' | 'stale'> {
  const SYSTEM: Actor = { kind: 'system', id: 'workflow.timer', department: '' };
  if (p.kind === 'reminder' || p.kind === 'escalation') {
    const t0 = p.taskId ? await getTask(engine.db, p.taskId) : null;
    if (!t0 || t0.status !== 'open') return 'stale';
    return engine.db.tx(async (q) => {
      const { inst, model } = await lockInstance(engine, q, t0.instanceId);
      const t = (await getTask(q, t0.id))!;
      const r = newRun(engine, q, inst, model, SYSTEM);
      if (t.status !== 'open') return 'stale';
      const node = model.nodes.get(t.nodeId) as UserTaskNode;
      if (p.kind === 'reminder') {
        if (t.remindedAt) return 'stale';
        await q.query('update workflow.task set reminded_at = now() where id = $1', [t.id]);
        await event(r, 'task.reminded', t.nodeId, { dueAt: t.dueAt }, t.id);
        await engine.notify?.(q, { kind: 'reminder', task: noticeTask(t, null) });
      } else {
        if (t.escalatedAt || !node.escalateTo) return 'stale';
        await q.query('update workflow.task set escalated_at = now(), escalated_to = $2 where id = $1', [t.id, node.escalateTo.role]);
        await event(r, 'task.escalated', t.nodeId, { to: node.escalateTo.role, dueAt: t.dueAt }, t.id);
        await engine.notify?.(q, { kind: 'escalated', task: noticeTask(t, node.escalateTo.role) });
        await appendAudit(q, { actor: auditActorOf(SYSTEM), action: 'workflow.task.escalate', resource: { type: 'task', id: t.id }, outcome: 'ok', details: { to: node.escalateTo.role, department: t.department } });
      }
      return 'fired';
    });
  }
  if (!p.instanceId || p.tokenId === undefined || !p.boundaryId) return 'stale';
  return engine.db.tx(async (q) => {
    const { inst, model } = await lockInstance(engine, q, p.instanceId!);
    const b = model.nodes.get(p.boundaryId!);
    if (inst.status !== 'running' || !b || b.type !== 'timerBoundary') return 'stale';
    const tok = await q.query(`select 1 from workflow.token where id = $1 and state = 'waiting' and node_id = $2`, [p.tokenId, b.attachedTo]);
    if (!tok.rowCount) return 'stale';
    const r = newRun(engine, q, inst, model, SYSTEM);
    await event(r, 'timer.fired', b.id, { interrupting: b.interrupting !== false });
    if (b.interrupting !== false) {
      await q.query(`update workflow.task set status = 'cancelled' where token_id = $1 and status = 'open'`, [p.tokenId]);
      await q.query(`update workflow.token set state = 'cancelled', ended_at = now() where id = $1`, [p.tokenId]);
    }
    await advance(r, [{ tokenId: null, nodeId: b.id }]);
    await finishRun(r);
    return 'fired';
  });
}

/** Runs a service task's handler (outside any transaction), then moves its token on. */
export async function runServiceTask(engine: Engine, p: { instanceId: string; tokenId: number }, attempt: { isLast: boolean }): Promise<'done' | 'stale'> {
  const SYSTEM: Actor = { kind: 'system', id: 'workflow.service', department: '' };
  const { rows } = await engine.db.query<InstanceRow & { node_id: string | null }>(
    `select i.id, i.definition_id, i.key, i.version, i.business_key, i.status, i.variables, i.department, t.node_id
       from workflow.instance i left join workflow.token t on t.id = $2 and t.instance_id = i.id and t.state = 'waiting'
      where i.id = $1`,
    [p.instanceId, p.tokenId],
  );
  const inst0 = rows[0];
  if (!inst0 || inst0.status !== 'running' || !inst0.node_id) return 'stale';
  const model0 = await definitionModel(engine, engine.db, inst0.definition_id);
  const node = model0.nodes.get(inst0.node_id);
  if (!node || node.type !== 'serviceTask') return 'stale';
  const handler = serviceHandler(node.handler);
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node.input ?? {})) {
    const ref = typeof v === 'string' ? variableRef(v) : null;
    input[k] = ref ? (inst0.variables[ref] ?? null) : v;
  }
  let result: Record<string, unknown> | void;
  try {
    if (!handler) throw new Error(`no service handler ${node.handler} is registered in this process`);
    result = await handler(input, { instanceId: inst0.id, businessKey: inst0.business_key, variables: inst0.variables, db: engine.db });
  } catch (err) {
    if (attempt.isLast) {
      await engine.db.tx(async (q) => {
        const { inst, model } = await lockInstance(engine, q, p.instanceId);
        const r = newRun(engine, q, inst, model, SYSTEM);
        await q.query('update workflow.instance set incident = $2 where id = $1', [inst.id, `${node.id}: ${(err as Error).message}`.slice(0, 1000)]);
        await event(r, 'service.failed', node.id, { error: (err as Error).message.slice(0, 500) });
      });
    }
    throw err;
  }
  return engine.db.tx(async (q) => {
    const { inst, model } = await lockInstance(engine, q, p.instanceId);
    const still = await q.query(`select 1 from workflow.token where id = $1 and state = 'waiting' and node_id = $2`, [p.tokenId, node.id]);
    if (inst.status !== 'running' || !still.rowCount) return 'stale';
    const r = newRun(engine, q, inst, model, SYSTEM);
    if (result && typeof result === 'object') {
      Object.assign(inst.variables, checkVariables(result, `${node.id} result`));
      r.changedVariables = true;
    }
    await q.query(`update workflow.token set state = 'done', ended_at = now() where id = $1`, [p.tokenId]);
    await q.query('update workflow.instance set incident = null where id = $1 and incident is not null', [inst.id]);
    await event(r, 'service.completed', node.id, result ? { variables: Object.keys(result) } : undefined);
    await advance(r, [{ tokenId: null, nodeId: model.outgoing.get(node.id)![0]!.to }]);
    await finishRun(r);
    return 'done';
  });
}

/** Ends a running instance (an operator's decision), cancelling its open tasks. */
export async function terminateInstance(engine: Engine, instanceId: string, reason: string, by: Actor): Promise<void> {
  if (typeof reason !== 'string' || !reason.trim() || reason.length > 500 || reason.includes('\u0000')) throw new WorkflowError('invalid', 'reason: 1 to 500 characters, no U+0000');
  await engine.db.tx(async (q) => {
    const { inst, model } = await lockInstance(engine, q, instanceId);
    if (inst.status !== 'running') throw new WorkflowError('conflict', `the instance is already ${inst.status}`);
    const r = newRun(engine, q, inst, model, by);
    await q.query(`update workflow.task set status = 'cancelled' where instance_id = $1 and status = 'open'`, [inst.id]);
    await q.query(`update workflow.token set state = 'cancelled', ended_at = now() where instance_id = $1 and state = 'waiting'`, [inst.id]);
    await q.query(`update workflow.instance set status = 'terminated', ended_at = now() where id = $1`, [inst.id]);
    await event(r, 'instance.terminated', null, { reason });
    await appendAudit(q, { actor: auditActorOf(by, 'workflow'), action: 'workflow.instance.terminate', resource: { type: 'process-instance', id: inst.id }, outcome: 'ok', details: { reason } });
  });
}
