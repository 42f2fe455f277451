// The CA's console pages (/console/ca) as the demo CA operator `demo.ca` uses them in a browser:
// the list (search, filters, pages, counts), a certificate's page, revoking and renewing through
// CSRF-protected forms, issuing from a CSR; other staff get 403, nobody signed in 401; hostile
// query strings, serials and forms are refused with a problem page and change nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { demoAccounts, findAccountByLogin, totpCode } from '../src/base/identity/index.ts';
import { generateKeyPair, keySigner, type Alg } from '../src/base/identity/crypto/index.ts';
import {
  buildCsr,
  caContextFor,
  certificateCounts,
  issueCertificate,
  revokeCertificate,
  type IssuedCertificate,
  type SubjectInput,
} from '../src/base/identity/ca/index.ts';
import { buildName } from '../src/base/identity/ca/x509.ts';
import { orgCodeCheckChar, usccCheckChar } from '../src/base/codes/index.ts';
import type { Db } from '../src/db/index.ts';
import { Browser, csrfOf, formActionOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

const ORG = '87654321';
const USCC = (() => {
  const first17 = `91320500${ORG}${orgCodeCheckChar(ORG)}`;
  return first17 + usccCheckChar(first17);
})();
const BAD_USCC = USCC.slice(0, 17) + (USCC[17] === '0' ? '1' : '0');
const SEEDER = { kind: 'system' as const, id: 'ca-console-test' };

let t: IdentityPlatform;
let db: Db;
let dataDir: string;
let operator: Browser;
let operatorId: string;
let url: string;
/** the certificates this file issued, oldest first */
const seeded: IssuedCertificate[] = [];
let expired: IssuedCertificate;
let revoked: IssuedCertificate;
let legal: IssuedCertificate;
let fromCsr: IssuedCertificate;

async function csrFor(alg: Alg): Promise<string> {
  const keys = generateKeyPair(alg);
  return buildCsr(keySigner(keys.privateKey), buildName([['CN', 'ignored by the CA']]));
}

async function consoleSignIn(username: string): Promise<Browser> {
  const demo = (await demoAccounts(db))!;
  const who = demo.staff.find((s) => s.username === username)!;
  const browser = new Browser();
  const { res, url: loginUrl } = await browser.follow(`${url}/console/auth/login?back=/console/ca`, url);
  assert.equal(res.status, 200);
  const page = await res.text();
  const post = await browser.post(`${loginUrl}/staff`, { _csrf: csrfOf(page), username, password: who.password, totp: totpCode(who.totpSecret) });
  assert.equal(post.status, 303, `staff sign-in of ${username}`);
  await browser.follow(new URL(post.headers.get('location')!, loginUrl).href, url);
  return browser;
}

async function get(browser: Browser, p: string): Promise<{ status: number; body: string; res: Response }> {
  const res = await browser.fetch(url + p);
  return { status: res.status, body: await res.text(), res };
}

/** the rows of the certificate table: the serial of each, in order */
function serialsOf(page: string): string[] {
  return [...page.matchAll(/<th scope="row"[^>]*><a href="\/console\/ca\/certificates\/([0-9a-f]+)">/g)].map((m) => m[1]!);
}

async function row(serial: string) {
  const { rows } = await db.query<{ status: string; reason: string | null; revoked_at: Date | null }>('select status, reason, revoked_at from ca.certificate where serial = $1', [serial]);
  return rows[0];
}

async function auditOf(action: string, resourceId: string) {
  const { rows } = await db.query<{ actor_kind: string; actor_id: string; outcome: string; request_id: string | null; details: string }>(
    'select actor_kind, actor_id, outcome, request_id, details from audit.entry where action = $1 and resource_id = $2 order by seq',
    [action, resourceId],
  );
  return rows;
}

const decode = (s: string) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-ca-console-'));
  t = await startIdentityPlatform({ GUSU_JOB_CONCURRENCY: '0', GUSU_DATA_DIR: dataDir, GUSU_DEMO_RESIDENTS: '50', GUSU_DEMO_ENTERPRISES: '10' });
  db = t.platform.ctx.db;
  url = t.url;
  const ca = caContextFor(t.platform.ctx);
  const subjects: [Alg, SubjectInput][] = [
    ['sm2-sm3', { kind: 'legal-person', uscc: USCC, name: '苏州控制台测试有限公司' }],
    ['ecdsa-p256-sha256', { kind: 'system', systemId: 'hukou-query', name: '户籍查询系统', department: 'SZ-GA' }],
    ['sm2-sm3', { kind: 'node', nodeId: 'node-320505' }],
    ['ecdsa-p256-sha256', { kind: 'staff', name: '王小明', department: 'SZ-MZ', staffId: 'MZ-0042' }],
  ];
  // 24 certificates, issued a second apart so "newest first" is well defined
  const start = Date.now() - 3600_000;
  for (let i = 0; i < 24; i++) {
    const [alg, subject] = i < 4 ? subjects[i]! : [i % 2 ? 'sm2-sm3' : 'ecdsa-p256-sha256', { kind: 'staff', name: `测试人员${i}`, department: 'SZ-DSJ' } as SubjectInput];
    const csr = i % 3 === 0 ? undefined : await csrFor(alg as Alg);
    seeded.push(await issueCertificate(db, ca, SEEDER, { alg: alg as Alg, subject, csr }, { now: new Date(start + i * 1000) }));
  }
  legal = seeded[0]!;
  fromCsr = seeded[1]!; // a system certificate for its own key
  revoked = seeded[5]!;
  await revokeCertificate(db, ca, SEEDER, revoked.serial, 'superseded');
  // issued (and so expired) long ago
  expired = await issueCertificate(db, ca, SEEDER, { alg: 'sm2-sm3', subject: { kind: 'staff', name: '过期人员', department: 'SZ-MZ' }, validDays: 1 }, { now: new Date(Date.now() - 30 * 86_400_000) });
  operator = await consoleSignIn('demo.ca');
  operatorId = (await findAccountByLogin(db, 'staff', 'demo.ca'))!.id;
});

