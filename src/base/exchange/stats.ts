// What the operators' console shows of the exchange node (pages.ts): the nodes and their health, the
// lag of every subscription's queue, throughput over the last hour, dead letters (and replaying them),
// refusals, and the members with what they provide and subscribe to. Plain queries over the tables of
// migrations/002_node.sql, each bounded (a page, the last hour, the last 24 hours), taking any
// Queryable so a caller may run them inside its own transaction.
import type { Queryable } from '../../db/index.ts';

// ---------------------------------------------------------------------------------------------
// Nodes

export type NodeStatus = 'unknown' | 'up' | 'down';

/** a push subscription of a peer node (federation): its queue on this node */
export interface NodeLink {
  subscription: string;
  resource: string;
  /** ready + leased deliveries */
  backlog: number;
  dead: number;
  /** seconds since the oldest message still waiting was received (null: nothing waits) */
  oldestWaitingSeconds: number | null;
}

export interface NodeHealth {
  id: string;
  kind: 'hub' | 'node';
  name: string;
  nameEn: string | null;
  divisionCode: string | null;
  upstream: string | null;
  url: string | null;
  isSelf: boolean;
  status: NodeStatus;
  lastContact: Date | null;
  lastError: string | null;
  certSerial: string | null;
  alg: string | null;
  /** this node's queues for that node, one per resource it takes */
  links: NodeLink[];
  /** over its links */
  backlog: number;
  dead: number;
  oldestWaitingSeconds: number | null;
}

