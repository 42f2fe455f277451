// `gusu exchange ...`: a member system's side over HTTP (publish, subscribe, pull: through the SDK,
// client.ts, signed with the member's key) and the operator's side over the node's database
// (nodes, members, dead letters and their replay, verification of the message log).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.ts';
import { findRunningEmbedded, openDatabase, type Db } from '../../db/index.ts';
import { UsageError, wholeNumberFlag, type Command } from '../../module.ts';
import { appendAudit } from '../audit/index.ts';
import { parseCertificate } from '../identity/ca/index.ts';
import { algOfKey } from '../identity/crypto/index.ts';
import { CanonicalError } from './canonical.ts';
import { createExchangeClient, ExchangeClientError, MAX_BATCH_EVENTS, type ExchangeClient } from './client.ts';
import { DEFAULT_MAX_BYTES, sealEvent, type UnsignedEvent } from './envelope.ts';
import { verifyLogDb } from './store.ts';
import { SEND_BATCH_OPTIONS, SEND_BATCH_USAGE, sendBatchCommand } from './bulk-cli.ts';

const USAGE = [
  'gusu exchange publish --resource R --type T [--key-value K] [--id ID] [--subject S] (--data JSON | --data @FILE.json)',
  '       gusu exchange publish --resource R --type T --file EVENTS.ndjson [--key-field F] [--id-field F] [--sign-each]',
  '       gusu exchange subscribe --resource R [--push URL]',
  '       gusu exchange subscriptions',
  '       gusu exchange unsubscribe --subscription ID',
  '       gusu exchange pull --subscription ID [--max N] [--wait S] [--ack]',
  SEND_BATCH_USAGE,
  '         member side: [--url URL] --member INSTANCE/CLASS/MEMBER/SUBSYSTEM --key KEY.pem (PKCS#8)',
  '         (--url defaults to $GUSU_EXCHANGE_URL, else http://127.0.0.1:$INTERNAL_PORT or $PORT)',
  '       gusu exchange nodes',
  '       gusu exchange members [--q TEXT] [--limit N]',
  '       gusu exchange dead-letters [--subscription ID] [--limit N]',
  '       gusu exchange replay --subscription ID (--seq N [--seq N ...] | --all)',
  '       gusu exchange verify                  check the message log against this node\'s certificate',
].join('\n');

const MEMBER_ID = /^[A-Za-z0-9-]{1,32}\/(?:GOV|COM|NGO|ORG)\/[A-Za-z0-9-]{1,64}\/[A-Za-z0-9-]{1,64}$/;
// as exchange.resource (migrations/002_node.sql)
const RESOURCE_ID = /^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_KEY_FILE = 64 * 1024;
const MAX_DATA = DEFAULT_MAX_BYTES;
/** who the audit log names for what an operator changes here (as `gusu workflow deploy`) */
const CLI_ACTOR = { kind: 'system' as const, id: 'cli' };

