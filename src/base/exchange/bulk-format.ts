// Bulk batches (docs/exchange.md, "Bulk batches"), the part without a database: how a file of
// records (NDJSON or CSV) is cut into records, the signed completion header, the Merkle tree over the
// records kept in blocks (so neither side holds a hash per record), the CloudEvent each record
// becomes, and the per-record proof that lets anyone holding the member's certificate check one
// record on its own. Shared by the node (bulk.ts), the SDK (bulk-client.ts) and consumers.
//
// Records. NDJSON: one JSON object per line. CSV: RFC 4180 — the first record is the header row
// naming the fields; a quoted field may hold commas, doubled quotes and line breaks, so a record may
// span lines. A record ends at LF (a CR before it is dropped); an empty record (a blank line) is no
// record. The record's bytes, without its line ending, are its Merkle leaf and travel in its proof.
import { createHash, type KeyObject } from 'node:crypto';
import { isAlg, sign, spkiDer, verify, type Alg } from '../identity/crypto/index.ts';
import { CanonicalError, canonicalJson } from './canonical.ts';
import { parseEvent, sealEvent, verifySealed, type EnvelopeOptions, type ExchangeEvent, type VerifyResult } from './envelope.ts';
import { leafHash, nodeHash, verifyInclusion } from './merkle.ts';

export const BULK_TYPE = 'gusu.exchange.bulk.v1';
/** records per Merkle block: the node publishes a block per transaction, and keeps 32 bytes per block */
export const BULK_BLOCK = 1024;
export type BulkFormat = 'ndjson' | 'csv';
export const BULK_FORMATS: readonly BulkFormat[] = ['ndjson', 'csv'];

/** The completion a member signs: the whole file by size and SHA-256, and its records by Merkle root. */
export interface BulkHeader {
  type: typeof BULK_TYPE;
  /** the node's id of the upload (a UUID) */
  id: string;
  member: string;
  resource: string;
  format: BulkFormat;
  /** the CloudEvents type of every record's event (default: the resource id) */
  eventType: string;
  /** the record field whose value becomes gusukey (ordering) */
  keyField?: string;
  /** the record field whose value becomes the event id (else `${id}:${record number}`) */
  idField?: string;
  /** bytes of the file */
  size: number;
  /** hex SHA-256 of the file */
  sha256: string;
  /** records (leaves): a CSV's header row is not one */
  records: number;
  /** hex RFC 6962 Merkle root over the records' bytes */
  root: string;
  /** CSV: the header row as it stands in the file (without its line ending) */
  csvHeader?: string;
  alg: Alg;
  /** base64url DER over bulkSigningInput(header) */
  sig: string;
}

/** A published record's proof: the signed header, the record's place and bytes, its inclusion path. */
export interface BulkProof {
  bulk: BulkHeader;
  /** 0-based record number: the leaf index */
  index: number;
  /** the record as it stands in the file (UTF-8), without its line ending */
  line: string;
  /** hex sibling hashes, leaf upward */
  path: string[];
}

