// The catalog's JSON API on the internal face (政务网): entries, categories, search with facets,
// freshness, sharing agreements (request, decide, revoke, withdraw) and the access decision.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { allow, hasRole, type Actor } from '../identity/policy.ts';
import { canWorkOn, completeTask, terminateInstance, type Engine } from '../workflow/index.ts';
import { appendAudit } from '../audit/index.ts';
import { auditActorOf } from '../identity/index.ts';
import { checkEntryInput, SHARE_TYPES, UPDATE_CYCLES, CATALOG_KINDS, type Category } from './model.ts';
import { CatalogError, freshness, getEntry, listCategories, saveEntry, searchEntries, withdrawEntry, MAX_PAGE, type Entry } from './store.ts';
import { accessFor, getAgreement, listAgreements, requestAgreement, revokeAgreement, withdrawAgreement, AGREEMENT_STATUSES, type Agreement } from './agreements.ts';
import { startReview } from './review.ts';

const deptOf = (a: Actor) => (a.kind === 'staff' || a.kind === 'system' ? a.department : '');
const involved = (a: Actor, ag: Pick<Agreement, 'consumer' | 'provider'>) => deptOf(a) !== '' && (deptOf(a) === ag.consumer || deptOf(a) === ag.provider);

export const catalogPolicy = [
  // the public catalog (公共信息资源目录) is for everyone; the rest of the catalog is for government
  allow('anyone', 'read', 'catalog-entry', (a: Actor, e: Pick<Entry, 'open'>) => e.open.open || a.kind === 'staff' || a.kind === 'system'),
  allow({ role: 'catalog-admin' }, ['define', 'withdraw'], 'catalog-entry'),
  allow({ role: 'platform-admin' }, ['define', 'withdraw'], 'catalog-entry'),
  allow('staff', 'read', 'catalog-freshness'),
  allow('system', 'read', 'catalog-access'),
  allow('staff', 'read', 'catalog-access'),
  // agreements: a department asks for itself; the two departments and the overseers read them
  allow('staff', 'request', 'sharing-agreement', (a: Actor, r: { consumer: string }) => deptOf(a) === r.consumer),
  allow('system', 'request', 'sharing-agreement', (a: Actor, r: { consumer: string }) => deptOf(a) === r.consumer),
  allow('staff', 'read', 'sharing-agreement', (a: Actor, ag: Agreement) => involved(a, ag) || hasRole(a, 'catalog-admin') || hasRole(a, 'security-officer') || hasRole(a, 'platform-admin')),
  allow('system', 'read', 'sharing-agreement', involved),
  // the decision is the provider's review task: whoever may work on that task decides
  allow('staff', 'decide', 'sharing-agreement'),
  allow({ role: 'department-lead' }, 'revoke', 'sharing-agreement', (a: Actor, ag: Agreement) => hasRole(a, 'department-lead', ag.provider)),
  allow({ role: 'catalog-admin' }, 'revoke', 'sharing-agreement'),
  allow('staff', 'withdraw', 'sharing-agreement', (a: Actor, ag: Agreement) => deptOf(a) === ag.consumer),
].flat();

export function sendCatalogError(err: unknown): never {
  if (err instanceof CatalogError) throw problem(err.code, err.message, err.problems.length ? { errors: err.problems } : {});
  throw err;
}

const TAGS = ['catalog'];
const Code = { cls: Type.String({ pattern: '^[1-3][0-9]{5}([0-9]{2})?$' }), seq: Type.String({ pattern: '^[0-9]{6}$' }) };
const Uuid = Type.String({ pattern: '^[0-9a-fA-F-]{36}$' });
const Dept = Type.String({ pattern: '^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$', maxLength: 40 });
export const SearchQuerystring = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 200 })),
    view: Type.Optional(Type.Enum(['public', 'exchange', 'all'])),
    provider: Type.Optional(Dept),
    classification: Type.Optional(Type.String({ pattern: '^[1-3][0-9]{0,7}$' })),
    shareType: Type.Optional(Type.Enum([...SHARE_TYPES])),
    updateCycle: Type.Optional(Type.Enum([...UPDATE_CYCLES])),
    kind: Type.Optional(Type.Enum([...CATALOG_KINDS])),
    sort: Type.Optional(Type.Enum(['relevance', 'name', 'code', 'published', 'updated'])),
    limit: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PAGE })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);

export function entryJson(e: Entry) {
  return { ...e, createdAt: e.createdAt.toISOString(), updatedAt: e.updatedAt.toISOString() };
}
export function agreementJson(a: Agreement) {
  return { ...a, decidedAt: a.decidedAt?.toISOString() ?? null, requestedAt: a.requestedAt.toISOString(), revokedAt: a.revokedAt?.toISOString() ?? null };
}

