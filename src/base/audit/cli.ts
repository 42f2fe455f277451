// `gusu audit verify | tail | search`. The command reads only: it does not migrate the database it is
// inspecting (an auditor may point it at production or at a restored copy), so it asks for
// `gusu migrate` when the audit schema is missing or behind.
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.ts';
import { withCommandDb, type Db } from '../../db/index.ts';
import { UsageError, wholeNumberFlag, type Command } from '../../module.ts';
import type { AuditEntry } from './chain.ts';
import { searchAudit, verifyAudit, type AuditFilter } from './log.ts';

const USAGE = [
  'gusu audit verify [--anchor SEQ:HASH]',
  '       gusu audit tail [--limit N] [--json]',
  '       gusu audit search [--action A | --action PREFIX.*] [--subject ID-NUMBER] [--actor ID] [--resource-type T] [--resource-id ID]',
  '                         [--since ISO-TIME] [--until ISO-TIME] [--limit N] [--before SEQ] [--json]',
].join('\n');

// entries may carry hostile text: never let it drive the terminal (escapes, bidi overrides)
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatEntry(e: AuditEntry): string {
  const actor = `${e.actor.kind}:${e.actor.id}${e.actor.department ? `@${e.actor.department}` : ''}`;
  const parts = [String(e.seq), e.at, actor, e.action, `${e.resource.type}/${e.resource.id}`, e.outcome];
  if (e.subject) parts.push(`subject=${e.subject}`);
  if (e.purpose) parts.push(`purpose=${JSON.stringify(e.purpose)}`);
  return printable(parts.join('  '));
}

function isoTime(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(Date.parse(v))) throw new UsageError(`--${name} expects an ISO 8601 date or time such as 2026-03-01T08:00:00+08:00, got ${JSON.stringify(v)}`);
  return v;
}

/** an entry's seq and hash recorded elsewhere (a report, the exchange's log): the chain must still hold it */
function parseAnchor(v: string): { seq: number; hash: string } {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(v);
  if (!m || Number(m[1]) < 1) throw new UsageError(`--anchor expects SEQ:HASH (an entry's seq and its 64-digit lower-case hex hash), got ${JSON.stringify(v)}`);
  return { seq: Number(m[1]), hash: m[2]! };
}

function withAuditDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  return withCommandDb(config, { app: 'gusu-audit', needs: ['audit.entry', 'audit.head'], what: 'the audit log' }, fn);
}

async function printEntries(db: Db, filter: AuditFilter, json: boolean): Promise<void> {
  const { items } = await searchAudit(db, filter);
  const out = items.reverse().map((e) => (json ? JSON.stringify(e) : formatEntry(e)));
  if (out.length) process.stdout.write(out.join('\n') + '\n');
}

export const auditCommand: Command = {
  summary: 'verify the hash chain of the audit log, or show its latest or matching entries',
  usage: USAGE,
  async run(args, config) {
    const [sub, ...rest] = args;
    if (sub === 'verify') {
      const { values } = parseArgs({ args: rest, options: { anchor: { type: 'string' } }, strict: true });
      const anchor = values.anchor === undefined ? undefined : parseAnchor(values.anchor);
      const progress = process.stderr.isTTY ? (n: number) => process.stderr.write(`\rverified ${n} entries`) : undefined;
      const result = await withAuditDb(config, (db) => verifyAudit(db, { onProgress: progress, anchor }));
      if (progress) process.stderr.write('\r\u001b[K');
      if (result.ok) {
        process.stdout.write(`audit chain ok: ${result.entries} entries, head ${result.head}\n`);
        return 0;
      }
      process.stdout.write(`audit chain BROKEN at seq ${result.firstBroken.seq}: ${result.firstBroken.reason}\n`);
      return 1;
    }
    if (sub === 'tail') {
      const { values } = parseArgs({ args: rest, options: { limit: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
      const limit = wholeNumberFlag('limit', values.limit, 1, 1000) ?? 20;
      await withAuditDb(config, (db) => printEntries(db, { limit }, values.json ?? false));
      return 0;
    }
    if (sub === 'search') {
      const { values } = parseArgs({
        args: rest,
        options: {
          action: { type: 'string' },
          subject: { type: 'string' },
          actor: { type: 'string' },
          'resource-type': { type: 'string' },
          'resource-id': { type: 'string' },
          since: { type: 'string' },
          until: { type: 'string' },
          limit: { type: 'string' },
          before: { type: 'string' },
          json: { type: 'boolean' },
        },
        strict: true,
      });
      const filter: AuditFilter = {
        action: values.action,
        subject: values.subject,
        actorId: values.actor,
        resourceType: values['resource-type'],
        resourceId: values['resource-id'],
        since: isoTime('since', values.since),
        until: isoTime('until', values.until),
        limit: wholeNumberFlag('limit', values.limit, 1, 1000) ?? 50,
        before: wholeNumberFlag('before', values.before, 1, Number.MAX_SAFE_INTEGER),
      };
      if (Object.entries(filter).every(([k, v]) => v === undefined || k === 'limit')) {
        throw new UsageError('search needs at least one of --action, --subject, --actor, --resource-type, --resource-id, --since, --until, --before (or use `gusu audit tail`)');
      }
      await withAuditDb(config, (db) => printEntries(db, filter, values.json ?? false));
      return 0;
    }
    throw new UsageError(sub === undefined ? 'expects verify, tail or search' : `unknown audit command ${JSON.stringify(sub)}: expects verify, tail or search`);
  },
};
