// Accounts and sign-in paths: password hashing, TOTP (RFC 6238 vectors, replay), the account lockout
// (the 6th attempt in a minute is refused without the password being checked), citizen registration
// with the real-name check, role grants, preferences, and hostile input on every form.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { accessesOfSubject, searchAudit } from '../src/base/audit/index.ts';
import {
  createStaffAccount,
  findAccountByLogin,
  grantRole,
  hashingStats,
  hashPassword,
  passwordLogin,
  registerCitizen,
  revokeRole,
  totpCode,
  verifyPassword,
  verifyTotp,
} from '../src/base/identity/index.ts';
import { sealTotpSecrets } from '../src/base/identity/accounts/index.ts';
import { cachedSecrets } from '../src/base/identity/oidc/secrets.ts';
import { base32Decode, base32Encode, hotp } from '../src/base/identity/accounts/totp.ts';
import { makeIdNumber } from '../src/base/codes/index.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;
let resident: { idNumber: string; name: string };
const SYSTEM = { kind: 'system' as const, id: 'test', department: 'SZ-DSJ' };

before(async () => {
  t = await startIdentityPlatform({ GUSU_JOB_CONCURRENCY: '0' /* the security check's job hashes demo passwords: it would move the hash counter */, GUSU_LOGIN_RATE_PER_MINUTE: '10000' });
  const { rows } = await t.platform.ctx.db.query<{ id_number: string; name: string }>('select id_number, name from population.person order by id_number limit 1 offset 20');
  resident = { idNumber: rows[0]!.id_number, name: rows[0]!.name };
});
after(async () => {
  await t?.stop();
});

/** A fresh sign-in interaction (through the portal's login): the login page URL and its HTML. */
async function loginPage(browser: Browser, as?: string): Promise<{ url: string; page: string }> {
  const { res, url } = await browser.follow(`${t.url}/auth/login`, t.url);
  assert.equal(res.status, 200);
  if (!as) return { url, page: await res.text() };
  await res.arrayBuffer();
  const r = await browser.fetch(`${url}?as=${as}`);
  return { url, page: await r.text() };
}

// ---------------------------------------------------------------------------------------------
// primitives

