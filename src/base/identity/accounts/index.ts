// Accounts: citizens (real-name, bound to a resident ID number that passes GB 11643 and matches the
// population registry), staff (department, post, roles; password + TOTP), enterprises (act for a
// legal person, proven by its certificate: see ./enterprise.ts). Every sign-in path goes through the
// per-IP rate limit and the per-account lockout here, and every outcome is audited.
import type { Db, Queryable } from '../../../db/index.ts';
import { appendAudit, type AuditActor } from '../../audit/index.ts';
import { checkIdNumber } from '../../codes/index.ts';
import { findPersonByIdNumber } from '../../registries/population/persons.ts';
import type { Actor, RoleGrant } from '../policy.ts';
import type { Text } from '../../../http/i18n.ts';
import { hashPassword, passwordProblem, verifyPassword } from './passwords.ts';
import { accountKey, clear, hit, ipKey, LOCKOUT_FAILURES, LOCKOUT_WINDOW_SECONDS } from './throttle.ts';
import { newTotpSecret, verifyTotp } from './totp.ts';
import { seal, unseal, type IdentitySecrets } from '../oidc/secrets.ts';

export type AccountKind = 'citizen' | 'staff' | 'enterprise';

export interface Account {
  id: string;
  kind: AccountKind;
  login: string;
  name: string;
  idNumber: string | null;
  uscc: string | null;
  department: string | null;
  post: string | null;
  status: 'active' | 'disabled';
  synthetic: boolean;
  createdAt: string;
}

interface AccountRow {
  id: string;
  kind: AccountKind;
  login: string;
  name: string;
  id_number: string | null;
  uscc: string | null;
  department: string | null;
  post: string | null;
  status: 'active' | 'disabled';
  synthetic: boolean;
  created_at: Date;
  password_hash?: string | null;
  totp_secret?: string | null;
}

const COLUMNS = 'id, kind, login, name, id_number, uscc, department, post, status, synthetic, created_at';

