// Delivering messages from the per-subscription queues (exchange.delivery): pull (a member asks),
// push (the node POSTs to a member's URL) and federation (the node POSTs to a peer node, which is a
// push subscription like any other). At least once, ordered per key: a message is handed out only
// when no earlier message with its key is in flight or backing off for that subscription. Failures
// back off exponentially; after maxAttempts a message is dead-lettered and stops holding up its key.
import { enqueue, type Queryable } from '../../db/index.ts';
import { canonicalJson, sha256 } from './canonical.ts';
import { signRequest } from './auth.ts';
import { appendLog } from './store.ts';
import type { ExchangeRuntime } from './runtime.ts';
import type { SubscriptionRow } from './registry.ts';
import type { LogItem } from './log.ts';
import { withBatchHeaders, type StoredMessage } from './publish.ts';
import { viewFor } from './view.ts';

export const SWEEP_JOB = 'exchange.sweep';
/** the default sweep period (GUSU_EXCHANGE_SWEEP_MS) */
export const SWEEP_EVERY_MS = 2_000;
const PUSH_BATCH = 500;

export interface DeliveredEvent {
  seq: number;
  event: unknown;
  proof?: unknown;
}

function backoff(rt: ExchangeRuntime, attempts: number): number {
  return Math.min(rt.cfg.retryBaseMs * 2 ** Math.max(0, attempts - 1), rt.cfg.maxBackoffMs);
}

/**
 * Leases up to `max` deliverable messages of a subscription (one claimer per subscription at a time,
 * by an advisory lock), dead-lettering those whose lease ran out on their last attempt — except on a
 * link to a peer node (`nodeLink`), where a lease runs out only because this node's own pusher died
 * mid-push: those are simply handed out again.
 */
export async function claim(c: Queryable, rt: ExchangeRuntime, subscription: string, max: number, leaseSeconds: number, nodeLink = false): Promise<{ seq: number; attempts: number }[]> {
  await c.query(`select pg_advisory_xact_lock(hashtext('exchange.delivery'), hashtext($1))`, [subscription]);
  if (!nodeLink) {
    await c.query(
      `update exchange.delivery set status = 'dead', last_error = coalesce(last_error, 'not acknowledged within the lease'), lease_until = null
        where subscription = $1 and status = 'leased' and lease_until < now() and attempts >= $2`,
      [subscription, rt.cfg.maxAttempts],
    );
  }
  const { rows } = await c.query<{ seq: string; attempts: number }>(
    // the candidates once, as an array (an InitPlan), then their rows through the open-rows index: as a
    // join (update … from cand) this is planned as a nested loop that re-runs the candidate scan for every
    // delivery of the subscription once ANALYZE has seen a table of finished deliveries
    `update exchange.delivery d set status = 'leased', attempts = d.attempts + 1,
            lease_until = now() + make_interval(secs => $3::double precision)
      where d.subscription = $1 and d.status in ('ready', 'leased') and d.seq = any(array(
        select c.seq from exchange.delivery c
         where c.subscription = $1 and c.status in ('ready', 'leased')
           and ((c.status = 'ready' and c.next_at <= now()) or (c.status = 'leased' and c.lease_until < now()))
           and (c.key is null or not exists (
                 select 1 from exchange.delivery e
                  where e.subscription = c.subscription and e.key = c.key and e.seq < c.seq and e.status in ('ready', 'leased')
                    and ((e.status = 'leased' and e.lease_until >= now()) or (e.status = 'ready' and e.next_at > now()))))
         order by c.seq
         limit $2))
     returning d.seq, d.attempts`,
    [subscription, max, leaseSeconds],
  );
  return rows.map((r) => ({ seq: Number(r.seq), attempts: r.attempts })).sort((a, b) => a.seq - b.seq);
}

