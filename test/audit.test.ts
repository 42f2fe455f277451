import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../src/config/index.ts';
import { backupDatabase, restoreDatabase } from '../src/db/backup.ts';
import { createDb, getSetting, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { startPlatform } from '../src/main.ts';
import { UsageError, type ModuleContext } from '../src/module.ts';
import { MODULES } from '../src/modules.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import {
  accessesOfSubject,
  appendAudit,
  appendAuditMany,
  AuditInputError,
  auditModule,
  searchAudit,
  verifyAudit,
  type AuditEvent,
  type LastAuditVerify,
} from '../src/base/audit/index.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const MIGRATIONS = readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }]);
const ZHANG = '320505199001011234';
const LI = '32050819850505123X';

interface Log {
  db: Db;
  database: TestDatabase;
}
const logs: Log[] = [];

/** a fresh, migrated database of its own (tampering tests must not disturb each other) */
async function freshLog(entries = 0): Promise<Log> {
  const database = await createTestDatabase();
  const db = createDb(database.url, { max: 24 });
  await migrate(db, MIGRATIONS);
  const log = { db, database };
  logs.push(log);
  for (let i = 1; i <= entries; i++) await appendAudit(db, read(i % 2 ? ZHANG : LI, `person-${i}`));
  return log;
}

after(async () => {
  for (const l of logs) {
    await l.db.close();
    await l.database.drop();
  }
  await stopTestServer();
});

function read(subject: string, id: string, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    actor: { kind: 'staff', id: 'staff-7', department: 'SZ-GA' },
    action: 'population.person.read',
    resource: { type: 'person', id },
    subject,
    purpose: '户籍业务办理',
    outcome: 'ok',
    requestId: 'req-1',
    ip: '10.1.2.3',
    ...extra,
  };
}

/** runs SQL with the append-only triggers out of the way, as a superuser could */
async function tamper(db: Db, ...statements: string[]): Promise<void> {
  await db.tx(async (c) => {
    await c.query(`set local session_replication_role = replica`);
    for (const s of statements) await c.query(s);
  });
}

async function head(db: Db): Promise<{ seq: number; hash: string }> {
  return (await db.query<{ seq: number; hash: string }>('select seq, hash from audit.head')).rows[0]!;
}

test('appended entries link into a chain that verifies', async () => {
  const { db } = await freshLog();
  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 0, head: '0'.repeat(64) });
  const a = await appendAudit(db, { actor: { kind: 'citizen', id: 'acct-1' }, action: 'auth.login', resource: { type: 'session', id: 's-1' }, outcome: 'ok', ip: '203.0.113.9' });
  const b = await appendAudit(db, read(ZHANG, 'p-1', { details: { fields: ['name', 'address'], count: 2 } }));
  const c = await appendAudit(db, { actor: { kind: 'staff', id: 'admin-1', department: 'SZ-DSJ' }, action: 'role.grant', resource: { type: 'account', id: 'staff-7' }, outcome: 'ok', details: { role: 'population-reader', scope: 'SZ-GA' } });
  assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  const links = (await db.query<{ prev_hash: string }>('select prev_hash from audit.entry order by seq')).rows.map((r) => r.prev_hash);
  assert.deepEqual(links, ['0'.repeat(64), a.hash, b.hash]);
  const progress: number[] = [];
  assert.deepEqual(await verifyAudit(db, { onProgress: (n) => progress.push(n) }), { ok: true, entries: 3, head: c.hash });
  assert.deepEqual(progress, [3]);
  assert.deepEqual(await head(db), { seq: 3, hash: c.hash });
});

test('an entry commits or rolls back with the transaction it records', async () => {
  const { db } = await freshLog();
  await db.tx((client) => appendAudit(client, read(ZHANG, 'kept')));
  await assert.rejects(
    db.tx(async (client) => {
      await appendAudit(client, read(ZHANG, 'rolled-back'));
      throw new Error('the change failed');
    }),
    /the change failed/,
  );
  const next = await appendAudit(db, read(ZHANG, 'after'));
  assert.equal(next.seq, 2, 'the rolled-back append left no gap');
  assert.deepEqual((await db.query('select resource_id from audit.entry order by seq')).rows.map((r) => r.resource_id), ['kept', 'after']);
  assert.equal((await verifyAudit(db)).ok, true);
});

