// Known-answer tests of the algorithm layer against the standards' own worked examples, and
// interoperability with the SM2 libraries others in China use (sm-crypto, sm-crypto-v2).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import { sm2 as smV2, sm3 as sm3V2 } from 'sm-crypto-v2';
import { algOfKey, exportSm2Hex, generateKeyPair, importSm2Hex, keySigner, publicKeyOf, sign, sm3, spkiDer, spkiPoint, verify } from '../src/base/identity/crypto/index.ts';
import { decodeSignature, encodeSignature } from '../src/base/identity/crypto/der.ts';
import { sm2Digest, sm2PrivateKey, sm2PublicKey, sm2SignDigest, sm2VerifyDigest, sm2Z, SM2_CURVE } from '../src/base/identity/crypto/sm2.ts';

interface SmCryptoV1 {
  sm2: {
    doSignature(msg: string, privateKey: string, opts: { der?: boolean; hash?: boolean; userId?: string }): string;
    doVerifySignature(msg: string, sig: string, publicKey: string, opts: { der?: boolean; hash?: boolean; userId?: string }): boolean;
  };
}
const smV1 = createRequire(import.meta.url)('sm-crypto') as SmCryptoV1;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const big = (h: string) => BigInt('0x' + h.replace(/\s+/g, ''));

// ---------------------------------------------------------------------------------------------
// SM3 — GB/T 32905-2016 Appendix A (A.1: "abc"; A.2: "abcd" repeated 16 times, 512 bits)

test('SM3: GB/T 32905-2016 A.1 and A.2', () => {
  const a1 = '66C7F0F4 62EEEDD9 D1F2D46B DC10E4E2 4167C487 5CF2F7A2 297DA02B 8F4BA8E0'.replace(/ /g, '');
  const a2 = 'DEBE9FF9 2275B8A1 38604889 C18E5A4D 6FDB70E5 387E5765 293DCBA3 9C0C5732'.replace(/ /g, '');
  assert.equal(hex(sm3('abc')), a1);
  assert.equal(hex(sm3('abcd'.repeat(16))), a2);
  // and the library the other systems use agrees
  assert.equal(sm3V2('abc').toUpperCase(), a1);
});

// ---------------------------------------------------------------------------------------------
// SM2 — GB/T 32918.5-2017 (= GM/T 0003.5-2012) Annex A, the signature example on the
// recommended curve sm2p256v1. Values cross-checked against OpenSSL's test/sm2_internal_test.c,
// which reproduces the same example. (The ALICE123@YAHOO.COM example of GB/T 32918.2 Annex A uses
// a different, 256-bit *test* curve and is not used here.)

const SM2_KAT = {
  d: big('3945208F 7B2144B1 3F36E38A C6D39F95 88939369 2860B51A 42FB81EF 4DF7C5B8'),
  xA: '09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020',
  yA: 'CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13',
  userId: Buffer.from('1234567812345678'),
  message: Buffer.from('message digest'),
  za: 'B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3',
  e: 'F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640',
  k: big('59276E27 D506861A 16680F3A D9C02DCC EF3CC1FA 3CDBE4CE 6D54B80D EAC1BC21'),
  x1: '04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73',
  r: big('F5A03B06 48D2C463 0EEAC513 E1BB81A1 5944DA38 27D5B741 43AC7EAC EEE720B3'),
  s: big('B1B6AA29 DF212FD8 763182BC 0D421CA1 BB9038FD 1F7F42D4 840B69C4 85BBC1AA'),
};

/** the example's key pair as PKCS#8 / SPKI PEM */
const sm2KatKeys = () => importSm2Hex(SM2_KAT.d.toString(16).padStart(64, '0'));

test('SM2: the public key, Z_A and e of GB/T 32918.5 Annex A', () => {
  const key = sm2PrivateKey(SM2_KAT.d);
  assert.equal(hex(key.publicPoint), '04' + SM2_KAT.xA + SM2_KAT.yA);
  const z = sm2Z(key.publicPoint, SM2_KAT.userId);
  assert.equal(hex(z), SM2_KAT.za);
  assert.equal(sm2Digest(z, SM2_KAT.message).toString(16).toUpperCase().padStart(64, '0'), SM2_KAT.e);
  // the default user id is the example's
  assert.equal(hex(sm2Z(key.publicPoint)), SM2_KAT.za);
});

test('SM2: the fixed k of Annex A reproduces r and s exactly', () => {
  const key = sm2PrivateKey(SM2_KAT.d);
  const e = big(SM2_KAT.e);
  const { r, s } = sm2SignDigest(key, e, SM2_KAT.k);
  assert.equal(r, SM2_KAT.r);
  assert.equal(s, SM2_KAT.s);
  // and k·G is the example's point: r = e + x1 mod n
  assert.equal(((SM2_KAT.r - e + SM2_CURVE.n) % SM2_CURVE.n).toString(16).toUpperCase().padStart(64, '0'), SM2_KAT.x1);
});

