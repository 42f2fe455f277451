// The `identity` scenario: signatures and verifications per second for ECDSA P-256 and SM2 through
// our crypto layer (src/base/identity/crypto), each beside the raw library call measured in the same
// run — node:crypto for ECDSA, sm-crypto-v2 (the SM2 library most Chinese web systems use) for SM2 —
// and whole certificate verifications through the CA (chain leaf → issuing → root, validity, and the
// revocation lookup in PostgreSQL). One core, a 450-byte message, as in shared/design/FACTS.md.
//
// Then the sign-in side, against the whole platform as `gusu serve` runs it: token verifications (an
// ID token of our provider through the provider's own check, beside jose.jwtVerify with the same key;
// a bearer access token through the actor resolver, beside oidc-provider's lookup alone) and complete
// OpenID Connect sign-ins per second over HTTP — authorization request with PKCE, our login page,
// a resident's password, the code exchanged with openid-client — driven from a worker thread, beside
// the scrypt call that dominates a sign-in, at the same concurrency.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { FastifyRequest } from 'fastify';
import { jwtVerify } from 'jose';
import * as oidcClient from 'openid-client';
import { sm2 as smV2 } from 'sm-crypto-v2';
import { DEFAULT_PROFILE_DIR, loadCityProfile } from '../src/config/profile.ts';
import { migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { auditModule } from '../src/base/audit/index.ts';
import { exportSm2Hex, generateKeyPair, sign, verify, type Alg } from '../src/base/identity/crypto/index.ts';
import { caModule, initCa, issueCertificate, loadMasterKey, verifyCertificate, type CaContext } from '../src/base/identity/ca/index.ts';
import { AccountError, findAccountByLogin, getOidc, PLATFORM_SCOPES, registerCitizen, registerClient, setPassword } from '../src/base/identity/index.ts';
import { DEFAULT_PARAMS } from '../src/base/identity/accounts/passwords.ts';
import { publicJwks } from '../src/base/identity/oidc/secrets.ts';
import { actorFromBearer } from '../src/base/identity/sessions/resolver.ts';
import { benchDatabase, median, percentile, round, startBenchPlatform, type BenchOptions, type BenchPlatform, type Figures } from './support.ts';

/** operations per second of a synchronous call, timed over `seconds` */
function rate(fn: () => void, seconds: number): number {
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let n = 0;
  let now = t0;
  while (now < end) {
    for (let i = 0; i < 8; i++) fn();
    n += 8;
    now = performance.now();
  }
  return n / ((now - t0) / 1000);
}

/** operations per second of an async call kept `concurrency` deep, over `seconds` */
async function rateAsync(fn: () => Promise<void>, seconds: number, concurrency: number): Promise<number> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

interface Pair {
  name: string;
  ours: () => void;
  baseline: () => void;
}

/** Alternates ours and the baseline within each round (a drift in the machine favours neither); medians of the rounds. */
function measurePairs(pairs: Pair[], seconds: number, rounds: number, log: (m: string) => void): Figures {
  const figures: Figures = {};
  for (const p of pairs) {
    p.ours();
    p.baseline();
    rate(p.ours, Math.min(0.5, seconds / 2));
    rate(p.baseline, Math.min(0.5, seconds / 2));
    const r: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] };
    for (let i = 0; i < rounds; i++) {
      // each round interleaves the two in quarter slices: a burst of load elsewhere hits both
      const sum = { ours: 0, baseline: 0 };
      for (let j = 0; j < 4; j++) {
        const order = (i + j) % 2 ? (['baseline', 'ours'] as const) : (['ours', 'baseline'] as const);
        for (const who of order) sum[who] += rate(p[who], seconds / 4) / 4;
      }
      r.ours.push(sum.ours);
      r.baseline.push(sum.baseline);
    }
    const ours = median(r.ours);
    const base = median(r.baseline);
    log(`  ${p.name.padEnd(22)} ours ${Math.round(ours)}/s, baseline ${Math.round(base)}/s, ratio ${(ours / base).toFixed(2)}`);
    figures[`${p.name}_per_s`] = round(ours);
    figures[`${p.name}_baseline_per_s`] = round(base);
    figures[`${p.name}_ratio`] = round(ours / base);
  }
  return figures;
}

interface AsyncPair {
  name: string;
  ours: () => Promise<void>;
  baseline: () => Promise<void>;
}

