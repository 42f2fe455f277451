// The identity settings and the URLs derived from them (issuer, redirect URIs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { platformUrls } from '../src/base/identity/index.ts';

test('defaults: issuer on the one listener, 30 sign-ins per IP per minute, 30 min idle, 12 h sessions', () => {
  const c = loadConfig({}, '/srv/gusu');
  assert.equal(c.publicUrl, null);
  assert.equal(c.internalUrl, null);
  assert.equal(c.loginRatePerMinute, 30);
  assert.equal(c.sessionIdleMinutes, 30);
  assert.equal(c.sessionMaxMinutes, 720);
  assert.deepEqual(platformUrls(c), { public: 'http://127.0.0.1:3000', internal: 'http://127.0.0.1:3000', issuer: 'http://127.0.0.1:3000/oidc' });
  // PORT=0: the port the listener got
  assert.equal(platformUrls(loadConfig({ PORT: '0' }), 41234).issuer, 'http://127.0.0.1:41234/oidc');
});

test('two faces, and explicit URLs behind a proxy', () => {
  const split = loadConfig({ HOST: '0.0.0.0', PUBLIC_PORT: '8080', INTERNAL_PORT: '8443' });
  assert.deepEqual(platformUrls(split), { public: 'http://127.0.0.1:8080', internal: 'http://127.0.0.1:8443', issuer: 'http://127.0.0.1:8080/oidc' });
  const proxied = loadConfig({ GUSU_PUBLIC_URL: 'https://www.suzhou.example.gov.cn/', GUSU_INTERNAL_URL: 'https://zw.suzhou.example.gov.cn' });
  assert.equal(proxied.publicUrl, 'https://www.suzhou.example.gov.cn');
  assert.deepEqual(platformUrls(proxied), { public: 'https://www.suzhou.example.gov.cn', internal: 'https://zw.suzhou.example.gov.cn', issuer: 'https://www.suzhou.example.gov.cn/oidc' });
  assert.equal(platformUrls(loadConfig({ HOST: '::1', PORT: '3000' })).public, 'http://[::1]:3000');
});

test('bad values stop start-up with the variable named', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ GUSU_PUBLIC_URL: 'ftp://x.example' }, /^GUSU_PUBLIC_URL=.*http/],
    [{ GUSU_PUBLIC_URL: 'not a url' }, /^GUSU_PUBLIC_URL=/],
    [{ GUSU_PUBLIC_URL: 'https://x.example/?a=1' }, /^GUSU_PUBLIC_URL=/],
    [{ GUSU_INTERNAL_URL: 'https://user:pw@x.example' }, /^GUSU_INTERNAL_URL=/],
    [{ GUSU_LOGIN_RATE_PER_MINUTE: '0' }, /^GUSU_LOGIN_RATE_PER_MINUTE=/],
    [{ GUSU_SESSION_IDLE_MINUTES: 'forever' }, /^GUSU_SESSION_IDLE_MINUTES=/],
    [{ GUSU_SESSION_MAX_MINUTES: '99999999' }, /^GUSU_SESSION_MAX_MINUTES=/],
  ];
  for (const [env, re] of bad) assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && re.test(err.message), JSON.stringify(env));
});
