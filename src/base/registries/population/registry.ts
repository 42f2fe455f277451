// 人口基础数据库 on the fusion engine: the city profile's population definition, the projection of
// golden records into population.person (what segments, the real-name check and the portal read),
// and reads for other departments — only the items the catalog grants their department, masked
// where the grant says so, each read written to the audit log that the citizen sees.
import type { Queryable } from '../../../db/index.ts';
import type { ModuleContext } from '../../../module.ts';
import { appendAudit } from '../../audit/index.ts';
import { accessFor, getEntry, type Grant } from '../../catalog/index.ts';
import { auditActorOf } from '../../identity/index.ts';
import { hasRole, type Actor } from '../../identity/policy.ts';
import { getGolden, goldenAsOf, loadRegistry, type CompiledRegistry, type FieldValue, type Golden } from '../fusion/index.ts';

const registries = new Map<string, CompiledRegistry>();

/** The population registry of this city profile (loaded and checked once). */
export function populationRegistry(ctx: Pick<ModuleContext, 'config' | 'profile'>): CompiledRegistry {
  let r = registries.get(ctx.config.profileDir);
  if (!r) registries.set(ctx.config.profileDir, (r = loadRegistry(ctx.config.profileDir, 'population', ctx.profile.departments)));
  return r;
}

/**
 * Keeps population.person (the typed table other modules read) in step with the golden records
 * that have what it needs: name, sex, ethnicity, birth date, a county and an address.
 */
export async function projectPersons(q: Queryable, changed: readonly { key: string; golden: Golden }[]): Promise<void> {
  const rows = changed
    .map(({ key, golden: g }) => ({
      id_number: key,
      name: g.name?.v,
      sex: g.sex?.v,
      ethnicity: g.ethnicity?.v,
      birth_date: g.birthDate?.v,
      county_code: typeof g.divisionCode?.v === 'string' ? g.divisionCode.v.slice(0, 6) : undefined,
      address: g.householdAddress?.v,
      phone: g.mobile?.v ?? null,
    }))
    .filter((r) => r.name && r.sex && r.ethnicity && r.birth_date && r.county_code && /^\d{6}$/.test(String(r.county_code)) && r.address);
  if (!rows.length) return;
  await q.query(
    `insert into population.person (id_number, name, sex, ethnicity, birth_date, county_code, address, phone, source, synthetic)
     select x.id_number, x.name, x.sex, x.ethnicity, x.birth_date::date, x.county_code, x.address, x.phone, 'registry', false
       from json_to_recordset($1::json) as x(id_number text, name text, sex text, ethnicity text, birth_date text, county_code text, address text, phone text)
     on conflict (id_number) do update set name = excluded.name, sex = excluded.sex, ethnicity = excluded.ethnicity, birth_date = excluded.birth_date,
       county_code = excluded.county_code, address = excluded.address, phone = coalesce(excluded.phone, population.person.phone), updated_at = now()`,
    [JSON.stringify(rows)],
  );
}

/** How a masked value looks: 3205**********1234, 138****5678, 王**, or withheld. */
export function maskValue(v: unknown, how: 'id' | 'phone' | 'name' | 'hide' | undefined): unknown {
  if (v === null || v === undefined) return v;
  const s = String(v);
  switch (how) {
    case 'id':
      return s.length > 8 ? `${s.slice(0, 4)}${'*'.repeat(s.length - 8)}${s.slice(-4)}` : '*'.repeat(s.length);
    case 'phone':
      return s.length > 7 ? `${s.slice(0, 3)}${'*'.repeat(s.length - 7)}${s.slice(-4)}` : '*'.repeat(s.length);
    case 'name':
      return [...s].length > 1 ? `${[...s][0]}${'*'.repeat([...s].length - 1)}` : '*';
    default:
      return '（已屏蔽）';
  }
}

export class PopulationError extends Error {
  constructor(
    readonly code: 'not-found' | 'forbidden' | 'validation',
    message: string,
  ) {
    super(message);
  }
}

export interface PersonView {
  idNumber: string;
  /** field -> value (masked where the grant says so); fields outside the grant are absent */
  record: Record<string, unknown>;
  /** field -> where the value came from */
  provenance: Record<string, { source: string; recordId: string; observedAt: string }>;
  masked: string[];
  access: { basis: Grant['basis'] | 'steward'; entry: string | null; agreement: string | null };
  version: number | null;
  asOf: string | null;
}

