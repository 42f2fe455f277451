// Appending to, verifying and reading the audit chain (design: docs/decisions/0005-audit-log.md).
import type { Db, Queryable } from '../../db/index.ts';
import { AuditInputError, ENTRY_COLUMNS, GENESIS_HASH, LIMITS, entryHash, normaliseSubject, storableText, toEntry, toFields, type AppendFields, type AuditEntry, type AuditEvent, type EntryRow } from './chain.ts';

const APPEND = 'select seq, hash from audit.append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)';
const COLUMNS = ['actor_kind', 'actor_id', 'actor_department', 'action', 'resource_type', 'resource_id', 'subject', 'purpose', 'outcome', 'request_id', 'ip', 'details'] as const;

async function appendFields(q: Queryable, fields: AppendFields[]): Promise<{ seq: number; hash: string }[]> {
  if (fields.length === 0) return [];
  const { rows } = await q.query<{ seq: number; hash: string }>(APPEND, COLUMNS.map((c) => fields.map((f) => f[c])));
  return rows;
}

function isPool(q: Queryable): q is Db {
  return typeof (q as Partial<Db>).tx === 'function' && 'pool' in q;
}

// Group commit for appends on the pool. Every append serialises on the head row until its transaction
// commits (a WAL flush), so one-at-a-time appends cap the whole city at about one per flush. An append
// arriving while another is in flight waits and goes with the others that arrived meanwhile, as one
// statement: one lock, one flush for all of them. When idle, an append goes at once.
const MAX_BATCH = 500;
interface Pending {
  fields: AppendFields;
  resolve: (r: { seq: number; hash: string }) => void;
  reject: (err: unknown) => void;
}
const queues = new WeakMap<Db, { pending: Pending[]; flushing: boolean }>();

async function flush(db: Db, queue: { pending: Pending[]; flushing: boolean }): Promise<void> {
  queue.flushing = true;
  try {
    while (queue.pending.length > 0) {
      const batch = queue.pending.splice(0, MAX_BATCH);
      try {
        const rows = await appendFields(db, batch.map((p) => p.fields));
        batch.forEach((p, i) => p.resolve(rows[i]!));
      } catch (err) {
        if (batch.length === 1) batch[0]!.reject(err);
        // one bad entry must not sink the others: each alone
        else for (const p of batch) await appendFields(db, [p.fields]).then((rows) => p.resolve(rows[0]!), p.reject);
      }
    }
  } finally {
    queue.flushing = false;
  }
}

/**
 * Appends one entry. Pass the client of the transaction that makes the change being recorded: the entry
 * commits or rolls back with it. The append locks the chain's head until that transaction ends, so call
 * it late in the transaction (just before commit). Passed the Db pool, the entry is committed on its
 * own (with any others appended at the same moment) before this resolves.
 */
export async function appendAudit(q: Queryable, e: AuditEvent): Promise<{ seq: number; hash: string }> {
  const fields = toFields(e);
  if (!isPool(q)) return (await appendFields(q, [fields]))[0]!;
  let queue = queues.get(q);
  if (!queue) queues.set(q, (queue = { pending: [], flushing: false }));
  const done = new Promise<{ seq: number; hash: string }>((resolve, reject) => queue.pending.push({ fields, resolve, reject }));
  if (!queue.flushing) void flush(q, queue);
  return await done;
}

/**
 * Appends several entries in one statement, consecutive in the chain (a list view or an export touching
 * many people's data: one entry per person, so each sees it). Far cheaper than as many appendAudit calls
 * in one transaction. All are checked before any is appended.
 */
export async function appendAuditMany(q: Queryable, events: AuditEvent[]): Promise<{ seq: number; hash: string }[]> {
  const fields = events.map(toFields);
  const CHUNK = 5000; // bounds one statement's parameters
  if (fields.length <= CHUNK) return await appendFields(q, fields);
  const inChunks = async (c: Queryable) => {
    const out: { seq: number; hash: string }[] = [];
    for (let i = 0; i < fields.length; i += CHUNK) out.push(...(await appendFields(c, fields.slice(i, i + CHUNK))));
    return out;
  };
  return isPool(q) ? await q.tx(inChunks) : await inChunks(q);
}