after(async () => {
  await t?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the list', () => {
  test('counts, the table and its links, newest first', async () => {
    const { status, body, res } = await get(operator, '/console/ca');
    assert.equal(status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(body, /<h1>证书管理<\/h1>/);
    const counts = await certificateCounts(db);
    assert.ok(counts.total >= 25 && counts.revoked === 1 && counts.expired === 1, JSON.stringify(counts));
    assert.match(body, new RegExp(`共签发 ${counts.total} 张证书`));
    assert.match(body, new RegExp(`<dt>有效</dt><dd>${counts.good}</dd>`));
    assert.match(body, /<dt>已吊销<\/dt><dd>1<\/dd>/);
    assert.match(body, /<dt>已过期<\/dt><dd>1<\/dd>/);
    // the table: a caption, column headers with scope, row headers
    assert.match(body, /<caption class="visually-hidden">证书列表（新签发的在前）<\/caption>/);
    assert.match(body, /<th scope="col"[^>]*>序列号<\/th>/);
    const { rows } = await db.query<{ serial: string }>('select serial from ca.certificate order by issued_at desc, serial limit 20');
    assert.deepEqual(serialsOf(body), rows.map((r) => r.serial));
    // links: the CRLs of both families, CA certificates, each certificate's status endpoint
    for (const alg of ['ecdsa-p256-sha256', 'sm2-sm3']) {
      assert.ok(body.includes(`href="/ca/crl/${alg}.crl"`), alg);
      assert.ok(body.includes(`href="/ca/crl/${alg}.crl.pem"`), alg);
      assert.ok(body.includes(`href="/ca/${alg}/root.pem"`), alg);
    }
    assert.ok(body.includes(`href="/api/v1/ca/certificates/${rows[0]!.serial}/status"`));
    const crl = await fetch(`${url}/ca/crl/sm2-sm3.crl.pem`);
    assert.equal(crl.status, 200);
    assert.match(await crl.text(), /BEGIN X509 CRL/);
    // and the form to issue from a CSR
    assert.ok(body.includes('href="/console/ca/issue"'));
  });

  test('in English', async () => {
    const { status, body } = await get(operator, '/console/ca?lang=en');
    assert.equal(status, 200);
    assert.match(body, /<html lang="en">/);
    assert.match(body, /<h1>Certificate management<\/h1>/);
    assert.match(body, /<label for="f-q">Search<\/label>/);
    assert.match(body, /Revocation lists and CA certificates/);
  });

  test('search by subject name, USCC, department code and serial prefix', async () => {
    const by = async (q: string) => serialsOf((await get(operator, `/console/ca?q=${encodeURIComponent(q)}`)).body);
    assert.deepEqual(await by('王小明'), [seeded[3]!.serial]);
    assert.deepEqual(await by('控制台测试'), [legal.serial]);
    assert.ok((await by(USCC)).includes(legal.serial));
    assert.ok((await by(USCC.toLowerCase())).includes(legal.serial));
    // the exchange's demo systems of 市公安局 (SZ-GA) have certificates too
    const ofGa = (await db.query<{ serial: string }>(`select serial from ca.certificate where subject->>'department' = 'SZ-GA' order by issued_at desc, serial`)).rows.map((r) => r.serial);
    assert.ok(ofGa.includes(seeded[1]!.serial));
    assert.deepEqual((await by('SZ-GA')).sort(), [...ofGa].sort());
    assert.deepEqual(await by('hukou-query'), [seeded[1]!.serial], 'the system id is the CN');
    const serial = seeded[7]!.serial;
    assert.deepEqual(await by(serial.slice(0, 12)), [serial]);
    assert.deepEqual(await by(`0x${serial.slice(0, 12).toUpperCase()}`), [serial]);
    assert.deepEqual(await by(serial.slice(0, 12).match(/../g)!.join(':')), [serial]);
    assert.deepEqual(await by('no such subject anywhere'), []);
    const none = await get(operator, '/console/ca?q=no+such+subject+anywhere');
    assert.match(none.body, /没有符合条件的证书/);
    assert.match(none.body, /value="no such subject anywhere"/, 'the search box keeps what was typed');
  });

  test('filters: status, profile, algorithm, combined with search', async () => {
    assert.deepEqual(serialsOf((await get(operator, '/console/ca?status=revoked')).body), [revoked.serial]);
    assert.deepEqual(serialsOf((await get(operator, '/console/ca?status=expired')).body), [expired.serial]);
    const good = serialsOf((await get(operator, '/console/ca?status=good&perPage=100')).body);
    assert.ok(!good.includes(revoked.serial) && !good.includes(expired.serial) && good.includes(legal.serial));
    // the exchange hub's own node certificate is there too
    const nodes = (await db.query<{ serial: string }>(`select serial from ca.certificate where kind = 'node'`)).rows.map((r) => r.serial);
    assert.ok(nodes.includes(seeded[2]!.serial));
    assert.deepEqual(serialsOf((await get(operator, '/console/ca?kind=node')).body).sort(), [...nodes].sort());
    const sm2 = serialsOf((await get(operator, '/console/ca?alg=sm2-sm3&perPage=100')).body);
    const { rows } = await db.query<{ serial: string }>(`select serial from ca.certificate where alg = 'sm2-sm3' order by issued_at desc, serial`);
    assert.deepEqual(sm2, rows.map((r) => r.serial));
    assert.deepEqual(serialsOf((await get(operator, '/console/ca?kind=staff&status=revoked&q=%E6%B5%8B%E8%AF%95')).body), [revoked.serial]);
    // the empty choice is "all"
    assert.equal(serialsOf((await get(operator, '/console/ca?q=&status=&kind=&alg=')).body).length, 20);
    const page = (await get(operator, '/console/ca?status=revoked')).body;
    assert.match(page, /<option value="revoked" selected>已吊销<\/option>/);
  });

  test('pages: per page, next and previous, keeping the filters, page past the end', async () => {
    const { rows } = await db.query<{ serial: string }>(`select serial from ca.certificate where kind = 'staff' order by issued_at desc, serial`);
    const all: string[] = [];
    let next: string | null = '/console/ca?kind=staff&perPage=7';
    let pages = 0;
    while (next) {
      const body = (await get(operator, next)).body;
      const serials = serialsOf(body);
      assert.ok(serials.length <= 7 && serials.length > 0);
      all.push(...serials);
      pages++;
      const m = /<a class="button button-secondary button-small" href="([^"]+)" rel="next">/.exec(body);
      next = m ? decode(m[1]!) : null;
      if (next) assert.match(next, /kind=staff/, 'the filter travels with the page links');
      if (pages > 1) assert.match(body, /rel="prev"/);
    }
    assert.deepEqual(all, rows.map((r) => r.serial), 'every staff certificate once, newest first');
    assert.equal(pages, Math.ceil(rows.length / 7));
    const beyond = await get(operator, '/console/ca?kind=staff&perPage=7&page=99');
    assert.equal(beyond.status, 200);
    assert.deepEqual(serialsOf(beyond.body), []);
    assert.match(beyond.body, new RegExp(`没有第 99 页：共 ${pages} 页`));
    assert.match(beyond.body, new RegExp(`href="/console/ca\\?kind=staff&amp;perPage=7&amp;page=${pages}"`));
  });
});