/** The entry a route names, or 404 (also for an entry the actor may not see, so its existence does not leak). */
export async function readableEntry(ctx: ModuleContext, actor: Actor, code: string): Promise<Entry> {
  const e = await getEntry(ctx.db, code);
  if (!e || !ctx.policy.can(actor, 'catalog-entry:read', e)) throw problem('not-found', `no catalog entry ${code}`);
  return e;
}

async function readableAgreement(ctx: ModuleContext, actor: Actor, id: string): Promise<Agreement> {
  const a = await getAgreement(ctx.db, id);
  if (!a || !ctx.policy.can(actor, 'sharing-agreement:read', a)) throw problem('not-found', `no agreement ${id}`);
  return a;
}

/** Applies the provider's decision by completing the review task (the process's service task records it). */
export async function decideThroughTask(ctx: ModuleContext, engine: Engine, actor: Actor, a: Agreement, body: { outcome: string; items?: string[]; note?: string }) {
  if (a.status !== 'requested') throw problem('conflict', `agreement ${a.id} is ${a.status}: it has been decided`);
  if (!['approve', 'narrow', 'refuse'].includes(body.outcome)) throw problem('validation', 'outcome: approve, narrow or refuse');
  if (body.outcome === 'narrow') {
    const items = body.items ?? [];
    const extra = items.filter((f) => !a.itemsRequested.includes(f));
    if (items.length === 0) throw problem('validation', 'items: keep at least one requested item, or refuse');
    if (extra.length) throw problem('validation', `items: ${extra.slice(0, 5).join(', ')} were not requested`);
    if (items.length >= a.itemsRequested.length) throw problem('validation', 'items: narrowing keeps fewer items than requested (or approve)');
  }
  if (!a.processInstance) throw problem('conflict', 'the review has not started yet: try again in a moment');
  const { rows } = await ctx.db.query<{ id: string; department: string | null; role: string | null; person: string | null; escalated_to: string | null }>(
    `select id, department, role, person, escalated_to from workflow.task where instance_id = $1 and status = 'open' order by created_at limit 1`,
    [a.processInstance],
  );
  const t = rows[0];
  if (!t) throw problem('conflict', 'the review task is not open');
  if (!canWorkOn(actor, { department: t.department, role: t.role, person: t.person, escalatedTo: t.escalated_to } as Parameters<typeof canWorkOn>[1])) {
    throw problem('forbidden', `the review of agreement ${a.id} is for ${a.provider}`);
  }
  const who = actor.kind === 'staff' ? actor.accountId : actor.kind === 'system' ? actor.id : 'unknown';
  await completeTask(engine, { taskId: t.id, outcome: body.outcome, variables: { grantedItems: body.outcome === 'narrow' ? body.items! : null, decisionNote: body.note ?? null, decidedBy: who }, comment: body.note }, actor);
}

