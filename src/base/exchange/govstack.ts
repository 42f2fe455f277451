// The GovStack Information Mediator pub/sub API (../shared/specs/govstack/information-mediator/
// GovStack_IM_PubSub_API.yaml) over the node's own queues. A room ({instance}/{class}/{member}/
// {application}) is the providing member; an event type is one of its resources (ids such as
// health.birth). Publishing plain data is bound to the member by its signed request (kept as the
// message's proof); a signed CloudEvent in `event` is taken as it is. Subscriptions, pull and confirm
// are the same subscriptions, leases and acknowledgements as /api/v1/exchange.
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModuleContext } from '../../module.ts';
import { problem } from '../../http/problems.ts';
import { ack, pull } from './delivery.ts';
import { publish, withBatchHeaders, type RequestProof } from './publish.ts';
import { cancelSubscription, getResource, getSubscription, memberSubscriptions, saveResource, subscribe, MEMBER_ID, ExchangeError, type MemberKey, type ResourceRow, type SubscriptionRow } from './registry.ts';
import { asMember, toProblem } from './routes.ts';
import type { ExchangeRuntime } from './runtime.ts';
import type { ExchangeEvent } from './envelope.ts';

/** service codes the GovStack paths take: a provider's /r1 service cannot be called by these names */
export const RESERVED_SERVICE_CODES = new Set(['api', 'pub', 'pull', 'listMethods', 'allowedMethods', 'getOpenAPI']);

type RoomParams = { instance: string; cls: string; code: string; app: string; eventType?: string; eventId?: string };

function roomOf(req: FastifyRequest): string {
  const p = req.params as RoomParams;
  const id = `${p.instance}/${p.cls}/${p.code}/${p.app}`;
  if (!MEMBER_ID.test(id)) throw problem('not-found', `no room ${id.slice(0, 200)}`, { reason: 'unknown-member' });
  return id;
}

function parts(id: string) {
  const [instanceId, memberClass, memberCode, applicationCode] = id.split('/');
  return { instanceId, memberClass, memberCode, applicationCode };
}

async function eventTypeIn(rt: ExchangeRuntime, room: string, eventType: string | undefined): Promise<ResourceRow> {
  const r = typeof eventType === 'string' && eventType.length <= 120 ? await getResource(rt.db, eventType) : null;
  if (!r || r.provider !== room || r.share === 'closed') throw problem('not-found', `no event type ${String(eventType).slice(0, 120)} in room ${room}`, { reason: 'unknown-resource' });
  return r;
}

function subscriptionItem(s: SubscriptionRow) {
  return { id: s.id, subscriberId: parts(s.target_member ?? ''), eventType: s.resource, delivery: s.delivery === 'push' ? 'PUSH' : 'PULL', options: { TTL: 3600, FIFO: true } };
}

function eventItem(seq: number, e: ExchangeEvent, proof: unknown) {
  return { id: e.id, sequence: seq, publisherId: parts(e.gusumember), eventType: e.gusuresource, event: e.data, cloudevent: e, ...(proof ? { proof } : {}) };
}

async function mySubscription(rt: ExchangeRuntime, member: MemberKey, resource: string): Promise<SubscriptionRow | null> {
  return (await memberSubscriptions(rt.db, member.member.id)).find((s) => s.resource === resource) ?? null;
}