test('TOTP: the RFC 6238 SHA-1 test vectors, base32, the ±1 step window', () => {
  const key = Buffer.from('12345678901234567890');
  const vectors: [number, string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  for (const [seconds, code] of vectors) assert.equal(hotp(key, Math.floor(seconds / 30), 8), code, `T=${seconds}`);
  assert.equal(base32Encode(key), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.deepEqual(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), key);
  const secret = base32Encode(key);
  const now = 1_700_000_000_000;
  const code = totpCode(secret, now);
  assert.equal(verifyTotp(secret, code, now), Math.floor(now / 30000));
  assert.notEqual(verifyTotp(secret, code, now + 30_000), null, 'one step late is accepted');
  assert.equal(verifyTotp(secret, code, now + 90_000), null, 'three steps late is not');
  assert.equal(verifyTotp(secret, '12345', now), null);
  assert.equal(verifyTotp(secret, '１２３４５６', now), null, 'full-width digits are not digits');
});

test('passwords: scrypt with its parameters stored, timing-safe verification, re-hash of weaker parameters', async () => {
  const h = await hashPassword('苏州园林 gardens 1997');
  assert.match(h, /^scrypt\$N=32768,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(await verifyPassword('苏州园林 gardens 1997', h), { ok: true, rehash: false });
  assert.equal((await verifyPassword('苏州园林 gardens 1998', h)).ok, false);
  // NFC: the same text typed as decomposed characters still matches
  const composed = await hashPassword('Café au lait!');
  assert.equal((await verifyPassword('Cafe\u0301 au lait!', composed)).ok, true);
  const weak = await hashPassword('old parameters', { N: 1024, r: 8, p: 1 });
  assert.deepEqual(await verifyPassword('old parameters', weak), { ok: true, rehash: true });
  // no account: a dummy hash is checked, so it costs the same and says no
  const before = hashingStats.scryptCalls;
  assert.deepEqual(await verifyPassword('anything', null), { ok: false, rehash: false });
  assert.ok(hashingStats.scryptCalls > before);
  assert.equal((await verifyPassword('x', 'not a hash')).ok, false);
});

// ---------------------------------------------------------------------------------------------
// staff: password + TOTP

test('TOTP secrets are sealed at rest: the demo staff\'s, and one stored in the clear once the module seals it', async () => {
  const db = t.platform.ctx.db;
  const { rows: demo } = await db.query<{ totp_secret: string }>(`select totp_secret from identity.account where kind = 'staff' and synthetic`);
  assert.ok(demo.length > 0);
  for (const r of demo) assert.match(r.totp_secret, /^v1\./, 'a demo staff secret is stored sealed');
  const secrets = cachedSecrets(db)!;
  const { totpSecret } = await createStaffAccount(db, { username: 'clear.totp', name: '明文', department: 'SZ-GA', post: '科员', password: 'staff password 12345' });
  assert.equal((await db.query(`select totp_secret from identity.account where login = 'clear.totp'`)).rows[0]!.totp_secret, totpSecret, 'no secrets given: stored as it is');
  assert.ok((await sealTotpSecrets(db, secrets)) >= 1);
  const stored = (await db.query<{ totp_secret: string }>(`select totp_secret from identity.account where login = 'clear.totp'`)).rows[0]!.totp_secret;
  assert.match(stored, /^v1\./);
  assert.ok(!stored.includes(totpSecret));
  const opts = { ratePerMinute: 1000 };
  const login = { kind: 'staff' as const, login: 'clear.totp', password: 'staff password 12345', totp: totpCode(totpSecret) };
  assert.deepEqual(await passwordLogin(db, login, { ip: '198.51.100.9' }, opts), { ok: false, reason: 'invalid' }, 'a sealed secret without the key never verifies');
  assert.equal((await passwordLogin(db, login, { ip: '198.51.100.9' }, { ...opts, secrets })).ok, true);
});


test('staff sign-in: wrong TOTP refused, the right one accepted once, a replay refused', async () => {
  const db = t.platform.ctx.db;
  const { totpSecret } = await createStaffAccount(db, { username: 'li.totp', name: '李一', department: 'SZ-GA', post: '科员', password: 'staff password 12345' });
  const origin = { ip: '198.51.100.1' };
  const opts = { ratePerMinute: 1000 };
  const code = totpCode(totpSecret);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  assert.deepEqual(await passwordLogin(db, { kind: 'staff', login: 'li.totp', password: 'staff password 12345', totp: wrong }, origin, opts), { ok: false, reason: 'invalid' });
  const ok = await passwordLogin(db, { kind: 'staff', login: 'li.totp', password: 'staff password 12345', totp: code }, origin, opts);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.ok && ok.amr, ['pwd', 'otp', 'mfa']);
  const replay = await passwordLogin(db, { kind: 'staff', login: 'li.totp', password: 'staff password 12345', totp: code }, origin, opts);
  assert.deepEqual(replay, { ok: false, reason: 'invalid' }, 'the same code twice is refused');
  // and through the login page
  const browser = new Browser();
  const { url, page } = await loginPage(browser, 'staff');
  const res = await browser.post(`${url}/staff`, { _csrf: csrfOf(page), username: 'li.totp', password: 'staff password 12345', totp: code });
  assert.equal(res.status, 401);
  assert.match(await res.text(), /动态验证码错误/);
  const audit = await searchAudit(db, { action: 'auth.login', limit: 50 } as never);
  const reasons = audit.items.filter((e) => e.outcome === 'denied' && (e.details as { login?: string } | null)?.login === 'li.totp').map((e) => (e.details as { reason: string }).reason);
  assert.ok(reasons.includes('bad-totp') && reasons.includes('replayed-totp'), `audited: ${reasons.join(', ')}`);
});

// ---------------------------------------------------------------------------------------------
// lockout

test('lockout: the 6th attempt within a minute is refused without checking the password, even the right one', async () => {
  const db = t.platform.ctx.db;
  const idNumber = resident.idNumber;
  await registerCitizen(db, { idNumber, name: resident.name, password: 'the right password 1' });
  const browser = new Browser();
  const { url, page } = await loginPage(browser);
  const csrf = csrfOf(page);
  for (let i = 1; i <= 5; i++) {
    const res = await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber, password: `wrong password ${i}` });
    assert.equal(res.status, 401, `attempt ${i}`);
    await res.arrayBuffer();
  }
  const calls = hashingStats.scryptCalls;
  const sixth = await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber, password: 'the right password 1' });
  assert.equal(sixth.status, 429);
  assert.ok(Number(sixth.headers.get('retry-after')) > 0 && Number(sixth.headers.get('retry-after')) <= 60);
  assert.match(await sixth.text(), /已暂时锁定/);
  assert.equal(hashingStats.scryptCalls, calls, 'the password was not hashed');
  // the refusal is audited
  const audit = await searchAudit(db, { action: 'auth.login', limit: 20 } as never);
  assert.ok(audit.items.some((e) => e.outcome === 'denied' && (e.details as { reason?: string } | null)?.reason === 'locked'));
  // once the window has passed, the right password works again (the window is moved back here)
  await db.query(`update identity.throttle set window_start = now() - interval '61 seconds' where key = $1`, [`account:citizen:${idNumber}`]);
  const later = await browser.post(`${url}/citizen`, { _csrf: csrf, idNumber, password: 'the right password 1' });
  assert.equal(later.status, 303);
});

