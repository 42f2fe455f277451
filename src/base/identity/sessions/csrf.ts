// CSRF protection for every HTML form of the platform: a signed double-submit token. The browser
// holds a random `gusu_csrf` cookie (HttpOnly, SameSite=Lax); each form carries
// HMAC(key, cookie | binding | session cookies) in a hidden `_csrf` field, where the binding names
// what the form is for (a sign-in interaction) and the session cookies tie it to who is signed in.
// Another site can neither read the cookie nor compute the HMAC, and a token stops working when the
// session changes. Requests with JSON bodies need no token: a browser cannot send them cross-site
// without a CORS preflight, which the platform never grants.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { html, type Html } from '../../../http/html.ts';
import { cachedSecrets } from '../oidc/secrets.ts';
import type { Db } from '../../../db/index.ts';
import type { ModuleContext } from '../../../module.ts';

/** what the CSRF functions need of the module context */
export type CsrfContext = Pick<ModuleContext, 'db' | 'config'>;

export const CSRF_COOKIE = 'gusu_csrf';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';
const SESSION_COOKIES = ['gusu_sid', 'gusu_console_sid'];

type Cookies = Record<string, string | undefined>;
const cookiesOf = (req: FastifyRequest): Cookies => (req as FastifyRequest & { cookies?: Cookies }).cookies ?? {};

function key(db: Db): Buffer {
  const s = cachedSecrets(db);
  if (!s) throw new Error('CSRF key not loaded: the identity module has not started');
  return Buffer.from(s.csrfKey, 'base64url');
}

function compute(db: Db, cookie: string, binding: string, cookies: Cookies): string {
  const sessions = SESSION_COOKIES.map((n) => cookies[n] ?? '').join(',');
  return createHmac('sha256', key(db)).update(`${cookie}|${binding}|${sessions}`).digest('base64url');
}

/** The token for a form on this response; sets the cookie when the browser has none. */
export function csrfToken(ctx: CsrfContext, req: FastifyRequest, reply: FastifyReply, binding = ''): string {
  const cookies = cookiesOf(req);
  let cookie = cookies[CSRF_COOKIE];
  if (!cookie || !/^[A-Za-z0-9_-]{32,64}$/.test(cookie)) {
    cookie = randomBytes(24).toString('base64url');
    reply.setCookie(CSRF_COOKIE, cookie, { path: '/', httpOnly: true, sameSite: 'lax', secure: (ctx.config.publicUrl ?? '').startsWith('https:') });
    // the token is computed against the cookie the browser will send from now on
    cookies[CSRF_COOKIE] = cookie;
  }
  return compute(ctx.db, cookie, binding, cookies);
}

/** The hidden field to put in a form. */
export function csrfField(ctx: CsrfContext, req: FastifyRequest, reply: FastifyReply, binding = ''): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${csrfToken(ctx, req, reply, binding)}">`;
}

/** Whether the request carries a valid token (body field `_csrf` or header x-csrf-token). */
export function checkCsrf(ctx: CsrfContext, req: FastifyRequest, binding = ''): boolean {
  const cookies = cookiesOf(req);
  const cookie = cookies[CSRF_COOKIE];
  const body = req.body as Record<string, unknown> | undefined;
  const given = (body && typeof body === 'object' ? body[CSRF_FIELD] : undefined) ?? req.headers[CSRF_HEADER];
  if (!cookie || typeof given !== 'string' || given.length === 0 || given.length > 100) return false;
  const expected = Buffer.from(compute(ctx.db, cookie, binding, cookies));
  const got = Buffer.from(given);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/**
 * Whether a request is one a cross-site page could have made without a CORS preflight, and so must
 * carry a CSRF token: a POST whose body is urlencoded, multipart, text/plain or absent. PUT, PATCH,
 * DELETE and JSON bodies always need a preflight, which the platform never grants.
 */
export function needsCsrf(req: FastifyRequest): boolean {
  if (req.method !== 'POST') return false;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data' || type === 'text/plain';
}

/** Whether the request carries a session cookie of the portal or the console (ambient authority). */
export function hasSessionCookie(req: FastifyRequest): boolean {
  const cookies = cookiesOf(req);
  return SESSION_COOKIES.some((n) => Boolean(cookies[n]));
}