export function govstackRoutes(app: FastifyInstance, ctx: ModuleContext, runtime: () => ExchangeRuntime): void {
  const P = '/r1/:instance/:cls/:code/:app';
  const TAGS = ['exchange (GovStack IM pub/sub)'];
  const opts = (summary: string) => ({ schema: { tags: TAGS, summary }, config: { action: 'exchange-api:call' } });

  // ----- event types (admin: the room manager)
  app.post(`${P}/api/v1/eventType`, opts('createEventType: a new event type (resource) with its JSON Schema in the caller’s own room'), async (req, reply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const room = roomOf(req);
    if (member.member.id !== room) throw problem('forbidden', `only ${room} manages its room`, { reason: 'not-provider' });
    const b = (req.body ?? {}) as { eventType?: unknown; schema?: unknown };
    if (typeof b.eventType !== 'string') throw problem('validation', 'eventType is required', { reason: 'malformed' });
    if (await getResource(rt.db, b.eventType)) throw problem('conflict', `event type ${b.eventType} already exists`, { reason: 'exists' });
    try {
      await saveResource(rt.db, { id: b.eventType, name: b.eventType, provider: room, schema: b.schema as Record<string, unknown>, share: 'open' });
    } catch (err) {
      return toProblem(err);
    }
    rt.caches.forget();
    return reply.code(200).send({ eventType: b.eventType });
  });

  app.get(`${P}/api/v1/eventType`, opts('getEventTypeList: the event types of the room'), async (req, reply) => {
    const rt = runtime();
    await asMember(rt, req);
    const { rows } = await rt.db.query<{ id: string }>(`select id from exchange.resource where provider = $1 and share <> 'closed' order by id`, [roomOf(req)]);
    return rows.length ? rows.map((r) => r.id) : reply.code(204).send();
  });

  app.get(`${P}/api/v1/eventType/:eventType`, opts('getEventType: an event type and its JSON Schema'), async (req, reply) => {
    const rt = runtime();
    await asMember(rt, req);
    const r = await getResource(rt.db, (req.params as RoomParams).eventType!);
    if (!r || r.provider !== roomOf(req)) return reply.code(204).send();
    return { eventType: r.id, schema: r.schema };
  });

  app.delete(`${P}/api/v1/eventType/:eventType`, opts('deleteEventType: closes an event type (its messages and log stay); only the room manager'), async (req, reply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const room = roomOf(req);
    if (member.member.id !== room) throw problem('forbidden', `only ${room} manages its room`, { reason: 'not-provider' });
    const r = await eventTypeIn(rt, room, (req.params as RoomParams).eventType);
    await rt.db.query(`update exchange.resource set share = 'closed', updated_at = now() where id = $1`, [r.id]);
    await rt.db.query(`update exchange.subscription set status = 'cancelled', cancelled_at = now() where resource = $1 and status = 'active'`, [r.id]);
    rt.caches.forget();
    return reply.code(204).send();
  });

  // ----- publishing
  app.post(`${P}/pub/v1/:eventType`, opts('publishEvent: publish plain data (bound by the signed request) or a signed CloudEvent; 201 with the event id'), async (req, reply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const room = roomOf(req);
    const r = await eventTypeIn(rt, room, (req.params as RoomParams).eventType);
    const b = (req.body ?? {}) as { eventType?: unknown; event?: unknown };
    if (b.eventType !== r.id || b.event === undefined) throw problem('validation', `the body is { eventType: "${r.id}", event: {...} }`, { reason: 'malformed' });
    const signed = !!b.event && typeof b.event === 'object' && (b.event as { specversion?: unknown }).specversion === '1.0';
    let events: unknown[];
    let attested: RequestProof | undefined;
    if (signed) events = [b.event];
    else {
      const h = req.headers;
      attested = {
        request: { by: member.member.id, date: String(h['x-gusu-date']), method: req.method, path: req.url, body: (req.rawBody ?? Buffer.alloc(0)).toString('utf8'), sig: String(h['x-gusu-signature']) },
      };
      events = [{ specversion: '1.0', id: crypto.randomUUID(), source: `urn:gusu:member:${member.member.id}`, type: r.id, time: new Date().toISOString(), gusumember: member.member.id, gusuresource: r.id, gusudigest: '', gusualg: member.alg, data: b.event }];
      const { digestOf } = await import('./canonical.ts');
      try {
        (events[0] as { gusudigest: string }).gusudigest = digestOf(b.event);
      } catch (err) {
        throw problem('validation', `event is not plain JSON: ${(err as Error).message}`, { reason: 'malformed' });
      }
    }
    try {
      await publish(rt, member, { events, attested }, { ip: req.ip });
    } catch (err) {
      return toProblem(err);
    }
    return reply.code(201).send({ id: (events[0] as { id: string }).id });
  });

  const publishedBy = async (rt: ExchangeRuntime, req: FastifyRequest, member: MemberKey) => {
    const p = req.params as RoomParams;
    const r = await eventTypeIn(rt, roomOf(req), p.eventType);
    const { rows } = await rt.db.query<{ seq: string; event: string; proof: unknown; batch: string | null }>(
      `select seq, event, proof, batch from exchange.message where id = $1 and resource = $2 and member = $3 order by seq limit 1`,
      [String(p.eventId).slice(0, 200), r.id, member.member.id],
    ).then(async (x) => ({ rows: await withBatchHeaders(rt.db, x.rows) }));
    if (!rows[0]) throw problem('not-found', `no event ${String(p.eventId).slice(0, 200)} of ${member.member.id} in ${r.id}`, { reason: 'unknown-event' });
    return rows[0];
  };

  app.get(`${P}/pub/v1/:eventType/:eventId`, opts('getStatus: a published event and its delivery counts'), async (req) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const m = await publishedBy(rt, req, member);
    const { rows } = await rt.db.query<{ status: string; n: number }>('select status, count(*)::int as n from exchange.delivery where seq = $1 group by status', [m.seq]);
    return { ...eventItem(Number(m.seq), JSON.parse(m.event), m.proof), delivery: Object.fromEntries(rows.map((x) => [x.status, x.n])) };
  });

  app.delete(`${P}/pub/v1/:eventType/:eventId`, opts('deleteEvent: stop delivering an event (undelivered copies are withdrawn; the log keeps it)'), async (req, reply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const m = await publishedBy(rt, req, member);
    await rt.db.query(`update exchange.delivery set status = 'dead', last_error = 'withdrawn by the publisher', lease_until = null where seq = $1 and status in ('ready', 'leased')`, [m.seq]);
    return reply.code(204).send();
  });

  // ----- subscriptions
  app.get(`${P}/api/v1/subs`, opts('listSub: the caller’s subscriptions in the room'), async (req) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const room = roomOf(req);
    const subs = await memberSubscriptions(rt.db, member.member.id);
    const out = [];
    for (const s of subs) if ((await getResource(rt.db, s.resource))?.provider === room) out.push(subscriptionItem(s));
    return out;
  });

  app.post(`${P}/api/v1/subs/:eventType`, opts('addSub: subscribe (PULL, or PUSH to the member’s registered push URL); 409 if already subscribed'), async (req, reply: FastifyReply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const r = await eventTypeIn(rt, roomOf(req), (req.params as RoomParams).eventType);
    const b = (req.body ?? {}) as { delivery?: unknown };
    const delivery = b.delivery === 'PUSH' ? 'push' : b.delivery === undefined || b.delivery === 'PULL' ? 'pull' : null;
    if (!delivery) throw problem('validation', 'delivery is PUSH or PULL', { reason: 'malformed' });
    try {
      const { subscription, created } = await subscribe(rt.db, member.member, { resource: r.id, delivery });
      if (!created) throw problem('conflict', `already subscribed to ${r.id}`, { reason: 'exists', id: subscription.id });
      return reply.code(200).send(subscriptionItem(subscription));
    } catch (err) {
      if (err instanceof ExchangeError) return toProblem(err);
      throw err;
    }
  });

  const mine = async (req: FastifyRequest) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const r = await eventTypeIn(rt, roomOf(req), (req.params as RoomParams).eventType);
    const s = await mySubscription(rt, member, r.id);
    if (!s) throw problem('not-found', `no subscription to ${r.id}`, { reason: 'unknown-subscription' });
    return { rt, member, r, s };
  };

  app.get(`${P}/api/v1/subs/:eventType`, opts('getSub: the caller’s subscription to an event type'), async (req) => subscriptionItem((await mine(req)).s));

  app.patch(`${P}/api/v1/subs/:eventType`, opts('patchSub: change PUSH/PULL'), async (req, reply) => {
    const { rt, member, s } = await mine(req);
    const b = (req.body ?? {}) as { delivery?: unknown };
    if (b.delivery !== 'PUSH' && b.delivery !== 'PULL') throw problem('validation', 'delivery is PUSH or PULL', { reason: 'malformed' });
    if (b.delivery === 'PUSH' && !member.member.push_url) throw problem('validation', 'PUSH needs the member’s registered push URL', { reason: 'malformed' });
    await rt.db.query('update exchange.subscription set delivery = $2, push_url = $3 where id = $1', [s.id, b.delivery === 'PUSH' ? 'push' : 'pull', b.delivery === 'PUSH' ? member.member.push_url : null]);
    return reply.code(201).send(subscriptionItem((await getSubscription(rt.db, s.id))!));
  });

  app.delete(`${P}/api/v1/subs/:eventType`, opts('deleteSub: unsubscribe'), async (req, reply) => {
    const { rt, member, s } = await mine(req);
    await cancelSubscription(rt.db, s.id, member.member.id);
    return reply.code(204).send();
  });

  // ----- pull and confirm
  app.get(`${P}/pull/v1/:eventType`, opts('pullEvent: the next unacknowledged event (404 when none)'), async (req) => {
    const { rt, s } = await mine(req);
    if (s.delivery !== 'pull') throw problem('conflict', 'a PUSH subscription', { reason: 'push-subscription' });
    const [next] = await pull(rt, s, 1, 0);
    if (!next) throw problem('not-found', 'no event available', { reason: 'empty' });
    return eventItem(next.seq, next.event as ExchangeEvent, next.proof);
  });

  app.delete(`${P}/pull/v1/:eventType/:eventId`, opts('confirmEvent: acknowledge an event'), async (req, reply) => {
    const { rt, member, s } = await mine(req);
    const { rows } = await rt.db.query<{ seq: string }>(
      `select d.seq from exchange.delivery d join exchange.message m on m.seq = d.seq where d.subscription = $1 and m.id = $2 and d.status in ('leased', 'ready')`,
      [s.id, String((req.params as RoomParams).eventId).slice(0, 200)],
    );
    if (!rows.length) throw problem('not-found', 'no such unacknowledged event', { reason: 'unknown-event' });
    await ack(rt, s, rows.map((r) => Number(r.seq)), member.member.id);
    return reply.code(204).send();
  });
}
