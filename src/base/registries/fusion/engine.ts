// The one fusion engine of the base registries: map a source's record to the canonical fields,
// check its key, fold it into the subject's golden record by the survivorship rules (the more
// authoritative source wins a field; within a rank the later observation wins), and note what
// changed: conflicts for the steward, life events for the exchange. Ingest is set-based: a batch
// of records is one transaction of a few statements, whatever its size.
import { checkIdNumber, checkUscc } from '../../codes/index.ts';
import type { Queryable } from '../../../db/index.ts';
import type { CompiledRegistry, SourceDefinition } from './model.ts';

/** One field of a golden record: the value, its source, the source's record id and when the source observed it. */
export interface FieldValue {
  v: unknown;
  s: string;
  r: string;
  t: string;
}
export type Golden = Record<string, FieldValue>;

/** A steward's decision is a source like any other, ranked above all of them. */
export const STEWARD_SOURCE = 'steward';

export type Mapped = { ok: true; source: string; recordId: string; key: string | null; observedAt: string; values: Record<string, unknown> } | { ok: false; source: string; recordId: string | null; reason: string };

const MAX_TEXT = 500;

function prop(record: Record<string, unknown>, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, name) ? record[name] : undefined;
}

function isDate(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s);
}

export function checkKey(reg: CompiledRegistry, key: string): string | null {
  if (reg.def.keyCheck === 'gb11643') {
    const c = checkIdNumber(key);
    return c.ok ? null : `ID number ${key.slice(0, 20)} fails GB 11643: ${c.reason}`;
  }
  if (reg.def.keyCheck === 'gb32100') {
    const c = checkUscc(key);
    return c.ok ? null : `credit code ${key.slice(0, 20)} fails GB 32100: ${c.reason}`;
  }
  return key.length > 0 && key.length <= 64 ? null : 'key: 1 to 64 characters';
}

/** A source's record in canonical fields, or why it cannot be used. */
export function mapRecord(reg: CompiledRegistry, sourceId: string, record: unknown, receivedAt: Date = new Date()): Mapped {
  const src: SourceDefinition | undefined = reg.sources.get(sourceId);
  if (!src) return { ok: false, source: sourceId, recordId: null, reason: `no source ${sourceId} in the ${reg.def.registry} registry` };
  if (!record || typeof record !== 'object' || Array.isArray(record)) return { ok: false, source: sourceId, recordId: null, reason: 'a record is a JSON object' };
  const rec = record as Record<string, unknown>;
  const rid = prop(rec, src.recordId);
  if ((typeof rid !== 'string' && typeof rid !== 'number') || String(rid).length === 0 || String(rid).length > 200) return { ok: false, source: sourceId, recordId: null, reason: `${src.recordId}: the record id (1 to 200 characters) is missing` };
  const recordId = String(rid);
  const fail = (reason: string): Mapped => ({ ok: false, source: sourceId, recordId, reason });
  if (src.requires && prop(rec, src.requires) !== true) return fail(`${src.requires}: not recorded (the record is used only with it)`);
  let key: string | null = null;
  if (src.key) {
    const k = prop(rec, src.key);
    if (k !== undefined && k !== null && k !== '') {
      if (typeof k !== 'string') return fail(`${src.key}: expected text`);
      key = k.trim().toUpperCase();
      const bad = checkKey(reg, key);
      if (bad) return fail(bad);
    }
  }
  let observedAt = receivedAt.toISOString();
  if (src.observedAt) {
    const o = prop(rec, src.observedAt);
    if (o !== undefined && o !== null) {
      const d = typeof o === 'string' ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(o) ? `${o}T00:00:00+08:00` : o) : null;
      if (!d || Number.isNaN(d.getTime())) return fail(`${src.observedAt}: not a date or time`);
      observedAt = d.toISOString();
    }
  }
  const values: Record<string, unknown> = {};
  for (const [field, m] of Object.entries(src.mapping)) {
    let v: unknown;
    if (typeof m === 'string') v = prop(rec, m);
    else if ('const' in m) v = m.const;
    else {
      const raw = prop(rec, m.from);
      v = raw === undefined || raw === null ? undefined : Object.prototype.hasOwnProperty.call(m.map, String(raw)) ? m.map[String(raw)] : raw;
    }
    if (v === undefined || v === null || v === '') continue;
    const def = reg.def.fields[field]!;
    switch (def.type) {
      case 'date':
        if (typeof v !== 'string' || !isDate(v.slice(0, 10))) return fail(`${field}: ${JSON.stringify(String(v).slice(0, 30))} is not a date (YYYY-MM-DD)`);
        v = v.slice(0, 10);
        break;
      case 'enum':
        if (typeof v !== 'string' || !def.values!.includes(v)) return fail(`${field}: ${JSON.stringify(String(v).slice(0, 30))} is not one of ${def.values!.join(', ')}`);
        break;
      case 'boolean':
        if (typeof v !== 'boolean') return fail(`${field}: expected true or false`);
        break;
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`${field}: expected a number`);
        break;
      default:
        if (typeof v !== 'string' && typeof v !== 'number') return fail(`${field}: expected text`);
        v = String(v).trim().slice(0, MAX_TEXT);
        if (v === '') continue;
    }
    values[field] = v;
  }
  if (key && values[reg.def.key] === undefined) values[reg.def.key] = key;
  return { ok: true, source: sourceId, recordId, key, observedAt, values };
}

