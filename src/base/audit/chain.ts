// The audit entry as stored and hashed: turning an event into storable fields (refusing what is a
// caller's bug, making safe what may be hostile input), and the canonical form every entry's hash is
// computed over. The SQL function audit.entry_hash (migrations/001_log.sql) computes the same form when
// appending; verification recomputes it here, so the two implementations check each other.
import { createHash } from 'node:crypto';

export interface AuditActor {
  kind: 'citizen' | 'staff' | 'enterprise' | 'system' | 'anonymous';
  id: string;
  /** department code */
  department?: string;
}

export interface AuditEvent {
  actor: AuditActor;
  /** dotted, e.g. 'auth.login', 'ca.certificate.issue', 'population.person.read', 'role.grant' */
  action: string;
  resource: { type: string; id: string };
  /** the resident ID number whose personal data this touches (drives "who looked at my data") */
  subject?: string;
  /** why (for reads of personal data) */
  purpose?: string;
  outcome: 'ok' | 'denied' | 'error';
  requestId?: string;
  ip?: string;
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  /** UTC, microseconds: 2026-03-01T08:15:02.123456Z */
  at: string;
  actor: AuditActor;
  action: string;
  resource: { type: string; id: string };
  subject: string | null;
  purpose: string | null;
  outcome: 'ok' | 'denied' | 'error';
  requestId: string | null;
  ip: string | null;
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

/** An event a caller got wrong (unknown kind, malformed action, details that are not JSON): a bug, refused. */
export class AuditInputError extends Error {}

/** The columns of audit.entry as text, in the form they are hashed. */
export interface EntryRow {
  seq: number;
  at: string;
  actor_kind: string;
  actor_id: string;
  actor_department: string | null;
  action: string;
  resource_type: string;
  resource_id: string;
  subject: string | null;
  purpose: string | null;
  outcome: string;
  request_id: string | null;
  ip: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

export type AppendFields = Omit<EntryRow, 'seq' | 'at' | 'prev_hash' | 'hash'>;

export const GENESIS_HASH = '0'.repeat(64);

const ACTOR_KINDS = new Set(['citizen', 'staff', 'enterprise', 'system', 'anonymous']);
const OUTCOMES = new Set(['ok', 'denied', 'error']);
export const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;
const RESOURCE_TYPE = /^[a-z][a-z0-9_.-]*$/;

/** longest stored value of each free-text field (UTF-16 code units); longer input is cut, marked with … */
export const LIMITS = { actorId: 200, department: 64, resourceId: 500, subject: 64, purpose: 500, requestId: 128, ip: 64, detailString: 2000, details: 16_384 } as const;

// PostgreSQL text cannot hold U+0000, and UTF-8 cannot encode a lone surrogate: both become U+FFFD,
// visibly, rather than failing the audited action or silently disappearing.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function storableText(s: string, max: number): string {
  let t = s.replace(UNSTORABLE, '\uFFFD');
  if (t.length > max) {
    let cut = max - 1;
    if (/[\uD800-\uDBFF]/.test(t[cut - 1] ?? '')) cut--; // never split a surrogate pair
    t = t.slice(0, cut) + '…';
  }
  return t;
}

/** the stored form of a resident ID number (ID numbers end in X, never x) */
export function normaliseSubject(idNumber: string): string {
  return storableText(idNumber.trim().toUpperCase(), LIMITS.subject);
}

function optional(s: string | undefined | null, max: number): string | null {
  return s === undefined || s === null ? null : storableText(String(s), max);
}

function sortedJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[storableText(k, LIMITS.detailString)] = sortedJson((value as Record<string, unknown>)[k]);
    return out;
  }
  if (typeof value === 'string') return storableText(value, LIMITS.detailString);
  return value;
}

/**
 * details as canonical JSON text: keys sorted by UTF-16 code units, strings made storable, numbers as
 * JavaScript writes them (RFC 8785). Too large: replaced by its size and SHA-256, so it is still evident.
 */
