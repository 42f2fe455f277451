// The checks of `gusu security check`: each inspects one part of the running installation and returns
// findings, one per real problem, or a single 'info' line saying the check passed. Read-only: nothing
// here changes the database or the data directory.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../../db/index.ts';
import { contentSecurityPolicy } from '../../http/csp.ts';
import { verifyAudit } from '../audit/index.ts';
import { DEMO_ACCOUNTS_FILE, demoAccounts } from '../identity/accounts/demo.ts';
import { verifyPassword } from '../identity/accounts/passwords.ts';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

export interface Finding {
  /** stable identifier of the kind of finding, e.g. 'files.permissions' */
  id: string;
  severity: Severity;
  title: { zh: string; en: string };
  detail: string;
  remedy: string;
}

export interface CheckInputs {
  db: Queryable;
  config: Config;
  now?: Date;
  /** the CSP the server sends; default: contentSecurityPolicy() of src/http/csp.ts */
  csp?: string;
}

/** certificates expiring within this many days are reported */
export const EXPIRY_WARNING_DAYS = 30;
/** the documented baseline for GUSU_LOGIN_RATE_PER_MINUTE */
export const LOGIN_RATE_BASELINE = 60;
/** files in GUSU_DATA_DIR holding secrets: only their owner may read them */
export const SECRET_FILES = ['master.key', 'pg-credentials.json', DEMO_ACCOUNTS_FILE] as const;

const passed = (id: string, zh: string, en: string, detail: string): Finding => ({ id, severity: 'info', title: { zh, en }, detail, remedy: '' });

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

async function tableExists(q: Queryable, name: string): Promise<boolean> {
  const { rows } = await q.query<{ t: string | null }>('select to_regclass($1)::text as t', [name]);
  return rows[0]?.t != null;
}

// ---------------------------------------------------------------------------------------------
// (1) the audit chain

