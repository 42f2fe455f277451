// What a module of the city is to the composition root: the schema it owns (its migrations), the
// routes it serves on each face, the jobs it handles, and the subsystems of the plan it makes
// available. Each module's index.ts exports one of these as its public face to main.ts.
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import type { Config } from './config/index.ts';
import type { CityProfile } from './config/profile.ts';
import type { Db, JobHandler } from './db/index.ts';

export interface ModuleContext {
  db: Db;
  config: Config;
  profile: CityProfile;
  log: FastifyBaseLogger;
  /** every registered module's name and the subsystems it provides */
  modules: readonly { name: string; provides: readonly string[] }[];
}

export type Routes = (app: FastifyInstance, ctx: ModuleContext) => Promise<void> | void;

export interface GusuModule {
  name: string;
  /** folder of NNN_name.sql files creating and evolving the module's own schema */
  migrations?: string;
  /** the public face (外网: portal, public APIs) */
  publicRoutes?: Routes;
  /** the internal face (政务网: consoles, exchange, registries) */
  internalRoutes?: Routes;
  jobs?: (ctx: ModuleContext) => Record<string, JobHandler>;
  /** ids from the subsystem directory (src/portals/public/subsystems.ts) that this module makes work */
  provides?: readonly string[];
  /** runs once at start-up after migrations, before listening (e.g. schedule recurring jobs) */
  start?: (ctx: ModuleContext) => Promise<void>;
}
