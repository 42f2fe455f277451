// `npm run bench -- NAME [--quick]`: runs one benchmark scenario, prints progress lines and, as its
// last line, one JSON object {"scenario": NAME, "figures": {...}} for scripts to pick up.
// BENCH_SECONDS and BENCH_ROUNDS shorten or lengthen a run; BENCH_DATABASE_URL measures against a
// PostgreSQL server instead of the embedded one.
import { parseArgs } from 'node:util';
import type { BenchOptions, Figures, ScenarioModule } from './support.ts';

const SCENARIOS: Record<string, { summary: string; load: () => Promise<ScenarioModule> }> = {
  http: { summary: 'requests/s and latency of /healthz and the portal home page, against a bare node:http server sending the same bytes', load: () => import('./http.ts') },
  identity: { summary: 'signatures and verifications/s for ECDSA P-256 and SM2, token verifications/s and full OIDC sign-ins/s, each beside the raw library call; certificate verifications through the CA', load: () => import('./identity.ts') },
  notices: { summary: 'mailbox deliveries/s of one notice to a segment of 1,000,000 residents through the background job path, beside a COPY of the same rows', load: () => import('./notices.ts') },
  exchange: { summary: 'signed messages/s end to end (publish, durable, delivered, acknowledged) and p50/p99 latency at a fixed offered load, ECDSA and SM2 batch-signed, beside the same rows inserted into one table in the same batch sizes', load: () => import('./exchange.ts') },
  workflow: { summary: 'process instances started and task completions (transitions)/s with latency, beside plain row inserts and updates at the same concurrency', load: () => import('./workflow.ts') },
  catalog: { summary: 'catalog search queries/s and p99 over 100,000 synthetic entries (a mix of Chinese queries: exact, filtered, a character missing, extra or wrong, rare, common, deep page), beside a primary-key lookup at the same concurrency', load: () => import('./catalog.ts') },
  population: { summary: 'source records fused/s into the population registry (户籍 load, then eight departments\' updates) and golden-record lookups/s by ID number with p99, beside COPY of the same rows and a primary-key select, with CPU and time per statement', load: () => import('./population.ts') },
};

class UsageError extends Error {}

function envNumber(name: string, integer: boolean): number | null {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`${name}=${JSON.stringify(raw)}: expected a ${integer ? 'whole ' : ''}number above 0`);
  return n;
}

function known(): string {
  const width = Math.max(...Object.keys(SCENARIOS).map((k) => k.length));
  return ['scenarios:', ...Object.entries(SCENARIOS).map(([k, s]) => `  ${k.padEnd(width)}  ${s.summary}`)].join('\n') + '\n';
}

const FIGURE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

async function main(argv: string[]): Promise<number> {
  let name: string | undefined;
  let opts: BenchOptions;
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { quick: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1) throw new UsageError('expects one scenario NAME');
    name = positionals[0]!;
    if (!Object.hasOwn(SCENARIOS, name)) throw new UsageError(`unknown scenario ${JSON.stringify(name)}`);
    opts = {
      quick: values.quick ?? false,
      seconds: envNumber('BENCH_SECONDS', false),
      rounds: envNumber('BENCH_ROUNDS', true),
      log: (msg) => process.stdout.write(`[bench ${name}] ${msg}\n`),
    };
  } catch (err) {
    if (!(err instanceof UsageError) && !(err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) throw err;
    process.stderr.write(`bench: ${(err as Error).message}\nusage: npm run bench -- NAME [--quick]\n${known()}`);
    return 2;
  }
  const t0 = Date.now();
  let figures: Figures;
  try {
    figures = await (await SCENARIOS[name]!.load()).run(opts);
  } catch (err) {
    process.stderr.write(`bench ${name}: ${(err as Error).message}\n`);
    if (process.env.LOG_LEVEL === 'debug') process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
  for (const [k, v] of Object.entries(figures)) {
    if (!FIGURE.test(k) || typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`scenario ${name} reported a bad figure ${k}=${String(v)}`);
  }
  opts.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(JSON.stringify({ scenario: name, figures }) + '\n');
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
