// Accepting messages (增量交换): a member publishes one signed event or a batch; the node checks,
// cheapest first, the envelope, the sender, the resource and its schema, the signature (one per
// batch when batch-signed), then in ONE transaction stores each message once, refuses a replay (same
// source and id, other content), fans it out to every subscription's queue and appends it to the
// message log. Only after the commit does the publisher get its receipt: a 2xx survives kill -9.
import { appendAudit } from '../audit/index.ts';
import type { Queryable } from '../../db/index.ts';
import { sign, verify, type Alg } from '../identity/crypto/index.ts';
import type { KeyObject } from 'node:crypto';
import { bodyDigest, verifyRequestSignature } from './auth.ts';
import { canonicalJson, digestOf, sha256 } from './canonical.ts';
import { eventHash, parseEvent, verifySealed, type ExchangeEvent } from './envelope.ts';
import { verifyBatchedParsed, type BatchHeader, type InclusionProof } from './batch.ts';
// a record of a bulk batch: the member-signed batch header, the record and its inclusion path (bulk-format.ts checkBulkProof)
import type { BulkProof } from './bulk-format.ts';
import { merkleRoot, merkleTree } from './merkle.ts';
import { makeReceipt, type Receipt } from './receipt.ts';
import { appendLog } from './store.ts';
import { ExchangeError, type MemberKey } from './registry.ts';
import { noteArrivals } from './view.ts';
import type { ExchangeRuntime } from './runtime.ts';
import { kickPush } from './delivery.ts';
import type { LogItem } from './log.ts';

export const BATCH_RECEIPT_TYPE = 'gusu.exchange.batch-receipt.v1';

export interface BatchReceipt {
  type: typeof BATCH_RECEIPT_TYPE;
  /** the node that accepted the batch, 'node:<id>' */
  receiver: string;
  sender: string;
  size: number;
  /** RFC 6962 Merkle root over the event hashes, in the order sent: the sender recomputes it */
  root: string;
  accepted: number;
  duplicates: number;
  time: string;
  alg: string;
  sig: string;
}

/** A message as stored: from a local member (via null) or forwarded by a peer node. */
export interface StoredMessage {
  source: string;
  id: string;
  member: string;
  resource: string;
  key: string | null;
  digest: string;
  /** the envelope as JSON text */
  event: string;
  proof: MessageProof | null;
  origin: string;
  /** event hash hex (the message log binds it) */
  hash: string;
  time: string;
}

/**
 * How a message without its own gususig is bound to its member: a batch signature with an inclusion
 * proof, or (GovStack publish of plain data) the member's signed request that carried it.
 */
export type MessageProof = { header: BatchHeader; index: number; path: string[] } | RequestProof | BulkProof;

export interface RequestProof {
  request: { by: string; date: string; method: string; path: string; body: string; sig: string };
}

export function isRequestProof(p: unknown): p is RequestProof {
  const r = (p as RequestProof | null)?.request;
  return !!r && typeof r === 'object' && ['by', 'date', 'method', 'path', 'body', 'sig'].every((k) => typeof (r as Record<string, unknown>)[k] === 'string');
}

/** The request carried exactly this event's data for this resource, and the member signed that request. */
export function checkRequestProof(e: ExchangeEvent, p: RequestProof, alg: Alg, key: KeyObject | Uint8Array | string): boolean {
  const r = p.request;
  if (r.by !== e.gusumember || r.body.length > 2 * 1024 * 1024) return false;
  let body: { eventType?: unknown; event?: unknown };
  try {
    body = JSON.parse(r.body);
    if (body?.eventType !== e.gusuresource || digestOf(body.event) !== e.gusudigest) return false;
  } catch {
    return false;
  }
  return verifyRequestSignature(alg, key, { by: r.by, date: r.date, method: r.method, path: r.path, body: bodyDigest(r.body) }, Buffer.from(r.sig, 'base64url'));
}

export interface StoreResult {
  /** per input: the stored seq and whether it was already there (same content) */
  seqs: { seq: number; duplicate: boolean }[];
  subscriptions: { id: string; push: boolean }[];
}

/** the proof fields that hold a signed header shared by many messages: a batch's, a bulk file's */
const HEADER_FIELDS = ['header', 'bulk'] as const;
type HeaderField = (typeof HEADER_FIELDS)[number];

