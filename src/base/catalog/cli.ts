// `gusu catalog check [DIR] | search [QUERY] | show CODE | freshness [--department D] [--late]`: for
// the people who keep the city's catalog files (check before deploying) and for operators.
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.ts';
import { loadCityProfile } from '../../config/profile.ts';
import { withCommandDb } from '../../db/index.ts';
import { UsageError, wholeNumberFlag, type Command } from '../../module.ts';
import { loadCatalogProfile, SHARE_TYPES, UPDATE_CYCLES } from './model.ts';
import { freshness, getEntry, searchEntries, type Entry } from './store.ts';

const USAGE = [
  'gusu catalog check [DIR]                      validate DIR/catalog/*.json (default: the configured city profile)',
  '       gusu catalog search [QUERY] [--provider D] [--share unconditional|conditional|none] [--cycle C] [--limit N] [--json]',
  '       gusu catalog show CODE [--json]                one entry, e.g. 101001/000001',
  '       gusu catalog freshness [--department D] [--late] [--json]',
].join('\n');

const SHARE_ZH: Record<string, string> = { unconditional: '无条件共享', conditional: '有条件共享', none: '不予共享' };
const NEEDS = { app: 'gusu-catalog', needs: ['catalog.entry'], what: 'the catalog' } as const;

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function line(e: Entry): string {
  return `${e.code}  ${e.name}  ${e.provider}  ${SHARE_ZH[e.share.type]}  ${e.updateCycle}${e.open.open ? '  公开' : ''}`;
}

export const catalogCommand: Command = {
  summary: 'check the city profile catalog, search it, show an entry, list late entries',
  usage: USAGE,
  async run(args, config: Config) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'check': {
        const { positionals } = parse(rest, {});
        const dir = positionals[0] ?? config.profileDir;
        const profile = loadCityProfile(dir);
        const c = loadCatalogProfile(dir, profile.departments);
        const providers = new Set(c.entries.map((e) => e.provider)).size;
        process.stdout.write(`${dir}: ${c.entries.length} entries from ${providers} departments, ${c.categories.length} categories: valid\n`);
        return 0;
      }
      case 'search': {
        const { values, positionals } = parse(rest, { provider: { type: 'string' }, share: { type: 'string' }, cycle: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
        if (values.share && !SHARE_TYPES.includes(values.share as never)) throw new UsageError(`--share expects one of ${SHARE_TYPES.join(', ')}`);
        if (values.cycle && !UPDATE_CYCLES.includes(values.cycle as never)) throw new UsageError(`--cycle expects one of ${UPDATE_CYCLES.join(', ')}`);
        const limit = wholeNumberFlag('limit', values.limit as string | undefined, 1, 100) ?? 20;
        return withCommandDb(config, NEEDS, async (db) => {
          const r = await searchEntries(db, { q: positionals.join(' '), provider: values.provider as string | undefined, shareType: values.share as never, updateCycle: values.cycle as never, limit, view: 'all' });
          if (values.json) process.stdout.write(JSON.stringify({ total: r.total, items: r.items.map((e) => ({ code: e.code, name: e.name, provider: e.provider, share: e.share.type, updateCycle: e.updateCycle, score: e.score })) }) + '\n');
          else process.stdout.write(`${r.total} entries${r.total > r.items.length ? ` (first ${r.items.length})` : ''}\n${r.items.map(line).join('\n')}${r.items.length ? '\n' : ''}`);
          return 0;
        });
      }
      case 'show': {
        const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
        const code = positionals[0];
        if (!code || !/^[1-3]\d{5}(\d{2})?\/\d{6}$/.test(code)) throw new UsageError('show expects an entry code such as 101001/000001');
        return withCommandDb(config, NEEDS, async (db) => {
          const e = await getEntry(db, code);
          if (!e) {
            process.stderr.write(`no catalog entry ${code}\n`);
            return 1;
          }
          if (values.json) process.stdout.write(JSON.stringify(e) + '\n');
          else {
            process.stdout.write(
              [
                line(e),
                e.abstract,
                `维护: ${e.maintainer.department} ${e.maintainer.post}`,
                `共享: ${SHARE_ZH[e.share.type]}${e.share.condition ? ` — ${e.share.condition}` : ''}${e.share.legalBasis ? ` — ${e.share.legalBasis}` : ''}`,
                `信息项: ${e.items.map((i) => `${i.name}(${i.field}${i.personal ? ', 个人信息' : ''})`).join('、')}`,
                ...(e.exchangeResource ? [`交换资源: ${e.exchangeResource}`] : []),
              ].join('\n') + '\n',
            );
          }
          return 0;
        });
      }
      case 'freshness': {
        const { values } = parse(rest, { department: { type: 'string' }, late: { type: 'boolean' }, json: { type: 'boolean' } });
        return withCommandDb(config, NEEDS, async (db) => {
          const list = await freshness(db, { department: values.department as string | undefined, lateOnly: Boolean(values.late) });
          if (values.json) process.stdout.write(JSON.stringify(list) + '\n');
          else {
            const late = list.filter((f) => f.late).length;
            process.stdout.write(`${list.length} entries, ${late} late\n`);
            for (const f of list) process.stdout.write(`${f.late ? 'LATE ' : 'ok   '}${f.code}  ${f.name}  ${f.updateCycle}  last ${f.lastArrival?.toISOString().slice(0, 10) ?? '—'}  due ${f.dueAt?.toISOString().slice(0, 10) ?? '—'}  ${f.maintainer.department} ${f.maintainer.post}\n`);
          }
          return 0;
        });
      }
      default:
        throw new UsageError(sub ? `unknown catalog command ${JSON.stringify(sub)}` : 'expects a command');
    }
  },
};
