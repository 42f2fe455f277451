// Typed, validated configuration from the environment. A bad value stops start-up with one line
// naming the variable and what it accepts; nothing else reads process.env.
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

function masterKey(env: Env, name: string): string | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(raw)) fail(name, '…', 'expected the base64 of 32 random bytes (openssl rand -base64 32)');
  return raw;
}

const repoRoot = path.resolve(new URL('../..', import.meta.url).pathname);

/** Reads the configuration; throws ConfigError with one line naming the bad variable. */
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
    masterKey: masterKey(env, 'GUSU_MASTER_KEY'),
    publicUrl: baseUrl(env, 'GUSU_PUBLIC_URL'),
    internalUrl: baseUrl(env, 'GUSU_INTERNAL_URL'),
    loginRatePerMinute: int(env, 'GUSU_LOGIN_RATE_PER_MINUTE', 30, 1, 100_000),
    sessionIdleMinutes: int(env, 'GUSU_SESSION_IDLE_MINUTES', 30, 1, 1440),
    sessionMaxMinutes: int(env, 'GUSU_SESSION_MAX_MINUTES', 720, 1, 43_200),
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
