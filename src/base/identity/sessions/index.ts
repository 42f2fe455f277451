// Browser sessions of the platform's relying parties (the portal and the console). The cookie holds
// 32 random bytes; the table holds only their SHA-256, with idle and absolute timeouts, the ID token
// (for RP-initiated logout), the OP's session id `sid` (for back-channel logout) and the refresh and
// access tokens sealed with AES-256-GCM.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../../config/index.ts';
import type { Queryable } from '../../../db/index.ts';
import { loadSecrets, seal, unseal } from '../oidc/secrets.ts';
import { isHttps, platformUrls } from '../oidc/urls.ts';

export type SessionClient = 'portal' | 'console';

export const SESSION_COOKIE: Record<SessionClient, string> = { portal: 'gusu_sid', console: 'gusu_console_sid' };

export interface SessionRecord {
  accountId: string;
  client: SessionClient;
  createdAt: string;
  expiresAt: string;
  idToken: string | null;
  oidcSid: string | null;
}

const hashOf = (raw: string) => createHash('sha256').update(raw).digest();
const RAW = /^[A-Za-z0-9_-]{43}$/;

export function sessionCookieOptions(config: Config, client: SessionClient) {
  const urls = platformUrls(config);
  return { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: isHttps(client === 'portal' ? urls.public : urls.internal) };
}

export interface NewSession {
  client: SessionClient;
  accountId: string;
  idToken?: string;
  oidcSid?: string;
  refreshToken?: string;
  accessToken?: string;
  accessExpiresAt?: Date;
}

/** Stores a session and returns the cookie value. */
export async function createSession(q: Queryable, s: NewSession, config: Config): Promise<string> {
  const raw = randomBytes(32).toString('base64url');
  const secrets = await loadSecrets(q);
  await q.query(
    `insert into identity.session (id_hash, client, account_id, expires_at, id_token, oidc_sid, refresh_token, access_token, access_expires_at)
     values ($1, $2, $3, now() + make_interval(mins => $4), $5, $6, $7, $8, $9)`,
    [
      hashOf(raw),
      s.client,
      s.accountId,
      config.sessionMaxMinutes,
      s.idToken ?? null,
      s.oidcSid ?? null,
      s.refreshToken ? seal(secrets, s.refreshToken) : null,
      s.accessToken ? seal(secrets, s.accessToken) : null,
      s.accessExpiresAt ?? null,
    ],
  );
  return raw;
}

/**
 * The live session behind a cookie value, or null (unknown, expired, idle too long). Touches
 * last_seen_at at most once a minute, so a busy page does not write on every request.
 */
export async function readSession(q: Queryable, raw: string | undefined, client: SessionClient, config: Config): Promise<SessionRecord | null> {
  if (!raw || !RAW.test(raw)) return null;
  const { rows } = await q.query<{ account_id: string; client: SessionClient; created_at: Date; expires_at: Date; id_token: string | null; oidc_sid: string | null; stale: boolean }>(
    `select account_id, client, created_at, expires_at, id_token, oidc_sid, last_seen_at < now() - interval '1 minute' as stale
       from identity.session
      where id_hash = $1 and client = $2 and expires_at > now() and last_seen_at > now() - make_interval(mins => $3)`,
    [hashOf(raw), client, config.sessionIdleMinutes],
  );
  const r = rows[0];
  if (!r) return null;
  if (r.stale) await q.query('update identity.session set last_seen_at = now() where id_hash = $1', [hashOf(raw)]);
  return {
    accountId: r.account_id,
    client: r.client,
    createdAt: new Date(r.created_at).toISOString(),
    expiresAt: new Date(r.expires_at).toISOString(),
    idToken: r.id_token,
    oidcSid: r.oidc_sid,
  };
}

/** The session's tokens, unsealed (for calling APIs on the user's behalf, refreshing). */
export async function sessionTokens(q: Queryable, raw: string): Promise<{ refreshToken: string | null; accessToken: string | null; accessExpiresAt: string | null } | null> {
  if (!RAW.test(raw)) return null;
  const { rows } = await q.query<{ refresh_token: string | null; access_token: string | null; access_expires_at: Date | null }>(
    'select refresh_token, access_token, access_expires_at from identity.session where id_hash = $1 and expires_at > now()',
    [hashOf(raw)],
  );
  const r = rows[0];
  if (!r) return null;
  const secrets = await loadSecrets(q);
  return {
    refreshToken: r.refresh_token ? unseal(secrets, r.refresh_token) : null,
    accessToken: r.access_token ? unseal(secrets, r.access_token) : null,
    accessExpiresAt: r.access_expires_at ? new Date(r.access_expires_at).toISOString() : null,
  };
}

/** Replaces the tokens after a refresh. */
export async function updateSessionTokens(q: Queryable, raw: string, t: { refreshToken?: string; accessToken: string; accessExpiresAt?: Date }): Promise<void> {
  const secrets = await loadSecrets(q);
  await q.query(
    `update identity.session set access_token = $2, access_expires_at = $3, refresh_token = coalesce($4, refresh_token) where id_hash = $1`,
    [hashOf(raw), seal(secrets, t.accessToken), t.accessExpiresAt ?? null, t.refreshToken ? seal(secrets, t.refreshToken) : null],
  );
}

/** Ends one session; returns what logout at the provider needs. */
export async function destroySession(q: Queryable, raw: string | undefined): Promise<{ idToken: string | null } | null> {
  if (!raw || !RAW.test(raw)) return null;
  const { rows } = await q.query<{ id_token: string | null }>('delete from identity.session where id_hash = $1 returning id_token', [hashOf(raw)]);
  return rows[0] ? { idToken: rows[0].id_token } : null;
}

/** Ends the sessions the provider's back-channel logout names (its `sid`). */
export async function destroySessionsBySid(q: Queryable, client: SessionClient, sid: string): Promise<number> {
  const r = await q.query('delete from identity.session where client = $1 and oidc_sid = $2', [client, sid]);
  return r.rowCount ?? 0;
}

export async function destroySessionsOfAccount(q: Queryable, accountId: string): Promise<number> {
  const r = await q.query('delete from identity.session where account_id = $1', [accountId]);
  return r.rowCount ?? 0;
}

export async function purgeSessions(q: Queryable, config: Config): Promise<number> {
  const r = await q.query(`delete from identity.session where expires_at < now() or last_seen_at < now() - make_interval(mins => $1)`, [config.sessionIdleMinutes]);
  const t = await q.query(`delete from identity.rp_login where created_at < now() - interval '30 minutes'`);
  return (r.rowCount ?? 0) + (t.rowCount ?? 0);
}

/** Sets the session cookie (a browser-session cookie: the server enforces the timeouts). */
export function setSessionCookie(reply: FastifyReply, config: Config, client: SessionClient, raw: string): void {
  reply.setCookie(SESSION_COOKIE[client], raw, sessionCookieOptions(config, client));
}

export function clearSessionCookie(reply: FastifyReply, config: Config, client: SessionClient): void {
  reply.clearCookie(SESSION_COOKIE[client], sessionCookieOptions(config, client));
}

export function sessionCookieOf(req: FastifyRequest, client: SessionClient): string | undefined {
  return (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[SESSION_COOKIE[client]];
}
