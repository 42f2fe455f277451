// The `population` scenario: the 人口基础数据库 fused by the one fusion engine
// (src/base/registries/fusion/engine.ts, `ingest`) on PostgreSQL — embedded in a temporary directory,
// or a fresh database on BENCH_DATABASE_URL's server (made and dropped) — with the platform's and the
// fusion module's migrations and the registry definition of profiles/suzhou/registries/population.json.
//
//   workload   N synthetic persons of the demo generator (200,000; --quick 20,000; BENCH_PERSONS),
//              then their source records: first the public-security 户籍 load (one record each),
//              then the update mix of the other departments (social insurance for 60 %, marriage
//              30 %, real estate 40 %, mobile numbers 50 % (2 % of them without recorded consent:
//              refused), family planning 25 %, subsistence 2 %, community correction 0.3 %, deaths
//              1 % (health, half of them also civil affairs), 户籍 moves 2 %; 3 % of the insurance
//              records carry a name that differs from public security's). Each source's records go in
//              batches of BATCH, one `ingest` call (one transaction) a batch, INFLIGHT calls at once,
//              the sources' batches interleaved.
//   fused/s    source records through ingest (validated, linked on the ID number, folded by the
//              survivorship rules, stored with the golden records, conflicts and life events in the
//              outbox) per second, over the whole run, and for the load and the mix apart.
//   baseline   in the same run, before each phase, on the same database: COPY of the same source
//              rows (source, record id, key, observed time, the record's JSON) into a plain table
//              without indexes, in the same batches, INFLIGHT at once.
//   lookups/s  `getGolden` of random existing ID numbers, LOOKUP_CLIENTS in flight, beside a
//              primary-key select of the same golden records copied into a plain table keyed by ID
//              number, alternating, in rounds.
//   where the time goes
//              CPU of this process and of PostgreSQL (Linux /proc) per batch in every phase, WAL
//              bytes per record, and every statement of every ingest transaction timed (the pool's
//              client wrapped), with the node's own work between statements (mapping and checks
//              before the transaction, the fold between the lock and the upsert).
//
// Correctness is checked while it runs and after: every 户籍 batch creates one golden record per
// record, the number of golden records is N, refused records are exactly those without consent, the
// conflicts, life events and deceased counts are what the mix implies, and a sample of persons have
// public security's name, the insurer's employer, their marriage, death, move and mobile number: a
// wrong result fails the run instead of reporting a figure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { DEFAULT_PROFILE_DIR, loadCityProfile } from '../src/config/profile.ts';
import { migrate, readMigrations, type Db, type Queryable } from '../src/db/index.ts';
import { copyRows } from '../src/db/copy.ts';
import { generateEnterprises, generateResidents, mulberry32 } from '../src/demo/generator.ts';
import { fusionModule, getGolden, ingest as platformIngest, loadRegistry, type CompiledRegistry, type Golden, type IngestResult } from '../src/base/registries/fusion/index.ts';
import { migrationSources } from '../src/main.ts';
import { benchDatabase, median, percentile, round, type BenchOptions, type Figures } from './support.ts';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${JSON.stringify(raw)}: expected a whole number above 0`);
  return n;
}

/** records per ingest call (and per baseline COPY) */
const BATCH = envInt('BENCH_POPULATION_BATCH', 5_000);
/** ingest calls (and COPYs) in flight */
const INFLIGHT = envInt('BENCH_POPULATION_INFLIGHT', 3);
/**
 * by key: each batch split by a hash of its keys into INFLIGHT parts, part j always fused by the
 * j-th of the calls in flight (a fusion queue partitioned by key: no two transactions wait for each
 * other's golden rows)
 */
const BY_KEY = process.env.BENCH_POPULATION_BY_KEY === '1';
/** lookups in flight */
const LOOKUP_CLIENTS = envInt('BENCH_POPULATION_LOOKUP_CLIENTS', 8);
const SAMPLE = 500;
const REGISTRY = 'population';

// ---------------------------------------------------------------------------------------------
// the workload

type Rec = Record<string, unknown>;

interface Person {
  id: string;
  name: string;
  division: string;
}

interface Expect {
  /** per sampled person: what the golden record must say */
  employer?: string;
  spouse?: string;
  deathDate?: string;
  moveTo?: string;
  mobile?: string;
}

interface Workload {
  persons: Person[];
  /** the 户籍 load, one record per person */
  load: Rec[];
  /** source -> its records of the update mix */
  mix: Map<string, Rec[]>;
  expect: Map<number, Expect>;
  counts: { refused: number; conflicts: number; deaths: number; marriages: number; moves: number };
}

const day = (rnd: () => number, from: number, to: number) => {
  const y = from + Math.floor(rnd() * (to - from + 1));
  return `${y}-${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`;
};

/** a name one character off (a typo at the source): the given name's last character changed */
function variant(name: string, rnd: () => number): string {
  const chars = '伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰';
  let c = chars[Math.floor(rnd() * chars.length)]!;
  if (c === name.at(-1)) c = name.at(-1) === '伟' ? '芳' : '伟';
  return name.slice(0, -1) + c;
}

export function workload(n: number): Workload {
  const profile = loadCityProfile(DEFAULT_PROFILE_DIR);
  const employers = Array.from(generateEnterprises(profile, { seed: 20261128, count: 2_000 }), (e) => e.name);
  const persons: Person[] = [];
  const load: Rec[] = [];
  const addresses: string[] = [];
  let i = 0;
  for (const r of generateResidents(profile, { seed: 20261128, count: n })) {
    const rnd = mulberry32(i * 7919 + 17);
    persons.push({ id: r.idNumber, name: r.name, division: r.countyCode });
    addresses.push(r.address);
    load.push({
      recordId: `GA-${String(i).padStart(9, '0')}`,
      idNumber: r.idNumber,
      name: r.name,
      sex: r.sex,
      ethnicity: r.ethnicity,
      birthDate: r.birthDate,
      householdAddress: r.address,
      householdNo: `${r.communityCode ?? r.countyCode}${String(i % 9973).padStart(5, '0')}`,
      divisionCode: r.countyCode,
      change: 'registered',
      changeDate: day(rnd, 2000, 2020),
    });
    i++;
  }
  const divisions = [...new Set(persons.map((p) => p.division))].sort();
  const mix = new Map<string, Rec[]>();
  const add = (source: string, rec: Rec) => {
    let list = mix.get(source);
    if (!list) mix.set(source, (list = []));
    list.push(rec);
  };
  const expect = new Map<number, Expect>();
  const counts = { refused: 0, conflicts: 0, deaths: 0, marriages: 0, moves: 0 };
  const sampleEvery = Math.max(1, Math.floor(n / SAMPLE));
  persons.forEach((p, k) => {
    const rnd = mulberry32(k * 104729 + 3);
    const e: Expect = {};
    const no = String(k).padStart(9, '0');
    if (rnd() < 0.6) {
      const employer = employers[Math.floor(rnd() * employers.length)]!;
      const conflicting = rnd() < 0.03;
      if (conflicting) counts.conflicts++;
      add('rs-insurance', { recordNo: `RS-${no}`, idNumber: p.id, name: conflicting ? variant(p.name, rnd) : p.name, employer, insured: true, changeDate: day(rnd, 2021, 2024) });
      e.employer = employer;
    }
    if (rnd() < 0.3) {
      const spouse = persons[(k + 1) % persons.length]!.id;
      add('mz-marriage', { certificateNo: `J-${no}`, idNumber: p.id, kind: 'marriage', date: day(rnd, 2005, 2024), spouseIdNumber: spouse, name: p.name });
      counts.marriages++;
      e.spouse = spouse;
    }
    if (rnd() < 0.4) add('zrgh-property', { certificateNo: `BDC-${no}`, idNumber: p.id, owns: true, registeredDate: day(rnd, 2003, 2024) });
    if (rnd() < 0.5) {
      const phone = `1${String(30 + Math.floor(rnd() * 60))}${String(Math.floor(rnd() * 1e8)).padStart(8, '0')}`;
      const consent = rnd() >= 0.02;
      add('txyy-mobile', { recordNo: `YD-${no}`, idNumber: p.id, mobile: phone, consent, verifiedAt: `${day(rnd, 2022, 2024)}T10:00:00+08:00` });
      if (consent) e.mobile = phone;
      else counts.refused++;
    }
    if (rnd() < 0.25) add('wjw-family', { recordNo: `JS-${no}`, idNumber: p.id, children: 1 + Math.floor(rnd() * 3), registeredDate: day(rnd, 2000, 2024) });
    if (rnd() < 0.02) add('mz-subsistence', { caseNo: `DB-${no}`, idNumber: p.id, active: true, approvedDate: day(rnd, 2015, 2024) });
    if (rnd() < 0.003) add('sf-correction', { caseNo: `JZ-${no}`, idNumber: p.id, active: true, startDate: day(rnd, 2018, 2024) });
    if (rnd() < 0.02) {
      // a move within the city: a later 户籍 record with another division and address
      let to = divisions[Math.floor(rnd() * divisions.length)]!;
      if (to === p.division) to = divisions[(divisions.indexOf(to) + 1) % divisions.length]!;
      if (to !== p.division) {
        add('ga-hukou', { ...load[k]!, recordId: `GA-${no}-M`, householdAddress: `${addresses[k]}（迁入${to}）`, divisionCode: to, change: 'address', changeDate: day(rnd, 2024, 2024) });
        counts.moves++;
        e.moveTo = to;
      }
    }
    if (rnd() < 0.01) {
      // after every other record's date: death is the last change
      const deathDate = day(rnd, 2025, 2025);
      add('wjw-death', { certificateNo: `SW-${no}`, idNumber: p.id, deathDate });
      if (rnd() < 0.5) add('mz-death', { recordNo: `BZ-${no}`, idNumber: p.id, deathDate });
      counts.deaths++;
      e.deathDate = deathDate;
    }
    if (k % sampleEvery === 0) expect.set(k, e);
  });
  return { persons, load, mix, expect, counts };
}

interface Batch {
  source: string;
  records: Rec[];
}

function batches(source: string, records: Rec[]): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < records.length; i += BATCH) out.push({ source, records: records.slice(i, i + BATCH) });
  return out;
}

/** the sources' batches taken in turn (as they arrive from several departments at once) */
function interleave(lists: Batch[][]): Batch[] {
  const out: Batch[] = [];
  for (let k = 0; lists.some((l) => k < l.length); k++) for (const l of lists) if (k < l.length) out.push(l[k]!);
  return out;
}

function keyHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Runs each batch through fn, INFLIGHT at once (BY_KEY: each batch's part j by the j-th); returns the seconds taken. */
async function pump(list: Batch[], fn: (b: Batch) => Promise<void>, keyOf?: (b: Batch) => (r: Rec) => string): Promise<number> {
  const t0 = performance.now();
  if (BY_KEY && keyOf) {
    const parts = list.map((b) => {
      const key = keyOf(b);
      const out: Batch[] = Array.from({ length: INFLIGHT }, () => ({ source: b.source, records: [] }));
      for (const r of b.records) out[keyHash(key(r)) % INFLIGHT]!.records.push(r);
      return out;
    });
    await Promise.all(
      Array.from({ length: INFLIGHT }, async (_, j) => {
        for (const p of parts) if (p[j]!.records.length) await fn(p[j]!);
      }),
    );
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        for (let k = next++; k < list.length; k = next++) await fn(list[k]!);
      }),
    );
  }
  return (performance.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------
// where the time goes: statements and the node's work between them, CPU by party, WAL

interface Timing {
  n: number;
  ms: number;
}

class Profile {
  readonly by = new Map<string, Timing>();
  add(label: string, ms: number): void {
    const t = this.by.get(label);
    if (t) {
      t.n++;
      t.ms += ms;
    } else this.by.set(label, { n: 1, ms });
  }
  reset(): void {
    this.by.clear();
  }
}

function statementLabel(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim().toLowerCase();
  const ins = /^insert into ([\w.]+)/.exec(s);
  if (ins) return `insert ${ins[1]}${s.includes('on conflict') && s.includes('do update') ? ' (upsert)' : ''}`;
  if (s.startsWith('select') && s.includes('for update')) return `select … for update (${/from ([\w.]+)/.exec(s)?.[1] ?? '?'})`;
  return s.split(' ')[0]!;
}

/**
 * `db.tx` as the platform has it, with every statement of the transaction timed, and the node's
 * own work between two statements (from one's answer to the next one's start) noted against the
 * statement it prepared. `mapStart` (set just before each ingest call) gives the mapping and checks
 * the engine does before it asks for a transaction.
 */
function profiledTx(db: Db, prof: Profile) {
  return (mapStart: number) => ({
    async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const entered = performance.now();
      prof.add('node: map and check the records (before the transaction)', entered - mapStart);
      const client = await db.pool.connect();
      let last = performance.now();
      prof.add('wait for a connection', last - entered);
      const q: Queryable = {
        async query(text: string, values?: unknown[]) {
          const label = statementLabel(text);
          const a = performance.now();
          prof.add(`node: before ${label}`, a - last);
          try {
            return await (client as pg.PoolClient).query(text, values);
          } finally {
            last = performance.now();
            prof.add(label, last - a);
          }
        },
      } as Queryable;
      try {
        await client.query('begin');
        last = performance.now();
        const result = await fn(q);
        const a = performance.now();
        prof.add('node: after the last statement (results)', a - last);
        await client.query('commit');
        prof.add('commit', performance.now() - a);
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  });
}

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
  node: number;
  pg: Map<number, number>;
}

/** CPU ticks of this process and of the PostgreSQL server's processes (this database's backends and the server's own), or null when PostgreSQL is not visible in /proc */
async function cpuMeter(db: Db): Promise<(() => CpuSample) | null> {
  if (!fs.existsSync('/proc/self/stat')) return null;
  const { rows } = await db.query<{ pid: number; db: string }>('select pg_backend_pid() as pid, current_database() as db');
  const backend = statTicks(`/proc/${rows[0]!.pid}/stat`);
  if (!backend) return null;
  const postmaster = backend.ppid;
  const dbName = rows[0]!.db;
  return () => {
    const pgTicks = new Map<number, number>();
    const own = statTicks(`/proc/${postmaster}/stat`);
    if (own) pgTicks.set(postmaster, own.ticks);
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
      const client = /^postgres: \S+ (\S+) [\d.:[\]a-f]+\(\d+\)/.exec(cmd);
      if (client && client[1] !== dbName) continue;
      pgTicks.set(Number(pid), st.ticks);
    }
    return { node: statTicks('/proc/self/stat')?.ticks ?? 0, pg: pgTicks };
  };
}

/** CPU milliseconds of each party between two samples */
function cpuMs(a: CpuSample, b: CpuSample): { node: number; pg: number } {
  let t = 0;
  for (const [pid, v] of b.pg) t += v - (a.pg.get(pid) ?? 0);
  return { node: ((b.node - a.node) * 1000) / HZ, pg: (t * 1000) / HZ };
}

async function walLsn(db: Db): Promise<bigint> {
  const { rows } = await db.query<{ b: string }>(`select (pg_current_wal_lsn() - '0/0'::pg_lsn)::text as b`);
  return BigInt(rows[0]!.b.split('.')[0]!);
}

interface Phase {
  records: number;
  batches: number;
  seconds: number;
  cpu: { node: number; pg: number } | null;
  walBytes: number;
}

// ---------------------------------------------------------------------------------------------

/** Runs `op` from LOOKUP_CLIENTS clients at once for `seconds`. */
async function drive(seconds: number, op: () => Promise<void>): Promise<{ perS: number; n: number; sorted: number[] }> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: LOOKUP_CLIENTS }, async () => {
      while (performance.now() < end) {
        const a = performance.now();
        await op();
        latencies.push(performance.now() - a);
      }
    }),
  );
  return { perS: latencies.length / ((performance.now() - t0) / 1000), n: latencies.length, sorted: latencies.sort((a, b) => a - b) };
}

class WrongResult extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new WrongResult(what);
}

const fmt = (x: number) => Math.round(x).toLocaleString('en');
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

export async function run(opts: BenchOptions): Promise<Figures> {
  const n = envInt('BENCH_PERSONS', opts.quick ? 20_000 : 200_000);
  const seconds = opts.seconds ?? (opts.quick ? 2 : 5);
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-population-'));
  fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
  opts.log(
    `${process.env.BENCH_DATABASE_URL ? 'a fresh database on BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}, ${fmt(n)} persons` +
      `${opts.quick ? ' (--quick: 20,000 instead of 200,000)' : ''}, batches of ${fmt(BATCH)}, ${INFLIGHT} in flight; lookups ${LOOKUP_CLIENTS} in flight, ${seconds} s a measurement, ${rounds} round(s)`,
  );
  const bench = await benchDatabase(path.join(dir, 'db'), { scenario: 'population', max: Math.max(INFLIGHT, LOOKUP_CLIENTS) + 1 });
  try {
    const db = bench.db;
    await migrate(db, readMigrations(migrationSources([fusionModule])));
    const reg: CompiledRegistry = loadRegistry(DEFAULT_PROFILE_DIR, REGISTRY);
    await db.query(`create schema bench`);
    await db.query(`create table bench.source_copy (registry text collate "C" not null, source text collate "C" not null, record_id text not null, key text collate "C", observed_at timestamptz, received_at timestamptz not null, data jsonb not null)`);

    let t = performance.now();
    const w = workload(n);
    const mixLists = [...w.mix.entries()].map(([s, rs]) => batches(s, rs));
    const loadBatches = batches('ga-hukou', w.load);
    const mixBatches = interleave(mixLists);
    const mixRecords = mixBatches.reduce((a, b) => a + b.records.length, 0);
    opts.log(
      `generated ${fmt(n)} persons and ${fmt(n + mixRecords)} source records in ${((performance.now() - t) / 1000).toFixed(1)} s: 户籍 load ${fmt(n)} (${loadBatches.length} batches), ` +
        `then ${fmt(mixRecords)} (${mixBatches.length} batches): ${[...w.mix.entries()].map(([s, rs]) => `${s} ${fmt(rs.length)}`).join(', ')}`,
    );

    const cpu = await cpuMeter(db);
    if (!cpu) opts.log('PostgreSQL is not visible in /proc (another machine or a container): no CPU split');
    const keyOf = (b: Batch) => {
      const k = reg.sources.get(b.source)!.key!;
      return (r: Rec) => String(r[k]);
    };
    const measure = async (records: number, list: Batch[], fn: (b: Batch) => Promise<void>, byKey = false): Promise<Phase> => {
      await db.query('checkpoint').catch(() => undefined); // each phase starts without the previous one's dirty pages
      const wal0 = await walLsn(db);
      const c0 = cpu?.();
      const s = await pump(list, fn, byKey ? keyOf : undefined);
      const c1 = cpu?.();
      const wal1 = await walLsn(db);
      return { records, batches: list.length, seconds: s, cpu: c0 && c1 ? cpuMs(c0, c1) : null, walBytes: Number(wal1 - wal0) };
    };
    const describe = (p: Phase) =>
      `${fmt(p.records / p.seconds)} records/s (${fmt(p.records)} in ${p.seconds.toFixed(1)} s), WAL ${fmt(p.walBytes / p.records)} bytes a record` +
      (p.cpu ? `; CPU per ${fmt(BATCH)} records: node ${fmt((p.cpu.node * BATCH) / p.records)} ms, PostgreSQL ${fmt((p.cpu.pg * BATCH) / p.records)} ms (${fmt((100 * p.cpu.node) / 1000 / p.seconds)} % / ${fmt((100 * p.cpu.pg) / 1000 / p.seconds)} % of a core)` : '');

    // the baseline: COPY of the same rows in the same batches
    const srcOf = (s: string) => reg.sources.get(s)!;
    const copyBatch = async (b: Batch) => {
      const src = srcOf(b.source);
      const now = new Date();
      const client = await db.pool.connect();
      try {
        await copyRows(
          client,
          'bench.source_copy',
          ['registry', 'source', 'record_id', 'key', 'observed_at', 'received_at', 'data'],
          b.records.map((r) => {
            const o = src.observedAt ? r[src.observedAt] : undefined;
            return [REGISTRY, b.source, String(r[src.recordId]), src.key ? r[src.key] : null, typeof o === 'string' ? (o.length === 10 ? `${o}T00:00:00+08:00` : o) : now, now, r];
          }),
        );
      } finally {
        client.release();
      }
    };

    // BENCH_POPULATION_ENGINE: another engine module with the same ingest (to measure a change to it)
    const ingest: typeof platformIngest = process.env.BENCH_POPULATION_ENGINE ? (await import(path.resolve(process.env.BENCH_POPULATION_ENGINE))).ingest : platformIngest;
    if (process.env.BENCH_POPULATION_ENGINE) opts.log(`ingest from ${process.env.BENCH_POPULATION_ENGINE}`);
    if (BY_KEY) opts.log(`by key: each batch split in ${INFLIGHT} by a hash of the ID number, part j fused by the j-th call in flight`);
    const prof = new Profile();
    const txFor = profiledTx(db, prof);
    const results = { created: 0, updated: 0, accepted: 0, refused: 0, conflicts: 0, events: 0 };
    const fuse = (phase: 'load' | 'mix') => async (b: Batch) => {
      const t0 = performance.now();
      const r: IngestResult = await ingest(txFor(t0), reg, b.source, b.records);
      if (phase === 'load') check(r.created === b.records.length && r.rejected.length === 0, `a 户籍 batch of ${b.records.length} created ${r.created} golden records and refused ${r.rejected.length} (${r.rejected[0]?.reason ?? ''})`);
      if (r.rejected.length && !(b.source === 'txyy-mobile' && r.rejected.every((x) => /consent/.test(x.reason)))) throw new WrongResult(`${b.source}: refused ${r.rejected.length}, e.g. ${r.rejected[0]!.reason}`);
      check(r.unlinked === 0, `${b.source}: ${r.unlinked} records without a key`);
      results.created += r.created;
      results.updated += r.updated;
      results.accepted += r.accepted;
      results.refused += r.rejected.length;
      results.conflicts += r.conflicts;
      results.events += r.events;
    };

    const profileLines = (p: Phase) => {
      const rows = [...prof.by.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const total = rows.reduce((a, [, v]) => a + v.ms, 0);
      const per = p.records / BATCH;
      opts.log(`  time per ${fmt(BATCH)} records (wall, ${INFLIGHT} in flight: waits for the CPU and for locks included; ${p.batches} batches), ${fmt(total / per)} ms in all:`);
      for (const [label, v] of rows) opts.log(`    ${ms(v.ms / per).padStart(8)} ms  ${((100 * v.ms) / total).toFixed(1).padStart(5)} %  ${label}${v.n !== p.batches ? ` (${v.n} times)` : ''}`);
      return Object.fromEntries(rows.map(([k, v]) => [k, v.ms / per]));
    };

    // phase 1: the 户籍 load
    const bLoad = await measure(n, loadBatches, copyBatch);
    opts.log(`baseline, 户籍 load: COPY ${describe(bLoad)}`);
    const fLoad = await measure(n, loadBatches, fuse('load'), true);
    opts.log(`fused, 户籍 load: ${describe(fLoad)}`);
    const loadProfile = profileLines(fLoad);
    const { rows: gc } = await db.query<{ n: number }>(`select count(*)::int as n from fusion.golden where registry = $1`, [REGISTRY]);
    check(gc[0]!.n === n, `${gc[0]!.n} golden records after the 户籍 load of ${n} persons`);

    // phase 2: the other departments
    prof.reset();
    const bMix = await measure(mixRecords, mixBatches, copyBatch);
    opts.log(`baseline, update mix: COPY ${describe(bMix)}`);
    const fMix = await measure(mixRecords, mixBatches, fuse('mix'), true);
    opts.log(`fused, update mix: ${describe(fMix)}; ${fmt(results.updated)} golden records changed, ${fmt(results.conflicts)} conflicts, ${fmt(results.events)} life events, ${fmt(results.refused)} refused`);
    const mixProfile = profileLines(fMix);

    // correctness: counts, then a sample of persons
    t = performance.now();
    const q1 = async (sql: string, params: unknown[] = []) => Number(Object.values((await db.query(sql, params)).rows[0]!)[0]);
    check((await q1(`select count(*) from fusion.golden where registry = $1`, [REGISTRY])) === n, 'the number of golden records is not the number of persons');
    check(results.refused === w.counts.refused && (await q1(`select count(*) from fusion.rejected where registry = $1`, [REGISTRY])) === w.counts.refused, `refused ${results.refused}, expected the ${w.counts.refused} mobile records without consent`);
    check((await q1(`select count(*) from fusion.source_record where registry = $1`, [REGISTRY])) === n + mixRecords - w.counts.refused, 'source records stored: not every accepted record');
    check(results.conflicts === w.counts.conflicts && (await q1(`select count(*) from fusion.conflict where registry = $1 and field = 'name'`, [REGISTRY])) === w.counts.conflicts, `${results.conflicts} name conflicts, expected ${w.counts.conflicts}`);
    check((await q1(`select count(*) from fusion.golden where registry = $1 and record->'status'->>'v' = 'deceased'`, [REGISTRY])) === w.counts.deaths, `deceased: expected ${w.counts.deaths}`);
    const { rows: ev } = await db.query<{ type: string; n: number }>(`select type, count(*)::int as n from fusion.event where registry = $1 group by type`, [REGISTRY]);
    const events = Object.fromEntries(ev.map((r) => [r.type, r.n]));
    check(events.death === w.counts.deaths && events.marriage === w.counts.marriages && events.move === w.counts.moves && ev.length === 3, `life events ${JSON.stringify(events)}, expected ${w.counts.deaths} deaths, ${w.counts.marriages} marriages, ${w.counts.moves} moves`);
    for (const [k, e] of w.expect) {
      const p = w.persons[k]!;
      const g = (await getGolden(db, reg, p.id))?.record;
      check(!!g, `no golden record for person ${k}`);
      const v = (f: string) => g![f]?.v;
      const who = `person ${k} (${p.id})`;
      check(v('name') === p.name && g!.name!.s === 'ga-hukou', `${who}: name ${String(v('name'))} from ${g!.name?.s}, not public security's ${p.name}`);
      check(v('employer') === e.employer, `${who}: employer ${String(v('employer'))}, expected ${String(e.employer)}`);
      check(v('spouseIdNumber') === e.spouse && v('maritalStatus') === (e.spouse ? 'married' : undefined), `${who}: marriage`);
      check(v('status') === (e.deathDate ? 'deceased' : 'registered') && v('deathDate') === e.deathDate, `${who}: status ${String(v('status'))}, death ${String(v('deathDate'))}, expected ${e.deathDate ?? 'alive'}`);
      check(v('divisionCode') === (e.moveTo ?? p.division), `${who}: division ${String(v('divisionCode'))}`);
      check(v('mobile') === e.mobile, `${who}: mobile ${String(v('mobile'))}, expected ${String(e.mobile)}`);
    }
    opts.log(`checked: ${fmt(n)} golden records, ${fmt(w.counts.refused)} refused (no consent), ${fmt(w.counts.conflicts)} name conflicts, life events ${JSON.stringify(events)}, and ${w.expect.size} sampled persons field by field (${((performance.now() - t) / 1000).toFixed(1)} s)`);

    // lookups: getGolden beside a primary-key select of the same records in a plain table
    await db.query(`create table bench.golden_copy (key text collate "C" primary key, record jsonb not null)`);
    await db.query(`insert into bench.golden_copy select key, record from fusion.golden where registry = $1`, [REGISTRY]);
    await db.query('vacuum analyze fusion.golden');
    await db.query('vacuum analyze bench.golden_copy');
    const { rows: sizes } = await db.query<{ golden: number; copy: number; avg: number }>(
      `select pg_total_relation_size('fusion.golden')::float8 as golden, pg_total_relation_size('bench.golden_copy')::float8 as copy, (select avg(pg_column_size(record)) from fusion.golden)::float8 as avg`,
    );
    opts.log(`golden records: ${fmt(sizes[0]!.avg)} bytes each stored (jsonb), fusion.golden ${fmt(sizes[0]!.golden / 1e6)} MB with its index, the copy ${fmt(sizes[0]!.copy / 1e6)} MB`);
    const pick = mulberry32(99);
    const lookup = async () => {
      const p = w.persons[Math.floor(pick() * n)]!;
      const g = await getGolden(db, reg, p.id);
      if (!g || g.record.idNumber?.v !== p.id || g.record.name?.v !== p.name) throw new WrongResult(`getGolden(${p.id}) answered ${JSON.stringify(g?.record.idNumber)}`);
    };
    const baseLookup = async () => {
      const p = w.persons[Math.floor(pick() * n)]!;
      const { rows } = await db.query<{ record: Golden }>('select record from bench.golden_copy where key = $1', [p.id]);
      if (rows[0]?.record.idNumber?.v !== p.id) throw new WrongResult(`the copy has no ${p.id}`);
    };
    // a proposal measured: the lookups that wait at the same moment answered by one statement
    // (`key = any($2)`), as a DataLoader does; the same concurrency
    let waiting: { key: string; resolve: (g: Golden | null) => void; reject: (e: unknown) => void }[] = [];
    let statements = 0;
    const flush = () => {
      const these = waiting;
      waiting = [];
      statements++;
      db.query<{ key: string; record: Golden }>('select key, record, version, created_at, updated_at from fusion.golden where registry = $1 and key = any($2::text[])', [REGISTRY, these.map((x) => x.key)]).then(
        ({ rows }) => {
          const by = new Map(rows.map((r) => [r.key, r.record]));
          for (const x of these) x.resolve(by.get(x.key) ?? null);
        },
        (err) => these.forEach((x) => x.reject(err)),
      );
    };
    const batchedGet = (key: string) =>
      new Promise<Golden | null>((resolve, reject) => {
        if (!waiting.length) setImmediate(flush);
        waiting.push({ key, resolve, reject });
      });
    const batchedLookup = async () => {
      const p = w.persons[Math.floor(pick() * n)]!;
      const g = await batchedGet(p.id);
      if (!g || g.idNumber?.v !== p.id || g.name?.v !== p.name) throw new WrongResult(`batched lookup of ${p.id} answered ${JSON.stringify(g?.idNumber)}`);
    };
    await drive(Math.min(1, seconds / 2), lookup);
    await drive(Math.min(1, seconds / 2), baseLookup);
    const res = { ours: [] as number[], base: [] as number[] };
    const lat: number[] = [];
    const baseLat: number[] = [];
    let lookCpu = { node: 0, pg: 0, n: 0 };
    let baseCpu = { node: 0, pg: 0, n: 0 };
    for (let i = 0; i < rounds; i++) {
      const first = i % 2 === 0;
      const one = async (fn: () => Promise<void>) => {
        const c0 = cpu?.();
        const r = await drive(seconds, fn);
        const c1 = cpu?.();
        return { r, c: c0 && c1 ? cpuMs(c0, c1) : null };
      };
      const a = first ? await one(baseLookup) : null;
      const o = await one(lookup);
      const b = a ?? (await one(baseLookup));
      res.ours.push(o.r.perS);
      res.base.push(b.r.perS);
      lat.push(...o.r.sorted);
      baseLat.push(...b.r.sorted);
      if (o.c) lookCpu = { node: lookCpu.node + o.c.node, pg: lookCpu.pg + o.c.pg, n: lookCpu.n + o.r.n };
      if (b.c) baseCpu = { node: baseCpu.node + b.c.node, pg: baseCpu.pg + b.c.pg, n: baseCpu.n + b.r.n };
      opts.log(
        `round ${i + 1}: getGolden ${fmt(o.r.perS)}/s (p50 ${ms(percentile(o.r.sorted, 0.5))} ms, p99 ${ms(percentile(o.r.sorted, 0.99))} ms), primary-key select ${fmt(b.r.perS)}/s (p99 ${ms(percentile(b.r.sorted, 0.99))} ms)` +
          (o.c && b.c ? `; CPU µs a lookup: node ${fmt((1000 * o.c.node) / o.r.n)} / ${fmt((1000 * b.c.node) / b.r.n)}, PostgreSQL ${fmt((1000 * o.c.pg) / o.r.n)} / ${fmt((1000 * b.c.pg) / b.r.n)}` : ''),
      );
    }
    lat.sort((x, y) => x - y);
    baseLat.sort((x, y) => x - y);
    await drive(Math.min(1, seconds / 2), batchedLookup);
    statements = 0;
    const batched = await drive(seconds, batchedLookup);
    opts.log(`lookups waiting at the same moment answered by one statement (key = any($2)), ${LOOKUP_CLIENTS} in flight: ${fmt(batched.perS)}/s (p50 ${ms(percentile(batched.sorted, 0.5))} ms, p99 ${ms(percentile(batched.sorted, 0.99))} ms), ${(batched.n / Math.max(1, statements)).toFixed(1)} lookups a statement`);

    const fusedS = fLoad.seconds + fMix.seconds;
    const baseS = bLoad.seconds + bMix.seconds;
    const total = n + mixRecords;
    const lookups = median(res.ours);
    const baseLookups = median(res.base);
    const figures: Figures = {
      persons: n,
      source_records: total,
      fused_per_s: round(total / fusedS),
      load_fused_per_s: round(n / fLoad.seconds),
      mix_fused_per_s: round(mixRecords / fMix.seconds),
      baseline_copy_per_s: round(total / baseS),
      fused_ratio: round(total / fusedS / (total / baseS)),
      lookups_per_s: round(lookups),
      lookup_p50_ms: round(percentile(lat, 0.5)),
      lookup_p99_ms: round(percentile(lat, 0.99)),
      baseline_lookups_per_s: round(baseLookups),
      baseline_lookup_p99_ms: round(percentile(baseLat, 0.99)),
      lookup_ratio: round(lookups / baseLookups),
      batched_lookups_per_s: round(batched.perS),
      batched_lookup_p99_ms: round(percentile(batched.sorted, 0.99)),
      wal_bytes_per_record: round((fLoad.walBytes + fMix.walBytes) / total),
      baseline_wal_bytes_per_record: round((bLoad.walBytes + bMix.walBytes) / total),
    };
    // CPU per batch of BATCH records (the mix's last batch of each source is partial: counted by records)
    const perBatch = total / BATCH;
    if (fLoad.cpu && fMix.cpu && bLoad.cpu && bMix.cpu) {
      figures.node_cpu_ms_per_batch = round((fLoad.cpu.node + fMix.cpu.node) / perBatch);
      figures.pg_cpu_ms_per_batch = round((fLoad.cpu.pg + fMix.cpu.pg) / perBatch);
      figures.baseline_node_cpu_ms_per_batch = round((bLoad.cpu.node + bMix.cpu.node) / perBatch);
      figures.baseline_pg_cpu_ms_per_batch = round((bLoad.cpu.pg + bMix.cpu.pg) / perBatch);
    }
    void loadProfile;
    void mixProfile;
    return figures;
  } finally {
    await bench.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
