// Composition root: config -> city profile -> database -> migrations -> modules -> HTTP listeners
// and the job worker. Everything the platform is, wired in one place.
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { Config } from './config/index.ts';
import { loadCityProfile } from './config/profile.ts';
import { migrate, openDatabase, platformMigrations, readMigrations, startWorker, type Database, type JobHandler, type MigrationSource, type Worker } from './db/index.ts';
import { buildServer, type Face, type ServerState } from './http/server.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import type { ActorResolver, GusuModule, ModuleContext } from './module.ts';
import { ANONYMOUS } from './base/identity/policy.ts';
import { MODULES } from './modules.ts';
import { compilePolicy } from './base/identity/policy.ts';
import { httpPolicy } from './http/policy.ts';
import { createActorResolver } from './base/identity/index.ts';

export interface Listener {
  face: Face;
  app: FastifyInstance;
  url: string;
}

export interface Platform {
  config: Config;
  database: Database;
  ctx: ModuleContext;
  metrics: Metrics;
  listeners: Listener[];
  worker: Worker;
  state: ServerState;
  log: Logger;
  /** graceful: stop accepting, let in-flight requests and jobs finish, then close the database */
  close(): Promise<void>;
}

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { service: 'gusu' }, timestamp: pino.stdTimeFunctions.isoTime });
}

export function migrationSources(modules: readonly GusuModule[] = MODULES): MigrationSource[] {
  return [platformMigrations, ...modules.filter((m) => m.migrations).map((m) => ({ module: m.name, dir: m.migrations! }))];
}

export async function startPlatform(config: Config, opts: { log?: Logger; listen?: boolean; modules?: readonly GusuModule[]; resolveActor?: ActorResolver } = {}): Promise<Platform> {
  const log = opts.log ?? createLogger(config);
  const modules = opts.modules ?? MODULES;
  const names = modules.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`module "${twice}" is registered twice`);
  const profile = loadCityProfile(config.profileDir);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    log: (msg) => log.info(msg),
  });
  try {
    const applied = await migrate(database.db, readMigrations(migrationSources(modules)));
    if (applied.length) log.info({ applied }, 'migrations applied');

    const ctx: ModuleContext = {
      db: database.db,
      config,
      profile,
      log,
      policy: compilePolicy([...httpPolicy, ...modules.flatMap((m) => m.policies ?? [])]),
      modules: modules.map((m) => ({ name: m.name, provides: m.provides ?? [] })),
    };
    for (const m of modules) await m.start?.(ctx);
    // sign-in: the identity module's sessions and bearer tokens, unless the caller brings its own (tests)
    const fallback = opts.resolveActor ?? (modules.some((m) => m.name === 'identity') ? createActorResolver(ctx) : undefined);
    // modules' own credentials first (a member's signed request), then sessions and tokens
    const own = modules.flatMap((m) => (m.actorResolver ? [m.actorResolver(ctx)] : []));
    const resolveActor: ActorResolver | undefined = own.length
      ? async (req) => {
          for (const r of own) {
            const actor = await r(req);
            if (actor) return actor;
          }
          return fallback ? fallback(req) : ANONYMOUS;
        }
      : fallback;

    const metrics = createMetrics();
    const state: ServerState = { ready: false, checkDb: async () => void (await database.db.query('select 1')) };
    const handlers: Record<string, JobHandler> = {};
    for (const m of modules) Object.assign(handlers, m.jobs?.(ctx));
    const worker = startWorker(database.db, handlers, {
      concurrency: config.jobConcurrency,
      log: (obj, msg) => log.warn(obj, msg),
      onFinish: (kind, outcome, ms) => metrics.jobs.observe({ kind, outcome }, ms / 1000),
    });

    const faces: { face: Face; port: number }[] =
      config.publicPort !== null && config.internalPort !== null
        ? [
            { face: 'public', port: config.publicPort },
            { face: 'internal', port: config.internalPort },
          ]
        : [{ face: 'both', port: config.port }];
    const listeners: Listener[] = [];
    for (const { face, port } of faces) {
      const app = await buildServer({ ctx, modules, face, state, metrics, loggerInstance: log, resolveActor });
      let url = '';
      if (opts.listen !== false) {
        await app.listen({ host: config.host, port });
        const addr = app.server.address();
        const actualPort = typeof addr === 'object' && addr ? addr.port : port;
        const host = config.host.includes(':') ? `[${config.host}]` : config.host;
        url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actualPort}`;
      }
      listeners.push({ face, app, url });
    }
    state.ready = true;

    let closing: Promise<void> | null = null;
    const close = () =>
      (closing ??= (async () => {
        state.ready = false;
        const timeout = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs).unref());
        await Promise.race([Promise.all([...listeners.map((l) => l.app.close()), worker.stop()]), timeout]);
        await database.close();
      })());
    return { config, database, ctx, metrics, listeners, worker, state, log, close };
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
}
