// Batch signing: one signature over the Merkle root of a batch of events, and per event an
// inclusion proof. SM2 verifies only hundreds of signatures a second in JavaScript (FACTS.md), so a
// receiver verifies one signature per batch and a few SHA-256 per event instead.
//
// Leaf of event i = eventHash(event) = SHA-256(signing input), the same bytes a single-event
// signature covers, so a batched event is bound to exactly the same attributes and digest.
import type { KeyObject } from 'node:crypto';
import { algOfKey, isAlg, sign, spkiDer, verify, type Alg } from '../identity/crypto/index.ts';
import { canonicalJson, sha256 } from './canonical.ts';
import { eventHash, parseEvent, sealEvent, verifySealed, type EnvelopeOptions, type ExchangeEvent, type UnsignedEvent, type VerifyResult } from './envelope.ts';
import { merkleTree, verifyInclusion } from './merkle.ts';

export const BATCH_TYPE = 'gusu.exchange.batch.v1';

export interface BatchHeader {
  type: typeof BATCH_TYPE;
  /** the sender member: every event of the batch must carry it as gusumember */
  member: string;
  alg: Alg;
  /** hex Merkle root (RFC 6962) of the events' eventHash */
  root: string;
  size: number;
  /** base64url DER over batchSigningInput(header) */
  sig: string;
}

export interface InclusionProof {
  index: number;
  /** hex sibling hashes, leaf upward */
  path: string[];
}

export function batchSigningInput(h: Omit<BatchHeader, 'sig'> | BatchHeader): string {
  return canonicalJson({ type: h.type, member: h.member, alg: h.alg, root: h.root, size: h.size });
}

/** Seals every event (digest and alg, no gususig) and signs their Merkle root once. */
export function signBatch(events: readonly UnsignedEvent[], privateKey: string | KeyObject, alg: Alg): { header: BatchHeader; events: ExchangeEvent[]; proofs: InclusionProof[] } {
  if (events.length === 0) throw new RangeError('an empty batch');
  const sealed = events.map((e) => sealEvent(e, alg));
  const member = sealed[0]!.gusumember;
  if (sealed.some((e) => e.gusumember !== member)) throw new TypeError('every event of a batch has the same gusumember');
  const { root, proofs } = merkleTree(sealed.map((e) => eventHash(e)));
  const body = { type: BATCH_TYPE, member, alg, root: root.toString('hex'), size: sealed.length } as const;
  const header: BatchHeader = { ...body, sig: sign(alg, privateKey, batchSigningInput(body)).toString('base64url') };
  return { header, events: sealed, proofs: proofs.map((p, index) => ({ index, path: p.map((b) => b.toString('hex')) })) };
}

/**
 * Remembers batch headers whose signature verified, keyed by header and key, so the events of one
 * batch cost one signature verification. `checks` counts signature verifications actually done.
 */
export class VerifiedBatches {
  checks = 0;
  private readonly seen = new Map<string, boolean>();
  private readonly keyIds = new WeakMap<KeyObject, string>();
  constructor(private readonly max = 4096) {}

  /** a key's id: its SPKI's SHA-256 (a KeyObject's once, remembered by identity) */
  private keyId(publicKey: string | Uint8Array | KeyObject): string | null {
    if (typeof publicKey === 'string' || publicKey instanceof Uint8Array) return sha256(typeof publicKey === 'string' ? publicKey : Buffer.from(publicKey)).toString('hex');
    let id = this.keyIds.get(publicKey);
    if (!id) {
      try {
        id = sha256(spkiDer(publicKey)).toString('hex');
      } catch {
        return null;
      }
      this.keyIds.set(publicKey, id);
    }
    return id;
  }

  verifyHeader(header: BatchHeader, publicKey: string | Uint8Array | KeyObject): boolean {
    const keyId = this.keyId(publicKey);
    const cacheKey = keyId ? `${keyId}|${batchSigningInput(header)}|${header.sig}` : null;
    if (cacheKey) {
      const hit = this.seen.get(cacheKey);
      if (hit !== undefined) return hit;
    }
    this.checks++;
    const ok = isAlg(header.alg) && typeof header.sig === 'string' && verify(header.alg, publicKey, batchSigningInput(header), Buffer.from(header.sig, 'base64url'));
    if (cacheKey) {
      this.seen.set(cacheKey, ok);
      if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
    }
    return ok;
  }
}

const defaultBatches = new VerifiedBatches();

function wellFormedHeader(h: BatchHeader): boolean {
  return (
    !!h &&
    h.type === BATCH_TYPE &&
    typeof h.member === 'string' &&
    typeof h.root === 'string' &&
    /^[0-9a-f]{64}$/.test(h.root) &&
    Number.isSafeInteger(h.size) &&
    h.size > 0 &&
    typeof h.sig === 'string' &&
    /^[A-Za-z0-9_-]+$/.test(h.sig)
  );
}

/** Verifies an event signed as part of a batch: its attributes and digest, its inclusion proof, and the batch signature (once per batch). */
export function verifyBatchedEvent(
  event: string | unknown,
  proof: InclusionProof,
  header: BatchHeader,
  publicKey: string | Uint8Array | KeyObject,
  opts: EnvelopeOptions & { verified?: VerifiedBatches } = {},
): VerifyResult {
  const parsed = parseEvent(event, opts);
  if (!parsed.ok) return parsed;
  const r = verifyBatchedParsed(parsed.event, proof, header, publicKey, opts);
  return r.ok ? { ok: true } : r;
}

/** verifyBatchedEvent for an event parseEvent already returned; on success also its leaf (eventHash). */
export function verifyBatchedParsed(
  e: ExchangeEvent,
  proof: InclusionProof,
  header: BatchHeader,
  publicKey: string | Uint8Array | KeyObject,
  opts: { verified?: VerifiedBatches } = {},
): VerifyResult & { hash?: Buffer } {
  if (!wellFormedHeader(header)) return { ok: false, reason: 'malformed', detail: 'malformed batch header' };
  if (!proof || !Array.isArray(proof.path) || proof.path.some((p) => typeof p !== 'string' || !/^[0-9a-f]{64}$/.test(p))) return { ok: false, reason: 'malformed', detail: 'malformed inclusion proof' };
  if (!isAlg(header.alg)) return { ok: false, reason: 'unsupported-alg', detail: 'batch alg is not ecdsa-p256-sha256 or sm2-sm3' };
  if (e.gusualg !== header.alg) return { ok: false, reason: 'alg-mismatch', detail: 'the event gusualg differs from the batch alg' };
  if (e.gusumember !== header.member) return { ok: false, reason: 'bad-signature', detail: 'the event sender is not the batch signer' };
  try {
    if (algOfKey(publicKey) !== header.alg) return { ok: false, reason: 'alg-mismatch', detail: `batch alg ${header.alg} does not match the sender key` };
  } catch (err) {
    return { ok: false, reason: 'bad-signature', detail: `unusable public key: ${(err as Error).message}` };
  }
  const verified = opts.verified ?? defaultBatches;
  let hash: Buffer | undefined;
  const r = verifySealed(e, publicKey, (input) => {
    hash = sha256(input);
    const included = verifyInclusion(hash, proof.index, header.size, proof.path.map((p) => Buffer.from(p, 'hex')), Buffer.from(header.root, 'hex'));
    return included && verified.verifyHeader(header, publicKey);
  });
  return r.ok ? { ok: true, hash } : r;
}

