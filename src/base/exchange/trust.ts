// Whom a node trusts: certificates of the municipal CA. On the hub (and a standalone node) the CA is
// in the same database, so verification is the CA's own (chain, validity, revocation in its records).
// A division node holds the CA's certificates from enrolment (exchange.trust_anchor) and the CA's
// CRLs (exchange.crl, refreshed from the hub), and checks chain, validity and the CRL itself.
import type { Queryable } from '../../db/index.ts';
import { certificateStatus, parseCertificate, parseCrl, verifyCertificate, type ParsedCertificate } from '../identity/ca/index.ts';
import { verifySignedBy } from '../identity/ca/x509.ts';
import { algOfSpki, ALGS, type Alg } from '../identity/crypto/index.ts';

export type CertCheck =
  | { ok: true; serial: string; alg: Alg; publicKey: Buffer; notAfter: Date }
  | { ok: false; reason: string; detail: string; serial?: string };

export interface Trust {
  /** the whole check: chain to the municipal CA, validity, revocation */
  verify(q: Queryable, pem: string, at?: Date): Promise<CertCheck>;
  /** revocation only (per request, for a certificate already verified) */
  isRevoked(q: Queryable, serial: string): Promise<boolean>;
  /** a division node: fetch the CRLs from the hub */
  refresh?(q: Queryable): Promise<void>;
}

/** The hub's trust: the CA module in this database. */
export const localTrust: Trust = {
  async verify(q, pem, at) {
    const v = await verifyCertificate(q, pem, { at });
    if (!v.ok) return { ok: false, reason: v.reason, detail: v.detail, serial: v.serial };
    return { ok: true, serial: v.serial, alg: v.alg, publicKey: v.publicKey, notAfter: v.notAfter };
  },
  async isRevoked(q, serial) {
    return (await certificateStatus(q, serial)).status === 'revoked';
  },
};

interface Anchors {
  loadedAt: number;
  byAlg: Map<Alg, { root: ParsedCertificate; issuing: ParsedCertificate }>;
  revoked: Set<string>;
}

/** A division node's trust: the CA certificates received at enrolment and the CRLs from upstream. */
export function anchoredTrust(upstreamUrl: string, fetchImpl: typeof fetch = fetch): Trust {
  let cache: Anchors | null = null;
  async function load(q: Queryable): Promise<Anchors> {
    if (cache && Date.now() - cache.loadedAt < 10_000) return cache;
    const byAlg = new Map<Alg, { root: ParsedCertificate; issuing: ParsedCertificate }>();
    const rows = (await q.query<{ alg: Alg; role: 'root' | 'issuing'; pem: string }>('select alg, role, pem from exchange.trust_anchor')).rows;
    for (const alg of ALGS) {
      const root = rows.find((r) => r.alg === alg && r.role === 'root');
      const issuing = rows.find((r) => r.alg === alg && r.role === 'issuing');
      if (root && issuing) byAlg.set(alg, { root: parseCertificate(root.pem), issuing: parseCertificate(issuing.pem) });
    }
    const revoked = new Set<string>();
    for (const r of (await q.query<{ revoked: string[] }>('select revoked from exchange.crl')).rows) for (const s of r.revoked) revoked.add(s);
    cache = { loadedAt: Date.now(), byAlg, revoked };
    return cache;
  }
  return {
    async verify(q, pem, at = new Date()) {
      let cert: ParsedCertificate;
      try {
        cert = parseCertificate(pem);
      } catch (err) {
        return { ok: false, reason: 'malformed', detail: `not an X.509 certificate: ${(err as Error).message}` };
      }
      const fail = (reason: string, detail: string): CertCheck => ({ ok: false, reason, detail, serial: cert.serial });
      if (!cert.alg) return fail('wrong-algorithm', 'neither ECDSA P-256 with SHA-256 nor SM2 with SM3');
      const a = (await load(q)).byAlg.get(cert.alg);
      if (!a) return fail('unknown-issuer', 'this node holds no CA certificates yet (not enrolled with the hub)');
      if (!cert.issuer.equals(a.issuing.subject)) return fail('unknown-issuer', 'not issued by the municipal CA');
      if (!verifySignedBy(cert, a.issuing.spki)) return fail('forged', 'the signature does not verify under the issuing CA key');
      if (!verifySignedBy(a.issuing, a.root.spki)) return fail('forged', 'the issuing CA certificate does not verify under the root');
      for (const c of [cert, a.issuing, a.root]) {
        if (at < c.notBefore) return fail('not-yet-valid', `valid from ${c.notBefore.toISOString()}`);
        if (at > c.notAfter) return fail('expired', `expired on ${c.notAfter.toISOString()}`);
      }
      if ((await load(q)).revoked.has(cert.serial)) return fail('revoked', `serial ${cert.serial} is on the municipal CA's CRL`);
      return { ok: true, serial: cert.serial, alg: algOfSpki(cert.spki), publicKey: cert.spki, notAfter: cert.notAfter };
    },
    async isRevoked(q, serial) {
      return (await load(q)).revoked.has(serial);
    },
    async refresh(q) {
      const anchors = await load(q);
      for (const alg of ALGS) {
        const a = anchors.byAlg.get(alg);
        if (!a) continue;
        const res = await fetchImpl(`${upstreamUrl}/ca/crl/${alg}.crl`, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`CRL ${alg}: HTTP ${res.status}`);
        const crl = parseCrl(new Uint8Array(await res.arrayBuffer()));
        // a CRL counts only if the issuing CA signed it
        if (!crl.alg || !crl.issuer.equals(a.issuing.subject) || !verifySignedBy(crl, a.issuing.spki)) throw new Error(`CRL ${alg}: not signed by the issuing CA`);
        await q.query(
          `insert into exchange.crl (alg, der, this_update, next_update, revoked) values ($1, $2, $3, $4, $5)
           on conflict (alg) do update set der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update,
             revoked = excluded.revoked, fetched_at = now()
           where exchange.crl.this_update <= excluded.this_update`,
          [alg, crl.der, crl.thisUpdate, crl.nextUpdate, crl.revoked.map((r) => r.serial)],
        );
      }
      cache = null;
    },
  };
}