export function canonicalDetails(details: Record<string, unknown> | undefined): string | null {
  if (details === undefined || details === null) return null;
  if (typeof details !== 'object' || Array.isArray(details)) throw new AuditInputError('audit details must be an object');
  let plain: unknown;
  try {
    // toJSON (dates), dropping undefined and functions, NaN to null; bigint becomes a decimal string
    plain = JSON.parse(JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  } catch (err) {
    throw new AuditInputError(`audit details must be JSON-serialisable: ${(err as Error).message}`);
  }
  const text = JSON.stringify(sortedJson(plain));
  if (text.length <= LIMITS.details) return text;
  return JSON.stringify({ _truncated: { chars: text.length, sha256: createHash('sha256').update(text).digest('hex') } });
}

/** The event as the columns it is stored in; throws AuditInputError for what only a bug produces. */
export function toFields(e: AuditEvent): AppendFields {
  if (!e || typeof e !== 'object' || !e.actor || !e.resource) throw new AuditInputError('an audit event needs actor, action, resource and outcome');
  if (!ACTOR_KINDS.has(e.actor.kind)) throw new AuditInputError(`audit actor.kind ${JSON.stringify(e.actor.kind)} is not one of ${[...ACTOR_KINDS].join(', ')}`);
  if (typeof e.action !== 'string' || e.action.length > 128 || !ACTION.test(e.action)) {
    throw new AuditInputError(`audit action ${JSON.stringify(String(e.action).slice(0, 140))} is not dotted lower-case (e.g. population.person.read)`);
  }
  if (typeof e.resource.type !== 'string' || e.resource.type.length > 64 || !RESOURCE_TYPE.test(e.resource.type)) {
    throw new AuditInputError(`audit resource.type ${JSON.stringify(String(e.resource.type).slice(0, 80))} is not a lower-case name (e.g. person)`);
  }
  if (!OUTCOMES.has(e.outcome)) throw new AuditInputError(`audit outcome ${JSON.stringify(e.outcome)} is not one of ok, denied, error`);
  const subject = e.subject === undefined || e.subject === null ? null : normaliseSubject(String(e.subject));
  return {
    actor_kind: e.actor.kind,
    actor_id: storableText(String(e.actor.id ?? ''), LIMITS.actorId),
    actor_department: optional(e.actor.department, LIMITS.department),
    action: e.action,
    resource_type: e.resource.type,
    resource_id: storableText(String(e.resource.id ?? ''), LIMITS.resourceId),
    subject: subject === '' ? null : subject,
    purpose: optional(e.purpose, LIMITS.purpose),
    outcome: e.outcome,
    request_id: optional(e.requestId, LIMITS.requestId),
    ip: optional(e.ip, LIMITS.ip),
    details: canonicalDetails(e.details),
  };
}

/**
 * The canonical form of an entry: the RFC 8785 (JCS) serialisation of one flat JSON object whose
 * members are the entry's fields except its own hash, in code-point order; every value a string or
 * null except seq, an integer. JSON.stringify writes exactly that for an object built in this order.
 */
export function canonicalEntry(r: Omit<EntryRow, 'hash'>): string {
  return JSON.stringify({
    action: r.action,
    actor_department: r.actor_department,
    actor_id: r.actor_id,
    actor_kind: r.actor_kind,
    at: r.at,
    details: r.details,
    ip: r.ip,
    outcome: r.outcome,
    prev_hash: r.prev_hash,
    purpose: r.purpose,
    request_id: r.request_id,
    resource_id: r.resource_id,
    resource_type: r.resource_type,
    seq: r.seq,
    subject: r.subject,
  });
}

export function entryHash(r: Omit<EntryRow, 'hash'>): string {
  return createHash('sha256').update(canonicalEntry(r), 'utf8').digest('hex');
}

/** the select list that reads an entry as EntryRow (at in the canonical UTC form) */
export const ENTRY_COLUMNS = `seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, actor_kind, actor_id, actor_department,
  action, resource_type, resource_id, subject, purpose, outcome, request_id, ip, details, prev_hash, hash`;

export function toEntry(r: EntryRow): AuditEntry {
  let details: Record<string, unknown> | null = null;
  if (r.details !== null) {
    try {
      details = JSON.parse(r.details) as Record<string, unknown>;
    } catch {
      details = { _unparsable: r.details }; // only if edited outside the app; verification says so
    }
  }
  return {
    seq: r.seq,
    at: r.at,
    actor: { kind: r.actor_kind as AuditActor['kind'], id: r.actor_id, ...(r.actor_department !== null ? { department: r.actor_department } : {}) },
    action: r.action,
    resource: { type: r.resource_type, id: r.resource_id },
    subject: r.subject,
    purpose: r.purpose,
    outcome: r.outcome as AuditEntry['outcome'],
    requestId: r.request_id,
    ip: r.ip,
    details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
