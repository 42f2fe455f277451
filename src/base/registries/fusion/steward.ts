// The steward's side of fusion: the conflict queue (two sources disagree on a field), the decision
// (keep the surviving value, replace it, or raise a dispute 数据异议 with the source department on
// the workflow engine), and the department's answer (confirm its value, or correct it). A steward's
// choice and a department's correction are source records like any other, so history and as-of
// reads include them.
import type { Queryable } from '../../../db/index.ts';
import { survive, STEWARD_SOURCE, type FieldValue, type Golden } from './engine.ts';
import type { CompiledRegistry } from './model.ts';

export class FusionError extends Error {
  constructor(
    readonly code: 'not-found' | 'conflict' | 'validation',
    message: string,
  ) {
    super(message);
  }
}

export interface ConflictRow {
  id: number;
  registry: string;
  key: string;
  field: string;
  winner: FieldValue;
  challenger: FieldValue;
  status: 'open' | 'kept' | 'replaced' | 'disputed' | 'corrected';
  createdAt: Date;
  resolvedBy: string | null;
  resolvedAt: Date | null;
  note: string | null;
  disputeInstance: string | null;
}

const COLUMNS = `id::int as id, registry, key, field, winner, challenger, status, created_at as "createdAt", resolved_by as "resolvedBy", resolved_at as "resolvedAt", note, dispute_instance as "disputeInstance"`;

export async function listConflicts(q: Queryable, registry: string, f: { status?: ConflictRow['status']; key?: string; limit?: number; offset?: number } = {}): Promise<{ total: number; items: ConflictRow[] }> {
  const params: unknown[] = [registry];
  const where = ['registry = $1'];
  if (f.status) where.push(`status = $${params.push(f.status)}`);
  if (f.key) where.push(`key = $${params.push(f.key)}`);
  const { rows } = await q.query<ConflictRow & { total: string }>(
    `select ${COLUMNS}, count(*) over () as total from fusion.conflict where ${where.join(' and ')} order by id desc limit ${Math.min(Math.max(f.limit ?? 20, 1), 100)} offset ${Math.max(f.offset ?? 0, 0)}`,
    params,
  );
  return { total: rows[0] ? Number(rows[0].total) : 0, items: rows.map(({ total: _t, ...c }) => c) };
}

export async function getConflict(q: Queryable, registry: string, id: number): Promise<ConflictRow | null> {
  if (!Number.isSafeInteger(id) || id < 1) return null;
  return (await q.query<ConflictRow>(`select ${COLUMNS} from fusion.conflict where registry = $1 and id = $2`, [registry, id])).rows[0] ?? null;
}

/**
 * Applies one value to a golden record as a source record of `source` (the steward, or a department
 * answering a dispute) and refolds the field. Returns the new golden record.
 */
export async function applyValue(q: Queryable, reg: CompiledRegistry, key: string, field: string, value: unknown, source: string, recordId: string): Promise<Golden> {
  const name = reg.def.registry;
  const { rows } = await q.query<{ record: Golden }>('select record from fusion.golden where registry = $1 and key = $2 for update', [name, key]);
  if (!rows[0]) throw new FusionError('not-found', `no ${name} record ${key}`);
  const observedAt = new Date().toISOString();
  await q.query('insert into fusion.source_record (registry, source, record_id, key, observed_at, data) values ($1, $2, $3, $4, $5, $6)', [name, source, recordId.slice(0, 200), key, observedAt, JSON.stringify({ [field]: value })]);
  const g = rows[0].record;
  survive(reg, g, { source, recordId, observedAt, values: { [field]: value } });
  await q.query('update fusion.golden set record = $3, version = version + 1, updated_at = now() where registry = $1 and key = $2', [name, key, JSON.stringify(g)]);
  return g;
}

/** keep: the surviving value stands; replace: the challenger's value becomes the steward's choice. */
export async function resolveConflict(q: Queryable, reg: CompiledRegistry, id: number, decision: 'keep' | 'replace', by: string, note: string | null): Promise<ConflictRow> {
  const c = await getConflict(q, reg.def.registry, id);
  if (!c) throw new FusionError('not-found', `no conflict ${id}`);
  if (c.status !== 'open') throw new FusionError('conflict', `conflict ${id} is ${c.status}`);
  if (decision === 'replace') await applyValue(q, reg, c.key, c.field, c.challenger.v, STEWARD_SOURCE, `conflict:${id}`);
  await q.query(`update fusion.conflict set status = $2, resolved_by = $3, resolved_at = now(), note = $4 where id = $1`, [id, decision === 'keep' ? 'kept' : 'replaced', by.slice(0, 200), note?.slice(0, 2000) ?? null]);
  return (await getConflict(q, reg.def.registry, id))!;
}

/** The conflict is raised with a department (its review runs as a workflow instance). */
export async function markDisputed(q: Queryable, registry: string, id: number, instance: string, by: string, note: string | null): Promise<void> {
  const { rowCount } = await q.query(`update fusion.conflict set status = 'disputed', dispute_instance = $3, resolved_by = $4, note = $5 where registry = $1 and id = $2 and status = 'open'`, [registry, id, instance, by.slice(0, 200), note?.slice(0, 2000) ?? null]);
  if (!rowCount) throw new FusionError('conflict', `conflict ${id} is not open`);
}

/**
 * The department's answer to a dispute: confirm (its value stands; the conflict is closed as kept),
 * or correct with a value (applied as a new record of that department's source).
 */
export async function answerDispute(q: Queryable, reg: CompiledRegistry, id: number, answer: { outcome: 'confirm' } | { outcome: 'correct'; value: unknown; source: string }, by: string): Promise<ConflictRow> {
  const c = await getConflict(q, reg.def.registry, id);
  if (!c) throw new FusionError('not-found', `no conflict ${id}`);
  if (c.status !== 'disputed') return c;
  if (answer.outcome === 'correct') {
    if (!reg.sources.has(answer.source)) throw new FusionError('validation', `no source ${answer.source}`);
    await applyValue(q, reg, c.key, c.field, answer.value, answer.source, `dispute:${id}`);
  }
  await q.query(`update fusion.conflict set status = $2, resolved_at = now(), resolved_by = coalesce(resolved_by, '') || ' / ' || $3 where id = $1`, [id, answer.outcome === 'correct' ? 'corrected' : 'kept', by.slice(0, 100)]);
  return (await getConflict(q, reg.def.registry, id))!;
}