test('concurrent transactions, some rolled back, append one gapless valid chain', async () => {
  const { db } = await freshLog();
  const TX = 20;
  const PER = 25;
  const results = await Promise.allSettled(
    Array.from({ length: TX }, (_, t) =>
      db.tx(async (client: pg.PoolClient) => {
        for (let i = 0; i < PER; i++) {
          await appendAudit(client, read(t % 2 ? ZHANG : LI, `t${t}-${i}`));
          if (i % 5 === 0) await new Promise((r) => setImmediate(r));
        }
        if (t % 4 === 3) throw new Error('rolled back on purpose');
      }),
    ),
  );
  // and appends on the pool (each its own transaction) at the same time
  const solo = await Promise.all(Array.from({ length: 30 }, (_, i) => appendAudit(db, read(ZHANG, `solo-${i}`))));
  for (const [i, r] of solo.entries()) {
    const row = (await db.query('select resource_id, hash from audit.entry where seq = $1', [r.seq])).rows[0];
    assert.deepEqual(row, { resource_id: `solo-${i}`, hash: r.hash }, 'each caller gets its own entry back');
  }
  const committed = results.filter((r) => r.status === 'fulfilled').length;
  assert.equal(committed, TX - TX / 4);
  const expected = committed * PER + solo.length;
  const verified = await verifyAudit(db);
  assert.deepEqual(verified, { ok: true, entries: expected, head: (await head(db)).hash });
  const { rows } = await db.query('select count(*)::int as n, min(seq)::int as lo, max(seq)::int as hi from audit.entry');
  assert.deepEqual(rows[0], { n: expected, lo: 1, hi: expected });
  const kept = await db.query(`select 1 from audit.entry where resource_id like 't%' and split_part(substr(resource_id, 2), '-', 1)::int % 4 = 3`);
  assert.equal(kept.rowCount, 0, 'nothing of the rolled-back transactions remains');
  // one transaction's entries are consecutive: it held the head from its first append to its commit
  const byTx = await db.query(`select split_part(resource_id, '-', 1) as t, max(seq) - min(seq) + 1 as span, count(*) as n from audit.entry where resource_id like 't%' group by 1`);
  for (const r of byTx.rows) assert.equal(r.span, r.n, `transaction ${r.t} is one run of seq`);
});

test('appends on the pool arriving together share one statement; one the database refuses does not sink the rest', async () => {
  const { db } = await freshLog();
  const together = await Promise.all(Array.from({ length: 40 }, (_, i) => appendAudit(db, read(ZHANG, `r-${i}`))));
  assert.deepEqual(together.map((r) => r.seq), Array.from({ length: 40 }, (_, i) => i + 1), 'in the order called');
  const txs = (await db.query<{ n: number }>('select count(distinct xmin::text)::int as n from audit.entry')).rows[0]!.n;
  assert.ok(txs <= 3, `40 appends in ${txs} transactions`);

  await db.query(`alter table audit.entry add constraint test_poison check (resource_id <> 'poison')`);
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => appendAudit(db, read(ZHANG, i === 7 ? 'poison' : `s-${i}`))));
  assert.deepEqual(results.map((r) => r.status), [...Array(7).fill('fulfilled'), 'rejected', 'fulfilled', 'fulfilled']);
  assert.match(String((results[7] as PromiseRejectedResult).reason), /test_poison/);
  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 49, head: (await head(db)).hash });
});

test('editing one audit row is detected, naming its seq', async () => {
  const { db } = await freshLog(10);
  assert.equal((await verifyAudit(db)).ok, true);
  await db.query('alter table audit.entry disable trigger entry_append_only');
  await db.query(`update audit.entry set purpose = '治安调查' where seq = 5`);
  await db.query('alter table audit.entry enable trigger entry_append_only');
  const r = await verifyAudit(db);
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 5);
  assert.match(r.firstBroken.reason, /hash mismatch: the entry was edited/);
  assert.equal(r.entries, 4);
});

