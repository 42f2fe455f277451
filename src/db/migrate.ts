// Versioned SQL migrations. Each module owns a schema and a folder of NNN_name.sql files; modules
// migrate in composition order (a module's migrations may reference only modules below it).
// One run is one transaction under an advisory lock, so concurrent starts cannot race and a crash
// mid-run leaves the database as it was.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Db } from './pool.ts';

export interface Migration {
  module: string;
  id: string;
  sql: string;
  checksum: string;
}

export interface MigrationSource {
  module: string;
  dir: string;
}

export class MigrationError extends Error {}

const FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

export function readMigrations(sources: MigrationSource[]): Migration[] {
  const all: Migration[] = [];
  for (const { module, dir } of sources) {
    if (!fs.existsSync(dir)) continue;
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
    for (const file of files) {
      if (!FILE.test(file)) throw new MigrationError(`${path.join(dir, file)}: a migration file is named NNN_lower_snake.sql`);
      const sql = fs.readFileSync(path.join(dir, file), 'utf8');
      all.push({ module, id: file.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') });
    }
  }
  return all;
}

const LOCK_KEY = 7_110_421; // arbitrary, constant: the advisory lock all Gusu processes migrate under

async function ensureTable(client: pg.PoolClient): Promise<void> {
  await client.query(`create table if not exists public.gusu_migration (
    module text not null,
    id text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    primary key (module, id))`);
}

export async function appliedMigrations(db: Db): Promise<{ module: string; id: string; checksum: string }[]> {
  const exists = await db.query(`select to_regclass('public.gusu_migration') as t`);
  if (!exists.rows[0]?.t) return [];
  const { rows } = await db.query<{ module: string; id: string; checksum: string }>('select module, id, checksum from public.gusu_migration order by applied_at, module, id');
  return rows;
}

/** Applies what is pending in its own transaction; refuses if an applied migration was edited. Returns the ids applied. */
export async function migrate(db: Db, migrations: Migration[], opts: { only?: Set<string> } = {}): Promise<string[]> {
  return await db.tx((client) => migrateWith(client, migrations, opts));
}

/** The same inside the caller's transaction (a restore recreates the schema and loads the data in one). */
export async function migrateWith(client: pg.PoolClient, migrations: Migration[], opts: { only?: Set<string> } = {}): Promise<string[]> {
  {
    await client.query('select pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await ensureTable(client);
    const { rows } = await client.query<{ module: string; id: string; checksum: string }>('select module, id, checksum from public.gusu_migration');
    const applied = new Map(rows.map((r) => [`${r.module}/${r.id}`, r.checksum]));
    const done: string[] = [];
    for (const m of migrations) {
      const key = `${m.module}/${m.id}`;
      const checksum = applied.get(key);
      if (checksum !== undefined) {
        if (checksum !== m.checksum) throw new MigrationError(`migration ${key} was changed after it was applied; add a new migration instead`);
        continue;
      }
      if (opts.only && !opts.only.has(key)) continue;
      try {
        await client.query(m.sql);
      } catch (err) {
        throw new MigrationError(`migration ${key} failed: ${(err as Error).message}`);
      }
      await client.query('insert into public.gusu_migration (module, id, checksum) values ($1, $2, $3)', [m.module, m.id, m.checksum]);
      done.push(key);
    }
    return done;
  }
}
