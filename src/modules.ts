// Every module of the platform, in dependency order (lower layers first): migrations run and
// start hooks fire in this order.
import type { GusuModule } from './module.ts';
import { fusionModule } from './base/registries/fusion/index.ts';
import { populationModule } from './base/registries/population/index.ts';
import { legalEntityModule } from './base/registries/legal-entity/index.ts';
import { demoModule } from './demo/index.ts';
import { publicPortalModule } from './portals/public/index.ts';
import { consoleModule } from './portals/console/index.ts';
import { auditModule } from './base/audit/index.ts';
import { caModule } from './base/identity/ca/index.ts';
import { identityModule } from './base/identity/index.ts';
import { authPortalModule } from './portals/auth/index.ts';
import { securityModule } from './base/security/index.ts';
import { workflowModule } from './base/workflow/index.ts';
import { messagingModule } from './base/messaging/index.ts';
import { exchangeModule } from './base/exchange/index.ts';
import { catalogModule } from './base/catalog/index.ts';

export const MODULES: readonly GusuModule[] = [
  auditModule,
  // 数据融合: the tables of the one fusion engine both base registries use
  fusionModule,
  populationModule,
  legalEntityModule,
  caModule,
  demoModule,
  // after demo: its start seeds the demo accounts from demo residents, enterprises and the CA
  identityModule,
  messagingModule, // mailboxes and notices: after identity (demo accounts) and the registries
  // 业务协同: deploys the city's processes, and in the demo seeds tasks for the demo staff
  workflowModule,
  // 政务信息资源目录: the catalog and sharing agreements (reviews run on the workflow engine)
  catalogModule,
  // 数据交换平台: this process as an exchange node (needs the CA for its certificate; resources are catalog entries)
  exchangeModule,
  publicPortalModule,
  consoleModule,
  authPortalModule,
  // 定期安全检测: reads audit, CA and identity state
  securityModule,
];
