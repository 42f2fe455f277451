// 政务信息资源目录 + 共享 — base/catalog's public face: the city's catalog of government information
// resources (who collects and maintains what, how it is shared, how often it is updated), search,
// freshness, and the sharing agreements that the base layer enforces (accessFor + projectItems).
import { fileURLToPath } from 'node:url';
import type { Queryable } from '../../db/index.ts';
import { enqueue } from '../../db/index.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { sendNotice } from '../messaging/index.ts';
import { staffHolding } from '../identity/index.ts';
import { engineOf } from '../workflow/index.ts';
import { loadCatalogProfile } from './model.ts';
import { freshness, syncProfileCatalog } from './store.ts';
import { catalogApi, catalogPolicy } from './api.ts';
import { repairReviews } from './review.ts';
import { seedDemoCatalog } from './demo.ts';
import { catalogCommand } from './cli.ts';
import { openCatalogPolicy, openCatalogRoutes } from './open.ts';
import { catalogConsolePages, catalogPagePolicy, publicCatalogPages } from './pages.ts';

export * from './model.ts';
export { CatalogError, entryOfResource, freshness, getEntry, listCategories, noteArrival, saveEntry, searchEntries, searchText, normaliseQuery, syncProfileCatalog, withdrawEntry } from './store.ts';
export type { CatalogView, Entry, FacetValue, Freshness, SearchQuery, SearchResult } from './store.ts';
export { accessFor, decideAgreement, getAgreement, listAgreements, projectItems, recordOpenUse, requestAgreement, revokeAgreement, withdrawAgreement, AGREEMENT_PROCESS } from './agreements.ts';
export type { Agreement, AgreementFilter, AgreementRequest, Decision, Grant } from './agreements.ts';
export { startReview, repairReviews } from './review.ts';
export { seedApprovedAgreement } from './demo.ts';
export { catalogPolicy, entryJson, agreementJson, readableEntry, decideThroughTask, sendCatalogError, SearchQuerystring } from './api.ts';

export const FRESHNESS_JOB = 'catalog.freshness';
const FRESHNESS_EVERY_MS = 3600_000;

async function scheduleFreshness(q: Queryable, at = new Date(Date.now() + FRESHNESS_EVERY_MS)): Promise<void> {
  const slot = Math.floor(at.getTime() / FRESHNESS_EVERY_MS);
  await enqueue(q, FRESHNESS_JOB, {}, { runAt: at, uniqueKey: `${FRESHNESS_JOB}:${slot}`, maxAttempts: 1 });
}

/**
 * Late entries: each maintainer department is told once per lateness (until data arrives again),
 * through its staff's mailboxes. Returns how many entries were newly reported.
 */
export async function reportLateEntries(ctx: Pick<ModuleContext, 'db'>, now = new Date()): Promise<number> {
  const late = (await freshness(ctx.db, { lateOnly: true, now })).filter((f) => f.dueAt);
  let reported = 0;
  for (const f of late) {
    const sent = await ctx.db.tx(async (q) => {
      const { rowCount } = await q.query(
        `insert into catalog.arrival (entry, last_at, count, late_notified_at) values ($1, $2, 0, now())
         on conflict (entry) do update set late_notified_at = now()
         where catalog.arrival.late_notified_at is null or catalog.arrival.late_notified_at < catalog.arrival.last_at`,
        [f.code, f.lastArrival ?? new Date(0)],
      );
      if (!rowCount) return false;
      const to = await staffHolding(q, f.maintainer.department, null);
      if (to.length) {
        await sendNotice(q, {
          from: { department: 'SZ-DSJ', system: 'catalog' },
          to: to.map((staffAccountId) => ({ staffAccountId })),
          subject: { zh: `数据更新逾期：${f.name}`, en: `Data overdue: ${f.name}` },
          body: {
            zh: `目录资源 ${f.code}「${f.name}」应于 ${f.dueAt!.toISOString().slice(0, 10)} 前更新（更新周期：${f.updateCycle}），至今未收到数据。维护岗位：${f.maintainer.post}。详见 /console/catalog/freshness`,
            en: `Catalog entry ${f.code} "${f.name}" was due by ${f.dueAt!.toISOString().slice(0, 10)} (update cycle: ${f.updateCycle}) and no data has arrived. Maintained by: ${f.maintainer.post}. See /console/catalog/freshness`,
          },
        });
      }
      return true;
    });
    if (sent) reported++;
  }
  return reported;
}

export const catalogModule: GusuModule = {
  name: 'catalog',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  // a getter: these files import each other through other modules, so the lists are read when the platform is composed
  get policies() {
    return [...catalogPolicy, ...openCatalogPolicy, ...catalogPagePolicy];
  },
  provides: ['catalog'],
  commands: { catalog: catalogCommand },
  jobs: (ctx) => ({
    [FRESHNESS_JOB]: async () => {
      try {
        await repairReviews(ctx, engineOf(ctx));
        await reportLateEntries(ctx);
      } finally {
        await scheduleFreshness(ctx.db);
      }
    },
  }),
  internalRoutes(app, ctx) {
    catalogApi(app, ctx, () => engineOf(ctx));
    catalogConsolePages(app, ctx, () => engineOf(ctx));
  },
  publicRoutes(app, ctx) {
    openCatalogRoutes(app, ctx);
    publicCatalogPages(app, ctx);
  },
  async start(ctx) {
    const profile = loadCatalogProfile(ctx.config.profileDir, ctx.profile.departments);
    const { changed } = await ctx.db.tx((q) => syncProfileCatalog(q, profile.categories, profile.entries));
    if (changed) ctx.log.info({ changed, entries: profile.entries.length }, 'catalog entries from the city profile');
    if (ctx.config.demo) await seedDemoCatalog(ctx);
    await scheduleFreshness(ctx.db, new Date(Date.now() + 60_000));
  },
};