test('lockout counts unknown accounts too (existence is not revealed) and parallel guesses cannot slip past it', async () => {
  const db = t.platform.ctx.db;
  const login = makeIdNumber('320505', '19900101', '123');
  const attempts = await Promise.all(Array.from({ length: 12 }, (_, i) => passwordLogin(db, { kind: 'citizen', login, password: `guess ${i}` }, { ip: '198.51.100.2' }, { ratePerMinute: 1000 })));
  assert.equal(attempts.filter((a) => !a.ok && a.reason === 'invalid').length, 5, 'five were checked');
  assert.equal(attempts.filter((a) => !a.ok && a.reason === 'locked').length, 7, 'the rest refused unchecked');
});

// ---------------------------------------------------------------------------------------------
// registration

test('registration: the ID number must pass GB 11643, the name must match the population registry', async () => {
  const db = t.platform.ctx.db;
  const { rows } = await db.query<{ id_number: string; name: string }>('select id_number, name from population.person order by id_number limit 1 offset 30');
  const person = rows[0]!;
  const browser = new Browser();
  const { url } = await loginPage(browser);
  const form = await (await browser.fetch(`${url}/register`)).text();
  assert.match(form, /市民实名注册/);
  const csrf = csrfOf(form);
  const post = (f: Record<string, string>) => browser.post(`${url}/register`, { _csrf: csrf, password: 'registration pass 1', password2: 'registration pass 1', ...f });

  // a bad check digit: refused with the reason
  const last = person.id_number[17]!;
  const badDigit = person.id_number.slice(0, 17) + (last === '0' ? '1' : '0');
  const r1 = await post({ idNumber: badDigit, name: person.name });
  assert.equal(r1.status, 400);
  const p1 = await r1.text();
  assert.match(p1, /公民身份号码无效：校验码错误/);
  assert.match(p1, /aria-invalid="true"/);
  const r1en = await browser.post(`${url}/register?lang=en`, { _csrf: csrf, idNumber: badDigit, name: person.name, password: 'registration pass 1', password2: 'registration pass 1' });
  assert.match(await r1en.text(), /check digit mismatch/);

  // a name that is not the registry's
  const r2 = await post({ idNumber: person.id_number, name: person.name === '王伟' ? '李娜' : '王伟' });
  assert.equal(r2.status, 400);
  assert.match(await r2.text(), /姓名与公民身份号码不匹配/);
  // a valid number nobody has: the same message (the form does not reveal who is registered)
  const r3 = await post({ idNumber: makeIdNumber('320505', '19800101', '999'), name: person.name });
  assert.equal(r3.status, 400);
  assert.match(await r3.text(), /姓名与公民身份号码不匹配/);
  // the checks are in the person's "who looked at my data"
  const accesses = await accessesOfSubject(db, person.id_number, { limit: 10 });
  assert.ok(accesses.items.some((a) => a.action === 'identity.realname.check' && a.outcome === 'denied'));

  // different passwords, a weak password
  assert.equal((await browser.post(`${url}/register`, { _csrf: csrf, idNumber: person.id_number, name: person.name, password: 'registration pass 1', password2: 'other' })).status, 400);
  assert.equal((await post({ idNumber: person.id_number, name: person.name, password: 'short', password2: 'short' })).status, 400);

  // right: signed in and sent on
  const ok = await post({ idNumber: person.id_number, name: person.name });
  assert.equal(ok.status, 303);
  const account = await findAccountByLogin(db, 'citizen', person.id_number);
  assert.equal(account?.name, person.name);
  assert.ok((await accessesOfSubject(db, person.id_number, { limit: 10 })).items.some((a) => a.action === 'identity.realname.check' && a.outcome === 'ok'));
  // twice: a conflict
  const b2 = new Browser();
  const { url: url2 } = await loginPage(b2);
  const form2 = await (await b2.fetch(`${url2}/register`)).text();
  const dup = await b2.post(`${url2}/register`, { _csrf: csrfOf(form2), idNumber: person.id_number, name: person.name, password: 'registration pass 1', password2: 'registration pass 1' });
  assert.equal(dup.status, 409);
});

