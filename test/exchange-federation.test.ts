// Federation across real processes (issue #5): a city hub and two division nodes, each `gusu serve`
// as its own process on loopback with its own database. A provider registered at one division
// publishes (single events and batch-signed ones) over ~20 keys; a subscriber at the other division
// pulls. The guarantees are checked across them: nothing acknowledged to the publisher is lost —
// also through kill -9 of the subscriber's node, the hub and the publisher's node in the middle of
// delivery —, each key arrives in publish order, the consumer's effects happen once (deduplicated by
// id), and a revoked member certificate is refused at the hub and, after its CRL refresh, at a
// division. Deadlines are polls, never sleeps standing in for a condition.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig, repoRoot } from '../src/config/index.ts';
import { loadCityProfile } from '../src/config/profile.ts';
import { createDb, type Db } from '../src/db/index.ts';
import { caContext, issueCertificate, parseCertificate, revokeCertificate, type CaContext } from '../src/base/identity/ca/index.ts';
import { signBatch, signEvent, signRequest, verifyEvent, verifyBatchedEvent, type ExchangeEvent, type UnsignedEvent } from '../src/base/exchange/index.ts';
import { registerMember, saveResource } from '../src/base/exchange/registry.ts';
import { anchoredTrust } from '../src/base/exchange/trust.ts';
import type { Alg } from '../src/base/identity/crypto/index.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const TOKEN = 'federation-test-enrol-token-0123456789';
const ALG: Alg = 'ecdsa-p256-sha256';
const KEYS = Array.from({ length: 20 }, (_, i) => `person-${String(i).padStart(2, '0')}`);
const RESOURCE = 'population.person';
const PERSON_SCHEMA = {
  type: 'object',
  required: ['idNumber', 'name'],
  properties: { idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' }, name: { type: 'string', maxLength: 50 }, n: { type: 'integer' } },
  additionalProperties: false,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a failure in the background publisher or consumer, reported by the next wait */
let background: Error | null = null;

/** Polls `check` until it returns a truthy value; on the deadline fails with `what` and `explain()`. */
async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, ms: number, explain?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (background) throw background;
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms${explain ? `\n${await explain().catch((e: Error) => e.message)}` : ''}`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------------------------------------------------
// The three processes

interface NodeProc {
  id: string;
  url: string;
  env: Record<string, string>;
  database: TestDatabase;
  /** the test's own connection to the node's database (registration, inspection) */
  db: Db;
  dataDir: string;
  child: ChildProcess | null;
  /** the last lines the process wrote (shown when something fails) */
  out: string[];
  starts: number;
}

const nodes: NodeProc[] = [];
// whatever happens to this process, its children do not outlive it
process.once('exit', () => {
  for (const n of nodes) n.child?.kill('SIGKILL');
});

async function makeNode(id: string, upstream: NodeProc | null): Promise<NodeProc> {
  const database = await createTestDatabase();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `gusu-fed-${id}-`));
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    HOST: '127.0.0.1',
    PORT: String(port),
    GUSU_DATA_DIR: dataDir,
    GUSU_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    GUSU_DEMO: 'false',
    LOG_LEVEL: 'warn',
    GUSU_DB_POOL_SIZE: '6',
    GUSU_JOB_CONCURRENCY: '2',
    GUSU_EXCHANGE_NODE: id,
    GUSU_EXCHANGE_ENROL_TOKEN: TOKEN,
    GUSU_EXCHANGE_SELF_URL: url,
    ...(upstream ? { GUSU_EXCHANGE_UPSTREAM_URL: upstream.url } : {}),
    GUSU_EXCHANGE_RETRY_BASE_MS: '100',
    GUSU_EXCHANGE_MAX_BACKOFF_MS: '800',
    GUSU_EXCHANGE_LEASE_S: '3',
    GUSU_EXCHANGE_SWEEP_MS: '250',
    GUSU_EXCHANGE_SYNC_EVERY: '1',
    GUSU_EXCHANGE_CRL_EVERY: '2',
  };
  const n: NodeProc = { id, url, env, database, db: createDb(database.url, { max: 3, applicationName: 'gusu-fed-test' }), dataDir, child: null, out: [], starts: 0 };
  nodes.push(n);
  return n;
}

/** Starts `gusu serve` for the node and resolves, with the ms it took, when it prints its URL (the platform is up). */
function start(n: NodeProc): Promise<number> {
  const t0 = Date.now();
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('GUSU_') || k === 'DATABASE_URL' || k === 'PORT' || k === 'PUBLIC_PORT' || k === 'INTERNAL_PORT') delete base[k];
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/gusu.js'), 'serve'], { cwd: repoRoot, env: { ...base, ...n.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  n.child = child;
  n.starts++;
  const keep = (d: Buffer) => {
    n.out.push(...d.toString().split('\n').filter((l) => l.trim()));
    if (n.out.length > 40) n.out.splice(0, n.out.length - 40);
  };
  child.stderr!.on('data', keep);
  return new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${n.id} did not start within 60 s:\n${n.out.join('\n')}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      keep(d);
      buf += d.toString();
      if (buf.includes(`portal and consoles: ${n.url}/`)) {
        clearTimeout(timer);
        buf = '';
        resolve(Date.now() - t0);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (n.child === child) n.child = null;
      reject(new Error(`${n.id} exited (${code ?? signal}) before it was ready:\n${n.out.join('\n')}`));
    });
  });
}

/** kill -9, and wait for the process to be gone. */
async function kill9(n: NodeProc): Promise<void> {
  const child = n.child;
  if (!child) return;
  n.child = null;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

// ------------------------------------------------------------------------------------------------
// Members, signed requests, events

interface Member {
  id: string;
  key: string;
  cert: string;
  serial: string;
  publicKey: crypto.KeyObject;
}

let hub: NodeProc;
let A: NodeProc; // node-320505: the provider's node
let B: NodeProc; // node-320506: the subscriber's node
let ca: CaContext;
let departments: Set<string>;
let P: Member; // provider at A: 市公安局 户籍
let S: Member; // subscriber at B: 市民政局 婚姻登记
let R: Member; // a second member at B, revoked in the end

async function issueMember(code: string, subsystem: string): Promise<Member> {
  const c = await issueCertificate(hub.db, ca, { kind: 'system', id: 'test' }, { alg: ALG, subject: { kind: 'system', systemId: subsystem, department: code, name: `${code} ${subsystem}` } });
  return { id: `SZ/GOV/${code}/${subsystem}`, key: c.privateKey!, cert: c.certificate, serial: c.serial, publicKey: crypto.createPublicKey({ key: parseCertificate(c.certificate).spki, format: 'der', type: 'spki' }) };
}

/** Registers a member on its home division node, as that node's operator would (the registry, on its database). */
async function registerAt(n: NodeProc, m: Member): Promise<void> {
  const [, , code, subsystem] = m.id.split('/');
  await registerMember(n.db, anchoredTrust(hub.url), 'SZ', n.id, { memberClass: 'GOV', memberCode: code!, subsystem: subsystem!, name: `${code} ${subsystem}`, certificate: m.cert }, departments);
}

async function call(n: NodeProc, m: Member, method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = signRequest({ member: m.id }, { privateKey: m.key, alg: ALG }, { method, path: p, body: text });
  if (text !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${n.url}${p}`, { method, headers, body: text, signal: AbortSignal.timeout(15_000) });
  const raw = await res.text();
  return { status: res.status, json: raw ? JSON.parse(raw) : null };
}