test('an edit of a microsecond, or of the subject, is an edit', async () => {
  const { db } = await freshLog(6);
  await tamper(db, `update audit.entry set at = at + interval '1 microsecond' where seq = 2`);
  const r1 = await verifyAudit(db);
  assert.ok(!r1.ok);
  assert.deepEqual(r1.firstBroken, { seq: 2, reason: 'hash mismatch: the entry was edited' });
  const other = await freshLog(6);
  await tamper(other.db, `update audit.entry set subject = '${LI}' where seq = 3`);
  const r = await verifyAudit(other.db);
  assert.ok(!r.ok && r.firstBroken.seq === 3);
});

test('an edited entry whose hash was recomputed breaks the link to the next one', async () => {
  const { db } = await freshLog(8);
  await tamper(db, `update audit.entry set purpose = '伪造' where seq = 4`, `update audit.entry e set hash = audit.entry_hash(e) where seq = 4`);
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 5);
  assert.match(r.firstBroken.reason, /prev_hash does not match the hash of entry 4/);
});

test('deleting a middle entry is detected', async () => {
  const { db } = await freshLog(10);
  await tamper(db, 'delete from audit.entry where seq = 6');
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.deepEqual(r.firstBroken, { seq: 6, reason: 'entry 6 is missing: the chain goes from entry 5 to entry 7 (deleted)' });
  assert.equal(r.entries, 5);
});

test('a deleted entry with the rest renumbered is detected at the renumbered one', async () => {
  const { db } = await freshLog(10);
  await tamper(db, 'delete from audit.entry where seq = 6', 'update audit.entry set seq = seq + 1000 where seq > 6', 'update audit.entry set seq = seq - 1001 where seq > 1000', 'update audit.head set seq = 9');
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 6);
  assert.match(r.firstBroken.reason, /prev_hash does not match/);
});

test('a forged entry inserted mid-chain (well hashed, the rest renumbered) is detected', async () => {
  const { db } = await freshLog(10);
  await tamper(
    db,
    'update audit.entry set seq = seq + 1000 where seq >= 4',
    'update audit.entry set seq = seq - 999 where seq > 1000',
    `insert into audit.entry select 4, now(), 'staff', 'staff-7', 'SZ-GA', 'population.person.read', 'person', 'forged', '${ZHANG}', '合法', 'ok', null, null, null, (select hash from audit.entry where seq = 3), '0'`,
    `update audit.entry e set hash = audit.entry_hash(e) where seq = 4`,
    `update audit.head set seq = 11, hash = (select hash from audit.entry where seq = 11)`,
  );
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 5, 'the entry after the forgery no longer links');
  assert.match(r.firstBroken.reason, /prev_hash does not match the hash of entry 4/);
});

test('a forged entry appended without moving the head is detected', async () => {
  const { db } = await freshLog(5);
  await db.query(
    `insert into audit.entry select 6, now(), 'staff', 'staff-7', 'SZ-GA', 'population.person.read', 'person', 'forged', null, null, 'ok', null, null, null, (select hash from audit.head), '0'`,
  );
  await tamper(db, `update audit.entry e set hash = audit.entry_hash(e) where seq = 6`);
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 6);
  assert.match(r.firstBroken.reason, /beyond the head/);
});

test('a truncated tail is detected by the head', async () => {
  const { db } = await freshLog(10);
  await tamper(db, 'delete from audit.entry where seq >= 8');
  const r = await verifyAudit(db);
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 8);
  assert.match(r.firstBroken.reason, /the head says the chain ends at entry 10 but the last entry is 7: the tail was truncated/);
  assert.equal(r.entries, 7);
});

