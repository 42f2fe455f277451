// Who is calling: an `Authorization: Bearer` access token issued by the platform's provider (APIs),
// else the console's or the portal's session cookie. Also the platform-wide CSRF check: a request
// that carries a session cookie and that a cross-site form could have sent (a POST with a form,
// text or no body) must carry a valid token, unless its route checks its own (config: { csrf: false }).
// Requests without a session cookie (API clients such as Open311 ones posting forms) have no ambient
// authority to abuse and are not asked for one; the identity module's own forms always are.
import type { FastifyRequest } from 'fastify';
import { problem } from '../../../http/problems.ts';
import type { ActorResolver, ModuleContext } from '../../../module.ts';
import { ANONYMOUS, type Actor } from '../policy.ts';
import { actorOfAccount, findAccountById } from '../accounts/index.ts';
import { getOidc } from '../oidc/provider.ts';
import { checkCsrf, hasSessionCookie, needsCsrf } from './csrf.ts';
import { readSession, sessionCookieOf, type SessionClient } from './index.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: this route checks CSRF itself (or needs none: server-to-server), skip the platform-wide check */
    csrf?: boolean;
  }
}

const BEARER = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i;

async function actorOf(ctx: ModuleContext, accountId: string): Promise<Actor | null> {
  const account = await findAccountById(ctx.db, accountId);
  return account ? actorOfAccount(ctx.db, account) : null;
}

/** Reads the actor from a bearer token; throws 401 for a token that is not (or no longer) valid. */
export async function actorFromBearer(ctx: ModuleContext, req: FastifyRequest, header: string): Promise<Actor> {
  const m = BEARER.exec(header);
  if (!m || m[1]!.length > 4096) throw problem('unauthorized', 'the Authorization header is not a bearer token');
  const oidc = await getOidc(ctx, req.socket?.localPort);
  const token = await oidc.provider.AccessToken.find(m[1]!);
  // sender-constrained (DPoP, mTLS) tokens are not bearer tokens
  if (!token || token.isExpired || token.jkt || token['x5t#S256'] || !token.accountId) throw problem('unauthorized', 'the bearer token is not valid or has expired');
  const actor = await actorOf(ctx, token.accountId);
  if (!actor) throw problem('unauthorized', 'the bearer token’s account is disabled');
  return actor;
}

/** The actor of the first live session among the cookies this path reads. */
export async function actorFromSession(ctx: ModuleContext, req: FastifyRequest): Promise<Actor | null> {
  // console pages read the console's session only; everything else the portal's, then the console's
  const order: SessionClient[] = req.url.startsWith('/console') ? ['console'] : ['portal', 'console'];
  for (const client of order) {
    const session = await readSession(ctx.db, sessionCookieOf(req, client), client, ctx.config);
    if (!session) continue;
    const actor = await actorOf(ctx, session.accountId);
    if (actor) return actor;
  }
  return null;
}

export function createActorResolver(ctx: ModuleContext): ActorResolver {
  return async (req) => {
    // the provider's endpoints authenticate their callers themselves (client secrets, its own cookies)
    if (req.url.startsWith('/oidc/')) return ANONYMOUS;
    const config = req.routeOptions?.config;
    if (config?.action && config.csrf !== false && needsCsrf(req) && !req.headers.authorization && hasSessionCookie(req) && !checkCsrf(ctx, req)) {
      throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
    }
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && /^bearer /i.test(auth)) return actorFromBearer(ctx, req, auth);
    return (await actorFromSession(ctx, req)) ?? ANONYMOUS;
  };
}