/** Every node this node knows (itself first, then the hub, then by id), with the backlog of its links. */
export async function nodeHealth(q: Queryable): Promise<NodeHealth[]> {
  const [nodes, links] = await Promise.all([
    q.query<{
      id: string;
      kind: 'hub' | 'node';
      name: string;
      name_en: string | null;
      division_code: string | null;
      upstream: string | null;
      url: string | null;
      is_self: boolean;
      status: NodeStatus;
      last_contact: Date | null;
      last_error: string | null;
      cert_serial: string | null;
      alg: string | null;
    }>(
      `select id, kind, name, name_en, division_code, upstream, url, is_self, status, last_contact, last_error, cert_serial, alg
         from exchange.node order by is_self desc, (kind = 'hub') desc, id`,
    ),
    // the open deliveries and the dead ones are counted through their partial indexes; the oldest
    // waiting message is the one with the lowest seq still open
    q.query<{ subscription: string; node: string; resource: string; backlog: number; dead: number; oldest_s: number | null }>(
      `select s.id as subscription, s.target_node as node, s.resource,
              (select count(*)::int from exchange.delivery d where d.subscription = s.id and d.status in ('ready', 'leased')) as backlog,
              (select count(*)::int from exchange.delivery d where d.subscription = s.id and d.status = 'dead') as dead,
              (select extract(epoch from now() - m.received_at)::float8
                 from exchange.message m
                where m.seq = (select min(d.seq) from exchange.delivery d where d.subscription = s.id and d.status in ('ready', 'leased'))) as oldest_s
         from exchange.subscription s
        where s.target_node is not null and s.status = 'active'
        order by s.target_node, s.resource`,
    ),
  ]);
  const byNode = new Map<string, NodeLink[]>();
  for (const l of links.rows) {
    const list = byNode.get(l.node) ?? [];
    list.push({ subscription: l.subscription, resource: l.resource, backlog: l.backlog, dead: l.dead, oldestWaitingSeconds: l.oldest_s === null ? null : Math.max(0, l.oldest_s) });
    byNode.set(l.node, list);
  }
  return nodes.rows.map((n) => {
    const nl = byNode.get(n.id) ?? [];
    const ages = nl.map((l) => l.oldestWaitingSeconds).filter((x): x is number => x !== null);
    return {
      id: n.id,
      kind: n.kind,
      name: n.name,
      nameEn: n.name_en,
      divisionCode: n.division_code,
      upstream: n.upstream,
      url: n.url,
      isSelf: n.is_self,
      status: n.status,
      lastContact: n.last_contact,
      lastError: n.last_error,
      certSerial: n.cert_serial,
      alg: n.alg,
      links: nl,
      backlog: nl.reduce((a, l) => a + l.backlog, 0),
      dead: nl.reduce((a, l) => a + l.dead, 0),
      oldestWaitingSeconds: ages.length ? Math.max(...ages) : null,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

export interface Paging {
  limit: number;
  offset: number;
}

export interface Page<T> {
  total: number;
  items: T[];
}

export interface SubscriptionLag {
  id: string;
  resource: string;
  /** a member's subscription, or a peer node's (federation): exactly one is set */
  targetMember: string | null;
  targetNode: string | null;
  delivery: 'push' | 'pull';
  pushUrl: string | null;
  createdAt: Date;
  ready: number;
  leased: number;
  dead: number;
  /** seconds since the oldest message still waiting (ready or leased) was received; null when none waits */
  oldestWaitingSeconds: number | null;
  /** deliveries acknowledged in the last hour */
  doneLastHour: number;
}

const clampLimit = (n: number) => Math.min(Math.max(Math.trunc(n) || 0, 1), 500);
const clampOffset = (n: number) => Math.max(Math.trunc(n) || 0, 0);
/** a filter's text, matched as a case-insensitive substring (no LIKE: % and _ are only text) */
const filterText = (v: string | undefined) => (v && v.trim() ? v.trim().toLowerCase() : null);

/**
 * Every active subscription with its queue: ready, leased and dead deliveries, how long the oldest
 * waiting message has waited, and how many were delivered in the last hour. The longest-waiting
 * first. `member` matches the target (member id or node id), `resource` the resource id, both as
 * case-insensitive substrings.
 */
export async function subscriptionLag(q: Queryable, o: Paging & { member?: string; resource?: string }): Promise<Page<SubscriptionLag>> {
  const member = filterText(o.member);
  const resource = filterText(o.resource);
  const where = `s.status = 'active'
     and ($1::text is null or strpos(lower(coalesce(s.target_member, s.target_node)), $1) > 0)
     and ($2::text is null or strpos(lower(s.resource), $2) > 0)`;
  const [total, rows] = await Promise.all([
    q.query<{ n: number }>(`select count(*)::int as n from exchange.subscription s where ${where}`, [member, resource]),
    q.query<{
      id: string;
      resource: string;
      target_member: string | null;
      target_node: string | null;
      delivery: 'push' | 'pull';
      push_url: string | null;
      created_at: Date;
      ready: number;
      leased: number;
      dead: number;
      oldest_s: number | null;
      done_1h: number;
    }>(
      `select s.id, s.resource, s.target_member, s.target_node, s.delivery, s.push_url, s.created_at,
              o.ready, o.leased,
              (select count(*)::int from exchange.delivery d where d.subscription = s.id and d.status = 'dead') as dead,
              (select extract(epoch from now() - m.received_at)::float8 from exchange.message m where m.seq = o.first_seq) as oldest_s,
              (select count(*)::int from exchange.delivery d
                where d.subscription = s.id and d.status = 'done' and d.done_at > now() - interval '1 hour') as done_1h
         from exchange.subscription s
        cross join lateral (
              select count(*) filter (where d.status = 'ready')::int as ready,
                     count(*) filter (where d.status = 'leased')::int as leased,
                     min(d.seq) as first_seq
                from exchange.delivery d where d.subscription = s.id and d.status in ('ready', 'leased')) o
        where ${where}
        order by oldest_s desc nulls last, (o.ready + o.leased) desc, s.resource, coalesce(s.target_member, s.target_node), s.id
        limit $3 offset $4`,
      [member, resource, clampLimit(o.limit), clampOffset(o.offset)],
    ),
  ]);
  return {
    total: total.rows[0]!.n,
    items: rows.rows.map((r) => ({
      id: r.id,
      resource: r.resource,
      targetMember: r.target_member,
      targetNode: r.target_node,
      delivery: r.delivery,
      pushUrl: r.push_url,
      createdAt: r.created_at,
      ready: r.ready,
      leased: r.leased,
      dead: r.dead,
      oldestWaitingSeconds: r.oldest_s === null ? null : Math.max(0, r.oldest_s),
      doneLastHour: r.done_1h,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Throughput

export interface MinuteCount {
  /** the start of the minute */
  at: Date;
  received: number;
  delivered: number;
}

export interface Throughput {
  /** the last 60 minutes, oldest first, the current (partial) minute last */
  minutes: MinuteCount[];
  received: number;
  delivered: number;
  /** the busiest minute's counts */
  peakReceived: number;
  peakDelivered: number;
}

/** Messages received and deliveries acknowledged per minute over the last hour. */
export async function throughput(q: Queryable): Promise<Throughput> {
  const { rows } = await q.query<{ at: Date; received: number; delivered: number }>(
    `with span as (select date_trunc('minute', now()) - interval '59 minutes' as since),
          minutes as (select generate_series((select since from span), date_trunc('minute', now()), interval '1 minute') as at),
          rec as (select date_trunc('minute', received_at) as at, count(*)::int as n
                    from exchange.message where received_at >= (select since from span) group by 1),
          del as (select date_trunc('minute', done_at) as at, count(*)::int as n
                    from exchange.delivery where status = 'done' and done_at >= (select since from span) group by 1)
     select m.at, coalesce(rec.n, 0) as received, coalesce(del.n, 0) as delivered
       from minutes m left join rec on rec.at = m.at left join del on del.at = m.at
      order by m.at`,
  );
  const minutes = rows.map((r) => ({ at: r.at, received: r.received, delivered: r.delivered }));
  return {
    minutes,
    received: minutes.reduce((a, m) => a + m.received, 0),
    delivered: minutes.reduce((a, m) => a + m.delivered, 0),
    peakReceived: minutes.reduce((a, m) => Math.max(a, m.received), 0),
    peakDelivered: minutes.reduce((a, m) => Math.max(a, m.delivered), 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Dead letters

export interface DeadLetter {
  subscription: string;
  /** the subscription's resource and target */
  subscriptionResource: string | null;
  targetMember: string | null;
  targetNode: string | null;
  seq: number;
  /** the message (null fields if it is gone) */
  source: string | null;
  id: string | null;
  /** the CloudEvents type, from the stored envelope */
  type: string | null;
  key: string | null;
  member: string | null;
  resource: string | null;
  attempts: number;
  lastError: string | null;
  receivedAt: Date | null;
}

type DeadRow = {
  subscription: string;
  sub_resource: string | null;
  target_member: string | null;
  target_node: string | null;
  seq: number;
  source: string | null;
  id: string | null;
  type: string | null;
  key: string | null;
  member: string | null;
  resource: string | null;
  attempts: number;
  last_error: string | null;
  received_at: Date | null;
};

const INVALID_TEXT = '22P02';

/** Dead-lettered deliveries, newest message first, of one subscription or all. */
export async function listDeadLetters(q: Queryable, o: Paging & { subscription?: string }): Promise<Page<DeadLetter>> {
  const sub = o.subscription || null;
  const select = (type: string) => `select d.subscription, s.resource as sub_resource, s.target_member, s.target_node, d.seq,
            m.source, m.id, ${type} as type, coalesce(m.key, d.key) as key, m.member, m.resource, d.attempts, d.last_error, m.received_at
       from exchange.delivery d
       left join exchange.subscription s on s.id = d.subscription
       left join exchange.message m on m.seq = d.seq
      where d.status = 'dead' and ($1::uuid is null or d.subscription = $1)
      order by d.seq desc, d.subscription
      limit $2 offset $3`;
  const params = [sub, clampLimit(o.limit), clampOffset(o.offset)];
  const total = q.query<{ n: number }>(`select count(*)::int as n from exchange.delivery d where d.status = 'dead' and ($1::uuid is null or d.subscription = $1)`, [sub]);
  let rows: DeadRow[];
  try {
    rows = (await q.query<DeadRow>(select(`(m.event::jsonb ->> 'type')`), params)).rows;
  } catch (err) {
    // a stored envelope that is not JSON (written past the node): list the rows, type unknown
    // where it cannot be read. Inside a caller's transaction the error has aborted it: rethrow.
    if ((err as { code?: string }).code !== INVALID_TEXT || !('pool' in q || 'totalCount' in q)) throw err;
    rows = (await q.query<DeadRow>(select('null::text'), params)).rows;
    for (const r of rows) {
      try {
        const one = await q.query<{ type: string | null }>(`select event::jsonb ->> 'type' as type from exchange.message where seq = $1`, [r.seq]);
        r.type = one.rows[0]?.type ?? null;
      } catch {
        r.type = null;
      }
    }
  }
  return {
    total: (await total).rows[0]!.n,
    items: rows.map((r) => ({
      subscription: r.subscription,
      subscriptionResource: r.sub_resource,
      targetMember: r.target_member,
      targetNode: r.target_node,
      seq: r.seq,
      source: r.source,
      id: r.id,
      type: r.type,
      key: r.key,
      member: r.member,
      resource: r.resource,
      attempts: r.attempts,
      lastError: r.last_error,
      receivedAt: r.received_at,
    })),
  };
}

export interface DeadLetterCount {
  subscription: string;
  resource: string | null;
  targetMember: string | null;
  targetNode: string | null;
  dead: number;
}

/** The subscriptions that have dead letters, with how many (for a filter), most first. */
export async function deadLetterCounts(q: Queryable): Promise<DeadLetterCount[]> {
  const { rows } = await q.query<{ subscription: string; resource: string | null; target_member: string | null; target_node: string | null; dead: number }>(
    `select d.subscription, s.resource, s.target_member, s.target_node, d.dead
       from (select subscription, count(*)::int as dead from exchange.delivery where status = 'dead' group by subscription) d
       left join exchange.subscription s on s.id = d.subscription
      order by d.dead desc, s.resource, d.subscription
      limit 1000`,
  );
  return rows.map((r) => ({ subscription: r.subscription, resource: r.resource, targetMember: r.target_member, targetNode: r.target_node, dead: r.dead }));
}

/**
 * Puts a subscription's dead letters back in its queue (all of them, or those of the given seqs):
 * ready now, attempts and error cleared. Returns how many were replayed. An empty list replays none.
 */
export async function replayDeadLetters(q: Queryable, subscription: string, seqs: number[] | null): Promise<number> {
  if (seqs !== null && seqs.length === 0) return 0;
  const r =
    seqs === null
      ? await q.query(
          `update exchange.delivery set status = 'ready', attempts = 0, next_at = now(), last_error = null, lease_until = null
            where subscription = $1 and status = 'dead'`,
          [subscription],
        )
      : await q.query(
          `update exchange.delivery set status = 'ready', attempts = 0, next_at = now(), last_error = null, lease_until = null
            where subscription = $1 and status = 'dead' and seq = any($2::bigint[])`,
          [subscription, seqs],
        );
  return r.rowCount ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Refusals

export interface Refusal {
  id: number;
  at: Date;
  member: string | null;
  eventId: string | null;
  reason: string;
  detail: string;
  remoteAddr: string | null;
}

/** Refused publishes and calls, newest first, optionally of one reason. */
export async function listRefusals(q: Queryable, o: Paging & { reason?: string }): Promise<Page<Refusal>> {
  const reason = o.reason || null;
  const [total, rows] = await Promise.all([
    q.query<{ n: number }>(`select count(*)::int as n from exchange.refusal where ($1::text is null or reason = $1)`, [reason]),
    q.query<{ id: number; at: Date; member: string | null; event_id: string | null; reason: string; detail: string; remote_addr: string | null }>(
      `select id, at, member, event_id, reason, detail, remote_addr from exchange.refusal
        where ($1::text is null or reason = $1) order by id desc limit $2 offset $3`,
      [reason, clampLimit(o.limit), clampOffset(o.offset)],
    ),
  ]);
  return {
    total: total.rows[0]!.n,
    items: rows.rows.map((r) => ({ id: r.id, at: r.at, member: r.member, eventId: r.event_id, reason: r.reason, detail: r.detail, remoteAddr: r.remote_addr })),
  };
}

/** Refusals of the last 24 hours by reason, most first. */
export async function refusalCounts(q: Queryable): Promise<{ reason: string; count: number }[]> {
  const { rows } = await q.query<{ reason: string; count: number }>(
    `select reason, count(*)::int as count from exchange.refusal where at > now() - interval '24 hours' group by reason order by count desc, reason`,
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Members

export interface MemberSummary {
  id: string;
  name: string;
  department: string | null;
  nodeId: string;
  status: 'active' | 'suspended';
  certSerial: string | null;
  delivery: { pushUrl: string | null; serviceUrl: string | null };
  /** ids of the resources it provides */
  resources: string[];
  /** its active subscriptions */
  subscriptions: number;
}

/** Members (by id) with the resources they provide and their subscriptions; `q` matches id, name or department. */
export async function memberOverview(q: Queryable, o: Paging & { q?: string }): Promise<Page<MemberSummary>> {
  const text = filterText(o.q);
  const where = `($1::text is null or strpos(lower(m.id), $1) > 0 or strpos(lower(m.name), $1) > 0 or strpos(lower(coalesce(m.department, '')), $1) > 0)`;
  const [total, rows] = await Promise.all([
    q.query<{ n: number }>(`select count(*)::int as n from exchange.member m where ${where}`, [text]),
    q.query<{
      id: string;
      name: string;
      department: string | null;
      node_id: string;
      status: 'active' | 'suspended';
      cert_serial: string | null;
      push_url: string | null;
      service_url: string | null;
      resources: string[];
      subscriptions: number;
    }>(
      `select m.id, m.name, m.department, m.node_id, m.status, m.cert_serial, m.push_url, m.service_url,
              coalesce((select array_agg(r.id order by r.id) from exchange.resource r where r.provider = m.id), '{}') as resources,
              (select count(*)::int from exchange.subscription s where s.target_member = m.id and s.status = 'active') as subscriptions
         from exchange.member m
        where ${where}
        order by m.id
        limit $2 offset $3`,
      [text, clampLimit(o.limit), clampOffset(o.offset)],
    ),
  ]);
  return {
    total: total.rows[0]!.n,
    items: rows.rows.map((r) => ({
      id: r.id,
      name: r.name,
      department: r.department,
      nodeId: r.node_id,
      status: r.status,
      certSerial: r.cert_serial,
      delivery: { pushUrl: r.push_url, serviceUrl: r.service_url },
      resources: r.resources,
      subscriptions: r.subscriptions,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// The overview's figures

export interface ExchangeCounts {
  members: number;
  resources: number;
  subscriptions: number;
  /** ready + leased deliveries over every subscription */
  backlog: number;
  deadLetters: number;
  refusals24h: number;
}

export async function exchangeCounts(q: Queryable): Promise<ExchangeCounts> {
  const { rows } = await q.query<ExchangeCounts>(
    `select (select count(*)::int from exchange.member) as members,
            (select count(*)::int from exchange.resource) as resources,
            (select count(*)::int from exchange.subscription where status = 'active') as subscriptions,
            (select count(*)::int from exchange.delivery where status in ('ready', 'leased')) as backlog,
            (select count(*)::int from exchange.delivery where status = 'dead') as "deadLetters",
            (select count(*)::int from exchange.refusal where at > now() - interval '24 hours') as "refusals24h"`,
  );
  return rows[0]!;
}