test('a chain rewritten consistently, head and all, is caught only by an earlier anchor', async () => {
  const { db } = await freshLog(6);
  const before = await verifyAudit(db);
  assert.ok(before.ok);
  await tamper(db, 'delete from audit.entry where seq >= 4', `update audit.head set seq = 3, hash = (select hash from audit.entry where seq = 3)`);
  for (let i = 0; i < 4; i++) await appendAudit(db, read(LI, `rewritten-${i}`));
  assert.equal((await verifyAudit(db)).ok, true, 'internally consistent');
  const r = await verifyAudit(db, { anchor: { seq: 6, hash: before.head } });
  assert.ok(!r.ok);
  assert.equal(r.firstBroken.seq, 6);
  assert.match(r.firstBroken.reason, /not the one recorded for it earlier/);
  const cut = await verifyAudit(db, { anchor: { seq: 50, hash: before.head } });
  assert.ok(!cut.ok && /cut back/.test(cut.firstBroken.reason));
});

test('UPDATE, DELETE and TRUNCATE through the normal path are refused', async () => {
  const { db } = await freshLog(3);
  const refused = { code: '42501', message: /append-only/ };
  await assert.rejects(db.query(`update audit.entry set purpose = 'x' where seq = 2`), refused);
  await assert.rejects(db.query('delete from audit.entry where seq = 3'), refused);
  await assert.rejects(db.query('truncate audit.entry'), refused);
  await assert.rejects(db.query('truncate audit.head'), refused);
  await assert.rejects(db.query('delete from audit.head'), refused);
  await assert.rejects(db.query('update audit.head set seq = 1'), { code: '42501', message: /only advances/ });
  await assert.rejects(db.query(`update audit.head set seq = 4, hash = repeat('a', 64)`), { code: '42501', message: /only advances/ });
  assert.equal((await verifyAudit(db)).ok, true);
});

test('many entries appended at once are consecutive; a long chain verifies in pages; a break far in is found', async () => {
  const { db } = await freshLog(1);
  const many = await appendAuditMany(db, Array.from({ length: 4499 }, (_, i) => read(i % 3 ? ZHANG : LI, `p-${i}`)));
  assert.deepEqual(many.map((r) => r.seq), Array.from({ length: 4499 }, (_, i) => i + 2));
  assert.deepEqual(await head(db), { seq: 4500, hash: many.at(-1)!.hash });
  assert.equal((await db.query(`select count(*)::int as n from audit.entry where resource_id = 'p-' || (seq - 2)`)).rows[0]!.n, 4499, 'in the order given');
  await assert.rejects(appendAuditMany(db, [read(ZHANG, 'fine'), read(ZHANG, 'bad', { outcome: 'meh' as 'ok' })]), AuditInputError);
  assert.equal((await head(db)).seq, 4500, 'all checked before any is appended');
  const progress: number[] = [];
  const r = await verifyAudit(db, { onProgress: (n) => progress.push(n) });
  assert.deepEqual(progress, [2000, 4000, 4500]);
  assert.ok(r.ok && r.entries === 4500);
  await tamper(db, `update audit.entry set resource_id = 'p-x' where seq = 4321`);
  const b = await verifyAudit(db);
  assert.ok(!b.ok && b.firstBroken.seq === 4321 && b.entries === 4320);
});

