// Passwords: scrypt (memory-hard, in node:crypto; no native add-on to build). The parameters are
// stored with each hash (`scrypt$N=32768,r=8,p=1$<salt>$<hash>`), so they can be raised later and old
// hashes still verify (and are re-hashed on the next successful sign-in). Comparison is timing-safe;
// unknown accounts are checked against a dummy hash so the time taken does not reveal existence.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 2^15 × 8 × 128 bytes = 32 MiB per hash (OWASP's scrypt baseline is N=2^17 r=8 p=1 or this with more p). */
export const DEFAULT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
export const MAX_PASSWORD_LENGTH = 256;

/** How many times a password was run through scrypt (verifications and hashes): the lockout test counts these. */
export const hashingStats = { scryptCalls: 0 };

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  hashingStats.scryptCalls++;
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, KEY_LENGTH, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(password, salt, params);
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

interface Parsed {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parse(stored: string): Parsed | null {
  const m = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!(N >= 2 && N <= 2 ** 20 && (N & (N - 1)) === 0 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return null;
  return { params: { N, r, p }, salt: Buffer.from(m[4]!, 'base64url'), key: Buffer.from(m[5]!, 'base64url') };
}

let dummy: Promise<string> | null = null;
/** A hash of a random password with the current parameters, for accounts that do not exist. */
function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(18).toString('base64url')));
}

/**
 * Checks a password against a stored hash; with `stored` null (no such account) it spends the same
 * time on a dummy hash and returns false. `rehash` says the parameters are older than the default.
 */
export async function verifyPassword(password: string, stored: string | null): Promise<{ ok: boolean; rehash: boolean }> {
  const parsed = parse(stored ?? (await dummyHash()));
  if (!parsed) {
    await scrypt(password, randomBytes(SALT_LENGTH), DEFAULT_PARAMS); // same cost for a corrupt hash
    return { ok: false, rehash: false };
  }
  const key = await scrypt(password, parsed.salt, parsed.params);
  const ok = stored !== null && key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  const p = parsed.params;
  return { ok, rehash: ok && (p.N < DEFAULT_PARAMS.N || p.r < DEFAULT_PARAMS.r || p.p < DEFAULT_PARAMS.p) };
}

/** Why a new password is not acceptable, or null. */
export function passwordProblem(password: string, kind: 'citizen' | 'staff'): { zh: string; en: string } | null {
  const min = kind === 'staff' ? 12 : 8;
  if ([...password].length < min) return { zh: `密码至少 ${min} 个字符`, en: `the password needs at least ${min} characters` };
  if (password.length > MAX_PASSWORD_LENGTH) return { zh: `密码最多 ${MAX_PASSWORD_LENGTH} 个字符`, en: `the password may have at most ${MAX_PASSWORD_LENGTH} characters` };
  if (/[\u0000-\u001f\u007f]/.test(password)) return { zh: '密码不能包含控制字符', en: 'the password may not contain control characters' };
  if (new Set(password).size < 4) return { zh: '密码过于简单', en: 'the password is too simple' };
  return null;
}
