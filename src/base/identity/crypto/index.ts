// The algorithm layer: two signature families behind one interface.
//
//   'ecdsa-p256-sha256'  ECDSA on NIST P-256 with SHA-256 (FIPS 186-4), node's OpenSSL throughout.
//   'sm2-sm3'            SM2 with SM3 (GB/T 32918.2, GB/T 32905), see ./sm2.ts; signatures cover
//                        SM3(Z_A ‖ M) with the default user id 1234567812345678 (GM/T 0009).
//
// Keys of both families are PEM: PKCS#8 (private) and SubjectPublicKeyInfo (public), with
// id-ecPublicKey and the named curve (prime256v1, or sm2p256v1 = 1.2.156.10197.1.301) — the form
// OpenSSL, GmSSL and BouncyCastle read and write. Signatures of both are DER SEQUENCE { r, s }.
import crypto, { type KeyObject } from 'node:crypto';
import { children, decodeSignature, DerError, encodeSignature, readTlv, bytesToBigint } from './der.ts';
import {
  precomputeSm2PublicKey,
  sm2Digest,
  sm2PrivateKey,
  sm2PublicKey,
  sm2SignDigest,
  sm2VerifyDigest,
  sm2Z,
  sm3 as sm3Native,
  SM2_DEFAULT_USER_ID,
  type Sm2PrivateKey,
  type Sm2PublicKey,
} from './sm2.ts';

export type Alg = 'ecdsa-p256-sha256' | 'sm2-sm3';
export const ALGS: readonly Alg[] = ['ecdsa-p256-sha256', 'sm2-sm3'];

export function isAlg(v: unknown): v is Alg {
  return v === 'ecdsa-p256-sha256' || v === 'sm2-sm3';
}

/** bytes, or a string taken as UTF-8 */
export type Data = Uint8Array | string;

export interface KeyPair {
  alg: Alg;
  /** PKCS#8 PEM */
  privateKey: string;
  /** SubjectPublicKeyInfo PEM */
  publicKey: string;
}

export interface SignOptions {
  /** SM2 only: the signer's distinguishing identifier (default 1234567812345678) */
  sm2UserId?: Data;
}

/** What the CA signs with: an in-process key (keySigner) today, a PKCS#11 or SDF device tomorrow. */
export interface Signer {
  alg: Alg;
  /** SubjectPublicKeyInfo DER of the key */
  publicKey: Buffer;
  /** a DER (r, s) signature over data, exactly as sign(alg, key, data) would make */
  sign(data: Uint8Array): Promise<Buffer>;
}

export class KeyError extends Error {}

const bytes = (d: Data): Uint8Array => (typeof d === 'string' ? Buffer.from(d, 'utf8') : d);

// AlgorithmIdentifier { id-ecPublicKey, namedCurve } as DER: the only two SPKI forms accepted
const SPKI_ALG: Record<Alg, string> = {
  'ecdsa-p256-sha256': '301306072a8648ce3d020106082a8648ce3d030107',
  'sm2-sm3': '301306072a8648ce3d020106082a811ccf5501822d',
};
const NODE_CURVE: Record<Alg, string> = { 'ecdsa-p256-sha256': 'prime256v1', 'sm2-sm3': 'SM2' };

// ---------------------------------------------------------------------------------------------
// Parsed-key caches: parsing a PEM costs more than an ECDSA signature, and SM2 public keys that
// are verified often (CA keys, busy exchange nodes) earn a precomputed table.

function lru<V>(max: number) {
  const map = new Map<string, V>();
  return {
    get(k: string): V | undefined {
      const v = map.get(k);
      if (v !== undefined) {
        map.delete(k);
        map.set(k, v);
      }
      return v;
    },
    set(k: string, v: V): void {
      map.set(k, v);
      if (map.size > max) map.delete(map.keys().next().value!);
    },
  };
}

