// How a member system (or a peer node) proves who sends a request to a node: it signs the request
// with its certificate's key. Headers:
//   X-Road-Client: SZ/GOV/SZ-GA/hukou      (X-GovStack-Client is read as the same)
//     or X-Gusu-Node: node-320505           (node to node)
//   X-Gusu-Date: 2026-11-28T01:23:45Z       (within CLOCK_SKEW_S of the node's clock)
//   X-Gusu-Signature: base64url DER signature, by the certificate's algorithm
// over canonicalJson({ by, date, method, path, body }) where path is the request target (path and
// query, as sent) and body is the SHA-256 hex of the raw body bytes ('' hashes as the empty string),
// or UNSIGNED_PAYLOAD where a route allows it (bulk parts, which the batch's signed digest covers).
import { sign, verify, type Alg } from '../identity/crypto/index.ts';
import type { KeyObject } from 'node:crypto';
import { canonicalJson, sha256 } from './canonical.ts';

export const CLOCK_SKEW_S = 300;
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface RequestToSign {
  /** member id (X-Road client) or 'node:<id>' */
  by: string;
  date: string;
  method: string;
  path: string;
  /** SHA-256 hex of the raw body, or UNSIGNED_PAYLOAD */
  body: string;
}

export function requestSigningInput(r: RequestToSign): string {
  return canonicalJson({ by: r.by, date: r.date, method: r.method.toUpperCase(), path: r.path, body: r.body });
}

export function bodyDigest(body: string | Uint8Array | undefined | null): string {
  return sha256(body ?? '').toString('hex');
}

/** The headers a member (or, with node set, a node) sends with a signed request. */
export function signRequest(
  who: { member: string } | { node: string },
  key: { privateKey: string | KeyObject; alg: Alg },
  req: { method: string; path: string; body?: string | Uint8Array | null; unsignedPayload?: boolean; now?: Date },
): Record<string, string> {
  const date = (req.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const by = 'member' in who ? who.member : `node:${who.node}`;
  const input = requestSigningInput({ by, date, method: req.method, path: req.path, body: req.unsignedPayload ? UNSIGNED_PAYLOAD : bodyDigest(req.body) });
  const sig = sign(key.alg, key.privateKey, input).toString('base64url');
  return {
    ...('member' in who ? { 'x-road-client': who.member } : { 'x-gusu-node': who.node }),
    'x-gusu-date': date,
    'x-gusu-signature': sig,
  };
}

export type RequestCheck = { ok: true; by: string; kind: 'member' | 'node' } | { ok: false; reason: 'unsigned' | 'stale' | 'malformed'; detail: string };

/** Reads who claims to sign and checks the date; the caller then verifies the signature with that party's key. */
export function readSignedHeaders(headers: Record<string, string | string[] | undefined>, now = Date.now()): RequestCheck & { date?: string; sig?: Buffer } {
  const one = (n: string) => {
    const v = headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  const node = one('x-gusu-node');
  const member = one('x-road-client') ?? one('x-govstack-client');
  const date = one('x-gusu-date');
  const sig = one('x-gusu-signature');
  if (!sig) return { ok: false, reason: 'unsigned', detail: 'no X-Gusu-Signature header: every exchange request is signed by its member (docs/exchange.md)' };
  if (!node && !member) return { ok: false, reason: 'unsigned', detail: 'a signature without X-Road-Client (or X-Gusu-Node) naming the signer' };
  if (!date || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(date) || Number.isNaN(Date.parse(date))) {
    return { ok: false, reason: 'malformed', detail: 'X-Gusu-Date must be an RFC 3339 UTC time such as 2026-11-28T01:23:45Z' };
  }
  if (Math.abs(Date.parse(date) - now) > CLOCK_SKEW_S * 1000) return { ok: false, reason: 'stale', detail: `X-Gusu-Date ${date} is more than ${CLOCK_SKEW_S} s from the node's clock` };
  if (!/^[A-Za-z0-9_-]{16,300}$/.test(sig)) return { ok: false, reason: 'malformed', detail: 'X-Gusu-Signature must be base64url' };
  if (node && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(node)) return { ok: false, reason: 'malformed', detail: 'X-Gusu-Node is not a node id' };
  if (member && (member.length > 255 || !/^[A-Za-z0-9-]+\/[A-Z]+\/[A-Za-z0-9-]+\/[A-Za-z0-9-]+$/.test(member))) {
    return { ok: false, reason: 'malformed', detail: 'X-Road-Client must be INSTANCE/CLASS/MEMBER/SUBSYSTEM, e.g. SZ/GOV/SZ-GA/hukou' };
  }
  return node ? { ok: true, by: `node:${node}`, kind: 'node', date, sig: Buffer.from(sig, 'base64url') } : { ok: true, by: member!, kind: 'member', date, sig: Buffer.from(sig, 'base64url') };
}

export function verifyRequestSignature(alg: Alg, publicKey: string | Uint8Array | KeyObject, r: RequestToSign, sig: Uint8Array): boolean {
  try {
    return verify(alg, publicKey, requestSigningInput(r), sig);
  } catch {
    return false;
  }
}
