// Test databases: a fresh database per test file, on the server named by TEST_DATABASE_URL or else
// on an embedded server started for the file. Dropped afterwards.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/index.ts';

export interface TestDatabase {
  url: string;
  /** the admin URL of the server (to create more databases) */
  serverUrl: string;
  kind: 'embedded' | 'external';
  drop(): Promise<void>;
}

let embedded: Promise<EmbeddedServer> | null = null;
let embeddedDir = '';

async function server(): Promise<{ url: string; kind: 'embedded' | 'external' }> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) return { url: external, kind: 'external' };
  if (!embedded) {
    embeddedDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-test-'));
    fs.chmodSync(embeddedDir, 0o755); // the server runs as the postgres user when we are root
    // a throwaway cluster: no need to wait for the disk at every commit
    embedded = startEmbedded(embeddedDir, undefined, { settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } });
    process.once('exit', () => fs.rmSync(embeddedDir, { recursive: true, force: true }));
  }
  return { url: (await embedded).url, kind: 'embedded' };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const { url, kind } = await server();
  const name = `gusu_t_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  // a throwaway database on a shared server too: commits need not wait for the disk
  await admin.query(`alter database ${name} set synchronous_commit = off`);
  await admin.end();
  return {
    url: withDatabase(url, name),
    serverUrl: url,
    kind,
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Stops the embedded server of this test file, if one was started. */
export async function stopTestServer(): Promise<void> {
  if (embedded) {
    const e = await embedded;
    embedded = null;
    await e.stop();
    fs.rmSync(embeddedDir, { recursive: true, force: true });
  }
}