function rankOf(reg: CompiledRegistry, field: string, source: string): number | undefined {
  if (source === STEWARD_SOURCE) return -1;
  return reg.rank.get(field)?.get(source);
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

export interface Conflict {
  field: string;
  winner: FieldValue;
  challenger: FieldValue;
}

/**
 * Folds one mapped record into a golden record: for each field the record's value is taken when its
 * source ranks higher than the current one's, or equally and observed no earlier. A conflict is
 * noted when a field marked `conflicts` has two different values from two sources.
 */
export function survive(reg: CompiledRegistry, golden: Golden, m: { source: string; recordId: string; observedAt: string; values: Record<string, unknown> }): { changed: string[]; conflicts: Conflict[] } {
  const changed: string[] = [];
  const conflicts: Conflict[] = [];
  for (const [field, v] of Object.entries(m.values)) {
    const r = rankOf(reg, field, m.source);
    if (r === undefined) continue;
    const cand: FieldValue = { v, s: m.source, r: m.recordId, t: m.observedAt };
    const cur = golden[field];
    if (!cur) {
      golden[field] = cand;
      changed.push(field);
      continue;
    }
    const cr = rankOf(reg, field, cur.s) ?? Number.MAX_SAFE_INTEGER;
    const wins = r < cr || (r === cr && m.observedAt >= cur.t);
    const differs = !same(cur.v, v);
    if (differs && cur.s !== m.source && m.source !== STEWARD_SOURCE && cur.s !== STEWARD_SOURCE && reg.def.fields[field]?.conflicts) {
      conflicts.push(wins ? { field, winner: cand, challenger: cur } : { field, winner: cur, challenger: cand });
    }
    if (wins) {
      if (differs) changed.push(field);
      golden[field] = cand;
    }
  }
  return { changed, conflicts };
}

export interface LifeEvent {
  type: string;
  field: string;
  before: unknown;
  after: unknown;
}

/** The life events a change makes, by the registry's rules (death, birth, marriage, divorce, move …). */
export function lifeEvents(reg: CompiledRegistry, before: Golden | null, after: Golden, changed: readonly string[]): LifeEvent[] {
  const out: LifeEvent[] = [];
  for (const rule of reg.def.events ?? []) {
    const now = after[rule.field]?.v;
    if (now === undefined) continue;
    if (rule.sources && !rule.sources.includes(after[rule.field]!.s)) continue;
    if (!before) {
      if (rule.onCreate) out.push({ type: rule.type, field: rule.field, before: null, after: now });
      continue;
    }
    // a creation rule (onCreate without `becomes`: birth, establishment) does not fire again on later changes
    if (rule.onCreate && !rule.becomes) continue;
    if (!changed.includes(rule.field)) continue;
    const was = before[rule.field]?.v ?? null;
    if (rule.becomes && !rule.becomes.includes(String(now))) continue;
    if (!rule.becomes && was === null) continue;
    out.push({ type: rule.type, field: rule.field, before: was, after: now });
  }
  return out;
}

/** The plain values of a golden record (no provenance). */
export function valuesOf(g: Golden): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(g)) out[k] = f.v;
  return out;
}

export interface IngestResult {
  accepted: number;
  rejected: { index: number; recordId: string | null; reason: string }[];
  /** records without a key, kept for linkage */
  unlinked: number;
  created: number;
  updated: number;
  conflicts: number;
  events: number;
}

