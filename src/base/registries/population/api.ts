// The population registry's native API (internal face): reads for departments (granted items only,
// masked, audited, with purpose), as of a past date; finding a person by name and birth date;
// source departments' records in; the steward's queues (conflicts, rejected, unlinked) and
// disputes (数据异议) answered by the source department on the workflow engine.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { appendAudit } from '../../audit/index.ts';
import { auditActorOf } from '../../identity/index.ts';
import { allow, type Actor } from '../../identity/policy.ts';
import { canWorkOn, completeTask, startInstance, type Engine } from '../../workflow/index.ts';
import { registerServiceHandler } from '../../workflow/handlers.ts';
import { answerDispute, decideUnlinked, FusionError, getConflict, ingest, listConflicts, loadRegistry, markDisputed, resolveConflict, sourceRecords, type CompiledRegistry } from '../fusion/index.ts';
import { isSteward, maskValue, populationAccess, populationRegistry, PopulationError, projectPersons, readPerson } from './registry.ts';

export const DISPUTE_PROCESS = 'population.dispute';
const deptOf = (a: Actor) => (a.kind === 'staff' || a.kind === 'system' ? a.department : '');
const steward = (a: Actor) => isSteward(a);

export const populationPolicy = [
  // reads: any government staff member or system; what they see is decided per read by the catalog
  allow('staff', 'read', 'population-person'),
  allow('system', 'read', 'population-person'),
  // a source department's systems send their records (the registry checks the department per source)
  allow('system', 'submit', 'population-source'),
  allow({ role: 'registry-steward' }, 'submit', 'population-source'),
  // the steward's queues
  allow({ role: 'registry-steward' }, ['read', 'resolve'], 'population-steward'),
  allow({ role: 'platform-admin' }, ['read', 'resolve'], 'population-steward'),
  allow({ role: 'security-officer' }, 'read', 'population-steward'),
  // the source department answers a dispute through its task
  allow('staff', 'answer', 'population-dispute'),
].flat();

function sendError(err: unknown): never {
  if (err instanceof PopulationError || err instanceof FusionError) throw problem(err.code === 'validation' ? 'validation' : err.code, err.message);
  throw err;
}

const IdNumber = Type.String({ pattern: '^[0-9]{17}[0-9Xx]$' });
const Purpose = Type.String({ minLength: 2, maxLength: 200, description: 'why the data is read (shown to the citizen in their data-access log)' });
export const MAX_RECORDS_PER_REQUEST = 5000;

// the service handler runs in a job, outside any request: it needs the profile the module started with
const disputeContext: { profileDir: string | null; departments: ModuleContext['profile']['departments'] } = { profileDir: null, departments: [] };

registerServiceHandler('population.apply-dispute-answer', async (input, call) => {
  const { profileDir, departments } = disputeContext;
  if (!profileDir) throw new Error('the population module has not started');
  const reg = loadRegistry(profileDir, 'population', departments);
  const id = Number(input.conflictId);
  const outcome = input.outcome === 'correct' ? 'correct' : 'confirm';
  await call.db.tx((q) =>
    answerDispute(q, reg, id, outcome === 'correct' ? { outcome: 'correct', value: input.value, source: String(input.source) } : { outcome: 'confirm' }, String(input.answeredBy ?? 'workflow')),
  );
});

