// The exchange envelope: a CloudEvents 1.0 event in structured-mode JSON, signed by its sender.
//
// Extension attributes (CloudEvents names: lower-case ASCII letters and digits, at most 20):
//   gusumember    sender member id                       gusukey       ordering key (e.g. an ID number)
//   gusuresource  catalog resource id                    gusudigest    SHA-256 hex of canonicalJson(data)
//   gusualg       'ecdsa-p256-sha256' | 'sm2-sm3'        gususig       base64url DER signature
// The signature covers the signing input: canonicalJson of every attribute except gususig (and
// except data, which the digest stands for). See docs/decisions/0010-exchange-envelope.md.
import { algOfKey, isAlg, KeyError, sign, verify, type Alg } from '../identity/crypto/index.ts';
import type { KeyObject } from 'node:crypto';
import { CanonicalError, canonicalJson, digestOf, sha256 } from './canonical.ts';

export type ExtensionValue = string | number | boolean;

/** A CloudEvents 1.0 event as the exchange carries it. */
export interface ExchangeEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  data: unknown;
  gusumember: string;
  gusuresource: string;
  gusukey?: string;
  gusudigest: string;
  gusualg: Alg;
  gususig?: string;
  /** other extension attributes: signed like the rest */
  [extension: string]: unknown;
}

/** what a sender fills in; signEvent adds gusudigest, gusualg and gususig */
export type UnsignedEvent = Omit<ExchangeEvent, 'gusudigest' | 'gusualg' | 'gususig'> & { gusudigest?: string; gusualg?: Alg; gususig?: never };

export type RefusalReason = 'malformed' | 'oversized' | 'unsigned' | 'unsupported-alg' | 'alg-mismatch' | 'digest-mismatch' | 'bad-signature';

export type VerifyResult = { ok: true } | { ok: false; reason: RefusalReason; detail: string };
export type ParseResult = { ok: true; event: ExchangeEvent } | { ok: false; reason: 'malformed' | 'oversized'; detail: string };

