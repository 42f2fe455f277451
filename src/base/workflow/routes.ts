// The workflow engine's JSON API on the internal face (政务网): definitions (JSON or BPMN 2.0 XML),
// instances and their history, the inbox, task completion, and the process measurements.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { allow, hasRole, type Actor } from '../identity/policy.ts';
import { canWorkOn, completeTask, deployDefinition, findDefinition, listDefinitions, startInstance, terminateInstance, WorkflowError, type Engine, type TaskRow } from './engine.ts';
import { ModelError, type ProcessModel } from './model.ts';
import { inbox, instanceDetail, listInstances, processMetrics } from './queries.ts';
import { exportBpmn, importBpmn, BpmnError } from './bpmn.ts';

/** May this person see this instance: its department's staff, staff with a task in it, and overseers. */
export function canReadInstance(actor: Actor, inst: { department: string | null; departments: readonly string[] }): boolean {
  if (actor.kind === 'system') return true;
  if (actor.kind !== 'staff') return false;
  if (hasRole(actor, 'platform-admin') || hasRole(actor, 'security-officer')) return true;
  return inst.department === actor.department || inst.departments.includes(actor.department);
}

export const workflowPolicy = [
  // definitions and measurements are open to all staff (流程公开); deploying is the owner's
  allow('staff', 'read', 'process-definition'),
  allow('staff', 'read', 'process-metrics'),
  allow({ role: 'platform-admin' }, 'deploy', 'process-definition'),
  allow({ role: 'process-designer' }, 'deploy', 'process-definition', (a: Actor, def: { owner: string }) => a.kind === 'staff' && hasRole(a, 'process-designer', def.owner)),
  // instances: any staff member starts one for their department; reading follows involvement
  allow('staff', 'start', 'process-instance'),
  allow('system', 'start', 'process-instance'),
  allow('staff', 'read', 'process-instance', canReadInstance),
  allow({ role: 'platform-admin' }, 'terminate', 'process-instance'),
  // tasks: one's inbox; completing a task that is one's own or one's department's (with the role)
  allow('staff', 'read', 'inbox'),
  allow('staff', 'complete', 'task', (a: Actor, t: TaskRow) => canWorkOn(a, t)),
].flat();

export function sendWorkflowError(err: unknown): never {
  if (err instanceof ModelError || err instanceof BpmnError) throw problem('validation', err.message, { errors: err.problems.slice(0, 50) });
  if (err instanceof WorkflowError) throw problem(err.code === 'invalid' ? 'validation' : err.code, err.message);
  throw err;
}

const Uuid = Type.String({ pattern: '^[0-9a-fA-F-]{36}$' });
const Key = Type.String({ pattern: '^[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)*$', maxLength: 100 });
const PageQuery = { page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })), perPage: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) };
const Variables = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { description: 'process variables (at most 64 KB as JSON)' });
const StepOut = Type.Object({ instanceId: Type.String(), status: Type.String(), transitions: Type.Integer(), openTasks: Type.Array(Type.String()) });

export async function readableInstance(ctx: ModuleContext, req: FastifyRequest, id: string) {
  const d = await instanceDetail(ctx.db, id);
  if (!d) throw problem('not-found', `no process instance ${id}`);
  ctx.policy.authorize(req.actor, 'process-instance:read', { department: d.department, departments: d.tasks.map((t) => t.department).filter((x): x is string => !!x) });
  return d;
}