const HEADER_KEYS = new Set(['type', 'id', 'member', 'resource', 'format', 'eventType', 'keyField', 'idField', 'size', 'sha256', 'records', 'root', 'csvHeader', 'alg', 'sig']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX64 = /^[0-9a-f]{64}$/;
// as envelope.ts: CloudEvents types are dotted lower-case names
const EVENT_TYPE = /^[a-z0-9]+(?:[-_][a-z0-9]+)*(?:\.[a-z0-9]+(?:[-_][a-z0-9]+)*)+$/;
const CONTROL = /[\u0000-\u001F\u007F]/;
export const MAX_CSV_HEADER = 64 * 1024;
export const MAX_CSV_FIELDS = 1000;

/** a record field name (keyField, idField): 1–100 characters, no control characters */
export function isFieldName(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 100 && !CONTROL.test(v);
}

export function isEventType(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 256 && EVENT_TYPE.test(v);
}

/** null when the header is well-formed, else what is wrong with it */
export function bulkHeaderProblem(h: unknown): string | null {
  if (!h || typeof h !== 'object' || Array.isArray(h)) return 'the header is a JSON object';
  const x = h as Record<string, unknown>;
  for (const k of Object.keys(x)) if (!HEADER_KEYS.has(k)) return `unknown header member ${JSON.stringify(k.slice(0, 40))}`;
  if (x.type !== BULK_TYPE) return `type must be ${BULK_TYPE}`;
  if (typeof x.id !== 'string' || !UUID.test(x.id)) return 'id must be the upload id (a lower-case UUID)';
  if (typeof x.member !== 'string' || x.member.length === 0 || x.member.length > 255) return 'member must be a member id';
  if (typeof x.resource !== 'string' || x.resource.length === 0 || x.resource.length > 120) return 'resource must be a resource id';
  if (x.format !== 'ndjson' && x.format !== 'csv') return 'format must be ndjson or csv';
  if (!isEventType(x.eventType)) return 'eventType must be a dotted lower-case CloudEvents type';
  if (x.keyField !== undefined && !isFieldName(x.keyField)) return 'keyField must be a field name (1 to 100 characters)';
  if (x.idField !== undefined && !isFieldName(x.idField)) return 'idField must be a field name (1 to 100 characters)';
  if (!Number.isSafeInteger(x.size) || (x.size as number) < 0) return 'size must be a whole number of bytes';
  if (typeof x.sha256 !== 'string' || !HEX64.test(x.sha256)) return 'sha256 must be 64 lower-case hex digits';
  if (!Number.isSafeInteger(x.records) || (x.records as number) < 0) return 'records must be a whole number';
  if (typeof x.root !== 'string' || !HEX64.test(x.root)) return 'root must be 64 lower-case hex digits';
  if (x.format === 'csv') {
    if (typeof x.csvHeader !== 'string' || x.csvHeader.length === 0 || Buffer.byteLength(x.csvHeader) > MAX_CSV_HEADER) return `a CSV batch names its header row in csvHeader (at most ${MAX_CSV_HEADER} bytes)`;
    const f = csvFields(x.csvHeader);
    if (typeof f === 'string') return `csvHeader: ${f}`;
    for (const k of ['keyField', 'idField'] as const) if (x[k] !== undefined && !f.includes(x[k] as string)) return `${k} ${JSON.stringify(x[k])} is not a column of csvHeader`;
  } else if (x.csvHeader !== undefined) return 'csvHeader is for CSV batches only';
  if (!isAlg(x.alg)) return 'alg must be ecdsa-p256-sha256 or sm2-sm3';
  if (typeof x.sig !== 'string' || !/^[A-Za-z0-9_-]{16,300}$/.test(x.sig)) return 'sig must be a base64url signature';
  return null;
}

/** canonicalJson of every header member but sig: what the member signs */
export function bulkSigningInput(h: Omit<BulkHeader, 'sig'> | BulkHeader): string {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (k !== 'sig' && v !== undefined) body[k] = v;
  return canonicalJson(body);
}

export function signBulkHeader(body: Omit<BulkHeader, 'sig'>, privateKey: string | KeyObject, alg: Alg): BulkHeader {
  return { ...body, sig: sign(alg, privateKey, bulkSigningInput(body)).toString('base64url') } as BulkHeader;
}

/** Header signatures that verified, remembered by key, signing input and signature (one check per batch). */
export class VerifiedBulkHeaders {
  checks = 0;
  private readonly seen = new Map<string, boolean>();
  private readonly keyIds = new WeakMap<object, string>();
  constructor(private readonly max = 4096) {}

  private keyId(key: string | Uint8Array | KeyObject): string {
    if (typeof key === 'object' && !(key instanceof Uint8Array)) {
      let id = this.keyIds.get(key);
      if (!id) this.keyIds.set(key, (id = createHash('sha256').update(spkiDer(key)).digest('hex')));
      return id;
    }
    return createHash('sha256').update(typeof key === 'string' ? Buffer.from(key) : key).digest('hex');
  }

  verify(h: BulkHeader, publicKey: string | Uint8Array | KeyObject): boolean {
    const input = bulkSigningInput(h);
    const k = `${this.keyId(publicKey)}|${createHash('sha256').update(input).digest('hex')}|${h.sig}`;
    const hit = this.seen.get(k);
    if (hit !== undefined) return hit;
    this.checks++;
    let ok = false;
    try {
      ok = isAlg(h.alg) && verify(h.alg, publicKey, input, Buffer.from(h.sig, 'base64url'));
    } catch {
      ok = false;
    }
    this.seen.set(k, ok);
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
    return ok;
  }
}

const defaultHeaders = new VerifiedBulkHeaders();

// ------------------------------------------------------------------------------------------------
// Framing: bytes in, records out, never holding more than one record (at most maxRecordBytes)

export class BulkFormatError extends Error {
  /** the upload it was found in (the SDK sets it) */
  bulkId?: string;
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'BulkFormatError';
  }
}