export interface EnvelopeOptions {
  /** largest accepted event, in bytes of its JSON text (or of its canonical JSON for an object) */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 1024 * 1024;

export const CORE_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema'] as const;
export const GUSU_ATTRIBUTES = ['gusumember', 'gusuresource', 'gusukey', 'gusudigest', 'gusualg', 'gususig'] as const;
const KNOWN = new Set<string>([...CORE_ATTRIBUTES, ...GUSU_ATTRIBUTES, 'data']);

/** CloudEvents 1.0 attribute naming: lower-case ASCII letters and digits; we hold to its 20-character SHOULD */
export const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;
const ID = /^[\x21-\x7E]{1,200}$/;
// RFC 3986 URI-reference: only its characters, percent-escapes well formed, a scheme (if any) well formed
const URI_CHARS = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const SCHEME_PREFIX = /^[^/?#]*:/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const TYPE = /^[a-z0-9]+(?:[-_][a-z0-9]+)*(?:\.[a-z0-9]+(?:[-_][a-z0-9]+)*)+$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const MEMBER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const RESOURCE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const JSON_MEDIA = /^application\/(?:[A-Za-z0-9.+-]+\+)?json(?:\s*;.*)?$/i;
const HEX64 = /^[0-9a-f]{64}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const CONTROL = /[\u0000-\u001F\u007F]/;

export function isUriReference(s: string): boolean {
  if (s.length === 0 || s.length > 2048 || !URI_CHARS.test(s)) return false;
  if (SCHEME_PREFIX.test(s) && !s.startsWith('/') && !SCHEME.test(s)) return false;
  return true;
}

export function isRfc3339(s: string): boolean {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return false;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d > days) return false;
  if (m[8] && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return true;
}

class Malformed extends Error {}

function need(cond: boolean, detail: string): asserts cond {
  if (!cond) throw new Malformed(detail);
}

function shortText(v: unknown, name: string, max: number): void {
  need(typeof v === 'string' && v.length > 0 && v.length <= max && !CONTROL.test(v), `${name} must be a non-empty string of at most ${max} characters without control characters`);
}

/** Checks the attributes of an event object; throws Malformed. Signature and digest are not checked here. */
function checkAttributes(e: Record<string, unknown>, requireSigned: boolean): void {
  need(e.specversion === '1.0', 'specversion must be "1.0"');
  need(typeof e.id === 'string' && ID.test(e.id), 'id must be 1 to 200 printable ASCII characters');
  need(typeof e.source === 'string' && isUriReference(e.source), 'source must be a URI-reference');
  need(typeof e.type === 'string' && e.type.length <= 256 && TYPE.test(e.type), 'type must be a dotted lower-case name such as cn.gov.suzhou.population.person.updated');
  if (e.subject !== undefined) shortText(e.subject, 'subject', 1024);
  if (e.time !== undefined) need(typeof e.time === 'string' && isRfc3339(e.time), 'time must be an RFC 3339 timestamp');
  if (e.datacontenttype !== undefined) need(typeof e.datacontenttype === 'string' && JSON_MEDIA.test(e.datacontenttype), 'datacontenttype must be a JSON media type (structured mode carries JSON data)');
  if (e.dataschema !== undefined) need(typeof e.dataschema === 'string' && isUriReference(e.dataschema) && SCHEME.test(e.dataschema), 'dataschema must be an absolute URI');
  need('data' in e && e.data !== undefined, 'data is required (JSON; data_base64 is not accepted)');
  need(typeof e.gusumember === 'string' && MEMBER.test(e.gusumember), 'gusumember must be a member id');
  need(typeof e.gusuresource === 'string' && RESOURCE.test(e.gusuresource), 'gusuresource must be a catalog resource id');
  if (e.gusukey !== undefined) shortText(e.gusukey, 'gusukey', 200);
  if (requireSigned || e.gusudigest !== undefined) need(typeof e.gusudigest === 'string' && HEX64.test(e.gusudigest), 'gusudigest must be 64 lower-case hex digits');
  if (requireSigned || e.gusualg !== undefined) need(typeof e.gusualg === 'string' && e.gusualg.length > 0, 'gusualg is required');
  if (e.gususig !== undefined) need(typeof e.gususig === 'string' && BASE64URL.test(e.gususig) && e.gususig.length <= 256, 'gususig must be base64url (empty counts as unsigned)');
  for (const [k, v] of Object.entries(e)) {
    if (KNOWN.has(k)) continue;
    need(ATTRIBUTE_NAME.test(k), `attribute name ${JSON.stringify(k.slice(0, 40))} is not lower-case letters and digits (at most 20)`);
    need(typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v)), `extension ${k} must be a string, boolean or integer`);
    if (typeof v === 'string') need(!CONTROL.test(v) && v.length <= 1024, `extension ${k} is too long or has control characters`);
  }
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * An event from its JSON text (or an already-parsed object), every required attribute checked.
 * Signature and digest are verifyEvent's business.
 */
export function parseEvent(json: string | unknown, opts: EnvelopeOptions = {}): ParseResult {
  const max = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let value: unknown = json;
  if (typeof json === 'string') {
    if (json.length > max || byteLength(json) > max) return { ok: false, reason: 'oversized', detail: `larger than ${max} bytes` };
    try {
      value = JSON.parse(json);
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: `not JSON: ${(err as Error).message}` };
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'malformed', detail: 'an event is a JSON object' };
  try {
    const text = canonicalJson(value);
    if (typeof json !== 'string' && byteLength(text) > max) return { ok: false, reason: 'oversized', detail: `larger than ${max} bytes` };
    checkAttributes(value as Record<string, unknown>, true);
  } catch (err) {
    if (err instanceof Malformed || err instanceof CanonicalError) return { ok: false, reason: 'malformed', detail: err.message };
    throw err;
  }
  return { ok: true, event: value as ExchangeEvent };
}

/** The bytes a sender signs: canonicalJson of every attribute except gususig and data. */
export function signingInput(event: Omit<ExchangeEvent, 'gususig'> | ExchangeEvent): string {
  const attrs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) if (k !== 'gususig' && k !== 'data' && v !== undefined) attrs[k] = v;
  return canonicalJson(attrs);
}

