// The `identity` scenario: signatures and verifications per second for ECDSA P-256 and SM2 through
// our crypto layer (src/base/identity/crypto), each beside the raw library call measured in the same
// run — node:crypto for ECDSA, sm-crypto-v2 (the SM2 library most Chinese web systems use) for SM2 —
// and whole certificate verifications through the CA (chain leaf → issuing → root, validity, and the
// revocation lookup in PostgreSQL). One core, a 450-byte message, as in shared/design/FACTS.md.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { sm2 as smV2 } from 'sm-crypto-v2';
import { DEFAULT_PROFILE_DIR, loadCityProfile } from '../src/config/profile.ts';
import { createDb, migrate, platformMigrations, readMigrations, startEmbedded, type Db, type EmbeddedServer } from '../src/db/index.ts';
import { auditModule } from '../src/base/audit/index.ts';
import { exportSm2Hex, generateKeyPair, sign, verify, type Alg } from '../src/base/identity/crypto/index.ts';
import { caModule, initCa, issueCertificate, loadMasterKey, verifyCertificate, type CaContext } from '../src/base/identity/ca/index.ts';
import { median, round, type BenchOptions, type Figures } from './support.ts';

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

interface BenchDb {
  db: Db;
  stop(): Promise<void>;
}

/** A fresh database: on BENCH_DATABASE_URL's server if set, else an embedded server in a temporary directory. */
async function benchDatabase(dir: string): Promise<BenchDb> {
  const server = process.env.BENCH_DATABASE_URL;
  if (server) {
    const name = `gusu_bench_identity_${crypto.randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const u = new URL(server);
    u.pathname = `/${name}`;
    const db = createDb(u.toString(), { max: 4 });
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
  const embedded: EmbeddedServer = await startEmbedded(dir);
  const db = createDb(embedded.url, { max: 4 });
  return {
    db,
    async stop() {
      await db.close();
      await embedded.stop();
    },
  };
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
  const bench = await benchDatabase(path.join(dir, 'db'));
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
  return figures;
}
