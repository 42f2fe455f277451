// Single sign-on end to end: a real relying-party library (openid-client) against the running
// platform's OpenID provider — discovery, authorization code with PKCE, our login page, tokens,
// userinfo, refresh, RP-initiated logout — and the platform's own portal and console as relying
// parties sharing one sign-in.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as client from 'openid-client';
import { createStaffAccount, csrfField, grantRole, registerCitizen, registerClient, totpCode } from '../src/base/identity/index.ts';
import { allow } from '../src/base/identity/policy.ts';
import type { GusuModule } from '../src/module.ts';
import { Browser, csrfOf, startIdentityPlatform, type IdentityPlatform } from './support/identity.ts';

let t: IdentityPlatform;
const RP = { id: 'test-rp', secret: 'test-rp-secret-0123456789abcdef', redirect: 'http://127.0.0.1:9/cb', postLogout: 'http://127.0.0.1:9/bye' };
let citizen: { idNumber: string; name: string; password: string };
const staffPassword = 'correct horse battery staple';
let staffSecret = '';

// another module's form: the platform-wide CSRF check (in the actor resolver) covers it
const forms: GusuModule = {
  name: 'probe-forms',
  policies: allow('anyone', ['read', 'send'], 'probe-form'),
  publicRoutes(app, ctx) {
    app.get('/probe/form', { config: { action: 'probe-form:read' } }, async (req, reply) =>
      reply.type('text/html').send(`<form method="post" action="/probe/form">${csrfField(ctx, req, reply).__html}</form>`),
    );
    app.post('/probe/form', { config: { action: 'probe-form:send' } }, async (req) => ({ actor: req.actor.kind }));
  },
};

before(async () => {
  t = await startIdentityPlatform({ GUSU_LOGIN_RATE_PER_MINUTE: '1000' }, [forms]);
  const db = t.platform.ctx.db;
  await registerClient(db, {
    client_id: RP.id,
    client_secret: RP.secret,
    redirect_uris: [RP.redirect],
    post_logout_redirect_uris: [RP.postLogout],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const { rows } = await db.query<{ id_number: string; name: string }>('select id_number, name from population.person order by id_number limit 1 offset 7');
  citizen = { idNumber: rows[0]!.id_number, name: rows[0]!.name, password: 'a fine citizen password' };
  await registerCitizen(db, citizen);
  const staff = await createStaffAccount(db, { username: 'sso.admin', name: '沈管理', department: 'SZ-DSJ', post: '科长', password: staffPassword });
  staffSecret = staff.totpSecret;
  await grantRole(db, { accountId: staff.account.id, role: 'platform-admin', scope: null }, { kind: 'system', id: 'test', department: 'SZ-DSJ' });
});
after(async () => {
  await t?.stop();
});

async function rpConfig(): Promise<client.Configuration> {
  return client.discovery(new URL(`${t.url}/oidc`), RP.id, RP.secret, client.ClientSecretBasic(RP.secret), { execute: [client.allowInsecureRequests] });
}

/** Starts at an authorization URL, signs in on our page as the citizen, returns where the browser is sent. */
async function signInAsCitizen(browser: Browser, authUrl: string): Promise<string> {
  const { res, url } = await browser.follow(authUrl, t.url);
  assert.equal(res.status, 200, `the login page (at ${url})`);
  assert.match(url, /\/auth\/interaction\/[A-Za-z0-9_-]+$/);
  const page = await res.text();
  assert.match(page, /<html lang="zh-CN"/, 'our page, in the platform layout');
  const post = await browser.post(`${url}/citizen`, { _csrf: csrfOf(page), idNumber: citizen.idNumber, password: citizen.password });
  assert.equal(post.status, 303, 'signed in');
  const next = await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);
  return next.url;
}

test('discovery: PKCE S256, code flow, refresh tokens, RP-initiated logout', async () => {
  const config = await rpConfig();
  const m = config.serverMetadata();
  assert.equal(m.issuer, `${t.url}/oidc`);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.ok(m.grant_types_supported?.includes('refresh_token'));
  assert.ok(m.end_session_endpoint);
  assert.ok(m.backchannel_logout_supported);
});

test('the whole flow with openid-client: PKCE, our login page, tokens, userinfo, refresh, logout', async () => {
  const config = await rpConfig();
  const browser = new Browser();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: RP.redirect,
    scope: 'openid profile gusu',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const callback = await signInAsCitizen(browser, authUrl.href);
  assert.ok(callback.startsWith(RP.redirect), `back at the RP: ${callback}`);

  // a wrong verifier is refused; the right one gets the tokens
  await assert.rejects(client.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state, expectedNonce: nonce }));
  // the code was spent by the failed attempt: start again
  const verifier2 = client.randomPKCECodeVerifier();
  const url2 = client.buildAuthorizationUrl(config, { redirect_uri: RP.redirect, scope: 'openid profile gusu', code_challenge: await client.calculatePKCECodeChallenge(verifier2), code_challenge_method: 'S256', state, nonce });
  const again = await browser.follow(url2.href, t.url);
  assert.ok(again.url.startsWith(RP.redirect), 'signed in already: no second password');
  const tokens = await client.authorizationCodeGrant(config, new URL(again.url), { pkceCodeVerifier: verifier2, expectedState: state, expectedNonce: nonce });
  const claims = tokens.claims()!;
  assert.equal(claims.iss, `${t.url}/oidc`);
  assert.equal(claims.aud, RP.id);
  assert.equal(claims.nonce, nonce);
  assert.match(claims.sub, /^[0-9a-f-]{36}$/);
  assert.equal(claims.name, citizen.name);
  assert.equal(claims.gusu_kind, 'citizen');
  assert.deepEqual(claims.amr, ['pwd']);
  assert.ok(typeof claims.auth_time === 'number');
  assert.ok(tokens.refresh_token, `a refresh token: ${JSON.stringify(tokens)}`);

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.name, citizen.name);

  // the access token works as a bearer token on the platform's APIs
  const prefs = await fetch(`${t.url}/api/v1/me/preferences`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(prefs.status, 200);
  assert.deepEqual(await prefs.json(), { language: null, favouriteServices: [], notificationChannels: ['mailbox'] });
  const forged = await fetch(`${t.url}/api/v1/me/preferences`, { headers: { authorization: `Bearer ${tokens.access_token}x` } });
  assert.equal(forged.status, 401);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
  const info2 = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  assert.equal(info2.sub, claims.sub);

  // RP-initiated logout: our confirmation page, then back to the RP's post-logout URI
  const endUrl = client.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token ?? tokens.id_token!, post_logout_redirect_uri: RP.postLogout, state: 'bye-state' });
  const confirm = await browser.fetch(endUrl.href);
  assert.equal(confirm.status, 200);
  const page = await confirm.text();
  assert.match(page, /<html lang="zh-CN"/);
  assert.match(page, /退出登录/);
  assert.doesNotMatch(page, /<script|style=/, 'no inline script or style');
  assert.match(confirm.headers.get('content-security-policy')!, /script-src 'self'/);
  const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(page)![1]!;
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)![1]!;
  const done = await browser.post(action, { xsrf, logout: 'yes' });
  assert.equal(done.status, 303);
  const back = new URL(done.headers.get('location')!);
  assert.equal(`${back.origin}${back.pathname}`, RP.postLogout);
  assert.equal(back.searchParams.get('state'), 'bye-state');

  // the sign-in is over: its tokens are revoked and the next authorization asks for a password
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token ?? tokens.refresh_token!));
  const gone = await fetch(`${t.url}/api/v1/me/preferences`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  assert.equal(gone.status, 401);
  const fresh = await browser.follow(url2.href, t.url);
  assert.match(fresh.url, /\/auth\/interaction\//, 'the login page again');
});