test('SM2: the Annex A signature verifies through the public interface, and nothing near it does', () => {
  const { publicKey } = sm2KatKeys();
  const sig = encodeSignature(SM2_KAT.r, SM2_KAT.s);
  assert.ok(verify('sm2-sm3', publicKey, SM2_KAT.message, sig));
  assert.ok(verify('sm2-sm3', publicKey, 'message digest', sig));
  assert.ok(!verify('sm2-sm3', publicKey, 'message digesT', sig));
  assert.ok(!verify('sm2-sm3', publicKey, SM2_KAT.message, encodeSignature(SM2_KAT.r, SM2_KAT.s + 1n)));
  // s + n is the same point arithmetic but out of range: refused (sm-crypto-v2 accepts it)
  assert.ok(!verify('sm2-sm3', publicKey, SM2_KAT.message, encodeSignature(SM2_KAT.r, SM2_KAT.s + SM2_CURVE.n)));
  // raw r ‖ s instead of DER, and DER with trailing bytes, are refused
  assert.ok(!verify('sm2-sm3', publicKey, SM2_KAT.message, Buffer.from(SM2_KAT.r.toString(16) + SM2_KAT.s.toString(16), 'hex')));
  assert.ok(!verify('sm2-sm3', publicKey, SM2_KAT.message, Buffer.concat([sig, Buffer.from([0])])));
  // another user id changes Z_A
  assert.ok(!verify('sm2-sm3', publicKey, SM2_KAT.message, sig, { sm2UserId: 'ALICE123@YAHOO.COM' }));
  // the same bytes are not an ECDSA signature
  assert.ok(!verify('ecdsa-p256-sha256', publicKey, SM2_KAT.message, sig));
  // low-level: verify by digest
  assert.ok(sm2VerifyDigest(sm2PublicKey(Buffer.from('04' + SM2_KAT.xA + SM2_KAT.yA, 'hex')), big(SM2_KAT.e), SM2_KAT.r, SM2_KAT.s));
});

test('SM2: sm-crypto and sm-crypto-v2 verify our signatures, and we verify theirs', () => {
  const { privateKey, publicKey } = generateKeyPair('sm2-sm3');
  const { privateKey: privHex, publicKey: pubHex } = exportSm2Hex(privateKey);
  assert.equal(pubHex, spkiPoint(spkiDer(publicKey)).toString('hex'));
  assert.equal(smV2.getPublicKeyFromPrivateKey(privHex), pubHex);
  for (const message of ['', 'abc', '姑苏 e-government 政务服务', 'x'.repeat(1000)]) {
    const ours = sign('sm2-sm3', privateKey, message);
    assert.ok(smV2.doVerifySignature(message, ours.toString('hex'), pubHex, { der: true, hash: true }), `v2 verifies ours: ${message.slice(0, 10)}`);
    assert.ok(smV1.sm2.doVerifySignature(message, ours.toString('hex'), pubHex, { der: true, hash: true }), `v1 verifies ours`);
    const v2 = Buffer.from(smV2.doSignature(message, privHex, { der: true, hash: true }), 'hex');
    assert.ok(verify('sm2-sm3', publicKey, message, v2), 'we verify sm-crypto-v2');
    const v1 = Buffer.from(smV1.sm2.doSignature(message, privHex, { der: true, hash: true }), 'hex');
    assert.ok(verify('sm2-sm3', publicKey, message, v1), 'we verify sm-crypto');
  }
  // with an agreed user id
  const ours = sign('sm2-sm3', privateKey, 'hello', { sm2UserId: 'gusu@suzhou' });
  assert.ok(smV2.doVerifySignature('hello', ours.toString('hex'), pubHex, { der: true, hash: true, userId: 'gusu@suzhou' }));
  assert.ok(!verify('sm2-sm3', publicKey, 'hello', ours));
  assert.ok(verify('sm2-sm3', publicKey, 'hello', ours, { sm2UserId: 'gusu@suzhou' }));
});

test('SM2: a key verified many times gets a precomputed table and still verifies correctly', () => {
  const { privateKey, publicKey } = generateKeyPair('sm2-sm3');
  const sigs = Array.from({ length: 40 }, (_, i) => sign('sm2-sm3', privateKey, `m${i}`));
  sigs.forEach((sig, i) => assert.ok(verify('sm2-sm3', publicKey, `m${i}`, sig)));
  sigs.forEach((sig, i) => assert.ok(!verify('sm2-sm3', publicKey, `m${i + 1}`, sig)));
});

test('SM2: an off-curve public key is refused', () => {
  const spki = Buffer.from(spkiDer(generateKeyPair('sm2-sm3').publicKey));
  spki[spki.length - 1] = spki[spki.length - 1]! ^ 1;
  assert.throws(() => sm2PublicKey(spki.subarray(spki.length - 65)));
  assert.ok(!verify('sm2-sm3', spki, 'x', encodeSignature(1n, 1n)));
});