interface PublicEntry {
  alg: Alg;
  spki: Buffer;
  node: KeyObject;
  /** SM2 only */
  point?: Sm2PublicKey;
  /** SM2 only: Z_A for the default user id */
  z?: Buffer;
  uses: number;
  precomputed: boolean;
}

interface PrivateEntry {
  alg: Alg;
  node: KeyObject;
  /** SM2 only */
  sm2?: Sm2PrivateKey;
  z?: Buffer;
}

const publicCache = lru<PublicEntry>(1024);
const privateCache = lru<PrivateEntry>(64);
const publicByObject = new WeakMap<KeyObject, PublicEntry>();
const privateByObject = new WeakMap<KeyObject, PrivateEntry>();
/** verifications under one SM2 key after which its table (~20 ms to build) is worth it */
const PRECOMPUTE_AFTER = 16;

function cacheKey(k: string | Uint8Array): string {
  return typeof k === 'string' ? k : Buffer.from(k).toString('base64');
}

/** The SPKI DER of a PEM, DER or KeyObject public (or private) key. */
export function spkiDer(key: string | Uint8Array | KeyObject): Buffer {
  return parsePublic(key).spki;
}

function toPublicKeyObject(key: string | Uint8Array | KeyObject): KeyObject {
  try {
    if (typeof key === 'string') return crypto.createPublicKey(key);
    if (key instanceof Uint8Array) return crypto.createPublicKey({ key: Buffer.from(key), format: 'der', type: 'spki' });
    return key.type === 'public' ? key : crypto.createPublicKey(key);
  } catch (err) {
    throw new KeyError(`not a public key: ${(err as Error).message}`);
  }
}

function parsePublic(key: string | Uint8Array | KeyObject): PublicEntry {
  const ck = typeof key === 'object' && !(key instanceof Uint8Array) ? null : cacheKey(key);
  const hit = ck ? publicCache.get(ck) : publicByObject.get(key as KeyObject);
  if (hit) return hit;
  const node = toPublicKeyObject(key);
  const spki = node.export({ type: 'spki', format: 'der' });
  const alg = algOfSpki(spki);
  const entry: PublicEntry = { alg, spki, node, uses: 0, precomputed: false };
  if (alg === 'sm2-sm3') {
    const point = spkiPoint(spki);
    entry.point = sm2PublicKey(point);
    entry.z = sm2Z(point);
  }
  if (ck) publicCache.set(ck, entry);
  else publicByObject.set(key as KeyObject, entry);
  return entry;
}

/** Which family an SPKI (DER) belongs to; KeyError for any other key. */
export function algOfSpki(spki: Uint8Array): Alg {
  try {
    const seq = readTlv(spki, 0);
    const [algId] = children(spki, seq);
    if (!algId) throw new DerError('empty');
    const hex = Buffer.from(spki.subarray(algId.start, algId.end)).toString('hex');
    const alg = (Object.keys(SPKI_ALG) as Alg[]).find((a) => SPKI_ALG[a] === hex);
    if (alg) return alg;
  } catch {
    // fall through
  }
  throw new KeyError('unsupported key: expected an EC key on P-256 (prime256v1) or SM2 (sm2p256v1)');
}

/** The uncompressed EC point (04 ‖ x ‖ y) inside an SPKI. */
export function spkiPoint(spki: Uint8Array): Buffer {
  const seq = readTlv(spki, 0);
  const [, bits] = children(spki, seq);
  if (!bits || bits.tag !== 0x03 || spki[bits.contentStart] !== 0) throw new KeyError('malformed SubjectPublicKeyInfo');
  const point = Buffer.from(spki.subarray(bits.contentStart + 1, bits.end));
  if (point.length !== 65 || point[0] !== 0x04) throw new KeyError('expected an uncompressed point');
  return point;
}

