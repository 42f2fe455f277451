// 市政务电子认证 — the municipal CA's public face. A root and an issuing CA per algorithm family
// (ECDSA P-256 / SHA-256 and SM2 / SM3), created on first start; certificates for exchange nodes,
// department systems, legal persons (法人证书, bound to a USCC) and staff (bound to a department);
// CRLs and a status endpoint over HTTP; `gusu ca` and the /console/ca pages for operators
// (docs/decisions/0006-crypto-and-ca.md, docs/identity.md).
import { fileURLToPath } from 'node:url';
import type { GusuModule } from '../../../module.ts';
import { caContextFor, checkCaKeys, initCa, verifyCertificate } from './ca.ts';
import { caCommand } from './cli.ts';
import { caInternalRoutes, caPolicy, caPublicRoutes } from './routes.ts';
import { caConsoleRoutes } from './console.ts';
import { verify } from '../crypto/index.ts';
import { parseCertificate } from './x509.ts';
import type { Queryable } from '../../../db/index.ts';

export {
  authorities,
  caCertificatePem,
  caContext,
  caContextFor,
  certificateCounts,
  certificateStatus,
  checkCaKeys,
  currentCrl,
  getCertificate,
  initCa,
  issueCertificate,
  listCertificates,
  normaliseSerial,
  renewCertificate,
  revokeCertificate,
  searchCertificates,
  signWithCertificateKey,
  verifyCertificate,
  verifySignatureWithCertificate,
  CA_SYSTEM_ACTOR,
  type Authority,
  type CaContext,
  type CertificateCounts,
  type CertificateFilter,
  type CertificatePage,
  type CertificateSearch,
  type CertificateStatus,
  type CertificateSummary,
  type CertificateVerification,
  type Crl,
  type InitResult,
  type IssuedCertificate,
  type IssueRequest,
  type OpMeta,
  type RenewRequest,
  type Revocation,
  type VerifyFailureReason,
} from './ca.ts';
export { loadMasterKey, MasterKeyError, purposeKey, type MasterKey } from './keystore.ts';
export { PROFILES, SUBJECT_KINDS, type Subject, type SubjectInput, type SubjectKind } from './profiles.ts';
export { buildCsr, parseCertificate, parseCrl, REVOCATION_REASONS, toPem, type ParsedCertificate, type ParsedCrl, type RevocationReason } from './x509.ts';
export { caPolicy };

/**
 * What enterprise sign-in asks of the CA (structurally the EnterpriseVerifier of
 * src/base/identity/accounts/enterprise.ts): a legal-person certificate that verifies, and a
 * signature under its key.
 */
export const legalPersonCertificates = {
  async checkCertificate(q: Queryable, certificatePem: string): Promise<{ ok: boolean; reason?: string; uscc?: string; name?: string; serial?: string }> {
    const v = await verifyCertificate(q, certificatePem);
    if (!v.ok) return { ok: false, reason: `${v.reason}: ${v.detail}`, serial: v.serial };
    if (v.kind !== 'legal-person') return { ok: false, reason: `a ${v.kind} certificate, not a legal person's`, serial: v.serial };
    return { ok: true, uscc: v.subject.uscc, name: v.subject.name, serial: v.serial };
  },
  verifySignature(certificatePem: string, data: string, signature: Buffer): boolean {
    try {
      const cert = parseCertificate(certificatePem);
      return cert.alg !== null && verify(cert.alg, cert.spki, data, signature);
    } catch {
      return false;
    }
  },
};

export const caModule: GusuModule = {
  name: 'ca',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: caPolicy,
  publicRoutes: caPublicRoutes,
  internalRoutes(app, ctx) {
    caInternalRoutes(app, ctx);
    // 证书管理 for ca-operators: /console/ca (console.ts)
    caConsoleRoutes(app, ctx);
  },
  commands: { ca: caCommand },
  async start(ctx) {
    const ca = caContextFor(ctx);
    await checkCaKeys(ctx.db, ca);
    const { created } = await initCa(ctx.db, ca);
    if (created.length) ctx.log.info({ created, masterKey: ca.master.id }, 'certificate authorities created');
  },
};
