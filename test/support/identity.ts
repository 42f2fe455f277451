// A platform with sign-in: the platform's modules plus audit, identity and the auth portal (when
// src/modules.ts does not list them yet), with the identity module's actor resolver; and a small
// browser (cookie jar, manual redirects) to drive the login pages as a person would.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { startPlatform, type Platform } from '../../src/main.ts';
import { MODULES } from '../../src/modules.ts';
import type { ActorResolver, GusuModule } from '../../src/module.ts';
import { auditModule } from '../../src/base/audit/index.ts';
import { createActorResolver, identityModule } from '../../src/base/identity/index.ts';
import { authPortalModule } from '../../src/portals/auth/index.ts';
import { ANONYMOUS } from '../../src/base/identity/policy.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './db.ts';

export interface IdentityPlatform {
  platform: Platform;
  url: string;
  database: TestDatabase;
  config: Config;
  stop(): Promise<void>;
}

async function optionalCa(): Promise<GusuModule[]> {
  try {
    const m = (await import('../../src/base/identity/ca/index.ts')) as { caModule?: GusuModule };
    return m.caModule ? [m.caModule] : [];
  } catch {
    return [];
  }
}

export async function startIdentityPlatform(env: Record<string, string> = {}, extraModules: GusuModule[] = []): Promise<IdentityPlatform> {
  const database = await createTestDatabase();
  // a data directory of its own (master key, CA files), never the checkout's ./var
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-test-data-'));
  const config = loadConfig({
    GUSU_DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    GUSU_DEMO_RESIDENTS: '300',
    GUSU_DEMO_ENTERPRISES: '100',
    ...env,
  });
  const names = new Set(MODULES.map((m) => m.name));
  const add = [auditModule, ...(await optionalCa()), identityModule, authPortalModule].filter((m) => !names.has(m.name));
  // after the demo module: identity seeds its demo accounts from the demo residents
  const modules = [...MODULES, ...add, ...extraModules];
  let bound: ActorResolver = async () => ANONYMOUS;
  const platform = await startPlatform(config, { modules, resolveActor: (req) => bound(req) });
  bound = createActorResolver(platform.ctx);
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

/** A browser enough for our pages: a cookie jar per origin path, redirects followed by hand. */
export class Browser {
  readonly jar = new Map<string, { value: string; path: string; raw: string }>();
  history: { url: string; status: number }[] = [];

  cookieHeader(url: string): string {
    const path = new URL(url).pathname;
    return [...this.jar.entries()]
      .filter(([, c]) => path.startsWith(c.path))
      .map(([k, c]) => `${k}=${c.value}`)
      .join('; ');
  }

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const pathAttr = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('path='));
      const expired = attrs.some((a) => /^expires=Thu, 01 Jan 1970/i.test(a.trim()) || /^max-age=0$/i.test(a.trim()));
      if (expired || value === '') this.jar.delete(name);
      else this.jar.set(name, { value, path: pathAttr ? pathAttr.slice(5) : '/', raw: line });
    }
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    this.history.push({ url, status: res.status });
    return res;
  }

  /** GETs and follows redirects while they stay on `origin`; returns the last response and its URL. */
  async follow(url: string, origin: string, init: RequestInit = {}, max = 15): Promise<{ res: Response; url: string }> {
    let res = await this.fetch(url, init);
    let current = url;
    for (let i = 0; i < max && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location')!, current).href;
      if (!next.startsWith(origin)) return { res, url: next };
      await res.arrayBuffer();
      current = next;
      res = await this.fetch(current);
    }
    return { res, url: current };
  }

  /** POSTs a form (urlencoded). */
  post(url: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Response> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    return this.fetch(url, { method: 'POST', body: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  }
}

/** The value of the hidden _csrf field of the (first) form on a page. */
export function csrfOf(page: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(page);
  if (!m) throw new Error('no CSRF field on the page');
  return m[1]!;
}

export function formActionOf(page: string, contains: string): string {
  const re = /<form[^>]*action="([^"]+)"/g;
  for (let m = re.exec(page); m; m = re.exec(page)) if (m[1]!.includes(contains)) return m[1]!.replace(/&amp;/g, '&');
  throw new Error(`no form posting to *${contains}*`);
}