export interface IngestHooks {
  /** runs in the ingest's transaction with every golden record the batch created or changed */
  project?: (q: Queryable, changed: { key: string; golden: Golden; created: boolean }[]) => Promise<void>;
}

/**
 * Fuses a batch of one source's records. Rejected records (a bad key, a value of the wrong type,
 * no consent) are kept in fusion.rejected with the reason; records without a key wait in
 * fusion.unlinked; the rest are stored as source records and folded into their golden records, in
 * one transaction (all or nothing).
 */
export async function ingest(
  db: { tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> },
  reg: CompiledRegistry,
  source: string,
  records: readonly unknown[],
  hooks: IngestHooks = {},
): Promise<IngestResult> {
  const now = new Date();
  const mapped = records.map((r) => mapRecord(reg, source, r, now));
  const rejected: IngestResult['rejected'] = [];
  const keyed: Extract<Mapped, { ok: true }>[] = [];
  const unkeyed: Extract<Mapped, { ok: true }>[] = [];
  mapped.forEach((m, index) => {
    if (!m.ok) rejected.push({ index, recordId: m.recordId, reason: m.reason });
    else if (m.key) keyed.push(m);
    else unkeyed.push(m);
  });
  const name = reg.def.registry;
  return db.tx(async (q) => {
    if (rejected.length) {
      await q.query(
        `insert into fusion.rejected (registry, source, record_id, reason, data) select $1, $2, x.record_id, x.reason, x.data from jsonb_to_recordset($3::jsonb) as x(record_id text, reason text, data jsonb)`,
        [name, source, JSON.stringify(rejected.map((r) => ({ record_id: r.recordId, reason: r.reason.slice(0, 1000), data: records[r.index] ?? null })))],
      );
    }
    if (unkeyed.length) {
      await q.query(
        `insert into fusion.unlinked (registry, source, record_id, observed_at, data) select $1, $2, x.record_id, x.observed_at, x.data from jsonb_to_recordset($3::jsonb) as x(record_id text, observed_at timestamptz, data jsonb)`,
        [name, source, JSON.stringify(unkeyed.map((m) => ({ record_id: m.recordId, observed_at: m.observedAt, data: m.values })))],
      );
    }
    const result: IngestResult = { accepted: keyed.length + unkeyed.length, rejected, unlinked: unkeyed.length, created: 0, updated: 0, conflicts: 0, events: 0 };
    if (!keyed.length) return result;
    return { ...result, ...(await fuseMapped(q, reg, keyed, now, hooks)) };
  });
}

/**
 * Folds mapped records that have their key (from any sources) into their golden records, inside the
 * caller's transaction: source records stored, golden records locked, folded and written, conflicts
 * queued, life events put in the outbox, the projection hook run.
 */
