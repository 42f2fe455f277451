// 审计日志 — public face. An append-only, hash-chained log of logins, permission changes, certificate
// operations and every read or change of personal data (docs/decisions/0005-audit-log.md).
import { fileURLToPath } from 'node:url';
import { getSetting, setSetting } from '../../db/index.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { auditCommand } from './cli.ts';
import { verifyAudit, type AuditAnchor } from './log.ts';
import { auditPolicy, auditPublicRoutes } from './routes.ts';

export { AuditInputError, type AuditActor, type AuditEntry, type AuditEvent } from './chain.ts';
export { accessesOfSubject, appendAudit, appendAuditMany, searchAudit, verifyAudit, type AuditAnchor, type AuditFilter, type VerifyResult } from './log.ts';

/** what the audit.verify job leaves in platform.setting under 'audit.lastVerify' */
export interface LastAuditVerify {
  at: string;
  ms: number;
  ok: boolean;
  entries: number;
  head?: string;
  firstBroken?: { seq: number; reason: string };
  /** the newest head a verification found good: the next one checks the chain still holds it */
  lastGood: (AuditAnchor & { at: string }) | null;
}

export const LAST_VERIFY_KEY = 'audit.lastVerify';

async function runVerification(ctx: ModuleContext): Promise<void> {
  const previous = await getSetting<LastAuditVerify>(ctx.db, LAST_VERIFY_KEY);
  const anchor = previous?.lastGood ?? undefined;
  const t0 = Date.now();
  const r = await verifyAudit(ctx.db, { anchor: anchor ? { seq: anchor.seq, hash: anchor.hash } : undefined });
  const at = new Date().toISOString();
  const record: LastAuditVerify = r.ok
    ? { at, ms: Date.now() - t0, ok: true, entries: r.entries, head: r.head, lastGood: r.entries > 0 ? { seq: r.entries, hash: r.head, at } : (anchor ?? null) }
    : { at, ms: Date.now() - t0, ok: false, entries: r.entries, firstBroken: r.firstBroken, lastGood: anchor ?? null };
  await setSetting(ctx.db, LAST_VERIFY_KEY, record);
  // not thrown: a retry cannot mend the chain; the result is recorded and this is for the operator
  if (!r.ok) ctx.log.error({ audit: r.firstBroken }, `the audit chain is broken at seq ${r.firstBroken.seq}: ${r.firstBroken.reason}`);
}

export const auditModule: GusuModule = {
  name: 'audit',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: auditPolicy,
  publicRoutes: auditPublicRoutes,
  jobs: (ctx) => ({ 'audit.verify': () => runVerification(ctx) }),
  commands: { audit: auditCommand },
};
