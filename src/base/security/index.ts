// 安全自查 — `gusu security check`, the 'security.check' job (daily) and /console/security. Inspects the
// running installation: default credentials, certificates near expiry, the audit chain, key files
// readable by others, settings below the baseline, the CSP (docs/security-check.md).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/index.ts';
import { enqueue, findRunningEmbedded, getSetting, openDatabase, setSetting, type Queryable } from '../../db/index.ts';
import { html } from '../../http/html.ts';
import { requestLang } from '../../http/i18n.ts';
import { formatDateTime, notice, sendPage, table } from '../../http/layout.ts';
import { UsageError, type Command, type GusuModule, type ModuleContext } from '../../module.ts';
import { allow } from '../identity/policy.ts';
import {
  checkAuditChain,
  checkCertificates,
  checkCsp,
  checkDemoCredentials,
  checkFilePermissions,
  checkSettings,
  SEVERITIES,
  type CheckInputs,
  type Finding,
  type Severity,
} from './checks.ts';

export * from './checks.ts';

export interface SecurityReport {
  at: string;
  ms: number;
  /** true when there is no critical or high finding */
  ok: boolean;
  summary: Record<Severity, number>;
  findings: Finding[];
}

export const LAST_REPORT_KEY = 'security.lastReport';
export const JOB_KIND = 'security.check';

const RANK: Record<Severity, number> = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };

/** Runs every check; a check that fails to run is itself a finding (medium), not an exception. */
export async function runSecurityCheck(inputs: CheckInputs): Promise<SecurityReport> {
  const t0 = Date.now();
  const now = inputs.now ?? new Date();
  const guarded = async (id: string, f: () => Finding[] | Promise<Finding[]>): Promise<Finding[]> => {
    try {
      return await f();
    } catch (err) {
      return [{ id, severity: 'medium', title: { zh: '检查未能完成', en: 'Check could not run' }, detail: `${id}: ${(err as Error).message}`, remedy: 'fix the error and run `gusu security check` again' }];
    }
  };
  const groups = await Promise.all([
    guarded('audit.chain', () => checkAuditChain(inputs.db)),
    guarded('certificates', () => checkCertificates(inputs.db, now)),
    guarded('files.permissions', () => checkFilePermissions(inputs.config.dataDir)),
    guarded('credentials.demo', () => checkDemoCredentials(inputs.db, inputs.config)),
    guarded('settings', () => checkSettings(inputs.config)),
    guarded('csp', () => checkCsp(inputs.csp)),
  ]);
  const findings = groups.flat().sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const summary = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])) as Record<Severity, number>;
  return { at: now.toISOString(), ms: Date.now() - t0, ok: summary.critical + summary.high === 0, summary, findings };
}

// ---------------------------------------------------------------------------------------------
// The daily job

function dayKey(d: Date): string {
  return `${JOB_KIND}:${d.toISOString().slice(0, 10)}`;
}

/** the next run: tomorrow 02:00 UTC */
function tomorrow(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1, 2, 0, 0));
}

async function runJob(ctx: ModuleContext): Promise<void> {
  const report = await runSecurityCheck({ db: ctx.db, config: ctx.config });
  await setSetting(ctx.db, LAST_REPORT_KEY, report);
  const next = tomorrow(new Date());
  await enqueue(ctx.db, JOB_KIND, {}, { uniqueKey: dayKey(next), runAt: next });
  if (!report.ok) ctx.log.warn({ summary: report.summary }, `security check: ${report.summary.critical} critical, ${report.summary.high} high finding(s); see /console/security`);
}

// ---------------------------------------------------------------------------------------------
// The CLI

const USAGE = 'gusu security check [--json]';

function formatReport(r: SecurityReport): string {
  const lines = r.findings.map((f) => {
    const head = `[${f.severity.toUpperCase()}] ${f.title.en} / ${f.title.zh}`;
    return [head, `    ${f.detail}`, ...(f.remedy ? [`    remedy: ${f.remedy}`] : [])].join('\n');
  });
  const s = r.summary;
  lines.push(`\n${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low, ${s.info} passed — ${r.ok ? 'OK' : 'ACTION NEEDED'}`);
  return lines.join('\n') + '\n';
}

