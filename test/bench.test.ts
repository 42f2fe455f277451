// The benchmark harness, in a reduced run: figures are checked for shape, never for speed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { createTestDatabase } from './support/db.ts';

const repo = path.resolve(import.meta.dirname, '..');

/** The figures line a scenario ends with, after checking it exited 0 and printed progress first. */
function lastFigures(r: { code: number; stdout: string; stderr: string }, scenario: string): Record<string, number> {
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.ok(lines.length > 1, 'progress lines come before the figures');
  const last = JSON.parse(lines.at(-1)!) as { scenario: string; figures: Record<string, number> };
  assert.equal(last.scenario, scenario);
  return last.figures;
}

function bench(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('an unknown scenario lists the known ones and exits 2', async () => {
  const r = await bench(['no-such-scenario'], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown scenario "no-such-scenario"/);
  assert.match(r.stderr, /^ {2}http {2}/m);
});

test('the http scenario ends with one JSON line of positive figures', async () => {
  // on the test server when there is one (no initdb to wait for), else embedded in a temporary directory
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['http', '--quick'], { BENCH_SECONDS: '1', BENCH_ROUNDS: '1', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { scenario: string; figures: Record<string, number> };
    assert.equal(last.scenario, 'http');
    const keys = ['home', 'healthz'].flatMap((e) => ['per_s', 'p50_ms', 'p99_ms', 'baseline_per_s', 'ratio'].map((f) => `${e}_${f}`));
    assert.deepEqual(Object.keys(last.figures).sort(), keys.sort());
    for (const k of keys) assert.ok(typeof last.figures[k] === 'number' && last.figures[k]! > 0, `${k} = ${last.figures[k]}`);
    assert.ok(lines.length > 1, 'progress lines come before the figures');
  } finally {
    await database?.drop();
  }
});

// The scenarios below take from 20 s to a minute each: their shape is checked in the embedded pass of
// CI only (it does not depend on the database); the http scenario above covers BENCH_DATABASE_URL.
const ONCE = { skip: process.env.TEST_DATABASE_URL ? 'shape checked in the embedded pass' : false };

test('the identity scenario: signatures, certificates, tokens and whole sign-ins, each figure positive', ONCE, async () => {
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['identity', '--quick'], { BENCH_SECONDS: '1', BENCH_ROUNDS: '1', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const figures = lastFigures(r, 'identity');
    const pairs = ['ecdsa_sign', 'ecdsa_verify', 'sm2_sign', 'sm2_verify', 'token_verify', 'bearer_verify'].flatMap((p) => ['per_s', 'baseline_per_s', 'ratio'].map((f) => `${p}_${f}`));
    const keys = [
      ...pairs,
      'sm2_verify_precomputed_baseline_per_s',
      'sm2_verify_fresh_key_per_s',
      'cert_verify_per_s',
      'cert_verify_ecdsa_per_s',
      ...['per_s', 'p50_ms', 'p99_ms', 'baseline_per_s', 'ratio'].map((f) => `signin_${f}`),
    ];
    assert.deepEqual(Object.keys(figures).sort(), keys.sort());
    for (const k of keys) assert.ok(typeof figures[k] === 'number' && Number.isFinite(figures[k]) && figures[k]! > 0, `${k} = ${figures[k]}`);
    assert.ok(figures.signin_p50_ms! <= figures.signin_p99_ms!, 'p50 ≤ p99');
    assert.match(r.stdout, /round 1 sign-in +[\d.]+\/s/, 'a progress line per sign-in round');
  } finally {
    await database?.drop();
  }
});

test('the notices scenario, reduced, ends with one JSON line of positive figures', ONCE, async () => {
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['notices', '--quick'], { BENCH_RESIDENTS: '3000', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    assert.equal(r.code, 0, r.stderr);
    const last = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!) as { scenario: string; figures: Record<string, number> };
    assert.equal(last.scenario, 'notices');
    const keys = ['recipients', 'deliveries_per_s', 'deliveries_baseline_per_s', 'deliveries_ratio', 'deliveries_seconds', 'deliveries_baseline_seconds', 'send_ms'];
    assert.deepEqual(Object.keys(last.figures).sort(), [...keys].sort());
    for (const k of keys) assert.ok(typeof last.figures[k] === 'number' && last.figures[k]! > 0, `${k} = ${last.figures[k]}`);
    assert.ok(last.figures.recipients! >= 3000, 'every resident got the notice');
  } finally {
    await database?.drop();
  }
});

test('the workflow scenario, reduced: instances and transitions per second beside plain row statements, each figure positive', ONCE, async () => {
  // on the test server when there is one (the scenario makes and drops its own database there), else embedded
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['workflow', '--quick'], { BENCH_SECONDS: '0.5', BENCH_ROUNDS: '1', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const figures = lastFigures(r, 'workflow');
    const keys = ['instances_per_s', 'instances_baseline_per_s', 'instances_ratio', 'transitions_per_s', 'transition_p50_ms', 'transition_p99_ms', 'baseline_updates_per_s', 'transition_ratio'];
    assert.deepEqual(Object.keys(figures).sort(), [...keys].sort());
    for (const k of keys) assert.ok(typeof figures[k] === 'number' && Number.isFinite(figures[k]) && figures[k]! > 0, `${k} = ${figures[k]}`);
    assert.ok(figures.transition_p50_ms! <= figures.transition_p99_ms!, 'p50 ≤ p99');
    assert.match(r.stdout, /round 1: \d+ instances\/s/, 'a progress line per round');
  } finally {
    await database?.drop();
  }
});

