// The person table (population.person): the typed projection of the registry's golden records
// that other modules read — bulk loading (the demo), the real-name check, counts. Imports nothing
// above the database layer, so modules below the registry (identity, messaging) can use it.
import type pg from 'pg';
import type { Queryable } from '../../../db/index.ts';
import { copyRows } from '../../../db/copy.ts';

export interface PersonInput {
  idNumber: string;
  name: string;
  sex: 'M' | 'F';
  ethnicity: string;
  birthDate: string;
  countyCode: string;
  streetCode: string | null;
  communityCode: string | null;
  address: string;
  phone: string | null;
}

const COLUMNS = ['id_number', 'name', 'sex', 'ethnicity', 'birth_date', 'county_code', 'street_code', 'community_code', 'address', 'phone', 'source', 'synthetic'];

/** Bulk-loads persons inside the caller's transaction (COPY); returns the count. */
export async function loadPersons(client: pg.PoolClient, persons: Iterable<PersonInput> | AsyncIterable<PersonInput>, source: string, synthetic: boolean): Promise<number> {
  async function* rows() {
    for await (const p of persons as AsyncIterable<PersonInput>) {
      yield [p.idNumber, p.name, p.sex, p.ethnicity, p.birthDate, p.countyCode, p.streetCode, p.communityCode, p.address, p.phone, source, synthetic];
    }
  }
  return await copyRows(client, 'population.person', COLUMNS, rows());
}

export async function deletePersonsFromSource(client: Queryable, source: string): Promise<number> {
  const r = await client.query('delete from population.person where source = $1', [source]);
  return r.rowCount ?? 0;
}

export interface PersonRecord {
  idNumber: string;
  name: string;
  sex: 'M' | 'F';
  birthDate: string;
  countyCode: string;
  synthetic: boolean;
}

/**
 * The person with this ID number, or null. A read of personal data: the caller audits it (with the
 * ID number as the subject and its purpose), e.g. identity's real-name check at registration.
 */
export async function findPersonByIdNumber(q: Queryable, idNumber: string): Promise<PersonRecord | null> {
  if (!/^[0-9]{17}[0-9X]$/.test(idNumber)) return null;
  const { rows } = await q.query<{ id_number: string; name: string; sex: 'M' | 'F'; birth_date: string; county_code: string; synthetic: boolean }>(
    'select id_number, name, sex, birth_date, county_code, synthetic from population.person where id_number = $1',
    [idNumber],
  );
  const r = rows[0];
  return r ? { idNumber: r.id_number, name: r.name, sex: r.sex, birthDate: r.birth_date, countyCode: r.county_code, synthetic: r.synthetic } : null;
}

/** Residents per county-level division (aggregates only: no personal data). */
export async function personCountsByCounty(db: Queryable): Promise<{ countyCode: string; persons: number; synthetic: number }[]> {
  const { rows } = await db.query<{ county_code: string; persons: number; synthetic: number }>(
    `select county_code, count(*)::int as persons, count(*) filter (where synthetic)::int as synthetic
       from population.person group by county_code order by county_code`,
  );
  return rows.map((r) => ({ countyCode: r.county_code, persons: r.persons, synthetic: r.synthetic }));
}
