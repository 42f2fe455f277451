// The demo city's exchange (GUSU_DEMO on, on the hub, once per database; all synthetic): five
// department systems with certificates from the municipal CA, the resources they provide, a few
// subscriptions, and a few hundred synthetic messages published through the real path — so the
// console has something to show and `npx gusu exchange ...` can be tried at once. The demo members'
// private keys are written to GUSU_DATA_DIR/exchange-demo/ (0600): demo only, never in production.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { getSetting, setSetting } from '../../db/index.ts';
import type { ModuleContext } from '../../module.ts';
import { caContextFor, issueCertificate } from '../identity/ca/index.ts';
import type { Alg } from '../identity/crypto/index.ts';
import { signBatch } from './batch.ts';
import type { UnsignedEvent } from './envelope.ts';
import { publish } from './publish.ts';
import { entryOfResource, seedApprovedAgreement } from '../catalog/index.ts';
import { memberId, registerMember, saveResource, subscribe, grantEntitlement, getMember } from './registry.ts';
import type { ExchangeRuntime } from './runtime.ts';

const SETTING = 'exchange.demo';

export const DEMO_MEMBERS: { code: string; subsystem: string; name: string; alg: Alg }[] = [
  { code: 'SZ-GA', subsystem: 'hukou', name: '市公安局 人口户籍管理系统（演示）', alg: 'ecdsa-p256-sha256' },
  { code: 'SZ-MZ', subsystem: 'marriage', name: '市民政局 婚姻登记系统（演示）', alg: 'ecdsa-p256-sha256' },
  { code: 'SZ-RS', subsystem: 'social', name: '市人社局 社保经办系统（演示）', alg: 'ecdsa-p256-sha256' },
  { code: 'SZ-WJW', subsystem: 'births', name: '市卫健委 出生医学证明系统（演示）', alg: 'sm2-sm3' },
  { code: 'SZ-SCJG', subsystem: 'registry', name: '市市场监管局 企业登记系统（演示）', alg: 'ecdsa-p256-sha256' },
];

const ID = { type: 'string', pattern: '^[0-9]{17}[0-9X]$' };

export const DEMO_RESOURCES = [
  {
    id: 'population.person',
    name: '户籍人口信息（演示）',
    nameEn: 'Registered residents (demo)',
    provider: 'SZ-GA/hukou',
    share: 'open' as const,
    keyField: 'idNumber',
    schema: { type: 'object', required: ['idNumber', 'name', 'change'], properties: { idNumber: ID, name: { type: 'string', maxLength: 50 }, change: { enum: ['registered', 'moved-in', 'moved-out', 'address', 'deceased'] }, divisionCode: { type: 'string', pattern: '^[0-9]{6,12}$' }, synthetic: { const: true } } },
  },
  {
    id: 'civil.marriage',
    name: '婚姻登记信息（演示）',
    nameEn: 'Marriage registrations (demo)',
    provider: 'SZ-MZ/marriage',
    share: 'conditional' as const,
    keyField: 'idNumber',
    schema: { type: 'object', required: ['idNumber', 'spouseIdNumber', 'kind', 'date'], properties: { idNumber: ID, spouseIdNumber: ID, kind: { enum: ['marriage', 'divorce'] }, date: { type: 'string', format: 'date' }, synthetic: { const: true } } },
  },
  {
    id: 'health.birth',
    name: '出生医学证明信息（演示）',
    nameEn: 'Birth certificates (demo)',
    provider: 'SZ-WJW/births',
    share: 'open' as const,
    keyField: 'motherIdNumber',
    schema: { type: 'object', required: ['certificateNo', 'motherIdNumber', 'date', 'gender'], properties: { certificateNo: { type: 'string', maxLength: 20 }, motherIdNumber: ID, date: { type: 'string' }, gender: { enum: ['M', 'F'] }, synthetic: { const: true } } },
  },
  {
    id: 'enterprise.registration',
    name: '企业登记信息（演示）',
    nameEn: 'Enterprise registrations (demo)',
    provider: 'SZ-SCJG/registry',
    share: 'open' as const,
    keyField: 'uscc',
    schema: { type: 'object', required: ['uscc', 'name', 'change'], properties: { uscc: { type: 'string', pattern: '^[0-9A-HJ-NPQRTUWXY]{18}$' }, name: { type: 'string', maxLength: 200 }, change: { enum: ['established', 'amended', 'deregistered'] }, synthetic: { const: true } } },
  },
];

function demoKeyDir(ctx: ModuleContext): string {
  return path.join(ctx.config.dataDir, 'exchange-demo');
}

function synthId(rand: () => number): string {
  const body = `3205${String(Math.floor(rand() * 100)).padStart(2, '0')}19${String(50 + Math.floor(rand() * 50))}${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}${String(Math.floor(rand() * 1000)).padStart(3, '0')}`;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body].reduce((s, d, i) => s + Number(d) * w[i]!, 0);
  return body + '10X98765432'[sum % 11];
}

