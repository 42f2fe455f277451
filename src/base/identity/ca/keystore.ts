// CA private keys at rest: PKCS#8 DER sealed with AES-256-GCM under a key derived from the master
// key (HKDF, purpose 'ca-private-keys'), the authority's id as associated data (a sealed key copied onto another authority's row does not open).
//
// The master key is GUSU_MASTER_KEY (base64 of 32 bytes) when set, else GUSU_DATA_DIR/master.key,
// created with mode 0600 on first use. An HSM replaces all of this: see signerFor() and
// docs/decisions/0006-crypto-and-ca.md §HSM.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface MasterKey {
  key: Buffer;
  /** a public fingerprint of the key, stored beside what it seals: tells "wrong key" from "corrupt" */
  id: string;
  source: 'env' | 'file';
  file?: string;
}

export class MasterKeyError extends Error {}

const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function fromBase64(text: string, where: string): Buffer {
  const t = text.trim();
  const key = Buffer.from(t, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || key.length !== 32) {
    throw new MasterKeyError(`${where} must be the base64 of exactly 32 random bytes (make one with: openssl rand -base64 32)`);
  }
  return key;
}

function keyId(key: Buffer): string {
  return crypto.createHmac('sha256', key).update('gusu master key id').digest('hex').slice(0, 16);
}

export const MASTER_KEY_FILE = 'master.key';

/**
 * The master key: `masterKey` (the value of GUSU_MASTER_KEY) if given, else the file under dataDir,
 * created on first use. Safe when several processes start at once: the file appears atomically.
 */
export function loadMasterKey(opts: { masterKey?: string | null; dataDir: string }): MasterKey {
  if (opts.masterKey) {
    const key = fromBase64(opts.masterKey, 'GUSU_MASTER_KEY');
    return { key, id: keyId(key), source: 'env' };
  }
  const file = path.join(path.resolve(opts.dataDir), MASTER_KEY_FILE);
  if (!fs.existsSync(file)) createKeyFile(file);
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) throw new MasterKeyError(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  const key = fromBase64(fs.readFileSync(file, 'utf8'), file);
  return { key, id: keyId(key), source: 'file', file };
}

function createKeyFile(file: string): void {
  // the data directory must stay enterable by the embedded server's user (it holds pg/ too): the
  // key file itself is what is private
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  // written whole under a private name, then linked into place: a concurrent reader never sees a
  // partial file, and of two racing creators the second's link fails and it uses the first's key
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, crypto.randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    fs.chmodSync(tmp, 0o600);
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

const derived = new WeakMap<MasterKey, Map<string, Buffer>>();

/**
 * A 256-bit key for one purpose, derived from the master key (HKDF-SHA-256, the purpose as info):
 * each user of the master key (the CA's keys, identity's secrets, ...) encrypts under its own.
 */
export function purposeKey(master: MasterKey, purpose: string): Buffer {
  let byPurpose = derived.get(master);
  if (!byPurpose) derived.set(master, (byPurpose = new Map()));
  let key = byPurpose.get(purpose);
  if (!key) byPurpose.set(purpose, (key = Buffer.from(crypto.hkdfSync('sha256', master.key, Buffer.alloc(0), `gusu:${purpose}`, 32))));
  return key;
}

const CA_KEYS = 'ca-private-keys';

/** version ‖ iv ‖ tag ‖ ciphertext */
export function sealKey(master: MasterKey, authorityId: string, pkcs8Der: Uint8Array): Buffer {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', purposeKey(master, CA_KEYS), iv);
  cipher.setAAD(Buffer.from(`gusu-ca:${authorityId}`));
  const ct = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT_VERSION]), iv, cipher.getAuthTag(), ct]);
}

/** The PKCS#8 DER sealed by sealKey; throws MasterKeyError naming the likely cause. */
export function openKey(master: MasterKey, authorityId: string, sealed: Uint8Array, sealedUnder: string | null): Buffer {
  if (sealedUnder && sealedUnder !== master.id) {
    throw new MasterKeyError(`the key of CA ${authorityId} was sealed under master key ${sealedUnder}, but the master key now configured is ${master.id}: restore the original GUSU_MASTER_KEY or master.key`);
  }
  if (sealed[0] !== FORMAT_VERSION || sealed.length < 1 + IV_BYTES + TAG_BYTES + 1) throw new MasterKeyError(`the sealed key of CA ${authorityId} is not in a known format`);
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = crypto.createDecipheriv('aes-256-gcm', purposeKey(master, CA_KEYS), iv);
  decipher.setAAD(Buffer.from(`gusu-ca:${authorityId}`));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new MasterKeyError(`the sealed key of CA ${authorityId} does not open under master key ${master.id} (wrong key, or the row was altered)`);
  }
}