export type VerifyResult = { ok: true; entries: number; head: string } | { ok: false; entries: number; firstBroken: { seq: number; reason: string } };

const VERIFY_PAGE = 2000;

/** an entry's seq and hash recorded earlier (by the last verification, or somewhere outside this database) */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

/**
 * Walks the chain in seq order, one keyset page at a time (constant memory, no long-held snapshot), and
 * stops at the first broken link. `entries` counts the entries verified good before it. Appends may go
 * on meanwhile: the walk ends where the head is when it catches up. With an anchor, the chain must
 * still hold that entry with that hash: a chain rewritten consistently up to a new head fails there.
 */
export async function verifyAudit(q: Queryable, opts: { onProgress?: (n: number) => void; anchor?: AuditAnchor } = {}): Promise<VerifyResult> {
  const anchor = opts.anchor;
  let last = 0;
  let lastHash = GENESIS_HASH;
  const broken = (seq: number, reason: string): VerifyResult => ({ ok: false, entries: last, firstBroken: { seq, reason } });
  for (;;) {
    const { rows } = await q.query<EntryRow>(`select ${ENTRY_COLUMNS} from audit.entry where seq > $1 order by seq limit $2`, [last, VERIFY_PAGE]);
    for (const r of rows) {
      const expected = last + 1;
      if (r.seq !== expected) return broken(expected, `entry ${expected} is missing: the chain goes from entry ${last} to entry ${r.seq} (deleted)`);
      if (r.prev_hash !== lastHash) {
        return broken(r.seq, `prev_hash does not match the hash of entry ${last}: an entry was inserted or deleted before it, or entry ${last} was replaced`);
      }
      if (entryHash(r) !== r.hash) return broken(r.seq, 'hash mismatch: the entry was edited');
      if (anchor && r.seq === anchor.seq && r.hash !== anchor.hash) {
        return broken(r.seq, `the entry's hash is not the one recorded for it earlier (${anchor.hash}): the chain was rewritten up to here`);
      }
      last = r.seq;
      lastHash = r.hash;
    }
    if (rows.length > 0) opts.onProgress?.(last);
    if (rows.length === VERIFY_PAGE) continue;
    // one statement, one snapshot: an append moves the head and adds its entry in the same transaction
    const { rows: heads } = await q.query<{ seq: number; hash: string; max: number | null }>(
      'select h.seq, h.hash, (select max(seq) from audit.entry) as max from audit.head h',
    );
    const head = heads[0];
    if (!head || heads.length !== 1) return broken(last + 1, `the head table has ${heads.length} rows instead of one`);
    if ((head.max ?? 0) > last) continue; // appended while we walked (or forged past the head: the next pass says)
    if (head.seq > last) return broken(last + 1, `the head says the chain ends at entry ${head.seq} but the last entry is ${last}: the tail was truncated`);
    if (head.seq < last) return broken(head.seq + 1, `entry ${head.seq + 1} is beyond the head (entry ${head.seq}): appended without moving the head, or the head was rewound`);
    if (head.hash !== lastHash) return broken(last, `the head's hash does not match entry ${last}: the last entry was replaced`);
    if (anchor && anchor.seq > last) {
      return broken(last + 1, `the chain ends at entry ${last} but entry ${anchor.seq} was recorded earlier: the chain was cut back and rewritten`);
    }
    return { ok: true, entries: last, head: lastHash };
  }
}

export interface SubjectAccess {
  seq: number;
  at: string;
  actorKind: string;
  department: string | null;
  action: string;
  purpose: string | null;
  outcome: string;
}

function pageLimit(limit: number, max: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new AuditInputError(`limit must be a whole number from 1 to ${max}`);
  return Math.min(limit, max);
}

