// The exchange node over HTTP (internal face, 政务网). Three kinds of caller:
//   members  — department systems, authenticated by their request signature (auth.ts), not by a session;
//   nodes    — peers, the same way with X-Gusu-Node (federation);
//   staff    — exchange operators, by session or bearer token, for registration and operations.
// Every refusal is problem+json with `reason`, and is recorded in exchange.refusal.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { problem, type ProblemName } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { allow, hasRole, type Actor } from '../identity/policy.ts';
import { bodyDigest, readSignedHeaders, UNSIGNED_PAYLOAD, verifyRequestSignature } from './auth.ts';
import { ack, kickPush, nack, pull } from './delivery.ts';
import { exchangeCounts, listDeadLetters, listRefusals, nodeHealth, replayDeadLetters, subscriptionLag, throughput } from './stats.ts';
import { acceptEnrolment, EnrolError, listNodes } from './node.ts';
import { auditExchange, publish, recordRefusal } from './publish.ts';
import {
  cancelSubscription,
  ExchangeError,
  getSubscription,
  grantEntitlement,
  listMembers,
  listResources,
  memberSubscriptions,
  registerMember,
  revokeEntitlement,
  saveResource,
  setMemberStatus,
  subscribe,
  type MemberKey,
  type SubscriptionRow,
} from './registry.ts';
import type { ExchangeRuntime } from './runtime.ts';
import { acceptSync, ingestFederated, syncWithUpstream } from './federation.ts';

const operator = (a: Actor) => hasRole(a, 'exchange-operator') || hasRole(a, 'platform-admin');

export const exchangePolicy = [
  // member systems and peer nodes sign their requests (auth.ts); the exchange's actor resolver turns a
  // verified signature into a system actor: the member id, or node:<id> for a peer node
  allow('system', 'call', 'exchange-api'),
  allow('system', 'forward', 'exchange-federation'),
  // a division node enrols before it has a certificate: the route checks the enrolment token
  allow('anyone', 'enrol', 'exchange-node'),
  // operators: the registry of members, resources and entitlements
  allow({ role: 'exchange-operator' }, ['read', 'register', 'suspend'], 'exchange-member'),
  allow({ role: 'platform-admin' }, ['read', 'register', 'suspend'], 'exchange-member'),
  allow({ role: 'security-officer' }, 'read', 'exchange-member'),
  allow({ role: 'exchange-operator' }, ['read', 'define', 'entitle'], 'exchange-resource'),
  allow({ role: 'platform-admin' }, ['read', 'define', 'entitle'], 'exchange-resource'),
  allow('staff', 'read', 'exchange-node'),
].flat();

const PROBLEM_OF: Record<ExchangeError['code'], ProblemName> = { validation: 'validation', 'not-found': 'not-found', conflict: 'conflict', forbidden: 'forbidden' };

