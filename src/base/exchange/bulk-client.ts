// The SDK's side of bulk batches (docs/exchange.md, "Bulk batches"): streams a CSV or NDJSON file to
// the node in parts while computing, in the same pass, its SHA-256, its records and their Merkle root
// (32 bytes kept per 1024 records), resumes an interrupted upload from the node's offset, signs the
// completion header and, if asked, waits until the node has published. Used through the client
// (client.ts: sendBatch, batchStatus, waitBatch, cancelBatch).
import fs from 'node:fs';
import crypto, { type KeyObject } from 'node:crypto';
import type { Alg } from '../identity/crypto/index.ts';
import { UNSIGNED_PAYLOAD } from './auth.ts';
import { BULK_TYPE, BlockedTree, BulkFormatError, RecordFramer, isEventType, isFieldName, recordText, signBulkHeader, type BulkFormat, type BulkHeader, type FramedRecord } from './bulk-format.ts';
import { DEFAULT_MAX_BYTES } from './envelope.ts';

export const BULK_PATH = '/api/v1/exchange/bulk';
export const BULK_PART_TYPE = 'application/offset+octet-stream';
export const DEFAULT_PART_BYTES = 4 * 1024 * 1024;
export const MAX_PART_BYTES = 8 * 1024 * 1024;

export type BulkStatusName = 'open' | 'verifying' | 'publishing' | 'done' | 'failed' | 'cancelled';

/** The node's view of a batch (GET /api/v1/exchange/bulk/{id}). */
export interface BulkStatus {
  id: string;
  resource: string;
  format: BulkFormat;
  keyField: string | null;
  idField: string | null;
  status: BulkStatusName;
  /** bytes received: the resume point */
  offset: number;
  size: number | null;
  records: number | null;
  published: number;
  duplicates: number;
  rejected: number;
  /** the first rejected records, by physical line number of the file (1-based) */
  rejections: { line: number; reason: string }[];
  error: string | null;
  maxPartBytes: number;
  maxRecordBytes: number;
  [field: string]: unknown;
}

export interface BulkProgress {
  id: string;
  /** bytes of the file read (and hashed) so far */
  read: number;
  /** bytes the node holds */
  offset: number;
  /** records read so far */
  records: number;
  /** where this run began uploading (0, or the node's offset when resuming) */
  resumedFrom: number;
}

export interface SendBatchOptions {
  /** default: csv for a file name ending in .csv, else ndjson (on resume: the upload's) */
  format?: BulkFormat;
  /** the record field whose value orders delivery (gusukey); default: the resource's key field */
  keyField?: string;
  /** the record field whose value is the event id (else `${batch id}:${record number}`) */
  idField?: string;
  /** the CloudEvents type of the records' events (default: the resource id) */
  eventType?: string;
  /** bytes per part (default 4 MiB, at most the node's maximum, 8 MiB) */
  partBytes?: number;
  /** resume this upload: the file is read again from the start (it is hashed whole), only what the node lacks is sent */
  resumeId?: string;
  onProgress?: (p: BulkProgress) => void;
  signal?: AbortSignal;
  /** wait until the node has published (or failed): true, or { timeoutMs (default 1 h), pollMs (default 1 s) } */
  wait?: boolean | { timeoutMs?: number; pollMs?: number };
}

export interface SendBatchResult {
  id: string;
  /** the completion header as signed */
  header: BulkHeader;
  /** the node's answer to the completion, or after waiting, its final status */
  status: BulkStatus;
  resumedFrom: number;
  /** PATCH requests that carried bytes */
  parts: number;
}

interface Answer {
  res: Response;
  body: Buffer;
}