/** measurePairs for async calls, each kept `concurrency` deep. */
async function measureAsyncPairs(pairs: AsyncPair[], seconds: number, rounds: number, concurrency: number, log: (m: string) => void): Promise<Figures> {
  const figures: Figures = {};
  for (const p of pairs) {
    await rateAsync(p.ours, Math.min(0.5, seconds / 2), concurrency);
    await rateAsync(p.baseline, Math.min(0.5, seconds / 2), concurrency);
    const r: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] };
    for (let i = 0; i < rounds; i++) {
      const sum = { ours: 0, baseline: 0 };
      for (let j = 0; j < 4; j++) {
        const order = (i + j) % 2 ? (['baseline', 'ours'] as const) : (['ours', 'baseline'] as const);
        for (const who of order) sum[who] += (await rateAsync(p[who], seconds / 4, concurrency)) / 4;
      }
      r.ours.push(sum.ours);
      r.baseline.push(sum.baseline);
    }
    const ours = median(r.ours);
    const base = median(r.baseline);
    log(`  ${p.name.padEnd(22)} ours ${Math.round(ours)}/s, baseline ${Math.round(base)}/s, ratio ${(ours / base).toFixed(2)}`);
    figures[`${p.name}_per_s`] = round(ours);
    figures[`${p.name}_baseline_per_s`] = round(base);
    figures[`${p.name}_ratio`] = round(ours / base);
  }
  return figures;
}

export async function run(opts: BenchOptions): Promise<Figures> {
  const seconds = opts.seconds ?? (opts.quick ? 1 : 3);
  const rounds = opts.rounds ?? 3;
  const message = crypto.randomBytes(450);
  const figures: Figures = {};

  // --- ECDSA P-256: our layer vs node:crypto with a ready KeyObject
  const ec = generateKeyPair('ecdsa-p256-sha256');
  const ecPrivate = crypto.createPrivateKey(ec.privateKey);
  const ecPublic = crypto.createPublicKey(ec.publicKey);
  const ecSig = sign('ecdsa-p256-sha256', ec.privateKey, message);
  // --- SM2: our layer vs sm-crypto-v2 with the same key as hex
  const gm = generateKeyPair('sm2-sm3');
  const gmHex = exportSm2Hex(gm.privateKey);
  const gmSig = sign('sm2-sm3', gm.privateKey, message);
  const gmSigHex = gmSig.toString('hex');
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${what} did not verify: nothing to measure`);
  };
  check(verify('sm2-sm3', gm.publicKey, message, gmSig) && smV2.doVerifySignature(message, gmSigHex, gmHex.publicKey, { der: true, hash: true }), 'the SM2 signature');

  opts.log(`signatures over a ${message.length}-byte message: warming up, then ${rounds} rounds of ${seconds} s per measurement`);
  Object.assign(
    figures,
    measurePairs(
      [
        { name: 'ecdsa_sign', ours: () => void sign('ecdsa-p256-sha256', ec.privateKey, message), baseline: () => void crypto.sign('sha256', message, ecPrivate) },
        { name: 'ecdsa_verify', ours: () => check(verify('ecdsa-p256-sha256', ec.publicKey, message, ecSig), 'ecdsa'), baseline: () => check(crypto.verify('sha256', message, ecPublic, ecSig), 'ecdsa') },
        {
          name: 'sm2_sign',
          ours: () => void sign('sm2-sm3', gm.privateKey, message),
          baseline: () => void smV2.doSignature(message, gmHex.privateKey, { der: true, hash: true, publicKey: gmHex.publicKey }),
        },
        {
          name: 'sm2_verify',
          ours: () => check(verify('sm2-sm3', gm.publicKey, message, gmSig), 'sm2'),
          baseline: () => check(smV2.doVerifySignature(message, gmSigHex, gmHex.publicKey, { der: true, hash: true }), 'sm2'),
        },
      ],
      seconds,
      rounds,
      opts.log,
    ),
  );

  // The two cases the pairs above do not show: the library's best case (a point it precomputed),
  // and ours under a key seen for the first time (more keys than the layer's cache holds).
  const prePoint = smV2.precomputePublicKey(gmHex.publicKey);
  figures.sm2_verify_precomputed_baseline_per_s = round(median(Array.from({ length: rounds }, () => rate(() => check(smV2.doVerifySignature(message, gmSigHex, prePoint, { der: true, hash: true }), 'sm2'), seconds))));
  const fresh = Array.from({ length: 1500 }, () => {
    const k = generateKeyPair('sm2-sm3');
    return { publicKey: k.publicKey, sig: sign('sm2-sm3', k.privateKey, message) };
  });
  let i = 0;
  figures.sm2_verify_fresh_key_per_s = round(
    median(
      Array.from({ length: rounds }, () =>
        rate(() => {
          const f = fresh[i++ % fresh.length]!;
          check(verify('sm2-sm3', f.publicKey, message, f.sig), 'sm2 fresh');
        }, seconds),
      ),
    ),
  );
  opts.log(`  sm2_verify, library with precomputed point ${figures.sm2_verify_precomputed_baseline_per_s}/s; ours under a new key each time ${figures.sm2_verify_fresh_key_per_s}/s`);

  // --- whole certificates through the CA, 4 verifications in flight on a pool of 4
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-identity-'));
  fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
  opts.log(`certificate chains: ${process.env.BENCH_DATABASE_URL ? 'a fresh database on BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}`);
  const bench = await benchDatabase(path.join(dir, 'db'), { scenario: 'identity', max: 4 });
  try {
    await migrate(bench.db, readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }, { module: 'ca', dir: caModule.migrations! }]));
    const ca: CaContext = { master: loadMasterKey({ dataDir: dir }), profile: loadCityProfile(DEFAULT_PROFILE_DIR), publicUrl: 'http://127.0.0.1:3000' };
    await initCa(bench.db, ca);
    const actor = { kind: 'system' as const, id: 'bench' };
    for (const [alg, name] of [
      ['sm2-sm3', 'cert_verify'],
      ['ecdsa-p256-sha256', 'cert_verify_ecdsa'],
    ] as [Alg, string][]) {
      const c = await issueCertificate(bench.db, ca, actor, { alg, subject: { kind: 'staff', name: '基准测试', department: ca.profile.departments[0]!.code } });
      const once = async () => {
        const v = await verifyCertificate(bench.db, c.certificate);
        if (!v.ok) throw new Error(`the benchmark certificate did not verify: ${v.reason}`);
      };
      await rateAsync(once, Math.min(0.5, seconds / 2), 4);
      const results: number[] = [];
      for (let k = 0; k < rounds; k++) results.push(await rateAsync(once, seconds, 4));
      const r = median(results);
      figures[`${name}_per_s`] = round(r);
      opts.log(`  ${alg} certificate, full chain and revocation check: ${Math.round(r)}/s`);
    }
  } finally {
    await bench.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  Object.assign(figures, await signInFigures(opts, seconds, rounds));
  return figures;
}

