// 数据融合: the one fusion engine of the base registries (population, legal entities). A registry is
// data (profiles/<city>/registries/<name>.json: fields, key, sources with mappings, survivorship,
// life events); this module owns the tables every registry's source records, golden records,
// conflicts, rejected and unlinked records and life events live in (each row names its registry).
import { fileURLToPath } from 'node:url';
import type { GusuModule } from '../../../module.ts';

export * from './model.ts';
export * from './engine.ts';
export * from './steward.ts';
export { linkPending, decideUnlinked, dbReviewStore, LINK_THRESHOLD, type LinkRun } from './linking.ts';

export const fusionModule: GusuModule = {
  name: 'fusion',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
};