// what comes from the node or the database may carry hostile text: never let it drive the terminal
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
function printable(s: string): string {
  return s.replace(UNPRINTABLE, escape);
}
/** one NDJSON line; the escapes stay valid JSON (they can only occur inside strings) */
function jsonLine(v: unknown): string {
  return JSON.stringify(v).replace(UNPRINTABLE, escape) + '\n';
}
const out = (s: string) => process.stdout.write(s);

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>): Values {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (positionals.length) throw new UsageError(`unexpected ${JSON.stringify(positionals[0])}`);
    return values as Values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // parseArgs explains itself over several lines: one line here
    throw new UsageError((err as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}

const str = (v: Values, name: string): string | undefined => {
  const x = v[name];
  if (x === undefined) return undefined;
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${name} expects a value`);
  return x;
};
const required = (v: Values, name: string, what: string): string => {
  const x = str(v, name);
  if (x === undefined) throw new UsageError(`--${name} ${what} is required`);
  return x;
};

function resourceFlag(v: Values): string {
  const r = required(v, 'resource', 'R (a catalog resource id)');
  if (r.length > 120 || !RESOURCE_ID.test(r)) throw new UsageError(`--resource expects a resource id such as cn.gov.suzhou.population.person, got ${JSON.stringify(printable(r.slice(0, 80)))}`);
  return r;
}

function subscriptionFlag(v: Values, need: boolean): string | undefined {
  const s = need ? required(v, 'subscription', 'ID') : str(v, 'subscription');
  if (s !== undefined && !UUID.test(s)) throw new UsageError(`--subscription expects a subscription id (a UUID), got ${JSON.stringify(printable(s.slice(0, 80)))}`);
  return s;
}

// ------------------------------------------------------------------------------------------------
// member side

const MEMBER_OPTIONS = { url: { type: 'string' }, member: { type: 'string' }, key: { type: 'string' } } as const;

function readKey(file: string): string {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new UsageError(`--key: no file ${JSON.stringify(file)}`);
  if (stat.size > MAX_KEY_FILE) throw new UsageError(`--key ${file}: ${stat.size} bytes is not a private key file`);
  const pem = fs.readFileSync(file, 'utf8');
  try {
    crypto.createPrivateKey(pem);
    algOfKey(pem);
  } catch (err) {
    throw new UsageError(`--key ${file}: not a PKCS#8 PEM private key on P-256 or SM2 (${printable((err as Error).message.split('\n')[0]!.slice(0, 200))})`);
  }
  if (!pem.includes('-----BEGIN PRIVATE KEY-----')) throw new UsageError(`--key ${file}: expected a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")`);
  return pem;
}

function memberFlag(v: Values): string {
  const member = required(v, 'member', 'INSTANCE/CLASS/MEMBER/SUBSYSTEM');
  if (member.length > 255 || !MEMBER_ID.test(member)) throw new UsageError(`--member expects INSTANCE/CLASS/MEMBER/SUBSYSTEM such as SZ/GOV/SZ-GAJ/hukou, got ${JSON.stringify(printable(member.slice(0, 80)))}`);
  return member;
}

function memberClient(v: Values, config: Config): ExchangeClient {
  const member = memberFlag(v);
  const keyFile = required(v, 'key', 'FILE (the member certificate\'s PKCS#8 PEM private key)');
  // GUSU_EXCHANGE_URL is this command's own setting (the platform itself never reads it)
  const url = str(v, 'url') ?? (process.env.GUSU_EXCHANGE_URL || `http://127.0.0.1:${config.internalPort ?? config.port}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--url expects the node's URL such as http://127.0.0.1:3000, got ${JSON.stringify(printable(url.slice(0, 80)))}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) throw new UsageError('--url expects an http(s) base URL without query, fragment or credentials');
  const privateKey = readKey(keyFile);
  return createExchangeClient({ baseUrl: u.href, member, privateKey });
}

/** --data JSON or --data @FILE: a JSON value of at most 1 MiB */
function readData(spec: string): unknown {
  let text = spec;
  let where = '--data';
  if (spec.startsWith('@')) {
    const file = spec.slice(1);
    where = `--data @${file}`;
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (!stat?.isFile()) throw new UsageError(`--data: no file ${JSON.stringify(file)}`);
    if (stat.size > MAX_DATA) throw new UsageError(`${where}: ${stat.size} bytes; an event's data is at most ${MAX_DATA} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } else if (Buffer.byteLength(spec) > MAX_DATA) {
    throw new UsageError(`--data: ${Buffer.byteLength(spec)} bytes; an event's data is at most ${MAX_DATA} bytes`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where} is not JSON: ${printable((err as Error).message.slice(0, 200))}`);
  }
}

/** checks an event the way signing will, so a bad flag is a usage error before anything is sent */
function check(event: UnsignedEvent, fail: (msg: string) => Error): void {
  try {
    sealEvent(event, 'ecdsa-p256-sha256');
  } catch (err) {
    if (err instanceof TypeError || err instanceof CanonicalError) throw fail(printable(err.message.replace(/^cannot sign a malformed event: /, '')));
    throw err;
  }
}

/** lines of a file, streamed, each at most `max` bytes (a hostile file cannot make one huge line) */
async function* lines(file: string, max: number): AsyncGenerator<{ n: number; text: string }> {
  let pending = Buffer.alloc(0);
  let n = 0;
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      n++;
      if (nl > max) throw new Error(`${file}:${n}: a line of more than ${max} bytes`);
      yield { n, text: buf.subarray(0, nl).toString('utf8').replace(/\r$/, '') };
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > max) throw new Error(`${file}:${n + 1}: a line of more than ${max} bytes`);
    pending = Buffer.from(buf);
  }
  if (pending.length) yield { n: n + 1, text: pending.toString('utf8').replace(/\r$/, '') };
}

function keyOf(rec: Record<string, unknown>, field: string, file: string, n: number, what: string): string {
  const v = rec[field];
  if ((typeof v !== 'string' || v === '') && !(typeof v === 'number' && Number.isFinite(v))) throw new Error(`${file}:${n}: no ${what} field ${JSON.stringify(field)} (a string or number)`);
  return String(v);
}

async function publishFile(client: ExchangeClient, v: Values, resource: string, type: string, member: string): Promise<number> {
  const file = required(v, 'file', 'EVENTS.ndjson');
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new UsageError(`--file: no file ${JSON.stringify(file)}`);
  const keyField = str(v, 'key-field');
  const idField = str(v, 'id-field');
  const signEach = v['sign-each'] === true;
  const source = `urn:gusu:member:${member}`;
  const totals = { events: 0, accepted: 0, duplicates: 0, requests: 0 };
  let chunk: UnsignedEvent[] = [];
  let firstLine = 0;
  const flush = async () => {
    if (!chunk.length) return;
    try {
      const r = await client.publishBatch(chunk, { signEach });
      totals.accepted += r.accepted;
      totals.duplicates += r.duplicates;
      totals.requests += r.requests;
      totals.events += chunk.length;
    } catch (err) {
      const at = err instanceof ExchangeClientError && err.index !== undefined ? ` at ${file}:${firstLine + err.index}` : '';
      const before = totals.events ? `; the ${totals.events} events before line ${firstLine} were published (publishing them again is harmless)` : '';
      throw new Error(`${printable((err as Error).message)}${at}${before}`);
    }
    chunk = [];
  };
  for await (const { n, text } of lines(file, MAX_DATA)) {
    if (text.trim() === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}:${n}: not JSON (${printable((err as Error).message.slice(0, 200))})`);
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new Error(`${file}:${n}: every line is a JSON object (the data of one event)`);
    const data = rec as Record<string, unknown>;
    const event: UnsignedEvent = {
      specversion: '1.0',
      id: idField ? keyOf(data, idField, file, n, 'id') : crypto.randomUUID(),
      source,
      type,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data,
      gusumember: member,
      gusuresource: resource,
      ...(keyField ? { gusukey: keyOf(data, keyField, file, n, 'key') } : {}),
    };
    check(event, (msg) => new Error(`${file}:${n}: ${msg}`));
    if (!chunk.length) firstLine = n;
    chunk.push(event);
    if (chunk.length >= MAX_BATCH_EVENTS) await flush();
  }
  await flush();
  if (!totals.requests) {
    out(`no events in ${file}\n`);
    return 0;
  }
  out(`accepted ${totals.accepted}, duplicates ${totals.duplicates} (${totals.events} events in ${totals.requests} request${totals.requests === 1 ? '' : 's'})\n`);
  return 0;
}

