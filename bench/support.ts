// What every benchmark scenario shares: the options it runs with, a whole platform to measure,
// HTTP load from a worker thread, and medians.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/index.ts';
import { startPlatform, type Platform } from '../src/main.ts';
import pg from 'pg';
import { createDb, startEmbedded, type Db } from '../src/db/index.ts';

export interface BenchOptions {
  quick: boolean;
  /** seconds of load per measurement (BENCH_SECONDS overrides the scenario's default) */
  seconds: number | null;
  /** measurement rounds (BENCH_ROUNDS overrides the scenario's default) */
  rounds: number | null;
  /** a progress line for the person watching */
  log: (msg: string) => void;
}

/** figures: a flat object of numbers, snake_case, the unit in the name (_per_s, _ms, _ratio) */
export type Figures = Record<string, number>;

/** what a scenario module exports */
export interface ScenarioModule {
  run(opts: BenchOptions): Promise<Figures>;
}

export interface BenchPlatform {
  platform: Platform;
  url: string;
  stop(): Promise<void>;
}

/**
 * The whole platform as `gusu serve` runs it, on BENCH_DATABASE_URL if set, else on an embedded
 * server in a temporary data directory; a small demo city; no logging.
 */
export async function startBenchPlatform(env: Record<string, string> = {}): Promise<BenchPlatform> {
  const databaseUrl = process.env.BENCH_DATABASE_URL;
  let dataDir: string | null = null;
  if (!databaseUrl) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-'));
    fs.chmodSync(dataDir, 0o755); // the embedded server runs as the postgres user when we are root
  }
  const config = loadConfig({
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { GUSU_DATA_DIR: dataDir! }),
    PORT: '0',
    LOG_LEVEL: 'silent',
    GUSU_DEMO_RESIDENTS: '1000',
    GUSU_DEMO_ENTERPRISES: '200',
    // the registries' background bridge would run its statements in the middle of the measurements
    GUSU_REGISTRY_BRIDGE_MS: '0',
    ...env,
  });
  try {
    const platform = await startPlatform(config);
    return {
      platform,
      url: platform.listeners[0]!.url,
      async stop() {
        await platform.close();
        if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

export interface LoadResult {
  /** 2xx responses per second */
  perS: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
}

// autocannon runs in a worker thread so that the server measured has the main thread to itself.
// It records latency in whole milliseconds; the worker keeps every 2xx response's exact time instead.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const autocannon = require(workerData.autocannon);
let lat = new Float64Array(1 << 16);
let n = 0;
const instance = autocannon(
  { url: workerData.url, connections: workerData.connections, duration: workerData.seconds, headers: workerData.headers },
  (err, r) => {
    if (err) return parentPort.postMessage({ error: String(err.message || err) });
    const latencies = lat.slice(0, n);
    parentPort.postMessage({ duration: r.duration, ok: r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, latencies }, [latencies.buffer]);
  },
);
instance.on('response', (_client, status, _bytes, ms) => {
  if (status < 200 || status > 299) return;
  if (n === lat.length) { const grown = new Float64Array(n * 2); grown.set(lat); lat = grown; }
  lat[n++] = ms;
});
`;

interface WorkerResult {
  error?: string;
  duration: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencies: Float64Array;
}

/** The value at fraction p (0–1) of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Keeps `connections` requests in flight against url for `seconds`; every response must be 2xx. */
export async function load(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url).resolve('autocannon');
  const worker = new Worker(WORKER, {
    eval: true,
    execArgv: [],
    workerData: { autocannon, url, connections: opts.connections, seconds: opts.seconds, headers: opts.headers ?? {} },
  });
  const r = await new Promise<WorkerResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the load worker exited (code ${code}) without a result`)));
  });
  await worker.terminate();
  if (r.error) throw new Error(`load on ${url}: ${r.error}`);
  const failed = r.non2xx + r.errors + r.timeouts;
  if (failed || !r.ok) throw new Error(`load on ${url}: ${r.ok} responses were 2xx, ${r.non2xx} were not, ${r.errors} errors, ${r.timeouts} timeouts`);
  const sorted = r.latencies.sort();
  return { perS: r.ok / r.duration, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), ok: r.ok };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Rounds a figure for reading: whole numbers from 100 up, three significant digits below. */
export function round(x: number): number {
  return Math.abs(x) >= 100 ? Math.round(x) : Number(x.toPrecision(3));
}

export interface BenchDb {
  db: Db;
  stop(): Promise<void>;
}

/** A fresh database: on BENCH_DATABASE_URL's server if set (created and dropped), else an embedded server in `dir`. */
export async function benchDatabase(dir: string, opts: { scenario: string; max: number }): Promise<BenchDb> {
  const server = process.env.BENCH_DATABASE_URL;
  if (server) {
    const name = `gusu_bench_${opts.scenario.replace(/\W/g, '_')}_${crypto.randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const u = new URL(server);
    u.pathname = `/${name}`;
    const db = createDb(u.toString(), { max: opts.max, applicationName: 'gusu-bench' });
    return {
      db,
      async stop() {
        await db.close();
        const c = new pg.Client({ connectionString: server });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  }
  const embedded = await startEmbedded(dir);
  const db = createDb(embedded.url, { max: opts.max, applicationName: 'gusu-bench' });
  return {
    db,
    async stop() {
      await db.close();
      await embedded.stop();
    },
  };
}
