// The municipal CA's operations: create the root and issuing CAs, issue, renew and revoke
// certificates, publish CRLs, and verify a certificate (chain, validity, revocation). Every
// operation that changes something is audited in the same transaction as the change.
import crypto from 'node:crypto';
import type { Config } from '../../../config/index.ts';
import type { CityProfile } from '../../../config/profile.ts';
import type { Db, Queryable } from '../../../db/index.ts';
import { HttpProblem, problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { appendAudit, type AuditActor } from '../../audit/index.ts';
import { ALGS, algOfSpki, generateKeyPair, isAlg, keySigner, sign, verify, type Alg, type Data, type Signer } from '../crypto/index.ts';
import { loadMasterKey, openKey, sealKey, type MasterKey } from './keystore.ts';
import { checkSubject, cityOrganisation, PROFILES, subjectAttributes, type Subject, type SubjectInput, type SubjectKind } from './profiles.ts';
import {
  buildCertificate,
  buildCrl,
  buildExtensions,
  buildName,
  fromPem,
  keyIdentifier,
  nameToString,
  parseCertificate,
  parseCsr,
  toPem,
  verifySignedBy,
  REVOCATION_REASONS,
  type ParsedCertificate,
  type RevocationReason,
} from './x509.ts';
import * as asn1 from '@peculiar/asn1-x509';

export interface CaContext {
  master: MasterKey;
  profile: CityProfile;
  /** scheme://host[:port] the CRL distribution points in certificates name */
  publicUrl: string;
}

/** what an operation records about its request in the audit log */
export interface OpMeta {
  requestId?: string;
  ip?: string;
}

export const CA_SYSTEM_ACTOR: AuditActor = { kind: 'system', id: 'gusu-ca' };

export function caContext(config: Config, profile: CityProfile): CaContext {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    master: loadMasterKey({ masterKey: config.masterKey, dataDir: config.dataDir }),
    profile,
    publicUrl: (config.publicUrl ?? `http://${host}:${config.publicPort ?? config.port}`).replace(/\/+$/, ''),
  };
}

const contexts = new WeakMap<ModuleContext, CaContext>();
export function caContextFor(ctx: ModuleContext): CaContext {
  let c = contexts.get(ctx);
  if (!c) contexts.set(ctx, (c = caContext(ctx.config, ctx.profile)));
  return c;
}

/** Runs fn in a transaction: the pool's own if given a Db, else the caller's (a client in one). */
async function inTx<T>(q: Queryable | Db, fn: (c: Queryable) => Promise<T>): Promise<T> {
  return 'tx' in q && typeof q.tx === 'function' ? q.tx(fn) : fn(q);
}

// ---------------------------------------------------------------------------------------------
// Authorities

interface AuthorityRow {
  id: string;
  alg: Alg;
  role: 'root' | 'issuing';
  parent_id: string | null;
  subject_dn: string;
  serial: string;
  key_id: string;
  certificate_pem: string;
  key_store: 'db' | 'pkcs11';
  sealed_key: Buffer | null;
  master_key_id: string | null;
  key_uri: string | null;
}

export interface Authority {
  id: string;
  alg: Alg;
  role: 'root' | 'issuing';
  parentId: string | null;
  subjectDn: string;
  serial: string;
  keyId: Buffer;
  pem: string;
  cert: ParsedCertificate;
  row: AuthorityRow;
}

const AUTHORITY_TTL_MS = 60_000;
let authorityGeneration = 0;
const authorityCache = new WeakMap<object, { at: number; generation: number; list: Authority[] }>();

async function loadAuthorities(q: Queryable): Promise<Authority[]> {
  const hit = authorityCache.get(q);
  if (hit && hit.generation === authorityGeneration && Date.now() - hit.at < AUTHORITY_TTL_MS) return hit.list;
  const { rows } = await q.query<AuthorityRow>('select * from ca.authority order by id');
  const list = rows.map((r) => ({
    id: r.id,
    alg: r.alg,
    role: r.role,
    parentId: r.parent_id,
    subjectDn: r.subject_dn,
    serial: r.serial,
    keyId: Buffer.from(r.key_id, 'hex'),
    pem: r.certificate_pem,
    cert: parseCertificate(r.certificate_pem),
    row: r,
  }));
  authorityCache.set(q, { at: Date.now(), generation: authorityGeneration, list });
  return list;
}

export async function authorities(q: Queryable): Promise<Authority[]> {
  return loadAuthorities(q);
}

async function authority(q: Queryable, alg: Alg, role: 'root' | 'issuing'): Promise<Authority> {
  const a = (await loadAuthorities(q)).find((x) => x.alg === alg && x.role === role);
  if (!a) throw problem('unavailable', `the ${alg} ${role} CA does not exist yet: start the platform or run \`gusu ca init\``);
  return a;
}

const signers = new Map<string, Signer>();