async function memberSide(sub: string, rest: string[], config: Config): Promise<number> {
  switch (sub) {
    case 'publish': {
      const v = parse(rest, {
        ...MEMBER_OPTIONS,
        resource: { type: 'string' },
        type: { type: 'string' },
        'key-value': { type: 'string' },
        id: { type: 'string' },
        subject: { type: 'string' },
        data: { type: 'string' },
        file: { type: 'string' },
        'key-field': { type: 'string' },
        'id-field': { type: 'string' },
        'sign-each': { type: 'boolean' },
      });
      const resource = resourceFlag(v);
      const type = required(v, 'type', 'T (the CloudEvents type, e.g. cn.gov.suzhou.population.person.updated)');
      const fromFile = v.file !== undefined;
      if (fromFile === (v.data !== undefined)) throw new UsageError('publish expects either --data (one event) or --file (NDJSON, one event per line)');
      for (const f of fromFile ? ['key-value', 'id', 'subject'] : ['key-field', 'id-field', 'sign-each']) {
        if (v[f] !== undefined) throw new UsageError(`--${f} goes with ${fromFile ? '--data' : '--file'}`);
      }
      const member = memberFlag(v);
      const probe: UnsignedEvent = { specversion: '1.0', id: 'x', source: `urn:gusu:member:${member}`, type, data: null, gusumember: member, gusuresource: resource };
      if (fromFile) {
        check(probe, (msg) => new UsageError(msg));
        const client = memberClient(v, config);
        return await publishFile(client, v, resource, type, member);
      }
      const event: UnsignedEvent = {
        ...probe,
        id: str(v, 'id') ?? crypto.randomUUID(),
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        data: readData(str(v, 'data') ?? ''),
        ...(v['key-value'] !== undefined ? { gusukey: str(v, 'key-value') } : {}),
        ...(v.subject !== undefined ? { subject: str(v, 'subject') } : {}),
      };
      check(event, (msg) => new UsageError(msg));
      const client = memberClient(v, config);
      const r = await client.publish(event);
      out(jsonLine({ id: r.event.id, source: r.event.source, duplicate: r.duplicate, ...(r.seq !== undefined ? { seq: r.seq } : {}), receipt: r.receipt }));
      return 0;
    }
    case 'subscribe': {
      const v = parse(rest, { ...MEMBER_OPTIONS, resource: { type: 'string' }, push: { type: 'string' } });
      const resource = resourceFlag(v);
      const push = str(v, 'push');
      if (push !== undefined) {
        let u: URL | null = null;
        try {
          u = new URL(push);
        } catch {
          // below
        }
        if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || push.length > 500) throw new UsageError(`--push expects the http(s) URL deliveries are POSTed to, got ${JSON.stringify(printable(push.slice(0, 80)))}`);
      }
      const client = memberClient(v, config);
      const sub = await client.subscribe(resource, push ? { delivery: 'push', pushUrl: push } : { delivery: 'pull' });
      out(jsonLine(sub));
      return 0;
    }
    case 'subscriptions': {
      const v = parse(rest, MEMBER_OPTIONS);
      const client = memberClient(v, config);
      const subs = await client.subscriptions();
      for (const s of subs) out(printable([s.id, s.resource, s.delivery, s.pushUrl ?? s.push_url ?? '', s.status ?? ''].filter((x) => x !== '').join('  ')) + '\n');
      if (!subs.length) out('no subscriptions\n');
      return 0;
    }
    case 'unsubscribe': {
      const v = parse(rest, { ...MEMBER_OPTIONS, subscription: { type: 'string' } });
      const id = subscriptionFlag(v, true)!;
      const client = memberClient(v, config);
      await client.unsubscribe(id);
      out(`cancelled ${id}\n`);
      return 0;
    }
    case 'send-batch': {
      // a bulk batch: CSV or NDJSON of any size, streamed and resumable (bulk-cli.ts)
      const v = parse(rest, { ...MEMBER_OPTIONS, ...SEND_BATCH_OPTIONS });
      return await sendBatchCommand(v, resourceFlag(v), () => memberClient(v, config));
    }
    case 'pull': {
      const v = parse(rest, { ...MEMBER_OPTIONS, subscription: { type: 'string' }, max: { type: 'string' }, wait: { type: 'string' }, ack: { type: 'boolean' } });
      const id = subscriptionFlag(v, true)!;
      const max = wholeNumberFlag('max', str(v, 'max'), 1, 1000);
      const wait = wholeNumberFlag('wait', str(v, 'wait'), 0, 30);
      const client = memberClient(v, config);
      const { events } = await client.pull(id, { max, waitSeconds: wait });
      for (const e of events) out(jsonLine(e));
      if (v.ack && events.length) {
        const { acked } = await client.ack(id, events.map((e) => e.seq));
        process.stderr.write(`acked ${acked}\n`);
      } else if (events.length) {
        process.stderr.write(`${events.length} events not acknowledged: they are handed out again after the lease (add --ack)\n`);
      }
      return 0;
    }
    default:
      throw new Error('unreachable');
  }
}