describe('a certificate', () => {
  test('details, bound identifiers, downloads', async () => {
    const { status, body } = await get(operator, `/console/ca/certificates/${legal.serial}`);
    assert.equal(status, 200);
    assert.match(body, /<h1>苏州控制台测试有限公司 <span class="muted">· 法人<\/span><\/h1>/);
    assert.ok(body.includes(legal.subjectDn.replace(/&/g, '&amp;')), 'the subject DN');
    assert.match(body, /SM2 \/ SM3/);
    assert.match(body, /苏州市政务签发CA SM2/);
    assert.match(body, /<th scope="row" class="nowrap">统一社会信用代码<\/th><td><code>[0-9A-Z]{18}<\/code><\/td>/);
    assert.ok(body.includes(USCC));
    assert.match(body, /<span class="badge badge-ok">有效<\/span>/);
    assert.match(body, /SHA-256 指纹/);
    assert.ok(body.includes(`href="/api/v1/ca/certificates/${legal.serial}/status"`));
    assert.ok(body.includes(`href="/ca/crl/sm2-sm3.crl"`));
    // the forms: revoke with the RFC 5280 reasons, renew; each with the CSRF field
    assert.equal(formActionOf(body, '/revoke'), `/console/ca/certificates/${legal.serial}/revoke`);
    assert.equal(formActionOf(body, '/renew'), `/console/ca/certificates/${legal.serial}/renew`);
    for (const r of ['key-compromise', 'affiliation-changed', 'superseded', 'cessation-of-operation', 'privilege-withdrawn', 'unspecified']) assert.ok(body.includes(`<option value="${r}">`), r);
    assert.ok([...body.matchAll(/name="_csrf"/g)].length >= 2);
    // PEM download
    const pem = await operator.fetch(`${url}/console/ca/certificates/${legal.serial}/certificate.pem`);
    assert.equal(pem.status, 200);
    assert.match(pem.headers.get('content-type')!, /application\/x-pem-file/);
    assert.equal(pem.headers.get('content-disposition'), `attachment; filename="${legal.serial}.pem"`);
    assert.equal(await pem.text(), legal.certificate);
    // English
    const en = (await get(operator, `/console/ca/certificates/${legal.serial}?lang=en`)).body;
    assert.match(en, /Unified social credit code/);
    assert.match(en, /Key compromise \(keyCompromise\)/);
  });

  test('an upper-case serial goes to the canonical address; unknown and malformed serials are problems', async () => {
    const upper = await operator.fetch(`${url}/console/ca/certificates/${legal.serial.toUpperCase()}`);
    assert.equal(upper.status, 301);
    assert.equal(upper.headers.get('location'), `/console/ca/certificates/${legal.serial}`);
    const unknown = await get(operator, '/console/ca/certificates/abcdef0123456789');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /no certificate with serial abcdef0123456789/);
    assert.match(unknown.body, /class="shell-console"/, 'the console’s error page');
    for (const bad of ['zz', 'a'.repeat(41), '%27%20or%201%3D1--', '..%2F..%2Fetc', '12%00']) {
      const r = await get(operator, `/console/ca/certificates/${bad}`);
      assert.ok(r.status === 400 || r.status === 404, `${bad}: ${r.status}`);
    }
    assert.equal((await operator.fetch(`${url}/console/ca/certificates/zz/certificate.pem`)).status, 400);
    assert.equal((await operator.fetch(`${url}/console/ca/certificates/abcdef0123456789/certificate.pem`)).status, 404);
  });

  test('a revoked and an expired certificate say so and offer no revoke form', async () => {
    const r = (await get(operator, `/console/ca/certificates/${revoked.serial}`)).body;
    assert.match(r, /已吊销/);
    assert.match(r, /已被取代（superseded）/);
    assert.doesNotMatch(r, /action="[^"]*\/revoke"/);
    assert.doesNotMatch(r, /action="[^"]*\/renew"/);
    const e = (await get(operator, `/console/ca/certificates/${expired.serial}`)).body;
    assert.match(e, /<span class="badge badge-planned">已过期<\/span>/);
    assert.match(e, /此证书已过期/);
  });
});

