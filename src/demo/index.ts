// The Suzhou demo city: synthetic residents and enterprises loaded on first start, or on demand by
// `gusu demo`. One transaction: a crash mid-load leaves the database as it was.
import type { CityProfile } from '../config/profile.ts';
import { getSetting, setSetting, type Db } from '../db/index.ts';
import { deletePersonsFromSource, loadPersons } from '../base/registries/population/persons.ts';
import { deleteEntitiesFromSource, loadEntities } from '../base/registries/legal-entity/index.ts';
import type { GusuModule } from '../module.ts';
import { generateEnterprises, generateResidents, SYNTHETIC_NOTICE } from './generator.ts';

export const DEMO_SOURCE = 'demo';
const SETTING = 'demo.loaded';

export interface DemoLoad {
  residents: number;
  enterprises: number;
  seed: number;
  loadedAt: string;
  notice: string;
}

export async function demoStatus(db: Db): Promise<DemoLoad | undefined> {
  return await getSetting<DemoLoad>(db, SETTING);
}

/** Replaces any earlier demo rows with a fresh deterministic set. */
export async function loadDemo(db: Db, profile: CityProfile, opts: { residents: number; enterprises: number; seed: number }): Promise<DemoLoad> {
  return await db.tx(async (client) => {
    // serialise concurrent loaders (two processes starting on one fresh database)
    await client.query(`select pg_advisory_xact_lock(7110422)`);
    await deletePersonsFromSource(client, DEMO_SOURCE);
    await deleteEntitiesFromSource(client, DEMO_SOURCE);
    const residents = await loadPersons(client, generateResidents(profile, { seed: opts.seed, count: opts.residents }), DEMO_SOURCE, true);
    const enterprises = await loadEntities(client, generateEnterprises(profile, { seed: opts.seed, count: opts.enterprises }), DEMO_SOURCE, true);
    const load: DemoLoad = { residents, enterprises, seed: opts.seed, loadedAt: new Date().toISOString(), notice: SYNTHETIC_NOTICE };
    await setSetting(client, SETTING, load);
    return load;
  });
}

export const demoModule: GusuModule = {
  name: 'demo',
  async start(ctx) {
    if (!ctx.config.demo) return;
    if (await demoStatus(ctx.db)) return;
    const t0 = Date.now();
    ctx.log.info({ residents: ctx.config.demoResidents, enterprises: ctx.config.demoEnterprises }, 'loading the synthetic demo city (first start)');
    const load = await loadDemo(ctx.db, ctx.profile, { residents: ctx.config.demoResidents, enterprises: ctx.config.demoEnterprises, seed: ctx.config.demoSeed });
    ctx.log.info({ ...load, ms: Date.now() - t0 }, 'demo city loaded');
  },
};