export function populationApi(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  const TAGS = ['population'];
  const reg = (): CompiledRegistry => populationRegistry(ctx);
  disputeContext.profileDir = ctx.config.profileDir;
  disputeContext.departments = ctx.profile.departments;

  app.get(
    '/api/v1/population/persons/:idNumber',
    {
      schema: {
        tags: TAGS,
        summary: 'One person from the population registry: the items your department is granted (masked where the grant says so), with provenance; ?asOf= for the record as known then. Every read is audited with its purpose',
        params: Type.Object({ idNumber: IdNumber }),
        querystring: Type.Object({ purpose: Purpose, asOf: Type.Optional(Type.String({ format: 'date-time' })) }, { additionalProperties: false }),
      },
      config: { action: 'population-person:read' },
    },
    async (req: FastifyRequest) => {
      const { idNumber } = req.params as { idNumber: string };
      const { purpose, asOf } = req.query as { purpose: string; asOf?: string };
      try {
        return await readPerson(ctx, reg(), req.actor, idNumber.toUpperCase(), { purpose, ...(asOf ? { asOf: new Date(asOf) } : {}), requestId: req.id, ip: req.ip });
      } catch (err) {
        return sendError(err);
      }
    },
  );

  app.get(
    '/api/v1/population/persons',
    {
      schema: {
        tags: TAGS,
        summary: 'Find people by name and date of birth (both required): matches show as your grant allows; audited',
        querystring: Type.Object({ name: Type.String({ minLength: 1, maxLength: 50 }), birthDate: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), purpose: Purpose }, { additionalProperties: false }),
      },
      config: { action: 'population-person:read' },
    },
    async (req) => {
      const { name, birthDate, purpose } = req.query as { name: string; birthDate: string; purpose: string };
      const access = await populationAccess(ctx.db, reg(), req.actor);
      if (!access || !access.fields.includes('name')) throw problem('forbidden', 'your department has no access to the population registry (no catalog grant)');
      const { rows } = await ctx.db.query<{ key: string }>(
        `select key from fusion.golden where registry = 'population' and record->'name'->>'v' = $1 and record->'birthDate'->>'v' = $2 order by key limit 20`,
        [name.trim(), birthDate],
      );
      await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.person.search', resource: { type: 'person-search', id: `${maskValue(name, 'name')}/${birthDate}` }, purpose, outcome: 'ok', requestId: req.id, details: { matches: rows.length } });
      const items = [];
      for (const r of rows) items.push(await readPerson(ctx, reg(), req.actor, r.key, { purpose, requestId: req.id, ip: req.ip }));
      return { total: items.length, items };
    },
  );

  app.get(
    '/api/v1/population/persons/:idNumber/history',
    { schema: { tags: TAGS, summary: 'Every source record behind a person, oldest first (stewards)', params: Type.Object({ idNumber: IdNumber }), querystring: Type.Object({ purpose: Purpose }, { additionalProperties: false }) }, config: { action: 'population-steward:read' } },
    async (req) => {
      const { idNumber } = req.params as { idNumber: string };
      const { purpose } = req.query as { purpose: string };
      const items = await sourceRecords(ctx.db, reg(), idNumber.toUpperCase());
      await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.person.history', resource: { type: 'person', id: maskValue(idNumber, 'id') as string }, subject: idNumber.toUpperCase(), purpose, outcome: 'ok', requestId: req.id });
      if (!items.length) throw problem('not-found', `no person ${maskValue(idNumber, 'id')}`);
      return { items: items.map((r) => ({ ...r, observedAt: r.observedAt.toISOString(), receivedAt: r.receivedAt.toISOString() })) };
    },
  );

  app.post(
    '/api/v1/population/sources/:source/records',
    {
      schema: {
        tags: TAGS,
        summary: `A source department sends records in its own shape (the registry's declared mapping turns them into canonical fields): at most ${MAX_RECORDS_PER_REQUEST} a request, all or nothing. Rejected records come back with the reason`,
        params: Type.Object({ source: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }) }),
        body: Type.Object({ records: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_RECORDS_PER_REQUEST }) }, { additionalProperties: false }),
      },
      bodyLimit: 20 * 1024 * 1024,
      config: { action: 'population-source:submit' },
    },
    async (req) => {
      const { source } = req.params as { source: string };
      const src = reg().sources.get(source);
      if (!src) throw problem('not-found', `no source ${source} in the population registry`);
      if (!steward(req.actor) && deptOf(req.actor) !== src.department) throw problem('forbidden', `source ${source} is ${src.department}'s`);
      const { records } = req.body as { records: unknown[] };
      const r = await ingest(ctx.db, reg(), source, records, { project: projectPersons });
      await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.source.submit', resource: { type: 'population-source', id: source }, outcome: 'ok', requestId: req.id, details: { accepted: r.accepted, rejected: r.rejected.length, created: r.created, updated: r.updated } });
      return r;
    },
  );

  app.get(
    '/api/v1/population/conflicts',
    {
      schema: {
        tags: TAGS,
        summary: 'The steward queue: fields on which two sources disagree',
        querystring: Type.Object({ status: Type.Optional(Type.Enum(['open', 'kept', 'replaced', 'disputed', 'corrected'])), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })), offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) }, { additionalProperties: false }),
      },
      config: { action: 'population-steward:read' },
    },
    async (req) => {
      const f = req.query as { status?: 'open'; limit?: number; offset?: number };
      const r = await listConflicts(ctx.db, 'population', f);
      return { total: r.total, items: r.items.map((c) => ({ ...c, createdAt: c.createdAt.toISOString(), resolvedAt: c.resolvedAt?.toISOString() ?? null })) };
    },
  );

  app.post(
    '/api/v1/population/conflicts/:id/resolve',
    {
      schema: {
        tags: TAGS,
        summary: 'keep the surviving value, replace it with the other source\'s, or dispute (数据异议) one source\'s value with its department (a task with a deadline)',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        body: Type.Object({ decision: Type.Enum(['keep', 'replace', 'dispute']), against: Type.Optional(Type.Enum(['winner', 'challenger'])), note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
      },
      config: { action: 'population-steward:resolve' },
    },
    async (req) => {
      const id = Number((req.params as { id: number }).id);
      const b = req.body as { decision: 'keep' | 'replace' | 'dispute'; against?: 'winner' | 'challenger'; note?: string };
      const who = auditActorOf(req.actor).id;
      try {
        if (b.decision !== 'dispute') {
          const c = await ctx.db.tx((q) => resolveConflict(q, reg(), id, b.decision as 'keep' | 'replace', who, b.note ?? null));
          await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: `population.conflict.${b.decision}`, resource: { type: 'population-conflict', id: String(id) }, subject: c.key, outcome: 'ok', requestId: req.id });
          return c;
        }
        const c = await getConflict(ctx.db, 'population', id);
        if (!c) throw problem('not-found', `no conflict ${id}`);
        if (c.status !== 'open') throw problem('conflict', `conflict ${id} is ${c.status}`);
        const side = b.against === 'challenger' ? c.challenger : c.winner;
        const src = reg().sources.get(side.s);
        if (!src) throw problem('conflict', `the ${b.against ?? 'winner'}'s value comes from ${side.s}, not a source department`);
        const step = await startInstance(
          engine(),
          { key: DISPUTE_PROCESS, businessKey: `conflict:${id}`, department: src.department, idempotencyKey: `population-dispute:${id}`, variables: { conflictId: id, department: src.department, source: src.id, field: c.field, value: side.v, recordId: side.r, note: b.note ?? null } },
          req.actor,
        );
        await ctx.db.tx((q) => markDisputed(q, 'population', id, step.instanceId, who, b.note ?? null));
        await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.conflict.dispute', resource: { type: 'population-conflict', id: String(id) }, subject: c.key, outcome: 'ok', requestId: req.id, details: { department: src.department, instance: step.instanceId } });
        return (await getConflict(ctx.db, 'population', id))!;
      } catch (err) {
        return sendError(err);
      }
    },
  );

  app.post(
    '/api/v1/population/conflicts/:id/answer',
    {
      schema: {
        tags: TAGS,
        summary: 'The source department answers a dispute: confirm its value, or correct it (value). Completes the dispute task; the answer is applied a moment later',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        body: Type.Object({ outcome: Type.Enum(['confirm', 'correct']), value: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Number(), Type.Boolean()])) }, { additionalProperties: false }),
      },
      config: { action: 'population-dispute:answer' },
    },
    async (req, reply) => {
      const id = Number((req.params as { id: number }).id);
      const b = req.body as { outcome: 'confirm' | 'correct'; value?: unknown };
      const c = await getConflict(ctx.db, 'population', id);
      if (!c || !c.disputeInstance) throw problem('not-found', `no dispute ${id}`);
      if (c.status !== 'disputed') throw problem('conflict', `conflict ${id} is ${c.status}`);
      if (b.outcome === 'correct' && (b.value === undefined || b.value === '')) throw problem('validation', 'value: the corrected value');
      const { rows } = await ctx.db.query<{ id: string; department: string | null; role: string | null; person: string | null; escalated_to: string | null }>(
        `select id, department, role, person, escalated_to from workflow.task where instance_id = $1 and status = 'open' order by created_at limit 1`,
        [c.disputeInstance],
      );
      const t = rows[0];
      if (!t || !canWorkOn(req.actor, { department: t.department, role: t.role, person: t.person, escalatedTo: t.escalated_to } as Parameters<typeof canWorkOn>[1])) throw problem('forbidden', `the dispute of conflict ${id} is for its source department`);
      if (b.outcome === 'correct') {
        const def = reg().def.fields[c.field]!;
        if (def.type === 'enum' && !def.values!.includes(String(b.value))) throw problem('validation', `value: one of ${def.values!.join(', ')}`);
      }
      await completeTask(engine(), { taskId: t.id, outcome: b.outcome, variables: { correctedValue: b.outcome === 'correct' ? (b.value as string) : null, answeredBy: auditActorOf(req.actor).id } }, req.actor);
      reply.code(202);
      return { accepted: true, conflict: id };
    },
  );

  app.post(
    '/api/v1/population/unlinked/:id/decide',
    {
      schema: {
        tags: TAGS,
        summary: 'A clerk decides a record waiting for review: the person it belongs to (key), or none of the candidates (null). The decision is remembered for the pairs',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        body: Type.Object({ key: Type.Union([IdNumber, Type.Null()]), note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
      },
      config: { action: 'population-steward:resolve' },
    },
    async (req) => {
      const id = Number((req.params as { id: number }).id);
      const { key } = req.body as { key: string | null };
      try {
        const r = await ctx.db.tx((q) => decideUnlinked(q, reg(), id, key ? key.toUpperCase() : null, auditActorOf(req.actor).id, { project: projectPersons }));
        await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.unlinked.decide', resource: { type: 'population-unlinked', id: String(id) }, ...(r.key ? { subject: r.key } : {}), outcome: 'ok', requestId: req.id, details: { status: r.status } });
        return r;
      } catch (err) {
        return sendError(err);
      }
    },
  );

  app.get(
    '/api/v1/population/rejected',
    { schema: { tags: TAGS, summary: 'Records refused at intake, with the reason (newest first)', querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }) }, config: { action: 'population-steward:read' } },
    async (req) => {
      const { limit } = req.query as { limit?: number };
      const { rows } = await ctx.db.query(`select id::int as id, source, record_id as "recordId", reason, at from fusion.rejected where registry = 'population' order by id desc limit $1`, [limit ?? 20]);
      return { items: rows };
    },
  );

  app.get(
    '/api/v1/population/unlinked',
    { schema: { tags: TAGS, summary: 'Records without an ID number waiting to be linked (newest first)', querystring: Type.Object({ status: Type.Optional(Type.Enum(['pending', 'review', 'linked', 'new', 'rejected'])), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }) }, config: { action: 'population-steward:read' } },
    async (req) => {
      const { status, limit } = req.query as { status?: string; limit?: number };
      const { rows } = await ctx.db.query(
        `select id::int as id, source, record_id as "recordId", observed_at as "observedAt", status, candidates, linked_key as "linkedKey", received_at as "receivedAt" from fusion.unlinked where registry = 'population' and ($1::text is null or status = $1) order by id desc limit $2`,
        [status ?? null, limit ?? 20],
      );
      return { items: rows };
    },
  );
}