/**
 * Each message's proof as stored (JSON text, without its batch header) and the key of that header,
 * and the distinct headers to store once (exchange.batch). `leaves`: for a batch header (by identity)
 * whose events all came in order, their hashes (32 bytes each): stored with the header, and its
 * messages' proofs hold no path (withBatchHeaders computes it). The key is the SHA-256 of the field,
 * the header's JSON and whether the leaves are kept.
 */
function splitProofs(msgs: readonly StoredMessage[], leaves?: ReadonlyMap<object, Buffer>): { proofs: (string | null)[]; keys: (string | null)[]; headers: { key: string; field: HeaderField; header: string; leaves: Buffer | null }[] } {
  const known = new Map<object, string>();
  const headers = new Map<string, { key: string; field: HeaderField; header: string; leaves: Buffer | null }>();
  const proofs: (string | null)[] = [];
  const keys: (string | null)[] = [];
  for (const m of msgs) {
    const p = m.proof as Record<string, unknown> | null;
    const field = p && typeof p === 'object' ? HEADER_FIELDS.find((f) => p[f] && typeof p[f] === 'object' && !Array.isArray(p[f])) : undefined;
    if (!p || !field) {
      proofs.push(p ? JSON.stringify(p) : null);
      keys.push(null);
      continue;
    }
    const header = p[field] as object;
    let key = known.get(header);
    if (key === undefined) {
      const text = JSON.stringify(header);
      const kept = (field === 'header' && leaves?.get(header)) || null;
      key = sha256(`${field}\n${text}${kept ? '\nleaves' : ''}`).toString('hex');
      known.set(header, key);
      if (!headers.has(key)) headers.set(key, { key, field, header: text, leaves: kept });
    }
    const { [field]: _header, ...rest } = p;
    if (!('path' in rest) && !headers.get(key)!.leaves) throw new Error(`message ${m.id}: a batch proof without a path, and no leaves to compute it`);
    proofs.push(JSON.stringify(rest));
    keys.push(key);
  }
  return { proofs, keys, headers: [...headers.values()] };
}

/**
 * Puts each message's batch header (exchange.batch) back into its proof, and its inclusion path where
 * the batch's leaves were kept: the proof as it was published.
 */
export async function withBatchHeaders<T extends { proof: unknown; batch: string | null }>(q: Queryable, rows: T[]): Promise<(Omit<T, 'batch'> & { proof: MessageProof | null })[]> {
  const keys = [...new Set(rows.map((r) => r.batch).filter((k): k is string => k !== null))];
  const headers = new Map<string, { field: string; header: unknown; leaves: Buffer | null; paths?: string[][] }>();
  if (keys.length) {
    const { rows: found } = await q.query<{ key: string; field: string; header: unknown; leaves: Buffer | null }>('select key, field, header, leaves from exchange.batch where key = any($1::text[])', [keys]);
    for (const h of found) headers.set(h.key, h);
  }
  return rows.map(({ batch, ...r }) => {
    if (batch === null) return { ...r, proof: r.proof as MessageProof | null };
    const h = headers.get(batch);
    if (!h) throw new Error(`the batch header ${batch} of a stored message is missing`);
    const rest = r.proof as { index: number; path?: string[] };
    if (rest.path === undefined && h.leaves) {
      h.paths ??= merkleTree(Array.from({ length: h.leaves.length / 32 }, (_, i) => h.leaves!.subarray(i * 32, i * 32 + 32))).proofs.map((p) => p.map((b) => b.toString('hex')));
      return { ...r, proof: { [h.field]: h.header, index: rest.index, path: h.paths[rest.index]! } as MessageProof };
    }
    return { ...r, proof: { [h.field]: h.header, ...rest } as MessageProof };
  });
}

/**
 * Stores messages, refuses replays, fans out and logs, inside the caller's transaction.
 * `via`: the peer node that forwarded them (null for a local member); never sent back there.
 */
