// The identity module's secrets, generated on first start and kept in the database so that every
// process of a deployment shares them: the OpenID provider's signing keys (JWKS), its cookie keys,
// the CSRF key, the key that seals stored refresh tokens, and the platform clients' secrets.
import { createCipheriv, createDecipheriv, createHash, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import type { Db, Queryable } from '../../../db/index.ts';
import { getSetting, setSetting } from '../../../db/index.ts';

export interface IdentitySecrets {
  version: 1;
  createdAt: string;
  /** private JWKs: RS256 (the OpenID Connect default) and ES256 */
  jwks: { keys: (JsonWebKey & { kid: string; alg: string; use: string })[] };
  /** newest first: oidc-provider signs cookies with the first and accepts all */
  cookieKeys: string[];
  csrfKey: string;
  sealKey: string;
  clientSecrets: { 'gusu-portal': string; 'gusu-console': string };
}

const SETTING = 'identity.secrets';

/**
 * How the secrets are protected at rest. Without a sealer they are kept in platform.setting as they
 * are (protected by the database's access control only); with the CA module present the identity
 * module seals them under the platform's master key (see accounts/ca-bridge.ts).
 */
export interface SecretsSealer {
  name: string;
  seal(plain: Buffer): Promise<string> | string;
  open(sealed: string): Promise<Buffer> | Buffer;
}

const sealers = new WeakMap<object, SecretsSealer>();

type Stored = { sealed: string; by: string } | IdentitySecrets;

function generate(): IdentitySecrets {
  const kid = (jwk: JsonWebKey) => createHash('sha256').update(JSON.stringify([jwk.kty, jwk.crv ?? '', jwk.x ?? jwk.n ?? ''])).digest('base64url').slice(0, 16);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const b = () => randomBytes(32).toString('base64url');
  return {
    version: 1,
    createdAt: new Date().toISOString(),
    jwks: {
      keys: [
        { ...rsa, kid: kid(rsa), alg: 'RS256', use: 'sig' },
        { ...ec, kid: kid(ec), alg: 'ES256', use: 'sig' },
      ],
    },
    cookieKeys: [b()],
    csrfKey: b(),
    sealKey: b(),
    clientSecrets: { 'gusu-portal': b(), 'gusu-console': b() },
  };
}

async function decode(stored: Stored, sealer: SecretsSealer | undefined): Promise<IdentitySecrets> {
  if ('sealed' in stored) {
    if (!sealer) throw new Error(`the identity secrets are sealed by "${stored.by}", and no sealer is installed`);
    return JSON.parse((await sealer.open(stored.sealed)).toString('utf8')) as IdentitySecrets;
  }
  return stored;
}

async function encode(secrets: IdentitySecrets, sealer: SecretsSealer | undefined): Promise<Stored> {
  if (!sealer) return secrets;
  return { sealed: await sealer.seal(Buffer.from(JSON.stringify(secrets), 'utf8')), by: sealer.name };
}

const cache = new WeakMap<object, IdentitySecrets>();

/**
 * Creates the secrets on first start (once, even with several processes starting together), sealed
 * with `sealer` when given; secrets stored in the clear are sealed once a sealer is given.
 */
export async function ensureSecrets(db: Db, sealer?: SecretsSealer | null): Promise<IdentitySecrets> {
  if (sealer) sealers.set(db, sealer);
  else sealers.delete(db);
  const secrets = await db.tx(async (client) => {
    await client.query('select pg_advisory_xact_lock(7110431)');
    const stored = await getSetting<Stored>(client, SETTING);
    if (stored) {
      const s = await decode(stored, sealer ?? undefined);
      // stored in the clear before a sealer was configured: seal it now
      if (sealer && !('sealed' in stored)) await setSetting(client, SETTING, await encode(s, sealer));
      return s;
    }
    const s = generate();
    await setSetting(client, SETTING, await encode(s, sealer ?? undefined));
    return s;
  });
  cache.set(db, secrets);
  return secrets;
}

export async function loadSecrets(db: Db | Queryable): Promise<IdentitySecrets> {
  const hit = cache.get(db);
  if (hit) return hit;
  const stored = await getSetting<Stored>(db, SETTING);
  if (!stored) throw new Error('identity secrets are missing: the identity module has not started');
  const s = await decode(stored, sealers.get(db));
  cache.set(db, s);
  return s;
}

/** Secrets already loaded for this database (after start-up), or null. */
export function cachedSecrets(db: object): IdentitySecrets | null {
  return cache.get(db) ?? null;
}

/** The public half of the signing keys. */
export function publicJwks(s: IdentitySecrets): { keys: JsonWebKey[] } {
  return { keys: s.jwks.keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub) };
}

// AES-256-GCM for values stored in our own tables (refresh and access tokens of RP sessions)
export function seal(s: IdentitySecrets, plain: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', Buffer.from(s.sealKey, 'base64url'), iv);
  const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return `v1.${iv.toString('base64url')}.${body.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
}

export function unseal(s: IdentitySecrets, sealed: string): string | null {
  const [v, iv, body, tag] = sealed.split('.');
  if (v !== 'v1' || !iv || !body || !tag) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', Buffer.from(s.sealKey, 'base64url'), Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
  } catch {
    return null;
  }
}