// ------------------------------------------------------------------------------------------------
// Sign-in: tokens, and whole OpenID Connect round trips against the running platform

/** sign-ins kept in flight at once, each as its own resident (the lockout counts per account) */
const SIGNIN_CONCURRENCY = 4;
/** the most GUSU_LOGIN_RATE_PER_MINUTE accepts: every flow comes from 127.0.0.1, and the default 30 would stop the run */
const LOGIN_RATE = 100_000;
const SIGNIN_WORKER = 'gusu-bench-signin';

interface BenchRp {
  id: string;
  secret: string;
  /** never requested: the flow stops at the redirect and hands its URL to openid-client */
  redirect: string;
}

interface BenchAccount {
  id: string;
  idNumber: string;
  password: string;
}

/** A browser enough for the sign-in pages (as test/support/identity.ts): cookies by path, redirects followed by hand. */
class Jar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const at = new URL(url).pathname;
    const cookie = [...this.cookies]
      .filter(([, c]) => at.startsWith(c.path))
      .map(([k, c]) => `${k}=${c.value}`)
      .join('; ');
    if (cookie) headers.set('cookie', cookie);
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((a) => a.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const p = attrs.find((a) => /^path=/i.test(a));
      if (value === '' || attrs.some((a) => /^max-age=0$/i.test(a) || /^expires=Thu, 01 Jan 1970/i.test(a))) this.cookies.delete(name);
      else this.cookies.set(name, { value, path: p ? p.slice(5) : '/' });
    }
    return res;
  }

  /** Follows `res` (the answer to `url`) through redirects while they stay on `origin`. */
  async follow(res: Response, url: string, origin: string): Promise<{ res: Response; url: string }> {
    let current = url;
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location') ?? '', current).href;
      await res.arrayBuffer();
      if (new URL(next).origin !== origin) return { res, url: next };
      current = next;
      res = await this.fetch(current);
    }
    return { res, url: current };
  }
}

