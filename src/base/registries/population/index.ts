// 人口基础数据库 — public face: the registry on the fusion engine (definition, API, disputes, linking,
// the exchange bridge), the person table it projects into, and segments.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GusuModule, ModuleContext } from '../../../module.ts';
import { engineOf } from '../../workflow/index.ts';
import { populationApi, populationPolicy } from './api.ts';
import { populationRegistry, projectPersons } from './registry.ts';
import { runRegistry } from '../fusion/bridge.ts';
import { seedDemoRegistry } from './demo.ts';
import { enqueue } from '../../../db/index.ts';
import { populationPages, populationPagePolicy } from './pages.ts';
import { linkCommand } from '../linkage/index.ts';

// segments (declared filters as SQL for insert ... select) and the attributes a notice needs
export * from './segment.ts';
// the person table (modules below the registry import persons.ts and segment.ts directly: no cycle)
export * from './persons.ts';
export { populationRegistry, projectPersons, readPerson, populationAccess, maskValue, PopulationError, type PersonView } from './registry.ts';
export { populationPolicy, populationApi, DISPUTE_PROCESS } from './api.ts';

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
    return [...populationPolicy, ...populationPagePolicy];
  },
  internalRoutes(app, ctx) {
    populationApi(app, ctx, () => engineOf(ctx));
    populationPages(app, ctx, () => engineOf(ctx));
  },
  jobs: (ctx) => ({
    [BRIDGE_JOB]: async () => {
      try {
        if (ctx.config.demo) {
          const n = await seedDemoRegistry(ctx);
          if (n) ctx.log.info({ fused: n }, 'population registry: the demo residents fused (synthetic)');
        }
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