// ------------------------------------------------------------------------------------------------
// operator side

async function withExchangeDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  if (!config.databaseUrl && !findRunningEmbedded(path.resolve(config.dataDir)) && !fs.existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
    throw new Error(`there is no embedded database in ${config.dataDir}: set GUSU_DATA_DIR to the platform's data directory, or DATABASE_URL`);
  }
  // attach: a platform running on the embedded server keeps it
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, attach: true, applicationName: 'gusu-exchange' });
  try {
    const { rows } = await database.db.query<{ node: string | null; log: string | null }>(`select to_regclass('exchange.delivery')::text as node, to_regclass('exchange.log_head')::text as log`);
    if (!rows[0]?.node || !rows[0]?.log) throw new Error('the exchange node is not set up in this database: run `gusu migrate` first');
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

const when = (d: Date | string | null) => (d === null ? '—' : d instanceof Date ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : d);

async function operatorSide(sub: string, rest: string[], config: Config): Promise<number> {
  switch (sub) {
    case 'nodes': {
      parse(rest, {});
      return withExchangeDb(config, async (db) => {
        const { rows } = await db.query<{
          id: string; kind: string; name: string; division_code: string | null; upstream: string | null; url: string | null; is_self: boolean;
          cert_serial: string | null; alg: string | null; status: string; last_contact: Date | null; last_error: string | null;
        }>(`select id, kind, name, division_code, upstream, url, is_self, cert_serial, alg, status, last_contact, last_error
              from exchange.node order by (kind = 'hub') desc, id`);
        for (const n of rows) {
          const parts = [`${n.is_self ? '*' : ' '} ${n.id}`, n.kind, n.status, n.name, n.division_code ?? '—', `upstream ${n.upstream ?? '—'}`, n.url ?? '—', n.cert_serial ? `cert ${n.cert_serial} (${n.alg})` : 'no certificate', `last contact ${when(n.last_contact)}`];
          if (n.last_error) parts.push(`last error: ${n.last_error.slice(0, 200)}`);
          out(printable(parts.join('  ')) + '\n');
        }
        if (!rows.length) out('no nodes (the platform writes them from the profile\'s network.json when it starts)\n');
        return 0;
      });
    }
    case 'members': {
      const v = parse(rest, { q: { type: 'string' }, limit: { type: 'string' } });
      const q = str(v, 'q');
      if (q !== undefined && q.length > 200) throw new UsageError('--q expects at most 200 characters');
      const limit = wholeNumberFlag('limit', str(v, 'limit'), 1, 10_000) ?? 100;
      return withExchangeDb(config, async (db) => {
        const args: unknown[] = [];
        const where = q ? `where id ilike $${args.push(`%${q.replace(/[\\%_]/g, '\\$&')}%`)} or name ilike $1` : '';
        const total = (await db.query<{ n: number }>(`select count(*)::int as n from exchange.member ${where}`, args)).rows[0]!.n;
        const { rows } = await db.query<{ id: string; name: string; department: string | null; node_id: string; alg: string | null; cert_serial: string | null; status: string }>(
          `select id, name, department, node_id, alg, cert_serial, status from exchange.member ${where} order by id limit ${limit}`,
          args,
        );
        for (const m of rows) out(printable([m.id, m.status, `node ${m.node_id}`, m.cert_serial ? `cert ${m.cert_serial} (${m.alg})` : 'no certificate', m.name].join('  ')) + '\n');
        out(total > rows.length ? `${rows.length} of ${total} members (--limit N for more)\n` : `${total} member${total === 1 ? '' : 's'}\n`);
        return 0;
      });
    }
    case 'dead-letters': {
      const v = parse(rest, { subscription: { type: 'string' }, limit: { type: 'string' } });
      const sub = subscriptionFlag(v, false);
      const limit = wholeNumberFlag('limit', str(v, 'limit'), 1, 10_000) ?? 50;
      return withExchangeDb(config, async (db) => {
        const args: unknown[] = [];
        const where = sub ? `and d.subscription = $${args.push(sub)}` : '';
        const { rows } = await db.query<{ subscription: string; seq: string; attempts: number; last_error: string | null; next_at: Date; source: string; id: string; resource: string; key: string | null }>(
          `select d.subscription::text as subscription, d.seq::text as seq, d.attempts, d.last_error, d.next_at, m.source, m.id, m.resource, m.key
             from exchange.delivery d join exchange.message m on m.seq = d.seq
            where d.status = 'dead' ${where}
            order by d.subscription, d.seq limit ${limit}`,
          args,
        );
        for (const r of rows) {
          const parts = [r.subscription, `seq ${r.seq}`, r.resource, `${r.source} ${r.id}`, `key ${r.key ?? '—'}`, `${r.attempts} attempts`, `last error: ${(r.last_error ?? '—').slice(0, 300)}`];
          out(printable(parts.join('  ')) + '\n');
        }
        if (!rows.length) out('no dead letters\n');
        else if (rows.length === limit) out(`(first ${limit}; --limit N for more)\n`);
        return 0;
      });
    }
    case 'replay': {
      const v = parse(rest, { subscription: { type: 'string' }, seq: { type: 'string', multiple: true }, all: { type: 'boolean' } });
      const sub = subscriptionFlag(v, true)!;
      const seqs = ((v.seq as string[] | undefined) ?? []).map((s) => wholeNumberFlag('seq', s, 1, Number.MAX_SAFE_INTEGER)!);
      if ((seqs.length > 0) === (v.all === true)) throw new UsageError('replay expects either --seq N (repeatable) or --all');
      return withExchangeDb(config, async (db) => {
        const exists = await db.query('select 1 from exchange.subscription where id = $1', [sub]);
        if (!exists.rowCount) throw new Error(`no subscription ${sub}`);
        // the change and its audit entry in one transaction (as the console's replay)
        const rowCount = await db.tx(async (c) => {
          const r = await c.query(
            `update exchange.delivery set status = 'ready', attempts = 0, next_at = now(), last_error = null, lease_until = null
              where subscription = $1 and status = 'dead'${seqs.length ? ' and seq = any($2::bigint[])' : ''}`,
            seqs.length ? [sub, seqs] : [sub],
          );
          await appendAudit(c, {
            actor: CLI_ACTOR,
            action: 'exchange.dead-letter.replay',
            resource: { type: 'exchange-subscription', id: sub },
            outcome: 'ok',
            details: { replayed: r.rowCount ?? 0, seqs: seqs.length ? seqs.slice(0, 100) : 'all', ...(seqs.length > 100 ? { more: seqs.length - 100 } : {}), via: 'gusu exchange replay' },
          });
          return r.rowCount ?? 0;
        });
        out(`replayed ${rowCount} dead letter${rowCount === 1 ? '' : 's'} of subscription ${sub}${seqs.length && rowCount < seqs.length ? ` (${seqs.length - rowCount} of the seqs given were not dead)` : ''}\n`);
        return 0;
      });
    }
    case 'verify': {
      parse(rest, {});
      return withExchangeDb(config, async (db) => {
        const self = (await db.query<{ id: string; cert_pem: string | null }>('select id, cert_pem from exchange.node where is_self')).rows[0];
        if (!self) throw new Error('this database has no exchange node of its own yet: start the platform once');
        if (!self.cert_pem) throw new Error(`node ${self.id} has no certificate yet: start the platform (a division node enrols with the hub)`);
        const spki = parseCertificate(self.cert_pem).spki;
        const r = await verifyLogDb(db, spki);
        if (r.ok) {
          out(`ok: ${r.entries} entries (${r.items} messages and receipts), ${r.checkpoints} checkpoints\n`);
          return 0;
        }
        if (r.reason === 'message') {
          out(`message log BROKEN: message ${r.message}: ${r.detail}\n`);
          return 1;
        }
        const where = r.seq !== null ? `seq ${r.seq}` : `entry ${r.index + 1}`;
        out(`message log BROKEN at ${where}${r.checkpoint !== undefined ? ` (checkpoint ${r.checkpoint})` : ''}: ${r.reason}\n`);
        return 1;
      });
    }
    default:
      throw new Error('unreachable');
  }
}

const MEMBER_COMMANDS = new Set(['publish', 'subscribe', 'subscriptions', 'unsubscribe', 'pull', 'send-batch']);
const OPERATOR_COMMANDS = new Set(['nodes', 'members', 'dead-letters', 'replay', 'verify']);

export const exchangeCommand: Command = {
  summary: 'publish, subscribe and pull as a member system (signed HTTP); list nodes, members and dead letters, replay them, verify the message log',
  usage: USAGE,
  async run(args, config) {
    const [sub, ...rest] = args;
    if (sub !== undefined && MEMBER_COMMANDS.has(sub)) {
      try {
        return await memberSide(sub, rest, config);
      } catch (err) {
        // the node's words may carry anything: one printable line
        if (err instanceof ExchangeClientError) throw new Error(printable(err.message.slice(0, 1000)));
        throw err;
      }
    }
    if (sub !== undefined && OPERATOR_COMMANDS.has(sub)) return operatorSide(sub, rest, config);
    const all = [...MEMBER_COMMANDS, ...OPERATOR_COMMANDS].join(', ');
    throw new UsageError(sub === undefined ? `expects a sub-command: ${all}` : `unknown exchange command ${JSON.stringify(printable(sub.slice(0, 40)))}: expects ${all}`);
  },
};
