// Receipts (回执): the receiver's signed statement that it accepted or rejected one event. A receipt is
// its own small object (not a CloudEvent), naming the event by id, source, sender and digest, signed
// over canonicalJson of every member except sig.
import type { KeyObject } from 'node:crypto';
import { algOfKey, isAlg, sign, verify, type Alg } from '../identity/crypto/index.ts';
import { CanonicalError, canonicalJson } from './canonical.ts';
import { isRfc3339, type ExchangeEvent } from './envelope.ts';

export const RECEIPT_TYPE = 'gusu.exchange.receipt.v1';

export interface Receipt {
  type: typeof RECEIPT_TYPE;
  eventid: string;
  eventsource: string;
  /** the sender of the event */
  sender: string;
  eventdigest: string;
  /** the receiving member */
  receiver: string;
  status: 'accepted' | 'rejected';
  reason?: string;
  /** RFC 3339, when the receiver decided */
  time: string;
  alg: Alg;
  /** base64url DER */
  sig: string;
}

export type ReceiptCheck = { ok: true } | { ok: false; reason: 'malformed' | 'unsupported-alg' | 'alg-mismatch' | 'event-mismatch' | 'bad-signature'; detail: string };

const MEMBER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const FIELDS = new Set(['type', 'eventid', 'eventsource', 'sender', 'eventdigest', 'receiver', 'status', 'reason', 'time', 'alg', 'sig']);

export function receiptSigningInput(r: Omit<Receipt, 'sig'> | Receipt): string {
  const { sig: _sig, ...rest } = r as Receipt;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) out[k] = v;
  return canonicalJson(out);
}

export function makeReceipt(
  event: Pick<ExchangeEvent, 'id' | 'source' | 'gusumember' | 'gusudigest'>,
  receiver: string,
  status: 'accepted' | 'rejected',
  reason: string | undefined,
  privateKey: string | KeyObject,
  alg: Alg,
  now: Date = new Date(),
): Receipt {
  if (!MEMBER.test(receiver)) throw new TypeError('receiver must be a member id');
  if (status !== 'accepted' && status !== 'rejected') throw new TypeError('status must be accepted or rejected');
  const body: Omit<Receipt, 'sig'> = {
    type: RECEIPT_TYPE,
    eventid: event.id,
    eventsource: event.source,
    sender: event.gusumember,
    eventdigest: event.gusudigest,
    receiver,
    status,
    ...(reason !== undefined ? { reason: reason.slice(0, 1000) } : {}),
    time: now.toISOString(),
    alg,
  };
  return { ...body, sig: sign(alg, privateKey, receiptSigningInput(body)).toString('base64url') };
}

/** Verifies a receipt under the receiver's key; with event, also that it answers that very event. */
export function verifyReceipt(receipt: unknown, publicKey: string | Uint8Array | KeyObject, event?: Pick<ExchangeEvent, 'id' | 'source' | 'gusumember' | 'gusudigest'>): ReceiptCheck {
  const r = receipt as Receipt;
  const bad = (detail: string): ReceiptCheck => ({ ok: false, reason: 'malformed', detail });
  if (!r || typeof r !== 'object' || Array.isArray(r)) return bad('a receipt is an object');
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) return bad(`unknown member ${k.slice(0, 40)}`);
  if (r.type !== RECEIPT_TYPE) return bad(`type must be ${RECEIPT_TYPE}`);
  if (typeof r.eventid !== 'string' || typeof r.eventsource !== 'string' || typeof r.sender !== 'string') return bad('eventid, eventsource and sender are strings');
  if (typeof r.eventdigest !== 'string' || !HEX64.test(r.eventdigest)) return bad('eventdigest must be 64 hex digits');
  if (typeof r.receiver !== 'string' || !MEMBER.test(r.receiver)) return bad('receiver must be a member id');
  if (r.status !== 'accepted' && r.status !== 'rejected') return bad('status must be accepted or rejected');
  if (r.reason !== undefined && typeof r.reason !== 'string') return bad('reason must be a string');
  if (typeof r.time !== 'string' || !isRfc3339(r.time)) return bad('time must be RFC 3339');
  if (typeof r.sig !== 'string' || !/^[A-Za-z0-9_-]+$/.test(r.sig)) return bad('sig must be base64url');
  if (!isAlg(r.alg)) return { ok: false, reason: 'unsupported-alg', detail: 'alg is not ecdsa-p256-sha256 or sm2-sm3' };
  try {
    if (algOfKey(publicKey) !== r.alg) return { ok: false, reason: 'alg-mismatch', detail: `receipt alg ${r.alg} does not match the receiver key` };
  } catch (err) {
    return { ok: false, reason: 'bad-signature', detail: `unusable public key: ${(err as Error).message}` };
  }
  if (event && (event.id !== r.eventid || event.source !== r.eventsource || event.gusumember !== r.sender || event.gusudigest !== r.eventdigest)) {
    return { ok: false, reason: 'event-mismatch', detail: 'the receipt answers another event' };
  }
  let input: string;
  try {
    input = receiptSigningInput(r);
  } catch (err) {
    if (err instanceof CanonicalError) return bad(err.message);
    throw err;
  }
  if (!verify(r.alg, publicKey, input, Buffer.from(r.sig, 'base64url'))) return { ok: false, reason: 'bad-signature', detail: 'the signature does not verify under the receiver key' };
  return { ok: true };
}