let eventNo = 0;
function personEvent(key: string, n: number): UnsignedEvent {
  return {
    specversion: '1.0',
    id: `fed-${++eventNo}-${crypto.randomUUID()}`,
    source: `urn:gusu:member:${P.id}`,
    type: 'cn.gov.suzhou.population.person.updated',
    gusumember: P.id,
    gusuresource: RESOURCE,
    gusukey: key,
    data: { idNumber: '320505199001011234', name: `${key}#${n}`, n },
  };
}

/**
 * The provider: publishes at A one request at a time (so publish order is per-key order), and retries
 * a request that got no answer — the node was killed, or is starting — with the same events, until
 * it is acknowledged (publishing is idempotent). Records what was acknowledged, per key in order.
 */
class Publisher {
  acked: string[] = [];
  expected = new Map<string, string[]>();
  private next = new Map<string, number>();
  retries = 0;

  private seq(key: string): number {
    const v = (this.next.get(key) ?? 0) + 1;
    this.next.set(key, v);
    return v;
  }

  async single(key: string): Promise<void> {
    const e = signEvent(personEvent(key, this.seq(key)), P.key, ALG);
    await this.send(e, 'application/cloudevents+json', [e], 201);
  }

  async batch(keys: string[]): Promise<void> {
    const b = signBatch(keys.map((k) => personEvent(k, this.seq(k))), P.key, ALG);
    await this.send({ batch: b.header, events: b.events, proofs: b.proofs }, 'application/cloudevents-batch+json', b.events, 200);
  }

