// Every module of the platform, in dependency order (lower layers first): migrations run and
// start hooks fire in this order.
import type { GusuModule } from './module.ts';
import { populationModule } from './base/registries/population/index.ts';
import { legalEntityModule } from './base/registries/legal-entity/index.ts';
import { demoModule } from './demo/index.ts';
import { publicPortalModule } from './portals/public/index.ts';
import { consoleModule } from './portals/console/index.ts';

export const MODULES: readonly GusuModule[] = [populationModule, legalEntityModule, demoModule, publicPortalModule, consoleModule];
