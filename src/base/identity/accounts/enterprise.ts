// Enterprise sign-in: an enterprise user acts for a legal person and proves it with the legal
// person's certificate. The server issues a fresh random challenge bound to the sign-in interaction
// and the USCC; the user's client signs the challenge text with the certificate's key (SM2 or ECDSA
// P-256); the server checks the signature, the certificate (chain to the municipal CA, validity,
// revocation: through the CA module) and that the certificate names the same USCC. A challenge
// works once and for five minutes.
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../../db/index.ts';
import type { Text } from '../../../http/i18n.ts';
import type { ModuleContext } from '../../../module.ts';
import { appendAudit } from '../../audit/index.ts';
import { checkUscc } from '../../codes/index.ts';
import { type Account, type Origin, findAccountByLogin } from './index.ts';
import { accountKey, clear, hit, LOCKOUT_FAILURES, LOCKOUT_WINDOW_SECONDS } from './throttle.ts';

export const CHALLENGE_TTL_SECONDS = 300;
const PREFIX = 'gusu-login:v1';

export class EnterpriseLoginError extends Error {
  constructor(
    readonly reason: Text,
    readonly status = 401,
  ) {
    super(reason.en);
  }
}

/** What the CA module tells about a certificate presented for sign-in. */
export interface CertificateCheck {
  ok: boolean;
  /** why not, in English (from the CA) */
  reason?: string;
  uscc?: string;
  /** the legal person's name on the certificate */
  name?: string;
  serial?: string;
}

/**
 * The CA-backed checks, installed by the identity module when the CA module is present:
 * the certificate (chain, validity, revocation, legal-person profile) and the signature under it.
 */
export interface EnterpriseVerifier {
  checkCertificate(q: Queryable, certificatePem: string): Promise<CertificateCheck>;
  verifySignature(certificatePem: string, data: string, signature: Buffer): Promise<boolean> | boolean;
}

const verifiers = new WeakMap<object, EnterpriseVerifier>();

export function setEnterpriseVerifier(ctx: Pick<ModuleContext, 'db'>, v: EnterpriseVerifier | null): void {
  if (v) verifiers.set(ctx.db, v);
  else verifiers.delete(ctx.db);
}

export function enterpriseAvailable(ctx: Pick<ModuleContext, 'db'>): boolean {
  return verifiers.has(ctx.db);
}

/** The exact text the user signs: the issuer, the USCC and the nonce, so it is useless anywhere else. */
export function challengeText(issuer: string, uscc: string, nonce: string): string {
  return `${PREFIX}|${issuer}|${uscc}|${nonce}`;
}

export function parseChallengeText(text: string): { issuer: string; uscc: string; nonce: string } | null {
  const parts = text.trim().split('|');
  if (parts.length !== 4 || parts[0] !== PREFIX || !/^[A-Za-z0-9_-]{43}$/.test(parts[3]!)) return null;
  return { issuer: parts[1]!, uscc: parts[2]!, nonce: parts[3]! };
}

const badUscc = (reason: string): Text => ({ zh: `统一社会信用代码无效（${reason}）`, en: `the USCC is not valid: ${reason}` });

/** Issues a challenge for this interaction and legal person; returns the text to sign. */
export async function issueChallenge(ctx: Pick<ModuleContext, 'db'>, o: { uscc: string; interactionUid: string; issuer: string }): Promise<string> {
  if (!enterpriseAvailable(ctx)) throw new EnterpriseLoginError({ zh: '证书登录暂不可用', en: 'certificate sign-in is not available' }, 503);
  const check = checkUscc(o.uscc);
  if (!check.ok) throw new EnterpriseLoginError(badUscc(check.reason), 400);
  const nonce = randomBytes(32).toString('base64url');
  await ctx.db.query(
    `insert into identity.login_challenge (challenge, interaction_uid, uscc, expires_at) values ($1, $2, $3, now() + make_interval(secs => $4))`,
    [nonce, o.interactionUid, o.uscc, CHALLENGE_TTL_SECONDS],
  );
  return challengeText(o.issuer, o.uscc, nonce);
}

export async function purgeChallenges(q: Queryable): Promise<number> {
  const r = await q.query(`delete from identity.login_challenge where expires_at < now() - interval '1 hour'`);
  return r.rowCount ?? 0;
}

function decodeSignature(s: string): Buffer | null {
  const clean = s.replace(/\s+/g, '');
  if (!clean || clean.length > 1000 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(clean)) return null;
  const buf = Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return buf.length >= 8 && buf.length <= 200 ? buf : null;
}