function parsePrivate(key: string | KeyObject): PrivateEntry {
  const hit = typeof key === 'string' ? privateCache.get(key) : privateByObject.get(key);
  if (hit) return hit;
  let node: KeyObject;
  try {
    node = typeof key === 'string' ? crypto.createPrivateKey(key) : key;
  } catch (err) {
    throw new KeyError(`not a private key: ${(err as Error).message}`);
  }
  if (node.type !== 'private') throw new KeyError('not a private key');
  const spki = crypto.createPublicKey(node).export({ type: 'spki', format: 'der' });
  const alg = algOfSpki(spki);
  const entry: PrivateEntry = { alg, node };
  if (alg === 'sm2-sm3') {
    entry.sm2 = sm2PrivateKey(pkcs8Scalar(node.export({ type: 'pkcs8', format: 'der' })));
    entry.z = sm2Z(entry.sm2.publicPoint);
  }
  if (typeof key === 'string') privateCache.set(key, entry);
  else privateByObject.set(key, entry);
  return entry;
}

// Node's OpenSSL loads a PEM key on the SM2 curve as its own key type, and exporting that as
// 'sec1' or 'jwk' aborts the process (an assertion in node 20's crypto_keys.cc): only PKCS#8 and
// SPKI are ever exported here, and the scalar is read from the PKCS#8 by hand.
function pkcs8Scalar(pkcs8: Uint8Array): bigint {
  try {
    // PrivateKeyInfo { version, AlgorithmIdentifier, privateKey OCTET STRING { ECPrivateKey } }
    const [, , octets] = children(pkcs8, readTlv(pkcs8, 0));
    if (!octets || octets.tag !== 0x04) throw new DerError('no privateKey');
    // ECPrivateKey (RFC 5915) { version 1, privateKey OCTET STRING, [0] params, [1] publicKey }
    const [version, d] = children(pkcs8, readTlv(pkcs8, octets.contentStart, octets.end));
    if (!version || !d || d.tag !== 0x04) throw new DerError('no scalar');
    return bytesToBigint(pkcs8.subarray(d.contentStart, d.end));
  } catch (err) {
    throw new KeyError(`malformed EC private key: ${(err as Error).message}`);
  }
}

/** An SM2 key as the hex strings sm-crypto and most Chinese SDKs use (d; 04 ‖ x ‖ y). */
export function exportSm2Hex(privateKey: string | KeyObject): { privateKey: string; publicKey: string } {
  const key = parsePrivate(privateKey);
  if (key.alg !== 'sm2-sm3') throw new KeyError(`the key is ${key.alg}, not sm2-sm3`);
  return { privateKey: key.sm2!.d.toString(16).padStart(64, '0'), publicKey: key.sm2!.publicPoint.toString('hex') };
}

/** The PEM key pair of an SM2 private scalar given as 64 hex digits. */
export function importSm2Hex(privateKeyHex: string): KeyPair {
  if (!/^[0-9a-fA-F]{64}$/.test(privateKeyHex)) throw new KeyError('expected 64 hex digits');
  const key = sm2PrivateKey(BigInt('0x' + privateKeyHex));
  const d = Buffer.from(privateKeyHex, 'hex');
  // PrivateKeyInfo { 0, {id-ecPublicKey, sm2p256v1}, OCTET STRING { ECPrivateKey { 1, d, [1] point } } },
  // the layout OpenSSL writes (the curve is in the AlgorithmIdentifier, not repeated inside)
  const ecPrivateKey = Buffer.concat([Buffer.from('306b0201010420', 'hex'), d, Buffer.from('a144034200', 'hex'), key.publicPoint]);
  const pkcs8 = Buffer.concat([Buffer.from('308187020100', 'hex'), Buffer.from(SPKI_ALG['sm2-sm3'], 'hex'), Buffer.from('046d', 'hex'), ecPrivateKey]);
  const node = crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return {
    alg: 'sm2-sm3',
    privateKey: node.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey: crypto.createPublicKey(node).export({ type: 'spki', format: 'pem' }) as string,
  };
}