async function messagesOf(q: Queryable, seqs: readonly number[]): Promise<(StoredMessage & { seq: number })[]> {
  if (seqs.length === 0) return [];
  const { rows } = await q.query<{ seq: string; source: string; id: string; member: string; resource: string; key: string | null; digest: string; event: string; proof: StoredMessage['proof']; batch: string | null; origin: string; received_at: Date }>(
    `select seq, source, id, member, resource, key, digest, event, proof, batch, origin, received_at from exchange.message where seq = any($1::bigint[]) order by seq`,
    [seqs],
  );
  return (await withBatchHeaders(q, rows)).map((r) => ({ ...r, seq: Number(r.seq), hash: '', time: r.received_at.toISOString() }));
}

/** A member's pull: waits up to waitMs for the first message, then returns what is deliverable. */
export async function pull(rt: ExchangeRuntime, sub: SubscriptionRow, max: number, waitMs: number): Promise<DeliveredEvent[]> {
  const until = Date.now() + waitMs;
  for (;;) {
    const claimed = await rt.db.tx((c) => claim(c, rt, sub.id, max, rt.cfg.leaseSeconds));
    if (claimed.length) {
      const msgs = await messagesOf(rt.db, claimed.map((x) => x.seq));
      // sharing agreements: only what the member's department may receive, cut to the granted items
      const { deliver } = await viewFor(rt, sub, msgs.map((m) => ({ seq: m.seq, event: JSON.parse(m.event), ...(m.proof ? { proof: m.proof } : {}) })));
      return deliver;
    }
    const left = until - Date.now();
    if (left <= 0 || rt.stopped) return [];
    // woken by a publish in this process; other processes' publishes are seen on the next poll
    await rt.waiters.wait(sub.id, Math.min(left, 500));
  }
}

/**
 * Acknowledges delivered messages; each acknowledgement goes into the message log as the
 * subscriber's receipt (回执). Returns how many were newly acknowledged.
 */
export async function ack(rt: ExchangeRuntime, sub: SubscriptionRow, seqs: readonly number[], by: string): Promise<number> {
  if (seqs.length === 0) return 0;
  return rt.db.tx(async (c) => {
    const { rows } = await c.query<{ seq: string; id: string; digest: string }>(
      `with a as (
         update exchange.delivery set status = 'done', done_at = now(), lease_until = null, last_error = null
          where subscription = $1 and seq = any($2::bigint[]) and status in ('leased', 'ready')
          returning seq)
       select m.seq, m.id, m.digest from a join exchange.message m on m.seq = a.seq order by m.seq`,
      [sub.id, seqs],
    );
    if (rows.length) {
      const at = new Date().toISOString();
      const items: LogItem[] = rows.map((r) => ({
        kind: 'receipt',
        ref: r.id,
        member: by,
        digest: sha256(canonicalJson({ subscription: sub.id, seq: Number(r.seq), eventdigest: r.digest, by, at })).toString('hex'),
        at,
      }));
      await appendLog(c, items, { privateKey: rt.self.privateKey, alg: rt.self.alg });
    }
    return rows.length;
  });
}

/** A member says it could not process these: they come back after a back-off (or go dead). */
export async function nack(rt: ExchangeRuntime, sub: SubscriptionRow, seqs: readonly number[], error: string): Promise<number> {
  return failDeliveries(rt.db, rt, sub.id, seqs, error);
}

/** Back to the queue after a back-off; dead-lettered after maxAttempts unless `deadLetter` is false (retried for ever). */
async function failDeliveries(q: Queryable, rt: ExchangeRuntime, subscription: string, seqs: readonly number[], error: string, deadLetter = true): Promise<number> {
  if (seqs.length === 0) return 0;
  // the exponent is capped: a link retried for days must not overflow power()
  const { rowCount } = await q.query(
    `update exchange.delivery set
        status = case when $7::boolean and attempts >= $3 then 'dead' else 'ready' end,
        next_at = now() + make_interval(secs => least($4::double precision * power(2, least(greatest(attempts - 1, 0), 40)), $5::double precision) / 1000),
        lease_until = null, last_error = $6
      where subscription = $1 and seq = any($2::bigint[]) and status = 'leased'`,
    [subscription, seqs, rt.cfg.maxAttempts, rt.cfg.retryBaseMs, rt.cfg.maxBackoffMs, error.slice(0, 2000), deadLetter],
  );
  return rowCount ?? 0;
}