test("a citizen's accesses: only theirs, newest first, in pages", async () => {
  const { db } = await freshLog();
  const x = LI.toLowerCase(); // x in an ID number is the same person as X
  for (let i = 0; i < 7; i++) {
    await appendAudit(db, read(ZHANG, `z-${i}`, { actor: { kind: 'staff', id: `s${i}`, department: i % 2 ? 'SZ-GA' : 'SZ-MZ' }, purpose: `目的${i}` }));
    await appendAudit(db, read(i % 2 ? x : LI, `l-${i}`));
  }
  await appendAudit(db, { actor: { kind: 'system', id: 'exchange' }, action: 'exchange.message.route', resource: { type: 'message', id: 'm-1' }, outcome: 'ok' });
  const seen: number[] = [];
  let page = await accessesOfSubject(db, ZHANG, { limit: 3 });
  assert.equal(page.items.length, 3);
  assert.deepEqual(page.items[0], {
    seq: page.items[0]!.seq,
    at: page.items[0]!.at,
    actorKind: 'staff',
    department: 'SZ-MZ',
    action: 'population.person.read',
    purpose: '目的6',
    outcome: 'ok',
  });
  assert.match(page.items[0]!.at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  for (;;) {
    seen.push(...page.items.map((i) => i.seq));
    if (page.next === null) break;
    page = await accessesOfSubject(db, ZHANG, { limit: 3, before: page.next });
  }
  assert.equal(seen.length, 7);
  assert.deepEqual(seen, [...seen].sort((a, b) => b - a), 'newest first');
  const zhang = (await db.query(`select seq from audit.entry where resource_id like 'z-%' order by seq desc`)).rows.map((r) => r.seq);
  assert.deepEqual(seen, zhang);
  assert.equal((await accessesOfSubject(db, x, { limit: 100 })).items.length, 7);
  assert.deepEqual(await accessesOfSubject(db, '110101199003070000', { limit: 5 }), { items: [], next: null });
  await assert.rejects(accessesOfSubject(db, ZHANG, { limit: 0 }), AuditInputError);
});

test('search filters by action (or prefix), actor, resource, subject and time, in pages', async () => {
  const { db } = await freshLog(4);
  await appendAudit(db, { actor: { kind: 'staff', id: 'ca-op', department: 'SZ-DSJ' }, action: 'ca.certificate.issue', resource: { type: 'certificate', id: 'c-1' }, outcome: 'ok', details: { serial: '01AF' } });
  await appendAudit(db, { actor: { kind: 'staff', id: 'ca-op', department: 'SZ-DSJ' }, action: 'ca.certificate.revoke', resource: { type: 'certificate', id: 'c-1' }, outcome: 'denied' });
  await appendAudit(db, { actor: { kind: 'anonymous', id: '' }, action: 'auth.login', resource: { type: 'session', id: '-' }, outcome: 'denied', ip: '198.51.100.7' });

  const issue = await searchAudit(db, { action: 'ca.certificate.issue', limit: 10 });
  assert.equal(issue.items.length, 1);
  assert.deepEqual({ ...issue.items[0], at: 'x', hash: 'x', prevHash: 'x' }, {
    seq: 5,
    at: 'x',
    actor: { kind: 'staff', id: 'ca-op', department: 'SZ-DSJ' },
    action: 'ca.certificate.issue',
    resource: { type: 'certificate', id: 'c-1' },
    subject: null,
    purpose: null,
    outcome: 'ok',
    requestId: null,
    ip: null,
    details: { serial: '01AF' },
    prevHash: 'x',
    hash: 'x',
  });
  assert.deepEqual((await searchAudit(db, { action: 'ca.*', limit: 10 })).items.map((e) => e.seq), [6, 5]);
  assert.deepEqual((await searchAudit(db, { action: 'population.person.*', limit: 10 })).items.map((e) => e.seq), [4, 3, 2, 1]);
  assert.deepEqual((await searchAudit(db, { actorId: 'ca-op', resourceType: 'certificate', resourceId: 'c-1', limit: 10 })).items.map((e) => e.seq), [6, 5]);
  assert.deepEqual((await searchAudit(db, { subject: ZHANG, limit: 10 })).items.map((e) => e.seq), [3, 1]);
  const p1 = await searchAudit(db, { action: 'population.*', limit: 3 });
  assert.deepEqual([p1.items.map((e) => e.seq), p1.next], [[4, 3, 2], 2]);
  const p2 = await searchAudit(db, { action: 'population.*', limit: 3, before: p1.next! });
  assert.deepEqual([p2.items.map((e) => e.seq), p2.next], [[1], null]);
  assert.equal((await searchAudit(db, { since: '2000-01-01', until: new Date(Date.now() + 60_000).toISOString(), limit: 100 })).items.length, 7);
  assert.equal((await searchAudit(db, { since: new Date(Date.now() + 60_000).toISOString(), limit: 100 })).items.length, 0);
  await assert.rejects(searchAudit(db, { since: 'yesterday', limit: 5 }), /since must be an ISO 8601/);
});

test('hostile input is stored safely (NUL, lone surrogates, long strings) or refused clearly, and the chain still verifies', async () => {
  const { db } = await freshLog();
  const controls = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('');
  const unicode = `姑苏 😀 e\u0301 \u202Eevil\u202C "q" \\ / \u007f\u0085\u2028\u2029 ${controls} '; drop table audit.entry; --`;
  const long = 'x'.repeat(1_000_000);
  const r = await appendAudit(db, {
    actor: { kind: 'anonymous', id: `a\u0000b`, department: unicode },
    action: 'population.person.read',
    resource: { type: 'person', id: long },
    subject: ` ${ZHANG}\u0000 `,
    purpose: unicode,
    outcome: 'ok',
    requestId: '\uD800half',
    ip: unicode,
    details: { [`k\u0000`]: `v\u0000`, nested: { b: 2, a: [1, 'two', null, { z: '\uDC00' }] }, big: 12345678901234567890n, when: new Date('2026-03-01T00:00:00Z'), gone: undefined, unicode },
  });
  const [e] = (await searchAudit(db, { limit: 1 })).items;
  assert.equal(e!.seq, r.seq);
  assert.equal(e!.actor.id, 'a\uFFFDb');
  assert.equal(e!.actor.department, unicode.slice(0, 63) + '…');
  assert.equal(e!.purpose, unicode.replace('\u0000', '\uFFFD'));
  assert.equal(e!.resource.id.length, 500);
  assert.ok(e!.resource.id.endsWith('…'));
  assert.equal(e!.subject, `${ZHANG}\uFFFD`);
  assert.equal(e!.requestId, '\uFFFDhalf');
  assert.deepEqual(e!.details, { big: '12345678901234567890', 'k\uFFFD': 'v\uFFFD', nested: { a: [1, 'two', null, { z: '\uFFFD' }], b: 2 }, unicode, when: '2026-03-01T00:00:00.000Z' });
  assert.deepEqual(Object.keys(e!.details!), ['big', 'k\uFFFD', 'nested', 'unicode', 'when'], 'keys in canonical order');

  const huge = await appendAudit(db, read(ZHANG, 'huge', { details: { blob: Array.from({ length: 100 }, (_, i) => `${i}`.repeat(500)) } }));
  const stored = (await db.query<{ details: string }>('select details from audit.entry where seq = $1', [huge.seq])).rows[0]!.details;
  assert.match(stored, /^\{"_truncated":\{"chars":\d+,"sha256":"[0-9a-f]{64}"\}\}$/);

  const before = await head(db);
  const bad: [Partial<AuditEvent>, RegExp][] = [
    [{ action: 'Population.Read' }, /action "Population.Read" is not dotted lower-case/],
    [{ action: 'login' }, /is not dotted/],
    [{ action: 'auth.login\u0000' }, /is not dotted/],
    [{ action: `a.${'b'.repeat(200)}` }, /is not dotted/],
    [{ actor: { kind: 'root' as 'system', id: 'x' } }, /actor.kind "root"/],
    [{ outcome: 'maybe' as 'ok' }, /outcome "maybe"/],
    [{ resource: { type: 'Person Record', id: '1' } }, /resource.type/],
  ];
  for (const [patch, message] of bad) await assert.rejects(appendAudit(db, read(ZHANG, 'bad', patch)), (err: Error) => err instanceof AuditInputError && message.test(err.message));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await assert.rejects(appendAudit(db, read(ZHANG, 'bad', { details: cyclic })), /details must be JSON-serialisable/);
  assert.deepEqual(await head(db), before, 'nothing refused was appended');

  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 2, head: before.hash });
});