describe('revoking', () => {
  test('without a CSRF token, or with a wrong one: refused, nothing changes', async () => {
    const target = seeded[10]!;
    const p = `${url}/console/ca/certificates/${target.serial}/revoke`;
    assert.equal((await operator.post(p, { reason: 'key-compromise' })).status, 403);
    assert.equal((await operator.post(p, { _csrf: 'x'.repeat(43), reason: 'key-compromise' })).status, 403);
    assert.equal((await operator.post(p, { _csrf: '', reason: 'key-compromise' })).status, 403);
    assert.equal((await row(target.serial))!.status, 'good');
    assert.deepEqual(await auditOf('ca.certificate.revoke', target.serial), []);
  });

  test('a bad reason is a problem page and an audited refusal', async () => {
    const target = seeded[10]!;
    const page = (await get(operator, `/console/ca/certificates/${target.serial}`)).body;
    const res = await operator.post(`${url}/console/ca/certificates/${target.serial}/revoke`, { _csrf: csrfOf(page), reason: 'because' });
    assert.equal(res.status, 400);
    const body = await res.text();
    assert.match(body, /reason: must be one of unspecified, key-compromise/);
    assert.match(body, /class="shell-console"/);
    const empty = await operator.post(`${url}/console/ca/certificates/${target.serial}/revoke`, { _csrf: csrfOf(page), reason: '' });
    assert.equal(empty.status, 400);
    assert.equal((await row(target.serial))!.status, 'good');
    const audit = await auditOf('ca.certificate.revoke', target.serial);
    assert.deepEqual(audit.map((a) => a.outcome), ['error', 'error']);
    assert.equal(audit[0]!.actor_id, operatorId);
  });

  test('revokes with a reason through the form, audited as the API does, then refuses a second time', async () => {
    const target = seeded[10]!;
    const page = (await get(operator, `/console/ca/certificates/${target.serial}`)).body;
    const res = await operator.post(`${url}${formActionOf(page, '/revoke')}`, { _csrf: csrfOf(page), reason: 'key-compromise' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `/console/ca/certificates/${target.serial}?done=revoked`);
    const r = (await row(target.serial))!;
    assert.equal(r.status, 'revoked');
    assert.equal(r.reason, 'key-compromise');
    const audit = await auditOf('ca.certificate.revoke', target.serial);
    const ok = audit.find((a) => a.outcome === 'ok')!;
    assert.equal(ok.actor_kind, 'staff');
    assert.equal(ok.actor_id, operatorId);
    assert.ok(ok.request_id);
    assert.match(ok.details, /"reason":"key-compromise"/);
    assert.match(ok.details, /"crlNumber":\d+/);
    const done = (await get(operator, `/console/ca/certificates/${target.serial}?done=revoked`)).body;
    assert.match(done, /证书已吊销，吊销列表已重新发布/);
    assert.match(done, /密钥泄露（keyCompromise）/);
    // the status endpoint and the list agree
    const status = await (await fetch(`${url}/api/v1/ca/certificates/${target.serial}/status`)).json();
    assert.equal(status.status, 'revoked');
    assert.ok(serialsOf((await get(operator, '/console/ca?status=revoked')).body).includes(target.serial));
    // again (a stale page): 409 with the reason, nothing changes
    const again = await operator.post(`${url}/console/ca/certificates/${target.serial}/revoke`, { _csrf: csrfOf(page), reason: 'superseded' });
    assert.equal(again.status, 409);
    assert.match(await again.text(), /already revoked/);
    assert.equal((await row(target.serial))!.reason, 'key-compromise');
    // unknown serial
    const unknown = await operator.post(`${url}/console/ca/certificates/abcdef0123456789/revoke`, { _csrf: csrfOf(page), reason: 'superseded' });
    assert.equal(unknown.status, 404);
  });
});

describe('renewing', () => {
  test('a certificate for the subject’s own key: a new certificate, same key, linked both ways', async () => {
    const page = (await get(operator, `/console/ca/certificates/${fromCsr.serial}`)).body;
    const res = await operator.post(`${url}/console/ca/certificates/${fromCsr.serial}/renew`, { _csrf: csrfOf(page), validDays: '100', csr: '' });
    assert.equal(res.status, 303);
    const m = /^\/console\/ca\/certificates\/([0-9a-f]+)\?done=renewed$/.exec(res.headers.get('location')!);
    assert.ok(m, res.headers.get('location')!);
    const serial = m[1]!;
    assert.notEqual(serial, fromCsr.serial);
    const { rows } = await db.query<{ renewed_from: string; not_after: Date; not_before: Date; key_generated: boolean }>('select renewed_from, not_after, not_before, key_generated from ca.certificate where serial = $1', [serial]);
    assert.equal(rows[0]!.renewed_from, fromCsr.serial);
    assert.equal(rows[0]!.key_generated, false);
    assert.ok(Math.abs(rows[0]!.not_after.getTime() - rows[0]!.not_before.getTime() - 100 * 86_400_000) < 3600_000);
    const audit = await auditOf('ca.certificate.renew', serial);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor_id, operatorId);
    const renewed = (await get(operator, `/console/ca/certificates/${serial}?done=renewed`)).body;
    assert.match(renewed, /已续期：这是新证书/);
    assert.ok(renewed.includes(`href="/console/ca/certificates/${fromCsr.serial}"`));
    const old = (await get(operator, `/console/ca/certificates/${fromCsr.serial}`)).body;
    assert.ok(old.includes(`href="/console/ca/certificates/${serial}"`), 'the old one links to its renewal');
  });

  test('a certificate whose key the CA generated needs a CSR here; with one it renews', async () => {
    const generated = seeded[6]!; // i % 3 === 0: the CA generated the key
    assert.ok(generated.privateKey);
    const page = (await get(operator, `/console/ca/certificates/${generated.serial}`)).body;
    assert.match(page, /此证书的密钥由 CA 代为生成/);
    const before = (await db.query('select 1 from ca.certificate where renewed_from = $1', [generated.serial])).rowCount;
    const refused = await operator.post(`${url}/console/ca/certificates/${generated.serial}/renew`, { _csrf: csrfOf(page), validDays: '', csr: '' });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /needs a certification request/);
    assert.equal((await db.query('select 1 from ca.certificate where renewed_from = $1', [generated.serial])).rowCount, before);
    const res = await operator.post(`${url}/console/ca/certificates/${generated.serial}/renew`, { _csrf: csrfOf(page), validDays: '', csr: await csrFor(generated.alg) });
    assert.equal(res.status, 303);
    // a CSR of the other family, a bad number of days: the CA's reasons, nothing issued
    const wrong = await operator.post(`${url}/console/ca/certificates/${generated.serial}/renew`, { _csrf: csrfOf(page), csr: await csrFor(generated.alg === 'sm2-sm3' ? 'ecdsa-p256-sha256' : 'sm2-sm3') });
    assert.equal(wrong.status, 400);
    assert.match(await wrong.text(), /csr: is a/);
    const days = await operator.post(`${url}/console/ca/certificates/${generated.serial}/renew`, { _csrf: csrfOf(page), validDays: 'ten', csr: await csrFor(generated.alg) });
    assert.equal(days.status, 400);
    assert.match(await days.text(), /validDays: must be a whole number/);
    assert.equal((await db.query('select 1 from ca.certificate where renewed_from = $1', [generated.serial])).rowCount, before! + 1);
  });

  test('a revoked certificate is not renewed (409), and without CSRF nothing is', async () => {
    const page = (await get(operator, `/console/ca/certificates/${legal.serial}`)).body;
    const res = await operator.post(`${url}/console/ca/certificates/${revoked.serial}/renew`, { _csrf: csrfOf(page) });
    assert.equal(res.status, 409);
    assert.match(await res.text(), /was revoked/);
    assert.equal((await operator.post(`${url}/console/ca/certificates/${legal.serial}/renew`, {})).status, 403);
    assert.equal((await db.query('select 1 from ca.certificate where renewed_from = $1', [legal.serial])).rowCount, 0);
  });
});

