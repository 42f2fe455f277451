// The CA over HTTP. Public face: CRLs, the CA certificates and an OCSP-like status of one
// certificate — what relying parties outside the government network need. Internal face: issue,
// renew, revoke and look up, for CA operators.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { allow, type Actor } from '../policy.ts';
import type { AuditActor } from '../../audit/index.ts';
import { problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { ALGS, type Alg } from '../crypto/index.ts';
import {
  caCertificatePem,
  caContextFor,
  certificateStatus,
  currentCrl,
  getCertificate,
  issueCertificate,
  listCertificates,
  renewCertificate,
  revokeCertificate,
  type CertificateSummary,
  type IssuedCertificate,
} from './ca.ts';
import { SUBJECT_KINDS } from './profiles.ts';
import { fromPem, REVOCATION_REASONS, toPem, type RevocationReason } from './x509.ts';

export const caPolicy = [
  allow('anyone', 'read', 'crl'),
  allow('anyone', 'read', 'ca-certificate'),
  allow('anyone', 'read', 'certificate-status'),
  allow({ role: 'ca-operator' }, ['issue', 'renew', 'revoke', 'read'], 'certificate'),
].flat();

const AlgSchema = Type.Enum([...ALGS]);
const Serial = Type.String({ pattern: '^[0-9A-Fa-f]{1,40}$', description: 'hexadecimal serial number' });

const Status = Type.Object(
  {
    serial: Type.String(),
    status: Type.Enum(['good', 'revoked', 'expired', 'unknown']),
    alg: Type.Optional(AlgSchema),
    kind: Type.Optional(Type.Enum([...SUBJECT_KINDS])),
    issuer: Type.Optional(Type.String()),
    subjectDn: Type.Optional(Type.String()),
    notBefore: Type.Optional(Type.String({ format: 'date-time' })),
    notAfter: Type.Optional(Type.String({ format: 'date-time' })),
    revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
    reason: Type.Optional(Type.Enum([...REVOCATION_REASONS])),
    renewedFrom: Type.Optional(Type.String()),
    producedAt: Type.String({ format: 'date-time' }),
  },
  { description: 'The status of one certificate in the CA’s records (like an OCSP response, unsigned: the CRL is the signed source)' },
);

const SubjectSchema = Type.Object(
  {
    kind: Type.Enum([...SUBJECT_KINDS]),
    nodeId: Type.Optional(Type.String({ maxLength: 64, description: 'node: an exchange node id of the city profile' })),
    systemId: Type.Optional(Type.String({ maxLength: 64, description: 'system: the system id' })),
    uscc: Type.Optional(Type.String({ maxLength: 32, description: 'legal-person: 统一社会信用代码' })),
    department: Type.Optional(Type.String({ maxLength: 32, description: 'system, staff: a department code of the city profile' })),
    staffId: Type.Optional(Type.String({ maxLength: 32, description: 'staff: 工号' })),
    name: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const Csr = Type.String({ maxLength: 16_384, description: 'PEM PKCS#10 request; omit to have the CA generate the key pair (returned once)' });
const ValidDays = Type.Integer({ minimum: 1, maximum: 3650 });

const IssueBody = Type.Object({ alg: AlgSchema, subject: SubjectSchema, csr: Type.Optional(Csr), validDays: Type.Optional(ValidDays) }, { additionalProperties: false });
const RenewBody = Type.Object({ csr: Type.Optional(Csr), validDays: Type.Optional(ValidDays) }, { additionalProperties: false });
const RevokeBody = Type.Object({ reason: Type.Enum([...REVOCATION_REASONS]) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    kind: Type.Optional(Type.Enum([...SUBJECT_KINDS])),
    alg: Type.Optional(AlgSchema),
    status: Type.Optional(Type.Enum(['good', 'revoked', 'expired'])),
    uscc: Type.Optional(Type.String({ maxLength: 32 })),
    department: Type.Optional(Type.String({ maxLength: 32 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  },
  { additionalProperties: false },
);

/** who the audit log names for a request's actor (the API and the console pages alike) */
export function auditActor(actor: Actor): AuditActor {
  switch (actor.kind) {
    case 'anonymous':
      return { kind: 'anonymous', id: 'anonymous' };
    case 'system':
      return { kind: 'system', id: actor.id, department: actor.department };
    case 'staff':
      return { kind: 'staff', id: actor.accountId, department: actor.department };
    default:
      return { kind: actor.kind, id: actor.accountId };
  }
}

/** what an operation records about its request */
export const meta = (req: FastifyRequest) => ({ requestId: req.id, ip: req.ip });

function issuedJson(c: IssuedCertificate) {
  return { ...c, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() };
}

function summaryJson(c: CertificateSummary) {
  return {
    ...c,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    issuedAt: c.issuedAt.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
  };
}

const CRL_FILE = new RegExp(`^(${ALGS.join('|')})\\.(crl|crl\\.pem)$`);
const CA_FILE = /^(root|issuing)\.(pem|crt)$/;

export function caPublicRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const ca = caContextFor(ctx);

  app.get(
    '/ca/crl/:file',
    {
      config: { action: 'crl:read' },
      schema: {
        tags: ['ca'],
        summary: 'The current CRL of an issuing CA: {alg}.crl (DER, application/pkix-crl) or {alg}.crl.pem',
        params: Type.Object({ file: Type.String({ maxLength: 64 }) }),
        produces: ['application/pkix-crl', 'application/x-pem-file'],
      },
    },
    async (req, reply) => {
      const m = CRL_FILE.exec((req.params as { file: string }).file);
      if (!m) throw problem('not-found', `no CRL named ${(req.params as { file: string }).file}: try ${ALGS.map((a) => `${a}.crl`).join(' or ')}`);
      const crl = await currentCrl(ctx.db, ca, m[1] as Alg);
      const maxAge = Math.max(0, Math.min(3600, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 1000)));
      reply.header('cache-control', `public, max-age=${maxAge}`);
      reply.header('last-modified', crl.thisUpdate.toUTCString());
      reply.header('expires', crl.nextUpdate.toUTCString());
      if (m[2] === 'crl') return reply.type('application/pkix-crl').send(crl.der);
      return reply.type('application/x-pem-file; charset=utf-8').send(toPem('X509 CRL', crl.der));
    },
  );

  app.get(
    '/ca/:alg/:file',
    {
      config: { action: 'ca-certificate:read' },
      schema: {
        tags: ['ca'],
        summary: 'A CA certificate: root.pem, issuing.pem (PEM) or root.crt, issuing.crt (DER)',
        params: Type.Object({ alg: AlgSchema, file: Type.String({ maxLength: 32 }) }),
        produces: ['application/x-pem-file', 'application/pkix-cert'],
      },
    },
    async (req, reply) => {
      const { alg, file } = req.params as { alg: Alg; file: string };
      const m = CA_FILE.exec(file);
      if (!m) throw problem('not-found', `no CA certificate named ${file}: root.pem, issuing.pem, root.crt or issuing.crt`);
      const pem = await caCertificatePem(ctx.db, alg, m[1] as 'root' | 'issuing');
      reply.header('cache-control', 'public, max-age=86400');
      if (m[2] === 'crt') return reply.type('application/pkix-cert').send(fromPem(pem, 'CERTIFICATE'));
      return reply.type('application/x-pem-file; charset=utf-8').send(pem);
    },
  );

  app.get(
    '/api/v1/ca/certificates/:serial/status',
    {
      config: { action: 'certificate-status:read' },
      schema: {
        tags: ['ca'],
        summary: 'Whether a certificate is good, revoked, expired or unknown to this CA',
        params: Type.Object({ serial: Serial }),
        response: { 200: Status },
      },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-cache');
      return certificateStatus(ctx.db, (req.params as { serial: string }).serial);
    },
  );
}

export function caInternalRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const ca = caContextFor(ctx);

  app.post(
    '/api/v1/ca/certificates',
    {
      config: { action: 'certificate:issue' },
      schema: { tags: ['ca'], summary: 'Issue a certificate from a PKCS#10 request, or with a key pair the CA generates (demo)', body: IssueBody },
    },
    async (req, reply) => {
      const body = req.body as Static<typeof IssueBody>;
      const issued = await issueCertificate(ctx.db, ca, auditActor(req.actor), body, meta(req));
      if (issued.privateKey) reply.header('cache-control', 'no-store');
      return reply.code(201).send(issuedJson(issued));
    },
  );

  app.get(
    '/api/v1/ca/certificates',
    { config: { action: 'certificate:read' }, schema: { tags: ['ca'], summary: 'Certificates issued, newest first', querystring: ListQuery } },
    async (req) => {
      const items = await listCertificates(ctx.db, req.query as Static<typeof ListQuery>);
      return { items: items.map(summaryJson) };
    },
  );

  app.get(
    '/api/v1/ca/certificates/:serial',
    { config: { action: 'certificate:read' }, schema: { tags: ['ca'], summary: 'One certificate with its PEM', params: Type.Object({ serial: Serial }) } },
    async (req) => {
      const serial = (req.params as { serial: string }).serial;
      const c = await getCertificate(ctx.db, serial);
      if (!c) throw problem('not-found', `no certificate with serial ${serial.toLowerCase()}`);
      return { ...summaryJson(c), certificate: c.certificate, keyGenerated: c.keyGenerated };
    },
  );

  app.post(
    '/api/v1/ca/certificates/:serial/renew',
    {
      config: { action: 'certificate:renew' },
      schema: { tags: ['ca'], summary: 'A new certificate (new serial) for the same subject', params: Type.Object({ serial: Serial }), body: RenewBody },
    },
    async (req, reply) => {
      const renewed = await renewCertificate(ctx.db, ca, auditActor(req.actor), (req.params as { serial: string }).serial, (req.body ?? {}) as Static<typeof RenewBody>, meta(req));
      if (renewed.privateKey) reply.header('cache-control', 'no-store');
      return reply.code(201).send(issuedJson(renewed));
    },
  );

  app.post(
    '/api/v1/ca/certificates/:serial/revoke',
    {
      config: { action: 'certificate:revoke' },
      schema: { tags: ['ca'], summary: 'Revoke a certificate; the CRL is republished at once', params: Type.Object({ serial: Serial }), body: RevokeBody },
    },
    async (req) => {
      const { reason } = req.body as { reason: RevocationReason };
      const r = await revokeCertificate(ctx.db, ca, auditActor(req.actor), (req.params as { serial: string }).serial, reason, meta(req));
      return { ...r, revokedAt: r.revokedAt.toISOString() };
    },
  );
}
