// The database layer's public face: PostgreSQL only, embedded by default or DATABASE_URL.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRunningEmbedded, startEmbedded, type EmbeddedServer } from './embedded.ts';
import { createDb, type Db, type Queryable } from './pool.ts';

export { createDb, type Db, type Queryable } from './pool.ts';
export { migrate, migrateWith, readMigrations, appliedMigrations, MigrationError, type Migration, type MigrationSource } from './migrate.ts';
export { enqueue, startWorker, jobCounts, backoffMs, type Job, type JobHandler, type Worker } from './jobs.ts';
export { startEmbedded, findRunningEmbedded, EmbeddedDbError, type EmbeddedServer } from './embedded.ts';

/** the platform's own migrations (settings, jobs) */
export const platformMigrations = { module: 'platform', dir: path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations') };

export interface Database {
  db: Db;
  url: string;
  embedded: EmbeddedServer | null;
  /** pid of the running platform whose embedded server this attached to */
  attachedTo: number | null;
  close(): Promise<void>;
}

/**
 * DATABASE_URL, or the embedded server. With `attach` (CLI commands), the embedded server of a
 * platform already running on the data directory is used instead of starting one.
 */
export async function openDatabase(opts: { databaseUrl: string | null; dataDir: string; poolSize: number; log?: (msg: string) => void; attach?: boolean; applicationName?: string }): Promise<Database> {
  const running = !opts.databaseUrl && opts.attach ? findRunningEmbedded(path.resolve(opts.dataDir)) : null;
  const embedded = opts.databaseUrl || running ? null : await startEmbedded(path.resolve(opts.dataDir), opts.log);
  const url = opts.databaseUrl ?? running?.url ?? embedded!.url;
  const db = createDb(url, { max: opts.poolSize, applicationName: opts.applicationName });
  return {
    db,
    url,
    embedded,
    attachedTo: running?.pid ?? null,
    async close() {
      await db.close();
      await embedded?.stop();
    },
  };
}

/**
 * A CLI command's database: DATABASE_URL, or the platform's embedded server in its data directory
 * (attached to when the platform is running). `needs` names a table the command's module creates:
 * without it the command says to run `gusu migrate` first. Closed when `fn` returns.
 */
export async function withCommandDb<T>(
  config: { databaseUrl: string | null; dataDir: string },
  opts: { app: string; needs: readonly string[]; what: string; poolSize?: number },
  fn: (db: Db) => Promise<T>,
): Promise<T> {
  if (!config.databaseUrl && !findRunningEmbedded(path.resolve(config.dataDir)) && !fs.existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
    throw new Error(`there is no embedded database in ${config.dataDir}: set GUSU_DATA_DIR to the platform's data directory, or DATABASE_URL`);
  }
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: opts.poolSize ?? 2, attach: true, applicationName: opts.app });
  try {
    for (const table of opts.needs) {
      const { rows } = await database.db.query<{ t: string | null }>('select to_regclass($1)::text as t', [table]);
      if (!rows[0]?.t) throw new Error(`${opts.what} is not set up in this database: run \`gusu migrate\` first`);
    }
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

export async function getSetting<T>(db: Queryable, key: string): Promise<T | undefined> {
  const { rows } = await db.query<{ value: T }>('select value from platform.setting where key = $1', [key]);
  return rows[0]?.value;
}

export async function setSetting(db: Queryable, key: string, value: unknown): Promise<void> {
  await db.query(
    `insert into platform.setting (key, value) values ($1, $2) on conflict (key) do update set value = excluded.value, updated_at = now()`,
    [key, JSON.stringify(value)],
  );
}