describe('issuing from a CSR', () => {
  test('the form, then a legal-person certificate for the applicant’s key', async () => {
    const { status, body } = await get(operator, '/console/ca/issue');
    assert.equal(status, 200);
    assert.match(body, /<h1>签发证书<\/h1>/);
    assert.match(body, /<label for="f-csr">/);
    assert.match(body, /<option value="SZ-GA">/);
    assert.match(body, /<option value="node-320505">/);
    const csr = await csrFor('sm2-sm3');
    const res = await operator.post(`${url}/console/ca/issue`, {
      _csrf: csrfOf(body),
      alg: 'sm2-sm3',
      kind: 'legal-person',
      name: ' 苏州新签发有限公司 ',
      uscc: USCC,
      department: '',
      nodeId: '',
      systemId: '',
      staffId: '',
      validDays: '200',
      csr,
    });
    assert.equal(res.status, 303);
    const serial = /^\/console\/ca\/certificates\/([0-9a-f]+)\?done=issued$/.exec(res.headers.get('location')!)![1]!;
    const { rows } = await db.query<{ kind: string; alg: string; key_generated: boolean; subject: { uscc: string; name: string } }>('select kind, alg, key_generated, subject from ca.certificate where serial = $1', [serial]);
    assert.deepEqual(rows[0], { kind: 'legal-person', alg: 'sm2-sm3', key_generated: false, subject: { kind: 'legal-person', uscc: USCC, name: '苏州新签发有限公司' } });
    const audit = await auditOf('ca.certificate.issue', serial);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor_id, operatorId);
    assert.match((await get(operator, `/console/ca/certificates/${serial}?done=issued`)).body, /证书已签发/);
  });

  test('refusals come back on the form, beside the field, values kept; nothing issued', async () => {
    const page = (await get(operator, '/console/ca/issue?lang=en')).body;
    const count = async () => (await db.query<{ n: number }>('select count(*)::int as n from ca.certificate')).rows[0]!.n;
    const n = await count();
    const base = { _csrf: csrfOf(page), alg: 'sm2-sm3', kind: 'legal-person', name: '坏代码公司', uscc: BAD_USCC, department: '', nodeId: '', systemId: '', staffId: '', validDays: '' };
    const bad = await operator.post(`${url}/console/ca/issue?lang=en`, { ...base, csr: await csrFor('sm2-sm3') });
    assert.equal(bad.status, 400);
    const body = await bad.text();
    assert.match(body, /<p class="field-error" id="f-uscc-error">Not issued: subject.uscc: not a valid unified social credit code/);
    assert.match(body, /aria-invalid="true"/);
    assert.ok(body.includes(`value="${BAD_USCC}"`), 'what was typed is kept');
    assert.match(body, /BEGIN CERTIFICATE REQUEST/);
    const audit = await db.query<{ outcome: string }>(`select outcome from audit.entry where action = 'ca.certificate.issue' and outcome = 'error' and details like '%subject.uscc%'`);
    assert.ok(audit.rowCount! >= 1, 'the CA audited the refusal');
    // a field that does not apply to the profile
    const extra = await operator.post(`${url}/console/ca/issue`, { ...base, uscc: USCC, nodeId: 'node-320505', csr: await csrFor('sm2-sm3') });
    assert.equal(extra.status, 400);
    assert.match(await extra.text(), /id="f-nodeId-error">未能签发：subject.nodeId: does not apply to a legal-person certificate/);
    // no CSR: the console does not generate keys
    const noCsr = await operator.post(`${url}/console/ca/issue`, { ...base, uscc: USCC, csr: '' });
    assert.equal(noCsr.status, 400);
    assert.match(await noCsr.text(), /请粘贴证书请求（CSR）/);
    // garbage CSR, unknown kind and algorithm
    const garbage = await operator.post(`${url}/console/ca/issue`, { ...base, uscc: USCC, csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----' });
    assert.equal(garbage.status, 400);
    assert.equal((await operator.post(`${url}/console/ca/issue`, { ...base, kind: 'root', uscc: USCC, csr: await csrFor('sm2-sm3') })).status, 400);
    assert.equal((await operator.post(`${url}/console/ca/issue`, { ...base, alg: 'rsa', uscc: USCC, csr: await csrFor('sm2-sm3') })).status, 400);
    // without the CSRF token
    assert.equal((await operator.post(`${url}/console/ca/issue`, { ...base, _csrf: '', uscc: USCC, csr: await csrFor('sm2-sm3') })).status, 403);
    assert.equal(await count(), n);
  });
});

describe('who may', () => {
  test('other staff get 403, nobody signed in 401, on every page and form', async () => {
    const security = await consoleSignIn('demo.security');
    const anonymous = new Browser();
    const target = seeded[12]!;
    const form = { reason: 'key-compromise', alg: 'sm2-sm3', kind: 'node', nodeId: 'node-320505', csr: 'x' };
    for (const [method, p] of [
      ['GET', '/console/ca'],
      ['GET', `/console/ca/certificates/${target.serial}`],
      ['GET', `/console/ca/certificates/${target.serial}/certificate.pem`],
      ['GET', '/console/ca/issue'],
      ['POST', `/console/ca/certificates/${target.serial}/revoke`],
      ['POST', `/console/ca/certificates/${target.serial}/renew`],
      ['POST', '/console/ca/issue'],
    ] as const) {
      // POSTs as JSON, which needs no CSRF token: what refuses them is the policy
      const as = (b: Browser) =>
        method === 'GET' ? b.fetch(url + p) : b.fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(form) });
      const denied = await as(security);
      assert.equal(denied.status, 403, `${method} ${p} as a security officer`);
      assert.match(await denied.text(), /not permitted: certificate:(read|issue|revoke|renew)/);
      assert.equal((await as(anonymous)).status, 401, `${method} ${p} signed out`);
      if (method === 'POST') {
        assert.equal((await security.post(url + p, form)).status, 403, `${method} ${p} as a form`);
        assert.equal((await anonymous.post(url + p, form)).status, 401, `${method} ${p} as a form, signed out`);
      }
    }
    // the console's own pages still open for them: the refusal is about the CA, not the session
    assert.equal((await security.fetch(`${url}/console/admin/roles`)).status, 200);
    assert.equal((await row(target.serial))!.status, 'good');
    assert.equal((await db.query('select 1 from ca.certificate where renewed_from = $1', [target.serial])).rowCount, 0);
  });
});

