// `gusu ca ...` for operators: create the CAs, issue, renew, revoke, look up, export the CRL.
// Like `gusu audit`, it does not migrate the database it works on: it asks for `gusu migrate` when
// the CA's schema is missing or behind. Every change is audited with the operator's OS user name.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Config } from '../../../config/index.ts';
import { loadCityProfile } from '../../../config/profile.ts';
import { appliedMigrations, findRunningEmbedded, openDatabase, readMigrations, type Db } from '../../../db/index.ts';
import { HttpProblem } from '../../../http/problems.ts';
import { UsageError, type Command } from '../../../module.ts';
import type { AuditActor } from '../../audit/index.ts';
import { ALGS, isAlg, type Alg } from '../crypto/index.ts';
import {
  authorities,
  caContext,
  certificateStatus,
  currentCrl,
  initCa,
  issueCertificate,
  listCertificates,
  renewCertificate,
  revokeCertificate,
  type CaContext,
  type IssuedCertificate,
} from './ca.ts';
import { SUBJECT_KINDS, type SubjectKind } from './profiles.ts';
import { REVOCATION_REASONS, toPem, type RevocationReason } from './x509.ts';

const USAGE = [
  'gusu ca init',
  '       gusu ca list [--kind KIND] [--alg ALG] [--status good|revoked|expired] [--uscc CODE] [--department CODE] [--limit N] [--json]',
  '       gusu ca issue --alg ALG --kind KIND [--uscc CODE] [--name NAME] [--department CODE] [--node-id ID] [--system-id ID] [--staff-id ID]',
  '                     [--days N] (--csr FILE [--out PREFIX] | --out PREFIX)',
  '       gusu ca renew SERIAL [--csr FILE] [--days N] [--out PREFIX]',
  '       gusu ca revoke SERIAL --reason REASON',
  '       gusu ca status SERIAL [--json]',
  '       gusu ca crl ALG [--pem] [--out FILE]',
  `  ALG: ${ALGS.join(' | ')}   KIND: ${SUBJECT_KINDS.join(' | ')}`,
  `  REASON: ${REVOCATION_REASONS.join(' | ')}`,
].join('\n');

const MIGRATIONS = [
  { module: 'audit', dir: fileURLToPath(new URL('../../audit/migrations', import.meta.url)) },
  { module: 'ca', dir: fileURLToPath(new URL('./migrations', import.meta.url)) },
];

async function withCa<T>(config: Config, fn: (db: Db, ca: CaContext) => Promise<T>): Promise<T> {
  if (!config.databaseUrl && !findRunningEmbedded(path.resolve(config.dataDir)) && !fs.existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
    throw new Error(`there is no database in ${config.dataDir}: run \`gusu migrate\` (or start the platform) first, or set DATABASE_URL`);
  }
  // after the check: loading the master key may create the data directory (mode 0700)
  const ca = caContext(config, loadCityProfile(config.profileDir));
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, attach: true, applicationName: 'gusu-ca' });
  try {
    const applied = new Set((await appliedMigrations(database.db)).map((m) => `${m.module}/${m.id}`));
    const pending = readMigrations(MIGRATIONS)
      .map((m) => `${m.module}/${m.id}`)
      .filter((k) => !applied.has(k));
    if (pending.length) throw new Error(`the CA is not set up in this database (pending: ${pending.join(', ')}): run \`gusu migrate\` first`);
    return await fn(database.db, ca);
  } finally {
    await database.close();
  }
}

function operator(): AuditActor {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  return { kind: 'system', id: `gusu-cli:${user}` };
}

function alg(v: string | undefined, flag = '--alg'): Alg {
  if (!v) throw new UsageError(`${flag} is required: ${ALGS.join(' or ')}`);
  if (!isAlg(v)) throw new UsageError(`${flag} expects ${ALGS.join(' or ')}, got ${JSON.stringify(v)}`);
  return v;
}

function days(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1) throw new UsageError(`--days expects a whole number of days, got ${JSON.stringify(v)}`);
  return Number(v);
}

function oneSerial(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('expects one SERIAL');
  if (!/^[0-9A-Fa-f]{1,40}$/.test(positionals[0]!)) throw new UsageError(`SERIAL is 1 to 40 hexadecimal digits, got ${JSON.stringify(positionals[0])}`);
  return positionals[0]!;
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** a refused request (bad USCC, unknown department) is the operator's input: usage, exit 2 */
async function asUsage<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof HttpProblem && (err.problem === 'validation' || err.problem === 'bad-request')) throw new UsageError(err.message);
    throw err;
  }
}

