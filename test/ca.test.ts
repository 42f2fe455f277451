// The municipal CA end to end: CAs created once, certificates of every kind in both families,
// chains that verify (and that OpenSSL accepts), forged / expired / revoked certificates refused,
// CRLs and status over HTTP, keys sealed at rest, every operation audited.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { sm2 as smV2 } from 'sm-crypto-v2';
import { loadConfig, type Config } from '../src/config/index.ts';
import { createDb, migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { startPlatform, type Platform } from '../src/main.ts';
import { UsageError } from '../src/module.ts';
import { MODULES } from '../src/modules.ts';
import type { Actor } from '../src/base/identity/policy.ts';
import { auditModule } from '../src/base/audit/index.ts';
import { orgCodeCheckChar, usccCheckChar } from '../src/base/codes/index.ts';
import { exportSm2Hex, generateKeyPair, keySigner, spkiPoint, verify, type Alg } from '../src/base/identity/crypto/index.ts';
import {
  authorities,
  buildCsr,
  caContextFor,
  caModule,
  certificateStatus,
  checkCaKeys,
  initCa,
  issueCertificate,
  legalPersonCertificates,
  loadMasterKey,
  MasterKeyError,
  parseCertificate,
  parseCrl,
  purposeKey,
  renewCertificate,
  revokeCertificate,
  signWithCertificateKey,
  verifyCertificate,
  verifySignatureWithCertificate,
  type CaContext,
  type IssuedCertificate,
  type SubjectInput,
} from '../src/base/identity/ca/index.ts';
import { caCommand } from '../src/base/identity/ca/cli.ts';
import { openKey } from '../src/base/identity/ca/keystore.ts';
import { buildCertificate, buildExtensions, buildName, toPem } from '../src/base/identity/ca/x509.ts';
import { createTestDatabase, stopTestServer, type TestDatabase } from './support/db.ts';

const ALGS: Alg[] = ['ecdsa-p256-sha256', 'sm2-sm3'];
const ORG = '12345678';
const USCC = (() => {
  const first17 = `91320500${ORG}${orgCodeCheckChar(ORG)}`;
  return first17 + usccCheckChar(first17);
})();
const BAD_USCC = USCC.slice(0, 17) + (USCC[17] === '0' ? '1' : '0');

const SUBJECTS: Record<string, SubjectInput> = {
  node: { kind: 'node', nodeId: 'node-320505' },
  system: { kind: 'system', systemId: 'hukou-query', name: '户籍查询系统', department: 'SZ-GA' },
  'legal-person': { kind: 'legal-person', uscc: USCC, name: '苏州测试科技有限公司' },
  staff: { kind: 'staff', name: '王小明', department: 'SZ-MZ', staffId: 'MZ-0042' },
};

const OPERATOR: Actor = { kind: 'staff', accountId: 'acct-ca-op', name: '证书管理员', department: 'SZ-DSJ', post: '科员', roles: [{ role: 'ca-operator', scope: null }] };
const ACTOR = { kind: 'staff' as const, id: 'acct-ca-op', department: 'SZ-DSJ' };

let database: TestDatabase;
let dataDir: string;
let config: Config;
let platform: Platform;
let db: Db;
let url: string;
let ca: CaContext;

before(async () => {
  database = await createTestDatabase();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-ca-'));
  config = loadConfig({ DATABASE_URL: database.url, GUSU_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', GUSU_DEMO: 'false' });
  const extra = [auditModule, caModule].filter((m) => !MODULES.some((x) => x.name === m.name));
  platform = await startPlatform(config, {
    modules: [...MODULES, ...extra],
    resolveActor: async (req) => (req.headers['x-test-actor'] === 'ca-operator' ? OPERATOR : { kind: 'anonymous' }),
  });
  db = platform.database.db;
  url = platform.listeners[0]!.url;
  ca = caContextFor(platform.ctx);
});

after(async () => {
  await platform?.close();
  await database?.drop();
  await stopTestServer();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function api(method: string, p: string, body?: unknown, operator = true): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url + p, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(operator ? { 'x-test-actor': 'ca-operator' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

const issued = new Map<string, IssuedCertificate>();
async function cert(alg: Alg, kind: string): Promise<IssuedCertificate> {
  const key = `${alg}/${kind}`;
  if (!issued.has(key)) issued.set(key, await issueCertificate(db, ca, ACTOR, { alg, subject: SUBJECTS[kind]! }));
  return issued.get(key)!;
}

async function auditCount(action: string, resourceId?: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from audit.entry where action = $1 ${resourceId ? 'and resource_id = $2' : ''}`,
    resourceId ? [action, resourceId] : [action],
  );
  return rows[0]!.n;
}

describe('creating the CAs', () => {
  test('start created a root and an issuing CA for each family, once, audited', async () => {
    const list = await authorities(db);
    assert.deepEqual(list.map((a) => a.id).sort(), ['ecdsa-p256-sha256/issuing', 'ecdsa-p256-sha256/root', 'sm2-sm3/issuing', 'sm2-sm3/root']);
    assert.equal(await auditCount('ca.init'), 4);
    // a second start, and two more at once, change nothing
    await caModule.start!(platform.ctx);
    const again = await Promise.all([initCa(db, ca), initCa(db, ca)]);
    assert.deepEqual(again.map((r) => r.created), [[], []]);
    assert.equal((await db.query('select 1 from ca.authority')).rowCount, 4);
    assert.equal(await auditCount('ca.init'), 4);
    for (const a of list) {
      assert.equal(a.cert.isCa, true);
      assert.equal(a.cert.alg, a.alg);
      if (a.role === 'root') assert.ok(a.cert.issuer.equals(a.cert.subject));
    }
  });

  test('two processes initialising a fresh database at once create each CA exactly once', async () => {
    const fresh = await createTestDatabase();
    const pools = [createDb(fresh.url, { max: 2 }), createDb(fresh.url, { max: 2 })];
    try {
      await migrate(pools[0]!, readMigrations([platformMigrations, { module: 'audit', dir: auditModule.migrations! }, { module: 'ca', dir: caModule.migrations! }]));
      const results = await Promise.all(pools.map((p) => initCa(p, ca)));
      assert.deepEqual(results.map((r) => r.created.length).sort(), [0, 4]);
      assert.equal((await pools[0]!.query('select 1 from ca.authority')).rowCount, 4);
      assert.equal((await pools[0]!.query(`select 1 from audit.entry where action = 'ca.init'`)).rowCount, 4);
    } finally {
      for (const p of pools) await p.close();
      await fresh.drop();
    }
  });
});

describe('CA keys at rest', () => {
  test('are sealed: no PEM or PKCS#8 in the database, and they do not open under another master key', async () => {
    const { rows } = await db.query<{ id: string; sealed_key: Buffer; master_key_id: string }>('select id, sealed_key, master_key_id from ca.authority');
    assert.equal(rows.length, 4);
    const other = loadMasterKey({ masterKey: crypto.randomBytes(32).toString('base64'), dataDir });
    for (const r of rows) {
      assert.ok(!r.sealed_key.toString('latin1').includes('PRIVATE KEY'));
      // a PKCS#8 EC key starts 30 81 87 02 01 00 30 13 06 07 2a 86 48 ce 3d 02 01
      assert.ok(!r.sealed_key.includes(Buffer.from('06072a8648ce3d0201', 'hex')));
      assert.equal(r.master_key_id, ca.master.id);
      assert.ok(openKey(ca.master, r.id, r.sealed_key, r.master_key_id).length > 100);
      assert.throws(() => openKey(other, r.id, r.sealed_key, r.master_key_id), MasterKeyError);
      assert.throws(() => openKey(other, r.id, r.sealed_key, null), MasterKeyError);
      // bound to its row: another authority's id does not open it
      assert.throws(() => openKey(ca.master, r.id === 'sm2-sm3/root' ? 'sm2-sm3/issuing' : 'sm2-sm3/root', r.sealed_key, null), MasterKeyError);
    }
    // a platform started with another master key stops at start-up, saying why
    await checkCaKeys(db, ca);
    await assert.rejects(checkCaKeys(db, { ...ca, master: other }), /was sealed under master key .* restore the original GUSU_MASTER_KEY or master.key/);
  });

  test('the master key file was created with mode 0600; a readable one is refused; GUSU_MASTER_KEY is checked', () => {
    const file = path.join(dataDir, 'master.key');
    assert.equal(ca.master.source, 'file');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(loadMasterKey({ dataDir }).id, ca.master.id, 'the same key on the next load');
    // each purpose gets its own derived key, never the master key itself
    assert.ok(purposeKey(ca.master, 'a').equals(purposeKey(loadMasterKey({ dataDir }), 'a')));
    assert.ok(!purposeKey(ca.master, 'a').equals(purposeKey(ca.master, 'b')));
    assert.ok(!purposeKey(ca.master, 'a').equals(ca.master.key));
    const loose = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-mk-'));
    try {
      const created = loadMasterKey({ dataDir: path.join(loose, 'nested') });
      assert.equal(fs.statSync(created.file!).mode & 0o777, 0o600);
      fs.chmodSync(created.file!, 0o644);
      assert.throws(() => loadMasterKey({ dataDir: path.join(loose, 'nested') }), /readable by others/);
    } finally {
      fs.rmSync(loose, { recursive: true, force: true });
    }
    const env = crypto.randomBytes(32).toString('base64');
    assert.equal(loadMasterKey({ masterKey: env, dataDir: '/nonexistent' }).source, 'env');
    assert.throws(() => loadMasterKey({ masterKey: crypto.randomBytes(16).toString('base64'), dataDir }), /exactly 32 random bytes/);
    assert.throws(() => loadMasterKey({ masterKey: 'not base64!', dataDir }), /GUSU_MASTER_KEY/);
  });
});

describe('issuing', () => {
  for (const alg of ALGS) {
    for (const kind of Object.keys(SUBJECTS)) {
      test(`${alg} ${kind}: issued, profiled, verifies with its subject`, async () => {
        const c = await cert(alg, kind);
        assert.match(c.serial, /^[4-7][0-9a-f]{31}$/);
        assert.equal(c.alg, alg);
        assert.equal(c.kind, kind);
        assert.match(c.privateKey!, /^-----BEGIN PRIVATE KEY-----/);
        const parsed = parseCertificate(c.certificate);
        assert.equal(parsed.alg, alg);
        assert.equal(parsed.isCa, false);
        const v = await verifyCertificate(db, c.certificate);
        assert.ok(v.ok, JSON.stringify(v));
        assert.equal(v.kind, kind);
        assert.equal(v.serial, c.serial);
        if (kind === 'legal-person') {
          assert.equal(v.subject.uscc, USCC);
          assert.match(c.subjectDn, new RegExp(`serialNumber=${USCC}`));
        }
        if (kind === 'staff') {
          assert.equal(v.subject.department, 'SZ-MZ');
          assert.match(c.subjectDn, /OU=SZ-MZ/);
        }
        if (kind === 'node') assert.match(c.subjectDn, /CN=node-320505/);
        assert.equal(await auditCount('ca.certificate.issue', c.serial), 1);
        // the key handed out signs challenges that verify under the certificate
        const { signature } = signWithCertificateKey(c.privateKey!, 'challenge');
        assert.ok((await verifySignatureWithCertificate(db, c.certificate, 'challenge', signature)).ok);
        const wrong = await verifySignatureWithCertificate(db, c.certificate, 'other challenge', signature);
        assert.equal(wrong.ok ? 'ok' : wrong.reason, 'bad-signature');
      });
    }
  }

  test('the ECDSA chain verifies in OpenSSL (node X509Certificate) and in @peculiar/x509', async () => {
    const leaf = await cert('ecdsa-p256-sha256', 'legal-person');
    const [issuingPem, rootPem] = leaf.chain as [string, string];
    const l = new X509Certificate(leaf.certificate);
    const i = new X509Certificate(issuingPem);
    const r = new X509Certificate(rootPem);
    assert.ok(l.verify(i.publicKey));
    assert.ok(i.verify(r.publicKey));
    assert.ok(r.verify(r.publicKey));
    assert.ok(l.checkIssued(i));
    assert.ok(i.checkIssued(r));
    assert.equal(l.ca, false);
    assert.equal(i.ca, true);
    assert.match(l.subject, new RegExp(USCC));
    assert.ok(!l.verify(r.publicKey));
    // the DER reader agrees with OpenSSL and @peculiar/x509 on what it reads
    const parsed = parseCertificate(leaf.certificate);
    assert.equal(parsed.serial, l.serialNumber.toLowerCase());
    assert.equal(parsed.notBefore.getTime(), new Date(l.validFrom).getTime());
    assert.equal(parsed.notAfter.getTime(), new Date(l.validTo).getTime());
    const pl = new x509.X509Certificate(leaf.certificate);
    assert.equal(parsed.subjectKeyId?.toString('hex'), pl.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    assert.equal(parsed.authorityKeyId?.toString('hex'), pl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId);
    assert.equal(parsed.authorityKeyId?.toString('hex'), parseCertificate(issuingPem).subjectKeyId?.toString('hex'));

    assert.ok(await pl.verify({ publicKey: await new x509.X509Certificate(issuingPem).publicKey.export() }));
    const eku = pl.getExtension(x509.ExtendedKeyUsageExtension);
    assert.ok(eku?.usages.includes('1.3.6.1.5.5.7.3.2'));
    const cdp = pl.getExtension(x509.CRLDistributionPointsExtension);
    assert.ok(cdp?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier?.endsWith('/ca/crl/ecdsa-p256-sha256.crl'));
  });

  test('the SM2 chain verifies, OpenSSL reads it, and sm-crypto-v2 verifies its signatures', async () => {
    const leaf = await cert('sm2-sm3', 'staff');
    const [issuingPem, rootPem] = leaf.chain as [string, string];
    const l = parseCertificate(leaf.certificate);
    const i = parseCertificate(issuingPem);
    const r = parseCertificate(rootPem);
    assert.ok(verify('sm2-sm3', i.spki, l.tbs, l.signature));
    assert.ok(verify('sm2-sm3', r.spki, i.tbs, i.signature));
    assert.ok(verify('sm2-sm3', r.spki, r.tbs, r.signature));
    assert.ok(!verify('sm2-sm3', r.spki, l.tbs, l.signature));
    // an independent SM2 implementation agrees (GM/T 0003 with the default user id)
    assert.ok(smV2.doVerifySignature(l.tbs, l.signature.toString('hex'), spkiPoint(i.spki).toString('hex'), { der: true, hash: true }));
    // OpenSSL parses the certificate and its SM2 key
    const n = new X509Certificate(leaf.certificate);
    assert.match(n.subject, /OU=SZ-MZ/);
    assert.match(n.subject, /CN=王小明/);
    assert.equal(n.issuer, new X509Certificate(issuingPem).subject);
    assert.equal(n.ca, false);
    // the signature algorithm is SM2-with-SM3 and the key is on sm2p256v1
    assert.ok(l.der.includes(Buffer.from('06082a811ccf5501837500', 'hex').subarray(0, 10)));
    assert.ok(l.spki.includes(Buffer.from('06082a811ccf5501822d', 'hex')));
  });

  test('a certificate with one flipped signature byte, or one changed byte of content, is refused as forged', async () => {
    for (const alg of ALGS) {
      const c = await cert(alg, 'node');
      const der = parseCertificate(c.certificate).der;
      const sigFlip = Buffer.from(der);
      sigFlip[sigFlip.length - 5] = sigFlip[sigFlip.length - 5]! ^ 0x01;
      const v1 = await verifyCertificate(db, toPem('CERTIFICATE', sigFlip));
      assert.equal(v1.ok ? 'ok' : v1.reason, 'forged', `${alg} signature byte`);
      const contentFlip = Buffer.from(der);
      const at = contentFlip.indexOf(Buffer.from('node-320505'));
      contentFlip[at + 5] = 'X'.charCodeAt(0);
      const v2 = await verifyCertificate(db, contentFlip);
      assert.equal(v2.ok ? 'ok' : v2.reason, 'forged', `${alg} content byte`);
    }
  });

  test('a look-alike signed by another key under the issuing CA’s name and key id is forged; a stranger’s is unknown-issuer', async () => {
    for (const alg of ALGS) {
      const issuing = (await authorities(db)).find((a) => a.alg === alg && a.role === 'issuing')!;
      const rogue = keySigner(generateKeyPair(alg).privateKey);
      const holder = keySigner(generateKeyPair(alg).privateKey);
      const template = {
        serial: crypto.randomBytes(16).fill(0x41, 0, 1),
        subject: buildName([['C', 'CN'], ['CN', 'mallory']]),
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 86_400_000),
        spki: holder.publicKey,
      };
      const lookalike = await buildCertificate(rogue, {
        ...template,
        issuer: issuing.cert.subject,
        extensions: buildExtensions({ ca: false, keyUsage: 1, subjectKeyId: Buffer.alloc(20, 1), authorityKeyId: issuing.keyId }),
      });
      const v = await verifyCertificate(db, lookalike);
      assert.equal(v.ok ? 'ok' : v.reason, 'forged');
      const stranger = await buildCertificate(rogue, { ...template, issuer: buildName([['CN', 'Some Other CA']]), extensions: buildExtensions({ ca: false, keyUsage: 1, subjectKeyId: Buffer.alloc(20, 1) }) });
      const s = await verifyCertificate(db, stranger);
      assert.equal(s.ok ? 'ok' : s.reason, 'unknown-issuer');
    }
    // dates from 2050 on are GeneralizedTime (RFC 5280 §4.1.2.5), read back exactly
    const rogue = keySigner(generateKeyPair('sm2-sm3').privateKey);
    const far = await buildCertificate(rogue, {
      serial: Buffer.from([0x01]),
      issuer: buildName([['CN', 'far']]),
      subject: buildName([['CN', 'far']]),
      notBefore: new Date('1999-12-31T23:59:59Z'),
      notAfter: new Date('2060-06-01T00:00:00Z'),
      spki: rogue.publicKey,
      extensions: buildExtensions({ ca: true, keyUsage: 32, subjectKeyId: Buffer.alloc(20, 7) }),
    });
    const pf = parseCertificate(far);
    assert.equal(pf.notBefore.toISOString(), '1999-12-31T23:59:59.000Z');
    assert.equal(pf.notAfter.toISOString(), '2060-06-01T00:00:00.000Z');
    assert.equal(pf.serial, '01');
    assert.equal(pf.isCa, true);
    assert.equal(new X509Certificate(far).validTo, 'Jun  1 00:00:00 2060 GMT');
    const garbage = await verifyCertificate(db, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    assert.equal(garbage.ok ? 'ok' : garbage.reason, 'malformed');
  });

  test('a certificate whose notAfter is past is refused as expired; before notBefore as not yet valid', async () => {
    for (const alg of ALGS) {
      const threeYearsAgo = new Date(Date.now() - 3 * 365 * 86_400_000);
      const old = await issueCertificate(db, ca, ACTOR, { alg, subject: SUBJECTS.staff!, validDays: 365 }, { now: threeYearsAgo });
      assert.ok(old.notAfter < new Date());
      const v = await verifyCertificate(db, old.certificate);
      assert.equal(v.ok ? 'ok' : v.reason, 'expired');
      assert.match(v.ok ? '' : v.detail, /^the certificate expired/);
      assert.equal((await certificateStatus(db, old.serial)).status, 'expired');
      // back then its issuing CA did not exist yet
      const then = await verifyCertificate(db, old.certificate, { at: new Date(threeYearsAgo.getTime() + 86_400_000) });
      assert.match(then.ok ? '' : then.detail, /issuing CA certificate is valid from/);
      const current = await cert(alg, 'staff');
      const early = await verifyCertificate(db, current.certificate, { at: new Date(current.notBefore.getTime() - 1000) });
      assert.equal(early.ok ? 'ok' : early.reason, 'not-yet-valid');
      const late = await verifyCertificate(db, current.certificate, { at: new Date(current.notAfter.getTime() + 1000) });
      assert.equal(late.ok ? 'ok' : late.reason, 'expired');
    }
  });

  test('requiring one family refuses the other as the wrong algorithm', async () => {
    const v = await verifyCertificate(db, (await cert('ecdsa-p256-sha256', 'node')).certificate, { alg: 'sm2-sm3' });
    assert.equal(v.ok ? 'ok' : v.reason, 'wrong-algorithm');
  });

  test('renewing gives a new serial for the same subject; the old one stays good', async () => {
    for (const alg of ALGS) {
      const old = await cert(alg, 'legal-person');
      const renewed = await renewCertificate(db, ca, ACTOR, old.serial, {});
      assert.notEqual(renewed.serial, old.serial);
      assert.equal(renewed.subjectDn, old.subjectDn);
      assert.deepEqual(renewed.subject, old.subject);
      assert.equal(renewed.renewedFrom, old.serial);
      assert.ok(renewed.privateKey, 'the CA generated the old key, so it generates a new one');
      assert.notEqual(parseCertificate(renewed.certificate).spki.toString('hex'), parseCertificate(old.certificate).spki.toString('hex'));
      assert.ok((await verifyCertificate(db, renewed.certificate)).ok);
      assert.ok((await verifyCertificate(db, old.certificate)).ok);
      assert.equal(await auditCount('ca.certificate.renew', renewed.serial), 1);
    }
  });

  test('a revoked certificate is refused as revoked, and is in the signed CRL with its reason', async () => {
    for (const alg of ALGS) {
      const c = await issueCertificate(db, ca, ACTOR, { alg, subject: SUBJECTS.system! });
      const before = new Date();
      const r = await revokeCertificate(db, ca, ACTOR, c.serial, 'key-compromise');
      assert.equal(r.serial, c.serial);
      const v = await verifyCertificate(db, c.certificate);
      assert.equal(v.ok ? 'ok' : v.reason, 'revoked');
      assert.ok((await verifyCertificate(db, c.certificate, { at: new Date(before.getTime() - 1000) })).ok, 'good before its revocation');
      assert.equal(await auditCount('ca.certificate.revoke', c.serial), 1);
      await assert.rejects(revokeCertificate(db, ca, ACTOR, c.serial, 'superseded'), /already revoked/);
      await assert.rejects(renewCertificate(db, ca, ACTOR, c.serial), /was revoked/);

      const res = await fetch(`${url}/ca/crl/${alg}.crl`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
      const crl = parseCrl(Buffer.from(await res.arrayBuffer()));
      const entry = crl.revoked.find((e) => e.serial === c.serial);
      assert.ok(entry, 'the serial is in the CRL');
      assert.equal(entry.reason, 'key-compromise');
      assert.equal(crl.alg, alg);
      assert.equal(crl.number, r.crlNumber);
      const issuing = (await authorities(db)).find((a) => a.alg === alg && a.role === 'issuing')!;
      assert.ok(crl.issuer.equals(issuing.cert.subject));
      assert.ok(verify(alg, issuing.cert.spki, crl.tbs, crl.signature), 'the CRL signature verifies under the issuing CA');
      assert.ok(!verify(alg, issuing.cert.spki, Buffer.concat([crl.tbs, Buffer.from([0])]), crl.signature));
      if (alg === 'ecdsa-p256-sha256') {
        const p = new x509.X509Crl(new Uint8Array(crl.der));
        assert.ok(await p.verify({ publicKey: await new x509.X509Certificate(issuing.pem).publicKey.export() }), '@peculiar/x509 verifies the ECDSA CRL');
        assert.ok(p.findRevoked(c.serial));
      }
      const pem = await fetch(`${url}/ca/crl/${alg}.crl.pem`);
      assert.match(await pem.text(), /^-----BEGIN X509 CRL-----/);
    }
  });
});

describe('refusals name the field', () => {
  test('a legal-person certificate with an invalid USCC, a staff one with an unknown department', async () => {
    const a = await api('POST', '/api/v1/ca/certificates', { alg: 'sm2-sm3', subject: { kind: 'legal-person', uscc: BAD_USCC, name: '某公司' } });
    assert.equal(a.status, 400);
    assert.equal(a.json.type, '/problems/validation');
    assert.match(a.json.detail, /uscc/);
    assert.equal(a.json.errors[0].pointer, '/subject/uscc');
    const b = await api('POST', '/api/v1/ca/certificates', { alg: 'ecdsa-p256-sha256', subject: { kind: 'staff', name: '李四', department: 'SZ-NOPE' } });
    assert.equal(b.status, 400);
    assert.equal(b.json.errors[0].pointer, '/subject/department');
    assert.match(b.json.detail, /SZ-NOPE/);
    const c = await api('POST', '/api/v1/ca/certificates', { alg: 'ecdsa-p256-sha256', subject: { kind: 'node', nodeId: 'node-999999' } });
    assert.equal(c.json.errors[0].pointer, '/subject/nodeId');
    const d = await api('POST', '/api/v1/ca/certificates', { alg: 'ecdsa-p256-sha256', subject: { kind: 'staff', name: '李四', department: 'SZ-MZ', uscc: USCC } });
    assert.equal(d.json.errors[0].pointer, '/subject/uscc', 'a USCC does not belong on a staff certificate');
    // refusals are audited too
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from audit.entry where action = 'ca.certificate.issue' and outcome = 'error'`);
    assert.ok(rows[0]!.n >= 4);
  });
});

describe('HTTP', () => {
  test('status: good, revoked, unknown; a garbage serial is 400', async () => {
    const c = await cert('sm2-sm3', 'node');
    const good = await api('GET', `/api/v1/ca/certificates/${c.serial.toUpperCase()}/status`, undefined, false);
    assert.equal(good.status, 200);
    assert.equal(good.json.status, 'good');
    assert.equal(good.json.serial, c.serial);
    assert.equal(good.json.alg, 'sm2-sm3');
    assert.equal(good.json.notAfter, c.notAfter.toISOString());
    const unknown = await api('GET', '/api/v1/ca/certificates/0123456789abcdef/status', undefined, false);
    assert.equal(unknown.status, 200);
    assert.equal(unknown.json.status, 'unknown');
    const garbage = await api('GET', '/api/v1/ca/certificates/not-a-serial!/status', undefined, false);
    assert.equal(garbage.status, 400);
    const tooLong = await api('GET', `/api/v1/ca/certificates/${'a'.repeat(41)}/status`, undefined, false);
    assert.equal(tooLong.status, 400);
    const r = await api('POST', `/api/v1/ca/certificates/${c.serial}/revoke`, { reason: 'cessation-of-operation' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const revoked = await api('GET', `/api/v1/ca/certificates/${c.serial}/status`, undefined, false);
    assert.equal(revoked.json.status, 'revoked');
    assert.equal(revoked.json.reason, 'cessation-of-operation');
    assert.ok(revoked.json.revokedAt);
    issued.delete('sm2-sm3/node');
  });

  test('the CA certificates are published as PEM and DER', async () => {
    for (const alg of ALGS) {
      for (const role of ['root', 'issuing'] as const) {
        const pem = await fetch(`${url}/ca/${alg}/${role}.pem`);
        assert.equal(pem.status, 200);
        const text = await pem.text();
        const a = (await authorities(db)).find((x) => x.alg === alg && x.role === role)!;
        assert.equal(text, a.pem);
        const der = await fetch(`${url}/ca/${alg}/${role}.crt`);
        assert.equal(der.headers.get('content-type'), 'application/pkix-cert');
        assert.ok(Buffer.from(await der.arrayBuffer()).equals(a.cert.der));
      }
    }
    assert.equal((await fetch(`${url}/ca/ecdsa-p256-sha256/other.pem`)).status, 404);
    assert.equal((await fetch(`${url}/ca/rsa/root.pem`)).status, 400);
    assert.equal((await fetch(`${url}/ca/crl/rsa.crl`)).status, 404);
  });

  test('issue from a PKCS#10 request in each family, renew and revoke over the internal API', async () => {
    for (const alg of ALGS) {
      const keys = generateKeyPair(alg);
      const csr = await buildCsr(keySigner(keys.privateKey), buildName([['CN', 'ignored']]));
      const res = await api('POST', '/api/v1/ca/certificates', { alg, subject: SUBJECTS['legal-person'], csr, validDays: 30 });
      assert.equal(res.status, 201, JSON.stringify(res.json));
      assert.equal(res.json.privateKey, undefined, 'the CA does not have the key');
      assert.equal(res.json.chain.length, 2);
      assert.ok(parseCertificate(res.json.certificate).spki.equals(keySigner(keys.privateKey).publicKey));
      assert.ok(new Date(res.json.notAfter).getTime() - Date.now() <= 30 * 86_400_000);
      const check = await legalPersonCertificates.checkCertificate(db, res.json.certificate);
      assert.deepEqual(check, { ok: true, uscc: USCC, name: '苏州测试科技有限公司', serial: res.json.serial });
      const sig = signWithCertificateKey(keys.privateKey, 'login challenge').signature;
      assert.ok(legalPersonCertificates.verifySignature(res.json.certificate, 'login challenge', sig));
      // renewing without a new request re-certifies the same key
      const renewed = await api('POST', `/api/v1/ca/certificates/${res.json.serial}/renew`, {});
      assert.equal(renewed.status, 201);
      assert.ok(parseCertificate(renewed.json.certificate).spki.equals(keySigner(keys.privateKey).publicKey));
      const detail = await api('GET', `/api/v1/ca/certificates/${renewed.json.serial}`);
      assert.equal(detail.json.renewedFrom, res.json.serial);
      assert.equal(detail.json.certificate, renewed.json.certificate);
      const list = await api('GET', `/api/v1/ca/certificates?kind=legal-person&uscc=${USCC}&alg=${alg}`);
      assert.ok(list.json.items.some((i: { serial: string }) => i.serial === renewed.json.serial));
      assert.equal((await api('POST', `/api/v1/ca/certificates/${renewed.json.serial}/revoke`, { reason: 'superseded' })).status, 200);
      assert.equal((await api('POST', `/api/v1/ca/certificates/${renewed.json.serial}/revoke`, { reason: 'superseded' })).status, 409);
      assert.equal((await api('POST', `/api/v1/ca/certificates/${'7'.repeat(32)}/revoke`, { reason: 'superseded' })).status, 404);
    }
  });

  test('a request whose self-signature fails, or of the other family, is refused', async () => {
    const keys = generateKeyPair('sm2-sm3');
    const csr = await buildCsr(keySigner(keys.privateKey), buildName([['CN', 'x']]));
    const wrongFamily = await api('POST', '/api/v1/ca/certificates', { alg: 'ecdsa-p256-sha256', subject: SUBJECTS.node, csr });
    assert.equal(wrongFamily.status, 400);
    assert.equal(wrongFamily.json.errors[0].pointer, '/csr');
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 3] = der[der.length - 3]! ^ 1;
    const broken = await api('POST', '/api/v1/ca/certificates', { alg: 'sm2-sm3', subject: SUBJECTS.node, csr: toPem('CERTIFICATE REQUEST', der) });
    assert.equal(broken.status, 400);
    assert.match(broken.json.detail, /proof of possession|does not verify|not a PEM/);
  });

  test('the internal API needs a CA operator', async () => {
    assert.equal((await api('POST', '/api/v1/ca/certificates', { alg: 'sm2-sm3', subject: SUBJECTS.node }, false)).status, 401);
    assert.equal((await api('GET', '/api/v1/ca/certificates', undefined, false)).status, 401);
  });
});

describe('gusu ca', () => {
  async function run(args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string | Uint8Array) => ((out += chunk.toString()), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => ((out += chunk.toString()), true)) as typeof process.stderr.write;
    try {
      return { code: await caCommand.run(args, config), out };
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
  }

  test('init, issue, status, revoke, list, crl', async () => {
    assert.match((await run(['init'])).out, /the CAs exist already/);
    const prefix = path.join(dataDir, 'cli-node');
    const issuedOut = await run(['issue', '--alg', 'sm2-sm3', '--kind', 'system', '--system-id', 'tax-gateway', '--name', '税务网关', '--department', 'SZ-SF', '--out', prefix]);
    assert.equal(issuedOut.code, 0);
    const serial = /certificate ([0-9a-f]+)/.exec(issuedOut.out)![1]!;
    assert.equal(fs.statSync(`${prefix}.key.pem`).mode & 0o777, 0o600);
    assert.ok((await verifyCertificate(db, fs.readFileSync(`${prefix}.crt.pem`, 'utf8'))).ok);
    assert.equal(exportSm2Hex(fs.readFileSync(`${prefix}.key.pem`, 'utf8')).publicKey.length, 130);
    assert.match((await run(['status', serial])).out, new RegExp(`${serial}: good`));
    assert.match((await run(['revoke', serial, '--reason', 'affiliation-changed'])).out, /revoked/);
    assert.match((await run(['list', '--status', 'revoked', '--alg', 'sm2-sm3'])).out, new RegExp(serial));
    const crlFile = path.join(dataDir, 'sm2.crl');
    await run(['crl', 'sm2-sm3', '--out', crlFile]);
    assert.ok(parseCrl(fs.readFileSync(crlFile)).revoked.some((e) => e.serial === serial));
    const { rows } = await db.query<{ actor_id: string }>(`select actor_id from audit.entry where action = 'ca.certificate.revoke' and resource_id = $1`, [serial]);
    assert.match(rows[0]!.actor_id, /^gusu-cli:/);
  });

  test('bad input is a usage error', async () => {
    await assert.rejects(run(['issue', '--alg', 'sm2-sm3', '--kind', 'legal-person', '--uscc', BAD_USCC, '--name', 'x', '--csr', '/nonexistent']), UsageError);
    const keys = generateKeyPair('sm2-sm3');
    const csrFile = path.join(dataDir, 'req.pem');
    fs.writeFileSync(csrFile, await buildCsr(keySigner(keys.privateKey), buildName([['CN', 'x']])));
    await assert.rejects(run(['issue', '--alg', 'sm2-sm3', '--kind', 'legal-person', '--uscc', BAD_USCC, '--name', 'x', '--csr', csrFile]), (err) => err instanceof UsageError && /uscc/.test(err.message));
    await assert.rejects(run(['issue', '--alg', 'rsa', '--kind', 'node']), UsageError);
    await assert.rejects(run(['issue', '--alg', 'sm2-sm3', '--kind', 'node', '--node-id', 'hub']), /--out PREFIX/);
    await assert.rejects(run(['revoke', 'abc', '--reason', 'because']), UsageError);
    await assert.rejects(run(['status', 'xyz']), UsageError);
    await assert.rejects(run(['fly']), UsageError);
  });
});
