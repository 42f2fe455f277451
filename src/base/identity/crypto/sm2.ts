// SM2 digital signatures (GB/T 32918.2-2016 = GM/T 0003.2-2012) on the recommended curve
// sm2p256v1 (GB/T 32918.5-2017 = GM/T 0003.5-2012), with SM3 (GB/T 32905-2016) as the hash.
//
// Who does what (see docs/decisions/0006-crypto-and-ca.md):
//   - SM3: node's OpenSSL (native; matches the standard's vectors).
//   - k·G for signing: node's OpenSSL ECDH on its built-in SM2 curve (native, constant-time ladder,
//     k from OpenSSL's CSPRNG). OpenSSL 3.0 cannot produce the SM2 *signature* itself from node,
//     but it does the expensive, secret-dependent scalar multiplication for us.
//   - s·G + t·P_A for verifying (public values only): @noble/curves' audited short-Weierstrass
//     arithmetic, with per-key precomputed tables for keys that are verified often.
//   - The scheme itself (Z_A, e, r, s) is the standard's few lines below, checked against the
//     standard's worked example and against sm-crypto / sm-crypto-v2 in both directions.
import crypto from 'node:crypto';
import { weierstrass, type WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { bigintToBytes, bytesToBigint } from './der.ts';

/** GB/T 32918.5-2017 §4.2 — the recommended 256-bit curve parameters */
export const SM2_CURVE = {
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
} as const;

const Point = weierstrass<bigint>({ ...SM2_CURVE, h: 1n });
const N = SM2_CURVE.n;

/** the user id both sides assume when none was agreed (GM/T 0009-2012 §10) */
export const SM2_DEFAULT_USER_ID: Buffer = Buffer.from('1234567812345678', 'ascii');

// a·b·x_G·y_G, the curve part of every Z_A
const CURVE_BYTES = Buffer.concat([SM2_CURVE.a, SM2_CURVE.b, SM2_CURVE.Gx, SM2_CURVE.Gy].map((v) => bigintToBytes(v, 32)));

export function sm3(data: Uint8Array): Buffer {
  return crypto.createHash('sm3').update(data).digest();
}

/** Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A), GB/T 32918.2 §5.5 */
export function sm2Z(publicPoint: Uint8Array, userId: Uint8Array = SM2_DEFAULT_USER_ID): Buffer {
  if (publicPoint.length !== 65 || publicPoint[0] !== 0x04) throw new TypeError('expected an uncompressed SM2 point (65 bytes, 04 ‖ x ‖ y)');
  const bits = userId.length * 8;
  if (bits > 0xffff) throw new RangeError('SM2 user id longer than 8191 bytes');
  return crypto
    .createHash('sm3')
    .update(Buffer.from([bits >> 8, bits & 0xff]))
    .update(userId)
    .update(CURVE_BYTES)
    .update(publicPoint.subarray(1))
    .digest();
}

/** e = SM3(Z_A ‖ M) as an integer, GB/T 32918.2 §6.1 steps A1–A3 */
export function sm2Digest(z: Uint8Array, message: Uint8Array): bigint {
  return bytesToBigint(crypto.createHash('sm3').update(z).update(message).digest());
}

const mod = (v: bigint) => ((v % N) + N) % N;
const invN = (v: bigint) => Point.Fn.inv(mod(v));

// One reused ECDH context: generateKeys() gives a fresh k in [1, n-1] and k·G in native code.
let ecdh: crypto.ECDH | null = null;

function nonce(fixedK?: bigint): { k: bigint; x1: bigint } {
  ecdh ??= crypto.createECDH('SM2');
  if (fixedK === undefined) ecdh.generateKeys();
  else ecdh.setPrivateKey(bigintToBytes(fixedK, 32));
  const k = bytesToBigint(ecdh.getPrivateKey());
  const x1 = bytesToBigint(ecdh.getPublicKey().subarray(1, 33));
  return { k, x1 };
}

export interface Sm2PrivateKey {
  d: bigint;
  /** (1 + d)^-1 mod n, used by every signature */
  inv1d: bigint;
  /** 04 ‖ x ‖ y */
  publicPoint: Buffer;
}

export function sm2PrivateKey(d: bigint): Sm2PrivateKey {
  // d must leave 1 + d invertible: [1, n-2] (GB/T 32918.1 §6.1)
  if (d < 1n || d > N - 2n) throw new RangeError('SM2 private key out of range');
  return { d, inv1d: invN(1n + d), publicPoint: Buffer.from(Point.BASE.multiply(d).toBytes(false)) };
}

/**
 * Signs the digest e (GB/T 32918.2 §6.1 steps A3–A7). `fixedK` exists only so that the
 * standard's worked example can be reproduced; never pass it otherwise.
 */
export function sm2SignDigest(key: Sm2PrivateKey, e: bigint, fixedK?: bigint): { r: bigint; s: bigint } {
  for (let attempt = 0; attempt < 64; attempt++) {
    const { k, x1 } = nonce(fixedK);
    const r = mod(e + x1);
    if (r === 0n || r + k === N) continue;
    const s = mod(key.inv1d * (k - r * key.d));
    if (s === 0n) continue;
    return { r, s };
  }
  throw new Error('SM2: no usable nonce'); // unreachable with a working RNG
}

export type Sm2PublicKey = WeierstrassPoint<bigint>;

/** Decodes and validates (on the curve, not infinity) a public point. */
export function sm2PublicKey(point: Uint8Array): Sm2PublicKey {
  return Point.fromBytes(point);
}

/** Verification (GB/T 32918.2 §7.1 steps B1–B7) of (r, s) over the digest e. */
export function sm2VerifyDigest(publicKey: Sm2PublicKey, e: bigint, r: bigint, s: bigint, precomputed = false): boolean {
  if (r < 1n || r >= N || s < 1n || s >= N) return false;
  const t = mod(r + s);
  if (t === 0n) return false;
  // with a precomputed table for P_A two separate multiplications beat Strauss–Shamir
  const sum = precomputed ? Point.BASE.multiplyUnsafe(s).add(publicKey.multiplyUnsafe(t)) : Point.BASE.mulAddUnsafe(s, publicKey, t);
  if (sum.is0()) return false;
  return mod(e + sum.toAffine().x) === r;
}

/** Builds the per-key table that makes repeated verifications under this key ~3x faster. */
export function precomputeSm2PublicKey(publicKey: Sm2PublicKey): void {
  publicKey.precompute(6, false);
}
