// Two faces on two listeners (PUBLIC_PORT, INTERNAL_PORT): the provider and the portal on the public
// one, the console on the internal one, one sign-in across both origins.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createStaffAccount, totpCode } from '../src/base/identity/index.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;
let pub = '';
let internal = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  t = await startIdentityPlatform({ PUBLIC_PORT: String(p1), INTERNAL_PORT: String(p2), GUSU_DEMO: 'false' });
  pub = t.platform.listeners.find((l) => l.face === 'public')!.url;
  internal = t.platform.listeners.find((l) => l.face === 'internal')!.url;
});
after(async () => {
  await t?.stop();
});

test('the console on the internal face signs in at the provider on the public face', async () => {
  const { totpSecret } = await createStaffAccount(t.platform.ctx.db, { username: 'faces.staff', name: '双面', department: 'SZ-DSJ', post: '科员', password: 'two faces password' });
  const browser = new Browser();
  const start = await browser.fetch(`${internal}/console/auth/login?back=/console`);
  assert.equal(start.status, 303);
  const auth = start.headers.get('location')!;
  assert.ok(auth.startsWith(`${pub}/oidc/auth?`), `to the issuer on the public face: ${auth}`);
  const { res, url } = await browser.follow(auth, pub);
  assert.equal(res.status, 200);
  const page = await res.text();
  assert.match(page, /shell-console/, 'the console’s sign-in wears the console band');
  // the page may send the browser on to the internal face after the form post
  assert.match(res.headers.get('content-security-policy')!, new RegExp(`form-action 'self' [^;]*${internal.replace(/[.:/]/g, '\\$&')}`));
  const post = await browser.post(`${url}/staff`, { _csrf: csrfOf(page), username: 'faces.staff', password: 'two faces password', totp: totpCode(totpSecret) });
  assert.equal(post.status, 303);
  const resumed = await browser.fetch(new URL(post.headers.get('location')!, url).href);
  assert.equal(resumed.status, 303);
  const callback = resumed.headers.get('location')!;
  assert.ok(callback.startsWith(`${internal}/console/auth/callback?`), callback);
  const done = await browser.fetch(callback);
  assert.equal(done.status, 303);
  assert.equal(done.headers.get('location'), '/console');
  assert.ok(browser.jar.get('gusu_console_sid'));
  // the internal face has no provider of its own
  assert.equal((await fetch(`${internal}/oidc/.well-known/openid-configuration`)).status, 404);
});
