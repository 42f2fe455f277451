// This exchange node: who it is in the city's network (profile network.json), its signing key and
// certificate (kind 'node', from the municipal CA), and the peers it knows. The hub (and a node
// without an upstream: the one-process demo) gets its certificate from the CA in its own database;
// a division node enrols with the hub: it sends a CSR and receives its certificate and the CA's
// certificates, which become its trust anchors (trust.ts).
import crypto, { type KeyObject } from 'node:crypto';
import type { Queryable } from '../../db/index.ts';
import type { ModuleContext } from '../../module.ts';
import { buildCsr, caCertificatePem, caContextFor, issueCertificate, parseCertificate, type IssuedCertificate } from '../identity/ca/index.ts';
import { openKey, sealKey } from '../identity/ca/keystore.ts';
import { buildName } from '../identity/ca/x509.ts';
import { ALGS, generateKeyPair, keySigner, publicKeyOf, type Alg } from '../identity/crypto/index.ts';
import type { ExchangeConfig } from '../../config/index.ts';

export interface SelfNode {
  id: string;
  kind: 'hub' | 'node';
  name: string;
  alg: Alg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  certPem: string | null;
  certSerial: string | null;
  /** the hub's internal base URL, for a division node */
  upstreamUrl: string | null;
  /** the upstream node's id (null on the hub) */
  upstream: string | null;
}

export interface NodeRow {
  id: string;
  kind: 'hub' | 'node';
  name: string;
  name_en: string | null;
  division_code: string | null;
  upstream: string | null;
  url: string | null;
  is_self: boolean;
  cert_pem: string | null;
  cert_serial: string | null;
  alg: Alg | null;
  status: 'unknown' | 'up' | 'down';
  last_contact: Date | null;
  last_error: string | null;
}

export class EnrolError extends Error {}

const NODE_ALG: Alg = 'ecdsa-p256-sha256';
const sealId = (nodeId: string) => `exchange-node:${nodeId}`;

/** Writes the profile's network into exchange.node (names, divisions, upstreams), keeping what was learnt (URLs, certificates). */
export async function syncNetwork(q: Queryable, ctx: Pick<ModuleContext, 'profile'>, self: string): Promise<void> {
  const nodes = ctx.profile.network;
  if (!nodes.some((n) => n.id === self)) throw new Error(`GUSU_EXCHANGE_NODE=${self} names no node of the profile's network.json (${nodes.map((n) => n.id).join(', ')})`);
  // upstreams refer to other rows: hubs first
  const ordered = [...nodes].sort((a, b) => (a.upstream ? 1 : 0) - (b.upstream ? 1 : 0));
  for (const n of ordered) {
    await q.query(
      `insert into exchange.node (id, kind, name, name_en, division_code, upstream, is_self)
       values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (id) do update set kind = excluded.kind, name = excluded.name, name_en = excluded.name_en,
         division_code = excluded.division_code, upstream = excluded.upstream`,
      [n.id, n.kind, n.name, n.nameEn ?? null, n.divisionCode ?? null, n.upstream ?? null, false],
    );
  }
  await q.query('update exchange.node set is_self = (id = $1) where is_self or id = $1', [self]);
}

