// Typed, validated configuration from the environment. A bad value stops start-up with one line
// naming the variable and what it accepts; nothing else reads process.env.
import net from 'node:net';
import path from 'node:path';

export interface Config {
  host: string;
  /** the one listener of the demo: both faces on one port */
  port: number;
  /** when set, the public face (外网: portal, public APIs) listens here alone */
  publicPort: number | null;
  /** when set, the internal face (政务网: consoles, exchange, registries) listens here alone */
  internalPort: number | null;
  /** null: run the embedded PostgreSQL server under dataDir */
  databaseUrl: string | null;
  dataDir: string;
  profileDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  demo: boolean;
  demoResidents: number;
  demoEnterprises: number;
  demoSeed: number;
  shutdownTimeoutMs: number;
  dbPoolSize: number;
  jobConcurrency: number;
  /** how often the base registries pull their sources from the exchange and publish life events (ms); 0: never */
  registryBridgeMs: number;
  /** base64 of 32 bytes sealing private keys at rest; null: GUSU_DATA_DIR/master.key (created 0600) */
  masterKey: string | null;
  /** the public face's address as browsers see it (OIDC issuer = publicUrl + '/oidc'); null: http://HOST:PORT */
  publicUrl: string | null;
  /** the internal face's address as browsers see it (console redirect URIs); null: http://HOST:INTERNAL_PORT, or publicUrl on one port */
  internalUrl: string | null;
  /** sign-in attempts (every login path) allowed per client IP address per minute */
  loginRatePerMinute: number;
  /** a portal or console session ends after this many minutes without a request */
  sessionIdleMinutes: number;
  /** ... and after this many minutes in any case */
  sessionMaxMinutes: number;
  /**
   * which reverse proxies' X-Forwarded-For / -Proto / -Host to believe (the client IP behind them is
   * what rate limits and the audit log see): false, a number of hops, or addresses and CIDR ranges
   */
  trustProxy: false | number | string[];
  /** notices: rate limits, fan-out chunks, retries and the SMS and email adapters (GUSU_NOTICE_*, GUSU_SMS_*, GUSU_EMAIL_*, GUSU_SMTP_URL) */
  messaging: MessagingConfig;
  /** the exchange node this process is (GUSU_EXCHANGE_*; docs/exchange.md) */
  exchange: ExchangeConfig;
}

export interface ExchangeConfig {
  /** this node's id in the profile's network.json: 'hub' or a division's node */
  node: string;
  /** X-Road instance of the members' identifiers */
  instance: string;
  /** a division node: the hub's internal base URL (enrolment, forwarding); null on the hub */
  upstreamUrl: string | null;
  /** the secret a division node presents to enrol with the hub (the hub accepts it when set) */
  enrolToken: string | null;
  /** this node's own internal base URL as peers reach it (null: the internal URL, or http://HOST:PORT) */
  selfUrl: string | null;
  /** largest accepted event, bytes */
  maxEventBytes: number;
  /** largest batch request, bytes */
  maxBatchBytes: number;
  /** delivery attempts before a message is dead-lettered */
  maxAttempts: number;
  /** first retry after this many ms, doubling (capped at maxBackoffMs) */
  retryBaseMs: number;
  maxBackoffMs: number;
  /** a pulled event not acknowledged within this many seconds is handed out again */
  leaseSeconds: number;
  /** days messages and deliveries are kept (the message log keeps its hashes) */
  retentionDays: number;
  /** the delivery sweep (push retries, federation links) runs every this many ms */
  sweepMs: number;
  /** a division node syncs its directory with the hub every this many sweeps */
  syncEvery: number;
  /** a division node refreshes the CA's revocation lists (and retention runs) every this many sweeps */
  crlEvery: number;
}