  private async send(body: unknown, type: string, events: ExchangeEvent[], fresh: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let detail = '';
      try {
        const r = await call(A, P, 'POST', '/api/v1/exchange/events', body, type);
        status = r.status;
        detail = JSON.stringify(r.json);
        // a retry of a request the node had committed before it was killed: a duplicate, with the original receipt
        const ok = r.status === fresh || (r.status === 200 && (r.json?.duplicate === true || r.json?.accepted + r.json?.duplicates === events.length));
        if (ok) {
          if (events.length > 1) assert.equal(r.json.accepted + r.json.duplicates, events.length, detail);
          assert.ok(r.json.receipt, detail);
          for (const e of events) {
            this.acked.push(e.id);
            const list = this.expected.get(e.gusukey!) ?? [];
            list.push(e.id);
            this.expected.set(e.gusukey!, list);
          }
          return;
        }
      } catch (err) {
        detail = (err as Error).message; // no answer: the node is down
      }
      if (status >= 400 && status < 500) assert.fail(`the publish was refused (${status}): ${detail}`);
      if (Date.now() > deadline) assert.fail(`no acknowledgement from ${A.id} within 60 s: ${detail}\n${A.out.join('\n')}`);
      this.retries++;
      await sleep(100);
    }
  }

  /** A continuous stream until stopped: mostly single events, every fifth request a batch of 8 over random keys. */
  stream(pauseMs = 40): { stop(): Promise<void>; count(): number } {
    let stopped = false;
    let n = 0;
    const done = (async () => {
      while (!stopped) {
        if (++n % 5 === 0) await this.batch(Array.from({ length: 8 }, () => KEYS[crypto.randomInt(KEYS.length)]!));
        else await this.single(KEYS[crypto.randomInt(KEYS.length)]!);
        await sleep(pauseMs);
      }
    })().catch((err: Error) => {
      background ??= err;
    });
    return {
      count: () => this.acked.length,
      async stop() {
        stopped = true;
        await done;
        if (background) throw background;
      },
    };
  }
}

/**
 * The subscriber's consumer at B: pulls, verifies each event's member signature, applies its effect
 * once per id (redeliveries are recognised and skipped), acknowledges; keeps pulling through B's
 * restarts. Records every delivery per key, in the order received.
 */
class Consumer {
  effects = new Map<string, number>();
  deliveries = 0;
  redeliveries = 0;
  perKey = new Map<string, string[]>();
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(private sub: string) {}

  start(): void {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          const r = await call(B, S, 'GET', `/api/v1/exchange/subscriptions/${this.sub}/events?max=200&wait=1`);
          if (r.status !== 200) throw new Error(`pull: ${r.status} ${JSON.stringify(r.json)}`);
          const events = r.json.events as { seq: number; event: ExchangeEvent; proof?: { header: any; index: number; path: string[] } }[];
          for (const { event: e, proof } of events) {
            const v = proof ? verifyBatchedEvent(e, { index: proof.index, path: proof.path }, proof.header, P.publicKey) : verifyEvent(e, P.publicKey);
            assert.ok(v.ok, `the event ${e.id} verifies under the provider's certificate: ${JSON.stringify(v)}`);
            this.deliveries++;
            const list = this.perKey.get(e.gusukey!) ?? [];
            list.push(e.id);
            this.perKey.set(e.gusukey!, list);
            // the effect, exactly once: the consumer dedupes by id
            if (this.effects.has(e.id)) this.redeliveries++;
            else this.effects.set(e.id, 1);
          }
          if (events.length) await call(B, S, 'POST', `/api/v1/exchange/subscriptions/${this.sub}/ack`, { seqs: events.map((x) => x.seq) });
        } catch (err) {
          if (err instanceof assert.AssertionError) {
            background ??= err;
            return;
          }
          await sleep(150); // B is down or restarting: an unacknowledged pull comes back after the lease
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  missing(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.effects.has(id));
  }
}