export function workflowApi(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  const TAGS = ['workflow'];
  // BPMN 2.0 XML arrives as text; the importer refuses anything over 1 MB or with a DOCTYPE
  if (!app.hasContentTypeParser('application/xml')) {
    app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
  }

  app.get('/api/v1/workflow/definitions', { schema: { tags: TAGS, summary: 'The latest version of every process definition' }, config: { action: 'process-definition:read' } }, async () => {
    const items = await listDefinitions(ctx.db);
    return { items: items.map((d) => ({ key: d.key, version: d.version, versions: d.versions, name: d.name, owner: d.owner, running: d.running, deployedAt: d.deployedAt.toISOString(), source: d.source })) };
  });

  app.get(
    '/api/v1/workflow/definitions/:key',
    { schema: { tags: TAGS, summary: 'One process definition (latest, or ?version=n) as JSON, or as BPMN 2.0 XML with Accept: application/xml or ?format=bpmn', params: Type.Object({ key: Key }), querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })), format: Type.Optional(Type.Enum(['json', 'bpmn'])) }) }, config: { action: 'process-definition:read' } },
    async (req: FastifyRequest<{ Params: { key: string }; Querystring: { version?: number; format?: 'json' | 'bpmn' } }>, reply: FastifyReply) => {
      const def = await findDefinition(ctx.db, req.params.key, req.query.version);
      if (!def) throw problem('not-found', `no process definition ${req.params.key}${req.query.version ? ` version ${req.query.version}` : ''}`);
      const { rows } = await ctx.db.query<{ model: ProcessModel }>('select model from workflow.definition where id = $1', [def.id]);
      const wantsXml = req.query.format === 'bpmn' || (!req.query.format && /application\/xml|text\/xml/.test(req.headers.accept ?? ''));
      if (wantsXml) {
        reply.header('content-disposition', `attachment; filename="${def.key}-v${def.version}.bpmn"`);
        return reply.type('application/xml; charset=utf-8').send(await exportBpmn(rows[0]!.model));
      }
      return { key: def.key, version: def.version, checksum: def.checksum, source: def.source, deployedAt: def.deployedAt.toISOString(), deployedBy: def.deployedBy, model: rows[0]!.model };
    },
  );

  app.post(
    '/api/v1/workflow/definitions',
    {
      schema: {
        tags: TAGS,
        summary: 'Deploy a process definition: a JSON model, or BPMN 2.0 XML (Content-Type: application/xml). The same model again is a no-op (200); a changed one becomes the next version (201)',
        body: Type.Unknown(),
      },
      config: { action: 'process-definition:deploy' },
    },
    async (req, reply) => {
      const xml = typeof req.body === 'string';
      let model: unknown = req.body;
      try {
        if (xml) model = await importBpmn(req.body as string);
        const owner = (model as { owner?: unknown })?.owner;
        ctx.policy.authorize(req.actor, 'process-definition:deploy', { owner: typeof owner === 'string' ? owner : '' });
        const { definition, created } = await deployDefinition(engine(), model, req.actor, xml ? 'bpmn' : 'json');
        reply.code(created ? 201 : 200).header('location', `/api/v1/workflow/definitions/${definition.key}?version=${definition.version}`);
        return { key: definition.key, version: definition.version, checksum: definition.checksum, created };
      } catch (err) {
        return sendWorkflowError(err);
      }
    },
  );

  app.post(
    '/api/v1/workflow/instances',
    {
      schema: {
        tags: TAGS,
        summary: 'Start a process instance (Idempotency-Key header or idempotencyKey: a retry returns the first instance)',
        body: Type.Object(
          {
            key: Key,
            version: Type.Optional(Type.Integer({ minimum: 1 })),
            businessKey: Type.Optional(Type.String({ maxLength: 200 })),
            variables: Type.Optional(Variables),
            idempotencyKey: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: StepOut, 201: StepOut },
      },
      config: { action: 'process-instance:start' },
    },
    async (req, reply) => {
      const b = req.body as { key: string; version?: number; businessKey?: string; variables?: Record<string, unknown>; idempotencyKey?: string };
      const header = req.headers['idempotency-key'];
      try {
        const r = await startInstance(engine(), { ...b, idempotencyKey: b.idempotencyKey ?? (typeof header === 'string' ? header : undefined) }, req.actor);
        reply.code(r.created ? 201 : 200).header('location', `/api/v1/workflow/instances/${r.instanceId}`);
        return { instanceId: r.instanceId, status: r.status, transitions: r.transitions, openTasks: r.openTasks };
      } catch (err) {
        return sendWorkflowError(err);
      }
    },
  );

  app.get(
    '/api/v1/workflow/instances',
    {
      schema: {
        tags: TAGS,
        summary: 'Process instances of the caller’s department (all departments for platform administrators), newest first',
        querystring: Type.Object({ key: Type.Optional(Key), status: Type.Optional(Type.Enum(['running', 'completed', 'terminated'])), businessKey: Type.Optional(Type.String({ maxLength: 200 })), ...PageQuery }),
      },
      config: { action: 'process-instance:read' },
    },
    async (req) => {
      const a = req.actor;
      const q = req.query as { key?: string; status?: string; businessKey?: string; page?: number; perPage?: number };
      const all = a.kind === 'system' || (a.kind === 'staff' && (hasRole(a, 'platform-admin') || hasRole(a, 'security-officer')));
      const r = await listInstances(ctx.db, { ...q, department: all ? null : a.kind === 'staff' ? a.department : '-' });
      return { ...r, items: r.items.map((i) => ({ ...i, startedAt: i.startedAt.toISOString(), endedAt: i.endedAt?.toISOString() ?? null })) };
    },
  );

  app.get(
    '/api/v1/workflow/instances/:id',
    { schema: { tags: TAGS, summary: 'One instance: variables, tasks, and its whole history', params: Type.Object({ id: Uuid }) }, config: { action: 'process-instance:read' } },
    async (req) => readableInstance(ctx, req, (req.params as { id: string }).id),
  );

  app.post(
    '/api/v1/workflow/instances/:id/terminate',
    { schema: { tags: TAGS, summary: 'End a running instance, cancelling its open tasks', params: Type.Object({ id: Uuid }), body: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }) }, config: { action: 'process-instance:terminate' } },
    async (req) => {
      try {
        await terminateInstance(engine(), (req.params as { id: string }).id, (req.body as { reason: string }).reason, req.actor);
        return { terminated: true };
      } catch (err) {
        return sendWorkflowError(err);
      }
    },
  );

  app.get(
    '/api/v1/workflow/tasks',
    { schema: { tags: TAGS, summary: 'The caller’s inbox (待办): open tasks for them, or their department and roles; soonest due first', querystring: Type.Object({ key: Type.Optional(Key), overdue: Type.Optional(Type.Boolean()), ...PageQuery }) }, config: { action: 'inbox:read' } },
    async (req) => {
      const q = req.query as { key?: string; overdue?: boolean; page?: number; perPage?: number };
      const r = await inbox(ctx.db, req.actor, { key: q.key, overdueOnly: q.overdue, page: q.page, perPage: q.perPage });
      return { ...r, items: r.items.map(taskJson) };
    },
  );

  app.post(
    '/api/v1/workflow/tasks/:id/complete',
    {
      schema: {
        tags: TAGS,
        summary: 'Complete a task with an outcome (approve, reject, ...). Repeating the same completion is answered as done',
        params: Type.Object({ id: Uuid }),
        body: Type.Object({ outcome: Type.Optional(Type.String({ maxLength: 32 })), comment: Type.Optional(Type.String({ maxLength: 2000 })), variables: Type.Optional(Variables) }, { additionalProperties: false }),
        response: { 200: Type.Intersect([StepOut, Type.Object({ already: Type.Boolean() })]) },
      },
      config: { action: 'task:complete' },
    },
    async (req) => {
      const b = req.body as { outcome?: string; comment?: string; variables?: Record<string, unknown> };
      try {
        const r = await completeTask(engine(), { taskId: (req.params as { id: string }).id, ...b }, req.actor, { authorize: (t) => ctx.policy.authorize(req.actor, 'task:complete', t) });
        return r;
      } catch (err) {
        return sendWorkflowError(err);
      }
    },
  );

  app.get(
    '/api/v1/workflow/metrics',
    { schema: { tags: TAGS, summary: '流程效能: per process and per step, count, median and p90 duration (minutes), overdue rate', querystring: Type.Object({ key: Type.Optional(Key), since: Type.Optional(Type.String({ format: 'date' })) }) }, config: { action: 'process-metrics:read' } },
    async (req) => {
      const q = req.query as { key?: string; since?: string };
      return { items: await processMetrics(ctx.db, { key: q.key, since: q.since ? new Date(`${q.since}T00:00:00+08:00`) : undefined }) };
    },
  );
}

export function taskJson(t: TaskRow) {
  return {
    ...t,
    createdAt: t.createdAt.toISOString(),
    dueAt: t.dueAt?.toISOString() ?? null,
    remindedAt: t.remindedAt?.toISOString() ?? null,
    escalatedAt: t.escalatedAt?.toISOString() ?? null,
    completedAt: t.completedAt?.toISOString() ?? null,
    overdue: t.status === 'open' && !!t.dueAt && t.dueAt.getTime() < Date.now(),
  };
}
