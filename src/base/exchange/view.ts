// Sharing agreements, enforced where messages leave the node: before a batch of a catalogued
// resource is handed to a member (pull or push), the catalog decides what the member's department
// may receive today. Nothing: the messages are refused (dead-lettered with the reason, the refusal
// logged, the subscription cancelled) — so a revocation or an expiry takes effect on the next
// message. Fewer items than the entry has: each event's data is cut down to the granted items and
// the node re-signs the cut event as itself (the publisher's signature covered the whole data),
// naming the agreement and the items; the consumer checks it with the node's certificate.
import type { Queryable } from '../../db/index.ts';
import { accessFor, entryOfResource, noteArrival, projectItems, type Grant } from '../catalog/index.ts';
import { signEvent, type ExchangeEvent, type UnsignedEvent } from './envelope.ts';
import type { ExchangeRuntime } from './runtime.ts';
import type { MemberRow, SubscriptionRow } from './registry.ts';

/** A member acts for its department: the department it was registered with, else its member code. */
export function departmentOf(m: Pick<MemberRow, 'department' | 'member_code'>): string {
  return m.department ?? m.member_code;
}

export type CatalogDecision = { catalogued: false } | { catalogued: true; entry: string; grant: Grant | null };

/** The catalog's decision for a member on a resource; `catalogued: false` when no entry carries it. */
export async function catalogDecision(q: Queryable, resource: string, member: Pick<MemberRow, 'id' | 'department' | 'member_code'>): Promise<CatalogDecision> {
  const entry = await entryOfResource(q, resource);
  if (!entry) return { catalogued: false };
  return { catalogued: true, entry: entry.code, grant: await accessFor(q, entry, departmentOf(member)) };
}

export interface ViewedMessage {
  seq: number;
  event: unknown;
  proof?: unknown;
}

/** The node's attestation on a cut event, in place of the publisher's proof. */
export interface ViewProof {
  view: { node: string; agreement: string | null; entry: string; items: string[]; originalDigest: string };
}

/**
 * What a member subscription may receive of these messages. Returns the messages as delivered and
 * the seqs refused (which the caller must not deliver; they are already marked).
 */
export async function viewFor(rt: ExchangeRuntime, sub: SubscriptionRow, msgs: readonly ViewedMessage[]): Promise<{ deliver: ViewedMessage[]; refused: number }> {
  if (!sub.target_member || msgs.length === 0) return { deliver: [...msgs], refused: 0 };
  const member = (await rt.db.query<MemberRow>('select * from exchange.member where id = $1', [sub.target_member])).rows[0];
  if (!member) return { deliver: [...msgs], refused: 0 };
  const d = await catalogDecision(rt.db, sub.resource, member);
  if (!d.catalogued) return { deliver: [...msgs], refused: 0 };
  if (!d.grant) {
    const seqs = msgs.map((m) => m.seq);
    const reason = `${departmentOf(member)} has no active sharing agreement for catalog entry ${d.entry} (revoked, expired, withdrawn or never granted)`;
    await rt.db.tx(async (c) => {
      await c.query(
        `update exchange.delivery set status = 'dead', lease_until = null, last_error = $3 where subscription = $1 and seq = any($2::bigint[]) and status in ('leased', 'ready')`,
        [sub.id, seqs, `not-entitled: ${reason}`],
      );
      await c.query(`update exchange.subscription set status = 'cancelled', cancelled_at = now() where id = $1 and status = 'active'`, [sub.id]);
      await c.query('insert into exchange.refusal (member, event_id, reason, detail, remote_addr) values ($1, $2, $3, $4, null)', [member.id, null, 'not-entitled', `delivery of ${seqs.length} message(s) of ${sub.resource} refused: ${reason}`.slice(0, 2000)]);
    });
    return { deliver: [], refused: seqs.length };
  }
  if (!d.grant.partial) return { deliver: [...msgs], refused: 0 };
  const grant = d.grant;
  const deliver = msgs.map((m) => {
    const e = m.event as ExchangeEvent;
    const data = e.data && typeof e.data === 'object' && !Array.isArray(e.data) ? projectItems(e.data as Record<string, unknown>, grant) : {};
    const { gususig: _s, gusudigest, gusualg: _a, ...attrs } = e;
    const cut = signEvent({ ...(attrs as UnsignedEvent), data, gusuviewby: rt.self.id, gusuitems: grant.items.join(' '), ...(grant.agreementId ? { gusuagreement: grant.agreementId } : {}) } as UnsignedEvent, rt.self.privateKey, rt.self.alg);
    const proof: ViewProof = { view: { node: rt.self.id, agreement: grant.agreementId, entry: grant.entry, items: grant.items, originalDigest: gusudigest } };
    return { seq: m.seq, event: cut, proof };
  });
  return { deliver, refused: 0 };
}

const lastNoted = new WeakMap<ExchangeRuntime, Map<string, number>>();
const NOTE_EVERY_MS = 5_000;

/**
 * Data arrived for these resources: the catalog's freshness is told (once per resource every few
 * seconds per process; best effort: a failure is logged, never the publisher's problem).
 */
export function noteArrivals(rt: ExchangeRuntime, arrived: readonly { resource: string }[]): void {
  let seen = lastNoted.get(rt);
  if (!seen) lastNoted.set(rt, (seen = new Map()));
  const counts = new Map<string, number>();
  for (const m of arrived) counts.set(m.resource, (counts.get(m.resource) ?? 0) + 1);
  const now = Date.now();
  for (const [resource, n] of counts) {
    if (now - (seen.get(resource) ?? 0) < NOTE_EVERY_MS) continue;
    seen.set(resource, now);
    void (async () => {
      const entry = await entryOfResource(rt.db, resource);
      if (entry) await noteArrival(rt.db, entry.code, new Date(), n);
    })().catch((err) => rt.ctx.log.warn({ resource, err: (err as Error).message }, 'catalog arrival not noted'));
  }
}