// ---------------------------------------------------------------------------------------------
// hostile input

test('hostile input on every sign-in form: clear 400s, never a 500', async () => {
  const browser = new Browser();
  const { url, page } = await loginPage(browser);
  const csrf = csrfOf(page);
  const cases: [string, Record<string, string>][] = [
    ['citizen', { idNumber: 'x'.repeat(10_000), password: 'p' }],
    ['citizen', { idNumber: "' OR '1'='1' --", password: 'p' }],
    ['citizen', { idNumber: '32050519900101123\u0000', password: 'p' }],
    ['citizen', { idNumber: '３２０５０５１９９００１０１１２３４', password: 'p' }],
    ['citizen', { idNumber: resident.idNumber, password: 'p'.repeat(600) }],
    ['staff', { username: 'a'.repeat(5000), password: 'p', totp: '123456' }],
    ['staff', { username: '管理员', password: 'p', totp: '123456' }],
    ['staff', { username: "admin'; drop table identity.account; --", password: 'p', totp: '123456' }],
    ['staff', { username: 'admin\u0000', password: 'p', totp: '123456' }],
    ['staff', { username: 'admin', password: 'p', totp: '12345\u0000' }],
    ['staff', { username: 'admin', password: 'p', totp: '1'.repeat(5000) }],
    ['register', { idNumber: resident.idNumber, name: '张\u0000三', password: 'good password 1', password2: 'good password 1' }],
    ['register', { idNumber: resident.idNumber, name: '<script>alert(1)</script>', password: 'good password 1', password2: 'good password 1' }],
    ['register', { idNumber: resident.idNumber, name: 'n'.repeat(10_000), password: 'good password 1', password2: 'good password 1' }],
    ['enterprise/challenge', { uscc: "91320500' OR 1=1" }],
    ['enterprise/challenge', { uscc: 'Z'.repeat(9000) }],
    ['enterprise', { uscc: 'x', challenge: 'x', certificate: 'x', signature: 'x' }],
  ];
  for (const [path, fields] of cases) {
    const res = await browser.post(`${url}/${path}`, { _csrf: csrf, ...fields });
    const body = await res.text();
    assert.ok([400, 401, 503].includes(res.status), `${path} ${JSON.stringify(fields).slice(0, 80)}: ${res.status}`);
    assert.doesNotMatch(body, /<script>alert/, 'input is escaped');
  }
  // duplicated fields (arrays) and a JSON body of the wrong shape
  const dup = await browser.fetch(`${url}/citizen`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${csrf}&idNumber=a&idNumber=b&password=p` });
  assert.equal(dup.status, 400);
  const json = await browser.fetch(`${url}/citizen`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ idNumber: { $ne: 1 }, password: ['x'] }) });
  assert.equal(json.status, 400);
  assert.equal((await json.json()).type, '/problems/validation');
  // a made-up interaction id
  const none = await browser.fetch(`${t.url}/auth/interaction/${'A'.repeat(64)}`);
  assert.equal(none.status, 400);
  const bad = await browser.fetch(`${t.url}/auth/interaction/${encodeURIComponent('../../etc/passwd')}`);
  assert.ok([400, 404].includes(bad.status));
});

// ---------------------------------------------------------------------------------------------
// roles

test('role grants: department-scoped roles need a department, grants and revocations are audited', async () => {
  const db = t.platform.ctx.db;
  const { account } = await createStaffAccount(db, { username: 'zhou.roles', name: '周二', department: 'SZ-ZJ', post: '科员', password: 'staff password 12345' });
  await assert.rejects(grantRole(db, { accountId: account.id, role: 'case-handler', scope: null }, SYSTEM), /one department/);
  await assert.rejects(grantRole(db, { accountId: account.id, role: 'platform-admin', scope: 'SZ-ZJ' }, SYSTEM), /city-wide/);
  await assert.rejects(grantRole(db, { accountId: account.id, role: 'no-such-role', scope: null }, SYSTEM), /no such role/);
  const g = await grantRole(db, { accountId: account.id, role: 'case-handler', scope: 'SZ-ZJ' }, SYSTEM);
  await assert.rejects(grantRole(db, { accountId: account.id, role: 'case-handler', scope: 'SZ-ZJ' }, SYSTEM), /already held/);
  await revokeRole(db, g.id, SYSTEM);
  await assert.rejects(revokeRole(db, g.id, SYSTEM), /no such active grant/);
  const audit = await searchAudit(db, { limit: 100 } as never);
  assert.ok(audit.items.some((e) => e.action === 'role.grant' && e.resource.id === account.id));
  assert.ok(audit.items.some((e) => e.action === 'role.revoke' && e.resource.id === account.id));
});

async function consoleSignIn(username: string, password: string, secret: string, at = Date.now()): Promise<Browser> {
  const browser = new Browser();
  const { res, url } = await browser.follow(`${t.url}/console/auth/login?back=/console/admin/roles`, t.url);
  assert.equal(res.status, 200);
  const page = await res.text();
  const post = await browser.post(`${url}/staff`, { _csrf: csrfOf(page), username, password, totp: totpCode(secret, at) });
  assert.equal(post.status, 303, `staff sign-in of ${username}`);
  await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);
  return browser;
}

test('the roles console: platform administrators list, grant and revoke; others are refused', async () => {
  const db = t.platform.ctx.db;
  const admin = await createStaffAccount(db, { username: 'wu.admin', name: '吴管理', department: 'SZ-DSJ', post: '处长', password: 'admin password 12345' });
  await grantRole(db, { accountId: admin.account.id, role: 'platform-admin', scope: null }, SYSTEM);
  const clerk = await createStaffAccount(db, { username: 'zheng.clerk', name: '郑科员', department: 'SZ-MZ', post: '科员', password: 'clerk password 12345' });

  const browser = await consoleSignIn('wu.admin', 'admin password 12345', admin.totpSecret);
  const page = await (await browser.fetch(`${t.url}/console/admin/roles`)).text();
  assert.match(page, /角色授权/);
  assert.match(page, /zheng\.clerk/);
  const grant = await browser.post(`${t.url}/console/admin/roles/grant`, { _csrf: csrfOf(page), username: 'zheng.clerk', role: 'case-handler', scope: 'SZ-MZ' });
  assert.equal(grant.status, 303);
  const after = await (await browser.fetch(`${t.url}/console/admin/roles?done=granted`)).text();
  assert.match(after, /已授予/);
  const grantId = /name="grantId" value="(\d+)"/.exec(after.slice(after.indexOf('zheng.clerk')))![1]!;
  // without the CSRF token: refused
  const forged = await browser.post(`${t.url}/console/admin/roles/revoke`, { grantId });
  assert.equal(forged.status, 403);
  const revoke = await browser.post(`${t.url}/console/admin/roles/revoke`, { _csrf: csrfOf(after), grantId });
  assert.equal(revoke.status, 303);
  // a bad role: a clear 400 on the page
  const bad = await browser.post(`${t.url}/console/admin/roles/grant`, { _csrf: csrfOf(after), username: 'zheng.clerk', role: 'case-handler', scope: '' });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /此角色须限定部门/);

  // the clerk may not see the page
  const clerkBrowser = await consoleSignIn('zheng.clerk', 'clerk password 12345', clerk.totpSecret);
  const refused = await clerkBrowser.fetch(`${t.url}/console/admin/roles`);
  assert.equal(refused.status, 403);
  // nor anyone signed out
  assert.equal((await new Browser().fetch(`${t.url}/console/admin/roles`)).status, 401);
});

// ---------------------------------------------------------------------------------------------
// preferences

test('preferences: one place, the API and the page, the language follows', async () => {
  const db = t.platform.ctx.db;
  const { rows } = await db.query<{ id_number: string; name: string }>('select id_number, name from population.person order by id_number limit 1 offset 40');
  await registerCitizen(db, { idNumber: rows[0]!.id_number, name: rows[0]!.name, password: 'prefs password 1' });
  const browser = new Browser();
  const { url, page } = await loginPage(browser);
  const post = await browser.post(`${url}/citizen`, { _csrf: csrfOf(page), idNumber: rows[0]!.id_number, password: 'prefs password 1' });
  await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);

  const get = await browser.fetch(`${t.url}/api/v1/me/preferences`, { headers: { accept: 'application/json' } });
  assert.equal(get.status, 200);
  assert.deepEqual(await get.json(), { language: null, favouriteServices: [], notificationChannels: ['mailbox'] });
  const put = await browser.fetch(`${t.url}/api/v1/me/preferences`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ language: 'en', favouriteServices: ['mailbox', 'citizen-services'], notificationChannels: ['sms', 'mailbox'] }),
  });
  assert.equal(put.status, 200);
  assert.deepEqual(await put.json(), { language: 'en', favouriteServices: ['mailbox', 'citizen-services'], notificationChannels: ['mailbox', 'sms'] });
  assert.equal(browser.jar.get('lang')?.value, 'en', 'the language travels in the lang cookie every page reads');
  const badPut = await browser.fetch(`${t.url}/api/v1/me/preferences`, { method: 'PUT', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ language: 'fr', favouriteServices: [], notificationChannels: ['pigeon'] }) });
  assert.equal(badPut.status, 400);

  const pagePrefs = await (await browser.fetch(`${t.url}/me/preferences`)).text();
  assert.match(pagePrefs, /My preferences/);
  assert.match(pagePrefs, /value="sms" checked/);
  const save = await browser.post(`${t.url}/me/preferences`, { _csrf: csrfOf(pagePrefs), language: 'zh-CN', favourites: 'portal', channels: ['email'] });
  assert.equal(save.status, 303);
  const now = await (await browser.fetch(`${t.url}/api/v1/me/preferences`, { headers: { accept: 'application/json' } })).json();
  assert.deepEqual(now, { language: 'zh-CN', favouriteServices: ['portal'], notificationChannels: ['email'] });
  // the form without its token is refused
  assert.equal((await browser.post(`${t.url}/me/preferences`, { language: 'en' })).status, 403);
  // signed out: 401
  assert.equal((await fetch(`${t.url}/api/v1/me/preferences`)).status, 401);
});