test('the audit.verify job records its result under audit.lastVerify and checks the chain still holds the last good head', async () => {
  const { db } = await freshLog(5);
  const errors: unknown[] = [];
  const ctx = { db, log: { error: (obj: unknown, msg: string) => errors.push([obj, msg]) } } as unknown as ModuleContext;
  const job = auditModule.jobs!(ctx)['audit.verify']!;
  const run = () => job({ id: 1, kind: 'audit.verify', payload: {}, attempts: 1, maxAttempts: 5 }, { signal: new AbortController().signal });

  await run();
  const first = (await getSetting<LastAuditVerify>(db, 'audit.lastVerify'))!;
  const h = await head(db);
  assert.equal(first.ok, true);
  assert.equal(first.entries, 5);
  assert.equal(first.head, h.hash);
  assert.deepEqual(first.lastGood, { seq: 5, hash: h.hash, at: first.at });

  // rewritten consistently from entry 3: alone the chain looks fine, but it no longer holds entry 5 as verified
  await tamper(db, 'delete from audit.entry where seq >= 3', `update audit.head set seq = 2, hash = (select hash from audit.entry where seq = 2)`);
  for (let i = 0; i < 5; i++) await appendAudit(db, read(LI, `rewritten-${i}`));
  await run();
  const second = (await getSetting<LastAuditVerify>(db, 'audit.lastVerify'))!;
  assert.equal(second.ok, false);
  assert.equal(second.firstBroken!.seq, 5);
  assert.deepEqual(second.lastGood, first.lastGood, 'the last good head is kept');
  assert.equal(errors.length, 1);
});

