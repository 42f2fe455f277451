// 共享协议: base and 无条件 entries are open to every department (each use recorded); 有条件 entries
// need an agreement: the consumer asks with purpose, legal basis, the items it needs and a term, the
// provider approves, narrows or refuses on the workflow engine (process catalog.sharing-agreement),
// and what was granted is what the base layer delivers (accessFor), until it expires or is revoked.
import type { Queryable } from '../../db/index.ts';
import { appendAudit } from '../audit/index.ts';
import { auditActorOf } from '../identity/index.ts';
import type { Actor } from '../identity/policy.ts';
import { CatalogError, getEntry, type Entry } from './store.ts';

export const AGREEMENT_PROCESS = 'catalog.sharing-agreement';
export const AGREEMENT_STATUSES = ['requested', 'approved', 'refused', 'revoked', 'withdrawn'] as const;
export type AgreementStatus = (typeof AGREEMENT_STATUSES)[number];
/** the longest term an agreement may run (then it is asked for again) */
export const MAX_TERM_DAYS = 3 * 366;
const OPEN_END = '9999-12-31';

export interface Agreement {
  id: string;
  entry: string;
  entryName: string;
  provider: string;
  consumer: string;
  basis: 'open' | 'agreement';
  purpose: string;
  legalBasis: string | null;
  itemsRequested: string[];
  itemsGranted: string[] | null;
  termStart: string;
  termEnd: string;
  status: AgreementStatus;
  narrowed: boolean;
  decisionNote: string | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  requestedBy: string;
  requestedAt: Date;
  revokedBy: string | null;
  revokedAt: Date | null;
  revokeReason: string | null;
  processInstance: string | null;
  /** approved and today within its term */
  active: boolean;
}

const COLUMNS = `a.id, a.entry, e.name as "entryName", e.provider, a.consumer, a.basis, a.purpose, a.legal_basis as "legalBasis",
  a.items_requested as "itemsRequested", a.items_granted as "itemsGranted", a.term_start::text as "termStart", a.term_end::text as "termEnd",
  a.status, a.narrowed, a.decision_note as "decisionNote", a.decided_by as "decidedBy", a.decided_at as "decidedAt", a.requested_by as "requestedBy",
  a.requested_at as "requestedAt", a.revoked_by as "revokedBy", a.revoked_at as "revokedAt", a.revoke_reason as "revokeReason",
  a.process_instance as "processInstance", (a.status = 'approved' and current_date between a.term_start and a.term_end and e.status = 'active') as active`;
const FROM = 'from catalog.agreement a join catalog.entry e on e.code = a.entry';

function actorId(a: Actor): string {
  if (a.kind === 'staff' || a.kind === 'citizen' || a.kind === 'enterprise') return a.accountId;
  if (a.kind === 'system') return a.id;
  return 'anonymous';
}

export async function getAgreement(q: Queryable, id: string): Promise<Agreement | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  return (await q.query<Agreement>(`select ${COLUMNS} ${FROM} where a.id = $1`, [id])).rows[0] ?? null;
}

export interface AgreementFilter {
  consumer?: string;
  provider?: string;
  /** agreements where the department is consumer or provider */
  department?: string;
  entry?: string;
  status?: AgreementStatus;
  basis?: 'open' | 'agreement';
  limit?: number;
  offset?: number;
}

export async function listAgreements(q: Queryable, f: AgreementFilter = {}): Promise<{ total: number; items: Agreement[] }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => (params.push(v), `$${params.length}`);
  if (f.consumer) where.push(`a.consumer = ${p(f.consumer)}`);
  if (f.provider) where.push(`e.provider = ${p(f.provider)}`);
  if (f.department) where.push(`(a.consumer = ${p(f.department)} or e.provider = $${params.length})`);
  if (f.entry) where.push(`a.entry = ${p(f.entry)}`);
  if (f.status) where.push(`a.status = ${p(f.status)}`);
  if (f.basis) where.push(`a.basis = ${p(f.basis)}`);
  const cond = where.length ? `where ${where.join(' and ')}` : '';
  const limit = Math.min(Math.max(f.limit ?? 20, 1), 100);
  const { rows } = await q.query<Agreement & { total: string }>(
    `select ${COLUMNS}, count(*) over () as total ${FROM} ${cond} order by a.requested_at desc, a.id limit ${limit} offset ${Math.max(f.offset ?? 0, 0)}`,
    params,
  );
  return { total: rows[0] ? Number(rows[0].total) : 0, items: rows.map(({ total: _t, ...a }) => a) };
}

