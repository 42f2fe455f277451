// A whole platform on a fresh test database, listening on a free loopback port.
import { loadConfig, type Config } from '../../src/config/index.ts';
import { startPlatform, type Platform } from '../../src/main.ts';
import { MODULES } from '../../src/modules.ts';
import type { GusuModule } from '../../src/module.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './db.ts';

export interface TestPlatform {
  platform: Platform;
  url: string;
  database: TestDatabase;
  config: Config;
  stop(): Promise<void>;
}

/** extraModules are added after the platform's own (test-only routes and jobs). */
export async function startTestPlatform(env: Record<string, string> = {}, extraModules: GusuModule[] = []): Promise<TestPlatform> {
  const database = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: '0',
    LOG_LEVEL: 'silent',
    GUSU_DEMO_RESIDENTS: '300',
    GUSU_DEMO_ENTERPRISES: '100',
    ...env,
  });
  const platform = await startPlatform(config, { modules: [...MODULES, ...extraModules] });
  return {
    platform,
    url: platform.listeners[0]!.url,
    database,
    config,
    async stop() {
      await platform.close();
      await database.drop();
      await stopTestServer();
    },
  };
}
