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
  const first = await appendLog(db, items(3, 'a').map((i) => ({ ...i, kind: 'event' as const })), SIGNER);
  // an append of several items (of one kind) is one entry: its digest the Merkle root of the items
  assert.deepEqual(first.entries.map((e) => [e.seq, e.items?.length]), [[1, 3]]);
  const ab = await appendLog(db, items(3, 'b').map((i) => ({ ...i, kind: 'event' as const })), SIGNER);
  assert.deepEqual(ab.entries.map((e) => [e.seq, e.items?.length]), [[2, 3]]);
  await Promise.all(['c', 'd', 'e', 'f'].map((t) => appendLog(db, items(2, t).map((i) => ({ ...i, kind: 'receipt' as const })), SIGNER)));
  await db.tx((c) => appendLog(c, items(1, 'g'), SIGNER));
  // event, receipt, event: three runs of one kind, three entries
  assert.equal((await appendLog(db, items(3, 'h'), SIGNER)).entries.length, 3);
  await assert.rejects(setCheckpointEvery(db, 8), /fixed/);

  const ok = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(ok.ok && [ok.entries, ok.checkpoints, ok.items], [10, 2, 3 + 3 + 4 * 2 + 1 + 3]);
  const seqs = (await db.query<{ seq: number; n: number | null }>('select seq::int as seq, jsonb_array_length(items) as n from exchange.log_entry order by seq')).rows;
  assert.deepEqual(seqs.map((r) => r.seq), Array.from({ length: seqs.length }, (_, i) => i + 1));
  assert.equal(seqs.filter((r) => r.n === null).length, 4, 'the appends of one item (and the runs of one) are entries of one item');

  await assert.rejects(db.query(`update exchange.log_entry set ref = 'x' where seq = 2`), /append-only/);
  await assert.rejects(db.query('delete from exchange.log_checkpoint where n = 1'), /append-only/);

  // someone past the triggers edits an entry, an item of a batch entry, removes an item, then cuts the tail
  const last = seqs.length;
  await db.query('alter table exchange.log_entry disable trigger log_entry_append_only');
  await db.query(`update exchange.log_entry set member = 'mzj.welfare' where seq = $1`, [last]);
  const edited = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!edited.ok && [edited.reason, edited.index], ['hash', last - 1]);
  await db.query(`update exchange.log_entry set member = 'gaj.hukou' where seq = $1`, [last]);
  assert.equal((await verifyLogDb(db, NODE.publicKey)).ok, true);
  const item = await db.query<{ items: unknown }>(`select items from exchange.log_entry where seq = 4`);
  await db.query(`update exchange.log_entry set items = jsonb_set(items, '{1,digest}', to_jsonb($1::text)) where seq = 4`, [sha256('forged').toString('hex')]);
  const forged = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!forged.ok && [forged.reason, forged.seq], ['items', 4]);
  await db.query(`update exchange.log_entry set items = items - 1 where seq = 4`);
  const dropped = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!dropped.ok && [dropped.reason, dropped.seq], ['malformed', 4], 'a batch entry of one item');
  await db.query(`update exchange.log_entry set items = $1 where seq = 4`, [JSON.stringify(item.rows[0]!.items)]);
  assert.equal((await verifyLogDb(db, NODE.publicKey)).ok, true);
  await db.query('delete from exchange.log_entry where seq = $1', [last]);
  const cut = await verifyLogDb(db, NODE.publicKey);
  assert.deepEqual(!cut.ok && cut.reason, 'head');
});
