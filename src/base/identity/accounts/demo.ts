// Demo accounts (GUSU_DEMO on), seeded once per database, marked synthetic: a resident bound to the
// first demo resident, one member of staff per main role in a sensible department, and (when the CA
// is there) an enterprise with a legal-person certificate for the first demo enterprise.
//
// Passwords and TOTP secrets are generated, never fixed: a public demo site with well-known
// administrator passwords would be anyone's. They are kept in platform.setting
// ('identity.demo.accounts'; synthetic accounts only), written to GUSU_DATA_DIR/demo-accounts.json
// (mode 0600) when the database is the embedded one of that directory, printed at start-up by
// demoAccountsSummary(), and shown with the current TOTP codes by `gusu demo-accounts`.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Db } from '../../../db/index.ts';
import { getSetting, setSetting } from '../../../db/index.ts';
import type { ModuleContext } from '../../../module.ts';
import { caContextFor, issueCertificate } from '../ca/index.ts';
import type { Actor } from '../policy.ts';
import { roleById } from '../roles.ts';
import { caPresent } from './ca-bridge.ts';
import { grantRole } from './grants.ts';
import { cachedSecrets } from '../oidc/secrets.ts';
import { createStaffAccount, findAccountByLogin, registerCitizen } from './index.ts';
import { totpCode } from './totp.ts';

export const DEMO_ACCOUNTS_FILE = 'demo-accounts.json';
const SETTING = 'identity.demo.accounts';
const SEEDER: Actor = { kind: 'system', id: 'identity-demo', department: 'SZ-DSJ' };

export interface DemoAccounts {
  notice: string;
  createdAt: string;
  resident: { idNumber: string; name: string; password: string } | null;
  staff: { username: string; name: string; department: string; role: string; scope: string | null; password: string; totpSecret: string }[];
  enterprise: { uscc: string; name: string; certificate: string; privateKey: string; serial: string } | null;
}

/** user name, name, department, post, role (scoped roles to the same department) */
const STAFF: [string, string, string, string, string][] = [
  ['demo.admin', '顾平台', 'SZ-DSJ', '平台管理处处长', 'platform-admin'],
  ['demo.security', '陆安全', 'SZ-DSJ', '网络安全处科员', 'security-officer'],
  ['demo.ca', '沈证书', 'SZ-DSJ', '电子认证中心科员', 'ca-operator'],
  ['demo.steward', '钱户政', 'SZ-GA', '户政管理科科员', 'registry-steward'],
  ['demo.catalog', '朱目录', 'SZ-DSJ', '数据资源处科员', 'catalog-admin'],
  ['demo.exchange', '吴交换', 'SZ-DSJ', '数据交换中心工程师', 'exchange-operator'],
  ['demo.dispatcher', '徐派遣', 'SZ-ZFB', '12345 热线派遣员', 'dispatcher'],
  ['demo.handler', '周承办', 'SZ-ZJ', '物业监管科科员', 'case-handler'],
  ['demo.grid', '陈网格', 'SZ-ZFB', '网格化管理监督员', 'grid-supervisor'],
  ['demo.notices', '韩通知', 'SZ-MZ', '养老服务处科员', 'notice-sender'],
  // the workflow demo (企业开办并联审批): the registration step's handler, its head (escalations), a process designer
  ['demo.registrar', '许登记', 'SZ-SCJG', '登记注册处科员', 'case-handler'],
  ['demo.lead', '林处长', 'SZ-SCJG', '登记注册处处长', 'department-lead'],
  ['demo.designer', '杨流程', 'SZ-ZFB', '政务服务管理处科员', 'process-designer'],
];

const password = () => `demo-${randomBytes(12).toString('base64url')}`;

export async function demoAccounts(db: Db): Promise<DemoAccounts | undefined> {
  return getSetting<DemoAccounts>(db, SETTING);
}

