// X.509 v3 certificates, v2 CRLs and PKCS#10 requests for both families, built and read the same
// way: the to-be-signed structure is encoded with @peculiar/asn1-x509, its exact DER bytes go to a
// Signer (so the CA key can live in an HSM), and the outer SEQUENCE is assembled around those very
// bytes. Reading finds the signed bytes by walking the DER, never by re-encoding what was parsed.
//
//   ECDSA P-256:  signature ecdsa-with-SHA256 (1.2.840.10045.4.3.2), key id-ecPublicKey + prime256v1
//   SM2:          signature SM2-with-SM3 (1.2.156.10197.1.501, GM/T 0006), key id-ecPublicKey +
//                 sm2p256v1 (1.2.156.10197.1.301) — as GB/T 20518-2018 and GM/T 0015 profile them.
// Both signature AlgorithmIdentifiers carry no parameters (RFC 5758 §3.2; GmSSL and OpenSSL do the same).
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1 from '@peculiar/asn1-x509';
import { algOfSpki, fingerprint, verify, type Alg, type Signer } from '../crypto/index.ts';
import { children, readTlv, type Tlv } from '../crypto/der.ts';

export const SIGNATURE_OID: Record<Alg, string> = {
  'ecdsa-p256-sha256': '1.2.840.10045.4.3.2',
  'sm2-sm3': '1.2.156.10197.1.501',
};

export function algOfSignatureOid(oid: string): Alg | null {
  if (oid === SIGNATURE_OID['ecdsa-p256-sha256']) return 'ecdsa-p256-sha256';
  if (oid === SIGNATURE_OID['sm2-sm3']) return 'sm2-sm3';
  return null;
}

export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  /** RFC 9336 */
  documentSigning: '1.3.6.1.5.5.7.3.36',
} as const;

// ---------------------------------------------------------------------------------------------
// PEM and raw DER assembly

export function toPem(label: 'CERTIFICATE' | 'X509 CRL' | 'CERTIFICATE REQUEST', der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

export class X509Error extends Error {}

/** The DER of the first PEM block with this label, or the input itself if it is DER already. */
export function fromPem(input: string | Uint8Array, label: string): Buffer {
  if (typeof input !== 'string') return Buffer.from(input);
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(input);
  if (!m) throw new X509Error(`expected a PEM ${label}`);
  const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  if (!der.length) throw new X509Error(`empty PEM ${label}`);
  return der;
}

function lengthOf(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOf(content.length), content]);
}

/** SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature } — certificates, CRLs and CSRs alike */
async function signed(tbs: Uint8Array, signer: Signer): Promise<Buffer> {
  const signature = await signer.sign(tbs);
  const algId = Buffer.from(AsnConvert.serialize(new asn1.AlgorithmIdentifier({ algorithm: SIGNATURE_OID[signer.alg] })));
  return tlv(0x30, Buffer.concat([tbs, algId, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}

// ---------------------------------------------------------------------------------------------
// Names

const ATTRIBUTE = {
  C: { oid: '2.5.4.6', printable: true },
  ST: { oid: '2.5.4.8', printable: false },
  L: { oid: '2.5.4.7', printable: false },
  O: { oid: '2.5.4.10', printable: false },
  OU: { oid: '2.5.4.11', printable: false },
  CN: { oid: '2.5.4.3', printable: false },
  serialNumber: { oid: '2.5.4.5', printable: true },
} as const;

export type NameAttribute = keyof typeof ATTRIBUTE;
const NAME_BY_OID = new Map<string, NameAttribute>((Object.keys(ATTRIBUTE) as NameAttribute[]).map((k) => [ATTRIBUTE[k].oid, k]));

/** One attribute per RDN, in the order given (most significant first: C, ST, L, O, OU, CN). */
export function buildName(attrs: readonly (readonly [NameAttribute, string])[]): Buffer {
  const name = new asn1.Name(
    attrs.map(([type, value]) => {
      const a = ATTRIBUTE[type];
      const v = new asn1.AttributeValue(a.printable ? { printableString: value } : { utf8String: value });
      return new asn1.RelativeDistinguishedName([new asn1.AttributeTypeAndValue({ type: a.oid, value: v })]);
    }),
  );
  return Buffer.from(AsnConvert.serialize(name));
}

export function nameAttributes(der: Uint8Array): [string, string][] {
  const name = AsnConvert.parse(der, asn1.Name);
  return name.flatMap((rdn) => rdn.map((atv) => [NAME_BY_OID.get(atv.type) ?? atv.type, atv.value.toString()] as [string, string]));
}

/** "C=CN, O=苏州市人民政府, CN=…" for display and search; not for comparison (compare DER) */
export function nameToString(der: Uint8Array): string {
  return nameAttributes(der)
    .map(([k, v]) => `${k}=${v.replace(/([,+"\\<>;])/g, '\\$1')}`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------------
// Extensions

function extension(extnID: string, critical: boolean, value: object): asn1.Extension {
  return new asn1.Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of the family's hash (SHA-256 or SM3) of the key bits */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const seq = readTlv(spki, 0);
  const [, bits] = children(spki, seq);
  if (!bits) throw new X509Error('malformed SubjectPublicKeyInfo');
  return fingerprint(algOfSpki(spki), spki.subarray(bits.contentStart + 1, bits.end)).subarray(0, 20);
}

export interface ExtensionProfile {
  ca: boolean;
  /** CA only: how many CA certificates may follow (0: issues end-entity certificates only) */
  pathLength?: number;
  keyUsage: asn1.KeyUsageFlags;
  extendedKeyUsage?: readonly string[];
  subjectKeyId: Uint8Array;
  /** absent on a self-signed root */
  authorityKeyId?: Uint8Array;
  crlUrl?: string;
}

export function buildExtensions(p: ExtensionProfile): asn1.Extension[] {
  const out = [
    extension(asn1.id_ce_basicConstraints, true, new asn1.BasicConstraints(p.ca ? { cA: true, pathLenConstraint: p.pathLength } : { cA: false })),
    extension(asn1.id_ce_keyUsage, true, new asn1.KeyUsage(p.keyUsage)),
  ];
  if (p.extendedKeyUsage?.length) out.push(extension(asn1.id_ce_extKeyUsage, false, new asn1.ExtendedKeyUsage([...p.extendedKeyUsage])));
  out.push(extension(asn1.id_ce_subjectKeyIdentifier, false, new asn1.SubjectKeyIdentifier(Buffer.from(p.subjectKeyId))));
  if (p.authorityKeyId) {
    out.push(extension(asn1.id_ce_authorityKeyIdentifier, false, new asn1.AuthorityKeyIdentifier({ keyIdentifier: new asn1.KeyIdentifier(Buffer.from(p.authorityKeyId)) })));
  }
  if (p.crlUrl) {
    const dp = new asn1.DistributionPoint({ distributionPoint: new asn1.DistributionPointName({ fullName: [new asn1.GeneralName({ uniformResourceIdentifier: p.crlUrl })] }) });
    out.push(extension(asn1.id_ce_cRLDistributionPoints, false, new asn1.CRLDistributionPoints([dp])));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Certificates

export interface CertificateTemplate {
  /** positive, at most 20 bytes, no leading zero byte */
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: asn1.Extension[];
}

export async function buildCertificate(signer: Signer, t: CertificateTemplate): Promise<Buffer> {
  const tbs = new asn1.TBSCertificate({
    version: asn1.Version.v3,
    serialNumber: new Uint8Array(t.serial).buffer,
    signature: new asn1.AlgorithmIdentifier({ algorithm: SIGNATURE_OID[signer.alg] }),
    issuer: AsnConvert.parse(t.issuer, asn1.Name),
    validity: new asn1.Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: AsnConvert.parse(t.subject, asn1.Name),
    subjectPublicKeyInfo: AsnConvert.parse(t.spki, asn1.SubjectPublicKeyInfo),
    extensions: new asn1.Extensions(t.extensions),
  });
  return signed(Buffer.from(AsnConvert.serialize(tbs)), signer);
}

export interface ParsedCertificate {
  der: Buffer;
  /** the exact signed bytes */
  tbs: Buffer;
  /** outer signatureAlgorithm */
  signatureOid: string;
  /** null when the signature algorithm is neither family's */
  alg: Alg | null;
  signature: Buffer;
  /** lower-case hex without leading zeros */
  serial: string;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  isCa: boolean;
  subjectKeyId: Buffer | null;
  authorityKeyId: Buffer | null;
}

function raw(der: Buffer, t: Tlv): Buffer {
  return der.subarray(t.start, t.end);
}

export function serialHex(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i)).toString('hex');
}

/** Outer structure shared by certificates and CRLs: { tbs, algorithm, BIT STRING }. */
function outer(der: Buffer): { tbs: Tlv; algorithm: Tlv; signature: Buffer } {
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new X509Error('not one DER SEQUENCE');
  const parts = children(der, top);
  if (parts.length !== 3 || parts[0]!.tag !== 0x30 || parts[1]!.tag !== 0x30 || parts[2]!.tag !== 0x03) throw new X509Error('not a signed structure');
  const bits = parts[2]!;
  if (der[bits.contentStart] !== 0) throw new X509Error('signature BIT STRING with unused bits');
  return { tbs: parts[0]!, algorithm: parts[1]!, signature: der.subarray(bits.contentStart + 1, bits.end) };
}

function extensionValue<T>(exts: asn1.Extensions | asn1.Extension[] | undefined, oid: string, type: new () => T): T | null {
  const e = exts?.find((x) => x.extnID === oid);
  return e ? AsnConvert.parse(e.extnValue, type) : null;
}

/** dotted form of an OBJECT IDENTIFIER's content bytes */
function oidString(b: Uint8Array): string {
  const out: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (!out.length) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}

function time(der: Buffer, t: Tlv): Date {
  const s = der.toString('latin1', t.contentStart, t.end);
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new X509Error('a validity time that is neither UTCTime nor GeneralizedTime in UTC');
  // RFC 5280 §4.1.2.5.1: two-digit years 50-99 are 19xx
  const year = t.tag === 0x17 ? (Number(m[1]) >= 50 ? 1900 : 2000) + Number(m[1]) : Number(m[1]);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

const OID_EXT = {
  basicConstraints: '0603551d13',
  subjectKeyId: '0603551d0e',
  authorityKeyId: '0603551d23',
};

/**
 * Parses a PEM or DER certificate; throws X509Error (or DerError) if malformed. Reads the DER
 * directly (this runs on every sign-in and exchanged message: no ASN.1 object model).
 */
export function parseCertificate(input: string | Uint8Array): ParsedCertificate {
  const der = fromPem(input, 'CERTIFICATE');
  const { tbs, algorithm, signature } = outer(der);
  const f = children(der, tbs);
  let i = 0;
  if (f[i]?.tag === 0xa0) i++; // version: [0] EXPLICIT, v3 for every certificate we issue
  const [serial, sigAlg, issuer, validity, subject, spki] = f.slice(i, i + 6);
  if (!serial || serial.tag !== 0x02 || !sigAlg || !issuer || !validity || !subject || !spki || [sigAlg, issuer, validity, subject, spki].some((t) => t.tag !== 0x30)) {
    throw new X509Error('incomplete TBSCertificate');
  }
  if (!raw(der, sigAlg).equals(raw(der, algorithm))) throw new X509Error('the inner and outer signature algorithms differ');
  const oid = children(der, algorithm)[0];
  if (!oid || oid.tag !== 0x06) throw new X509Error('malformed AlgorithmIdentifier');
  const signatureOid = oidString(der.subarray(oid.contentStart, oid.end));
  const [notBefore, notAfter] = children(der, validity);
  if (!notBefore || !notAfter) throw new X509Error('malformed Validity');
  let isCa = false;
  let subjectKeyId: Buffer | null = null;
  let authorityKeyId: Buffer | null = null;
  const extsTlv = f.slice(i + 6).find((t) => t.tag === 0xa3);
  if (extsTlv) {
    const [list] = children(der, extsTlv);
    for (const ext of list ? children(der, list) : []) {
      const parts = children(der, ext);
      const id = raw(der, parts[0]!).toString('hex');
      const value = parts[parts.length - 1]!;
      if (value.tag !== 0x04) throw new X509Error('malformed Extension');
      const inner = readTlv(der, value.contentStart, value.end);
      if (id === OID_EXT.basicConstraints) {
        const first = children(der, inner)[0];
        isCa = first?.tag === 0x01 && der[first.contentStart] !== 0;
      } else if (id === OID_EXT.subjectKeyId && inner.tag === 0x04) {
        subjectKeyId = der.subarray(inner.contentStart, inner.end);
      } else if (id === OID_EXT.authorityKeyId) {
        const keyId = children(der, inner).find((t) => t.tag === 0x80);
        if (keyId) authorityKeyId = der.subarray(keyId.contentStart, keyId.end);
      }
    }
  }
  return {
    der,
    tbs: raw(der, tbs),
    signatureOid,
    alg: algOfSignatureOid(signatureOid),
    signature: Buffer.from(signature),
    serial: serialHex(der.subarray(serial.contentStart, serial.end)),
    issuer: raw(der, issuer),
    subject: raw(der, subject),
    notBefore: time(der, notBefore),
    notAfter: time(der, notAfter),
    spki: raw(der, spki),
    isCa,
    subjectKeyId,
    authorityKeyId,
  };
}

/** True if `cert` carries a valid signature by the key `issuerSpki` in the certificate's family. */
export function verifySignedBy(cert: Pick<ParsedCertificate, 'alg' | 'tbs' | 'signature'>, issuerSpki: Uint8Array): boolean {
  return cert.alg !== null && verify(cert.alg, issuerSpki, cert.tbs, cert.signature);
}

// ---------------------------------------------------------------------------------------------
// CRLs (RFC 5280 §5, v2)

export const CRL_REASONS = {
  unspecified: asn1.CRLReasons.unspecified,
  'key-compromise': asn1.CRLReasons.keyCompromise,
  'affiliation-changed': asn1.CRLReasons.affiliationChanged,
  superseded: asn1.CRLReasons.superseded,
  'cessation-of-operation': asn1.CRLReasons.cessationOfOperation,
  'privilege-withdrawn': asn1.CRLReasons.privilegeWithdrawn,
} as const;
export type RevocationReason = keyof typeof CRL_REASONS;
export const REVOCATION_REASONS = Object.keys(CRL_REASONS) as RevocationReason[];
const REASON_BY_CODE = new Map(Object.entries(CRL_REASONS).map(([k, v]) => [v as number, k as RevocationReason]));

export interface CrlTemplate {
  issuer: Uint8Array;
  authorityKeyId: Uint8Array;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: readonly { serial: string; revokedAt: Date; reason: RevocationReason }[];
}

export async function buildCrl(signer: Signer, t: CrlTemplate): Promise<Buffer> {
  const tbs = new asn1.TBSCertList({
    version: asn1.Version.v2,
    signature: new asn1.AlgorithmIdentifier({ algorithm: SIGNATURE_OID[signer.alg] }),
    issuer: AsnConvert.parse(t.issuer, asn1.Name),
    thisUpdate: new asn1.Time(t.thisUpdate),
    nextUpdate: new asn1.Time(t.nextUpdate),
    revokedCertificates: t.revoked.length
      ? t.revoked.map(
          (r) =>
            new asn1.RevokedCertificate({
              userCertificate: new Uint8Array(Buffer.from(r.serial.length % 2 ? '0' + r.serial : r.serial, 'hex')).buffer,
              revocationDate: new asn1.Time(r.revokedAt),
              // RFC 5280 §5.3.1: omit the reason rather than say "unspecified"
              crlEntryExtensions: r.reason === 'unspecified' ? undefined : [extension(asn1.id_ce_cRLReasons, false, new asn1.CRLReason(CRL_REASONS[r.reason]))],
            }),
        )
      : undefined,
    crlExtensions: [
      extension(asn1.id_ce_authorityKeyIdentifier, false, new asn1.AuthorityKeyIdentifier({ keyIdentifier: new asn1.KeyIdentifier(Buffer.from(t.authorityKeyId)) })),
      extension(asn1.id_ce_cRLNumber, false, new asn1.CRLNumber(t.number)),
    ],
  });
  return signed(Buffer.from(AsnConvert.serialize(tbs)), signer);
}

export interface ParsedCrl {
  der: Buffer;
  tbs: Buffer;
  alg: Alg | null;
  signature: Buffer;
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | null;
  number: number | null;
  revoked: { serial: string; revokedAt: Date; reason: RevocationReason }[];
}

export function parseCrl(input: string | Uint8Array): ParsedCrl {
  const der = fromPem(input, 'X509 CRL');
  const { tbs, signature } = outer(der);
  const crl = AsnConvert.parse(der, asn1.CertificateList);
  const issuer = children(der, tbs).filter((t) => t.tag === 0x30)[1];
  if (!issuer) throw new X509Error('incomplete TBSCertList');
  const number = extensionValue(crl.tbsCertList.crlExtensions, asn1.id_ce_cRLNumber, asn1.CRLNumber);
  return {
    der,
    tbs: raw(der, tbs),
    alg: algOfSignatureOid(crl.signatureAlgorithm.algorithm),
    signature: Buffer.from(signature),
    issuer: raw(der, issuer),
    thisUpdate: crl.tbsCertList.thisUpdate.getTime(),
    nextUpdate: crl.tbsCertList.nextUpdate?.getTime() ?? null,
    number: number?.value ?? null,
    revoked: (crl.tbsCertList.revokedCertificates ?? []).map((r) => {
      const reason = extensionValue(r.crlEntryExtensions, asn1.id_ce_cRLReasons, asn1.CRLReason);
      return { serial: serialHex(new Uint8Array(r.userCertificate)), revokedAt: r.revocationDate.getTime(), reason: (reason && REASON_BY_CODE.get(reason.reason)) || 'unspecified' };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// PKCS#10 certification requests (RFC 2986)

export interface ParsedCsr {
  alg: Alg | null;
  spki: Buffer;
  subject: Buffer;
  /** the request's self-signature verifies under its own key (proof of possession) */
  signatureValid: boolean;
}

export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = fromPem(input, 'CERTIFICATE REQUEST');
  const { tbs, algorithm, signature } = outer(der);
  const info = children(der, tbs); // version, subject, subjectPKInfo, [0] attributes
  const [version, subject, spki] = info;
  if (!version || version.tag !== 0x02 || !subject || subject.tag !== 0x30 || !spki || spki.tag !== 0x30) throw new X509Error('malformed CertificationRequestInfo');
  const algId = AsnConvert.parse(raw(der, algorithm), asn1.AlgorithmIdentifier);
  const alg = algOfSignatureOid(algId.algorithm);
  const spkiDer = raw(der, spki);
  return { alg, spki: spkiDer, subject: raw(der, subject), signatureValid: alg !== null && verify(alg, spkiDer, raw(der, tbs), signature) };
}

/** A PKCS#10 request for a key (clients and tests; the CA ignores the requested subject). */
export async function buildCsr(signer: Signer, subject: Uint8Array): Promise<string> {
  const info = Buffer.concat([Buffer.from([0x02, 0x01, 0x00]), subject, signer.publicKey, Buffer.from([0xa0, 0x00])]);
  return toPem('CERTIFICATE REQUEST', await signed(tlv(0x30, info), signer));
}