/** The signer of a CA's key: the sealed key opened in process, or (later) an HSM session. */
function signerFor(ca: CaContext, row: AuthorityRow): Signer {
  if (row.key_store === 'pkcs11') {
    throw new Error(`CA ${row.id} keeps its key in an HSM (${row.key_uri}), and this build has no PKCS#11 signer (docs/decisions/0006-crypto-and-ca.md)`);
  }
  const cacheKey = `${row.id}:${row.serial}:${ca.master.id}`;
  let s = signers.get(cacheKey);
  if (!s) {
    const pkcs8 = openKey(ca.master, row.id, row.sealed_key!, row.master_key_id);
    s = keySigner(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    signers.set(cacheKey, s);
  }
  return s;
}

function newSerial(): Buffer {
  // 126 random bits; the top byte 0x40-0x7f keeps it positive, 16 bytes long, without a leading zero
  const b = crypto.randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
/** certificates start a little in the past, for relying parties whose clocks are slightly behind */
const BACKDATE_MS = 5 * MINUTE;

function addYears(d: Date, years: number): Date {
  const out = new Date(d);
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
}

const ALG_LABEL: Record<Alg, string> = { 'ecdsa-p256-sha256': 'ECC', 'sm2-sm3': 'SM2' };

function authorityName(profile: CityProfile, alg: Alg, role: 'root' | 'issuing'): Buffer {
  const city = profile.city.name;
  return buildName([
    ['C', 'CN'],
    ['ST', profile.city.province.name],
    ['L', city],
    ['O', cityOrganisation(profile)],
    ['OU', `${city}政务电子认证服务`],
    ['CN', `${city}政务${role === 'root' ? '根' : '签发'}CA ${ALG_LABEL[alg]}`],
  ]);
}

function pkcs8Der(pem: string): Buffer {
  return crypto.createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
}

async function createAuthority(c: Queryable, ca: CaContext, alg: Alg, role: 'root' | 'issuing', parent: { row: AuthorityRow; keyId: Buffer; subject: Buffer } | null, now: Date): Promise<AuthorityRow> {
  const id = `${alg}/${role}`;
  const keys = generateKeyPair(alg);
  const own = keySigner(keys.privateKey);
  const subject = authorityName(ca.profile, alg, role);
  const keyId = keyIdentifier(own.publicKey);
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const serial = newSerial();
  const der = await buildCertificate(parent ? signerFor(ca, parent.row) : own, {
    serial,
    issuer: parent ? parent.subject : subject,
    subject,
    notBefore,
    notAfter: addYears(now, role === 'root' ? 20 : 10),
    spki: own.publicKey,
    extensions: buildExtensions({
      ca: true,
      pathLength: role === 'root' ? undefined : 0,
      keyUsage: asn1.KeyUsageFlags.keyCertSign | asn1.KeyUsageFlags.cRLSign,
      subjectKeyId: keyId,
      authorityKeyId: parent?.keyId,
    }),
  });
  const cert = parseCertificate(der);
  const { rows } = await c.query<AuthorityRow>(
    `insert into ca.authority (id, alg, role, parent_id, subject_dn, serial, key_id, certificate_pem, not_before, not_after, key_store, sealed_key, master_key_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'db', $11, $12) returning *`,
    [id, alg, role, parent?.row.id ?? null, nameToString(subject), cert.serial, keyId.toString('hex'), toPem('CERTIFICATE', der), cert.notBefore, cert.notAfter, sealKey(ca.master, id, pkcs8Der(keys.privateKey)), ca.master.id],
  );
  return rows[0]!;
}

const INIT_LOCK = 7_110_601; // the advisory lock under which CA keys are created (any constant not used elsewhere)

export interface InitResult {
  created: string[];
}

/**
 * Creates whatever of the root and issuing CAs (both families) does not exist yet, and their first
 * CRLs. Idempotent; concurrent callers serialise on an advisory lock and the later ones find the
 * work done.
 */
export async function initCa(db: Queryable | Db, ca: CaContext, actor: AuditActor = CA_SYSTEM_ACTOR, meta: OpMeta = {}): Promise<InitResult> {
  const now = new Date();
  const created = await inTx(db, async (c) => {
    await c.query('select pg_advisory_xact_lock($1)', [INIT_LOCK]);
    const { rows } = await c.query<AuthorityRow>('select * from ca.authority');
    const made: string[] = [];
    for (const alg of ALGS) {
      let root = rows.find((r) => r.alg === alg && r.role === 'root');
      if (!root) {
        root = await createAuthority(c, ca, alg, 'root', null, now);
        made.push(root.id);
      }
      if (!rows.some((r) => r.alg === alg && r.role === 'issuing')) {
        const rootCert = parseCertificate(root.certificate_pem);
        const issuing = await createAuthority(c, ca, alg, 'issuing', { row: root, keyId: Buffer.from(root.key_id, 'hex'), subject: rootCert.subject }, now);
        made.push(issuing.id);
        await publishCrl(c, ca, issuing, now);
      }
    }
    for (const id of made) {
      const { rows: r } = await c.query<{ serial: string; subject_dn: string; not_after: Date }>('select serial, subject_dn, not_after from ca.authority where id = $1', [id]);
      await appendAudit(c, {
        actor,
        action: 'ca.init',
        resource: { type: 'ca.authority', id },
        outcome: 'ok',
        ...meta,
        details: { serial: r[0]!.serial, subjectDn: r[0]!.subject_dn, notAfter: r[0]!.not_after.toISOString(), keyStore: 'db', masterKeyId: ca.master.id },
      });
    }
    return made;
  });
  if (created.length) authorityGeneration++;
  return { created };
}

/**
 * Throws MasterKeyError unless every CA key kept in the database opens under the configured master
 * key: a lost or swapped master key stops start-up with the reason, not the first issuance with a 500.
 */
export async function checkCaKeys(q: Queryable, ca: CaContext): Promise<void> {
  const { rows } = await q.query<AuthorityRow>(`select * from ca.authority where key_store = 'db' order by id`);
  for (const r of rows) openKey(ca.master, r.id, r.sealed_key!, r.master_key_id);
}

// ---------------------------------------------------------------------------------------------
// Issuing

export interface IssueRequest {
  alg: Alg;
  subject: SubjectInput;
  /** PEM PKCS#10 request for the subject's own key; absent: the CA generates the key pair (demo) */
  csr?: string;
  /** days of validity; default and maximum depend on the subject kind */
  validDays?: number;
}

export interface IssuedCertificate {
  serial: string;
  alg: Alg;
  kind: SubjectKind;
  subject: Subject;
  subjectDn: string;
  notBefore: Date;
  notAfter: Date;
  /** PEM */
  certificate: string;
  /** PEM: issuing CA, then root */
  chain: string[];
  /** PKCS#8 PEM, only when the CA generated the key: shown once, never stored */
  privateKey?: string;
  renewedFrom?: string;
}

function invalid(pointer: string, message: string): HttpProblem {
  return problem('validation', `${pointer.slice(1).replace(/\//g, '.')}: ${message}`, { errors: [{ in: 'body', pointer, message }] });
}

function validDays(kind: SubjectKind, days: number | undefined): number {
  const p = PROFILES[kind];
  if (days === undefined) return p.defaultDays;
  if (!Number.isInteger(days) || days < 1 || days > p.maxDays) throw invalid('/validDays', `must be a whole number of days from 1 to ${p.maxDays} for a ${kind} certificate`);
  return days;
}

function keyFromCsr(alg: Alg, csrPem: string): Buffer {
  let csr;
  try {
    csr = parseCsr(csrPem);
  } catch (err) {
    throw invalid('/csr', `not a PEM PKCS#10 certification request (${(err as Error).message})`);
  }
  let keyAlg: Alg;
  try {
    keyAlg = algOfSpki(csr.spki);
  } catch (err) {
    throw invalid('/csr', (err as Error).message);
  }
  if (keyAlg !== alg || csr.alg !== alg) throw invalid('/csr', `is a ${csr.alg ?? keyAlg} request, not ${alg}`);
  if (!csr.signatureValid) throw invalid('/csr', 'its signature does not verify under its own key (no proof of possession)');
  return csr.spki;
}

interface CertificateRow {
  serial: string;
  issuer_id: string;
  alg: Alg;
  kind: SubjectKind;
  subject_dn: string;
  subject: Subject;
  not_before: Date;
  not_after: Date;
  status: 'good' | 'revoked';
  revoked_at: Date | null;
  reason: RevocationReason | null;
  renewed_from: string | null;
  key_generated: boolean;
  public_key: Buffer;
  pem: string;
  issued_at: Date;
}

async function issue(
  c: Queryable,
  ca: CaContext,
  alg: Alg,
  subject: Subject,
  spki: Buffer,
  days: number,
  extra: { keyGenerated: boolean; renewedFrom?: string; now: Date },
): Promise<{ row: CertificateRow; chain: string[] }> {
  const issuing = await authority(c, alg, 'issuing');
  const root = await authority(c, alg, 'root');
  const now = extra.now;
  const notAfter = new Date(Math.min(now.getTime() + days * DAY, issuing.cert.notAfter.getTime()));
  const subjectDer = buildName(subjectAttributes(ca.profile, subject));
  const profile = PROFILES[subject.kind];
  const der = await buildCertificate(signerFor(ca, issuing.row), {
    serial: newSerial(),
    issuer: issuing.cert.subject,
    subject: subjectDer,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    spki,
    extensions: buildExtensions({
      ca: false,
      keyUsage: profile.keyUsage,
      extendedKeyUsage: profile.extendedKeyUsage,
      subjectKeyId: keyIdentifier(spki),
      authorityKeyId: issuing.keyId,
      crlUrl: `${ca.publicUrl}/ca/crl/${alg}.crl`,
    }),
  });
  const cert = parseCertificate(der);
  const { rows } = await c.query<CertificateRow>(
    `insert into ca.certificate (serial, issuer_id, alg, kind, subject_dn, subject, not_before, not_after, renewed_from, key_generated, public_key, pem, issued_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
    [cert.serial, issuing.id, alg, subject.kind, nameToString(subjectDer), JSON.stringify(subject), cert.notBefore, cert.notAfter, extra.renewedFrom ?? null, extra.keyGenerated, spki, toPem('CERTIFICATE', der), now],
  );
  return { row: rows[0]!, chain: [issuing.pem, root.pem] };
}

function issued(row: CertificateRow, chain: string[], privateKey?: string): IssuedCertificate {
  return {
    serial: row.serial,
    alg: row.alg,
    kind: row.kind,
    subject: row.subject,
    subjectDn: row.subject_dn,
    notBefore: row.not_before,
    notAfter: row.not_after,
    certificate: row.pem,
    chain,
    ...(privateKey ? { privateKey } : {}),
    ...(row.renewed_from ? { renewedFrom: row.renewed_from } : {}),
  };
}

function auditDetails(row: CertificateRow): Record<string, unknown> {
  return {
    alg: row.alg,
    kind: row.kind,
    subjectDn: row.subject_dn,
    ...(row.subject.uscc ? { uscc: row.subject.uscc } : {}),
    ...(row.subject.department ? { department: row.subject.department } : {}),
    notAfter: row.not_after.toISOString(),
    keyGenerated: row.key_generated,
  };
}

/** Audits a refused request (outside the refused transaction), then rethrows. */
async function auditRefusal(q: Queryable | Db, actor: AuditActor, action: string, resourceId: string, meta: OpMeta, err: unknown): Promise<never> {
  if (err instanceof HttpProblem && err.status < 500) {
    await appendAudit(q, {
      actor,
      action,
      resource: { type: 'certificate', id: resourceId },
      outcome: err.problem === 'forbidden' || err.problem === 'unauthorized' ? 'denied' : 'error',
      ...meta,
      details: { problem: err.problem, detail: err.message },
    }).catch(() => undefined);
  }
  throw err;
}

/**
 * Issues a certificate for a validated subject. Throws a validation problem naming the field for
 * a bad USCC, unknown department or node, bad CSR or validity.
 */
export async function issueCertificate(q: Queryable | Db, ca: CaContext, actor: AuditActor, req: IssueRequest, opts: OpMeta & { now?: Date } = {}): Promise<IssuedCertificate> {
  const { now: at, ...meta } = opts;
  try {
    if (!isAlg(req.alg)) throw invalid('/alg', `must be one of ${ALGS.join(', ')}`);
    const subject = checkSubject(ca.profile, req.subject);
    const days = validDays(subject.kind, req.validDays);
    let spki: Buffer;
    let privateKey: string | undefined;
    if (req.csr !== undefined) spki = keyFromCsr(req.alg, req.csr);
    else {
      const keys = generateKeyPair(req.alg);
      privateKey = keys.privateKey;
      spki = keySigner(keys.privateKey).publicKey;
    }
    return await inTx(q, async (c) => {
      const { row, chain } = await issue(c, ca, req.alg, subject, spki, days, { keyGenerated: privateKey !== undefined, now: at ?? new Date() });
      await appendAudit(c, { actor, action: 'ca.certificate.issue', resource: { type: 'certificate', id: row.serial }, outcome: 'ok', ...meta, details: auditDetails(row) });
      return issued(row, chain, privateKey);
    });
  } catch (err) {
    return auditRefusal(q, actor, 'ca.certificate.issue', '-', meta, err);
  }
}

export interface RenewRequest {
  csr?: string;
  validDays?: number;
}

/**
 * A new certificate (new serial) for the same subject. The key: the CSR's if one is given; a new
 * generated pair if the CA generated the old one; else the same public key again. The old
 * certificate stays valid until it expires or is revoked.
 */
export async function renewCertificate(q: Queryable | Db, ca: CaContext, actor: AuditActor, serial: string, req: RenewRequest = {}, opts: OpMeta & { now?: Date } = {}): Promise<IssuedCertificate> {
  const { now: at, ...meta } = opts;
  const id = normaliseSerial(serial);
  try {
    return await inTx(q, async (c) => {
      const { rows } = await c.query<CertificateRow>('select * from ca.certificate where serial = $1 for update', [id]);
      const old = rows[0];
      if (!old) throw problem('not-found', `no certificate with serial ${id}`);
      if (old.status === 'revoked') throw problem('conflict', `certificate ${id} was revoked (${old.reason}): issue a new one instead of renewing it`);
      // the subject must still be valid today (a department may have been merged away)
      const { kind, ...rest } = old.subject;
      const subject = checkSubject(ca.profile, { kind, ...rest });
      const days = validDays(subject.kind, req.validDays);
      let spki = old.public_key;
      let privateKey: string | undefined;
      if (req.csr !== undefined) spki = keyFromCsr(old.alg, req.csr);
      else if (old.key_generated) {
        const keys = generateKeyPair(old.alg);
        privateKey = keys.privateKey;
        spki = keySigner(keys.privateKey).publicKey;
      }
      const { row, chain } = await issue(c, ca, old.alg, subject, spki, days, { keyGenerated: privateKey !== undefined || (req.csr === undefined && old.key_generated), renewedFrom: old.serial, now: at ?? new Date() });
      await appendAudit(c, { actor, action: 'ca.certificate.renew', resource: { type: 'certificate', id: row.serial }, outcome: 'ok', ...meta, details: { ...auditDetails(row), renewedFrom: old.serial } });
      return issued(row, chain, privateKey);
    });
  } catch (err) {
    return auditRefusal(q, actor, 'ca.certificate.renew', id, meta, err);
  }
}

export interface Revocation {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
  crlNumber: number;
}

export async function revokeCertificate(q: Queryable | Db, ca: CaContext, actor: AuditActor, serial: string, reason: RevocationReason, opts: OpMeta & { now?: Date } = {}): Promise<Revocation> {
  const { now: at, ...meta } = opts;
  const id = normaliseSerial(serial);
  try {
    if (!REVOCATION_REASONS.includes(reason)) throw invalid('/reason', `must be one of ${REVOCATION_REASONS.join(', ')}`);
    return await inTx(q, async (c) => {
      const now = at ?? new Date();
      const { rows } = await c.query<CertificateRow>(
        `update ca.certificate set status = 'revoked', revoked_at = $2, reason = $3 where serial = $1 and status = 'good' returning *`,
        [id, now, reason],
      );
      const row = rows[0];
      if (!row) {
        const { rows: existing } = await c.query<CertificateRow>('select * from ca.certificate where serial = $1', [id]);
        if (!existing[0]) throw problem('not-found', `no certificate with serial ${id}`);
        throw problem('conflict', `certificate ${id} was already revoked on ${existing[0].revoked_at!.toISOString()} (${existing[0].reason})`);
      }
      const issuing = (await loadAuthorities(c)).find((a) => a.id === row.issuer_id)!;
      const crl = await publishCrl(c, ca, issuing.row, now);
      await appendAudit(c, {
        actor,
        action: 'ca.certificate.revoke',
        resource: { type: 'certificate', id: row.serial },
        outcome: 'ok',
        ...meta,
        details: { ...auditDetails(row), reason, crlNumber: crl.number },
      });
      return { serial: row.serial, revokedAt: row.revoked_at!, reason, crlNumber: crl.number };
    });
  } catch (err) {
    return auditRefusal(q, actor, 'ca.certificate.revoke', id, meta, err);
  }
}

export function normaliseSerial(serial: string): string {
  const s = serial.trim().toLowerCase().replace(/^(0x)?0*/, '');
  if (!/^[0-9a-f]{1,40}$/.test(s)) throw problem('bad-request', `a serial number is 1 to 40 hexadecimal digits, got ${JSON.stringify(serial.slice(0, 50))}`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// CRLs

const CRL_PERIOD_MS = DAY;
/** a GET republishes when less than this is left before nextUpdate */
const CRL_REFRESH_MS = CRL_PERIOD_MS / 2;

interface CrlRow {
  issuer_id: string;
  crl_number: number;
  this_update: Date;
  next_update: Date;
  der: Buffer;
}

async function publishCrl(c: Queryable, ca: CaContext, issuing: AuthorityRow, now: Date): Promise<{ number: number; der: Buffer }> {
  await c.query(`insert into ca.crl (issuer_id, crl_number, this_update, next_update, der) values ($1, 1, $2, $2, '') on conflict do nothing`, [issuing.id, now]);
  const { rows } = await c.query<{ crl_number: number; der: Buffer }>('select crl_number, der from ca.crl where issuer_id = $1 for update', [issuing.id]);
  const number = rows[0]!.der.length ? rows[0]!.crl_number + 1 : 1;
  const { rows: revoked } = await c.query<{ serial: string; revoked_at: Date; reason: RevocationReason }>(
    `select serial, revoked_at, reason from ca.certificate where issuer_id = $1 and status = 'revoked' and not_after > $2 order by revoked_at, serial`,
    [issuing.id, now],
  );
  const cert = parseCertificate(issuing.certificate_pem);
  const der = await buildCrl(signerFor(ca, issuing), {
    issuer: cert.subject,
    authorityKeyId: Buffer.from(issuing.key_id, 'hex'),
    number,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + CRL_PERIOD_MS),
    revoked: revoked.map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.reason })),
  });
  await c.query('update ca.crl set crl_number = $2, this_update = $3, next_update = $4, der = $5 where issuer_id = $1', [issuing.id, number, now, new Date(now.getTime() + CRL_PERIOD_MS), der]);
  return { number, der };
}

export interface Crl {
  alg: Alg;
  der: Buffer;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** The issuing CA's current CRL, republished first if it is more than half-way to nextUpdate. */
export async function currentCrl(db: Queryable | Db, ca: CaContext, alg: Alg): Promise<Crl> {
  const issuing = await authority(db, alg, 'issuing');
  const read = async (c: Queryable, lock: boolean) =>
    (await c.query<CrlRow>(`select * from ca.crl where issuer_id = $1${lock ? ' for update' : ''}`, [issuing.id])).rows[0];
  let row = await read(db, false);
  if (!row || !row.der.length || row.next_update.getTime() - Date.now() < CRL_REFRESH_MS) {
    row = await inTx(db, async (c) => {
      const locked = await read(c, true);
      if (locked && locked.der.length && locked.next_update.getTime() - Date.now() >= CRL_REFRESH_MS) return locked;
      await publishCrl(c, ca, issuing.row, new Date());
      return (await read(c, false))!;
    });
  }
  return { alg, der: row.der, number: row.crl_number, thisUpdate: row.this_update, nextUpdate: row.next_update };
}

// ---------------------------------------------------------------------------------------------
// Status and verification

export interface CertificateStatus {
  serial: string;
  status: 'good' | 'revoked' | 'expired' | 'unknown';
  alg?: Alg;
  kind?: SubjectKind;
  issuer?: string;
  subjectDn?: string;
  notBefore?: string;
  notAfter?: string;
  revokedAt?: string;
  reason?: RevocationReason;
  renewedFrom?: string;
  /** when this answer was produced */
  producedAt: string;
}

/** OCSP-like status of one certificate by serial (normalised: lower-case, no leading zeros). */
export async function certificateStatus(q: Queryable, serial: string, at: Date = new Date()): Promise<CertificateStatus> {
  const id = normaliseSerial(serial);
  const { rows } = await q.query<CertificateRow>('select * from ca.certificate where serial = $1', [id]);
  const r = rows[0];
  const producedAt = at.toISOString();
  if (!r) return { serial: id, status: 'unknown', producedAt };
  const status = r.status === 'revoked' ? 'revoked' : r.not_after < at ? 'expired' : 'good';
  return {
    serial: r.serial,
    status,
    alg: r.alg,
    kind: r.kind,
    issuer: r.issuer_id,
    subjectDn: r.subject_dn,
    notBefore: r.not_before.toISOString(),
    notAfter: r.not_after.toISOString(),
    ...(r.revoked_at ? { revokedAt: r.revoked_at.toISOString(), reason: r.reason! } : {}),
    ...(r.renewed_from ? { renewedFrom: r.renewed_from } : {}),
    producedAt,
  };
}

export type VerifyFailureReason = 'malformed' | 'wrong-algorithm' | 'unknown-issuer' | 'forged' | 'not-yet-valid' | 'expired' | 'revoked' | 'unknown';

export type CertificateVerification =
  | {
      ok: true;
      serial: string;
      alg: Alg;
      kind: SubjectKind;
      subject: Subject;
      subjectDn: string;
      issuer: string;
      notBefore: Date;
      notAfter: Date;
      /** the certificate's public key, SPKI DER */
      publicKey: Buffer;
    }
  | { ok: false; reason: VerifyFailureReason; detail: string; serial?: string; revokedAt?: Date; revocationReason?: RevocationReason };

/**
 * Verifies an end-entity certificate (PEM or DER) against this CA at `at` (default now): the
 * chain leaf → issuing → root, each signature, each validity period, and revocation in the
 * CA's own records. `alg` additionally requires one family.
 */
export async function verifyCertificate(q: Queryable, certificate: string | Uint8Array, opts: { at?: Date; alg?: Alg } = {}): Promise<CertificateVerification> {
  const at = opts.at ?? new Date();
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(certificate);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `not an X.509 certificate: ${(err as Error).message}` };
  }
  const serial = cert.serial;
  const fail = (reason: VerifyFailureReason, detail: string) => ({ ok: false as const, reason, detail, serial });
  if (!cert.alg) return fail('wrong-algorithm', `signature algorithm ${cert.signatureOid} is neither ECDSA P-256 with SHA-256 nor SM2 with SM3`);
  if (opts.alg && cert.alg !== opts.alg) return fail('wrong-algorithm', `a ${cert.alg} certificate where ${opts.alg} is required`);
  let keyAlg: Alg;
  try {
    keyAlg = algOfSpki(cert.spki);
  } catch (err) {
    return fail('wrong-algorithm', (err as Error).message);
  }
  if (keyAlg !== cert.alg) return fail('wrong-algorithm', `a ${keyAlg} key in a ${cert.alg} certificate`);

  const all = await loadAuthorities(q);
  const issuer = all.find((a) => a.role === 'issuing' && a.cert.subject.equals(cert.issuer) && (!cert.authorityKeyId || cert.authorityKeyId.equals(a.keyId)));
  if (!issuer) return fail('unknown-issuer', `not issued by this CA (issuer ${safeName(cert.issuer)})`);
  if (issuer.alg !== cert.alg) return fail('wrong-algorithm', `a ${cert.alg} signature from the ${issuer.alg} issuing CA`);
  if (!verifySignedBy(cert, issuer.cert.spki)) return fail('forged', 'the signature does not verify under the issuing CA key');
  const root = all.find((a) => a.id === issuer.parentId);
  if (!root || !caLinkVerified(issuer, root)) return fail('forged', 'the issuing CA certificate does not verify under the root');

  for (const [c, what] of [
    [cert, 'the certificate'],
    [issuer.cert, 'the issuing CA certificate'],
    [root.cert, 'the root CA certificate'],
  ] as const) {
    if (at < c.notBefore) return fail('not-yet-valid', `${what} is valid from ${c.notBefore.toISOString()}`);
    if (at > c.notAfter) return fail('expired', `${what} expired on ${c.notAfter.toISOString()}`);
  }

  const { rows } = await q.query<CertificateRow>('select * from ca.certificate where serial = $1 and issuer_id = $2', [serial, issuer.id]);
  const row = rows[0];
  if (!row) return fail('unknown', `the CA has no record of serial ${serial}`);
  if (!fromPem(row.pem, 'CERTIFICATE').equals(cert.der)) return fail('forged', `serial ${serial} is recorded with different content`);
  if (row.status === 'revoked' && row.revoked_at! <= at) {
    return { ...fail('revoked', `revoked on ${row.revoked_at!.toISOString()} (${row.reason})`), revokedAt: row.revoked_at!, revocationReason: row.reason! };
  }
  return {
    ok: true,
    serial,
    alg: cert.alg,
    kind: row.kind,
    subject: row.subject,
    subjectDn: row.subject_dn,
    issuer: issuer.id,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    publicKey: cert.spki,
  };
}

// The issuing → root link is immutable: checked once per loaded pair of CA certificates
const verifiedLinks = new WeakMap<Authority, Authority>();
function caLinkVerified(issuing: Authority, root: Authority): boolean {
  if (verifiedLinks.get(issuing) === root) return true;
  const ok = root.role === 'root' && issuing.cert.issuer.equals(root.cert.subject) && verifySignedBy(issuing.cert, root.cert.spki);
  if (ok) verifiedLinks.set(issuing, root);
  return ok;
}

function safeName(der: Buffer): string {
  try {
    return JSON.stringify(nameToString(der));
  } catch {
    return '(unreadable)';
  }
}

/** Signs a challenge (or any data) with a certificate's private key (PKCS#8 PEM): the key's family decides the algorithm. */
export function signWithCertificateKey(privateKey: string, data: Data): { alg: Alg; signature: Buffer } {
  const signer = keySigner(privateKey);
  return { alg: signer.alg, signature: sign(signer.alg, privateKey, data) };
}

/**
 * Verifies the certificate (as verifyCertificate) and then that `signature` is its key's signature
 * over `data`: challenge-response sign-in with a certificate.
 */
export async function verifySignatureWithCertificate(
  q: Queryable,
  certificate: string | Uint8Array,
  data: Data,
  signature: Uint8Array,
  opts: { at?: Date; alg?: Alg } = {},
): Promise<CertificateVerification | { ok: false; reason: 'bad-signature'; detail: string; serial: string }> {
  const v = await verifyCertificate(q, certificate, opts);
  if (!v.ok) return v;
  if (!verify(v.alg, v.publicKey, data, signature)) return { ok: false, reason: 'bad-signature', detail: 'the signature does not verify under the certificate key', serial: v.serial };
  return v;
}

// ---------------------------------------------------------------------------------------------
// Listing

export interface CertificateSummary {
  serial: string;
  alg: Alg;
  kind: SubjectKind;
  subject: Subject;
  subjectDn: string;
  status: 'good' | 'revoked' | 'expired';
  notBefore: Date;
  notAfter: Date;
  issuedAt: Date;
  revokedAt: Date | null;
  reason: RevocationReason | null;
  renewedFrom: string | null;
}

export interface CertificateFilter {
  kind?: SubjectKind;
  alg?: Alg;
  status?: 'good' | 'revoked' | 'expired';
  uscc?: string;
  department?: string;
  limit?: number;
}

export interface CertificateSearch extends Omit<CertificateFilter, 'limit'> {
  /**
   * free text: part of the subject DN or name (case-insensitive), the start of a serial (hex, with
   * or without 0x, colons and leading zeros), a USCC or a department code
   */
  text?: string;
  /** certificates renewing this one */
  renewedFrom?: string;
  /** 1 to 100, default 20 */
  limit?: number;
  offset?: number;
}

export interface CertificatePage {
  items: CertificateSummary[];
  /** how many match, over all pages */
  total: number;
}

export interface CertificateCounts {
  total: number;
  good: number;
  revoked: number;
  expired: number;
  /** good, expiring within `soonDays` */
  expiringSoon: number;
  soonDays: number;
}

/** the search text as a serial prefix, or null when it cannot be one */
function serialPrefix(text: string): string | null {
  const s = text.toLowerCase().replace(/[\s:]/g, '').replace(/^0x/, '').replace(/^0+(?=.)/, '');
  return /^[0-9a-f]{1,40}$/.test(s) ? s : null;
}

/** The where clause of a listing (every value a parameter appended to args). */
function certificateWhere(f: CertificateSearch, args: unknown[], now: Date): string {
  const where: string[] = [];
  const param = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.kind) where.push(`kind = ${param(f.kind)}`);
  if (f.alg) where.push(`alg = ${param(f.alg)}`);
  if (f.uscc) where.push(`uscc = ${param(f.uscc)}`);
  if (f.department) where.push(`department = ${param(f.department)}`);
  if (f.renewedFrom) where.push(`renewed_from = ${param(normaliseSerial(f.renewedFrom))}`);
  if (f.status === 'revoked') where.push(`status = 'revoked'`);
  if (f.status === 'good') where.push(`status = 'good' and not_after >= ${param(now)}`);
  if (f.status === 'expired') where.push(`status = 'good' and not_after < ${param(now)}`);
  // PostgreSQL text cannot hold NUL
  const text = f.text?.replace(/\u0000/g, '').trim();
  if (text) {
    const t = param(text.toLowerCase());
    const any = [
      `strpos(lower(subject_dn), ${t}) > 0`,
      `strpos(lower(subject ->> 'name'), ${t}) > 0`,
      `lower(uscc) = ${t}`,
      `lower(department) = ${t}`,
    ];
    const prefix = serialPrefix(text);
    if (prefix) any.push(`starts_with(serial, ${param(prefix)})`);
    where.push(`(${any.join(' or ')})`);
  }
  return where.length ? `where ${where.join(' and ')}` : '';
}

function summaryOf(r: CertificateRow, now: Date): CertificateSummary {
  return {
    serial: r.serial,
    alg: r.alg,
    kind: r.kind,
    subject: r.subject,
    subjectDn: r.subject_dn,
    status: r.status === 'revoked' ? 'revoked' : r.not_after < now ? 'expired' : 'good',
    notBefore: r.not_before,
    notAfter: r.not_after,
    issuedAt: r.issued_at,
    revokedAt: r.revoked_at,
    reason: r.reason,
    renewedFrom: r.renewed_from,
  };
}

const LISTED = 'serial, alg, kind, subject, subject_dn, status, not_before, not_after, issued_at, revoked_at, reason, renewed_from';

export async function listCertificates(q: Queryable, f: CertificateFilter = {}): Promise<CertificateSummary[]> {
  const now = new Date();
  const args: unknown[] = [];
  const where = certificateWhere(f, args, now);
  args.push(Math.min(Math.max(f.limit ?? 50, 1), 1000));
  const { rows } = await q.query<CertificateRow>(`select ${LISTED} from ca.certificate ${where} order by issued_at desc, serial limit $${args.length}`, args);
  return rows.map((r) => summaryOf(r, now));
}

/** One page of certificates, newest first, and how many match in all (the console's list). */
export async function searchCertificates(q: Queryable, f: CertificateSearch = {}): Promise<CertificatePage> {
  const now = new Date();
  const args: unknown[] = [];
  const where = certificateWhere(f, args, now);
  const limit = Math.min(Math.max(Math.trunc(f.limit ?? 20), 1), 100);
  const offset = Math.max(Math.trunc(f.offset ?? 0), 0);
  const [count, page] = await Promise.all([
    q.query<{ n: number }>(`select count(*)::int as n from ca.certificate ${where}`, args),
    q.query<CertificateRow>(`select ${LISTED} from ca.certificate ${where} order by issued_at desc, serial limit $${args.length + 1} offset $${args.length + 2}`, [...args, limit, offset]),
  ]);
  return { items: page.rows.map((r) => summaryOf(r, now)), total: count.rows[0]!.n };
}

/** How many certificates the CA has issued, by status. */
export async function certificateCounts(q: Queryable, soonDays = 30, at: Date = new Date()): Promise<CertificateCounts> {
  const { rows } = await q.query<Omit<CertificateCounts, 'soonDays'>>(
    `select count(*)::int as total,
            count(*) filter (where status = 'good' and not_after >= $1)::int as good,
            count(*) filter (where status = 'revoked')::int as revoked,
            count(*) filter (where status = 'good' and not_after < $1)::int as expired,
            count(*) filter (where status = 'good' and not_after >= $1 and not_after < $2)::int as "expiringSoon"
       from ca.certificate`,
    [at, new Date(at.getTime() + soonDays * DAY)],
  );
  return { ...rows[0]!, soonDays };
}

/** One certificate's record with its PEM, or null. */
export async function getCertificate(q: Queryable, serial: string): Promise<(CertificateSummary & { certificate: string; keyGenerated: boolean }) | null> {
  const id = normaliseSerial(serial);
  const { rows } = await q.query<CertificateRow>('select * from ca.certificate where serial = $1', [id]);
  const r = rows[0];
  if (!r) return null;
  return { ...summaryOf(r, new Date()), certificate: r.pem, keyGenerated: r.key_generated };
}

export async function caCertificatePem(q: Queryable, alg: Alg, role: 'root' | 'issuing'): Promise<string> {
  return (await authority(q, alg, role)).pem;
}
