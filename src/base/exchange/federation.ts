// Store-and-forward between nodes. A peer POSTs a batch of messages it holds (each still signed by
// its member, with the member's certificate alongside); this node checks the certificates against the
// municipal CA and every member signature again — it trusts the CA, not the peer — then stores them
// exactly as a local publish would (deduplicated by source and id, fanned out, logged), marking the
// peer as `via` so nothing is sent back to it.
import crypto, { type KeyObject } from 'node:crypto';
import { parseEvent, eventHash, verifySealed } from './envelope.ts';
import { verifyBatchedEvent, type BatchHeader } from './batch.ts';
import { afterCommit, storeMessages, type StoredMessage } from './publish.ts';
import { ExchangeError } from './registry.ts';
import type { ExchangeRuntime } from './runtime.ts';
import { verify, type Alg } from '../identity/crypto/index.ts';

interface Forwarded {
  source: string;
  id: string;
  member: string;
  resource: string;
  key: string | null;
  digest: string;
  event: string;
  proof: { header: BatchHeader; index: number; path: string[] } | null;
  origin: string;
}

const certKeys = new Map<string, { key: KeyObject; alg: Alg; at: number }>();

export async function ingestFederated(rt: ExchangeRuntime, from: string, body: unknown, ip: string | null): Promise<{ accepted: number; duplicates: number }> {
  const b = body as { from?: unknown; certs?: unknown; messages?: unknown };
  if (!b || typeof b !== 'object' || b.from !== from || !Array.isArray(b.messages) || typeof b.certs !== 'object' || b.certs === null) {
    throw new ExchangeError('validation', 'malformed', 'a forwarded batch is { from: <this caller>, certs: { member: PEM }, messages: [...] }');
  }
  if (b.messages.length > 5000) throw new ExchangeError('validation', 'oversized', 'at most 5000 messages per forwarded batch');
  const certs = b.certs as Record<string, unknown>;
  const now = new Date().toISOString();
  const msgs: StoredMessage[] = [];
  for (const [i, raw] of (b.messages as Forwarded[]).entries()) {
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
      k = { key: crypto.createPublicKey({ key: v.publicKey, format: 'der', type: 'spki' }), alg: v.alg, at: Date.now() };
      certKeys.set(fp, k);
      if (certKeys.size > 10_000) certKeys.delete(certKeys.keys().next().value!);
    }
    const parsed = parseEvent(raw.event, { maxBytes: rt.cfg.maxEventBytes });
    if (!parsed.ok) throw new ExchangeError('validation', parsed.reason, `message ${i}: ${parsed.detail}`, { index: i });
    const e = parsed.event;
    if (e.gusumember !== raw.member) throw new ExchangeError('forbidden', 'bad-signature', `message ${i}: the event's gusumember is not ${raw.member}`, { index: i });
    const v = raw.proof
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
  }
  if (msgs.length === 0) return { accepted: 0, duplicates: 0 };
  try {
    const stored = await rt.db.tx((c) => storeMessages(c, rt, msgs, from));
    afterCommit(rt, stored.subscriptions);
    const duplicates = stored.seqs.filter((s) => s.duplicate).length;
    return { accepted: stored.seqs.length - duplicates, duplicates };
  } catch (err) {
    if (err instanceof ExchangeError) {
      await rt.db.query('insert into exchange.refusal (member, reason, detail, remote_addr) values ($1, $2, $3, $4)', [`node:${from}`, err.reason, err.message.slice(0, 2000), ip]).catch(() => undefined);
    }
    throw err;
  }
}