export async function seedDemoExchange(ctx: ModuleContext, rt: ExchangeRuntime): Promise<void> {
  if (rt.self.upstream || (await getSetting(ctx.db, SETTING))) return;
  const ca = caContextFor(ctx);
  const dir = demoKeyDir(ctx);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = new Map<string, { key: string; alg: Alg }>();
  for (const m of DEMO_MEMBERS) {
    const id = memberId(rt.cfg.instance, 'GOV', m.code, m.subsystem);
    if (await getMember(ctx.db, id)) continue;
    const issued = await issueCertificate(ctx.db, ca, { kind: 'system', id: 'gusu-demo' }, { alg: m.alg, subject: { kind: 'system', systemId: m.subsystem, department: m.code, name: m.name } });
    await registerMember(ctx.db, rt.trust, rt.cfg.instance, rt.self.id, { memberClass: 'GOV', memberCode: m.code, subsystem: m.subsystem, name: m.name, certificate: issued.certificate }, rt.departments);
    const file = path.join(dir, `${m.code}-${m.subsystem}.pem`);
    fs.writeFileSync(file, issued.privateKey!, { mode: 0o600 });
    keys.set(id, { key: issued.privateKey!, alg: m.alg });
  }
  const full = (short: string) => `${rt.cfg.instance}/GOV/${short}`;
  for (const r of DEMO_RESOURCES) await saveResource(ctx.db, { ...r, provider: full(r.provider) });
  const member = async (short: string) => (await getMember(ctx.db, full(short)))!;
  await subscribe(ctx.db, await member('SZ-RS/social'), { resource: 'population.person', delivery: 'pull' });
  await subscribe(ctx.db, await member('SZ-MZ/marriage'), { resource: 'population.person', delivery: 'pull' });
  // 出生医学证明 and 婚姻登记 are 有条件共享 in the catalog: public security receives them under
  // agreements that grant the items the household register needs (without a catalog entry: the
  // exchange's own entitlement)
  const agreed = async (resource: string, short: string, items: string[], purpose: string) => {
    const entry = await entryOfResource(ctx.db, resource);
    if (entry) await seedApprovedAgreement(ctx.db, entry.code, short.split('/')[0]!, items, purpose);
    else await grantEntitlement(ctx.db, resource, full(short), 'gusu-demo', null);
  };
  await agreed('health.birth', 'SZ-GA/hukou', ['certificateNo', 'motherIdNumber', 'date', 'gender'], '出生登记落户');
  await subscribe(ctx.db, await member('SZ-GA/hukou'), { resource: 'health.birth', delivery: 'pull' });
  await agreed('civil.marriage', 'SZ-GA/hukou', ['idNumber', 'spouseIdNumber', 'kind', 'date'], '户籍婚姻状况变更');
  await subscribe(ctx.db, await member('SZ-GA/hukou'), { resource: 'civil.marriage', delivery: 'pull' });
  await subscribe(ctx.db, await member('SZ-RS/social'), { resource: 'enterprise.registration', delivery: 'pull' });

  // synthetic traffic, through the real publish path (batch-signed: one signature per batch)
  let seed = ctx.config.demoSeed;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const send = async (short: string, resource: string, type: string, rows: { key: string; data: Record<string, unknown> }[]) => {
    const id = full(short);
    const k = keys.get(id);
    if (!k || rows.length === 0) return;
    const events: UnsignedEvent[] = rows.map((r) => ({
      specversion: '1.0',
      id: crypto.randomUUID(),
      source: `urn:gusu:member:${id}`,
      type,
      time: new Date().toISOString(),
      gusumember: id,
      gusuresource: resource,
      gusukey: r.key,
      data: { ...r.data, synthetic: true },
    }));
    const b = signBatch(events, k.key, k.alg);
    const mk = await rt.caches.member(ctx.db, rt.trust, id);
    if ('error' in mk) throw new Error(mk.error);
    await publish(rt, mk, { events: b.events, batch: { header: b.header, proofs: b.proofs } });
  };
  const names = ['张伟', '王芳', '李娜', '刘洋', '陈静', '杨磊', '赵敏', '黄勇', '周婷', '吴刚'];
  const people = Array.from({ length: 120 }, () => ({ idNumber: synthId(rand), name: names[Math.floor(rand() * names.length)]! }));
  const changes = ['registered', 'moved-in', 'moved-out', 'address'] as const;
  await send('SZ-GA/hukou', 'population.person', 'cn.gov.suzhou.population.person.changed', people.map((p) => ({ key: p.idNumber, data: { ...p, change: changes[Math.floor(rand() * changes.length)], divisionCode: '320508' } })));
  await send('SZ-WJW/births', 'health.birth', 'cn.gov.suzhou.health.birth.certified', people.slice(0, 40).map((p, i) => ({ key: p.idNumber, data: { certificateNo: `Q320${String(100000 + i)}`, motherIdNumber: p.idNumber, date: '2026-11-20', gender: i % 2 ? 'M' : 'F' } })));
  await send('SZ-MZ/marriage', 'civil.marriage', 'cn.gov.suzhou.civil.marriage.registered', people.slice(40, 70).map((p, i) => ({ key: p.idNumber, data: { idNumber: p.idNumber, spouseIdNumber: people[70 + i]!.idNumber, kind: 'marriage', date: '2026-11-18' } })));
  await setSetting(ctx.db, SETTING, { seededAt: new Date().toISOString(), keyDir: dir, synthetic: true });
  ctx.log.info({ members: DEMO_MEMBERS.length, keyDir: dir }, 'exchange demo seeded (synthetic); demo member keys are in the data directory');
}