/** The relying party's configuration, by discovery (once per relying party, as any would). */
function rpConfig(origin: string, rp: BenchRp): Promise<oidcClient.Configuration> {
  return oidcClient.discovery(new URL(`${origin}/oidc`), rp.id, rp.secret, oidcClient.ClientSecretBasic(rp.secret), { execute: [oidcClient.allowInsecureRequests] });
}

/**
 * One whole sign-in in a new browser: the authorization request with PKCE (S256), state and nonce;
 * our login page; the resident's ID number and password posted with the page's CSRF token; the
 * redirects back to the relying party (no consent page: every client is first-party); the code
 * exchanged at the token endpoint by openid-client, which validates the ID token's claims (issuer,
 * audience, nonce, expiry) as the platform's own portal does.
 */
async function signIn(config: oidcClient.Configuration, origin: string, rp: BenchRp, account: BenchAccount): Promise<{ idToken: string; accessToken: string }> {
  const jar = new Jar();
  const verifier = oidcClient.randomPKCECodeVerifier();
  const state = oidcClient.randomState();
  const nonce = oidcClient.randomNonce();
  const start = oidcClient.buildAuthorizationUrl(config, {
    redirect_uri: rp.redirect,
    scope: PLATFORM_SCOPES,
    code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }).href;
  const login = await jar.follow(await jar.fetch(start), start, origin);
  const page = await login.res.text();
  if (login.res.status !== 200 || !/^\/auth\/interaction\/[A-Za-z0-9_-]+$/.test(new URL(login.url).pathname)) {
    throw new Error(`the authorization request ended at ${login.url} (${login.res.status}), not on the login page`);
  }
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf) throw new Error('no CSRF field on the login page');
  const action = `${login.url}/citizen`;
  const posted = await jar.fetch(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, idNumber: account.idNumber, password: account.password }).toString(),
  });
  if (posted.status !== 303) {
    const retry = posted.headers.get('retry-after');
    throw new Error(`the password sign-in answered ${posted.status}${retry ? ` (Retry-After ${retry})` : ''}`);
  }
  const back = await jar.follow(posted, action, origin);
  if (!back.url.startsWith(`${rp.redirect}?`)) throw new Error(`after the password the browser went to ${back.url}, not back to the relying party`);
  const tokens = await oidcClient.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  const sub = tokens.claims()?.sub;
  if (sub !== account.id) throw new Error(`the ID token names ${String(sub)}, not the account that signed in`);
  return { idToken: tokens.id_token!, accessToken: tokens.access_token };
}

/** Residents of the demo city with a password account each (registered, or given a new password on a database used before). */
async function benchResidents(db: Db, n: number): Promise<BenchAccount[]> {
  // offset 1: the first synthetic resident is the demo resident account (accounts/demo.ts)
  const { rows } = await db.query<{ id_number: string; name: string }>('select id_number, name from population.person where synthetic order by id_number offset 1 limit $1', [n]);
  if (rows.length < n) throw new Error(`the demo city has ${rows.length} residents to sign in as; the benchmark needs ${n}`);
  const out: BenchAccount[] = [];
  for (const p of rows) {
    const password = `bench-${crypto.randomBytes(12).toString('base64url')}`;
    let id: string;
    try {
      id = (await registerCitizen(db, { idNumber: p.id_number, name: p.name, password, synthetic: true }, { ip: 'internal', requestId: 'bench' })).id;
    } catch (err) {
      if (!(err instanceof AccountError && err.code === 'exists')) throw err;
      const account = (await findAccountByLogin(db, 'citizen', p.id_number))!;
      await setPassword(db, account.id, password, 'citizen');
      id = account.id;
    }
    out.push({ id, idNumber: p.id_number, password });
  }
  return out;
}