function toAccount(r: AccountRow): Account {
  return {
    id: r.id,
    kind: r.kind,
    login: r.login,
    name: r.name,
    idNumber: r.id_number,
    uscc: r.uscc,
    department: r.department,
    post: r.post,
    status: r.status,
    synthetic: r.synthetic,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isAccountId = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

export async function findAccountById(q: Queryable, id: string): Promise<Account | null> {
  if (!isAccountId(id)) return null;
  const { rows } = await q.query<AccountRow>(`select ${COLUMNS} from identity.account where id = $1`, [id]);
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function findAccountByLogin(q: Queryable, kind: AccountKind, login: string): Promise<Account | null> {
  const { rows } = await q.query<AccountRow>(`select ${COLUMNS} from identity.account where kind = $1 and login = $2`, [kind, login]);
  return rows[0] ? toAccount(rows[0]) : null;
}

export async function activeGrants(q: Queryable, accountId: string): Promise<RoleGrant[]> {
  if (!isAccountId(accountId)) return [];
  const { rows } = await q.query<{ role: string; scope: string | null }>(
    'select role, scope from identity.role_grant where account_id = $1 and revoked_at is null order by role, scope',
    [accountId],
  );
  return rows.map((r) => ({ role: r.role, scope: r.scope }));
}

/** The policy's view of an account (staff with their current role grants). Null for a disabled account. */
export async function actorOfAccount(q: Queryable, account: Account): Promise<Actor | null> {
  if (account.status !== 'active') return null;
  switch (account.kind) {
    case 'citizen':
      return { kind: 'citizen', accountId: account.id, name: account.name, idNumber: account.idNumber! };
    case 'enterprise':
      return { kind: 'enterprise', accountId: account.id, name: account.name, uscc: account.uscc!, entityName: account.name };
    case 'staff':
      return { kind: 'staff', accountId: account.id, name: account.name, department: account.department!, post: account.post ?? '', roles: await activeGrants(q, account.id) };
  }
}

export function auditActorOf(actor: Actor, fallbackId = 'anonymous'): AuditActor {
  switch (actor.kind) {
    case 'anonymous':
      return { kind: 'anonymous', id: fallbackId };
    case 'system':
      return { kind: 'system', id: actor.id, department: actor.department };
    case 'staff':
      return { kind: 'staff', id: actor.accountId, department: actor.department };
    default:
      return { kind: actor.kind, id: actor.accountId };
  }
}

/** Where a request came from, for the rate limit and the audit log. */
export interface Origin {
  ip: string;
  requestId?: string;
}

/** Masks a resident ID number for logs that are not about that person's data: 320505********1234. */
export function maskIdNumber(s: string): string {
  return s.length === 18 ? `${s.slice(0, 6)}********${s.slice(14)}` : '***';
}

// ---------------------------------------------------------------------------------------------
// Creating accounts

export class AccountError extends Error {
  constructor(
    readonly field: string,
    readonly reason: Text,
    readonly code: 'invalid' | 'exists' | 'mismatch' = 'invalid',
  ) {
    super(reason.en);
  }
}

const STAFF_LOGIN = /^[a-z][a-z0-9._-]{1,63}$/;
const NAME = /^[^\u0000-\u001f\u007f<>]{1,50}$/u;

/** Translates the GB 11643 check's reason (English, from src/base/codes) for the form. */
export function idNumberReason(reason: string): Text {
  const zh = reason.startsWith('length')
    ? '长度应为 18 位'
    : reason.startsWith('characters')
      ? '应为 17 位数字加 1 位数字或 X'
      : reason.startsWith('region')
        ? '地址码无效'
        : reason.startsWith('invalid birth date')
          ? '出生日期无效'
          : reason.startsWith('check digit')
            ? '校验码错误'
            : '格式不正确';
  return { zh: `公民身份号码无效：${zh}`, en: `the ID number is not valid: ${reason}` };
}

export interface StaffInput {
  username: string;
  name: string;
  department: string;
  post: string;
  password: string;
  /** base32; generated when absent */
  totpSecret?: string;
  synthetic?: boolean;
}

/**
 * How a TOTP secret is stored: sealed (AES-256-GCM under the identity secrets' seal key, itself
 * sealed under the master key) when the platform's secrets are at hand; as it is otherwise (a bare
 * database in unit tests). The identity module seals any stored in the clear when it starts.
 */
export function storedTotpSecret(base32: string, secrets: IdentitySecrets | null | undefined): string {
  return secrets ? seal(secrets, base32) : base32;
}

/** The base32 secret of a stored value, or null when it is sealed and cannot be opened here. */
export function openTotpSecret(stored: string, secrets: IdentitySecrets | null | undefined): string | null {
  if (!stored.startsWith('v1.')) return stored;
  return secrets ? unseal(secrets, stored) : null;
}

/** Seals the TOTP secrets still stored in the clear; returns how many. */
export async function sealTotpSecrets(db: Db, secrets: IdentitySecrets): Promise<number> {
  return db.tx(async (client) => {
    const { rows } = await client.query<{ id: string; totp_secret: string }>(`select id, totp_secret from identity.account where totp_secret is not null and totp_secret not like 'v1.%' for update`);
    for (const r of rows) await client.query('update identity.account set totp_secret = $2 where id = $1', [r.id, seal(secrets, r.totp_secret)]);
    return rows.length;
  });
}

export async function createStaffAccount(
  q: Queryable,
  input: StaffInput,
  by: Actor = { kind: 'system', id: 'identity', department: '' },
  opts: { secrets?: IdentitySecrets | null } = {},
): Promise<{ account: Account; totpSecret: string }> {
  if (!STAFF_LOGIN.test(input.username)) throw new AccountError('username', { zh: '用户名应为 2–64 位小写字母、数字或 . _ -，以字母开头', en: 'the user name is 2–64 lower-case letters, digits or . _ -, starting with a letter' });
  if (!NAME.test(input.name)) throw new AccountError('name', { zh: '姓名无效', en: 'the name is not valid' });
  const problem = passwordProblem(input.password, 'staff');
  if (problem) throw new AccountError('password', problem);
  const totpSecret = input.totpSecret ?? newTotpSecret();
  const hash = await hashPassword(input.password);
  const { rows } = await q.query<AccountRow>(
    `insert into identity.account (kind, login, name, department, post, password_hash, totp_secret, synthetic)
     values ('staff', $1, $2, $3, $4, $5, $6, $7)
     on conflict (kind, login) do nothing returning ${COLUMNS}`,
    [input.username, input.name, input.department, input.post, hash, storedTotpSecret(totpSecret, opts.secrets), input.synthetic ?? false],
  );
  if (!rows[0]) throw new AccountError('username', { zh: '用户名已存在', en: 'the user name is taken' }, 'exists');
  const account = toAccount(rows[0]);
  await appendAudit(q, { actor: auditActorOf(by, 'identity'), action: 'account.create', resource: { type: 'account', id: account.id }, outcome: 'ok', details: { kind: 'staff', login: account.login, department: account.department } });
  return { account, totpSecret };
}

/**
 * Registers a citizen after the real-name check: the ID number passes GB 11643 and the population
 * registry has a person with that number and this name. The registry read is audited with the ID
 * number as its subject, so it shows in that person's "who read my data".
 */
export async function registerCitizen(
  db: Db,
  input: { idNumber: string; name: string; password: string; synthetic?: boolean },
  origin: Origin = { ip: 'internal' },
): Promise<Account> {
  const idNumber = input.idNumber.trim().toUpperCase();
  const name = input.name.trim();
  const check = checkIdNumber(idNumber);
  if (!check.ok) throw new AccountError('idNumber', idNumberReason(check.reason));
  if (!NAME.test(name)) throw new AccountError('name', { zh: '姓名无效', en: 'the name is not valid' });
  const problem = passwordProblem(input.password, 'citizen');
  if (problem) throw new AccountError('password', problem);

  // the check and its audit entry stand on their own: a refusal is recorded too
  const person = await findPersonByIdNumber(db, idNumber);
  const matches = person !== null && person.name === name;
  await appendAudit(db, {
    actor: { kind: 'anonymous', id: `registration:${origin.ip}` },
    action: 'identity.realname.check',
    resource: { type: 'person', id: idNumber },
    subject: idNumber,
    purpose: 'real-name verification at citizen account registration',
    outcome: matches ? 'ok' : 'denied',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { found: person !== null },
  });
  // one message for "no such person" and "another name": the form must not reveal who is registered
  if (!matches) throw new AccountError('name', { zh: '姓名与公民身份号码不匹配（依据人口基础数据库）', en: 'the name does not match the ID number (according to the population registry)' }, 'mismatch');

  const hash = await hashPassword(input.password);
  return db.tx(async (q) => {
    const { rows } = await q.query<AccountRow>(
      `insert into identity.account (kind, login, name, id_number, password_hash, synthetic)
       values ('citizen', $1, $2, $3, $4, $5)
       on conflict do nothing returning ${COLUMNS}`,
      [idNumber, name, idNumber, hash, input.synthetic ?? person!.synthetic],
    );
    if (!rows[0]) throw new AccountError('idNumber', { zh: '该公民身份号码已注册，请直接登录', en: 'an account with this ID number exists: sign in instead' }, 'exists');
    const account = toAccount(rows[0]);
    await appendAudit(q, {
      actor: { kind: 'citizen', id: account.id },
      action: 'account.create',
      resource: { type: 'account', id: account.id },
      subject: idNumber,
      outcome: 'ok',
      requestId: origin.requestId,
      ip: origin.ip,
      details: { kind: 'citizen' },
    });
    return account;
  });
}

export async function setPassword(q: Queryable, accountId: string, password: string, kind: 'citizen' | 'staff'): Promise<void> {
  const problem = passwordProblem(password, kind);
  if (problem) throw new AccountError('password', problem);
  await q.query('update identity.account set password_hash = $2, updated_at = now() where id = $1', [accountId, await hashPassword(password)]);
}

export async function setAccountStatus(q: Queryable, accountId: string, status: 'active' | 'disabled', by: Actor): Promise<void> {
  await q.query('update identity.account set status = $2, updated_at = now() where id = $1', [accountId, status]);
  if (status === 'disabled') await q.query('delete from identity.session where account_id = $1', [accountId]);
  await appendAudit(q, { actor: auditActorOf(by), action: status === 'disabled' ? 'account.disable' : 'account.enable', resource: { type: 'account', id: accountId }, outcome: 'ok' });
}

// ---------------------------------------------------------------------------------------------
// Signing in with a password

export type LoginFailure = 'invalid' | 'locked' | 'rate-limited';

export type LoginResult = { ok: true; account: Account; amr: string[] } | { ok: false; reason: LoginFailure; retryAfter?: number };

/**
 * The per-IP budget of every login path (password, TOTP, certificate, registration): one slot per
 * attempt; false when this IP has used its budget for the current minute.
 */
export async function takeIpSlot(q: Queryable, ip: string, perMinute: number): Promise<{ ok: boolean; retryAfter: number }> {
  const h = await hit(q, ipKey(ip), 60);
  return { ok: h.count <= perMinute, retryAfter: h.retryAfter };
}

export interface PasswordLogin {
  kind: 'citizen' | 'staff';
  /** citizen: ID number; staff: user name */
  login: string;
  password: string;
  /** staff: the TOTP code */
  totp?: string;
}

/**
 * Checks a citizen's or staff member's credentials. Refused without checking anything when the IP
 * has used its budget, or when the account has had LOCKOUT_FAILURES failures in the current window
 * (the password is not hashed at all then). A TOTP code is accepted once: a replay is a failure.
 */
export async function passwordLogin(q: Queryable, input: PasswordLogin, origin: Origin, opts: { ratePerMinute: number; secrets?: IdentitySecrets | null }): Promise<LoginResult> {
  const login = input.kind === 'citizen' ? input.login.trim().toUpperCase() : input.login.trim().toLowerCase();
  const shown = input.kind === 'citizen' ? maskIdNumber(login) : login;
  const denied = async (reason: LoginFailure | 'bad-password' | 'bad-totp' | 'replayed-totp' | 'disabled', accountId: string | null, retryAfter?: number): Promise<LoginResult> => {
    await appendAudit(q, {
      actor: { kind: 'anonymous', id: accountId ? `account:${accountId}` : `login:${shown}` },
      action: 'auth.login',
      resource: { type: 'account', id: accountId ?? 'unknown' },
      outcome: 'denied',
      requestId: origin.requestId,
      ip: origin.ip,
      details: { method: input.kind === 'staff' ? 'password+totp' : 'password', kind: input.kind, login: shown, reason },
    });
    const r: LoginFailure = reason === 'locked' || reason === 'rate-limited' ? reason : 'invalid';
    return { ok: false, reason: r, ...(retryAfter ? { retryAfter } : {}) };
  };

  const ipSlot = await takeIpSlot(q, origin.ip, opts.ratePerMinute);
  if (!ipSlot.ok) return denied('rate-limited', null, ipSlot.retryAfter);
  const key = accountKey(input.kind, login);
  const slot = await hit(q, key, LOCKOUT_WINDOW_SECONDS);
  if (slot.count > LOCKOUT_FAILURES) return denied('locked', null, slot.retryAfter);

  const { rows } = await q.query<AccountRow>(`select ${COLUMNS}, password_hash, totp_secret from identity.account where kind = $1 and login = $2`, [input.kind, login]);
  const row = rows[0];
  const pw = await verifyPassword(input.password, row?.password_hash ?? null);
  if (!row || !pw.ok) return denied('bad-password', row?.id ?? null);
  if (row.status !== 'active') return denied('disabled', row.id);
  const amr = ['pwd'];
  if (input.kind === 'staff') {
    const secret = row.totp_secret ? openTotpSecret(row.totp_secret, opts.secrets) : null;
    const step = secret ? verifyTotp(secret, (input.totp ?? '').trim()) : null;
    if (step === null) return denied('bad-totp', row.id);
    // accepted once: only a step later than the last one accepted (a replay of the same code fails)
    const used = await q.query('update identity.account set totp_last_step = $2 where id = $1 and (totp_last_step is null or totp_last_step < $2)', [row.id, step]);
    if (used.rowCount !== 1) return denied('replayed-totp', row.id);
    amr.push('otp', 'mfa');
  }
  await clear(q, key);
  if (pw.rehash) await q.query('update identity.account set password_hash = $2 where id = $1', [row.id, await hashPassword(input.password)]);
  const account = toAccount(row);
  await appendAudit(q, {
    actor: account.kind === 'staff' ? { kind: 'staff', id: account.id, department: account.department ?? undefined } : { kind: account.kind, id: account.id },
    action: 'auth.login',
    resource: { type: 'account', id: account.id },
    outcome: 'ok',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { method: amr.join('+'), kind: account.kind },
  });
  return { ok: true, account, amr };
}