/** What the client (client.ts) lends: its signed requests and its errors. */
export interface BulkTransport {
  member: string;
  alg: Alg;
  privateKey: string | KeyObject;
  send(method: string, target: string, body: Uint8Array | null, headers: Record<string, string>, o?: { signal?: AbortSignal; unsignedPayload?: boolean; timeoutMs?: number }): Promise<Answer>;
  json<T>(method: string, target: string, payload: unknown, o?: { signal?: AbortSignal }): Promise<{ status: number; body: T }>;
  /** an error from a non-2xx answer */
  errorOf(status: number, text: string, statusText: string): Error;
  /** an error of the client's own kind (ExchangeClientError) */
  fail(status: number, reason: string, detail: string): Error;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function bulkPath(id: string): string {
  if (typeof id !== 'string' || !UUID.test(id)) throw new TypeError(`not a bulk batch id (a UUID): ${JSON.stringify(String(id).slice(0, 80))}`);
  return `${BULK_PATH}/${id}`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** worth sending again: no answer, or the node busy or restarting */
const transient = (err: unknown) => {
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' && (s === 0 || s === 429 || s === 502 || s === 503 || s === 504);
};

async function* chunksOf(source: AsyncIterable<Uint8Array> | string): AsyncGenerator<Buffer> {
  const it: AsyncIterable<Uint8Array> = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: 1024 * 1024 }) : source;
  for await (const c of it) {
    if (!(c instanceof Uint8Array)) throw new TypeError('a batch source yields bytes (Uint8Array)');
    yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

export function bulkApi(t: BulkTransport) {
  async function batchStatus(id: string, o: { signal?: AbortSignal } = {}): Promise<BulkStatus> {
    const { body } = await t.json<BulkStatus>('GET', bulkPath(id), undefined, o);
    if (!body || typeof body !== 'object' || typeof body.status !== 'string' || !Number.isSafeInteger(body.offset)) throw t.fail(200, 'bad-response', 'a bulk batch status is { id, status, offset, ... }');
    return body;
  }

  /** Polls until the batch is done, failed or cancelled. */
  async function waitBatch(id: string, o: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}): Promise<BulkStatus> {
    const until = Date.now() + (o.timeoutMs ?? 3_600_000);
    for (;;) {
      const st = await batchStatus(id, o);
      if (st.status === 'done' || st.status === 'failed' || st.status === 'cancelled') return st;
      if (Date.now() > until) throw t.fail(0, 'timeout', `bulk batch ${id} is still ${st.status} (${st.published} published)`);
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
      await sleep(o.pollMs ?? 1000, o.signal);
    }
  }

  /** Cancels an open upload (its parts are removed). */
  async function cancelBatch(id: string): Promise<void> {
    await t.json('DELETE', bulkPath(id), undefined);
  }

  /**
   * Sends a bulk batch: a file path or a stream of bytes, CSV (RFC 4180, a header row) or NDJSON
   * (one JSON object per line). The node publishes each valid record as an event with its own proof;
   * records that fail the resource's schema are reported (status.rejections) and the rest go on.
   * Interrupted (an error, signal)? Call again with resumeId: the id is in onProgress and on the error
   * (`bulkId`). A file the node cannot read (an unterminated quote, a record above the node's limit)
   * throws BulkFormatError naming the line, and the upload is cancelled.
   */
  async function sendBatch(resource: string, source: AsyncIterable<Uint8Array> | string, o: SendBatchOptions = {}): Promise<SendBatchResult> {
    if (typeof resource !== 'string' || resource.length === 0 || resource.length > 120) throw new TypeError('sendBatch expects a resource id');
    if (typeof source !== 'string' && (!source || typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function')) throw new TypeError('sendBatch expects a file path or an async iterable of bytes');
    for (const k of ['keyField', 'idField'] as const) if (o[k] !== undefined && !isFieldName(o[k])) throw new TypeError(`${k} must be a field name (1 to 100 characters)`);
    const eventType = o.eventType ?? resource;
    if (!isEventType(eventType)) throw new TypeError(`eventType ${JSON.stringify(eventType)} is not a CloudEvents type (dotted lower-case): pass eventType`);
    const partBytes = o.partBytes ?? DEFAULT_PART_BYTES;
    if (!Number.isSafeInteger(partBytes) || partBytes < 1 || partBytes > MAX_PART_BYTES) throw new RangeError(`partBytes must be 1 to ${MAX_PART_BYTES}`);
    const signal = o.signal;
    let format: BulkFormat = o.format ?? (typeof source === 'string' && /\.csv$/i.test(source) ? 'csv' : 'ndjson');
    if (format !== 'csv' && format !== 'ndjson') throw new TypeError('format is csv or ndjson');

    let st: BulkStatus;
    if (o.resumeId !== undefined) {
      st = await batchStatus(o.resumeId, { signal });
      if (st.resource !== resource) throw new TypeError(`bulk batch ${o.resumeId} is for ${st.resource}, not ${resource}`);
      if (o.format !== undefined && o.format !== st.format) throw new TypeError(`bulk batch ${o.resumeId} is ${st.format}, not ${o.format}`);
      for (const [k, v] of [['keyField', st.keyField], ['idField', st.idField]] as const) if (o[k] !== undefined && o[k] !== v) throw new TypeError(`bulk batch ${o.resumeId} has ${k} ${JSON.stringify(v)}`);
      if (st.status !== 'open') throw t.fail(409, 'not-open', `bulk batch ${o.resumeId} is ${st.status}: nothing to resume${st.status === 'cancelled' || st.status === 'failed' ? ' (send the file again as a new batch)' : ' (wait for it: waitBatch)'}`);
      format = st.format;
    } else {
      const { body } = await t.json<BulkStatus>('POST', BULK_PATH, { resource, format, ...(o.keyField ? { keyField: o.keyField } : {}), ...(o.idField ? { idField: o.idField } : {}) }, { signal });
      if (!body || typeof body.id !== 'string' || !UUID.test(body.id)) throw t.fail(201, 'bad-response', 'opening a bulk batch answers { id, offset }');
      st = body;
    }
    const id = st.id;
    const resumedFrom = st.offset;
    const part = Math.min(partBytes, st.maxPartBytes || MAX_PART_BYTES);
    const maxRecord = st.maxRecordBytes || DEFAULT_MAX_BYTES;

    const hash = crypto.createHash('sha256');
    const tree = new BlockedTree();
    const framer = new RecordFramer(format, maxRecord);
    const recs: FramedRecord[] = [];
    let csvHeader: string | undefined;
    let needHeader = format === 'csv';
    let read = 0;
    let offset = resumedFrom;
    let parts = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;

    const take = () => {
      for (const r of recs) {
        if (needHeader) {
          needHeader = false;
          const text = recordText(r.bytes);
          if (text === null) throw new BulkFormatError(r.line, 'the header row is not UTF-8');
          csvHeader = text;
        } else tree.add(r.bytes);
      }
      recs.length = 0;
    };

    const putPart = async (data: Buffer): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          const { res, body } = await t.send('PATCH', bulkPath(id), data, { 'content-type': BULK_PART_TYPE, 'upload-offset': String(offset), 'x-gusu-payload': UNSIGNED_PAYLOAD }, { unsignedPayload: true, signal });
          const at = Number(res.headers.get('upload-offset'));
          // 409 naming exactly the end of this part: it arrived before (its answer was lost)
          if (res.status === 204 || (res.status === 409 && at === offset + data.length)) {
            if (at !== offset + data.length) throw t.fail(res.status, 'bad-response', `the node stands at ${at} after a part of ${data.length} bytes at ${offset}`);
            offset = at;
            parts++;
            o.onProgress?.({ id, read, offset, records: tree.count, resumedFrom });
            return;
          }
          throw t.errorOf(res.status, body.toString('utf8'), res.statusText);
        } catch (err) {
          if (!transient(err) || attempt >= 5 || signal?.aborted) throw err;
          await sleep(Math.min(500 * 2 ** attempt, 8000), signal);
        }
      }
    };

    const flush = async (all: boolean) => {
      while (pendingBytes >= part || (all && pendingBytes > 0)) {
        const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const n = Math.min(part, joined.length);
        const rest = joined.subarray(n);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
        await putPart(joined.subarray(0, n));
      }
    };

    try {
      try {
        for await (const chunk of chunksOf(source)) {
          if (signal?.aborted) throw signal.reason ?? new Error('aborted');
          hash.update(chunk);
          framer.push(chunk, recs);
          take();
          const start = read;
          read += chunk.length;
          if (read > offset) {
            const from = Math.max(0, offset + pendingBytes - start);
            if (from < chunk.length) {
              pending.push(chunk.subarray(from));
              pendingBytes += chunk.length - from;
            }
            await flush(false);
          }
        }
        framer.end(recs);
        take();
      } catch (err) {
        if (err instanceof BulkFormatError) {
          // the node could not read it either: nothing to resume
          await cancelBatch(id).catch(() => undefined);
          err.bulkId = id;
        }
        throw err;
      }
      if (needHeader) {
        await cancelBatch(id).catch(() => undefined);
        throw Object.assign(new BulkFormatError(1, 'a CSV batch needs a header row naming its fields'), { bulkId: id });
      }
      if (read < resumedFrom) throw t.fail(409, 'offset-mismatch', `the node holds ${resumedFrom} bytes of bulk batch ${id}, more than this file's ${read}: another file?`);
      await flush(true);
      if (offset !== read) throw t.fail(409, 'offset-mismatch', `the node holds ${offset} bytes, the file has ${read}`);

      const body: Omit<BulkHeader, 'sig'> = {
        type: BULK_TYPE,
        id,
        member: t.member,
        resource,
        format,
        eventType,
        ...(st.keyField ? { keyField: st.keyField } : {}),
        ...(st.idField ? { idField: st.idField } : {}),
        size: read,
        sha256: hash.digest('hex'),
        records: tree.count,
        root: tree.root().toString('hex'),
        ...(csvHeader !== undefined ? { csvHeader } : {}),
        alg: t.alg,
      };
      const header = signBulkHeader(body, t.privateKey, t.alg);
      const { body: done } = await t.json<BulkStatus>('POST', `${bulkPath(id)}/complete`, header, { signal });
      let status = done;
      if (o.wait) status = await waitBatch(id, { ...(typeof o.wait === 'object' ? o.wait : {}), signal });
      return { id, header, status, resumedFrom, parts };
    } catch (err) {
      // for a resume: the id, whatever failed
      if (err && typeof err === 'object' && !('bulkId' in err)) Object.assign(err, { bulkId: id });
      throw err;
    }
  }

  return { sendBatch, batchStatus, waitBatch, cancelBatch };
}
