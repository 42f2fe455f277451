// Records that arrive without a key (a newborn's birth certificate, a telecom record without an ID
// number) are linked to golden records with the linkage engine: candidates are the golden records
// with the same name or date of birth; one confident match is folded in; uncertain ones wait for a
// clerk, whose decisions are remembered (fusion.review_decision) and reused; no match waits for
// the subject to appear (retried later).
import type { Queryable } from '../../../db/index.ts';
import { link, pairKey, recordKey, type LinkRecord, type ReviewDecision, type ReviewStore } from '../linkage/index.ts';
import { fuseMapped, type Golden, type IngestHooks } from './engine.ts';
import type { CompiledRegistry } from './model.ts';
import { FusionError } from './steward.ts';

/** A registry's linkage decisions in the database. */
export function dbReviewStore(q: Queryable, registry: string): ReviewStore {
  return {
    async get(key) {
      const { rows } = await q.query<{ decision: ReviewDecision }>('select decision from fusion.review_decision where registry = $1 and pair_key = $2', [registry, key]);
      return rows[0]?.decision;
    },
    async getMany(keys) {
      const { rows } = await q.query<{ pair_key: string; decision: ReviewDecision }>('select pair_key, decision from fusion.review_decision where registry = $1 and pair_key = any($2::text[])', [registry, [...keys]]);
      return new Map(rows.map((r) => [r.pair_key, r.decision]));
    },
    async put(key, decision) {
      await q.query(
        `insert into fusion.review_decision (registry, pair_key, decision) values ($1, $2, $3) on conflict (registry, pair_key) do update set decision = excluded.decision, at = now()`,
        [registry, key, JSON.stringify(decision)],
      );
    },
  };
}

/** a match is taken without a clerk at or above this probability (the review band is below it) */
export const LINK_THRESHOLD = 0.9;
const CANDIDATE_LIMIT = 20_000;
const RETRY_AFTER = '10 minutes';

interface UnlinkedRow {
  id: string;
  source: string;
  record_id: string;
  observed_at: Date;
  data: Record<string, unknown>;
}

function linkFields(reg: CompiledRegistry, values: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [field, to] of Object.entries(reg.def.linkage ?? {})) {
    const v = values[field];
    if (v !== undefined && v !== null && v !== '') out[to] = out[to] ? `${out[to]} ${String(v)}` : String(v);
  }
  return out;
}

const leftId = (id: string | number) => `u${id}`;

export interface LinkRun {
  linked: number;
  review: number;
  unmatched: number;
}