export async function storeMessages(c: Queryable, rt: ExchangeRuntime, msgs: readonly StoredMessage[], via: string | null, leaves?: ReadonlyMap<object, Buffer>): Promise<StoreResult> {
  // a batch's (or bulk file's) signed header once in exchange.batch; each message keeps the rest of its proof
  const split = splitProofs(msgs, leaves);
  const inserted = await c.query<{ seq: string; source: string; id: string }>(
    `with b as (
       insert into exchange.batch (key, field, header, leaves)
       select * from unnest($11::text[], $12::text[], $13::jsonb[], $15::bytea[])
       on conflict (key) do nothing)
     insert into exchange.message (source, id, member, resource, key, digest, event, proof, batch, origin, via)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[], $14::text[])
     on conflict (source, id) do nothing
     returning seq, source, id`,
    [
      msgs.map((m) => m.source),
      msgs.map((m) => m.id),
      msgs.map((m) => m.member),
      msgs.map((m) => m.resource),
      msgs.map((m) => m.key),
      msgs.map((m) => m.digest),
      msgs.map((m) => m.event),
      split.proofs,
      split.keys,
      msgs.map((m) => m.origin),
      split.headers.map((h) => h.key),
      split.headers.map((h) => h.field),
      split.headers.map((h) => h.header),
      msgs.map(() => via),
      split.headers.map((h) => h.leaves),
    ],
  );
  const fresh = new Map<string, number>();
  for (const r of inserted.rows) fresh.set(`${r.source}\n${r.id}`, Number(r.seq));
  const seqs: StoreResult['seqs'] = [];
  const missing = msgs.filter((m) => !fresh.has(`${m.source}\n${m.id}`));
  const existing = new Map<string, { seq: number; digest: string }>();
  if (missing.length) {
    const { rows } = await c.query<{ seq: string; source: string; id: string; digest: string }>(
      `select m.seq, m.source, m.id, m.digest from exchange.message m join unnest($1::text[], $2::text[]) x(source, id) on m.source = x.source and m.id = x.id`,
      [missing.map((m) => m.source), missing.map((m) => m.id)],
    );
    for (const r of rows) existing.set(`${r.source}\n${r.id}`, { seq: Number(r.seq), digest: r.digest });
  }
  const firstInBatch = new Map<string, StoredMessage>();
  for (const [index, m] of msgs.entries()) {
    const k = `${m.source}\n${m.id}`;
    const prior = firstInBatch.get(k);
    if (prior && prior.digest !== m.digest) throw new ExchangeError('conflict', 'replay', `event ${index}: id ${m.id} from ${m.source} appears twice in the batch with different content`, { index });
    if (!prior) firstInBatch.set(k, m);
    const seq = fresh.get(k);
    if (seq !== undefined && !prior) {
      seqs.push({ seq, duplicate: false });
      continue;
    }
    const old = existing.get(k) ?? (seq !== undefined ? { seq, digest: m.digest } : undefined);
    if (!old) throw new Error(`message ${k} neither inserted nor found`);
    if (old.digest !== m.digest) throw new ExchangeError('conflict', 'replay', `event ${index}: id ${m.id} from ${m.source} was already accepted with other content (digest ${old.digest.slice(0, 12)}…): a replay`, { index });
    seqs.push({ seq: old.seq, duplicate: true });
  }
  const freshSeqs = seqs.filter((s) => !s.duplicate).map((s) => s.seq);
  let subscriptions: StoreResult['subscriptions'] = [];
  if (freshSeqs.length) {
    const { rows } = await c.query<{ subscription: string; push: boolean }>(
      `with d as (
         insert into exchange.delivery (subscription, seq, key)
         select s.id, m.seq, m.key
           from exchange.message m
           join exchange.subscription s on s.status = 'active' and (s.resource = m.resource or s.resource = '*')
          where m.seq = any($1::bigint[])
            and (s.target_node is null or s.target_node is distinct from $2::text)
            and (s.target_node is null or s.target_node <> m.origin)
         returning subscription)
       select distinct d.subscription, s.delivery = 'push' as push from d join exchange.subscription s on s.id = d.subscription`,
      [freshSeqs, via],
    );
    subscriptions = rows.map((r) => ({ id: r.subscription, push: r.push }));
    const items: LogItem[] = msgs.filter((_, i) => !seqs[i]!.duplicate).map((m) => ({ kind: 'event', ref: m.id, member: m.member, digest: m.hash, at: m.time }));
    await appendLog(c, items, { privateKey: rt.self.privateKey, alg: rt.self.alg });
  }
  return { seqs, subscriptions };
}

/** After a commit: wake waiting pulls and push pumps in this process. */
export function afterCommit(rt: ExchangeRuntime, subs: StoreResult['subscriptions'], arrived: readonly { resource: string }[] = []): void {
  rt.waiters.wake(subs.map((s) => s.id));
  for (const s of subs) if (s.push) kickPush(rt, s.id);
  // the catalog's freshness: data arrived for these resources (best effort, throttled)
  if (arrived.length) noteArrivals(rt, arrived);
}