export interface FramedRecord {
  /** the physical line the record starts on (1-based) */
  line: number;
  /** its bytes without the line ending */
  bytes: Buffer;
  /** the byte offset just after its line ending: where the next record may start */
  end: number;
  /** the physical line number at `end` */
  nextLine: number;
}

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const COMMA = 0x2c;
// CSV lexer states: at the start of a field, in an unquoted field, in a quoted field, just after a quote inside one
const FIELD = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_SEEN = 3;

/**
 * Cuts a stream of bytes into records. CSV framing follows RFC 4180's quoting (a quote opens a quoted
 * field only at the start of a field, "" inside one is a quote); a malformed record is still one
 * record (the parser refuses it later). A record longer than maxRecordBytes, or a quoted field still
 * open at the end, is a BulkFormatError: the file cannot be read further.
 */
export class RecordFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private state = FIELD;
  private lineNo: number;
  private recordLine: number;
  private pos: number;

  constructor(
    readonly format: BulkFormat,
    readonly maxRecordBytes: number,
    start: { offset: number; line: number } = { offset: 0, line: 1 },
  ) {
    this.pos = start.offset;
    this.lineNo = start.line;
    this.recordLine = start.line;
  }

  private tooLong(): never {
    const hint = this.format === 'csv' && (this.state === QUOTED || this.state === QUOTE_SEEN) ? ' (a quoted field opened in it is not closed: an unterminated quote?)' : '';
    throw new BulkFormatError(this.recordLine, `a record of more than ${this.maxRecordBytes} bytes${hint}`);
  }

  private emit(chunk: Buffer, from: number, to: number, out: FramedRecord[]): void {
    let bytes: Buffer;
    if (this.pending.length) {
      this.pending.push(chunk.subarray(from, to));
      bytes = Buffer.concat(this.pending, this.pendingBytes + (to - from));
      this.pending = [];
      this.pendingBytes = 0;
    } else bytes = Buffer.from(chunk.subarray(from, to));
    if (bytes.length && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.maxRecordBytes) this.tooLong();
    const end = this.pos + to + 1;
    this.lineNo++;
    if (bytes.length > 0) out.push({ line: this.recordLine, bytes, end, nextLine: this.lineNo });
    this.recordLine = this.lineNo;
    this.state = FIELD;
  }

  /** Adds the next bytes; complete records are appended to out. */
  push(chunk: Uint8Array, out: FramedRecord[]): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    if (this.format === 'ndjson') {
      for (let nl = buf.indexOf(LF, start); nl >= 0; nl = buf.indexOf(LF, start)) {
        this.emit(buf, start, nl, out);
        start = nl + 1;
      }
    } else {
      let state = this.state;
      for (let j = 0; j < buf.length; j++) {
        const c = buf[j]!;
        if (state === QUOTED) {
          if (c === QUOTE) state = QUOTE_SEEN;
          else if (c === LF) this.lineNo++;
        } else if (c === LF) {
          this.emit(buf, start, j, out);
          start = j + 1;
          state = FIELD;
        } else if (state === FIELD) {
          state = c === QUOTE ? QUOTED : c === COMMA ? FIELD : UNQUOTED;
        } else if (state === UNQUOTED) {
          if (c === COMMA) state = FIELD;
        } else {
          // just after a quote in a quoted field: "" is a quote, a comma ends the field, anything else is malformed (framed as unquoted)
          state = c === QUOTE ? QUOTED : c === COMMA ? FIELD : UNQUOTED;
        }
      }
      this.state = state;
    }
    if (start < buf.length) {
      this.pending.push(Buffer.from(buf.subarray(start)));
      this.pendingBytes += buf.length - start;
      if (this.pendingBytes > this.maxRecordBytes + 1) this.tooLong();
    }
    this.pos += buf.length;
  }

  /** The end of the file: the last record (without a line ending), or a BulkFormatError. */
  end(out: FramedRecord[]): void {
    if (this.format === 'csv' && this.state === QUOTED) throw new BulkFormatError(this.recordLine, 'a quoted field opened in this record is not closed by the end of the file (an unterminated quote)');
    if (this.pendingBytes === 0) return;
    const bytes = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const rec = bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes;
    if (rec.length > this.maxRecordBytes) this.tooLong();
    if (rec.length > 0) out.push({ line: this.recordLine, bytes: rec, end: this.pos, nextLine: this.lineNo });
  }
}

