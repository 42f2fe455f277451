// Store-and-forward between nodes. A peer POSTs a batch of messages it holds (each still signed by
// its member, with the member's certificate alongside); this node checks the certificates against the
// municipal CA and every member signature again — it trusts the CA, not the peer — then stores them
// exactly as a local publish would (deduplicated by source and id, fanned out, logged), marking the
// peer as `via` so nothing is sent back to it.
import crypto, { type KeyObject } from 'node:crypto';
import { parseEvent, eventHash, verifySealed } from './envelope.ts';
import { verifyBatchedEvent } from './batch.ts';
import { checkBulkProof, isBulkProof, type BulkProof } from './bulk-format.ts';
import { afterCommit, checkRequestProof, isRequestProof, storeMessages, type MessageProof, type RequestProof, type StoredMessage } from './publish.ts';
import { ExchangeError } from './registry.ts';
import type { ExchangeRuntime } from './runtime.ts';
import { verify, type Alg } from '../identity/crypto/index.ts';

/** a message as a peer forwards it: as stored, without what this node computes (hash, time) */
type Forwarded = Omit<StoredMessage, 'hash' | 'time'>;

const certKeys = new Map<string, { key: KeyObject; alg: Alg; serial: string; at: number }>();

/**
 * Stores what a peer forwards. A message that fails its checks is refused alone (named by index and
 * logged) and the rest are stored: one bad message does not hold up the others of the batch.
 */