/** Links up to `limit` waiting records of a registry. */
export async function linkPending(db: { tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>; query: Queryable['query'] }, reg: CompiledRegistry, opts: { limit?: number; hooks?: IngestHooks } = {}): Promise<LinkRun> {
  const out: LinkRun = { linked: 0, review: 0, unmatched: 0 };
  if (!reg.def.linkage) return out;
  const name = reg.def.registry;
  const { rows: waiting } = await db.query<UnlinkedRow>(
    `select id, source, record_id, observed_at, data from fusion.unlinked
      where registry = $1 and (status = 'pending' or (status = 'new' and decided_at < now() - interval '${RETRY_AFTER}'))
      order by id limit $2`,
    [name, opts.limit ?? 500],
  );
  if (!waiting.length) return out;
  const names = [...new Set(waiting.map((w) => w.data.name).filter((v): v is string => typeof v === 'string'))];
  const dates = [...new Set(waiting.map((w) => w.data.birthDate).filter((v): v is string => typeof v === 'string'))];
  const { rows: cands } = await db.query<{ key: string; record: Golden }>(
    `select key, record from fusion.golden where registry = $1 and (record->'name'->>'v' = any($2::text[]) or record->'birthDate'->>'v' = any($3::text[])) limit ${CANDIDATE_LIMIT}`,
    [name, names, dates],
  );
  const left: LinkRecord[] = waiting.map((w) => ({ id: leftId(w.id), fields: linkFields(reg, w.data) }));
  const right: LinkRecord[] = cands.map((c) => ({ id: c.key, fields: linkFields(reg, Object.fromEntries(Object.entries(c.record).map(([k, f]) => [k, f.v]))) }));
  const result = right.length
    ? await link({ left, right, leftSource: 'unlinked', rightSource: name }, { store: dbReviewStore(db as Queryable, name), settings: { threshold: LINK_THRESHOLD, review: { lower: 0.2, upper: LINK_THRESHOLD }, clusterThreshold: null } })
    : { matches: [], review: [] };
  const best = new Map<string, Set<string>>();
  for (const m of result.matches) {
    const l = m.left.startsWith('u') ? m.left : m.right;
    const r = m.left.startsWith('u') ? m.right : m.left;
    if (!best.has(l)) best.set(l, new Set());
    best.get(l)!.add(r);
  }
  const review = new Map<string, { key: string; probability: number }[]>();
  for (const p of result.review) {
    const l = p.left.startsWith('u') ? p.left : p.right;
    const r = p.left.startsWith('u') ? p.right : p.left;
    if (!review.has(l)) review.set(l, []);
    review.get(l)!.push({ key: r, probability: Math.round(p.probability * 1000) / 1000 });
  }
  for (const w of waiting) {
    const keys = best.get(leftId(w.id));
    if (keys && keys.size === 1) {
      const key = [...keys][0]!;
      await db.tx(async (q) => {
        await fuseMapped(q, reg, [{ ok: true, source: w.source, recordId: w.record_id, key, observedAt: w.observed_at.toISOString(), values: { ...w.data, [reg.def.key]: key } }], new Date(), opts.hooks);
        await q.query(`update fusion.unlinked set status = 'linked', linked_key = $2, decided_by = 'linkage', decided_at = now(), candidates = null where id = $1`, [w.id, key]);
      });
      out.linked++;
    } else if ((keys && keys.size > 1) || review.has(leftId(w.id))) {
      const cand = [...(review.get(leftId(w.id)) ?? []), ...[...(keys ?? [])].map((key) => ({ key, probability: 1 }))];
      await db.query(`update fusion.unlinked set status = 'review', candidates = $2, decided_at = now() where id = $1`, [w.id, JSON.stringify(cand.sort((a, b) => b.probability - a.probability).slice(0, 10))]);
      out.review++;
    } else {
      await db.query(`update fusion.unlinked set status = 'new', decided_at = now() where id = $1`, [w.id]);
      out.unmatched++;
    }
  }
  return out;
}

/**
 * A clerk's decision on a record waiting for review: the golden record it belongs to (folded in,
 * the pair remembered as a match and the other candidates as non-matches), or none of them.
 */
export async function decideUnlinked(q: Queryable, reg: CompiledRegistry, id: number, key: string | null, by: string, hooks: IngestHooks = {}): Promise<{ status: 'linked' | 'new'; key: string | null }> {
  const name = reg.def.registry;
  const { rows } = await q.query<UnlinkedRow & { status: string; candidates: { key: string }[] | null }>('select id, source, record_id, observed_at, data, status, candidates from fusion.unlinked where registry = $1 and id = $2 for update', [name, id]);
  const w = rows[0];
  if (!w) throw new FusionError('not-found', `no waiting record ${id}`);
  if (w.status === 'linked') throw new FusionError('conflict', `record ${id} is already linked`);
  if (key !== null) {
    const g = await q.query('select 1 from fusion.golden where registry = $1 and key = $2', [name, key]);
    if (!g.rowCount) throw new FusionError('not-found', `no ${name} record ${key}`);
  }
  const store = dbReviewStore(q, name);
  const at = new Date().toISOString();
  const l = recordKey('unlinked', leftId(id));
  for (const c of new Set([...(w.candidates ?? []).map((c) => c.key), ...(key ? [key] : [])])) {
    await store.put(pairKey(l, recordKey(name, c)), { decision: c === key ? 'match' : 'non-match', by, at });
  }
  if (key === null) {
    await q.query(`update fusion.unlinked set status = 'new', decided_by = $2, decided_at = now() where id = $1`, [id, by.slice(0, 200)]);
    return { status: 'new', key: null };
  }
  await fuseMapped(q, reg, [{ ok: true, source: w.source, recordId: w.record_id, key, observedAt: w.observed_at.toISOString(), values: { ...w.data, [reg.def.key]: key } }], new Date(), hooks);
  await q.query(`update fusion.unlinked set status = 'linked', linked_key = $2, decided_by = $3, decided_at = now() where id = $1`, [id, key, by.slice(0, 200)]);
  return { status: 'linked', key };
}