/**
 * Verifies a signed challenge and returns the legal person's account (created on its first sign-in).
 * Throws EnterpriseLoginError with the reason; every refusal is audited ('auth.login', denied).
 */
export async function enterpriseLogin(
  ctx: Pick<ModuleContext, 'db' | 'config'>,
  input: { uscc: string; challenge: string; certificatePem: string; signature: string; interactionUid: string },
  origin: Origin,
): Promise<Account> {
  const verifier = verifiers.get(ctx.db);
  const q = ctx.db;
  const refuse = async (reason: Text, code: string, status = 401, accountId: string | null = null): Promise<never> => {
    await appendAudit(q, {
      actor: { kind: 'anonymous', id: `login:${input.uscc.slice(0, 18)}` },
      action: 'auth.login',
      resource: { type: 'account', id: accountId ?? 'unknown' },
      outcome: 'denied',
      requestId: origin.requestId,
      ip: origin.ip,
      details: { method: 'certificate', kind: 'enterprise', uscc: input.uscc.slice(0, 18), reason: code },
    });
    throw new EnterpriseLoginError(reason, status);
  };
  if (!verifier) throw new EnterpriseLoginError({ zh: '证书登录暂不可用', en: 'certificate sign-in is not available' }, 503);
  const usccCheck = checkUscc(input.uscc);
  if (!usccCheck.ok) throw new EnterpriseLoginError(badUscc(usccCheck.reason), 400);

  const key = accountKey('enterprise', input.uscc);
  const slot = await hit(q, key, LOCKOUT_WINDOW_SECONDS);
  if (slot.count > LOCKOUT_FAILURES) return refuse({ zh: `失败次数过多，请 ${slot.retryAfter} 秒后再试`, en: `too many failures: try again in ${slot.retryAfter} seconds` }, 'locked', 429);

  const parsed = parseChallengeText(input.challenge);
  if (!parsed || parsed.uscc !== input.uscc) return refuse({ zh: '挑战值无效', en: 'the challenge is not valid' }, 'bad-challenge', 400);
  // take the challenge: once only, for this interaction, unexpired
  const taken = await q.query<{ issued_for: string }>(
    `update identity.login_challenge set used_at = now()
      where challenge = $1 and interaction_uid = $2 and uscc = $3 and used_at is null and expires_at > now()
      returning challenge as issued_for`,
    [parsed.nonce, input.interactionUid, input.uscc],
  );
  if (taken.rowCount !== 1) return refuse({ zh: '挑战值已使用、已过期或不属于本次登录，请重新获取', en: 'the challenge was used, has expired or belongs to another sign-in: get a new one' }, 'challenge-replayed-or-expired');

  const signature = decodeSignature(input.signature);
  if (!signature) return refuse({ zh: '签名格式无效（应为 Base64 编码的 DER）', en: 'the signature is not Base64 DER' }, 'bad-signature-format', 400);
  const cert = await verifier.checkCertificate(q, input.certificatePem);
  if (!cert.ok) return refuse({ zh: `证书未通过验证：${cert.reason ?? ''}`, en: `the certificate did not verify: ${cert.reason ?? ''}` }, 'bad-certificate');
  if (cert.uscc !== input.uscc) return refuse({ zh: '证书不属于所选法人', en: 'the certificate is not the chosen legal person’s' }, 'uscc-mismatch');
  const data = challengeText(parsed.issuer, parsed.uscc, parsed.nonce);
  let valid = false;
  try {
    valid = await verifier.verifySignature(input.certificatePem, data, signature);
  } catch {
    valid = false;
  }
  if (!valid) return refuse({ zh: '签名验证失败', en: 'the signature does not verify' }, 'bad-signature');

  const name = (cert.name ?? input.uscc).slice(0, 200);
  await q.query(
    `insert into identity.account (kind, login, name, uscc) values ('enterprise', $1, $2, $3)
     on conflict (kind, login) do update set name = excluded.name, updated_at = now()`,
    [input.uscc, name, input.uscc],
  );
  const account = (await findAccountByLogin(q, 'enterprise', input.uscc))!;
  if (account.status !== 'active') return refuse({ zh: '账号已停用', en: 'the account is disabled' }, 'disabled', 403, account.id);
  await clear(q, key);
  await appendAudit(q, {
    actor: { kind: 'enterprise', id: account.id },
    action: 'auth.login',
    resource: { type: 'account', id: account.id },
    outcome: 'ok',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { method: 'certificate', kind: 'enterprise', uscc: input.uscc, certificate: cert.serial ?? null },
  });
  return account;
}
