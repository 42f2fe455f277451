// Logical backup and restore of the whole Gusu database over the PostgreSQL protocol alone: the
// embedded server ships no pg_dump, and a fresh machine has only Node. A backup is one gzip stream:
//
//   {"format":"gusu-backup","version":1,...}                      header: migrations, sequences
//
//   -- table schema.name {"schema":..,"name":..,"columns":[..]}  per table, in foreign-key order,
//   <COPY text-format rows>                                      straight from COPY TO STDOUT
//   \.
//   -- end {"tables":..,"rows":..,"bytes":..,"counts":{..},"sha256":".."}
//
// The SHA-256 covers every uncompressed byte before the trailer line, so a truncated or edited file
// is refused before restore touches the database. A data line can never be `\.` on its own: COPY's
// text format writes a backslash in a value as `\\`.
//
// Identity columns: COPY FROM writes the given values even into GENERATED ALWAYS identity columns
// (INSERT would need OVERRIDING SYSTEM VALUE; verified on PostgreSQL 15 and 18), and does not advance
// their sequences, so restore sets every sequence to its dumped value afterwards.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { findRunningEmbedded } from './embedded.ts';
import { openDatabase } from './index.ts';
import { migrateWith, type Migration } from './migrate.ts';
import type { Db, Queryable } from './pool.ts';

export class BackupError extends Error {}

export interface BackupHeader {
  format: 'gusu-backup';
  version: 1;
  created: string;
  postgres_version: string;
  postgres_version_num: number;
  migrations: { module: string; id: string; checksum: string }[];
  /** last_value is a string: a bigint may not fit a double */
  sequences: { schema: string; name: string; last_value: string; is_called: boolean }[];
}

export interface TableHeader {
  schema: string;
  name: string;
  columns: string[];
}

export interface BackupTrailer {
  tables: number;
  rows: number;
  /** uncompressed bytes before the trailer line (what sha256 covers) */
  bytes: number;
  counts: Record<string, number>;
  sha256: string;
}

export interface BackupInfo {
  header: BackupHeader;
  tables: TableHeader[];
  trailer: BackupTrailer;
  fileBytes: number;
}

export interface BackupSummary {
  file: string;
  tables: number;
  rows: number;
  bytes: number;
  fileBytes: number;
  ms: number;
}

export interface RestoreSummary {
  tables: number;
  rows: number;
  bytes: number;
  fileBytes: number;
  sequences: number;
  /** migrations newer than the backup, applied after its data */
  applied: string[];
  header: BackupHeader;
  ms: number;
}

const FORMAT = 'gusu-backup';
const VERSION = 1;
const TERMINATOR = Buffer.from('\\.\n');
const TABLE_PREFIX = '-- table ';
const END_PREFIX = '-- end ';
/** a header or table line longer than this is not ours: stop before buffering a whole foreign file */
const MAX_LINE = 16 << 20;

const ident = (s: string) => pg.escapeIdentifier(s);
const qualified = (t: { schema: string; name: string }) => `${ident(t.schema)}.${ident(t.name)}`;
const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

// Every session of a backup or restore speaks the same text dialect, whatever the server's defaults:
// ISO dates cannot be misread as D/M or M/D, and floats are written with enough digits to round-trip.
const SESSION_SETTINGS = [`set local datestyle = 'ISO, YMD'`, `set local intervalstyle = 'postgres'`, `set local extra_float_digits = 3`, `set local timezone = 'UTC'`, `set local client_encoding = 'UTF8'`];

/** Gusu's schemas: every schema but public and the system's (the database is Gusu's alone). */
async function gusuSchemas(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ nspname: string }>(
    `select nspname from pg_namespace
      where nspname !~ '^pg_' and nspname not in ('information_schema', 'public')
      order by nspname`,
  );
  return rows.map((r) => r.nspname);
}

/** Every table holding Gusu's data: the plain tables (and partitions) of its schemas, and public.gusu_migration. */
async function gusuTables(db: Queryable): Promise<TableHeader[]> {
  const { rows } = await db.query<{ schema: string; name: string; columns: string[] | null }>(
    `select n.nspname as schema, c.relname as name,
            (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r'
        and ((n.nspname !~ '^pg_' and n.nspname not in ('information_schema', 'public'))
             or (n.nspname = 'public' and c.relname = 'gusu_migration'))
        -- tables that belong to an extension are the extension's to create and fill
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by n.nspname, c.relname`,
  );
  return rows.map((r) => ({ schema: r.schema, name: r.name, columns: r.columns ?? [] }));
}