export interface MessagingConfig {
  /** notices one department may send per rolling hour */
  ratePerHour: number;
  /** recipients one department may address per rolling 24 hours */
  recipientsPerDay: number;
  /** residents per fan-out chunk (one job, one transaction) */
  chunkSize: number;
  /** chunks of one notice run at once (each finished chunk starts the next): the other job workers stay free */
  parallelChunks: number;
  /** SMS and email attempts before a delivery is failed */
  maxAttempts: number;
  /** first retry after this many ms, doubling each time (capped at one hour) */
  retryBaseMs: number;
  /** largest CSV recipient list accepted, in bytes */
  uploadMaxBytes: number;
  sms: { adapter: 'none' | 'test' | 'http'; url: string | null; token: string | null; signature: string };
  email: { adapter: 'none' | 'test' | 'smtp'; smtpUrl: string | null; from: string | null };
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function fail(name: string, value: string, accepts: string): never {
  throw new ConfigError(`${name}=${JSON.stringify(value)} is not valid: ${accepts}`);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) fail(name, raw, `expected a whole number from ${min} to ${max}`);
  const n = Number(raw.trim());
  if (n < min || n > max) fail(name, raw, `expected a whole number from ${min} to ${max}`);
  return n;
}

function optionalPort(env: Env, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  return int(env, name, 0, 1, 65535);
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return fail(name, raw, 'expected one of true, false, 1, 0, yes, no, on, off');
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) fail(name, raw, `expected one of ${allowed.join(', ')}`);
  return raw as T;
}

function databaseUrl(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(name, raw, 'expected a URL like postgres://user@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    fail(name, raw, 'expected a postgres:// or postgresql:// URL');
  }
  return raw;
}

function baseUrl(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(name, raw, 'expected an absolute http(s) URL such as https://www.example.gov.cn');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) {
    fail(name, raw, 'expected an http:// or https:// URL without query, fragment or credentials');
  }
  return url.toString().replace(/\/+$/, '');
}

function host(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(raw)) fail(name, raw, 'expected a host name or IP address such as 127.0.0.1 or 0.0.0.0');
  return raw;
}

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);

function trustProxy(env: Env, name: string): false | number | string[] {
  const raw = (env[name] ?? '').trim();
  if (raw === '' || /^(false|no|off|0)$/i.test(raw)) return false;
  const accepts = 'expected a number of proxy hops (1–10), or a comma-separated list of proxy addresses, CIDR ranges or loopback/linklocal/uniquelocal';
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n < 1 || n > 10) fail(name, raw, accepts);
    return n;
  }
  const items = raw.split(',').map((x) => x.trim());
  for (const item of items) {
    if (PROXY_KEYWORDS.has(item)) continue;
    const [addr, prefix, ...rest] = item.split('/');
    const family = net.isIP(addr ?? '');
    const okPrefix = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (!family || !okPrefix || rest.length) fail(name, raw, accepts);
  }
  return items;
}

function masterKey(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(raw)) fail(name, '…', 'expected the base64 of 32 random bytes (openssl rand -base64 32)');
  return raw;
}

function secretUrl(env: Env, name: string, protocols: readonly string[], example: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(name, '…', `expected a URL such as ${example}`);
  }
  if (!protocols.includes(url.protocol)) fail(name, '…', `expected a ${protocols.map((p) => p + '//').join(' or ')} URL such as ${example}`);
  return raw;
}