// ------------------------------------------------------------------------------------------------
// Push: one pump per subscription per process, started by a publish (kickPush) or by the sweep job.

export function kickPush(rt: ExchangeRuntime, subscription: string): void {
  if (rt.stopped) return;
  const running = rt.pumps.get(subscription);
  if (running) {
    running.dirty = true;
    return;
  }
  const state = { dirty: false, done: Promise.resolve() };
  rt.pumps.set(subscription, state);
  state.done = (async () => {
    try {
      do {
        state.dirty = false;
        while (!rt.stopped && (await pushOnce(rt, subscription)) > 0);
      } while (state.dirty && !rt.stopped);
    } catch (err) {
      rt.ctx.log.warn({ subscription, err: (err as Error).message }, 'exchange push pump failed; the sweep retries');
    } finally {
      rt.pumps.delete(subscription);
    }
  })();
}

/** Claims one batch and pushes it; returns how many were delivered (0: nothing due, or failed). */
export async function pushOnce(rt: ExchangeRuntime, subscription: string): Promise<number> {
  const sub = (await rt.db.query<SubscriptionRow & { node_url: string | null }>(
    `select s.*, n.url as node_url from exchange.subscription s left join exchange.node n on n.id = s.target_node where s.id = $1`,
    [subscription],
  )).rows[0];
  if (!sub || sub.status !== 'active' || sub.delivery !== 'push') return 0;
  const claimed = await rt.db.tx((c) => claim(c, rt, subscription, PUSH_BATCH, Math.ceil(rt.cfg.leaseSeconds), sub.target_node !== null));
  if (claimed.length === 0) return 0;
  const seqs = claimed.map((x) => x.seq);
  const msgs = await messagesOf(rt.db, seqs);
  let url: string | null;
  let body: string;
  if (sub.target_node) {
    url = sub.node_url ? `${sub.node_url}/api/v1/exchange/federation/messages` : null;
    const certs: Record<string, string> = {};
    const members = [...new Set(msgs.map((m) => m.member))];
    if (members.length) {
      const { rows } = await rt.db.query<{ id: string; cert_pem: string | null }>('select id, cert_pem from exchange.member where id = any($1)', [members]);
      for (const r of rows) if (r.cert_pem) certs[r.id] = r.cert_pem;
    }
    body = JSON.stringify({
      from: rt.self.id,
      certs,
      messages: msgs.map((m) => ({ source: m.source, id: m.id, member: m.member, resource: m.resource, key: m.key, digest: m.digest, event: m.event, proof: m.proof, origin: m.origin })),
    });
  } else {
    url = sub.push_url;
    const { deliver } = await viewFor(rt, sub, msgs.map((m) => ({ seq: m.seq, event: JSON.parse(m.event), ...(m.proof ? { proof: m.proof } : {}) })));
    if (deliver.length === 0) return 0; // refused by the catalog: marked, logged, subscription cancelled
    body = JSON.stringify({ subscription: sub.id, events: deliver });
  }
  let error: string | null = null;
  const refused = new Map<number, string>();
  // a peer node that cannot be reached (down, restarting, overloaded) is retried for ever: a node that
  // is down receives everything when it returns. Only its refusals (4xx) count towards dead letters.
  let transient = false;
  if (!url) {
    error = sub.target_node ? `node ${sub.target_node} has no known URL (not enrolled yet)` : 'no push URL';
    transient = true;
  } else {
    try {
      const path = new URL(url).pathname;
      const res = await rt.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signRequest({ node: rt.self.id }, { privateKey: rt.self.privateKey, alg: rt.self.alg }, { method: 'POST', path, body }) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      if (!res.ok) {
        error = `HTTP ${res.status}: ${(await res.text().catch(() => '')).slice(0, 300)}`;
        transient = res.status >= 500 || res.status === 408 || res.status === 429;
      } else if (sub.target_node) {
        // a peer stores what it can and names each message it refuses (bad signature, revoked, schema)
        const answer = (await res.json().catch(() => null)) as { refused?: { index: number; reason: string; detail: string }[] } | null;
        for (const r of answer?.refused ?? []) if (Number.isInteger(r.index) && seqs[r.index] !== undefined) refused.set(seqs[r.index]!, `${r.reason}: ${r.detail}`.slice(0, 2000));
      } else await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      error = (err as Error).message;
      transient = true;
    }
  }
  if (sub.target_node) {
    await rt.db.query(
      error ? `update exchange.node set status = 'down', last_error = $2 where id = $1` : `update exchange.node set status = 'up', last_contact = now(), last_error = null where id = $1`,
      error ? [sub.target_node, error.slice(0, 500)] : [sub.target_node],
    );
  }
  if (error) {
    await failDeliveries(rt.db, rt, subscription, seqs, error, !(sub.target_node && transient));
    return 0;
  }
  if (refused.size) {
    await rt.db.query(
      `update exchange.delivery d set status = 'dead', lease_until = null, last_error = x.error
         from unnest($2::bigint[], $3::text[]) x(seq, error) where d.subscription = $1 and d.seq = x.seq and d.status = 'leased'`,
      [subscription, [...refused.keys()], [...refused.values()]],
    );
  }
  await ack(rt, sub, seqs.filter((s) => !refused.has(s)), sub.target_member ?? `node:${sub.target_node}`);
  return seqs.length;
}