/** Seeds the demo accounts once per database (several processes starting together seed once). */
export async function seedDemoAccounts(ctx: ModuleContext): Promise<DemoAccounts | null> {
  if (await demoAccounts(ctx.db)) return null;
  const seeded = await ctx.db.tx(async (client) => {
    await client.query('select pg_advisory_xact_lock(7110432)');
    if (await getSetting(client, SETTING)) return null;
    const demo: DemoAccounts = {
      notice: 'Synthetic demo accounts of the Gusu demo city: for trying the platform out, never for real use.',
      createdAt: new Date().toISOString(),
      resident: null,
      staff: [],
      enterprise: null,
    };
    for (const [username, name, department, post, role] of STAFF) {
      if (!ctx.profile.departments.some((d) => d.code === department)) continue;
      if (await findAccountByLogin(client, 'staff', username)) continue;
      const pw = password();
      const { account, totpSecret } = await createStaffAccount(client, { username, name, department, post, password: pw, synthetic: true }, SEEDER, { secrets: cachedSecrets(ctx.db) });
      const scope = roleById(role)!.departmentScoped ? department : null;
      await grantRole(client, { accountId: account.id, role, scope }, SEEDER);
      demo.staff.push({ username, name, department, role, scope, password: pw, totpSecret });
    }
    await setSetting(client, SETTING, demo);
    return demo;
  });
  if (!seeded) return null;

  // the resident: registered through the real-name check like anyone (audited), outside the lock
  const { rows: persons } = await ctx.db.query<{ id_number: string; name: string }>(`select id_number, name from population.person where synthetic order by id_number limit 1`);
  if (persons[0]) {
    const pw = password();
    try {
      await registerCitizen(ctx.db, { idNumber: persons[0].id_number, name: persons[0].name, password: pw, synthetic: true }, { ip: 'internal', requestId: 'demo-seed' });
      seeded.resident = { idNumber: persons[0].id_number, name: persons[0].name, password: pw };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'demo resident account not created');
    }
  }
  // the enterprise: a legal-person certificate from the municipal CA (key generated by the CA)
  const { rows: entities } = await ctx.db.query<{ uscc: string; name: string }>(`select uscc, name from legal_entity.entity where synthetic order by uscc limit 1`);
  if (entities[0] && caPresent(ctx)) {
    try {
      const cert = await issueCertificate(ctx.db, caContextFor(ctx), { kind: 'system', id: 'identity-demo' }, { alg: 'sm2-sm3', subject: { kind: 'legal-person', uscc: entities[0].uscc, name: entities[0].name } });
      seeded.enterprise = { uscc: entities[0].uscc, name: entities[0].name, certificate: cert.certificate, privateKey: cert.privateKey!, serial: cert.serial };
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'demo enterprise certificate not issued');
    }
  }
  await setSetting(ctx.db, SETTING, seeded);
  writeDemoFile(ctx, seeded);
  return seeded;
}

/** The file beside the embedded database (only that one: a shared server's data directory is not this database's). */
function writeDemoFile(ctx: ModuleContext, demo: DemoAccounts): void {
  if (ctx.config.databaseUrl) return;
  try {
    fs.mkdirSync(ctx.config.dataDir, { recursive: true });
    const file = path.join(ctx.config.dataDir, DEMO_ACCOUNTS_FILE);
    fs.writeFileSync(file, JSON.stringify(demo, null, 2) + '\n', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'could not write the demo accounts file');
  }
}

/** Lines for the start-up banner: how to sign in as each kind of demo user. Empty without demo accounts. */
export async function demoAccountsSummary(ctx: Pick<ModuleContext, 'db' | 'config'>, at = Date.now()): Promise<string[]> {
  const demo = await demoAccounts(ctx.db);
  if (!demo) return [];
  const lines = ['Demo accounts (synthetic, for trying the platform out; sign in at /auth/login or /console/auth/login):'];
  if (demo.resident) lines.push(`  resident    ID number ${demo.resident.idNumber} (${demo.resident.name})  password ${demo.resident.password}`);
  for (const s of demo.staff) {
    lines.push(`  staff       ${s.username.padEnd(16)} ${s.role}${s.scope ? `@${s.scope}` : ''}  password ${s.password}  TOTP secret ${s.totpSecret} (now ${totpCode(s.totpSecret, at)})`);
  }
  if (demo.enterprise) lines.push(`  enterprise  USCC ${demo.enterprise.uscc} (${demo.enterprise.name})  certificate sign-in: gusu demo-accounts sign '<text to sign>'`);
  lines.push(
    ctx.config.databaseUrl
      ? '  Current TOTP codes: gusu demo-accounts'
      : `  Saved in ${path.join(ctx.config.dataDir, DEMO_ACCOUNTS_FILE)} (mode 0600); current TOTP codes: gusu demo-accounts`,
  );
  return lines;
}
