// A whole platform on a fresh test database, listening on a free loopback port.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { startPlatform, type Platform } from '../../src/main.ts';
import { MODULES } from '../../src/modules.ts';
import type { ActorResolver, GusuModule } from '../../src/module.ts';
import type { Actor } from '../../src/base/identity/policy.ts';
import { ANONYMOUS } from '../../src/base/identity/policy.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './db.ts';

export interface TestPlatform {
  platform: Platform;
  url: string;
  database: TestDatabase;
  config: Config;
  stop(): Promise<void>;
}

/**
 * A synthetic staff member that test requests carrying `x-test-actor: staff` (or, from a browser,
 * the cookie test_actor=staff) act as: pages behind sign-in without driving the sign-in flow. Every
 * other request is anonymous. Only tests install this resolver.
 */
export const TEST_STAFF: Actor = Object.freeze({ kind: 'staff', accountId: '00000000-0000-4000-8000-0000000000aa', name: '测试员', department: 'SZ-DSJ', post: '科员', roles: [] });
export const AS_STAFF = { 'x-test-actor': 'staff' } as const;
export const headerActor: ActorResolver = async (req) =>
  req.headers['x-test-actor'] === 'staff' || /(?:^|;\s*)test_actor=staff(?:;|$)/.test(req.headers.cookie ?? '') ? TEST_STAFF : ANONYMOUS;

/** extraModules are added after the platform's own (test-only routes and jobs). */
export async function startTestPlatform(env: Record<string, string> = {}, extraModules: GusuModule[] = [], opts: { resolveActor?: ActorResolver } = {}): Promise<TestPlatform> {
  const database = await createTestDatabase();
  // a data directory of its own (master key, CA files), never the checkout's ./var
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-test-data-'));
  const config = loadConfig({
    GUSU_DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    GUSU_DEMO_RESIDENTS: '300',
    GUSU_DEMO_ENTERPRISES: '100',
    // the registries' exchange bridge adds a member and subscriptions: off unless a test turns it on
    GUSU_REGISTRY_BRIDGE_MS: '0',
    ...env,
  });
  const platform = await startPlatform(config, { modules: [...MODULES, ...extraModules], ...(opts.resolveActor ? { resolveActor: opts.resolveActor } : {}) });
  return {
    platform,
    url: platform.listeners[0]!.url,
    database,
    config,
    async stop() {
      await platform.close();
      await database.drop();
      await stopTestServer();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
