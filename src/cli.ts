// The `gusu` command line. Each command returns an exit code: 0 done, 1 failed, 2 bad usage or
// configuration. Errors print one line to stderr, never a stack trace (LOG_LEVEL=debug shows it).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config/index.ts';
import { loadCityProfile, ProfileError } from './config/profile.ts';
import { migrate, openDatabase, readMigrations, type Database } from './db/index.ts';
import { createLogger, migrationSources, startPlatform } from './main.ts';
import { demoStatus, loadDemo } from './demo/index.ts';
import { demoAccountsSummary } from './base/identity/index.ts';
import { generateEnterprises, generateResidents } from './demo/generator.ts';
import { backupDatabase, formatBytes, openMaintenanceDb, platformSessions, restoreDatabase, verifyBackup } from './db/backup.ts';

import { MODULES } from './modules.ts';
import { UsageError, type Command } from './module.ts';

export { UsageError };

function positiveInt(name: string, v: string | undefined, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new UsageError(`--${name} expects a whole number from 0 to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

async function withDatabase<T>(config: Config, fn: (d: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 4, attach: true, applicationName: 'gusu-cli' });
  try {
    await migrate(database.db, readMigrations(migrationSources()));
    return await fn(database);
  } finally {
    await database.close();
  }
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the platform (embedded PostgreSQL unless DATABASE_URL is set)',
    usage: 'gusu serve',
    async run(_args, config) {
      const log = createLogger(config);
      const t0 = Date.now();
      const platform = await startPlatform(config, { log });
      const demo = await demoStatus(platform.database.db);
      const lines = [
        '',
        `  Gusu 姑苏 — ${platform.ctx.profile.city.portalName} is ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        ...platform.listeners.map((l) => `  ${l.face === 'both' ? 'portal and consoles' : l.face === 'public' ? 'public face (外网)' : 'internal face (政务网)'}: ${l.url}/`),
        `  API: ${platform.listeners.at(-1)!.url}/api/docs   health: /healthz   metrics: /metrics`,
        `  database: ${platform.database.embedded ? `embedded PostgreSQL, data in ${config.dataDir}` : 'DATABASE_URL'}`,
        demo ? `  demo city: ${demo.residents} residents, ${demo.enterprises} enterprises (${demo.notice})` : '  demo city: not loaded (GUSU_DEMO=false)',
        ...(await demoAccountsSummary(platform.ctx)),
        '',
      ];
      process.stdout.write(lines.join('\n') + '\n');
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            log.warn({ signal }, 'second signal: exiting now');
            process.exit(1);
          }
          stopping = true;
          log.info({ signal }, 'shutting down: finishing in-flight requests and jobs');
          void platform.close().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      log.info('stopped');
      return 0;
    },
  },
  migrate: {
    summary: 'apply pending database migrations and exit',
    usage: 'gusu migrate',
    async run(_args, config) {
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, attach: true, applicationName: 'gusu-cli' });
      try {
        const applied = await migrate(database.db, readMigrations(migrationSources()));
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'nothing to apply\n');
      } finally {
        await database.close();
      }
      return 0;
    },
  },
  demo: {
    summary: 'load (or write to a file) the deterministic synthetic demo city',
    usage: 'gusu demo [--residents N] [--enterprises M] [--seed S] [--out-residents FILE.ndjson] [--out-enterprises FILE.ndjson]',
    async run(args, config) {
      const { values } = parseArgs({
        args,
        options: {
          residents: { type: 'string' },
          enterprises: { type: 'string' },
          seed: { type: 'string' },
          'out-residents': { type: 'string' },
          'out-enterprises': { type: 'string' },
        },
        strict: true,
      });
      const residents = positiveInt('residents', values.residents, config.demoResidents, 20_000_000);
      const enterprises = positiveInt('enterprises', values.enterprises, config.demoEnterprises, 5_000_000);
      const seed = positiveInt('seed', values.seed, config.demoSeed, 2 ** 31 - 1);
      const profile = loadCityProfile(config.profileDir);
      const files = [
        [values['out-residents'], () => generateResidents(profile, { seed, count: residents })],
        [values['out-enterprises'], () => generateEnterprises(profile, { seed, count: enterprises })],
      ] as const;
      if (files.some(([f]) => f)) {
        for (const [file, gen] of files) {
          if (!file) continue;
          const out = fs.createWriteStream(file);
          let n = 0;
          for (const rec of gen()) {
            if (!out.write(JSON.stringify(rec) + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
            n++;
          }
          await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
          process.stdout.write(`wrote ${n} synthetic records to ${file}\n`);
        }
        return 0;
      }
      const t0 = Date.now();
      const load = await withDatabase(config, (d) => loadDemo(d.db, profile, { residents, enterprises, seed }));
      process.stdout.write(`loaded ${load.residents} residents and ${load.enterprises} enterprises (seed ${seed}, ${load.notice}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      return 0;
    },
  },
  backup: {
    summary: 'write a consistent, compressed logical backup of the whole database to FILE (the platform may be running)',
    usage: 'gusu backup FILE',
    async run(args, config) {
      const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
      if (positionals.length !== 1) throw new UsageError('expects one FILE to write the backup to');
      const file = positionals[0]!;
      const target = await openMaintenanceDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, purpose: 'backup' });
      try {
        const s = await backupDatabase(target.db, file);
        process.stdout.write(
          `backed up ${s.tables} tables, ${s.rows} rows (${formatBytes(s.bytes)} of data, ${formatBytes(s.fileBytes)} compressed) from ${target.where} to ${file} in ${(s.ms / 1000).toFixed(1)} s\n`,
        );
      } finally {
        await target.close();
      }
      return 0;
    },
  },
  restore: {
    summary: 'replace the whole database with a backup made by `gusu backup` (stop the platform first)',
    usage: 'gusu restore FILE --yes | gusu restore FILE --check',
    async run(args, config) {
      const { values, positionals } = parseArgs({ args, options: { yes: { type: 'boolean' }, check: { type: 'boolean' } }, allowPositionals: true, strict: true });
      if (positionals.length !== 1) throw new UsageError('expects one backup FILE');
      const file = positionals[0]!;
      if (values.check) {
        const info = await verifyBackup(file);
        const h = info.header;
        process.stdout.write(
          `${file} is complete and intact: ${info.trailer.tables} tables, ${info.trailer.rows} rows (${formatBytes(info.trailer.bytes)}), ${h.migrations.length} migrations, made ${h.created} on PostgreSQL ${h.postgres_version}\n`,
        );
        return 0;
      }
      if (!values.yes) throw new UsageError('restore replaces the whole database with the backup: add --yes to confirm (or --check to only verify the file)');
      const target = await openMaintenanceDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, purpose: 'restore' });
      try {
        const running = await platformSessions(target.db);
        if (running) throw new Error(`the platform is running on this database (${running} connections): stop it first`);
        const s = await restoreDatabase(target.db, file, readMigrations(migrationSources()));
        process.stdout.write(
          `restored ${s.tables} tables, ${s.rows} rows (${formatBytes(s.bytes)} of data, ${formatBytes(s.fileBytes)} compressed) and ${s.sequences} sequences from ${file} (made ${s.header.created} on PostgreSQL ${s.header.postgres_version}) into ${target.where} in ${(s.ms / 1000).toFixed(1)} s${s.applied.length ? `; then applied newer migrations: ${s.applied.join(', ')}` : ''}\n`,
        );
      } finally {
        await target.close();
      }
      return 0;
    },
  },
};

for (const m of MODULES) Object.assign(COMMANDS, m.commands);

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'gusu — the Gusu (姑苏) city e-government platform',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    '',
    'configuration comes from the environment: see docs/configuration.md',
    '',
  ].join('\n');
}

/** Registers a command (later modules extend the CLI through this). */
export function addCommand(name: string, command: Command): void {
  COMMANDS[name] = command;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`gusu: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n${command.summary}\n`);
    return 0;
  }
  try {
    const config = loadConfig();
    return await command.run(args, config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gusu: configuration error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gusu ${name}: ${(err as Error).message}\nusage: ${command.usage}\n`);
      return 2;
    }
    if (err instanceof ProfileError) {
      process.stderr.write(`gusu: city profile error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`gusu ${name}: ${(err as Error).message}\n`);
    if (process.env.LOG_LEVEL === 'debug') process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
