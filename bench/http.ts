// The `http` scenario: how fast the whole platform answers /healthz and the portal home page, and
// how that compares with the fastest Node can possibly send the same bytes — a bare node:http
// server replaying our captured responses. The ratio is what our stack (Fastify, hooks, rendering)
// costs; the absolute figures say as much about the machine as about us.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { load, median, round, startBenchPlatform, type BenchOptions, type Figures, type LoadResult } from './support.ts';

const CONNECTIONS = 32;

const ENDPOINTS = [
  { name: 'home', path: '/', headers: { accept: 'text/html,application/xhtml+xml', 'accept-language': 'zh-CN,zh;q=0.9' } },
  { name: 'healthz', path: '/healthz', headers: {} },
] as const;

interface Captured {
  body: Buffer;
  headers: Record<string, string>;
}

// the baseline server writes these itself
const OWN_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

async function capture(url: string, headers: Record<string, string>): Promise<Captured> {
  const res = await fetch(url, { headers: { ...headers, 'accept-encoding': 'identity' } });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: nothing to measure`);
  const body = Buffer.from(await res.arrayBuffer());
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (!OWN_HEADERS.has(name)) out[name] = value;
  });
  out['content-length'] = String(body.length);
  return { body, headers: out };
}

async function startBaseline(responses: Map<string, Captured>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const r = responses.get(req.url ?? '');
    if (!r) return void res.writeHead(404).end();
    res.writeHead(200, r.headers);
    res.end(r.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const describe = (r: LoadResult) => `${Math.round(r.perS)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`;

export async function run(opts: BenchOptions): Promise<Figures> {
  const seconds = opts.seconds ?? (opts.quick ? 2 : 10);
  const rounds = opts.rounds ?? 3;
  const warmup = Math.min(seconds / 2, 2);

  opts.log(`starting the platform (${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'})`);
  const t0 = Date.now();
  const bench = await startBenchPlatform();
  opts.log(`platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${bench.url}`);
  try {
    const captured = new Map<string, Captured>();
    for (const e of ENDPOINTS) captured.set(e.path, await capture(bench.url + e.path, e.headers));
    const baseline = await startBaseline(captured);
    try {
      const figures: Figures = {};
      for (const e of ENDPOINTS) {
        const targets = { ours: bench.url + e.path, baseline: baseline.url + e.path };
        opts.log(`${e.name} (GET ${e.path}, ${captured.get(e.path)!.body.length} bytes): warming up, then ${rounds} rounds of ${seconds} s each at ${CONNECTIONS} connections`);
        for (const url of Object.values(targets)) await load(url, { connections: CONNECTIONS, seconds: warmup, headers: e.headers });
        const results: Record<'ours' | 'baseline', LoadResult[]> = { ours: [], baseline: [] };
        for (let i = 0; i < rounds; i++) {
          // alternate which goes first, so a drift in the machine's speed favours neither
          const order = i % 2 ? (['baseline', 'ours'] as const) : (['ours', 'baseline'] as const);
          for (const who of order) {
            const r = await load(targets[who], { connections: CONNECTIONS, seconds, headers: e.headers });
            results[who].push(r);
            opts.log(`  round ${i + 1} ${who.padEnd(8)} ${describe(r)}`);
          }
        }
        const ours = median(results.ours.map((r) => r.perS));
        const base = median(results.baseline.map((r) => r.perS));
        figures[`${e.name}_per_s`] = round(ours);
        figures[`${e.name}_p50_ms`] = round(median(results.ours.map((r) => r.p50Ms)));
        figures[`${e.name}_p99_ms`] = round(median(results.ours.map((r) => r.p99Ms)));
        figures[`${e.name}_baseline_per_s`] = round(base);
        figures[`${e.name}_ratio`] = round(ours / base);
      }
      return figures;
    } finally {
      await baseline.close();
    }
  } finally {
    await bench.stop();
  }
}