/**
 * The sweep (a job every GUSU_EXCHANGE_SWEEP_MS, and callable directly): starts a pump for every push
 * subscription with something due (after a back-off, a restart, a publish in another process).
 */
export async function sweep(rt: ExchangeRuntime): Promise<number> {
  const { rows } = await rt.db.query<{ subscription: string }>(
    `select s.id as subscription from exchange.subscription s
      where s.status = 'active' and s.delivery = 'push'
        and exists (select 1 from exchange.delivery d where d.subscription = s.id and d.status in ('ready', 'leased')
                     and ((d.status = 'ready' and d.next_at <= now()) or (d.status = 'leased' and d.lease_until < now())))`,
  );
  for (const r of rows) kickPush(rt, r.subscription);
  return rows.length;
}

/** Schedules the next sweep, `everyMs` (GUSU_EXCHANGE_SWEEP_MS) from now unless `at` is given. */
export async function scheduleSweep(q: Queryable, everyMs = SWEEP_EVERY_MS, at = new Date(Date.now() + everyMs)): Promise<void> {
  const slot = Math.floor(at.getTime() / everyMs);
  await enqueue(q, SWEEP_JOB, {}, { runAt: at, uniqueKey: `${SWEEP_JOB}:${slot}`, maxAttempts: 1 });
}

/** Waits for this process's push pumps to finish (shutdown, tests). */
export async function idlePumps(rt: ExchangeRuntime): Promise<void> {
  while (rt.pumps.size) await Promise.allSettled([...rt.pumps.values()].map((p) => p.done));
}

/** Retention: messages older than retentionDays whose deliveries are all finished are removed (the log keeps their hashes). */
export async function purgeExpired(rt: ExchangeRuntime): Promise<number> {
  const { rowCount } = await rt.db.query(
    `with old as (
       select m.seq from exchange.message m
        where m.received_at < now() - make_interval(days => $1)
          and not exists (select 1 from exchange.delivery d where d.seq = m.seq and d.status in ('ready', 'leased', 'dead'))
        limit 10000),
     gone as (delete from exchange.delivery d using old where d.seq = old.seq)
     delete from exchange.message m using old where m.seq = old.seq`,
    [rt.cfg.retentionDays],
  );
  return rowCount ?? 0;
}
