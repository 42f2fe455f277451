// The per-IP rate limit shared by every login path (citizen and staff passwords, registration,
// enterprise challenges and signatures): GUSU_LOGIN_RATE_PER_MINUTE attempts per IP per minute, in
// PostgreSQL so that every process of a deployment counts together.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { hashingStats, passwordLogin } from '../src/base/identity/index.ts';
import { searchAudit } from '../src/base/audit/index.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;

before(async () => {
  t = await startIdentityPlatform({ GUSU_JOB_CONCURRENCY: '0' /* the security check's job hashes demo passwords: it would move the hash counter */, GUSU_LOGIN_RATE_PER_MINUTE: '4', GUSU_DEMO_RESIDENTS: '20', GUSU_DEMO_ENTERPRISES: '5' });
});
after(async () => {
  await t?.stop();
});

test('every login path draws on one budget per IP; past it: 429 with Retry-After, nothing checked', async () => {
  const browser = new Browser();
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const page = await (await browser.fetch(`${url}?as=staff`)).text();
  const csrf = csrfOf(page);
  const statuses = [
    (await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber: '11010519491231002X', password: 'not the password' })).status,
    (await browser.post(`${url}/staff`, { _csrf: csrf, username: 'nobody', password: 'not the password', totp: '123456' })).status,
    (await browser.post(`${url}/register`, { _csrf: csrf, idNumber: '11010519491231002X', name: '张三', password: 'a good password 1', password2: 'a good password 1' })).status,
    (await browser.post(`${url}/enterprise/challenge`, { _csrf: csrf, uscc: '91350100M000100Y43' })).status,
  ];
  assert.deepEqual(statuses, [401, 401, 400, 200]);

  const calls = hashingStats.scryptCalls;
  for (const [path, fields] of [
    ['citizen', { idNumber: '11010519491231002X', password: 'x' }],
    ['staff', { username: 'nobody', password: 'x', totp: '123456' }],
    ['register', { idNumber: '11010519491231002X', name: '张三', password: 'a good password 1', password2: 'a good password 1' }],
    ['enterprise/challenge', { uscc: '91350100M000100Y43' }],
  ] as const) {
    const res = await browser.post(`${url}/${path}`, { _csrf: csrf, ...fields });
    assert.equal(res.status, 429, path);
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.match(await res.text(), /登录尝试过于频繁/);
  }
  assert.equal(hashingStats.scryptCalls, calls, 'no password was hashed past the limit');
  const audit = await searchAudit(t.platform.ctx.db, { action: 'auth.login', limit: 20 });
  assert.ok(audit.items.some((e) => e.outcome === 'denied' && (e.details as { reason?: string } | null)?.reason === 'rate-limited'));

  // another address has its own budget
  const elsewhere = await passwordLogin(t.platform.ctx.db, { kind: 'citizen', login: '11010519491231002X', password: 'x' }, { ip: '203.0.113.7' }, { ratePerMinute: 4 });
  assert.deepEqual(elsewhere, { ok: false, reason: 'invalid' });
});

test('behind a trusted proxy (GUSU_TRUST_PROXY) each client behind it has its own budget, and the audit log names it', async () => {
  const p = await startIdentityPlatform({ GUSU_JOB_CONCURRENCY: '0', GUSU_LOGIN_RATE_PER_MINUTE: '2', GUSU_DEMO: 'false', GUSU_TRUST_PROXY: 'loopback' });
  try {
    const browser = new Browser();
    const { url } = await browser.follow(`${p.url}/auth/login`, p.url);
    const csrf = csrfOf(await (await browser.fetch(url)).text());
    const attempt = async (client: string) => (await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber: '11010519491231002X', password: 'not the password' }, { 'x-forwarded-for': client })).status;
    assert.deepEqual([await attempt('198.51.100.1'), await attempt('198.51.100.1'), await attempt('198.51.100.1')], [401, 401, 429]);
    assert.equal(await attempt('198.51.100.2'), 401, 'another client behind the same proxy is not limited by the first');
    const audit = await searchAudit(p.platform.ctx.db, { action: 'auth.login', limit: 10 });
    assert.ok(audit.items.some((e) => e.ip === '198.51.100.1'), 'the audit log records the client address, not the proxy');
  } finally {
    await p.platform.close();
    await p.database.drop();
  }
});

test('without GUSU_TRUST_PROXY a forged X-Forwarded-For is ignored: the budget is the connection address', async () => {
  const browser = new Browser();
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const csrf = csrfOf(await (await browser.fetch(url)).text());
  // the first test used this address's budget: a made-up X-Forwarded-For does not escape it
  const res = await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber: '11010519491231002X', password: 'x' }, { 'x-forwarded-for': '203.0.113.99' });
  assert.equal(res.status, 429);
});