function messagingConfig(env: Env): MessagingConfig {
  const sms = oneOf(env, 'GUSU_SMS_ADAPTER', 'none', ['none', 'test', 'http'] as const);
  const email = oneOf(env, 'GUSU_EMAIL_ADAPTER', 'none', ['none', 'test', 'smtp'] as const);
  const smsUrl = secretUrl(env, 'GUSU_SMS_HTTP_URL', ['https:', 'http:'], 'https://sms-gateway.example.gov.cn/send');
  const smtpUrl = secretUrl(env, 'GUSU_SMTP_URL', ['smtp:', 'smtps:'], 'smtps://user:password@smtp.example.gov.cn:465');
  const from = env.GUSU_EMAIL_FROM && env.GUSU_EMAIL_FROM !== '' ? env.GUSU_EMAIL_FROM : null;
  if (from !== null && (from.length > 200 || !/@/.test(from) || /[\r\n]/.test(from))) fail('GUSU_EMAIL_FROM', from, 'expected a sender address such as "苏州市政务平台 <noreply@example.gov.cn>"');
  if (sms === 'http' && !smsUrl) throw new ConfigError('GUSU_SMS_ADAPTER=http needs GUSU_SMS_HTTP_URL (the SMS gateway endpoint)');
  if (email === 'smtp' && (!smtpUrl || !from)) throw new ConfigError('GUSU_EMAIL_ADAPTER=smtp needs GUSU_SMTP_URL and GUSU_EMAIL_FROM');
  const signature = env.GUSU_SMS_SIGNATURE ?? '';
  if (signature.length > 20 || /[\r\n]/.test(signature)) fail('GUSU_SMS_SIGNATURE', signature, 'expected at most 20 characters on one line, e.g. 【苏州市】');
  return {
    ratePerHour: int(env, 'GUSU_NOTICE_RATE_PER_HOUR', 20, 1, 100_000),
    recipientsPerDay: int(env, 'GUSU_NOTICE_RECIPIENTS_PER_DAY', 5_000_000, 1, 100_000_000),
    chunkSize: int(env, 'GUSU_NOTICE_CHUNK_SIZE', 20_000, 100, 200_000),
    parallelChunks: int(env, 'GUSU_NOTICE_PARALLEL_CHUNKS', 1, 1, 64),
    maxAttempts: int(env, 'GUSU_NOTICE_MAX_ATTEMPTS', 5, 1, 20),
    retryBaseMs: int(env, 'GUSU_NOTICE_RETRY_BASE_MS', 30_000, 1, 3_600_000),
    uploadMaxBytes: int(env, 'GUSU_NOTICE_UPLOAD_MAX_MB', 64, 1, 1024) * 1024 * 1024,
    sms: { adapter: sms, url: smsUrl, token: env.GUSU_SMS_HTTP_TOKEN && env.GUSU_SMS_HTTP_TOKEN !== '' ? env.GUSU_SMS_HTTP_TOKEN : null, signature },
    email: { adapter: email, smtpUrl, from },
  };
}

const repoRoot = path.resolve(new URL('../..', import.meta.url).pathname);