// ------------------------------------------------------------------------------------------------
// Parsing a record

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** the record's text, or null when its bytes are not UTF-8 */
export function recordText(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

const stripBom = (s: string) => (s.charCodeAt(0) === 0xfeff ? s.slice(1) : s);

/** RFC 4180 fields of one record: quoted or not (an unquoted empty field is absent, a quoted one is ""), or what is wrong. */
export function parseCsvRecord(text: string): { value: string; quoted: boolean }[] | string {
  const s = stripBom(text);
  const out: { value: string; quoted: boolean }[] = [];
  let i = 0;
  for (;;) {
    if (s.charCodeAt(i) === QUOTE) {
      let v = '';
      i++;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) return `field ${out.length + 1}: an unterminated quote`;
        v += s.slice(i, q);
        if (s.charCodeAt(q + 1) === QUOTE) {
          v += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push({ value: v, quoted: true });
      if (i === s.length) return out;
      if (s.charCodeAt(i) !== COMMA) return `field ${out.length}: text after the closing quote`;
      i++;
    } else {
      const c = s.indexOf(',', i);
      const v = c < 0 ? s.slice(i) : s.slice(i, c);
      if (v.includes('"')) return `field ${out.length + 1}: a quote inside an unquoted field (quote the whole field and double the quote)`;
      if (v.includes('\r') || v.includes('\n')) return `field ${out.length + 1}: a line break outside quotes`;
      out.push({ value: v, quoted: false });
      if (c < 0) return out;
      i = c + 1;
    }
    if (out.length > MAX_CSV_FIELDS) return `more than ${MAX_CSV_FIELDS} fields`;
  }
}

const csvFieldCache = new Map<string, string[] | string>();

/** the column names of a CSV header row (unique, non-empty), or what is wrong with it */
export function csvFields(csvHeader: string): string[] | string {
  const hit = csvFieldCache.get(csvHeader);
  if (hit) return hit;
  const parsed = parseCsvRecord(csvHeader);
  let r: string[] | string;
  if (typeof parsed === 'string') r = parsed;
  else {
    const names = parsed.map((f) => f.value);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    r = names.some((n) => !isFieldName(n)) ? 'every column needs a name of 1 to 100 characters' : dup !== undefined ? `column ${JSON.stringify(dup)} appears twice` : names;
  }
  csvFieldCache.set(csvHeader, r);
  if (csvFieldCache.size > 256) csvFieldCache.delete(csvFieldCache.keys().next().value!);
  return r;
}

/** The data of a record: an NDJSON line's object, or a CSV record as { column: text } (unquoted empty fields left out). */
export function recordData(format: BulkFormat, text: string, fields: readonly string[] | null): { ok: true; data: Record<string, unknown> } | { ok: false; reason: string } {
  if (format === 'ndjson') {
    let v: unknown;
    try {
      v = JSON.parse(stripBom(text));
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message.slice(0, 200)}` };
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, reason: 'not a JSON object' };
    return { ok: true, data: v as Record<string, unknown> };
  }
  if (!fields) return { ok: false, reason: 'no CSV header' };
  const parsed = parseCsvRecord(text);
  if (typeof parsed === 'string') return { ok: false, reason: `not CSV: ${parsed}` };
  if (parsed.length !== fields.length) return { ok: false, reason: `${parsed.length} fields, the header has ${fields.length}` };
  // fromEntries defines own properties: a column named __proto__ stays a column
  return { ok: true, data: Object.fromEntries(parsed.flatMap((f, i) => (f.quoted || f.value !== '' ? [[fields[i]!, f.value]] : []))) };
}

function fieldValue(data: Record<string, unknown>, field: string, what: string): string {
  const v = Object.hasOwn(data, field) ? data[field] : undefined;
  if ((typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v))) return String(v);
  throw new TypeError(`no ${what} field ${JSON.stringify(field)} (a non-empty string or a number)`);
}

export const bulkSource = (id: string) => `urn:gusu:bulk:${id}`;

/**
 * The event record `index` of a batch becomes — every attribute derived from the signed header and
 * the record itself, so a verifier rebuilds it exactly: id (idField's value, else `${batch id}:${index
 * + 1}`), source urn:gusu:bulk:{batch id}, type eventType, gusukey (keyField's value), the data.
 */
export function bulkRecordEvent(h: Omit<BulkHeader, 'sig'> | BulkHeader, index: number, text: string): { ok: true; event: ExchangeEvent } | { ok: false; reason: string } {
  const fields = h.format === 'csv' ? csvFields(h.csvHeader ?? '') : null;
  if (typeof fields === 'string') return { ok: false, reason: `the CSV header: ${fields}` };
  const d = recordData(h.format, text, fields);
  if (!d.ok) return d;
  try {
    const id = h.idField ? fieldValue(d.data, h.idField, 'id') : `${h.id}:${index + 1}`;
    const key = h.keyField ? fieldValue(d.data, h.keyField, 'key') : undefined;
    const event = sealEvent(
      {
        specversion: '1.0',
        id,
        source: bulkSource(h.id),
        type: h.eventType,
        datacontenttype: 'application/json',
        data: d.data,
        gusumember: h.member,
        gusuresource: h.resource,
        ...(key !== undefined ? { gusukey: key } : {}),
      },
      h.alg,
    );
    return { ok: true, event };
  } catch (err) {
    if (err instanceof TypeError || err instanceof CanonicalError) return { ok: false, reason: err.message.replace(/^cannot sign a malformed event: /, '') };
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------
// The Merkle tree in blocks. In an RFC 6962 tree of n leaves every aligned run of BULK_BLOCK leaves
// (and the shorter last run) is a subtree, and the tree above them is the RFC 6962 tree over their
// roots. So the root is computed from one hash per block, and a record's path is its path inside its
// block followed by its block's path among the block roots.

const EMPTY_ROOT = createHash('sha256').digest();

function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 6962 root over already-hashed subtree roots (leaf hashes or block roots) */
export function rootOfNodes(nodes: readonly Buffer[], lo = 0, hi = nodes.length): Buffer {
  if (hi - lo === 0) return EMPTY_ROOT;
  if (hi - lo === 1) return nodes[lo]!;
  const k = split(hi - lo);
  return nodeHash(rootOfNodes(nodes, lo, lo + k), rootOfNodes(nodes, lo + k, hi));
}

/** Streams leaves into block roots; root() at the end. Memory: 32 bytes per block. */
export class BlockedTree {
  readonly blockRoots: Buffer[] = [];
  private current: Buffer[] = [];
  count = 0;
  constructor(readonly block = BULK_BLOCK) {
    if (!Number.isSafeInteger(block) || block < 1 || (block & (block - 1)) !== 0) throw new RangeError('a block is a power of two of leaves');
  }

  add(leaf: Uint8Array): void {
    this.current.push(leafHash(leaf));
    this.count++;
    if (this.current.length === this.block) this.flush();
  }

  private flush(): void {
    if (this.current.length) this.blockRoots.push(rootOfNodes(this.current));
    this.current = [];
  }

  root(): Buffer {
    this.flush();
    return new UpperTree(this.blockRoots).root();
  }
}

/** The tree over block roots: its root, and each block's path to it (perfect subtrees kept level by level). */
export class UpperTree {
  private readonly levels: Buffer[] = [];
  private readonly edge = new Map<string, Buffer>();
  readonly size: number;

  constructor(roots: readonly Buffer[]) {
    this.size = roots.length;
    let level = Buffer.concat(roots as Buffer[]);
    this.levels.push(level);
    for (let n = roots.length; n >= 2; n = Math.floor(n / 2)) {
      const next = Buffer.alloc(Math.floor(n / 2) * 32);
      for (let i = 0; i + 1 < n; i += 2) nodeHash(level.subarray(i * 32, i * 32 + 32), level.subarray(i * 32 + 32, i * 32 + 64)).copy(next, (i / 2) * 32);
      this.levels.push(next);
      level = next;
    }
  }

  private node(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n === 0) return EMPTY_ROOT;
    if ((n & (n - 1)) === 0 && lo % n === 0) {
      const h = Math.log2(n);
      const i = lo / n;
      return this.levels[h]!.subarray(i * 32, i * 32 + 32);
    }
    const key = `${lo}:${hi}`;
    let r = this.edge.get(key);
    if (!r) {
      const k = split(n);
      r = nodeHash(this.node(lo, lo + k), this.node(lo + k, hi));
      this.edge.set(key, r);
    }
    return r;
  }

  root(): Buffer {
    return Buffer.from(this.node(0, this.size));
  }

  /** sibling hashes from the block up */
  path(index: number): Buffer[] {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) throw new RangeError(`no block ${index} of ${this.size}`);
    const path: Buffer[] = [];
    let lo = 0;
    let hi = this.size;
    while (hi - lo > 1) {
      const k = split(hi - lo);
      if (index < lo + k) {
        path.push(this.node(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(this.node(lo, lo + k));
        lo += k;
      }
    }
    return path.reverse().map((b) => Buffer.from(b));
  }
}

// ------------------------------------------------------------------------------------------------
// Verifying one record

export function isBulkProof(p: unknown): p is BulkProof {
  const x = p as BulkProof | null;
  return !!x && typeof x === 'object' && !!x.bulk && typeof x.bulk === 'object' && typeof x.index === 'number' && typeof x.line === 'string' && Array.isArray(x.path);
}

/**
 * The event is exactly what record `index` of the member-signed batch becomes, the record is in the
 * batch (inclusion under the signed root) and the member signed the header. For verifySealed's check
 * (publish.ts, federation.ts), like checkRequestProof.
 */
export function checkBulkProof(e: ExchangeEvent, p: BulkProof, alg: Alg, key: KeyObject | Uint8Array | string, verified: VerifiedBulkHeaders = defaultHeaders): boolean {
  if (!isBulkProof(p) || bulkHeaderProblem(p.bulk) !== null) return false;
  const h = p.bulk;
  if (h.alg !== alg || !Number.isSafeInteger(p.index) || p.index < 0 || p.index >= h.records) return false;
  if (p.path.length > 64 || p.path.some((x) => typeof x !== 'string' || !HEX64.test(x))) return false;
  const built = bulkRecordEvent(h, p.index, p.line);
  if (!built.ok) return false;
  let same: boolean;
  try {
    same = canonicalJson(built.event) === canonicalJson(e);
  } catch {
    return false;
  }
  if (!same) return false;
  if (!verifyInclusion(Buffer.from(p.line, 'utf8'), p.index, h.records, p.path.map((x) => Buffer.from(x, 'hex')), Buffer.from(h.root, 'hex'))) return false;
  return verified.verify(h, key);
}

/**
 * A consumer's check of one bulk record: the event (as pulled), its proof and the member's public key
 * (the certificate's SPKI or a KeyObject). { ok: true } or the first failure.
 */
export function verifyBulkRecord(event: unknown, proof: unknown, publicKey: KeyObject | Uint8Array | string, opts: EnvelopeOptions & { verified?: VerifiedBulkHeaders } = {}): VerifyResult {
  const parsed = parseEvent(event, opts);
  if (!parsed.ok) return parsed;
  if (!isBulkProof(proof)) return { ok: false, reason: 'malformed', detail: 'not a bulk proof { bulk, index, line, path }' };
  const problem = bulkHeaderProblem(proof.bulk);
  if (problem) return { ok: false, reason: 'malformed', detail: `bulk header: ${problem}` };
  const e = parsed.event;
  if (e.gusualg !== proof.bulk.alg) return { ok: false, reason: 'alg-mismatch', detail: 'the event gusualg differs from the batch alg' };
  return verifySealed(e, publicKey, () => checkBulkProof(e, proof, proof.bulk.alg, publicKey, opts.verified));
}