function beforeSeq(before: number | undefined): number | null {
  if (before === undefined) return null;
  if (!Number.isInteger(before) || before < 1) throw new AuditInputError('before must be a positive whole number (a seq)');
  return before;
}

/** Every entry touching this person's data, newest first; `next` is the `before` of the next page. */
export async function accessesOfSubject(q: Queryable, idNumber: string, page: { limit: number; before?: number }): Promise<{ items: SubjectAccess[]; next: number | null }> {
  const limit = pageLimit(page.limit, 1000);
  const { rows } = await q.query<{ seq: number; at: string; actor_kind: string; actor_department: string | null; action: string; purpose: string | null; outcome: string }>(
    `select seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, actor_kind, actor_department, action, purpose, outcome
       from audit.entry
      where subject = $1 and ($2::bigint is null or seq < $2)
      order by seq desc
      limit $3`,
    [normaliseSubject(idNumber), beforeSeq(page.before), limit + 1],
  );
  const items = rows.slice(0, limit).map((r) => ({
    seq: r.seq,
    at: r.at,
    actorKind: r.actor_kind,
    department: r.actor_department,
    action: r.action,
    purpose: r.purpose,
    outcome: r.outcome,
  }));
  return { items, next: rows.length > limit ? items.at(-1)!.seq : null };
}

export interface AuditFilter {
  /** exact, or a prefix ending in '.*' ('population.*') */
  action?: string;
  actorId?: string;
  resourceType?: string;
  resourceId?: string;
  /** the resident ID number the entries touch */
  subject?: string;
  /** ISO 8601 instants; since inclusive, until exclusive */
  since?: string;
  until?: string;
  limit: number;
  before?: number;
}

function instant(name: string, v: string): string {
  if (Number.isNaN(Date.parse(v))) throw new AuditInputError(`${name} must be an ISO 8601 date or date-time, got ${JSON.stringify(v.slice(0, 40))}`);
  return v;
}

/** Entries matching every given filter, newest first; `next` is the `before` of the next page. */
export async function searchAudit(q: Queryable, filter: AuditFilter): Promise<{ items: AuditEntry[]; next: number | null }> {
  const limit = pageLimit(filter.limit, 1000);
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (filter.action !== undefined) {
    if (filter.action.endsWith('.*')) {
      // a range on the C-collated column rather than LIKE, so the index serves it with any parameter
      const prefix = storableText(filter.action.slice(0, -1), 128);
      add((p) => `action >= ${p}`, prefix);
      add((p) => `action < ${p}`, prefix.slice(0, -1) + '/'); // '/' follows '.'
    } else add((p) => `action = ${p}`, storableText(filter.action, 128));
  }
  // compared in the form they were stored in
  if (filter.actorId !== undefined) add((p) => `actor_id = ${p}`, storableText(filter.actorId, LIMITS.actorId));
  if (filter.resourceType !== undefined) add((p) => `resource_type = ${p}`, storableText(filter.resourceType, 64));
  if (filter.resourceId !== undefined) add((p) => `resource_id = ${p}`, storableText(filter.resourceId, LIMITS.resourceId));
  if (filter.subject !== undefined) add((p) => `subject = ${p}`, normaliseSubject(filter.subject));
  if (filter.since !== undefined) add((p) => `at >= ${p}::timestamptz`, instant('since', filter.since));
  if (filter.until !== undefined) add((p) => `at < ${p}::timestamptz`, instant('until', filter.until));
  const before = beforeSeq(filter.before);
  if (before !== null) add((p) => `seq < ${p}`, before);
  params.push(limit + 1);
  const { rows } = await q.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from audit.entry ${where.length ? `where ${where.join(' and ')}` : ''} order by seq desc limit $${params.length}`,
    params,
  );
  const items = rows.slice(0, limit).map(toEntry);
  return { items, next: rows.length > limit ? items.at(-1)!.seq : null };
}
