// The `exchange` scenario: the data exchange node (src/base/exchange, docs/exchange.md) end to end
// over HTTP, on the whole platform as `gusu serve` runs it. Department systems registered as members
// with certificates from the municipal CA publish batch-signed CloudEvents (500 a request, one
// signature over each batch's Merkle root), a subscribing member pulls them (max 1000, long poll) and
// acknowledges them; every request is signed by its member. A message counts when it has been
// published (stored, fanned out, logged: durable), delivered and acknowledged (its receipt logged).
//
// The publishers and the consumer run in a worker thread (this module again, under tsx), so that the
// node measured has the main thread to itself; on a 2-core machine they still share the CPUs with it
// and with PostgreSQL.
//
//   throughput  2 publisher members (ECDSA P-256; then SM2) with 2 requests in flight each, over
//               1 000 ordering keys each, one pull consumer per subscription: messages published
//               and acknowledged per second, from the first publish to the last acknowledgement.
//               Also SM2 with every message signed on its own (no batch signature), a short run.
//   latency     a fixed offered load of 1 000 messages/s (a batch of 50 every 50 ms, open loop) with
//               the consumer long-polling: from the start of each publish to the consumer holding it.
//   baselines   on the same database in the same run: the same number of rows of the same widths
//               (the event JSON text, its digest and key) inserted with unnest into one plain table
//               in the same batch sizes and at the same concurrency; at the fixed load, each batch
//               of 50 inserted and selected back (the least a database does to store a message and
//               hand it over).
//   where the time goes
//               CPU per party in every run (Linux /proc: the node's main thread, PostgreSQL, the
//               client worker); one batch of 500 through the node's own functions in this process,
//               one at a time: publish() split into its checks (CPU) and its transaction, pull() and
//               ack(), statement by statement; and (not with --quick) a profiled throughput round
//               timing every statement of every transaction under load.
//
// BENCH_DATABASE_URL: the platform runs on a fresh database made on that server (dropped after),
// since the message log is append-only; otherwise on an embedded server in a temporary directory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import type { Db } from '../src/db/index.ts';
import { caContextFor, issueCertificate } from '../src/base/identity/ca/index.ts';
import type { Alg } from '../src/base/identity/crypto/index.ts';
import {
  ack,
  exchangeOf,
  publish,
  pull,
  registerMember,
  saveResource,
  sealEvent,
  signBatch,
  signEvent,
  signRequest,
  subscribe,
  type ExchangeRuntime,
  type SubscriptionRow,
  type UnsignedEvent,
} from '../src/base/exchange/index.ts';
import { median, percentile, round, startBenchPlatform, type BenchOptions, type BenchPlatform, type Figures } from './support.ts';

const EXCHANGE_WORKER = 'gusu-bench-exchange';
/** events per publish request (and per baseline insert) */
const BATCH = 500;
/** publisher members, each with its own resource and the consumer's subscription to it */
const PUBLISHERS = 2;
/** publish requests in flight per publisher */
const INFLIGHT = 2;
/** ordering keys per publisher */
const KEYS = 1000;
/** the fixed offered load: a batch of LATENCY_BATCH every LATENCY_EVERY_MS */
const LATENCY_BATCH = 50;
const LATENCY_EVERY_MS = 50;
const PULL_MAX = 1000;
/** the latency run waits this long after its last publish for the consumer to catch up (--quick: a quarter) */
const DRAIN_MS = 60_000;