/** Reads the configuration; throws ConfigError with one line naming the bad variable. */
function exchangeConfig(env: Env): ExchangeConfig {
  const node = env.GUSU_EXCHANGE_NODE && env.GUSU_EXCHANGE_NODE !== '' ? env.GUSU_EXCHANGE_NODE : 'hub';
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(node)) fail('GUSU_EXCHANGE_NODE', node, 'expected a node id of the profile\'s network.json, e.g. hub or node-320505');
  const instance = env.GUSU_EXCHANGE_INSTANCE && env.GUSU_EXCHANGE_INSTANCE !== '' ? env.GUSU_EXCHANGE_INSTANCE : 'SZ';
  if (!/^[A-Za-z0-9-]{1,32}$/.test(instance)) fail('GUSU_EXCHANGE_INSTANCE', instance, 'expected letters, digits and hyphens, e.g. SZ');
  const token = env.GUSU_EXCHANGE_ENROL_TOKEN && env.GUSU_EXCHANGE_ENROL_TOKEN !== '' ? env.GUSU_EXCHANGE_ENROL_TOKEN : null;
  if (token !== null && (token.length < 16 || token.length > 200 || /\s/.test(token))) fail('GUSU_EXCHANGE_ENROL_TOKEN', '(hidden)', 'expected 16 to 200 characters without spaces');
  const retryBaseMs = int(env, 'GUSU_EXCHANGE_RETRY_BASE_MS', 1000, 1, 3_600_000);
  return {
    node,
    instance,
    upstreamUrl: baseUrl(env, 'GUSU_EXCHANGE_UPSTREAM_URL'),
    enrolToken: token,
    selfUrl: baseUrl(env, 'GUSU_EXCHANGE_SELF_URL'),
    maxEventBytes: int(env, 'GUSU_EXCHANGE_MAX_EVENT_KB', 1024, 1, 65_536) * 1024,
    maxBatchBytes: int(env, 'GUSU_EXCHANGE_MAX_BATCH_MB', 32, 1, 1024) * 1024 * 1024,
    maxAttempts: int(env, 'GUSU_EXCHANGE_MAX_ATTEMPTS', 8, 1, 100),
    retryBaseMs,
    maxBackoffMs: Math.max(retryBaseMs, int(env, 'GUSU_EXCHANGE_MAX_BACKOFF_MS', 300_000, 1, 86_400_000)),
    leaseSeconds: int(env, 'GUSU_EXCHANGE_LEASE_S', 60, 1, 86_400),
    retentionDays: int(env, 'GUSU_EXCHANGE_RETENTION_DAYS', 365, 1, 36_500),
    sweepMs: int(env, 'GUSU_EXCHANGE_SWEEP_MS', 2000, 50, 600_000),
    syncEvery: int(env, 'GUSU_EXCHANGE_SYNC_EVERY', 5, 1, 10_000),
    crlEvery: int(env, 'GUSU_EXCHANGE_CRL_EVERY', 30, 1, 100_000),
  };
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const profile = env.GUSU_PROFILE && env.GUSU_PROFILE !== '' ? env.GUSU_PROFILE : 'suzhou';
  // a bare name is a profile shipped under profiles/; anything with a slash is a directory
  const profileDir = profile.includes('/') ? path.resolve(cwd, profile) : path.join(repoRoot, 'profiles', profile);
  if (!/^[A-Za-z0-9_\-./]+$/.test(profile)) fail('GUSU_PROFILE', profile, 'expected a profile name (e.g. suzhou) or a directory path');
  const config: Config = {
    host: host(env, 'HOST', '127.0.0.1'),
    port: int(env, 'PORT', 3000, 0, 65535),
    publicPort: optionalPort(env, 'PUBLIC_PORT'),
    internalPort: optionalPort(env, 'INTERNAL_PORT'),
    databaseUrl: databaseUrl(env, 'DATABASE_URL'),
    dataDir: path.resolve(cwd, env.GUSU_DATA_DIR && env.GUSU_DATA_DIR !== '' ? env.GUSU_DATA_DIR : 'var'),
    profileDir,
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    demo: bool(env, 'GUSU_DEMO', true),
    demoResidents: int(env, 'GUSU_DEMO_RESIDENTS', 100_000, 0, 20_000_000),
    demoEnterprises: int(env, 'GUSU_DEMO_ENTERPRISES', 20_000, 0, 5_000_000),
    demoSeed: int(env, 'GUSU_DEMO_SEED', 20061, 0, 2 ** 31 - 1),
    shutdownTimeoutMs: int(env, 'GUSU_SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    dbPoolSize: int(env, 'GUSU_DB_POOL_SIZE', 10, 1, 500),
    jobConcurrency: int(env, 'GUSU_JOB_CONCURRENCY', 4, 0, 256),
    registryBridgeMs: int(env, 'GUSU_REGISTRY_BRIDGE_MS', 2000, 0, 3_600_000),
    masterKey: masterKey(env, 'GUSU_MASTER_KEY'),
    publicUrl: baseUrl(env, 'GUSU_PUBLIC_URL'),
    internalUrl: baseUrl(env, 'GUSU_INTERNAL_URL'),
    loginRatePerMinute: int(env, 'GUSU_LOGIN_RATE_PER_MINUTE', 30, 1, 100_000),
    sessionIdleMinutes: int(env, 'GUSU_SESSION_IDLE_MINUTES', 30, 1, 1440),
    sessionMaxMinutes: int(env, 'GUSU_SESSION_MAX_MINUTES', 720, 1, 43_200),
    trustProxy: trustProxy(env, 'GUSU_TRUST_PROXY'),
    messaging: messagingConfig(env),
    exchange: exchangeConfig(env),
  };
  if ((config.publicPort === null) !== (config.internalPort === null)) {
    const [set, unset] = config.publicPort === null ? ['INTERNAL_PORT', 'PUBLIC_PORT'] : ['PUBLIC_PORT', 'INTERNAL_PORT'];
    throw new ConfigError(`${set} is set but ${unset} is not: set both to serve the two faces on separate listeners, or neither`);
  }
  if (config.publicPort !== null && config.publicPort === config.internalPort) {
    throw new ConfigError(`PUBLIC_PORT and INTERNAL_PORT are both ${config.publicPort}: they must differ`);
  }
  return config;
}

export { repoRoot };