function writeIssued(c: IssuedCertificate, out: string | undefined): void {
  const lines = [`issued ${c.alg} ${c.kind} certificate ${c.serial}`, `  subject: ${c.subjectDn}`, `  valid: ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}`];
  if (out) {
    fs.writeFileSync(`${out}.crt.pem`, c.certificate);
    fs.writeFileSync(`${out}.chain.pem`, c.chain.join(''));
    lines.push(`  certificate: ${out}.crt.pem`, `  chain (issuing CA, root): ${out}.chain.pem`);
    if (c.privateKey) {
      fs.writeFileSync(`${out}.key.pem`, c.privateKey, { mode: 0o600, flag: 'wx' });
      lines.push(`  private key (generated by the CA, not kept by it): ${out}.key.pem`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  } else {
    process.stderr.write(lines.join('\n') + '\n');
    process.stdout.write(c.certificate);
  }
}

function checkOut(out: string | undefined, generated: boolean): void {
  if (generated && !out) throw new UsageError('without --csr the CA generates the key pair: give --out PREFIX to write it to PREFIX.key.pem (mode 0600)');
  if (out && generated && fs.existsSync(`${out}.key.pem`)) throw new UsageError(`${out}.key.pem exists already: choose another --out`);
}

export const caCommand: Command = {
  summary: 'the municipal CA: create the root and issuing CAs, issue, renew, revoke and look up certificates, export CRLs',
  usage: USAGE,
  async run(args, config) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'init': {
        parseArgs({ args: rest, options: {}, strict: true });
        await withCa(config, async (db, ca) => {
          const r = await initCa(db, ca, operator());
          process.stdout.write(r.created.length ? `created: ${r.created.join(', ')}\n` : 'the CAs exist already\n');
          for (const a of await authorities(db)) {
            process.stdout.write(`  ${a.id.padEnd(26)} ${a.serial}  ${a.subjectDn}  until ${a.cert.notAfter.toISOString().slice(0, 10)}\n`);
          }
          process.stdout.write(`  master key ${ca.master.id} (${ca.master.source === 'env' ? 'GUSU_MASTER_KEY' : ca.master.file})\n`);
        });
        return 0;
      }
      case 'list': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: { kind: { type: 'string' }, alg: { type: 'string' }, status: { type: 'string' }, uscc: { type: 'string' }, department: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
          strict: true,
        });
        if (positionals.length) throw new UsageError('list takes no positional arguments');
        if (values.kind && !SUBJECT_KINDS.includes(values.kind as SubjectKind)) throw new UsageError(`--kind expects ${SUBJECT_KINDS.join(', ')}`);
        if (values.status && !['good', 'revoked', 'expired'].includes(values.status)) throw new UsageError('--status expects good, revoked or expired');
        if (values.limit && (!/^\d+$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > 1000)) throw new UsageError('--limit expects 1 to 1000');
        const items = await withCa(config, (db) =>
          listCertificates(db, {
            kind: values.kind as SubjectKind | undefined,
            alg: values.alg ? alg(values.alg) : undefined,
            status: values.status as 'good' | 'revoked' | 'expired' | undefined,
            uscc: values.uscc,
            department: values.department,
            limit: values.limit ? Number(values.limit) : 50,
          }),
        );
        for (const c of items) {
          process.stdout.write(
            values.json
              ? JSON.stringify(c) + '\n'
              : `${c.serial}  ${c.alg.padEnd(17)}  ${c.kind.padEnd(12)}  ${c.status.padEnd(7)}  ${c.notAfter.toISOString().slice(0, 10)}  ${c.subjectDn}\n`,
          );
        }
        return 0;
      }
      case 'issue': {
        const { values, positionals } = parseArgs({
          args: rest,
          options: {
            alg: { type: 'string' },
            kind: { type: 'string' },
            uscc: { type: 'string' },
            name: { type: 'string' },
            department: { type: 'string' },
            'node-id': { type: 'string' },
            'system-id': { type: 'string' },
            'staff-id': { type: 'string' },
            csr: { type: 'string' },
            days: { type: 'string' },
            out: { type: 'string' },
          },
          strict: true,
        });
        if (positionals.length) throw new UsageError('issue takes no positional arguments');
        const a = alg(values.alg);
        if (!values.kind || !SUBJECT_KINDS.includes(values.kind as SubjectKind)) throw new UsageError(`--kind expects ${SUBJECT_KINDS.join(', ')}`);
        checkOut(values.out, values.csr === undefined);
        const csr = values.csr === undefined ? undefined : readFile(values.csr);
        const issued = await withCa(config, (db, ca) =>
          asUsage(
            issueCertificate(db, ca, operator(), {
              alg: a,
              csr,
              validDays: days(values.days),
              subject: {
                kind: values.kind as SubjectKind,
                uscc: values.uscc,
                name: values.name,
                department: values.department,
                nodeId: values['node-id'],
                systemId: values['system-id'],
                staffId: values['staff-id'],
              },
            }),
          ),
        );
        writeIssued(issued, values.out);
        return 0;
      }
      case 'renew': {
        const { values, positionals } = parseArgs({ args: rest, options: { csr: { type: 'string' }, days: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true, strict: true });
        const serial = oneSerial(positionals);
        const csr = values.csr === undefined ? undefined : readFile(values.csr);
        const renewed = await withCa(config, async (db, ca) => {
          // a renewal that generates a key needs somewhere to put it: check before changing anything
          if (!csr) {
            const { rows } = await db.query<{ key_generated: boolean }>('select key_generated from ca.certificate where serial = $1', [serial.toLowerCase().replace(/^0+/, '')]);
            checkOut(values.out, rows[0]?.key_generated ?? false);
          }
          return asUsage(renewCertificate(db, ca, operator(), serial, { csr, validDays: days(values.days) }));
        });
        writeIssued(renewed, values.out);
        return 0;
      }
      case 'revoke': {
        const { values, positionals } = parseArgs({ args: rest, options: { reason: { type: 'string' } }, allowPositionals: true, strict: true });
        const serial = oneSerial(positionals);
        if (!values.reason || !REVOCATION_REASONS.includes(values.reason as RevocationReason)) throw new UsageError(`--reason expects one of ${REVOCATION_REASONS.join(', ')}`);
        const r = await withCa(config, (db, ca) => asUsage(revokeCertificate(db, ca, operator(), serial, values.reason as RevocationReason)));
        process.stdout.write(`revoked ${r.serial} at ${r.revokedAt.toISOString()} (${r.reason}); CRL number ${r.crlNumber} published\n`);
        return 0;
      }
      case 'status': {
        const { values, positionals } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
        const serial = oneSerial(positionals);
        const s = await withCa(config, (db) => certificateStatus(db, serial));
        if (values.json) process.stdout.write(JSON.stringify(s) + '\n');
        else {
          const lines = [`${s.serial}: ${s.status}`];
          if (s.subjectDn) lines.push(`  subject: ${s.subjectDn}`, `  ${s.alg} ${s.kind}, issued by ${s.issuer}`, `  valid: ${s.notBefore} to ${s.notAfter}`);
          if (s.revokedAt) lines.push(`  revoked: ${s.revokedAt} (${s.reason})`);
          if (s.renewedFrom) lines.push(`  renews: ${s.renewedFrom}`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        return 0;
      }
      case 'crl': {
        const { values, positionals } = parseArgs({ args: rest, options: { pem: { type: 'boolean' }, out: { type: 'string' } }, allowPositionals: true, strict: true });
        if (positionals.length !== 1) throw new UsageError('expects one ALG');
        const a = alg(positionals[0], 'ALG');
        const crl = await withCa(config, (db, ca) => currentCrl(db, ca, a));
        const body = values.pem ? Buffer.from(toPem('X509 CRL', crl.der)) : crl.der;
        if (values.out) {
          fs.writeFileSync(values.out, body);
          process.stdout.write(`wrote CRL number ${crl.number} of the ${a} issuing CA (this update ${crl.thisUpdate.toISOString()}, next ${crl.nextUpdate.toISOString()}) to ${values.out}\n`);
        } else if (values.pem || !process.stdout.isTTY) process.stdout.write(body);
        else throw new UsageError('the DER CRL is binary: give --out FILE, --pem, or redirect stdout');
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown sub-command ${JSON.stringify(sub)}` : 'expects a sub-command');
    }
  },
};
