// Enterprise sign-in with a legal person's certificate: a fresh challenge bound to the sign-in, signed
// with the certificate's key (SM2 or ECDSA P-256), verified through the municipal CA (chain, validity,
// revocation) and matched to the chosen USCC. Replays, forgeries and revoked certificates fail.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { caContextFor, issueCertificate, revokeCertificate, signWithCertificateKey, type IssuedCertificate } from '../src/base/identity/ca/index.ts';
import { generateKeyPair, sign } from '../src/base/identity/crypto/index.ts';
import { searchAudit } from '../src/base/audit/index.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;
let entities: { uscc: string; name: string }[];
const ACTOR = { kind: 'system' as const, id: 'test-ca' };

before(async () => {
  t = await startIdentityPlatform({ GUSU_LOGIN_RATE_PER_MINUTE: '10000' });
  const { rows } = await t.platform.ctx.db.query<{ uscc: string; name: string }>('select uscc, name from legal_entity.entity order by uscc limit 4');
  entities = rows;
});
after(async () => {
  await t?.stop();
});

function issue(alg: 'sm2-sm3' | 'ecdsa-p256-sha256', e: { uscc: string; name: string }): Promise<IssuedCertificate> {
  return issueCertificate(t.platform.ctx.db, caContextFor(t.platform.ctx), ACTOR, { alg, subject: { kind: 'legal-person', uscc: e.uscc, name: e.name } });
}

interface Challenge {
  browser: Browser;
  url: string;
  text: string;
  csrf: string;
}

/** Opens a sign-in on the portal and asks for a challenge for this USCC. */
async function challenge(uscc: string, browser = new Browser()): Promise<Challenge> {
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const page = await (await browser.fetch(`${url}?as=enterprise`)).text();
  assert.match(page, /统一社会信用代码/);
  const res = await browser.post(`${url}/enterprise/challenge`, { _csrf: csrfOf(page), uscc });
  assert.equal(res.status, 200);
  const html = await res.text();
  const text = /<pre class="challenge" id="challenge">([^<]+)<\/pre>/.exec(html)![1]!.replace(/&amp;/g, '&');
  assert.match(text, new RegExp(`^gusu-login:v1\\|${t.url.replace(/[.:/]/g, '\\$&')}/oidc\\|${uscc}\\|[A-Za-z0-9_-]{43}$`));
  return { browser, url, text, csrf: csrfOf(html) };
}

function submit(c: Challenge, uscc: string, certificate: string, signature: Buffer | string): Promise<Response> {
  return c.browser.post(`${c.url}/enterprise`, {
    _csrf: c.csrf,
    uscc,
    challenge: c.text,
    certificate,
    signature: typeof signature === 'string' ? signature : signature.toString('base64'),
  });
}

test('a valid SM2 signature over the challenge signs the legal person in', async () => {
  const e = entities[0]!;
  const cert = await issue('sm2-sm3', e);
  const c = await challenge(e.uscc);
  const { signature, alg } = signWithCertificateKey(cert.privateKey!, c.text);
  assert.equal(alg, 'sm2-sm3');
  const res = await submit(c, e.uscc, cert.certificate, signature);
  assert.equal(res.status, 303);
  const landed = await c.browser.follow(new URL(res.headers.get('location')!, c.url).href, t.url);
  assert.equal(landed.url, `${t.url}/`);
  // signed in as the enterprise: the session works on the APIs
  const prefs = await c.browser.fetch(`${t.url}/api/v1/me/preferences`, { headers: { accept: 'application/json' } });
  assert.equal(prefs.status, 200);
  const account = await t.platform.ctx.db.query<{ kind: string; name: string }>(`select kind, name from identity.account where kind = 'enterprise' and login = $1`, [e.uscc]);
  assert.deepEqual(account.rows[0], { kind: 'enterprise', name: e.name });
  const audit = await searchAudit(t.platform.ctx.db, { action: 'auth.login', limit: 10 });
  assert.ok(audit.items.some((x) => x.outcome === 'ok' && (x.details as { method?: string } | null)?.method === 'certificate'));

  // the same challenge and signature again (a replay), in this sign-in or another, are refused
  const replay = await submit(c, e.uscc, cert.certificate, signature);
  assert.ok([400, 401].includes(replay.status), `replay: ${replay.status}`);
  const other = await challenge(e.uscc);
  const replayed = await other.browser.post(`${other.url}/enterprise`, { _csrf: other.csrf, uscc: e.uscc, challenge: c.text, certificate: cert.certificate, signature: signature.toString('base64') });
  assert.equal(replayed.status, 401);
  assert.match(await replayed.text(), /挑战值已使用、已过期或不属于本次登录/);
});

