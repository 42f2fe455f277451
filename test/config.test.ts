import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/index.ts';

test('defaults: embedded database under ./var, port 3000, demo on', () => {
  const c = loadConfig({}, '/srv/gusu');
  assert.equal(c.port, 3000);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.databaseUrl, null);
  assert.equal(c.dataDir, '/srv/gusu/var');
  assert.equal(c.publicPort, null);
  assert.equal(c.demo, true);
  assert.match(c.profileDir, /profiles\/suzhou$/);
});

test('values are parsed and typed', () => {
  const c = loadConfig({ PORT: '8080', HOST: '0.0.0.0', DATABASE_URL: 'postgres://u@db:5432/gusu', GUSU_DATA_DIR: '/data', GUSU_DEMO: 'no', LOG_LEVEL: 'warn', PUBLIC_PORT: '80', INTERNAL_PORT: '8443' });
  assert.equal(c.port, 8080);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.databaseUrl, 'postgres://u@db:5432/gusu');
  assert.equal(c.dataDir, '/data');
  assert.equal(c.demo, false);
  assert.equal(c.logLevel, 'warn');
  assert.deepEqual([c.publicPort, c.internalPort], [80, 8443]);
});

const bad: [Record<string, string>, RegExp][] = [
  [{ PORT: 'abc' }, /^PORT="abc" is not valid: expected a whole number from 0 to 65535$/],
  [{ PORT: '70000' }, /^PORT="70000"/],
  [{ PORT: '-1' }, /^PORT="-1"/],
  [{ PORT: '3000.5' }, /^PORT="3000.5"/],
  [{ DATABASE_URL: 'mysql://x@y/z' }, /^DATABASE_URL=.*postgres:\/\//],
  [{ DATABASE_URL: 'not a url' }, /^DATABASE_URL="not a url" is not valid/],
  [{ GUSU_DEMO: 'maybe' }, /^GUSU_DEMO="maybe" is not valid: expected one of true, false/],
  [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL="loud" is not valid: expected one of fatal, error, warn, info, debug, trace, silent$/],
  [{ HOST: 'evil host;rm' }, /^HOST=/],
  [{ PUBLIC_PORT: '8080' }, /^PUBLIC_PORT is set but INTERNAL_PORT is not/],
  [{ PUBLIC_PORT: '8080', INTERNAL_PORT: '8080' }, /must differ/],
  [{ GUSU_DEMO_RESIDENTS: '1e9' }, /^GUSU_DEMO_RESIDENTS=/],
  [{ GUSU_PROFILE: 'sü;zhou' }, /^GUSU_PROFILE=/],
];

for (const [env, message] of bad) {
  test(`refuses ${JSON.stringify(env)} with one line naming the variable`, () => {
    assert.throws(() => loadConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, message);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  });
}

test('GUSU_TRUST_PROXY: none by default; hops; addresses and ranges; anything else refused naming the variable', () => {
  assert.equal(loadConfig({}).trustProxy, false);
  assert.equal(loadConfig({ GUSU_TRUST_PROXY: 'false' }).trustProxy, false);
  assert.equal(loadConfig({ GUSU_TRUST_PROXY: '1' }).trustProxy, 1);
  assert.deepEqual(loadConfig({ GUSU_TRUST_PROXY: '10.0.0.0/8, 192.0.2.7,loopback, fd00::/8' }).trustProxy, ['10.0.0.0/8', '192.0.2.7', 'loopback', 'fd00::/8']);
  for (const bad of ['11', 'proxy.example', '10.0.0.0/33', '10.0.0.1/8/1', '*', '1.2.3.4; rm -rf /', 'fd00::/129']) {
    assert.throws(() => loadConfig({ GUSU_TRUST_PROXY: bad }), (err: unknown) => err instanceof ConfigError && err.message.startsWith("GUSU_TRUST_PROXY="), bad);
  }
});
