// The demo accounts: seeded once on first start with GUSU_DEMO, generated credentials, one member of
// staff per main role, a resident bound to a demo resident, an enterprise with a certificate; each
// can sign in.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { demoAccounts, demoAccountsSummary, totpCode } from '../src/base/identity/index.ts';
import { seedDemoAccounts } from '../src/base/identity/accounts/demo.ts';
import { signWithCertificateKey } from '../src/base/identity/ca/index.ts';
import { ROLES } from '../src/base/identity/roles.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;

before(async () => {
  t = await startIdentityPlatform({ GUSU_DEMO_RESIDENTS: '50', GUSU_DEMO_ENTERPRISES: '10' });
});
after(async () => {
  await t?.stop();
});

test('seeded once: a resident, staff for every role, an enterprise; all synthetic', async () => {
  const demo = (await demoAccounts(t.platform.ctx.db))!;
  assert.ok(demo.resident);
  assert.deepEqual(new Set(demo.staff.map((s) => s.role)), new Set(ROLES.map((r) => r.id)));
  assert.ok(demo.enterprise?.certificate.includes('BEGIN CERTIFICATE'));
  for (const s of demo.staff) assert.match(s.password, /^demo-[A-Za-z0-9_-]{16}$/);
  const { rows } = await t.platform.ctx.db.query<{ n: number; synthetic: number }>(`select count(*)::int as n, count(*) filter (where synthetic)::int as synthetic from identity.account`);
  assert.equal(rows[0]!.n, rows[0]!.synthetic);
  assert.equal(await seedDemoAccounts(t.platform.ctx), null, 'a second start seeds nothing');
  const lines = await demoAccountsSummary(t.platform.ctx);
  assert.match(lines.join('\n'), /demo\.admin\s+platform-admin\s+password demo-/);
  assert.match(lines.join('\n'), /resident\s+ID number \d{17}[\dX]/);
  assert.doesNotMatch(lines.join('\n'), /PRIVATE KEY/);
});

test('each kind of demo user signs in', async () => {
  const demo = (await demoAccounts(t.platform.ctx.db))!;
  // staff, on the console
  const admin = demo.staff.find((s) => s.role === 'platform-admin')!;
  const b1 = new Browser();
  const { url } = await b1.follow(`${t.url}/console/auth/login?back=/console/admin/roles`, t.url);
  const page = await (await b1.fetch(url)).text();
  const r1 = await b1.post(`${url}/staff`, { _csrf: csrfOf(page), username: admin.username, password: admin.password, totp: totpCode(admin.totpSecret) });
  assert.equal(r1.status, 303);
  const roles = await b1.follow(new URL(r1.headers.get('location')!, url).href, t.url);
  assert.equal(roles.url, `${t.url}/console/admin/roles`);
  assert.match(await roles.res.text(), /demo\.grid/);

  // the resident, on the portal
  const b2 = new Browser();
  const { url: url2 } = await b2.follow(`${t.url}/auth/login`, t.url);
  const page2 = await (await b2.fetch(url2)).text();
  const r2 = await b2.post(`${url2}/citizen`, { _csrf: csrfOf(page2), idNumber: demo.resident!.idNumber, password: demo.resident!.password });
  assert.equal(r2.status, 303);

  // the enterprise, with its certificate
  const b3 = new Browser();
  const { url: url3 } = await b3.follow(`${t.url}/auth/login`, t.url);
  const page3 = await (await b3.fetch(`${url3}?as=enterprise`)).text();
  const c = await b3.post(`${url3}/enterprise/challenge`, { _csrf: csrfOf(page3), uscc: demo.enterprise!.uscc });
  const html = await c.text();
  const text = /<pre class="challenge" id="challenge">([^<]+)<\/pre>/.exec(html)![1]!.replace(/&amp;/g, '&');
  const r3 = await b3.post(`${url3}/enterprise`, {
    _csrf: csrfOf(html),
    uscc: demo.enterprise!.uscc,
    challenge: text,
    certificate: demo.enterprise!.certificate,
    signature: signWithCertificateKey(demo.enterprise!.privateKey, text).signature.toString('base64'),
  });
  assert.equal(r3.status, 303);
});

test('the identity secrets are sealed under the master key at rest', async () => {
  const { rows } = await t.platform.ctx.db.query<{ value: Record<string, unknown> }>(`select value from platform.setting where key = 'identity.secrets'`);
  const stored = rows[0]!.value;
  assert.deepEqual(Object.keys(stored).sort(), ['by', 'sealed']);
  assert.match(String(stored.by), /^master-key:/);
  assert.doesNotMatch(JSON.stringify(stored), /"d":|cookieKeys|clientSecrets/);
});