test('ECDSA P-256 certificates work as well', async () => {
  const e = entities[1]!;
  const cert = await issue('ecdsa-p256-sha256', e);
  const c = await challenge(e.uscc);
  const res = await submit(c, e.uscc, cert.certificate, signWithCertificateKey(cert.privateKey!, c.text).signature);
  assert.equal(res.status, 303);
});

test('a forged signature, a signature over other text, another legal person’s certificate are refused', async () => {
  const e = entities[2]!;
  const cert = await issue('sm2-sm3', e);
  const stranger = generateKeyPair('sm2-sm3');
  const c1 = await challenge(e.uscc);
  const forged = await submit(c1, e.uscc, cert.certificate, sign('sm2-sm3', stranger.privateKey, c1.text));
  assert.equal(forged.status, 401);
  assert.match(await forged.text(), /签名验证失败/);

  const c2 = await challenge(e.uscc);
  const wrongText = await submit(c2, e.uscc, cert.certificate, signWithCertificateKey(cert.privateKey!, c2.text + 'x').signature);
  assert.equal(wrongText.status, 401);

  // a certificate of entity 0 presented for entity 2
  const otherCert = await issue('sm2-sm3', entities[0]!);
  const c3 = await challenge(e.uscc);
  const mismatch = await submit(c3, e.uscc, otherCert.certificate, signWithCertificateKey(otherCert.privateKey!, c3.text).signature);
  assert.equal(mismatch.status, 401);
  assert.match(await mismatch.text(), /证书不属于所选法人/);

  // garbage certificate and signature: clear refusals
  const c4 = await challenge(e.uscc);
  const garbage = await submit(c4, e.uscc, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', 'bm90IGEgc2lnbmF0dXJl');
  assert.equal(garbage.status, 401);
  const c5 = await challenge(e.uscc);
  const notBase64 = await submit(c5, e.uscc, cert.certificate, '!!!\u0000');
  assert.equal(notBase64.status, 400);
});

test('a revoked certificate is refused', async () => {
  const e = entities[3]!;
  const cert = await issue('sm2-sm3', e);
  await revokeCertificate(t.platform.ctx.db, caContextFor(t.platform.ctx), ACTOR, cert.serial, 'key-compromise');
  const c = await challenge(e.uscc);
  const res = await submit(c, e.uscc, cert.certificate, signWithCertificateKey(cert.privateKey!, c.text).signature);
  assert.equal(res.status, 401);
  assert.match(await res.text(), /revoked/);
  const audit = await searchAudit(t.platform.ctx.db, { action: 'auth.login', limit: 50 });
  assert.ok(audit.items.some((x) => x.outcome === 'denied' && (x.details as { reason?: string } | null)?.reason === 'bad-certificate'));
});

test('a bad USCC is refused before any challenge is issued', async () => {
  const browser = new Browser();
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const page = await (await browser.fetch(`${url}?as=enterprise`)).text();
  const res = await browser.post(`${url}/enterprise/challenge`, { _csrf: csrfOf(page), uscc: '91320500MA1XXXXXX0' });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /统一社会信用代码无效/);
});