/** Foreign keys between the given tables: child -> the tables it references (self-references left out). */
async function foreignKeys(db: Queryable, tables: TableHeader[]): Promise<Map<string, Set<string>>> {
  const { rows } = await db.query<{ child: string; parent: string }>(
    `select cn.nspname || '.' || cc.relname as child, pn.nspname || '.' || pc.relname as parent
       from pg_constraint k
       join pg_class cc on cc.oid = k.conrelid join pg_namespace cn on cn.oid = cc.relnamespace
       join pg_class pc on pc.oid = k.confrelid join pg_namespace pn on pn.oid = pc.relnamespace
      where k.contype = 'f' and k.conrelid <> k.confrelid`,
  );
  const known = new Set(tables.map(key));
  const deps = new Map<string, Set<string>>();
  for (const { child, parent } of rows) {
    if (!known.has(child) || !known.has(parent)) continue;
    if (!deps.has(child)) deps.set(child, new Set());
    deps.get(child)!.add(parent);
  }
  return deps;
}

/** Referenced tables before the tables referencing them; a cycle keeps the input order for its members. */
export function dependencyOrder<T extends { schema: string; name: string }>(tables: T[], deps: Map<string, Set<string>>): T[] {
  const byKey = new Map(tables.map((t) => [key(t), t]));
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (k: string) => {
    if (state.get(k)) return; // done, or a cycle: its member is placed by the outer loop
    state.set(k, 'visiting');
    for (const parent of [...(deps.get(k) ?? [])].sort()) if (byKey.has(parent)) visit(parent);
    state.set(k, 'done');
    out.push(byKey.get(k)!);
  };
  for (const t of tables) visit(key(t));
  return out;
}

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/** Writes the header and every table's rows from one snapshot; the caller owns the transaction. */
async function dump(client: pg.PoolClient, put: (chunk: Buffer | string) => Promise<void>): Promise<{ counts: Record<string, number>; rows: number }> {
  const exists = await client.query(`select to_regclass('public.gusu_migration') as t`);
  if (!exists.rows[0]?.t) throw new BackupError('this database has no public.gusu_migration table: it is not a Gusu database (or was never migrated)');
  const tables = await gusuTables(client);
  // hold off concurrent DDL (a migration) until the dump is done, as pg_dump does
  if (tables.length) await client.query(`lock table ${tables.map(qualified).join(', ')} in access share mode`);
  const ordered = dependencyOrder(tables, await foreignKeys(client, tables));

  const migrations = await client.query<{ module: string; id: string; checksum: string }>('select module, id, checksum from public.gusu_migration order by applied_at, module, id');
  const seqNames = await client.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'S' and n.nspname !~ '^pg_' and n.nspname not in ('information_schema', 'public')
      order by 1, 2`,
  );
  // Sequences are not transactional: read after the snapshot was taken, each is at least as far as
  // any value in the snapshot's rows.
  const sequences: BackupHeader['sequences'] = [];
  for (const s of seqNames.rows) {
    const { rows } = await client.query<{ last_value: string; is_called: boolean }>(`select last_value::text as last_value, is_called from ${qualified(s)}`);
    sequences.push({ schema: s.schema, name: s.name, last_value: rows[0]!.last_value, is_called: rows[0]!.is_called });
  }
  const version = await client.query<{ v: string; n: string }>(`select current_setting('server_version') as v, current_setting('server_version_num') as n`);
  const header: BackupHeader = {
    format: FORMAT,
    version: VERSION,
    created: new Date().toISOString(),
    postgres_version: version.rows[0]!.v,
    postgres_version_num: Number(version.rows[0]!.n),
    migrations: migrations.rows,
    sequences,
  };
  await put(JSON.stringify(header) + '\n');

  const counts: Record<string, number> = {};
  let total = 0;
  for (const t of ordered) {
    await put(`\n${TABLE_PREFIX}${key(t)} ${JSON.stringify({ schema: t.schema, name: t.name, columns: t.columns })}\n`);
    const cols = t.columns.length ? ` (${t.columns.map(ident).join(', ')})` : '';
    const source = client.query(copyTo(`copy ${qualified(t)}${cols} to stdout`));
    let rows = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      rows += countNewlines(chunk); // one line per row: newlines inside values are escaped
      await put(chunk);
    }
    await put(TERMINATOR);
    counts[key(t)] = rows;
    total += rows;
  }
  return { counts, rows: total };
}

/**
 * Writes a consistent backup of the whole database to file, streamed: one REPEATABLE READ READ ONLY
 * transaction (one snapshot), COPY TO STDOUT per table, gzip, file.partial renamed when complete.
 */
export async function backupDatabase(db: Db, file: string): Promise<BackupSummary> {
  const t0 = Date.now();
  const partial = `${file}.partial`;
  const hash = createHash('sha256');
  let bytes = 0;

  // a backup holds personal data: readable by its owner only
  const out = fs.createWriteStream(partial, { mode: 0o600 });
  const gz = zlib.createGzip({ level: 6 });
  const written = pipeline(gz, out);
  written.catch(() => undefined); // awaited below; an early failure must not surface as unhandled
  const put = async (chunk: Buffer | string) => {
    hash.update(chunk);
    bytes += Buffer.byteLength(chunk);
    if (!gz.write(chunk)) await Promise.race([once(gz, 'drain'), written]);
  };

  try {
    // Not db.tx: if writing fails mid-COPY the connection is discarded rather than rolled back (a
    // half-read COPY OUT leaves it unusable); the transaction is read-only, so nothing is lost.
    const client = await db.pool.connect();
    let result: { counts: Record<string, number>; rows: number };
    try {
      await client.query('begin isolation level repeatable read, read only');
      for (const s of SESSION_SETTINGS) await client.query(s);
      result = await dump(client, put);
      await client.query('commit');
      client.release();
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    const trailer: BackupTrailer = { tables: Object.keys(result.counts).length, rows: result.rows, bytes, counts: result.counts, sha256: hash.digest('hex') };
    gz.end(`${END_PREFIX}${JSON.stringify(trailer)}\n`);
    await written;
    const fd = fs.openSync(partial, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(partial, file);
    return { file, tables: trailer.tables, rows: trailer.rows, bytes, fileBytes: fs.statSync(file).size, ms: Date.now() - t0 };
  } catch (err) {
    gz.destroy();
    await written.catch(() => undefined);
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

export type BackupEvent =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'table'; table: TableHeader }
  | { kind: 'data'; chunk: Buffer }
  | { kind: 'end-table'; table: TableHeader; rows: number }
  | { kind: 'trailer'; trailer: BackupTrailer };

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BackupError(`the ${what} is not valid JSON: the file is damaged`);
  }
}

function parseTableLine(line: string): TableHeader {
  const brace = line.indexOf('{');
  const meta = brace < 0 ? null : (parseJson(line.slice(brace), 'table header') as Partial<TableHeader>);
  if (!meta || typeof meta.schema !== 'string' || typeof meta.name !== 'string' || !Array.isArray(meta.columns) || !meta.columns.every((c) => typeof c === 'string')) {
    throw new BackupError(`bad table header ${JSON.stringify(line.slice(0, 200))}: the file is damaged`);
  }
  return { schema: meta.schema, name: meta.name, columns: meta.columns };
}

function checkHeader(value: unknown): BackupHeader {
  const h = value as Partial<BackupHeader> | null;
  if (!h || typeof h !== 'object' || h.format !== FORMAT) throw new BackupError('this is not a Gusu backup (no gusu-backup header)');
  if (h.version !== VERSION) throw new BackupError(`this backup has format version ${String(h.version)}; this Gusu reads version ${VERSION} (restore it with the Gusu release that made it, or a newer one)`);
  if (!Array.isArray(h.migrations) || !Array.isArray(h.sequences) || typeof h.created !== 'string') throw new BackupError('the backup header is incomplete: the file is damaged');
  return h as BackupHeader;
}

/**
 * Parses a backup's uncompressed bytes, chunked anyhow, into events; verifies the hash and counts
 * when the trailer arrives and throws BackupError on anything amiss (a consumer must not commit
 * before the iteration has finished).
 */
export async function* parseBackup(input: AsyncIterable<Buffer>): AsyncGenerator<BackupEvent> {
  const hash = createHash('sha256');
  let bytes = 0;
  const hashed = (b: Buffer) => {
    hash.update(b);
    bytes += b.length;
  };
  let mode: 'header' | 'between' | 'data' | 'done' = 'header';
  let carry: Buffer = Buffer.alloc(0);
  let table: TableHeader | null = null;
  let rows = 0;
  let atLineStart = true; // in data mode: is the next byte the first of a line?
  const counts: Record<string, number> = {};
  let tables = 0;
  let totalRows = 0;

  for await (const piece of input) {
    const buf: Buffer = carry.length ? Buffer.concat([carry, piece]) : piece;
    carry = Buffer.alloc(0);
    let pos = 0;
    while (pos < buf.length) {
      if (mode === 'done') throw new BackupError('there is data after the trailer: the file is damaged');
      if (mode === 'data') {
        const start = pos;
        let ended = false;
        while (pos < buf.length) {
          if (atLineStart) {
            const n = Math.min(3, buf.length - pos);
            if (buf.compare(TERMINATOR, 0, n, pos, pos + n) === 0) {
              if (n < 3) break; // maybe the terminator, cut by the chunk boundary: decide with the next chunk
              ended = true;
              break;
            }
          }
          const nl = buf.indexOf(10, pos);
          if (nl === -1) {
            atLineStart = false;
            pos = buf.length;
            break;
          }
          rows++;
          pos = nl + 1;
          atLineStart = true;
        }
        if (pos > start) {
          const chunk = buf.subarray(start, pos);
          hashed(chunk);
          yield { kind: 'data', chunk };
        }
        if (ended) {
          hashed(TERMINATOR);
          pos += TERMINATOR.length;
          const done = table!;
          counts[key(done)] = rows;
          tables++;
          totalRows += rows;
          mode = 'between';
          table = null;
          yield { kind: 'end-table', table: done, rows };
        } else if (pos < buf.length) {
          carry = buf.subarray(pos);
          pos = buf.length;
        }
        continue;
      }
      // header, table and trailer lines
      const nl = buf.indexOf(10, pos);
      if (nl === -1) {
        carry = buf.subarray(pos);
        if (carry.length > MAX_LINE) throw new BackupError(mode === 'header' ? 'this is not a Gusu backup (no gusu-backup header)' : 'an overlong line between tables: the file is damaged');
        break;
      }
      const lineBuf = buf.subarray(pos, nl + 1);
      const line = buf.toString('utf8', pos, nl);
      pos = nl + 1;
      if (mode === 'header') {
        const header = checkHeader(line.startsWith('{') ? parseJson(line, 'backup header') : null);
        hashed(lineBuf);
        mode = 'between';
        yield { kind: 'header', header };
      } else if (line === '') {
        hashed(lineBuf);
      } else if (line.startsWith(TABLE_PREFIX)) {
        table = parseTableLine(line);
        hashed(lineBuf);
        rows = 0;
        atLineStart = true;
        mode = 'data';
        yield { kind: 'table', table };
      } else if (line.startsWith(END_PREFIX)) {
        const t = parseJson(line.slice(END_PREFIX.length), 'trailer') as BackupTrailer | null;
        if (!t || typeof t !== 'object') throw new BackupError('the trailer is not an object: the file is damaged');
        const sha = hash.digest('hex');
        if (t.sha256 !== sha || t.bytes !== bytes) throw new BackupError(`the checksum does not match (the file was altered or damaged): expected ${t.sha256}, computed ${sha}`);
        if (t.tables !== tables || t.rows !== totalRows || JSON.stringify(t.counts) !== JSON.stringify(counts)) {
          throw new BackupError('the row counts do not match the trailer: the file is damaged');
        }
        mode = 'done';
        yield { kind: 'trailer', trailer: t };
      } else {
        throw new BackupError(`unexpected line ${JSON.stringify(line.slice(0, 80))}: the file is damaged`);
      }
    }
  }
  if (mode === 'header') throw new BackupError('this is not a Gusu backup (empty, or no header line)');
  if (mode !== 'done') throw new BackupError(`the backup is truncated${table ? ` (it ends inside table ${key(table)})` : ' (no trailer)'}: it was cut short or is still being written`);
}

/** The decompressed bytes of a backup file; damage to the gzip stream becomes a BackupError. */
async function* readFile(file: string): AsyncGenerator<Buffer> {
  const source = fs.createReadStream(file);
  const gunzip = zlib.createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new BackupError(`${file}: no such file`);
    if (e.code?.startsWith('Z_') || /unexpected end of file|incorrect header check|invalid/i.test(e.message)) {
      throw new BackupError(`${file} is damaged or truncated (gzip: ${e.message})`);
    }
    throw err;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
}

export function readBackup(file: string): AsyncGenerator<BackupEvent> {
  return parseBackup(readFile(file));
}

/** Reads the whole file and checks its structure, counts and hash; touches no database. */
export async function verifyBackup(file: string): Promise<BackupInfo> {
  let header: BackupHeader | null = null;
  let trailer: BackupTrailer | null = null;
  const tables: TableHeader[] = [];
  for await (const ev of readBackup(file)) {
    if (ev.kind === 'header') header = ev.header;
    else if (ev.kind === 'table') tables.push(ev.table);
    else if (ev.kind === 'trailer') trailer = ev.trailer;
  }
  return { header: header!, tables, trailer: trailer!, fileBytes: fs.statSync(file).size };
}

/** Refuses a backup made by code this code does not contain (unknown or edited migrations). */
export function checkMigrations(header: BackupHeader, migrations: Migration[]): void {
  const code = new Map(migrations.map((m) => [`${m.module}/${m.id}`, m.checksum]));
  const unknown = header.migrations.filter((m) => !code.has(`${m.module}/${m.id}`)).map((m) => `${m.module}/${m.id}`);
  if (unknown.length) {
    throw new BackupError(`the backup was made by a newer or different Gusu: its migrations ${unknown.join(', ')} are unknown to this code; restore it with the release that made it`);
  }
  const changed = header.migrations.filter((m) => code.get(`${m.module}/${m.id}`) !== m.checksum).map((m) => `${m.module}/${m.id}`);
  if (changed.length) throw new BackupError(`the backup's migrations ${changed.join(', ')} differ from this code's (edited after they were applied): its schema cannot be recreated`);
}

async function copyIn(client: pg.PoolClient, t: TableHeader, events: AsyncGenerator<BackupEvent>): Promise<number> {
  const cols = t.columns.length ? ` (${t.columns.map(ident).join(', ')})` : '';
  const sink = client.query(copyFrom(`copy ${qualified(t)}${cols} from stdin`));
  // Once the server has refused the data the stream must not be written again (pg-copy-streams
  // would throw from a socket callback), so chunks go one at a time and the failure is checked.
  let failure: Error | null = null;
  const failed = new Promise<never>((_, reject) =>
    sink.once('error', (err) => {
      failure = err;
      reject(err);
    }),
  );
  failed.catch(() => undefined);
  const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => sink.write(chunk, (err) => (err ? reject(err) : resolve())));
  try {
    for (;;) {
      const { value: ev, done } = await events.next();
      if (failure) throw failure;
      if (done) throw new BackupError('the backup ended inside a table');
      if (ev.kind === 'data') {
        await Promise.race([write(ev.chunk), failed]);
      } else if (ev.kind === 'end-table') {
        sink.end();
        await Promise.race([finished(sink), failed]);
        return ev.rows;
      }
    }
  } catch (err) {
    // the file failed us mid-table: abort the COPY (CopyFail) so the connection can roll back
    if (!failure) {
      sink.destroy(err as Error);
      await finished(sink).catch(() => undefined);
    }
    throw err;
  }
}

/**
 * Replaces the whole database with the backup's contents, in one transaction: verifies the file
 * first, drops Gusu's schemas, recreates them with the backup's migrations, copies the rows back in
 * foreign-key order, restores the sequences, then applies the code's newer migrations. Any failure
 * rolls everything back.
 */
export async function restoreDatabase(db: Db, file: string, migrations: Migration[]): Promise<RestoreSummary> {
  const t0 = Date.now();
  const info = await verifyBackup(file);
  checkMigrations(info.header, migrations);
  const only = new Set(info.header.migrations.map((m) => `${m.module}/${m.id}`));

  return await db.tx(async (client) => {
    for (const s of SESSION_SETTINGS) await client.query(s);
    // a running platform holding locks makes this fail rather than hang
    await client.query(`set local lock_timeout = '30s'`);
    for (const schema of await gusuSchemas(client)) await client.query(`drop schema ${ident(schema)} cascade`);
    await client.query('drop table if exists public.gusu_migration');
    await migrateWith(client, migrations, { only });

    const present = await gusuTables(client);
    const presentKeys = new Set(present.map(key));
    const missing = info.tables.filter((t) => !presentKeys.has(key(t))).map(key);
    if (missing.length) throw new BackupError(`the backup's tables ${missing.join(', ')} are not created by its migrations: the file does not match this code`);
    // rows a migration seeded are replaced by the backup's
    if (present.length) await client.query(`truncate ${present.map(qualified).join(', ')}`);

    // Rows go in referenced tables first. The file is written in that order, so one pass is the
    // rule; if this schema's order differs, further passes load what has become loadable.
    // (A cycle of foreign keys can only be loaded if its constraints are deferrable: deferred here,
    // checked before the newer migrations run, since ALTER TABLE refuses pending trigger events.)
    await client.query('set constraints all deferred');
    const deps = await foreignKeys(client, info.tables);
    const inBackup = new Set(info.tables.map(key));
    const loaded = new Set<string>();
    let rows = 0;
    let force = false;
    while (loaded.size < info.tables.length) {
      const before = loaded.size;
      const events = readBackup(file);
      try {
        for (;;) {
          const { value: ev, done } = await events.next();
          if (done) break;
          if (ev.kind !== 'table') continue;
          const k = key(ev.table);
          const ready = !loaded.has(k) && (force || [...(deps.get(k) ?? [])].every((p) => loaded.has(p) || !inBackup.has(p)));
          if (!ready) continue; // its data events are skipped by this loop
          rows += await copyIn(client, ev.table, events);
          loaded.add(k);
        }
      } finally {
        await events.return(undefined);
      }
      // a cycle: load the rest in file order
      if (loaded.size === before) force = true;
    }
    await client.query('set constraints all immediate');

    for (const s of info.header.sequences) {
      const exists = await client.query(`select to_regclass($1) as r`, [`${ident(s.schema)}.${ident(s.name)}`]);
      if (!exists.rows[0]?.r) throw new BackupError(`the backup's sequence ${s.schema}.${s.name} is not created by its migrations: the file does not match this code`);
      await client.query(`select setval($1::regclass, $2::bigint, $3)`, [`${ident(s.schema)}.${ident(s.name)}`, s.last_value, s.is_called]);
    }

    const applied = await migrateWith(client, migrations);
    return {
      tables: info.tables.length,
      rows,
      bytes: info.trailer.bytes,
      fileBytes: info.fileBytes,
      sequences: info.header.sequences.length,
      applied,
      header: info.header,
      ms: Date.now() - t0,
    };
  });
}