test('a backup restored verifies with the same head (restore may truncate the empty, freshly migrated log)', async () => {
  const { db } = await freshLog(12);
  const good = await verifyAudit(db);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-audit-')), 'b.gusu');
  try {
    await backupDatabase(db, file);
    await appendAudit(db, read(ZHANG, 'after-backup'));
    await restoreDatabase(db, file, MIGRATIONS);
    assert.deepEqual(await verifyAudit(db), good);
    assert.equal((await appendAudit(db, read(ZHANG, 'after-restore'))).seq, 13);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});

test('GET /api/v1/me/data-accesses shows a signed-in citizen the accesses to their data, and no one else', async () => {
  const database = await createTestDatabase();
  const config = loadConfig({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false' });
  const modules = MODULES.some((m) => m.name === 'audit') ? MODULES : [...MODULES, auditModule];
  const actors: Record<string, Actor> = {
    zhang: { kind: 'citizen', accountId: 'c-1', name: '张三', idNumber: ZHANG },
    staff: { kind: 'staff', accountId: 's-1', name: '李四', department: 'SZ-GA', post: '民警', roles: [] },
  };
  const platform = await startPlatform(config, { modules, resolveActor: async (req) => actors[String(req.headers['x-test-actor'])] ?? { kind: 'anonymous' } });
  try {
    const db = platform.database.db;
    // other modules audit their own start-up (CA creation), so seqs are taken from the appends
    const first = (await appendAudit(db, read(ZHANG, 'p-1'))).seq;
    await appendAudit(db, read(LI, 'p-2'));
    const third = (await appendAudit(db, read(ZHANG, 'p-3', { actor: { kind: 'system', id: 'exchange', department: 'SZ-NOPE' }, purpose: undefined }))).seq;
    const url = `${platform.listeners[0]!.url}/api/v1/me/data-accesses`;
    const res = await fetch(`${url}?limit=1`, { headers: { 'x-test-actor': 'zhang' } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { items: Record<string, unknown>[]; next: number | null };
    assert.deepEqual(body.items.map(({ at: _at, ...i }) => i), [
      { seq: third, actorKind: 'system', department: 'SZ-NOPE', departmentName: null, action: 'population.person.read', purpose: null, outcome: 'ok' },
    ]);
    assert.equal(body.next, third);
    const rest = (await (await fetch(`${url}?before=${third}`, { headers: { 'x-test-actor': 'zhang' } })).json()) as { items: { seq: number; department: string; departmentName: unknown; purpose: string }[]; next: null };
    assert.equal(rest.items.length, 1);
    assert.equal(rest.items[0]!.seq, first);
    assert.equal(rest.items[0]!.purpose, '户籍业务办理');
    assert.deepEqual(rest.items[0]!.departmentName, { zh: platform.ctx.profile.departments.find((d) => d.code === 'SZ-GA')!.name, en: platform.ctx.profile.departments.find((d) => d.code === 'SZ-GA')!.nameEn });
    assert.equal(rest.next, null);
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { 'x-test-actor': 'staff' } })).status, 403);
    assert.equal((await fetch(`${url}?limit=1000`, { headers: { 'x-test-actor': 'zhang' } })).status, 400);
  } finally {
    await platform.close();
    await database.drop();
  }
});

// The CLI sees `audit` once the module is in MODULES; until then the child registers it itself.
const CLI = `import { addCommand, main } from './src/cli.ts';
import { auditModule } from './src/base/audit/index.ts';
addCommand('audit', auditModule.commands.audit);
process.exitCode = await main(process.argv.slice(1));`;

function gusu(args: string[], databaseUrl: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' },
    timeout: 60_000,
  });
}