/** An ExchangeError as problem+json naming the reason. */
export function toProblem(err: unknown): never {
  if (err instanceof ExchangeError) throw problem(PROBLEM_OF[err.code], err.message, { reason: err.reason, ...err.extra });
  throw err;
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

export type Caller = { kind: 'member'; key: MemberKey } | { kind: 'node'; node: string };

async function refuseRequest(rt: ExchangeRuntime, req: FastifyRequest, reason: string, detail: string, code: ProblemName, who: string | null): Promise<never> {
  try {
    await recordRefusal(rt, new ExchangeError('forbidden', reason, detail), who, null, req.ip);
  } catch {
    /* recorded */
  }
  throw problem(code, detail, { reason });
}

const nodeKeys = new Map<string, { pem: string; key: import('node:crypto').KeyObject; alg: import('../identity/crypto/index.ts').Alg; at: number }>();

/** Who signed this request: a registered member, or a peer node. */
export async function authenticate(rt: ExchangeRuntime, req: FastifyRequest, opts: { unsignedPayload?: boolean; nodes?: boolean } = {}): Promise<Caller> {
  const h = readSignedHeaders(req.headers);
  if (!h.ok) return refuseRequest(rt, req, h.reason, h.detail, 'unauthorized', null);
  const body = opts.unsignedPayload && req.headers['x-gusu-payload'] === UNSIGNED_PAYLOAD ? UNSIGNED_PAYLOAD : bodyDigest(req.rawBody ?? '');
  const signed = { by: h.by, date: h.date!, method: req.method, path: req.url, body };
  if (h.kind === 'node') {
    if (!opts.nodes) return refuseRequest(rt, req, 'malformed', 'this endpoint is for members (X-Road-Client), not nodes', 'forbidden', h.by);
    const nodeId = h.by.slice('node:'.length);
    let k = nodeKeys.get(nodeId);
    const row = (await rt.db.query<{ cert_pem: string | null }>('select cert_pem from exchange.node where id = $1', [nodeId])).rows[0];
    if (!row?.cert_pem) return refuseRequest(rt, req, 'unknown-member', `node ${nodeId} is not enrolled here`, 'unauthorized', h.by);
    if (!k || k.pem !== row.cert_pem || Date.now() - k.at > 60_000) {
      const v = await rt.trust.verify(rt.db, row.cert_pem);
      if (!v.ok) return refuseRequest(rt, req, 'certificate', `the certificate of node ${nodeId} does not verify: ${v.reason}: ${v.detail}`, 'forbidden', h.by);
      const { createPublicKey } = await import('node:crypto');
      k = { pem: row.cert_pem, key: createPublicKey({ key: v.publicKey, format: 'der', type: 'spki' }), alg: v.alg, at: Date.now() };
      nodeKeys.set(nodeId, k);
    }
    if (!verifyRequestSignature(k.alg, k.key, signed, h.sig!)) return refuseRequest(rt, req, 'bad-signature', 'the request signature does not verify under the node certificate', 'unauthorized', h.by);
    return { kind: 'node', node: nodeId };
  }
  const key = await rt.caches.member(rt.db, rt.trust, h.by);
  if ('error' in key) return refuseRequest(rt, req, key.reason, key.error, key.reason === 'unknown-member' ? 'unauthorized' : 'forbidden', h.by);
  if (key.member.status !== 'active') return refuseRequest(rt, req, 'suspended', `${h.by} is suspended`, 'forbidden', h.by);
  if (!verifyRequestSignature(key.alg, key.publicKey, signed, h.sig!)) return refuseRequest(rt, req, 'bad-signature', 'the request signature does not verify under the member certificate', 'unauthorized', h.by);
  if (key.member.cert_serial && (await rt.trust.isRevoked(rt.db, key.member.cert_serial))) {
    rt.caches.forget();
    return refuseRequest(rt, req, 'certificate', `the certificate of ${h.by} (serial ${key.member.cert_serial}) is revoked`, 'forbidden', h.by);
  }
  return { kind: 'member', key };
}

/** The member behind a verified signature (the resolver put it in req.actor). */
async function asMember(rt: ExchangeRuntime, req: FastifyRequest): Promise<MemberKey> {
  const a = req.actor;
  if (a.kind !== 'system' || a.id.startsWith('node:')) throw problem('not-found', 'not a member of this exchange: sign the request as a member (X-Road-Client)', { reason: 'unknown-member' });
  const key = await rt.caches.member(rt.db, rt.trust, a.id);
  if ('error' in key) throw problem('not-found', key.error, { reason: key.reason });
  return key;
}

/** The peer node behind a verified node signature. */
function asNode(req: FastifyRequest): string {
  const a = req.actor;
  if (a.kind !== 'system' || !a.id.startsWith('node:')) throw problem('not-found', 'not a node of this network: sign the request as a node (X-Gusu-Node)', { reason: 'unknown-node' });
  return a.id.slice('node:'.length);
}

/**
 * The exchange's actor resolver: a request carrying an exchange signature (or naming a member in
 * X-Road-Client) is authenticated here, and refused here if the signature does not hold.
 */
export function exchangeActorResolver(runtime: () => ExchangeRuntime | null): (req: FastifyRequest) => Promise<Actor | null> {
  return async (req) => {
    const h = req.headers;
    if (!h['x-gusu-signature'] && !h['x-gusu-node'] && !h['x-road-client'] && !h['x-govstack-client']) return null;
    const rt = runtime();
    if (!rt) return null;
    // only a route that says so (bulk parts, whose digest the batch's signed completion covers) takes an unsigned payload
    const unsignedPayload = (req.routeOptions?.config as { unsignedPayload?: boolean } | undefined)?.unsignedPayload === true;
    const c = await authenticate(rt, req, { nodes: true, unsignedPayload });
    return c.kind === 'member' ? { kind: 'system', id: c.key.member.id, department: c.key.member.department ?? '' } : { kind: 'system', id: `node:${c.node}`, department: '' };
  };
}

function subscriptionOut(s: SubscriptionRow) {
  return { id: s.id, resource: s.resource, member: s.target_member, node: s.target_node, delivery: s.delivery, pushUrl: s.push_url, status: s.status, createdAt: s.created_at.toISOString() };
}

async function ownSubscription(rt: ExchangeRuntime, member: MemberKey, id: string): Promise<SubscriptionRow> {
  const s = await getSubscription(rt.db, id);
  if (!s || s.status !== 'active' || s.target_member !== member.member.id) throw problem('not-found', `no active subscription ${id} of ${member.member.id}`, { reason: 'unknown-subscription' });
  return s;
}

const JSON_TYPES = ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'];

export function exchangeApi(app: FastifyInstance, ctx: ModuleContext, runtime: () => ExchangeRuntime): void {
  const TAGS = ['exchange'];
  const rt = runtime;
  // signed bodies: the raw bytes are what the signature covers, so keep them
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'buffer', bodyLimit: ctx.config.exchange.maxBatchBytes }, (req, body, done) => {
    (req as FastifyRequest).rawBody = body as Buffer;
    if ((body as Buffer).length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse((body as Buffer).toString('utf8')));
    } catch {
      done(problem('bad-request', 'the body is not valid JSON', { reason: 'malformed' }), undefined);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Members: publish, subscribe, pull, acknowledge

  app.post(
    '/api/v1/exchange/events',
    {
      schema: {
        tags: TAGS,
        summary: 'Publish one signed CloudEvent (201 with the node’s signed receipt; the same event again: 200, duplicate), or a batch (application/cloudevents-batch+json: an array of signed events, or {batch, events, proofs} signed once over a Merkle root)',
        body: Type.Unknown(),
      },
      config: { action: 'exchange-api:call' },
    },
    async (req, reply) => {
      const member = await asMember(rt(), req);
      const body = req.body as unknown;
      let input: { events: unknown[]; batch?: { header: never; proofs: never[] } };
      if (Array.isArray(body)) input = { events: body };
      else if (body && typeof body === 'object' && 'batch' in body) {
        const b = body as { batch: never; events: unknown; proofs: unknown };
        if (!Array.isArray(b.events) || !Array.isArray(b.proofs)) throw problem('validation', 'a signed batch is { batch, events: [...], proofs: [...] }', { reason: 'malformed' });
        input = { events: b.events, batch: { header: b.batch, proofs: b.proofs as never[] } };
      } else input = { events: [body] };
      try {
        const r = await publish(rt(), member, input, { ip: req.ip });
        const single = !Array.isArray(body) && !input.batch;
        reply.code(single && !r.duplicate ? 201 : 200);
        return single ? { receipt: r.receipt, seq: r.seqs[0], ...(r.duplicate ? { duplicate: true } : {}) } : { accepted: r.accepted, duplicates: r.duplicates, receipt: r.receipt };
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  app.get('/api/v1/exchange/directory/resources', { schema: { tags: TAGS, summary: 'The resources on this node a member may see: id, name, provider, share, schema' }, config: { action: 'exchange-api:call' } }, async (req) => {
    await asMember(rt(), req);
    const items = await listResources(ctx.db);
    return { items: items.filter((r) => r.share !== 'closed').map((r) => ({ id: r.id, name: r.name, nameEn: r.name_en, provider: r.provider, share: r.share, schema: r.schema })) };
  });

  app.get('/api/v1/exchange/subscriptions', { schema: { tags: TAGS, summary: 'The calling member’s active subscriptions' }, config: { action: 'exchange-api:call' } }, async (req) => {
    const member = await asMember(rt(), req);
    return { items: (await memberSubscriptions(ctx.db, member.member.id)).map(subscriptionOut) };
  });

  app.post(
    '/api/v1/exchange/subscriptions',
    {
      schema: { tags: TAGS, summary: 'Subscribe the calling member to a resource it is entitled to (201; an existing subscription: 200)', body: Type.Unknown() },
      config: { action: 'exchange-api:call' },
    },
    async (req, reply) => {
      const member = await asMember(rt(), req);
      const b = (req.body ?? {}) as { resource?: unknown; delivery?: unknown; pushUrl?: unknown };
      try {
        const { subscription, created } = await subscribe(ctx.db, member.member, { resource: b.resource as string, delivery: b.delivery as 'pull', pushUrl: b.pushUrl as string });
        if (created) syncSoon(rt());
        reply.code(created ? 201 : 200);
        return subscriptionOut(subscription);
      } catch (err) {
        if (err instanceof ExchangeError && err.reason === 'not-entitled') return recordRefusal(rt(), err, member.member.id, null, req.ip).catch(toProblem);
        return toProblem(err);
      }
    },
  );

  const SubParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
  app.delete('/api/v1/exchange/subscriptions/:id', { schema: { tags: TAGS, summary: 'Cancel one of the calling member’s subscriptions', params: SubParams }, config: { action: 'exchange-api:call' } }, async (req, reply) => {
    const member = await asMember(rt(), req);
    const { id } = req.params as { id: string };
    await ownSubscription(rt(), member, id);
    await cancelSubscription(ctx.db, id, member.member.id);
    return reply.code(204).send();
  });

  app.get(
    '/api/v1/exchange/subscriptions/:id/events',
    {
      schema: {
        tags: TAGS,
        summary: 'Pull: the next deliverable events of a subscription, in order per key; waits up to `wait` seconds for the first. Acknowledge with POST .../ack before the lease runs out',
        params: SubParams,
        querystring: Type.Object({ max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 })) }),
      },
      config: { action: 'exchange-api:call' },
    },
    async (req) => {
      const member = await asMember(rt(), req);
      const { id } = req.params as { id: string };
      const q = req.query as { max?: number; wait?: number };
      const sub = await ownSubscription(rt(), member, id);
      if (sub.delivery !== 'pull') throw problem('conflict', 'a push subscription: its events are POSTed to its URL', { reason: 'push-subscription' });
      return { events: await pull(rt(), sub, q.max ?? 100, (q.wait ?? 0) * 1000) };
    },
  );

  const Seqs = Type.Object({ seqs: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 5000 }), error: Type.Optional(Type.String({ maxLength: 2000 })) });
  app.post(
    '/api/v1/exchange/subscriptions/:id/ack',
    { schema: { tags: TAGS, summary: 'Acknowledge pulled events (the receipts go into the message log)', params: SubParams, body: Seqs }, config: { action: 'exchange-api:call' } },
    async (req) => {
      const member = await asMember(rt(), req);
      const sub = await ownSubscription(rt(), member, (req.params as { id: string }).id);
      return { acked: await ack(rt(), sub, (req.body as { seqs: number[] }).seqs, member.member.id) };
    },
  );
  app.post(
    '/api/v1/exchange/subscriptions/:id/nack',
    { schema: { tags: TAGS, summary: 'Give pulled events back: they are retried after a back-off, then dead-lettered', params: SubParams, body: Seqs }, config: { action: 'exchange-api:call' } },
    async (req) => {
      const member = await asMember(rt(), req);
      const sub = await ownSubscription(rt(), member, (req.params as { id: string }).id);
      const b = req.body as { seqs: number[]; error?: string };
      return { returned: await nack(rt(), sub, b.seqs, b.error ?? 'refused by the subscriber') };
    },
  );

  // ---------------------------------------------------------------------------------------------
  // Federation between nodes

  app.post(
    '/api/v1/exchange/federation/enrol',
    { schema: { tags: TAGS, summary: 'A division node enrols with the hub: its CSR and the enrolment token in, its certificate and the CA certificates out', body: Type.Object({ node: Type.String({ maxLength: 64 }), url: Type.Union([Type.String({ maxLength: 500 }), Type.Null()]), csr: Type.String({ maxLength: 10_000 }), token: Type.String({ maxLength: 200 }) }) }, config: { action: 'exchange-node:enrol' } },
    async (req) => {
      const b = req.body as { node: string; url: string | null; csr: string; token: string };
      try {
        const res = await acceptEnrolment(ctx, ctx.config.exchange, rt().self, b);
        await auditExchange(ctx.db, { kind: 'system', id: `node:${b.node}` }, 'node.enrol', { type: 'exchange-node', id: b.node }, { url: b.url, serial: res.serial });
        return { ...res, hubCertificate: rt().self.certPem };
      } catch (err) {
        if (err instanceof EnrolError) return refuseRequest(rt(), req, 'enrolment', err.message, 'forbidden', `node:${b.node}`);
        throw err;
      }
    },
  );

  app.post(
    '/api/v1/exchange/federation/messages',
    { schema: { tags: TAGS, summary: 'Store-and-forward from a peer node: messages signed by their members, the request signed by the node', body: Type.Unknown() }, config: { action: 'exchange-federation:forward' } },
    async (req) => {
      const node = asNode(req);
      try {
        return await ingestFederated(rt(), node, req.body, req.ip);
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  app.post(
    '/api/v1/exchange/federation/sync',
    { schema: { tags: TAGS, summary: 'A division node registers its members and interests with the hub and receives the city-wide directory', body: Type.Unknown() }, config: { action: 'exchange-federation:forward' } },
    async (req) => {
      const node = asNode(req);
      try {
        return await acceptSync(rt(), node, req.body);
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  // ---------------------------------------------------------------------------------------------
  // Operators

  // operations: lag, throughput, dead letters (with replay), refusals — the console's data as JSON
  const Paged = { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) };
  app.get('/api/v1/exchange/stats', { schema: { tags: TAGS, summary: 'Counts, node health and the last hour’s throughput per minute' }, config: { action: 'exchange-console:read' } }, async () => ({
    counts: await exchangeCounts(ctx.db),
    nodes: await nodeHealth(ctx.db),
    throughput: await throughput(ctx.db),
  }));
  app.get(
    '/api/v1/exchange/lag',
    { schema: { tags: TAGS, summary: 'Per subscription: waiting, in flight, dead, oldest waiting age, delivered in the last hour', querystring: Type.Object({ ...Paged, member: Type.Optional(Type.String({ maxLength: 200 })), resource: Type.Optional(Type.String({ maxLength: 200 })) }) }, config: { action: 'exchange-console:read' } },
    async (req) => {
      const q = req.query as { limit?: number; offset?: number; member?: string; resource?: string };
      return subscriptionLag(ctx.db, { limit: q.limit ?? 50, offset: q.offset ?? 0, member: q.member, resource: q.resource });
    },
  );
  app.get(
    '/api/v1/exchange/dead-letters',
    { schema: { tags: TAGS, summary: 'Dead letters, newest first (optionally of one subscription)', querystring: Type.Object({ ...Paged, subscription: Type.Optional(Type.String({ format: 'uuid' })) }) }, config: { action: 'exchange-console:read' } },
    async (req) => {
      const q = req.query as { limit?: number; offset?: number; subscription?: string };
      return listDeadLetters(ctx.db, { limit: q.limit ?? 50, offset: q.offset ?? 0, subscription: q.subscription });
    },
  );
  app.post(
    '/api/v1/exchange/dead-letters/replay',
    { schema: { tags: TAGS, summary: 'Replay dead letters of a subscription (the given seqs, or all): they are delivered again', body: Type.Object({ subscription: Type.String({ format: 'uuid' }), seqs: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 5000 })) }) }, config: { action: 'dead-letter:replay' } },
    async (req) => {
      const b = req.body as { subscription: string; seqs?: number[] };
      const replayed = await ctx.db.tx(async (c) => {
        const n = await replayDeadLetters(c, b.subscription, b.seqs ?? null);
        await auditExchange(c, actorOf(req.actor), 'dead-letter.replay', { type: 'exchange-subscription', id: b.subscription }, { seqs: b.seqs ?? 'all', replayed: n });
        return n;
      });
      if (replayed) rt().waiters.wake([b.subscription]);
      if (replayed) kickPush(rt(), b.subscription);
      return { replayed };
    },
  );
  app.get(
    '/api/v1/exchange/refusals',
    { schema: { tags: TAGS, summary: 'Refused publishes and calls, newest first, with the reason each was given', querystring: Type.Object({ ...Paged, reason: Type.Optional(Type.String({ maxLength: 64 })) }) }, config: { action: 'exchange-console:read' } },
    async (req) => {
      const q = req.query as { limit?: number; offset?: number; reason?: string };
      return listRefusals(ctx.db, { limit: q.limit ?? 50, offset: q.offset ?? 0, reason: q.reason });
    },
  );

  app.get('/api/v1/exchange/nodes', { schema: { tags: TAGS, summary: 'The nodes of the network and their health' }, config: { action: 'exchange-node:read' } }, async () => ({
    self: rt().self.id,
    items: (await listNodes(ctx.db)).map((n) => ({ id: n.id, kind: n.kind, name: n.name, nameEn: n.name_en, divisionCode: n.division_code, upstream: n.upstream, url: n.url, self: n.is_self, certificateSerial: n.cert_serial, status: n.status, lastContact: n.last_contact?.toISOString() ?? null, lastError: n.last_error })),
  }));

  const memberOut = (m: Awaited<ReturnType<typeof listMembers>>['items'][number]) => ({
    id: m.id, memberClass: m.member_class, memberCode: m.member_code, subsystem: m.subsystem, name: m.name, department: m.department, node: m.node_id,
    certificateSerial: m.cert_serial, alg: m.alg, pushUrl: m.push_url, serviceUrl: m.service_url, status: m.status, createdAt: m.created_at.toISOString(),
  });

  app.get(
    '/api/v1/exchange/members',
    { schema: { tags: TAGS, summary: 'Registered members (search by id or name, paged)', querystring: Type.Object({ q: Type.Optional(Type.String({ maxLength: 100 })), node: Type.Optional(Type.String({ maxLength: 64 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) }) }, config: { action: 'exchange-member:read' } },
    async (req) => {
      const q = req.query as { q?: string; node?: string; limit?: number; offset?: number };
      const r = await listMembers(ctx.db, q);
      return { total: r.total, items: r.items.map(memberOut) };
    },
  );

  app.post(
    '/api/v1/exchange/members',
    {
      schema: {
        tags: TAGS,
        summary: 'Register (or update) a member system with its certificate from the municipal CA',
        body: Type.Object({
          memberClass: Type.Enum(['GOV', 'COM', 'NGO', 'ORG']),
          memberCode: Type.String({ maxLength: 64 }),
          subsystem: Type.String({ maxLength: 64 }),
          name: Type.String({ maxLength: 200 }),
          department: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
          certificate: Type.String({ maxLength: 20_000 }),
          pushUrl: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
          serviceUrl: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
        }),
      },
      config: { action: 'exchange-member:register' },
    },
    async (req, reply) => {
      try {
        const m = await registerMember(ctx.db, rt().trust, ctx.config.exchange.instance, rt().self.id, req.body as never, rt().departments);
        rt().caches.forget();
        syncSoon(rt());
        await auditExchange(ctx.db, actorOf(req.actor), 'member.register', { type: 'exchange-member', id: m.id }, { serial: m.cert_serial });
        reply.code(201);
        return memberOut(m);
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  app.patch(
    '/api/v1/exchange/members/:id',
    { schema: { tags: TAGS, summary: 'Suspend or reactivate a member', params: Type.Object({ id: Type.String({ maxLength: 255 }) }), body: Type.Object({ status: Type.Enum(['active', 'suspended']) }) }, config: { action: 'exchange-member:suspend' } },
    async (req) => {
      try {
        const m = await setMemberStatus(ctx.db, (req.params as { id: string }).id, (req.body as { status: 'active' | 'suspended' }).status);
        rt().caches.forget();
        await auditExchange(ctx.db, actorOf(req.actor), `member.${m.status === 'active' ? 'activate' : 'suspend'}`, { type: 'exchange-member', id: m.id });
        return memberOut(m);
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  app.get('/api/v1/exchange/resources', { schema: { tags: TAGS, summary: 'Resources: id, provider, share attribute, JSON Schema' }, config: { action: 'exchange-resource:read' } }, async () => ({
    items: (await listResources(ctx.db)).map((r) => ({ id: r.id, name: r.name, nameEn: r.name_en, provider: r.provider, share: r.share, keyField: r.key_field, schema: r.schema, updatedAt: r.updated_at.toISOString() })),
  }));

  app.put(
    '/api/v1/exchange/resources/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'Define (or change) a resource: its provider member, JSON Schema and share attribute',
        params: Type.Object({ id: Type.String({ maxLength: 120 }) }),
        body: Type.Object({ name: Type.String({ maxLength: 200 }), nameEn: Type.Optional(Type.String({ maxLength: 200 })), provider: Type.String({ maxLength: 255 }), schema: Type.Record(Type.String(), Type.Unknown()), share: Type.Optional(Type.Enum(['open', 'conditional', 'closed'])), keyField: Type.Optional(Type.String({ maxLength: 100 })) }),
      },
      config: { action: 'exchange-resource:define' },
    },
    async (req) => {
      try {
        const r = await saveResource(ctx.db, { ...(req.body as never as object), id: (req.params as { id: string }).id } as never);
        rt().caches.forget();
        await auditExchange(ctx.db, actorOf(req.actor), 'resource.define', { type: 'exchange-resource', id: r.id }, { provider: r.provider, share: r.share });
        return { id: r.id, name: r.name, provider: r.provider, share: r.share, updatedAt: r.updated_at.toISOString() };
      } catch (err) {
        return toProblem(err);
      }
    },
  );

  const EntParams = Type.Object({ id: Type.String({ maxLength: 120 }), member: Type.String({ maxLength: 255 }) });
  app.put(
    '/api/v1/exchange/resources/:id/entitlements/:member',
    { schema: { tags: TAGS, summary: 'Entitle a member to a conditional resource (until expiresAt)', params: EntParams, body: Type.Object({ expiresAt: Type.Optional(Type.String({ format: 'date-time' })) }) }, config: { action: 'exchange-resource:entitle' } },
    async (req, reply) => {
      const p = req.params as { id: string; member: string };
      const exp = (req.body as { expiresAt?: string } | undefined)?.expiresAt;
      try {
        await grantEntitlement(ctx.db, p.id, p.member, req.actor.kind === 'staff' ? req.actor.accountId : 'system', exp ? new Date(exp) : null);
        await auditExchange(ctx.db, actorOf(req.actor), 'entitlement.grant', { type: 'exchange-resource', id: p.id }, { member: p.member, expiresAt: exp ?? null });
        return reply.code(204).send();
      } catch (err) {
        return toProblem(err);
      }
    },
  );
  app.delete(
    '/api/v1/exchange/resources/:id/entitlements/:member',
    { schema: { tags: TAGS, summary: 'Revoke an entitlement: the member’s subscription is cancelled; the next message does not reach it', params: EntParams }, config: { action: 'exchange-resource:entitle' } },
    async (req, reply) => {
      const p = req.params as { id: string; member: string };
      if (!(await revokeEntitlement(ctx.db, p.id, p.member))) throw problem('not-found', `${p.member} holds no entitlement to ${p.id}`);
      await auditExchange(ctx.db, actorOf(req.actor), 'entitlement.revoke', { type: 'exchange-resource', id: p.id }, { member: p.member });
      return reply.code(204).send();
    },
  );
}

/** A division node tells its hub about a new member or subscription at once (the sweep repeats it). */
function syncSoon(rt: ExchangeRuntime): void {
  if (!rt.self.upstream) return;
  syncWithUpstream(rt).catch((err: Error) => rt.ctx.log.warn({ err: err.message }, 'exchange: sync with the hub failed; the sweep retries'));
}

function actorOf(a: Actor): { kind: 'staff' | 'system'; id: string; department?: string } {
  if (a.kind === 'staff') return { kind: 'staff', id: a.accountId, department: a.department };
  if (a.kind === 'system') return { kind: 'system', id: a.id, department: a.department };
  return { kind: 'system', id: 'unknown' };
}

export { operator as isExchangeOperator, asMember, asNode };
export type { FastifyReply };
