// The portal and the console as OpenID Connect relying parties of the platform's provider, with
// openid-client (OpenID Certified): authorization code + PKCE (S256) + state + nonce, the session
// created from the ID token, RP-initiated logout with id_token_hint, back-channel logout verified
// with jose against the provider's keys.
import * as oidcClient from 'openid-client';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { ModuleContext } from '../../module.ts';
import { CONSOLE_CLIENT, PORTAL_CLIENT, PLATFORM_SCOPES, type PlatformUrls, type SessionClient } from '../../base/identity/index.ts';
import type { IdentitySecrets } from '../../base/identity/oidc/secrets.ts';
import { publicJwks } from '../../base/identity/oidc/secrets.ts';
import type { Oidc } from '../../base/identity/oidc/provider.ts';

export interface RpSide {
  client: SessionClient;
  clientId: string;
  /** where this RP lives: the public face (portal) or the internal face (console) */
  base: (urls: PlatformUrls) => string;
  /** path prefix of its routes: /auth or /console/auth */
  prefix: string;
  home: string;
}

export const PORTAL: RpSide = { client: 'portal', clientId: PORTAL_CLIENT, base: (u) => u.public, prefix: '/auth', home: '/' };
export const CONSOLE: RpSide = { client: 'console', clientId: CONSOLE_CLIENT, base: (u) => u.internal, prefix: '/console/auth', home: '/console' };

export const redirectUri = (side: RpSide, urls: PlatformUrls) => `${side.base(urls)}${side.prefix}/callback`;
export const postLogoutUri = (side: RpSide, urls: PlatformUrls) => `${side.base(urls)}${side.prefix}/signed-out`;

const configs = new WeakMap<Oidc, Map<string, oidcClient.Configuration>>();

/**
 * The client configuration, from the provider's known endpoints (no discovery request: the provider
 * is this platform). Token requests go over HTTP to the issuer URL, as any relying party's would.
 */
export function rpConfiguration(oidc: Oidc, side: RpSide): oidcClient.Configuration {
  let byClient = configs.get(oidc);
  if (!byClient) configs.set(oidc, (byClient = new Map()));
  let c = byClient.get(side.clientId);
  if (c) return c;
  const issuer = oidc.urls.issuer;
  const server: oidcClient.ServerMetadata = {
    issuer,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/me`,
    jwks_uri: `${issuer}/jwks`,
    end_session_endpoint: `${issuer}/session/end`,
    revocation_endpoint: `${issuer}/token/revocation`,
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  };
  const secret = oidc.secrets.clientSecrets[side.clientId as keyof IdentitySecrets['clientSecrets']];
  c = new oidcClient.Configuration(server, side.clientId, { client_secret: secret, id_token_signed_response_alg: 'RS256' }, oidcClient.ClientSecretBasic(secret));
  if (issuer.startsWith('http:')) oidcClient.allowInsecureRequests(c);
  byClient.set(side.clientId, c);
  return c;
}

export interface StartedLogin {
  url: string;
  state: string;
}

export async function startLogin(ctx: ModuleContext, oidc: Oidc, side: RpSide, back: string, opts: { lang?: string; prompt?: string } = {}): Promise<StartedLogin> {
  const config = rpConfiguration(oidc, side);
  const verifier = oidcClient.randomPKCECodeVerifier();
  const challenge = await oidcClient.calculatePKCECodeChallenge(verifier);
  const state = oidcClient.randomState();
  const nonce = oidcClient.randomNonce();
  await ctx.db.query('insert into identity.rp_login (state, client, code_verifier, nonce, back) values ($1, $2, $3, $4, $5)', [state, side.client, verifier, nonce, back]);
  const params: Record<string, string> = {
    redirect_uri: redirectUri(side, oidc.urls),
    scope: PLATFORM_SCOPES,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  if (opts.lang) params.ui_locales = opts.lang;
  if (opts.prompt) params.prompt = opts.prompt;
  return { url: oidcClient.buildAuthorizationUrl(config, params).href, state };
}

export interface FinishedLogin {
  accountId: string;
  idToken: string;
  sid: string | undefined;
  accessToken: string;
  refreshToken: string | undefined;
  expiresIn: number | undefined;
  back: string;
}

export class CallbackError extends Error {
  constructor(
    message: string,
    readonly kind: 'cancelled' | 'state' | 'failed',
  ) {
    super(message);
  }
}

/** Takes the pending login of this state (once) and exchanges the code. */
export async function finishLogin(ctx: ModuleContext, oidc: Oidc, side: RpSide, query: string, state: string): Promise<FinishedLogin> {
  const { rows } = await ctx.db.query<{ code_verifier: string; nonce: string; back: string }>(
    `delete from identity.rp_login where state = $1 and client = $2 and created_at > now() - interval '15 minutes' returning code_verifier, nonce, back`,
    [state, side.client],
  );
  const pending = rows[0];
  if (!pending) throw new CallbackError('no sign-in was started here with this state (or it expired)', 'state');
  const current = new URL(`${redirectUri(side, oidc.urls)}${query}`);
  try {
    const tokens = await oidcClient.authorizationCodeGrant(rpConfiguration(oidc, side), current, {
      pkceCodeVerifier: pending.code_verifier,
      expectedState: state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims()!;
    return {
      accountId: claims.sub,
      idToken: tokens.id_token!,
      sid: typeof claims.sid === 'string' ? claims.sid : undefined,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      expiresIn: tokens.expiresIn(),
      back: pending.back,
    };
  } catch (err) {
    if (err instanceof oidcClient.AuthorizationResponseError && err.error === 'access_denied') throw new CallbackError('the sign-in was cancelled', 'cancelled');
    throw new CallbackError(err instanceof Error ? err.message : String(err), 'failed');
  }
}

export function endSessionUrl(oidc: Oidc, side: RpSide, idToken: string | null): string {
  const params: Record<string, string> = { post_logout_redirect_uri: postLogoutUri(side, oidc.urls), client_id: side.clientId };
  if (idToken) params.id_token_hint = idToken;
  return oidcClient.buildEndSessionUrl(rpConfiguration(oidc, side), params).href;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.6). */
export async function verifyLogoutToken(oidc: Oidc, side: RpSide, token: string): Promise<{ sid?: string; sub?: string }> {
  const jwks = createLocalJWKSet(publicJwks(oidc.secrets) as Parameters<typeof createLocalJWKSet>[0]);
  const { payload } = await jwtVerify(token, jwks, { issuer: oidc.urls.issuer, audience: side.clientId, typ: 'logout+jwt', maxTokenAge: '5m', algorithms: ['RS256', 'ES256'] });
  const events = payload.events as Record<string, unknown> | undefined;
  if (!events || typeof events !== 'object' || !(BACKCHANNEL_EVENT in events)) throw new Error('not a logout token: no back-channel logout event');
  if ('nonce' in payload) throw new Error('a logout token has no nonce');
  const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
  const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
  if (!sid && !sub) throw new Error('a logout token names sid or sub');
  return { sid, sub };
}