// ---------------------------------------------------------------------------------------------
// ECDSA P-256 with SHA-256 — RFC 6979 Appendix A.2.5 (key, and the deterministic signatures of
// "sample" and "test" with SHA-256). Checked here through node's OpenSSL (verify) and
// @noble/curves (which implements RFC 6979 and must reproduce k's r and s).

const P256_KAT = {
  x: 'C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721',
  Ux: '60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6',
  Uy: '7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299',
  sample: {
    k: 'A6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60',
    r: 'EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716',
    s: 'F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8',
  },
  test: {
    k: 'D16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0',
    r: 'F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367',
    s: '019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083',
  },
};

test('ECDSA P-256: RFC 6979 A.2.5 key and signatures verify through node, and noble reproduces them', () => {
  const b64u = (h: string) => Buffer.from(h, 'hex').toString('base64url');
  const privateKey = crypto.createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64u(P256_KAT.x), x: b64u(P256_KAT.Ux), y: b64u(P256_KAT.Uy) }, format: 'jwk' });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicPem = publicKeyOf(privatePem);
  assert.equal(algOfKey(publicPem), 'ecdsa-p256-sha256');
  assert.equal(hex(spkiPoint(spkiDer(publicPem))), '04' + P256_KAT.Ux + P256_KAT.Uy);
  for (const m of ['sample', 'test'] as const) {
    const v = P256_KAT[m];
    const der = encodeSignature(big(v.r), big(v.s));
    assert.ok(verify('ecdsa-p256-sha256', publicPem, m, der), `${m} verifies`);
    assert.ok(crypto.verify('sha256', Buffer.from(m), { key: publicPem, dsaEncoding: 'ieee-p1363' }, Buffer.from(v.r + v.s, 'hex')));
    assert.ok(!verify('ecdsa-p256-sha256', publicPem, m + '!', der));
    assert.ok(!verify('sm2-sm3', publicPem, m, der), 'an ECDSA key is not an SM2 key');
    const deterministic = p256.sign(Buffer.from(m), Buffer.from(P256_KAT.x, 'hex'), { lowS: false });
    assert.equal(hex(deterministic), v.r + v.s);
  }
});

test('ECDSA P-256: sign and verify round trip, DER out, signer interface', async () => {
  const { privateKey, publicKey } = generateKeyPair('ecdsa-p256-sha256');
  const sig = sign('ecdsa-p256-sha256', privateKey, 'hello');
  assert.doesNotThrow(() => decodeSignature(sig));
  assert.ok(verify('ecdsa-p256-sha256', publicKey, 'hello', sig));
  assert.ok(!verify('ecdsa-p256-sha256', publicKey, 'hellO', sig));
  assert.throws(() => sign('sm2-sm3', privateKey, 'hello'), /not sm2-sm3/);
  const signer = keySigner(privateKey);
  assert.equal(signer.alg, 'ecdsa-p256-sha256');
  assert.ok(verify('ecdsa-p256-sha256', signer.publicKey, 'x', await signer.sign(Buffer.from('x'))));
  const sm2Signer = keySigner(generateKeyPair('sm2-sm3').privateKey);
  assert.ok(verify('sm2-sm3', sm2Signer.publicKey, 'x', await sm2Signer.sign(Buffer.from('x'))));
});

test('keys are PEM PKCS#8 / SPKI with the named curve, for both families', () => {
  const ec = generateKeyPair('ecdsa-p256-sha256');
  const gm = generateKeyPair('sm2-sm3');
  for (const k of [ec, gm]) {
    assert.match(k.privateKey, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(k.publicKey, /^-----BEGIN PUBLIC KEY-----/);
    assert.equal(algOfKey(k.publicKey), k.alg);
    assert.equal(algOfKey(k.privateKey), k.alg);
    assert.equal(publicKeyOf(k.privateKey), k.publicKey);
  }
  // sm2p256v1 = 1.2.156.10197.1.301 in the SPKI
  assert.ok(spkiDer(gm.publicKey).toString('hex').includes('06082a811ccf5501822d'));
  assert.throws(() => algOfKey(crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string), /unsupported key/);
});

test('the SM2 example keys load through the PEM interface and sign verifiably', () => {
  const { privateKey, publicKey } = sm2KatKeys();
  assert.equal(hex(spkiPoint(spkiDer(publicKey))), '04' + SM2_KAT.xA + SM2_KAT.yA);
  const sig = sign('sm2-sm3', privateKey, SM2_KAT.message);
  assert.ok(verify('sm2-sm3', publicKey, SM2_KAT.message, sig));
  assert.ok(smV2.doVerifySignature(SM2_KAT.message, sig.toString('hex'), '04' + SM2_KAT.xA + SM2_KAT.yA, { der: true, hash: true }));
});
