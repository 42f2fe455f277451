// The message log in PostgreSQL: appends under the head lock (also concurrently), checkpoints,
// append-only triggers, and verification that finds edits and a cut tail.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { createDb, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { generateKeyPair } from '../src/base/identity/crypto/index.ts';
import { appendLog, setCheckpointEvery, sha256, verifyLogDb, type LogItem } from '../src/base/exchange/index.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIGRATIONS = readMigrations([platformMigrations, { module: 'exchange', dir: path.join(repoRoot, 'src/base/exchange/migrations') }]);
const NODE = generateKeyPair('sm2-sm3');
const SIGNER = { privateKey: NODE.privateKey, alg: 'sm2-sm3' as const };

let database: TestDatabase;
let db: Db;

before(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 8 });
  await migrate(db, MIGRATIONS);
});
after(async () => {
  await db?.close();
  await database?.drop();
  await stopTestServer();
});

function items(n: number, tag: string): LogItem[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: i % 2 ? 'receipt' : 'event',
    ref: `${tag}-${i}`,
    member: 'gaj.hukou',
    digest: sha256(`${tag} ${i}`).toString('hex'),
    at: new Date(Date.UTC(2026, 2, 1, 8, 0, i)).toISOString(),
  }));
}

test('appends (also concurrently), checkpoints, verifies; append-only; edits and a cut tail are found', async () => {
  await setCheckpointEvery(db, 4);
  const first = await appendLog(db, items(3, 'a'), SIGNER);
  assert.deepEqual(first.entries.map((e) => e.seq), [1, 2, 3]);
  await Promise.all(['b', 'c', 'd', 'e', 'f'].map((t) => appendLog(db, items(3, t), SIGNER)));
  await db.tx((c) => appendLog(c, items(1, 'g'), SIGNER));
  await assert.rejects(setCheckpointEvery(db, 8), /fixed/);

  const ok = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(ok.ok && [ok.entries, ok.checkpoints], [19, 4]);
  const seqs = (await db.query<{ seq: number }>('select seq::int as seq from exchange.log_entry order by seq')).rows.map((r) => r.seq);
  assert.deepEqual(seqs, Array.from({ length: 19 }, (_, i) => i + 1));

  await assert.rejects(db.query(`update exchange.log_entry set ref = 'x' where seq = 2`), /append-only/);
  await assert.rejects(db.query('delete from exchange.log_checkpoint where n = 1'), /append-only/);

  // someone past the triggers edits an entry, then cuts the tail
  await db.query('alter table exchange.log_entry disable trigger log_entry_append_only');
  await db.query(`update exchange.log_entry set member = 'mzj.welfare' where seq = 6`);
  const edited = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!edited.ok && [edited.reason, edited.index], ['hash', 5]);
  await db.query(`update exchange.log_entry set member = 'gaj.hukou' where seq = 6`);
  assert.equal((await verifyLogDb(db, NODE.publicKey)).ok, true);
  await db.query('delete from exchange.log_entry where seq = 19');
  const cut = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!cut.ok && cut.reason, 'head');
});