export function catalogApi(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  app.get('/api/v1/catalog/categories', { schema: { tags: TAGS, summary: 'The classification (类/项/目/细目)' }, config: { action: 'catalog-entry:read' } }, async () => {
    return { items: await listCategories(ctx.db) satisfies Category[] };
  });

  app.get(
    '/api/v1/catalog/entries',
    { schema: { tags: TAGS, summary: 'Search the catalog (Chinese names, abstracts and items; tolerant of a missing or extra character) with facets. Anonymous callers see the public catalog only', querystring: SearchQuerystring }, config: { action: 'catalog-entry:read' } },
    async (req: FastifyRequest<{ Querystring: Record<string, string | number | undefined> }>) => {
      const qs = req.query as Parameters<typeof searchEntries>[1];
      const staff = req.actor.kind === 'staff' || req.actor.kind === 'system';
      const r = await searchEntries(ctx.db, { ...qs, view: staff ? (qs.view ?? 'all') : 'public' });
      return { total: r.total, limit: qs.limit ?? 20, offset: qs.offset ?? 0, items: r.items.map((e) => ({ ...entryJson(e), score: e.score })), facets: r.facets };
    },
  );

  app.get('/api/v1/catalog/entries/:cls/:seq', { schema: { tags: TAGS, summary: 'One catalog entry by its resource code (classification/sequence)', params: Type.Object(Code) }, config: { action: 'catalog-entry:read' } }, async (req) => {
    const { cls, seq } = req.params as { cls: string; seq: string };
    return entryJson(await readableEntry(ctx, req.actor, `${cls}/${seq}`));
  });

  app.put(
    '/api/v1/catalog/entries/:cls/:seq',
    { schema: { tags: TAGS, summary: 'Create or update an entry (catalog administrators). The same content again changes nothing', params: Type.Object(Code), body: Type.Unknown() }, config: { action: 'catalog-entry:define' } },
    async (req, reply) => {
      const { cls, seq } = req.params as { cls: string; seq: string };
      const body = req.body as Record<string, unknown> | null;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw problem('validation', 'expected an entry object');
      const code = `${cls}/${seq}`;
      if (body.code !== undefined && body.code !== code) throw problem('validation', `code: the body says ${String(body.code).slice(0, 20)}, the path ${code}`);
      const cats = new Map((await listCategories(ctx.db)).map((c) => [c.code, c]));
      const checked = checkEntryInput({ ...body, code }, cats, new Set(ctx.profile.departments.map((d) => d.code)));
      if (!checked.ok) throw problem('validation', checked.problems[0], { errors: checked.problems });
      const existed = await getEntry(ctx.db, code);
      try {
        const r = await ctx.db.tx(async (q) => {
          const saved = await saveEntry(q, checked.entry);
          if (saved.changed) {
            await appendAudit(q, { actor: auditActorOf(req.actor), action: existed ? 'catalog.entry.update' : 'catalog.entry.create', resource: { type: 'catalog-entry', id: code }, outcome: 'ok', details: { version: saved.entry.version } });
          }
          return saved;
        });
        reply.code(existed ? 200 : 201).header('location', `/api/v1/catalog/entries/${code}`);
        return entryJson(r.entry);
      } catch (err) {
        return sendCatalogError(err);
      }
    },
  );

  app.post('/api/v1/catalog/entries/:cls/:seq/withdraw', { schema: { tags: TAGS, summary: 'Withdraw an entry: it stays for the record (status withdrawn), and agreements on it are no longer honoured', params: Type.Object(Code) }, config: { action: 'catalog-entry:withdraw' } }, async (req, reply) => {
    const { cls, seq } = req.params as { cls: string; seq: string };
    const code = `${cls}/${seq}`;
    const done = await ctx.db.tx(async (q) => {
      const ok = await withdrawEntry(q, code);
      if (ok) {
        await appendAudit(q, { actor: auditActorOf(req.actor), action: 'catalog.entry.withdraw', resource: { type: 'catalog-entry', id: code }, outcome: 'ok' });
      }
      return ok;
    });
    if (!done) throw problem('not-found', `no active catalog entry ${code}`);
    return reply.code(204).send();
  });

  app.get(
    '/api/v1/catalog/freshness',
    { schema: { tags: TAGS, summary: 'Whether data arrived within each entry\'s update cycle (late first)', querystring: Type.Object({ department: Type.Optional(Dept), late: Type.Optional(Type.Boolean()) }, { additionalProperties: false }) }, config: { action: 'catalog-freshness:read' } },
    async (req) => {
      const { department, late } = req.query as { department?: string; late?: boolean };
      const items = await freshness(ctx.db, { department, lateOnly: late });
      return { total: items.length, late: items.filter((f) => f.late).length, items: items.map((f) => ({ ...f, lastArrival: f.lastArrival?.toISOString() ?? null, dueAt: f.dueAt?.toISOString() ?? null })) };
    },
  );

  app.get(
    '/api/v1/catalog/access',
    { schema: { tags: TAGS, summary: 'What a department may receive of an entry today (items, agreement, until), or 403 with the reason', querystring: Type.Object({ entry: Type.String({ maxLength: 20 }), consumer: Dept }, { additionalProperties: false }) }, config: { action: 'catalog-access:read' } },
    async (req) => {
      const { entry, consumer } = req.query as { entry: string; consumer: string };
      const e = await getEntry(ctx.db, entry);
      if (!e) throw problem('not-found', `no catalog entry ${entry}`);
      const g = await accessFor(ctx.db, e, consumer);
      if (!g) throw problem('forbidden', `${consumer} has no access to ${e.code} ${e.name} (${e.share.type === 'none' ? '不予共享' : '需共享协议 / needs an approved agreement'})`, { reason: 'not-entitled' });
      return g;
    },
  );

  app.get(
    '/api/v1/catalog/agreements',
    {
      schema: {
        tags: TAGS,
        summary: 'Sharing agreements of the caller\'s department (as consumer or provider); all of them for catalog administrators and security officers',
        querystring: Type.Object(
          { entry: Type.Optional(Type.String({ maxLength: 20 })), status: Type.Optional(Type.Enum([...AGREEMENT_STATUSES])), basis: Type.Optional(Type.Enum(['open', 'agreement'])), department: Type.Optional(Dept), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })), offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) },
          { additionalProperties: false },
        ),
      },
      config: { action: 'sharing-agreement:read' },
    },
    async (req) => {
      const f = req.query as Parameters<typeof listAgreements>[1];
      const all = hasRole(req.actor, 'catalog-admin') || hasRole(req.actor, 'security-officer') || hasRole(req.actor, 'platform-admin');
      const r = await listAgreements(ctx.db, { ...f, department: all ? f?.department : deptOf(req.actor) });
      return { total: r.total, items: r.items.map(agreementJson) };
    },
  );

  app.post(
    '/api/v1/catalog/agreements',
    {
      schema: {
        tags: TAGS,
        summary: 'Ask for a 有条件共享 entry: purpose, legal basis, the items needed and a term. The provider reviews it on the workflow engine',
        body: Type.Object(
          {
            entry: Type.String({ maxLength: 20 }),
            consumer: Type.Optional(Dept),
            purpose: Type.String({ maxLength: 2000 }),
            legalBasis: Type.String({ maxLength: 2000 }),
            items: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 500 }),
            termStart: Type.String({ maxLength: 10 }),
            termEnd: Type.String({ maxLength: 10 }),
          },
          { additionalProperties: false },
        ),
      },
      config: { action: 'sharing-agreement:request' },
    },
    async (req, reply) => {
      const b = req.body as { entry: string; consumer?: string; purpose: string; legalBasis: string; items: string[]; termStart: string; termEnd: string };
      const consumer = b.consumer ?? deptOf(req.actor);
      ctx.policy.authorize(req.actor, 'sharing-agreement:request', { consumer });
      const e = await getEntry(ctx.db, b.entry);
      if (!e || !ctx.policy.can(req.actor, 'catalog-entry:read', e)) throw problem('not-found', `no catalog entry ${b.entry}`);
      try {
        const a = await ctx.db.tx((q) => requestAgreement(q, { ...b, consumer }, req.actor));
        const started = await startReview(ctx, engine(), a);
        reply.code(201).header('location', `/api/v1/catalog/agreements/${a.id}`);
        return agreementJson(started);
      } catch (err) {
        return sendCatalogError(err);
      }
    },
  );

  app.get('/api/v1/catalog/agreements/:id', { schema: { tags: TAGS, summary: 'One agreement', params: Type.Object({ id: Uuid }) }, config: { action: 'sharing-agreement:read' } }, async (req) => {
    return agreementJson(await readableAgreement(ctx, req.actor, (req.params as { id: string }).id));
  });

  app.post(
    '/api/v1/catalog/agreements/:id/decision',
    {
      schema: {
        tags: TAGS,
        summary: 'The provider decides: approve, narrow (fewer items) or refuse. Completes the review task; the agreement follows a moment later',
        params: Type.Object({ id: Uuid }),
        body: Type.Object({ outcome: Type.Enum(['approve', 'narrow', 'refuse']), items: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 500 })), note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
      },
      config: { action: 'sharing-agreement:decide' },
    },
    async (req, reply) => {
      const a = await readableAgreement(ctx, req.actor, (req.params as { id: string }).id);
      await decideThroughTask(ctx, engine(), req.actor, a, req.body as { outcome: string; items?: string[]; note?: string });
      reply.code(202);
      return { accepted: true, agreement: a.id, status: 'deciding' };
    },
  );

  app.post(
    '/api/v1/catalog/agreements/:id/revoke',
    { schema: { tags: TAGS, summary: 'End an approved agreement now (the provider\'s lead or a catalog administrator); the next delivery is refused', params: Type.Object({ id: Uuid }), body: Type.Object({ reason: Type.String({ maxLength: 2000 }) }, { additionalProperties: false }) }, config: { action: 'sharing-agreement:revoke' } },
    async (req) => {
      const a = await readableAgreement(ctx, req.actor, (req.params as { id: string }).id);
      ctx.policy.authorize(req.actor, 'sharing-agreement:revoke', a);
      try {
        return agreementJson(await ctx.db.tx((q) => revokeAgreement(q, a.id, (req.body as { reason: string }).reason, req.actor)));
      } catch (err) {
        return sendCatalogError(err);
      }
    },
  );

  app.post('/api/v1/catalog/agreements/:id/withdraw', { schema: { tags: TAGS, summary: 'The consumer withdraws a request under review', params: Type.Object({ id: Uuid }) }, config: { action: 'sharing-agreement:withdraw' } }, async (req) => {
    const a = await readableAgreement(ctx, req.actor, (req.params as { id: string }).id);
    ctx.policy.authorize(req.actor, 'sharing-agreement:withdraw', a);
    try {
      const w = await ctx.db.tx((q) => withdrawAgreement(q, a.id, req.actor));
      if (w.processInstance) {
        await terminateInstance(engine(), w.processInstance, 'request withdrawn', req.actor).catch(() => undefined);
      }
      return agreementJson((await getAgreement(ctx.db, a.id))!);
    } catch (err) {
      return sendCatalogError(err);
    }
  });
}