test('the exchange scenario, reduced: signed messages end to end and latency at a fixed load, beside plain inserts, each figure positive', ONCE, async () => {
  // on the test server when there is one (the scenario makes and drops its own database there), else embedded
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['exchange', '--quick'], { BENCH_SECONDS: '1', BENCH_ROUNDS: '1', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const figures = lastFigures(r, 'exchange');
    const keys = [
      ...['msgs_per_s', 'baseline_rows_per_s', 'msgs_ratio', 'sm2_msgs_per_s', 'sm2_msgs_ratio', 'sm2_single_msgs_per_s', 'sm2_single_ratio'],
      ...['p50_ms_at_1000', 'p99_ms_at_1000', 'baseline_p50_ms_at_1000', 'baseline_p99_ms_at_1000'],
      ...['verify_ms_per_batch', 'sm2_verify_ms_per_batch', 'db_ms_per_batch', 'pull_ms_per_batch', 'ack_ms_per_batch', 'baseline_insert_ms_per_batch'],
    ];
    assert.deepEqual(Object.keys(figures).sort(), [...keys].sort());
    for (const k of keys) assert.ok(typeof figures[k] === 'number' && Number.isFinite(figures[k]) && figures[k]! > 0, `${k} = ${figures[k]}`);
    assert.ok(figures.p50_ms_at_1000! <= figures.p99_ms_at_1000!, 'p50 ≤ p99');
    assert.match(r.stdout, /ECDSA P-256 batch-signed: [\d,]+ messages published and acknowledged/, 'a progress line per run');
  } finally {
    await database?.drop();
  }
});

test('the catalog scenario, reduced: search queries per second beside a primary-key lookup, each figure positive', ONCE, async () => {
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['catalog', '--quick'], { BENCH_SECONDS: '0.5', BENCH_ROUNDS: '1', BENCH_CATALOG_ENTRIES: '5000', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const figures = lastFigures(r, 'catalog');
    const classes = ['exact', 'provider', 'missing', 'extra', 'typo', 'rare', 'common', 'nofacets', 'first_page', 'deep_page'].flatMap((c) => [`${c}_per_s`, `${c}_p99_ms`]);
    const keys = [
      ...['entries', 'search_per_s', 'search_p50_ms', 'search_p99_ms', 'baseline_lookup_per_s', 'baseline_lookup_p99_ms', 'search_ratio', 'baseline_name_per_s', 'baseline_name_p99_ms'],
      ...classes,
      'facets_ratio',
      'deep_page_ratio',
    ];
    assert.deepEqual(Object.keys(figures).sort(), [...keys].sort());
    for (const k of keys) assert.ok(typeof figures[k] === 'number' && Number.isFinite(figures[k]) && figures[k]! > 0, `${k} = ${figures[k]}`);
    assert.equal(figures.entries, 5000);
    assert.ok(figures.search_p50_ms! <= figures.search_p99_ms!, 'p50 ≤ p99');
    assert.match(r.stdout, /round 1: search mix [\d.]+\/s/, 'a progress line per round');
  } finally {
    await database?.drop();
  }
});

test('the population scenario, reduced: source records fused per second and golden-record lookups beside COPY and a primary-key select, each figure positive', ONCE, async () => {
  const database = process.env.TEST_DATABASE_URL ? await createTestDatabase() : null;
  try {
    const r = await bench(['population', '--quick'], { BENCH_PERSONS: '2000', BENCH_SECONDS: '0.5', BENCH_ROUNDS: '1', ...(database ? { BENCH_DATABASE_URL: database.url } : {}) });
    const figures = lastFigures(r, 'population');
    const headline = ['fused_per_s', 'fused_ratio', 'lookups_per_s', 'lookup_p99_ms', 'lookup_ratio'];
    const keys = [
      ...headline,
      ...['persons', 'source_records', 'load_fused_per_s', 'mix_fused_per_s', 'baseline_copy_per_s', 'lookup_p50_ms', 'baseline_lookups_per_s', 'baseline_lookup_p99_ms'],
      ...['batched_lookups_per_s', 'batched_lookup_p99_ms', 'wal_bytes_per_record', 'baseline_wal_bytes_per_record'],
      // CPU by party: read from /proc, where the embedded server always is
      ...['node_cpu_ms_per_batch', 'pg_cpu_ms_per_batch', 'baseline_node_cpu_ms_per_batch', 'baseline_pg_cpu_ms_per_batch'],
    ];
    assert.deepEqual(Object.keys(figures).sort(), [...keys].sort());
    for (const k of keys) assert.ok(typeof figures[k] === 'number' && Number.isFinite(figures[k]) && figures[k]! > 0, `${k} = ${figures[k]}`);
    assert.equal(figures.persons, 2000);
    assert.ok(figures.source_records! > 2 * 2000, 'the 户籍 load and the other departments’ records');
    assert.ok(figures.lookup_p50_ms! <= figures.lookup_p99_ms!, 'p50 ≤ p99');
    assert.match(r.stdout, /checked: 2,000 golden records/, 'the results were checked');
  } finally {
    await database?.drop();
  }
});