/** What a department may receive of an entry today: its items, and by which agreement; null: nothing. */
export interface Grant {
  entry: string;
  consumer: string;
  basis: 'provider' | 'open' | 'agreement';
  /** the item fields delivered; every item for providers, base and 无条件 entries */
  items: string[];
  /** true when items are fewer than the entry's: deliveries are cut down to them */
  partial: boolean;
  agreementId: string | null;
  until: string | null;
}

/**
 * The one access decision of the base layer. The provider sees its own entry; base (基础) and
 * 无条件共享 entries are open to every department; 有条件 needs an approved agreement in its term;
 * 不予共享 is refused to everyone else. A withdrawn entry is refused to all but its provider.
 */
export async function accessFor(q: Queryable, entry: Entry | string, consumer: string): Promise<Grant | null> {
  const e = typeof entry === 'string' ? await getEntry(q, entry) : entry;
  if (!e) return null;
  const all = e.items.map((i) => i.field);
  if (consumer === e.provider) return { entry: e.code, consumer, basis: 'provider', items: all, partial: false, agreementId: null, until: null };
  if (e.status !== 'active' || e.share.type === 'none') return null;
  if (e.kind === 'base' || e.share.type === 'unconditional') return { entry: e.code, consumer, basis: 'open', items: all, partial: false, agreementId: null, until: null };
  const { rows } = await q.query<{ id: string; items: string[]; until: string }>(
    `select id, items_granted as items, term_end::text as until from catalog.agreement
      where entry = $1 and consumer = $2 and basis = 'agreement' and status = 'approved' and current_date between term_start and term_end`,
    [e.code, consumer],
  );
  const a = rows[0];
  if (!a) return null;
  const items = all.filter((f) => a.items.includes(f));
  return { entry: e.code, consumer, basis: 'agreement', items, partial: items.length < all.length, agreementId: a.id, until: a.until };
}

/** The data cut down to the granted items (top-level properties); anything else is dropped. */
export function projectItems<T extends Record<string, unknown>>(data: T, grant: Pick<Grant, 'items' | 'partial'>): Partial<T> {
  if (!grant.partial) return data;
  const out: Record<string, unknown> = {};
  for (const k of grant.items) if (Object.prototype.hasOwnProperty.call(data, k)) out[k] = data[k];
  return out as Partial<T>;
}

/**
 * A department starts using a base or 无条件 entry (subscribes): recorded as an open agreement
 * (once per department and entry). Refused for entries that need an agreement or are not shared.
 */
export async function recordOpenUse(q: Queryable, code: string, consumer: string, purpose: string, by: Actor): Promise<Agreement> {
  const e = await getEntry(q, code);
  if (!e || e.status !== 'active') throw new CatalogError('not-found', `no catalog entry ${code}`);
  if (e.share.type === 'none' && e.provider !== consumer) throw new CatalogError('forbidden', `${e.code} ${e.name} is not shared (不予共享): ${e.share.legalBasis}`);
  if (e.kind !== 'base' && e.share.type === 'conditional' && e.provider !== consumer) throw new CatalogError('forbidden', `${e.code} ${e.name} is shared on conditions (有条件共享): request an agreement`);
  await q.query(
    `insert into catalog.agreement (entry, consumer, basis, purpose, items_requested, items_granted, term_start, term_end, status, requested_by, decided_by, decided_at)
     values ($1, $2, 'open', $3, $4, $4, current_date, $5, 'approved', $6, 'catalog', now())
     on conflict (entry, consumer) where status in ('requested', 'approved') do nothing`,
    [e.code, consumer, purpose.slice(0, 2000) || '订阅', e.items.map((i) => i.field), OPEN_END, actorId(by)],
  );
  const { rows } = await q.query<Agreement>(`select ${COLUMNS} ${FROM} where a.entry = $1 and a.consumer = $2 and a.status in ('requested', 'approved')`, [e.code, consumer]);
  return rows[0]!;
}