test('gusu audit verify exits 0 on a good chain and 1 on a broken one; tail and search print entries', async () => {
  const { db, database } = await freshLog(6);
  await appendAudit(db, read(ZHANG, 'evil\u001b[31m', { purpose: 'x\u202Ey' }));
  const h = await head(db);
  const ok = gusu(['audit', 'verify'], database.url);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, `audit chain ok: 7 entries, head ${h.hash}\n`);

  const tail = gusu(['audit', 'tail', '--limit', '2'], database.url);
  assert.equal(tail.status, 0, tail.stderr);
  const lines = tail.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^6  \S+Z  staff:staff-7@SZ-GA  population\.person\.read  person\/person-6  ok  subject=32050819850505123X  purpose="户籍业务办理"$/);
  assert.ok(lines[1]!.includes('person/evil\\u001b[31m') && lines[1]!.includes('x\\u202ey'), 'control characters are shown escaped');

  const search = gusu(['audit', 'search', '--action', 'population.*', '--subject', ZHANG, '--json'], database.url);
  assert.equal(search.status, 0, search.stderr);
  assert.deepEqual(search.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).seq), [1, 3, 5, 7]);

  await tamper(db, `update audit.entry set outcome = 'denied' where seq = 5`);
  const broken = gusu(['audit', 'verify'], database.url);
  assert.equal(broken.status, 1);
  assert.equal(broken.stdout, 'audit chain BROKEN at seq 5: hash mismatch: the entry was edited\n');

  const usage = gusu(['audit', 'search'], database.url);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^gusu audit: search needs at least one of .+\nusage: gusu audit verify/);
});

test('gusu audit: bad arguments are usage errors; an unmigrated database is one clear error', async () => {
  const { database } = await freshLog();
  const config = loadConfig({ DATABASE_URL: database.url, LOG_LEVEL: 'silent' });
  const command = auditModule.commands!.audit!;
  const cases: [string[], RegExp][] = [
    [[], /expects verify, tail or search/],
    [['fly'], /unknown audit command "fly"/],
    [['search'], /search needs at least one of/],
    [['tail', '--limit', 'many'], /--limit expects a whole number/],
    [['search', '--since', 'yesterday'], /--since expects an ISO 8601/],
    [['verify', '--anchor', '5'], /--anchor expects SEQ:HASH/],
  ];
  for (const [args, message] of cases) await assert.rejects(command.run(args, config), (err: Error) => err instanceof UsageError && message.test(err.message), args.join(' '));
  await assert.rejects(command.run(['verify', '--bogus'], config), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  const bare = await createTestDatabase();
  try {
    await assert.rejects(command.run(['verify'], loadConfig({ DATABASE_URL: bare.url })), {
      message: 'the audit log is not set up in this database: run `gusu migrate` first',
    });
  } finally {
    await bare.drop();
  }
});
