// `gusu exchange` operator side against a real database: nodes, members, dead letters, replay, and
// verification of the message log with this node's certificate.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { exchangeCommand } from '../src/base/exchange/cli.ts';
import { appendLog, setCheckpointEvery, sha256, type LogItem } from '../src/base/exchange/index.ts';
import { buildCertificate, buildName, toPem } from '../src/base/identity/ca/x509.ts';
import { generateKeyPair, keySigner, spkiDer } from '../src/base/identity/crypto/index.ts';
import { loadConfig, type Config } from '../src/config/index.ts';
import { createDb, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIGRATIONS = readMigrations([
  platformMigrations,
  { module: 'audit', dir: path.join(repoRoot, 'src/base/audit/migrations') },
  { module: 'exchange', dir: path.join(repoRoot, 'src/base/exchange/migrations') },
]);
const NODE = generateKeyPair('sm2-sm3');
const SUB = '0b6f3c2e-1c1a-4f7e-9a52-3f1e7d0c9a11';
const MEMBER = 'SZ/GOV/SZ-GAJ/hukou';

let database: TestDatabase;
let db: Db;
let config: Config;

async function run(args: string[]) {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  // the command writes strings; the test runner's own reports (buffers) go through untouched
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? ((out += chunk), true) : write(chunk, ...rest))) as typeof process.stdout.write;
  try {
    return { code: await exchangeCommand.run(args, config), out };
  } finally {
    process.stdout.write = write;
  }
}

before(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 4 });
  config = loadConfig({ DATABASE_URL: database.url, LOG_LEVEL: 'silent' });
  await migrate(db, MIGRATIONS);
});
after(async () => {
  await db?.close();
  await database?.drop();
  await stopTestServer();
});

test('verify before the exchange is set up asks for migrate (own database, not this one)', async () => {
  const bare = await createTestDatabase();
  try {
    const c = loadConfig({ DATABASE_URL: bare.url, LOG_LEVEL: 'silent' });
    await assert.rejects(exchangeCommand.run(['verify'], c), /the exchange node is not set up in this database: run `gusu migrate` first/);
  } finally {
    await bare.drop();
  }
});