/** SHA-256 of the signing input: what a batch's Merkle tree has as this event's leaf. */
export function eventHash(event: Omit<ExchangeEvent, 'gususig'> | ExchangeEvent): Buffer {
  return sha256(signingInput(event));
}

/** The event with its digest and algorithm set (and no signature): what both signEvent and signBatch cover. */
export function sealEvent(event: UnsignedEvent, alg: Alg): ExchangeEvent {
  if (!isAlg(alg)) throw new KeyError(`unsupported algorithm ${String(alg)}`);
  const { gususig: _drop, ...rest } = event as UnsignedEvent & { gususig?: string };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) out[k] = v;
  out.specversion = '1.0';
  out.gusudigest = digestOf(event.data);
  out.gusualg = alg;
  try {
    checkAttributes(out, true);
  } catch (err) {
    if (err instanceof Malformed) throw new TypeError(`cannot sign a malformed event: ${err.message}`);
    throw err;
  }
  return out as ExchangeEvent;
}

/** Signs an event with the sender member's key; sets gusudigest, gusualg and gususig. */
export function signEvent(event: UnsignedEvent, privateKey: string | KeyObject, alg: Alg): ExchangeEvent {
  const sealed = sealEvent(event, alg);
  const sig = sign(alg, privateKey, signingInput(sealed));
  return { ...sealed, gususig: sig.toString('base64url') };
}

/**
 * Parses (when given text) and verifies an event against the sender's public key, cheapest checks
 * first: size, attributes, signature present, algorithm, digest of data, signature.
 */
export function verifyEvent(event: string | unknown, publicKey: string | Uint8Array | KeyObject, opts: EnvelopeOptions = {}): VerifyResult {
  const parsed = parseEvent(event, opts);
  if (!parsed.ok) return parsed;
  const e = parsed.event;
  if (e.gususig === undefined || e.gususig === '') return { ok: false, reason: 'unsigned', detail: 'no gususig' };
  return verifySealed(e, publicKey, (input) => verify(e.gusualg, publicKey, input, Buffer.from(e.gususig!, 'base64url')));
}

/** shared by verifyEvent and verifyBatchedEvent: algorithm, key family and digest, then check(signingInput) */
export function verifySealed(e: ExchangeEvent, publicKey: string | Uint8Array | KeyObject, check: (input: string) => boolean): VerifyResult {
  if (!isAlg(e.gusualg)) return { ok: false, reason: 'unsupported-alg', detail: `gusualg ${JSON.stringify(String(e.gusualg).slice(0, 40))} is not ecdsa-p256-sha256 or sm2-sm3` };
  let keyAlg: Alg;
  try {
    keyAlg = algOfKey(publicKey);
  } catch (err) {
    return { ok: false, reason: 'bad-signature', detail: `unusable public key: ${(err as Error).message}` };
  }
  if (keyAlg !== e.gusualg) return { ok: false, reason: 'alg-mismatch', detail: `gusualg is ${e.gusualg} but the sender's key is ${keyAlg}` };
  if (digestOf(e.data) !== e.gusudigest) return { ok: false, reason: 'digest-mismatch', detail: 'gusudigest is not the SHA-256 of the canonical data' };
  if (!check(signingInput(e))) return { ok: false, reason: 'bad-signature', detail: 'the signature does not verify under the sender key' };
  return { ok: true };
}

/** Same message: same id and same digest (a redelivery). Same id with another digest is a replay attempt. */
export function sameEvent(a: Pick<ExchangeEvent, 'id' | 'gusudigest'>, b: Pick<ExchangeEvent, 'id' | 'gusudigest'>): boolean {
  return a.id === b.id && a.gusudigest === b.gusudigest;
}