export interface PublishInput {
  events: unknown[];
  /** batch-signed: the signed header and each event's inclusion proof */
  batch?: { header: BatchHeader; proofs: InclusionProof[] };
  /** one event of plain data (GovStack publish), bound by the member's signed request */
  attested?: RequestProof;
}

export interface PublishResult {
  accepted: number;
  duplicates: number;
  /** one event: the node's signed receipt; a batch: one batch receipt */
  receipt: Receipt | BatchReceipt;
  duplicate: boolean;
  seqs: number[];
}

async function refuse(q: Queryable, member: string | null, eventId: string | null, reason: string, detail: string, ip: string | null): Promise<void> {
  await q
    .query('insert into exchange.refusal (member, event_id, reason, detail, remote_addr) values ($1, $2, $3, $4, $5)', [member?.slice(0, 255) ?? null, eventId?.slice(0, 200) ?? null, reason, detail.slice(0, 2000), ip])
    .catch(() => undefined);
}

/** Records a refusal (exchange.refusal), then rethrows it: every refused publish or call is logged. */
export async function recordRefusal(rt: ExchangeRuntime, err: ExchangeError, who: string | null, eventId: string | null, ip: string | null): Promise<never> {
  await refuse(rt.db, who, eventId, err.reason, err.message, ip);
  throw err;
}

const REASON_CODE: Record<string, ExchangeError['code']> = {
  malformed: 'validation',
  oversized: 'validation',
  unsigned: 'forbidden',
  'unsupported-alg': 'validation',
  'alg-mismatch': 'forbidden',
  'digest-mismatch': 'forbidden',
  'bad-signature': 'forbidden',
};

