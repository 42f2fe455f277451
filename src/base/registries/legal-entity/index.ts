// 法人基础数据库 — public face. First cut: the entity table and bulk loading; source fusion,
// lifecycle, credit and joint supervision come with the legal-entity issue.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Queryable } from '../../../db/index.ts';
import { copyRows } from '../../../db/copy.ts';
import type { GusuModule } from '../../../module.ts';

export interface EntityInput {
  uscc: string;
  name: string;
  entityType: string;
  legalRepresentative: string;
  registeredCapital10kYuan: number | null;
  establishedDate: string;
  countyCode: string;
  streetCode: string | null;
  address: string;
  industry: string;
  status: string;
}

const COLUMNS = ['uscc', 'name', 'entity_type', 'legal_representative', 'registered_capital_10k_yuan', 'established_date', 'county_code', 'street_code', 'address', 'industry', 'status', 'source', 'synthetic'];

export async function loadEntities(client: pg.PoolClient, entities: Iterable<EntityInput> | AsyncIterable<EntityInput>, source: string, synthetic: boolean): Promise<number> {
  async function* rows() {
    for await (const e of entities as AsyncIterable<EntityInput>) {
      yield [e.uscc, e.name, e.entityType, e.legalRepresentative, e.registeredCapital10kYuan, e.establishedDate, e.countyCode, e.streetCode, e.address, e.industry, e.status, source, synthetic];
    }
  }
  return await copyRows(client, 'legal_entity.entity', COLUMNS, rows());
}

export async function deleteEntitiesFromSource(client: Queryable, source: string): Promise<number> {
  const r = await client.query('delete from legal_entity.entity where source = $1', [source]);
  return r.rowCount ?? 0;
}

/** Name and address divisions of these entities (unknown codes are absent from the map): what a notice to an enterprise needs. */
export async function entityAttributes(q: Queryable, usccs: readonly string[]): Promise<Map<string, { name: string; countyCode: string; streetCode: string | null }>> {
  const codes = [...new Set(usccs.filter((u) => /^[0-9A-Z]{18}$/.test(u)))];
  const out = new Map<string, { name: string; countyCode: string; streetCode: string | null }>();
  if (!codes.length) return out;
  const { rows } = await q.query<{ uscc: string; name: string; county_code: string; street_code: string | null }>(
    'select uscc, name, county_code, street_code from legal_entity.entity where uscc = any($1::bpchar[])',
    [codes],
  );
  for (const r of rows) out.set(r.uscc, { name: r.name, countyCode: r.county_code, streetCode: r.street_code });
  return out;
}

export async function entityCountsByCounty(db: Queryable): Promise<{ countyCode: string; entities: number; synthetic: number }[]> {
  const { rows } = await db.query<{ county_code: string; entities: number; synthetic: number }>(
    `select county_code, count(*)::int as entities, count(*) filter (where synthetic)::int as synthetic
       from legal_entity.entity group by county_code order by county_code`,
  );
  return rows.map((r) => ({ countyCode: r.county_code, entities: r.entities, synthetic: r.synthetic }));
}

export const legalEntityModule: GusuModule = {
  name: 'legal_entity',
  migrations: path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations'),
};