export async function ingestFederated(rt: ExchangeRuntime, from: string, body: unknown, ip: string | null): Promise<{ accepted: number; duplicates: number; refused: { index: number; reason: string; detail: string }[] }> {
  const b = body as { from?: unknown; certs?: unknown; messages?: unknown };
  if (!b || typeof b !== 'object' || b.from !== from || !Array.isArray(b.messages) || typeof b.certs !== 'object' || b.certs === null) {
    throw new ExchangeError('validation', 'malformed', 'a forwarded batch is { from: <this caller>, certs: { member: PEM }, messages: [...] }');
  }
  if (b.messages.length > 5000) throw new ExchangeError('validation', 'oversized', 'at most 5000 messages per forwarded batch');
  const certs = b.certs as Record<string, unknown>;
  const now = new Date().toISOString();
  const msgs: StoredMessage[] = [];
  const refused: { index: number; reason: string; detail: string }[] = [];
  const revokedChecked = new Set<string>();
  for (const [i, raw] of (b.messages as Forwarded[]).entries()) {
    try {
      if (!raw || typeof raw !== 'object' || typeof raw.event !== 'string' || typeof raw.member !== 'string' || typeof raw.origin !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(raw.origin)) {
        throw new ExchangeError('validation', 'malformed', `message ${i} is malformed`, { index: i });
      }
      const pem = certs[raw.member];
      if (typeof pem !== 'string') throw new ExchangeError('validation', 'certificate', `message ${i}: no certificate for ${raw.member}`, { index: i });
      const fp = crypto.createHash('sha256').update(pem).digest('hex');
      let k = certKeys.get(fp);
      if (!k || Date.now() - k.at > 60_000) {
        const v = await rt.trust.verify(rt.db, pem);
        if (!v.ok) throw new ExchangeError('forbidden', 'certificate', `message ${i}: the certificate of ${raw.member} does not verify: ${v.reason}: ${v.detail}`, { index: i });
        k = { key: crypto.createPublicKey({ key: v.publicKey, format: 'der', type: 'spki' }), alg: v.alg, serial: v.serial, at: Date.now() };
        certKeys.set(fp, k);
        if (certKeys.size > 10_000) certKeys.delete(certKeys.keys().next().value!);
      } else if (!revokedChecked.has(k.serial)) {
        // the chain is cached; revocation is checked once per forwarded batch
        if (await rt.trust.isRevoked(rt.db, k.serial)) {
          certKeys.delete(fp);
          throw new ExchangeError('forbidden', 'certificate', `message ${i}: the certificate of ${raw.member} (serial ${k.serial}) is revoked`, { index: i });
        }
      }
      revokedChecked.add(k.serial);
      const parsed = parseEvent(raw.event, { maxBytes: rt.cfg.maxEventBytes });
      if (!parsed.ok) throw new ExchangeError('validation', parsed.reason, `message ${i}: ${parsed.detail}`, { index: i });
      const e = parsed.event;
      if (e.gusumember !== raw.member) throw new ExchangeError('forbidden', 'bad-signature', `message ${i}: the event's gusumember is not ${raw.member}`, { index: i });
      const v = isBulkProof(raw.proof)
        ? verifySealed(e, k.key, () => checkBulkProof(e, raw.proof as BulkProof, k!.alg, k!.key))
        : isRequestProof(raw.proof)
        ? verifySealed(e, k.key, () => checkRequestProof(e, raw.proof as RequestProof, k!.alg, k!.key))
        : raw.proof
        ? verifyBatchedEvent(e, { index: raw.proof.index, path: raw.proof.path }, raw.proof.header, k.key, { maxBytes: rt.cfg.maxEventBytes, verified: rt.batches })
        : e.gususig
          ? verifySealed(e, k.key, (input) => {
              try {
                return verify(k!.alg, k!.key, input, Buffer.from(e.gususig!, 'base64url'));
              } catch {
                return false;
              }
            })
          : ({ ok: false, reason: 'unsigned', detail: 'no gususig' } as const);
      if (!v.ok) throw new ExchangeError('forbidden', v.reason, `message ${i}: ${v.detail}`, { index: i });
      // the schema is the provider node's to enforce; where this node knows the resource, it checks too
      const res = await rt.caches.resource(rt.db, e.gusuresource);
      if (res && !res.validate(e.data)) throw new ExchangeError('validation', 'schema', `message ${i}: data does not match the schema of ${e.gusuresource}`, { index: i });
      msgs.push({
        source: e.source,
        id: e.id,
        member: raw.member,
        resource: e.gusuresource,
        key: e.gusukey ?? null,
        digest: e.gusudigest,
        event: raw.event,
        proof: raw.proof,
        origin: raw.origin,
        hash: eventHash(e).toString('hex'),
        time: now,
      });
    } catch (err) {
      if (!(err instanceof ExchangeError)) throw err;
      refused.push({ index: i, reason: err.reason, detail: err.message });
      await rt.db.query('insert into exchange.refusal (member, event_id, reason, detail, remote_addr) values ($1, $2, $3, $4, $5)', [`node:${from}`, typeof raw?.id === 'string' ? raw.id.slice(0, 200) : null, err.reason, err.message.slice(0, 2000), ip]).catch(() => undefined);
    }
  }
  if (msgs.length === 0) return { accepted: 0, duplicates: 0, refused };
  try {
    const stored = await rt.db.tx((c) => storeMessages(c, rt, msgs, from));
    afterCommit(rt, stored.subscriptions, msgs);
    const duplicates = stored.seqs.filter((s) => s.duplicate).length;
    return { accepted: stored.seqs.length - duplicates, duplicates, refused };
  } catch (err) {
    if (err instanceof ExchangeError) {
      await rt.db.query('insert into exchange.refusal (member, reason, detail, remote_addr) values ($1, $2, $3, $4)', [`node:${from}`, err.reason, err.message.slice(0, 2000), ip]).catch(() => undefined);
    }
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------
// Directory sync between a division node and its hub: one signed round trip that (1) registers the
// division's own members at the hub, (2) tells the hub which resources the division's members
// subscribe to (the hub keeps one node subscription per resource), and (3) returns the city-wide
// directory (members and resources), which the division mirrors so its members can subscribe to
// resources provided elsewhere and verify their senders.

export interface DirectoryMember {
  id: string;
  memberClass: string;
  memberCode: string;
  subsystem: string;
  name: string;
  department: string | null;
  node: string;
  certificate: string;
  status: 'active' | 'suspended';
}

export interface DirectoryResource {
  id: string;
  name: string;
  nameEn: string | null;
  provider: string;
  schema: Record<string, unknown>;
  share: 'open' | 'conditional' | 'closed';
  keyField: string | null;
}

export interface SyncRequest {
  members: DirectoryMember[];
  interests: string[];
}

export interface SyncResponse {
  hub: string;
  members: DirectoryMember[];
  resources: DirectoryResource[];
  refused: { member?: string; resource?: string; reason: string }[];
}

async function directoryMembers(q: import('../../db/index.ts').Queryable, where = 'true', args: unknown[] = []): Promise<DirectoryMember[]> {
  const { rows } = await q.query<{ id: string; member_class: string; member_code: string; subsystem: string; name: string; department: string | null; node_id: string; cert_pem: string | null; status: 'active' | 'suspended' }>(
    `select id, member_class, member_code, subsystem, name, department, node_id, cert_pem, status from exchange.member where cert_pem is not null and ${where} order by id`,
    args,
  );
  return rows.map((r) => ({ id: r.id, memberClass: r.member_class, memberCode: r.member_code, subsystem: r.subsystem, name: r.name, department: r.department, node: r.node_id, certificate: r.cert_pem!, status: r.status }));
}

async function mirrorMember(rt: ExchangeRuntime, m: DirectoryMember, node: string): Promise<string | null> {
  try {
    const { registerMember, setMemberStatus } = await import('./registry.ts');
    await registerMember(rt.db, rt.trust, rt.cfg.instance, node, { memberClass: m.memberClass, memberCode: m.memberCode, subsystem: m.subsystem, name: m.name, department: m.department, certificate: m.certificate, node }, rt.departments);
    if (m.status === 'suspended') await setMemberStatus(rt.db, m.id, 'suspended');
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The hub's side of a sync from `node`. */
export async function acceptSync(rt: ExchangeRuntime, node: string, body: unknown): Promise<SyncResponse> {
  const b = body as Partial<SyncRequest>;
  if (!b || !Array.isArray(b.members) || !Array.isArray(b.interests) || b.members.length > 10_000 || b.interests.length > 10_000) {
    throw new ExchangeError('validation', 'malformed', 'a sync is { members: [...], interests: [resource ids] } (at most 10,000 each)');
  }
  const refused: SyncResponse['refused'] = [];
  for (const m of b.members) {
    if (!m || typeof m !== 'object' || m.node !== node) {
      refused.push({ member: String(m?.id ?? '?'), reason: `a node registers only its own members (${node})` });
      continue;
    }
    const err = await mirrorMember(rt, m, node);
    if (err) refused.push({ member: m.id, reason: err });
  }
  const { getResource, isEntitled, subscribeNode } = await import('./registry.ts');
  const wanted = new Set<string>();
  for (const id of b.interests) {
    if (typeof id !== 'string') continue;
    const r = await getResource(rt.db, id);
    if (!r) {
      refused.push({ resource: String(id).slice(0, 120), reason: 'unknown resource' });
      continue;
    }
    // a node link carries a resource when at least one of the node's members may receive it
    const members = await directoryMembers(rt.db, 'node_id = $1', [node]);
    let entitled = false;
    for (const m of members) if (await isEntitled(rt.db, r, m.id)) entitled = true;
    if (!entitled) {
      refused.push({ resource: id, reason: `no member of ${node} is entitled to it` });
      continue;
    }
    await subscribeNode(rt.db, id, node);
    wanted.add(id);
  }
  await rt.db.query(
    `update exchange.subscription set status = 'cancelled', cancelled_at = now()
      where target_node = $1 and status = 'active' and resource <> '*' and not (resource = any($2::text[]))`,
    [node, [...wanted]],
  );
  // the node is back: what waits for it goes now, not at the end of its back-off
  await rt.db.query(
    `update exchange.delivery d set next_at = now() from exchange.subscription s
      where s.id = d.subscription and s.target_node = $1 and s.status = 'active' and d.status = 'ready' and d.next_at > now()`,
    [node],
  );
  await rt.db.query(`update exchange.node set status = 'up', last_contact = now(), last_error = null where id = $1`, [node]);
  const { rows } = await rt.db.query<{ id: string; name: string; name_en: string | null; provider: string; schema: Record<string, unknown>; share: DirectoryResource['share']; key_field: string | null }>(
    `select id, name, name_en, provider, schema, share, key_field from exchange.resource where share <> 'closed' order by id`,
  );
  return {
    hub: rt.self.id,
    members: await directoryMembers(rt.db),
    resources: rows.map((r) => ({ id: r.id, name: r.name, nameEn: r.name_en, provider: r.provider, schema: r.schema, share: r.share, keyField: r.key_field })),
    refused,
  };
}

/** A division node's side: sends its members and interests, mirrors the directory it gets back. */
export async function syncWithUpstream(rt: ExchangeRuntime): Promise<SyncResponse | null> {
  if (!rt.self.upstream || !rt.cfg.upstreamUrl || !rt.self.certPem) return null;
  const members = await directoryMembers(rt.db, 'node_id = $1', [rt.self.id]);
  const interests = (await rt.db.query<{ resource: string }>(`select distinct resource from exchange.subscription where status = 'active' and target_member is not null order by resource`)).rows.map((r) => r.resource);
  const body = JSON.stringify({ members, interests } satisfies SyncRequest);
  const path = '/api/v1/exchange/federation/sync';
  const { signRequest } = await import('./auth.ts');
  const res = await rt.fetch(`${rt.cfg.upstreamUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signRequest({ node: rt.self.id }, { privateKey: rt.self.privateKey, alg: rt.self.alg }, { method: 'POST', path, body }) },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`sync with the hub: HTTP ${res.status}: ${(await res.text().catch(() => '')).slice(0, 300)}`);
  const dir = (await res.json()) as SyncResponse;
  for (const m of dir.members) if (m.node !== rt.self.id) await mirrorMember(rt, m, m.node);
  const { saveResource } = await import('./registry.ts');
  for (const r of dir.resources) {
    try {
      await saveResource(rt.db, { id: r.id, name: r.name, nameEn: r.nameEn, provider: r.provider, schema: r.schema, share: r.share, keyField: r.keyField });
    } catch (err) {
      rt.ctx.log.warn({ resource: r.id, err: (err as Error).message }, 'exchange: a directory resource was not mirrored');
    }
  }
  rt.caches.forget();
  await rt.db.query(`update exchange.node set status = 'up', last_contact = now(), last_error = null where id = $1`, [rt.self.upstream]);
  return dir;
}