/** Publishes for an authenticated member (the request signature already verified). */
export async function publish(rt: ExchangeRuntime, publisher: MemberKey, input: PublishInput, meta: { ip?: string | null } = {}): Promise<PublishResult> {
  const ip = meta.ip ?? null;
  const member = publisher.member;
  const fail = (reason: string, detail: string, index: number | null, eventId: string | null, code?: ExchangeError['code']) =>
    recordRefusal(rt, new ExchangeError(code ?? REASON_CODE[reason] ?? 'validation', reason, detail, index === null ? {} : { index }), member.id, eventId, ip);
  if (member.status !== 'active') await fail('suspended', `${member.id} is suspended`, null, null, 'forbidden');
  if (member.cert_serial && (await rt.trust.isRevoked(rt.db, member.cert_serial))) {
    rt.caches.forget();
    await fail('certificate', `the certificate of ${member.id} (serial ${member.cert_serial}) is revoked`, null, null, 'forbidden');
  }
  if (!Array.isArray(input.events) || input.events.length === 0) await fail('malformed', 'no events', null, null);
  if (input.events.length > 5000) await fail('oversized', `${input.events.length} events in one request: at most 5000`, null, null);
  if (input.batch && (!Array.isArray(input.batch.proofs) || input.batch.proofs.length !== input.events.length)) await fail('malformed', 'a batch needs one inclusion proof per event', null, null);

  const msgs: StoredMessage[] = [];
  const events: ExchangeEvent[] = [];
  const now = new Date().toISOString();
  // the whole batch, in order: its leaves are the events' hashes, stored once with the header (each
  // message's inclusion path is computed from them when it is read, not stored with it)
  const whole = !!input.batch && input.batch.header.size === input.events.length && input.batch.proofs.every((p, i) => p?.index === i);
  for (const [i, raw] of input.events.entries()) {
    const index = input.events.length > 1 || input.batch ? i : null;
    const parsed = parseEvent(raw, { maxBytes: rt.cfg.maxEventBytes });
    const rawId = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? String((raw as { id: string }).id) : null;
    if (!parsed.ok) return fail(parsed.reason, `event ${i}: ${parsed.detail}`, index, rawId);
    const e = parsed.event;
    if (e.gusumember !== member.id) return fail('bad-signature', `event ${i}: gusumember ${e.gusumember} is not the signing member ${member.id}`, index, e.id);
    const res = await rt.caches.resource(rt.db, e.gusuresource);
    if (!res) return fail('unknown-resource', `event ${i}: no resource ${e.gusuresource}`, index, e.id, 'not-found');
    if (res.row.provider !== member.id) return fail('not-provider', `event ${i}: ${member.id} does not provide ${e.gusuresource} (its provider is ${res.row.provider})`, index, e.id, 'forbidden');
    if (!res.validate(e.data)) {
      const errors = (res.validate.errors ?? []).slice(0, 20).map((x) => ({ pointer: `/data${x.instancePath}`, message: x.message ?? 'invalid' }));
      return recordRefusal(rt, new ExchangeError('validation', 'schema', `event ${i}: data does not match the schema of ${e.gusuresource}: ${errors.map((x) => `${x.pointer} ${x.message}`).join('; ')}`, { errors, ...(index === null ? {} : { index }) }), member.id, e.id, ip);
    }
    if (!input.batch && !input.attested && (e.gususig === undefined || e.gususig === '')) return fail('unsigned', `event ${i}: no gususig: every event is signed by its member (or the batch it is in)`, index, e.id, 'forbidden');
    const v = input.batch
      ? verifyBatchedParsed(e, input.batch.proofs[i]!, input.batch.header, publisher.spki, { verified: rt.batches })
      : input.attested
        ? verifySealed(e, publisher.publicKey, () => checkRequestProof(e, input.attested!, publisher.alg, publisher.publicKey))
        : verifySealed(e, publisher.publicKey, (signingInput) => verifyOne(publisher, signingInput, e.gususig!));
    if (!v.ok) return fail(v.reason, `event ${i}: ${v.detail}`, index, e.id);
    const proof: MessageProof | null = input.batch
      ? whole
        ? ({ header: input.batch.header, index: i } as MessageProof)
        : { header: input.batch.header, index: input.batch.proofs[i]!.index, path: input.batch.proofs[i]!.path }
      : (input.attested ?? null);
    msgs.push({
      source: e.source,
      id: e.id,
      member: member.id,
      resource: e.gusuresource,
      key: e.gusukey ?? null,
      digest: e.gusudigest,
      event: typeof raw === 'string' ? raw : JSON.stringify(e),
      proof,
      origin: rt.self.id,
      hash: ((v as { hash?: Buffer }).hash ?? eventHash(e)).toString('hex'),
      time: now,
    });
    events.push(e);
  }

  let stored: StoreResult;
  try {
    const leaves = whole ? new Map([[input.batch!.header as object, Buffer.concat(msgs.map((m) => Buffer.from(m.hash, 'hex')))]]) : undefined;
    stored = await rt.db.tx((c) => storeMessages(c, rt, msgs, null, leaves));
  } catch (err) {
    if (err instanceof ExchangeError) {
      const idx = typeof err.extra.index === 'number' ? err.extra.index : null;
      return recordRefusal(rt, err, member.id, idx !== null ? (msgs[idx]?.id ?? null) : null, ip);
    }
    throw err;
  }
  afterCommit(rt, stored.subscriptions, msgs);

  const duplicates = stored.seqs.filter((s) => s.duplicate).length;
  const accepted = stored.seqs.length - duplicates;
  const seqs = stored.seqs.map((s) => s.seq);
  if (events.length === 1 && !input.batch) {
    const receipt = makeReceipt(events[0]!, `node:${rt.self.id}`, 'accepted', undefined, rt.self.privateKey, rt.self.alg);
    return { accepted, duplicates, receipt, duplicate: duplicates === 1, seqs };
  }
  const body: Omit<BatchReceipt, 'sig'> = {
    type: BATCH_RECEIPT_TYPE,
    receiver: `node:${rt.self.id}`,
    sender: member.id,
    size: events.length,
    // each event verified at index i of a tree of this size under the signed root: that root is the root of what was sent
    root:
      whole
        ? input.batch!.header.root
        : merkleRoot(msgs.map((m) => Buffer.from(m.hash, 'hex'))).toString('hex'),
    accepted,
    duplicates,
    time: now,
    alg: rt.self.alg,
  };
  const receipt: BatchReceipt = { ...body, sig: sign(rt.self.alg, rt.self.privateKey, canonicalJson(body)).toString('base64url') };
  return { accepted, duplicates, receipt, duplicate: false, seqs };
}

function verifyOne(publisher: MemberKey, input: string, sig: string): boolean {
  try {
    return verify(publisher.alg, publisher.publicKey, input, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}

/** Audit of operator actions on the exchange (members, resources, entitlements, replays). */
export async function auditExchange(q: Queryable, actor: { kind: 'staff' | 'system'; id: string; department?: string }, action: string, resource: { type: string; id: string }, details: Record<string, unknown> = {}): Promise<void> {
  await appendAudit(q, { actor, action: `exchange.${action}`, resource, outcome: 'ok', details });
}