export interface AgreementRequest {
  entry: string;
  consumer: string;
  purpose: string;
  legalBasis: string;
  items: string[];
  termStart: string;
  termEnd: string;
}

function isDate(s: unknown): s is string {
  return typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s);
}

/** Checks a request; the problems name each field. */
export function requestProblems(r: AgreementRequest, e: Entry, today: string): string[] {
  const p: string[] = [];
  if (typeof r.purpose !== 'string' || r.purpose.trim().length < 2 || r.purpose.length > 2000) p.push('purpose: 2 to 2000 characters');
  if (typeof r.legalBasis !== 'string' || r.legalBasis.trim().length < 2 || r.legalBasis.length > 2000) p.push('legalBasis: 2 to 2000 characters, citing the law, regulation or document that requires the data');
  const fields = new Set(e.items.map((i) => i.field));
  if (!Array.isArray(r.items) || r.items.length === 0) p.push('items: name at least one information item');
  else {
    if (r.items.length > fields.size) p.push('items: more items than the entry has');
    const bad = r.items.filter((f) => typeof f !== 'string' || !fields.has(f));
    if (bad.length) p.push(`items: ${e.code} has no item ${bad.slice(0, 5).map((b) => JSON.stringify(String(b).slice(0, 64))).join(', ')}`);
    if (new Set(r.items).size !== r.items.length) p.push('items: an item is named twice');
  }
  if (!isDate(r.termStart)) p.push('termStart: a date YYYY-MM-DD');
  if (!isDate(r.termEnd)) p.push('termEnd: a date YYYY-MM-DD');
  if (isDate(r.termStart) && isDate(r.termEnd)) {
    if (r.termStart < today) p.push('termStart: not in the past');
    if (r.termEnd < r.termStart) p.push('termEnd: on or after termStart');
    if ((Date.parse(r.termEnd) - Date.parse(r.termStart)) / 86400_000 > MAX_TERM_DAYS) p.push(`termEnd: a term of at most ${MAX_TERM_DAYS} days`);
  }
  return p;
}

/**
 * Files a request for a 有条件 entry. The caller then starts the review process (see index.ts:
 * startReview), outside this transaction; a request left without one is picked up again.
 */
export async function requestAgreement(q: Queryable, r: AgreementRequest, by: Actor): Promise<Agreement> {
  const e = await getEntry(q, r.entry);
  if (!e || e.status !== 'active') throw new CatalogError('not-found', `no catalog entry ${r.entry}`);
  if (e.provider === r.consumer) throw new CatalogError('conflict', `${r.consumer} provides ${e.code}: a provider needs no agreement for its own data`);
  if (e.share.type === 'none') throw new CatalogError('forbidden', `${e.code} ${e.name} is not shared (不予共享): ${e.share.legalBasis}`);
  if (e.kind === 'base' || e.share.type === 'unconditional') throw new CatalogError('conflict', `${e.code} ${e.name} is shared without conditions: subscribe to it, no agreement is needed`);
  const today = (await q.query<{ d: string }>('select current_date::text as d')).rows[0]!.d;
  const problems = requestProblems(r, e, today);
  if (problems.length) throw new CatalogError('validation', problems.join('; '), problems);
  const live = await q.query<{ id: string; status: string }>(`select id, status from catalog.agreement where entry = $1 and consumer = $2 and status in ('requested', 'approved')`, [e.code, r.consumer]);
  if (live.rows[0]) throw new CatalogError('conflict', `${r.consumer} already has a ${live.rows[0].status} agreement for ${e.code} (${live.rows[0].id})`);
  const order = e.items.map((i) => i.field).filter((f) => r.items.includes(f));
  const { rows } = await q.query<{ id: string }>(
    `insert into catalog.agreement (entry, consumer, basis, purpose, legal_basis, items_requested, term_start, term_end, status, requested_by)
     values ($1, $2, 'agreement', $3, $4, $5, $6, $7, 'requested', $8) returning id`,
    [e.code, r.consumer, r.purpose.trim(), r.legalBasis.trim(), order, r.termStart, r.termEnd, actorId(by)],
  );
  const id = rows[0]!.id;
  await appendAudit(q, { actor: auditActorOf(by, 'catalog'), action: 'catalog.agreement.request', resource: { type: 'sharing-agreement', id }, outcome: 'ok', details: { entry: e.code, consumer: r.consumer, items: order, termEnd: r.termEnd } });
  return (await getAgreement(q, id))!;
}