let consumer: Consumer;
const publisher = new Publisher();
const startTimes: number[] = [];

/** Where the messages not yet at S are: the delivery queues of the three nodes. */
async function queues(): Promise<string> {
  const lines: string[] = [];
  for (const n of nodes) {
    const { rows } = await n.db.query<{ target: string; status: string; n: number; err: string | null }>(
      `select coalesce(s.target_node, s.target_member) as target, d.status, count(*)::int as n, max(d.last_error) as err
         from exchange.delivery d join exchange.subscription s on s.id = d.subscription
        group by 1, 2 order by 1, 2`,
    );
    lines.push(`${n.id} (${n.child ? 'running' : 'down'}): ${rows.map((r) => `${r.target} ${r.status} ${r.n}${r.err ? ` [${r.err.slice(0, 120)}]` : ''}`).join('; ') || 'no deliveries'}`);
    lines.push(...n.out.slice(-8).map((l) => `  ${n.id}> ${l.slice(0, 300)}`));
  }
  return lines.join('\n');
}

/** Waits until S has received every message acknowledged to P so far. */
async function allReceived(ms: number): Promise<void> {
  const ids = [...publisher.acked];
  await until(`S receives all ${ids.length} messages acknowledged to P`, async () => consumer.missing(ids).length === 0, ms, async () => `missing ${consumer.missing(ids).length} of ${ids.length}\n${await queues()}`);
}

/** Per key: S received the publisher's messages in publish order (a redelivery never follows a later message). */
function assertOrderedPerKey(): void {
  for (const [key, expected] of publisher.expected) {
    const pos = new Map(expected.map((id, i) => [id, i]));
    const got = consumer.perKey.get(key) ?? [];
    let last = -1;
    for (const id of got) {
      const i = pos.get(id);
      assert.ok(i !== undefined, `${key}: ${id} was delivered but never acknowledged to the publisher`);
      assert.ok(i >= last, `${key}: ${id} (#${i}) arrived after #${last}: out of order`);
      last = i;
    }
    assert.deepEqual([...new Set(got)], expected, `${key}: every message, in publish order`);
  }
}

function assertExactlyOnce(): void {
  assert.equal(consumer.effects.size, publisher.acked.length, 'distinct ids received = messages acknowledged to the publisher');
  assert.deepEqual(new Set(consumer.effects.keys()), new Set(publisher.acked));
  assert.ok([...consumer.effects.values()].every((v) => v === 1), 'each effect applied once');
}

async function pending(n: NodeProc, target: string): Promise<number> {
  const { rows } = await n.db.query<{ n: number }>(
    `select count(*)::int as n from exchange.delivery d join exchange.subscription s on s.id = d.subscription
      where coalesce(s.target_node, s.target_member) = $1 and d.status in ('ready', 'leased')`,
    [target],
  );
  return rows[0]!.n;
}

// ------------------------------------------------------------------------------------------------

// Three platform processes are the slowest file of the suite: it runs in the embedded pass (each node
// its own database on the test server); the PostgreSQL pass skips it to keep CI within its budget.
const ONCE = {
  skip: process.env.TEST_DATABASE_URL
    ? 'run in the embedded pass (three processes; CI time budget)'
    : process.env.GUSU_TEST_FEDERATION_ALONE
      ? '.ci/run runs it alone after the suite (it kills processes and measures order under load)'
      : false,
};

before(async () => {
  if (ONCE.skip) return;
  hub = await makeNode('hub', null);
  A = await makeNode('node-320505', hub);
  B = await makeNode('node-320506', hub);
  const config = loadConfig(hub.env);
  const profile = loadCityProfile(config.profileDir);
  departments = new Set(profile.departments.map((d) => d.code));
  startTimes.push(await start(hub));
  ca = caContext(config, profile);
  // the divisions enrol with the hub as they start
  startTimes.push(...(await Promise.all([start(A), start(B)])));
});

after(async () => {
  if (ONCE.skip) return;
  await consumer?.stop().catch(() => undefined);
  await Promise.all(nodes.map((n) => kill9(n)));
  for (const n of nodes) {
    await n.db.close().catch(() => undefined);
    await n.database.drop().catch(() => undefined);
    fs.rmSync(n.dataDir, { recursive: true, force: true });
  }
  await stopTestServer();
});

