// 人口基础数据库 — public face. First cut: the person table and bulk loading; fusion of the eight
// source departments, provenance, history and the registry APIs come with the population issue.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Queryable } from '../../../db/index.ts';
import { copyRows } from '../../../db/copy.ts';
import type { GusuModule, ModuleContext } from '../../../module.ts';
import { engineOf } from '../../workflow/index.ts';
import { populationApi, populationPolicy } from './api.ts';
import { populationRegistry, projectPersons } from './registry.ts';
import { runRegistry } from '../fusion/bridge.ts';
import { enqueue } from '../../../db/index.ts';
import { populationGovstackApi, populationGovstackPolicy } from './govstack.ts';
import { populationPages, populationPagePolicy } from './pages.ts';
import { linkCommand } from '../linkage/index.ts';

// segments (declared filters as SQL for insert ... select) and the attributes a notice needs
export * from './segment.ts';
export { populationRegistry, projectPersons, readPerson, populationAccess, maskValue, PopulationError, type PersonView } from './registry.ts';
export { populationPolicy, populationApi, DISPUTE_PROCESS } from './api.ts';

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

export const BRIDGE_JOB = 'population.bridge';

/** the next run of the exchange bridge (one per slot: several processes do not pile runs up) */
async function scheduleBridge(ctx: Pick<ModuleContext, 'db' | 'config'>, delayMs = ctx.config.registryBridgeMs): Promise<void> {
  const every = Math.max(ctx.config.registryBridgeMs, 1);
  const at = new Date(Date.now() + delayMs);
  await enqueue(ctx.db, BRIDGE_JOB, {}, { runAt: at, uniqueKey: `${BRIDGE_JOB}:${Math.floor(at.getTime() / every)}`, maxAttempts: 1 });
}

export const populationModule: GusuModule = {
  name: 'population',
  migrations: path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations'),
  // `gusu link`: the record-linkage engine over CSV files (src/base/registries/linkage)
  commands: { link: linkCommand },
  // a getter: these files import each other through other modules, so the lists are read when the platform is composed
  get policies() {
    return [...populationPolicy, ...populationGovstackPolicy, ...populationPagePolicy];
  },
  internalRoutes(app, ctx) {
    populationApi(app, ctx, () => engineOf(ctx));
    populationGovstackApi(app, ctx);
    populationPages(app, ctx, () => engineOf(ctx));
  },
  jobs: (ctx) => ({
    [BRIDGE_JOB]: async () => {
      try {
        const r = await runRegistry(ctx, populationRegistry(ctx), { project: projectPersons });
        if (r.fused || r.published || r.linked.linked || r.linked.review) ctx.log.info(r, 'population registry: sources fused, records linked, life events published');
      } finally {
        if (ctx.config.registryBridgeMs > 0) await scheduleBridge(ctx);
      }
    },
  }),
  async start(ctx) {
    // the definition must load: a broken one stops start-up, naming the file and the problem
    populationRegistry(ctx);
    if (ctx.config.registryBridgeMs > 0) await scheduleBridge(ctx, 5_000);
  },
};