test('operator commands over a node database', async () => {
  await assert.rejects(run(['verify']), /no exchange node of its own yet/);
  await db.query(`insert into exchange.node (id, kind, name, is_self) values ('hub', 'hub', '苏州市数据交换中心', true), ('node-320505', 'node', '高新区节点', false)`);
  await db.query(`update exchange.node set upstream = 'hub', division_code = '320505' where id = 'node-320505'`);
  await assert.rejects(run(['verify']), /node hub has no certificate yet/);
  const nodes = await run(['nodes']);
  assert.match(nodes.out, /^\* hub  hub  unknown  苏州市数据交换中心  —  upstream —  —  no certificate  last contact —\n {2}node-320505  node  unknown  高新区节点  320505  upstream hub/);

  // this node's certificate, and a log signed with its key
  const der = await buildCertificate(keySigner(NODE.privateKey), {
    serial: Buffer.from('01', 'hex'),
    issuer: buildName([['CN', 'hub']]),
    subject: buildName([['CN', 'hub']]),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    spki: spkiDer(NODE.publicKey),
    extensions: [],
  });
  await db.query(`update exchange.node set cert_pem = $1, cert_serial = '1', alg = 'sm2-sm3' where id = 'hub'`, [toPem('CERTIFICATE', der)]);
  assert.deepEqual(await run(['verify']), { code: 0, out: 'ok: 0 entries (0 messages and receipts), 0 checkpoints\n' });
  await setCheckpointEvery(db, 3);
  const items: LogItem[] = Array.from({ length: 7 }, (_, i) => ({ kind: 'event', ref: `e-${i}`, member: MEMBER, digest: sha256(String(i)).toString('hex'), at: new Date(Date.UTC(2026, 2, 1, 8, 0, i)).toISOString() }));
  // one at a time: an entry each (an append of several is one entry)
  for (const item of items) await appendLog(db, [item], { privateKey: NODE.privateKey, alg: 'sm2-sm3' });
  assert.deepEqual(await run(['verify']), { code: 0, out: 'ok: 7 entries (7 messages and receipts), 2 checkpoints\n' });

  // members
  await db.query(
    `insert into exchange.member (id, instance, member_class, member_code, subsystem, name, department, node_id, cert_serial, alg)
     values ($1, 'SZ', 'GOV', 'SZ-GAJ', 'hukou', '户籍系统', 'SZ-GAJ', 'hub', 'ab12', 'sm2-sm3'),
            ('SZ/GOV/SZ-SF/tax', 'SZ', 'GOV', 'SZ-SF', 'tax', '税务系统' || chr(27) || '[31m', 'SZ-SF', 'hub', null, null)`,
    [MEMBER],
  );
  const all = await run(['members']);
  assert.equal(all.out, `${MEMBER}  active  node hub  cert ab12 (sm2-sm3)  户籍系统\nSZ/GOV/SZ-SF/tax  active  node hub  no certificate  税务系统\\u001b[31m\n2 members\n`);
  assert.equal((await run(['members', '--q', '户籍'])).out, `${MEMBER}  active  node hub  cert ab12 (sm2-sm3)  户籍系统\n1 member\n`);
  assert.equal((await run(['members', '--q', '%'])).out, '0 members\n', 'the search text is literal');
  assert.equal((await run(['members', '--limit', '1'])).out.split('\n').at(-2), '1 of 2 members (--limit N for more)');

  // dead letters and their replay
  await db.query(`insert into exchange.resource (id, name, provider, schema) values ('cn.gov.suzhou.population.person', '人口基础信息', $1, '{}')`, [MEMBER]);
  await db.query(`insert into exchange.subscription (id, resource, target_member, delivery) values ($1, 'cn.gov.suzhou.population.person', 'SZ/GOV/SZ-SF/tax', 'pull')`, [SUB]);
  for (let i = 1; i <= 3; i++) {
    const { rows } = await db.query<{ seq: string }>(
      `insert into exchange.message (source, id, member, resource, key, digest, event, origin) values ($1, $2, $3, 'cn.gov.suzhou.population.person', 'k', $4, '{}', 'hub') returning seq::text`,
      [`urn:gusu:member:${MEMBER}`, `evt-${i}`, MEMBER, sha256(String(i)).toString('hex')],
    );
    await db.query(`insert into exchange.delivery (subscription, seq, key, status, attempts, last_error) values ($1, $2, 'k', $3, 8, $4)`, [SUB, rows[0]!.seq, i === 3 ? 'done' : 'dead', `HTTP 500 from push url\u202e`]);
  }
  const dead = await run(['dead-letters']);
  const lines = dead.out.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, new RegExp(`^${SUB}  seq 1  cn\\.gov\\.suzhou\\.population\\.person  urn:gusu:member:SZ/GOV/SZ-GAJ/hukou evt-1  key k  8 attempts  last error: HTTP 500 from push url\\\\u202e$`));
  assert.equal((await run(['dead-letters', '--subscription', '00000000-0000-4000-8000-000000000000'])).out, 'no dead letters\n');
  assert.equal((await run(['dead-letters', '--limit', '1'])).out.split('\n').length, 3, 'one line and a note');

  await assert.rejects(run(['replay', '--subscription', '00000000-0000-4000-8000-000000000000', '--all']), /no subscription 00000000/);
  assert.equal((await run(['replay', '--subscription', SUB, '--seq', '1', '--seq', '3'])).out, `replayed 1 dead letter of subscription ${SUB} (1 of the seqs given were not dead)\n`);
  const after1 = (await db.query<{ seq: string; status: string; attempts: number; last_error: string | null }>(`select seq::text, status, attempts, last_error from exchange.delivery order by seq`)).rows;
  assert.deepEqual(after1.map((r) => [r.seq, r.status, r.attempts, r.last_error === null]), [['1', 'ready', 0, true], ['2', 'dead', 8, false], ['3', 'done', 8, false]]);
  assert.equal((await run(['replay', '--subscription', SUB, '--all'])).out, `replayed 1 dead letter of subscription ${SUB}\n`);
  assert.equal((await run(['dead-letters'])).out, 'no dead letters\n');
  const audited = (await db.query<{ actor_kind: string; actor_id: string; details: string }>(
    `select actor_kind, actor_id, details from audit.entry where action = 'exchange.dead-letter.replay' and resource_id = $1 order by seq`,
    [SUB],
  )).rows;
  const detail = (a: { details: string }) => JSON.parse(a.details) as { replayed: number; seqs: unknown };
  assert.deepEqual(audited.map((a) => [a.actor_kind, a.actor_id, detail(a).replayed, detail(a).seqs]), [['system', 'cli', 1, [1, 3]], ['system', 'cli', 1, 'all']]);

  // a tampered log is named, exit 1
  await db.query('alter table exchange.log_entry disable trigger log_entry_append_only');
  await db.query(`update exchange.log_entry set member = 'SZ/GOV/SZ-SF/tax' where seq = 5`);
  assert.deepEqual(await run(['verify']), { code: 1, out: 'message log BROKEN at seq 5: hash\n' });
});