describe('hostile input', () => {
  test('query strings: too long, repeated, out of range, not numbers, unknown values', async () => {
    for (const q of [
      `q=${'x'.repeat(5000)}`,
      'page=0',
      'page=-1',
      'page=abc',
      'page=1.5',
      'page=99999999999',
      'perPage=0',
      'perPage=101',
      'perPage=1e3',
      'page=1&page=2',
      'status=valid',
      'status=good%27--',
      'kind=root',
      'alg=rsa',
      `lang=${'e'.repeat(50)}`,
    ]) {
      const r = await get(operator, `/console/ca?${q}`);
      assert.equal(r.status, 400, q.slice(0, 60));
      assert.match(r.body, /class="shell-console"/, q.slice(0, 60));
      assert.match(r.body, /输入校验未通过/, q.slice(0, 60));
    }
    // beyond what the server reads of a request line: refused before any handler
    const huge = await operator.fetch(`${url}/console/ca?q=${'y'.repeat(70_000)}`);
    assert.ok(huge.status === 431 || huge.status === 414 || huge.status === 400, String(huge.status));
  });

  test('SQL-ish and markup-ish searches are only text: no match, escaped, the table still there', async () => {
    for (const q of ["' or 1=1; drop table ca.certificate; --", '%', '_', '\\', '%27%20OR%20%271%27%3D%271', '<script>alert(1)</script>', '"><img src=x>', '\u202e\u0000']) {
      const r = await get(operator, `/console/ca?q=${encodeURIComponent(q)}`);
      if (q.includes('\u0000')) {
        assert.equal(r.status, 400, 'control characters are refused');
        continue;
      }
      assert.equal(r.status, 200, q);
      assert.deepEqual(serialsOf(r.body), [], q);
      assert.doesNotMatch(r.body, /<script>alert|<img src=x>/);
    }
    assert.ok((await certificateCounts(db)).total > 25, 'the table is still there');
  });
});
