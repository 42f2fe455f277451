// What a module of the city is to the composition root: the schema it owns (its migrations), the
// routes it serves on each face, the jobs it handles, and the subsystems of the plan it makes
// available. Each module's index.ts exports one of these as its public face to main.ts.
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import type { Config } from './config/index.ts';
import type { CityProfile } from './config/profile.ts';
import type { Db, JobHandler } from './db/index.ts';
import type { Actor, Policy, Rule } from './base/identity/policy.ts';

export interface ModuleContext {
  db: Db;
  config: Config;
  profile: CityProfile;
  log: FastifyBaseLogger;
  /** every module's rules, compiled: ctx.policy.authorize(actor, 'person:read', person) */
  policy: Policy;
  /** every registered module's name and the subsystems it provides */
  modules: readonly { name: string; provides: readonly string[] }[];
}

/** thrown by a command for bad flags or arguments: the CLI prints it with the usage and exits 2 */
export class UsageError extends Error {}

/** A command's whole-number flag (`--limit 20`): undefined when absent, a UsageError naming it when bad. */
export function wholeNumberFlag(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} expects a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** a `gusu` sub-command; returns the exit code (0 done, 1 failed, 2 usage) */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[], config: Config): Promise<number>;
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
  /** who may do what to this module's resources (see src/base/identity/policy.ts) */
  policies?: readonly Rule[];
  /** sub-commands this module adds to the `gusu` CLI */
  commands?: Record<string, Command>;
  /**
   * identifies callers by a credential this module owns (the exchange: a member's request
   * signature); null when the request carries none, so the next resolver (sessions, tokens) runs
   */
  actorResolver?: (ctx: ModuleContext) => (req: import('fastify').FastifyRequest) => Promise<Actor | null>;
  /** runs once at start-up after migrations, before listening (e.g. schedule recurring jobs) */
  start?: (ctx: ModuleContext) => Promise<void>;
}

/** Finds the actor behind a request (session cookie, bearer token, ...); anonymous if none. */
export type ActorResolver = (req: import('fastify').FastifyRequest) => Promise<Actor>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the action this route performs, 'resource:verb'; every route names one (deny by default) */
    action?: string;
  }
  interface FastifyRequest {
    actor: Actor;
  }
}
