// The message log in PostgreSQL (migrations/001_log.sql): appends under the head's row lock, using
// the pure functions of log.ts for hashes and checkpoints, and verification by reading it back.
import type { KeyObject } from 'node:crypto';
import type { Db, Queryable } from '../../db/index.ts';
import type { Alg } from '../identity/crypto/index.ts';
import { appendEntries, expandItems, verifyLog, type Checkpoint, type LogEntry, type LogItem, type LogVerifyResult } from './log.ts';
import { eventHash, parseEvent } from './envelope.ts';
import { digestOf } from './canonical.ts';

// the tail an append needs is the seqs and hashes only (a batch entry's items are not read back)
const TAIL_SELECT = 'select seq::int as seq, kind, ref, member, digest, at, prev_hash as "prevHash", hash from exchange.log_entry';
const ENTRY_SELECT = 'select seq::int as seq, kind, ref, member, digest, at, prev_hash as "prevHash", hash, items from exchange.log_entry';
const CHECKPOINT_SELECT =
  'select n::int as n, first_seq::int as first, last_seq::int as last, root, prev_hash as "prevHash", at, alg, hash, sig from exchange.log_checkpoint';

/** Sets the checkpoint interval; only while the log is empty (it is part of what verification expects). */
export async function setCheckpointEvery(q: Queryable, every: number): Promise<void> {
  if (!Number.isSafeInteger(every) || every < 1) throw new RangeError('every must be a positive integer');
  const { rowCount } = await q.query('update exchange.log_head set checkpoint_every = $1 where seq = 0', [every]);
  if (rowCount !== 1) throw new Error('the checkpoint interval is fixed once the log has entries');
}

/**
 * Appends items to the log in one transaction (or in the caller's, given a client: the entries then
 * commit or roll back with it, and the head stays locked until it ends). Returns the new entries.
 */
export async function appendLog(q: Db | Queryable, items: readonly LogItem[], signer: { privateKey: string | KeyObject; alg: Alg }): Promise<{ entries: LogEntry[]; checkpoints: Checkpoint[] }> {
  if (items.length === 0) return { entries: [], checkpoints: [] };
  const run = async (c: Queryable) => {
    const head = (await c.query<{ seq: number; every: number }>('select seq::int as seq, checkpoint_every as every from exchange.log_head for update')).rows[0]!;
    const since = head.seq - (head.seq % head.every);
    // the entries since the last checkpoint only when this append makes one; else the last entry (the link)
    const checkpoints = (head.seq % head.every) + items.length >= head.every;
    const tail = (await c.query<LogEntry>(`${TAIL_SELECT} where seq > $1 order by seq`, [checkpoints ? Math.min(since, Math.max(head.seq - 1, 0)) : Math.max(head.seq - 1, 0)])).rows;
    const lastCp = checkpoints ? (await c.query<Checkpoint>(`${CHECKPOINT_SELECT} order by n desc limit 1`)).rows : [];
    const made = appendEntries({ entries: tail, checkpoints: lastCp }, items, signer, { every: head.every });
    const e = made.entries;
    await c.query(
      `insert into exchange.log_entry (seq, kind, ref, member, digest, at, prev_hash, hash, items)
       select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[])`,
      [
        e.map((x) => x.seq), e.map((x) => x.kind), e.map((x) => x.ref), e.map((x) => x.member), e.map((x) => x.digest), e.map((x) => x.at), e.map((x) => x.prevHash), e.map((x) => x.hash),
        e.map((x) => (x.items ? JSON.stringify(x.items) : null)),
      ],
    );
    for (const cp of made.checkpoints) {
      await c.query('insert into exchange.log_checkpoint (n, first_seq, last_seq, root, prev_hash, at, alg, hash, sig) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        cp.n, cp.first, cp.last, cp.root, cp.prevHash, cp.at, cp.alg, cp.hash, cp.sig,
      ]);
    }
    const last = e.at(-1)!;
    await c.query('update exchange.log_head set seq = $1, hash = $2', [last.seq, last.hash]);
    return made;
  };
  const db = q as Partial<Db>;
  return typeof db.tx === 'function' && 'pool' in q ? db.tx((client) => run(client)) : run(q);
}

/**
 * Verifies the whole log against the node's public key, and that the head matches the last entry
 * (a cut tail); then that every message still stored (exchange.message: retention removes old ones,
 * the log keeps their hashes) is in the log as stored: its event parses, its data matches its digest,
 * and an event item of the log has its id, member and event hash. Reads everything into memory: fine
 * for groundwork, to be streamed in batches later.
 */
export async function verifyLogDb(q: Queryable, publicKey: string | Uint8Array | KeyObject): Promise<LogVerifyResult> {
  const head = (await q.query<{ seq: number; hash: string; every: number }>('select seq::int as seq, hash, checkpoint_every as every from exchange.log_head')).rows[0]!;
  const entries = (await q.query<LogEntry>(`${ENTRY_SELECT} order by seq`)).rows;
  const checkpoints = (await q.query<Checkpoint>(`${CHECKPOINT_SELECT} order by n`)).rows;
  const r = verifyLog(entries, checkpoints, publicKey, { every: head.every });
  if (!r.ok) return r;
  if (head.seq !== entries.length || head.hash !== r.head) return { ok: false, index: entries.length, seq: head.seq, reason: 'head' };
  // the logged events: event hash -> the (ref, member) pairs logged with it
  const logged = new Map<string, string[]>();
  const note = (i: LogItem) => {
    if (i.kind !== 'event') return;
    const k = `${i.ref}\n${i.member}`;
    const seen = logged.get(i.digest);
    if (seen) seen.push(k);
    else logged.set(i.digest, [k]);
  };
  for (const e of entries) (e.items ? expandItems(e as LogEntry & { items: NonNullable<LogEntry['items']> }) : [e]).forEach(note);
  let after = 0;
  for (;;) {
    const { rows } = await q.query<{ seq: string; id: string; member: string; digest: string; event: string }>(
      'select seq, id, member, digest, event from exchange.message where seq > $1 order by seq limit 5000',
      [after],
    );
    for (const m of rows) {
      const broken = (detail: string): LogVerifyResult => ({ ok: false, index: entries.length, seq: null, reason: 'message', message: Number(m.seq), detail });
      const parsed = parseEvent(m.event, { maxBytes: Number.MAX_SAFE_INTEGER });
      if (!parsed.ok) return broken(`its event does not parse (${parsed.reason})`);
      if (parsed.event.gusudigest !== m.digest) return broken('its digest is not its event’s');
      if (digestOf(parsed.event.data) !== m.digest) return broken('its data does not match its digest');
      if (parsed.event.id !== m.id) return broken('its id is not its event’s');
      if (!logged.get(eventHash(parsed.event).toString('hex'))?.includes(`${m.id}\n${m.member}`)) return broken('its event is not in the log');
    }
    if (rows.length < 5000) break;
    after = Number(rows.at(-1)!.seq);
  }
  return r;
}