test('PKCE is required: an authorization request without code_challenge is refused', async () => {
  const config = await rpConfig();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: RP.redirect, scope: 'openid', state: 's1' });
  const { url: landed } = await new Browser().follow(url.href, t.url);
  const u = new URL(landed);
  assert.equal(`${u.origin}${u.pathname}`, RP.redirect);
  assert.equal(u.searchParams.get('error'), 'invalid_request');
  assert.match(u.searchParams.get('error_description')!, /PKCE/);
  // plain is not a supported method either
  const plain = client.buildAuthorizationUrl(config, { redirect_uri: RP.redirect, scope: 'openid', state: 's2', code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
  const { url: landed2 } = await new Browser().follow(plain.href, t.url);
  assert.equal(new URL(landed2).searchParams.get('error'), 'invalid_request');
});

test('an unregistered redirect URI gets an error page, not a redirect', async () => {
  const config = await rpConfig();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://evil.example/cb', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
  const { res } = await new Browser().follow(url.href, t.url);
  assert.equal(res.status, 400);
  const page = await res.text();
  assert.match(page, /<html lang="zh-CN"/);
  assert.match(page, /redirect_uri/);
});

test('the portal and the console share one sign-in; cookies are HttpOnly and SameSite; logout ends both', async () => {
  const browser = new Browser();
  // the portal: /auth/login → provider → our login page (staff tab) → back at the page asked for
  const { res, url } = await browser.follow(`${t.url}/auth/login?back=/me/preferences`, t.url);
  assert.equal(res.status, 200);
  const loginUrl = new URL(url);
  const page = await (await browser.fetch(`${url}?as=staff`)).text();
  const post = await browser.post(`${loginUrl.origin}${loginUrl.pathname}/staff`, { _csrf: csrfOf(page), username: 'sso.admin', password: staffPassword, totp: totpCode(staffSecret) });
  assert.equal(post.status, 303);
  const landed = await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);
  assert.equal(landed.url, `${t.url}/me/preferences`);
  assert.equal(landed.res.status, 200);
  assert.match(await landed.res.text(), /个人设置/);

  const sid = browser.jar.get('gusu_sid')!;
  assert.ok(sid, 'a portal session cookie');
  assert.match(sid.raw, /HttpOnly/i);
  assert.match(sid.raw, /SameSite=Lax/i);
  for (const name of ['gusu_op', 'gusu_csrf']) {
    const c = browser.jar.get(name);
    assert.ok(c, `${name} cookie`);
    assert.match(c.raw, /HttpOnly/i);
    assert.match(c.raw, /SameSite=Lax/i);
  }

  // the console: no second password
  const consoleLogin = await browser.follow(`${t.url}/console/auth/login?back=/console/admin/roles`, t.url);
  assert.equal(consoleLogin.url, `${t.url}/console/admin/roles`);
  assert.equal(consoleLogin.res.status, 200);
  assert.ok(!browser.history.some((h) => /\/auth\/interaction\/[^/]+\/staff$/.test(h.url) && h !== browser.history.find((x) => x.url.endsWith('/staff'))), 'one password post only');
  assert.equal(browser.history.filter((h) => h.url.endsWith('/staff')).length, 1, 'the password was typed once');
  assert.ok(browser.jar.get('gusu_console_sid'), 'a console session cookie');

  // sign out on the portal: confirm at the provider, and the console session ends too (back-channel)
  const prefsPage = await (await browser.fetch(`${t.url}/me/preferences`)).text();
  const out = await browser.post(`${t.url}/auth/logout`, { _csrf: csrfOf(prefsPage) });
  assert.equal(out.status, 303);
  assert.equal(browser.jar.get('gusu_sid'), undefined, 'the portal cookie is cleared');
  const confirm = await browser.follow(new URL(out.headers.get('location')!, t.url).href, t.url);
  const confirmPage = await confirm.res.text();
  const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(confirmPage)![1]!;
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirmPage)![1]!;
  const done = await browser.post(action, { xsrf, logout: 'yes' });
  assert.equal(done.status, 303);
  assert.equal(done.headers.get('location'), `${t.url}/auth/signed-out`);
  const roles = await browser.fetch(`${t.url}/console/admin/roles`);
  assert.equal(roles.status, 401, 'the console session ended with the single sign-on session');
});

