// 统一身份认证 — base/identity's public face: accounts (citizens, staff, enterprises), role grants,
// preferences, the platform's OpenID provider (single sign-on for every portal and console), the
// relying parties' sessions, and the actor resolver the HTTP layer asks "who is calling?".
// See docs/decisions/0007-identity-and-sso.md and docs/identity.md.
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { enqueue } from '../../db/index.ts';
import { isLang } from '../../http/i18n.ts';
import { problem } from '../../http/problems.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { purgeChallenges } from './accounts/enterprise.ts';
import { CHANNELS, getPreferences, MAX_FAVOURITES, setPreferences, type Preferences } from './accounts/preferences.ts';
import { purgeThrottle } from './accounts/throttle.ts';
import { seedDemoAccounts } from './accounts/demo.ts';
import { demoAccountsCommand } from './accounts/cli.ts';
import { purgeExpiredOidc } from './oidc/adapter.ts';
import { oidcRoutes } from './oidc/routes.ts';
import { ensureSecrets } from './oidc/secrets.ts';
import { identityPolicy } from './policy-rules.ts';
import { installEnterpriseVerifier, masterKeySealer } from './accounts/ca-bridge.ts';
import { purgeSessions } from './sessions/index.ts';
import { sealTotpSecrets } from './accounts/index.ts';

export {
  AccountError,
  actorOfAccount,
  activeGrants,
  auditActorOf,
  createStaffAccount,
  findAccountById,
  findAccountByLogin,
  passwordLogin,
  registerCitizen,
  setAccountStatus,
  setPassword,
  type Account,
  type AccountKind,
  type LoginResult,
  type Origin,
} from './accounts/index.ts';
export { grantRole, listStaff, revokeRole, staffHolding, type GrantRecord, type StaffWithGrants } from './accounts/grants.ts';
export { CHANNELS, EXTERNAL_CHANNEL_SUBSCRIBERS_SQL, getPreferences, setPreferences, type Channel, type Preferences } from './accounts/preferences.ts';
export { hashPassword, verifyPassword, hashingStats } from './accounts/passwords.ts';
export { totpCode, verifyTotp, newTotpSecret, totpUri } from './accounts/totp.ts';
export { challengeText, enterpriseLogin, issueChallenge } from './accounts/enterprise.ts';
export { demoAccounts, demoAccountsSummary, DEMO_ACCOUNTS_FILE, type DemoAccounts } from './accounts/demo.ts';
export { ROLES, roleById, type RoleDefinition } from './roles.ts';
export { registerClient } from './oidc/adapter.ts';
export { getOidc, PORTAL_CLIENT, CONSOLE_CLIENT, PLATFORM_SCOPES } from './oidc/provider.ts';
export { platformUrls, type PlatformUrls } from './oidc/urls.ts';
export { csrfField, csrfToken, checkCsrf, CSRF_FIELD, CSRF_HEADER } from './sessions/csrf.ts';
export {
  createSession,
  destroySession,
  destroySessionsBySid,
  readSession,
  sessionCookieOf,
  SESSION_COOKIE,
  type SessionClient,
  type SessionRecord,
} from './sessions/index.ts';
export { createActorResolver } from './sessions/resolver.ts';

const CLEANUP = 'identity.cleanup';
const HOUR = 3600_000;

async function scheduleCleanup(ctx: ModuleContext, after = HOUR): Promise<void> {
  // one job per hour slot: any number of processes enqueue it, one runs it
  const at = new Date(Math.ceil((Date.now() + after) / HOUR) * HOUR);
  await enqueue(ctx.db, CLEANUP, {}, { runAt: at, uniqueKey: `${CLEANUP}:${at.toISOString()}` });
}

const PreferencesSchema = Type.Object(
  {
    language: Type.Union([Type.Enum(['zh-CN', 'en']), Type.Null()], { description: 'null: the site default' }),
    favouriteServices: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }), { maxItems: MAX_FAVOURITES, description: 'service ids, in the order shown' }),
    notificationChannels: Type.Array(Type.Enum([...CHANNELS]), { maxItems: CHANNELS.length, description: 'where notices are delivered besides the web' }),
  },
  { additionalProperties: false },
);

function accountIdOf(actor: import('./policy.ts').Actor): string {
  if (actor.kind === 'citizen' || actor.kind === 'enterprise' || actor.kind === 'staff') return actor.accountId;
  throw problem('forbidden', 'preferences belong to people: sign in as a resident, an enterprise or staff');
}

function publicRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  oidcRoutes(app, ctx);

  const tags = ['identity'];
  app.get(
    '/api/v1/me/preferences',
    { config: { action: 'preference:read' }, schema: { tags, summary: 'The signed-in person’s preferences (language, favourite services, notification channels)', response: { 200: PreferencesSchema } } },
    async (req) => getPreferences(ctx.db, accountIdOf(req.actor)),
  );
  app.put(
    '/api/v1/me/preferences',
    { config: { action: 'preference:update' }, schema: { tags, summary: 'Replaces the signed-in person’s preferences', body: PreferencesSchema, response: { 200: PreferencesSchema } } },
    async (req, reply) => {
      const saved = await setPreferences(ctx.db, accountIdOf(req.actor), req.body as Preferences);
      if (saved.language && isLang(saved.language)) reply.setCookie('lang', saved.language, { path: '/', sameSite: 'lax', httpOnly: true, maxAge: 365 * 24 * 3600 });
      return saved;
    },
  );
}

export const identityModule: GusuModule = {
  name: 'identity',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: identityPolicy,
  publicRoutes,
  commands: { 'demo-accounts': demoAccountsCommand },
  jobs: (ctx) => ({
    [CLEANUP]: async () => {
      await purgeExpiredOidc(ctx.db);
      await purgeSessions(ctx.db, ctx.config);
      await purgeThrottle(ctx.db);
      await purgeChallenges(ctx.db);
      await scheduleCleanup(ctx);
    },
  }),
  async start(ctx) {
    const secrets = await ensureSecrets(ctx.db, masterKeySealer(ctx));
    const sealed = await sealTotpSecrets(ctx.db, secrets);
    if (sealed) ctx.log.info({ sealed }, 'TOTP secrets stored in the clear are now sealed');
    installEnterpriseVerifier(ctx);
    await scheduleCleanup(ctx, 0);
    if (ctx.config.demo) await seedDemoAccounts(ctx);
  },
};