/** Waits for the jobs due at start-up (the daily security check hashes the demo passwords) to finish; the number still due. */
async function jobsSettled(db: Db, seconds = 120): Promise<number> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from platform.job where status = 'running' or (status = 'queued' and run_at <= now())`);
    if (rows[0]!.n === 0 || Date.now() > end) return rows[0]!.n;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface SigninWorkerData {
  gusuBench: typeof SIGNIN_WORKER;
  origin: string;
  rp: BenchRp;
  accounts: BenchAccount[];
}

type FromWorker = { ready: true } | { flows: number; duration: number; latencies: Float64Array } | { error: string };

interface SigninResult {
  perS: number;
  p50Ms: number;
  p99Ms: number;
  flows: number;
}

/** In the worker thread: one lane of sign-ins per account, for as many seconds as each message asks. */
async function signinWorker(data: SigninWorkerData): Promise<void> {
  const port = parentPort!;
  let config: oidcClient.Configuration;
  try {
    config = await rpConfig(data.origin, data.rp);
  } catch (err) {
    port.postMessage({ error: `discovery: ${(err as Error).message}` } satisfies FromWorker);
    return;
  }
  port.on('message', (m: { seconds: number }) => {
    void (async () => {
      const latencies: number[] = [];
      const t0 = performance.now();
      const end = t0 + m.seconds * 1000;
      try {
        await Promise.all(
          data.accounts.map(async (account) => {
            while (performance.now() < end) {
              const s = performance.now();
              await signIn(config, data.origin, data.rp, account);
              latencies.push(performance.now() - s);
            }
          }),
        );
      } catch (err) {
        port.postMessage({ error: (err as Error).message } satisfies FromWorker);
        return;
      }
      const out = Float64Array.from(latencies);
      port.postMessage({ flows: latencies.length, duration: (performance.now() - t0) / 1000, latencies: out } satisfies FromWorker, [out.buffer]);
    })();
  });
  port.postMessage({ ready: true } satisfies FromWorker);
}

/**
 * The sign-in load in a worker thread (this module again, under tsx), so that the platform measured
 * has the main thread to itself, as bench/support.ts does for HTTP load.
 */
async function startSigninLoad(data: Omit<SigninWorkerData, 'gusuBench'>): Promise<{ run(seconds: number): Promise<SigninResult>; stop(): Promise<void> }> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `(async () => {
  const { register } = await import(${JSON.stringify(tsx)});
  register();
  await import(${JSON.stringify(import.meta.url)});
})().catch((err) => require('node:worker_threads').parentPort.postMessage({ error: String((err && err.stack) || err) }));`;
  const worker = new Worker(code, { eval: true, workerData: { ...data, gusuBench: SIGNIN_WORKER } satisfies SigninWorkerData });
  const next = () =>
    new Promise<FromWorker>((resolve, reject) => {
      const done = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (m: FromWorker) => (done(), resolve(m));
      const onError = (err: Error) => (done(), reject(err));
      const onExit = (code: number) => (done(), reject(new Error(`the sign-in worker exited (code ${code})`)));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  const ready = await next().catch(async (err: Error) => ({ error: err.message }) as FromWorker);
  if ('error' in ready) {
    await worker.terminate();
    throw new Error(`the sign-in worker: ${ready.error}`);
  }
  return {
    async run(seconds) {
      worker.postMessage({ seconds });
      const m = await next();
      if ('error' in m) throw new Error(`a sign-in failed: ${m.error}`);
      if (!('flows' in m) || !m.flows) throw new Error('the sign-in worker finished no sign-in');
      const sorted = m.latencies.sort();
      return { perS: m.flows / m.duration, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), flows: m.flows };
    },
    async stop() {
      await worker.terminate();
    },
  };
}

async function signInFigures(opts: BenchOptions, seconds: number, rounds: number): Promise<Figures> {
  const signinSeconds = opts.seconds ?? (opts.quick ? 3 : 10);
  const figures: Figures = {};
  opts.log(`sign-in: starting the platform (${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}; GUSU_LOGIN_RATE_PER_MINUTE=${LOGIN_RATE})`);
  const t0 = Date.now();
  const bench: BenchPlatform = await startBenchPlatform({ GUSU_LOGIN_RATE_PER_MINUTE: String(LOGIN_RATE) });
  try {
    const { ctx } = bench.platform;
    const rp: BenchRp = { id: 'bench-rp', secret: crypto.randomBytes(24).toString('base64url'), redirect: 'http://127.0.0.1:9/bench/callback' };
    await registerClient(ctx.db, {
      client_id: rp.id,
      client_secret: rp.secret,
      redirect_uris: [rp.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    const accounts = await benchResidents(ctx.db, SIGNIN_CONCURRENCY);
    const due = await jobsSettled(ctx.db);
    opts.log(`platform up in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${bench.url}; ${accounts.length} resident accounts; ${due ? `${due} jobs still due` : 'start-up jobs done'}`);

    // one sign-in here first: the flow works, and its tokens are the ones verified below
    const sample = await signIn(await rpConfig(bench.url, rp), bench.url, rp, accounts[0]!);
    const port = Number(new URL(bench.url).port);
    const oidc = await getOidc(ctx, port);
    const client = await oidc.provider.Client.find(rp.id);
    if (!client) throw new Error(`the provider does not know the client ${rp.id}`);
    const { kid } = JSON.parse(Buffer.from(sample.idToken.split('.')[0]!, 'base64url').toString('utf8')) as { kid?: string };
    const jwk = publicJwks(oidc.secrets).keys.find((k) => k.kid === kid);
    if (!jwk) throw new Error(`no public key ${String(kid)} for the ID token`);
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    const req = { socket: { localPort: port } } as unknown as FastifyRequest;
    const bearer = `Bearer ${sample.accessToken}`;
    opts.log(`tokens from a sign-in (ID token ${jwk.alg ?? '?'}, ${sample.idToken.length} bytes): ${rounds} rounds of ${seconds} s, 4 in flight`);
    Object.assign(
      figures,
      await measureAsyncPairs(
        [
          {
            // the provider's check of an ID token it issued (id_token_hint at sign-out and authorization): key by kid, signature, issuer, audience, alg
            name: 'token_verify',
            ours: async () => void (await oidc.provider.IdToken.validate(sample.idToken, client)),
            baseline: async () => void (await jwtVerify(sample.idToken, key, { issuer: oidc.urls.issuer, audience: rp.id, algorithms: ['RS256'] })),
          },
          {
            // every API request with Authorization: Bearer: the opaque access token looked up in PostgreSQL, then its account
            name: 'bearer_verify',
            ours: async () => {
              const actor = await actorFromBearer(ctx, req, bearer);
              if (actor.kind !== 'citizen') throw new Error(`the bearer token resolved to ${actor.kind}`);
            },
            baseline: async () => {
              if (!(await oidc.provider.AccessToken.find(sample.accessToken))) throw new Error('the access token was not found');
            },
          },
        ],
        seconds,
        rounds,
        4,
        opts.log,
      ),
    );

    // the baseline: the password check alone, scrypt with the parameters the stored hashes have
    const { N, r, p } = DEFAULT_PARAMS;
    const salt = crypto.randomBytes(16);
    const password = accounts[0]!.password.normalize('NFC');
    const scryptOnce = () => new Promise<void>((resolve, reject) => crypto.scrypt(password, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err) => (err ? reject(err) : resolve())));

    opts.log(`sign-in round trips, ${SIGNIN_CONCURRENCY} in flight from a worker thread: warming up, then ${rounds} rounds of ${signinSeconds} s, each beside scrypt (N=${N}, r=${r}, p=${p}) alone at the same concurrency`);
    const load = await startSigninLoad({ origin: bench.url, rp, accounts });
    try {
      const warm = Math.min(signinSeconds / 2, 2);
      await load.run(warm);
      await rateAsync(scryptOnce, warm, SIGNIN_CONCURRENCY);
      const results: { signin: SigninResult[]; baseline: number[] } = { signin: [], baseline: [] };
      for (let i = 0; i < rounds; i++) {
        const order = i % 2 ? (['baseline', 'signin'] as const) : (['signin', 'baseline'] as const);
        for (const who of order) {
          if (who === 'signin') {
            const res = await load.run(signinSeconds);
            results.signin.push(res);
            opts.log(`  round ${i + 1} sign-in  ${res.perS.toFixed(1)}/s (${res.flows} sign-ins), p50 ${res.p50Ms.toFixed(0)} ms, p99 ${res.p99Ms.toFixed(0)} ms`);
          } else {
            const res = await rateAsync(scryptOnce, signinSeconds, SIGNIN_CONCURRENCY);
            results.baseline.push(res);
            opts.log(`  round ${i + 1} scrypt   ${res.toFixed(1)}/s`);
          }
        }
      }
      const ours = median(results.signin.map((x) => x.perS));
      const base = median(results.baseline);
      figures.signin_per_s = round(ours);
      figures.signin_p50_ms = round(median(results.signin.map((x) => x.p50Ms)));
      figures.signin_p99_ms = round(median(results.signin.map((x) => x.p99Ms)));
      figures.signin_baseline_per_s = round(base);
      figures.signin_ratio = round(ours / base);
      opts.log(`  signin                 ours ${ours.toFixed(1)}/s, baseline ${base.toFixed(1)}/s, ratio ${(ours / base).toFixed(2)}`);
    } finally {
      await load.stop();
    }
  } finally {
    await bench.stop();
  }
  return figures;
}

// this module is also the sign-in worker's code (startSigninLoad)
if (!isMainThread && (workerData as Partial<SigninWorkerData> | null)?.gusuBench === SIGNIN_WORKER) void signinWorker(workerData as SigninWorkerData);