describe('federation across three processes', ONCE, () => {
  it('the divisions enrol, members register on their home nodes, the directory syncs through the hub', async (t) => {
    t.diagnostic(`started the hub in ${startTimes[0]} ms, then A and B in ${startTimes[1]} and ${startTimes[2]} ms`);
    for (const d of [A, B]) {
      await until(`${d.id} enrols with the hub`, async () => {
        const self = (await d.db.query<{ cert_pem: string | null }>('select cert_pem from exchange.node where is_self')).rows[0];
        const anchors = (await d.db.query<{ n: number }>('select count(*)::int as n from exchange.trust_anchor')).rows[0]!.n;
        return self?.cert_pem && anchors >= 2;
      }, 20_000, queues);
    }
    P = await issueMember('SZ-GA', 'hukou');
    S = await issueMember('SZ-MZ', 'marriage');
    R = await issueMember('SZ-RS', 'social');
    await registerAt(A, P);
    await registerAt(B, S);
    await registerAt(B, R);
    // A's sync carries P to the hub: only then can the hub define a resource P provides
    await until('the hub learns P from A', async () => (await hub.db.query('select 1 from exchange.member where id = $1 and node_id = $2', [P.id, A.id])).rows.length, 15_000, queues);
    await saveResource(hub.db, { id: RESOURCE, name: '人口基础信息', provider: P.id, schema: PERSON_SCHEMA, share: 'open' });
    for (const d of [A, B]) await until(`${d.id} mirrors ${RESOURCE}`, async () => (await d.db.query('select 1 from exchange.resource where id = $1', [RESOURCE])).rows.length, 15_000, queues);
    await until('B mirrors P (from the hub)', async () => (await B.db.query('select 1 from exchange.member where id = $1', [P.id])).rows.length, 15_000, queues);

    const sub = await call(B, S, 'POST', '/api/v1/exchange/subscriptions', { resource: RESOURCE, delivery: 'pull' });
    assert.equal(sub.status, 201, JSON.stringify(sub.json));
    // the subscription is B's interest: the hub opens a link to B for the resource
    await until('the hub subscribes B to the resource', async () => (await hub.db.query(`select 1 from exchange.subscription where target_node = $1 and resource = $2 and status = 'active'`, [B.id, RESOURCE])).rows.length, 15_000, queues);
    await until("A's standing link to the hub", async () => (await A.db.query(`select 1 from exchange.subscription where target_node = 'hub' and resource = '*' and status = 'active'`)).rows.length, 5_000);
    await until('the hub learns R from B', async () => (await hub.db.query('select 1 from exchange.member where id = $1', [R.id])).rows.length, 15_000, queues);
    consumer = new Consumer(sub.json.id);
    consumer.start();
  });

  it('P publishes at A (single and batch-signed, 20 keys); S pulls at B: everything, in order per key, once', async (t) => {
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) await publisher.single(KEYS[i % KEYS.length]!);
    for (let i = 0; i < 4; i++) await publisher.batch(Array.from({ length: 20 }, (_, j) => KEYS[(i * 7 + j * 3) % KEYS.length]!));
    assert.equal(publisher.acked.length, 100);
    const t1 = Date.now();
    await allReceived(30_000);
    t.diagnostic(`published 20 single events and 4 batches of 20 in ${t1 - t0} ms; all at S ${Date.now() - t1} ms later`);
    assertOrderedPerKey();
    assertExactlyOnce();
    // the hub forwarded them: A's link and the hub's link to B are drained
    await until('the queues drain', async () => (await pending(A, 'hub')) === 0 && (await pending(hub, B.id)) === 0, 10_000, queues);
  });

  it('kill -9 of B mid-delivery while P keeps publishing: after B restarts S receives everything, in order', async (t) => {
    const stream = publisher.stream();
    t.after(() => stream.stop().catch(() => undefined));
    const from = publisher.acked.length;
    await until('S receives part of the stream', async () => publisher.acked.length - from >= 20 && consumer.missing(publisher.acked.slice(from)).length < publisher.acked.length - from, 20_000, queues);
    await kill9(B);
    const killedAt = publisher.acked.length;
    t.diagnostic(`B killed with ${killedAt - from} streamed messages acknowledged to P, ${consumer.missing(publisher.acked).length} not yet at S (${await pending(B, S.id)} in B's queue for S, ${await pending(hub, B.id)} at the hub for B)`);
    // P keeps publishing while B is down, and the hub keeps what is for B
    await until('the hub holds messages for B published while B is down', async () => publisher.acked.length >= killedAt + 10 && (await pending(hub, B.id)) > 0, 20_000, queues);
    t.diagnostic(`restarting B: ${await pending(hub, B.id)} messages wait at the hub`);
    const up = await start(B);
    const t0 = Date.now();
    await allReceived(40_000);
    t.diagnostic(`B restarted in ${up} ms; S caught up ${Date.now() - t0} ms later`);
    await stream.stop();
    await allReceived(20_000);
    assertOrderedPerKey();
    assertExactlyOnce();
  });

  it('kill -9 of the hub mid-stream: nothing acknowledged to P is lost, and it reaches S in order', async (t) => {
    const stream = publisher.stream();
    t.after(() => stream.stop().catch(() => undefined));
    const from = publisher.acked.length;
    await until('the stream flows through the hub', async () => publisher.acked.length - from >= 20, 20_000, queues);
    await kill9(hub);
    const killedAt = publisher.acked.length;
    t.diagnostic(`hub killed: ${await pending(hub, B.id)} messages in its queue for B, ${await pending(A, 'hub')} in A's queue for the hub, ${consumer.missing(publisher.acked).length} not yet at S`);
    await until('P keeps publishing at A while the hub is down', async () => publisher.acked.length >= killedAt + 10, 20_000, queues);
    const up = await start(hub);
    const t0 = Date.now();
    await allReceived(40_000);
    t.diagnostic(`the hub restarted in ${up} ms; S caught up ${Date.now() - t0} ms later`);
    await stream.stop();
    await allReceived(20_000);
    assertOrderedPerKey();
    assertExactlyOnce();
  });

  it('kill -9 of A right after a publish is acknowledged: after A restarts, those messages are delivered', async (t) => {
    const before = publisher.acked.length;
    await publisher.batch(Array.from({ length: 100 }, (_, i) => KEYS[i % KEYS.length]!));
    await kill9(A);
    const last = publisher.acked.slice(before);
    assert.equal(last.length, 100);
    const unforwarded = await pending(A, 'hub');
    t.diagnostic(`A killed right after acknowledging a batch of 100: ${unforwarded} still in its queue for the hub, ${consumer.missing(last).length} not yet at S`);
    const up = await start(A);
    const t0 = Date.now();
    await allReceived(40_000);
    t.diagnostic(`A restarted in ${up} ms; S caught up ${Date.now() - t0} ms later`);
    assertOrderedPerKey();
    assertExactlyOnce();
    t.diagnostic(`in all: ${publisher.acked.length} messages acknowledged to P (${publisher.retries} publish retries), ${consumer.deliveries} deliveries to S (${consumer.redeliveries} redeliveries skipped by id)`);
  });

  it('a revoked member certificate is refused: at the hub at once, at a division once it has the new CRL', async () => {
    const okHub = await call(hub, R, 'GET', '/api/v1/exchange/subscriptions');
    assert.equal(okHub.status, 200, JSON.stringify(okHub.json));
    const okB = await call(B, R, 'GET', '/api/v1/exchange/subscriptions');
    assert.equal(okB.status, 200, JSON.stringify(okB.json));
    await revokeCertificate(hub.db, ca, { kind: 'system', id: 'test' }, R.serial, 'key-compromise');
    const atHub = await call(hub, R, 'GET', '/api/v1/exchange/subscriptions');
    assert.equal(atHub.status, 403, JSON.stringify(atHub.json));
    assert.equal(atHub.json.reason, 'certificate');
    const atB = await until('B refuses R after its CRL refresh', async () => {
      const r = await call(B, R, 'GET', '/api/v1/exchange/subscriptions');
      return r.status === 403 ? r : null;
    }, 20_000, queues);
    assert.equal(atB.json.reason, 'certificate');
    assert.match(atB.json.detail, /revoked/);
    const { rows } = await B.db.query<{ n: number }>(`select count(*)::int as n from exchange.refusal where member = $1 and reason = 'certificate'`, [R.id]);
    assert.ok(rows[0]!.n >= 1, 'the refusal is recorded at B');
    // the others are unaffected
    const okS = await call(B, S, 'GET', '/api/v1/exchange/subscriptions');
    assert.equal(okS.status, 200);
  });
});
