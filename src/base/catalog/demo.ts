// The demo city's catalog activity (synthetic, labelled so): data arrivals for most entries, so the
// freshness dashboard shows a few late ones; some agreements already decided; one request under
// review in the provider's inbox. Runs once per database.
import type { ModuleContext } from '../../module.ts';
import type { Queryable } from '../../db/index.ts';
import { getSetting, setSetting } from '../../db/index.ts';
import { engineOf } from '../workflow/index.ts';
import { CYCLE_MS } from './model.ts';
import { getEntry } from './store.ts';
import { requestAgreement } from './agreements.ts';
import { startReview } from './review.ts';

const DONE_KEY = 'catalog.demoSeeded';
const SYNTHETIC = '（演示数据 synthetic）';

export async function seedDemoCatalog(ctx: ModuleContext): Promise<void> {
  if (await getSetting<boolean>(ctx.db, DONE_KEY)) return;
  const { rows } = await ctx.db.query<{ code: string; update_cycle: keyof typeof CYCLE_MS; kind: string; provider: string; share_type: string }>(
    `select code, update_cycle, kind, provider, share_type from catalog.entry where status = 'active' order by code`,
  );
  if (!rows.length) return;
  const now = Date.now();
  await ctx.db.tx(async (q) => {
    // every seventh entry with a cycle is left late; the others received data within their cycle
    let i = 0;
    for (const r of rows) {
      const span = CYCLE_MS[r.update_cycle] ?? 30 * 86400_000;
      const late = CYCLE_MS[r.update_cycle] !== null && i++ % 7 === 3;
      const at = new Date(now - (late ? span * 1.5 : span * 0.3));
      await q.query('insert into catalog.arrival (entry, last_at, count) values ($1, $2, $3) on conflict (entry) do nothing', [r.code, at, 1 + (r.code.charCodeAt(r.code.length - 1) % 40)]);
    }
    // decided agreements on conditional entries: approved in full, approved narrowed, refused
    const conditional = rows.filter((r) => r.share_type === 'conditional' && r.kind !== 'base');
    const consumers = ['SZ-RS', 'SZ-GJJ', 'SZ-JY', 'SZ-YB'];
    let n = 0;
    for (const r of conditional.slice(0, 4)) {
      const e = (await getEntry(q, r.code))!;
      const consumer = consumers.find((c) => c !== e.provider)!;
      const fields = e.items.map((it) => it.field);
      const kind = n++ % 3;
      const granted = kind === 2 ? null : kind === 1 ? fields.slice(0, Math.max(1, Math.ceil(fields.length / 2))) : fields;
      await q.query(
        `insert into catalog.agreement (entry, consumer, basis, purpose, legal_basis, items_requested, items_granted, term_start, term_end, status, narrowed,
           decision_note, decided_by, decided_at, requested_by, requested_at)
         values ($1, $2, 'agreement', $3, $4, $5, $6, current_date - 30, current_date + 335, $7, $8, $9, 'demo', now() - interval '25 days', 'demo', now() - interval '30 days')
         on conflict do nothing`,
        [
          e.code, consumer, `业务协同核查${SYNTHETIC}`, '《政务信息资源共享管理暂行办法》（国发〔2016〕51号）第十一条',
          fields, granted, granted ? 'approved' : 'refused', kind === 1, kind === 2 ? `用途与所需信息项不相符${SYNTHETIC}` : kind === 1 ? `仅提供核查所需信息项${SYNTHETIC}` : null,
        ],
      );
    }
  });
  // one request under review: in the provider's inbox, with the process's deadline
  const pending = rows.find((r) => r.share_type === 'conditional' && r.kind !== 'base' && r.provider === 'SZ-MZ') ?? rows.find((r) => r.share_type === 'conditional' && r.kind !== 'base');
  if (pending) {
    const e = (await getEntry(ctx.db, pending.code))!;
    const consumer = e.provider === 'SZ-ZJ' ? 'SZ-RS' : 'SZ-ZJ';
    const today = new Date().toISOString().slice(0, 10);
    const end = new Date(now + 364 * 86400_000).toISOString().slice(0, 10);
    const system = { kind: 'system' as const, id: 'catalog.demo', department: consumer };
    const a = await ctx.db.tx((q) =>
      requestAgreement(q, { entry: e.code, consumer, purpose: `保障性住房资格审核${SYNTHETIC}`, legalBasis: '《公共租赁住房管理办法》第七条', items: e.items.slice(0, 3).map((i) => i.field), termStart: today, termEnd: end }, system),
    ).catch(() => null);
    if (a) await startReview(ctx, engineOf(ctx), a);
  }
  await setSetting(ctx.db, DONE_KEY, true);
}

/**
 * The demo only: an agreement recorded as already approved (synthetic, no review), for seeding a
 * demo city's traffic (the exchange demo's subscriptions). Items: the granted fields, or all.
 */
export async function seedApprovedAgreement(q: Queryable, code: string, consumer: string, items: string[] | null, purpose: string): Promise<boolean> {
  const e = await getEntry(q, code);
  if (!e) return false;
  const all = e.items.map((i) => i.field);
  const granted = items ? all.filter((f) => items.includes(f)) : all;
  await q.query(
    `insert into catalog.agreement (entry, consumer, basis, purpose, legal_basis, items_requested, items_granted, term_start, term_end, status, narrowed, decided_by, decided_at, requested_by)
     values ($1, $2, 'agreement', $3, '《政务信息资源共享管理暂行办法》（国发〔2016〕51号）', $4, $5, current_date, current_date + 365, 'approved', $6, 'demo', now(), 'demo')
     on conflict do nothing`,
    [e.code, consumer, `${purpose}${SYNTHETIC}`, granted, granted, granted.length < all.length],
  );
  return true;
}
