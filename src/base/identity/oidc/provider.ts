// The platform's one OpenID Provider (oidc-provider, OpenID Certified): authorization code flow with
// PKCE required for every client, refresh tokens, RP-initiated and back-channel logout. Storage,
// keys and cookie keys in PostgreSQL; the login and logout pages are ours, in the platform layout.
import type { IncomingMessage, ServerResponse } from 'node:http';
// imported lazily in createOidc: the package prints a runtime warning on import, which would land in
// every CLI command's stderr
import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC, ClientMetadata } from 'oidc-provider';
import { html, raw } from '../../../http/html.ts';
import { errorPage, page } from '../../../http/layout.ts';
import { isLang, tr, type Lang } from '../../../http/i18n.ts';
import { PROBLEM_TYPES, type ProblemName } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { actorOfAccount, findAccountById } from '../accounts/index.ts';
import { getPreferences } from '../accounts/preferences.ts';
import { postgresAdapter } from './adapter.ts';
import { T } from './messages.ts';
import { loadSecrets, type IdentitySecrets } from './secrets.ts';
import { isHttps, originOf, platformUrls, type PlatformUrls } from './urls.ts';

export const PORTAL_CLIENT = 'gusu-portal';
export const CONSOLE_CLIENT = 'gusu-console';
export const PLATFORM_SCOPES = 'openid profile gusu';

export interface Oidc {
  provider: Provider;
  urls: PlatformUrls;
  secrets: IdentitySecrets;
  /** the node handler, for requests whose url has had the /oidc mount path removed */
  callback: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** origins a form on our pages may end up at (CSP form-action): both faces */
  formTargets: string[];
}

/** The platform's own relying parties, first-party: consent is granted without asking. */
export function platformClients(urls: PlatformUrls, secrets: IdentitySecrets): ClientMetadata[] {
  const common: Partial<ClientMetadata> = {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    backchannel_logout_session_required: true,
  };
  return [
    {
      ...common,
      client_id: PORTAL_CLIENT,
      client_secret: secrets.clientSecrets[PORTAL_CLIENT],
      client_name: '门户 Portal',
      redirect_uris: [`${urls.public}/auth/callback`],
      post_logout_redirect_uris: [`${urls.public}/auth/signed-out`],
      backchannel_logout_uri: `${urls.public}/auth/backchannel-logout`,
    },
    {
      ...common,
      client_id: CONSOLE_CLIENT,
      client_secret: secrets.clientSecrets[CONSOLE_CLIENT],
      client_name: '工作台 Console',
      redirect_uris: [`${urls.internal}/console/auth/callback`],
      post_logout_redirect_uris: [`${urls.internal}/console/auth/signed-out`],
      backchannel_logout_uri: `${urls.internal}/console/auth/backchannel-logout`,
    },
  ];
}

function koaLang(ctx: KoaContextWithOIDC): Lang {
  const q = ctx.query?.lang;
  if (isLang(q)) return q;
  const c = ctx.cookies.get('lang', { signed: false });
  return isLang(c) ? c : 'zh-CN';
}

function problemFor(status: number): ProblemName {
  const found = (Object.keys(PROBLEM_TYPES) as ProblemName[]).find((k) => PROBLEM_TYPES[k].status === status && k !== 'validation');
  return found ?? (status >= 500 ? 'internal' : 'bad-request');
}

const instances = new WeakMap<ModuleContext, Promise<Oidc>>();

/** The provider of this platform, created on first use (the issuer needs the listening port). */
export function getOidc(ctx: ModuleContext, localPort?: number): Promise<Oidc> {
  let p = instances.get(ctx);
  if (!p) {
    p = createOidc(ctx, platformUrls(ctx.config, localPort));
    instances.set(ctx, p);
    p.catch(() => instances.delete(ctx));
  }
  return p;
}

