// The message log in PostgreSQL (migrations/001_log.sql): appends under the head's row lock, using
// the pure functions of log.ts for hashes and checkpoints, and verification by reading it back.
import type { KeyObject } from 'node:crypto';
import type { Db, Queryable } from '../../db/index.ts';
import type { Alg } from '../identity/crypto/index.ts';
import { appendEntries, verifyLog, type Checkpoint, type LogEntry, type LogItem, type LogVerifyResult } from './log.ts';

const ENTRY_SELECT = 'select seq::int as seq, kind, ref, member, digest, at, prev_hash as "prevHash", hash from exchange.log_entry';
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
    const tail = (await c.query<LogEntry>(`${ENTRY_SELECT} where seq > $1 order by seq`, [checkpoints ? Math.min(since, Math.max(head.seq - 1, 0)) : Math.max(head.seq - 1, 0)])).rows;
    const lastCp = checkpoints ? (await c.query<Checkpoint>(`${CHECKPOINT_SELECT} order by n desc limit 1`)).rows : [];
    const made = appendEntries({ entries: tail, checkpoints: lastCp }, items, signer, { every: head.every });
    const e = made.entries;
    await c.query(
      `insert into exchange.log_entry (seq, kind, ref, member, digest, at, prev_hash, hash)
       select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])`,
      [e.map((x) => x.seq), e.map((x) => x.kind), e.map((x) => x.ref), e.map((x) => x.member), e.map((x) => x.digest), e.map((x) => x.at), e.map((x) => x.prevHash), e.map((x) => x.hash)],
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
 * (a cut tail). Reads everything into memory: fine for groundwork, to be streamed in batches later.
 */
export async function verifyLogDb(q: Queryable, publicKey: string | Uint8Array | KeyObject): Promise<LogVerifyResult> {
  const head = (await q.query<{ seq: number; hash: string; every: number }>('select seq::int as seq, hash, checkpoint_every as every from exchange.log_head')).rows[0]!;
  const entries = (await q.query<LogEntry>(`${ENTRY_SELECT} order by seq`)).rows;
  const checkpoints = (await q.query<Checkpoint>(`${CHECKPOINT_SELECT} order by n`)).rows;
  const r = verifyLog(entries, checkpoints, publicKey, { every: head.every });
  if (!r.ok) return r;
  if (head.seq !== entries.length || head.hash !== r.head) return { ok: false, index: entries.length, seq: head.seq, reason: 'head' };
  return r;
}