const PERSON_SCHEMA = {
  type: 'object',
  required: ['idNumber', 'name'],
  properties: { idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' }, name: { type: 'string', maxLength: 50 }, address: { type: 'string', maxLength: 200 } },
  additionalProperties: false,
};

interface MemberSpec {
  id: string;
  /** PKCS#8 PEM */
  key: string;
  alg: Alg;
}

interface PublisherSpec {
  member: MemberSpec;
  resource: string;
  /** the consumer's subscription to the resource */
  sub: string;
}

type ToWorker =
  | { cmd: 'throughput'; tag: string; mode: 'batch' | 'single'; publishers: PublisherSpec[]; messages: number }
  | { cmd: 'latency'; tag: string; publisher: PublisherSpec; seconds: number; drainMs: number };

interface ThroughputResult {
  kind: 'throughput';
  messages: number;
  seconds: number;
  prepSeconds: number;
  publishMs: Float64Array;
  pullMs: Float64Array;
  ackMs: Float64Array;
  pulls: number;
}

interface LatencyResult {
  kind: 'latency';
  /** per message, publish start to the consumer holding it; for one not delivered within DRAIN_MS of the last publish, the time until then (a lower bound) */
  latencies: Float64Array;
  sent: number;
  undelivered: number;
  seconds: number;
  /** the largest delay of a send behind its schedule, ms */
  lateMs: number;
}

type FromWorker = { ready: true } | { prepared: true } | { error: string } | ThroughputResult | LatencyResult;

interface ExchangeWorkerData {
  gusuBench: typeof EXCHANGE_WORKER;
  url: string;
  subscriber: MemberSpec;
}

// ------------------------------------------------------------------------------------------------
// Events, as a department system builds them

function idNumber(k: number): string {
  return `32050219900101${String(k % 1000).padStart(3, '0')}${k % 10}`;
}

function personEvent(member: string, resource: string, id: string, k: number, n: number): UnsignedEvent {
  return {
    specversion: '1.0',
    id,
    source: `urn:gusu:member:${member}`,
    type: 'cn.gov.suzhou.population.person.updated',
    time: new Date().toISOString(),
    gusumember: member,
    gusuresource: resource,
    gusukey: idNumber(k),
    data: { idNumber: idNumber(k), name: `基准测试${n % 10_000}`, address: `江苏省苏州市姑苏区基准路${n % 1000}号${k}室` },
  };
}

// ------------------------------------------------------------------------------------------------
// The worker thread: publishers and consumers, over HTTP with signed requests

function workerMain(data: ExchangeWorkerData): void {
  const port = parentPort!;
  const base = data.url;

  async function call(m: MemberSpec, method: string, p: string, body?: string, contentType = 'application/json'): Promise<any> {
    const headers: Record<string, string> = signRequest({ member: m.id }, { privateKey: m.key, alg: m.alg }, { method, path: p, body });
    if (body !== undefined) headers['content-type'] = contentType;
    const res = await fetch(base + p, { method, headers, body });
    const text = await res.text();
    if (!res.ok) throw new Error(`${m.id} ${method} ${p}: HTTP ${res.status}: ${text.slice(0, 400)}`);
    return text ? JSON.parse(text) : null;
  }

  /** the body of one publish request of n events */
  function body(p: PublisherSpec, mode: 'batch' | 'single', ids: string[], keys: number[]): string {
    const events = ids.map((id, i) => personEvent(p.member.id, p.resource, id, keys[i]!, i));
    if (mode === 'single') return JSON.stringify(events.map((e) => signEvent(e, p.member.key, p.member.alg)));
    const b = signBatch(events, p.member.key, p.member.alg);
    return JSON.stringify({ batch: b.header, events: b.events, proofs: b.proofs });
  }

  /**
   * Pulls and acknowledges until `until()` says stop; `seen` gets each event id and the time it came.
   * As the SDK's consume does: the next pull after the acknowledgement (with max 1000 over 1000 keys,
   * every key is in flight until then).
   */
  async function consume(sub: string, until: () => boolean, seen: (id: string, at: number) => void, stats?: { pullMs: number[]; ackMs: number[] }): Promise<void> {
    const s = data.subscriber;
    while (!until()) {
      const p0 = performance.now();
      const r = (await call(s, 'GET', `/api/v1/exchange/subscriptions/${sub}/events?max=${PULL_MAX}&wait=1`)) as { events: { seq: number; event: { id: string } }[] };
      const at = performance.now();
      if (r.events.length === 0) continue;
      stats?.pullMs.push(at - p0);
      for (const e of r.events) seen(e.event.id, at);
      const a0 = performance.now();
      await call(s, 'POST', `/api/v1/exchange/subscriptions/${sub}/ack`, JSON.stringify({ seqs: r.events.map((e) => e.seq) }));
      stats?.ackMs.push(performance.now() - a0);
    }
  }

  async function throughput(m: Extract<ToWorker, { cmd: 'throughput' }>): Promise<ThroughputResult> {
    const prep0 = performance.now();
    const per = Math.ceil(m.messages / m.publishers.length / BATCH);
    // every request body before the clock starts: signing is the publishers' work, not the node's
    const queues = m.publishers.map((p, pi) =>
      Array.from({ length: per }, (_, b) => {
        const ids = Array.from({ length: BATCH }, (_, i) => `${m.tag}-${pi}-${b}-${i}`);
        const keys = ids.map((_, i) => (b * BATCH + i) % KEYS);
        return body(p, m.mode, ids, keys);
      }),
    );
    const prepSeconds = (performance.now() - prep0) / 1000;
    port.postMessage({ prepared: true } satisfies FromWorker);
    const expected = per * BATCH;
    const publishMs: number[] = [];
    const stats = { pullMs: [] as number[], ackMs: [] as number[] };
    let failed: Error | null = null;
    const stop = () => failed !== null;
    const prefix = `${m.tag}-`;
    const t0 = performance.now();
    const consumers = m.publishers.map(async (p) => {
      let got = 0;
      await consume(p.sub, () => got >= expected || stop(), (id) => {
        if (id.startsWith(prefix)) got++;
      }, stats);
    });
    const publishers = m.publishers.flatMap((p, pi) =>
      Array.from({ length: INFLIGHT }, async () => {
        for (let b = queues[pi]!.shift(); b !== undefined && !stop(); b = queues[pi]!.shift()) {
          const s = performance.now();
          const r = (await call(p.member, 'POST', '/api/v1/exchange/events', b, 'application/cloudevents-batch+json')) as { accepted: number };
          publishMs.push(performance.now() - s);
          if (r.accepted !== BATCH) throw new Error(`a batch of ${BATCH} was answered with ${r.accepted} accepted`);
        }
      }),
    );
    const all = [...publishers, ...consumers].map((x) =>
      x.catch((err: Error) => {
        failed ??= err;
      }),
    );
    await Promise.all(all);
    if (failed) throw failed;
    // the answer to the last acknowledgement
    const end = performance.now();
    return {
      kind: 'throughput',
      messages: expected * m.publishers.length,
      seconds: (end - t0) / 1000,
      prepSeconds,
      publishMs: Float64Array.from(publishMs),
      pullMs: Float64Array.from(stats.pullMs),
      ackMs: Float64Array.from(stats.ackMs),
      pulls: stats.pullMs.length,
    };
  }

  async function latency(m: Extract<ToWorker, { cmd: 'latency' }>): Promise<LatencyResult> {
    const count = Math.max(1, Math.round((m.seconds * 1000) / LATENCY_EVERY_MS));
    const bodies = Array.from({ length: count }, (_, b) => {
      const ids = Array.from({ length: LATENCY_BATCH }, (_, i) => `${m.tag}-${b}-${i}`);
      return body(m.publisher, 'batch', ids, ids.map((_, i) => (b * LATENCY_BATCH + i) % KEYS));
    });
    port.postMessage({ prepared: true } satisfies FromWorker);
    const sentAt = new Float64Array(count);
    const received = new Uint16Array(count);
    const latencies: number[] = [];
    const total = count * LATENCY_BATCH;
    const prefix = `${m.tag}-`;
    let failed: Error | null = null;
    let lastAt = 0;
    let gaveUp = false;
    const consumer = consume(m.publisher.sub, () => latencies.length >= total || failed !== null || gaveUp, (id, at) => {
      if (!id.startsWith(prefix)) return;
      const b = Number(id.slice(prefix.length, id.indexOf('-', prefix.length)));
      received[b]!++;
      latencies.push(at - sentAt[b]!);
      lastAt = Math.max(lastAt, at);
    }).catch((err: Error) => {
      failed ??= err;
    });
    // give the consumer's first long poll time to be waiting
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    let lateMs = 0;
    const sends: Promise<void>[] = [];
    for (let b = 0; b < count && !failed; b++) {
      const due = t0 + b * LATENCY_EVERY_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sentAt[b] = performance.now();
      lateMs = Math.max(lateMs, sentAt[b]! - due);
      sends.push(
        call(m.publisher.member, 'POST', '/api/v1/exchange/events', bodies[b], 'application/cloudevents-batch+json').then(
          () => undefined,
          (err: Error) => {
            failed ??= err;
          },
        ),
      );
    }
    await Promise.all(sends);
    const deadline = setTimeout(() => (gaveUp = true), m.drainMs);
    await consumer;
    clearTimeout(deadline);
    if (failed) throw failed;
    // what did not come in time counts with the time it has waited so far
    const end = performance.now();
    let undelivered = 0;
    for (let b = 0; b < count; b++) {
      for (let i = received[b]!; i < LATENCY_BATCH; i++) {
        latencies.push(end - sentAt[b]!);
        undelivered++;
      }
    }
    return { kind: 'latency', latencies: Float64Array.from(latencies), sent: total, undelivered, seconds: ((undelivered ? end : lastAt) - t0) / 1000, lateMs };
  }

  port.on('message', (m: ToWorker) => {
    void (async () => {
      try {
        const r = m.cmd === 'throughput' ? await throughput(m) : await latency(m);
        const transfer = r.kind === 'throughput' ? [r.publishMs.buffer, r.pullMs.buffer, r.ackMs.buffer] : [r.latencies.buffer];
        port.postMessage(r satisfies FromWorker, transfer as ArrayBuffer[]);
      } catch (err) {
        port.postMessage({ error: (err as Error).stack ?? String(err) } satisfies FromWorker);
      }
    })();
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}

/** The publishers and consumers in a worker thread (this module again, under tsx). */
async function startClients(data: Omit<ExchangeWorkerData, 'gusuBench'>): Promise<{
  /** onStart: when the requests are signed and the clock starts */
  throughput(m: Extract<ToWorker, { cmd: 'throughput' }>, onStart?: () => void): Promise<ThroughputResult>;
  latency(m: Extract<ToWorker, { cmd: 'latency' }>, onStart?: () => void): Promise<LatencyResult>;
  stop(): Promise<void>;
}> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `(async () => {
  const { register } = await import(${JSON.stringify(tsx)});
  register();
  await import(${JSON.stringify(import.meta.url)});
})().catch((err) => require('node:worker_threads').parentPort.postMessage({ error: String((err && err.stack) || err) }));`;
  const worker = new Worker(code, { eval: true, workerData: { ...data, gusuBench: EXCHANGE_WORKER } satisfies ExchangeWorkerData });
  const next = () =>
    new Promise<FromWorker>((resolve, reject) => {
      const done = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (m: FromWorker) => (done(), resolve(m));
      const onError = (err: Error) => (done(), reject(err));
      const onExit = (code: number) => (done(), reject(new Error(`the exchange client worker exited (code ${code})`)));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  const ready = await next().catch((err: Error) => ({ error: err.message }) as FromWorker);
  if ('error' in ready) {
    await worker.terminate();
    throw new Error(`the exchange client worker: ${ready.error}`);
  }
  const ask = async <K extends FromWorker>(m: ToWorker, onStart?: () => void): Promise<K> => {
    worker.postMessage(m);
    for (;;) {
      const r = await next();
      if ('error' in r) throw new Error(`exchange clients: ${r.error}`);
      if ('prepared' in r) {
        onStart?.();
        continue;
      }
      return r as K;
    }
  };
  return {
    throughput: (m, onStart) => ask<ThroughputResult>(m, onStart),
    latency: (m, onStart) => ask<LatencyResult>(m, onStart),
    async stop() {
      await worker.terminate();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Where the time goes: every statement of every transaction on the node's pool, by kind

const STATEMENTS: [RegExp, string][] = [
  [/insert into exchange\.message \(/, 'insert messages (and their batch header)'],
  [/insert into exchange\.delivery/, 'fan out to queues'],
  [/from exchange\.log_head for update/, 'lock the log head (waits for the previous append to commit)'],
  [/from exchange\.log_entry where seq >/, 'read the log tail since the last checkpoint'],
  [/from exchange\.log_checkpoint order by n desc/, 'read the last checkpoint'],
  [/insert into exchange\.log_entry/, 'insert log entries'],
  [/insert into exchange\.log_checkpoint/, 'insert a checkpoint'],
  [/update exchange\.log_head/, 'update the log head'],
  [/pg_advisory_xact_lock/, 'lock the subscription (one claimer)'],
  [/update exchange\.delivery set status = 'dead'/, 'dead-letter expired leases'],
  [/update exchange\.delivery d set status = 'leased'/, 'lease deliverable messages (per-key order)'],
  [/update exchange\.delivery set status = 'done'/, 'mark acknowledged'],
  [/from exchange\.message where seq = any/, 'read leased messages'],
  [/from ca\.certificate where serial/, 'revocation check'],
];

function statementKind(sql: string): string {
  // the catalog's freshness note runs after a publish commits, in the background: not part of publish()
  if (/\bcatalog\./.test(sql)) return 'catalog arrival note (after commit)';
  for (const [re, name] of STATEMENTS) if (re.test(sql)) return name;
  return `other: ${sql.replace(/\s+/g, ' ').trim().slice(0, 50)}`;
}

function txKind(firstSql: string): string {
  if (/insert into exchange\.message \(/.test(firstSql)) return 'publish tx';
  if (/pg_advisory_xact_lock/.test(firstSql)) return 'claim tx (pull)';
  if (/update exchange\.delivery set status = 'done'/.test(firstSql)) return 'ack tx';
  return 'other tx';
}

interface Profile {
  on: boolean;
  stats: Map<string, { n: number; ms: number }>;
  reset(): void;
  restore(): void;
}

/** Wraps db.tx and db.query (the platform's pool, which the node uses) to time each statement. */
function instrument(db: Db): Profile {
  const origTx = db.tx;
  const origQuery = db.query;
  const p: Profile = {
    on: false,
    stats: new Map(),
    reset() {
      p.stats.clear();
    },
    restore() {
      db.tx = origTx;
      db.query = origQuery;
    },
  };
  const add = (k: string, ms: number) => {
    const s = p.stats.get(k) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += ms;
    p.stats.set(k, s);
  };
  db.tx = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    if (!p.on) return origTx(fn);
    const t0 = performance.now();
    let kind: string | null = null;
    let inFn = 0;
    let inQueries = 0;
    const per: [string, number][] = [];
    const r = await origTx(async (client) => {
      const f0 = performance.now();
      const proxy = new Proxy(client, {
        get(target, prop) {
          if (prop === 'query') {
            return async (text: string, values?: unknown[]) => {
              kind ??= txKind(text);
              const q0 = performance.now();
              try {
                return await target.query(text, values);
              } finally {
                const ms = performance.now() - q0;
                inQueries += ms;
                per.push([statementKind(text), ms]);
              }
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      try {
        return await fn(proxy);
      } finally {
        inFn = performance.now() - f0;
      }
    });
    const total = performance.now() - t0;
    const k = kind ?? 'other tx';
    add(`${k}|(whole transaction)`, total);
    for (const [s, ms] of per) add(`${k}|${s}`, ms);
    add(`${k}|JavaScript between statements (log hashes, checkpoint signature)`, inFn - inQueries);
    add(`${k}|pool connect, begin, commit`, total - inFn);
    return r;
  };
  db.query = (async (text: string, values?: unknown[]) => {
    if (!p.on) return origQuery(text, values);
    const q0 = performance.now();
    try {
      return await origQuery(text, values);
    } finally {
      add(`outside transactions|${statementKind(text)}`, performance.now() - q0);
    }
  }) as Db['query'];
  return p;
}

function report(stats: Map<string, { n: number; ms: number }>, perBatches: number, log: (msg: string) => void): void {
  const groups = new Map<string, [string, { n: number; ms: number }][]>();
  for (const [k, v] of stats) {
    const [g, s] = k.split('|') as [string, string];
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push([s, v]);
  }
  for (const [g, items] of [...groups].sort()) {
    const whole = items.find(([s]) => s === '(whole transaction)');
    const sumMs = whole ? whole[1].ms : items.reduce((a, [, v]) => a + v.ms, 0);
    log(`  ${g}: ${whole ? `${whole[1].n} transactions, ${(whole[1].ms / whole[1].n).toFixed(1)} ms each, ` : ''}${(sumMs / perBatches).toFixed(1)} ms per ${BATCH}-message batch in all`);
    for (const [s, v] of items.sort((a, b) => b[1].ms - a[1].ms)) {
      if (s === '(whole transaction)') continue;
      log(`      ${((100 * v.ms) / (sumMs || 1)).toFixed(0).padStart(3)} %  ${(v.ms / v.n).toFixed(2).padStart(7)} ms × ${String(v.n).padStart(5)}  ${s}`);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// CPU by party (Linux /proc): the node's main thread, the rest of this process (the client worker,
// garbage collection, libuv), and PostgreSQL (this database's backends and the server's own
// processes: WAL writer, checkpointer, autovacuum; on a shared server those also work for others)

const HZ = 100;

function statTicks(file: string): { ticks: number; ppid: number } | null {
  try {
    const s = fs.readFileSync(file, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ticks: Number(rest[11]) + Number(rest[12]), ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

interface CpuSample {
  main: number;
  process: number;
  /** PostgreSQL processes: ticks by pid (a backend may end or start between two samples) */
  pg: Map<number, number>;
}

async function cpuMeter(db: Db): Promise<(() => CpuSample) | null> {
  if (!fs.existsSync('/proc/self/stat')) return null;
  const { rows } = await db.query<{ pid: number; db: string }>('select pg_backend_pid() as pid, current_database() as db');
  const backend = statTicks(`/proc/${rows[0]!.pid}/stat`);
  if (!backend) return null; // PostgreSQL on another machine (or in a container)
  const postmaster = backend.ppid;
  const dbName = rows[0]!.db;
  return () => {
    const pg = new Map<number, number>();
    const own = statTicks(`/proc/${postmaster}/stat`);
    if (own) pg.set(postmaster, own.ticks);
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const st = statTicks(`/proc/${pid}/stat`);
      if (!st || st.ppid !== postmaster) continue;
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      // a client backend's title is "postgres: USER DATABASE HOST(PORT) STATE": only ours
      const client = /^postgres: \S+ (\S+) [\d.:\[\]a-f]+\(\d+\)/.exec(cmd);
      if (client && client[1] !== dbName) continue;
      pg.set(Number(pid), st.ticks);
    }
    return { main: statTicks(`/proc/self/task/${process.pid}/stat`)?.ticks ?? 0, process: statTicks('/proc/self/stat')?.ticks ?? 0, pg };
  };
}

/** "% of a core" of each party between two samples, over `seconds` (a backend that ended between them is not counted) */
function cpuShares(a: CpuSample, b: CpuSample, seconds: number): { main: number; rest: number; pg: number } {
  const pct = (t: number) => (100 * t) / HZ / seconds;
  let pg = 0;
  for (const [pid, t] of b.pg) pg += t - (a.pg.get(pid) ?? 0);
  return { main: pct(b.main - a.main), rest: pct(b.process - b.main - (a.process - a.main)), pg: pct(pg) };
}

// ------------------------------------------------------------------------------------------------
// The run

/** the platform on a fresh database: on BENCH_DATABASE_URL's server (made and dropped), else embedded */
async function startNode(): Promise<{ bench: BenchPlatform; stop(): Promise<void> }> {
  const env = { GUSU_DEMO: 'false' };
  const server = process.env.BENCH_DATABASE_URL;
  if (!server) {
    const bench = await startBenchPlatform(env);
    return { bench, stop: () => bench.stop() };
  }
  const name = `gusu_bench_exchange_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(server);
  u.pathname = `/${name}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-exchange-'));
  const drop = async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  };
  let bench: BenchPlatform;
  try {
    bench = await startBenchPlatform({ ...env, DATABASE_URL: u.toString(), GUSU_DATA_DIR: dataDir });
  } catch (err) {
    await drop();
    throw err;
  }
  return {
    bench,
    async stop() {
      try {
        await bench.stop();
      } finally {
        await drop();
      }
    },
  };
}

export async function run(opts: BenchOptions): Promise<Figures> {
  const seconds = opts.seconds ?? (opts.quick ? 3 : 10);
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  opts.log(`starting the platform (${process.env.BENCH_DATABASE_URL ? 'a fresh database on BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}; no demo city)`);
  const t0 = Date.now();
  const node = await startNode();
  const { bench } = node;
  const ctx = bench.platform.ctx;
  const db = ctx.db;
  let clients: Awaited<ReturnType<typeof startClients>> | null = null;
  const profile = instrument(db);
  try {
    const rt: ExchangeRuntime = exchangeOf(ctx);
    const ca = caContextFor(ctx);
    const { rows: server } = await db.query<{ v: string; sc: string; fsync: string }>(`select current_setting('server_version') as v, current_setting('synchronous_commit') as sc, current_setting('fsync') as fsync`);
    opts.log(`platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s: PostgreSQL ${server[0]!.v} (fsync ${server[0]!.fsync}, synchronous_commit ${server[0]!.sc}), pool of ${bench.platform.config.dbPoolSize}`);

    // members with certificates from the municipal CA, their resources, the consumer's subscriptions
    const memberOf = async (code: string, subsystem: string, alg: Alg): Promise<MemberSpec & { row: Awaited<ReturnType<typeof registerMember>> }> => {
      const c = await issueCertificate(db, ca, { kind: 'system', id: 'bench' }, { alg, subject: { kind: 'system', systemId: subsystem, department: code, name: `${code} ${subsystem}` } });
      const row = await registerMember(db, rt.trust, rt.cfg.instance, rt.self.id, { memberClass: 'GOV', memberCode: code, subsystem, name: `基准测试 ${subsystem}`, certificate: c.certificate }, rt.departments);
      return { id: row.id, key: c.privateKey!, alg, row };
    };
    const subscriber = await memberOf('SZ-MZ', 'bench-consumer', 'ecdsa-p256-sha256');
    const subs = new Map<string, SubscriptionRow>();
    const publisherOf = async (m: MemberSpec, resource: string): Promise<PublisherSpec> => {
      await saveResource(db, { id: resource, name: `基准测试 ${resource}`, provider: m.id, schema: PERSON_SCHEMA, share: 'open' });
      const { subscription } = await subscribe(db, subscriber.row, { resource, delivery: 'pull' });
      subs.set(subscription.id, subscription);
      return { member: { id: m.id, key: m.key, alg: m.alg }, resource, sub: subscription.id };
    };
    const ecdsa: PublisherSpec[] = [];
    const sm2: PublisherSpec[] = [];
    for (let i = 1; i <= PUBLISHERS; i++) {
      ecdsa.push(await publisherOf(await memberOf('SZ-GA', `bench-ecdsa-${i}`, 'ecdsa-p256-sha256'), `bench.ecdsa-${i}`));
      sm2.push(await publisherOf(await memberOf('SZ-WJW', `bench-sm2-${i}`, 'sm2-sm3'), `bench.sm2-${i}`));
    }
    const lat = await publisherOf(await memberOf('SZ-GA', 'bench-latency', 'ecdsa-p256-sha256'), 'bench.latency');
    const inProcess = await publisherOf(await memberOf('SZ-GA', 'bench-profile', 'ecdsa-p256-sha256'), 'bench.profile');
    opts.log(`${PUBLISHERS} ECDSA P-256 and ${PUBLISHERS} SM2 publisher members, ${INFLIGHT} requests in flight each, ${BATCH} events a request over ${KEYS} ordering keys each; 1 consumer member pulling (max ${PULL_MAX}, long poll) and acknowledging`);

    // the baseline's table: one plain table, the same columns the node stores a message in
    await db.query('create schema if not exists bench');
    await db.query(`create table bench.exchange_baseline (seq bigint generated always as identity primary key, id text collate "C" not null, key text collate "C", digest char(64) collate "C" not null, event text not null)`);
    const rowsOf = (n: number, tag: string) => {
      const events = Array.from({ length: n }, (_, i) => sealEvent(personEvent(ecdsa[0]!.member.id, ecdsa[0]!.resource, `${tag}-${i}`, i % KEYS, i), 'ecdsa-p256-sha256'));
      return { ids: events.map((e) => e.id), keys: events.map((e) => e.gusukey ?? null), digests: events.map((e) => e.gusudigest), texts: events.map((e) => JSON.stringify(e)) };
    };
    const baselineBatch = rowsOf(BATCH, 'baseline');
    const insertBatch = (r: ReturnType<typeof rowsOf>) =>
      db.query<{ seq: number }>(`insert into bench.exchange_baseline (id, key, digest, event) select * from unnest($1::text[], $2::text[], $3::text[], $4::text[]) returning seq`, [r.ids, r.keys, r.digests, r.texts]);
    const cpu = await cpuMeter(db);
    const cpuLine = (a: CpuSample | undefined, b: CpuSample | undefined, s: number, per: number, size = BATCH) => {
      if (!a || !b) return '';
      const c = cpuShares(a, b, s);
      const ms = (x: number) => ((x / 100) * s * 1000) / per;
      return `; CPU, % of a core (ms per ${size}): node main thread ${c.main.toFixed(0)} % (${ms(c.main).toFixed(0)}), PostgreSQL ${c.pg.toFixed(0)} % (${ms(c.pg).toFixed(0)}), client worker and the rest of the process ${c.rest.toFixed(0)} % (${ms(c.rest).toFixed(0)})`;
    };
    /** `messages` rows in batches of BATCH, PUBLISHERS × INFLIGHT statements in flight */
    const baselineThroughput = async (messages: number): Promise<{ perS: number; cpu: string }> => {
      const batches = Math.ceil(messages / BATCH);
      let left = batches;
      const before = cpu?.();
      const b0 = performance.now();
      await Promise.all(
        Array.from({ length: PUBLISHERS * INFLIGHT }, async () => {
          while (left-- > 0) await insertBatch(baselineBatch);
        }),
      );
      const seconds = (performance.now() - b0) / 1000;
      return { perS: (batches * BATCH) / seconds, cpu: cpuLine(before, cpu?.(), seconds, batches) };
    };

    clients = await startClients({ url: bench.url, subscriber: { id: subscriber.id, key: subscriber.key, alg: subscriber.alg } });
    let tags = 0;
    const tag = (what: string) => `${what.replace(/[^A-Za-z0-9]+/g, '-')}-${++tags}-${crypto.randomBytes(3).toString('hex')}`;
    const ours = async (what: string, publishers: PublisherSpec[], mode: 'batch' | 'single', messages: number) => {
      let before: CpuSample | undefined;
      const r = await clients!.throughput({ cmd: 'throughput', tag: tag(what), mode, publishers, messages }, () => (before = cpu?.()));
      const after = cpu?.();
      const perS = r.messages / r.seconds;
      const pub = r.publishMs.sort();
      opts.log(
        `  ${what}: ${r.messages.toLocaleString('en')} messages published and acknowledged in ${r.seconds.toFixed(2)} s: ${Math.round(perS).toLocaleString('en')}/s ` +
          `(publish request p50 ${percentile(pub, 0.5).toFixed(0)} ms, ${r.pulls} pulls of ${Math.round(r.messages / Math.max(1, r.pulls))} on average; ` +
          `signing beforehand ${r.prepSeconds.toFixed(1)} s${cpuLine(before, after, r.seconds, r.messages / BATCH)})`,
      );
      return { perS, messages: r.messages };
    };

    // warm-up (connections, JIT, plans, caches), and the size of a round: about `seconds` of load
    opts.log('warm-up');
    const lanes = PUBLISHERS * BATCH;
    const sizeFor = (perS: number) => Math.min(400_000, Math.max(lanes * INFLIGHT, Math.round((perS * seconds) / lanes) * lanes));
    // --quick: one batch per publisher to warm up, and rounds of the smallest size
    const wE = await ours('warm-up ECDSA', ecdsa, 'batch', opts.quick ? lanes : 10_000);
    const wS = await ours('warm-up SM2', sm2, 'batch', opts.quick ? lanes : 5_000);
    const wB = await baselineThroughput(opts.quick ? 4_000 : 10_000);
    const nE = opts.quick ? sizeFor(0) : sizeFor(wE.perS);
    const nS = opts.quick ? sizeFor(0) : sizeFor(wS.perS);
    opts.log(`  warm-up baseline: ${Math.round(wB.perS).toLocaleString('en')} rows/s; rounds of ${nE.toLocaleString('en')} (ECDSA) and ${nS.toLocaleString('en')} (SM2) messages`);

    const results = { ecdsa: [] as number[], sm2: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      opts.log(`round ${i + 1} of ${rounds}`);
      const order = i % 2 ? (['ecdsa', 'sm2', 'baseline'] as const) : (['baseline', 'ecdsa', 'sm2'] as const);
      for (const who of order) {
        if (who === 'ecdsa') results.ecdsa.push((await ours('ECDSA P-256 batch-signed', ecdsa, 'batch', nE)).perS);
        else if (who === 'sm2') results.sm2.push((await ours('SM2 batch-signed', sm2, 'batch', nS)).perS);
        else {
          const b = await baselineThroughput(nE);
          results.baseline.push(b.perS);
          opts.log(`  baseline: ${nE.toLocaleString('en')} rows inserted with unnest, ${BATCH} a statement, ${PUBLISHERS * INFLIGHT} in flight: ${Math.round(b.perS).toLocaleString('en')} rows/s${b.cpu ? ` (${b.cpu.slice(2)})` : ''}`);
        }
      }
    }

    // SM2 with every message signed on its own: a short run
    opts.log('SM2, every message signed on its own (arrays of 500 signed events)');
    if (!opts.quick) await ours('warm-up SM2 per-message', sm2, 'single', lanes);
    const single = await ours('SM2 signed per message', sm2, 'single', opts.quick ? lanes : lanes * 6);

    // latency at a fixed offered load, ours and the baseline
    // the rounds above left their dead rows behind: vacuum now (untimed) rather than have autovacuum do it during the latency run
    for (const t of ['exchange.message', 'exchange.delivery', 'exchange.log_entry', 'bench.exchange_baseline']) await db.query(`vacuum analyze ${t}`);
    await db.query('checkpoint').catch(() => undefined); // superuser (or pg_checkpoint) only
    opts.log(`latency at ${(1000 * LATENCY_BATCH) / LATENCY_EVERY_MS} messages/s offered (a batch of ${LATENCY_BATCH} every ${LATENCY_EVERY_MS} ms, ECDSA batch-signed) for ${seconds} s`);
    const drainMs = opts.quick ? DRAIN_MS / 4 : DRAIN_MS;
    if (!opts.quick) await clients.latency({ cmd: 'latency', tag: tag('latency-warm-up'), publisher: lat, seconds: 1, drainMs });
    let lBefore: CpuSample | undefined;
    const l = await clients.latency({ cmd: 'latency', tag: tag('latency'), publisher: lat, seconds, drainMs }, () => (lBefore = cpu?.()));
    const lAfter = cpu?.();
    const lSorted = l.latencies.sort();
    const delivered = l.sent - l.undelivered;
    opts.log(
      `  ours: ${delivered.toLocaleString('en')} of ${l.sent.toLocaleString('en')} messages delivered at ${Math.round(delivered / l.seconds).toLocaleString('en')}/s, publish start to consumer: ` +
        `p50 ${percentile(lSorted, 0.5).toFixed(1)} ms, p99 ${percentile(lSorted, 0.99).toFixed(1)} ms, max ${lSorted.at(-1)!.toFixed(1)} ms (sends at most ${l.lateMs.toFixed(1)} ms behind schedule` +
        `${cpuLine(lBefore, lAfter, l.seconds, delivered / LATENCY_BATCH, LATENCY_BATCH)})`,
    );
    if (l.undelivered) {
      opts.log(`  ${l.undelivered.toLocaleString('en')} messages were not delivered within ${drainMs / 1000} s of the last publish: they count with the time they had waited, so the latency figures are lower bounds`);
    }
    const baseLat: number[] = [];
    {
      const count = Math.max(1, Math.round((seconds * 1000) / LATENCY_EVERY_MS));
      const batches = Array.from({ length: count }, (_, b) => rowsOf(LATENCY_BATCH, `baseline-latency-${b}`));
      const s0 = performance.now();
      const pending: Promise<void>[] = [];
      for (let b = 0; b < count; b++) {
        const due = s0 + b * LATENCY_EVERY_MS;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const a = performance.now();
        pending.push(
          (async () => {
            const { rows } = await insertBatch(batches[b]!);
            const got = await db.query<{ seq: number; event: string }>('select seq, event from bench.exchange_baseline where seq = any($1::bigint[]) order by seq', [rows.map((r) => r.seq)]);
            const ms = performance.now() - a;
            for (let i = 0; i < got.rows.length; i++) baseLat.push(ms);
          })(),
        );
      }
      await Promise.all(pending);
    }
    const bSorted = baseLat.sort((a, b) => a - b);
    opts.log(`  baseline: each batch of ${LATENCY_BATCH} inserted and selected back: p50 ${percentile(bSorted, 0.5).toFixed(1)} ms, p99 ${percentile(bSorted, 0.99).toFixed(1)} ms`);

    // where the time goes (1): one batch of 500 at a time through the node's functions in this process
    opts.log(`where the time goes: one batch of ${BATCH} at a time through publish(), pull() and ack() in this process, and a baseline insert of ${BATCH} rows`);
    const pubKey = await rt.caches.member(db, rt.trust, inProcess.member.id);
    if ('error' in pubKey) throw new Error(pubKey.error);
    const sub = subs.get(inProcess.sub)!;
    const steps = { verify: [] as number[], db: [] as number[], pull: [] as number[], ack: [] as number[], base: [] as number[], sm2verify: [] as number[] };
    const sm2Key = await rt.caches.member(db, rt.trust, sm2[0]!.member.id);
    if ('error' in sm2Key) throw new Error(sm2Key.error);
    const sm2Sub = subs.get(sm2[0]!.sub)!;
    const reps = opts.quick ? 2 : 10;
    const isolated = new Map<string, { n: number; ms: number }>();
    for (let i = 0; i < reps + 1; i++) {
      for (const [who, key, spec, s] of [
        ['ecdsa', pubKey, inProcess, sub],
        ['sm2', sm2Key, sm2[0]!, sm2Sub],
      ] as const) {
        const t = tag('in-process');
        const events = Array.from({ length: BATCH }, (_, k) => personEvent(spec.member.id, spec.resource, `${t}-${k}`, k % KEYS, k));
        // what the route hands publish(): the events as JSON.parse made them
        const input = JSON.parse(JSON.stringify(signBatch(events, spec.member.key, spec.member.alg))) as ReturnType<typeof signBatch>;
        profile.reset();
        profile.on = true;
        const p0 = performance.now();
        const r = await publish(rt, key, { events: input.events, batch: { header: input.header, proofs: input.proofs } });
        const total = performance.now() - p0;
        if (r.accepted !== BATCH) throw new Error(`in-process publish accepted ${r.accepted}`);
        const txMs = profile.stats.get('publish tx|(whole transaction)')?.ms ?? 0;
        const outside = [...profile.stats].filter(([k]) => k.startsWith('outside transactions|') && !k.includes('catalog arrival note')).reduce((a, [, v]) => a + v.ms, 0);
        const q0 = performance.now();
        const got = await pull(rt, s, BATCH, 0);
        const pullMs = performance.now() - q0;
        const a0 = performance.now();
        const acked = await ack(rt, s, got.map((g) => g.seq), subscriber.id);
        const ackMs = performance.now() - a0;
        if (got.length !== BATCH || acked !== BATCH) throw new Error(`in-process: pulled ${got.length}, acknowledged ${acked} of ${BATCH}`);
        profile.on = false;
        const b0 = performance.now();
        await insertBatch(baselineBatch);
        const baseMs = performance.now() - b0;
        if (i === 0) continue; // the first is a warm-up
        if (who === 'ecdsa') {
          for (const [k, v] of profile.stats) {
            const acc = isolated.get(k) ?? { n: 0, ms: 0 };
            acc.n += v.n;
            acc.ms += v.ms;
            isolated.set(k, acc);
          }
        }
        if (who === 'sm2') {
          steps.sm2verify.push(total - txMs - outside);
          continue;
        }
        steps.verify.push(total - txMs - outside);
        steps.db.push(txMs);
        steps.pull.push(pullMs);
        steps.ack.push(ackMs);
        steps.base.push(baseMs);
      }
    }
    profile.on = false;
    opts.log(
      `  per batch of ${BATCH} (medians of ${reps}): publish checks (parse, schema, digests, proofs, the batch signature, hashes, receipt) ${median(steps.verify).toFixed(1)} ms ECDSA, ` +
        `${median(steps.sm2verify).toFixed(1)} ms SM2; publish transaction ${median(steps.db).toFixed(1)} ms; pull ${median(steps.pull).toFixed(1)} ms; ack ${median(steps.ack).toFixed(1)} ms; ` +
        `baseline insert ${median(steps.base).toFixed(1)} ms`,
    );
    opts.log(`  the ECDSA transactions of those ${reps} batches, statement by statement:`);
    report(new Map([...isolated].filter(([k]) => !k.startsWith('outside'))), reps, opts.log);

    // where the time goes (2): every statement of every transaction during one throughput run (not with --quick)
    if (!opts.quick) {
      opts.log('where the time goes under load: a profiled ECDSA round (every statement on the node’s pool timed)');
      profile.reset();
      profile.on = true;
      const profiled = await ours('ECDSA P-256 batch-signed, profiled', ecdsa, 'batch', nE);
      profile.on = false;
      report(profile.stats, profiled.messages / BATCH, opts.log);
    }

    const msgs = median(results.ecdsa);
    const sm2PerS = median(results.sm2);
    const baseline = median(results.baseline);
    return {
      msgs_per_s: round(msgs),
      baseline_rows_per_s: round(baseline),
      msgs_ratio: round(msgs / baseline),
      sm2_msgs_per_s: round(sm2PerS),
      sm2_msgs_ratio: round(sm2PerS / baseline),
      sm2_single_msgs_per_s: round(single.perS),
      sm2_single_ratio: round(single.perS / baseline),
      p50_ms_at_1000: round(percentile(lSorted, 0.5)),
      p99_ms_at_1000: round(percentile(lSorted, 0.99)),
      baseline_p50_ms_at_1000: round(percentile(bSorted, 0.5)),
      baseline_p99_ms_at_1000: round(percentile(bSorted, 0.99)),
      verify_ms_per_batch: round(median(steps.verify)),
      sm2_verify_ms_per_batch: round(median(steps.sm2verify)),
      db_ms_per_batch: round(median(steps.db)),
      pull_ms_per_batch: round(median(steps.pull)),
      ack_ms_per_batch: round(median(steps.ack)),
      baseline_insert_ms_per_batch: round(median(steps.base)),
    };
  } finally {
    profile.on = false;
    profile.restore();
    await clients?.stop();
    await node.stop();
  }
}

// this module is also the exchange clients' worker (startClients)
if (!isMainThread && (workerData as Partial<ExchangeWorkerData> | null)?.gusuBench === EXCHANGE_WORKER) workerMain(workerData as ExchangeWorkerData);
