// The database layer's public face: PostgreSQL only, embedded by default or DATABASE_URL.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbedded, type EmbeddedServer } from './embedded.ts';
import { createDb, type Db, type Queryable } from './pool.ts';

export { createDb, type Db, type Queryable } from './pool.ts';
export { migrate, readMigrations, appliedMigrations, MigrationError, type Migration, type MigrationSource } from './migrate.ts';
export { enqueue, startWorker, jobCounts, backoffMs, type Job, type JobHandler, type Worker } from './jobs.ts';
export { startEmbedded, EmbeddedDbError, type EmbeddedServer } from './embedded.ts';

/** the platform's own migrations (settings, jobs) */
export const platformMigrations = { module: 'platform', dir: path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations') };

export interface Database {
  db: Db;
  url: string;
  embedded: EmbeddedServer | null;
  close(): Promise<void>;
}

export async function openDatabase(opts: { databaseUrl: string | null; dataDir: string; poolSize: number; log?: (msg: string) => void }): Promise<Database> {
  const embedded = opts.databaseUrl ? null : await startEmbedded(path.resolve(opts.dataDir), opts.log);
  const url = opts.databaseUrl ?? embedded!.url;
  const db = createDb(url, { max: opts.poolSize });
  return {
    db,
    url,
    embedded,
    async close() {
      await db.close();
      await embedded?.stop();
    },
  };
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