export async function createOidc(ctx: ModuleContext, urls: PlatformUrls): Promise<Oidc> {
  const secrets = await loadSecrets(ctx.db);
  const { db, config } = ctx;
  const ttlSession = config.sessionMaxMinutes * 60;
  const secure = isHttps(urls.public);
  const clients = platformClients(urls, secrets);
  const ownBackchannel = new Set(clients.map((c) => c.backchannel_logout_uri).filter((u): u is string => typeof u === 'string'));
  const cookie = { httpOnly: true, sameSite: 'lax' as const, signed: true, ...(secure ? { secure: true } : {}) };

  const configuration: Configuration = {
    adapter: postgresAdapter(db),
    clients,
    jwks: secrets.jwks as Configuration['jwks'],
    cookies: {
      keys: secrets.cookieKeys,
      names: { session: 'gusu_op', interaction: 'gusu_op_interaction', resume: 'gusu_op_resume' },
      long: cookie,
      short: cookie,
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'profile', 'gusu'],
    claims: {
      openid: ['sub', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username', 'locale'],
      gusu: ['gusu_kind', 'department', 'post', 'roles', 'uscc'],
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
    },
    // scope claims in the ID token as well: the platform's RPs read name and kind from it
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: { enabled: false },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(kctx, form) {
          const lang = koaLang(kctx);
          kctx.type = 'html';
          kctx.body = page({
            lang,
            title: tr(T.signOutTitle, lang),
            path: '/oidc/session/end',
            noCurrentNav: true,
            main: html`<h1>${tr(T.signOutTitle, lang)}</h1>
<p class="lead">${tr(T.signOutQuestion, lang)}</p>
${raw(form)}
<p class="actions"><button class="button" type="submit" form="op.logoutForm" value="yes" name="logout">${tr(T.signOutYes, lang)}</button>
<button class="button button-secondary" type="submit" form="op.logoutForm">${tr(T.signOutNo, lang)}</button></p>`,
          });
        },
        async postLogoutSuccessSource(kctx) {
          const lang = koaLang(kctx);
          kctx.type = 'html';
          kctx.body = page({
            lang,
            title: tr(T.signedOutTitle, lang),
            path: '/oidc/session/end/success',
            noCurrentNav: true,
            main: html`<h1>${tr(T.signedOutTitle, lang)}</h1><p>${tr(T.signedOutText, lang)}</p><p><a href="/">${tr(T.backHome, lang)}</a></p>`,
          });
        },
      },
    },
    // operators register every client (configuration, or registerClient): all are first-party
    async loadExistingGrant(kctx) {
      const oidc = kctx.oidc;
      const accountId = oidc.session?.accountId;
      const client = oidc.client;
      if (!accountId || !client) return undefined;
      const grantId = (oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? oidc.session!.grantIdFor(client.clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (grant && (grant.accountId !== accountId || grant.clientId !== client.clientId)) grant = undefined;
      grant ??= new oidc.provider.Grant({ accountId, clientId: client.clientId });
      grant.addOIDCScope(oidc.requestParamScopes);
      if (oidc.requestParamClaims.size) grant.addOIDCClaims(oidc.requestParamClaims);
      await grant.save();
      return grant;
    },
    async findAccount(_kctx, sub) {
      const account = await findAccountById(db, sub);
      if (!account || account.status !== 'active') return undefined;
      return {
        accountId: account.id,
        async claims() {
          const actor = await actorOfAccount(db, account);
          const prefs = await getPreferences(db, account.id);
          return {
            sub: account.id,
            name: account.name,
            preferred_username: account.kind === 'staff' ? account.login : undefined,
            locale: prefs.language ?? undefined,
            gusu_kind: account.kind,
            department: account.department ?? undefined,
            post: account.post ?? undefined,
            roles: actor?.kind === 'staff' ? actor.roles.map((g) => (g.scope ? `${g.role}@${g.scope}` : g.role)) : undefined,
            uscc: account.uscc ?? undefined,
          };
        },
      };
    },
    // refresh tokens for every client allowed the grant (the platform's RPs hold them server-side);
    // without offline_access they end with the sign-in session (logout revokes them)
    issueRefreshToken: async (_kctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: { url: (_kctx, interaction) => `/auth/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 900,
      Grant: ttlSession,
      Session: ttlSession,
      RefreshToken: ttlSession,
    },
    clientBasedCORS: () => false,
    // oidc-provider refuses to fetch loopback and private addresses (SSRF protection); the platform's
    // own RPs' back-channel logout URIs are on such addresses in most deployments and are trusted
    fetch: (url, options) => {
      const href = String(url);
      if (ownBackchannel.has(href)) {
        const { dispatcher: _ssrfGuard, ...rest } = options as RequestInit & { dispatcher?: unknown };
        return globalThis.fetch(href, rest);
      }
      return globalThis.fetch(url, options);
    },
    async renderError(kctx, out, error) {
      const lang = koaLang(kctx);
      const status = kctx.status >= 400 ? kctx.status : 400;
      const name = problemFor(status);
      const detail = status >= 500 ? undefined : [out.error, out.error_description].filter(Boolean).join(': ');
      if (status >= 500) ctx.log.error({ err: error }, 'OpenID provider error');
      kctx.type = 'html';
      kctx.body = errorPage(lang, { type: `/problems/${name}`, title: tr(PROBLEM_TYPES[name].title, lang), status, detail }, { path: kctx.path });
    },
  };

  const { default: ProviderClass } = await import('oidc-provider');
  const provider = new ProviderClass(urls.issuer, configuration);
  // behind a TLS-terminating proxy (GUSU_PUBLIC_URL https://...): trust X-Forwarded-Proto for cookies
  provider.proxy = secure;
  provider.on('server_error', (_kctx, err) => ctx.log.error({ err }, 'OpenID provider server error'));
  provider.on('backchannel.error', (_kctx, err, client) => ctx.log.warn({ err: (err as Error).message, client: client.clientId }, 'back-channel logout failed'));
  const handler = provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  const formTargets = [...new Set([originOf(urls.public), originOf(urls.internal)])];
  return { provider, urls, secrets, callback: handler, formTargets };
}