export async function checkAuditChain(q: Queryable): Promise<Finding[]> {
  if (!(await tableExists(q, 'audit.entry'))) {
    return [{ id: 'audit.missing', severity: 'medium', title: { zh: '审计日志未建立', en: 'No audit log' }, detail: 'the audit schema is not in this database', remedy: 'run `gusu migrate`' }];
  }
  const r = await verifyAudit(q);
  if (r.ok) return [passed('audit.chain', '审计日志哈希链完整', 'Audit chain intact', `${r.entries} entries verified, head ${r.head}`)];
  return [
    {
      id: 'audit.chain',
      severity: 'critical',
      title: { zh: '审计日志哈希链被破坏', en: 'Audit chain broken' },
      detail: `the chain breaks at seq ${r.firstBroken.seq}: ${r.firstBroken.reason}`,
      remedy: 'treat as a security incident: preserve the database, compare with the latest backup and the last anchor (`gusu audit verify --anchor`), find who had superuser access',
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// (2) certificates near expiry, or expired and never revoked

interface CertRow {
  serial: string;
  subject_dn: string;
  not_after: Date;
  source: 'authority' | 'certificate';
}

export async function checkCertificates(q: Queryable, now: Date = new Date()): Promise<Finding[]> {
  if (!(await tableExists(q, 'ca.certificate'))) return [passed('certificates', '无证书颁发机构', 'No certificate authority', 'the ca schema is not in this database')];
  // listCertificates() has no not_after filter and caps at 1000 rows: a read-only query instead
  const horizon = new Date(now.getTime() + EXPIRY_WARNING_DAYS * 86_400_000);
  const { rows } = await q.query<CertRow>(
    `select serial, subject_dn, not_after, 'certificate' as source from ca.certificate where status = 'good' and not_after < $1
     union all
     select serial, subject_dn, not_after, 'authority' as source from ca.authority where not_after < $1
     order by not_after`,
    [horizon],
  );
  const findings: Finding[] = [];
  const expired = rows.filter((r) => r.not_after <= now);
  const soon = rows.filter((r) => r.not_after > now);
  const list = (rs: CertRow[]) =>
    rs.slice(0, 20).map((r) => `${r.source === 'authority' ? 'CA ' : ''}${r.serial} (${r.subject_dn}) ${r.not_after.toISOString()}`).join('; ') + (rs.length > 20 ? `; … ${rs.length - 20} more` : '');
  if (soon.length) {
    findings.push({
      id: 'certificates.expiring',
      severity: 'high',
      title: { zh: `${soon.length} 张证书将在 ${EXPIRY_WARNING_DAYS} 天内到期`, en: `${soon.length} certificate(s) expire within ${EXPIRY_WARNING_DAYS} days` },
      detail: list(soon),
      remedy: 'renew them (`gusu ca renew SERIAL`) and deliver the new certificates before the old ones expire',
    });
  }
  if (expired.length) {
    findings.push({
      id: 'certificates.expired-unrevoked',
      severity: 'medium',
      title: { zh: `${expired.length} 张证书已过期但未吊销`, en: `${expired.length} expired certificate(s) not revoked` },
      detail: list(expired),
      remedy: 'revoke certificates no longer in use (reason cessation-of-operation or superseded) so they are on the CRL, and renew those still needed',
    });
  }
  if (!findings.length) findings.push(passed('certificates', '证书有效期正常', 'Certificates in date', `no certificate or CA expires within ${EXPIRY_WARNING_DAYS} days`));
  return findings;
}

// ---------------------------------------------------------------------------------------------
// (3) key and credential files readable by others

export function checkFilePermissions(dataDir: string): Finding[] {
  if (process.platform === 'win32') return [passed('files.permissions', '未检查文件权限', 'File permissions not checked', 'not a POSIX file system')];
  const findings: Finding[] = [];
  let present = 0;
  for (const name of SECRET_FILES) {
    const file = path.join(dataDir, name);
    let mode: number;
    try {
      mode = fs.statSync(file).mode & 0o777;
    } catch {
      continue; // absent: nothing to protect
    }
    present++;
    if (mode & 0o077) {
      findings.push({
        id: 'files.permissions',
        severity: 'high',
        title: { zh: `${name} 可被其他用户读取`, en: `${name} is readable by others` },
        detail: `${file} has mode ${mode.toString(8).padStart(4, '0')}: group or other permission bits are set`,
        remedy: `chmod 600 ${file} (and check who could have read it while it was open)`,
      });
    }
  }
  if (!findings.length) findings.push(passed('files.permissions', '密钥文件权限正常', 'Key files private', `${present} secret file(s) in ${dataDir}, none readable by group or others`));
  return findings;
}

// ---------------------------------------------------------------------------------------------
// (4) default credentials and settings below the baseline

/** demo accounts whose password is still the generated one published in demo-accounts.json */
export async function checkDemoCredentials(q: Queryable, config: Config): Promise<Finding[]> {
  if (!(await tableExists(q, 'identity.account')) || !(await tableExists(q, 'platform.setting'))) return [];
  // demoAccounts() only reads a setting: any Queryable will do
  const demo = await demoAccounts(q as Parameters<typeof demoAccounts>[0]);
  if (!demo) return [passed('credentials.demo', '无演示账号', 'No demo accounts', 'no demo accounts were seeded in this database')];
  const logins: { kind: 'staff' | 'citizen'; login: string; password: string }[] = [
    ...demo.staff.map((s) => ({ kind: 'staff' as const, login: s.username, password: s.password })),
    ...(demo.resident ? [{ kind: 'citizen' as const, login: demo.resident.idNumber, password: demo.resident.password }] : []),
  ];
  const still: string[] = [];
  for (const a of logins) {
    const { rows } = await q.query<{ password_hash: string | null }>(`select password_hash from identity.account where kind = $1 and login = $2 and status = 'active'`, [a.kind, a.login]);
    if (rows[0] && (await verifyPassword(a.password, rows[0].password_hash)).ok) still.push(a.login);
  }
  if (!still.length) return [passed('credentials.demo', '演示账号密码已更改或停用', 'Demo passwords changed', 'no active account still uses its published demo password')];
  const exposed = !isLoopbackHost(config.host);
  return [
    {
      id: 'credentials.demo',
      severity: exposed ? 'high' : 'low',
      title: { zh: `${still.length} 个账号仍使用公开的演示密码`, en: `${still.length} account(s) still use their published demo password` },
      detail: `${still.join(', ')}: the passwords are kept in clear in platform.setting and ${DEMO_ACCOUNTS_FILE}${exposed ? `, and HOST=${config.host} is reachable from other machines` : ''}`,
      remedy: 'disable the demo accounts or change their passwords; in production run with GUSU_DEMO=false',
    },
  ];
}

export function checkSettings(config: Config): Finding[] {
  const findings: Finding[] = [];
  const exposed = !isLoopbackHost(config.host);
  if (config.demo && exposed) {
    findings.push({
      id: 'settings.demo-exposed',
      severity: 'high',
      title: { zh: '演示模式在非本机地址上运行', en: 'Demo mode on a non-loopback address' },
      detail: `GUSU_DEMO is on and HOST=${config.host}: the demo accounts and synthetic data are reachable from other machines`,
      remedy: 'set GUSU_DEMO=false, or HOST=127.0.0.1 for a local demonstration',
    });
  }
  if (exposed) {
    const urls: [string, string | null][] = [
      ['GUSU_PUBLIC_URL', config.publicUrl],
      ['GUSU_INTERNAL_URL', config.internalUrl],
    ];
    for (const [name, url] of urls) {
      if (url === null && name === 'GUSU_INTERNAL_URL') continue; // falls back to the public URL on one port
      if (url !== null && url.startsWith('https://')) continue;
      findings.push({
        id: 'settings.tls',
        severity: 'high',
        title: { zh: `${name} 未使用 HTTPS`, en: `${name} is not https` },
        detail: `${name}=${url ?? '(unset: http://HOST:PORT)'} while HOST=${config.host} is not loopback: no TLS, and session cookies are not marked Secure`,
        remedy: `terminate TLS in front of the platform and set ${name}=https://…`,
      });
    }
  }
  if (config.loginRatePerMinute > LOGIN_RATE_BASELINE) {
    findings.push({
      id: 'settings.login-rate',
      severity: 'medium',
      title: { zh: '登录频率限制高于基线', en: 'Login rate limit above the baseline' },
      detail: `GUSU_LOGIN_RATE_PER_MINUTE=${config.loginRatePerMinute}, baseline at most ${LOGIN_RATE_BASELINE}: password guessing is throttled less`,
      remedy: `set GUSU_LOGIN_RATE_PER_MINUTE to ${LOGIN_RATE_BASELINE} or less (default 30)`,
    });
  }
  if (!findings.length) {
    findings.push(passed('settings', '配置符合基线', 'Settings meet the baseline', `HOST=${config.host}, demo ${config.demo ? 'on' : 'off'}, login rate ${config.loginRatePerMinute}/min`));
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------
// (5) the Content-Security-Policy

export function checkCsp(csp: string = contentSecurityPolicy()): Finding[] {
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map((d) => [d[0]!.toLowerCase(), d.slice(1)] as const),
  );
  const problems: string[] = [];
  for (const [name, sources] of directives) {
    for (const bad of ["'unsafe-inline'", "'unsafe-eval'"]) if (sources.includes(bad)) problems.push(`${name} allows ${bad}`);
  }
  const fa = directives.get('frame-ancestors');
  if (!fa || fa.join(' ') !== "'none'") problems.push(`frame-ancestors is ${fa ? fa.join(' ') : 'missing'}, not 'none'`);
  if (!directives.has('default-src')) problems.push('default-src is missing');
  if (!problems.length) return [passed('csp', '内容安全策略符合基线', 'CSP meets the baseline', csp)];
  return [
    {
      id: 'csp',
      severity: 'medium',
      title: { zh: '内容安全策略低于基线', en: 'Content-Security-Policy below the baseline' },
      detail: `${problems.join('; ')} (policy: ${csp})`,
      remedy: "remove 'unsafe-inline' and 'unsafe-eval' and keep frame-ancestors 'none' in src/http/csp.ts",
    },
  ];
}