export async function setProcessInstance(q: Queryable, id: string, instance: string): Promise<void> {
  await q.query('update catalog.agreement set process_instance = $2 where id = $1 and process_instance is null', [id, instance]);
}

export type Decision = { outcome: 'approve' } | { outcome: 'narrow'; items: string[] } | { outcome: 'refuse' };

/**
 * The provider's decision (the review task's outcome, applied by the process's service task).
 * Idempotent: a decided agreement is returned as it is.
 */
export async function decideAgreement(q: Queryable, id: string, d: Decision, note: string | null, decidedBy: string): Promise<Agreement> {
  const a = await getAgreement(q, id);
  if (!a) throw new CatalogError('not-found', `no agreement ${id}`);
  if (a.status !== 'requested') return a;
  let items: string[] | null = null;
  let status: AgreementStatus = 'refused';
  if (d.outcome === 'approve') {
    items = a.itemsRequested;
    status = 'approved';
  } else if (d.outcome === 'narrow') {
    items = a.itemsRequested.filter((f) => d.items.includes(f));
    const extra = d.items.filter((f) => !a.itemsRequested.includes(f));
    if (extra.length) throw new CatalogError('validation', `narrow: ${extra.join(', ')} were not requested (an agreement grants at most what was asked)`);
    if (items.length === 0) throw new CatalogError('validation', 'narrow: keep at least one item, or refuse');
    status = 'approved';
  }
  await q.query(
    `update catalog.agreement set status = $2, items_granted = $3, narrowed = $4, decision_note = $5, decided_by = $6, decided_at = now() where id = $1 and status = 'requested'`,
    [id, status, items, status === 'approved' && items!.length < a.itemsRequested.length, note?.slice(0, 2000) ?? null, decidedBy.slice(0, 200)],
  );
  await appendAudit(q, {
    actor: { kind: 'system', id: 'catalog', department: a.provider },
    action: 'catalog.agreement.decide',
    resource: { type: 'sharing-agreement', id },
    outcome: 'ok',
    details: { outcome: d.outcome, items, decidedBy },
  });
  return (await getAgreement(q, id))!;
}

/** The provider (or a catalog administrator) ends an approved agreement; the next delivery is refused. */
export async function revokeAgreement(q: Queryable, id: string, reason: string, by: Actor): Promise<Agreement> {
  if (typeof reason !== 'string' || reason.trim().length < 2 || reason.length > 2000) throw new CatalogError('validation', 'reason: 2 to 2000 characters');
  const { rowCount } = await q.query(
    `update catalog.agreement set status = 'revoked', revoked_by = $2, revoked_at = now(), revoke_reason = $3 where id = $1 and status = 'approved'`,
    [id, actorId(by), reason.trim()],
  );
  const a = await getAgreement(q, id);
  if (!a) throw new CatalogError('not-found', `no agreement ${id}`);
  if (!rowCount) throw new CatalogError('conflict', `agreement ${id} is ${a.status}, not approved`);
  await appendAudit(q, { actor: auditActorOf(by, 'catalog'), action: 'catalog.agreement.revoke', resource: { type: 'sharing-agreement', id }, outcome: 'ok', details: { entry: a.entry, consumer: a.consumer, reason: reason.trim() } });
  return a;
}

/** The consumer takes back a request still under review. */
export async function withdrawAgreement(q: Queryable, id: string, by: Actor): Promise<Agreement> {
  const { rowCount } = await q.query(`update catalog.agreement set status = 'withdrawn' where id = $1 and status = 'requested'`, [id]);
  const a = await getAgreement(q, id);
  if (!a) throw new CatalogError('not-found', `no agreement ${id}`);
  if (!rowCount) throw new CatalogError('conflict', `agreement ${id} is ${a.status}: only a request under review can be withdrawn`);
  await appendAudit(q, { actor: auditActorOf(by, 'catalog'), action: 'catalog.agreement.withdraw', resource: { type: 'sharing-agreement', id }, outcome: 'ok', details: { entry: a.entry } });
  return a;
}