export async function fuseMapped(
  q: Queryable,
  reg: CompiledRegistry,
  keyed: readonly Extract<Mapped, { ok: true }>[],
  now: Date,
  hooks: IngestHooks = {},
): Promise<Pick<IngestResult, 'created' | 'updated' | 'conflicts' | 'events'>> {
  const name = reg.def.registry;
  const result = { created: 0, updated: 0, conflicts: 0, events: 0 };
  if (!keyed.length) return result;
  {
    await q.query(
      `insert into fusion.source_record (registry, source, record_id, key, observed_at, received_at, data)
       select $1, x.source, x.record_id, x.key, x.observed_at, $2, x.data from jsonb_to_recordset($3::jsonb) as x(source text, record_id text, key text, observed_at timestamptz, data jsonb)`,
      [name, now, JSON.stringify(keyed.map((m) => ({ source: m.source, record_id: m.recordId, key: m.key, observed_at: m.observedAt, data: m.values })))],
    );
    const keys = [...new Set(keyed.map((m) => m.key!))];
    const { rows } = await q.query<{ key: string; record: Golden }>(`select g.key, g.record from unnest($2::text[]) as k(key) join fusion.golden g on g.registry = $1 and g.key = k.key order by g.key for update of g`, [name, keys]);
    const before = new Map(rows.map((r) => [r.key, r.record]));
    const after = new Map<string, Golden>();
    const changedFields = new Map<string, Set<string>>();
    const conflicts: (Conflict & { key: string })[] = [];
    for (const m of keyed) {
      const key = m.key!;
      let g = after.get(key);
      // a shallow copy is enough: survive() replaces a field's object, never changes it
      if (!g) after.set(key, (g = { ...(before.get(key) ?? {}) }));
      const r = survive(reg, g, m);
      if (r.changed.length) {
        let set = changedFields.get(key);
        if (!set) changedFields.set(key, (set = new Set()));
        for (const f of r.changed) set.add(f);
      }
      for (const c of r.conflicts) conflicts.push({ ...c, key });
    }
    const changed = [...after.entries()].filter(([k]) => !before.has(k) || changedFields.has(k));
    if (changed.length) {
      await q.query(
        `insert into fusion.golden (registry, key, record) select $1, x.key, x.record from jsonb_to_recordset($2::jsonb) as x(key text, record jsonb)
         on conflict (registry, key) do update set record = excluded.record, version = fusion.golden.version + 1, updated_at = now()`,
        [name, JSON.stringify(changed.map(([key, record]) => ({ key, record })))],
      );
    }
    result.created = changed.filter(([k]) => !before.has(k)).length;
    result.updated = changed.length - result.created;
    if (conflicts.length) {
      const r = await q.query(
        `insert into fusion.conflict (registry, key, field, winner, challenger) select $1, x.key, x.field, x.winner, x.challenger from jsonb_to_recordset($2::jsonb) as x(key text, field text, winner jsonb, challenger jsonb)
         on conflict do nothing`,
        [name, JSON.stringify(conflicts)],
      );
      result.conflicts = r.rowCount ?? 0;
    }
    const events = changed.flatMap(([key, g]) => lifeEvents(reg, before.get(key) ?? null, g, [...(changedFields.get(key) ?? [])]).map((e) => ({ key, ...e })));
    if (events.length) {
      await q.query(
        `insert into fusion.event (registry, key, type, field, before, after) select $1, x.key, x.type, x.field, x.before, x.after from jsonb_to_recordset($2::jsonb) as x(key text, type text, field text, before jsonb, after jsonb)`,
        [name, JSON.stringify(events.map((e) => ({ ...e, before: e.before === undefined ? null : e.before, after: e.after })))],
      );
      result.events = events.length;
    }
    if (hooks.project && changed.length) await hooks.project(q, changed.map(([key, golden]) => ({ key, golden, created: !before.has(key) })));
    return result;
  }
}

export async function getGolden(q: Queryable, reg: CompiledRegistry, key: string): Promise<{ record: Golden; version: number; createdAt: Date; updatedAt: Date } | null> {
  const { rows } = await q.query<{ record: Golden; version: number; created_at: Date; updated_at: Date }>('select record, version, created_at, updated_at from fusion.golden where registry = $1 and key = $2', [reg.def.registry, key]);
  const r = rows[0];
  return r ? { record: r.record, version: r.version, createdAt: r.created_at, updatedAt: r.updated_at } : null;
}

/** The golden record as it was known at a past time: the fold of the source records received by then. */
export async function goldenAsOf(q: Queryable, reg: CompiledRegistry, key: string, at: Date): Promise<Golden | null> {
  const { rows } = await q.query<{ source: string; record_id: string; observed_at: Date; data: Record<string, unknown> }>(
    `select source, record_id, observed_at, data from fusion.source_record where registry = $1 and key = $2 and received_at <= $3 order by seq`,
    [reg.def.registry, key, at],
  );
  if (!rows.length) return null;
  const g: Golden = {};
  for (const r of rows) survive(reg, g, { source: r.source, recordId: r.record_id, observedAt: r.observed_at.toISOString(), values: r.data });
  return g;
}

/** Every source record of a subject, oldest first (the provenance trail). */
export async function sourceRecords(q: Queryable, reg: CompiledRegistry, key: string, limit = 500): Promise<{ seq: number; source: string; recordId: string; observedAt: Date; receivedAt: Date; data: Record<string, unknown> }[]> {
  const { rows } = await q.query<{ seq: string; source: string; record_id: string; observed_at: Date; received_at: Date; data: Record<string, unknown> }>(
    `select seq, source, record_id, observed_at, received_at, data from fusion.source_record where registry = $1 and key = $2 order by seq limit $3`,
    [reg.def.registry, key, limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), source: r.source, recordId: r.record_id, observedAt: r.observed_at, receivedAt: r.received_at, data: r.data }));
}