export const securityCommand: Command = {
  summary: 'inspect this installation for weak settings, exposed keys, expiring certificates and a broken audit chain',
  usage: USAGE,
  async run(args, config: Config) {
    const [sub, ...rest] = args;
    if (sub !== 'check') throw new UsageError(sub === undefined ? 'expects check' : `unknown security command ${JSON.stringify(sub)}: expects check`);
    let json = false;
    try {
      json = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true }).values.json ?? false;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (!config.databaseUrl && !findRunningEmbedded(path.resolve(config.dataDir)) && !fs.existsSync(path.join(config.dataDir, 'pg', 'PG_VERSION'))) {
      throw new Error(`there is no embedded database in ${config.dataDir}: set GUSU_DATA_DIR to the platform's data directory, or DATABASE_URL`);
    }
    // attach: a platform running on the embedded server keeps it; this only reads
    const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, attach: true, applicationName: 'gusu-security' });
    let report: SecurityReport;
    try {
      report = await runSecurityCheck({ db: database.db, config });
    } finally {
      await database.close();
    }
    process.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
    return report.ok ? 0 : 1;
  },
};

// ---------------------------------------------------------------------------------------------
// The console page

export async function lastSecurityReport(q: Queryable): Promise<SecurityReport | undefined> {
  return getSetting<SecurityReport>(q, LAST_REPORT_KEY);
}

const SEVERITY_LABEL: Record<Severity, { zh: string; en: string }> = {
  critical: { zh: '严重', en: 'Critical' },
  high: { zh: '高', en: 'High' },
  medium: { zh: '中', en: 'Medium' },
  low: { zh: '低', en: 'Low' },
  info: { zh: '通过', en: 'Passed' },
};

function internalRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  app.get('/console/security', { schema: { hide: true }, config: { action: 'security-report:read' } }, async (req, reply) => {
    ctx.policy.authorize(req.actor, 'security-report:read');
    const lang = requestLang(req);
    const en = lang === 'en';
    const report = await lastSecurityReport(ctx.db);
    const title = en ? 'Security check' : '安全自查';
    reply.header('cache-control', 'no-store');
    if (!report) {
      return sendPage(req, reply, {
        lang,
        shell: 'console',
        title,
        main: html`<h1>${title}</h1>${notice({ body: en ? 'No security check has run yet: it runs daily as a job, or run `gusu security check`.' : '尚未运行安全自查：它每日作为任务运行，也可执行 `gusu security check`。' })}`,
      });
    }
    const s = report.summary;
    const summary = en
      ? `${formatDateTime(report.at, lang)}: ${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low, ${s.info} passed`
      : `${formatDateTime(report.at, lang)}：严重 ${s.critical}，高 ${s.high}，中 ${s.medium}，低 ${s.low}，通过 ${s.info}`;
    const rows = report.findings.map((f) => [SEVERITY_LABEL[f.severity][en ? 'en' : 'zh'], en ? f.title.en : f.title.zh, f.detail, f.remedy]);
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      main: html`<h1>${title}</h1>
${notice({ kind: report.ok ? 'info' : 'warning', title: report.ok ? (en ? 'No critical or high findings' : '无严重或高风险问题') : en ? 'Action needed' : '需要处理', body: summary })}
${table({
  caption: en ? 'Findings of the latest check' : '最近一次自查结果',
  columns: [{ label: en ? 'Severity' : '级别', nowrap: true }, { label: en ? 'Finding' : '问题' }, { label: en ? 'Detail' : '详情' }, { label: en ? 'Remedy' : '处置建议' }],
  rows,
  lang,
})}`,
    });
  });
}

export const securityPolicy = [...allow({ role: 'security-officer' }, 'read', 'security-report'), ...allow({ role: 'platform-admin' }, 'read', 'security-report')];

export const securityModule: GusuModule = {
  name: 'security',
  policies: securityPolicy,
  internalRoutes,
  jobs: (ctx) => ({ [JOB_KIND]: () => runJob(ctx) }),
  commands: { security: securityCommand },
  async start(ctx) {
    // today's run, unless today's report is there already; each run schedules tomorrow's
    const now = new Date();
    const last = await lastSecurityReport(ctx.db);
    if (last?.at.slice(0, 10) !== now.toISOString().slice(0, 10)) await enqueue(ctx.db, JOB_KIND, {}, { uniqueKey: dayKey(now) });
    else await enqueue(ctx.db, JOB_KIND, {}, { uniqueKey: dayKey(tomorrow(now)), runAt: tomorrow(now) });
  },
};