// ---------------------------------------------------------------------------------------------

export function generateKeyPair(alg: Alg): KeyPair {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', {
    namedCurve: NODE_CURVE[alg],
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { alg, privateKey, publicKey };
}

/** The algorithm of a PEM key (private or public). */
export function algOfKey(key: string | Uint8Array | KeyObject): Alg {
  return parsePublic(key).alg;
}

/** The SPKI PEM of a PKCS#8 PEM private key. */
export function publicKeyOf(privateKey: string | KeyObject): string {
  return crypto.createPublicKey(parsePrivate(privateKey).node).export({ type: 'spki', format: 'pem' }) as string;
}

function userIdBytes(opts?: SignOptions): Uint8Array | null {
  if (opts?.sm2UserId === undefined) return null;
  const id = bytes(opts.sm2UserId);
  return Buffer.from(id).equals(SM2_DEFAULT_USER_ID) ? null : id;
}

/** Signs data; returns the DER (r, s). Throws KeyError if the key is not of `alg`. */
export function sign(alg: Alg, privateKey: string | KeyObject, data: Data, opts?: SignOptions): Buffer {
  const key = parsePrivate(privateKey);
  if (key.alg !== alg) throw new KeyError(`the key is ${key.alg}, not ${alg}`);
  return signWith(key, data, opts);
}

function signWith(key: PrivateEntry, data: Data, opts?: SignOptions): Buffer {
  const alg = key.alg;
  if (alg === 'ecdsa-p256-sha256') return crypto.sign('sha256', bytes(data), key.node);
  const uid = userIdBytes(opts);
  const z = uid ? sm2Z(key.sm2!.publicPoint, uid) : key.z!;
  const { r, s } = sm2SignDigest(key.sm2!, sm2Digest(z, bytes(data)));
  return encodeSignature(r, s);
}

/**
 * True if signature is a valid DER (r, s) signature of data under publicKey (SPKI PEM or DER, or
 * a certificate's key) in family alg. A key of the other family, a malformed key or signature,
 * or a non-DER encoding is false, never an exception.
 */
export function verify(alg: Alg, publicKey: string | Uint8Array | KeyObject, data: Data, signature: Uint8Array, opts?: SignOptions): boolean {
  let key: PublicEntry;
  let rs: { r: bigint; s: bigint };
  try {
    key = parsePublic(publicKey);
    rs = decodeSignature(signature);
  } catch {
    return false;
  }
  if (key.alg !== alg) return false;
  if (alg === 'ecdsa-p256-sha256') {
    try {
      return crypto.verify('sha256', bytes(data), key.node, signature);
    } catch {
      return false;
    }
  }
  const uid = userIdBytes(opts);
  const z = uid ? sm2Z(spkiPoint(key.spki), uid) : key.z!;
  if (!key.precomputed && ++key.uses >= PRECOMPUTE_AFTER) {
    precomputeSm2PublicKey(key.point!);
    key.precomputed = true;
  }
  return sm2VerifyDigest(key.point!, sm2Digest(z, bytes(data)), rs.r, rs.s, key.precomputed);
}

/** SM3 (GB/T 32905-2016) digest. */
export function sm3(data: Data): Buffer {
  return sm3Native(bytes(data));
}

/** The digest each family's certificates use for key identifiers and fingerprints. */
export function fingerprint(alg: Alg, data: Uint8Array): Buffer {
  return alg === 'sm2-sm3' ? sm3Native(data) : crypto.createHash('sha256').update(data).digest();
}

/** A Signer over an in-process PKCS#8 key. */
export function keySigner(privateKey: string | KeyObject): Signer {
  const key = parsePrivate(privateKey);
  const alg = key.alg;
  const publicKey = crypto.createPublicKey(key.node).export({ type: 'spki', format: 'der' });
  return { alg, publicKey, sign: async (data) => signWith(key, data) };
}

export { SM2_DEFAULT_USER_ID };
