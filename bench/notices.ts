// The `notices` scenario: one notice to a segment of every resident of a city of 1,000,000
// synthetic residents (--quick: 100,000), delivered to their mailboxes in the background through
// the real path — the send (template, segment count, rate limits, audit), the plan job, the chunk
// jobs run by the platform's own worker (GUSU_JOB_CONCURRENCY), counters — timed from the send to
// the notice's `done`. Beside it, in the same run and database: the same number of rows with the
// same columns written by COPY FROM STDIN into an equivalent table (same primary key, indexes and
// checks: CREATE TABLE ... (LIKE messaging.delivery INCLUDING ALL)), the fastest way PostgreSQL
// takes rows from a client.
//
// BENCH_ROUNDS rounds (3; --quick: 1), ours and the baseline alternating which goes first; the
// figures are medians. Both write into tables without those rows (the notice's deliveries are
// deleted after each round, untimed): the first mass notice of a city, not the millionth.
//
// deliveries_ratio = deliveries_per_s / deliveries_baseline_per_s: 1 means the mailbox fan-out is
// as fast as a bare COPY of its rows; closer to 1 (or above) is better.
import { copyRows } from '../src/db/copy.ts';
import { submitNotice } from '../src/base/messaging/index.ts';
import { median, round, startBenchPlatform, type BenchOptions, type Figures } from './support.ts';

const DEPARTMENT = 'SZ-MZ';

export async function run(opts: BenchOptions): Promise<Figures> {
  // BENCH_RESIDENTS: another city size (the reduced run in test/bench.test.ts uses a few thousand)
  const residents = process.env.BENCH_RESIDENTS ? Number(process.env.BENCH_RESIDENTS) : opts.quick ? 100_000 : 1_000_000;
  if (!Number.isInteger(residents) || residents < 100 || residents > 20_000_000) throw new Error(`BENCH_RESIDENTS=${process.env.BENCH_RESIDENTS}: expected a whole number from 100 to 20,000,000`);
  opts.log(`starting the platform with ${residents.toLocaleString('en')} synthetic residents (${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'})`);
  const t0 = Date.now();
  const bench = await startBenchPlatform({ GUSU_DEMO_RESIDENTS: String(residents), GUSU_DEMO_ENTERPRISES: '100', GUSU_NOTICE_RECIPIENTS_PER_DAY: '100000000', GUSU_NOTICE_RATE_PER_HOUR: '1000' });
  const { db } = bench.platform.ctx;
  opts.log(`platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s; job concurrency ${bench.platform.config.jobConcurrency}, chunks of ${bench.platform.config.messaging.chunkSize.toLocaleString('en')}`);
  try {
    // the demo's own notices first, so that they do not run during the measurement
    await waitForIdle(db, 120_000);
    await db.query('vacuum analyze population.person');
    const { rows: count } = await db.query<{ n: number }>('select count(*)::int as n from population.person');
    const n = count[0]!.n;

    const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
    const { rows: ids } = await db.query<{ id_number: string }>('select id_number from population.person order by id_number');
    await db.query('create schema if not exists bench');

    // baseline: the same rows by COPY into an equivalent table, from ID numbers already in memory
    const baselineRun = async (): Promise<number> => {
      await db.query('drop table if exists bench.delivery_baseline');
      await db.query('create table bench.delivery_baseline (like messaging.delivery including all)');
      await db.query('checkpoint');
      const b0 = performance.now();
      await db.tx(async (c) => {
        const now = new Date().toISOString();
        function* rows() {
          for (const r of ids) yield [1, 'mailbox', `p:${r.id_number}`, 'delivered', now];
        }
        await copyRows(c, 'bench.delivery_baseline', ['notice_id', 'channel', 'recipient', 'status', 'delivered_at'], rows());
      });
      const seconds = (performance.now() - b0) / 1000;
      await db.query('drop table bench.delivery_baseline');
      opts.log(`baseline: COPY of ${n.toLocaleString('en')} rows in ${seconds.toFixed(2)} s, ${Math.round(n / seconds).toLocaleString('en')} rows/s`);
      return seconds;
    };

    // ours: a segment of every resident, through the send and the background jobs
    const sendMs: number[] = [];
    const oursRun = async (): Promise<number> => {
      await db.query('checkpoint');
      const s0 = performance.now();
      const sent = await db.tx((c) =>
        submitNotice(c, { department: DEPARTMENT, kind: 'system', id: 'bench' }, { template: 'elderly-allowance-reminder', vars: { deadline: '2099年12月31日' }, audience: { kind: 'segment' } }),
      );
      sendMs.push(performance.now() - s0);
      let reported = -1;
      for (;;) {
        const { rows } = await db.query<{ status: string; delivered: number; chunks_done: number; chunks_total: number | null }>('select status, delivered, chunks_done, chunks_total from messaging.notice where id = $1', [sent.id]);
        const r = rows[0]!;
        if (r.status === 'done') break;
        if (r.chunks_total && r.chunks_done >= reported + Math.max(1, Math.ceil(r.chunks_total / 4))) {
          opts.log(`  ${r.delivered.toLocaleString('en')} delivered, chunk ${r.chunks_done}/${r.chunks_total}`);
          reported = r.chunks_done;
        }
        if (performance.now() - s0 > 30 * 60_000) throw new Error('the notice did not finish within 30 minutes');
        await new Promise((res) => setTimeout(res, 50));
      }
      const seconds = (performance.now() - s0) / 1000;
      const { rows: check } = await db.query<{ n: number; d: number }>(`select count(*)::int as n, count(distinct recipient)::int as d from messaging.delivery where notice_id = $1`, [sent.id]);
      if (check[0]!.n !== n || check[0]!.d !== n || sent.recipients !== n) throw new Error(`expected ${n} deliveries, found ${check[0]!.n} (${check[0]!.d} distinct; the send counted ${sent.recipients})`);
      opts.log(`ours: ${n.toLocaleString('en')} mailbox deliveries in ${seconds.toFixed(2)} s (the send answered in ${sendMs.at(-1)!.toFixed(0)} ms), ${Math.round(n / seconds).toLocaleString('en')}/s`);
      // the next round starts from the same state: this notice's rows go (not timed)
      await db.query('delete from messaging.delivery where notice_id = $1', [sent.id]);
      await db.query('vacuum messaging.delivery');
      return seconds;
    };

    const times: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] };
    for (let i = 0; i < rounds; i++) {
      opts.log(`round ${i + 1} of ${rounds}: ${n.toLocaleString('en')} recipients`);
      // alternate which goes first, so that a drift in the machine's speed favours neither
      for (const who of i % 2 ? (['ours', 'baseline'] as const) : (['baseline', 'ours'] as const)) times[who].push(who === 'ours' ? await oursRun() : await baselineRun());
    }
    const oursS = median(times.ours);
    const baselineS = median(times.baseline);
    const ours = n / oursS;
    const baseline = n / baselineS;
    return {
      recipients: n,
      deliveries_per_s: round(ours),
      deliveries_baseline_per_s: round(baseline),
      deliveries_ratio: round(ours / baseline),
      deliveries_seconds: round(oursS),
      deliveries_baseline_seconds: round(baselineS),
      send_ms: round(median(sendMs)),
    };
  } finally {
    await bench.stop();
  }
}

/** Waits until no messaging job is queued or running. */
async function waitForIdle(db: { query: (sql: string) => Promise<{ rows: { n: number }[] }> }, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const { rows } = await db.query(`select count(*)::int as n from platform.job where kind like 'messaging.%' and status in ('queued', 'running')`);
    if (rows[0]!.n === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}