const deptOf = (a: Actor) => (a.kind === 'staff' || a.kind === 'system' ? a.department : '');

/** May this actor see every field unmasked (the registry's stewards and overseers)? */
export function isSteward(a: Actor): boolean {
  return hasRole(a, 'registry-steward') || hasRole(a, 'platform-admin');
}

/**
 * What the actor's department may read of the registry: the catalog entry the definition names
 * (a base entry: every department, personal fields masked), or an agreement (its items, unmasked),
 * or, for the entry's provider and the stewards, everything.
 */
export async function populationAccess(q: Queryable, reg: CompiledRegistry, actor: Actor): Promise<{ fields: string[]; masked: Set<string>; basis: PersonView['access'] } | null> {
  const all = reg.fields;
  if (isSteward(actor)) return { fields: [...all], masked: new Set(), basis: { basis: 'steward', entry: reg.def.catalogEntry ?? null, agreement: null } };
  const code = reg.def.catalogEntry;
  const entry = code ? await getEntry(q, code) : null;
  if (!entry) return null;
  const g = await accessFor(q, entry, deptOf(actor));
  if (!g) return null;
  const fields = all.filter((f) => g.items.includes(f));
  const masked = new Set(g.basis === 'open' ? fields.filter((f) => reg.def.fields[f]!.personal && reg.def.fields[f]!.mask) : []);
  return { fields, masked, basis: { basis: g.basis, entry: entry.code, agreement: g.agreementId } };
}

/** One person as this actor may see them (now, or as known at `asOf`); every read is audited, refusals too. */
export async function readPerson(
  ctx: Pick<ModuleContext, 'db'>,
  reg: CompiledRegistry,
  actor: Actor,
  idNumber: string,
  opts: { purpose: string; asOf?: Date; requestId?: string; ip?: string },
): Promise<PersonView> {
  const access = await populationAccess(ctx.db, reg, actor);
  const audit = (outcome: 'ok' | 'denied', details: Record<string, unknown> = {}) =>
    appendAudit(ctx.db, {
      actor: auditActorOf(actor),
      action: 'population.person.read',
      resource: { type: 'person', id: maskValue(idNumber, 'id') as string },
      subject: idNumber,
      purpose: opts.purpose,
      outcome,
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
      ...(opts.ip ? { ip: opts.ip } : {}),
      details,
    });
  if (!access) {
    await audit('denied', { reason: 'no sharing agreement' });
    throw new PopulationError('forbidden', `${deptOf(actor) || 'this caller'} has no access to the population registry (no catalog grant)`);
  }
  let golden: Golden | null;
  let version: number | null = null;
  if (opts.asOf) golden = await goldenAsOf(ctx.db, reg, idNumber, opts.asOf);
  else {
    const g = await getGolden(ctx.db, reg, idNumber);
    golden = g?.record ?? null;
    version = g?.version ?? null;
  }
  if (!golden) {
    await audit('ok', { found: false, asOf: opts.asOf?.toISOString() ?? null });
    throw new PopulationError('not-found', opts.asOf ? `no record of ${maskValue(idNumber, 'id')} as of ${opts.asOf.toISOString()}` : `no person ${maskValue(idNumber, 'id')}`);
  }
  const record: Record<string, unknown> = {};
  const provenance: PersonView['provenance'] = {};
  const masked: string[] = [];
  for (const f of access.fields) {
    const fv: FieldValue | undefined = golden[f];
    if (!fv) continue;
    if (access.masked.has(f)) {
      record[f] = maskValue(fv.v, reg.def.fields[f]!.mask);
      masked.push(f);
    } else record[f] = fv.v;
    provenance[f] = { source: fv.s, recordId: fv.r, observedAt: fv.t };
  }
  await audit('ok', { fields: Object.keys(record).length, masked: masked.length, basis: access.basis.basis, asOf: opts.asOf?.toISOString() ?? null });
  return { idNumber: access.masked.has(reg.def.key) ? (maskValue(idNumber, 'id') as string) : idNumber, record, provenance, masked, access: access.basis, version, asOf: opts.asOf?.toISOString() ?? null };
}