test('a form POST without a CSRF token is refused with a forbidden problem page', async () => {
  const browser = new Browser();
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const res = await browser.post(`${url}/citizen`, { idNumber: citizen.idNumber, password: citizen.password });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('content-type')!, /text\/html/);
  const page = await res.text();
  assert.match(page, /无权访问/);
  const wrong = await browser.post(`${url}/citizen`, { _csrf: 'A'.repeat(43), idNumber: citizen.idNumber, password: citizen.password });
  assert.equal(wrong.status, 403);
  // an API client asking for JSON gets the problem as JSON
  const json = await browser.post(`${url}/citizen`, { idNumber: citizen.idNumber, password: citizen.password }, { accept: 'application/json' });
  assert.equal(json.status, 403);
  assert.equal((await json.json()).type, '/problems/forbidden');
});

test('the login page: strict CSP, no inline script or style, form-action limited', async () => {
  const browser = new Browser();
  const { res } = await browser.follow(`${t.url}/auth/login`, t.url);
  const csp = res.headers.get('content-security-policy')!;
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /form-action 'self'/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const page = await res.text();
  assert.doesNotMatch(page, /<script|style=|\son[a-z]+="/);
});

test('every module’s forms: a signed-in browser’s POST needs the token; API clients without cookies do not', async () => {
  const browser = new Browser();
  const { url } = await browser.follow(`${t.url}/auth/login`, t.url);
  const page = await (await browser.fetch(url)).text();
  const post = await browser.post(`${url}/citizen`, { _csrf: csrfOf(page), idNumber: citizen.idNumber, password: citizen.password });
  await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);
  assert.ok(browser.jar.get('gusu_sid'));

  const form = await (await browser.fetch(`${t.url}/probe/form`)).text();
  const ok = await browser.post(`${t.url}/probe/form`, { _csrf: csrfOf(form), x: '1' }, { accept: 'application/json' });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { actor: 'citizen' });
  const refused = await browser.post(`${t.url}/probe/form`, { x: '1' }, { accept: 'application/json' });
  assert.equal(refused.status, 403);
  const textPlain = await browser.fetch(`${t.url}/probe/form`, { method: 'POST', headers: { 'content-type': 'text/plain', accept: 'application/json' }, body: 'x=1' });
  assert.equal(textPlain.status, 403);
  // JSON needs a CORS preflight a foreign page cannot pass: no token needed
  const json = await browser.fetch(`${t.url}/probe/form`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{}' });
  assert.equal(json.status, 200);
  // no session cookie, no ambient authority: an API client's form post is not asked for a token
  const api = await fetch(`${t.url}/probe/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: 'x=1' });
  assert.equal(api.status, 200);
  assert.deepEqual(await api.json(), { actor: 'anonymous' });
});
