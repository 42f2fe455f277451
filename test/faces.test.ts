import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { GusuModule } from '../src/module.ts';
import { allow } from '../src/base/identity/policy.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const twoFaced: GusuModule = {
  name: 'two-faced',
  policies: allow('anyone', 'read', 'face-test'),
  publicRoutes: (app) => void app.get('/api/v1/face-test/public', { config: { action: 'face-test:read' } }, async () => ({ face: 'public' })),
  internalRoutes: (app) => void app.get('/api/v1/face-test/internal', { config: { action: 'face-test:read' } }, async () => ({ face: 'internal' })),
};

let t: TestPlatform;
let pub: string;
let internal: string;
before(async () => {
  t = await startTestPlatform({ PUBLIC_PORT: String(await freePort()), INTERNAL_PORT: String(await freePort()), GUSU_DEMO: 'false' }, [twoFaced]);
  pub = t.platform.listeners.find((l) => l.face === 'public')!.url;
  internal = t.platform.listeners.find((l) => l.face === 'internal')!.url;
});
after(async () => {
  await t.stop();
});

test('two listeners: the public face and the internal face', () => {
  assert.deepEqual(t.platform.listeners.map((l) => l.face), ['public', 'internal']);
  assert.notEqual(pub, internal);
});

test('a public route is served only on the public face, an internal one only on the internal face', async () => {
  assert.equal((await fetch(`${pub}/api/v1/face-test/public`)).status, 200);
  assert.equal((await fetch(`${pub}/api/v1/face-test/internal`)).status, 404);
  assert.equal((await fetch(`${internal}/api/v1/face-test/internal`)).status, 200);
  assert.equal((await fetch(`${internal}/api/v1/face-test/public`)).status, 404);
});

test('operations endpoints answer on both faces', async () => {
  for (const base of [pub, internal]) {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  }
});

test('each face documents only its own routes', async () => {
  const p = await (await fetch(`${pub}/api/openapi.json`)).json();
  const i = await (await fetch(`${internal}/api/openapi.json`)).json();
  assert.ok(p.paths['/api/v1/face-test/public'] && !p.paths['/api/v1/face-test/internal']);
  assert.ok(i.paths['/api/v1/face-test/internal'] && !i.paths['/api/v1/face-test/public']);
});