function keyObjects(pkcs8Der: Buffer): { privateKey: KeyObject; publicKey: KeyObject } {
  const privateKey = crypto.createPrivateKey({ key: pkcs8Der, format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
}

/** Loads (or on first start creates) this node's key and certificate. */
export async function loadSelf(ctx: ModuleContext, cfg: ExchangeConfig): Promise<SelfNode> {
  const db = ctx.db;
  await syncNetwork(db, ctx, cfg.node);
  const ca = caContextFor(ctx);
  const row = (await db.query<NodeRow & { sealed_key: string | null }>('select * from exchange.node where id = $1', [cfg.node])).rows[0]!;
  const profileNode = ctx.profile.network.find((n) => n.id === cfg.node)!;
  let pkcs8: Buffer;
  if (row.sealed_key) {
    pkcs8 = openKey(ca.master, sealId(row.id), Buffer.from(row.sealed_key, 'base64'), null);
  } else {
    const pair = generateKeyPair(NODE_ALG);
    pkcs8 = crypto.createPrivateKey(pair.privateKey).export({ format: 'der', type: 'pkcs8' }) as Buffer;
    await db.query('update exchange.node set sealed_key = $2, alg = $3 where id = $1', [row.id, sealKey(ca.master, sealId(row.id), pkcs8).toString('base64'), NODE_ALG]);
  }
  const keys = keyObjects(pkcs8);
  const self: SelfNode = {
    id: row.id,
    kind: row.kind,
    name: row.name,
    alg: NODE_ALG,
    ...keys,
    certPem: row.cert_pem,
    certSerial: row.cert_serial,
    upstreamUrl: cfg.upstreamUrl,
    upstream: cfg.upstreamUrl ? (profileNode.upstream ?? 'hub') : null,
  };
  if (!self.certPem && !cfg.upstreamUrl) {
    // the hub, or a standalone node: the CA in this database certifies the node
    const csr = await buildCsr(keySigner(keys.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), buildName([['CN', row.name]]));
    const issued = await issueCertificate(db, ca, { kind: 'system', id: 'gusu-exchange' }, { alg: NODE_ALG, subject: { kind: 'node', nodeId: row.id }, csr });
    await storeCertificate(db, row.id, issued);
    self.certPem = issued.certificate;
    self.certSerial = issued.serial;
  }
  if (cfg.selfUrl) await db.query('update exchange.node set url = $2 where id = $1', [row.id, cfg.selfUrl]);
  await db.query(`update exchange.node set status = 'up', last_contact = now(), last_error = null where id = $1`, [row.id]);
  return self;
}

async function storeCertificate(q: Queryable, nodeId: string, issued: Pick<IssuedCertificate, 'certificate' | 'serial' | 'alg'>): Promise<void> {
  await q.query('update exchange.node set cert_pem = $2, cert_serial = $3, alg = $4 where id = $1', [nodeId, issued.certificate, issued.serial, issued.alg]);
}

export interface EnrolRequest {
  node: string;
  url: string | null;
  csr: string;
  token: string;
}

export interface EnrolResponse {
  certificate: string;
  serial: string;
  chain: string[];
  anchors: { alg: Alg; role: 'root' | 'issuing'; pem: string }[];
  hub: { id: string; name: string };
  /** the hub's own node certificate: the division verifies the hub's signed requests with it */
  hubCertificate?: string | null;
}

/** The hub's side of enrolment: checks the token and the node, issues the node's certificate. */
export async function acceptEnrolment(ctx: ModuleContext, cfg: ExchangeConfig, self: SelfNode, req: EnrolRequest): Promise<EnrolResponse> {
  if (!cfg.enrolToken) throw new EnrolError('this node accepts no enrolments (GUSU_EXCHANGE_ENROL_TOKEN is not set)');
  const a = Buffer.from(req.token ?? '');
  const b = Buffer.from(cfg.enrolToken);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) throw new EnrolError('the enrolment token does not match');
  const node = ctx.profile.network.find((n) => n.id === req.node);
  if (!node || node.id === self.id) throw new EnrolError(`no division node ${JSON.stringify(req.node)} in the network`);
  const ca = caContextFor(ctx);
  const issued = await issueCertificate(ctx.db, ca, { kind: 'system', id: `exchange-enrol:${node.id}` }, { alg: NODE_ALG, subject: { kind: 'node', nodeId: node.id }, csr: req.csr });
  await storeCertificate(ctx.db, node.id, issued);
  await ctx.db.query(`update exchange.node set url = $2, status = 'up', last_contact = now(), last_error = null where id = $1`, [node.id, req.url]);
  const anchors: EnrolResponse['anchors'] = [];
  for (const alg of ALGS) for (const role of ['root', 'issuing'] as const) anchors.push({ alg, role, pem: await caCertificatePem(ctx.db, alg, role) });
  return { certificate: issued.certificate, serial: issued.serial, chain: issued.chain, anchors, hub: { id: self.id, name: self.name } };
}

/** A division node's side: enrols with the hub if it has no certificate yet. */
export async function enrolWithUpstream(ctx: ModuleContext, cfg: ExchangeConfig, self: SelfNode, fetchImpl: typeof fetch = fetch): Promise<boolean> {
  if (self.certPem || !cfg.upstreamUrl) return false;
  if (!cfg.enrolToken) throw new EnrolError('a division node needs GUSU_EXCHANGE_ENROL_TOKEN to enrol with its hub');
  const pem = self.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const csr = await buildCsr(keySigner(pem), buildName([['CN', self.name]]));
  const res = await fetchImpl(`${cfg.upstreamUrl}/api/v1/exchange/federation/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ node: self.id, url: cfg.selfUrl, csr, token: cfg.enrolToken } satisfies EnrolRequest),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => null)) as (EnrolResponse & { detail?: string }) | null;
  if (!res.ok || !body?.certificate) throw new EnrolError(`the hub refused enrolment (${res.status}): ${body?.detail ?? 'no detail'}`);
  const cert = parseCertificate(body.certificate);
  if (!cert.spki.equals(self.publicKey.export({ format: 'der', type: 'spki' }) as Buffer)) throw new EnrolError('the hub returned a certificate for another key');
  await ctx.db.tx(async (c) => {
    await storeCertificate(c, self.id, { certificate: body.certificate, serial: body.serial, alg: NODE_ALG });
    for (const a of body.anchors) {
      await c.query(
        `insert into exchange.trust_anchor (alg, role, pem) values ($1, $2, $3)
         on conflict (alg, role) do update set pem = excluded.pem, fetched_at = now()`,
        [a.alg, a.role, a.pem],
      );
    }
    await c.query(`update exchange.node set url = $2, status = 'up', last_contact = now(), cert_pem = coalesce($3, cert_pem) where id = $1`, [self.upstream, cfg.upstreamUrl, body.hubCertificate ?? null]);
  });
  self.certPem = body.certificate;
  self.certSerial = body.serial;
  return true;
}

export function selfPublicKeyPem(self: SelfNode): string {
  return publicKeyOf(self.privateKey);
}

export async function listNodes(q: Queryable): Promise<NodeRow[]> {
  return (
    await q.query<NodeRow>(
      `select id, kind, name, name_en, division_code, upstream, url, is_self, cert_pem, cert_serial, alg, status, last_contact, last_error
         from exchange.node order by (kind = 'hub') desc, id`,
    )
  ).rows;
}