export interface MaintenanceDb {
  db: Db;
  /** for messages: which database this is */
  where: string;
  close(): Promise<void>;
}

/**
 * The database a backup or restore works on: DATABASE_URL; else the embedded server of a running
 * platform (backup only: restore refuses while one runs); else the embedded server, started here.
 */
export async function openMaintenanceDb(opts: { databaseUrl: string | null; dataDir: string; purpose: 'backup' | 'restore' }): Promise<MaintenanceDb> {
  const dataDir = path.resolve(opts.dataDir);
  if (!opts.databaseUrl && opts.purpose === 'backup' && !findRunningEmbedded(dataDir) && !fs.existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))) {
    throw new BackupError(`there is no embedded database in ${dataDir}: set GUSU_DATA_DIR to the platform's data directory, or DATABASE_URL`);
  }
  const database = await openDatabase({ databaseUrl: opts.databaseUrl, dataDir, poolSize: 2, attach: true, applicationName: `gusu-${opts.purpose}` });
  if (database.attachedTo && opts.purpose === 'restore') {
    await database.close();
    throw new BackupError(`the platform (pid ${database.attachedTo}) is running on the embedded database in ${dataDir}: stop it first`);
  }
  const where = opts.databaseUrl ? 'the DATABASE_URL database' : database.attachedTo ? `the running platform's embedded database in ${dataDir}` : `the embedded database in ${dataDir}`;
  return { db: database.db, where, close: () => database.close() };
}

/** Sessions of a running platform on this database (its pool's application_name is 'gusu'). */
export async function platformSessions(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and application_name = 'gusu'`,
  );
  return rows[0]!.n;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
