// Bulk batches on the node (issue #5, the third way to exchange; docs/exchange.md, "Bulk batches"):
// a member uploads a CSV or NDJSON file of any size in parts (resumable, like the tus protocol's
// core: PATCH with Upload-Offset), then signs one completion header naming the file's size, SHA-256
// and the Merkle root over its records. The parts live in the database, so any app process takes the
// next part and the job (exchange.bulk) runs anywhere. The job reads the parts twice: first to check
// the SHA-256, the framing and the root (nothing is published from a file that does not match what
// the member signed), then to publish the records in blocks of 1024, one transaction each, recording
// where it stands: a retry continues after the last committed block. Each record goes out as a
// CloudEvent with a proof of its own (bulk-format.ts): the signed header, its index and bytes, and its
// inclusion path. Records that fail the resource's schema are rejected and reported by line number;
// the others go on.
import crypto from 'node:crypto';
import os from 'node:os';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { enqueue, type JobHandler } from '../../db/index.ts';
import { problem, problemBody, type ProblemName } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import {
  BULK_BLOCK,
  BlockedTree,
  BulkFormatError,
  RecordFramer,
  UpperTree,
  VerifiedBulkHeaders,
  bulkHeaderProblem,
  bulkRecordEvent,
  bulkSource,
  isFieldName,
  recordText,
  type BulkFormat,
  type BulkHeader,
  type BulkProof,
  type FramedRecord,
} from './bulk-format.ts';
import { eventHash } from './envelope.ts';
import { merkleTree } from './merkle.ts';
import { afterCommit, recordRefusal, storeMessages, type StoredMessage } from './publish.ts';
import { ExchangeError, type MemberKey } from './registry.ts';
import { asMember, toProblem } from './routes.ts';
import type { ExchangeRuntime } from './runtime.ts';

export const BULK_JOB = 'exchange.bulk';
export const BULK_PATH = '/api/v1/exchange/bulk';
/** the media type of a part (as tus) */
export const BULK_PART_TYPE = 'application/offset+octet-stream';

/**
 * Limits. maxBytes: a whole file (50 GiB); maxPartBytes: one PATCH (8 MiB); an open upload that
 * receives nothing for openDays is cancelled and its parts removed. Mutable for tests.
 */
export const BULK_LIMITS = {
  maxBytes: 50 * 1024 ** 3,
  maxPartBytes: 8 * 1024 * 1024,
  openDays: 7,
  maxOpenPerMember: 20,
  /** rejected records reported with their line (the count covers all) */
  rejectionsKept: 100,
  /** the job's hold on a batch; renewed as it goes, so a second worker never runs the same batch */
  leaseSeconds: 120,
  maxAttempts: 10,
};

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the body is not covered by the request signature (bulk parts: the signed completion covers them) */
    unsignedPayload?: boolean;
  }
}

type Status = 'open' | 'verifying' | 'publishing' | 'done' | 'failed' | 'cancelled';

interface BulkRow {
  id: string;
  member: string;
  resource: string;
  format: BulkFormat;
  key_field: string | null;
  id_field: string | null;
  received: string;
  status: Status;
  header: BulkHeader | null;
  records: string | null;
  published: string;
  duplicates: string;
  rejected: string;
  rejections: { line: number; reason: string }[];
  error: string | null;
  block_roots: Buffer | null;
  cursor: { block: number; offset: number; line: number } | null;
  worker: string | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  finished_at: Date | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const headers = new VerifiedBulkHeaders();

function bulkOut(rt: ExchangeRuntime, r: BulkRow) {
  return {
    id: r.id,
    resource: r.resource,
    format: r.format,
    keyField: r.key_field,
    idField: r.id_field,
    status: r.status,
    /** bytes received: where the next part goes (the resume point) */
    offset: Number(r.received),
    size: r.header?.size ?? null,
    records: r.records === null ? null : Number(r.records),
    published: Number(r.published),
    duplicates: Number(r.duplicates),
    rejected: Number(r.rejected),
    rejections: r.rejections,
    error: r.error,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    completedAt: r.completed_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
    ...(r.status === 'open' ? { expiresAt: new Date(r.updated_at.getTime() + BULK_LIMITS.openDays * 86_400_000).toISOString() } : {}),
    maxPartBytes: BULK_LIMITS.maxPartBytes,
    maxBytes: BULK_LIMITS.maxBytes,
    maxRecordBytes: rt.cfg.maxEventBytes,
  };
}

/** a problem answer with extra headers (Upload-Offset) */
function sendProblemWith(req: FastifyRequest, reply: FastifyReply, name: ProblemName, detail: string, ext: Record<string, unknown>, hdrs: Record<string, string> = {}): FastifyReply {
  const body = problemBody(name, 'en', detail, `urn:gusu:request:${req.id}`, ext);
  for (const [k, v] of Object.entries(hdrs)) reply.header(k, v);
  return reply.code(body.status).type('application/problem+json; charset=utf-8').send(body);
}

async function ownBulk(rt: ExchangeRuntime, member: MemberKey, id: string): Promise<BulkRow> {
  const row = UUID.test(id) ? (await rt.db.query<BulkRow>('select * from exchange.bulk where id = $1', [id])).rows[0] : undefined;
  if (!row || row.member !== member.member.id) throw problem('not-found', `no bulk batch ${id.slice(0, 64)} of ${member.member.id}`, { reason: 'unknown-bulk' });
  return row;
}

/** Reads a part's body (a stream), at most max bytes; null if it is larger (what is left is read and dropped, up to 4× max). */
async function readPart(stream: Readable, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  let over = false;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      over = true;
      if (n > 4 * max) break; // the iterator's return destroys the request: the connection closes
      continue;
    }
    chunks.push(c);
  }
  return over ? null : Buffer.concat(chunks, n);
}

export function bulkRoutes(app: FastifyInstance, ctx: ModuleContext, runtime: () => ExchangeRuntime): void {
  const TAGS = ['exchange'];
  // a part is read as a stream by its route, after the signature check: nothing is buffered for a caller who may not send it
  app.addContentTypeParser(BULK_PART_TYPE, (_req, payload, done) => done(null, payload));
  const Params = Type.Object({ id: Type.String({ maxLength: 64 }) });
  void ctx;

  app.post(
    BULK_PATH,
    {
      schema: { tags: TAGS, summary: 'Open a bulk batch upload (CSV or NDJSON of any size) for a resource the calling member provides: 201 { id, offset: 0 }', body: Type.Unknown() },
      config: { action: 'exchange-api:call' },
    },
    async (req, reply) => {
      const rt = runtime();
      const member = await asMember(rt, req);
      const b = (req.body ?? {}) as { resource?: unknown; format?: unknown; keyField?: unknown; idField?: unknown };
      const bad = (detail: string) => problem('validation', detail, { reason: 'malformed' });
      if (!b || typeof b !== 'object' || typeof b.resource !== 'string' || b.resource.length > 120) throw bad('a bulk batch is { resource, format: "ndjson" | "csv", keyField?, idField? }');
      const format = b.format ?? 'ndjson';
      if (format !== 'ndjson' && format !== 'csv') throw bad('format must be ndjson or csv');
      for (const k of ['keyField', 'idField'] as const) if (b[k] !== undefined && b[k] !== null && !isFieldName(b[k])) throw bad(`${k} must be a field name (1 to 100 characters)`);
      const res = await rt.caches.resource(rt.db, b.resource);
      if (!res) return recordRefusal(rt, new ExchangeError('not-found', 'unknown-resource', `no resource ${b.resource}`), member.member.id, null, req.ip).catch(toProblem);
      if (res.row.provider !== member.member.id) {
        return recordRefusal(rt, new ExchangeError('forbidden', 'not-provider', `${member.member.id} does not provide ${b.resource} (its provider is ${res.row.provider})`), member.member.id, null, req.ip).catch(toProblem);
      }
      const open = (await rt.db.query<{ n: number }>(`select count(*)::int as n from exchange.bulk where member = $1 and status = 'open'`, [member.member.id])).rows[0]!.n;
      if (open >= BULK_LIMITS.maxOpenPerMember) throw problem('conflict', `${member.member.id} has ${open} open bulk uploads: complete or cancel (DELETE) one first`, { reason: 'too-many-open' });
      const keyField = (b.keyField as string | null | undefined) ?? res.row.key_field ?? null;
      const { rows } = await rt.db.query<BulkRow>(
        `insert into exchange.bulk (member, resource, format, key_field, id_field) values ($1, $2, $3, $4, $5) returning *`,
        [member.member.id, b.resource, format, keyField, (b.idField as string | null | undefined) ?? null],
      );
      reply.code(201).header('location', `${BULK_PATH}/${rows[0]!.id}`).header('upload-offset', '0');
      return bulkOut(rt, rows[0]!);
    },
  );

  app.patch(
    `${BULK_PATH}/:id`,
    {
      schema: {
        tags: TAGS,
        summary: `Append a part (${BULK_PART_TYPE}, at most 8 MiB) at Upload-Offset, which must be the bytes received so far (the same part again at its offset is accepted): 204 with the new Upload-Offset; 409 with the current one. Signed with X-Gusu-Payload: UNSIGNED-PAYLOAD`,
        params: Params,
      },
      config: { action: 'exchange-api:call', unsignedPayload: true },
    },
    async (req, reply) => {
      const rt = runtime();
      const member = await asMember(rt, req);
      const { id } = req.params as { id: string };
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== BULK_PART_TYPE) throw problem('unsupported-media-type', `a part is sent as ${BULK_PART_TYPE}`, { reason: 'malformed' });
      const given = req.headers['upload-offset'];
      if (typeof given !== 'string' || !/^\d{1,16}$/.test(given)) throw problem('validation', 'Upload-Offset must be the byte offset of this part (a whole number)', { reason: 'malformed' });
      const offset = Number(given);
      const row = await ownBulk(rt, member, id);
      const max = BULK_LIMITS.maxPartBytes;
      const declared = Number(req.headers['content-length'] ?? NaN);
      const tooLarge = (detail: string) => {
        reply.header('connection', 'close');
        return sendProblemWith(req, reply, 'payload-too-large', detail, { reason: 'oversized', maxPartBytes: max, offset: Number(row.received) }, { 'upload-offset': row.received });
      };
      if (Number.isFinite(declared) && declared > 4 * max) return tooLarge(`a part is at most ${max} bytes`);
      const data = await readPart(req.body as Readable, max);
      if (!data) return tooLarge(`a part is at most ${max} bytes`);
      const r = await rt.db.tx(async (c) => {
        const cur = (await c.query<{ received: string; status: Status }>('select received, status from exchange.bulk where id = $1 for update', [id])).rows[0]!;
        const received = Number(cur.received);
        if (cur.status !== 'open') return { kind: 'closed' as const, received, status: cur.status };
        if (offset === received) {
          if (data.length === 0) return { kind: 'ok' as const, received };
          if (received + data.length > BULK_LIMITS.maxBytes) return { kind: 'full' as const, received };
          await c.query('insert into exchange.bulk_part (bulk, byte_offset, size, data) values ($1, $2, $3, $4)', [id, received, data.length, data]);
          await c.query('update exchange.bulk set received = received + $2, updated_at = now() where id = $1', [id, data.length]);
          return { kind: 'ok' as const, received: received + data.length };
        }
        if (offset < received && data.length > 0) {
          // a retry of a part that arrived (its answer was lost): the same bytes at the same offset
          const prior = (await c.query<{ data: Buffer }>('select data from exchange.bulk_part where bulk = $1 and byte_offset = $2', [id, offset])).rows[0];
          if (prior && prior.data.equals(data)) return { kind: 'ok' as const, received };
        }
        return { kind: 'offset' as const, received };
      });
      const at = { 'upload-offset': String(r.received) };
      if (r.kind === 'closed') return sendProblemWith(req, reply, 'conflict', `bulk batch ${id} is ${r.status}: it takes no more parts`, { reason: 'not-open', status: r.status, offset: r.received }, at);
      if (r.kind === 'full') return sendProblemWith(req, reply, 'payload-too-large', `a bulk batch is at most ${BULK_LIMITS.maxBytes} bytes`, { reason: 'oversized', maxBytes: BULK_LIMITS.maxBytes, offset: r.received }, at);
      if (r.kind === 'offset') return sendProblemWith(req, reply, 'conflict', `Upload-Offset ${offset} is not where the upload stands (${r.received} bytes received): send from there`, { reason: 'offset-mismatch', offset: r.received }, at);
      return reply.code(204).header('upload-offset', String(r.received)).header('cache-control', 'no-store').send();
    },
  );

  app.get(
    `${BULK_PATH}/:id`,
    { schema: { tags: TAGS, summary: 'A bulk batch: its status, the bytes received (Upload-Offset: the resume point), records published and rejected (with line numbers). HEAD answers the headers only', params: Params }, config: { action: 'exchange-api:call' } },
    async (req, reply) => {
      const rt = runtime();
      const member = await asMember(rt, req);
      const row = await ownBulk(rt, member, (req.params as { id: string }).id);
      reply.header('upload-offset', row.received).header('cache-control', 'no-store').header('x-gusu-bulk-status', row.status);
      return bulkOut(rt, row);
    },
  );

  app.post(
    `${BULK_PATH}/:id/complete`,
    {
      schema: {
        tags: TAGS,
        summary: 'Complete an upload with the member-signed header { type: "gusu.exchange.bulk.v1", id, member, resource, format, eventType, keyField?, idField?, size, sha256, records, root, csvHeader?, alg, sig }: 202, and the node verifies and publishes in the background',
        params: Params,
        body: Type.Unknown(),
      },
      config: { action: 'exchange-api:call' },
    },
    async (req, reply) => {
      const rt = runtime();
      const member = await asMember(rt, req);
      const { id } = req.params as { id: string };
      const row = await ownBulk(rt, member, id);
      const body = req.body as { header?: unknown } | null;
      const h = (body && typeof body === 'object' && 'header' in body ? body.header : body) as BulkHeader;
      const location = { location: `${BULK_PATH}/${id}` };
      if (row.status !== 'open') {
        if (row.header && h && typeof h === 'object' && row.header.sig === h.sig && row.status !== 'cancelled') {
          reply.code(202).headers(location);
          return bulkOut(rt, row);
        }
        throw problem('conflict', `bulk batch ${id} is ${row.status}`, { reason: 'not-open', status: row.status });
      }
      const wrong = bulkHeaderProblem(h);
      if (wrong) throw problem('validation', `the completion header: ${wrong}`, { reason: 'malformed' });
      const mismatch =
        h.id !== row.id ? 'id' : h.member !== member.member.id ? 'member' : h.resource !== row.resource ? 'resource' : h.format !== row.format ? 'format' : (h.keyField ?? null) !== row.key_field ? 'keyField' : (h.idField ?? null) !== row.id_field ? 'idField' : null;
      if (mismatch) {
        const want: Record<string, unknown> = { id: row.id, member: member.member.id, resource: row.resource, format: row.format, keyField: row.key_field ?? undefined, idField: row.id_field ?? undefined };
        throw problem('validation', `the header's ${mismatch} is not the upload's (${JSON.stringify(want[mismatch] ?? null)})`, { reason: 'malformed' });
      }
      if (h.alg !== member.alg) return recordRefusal(rt, new ExchangeError('forbidden', 'alg-mismatch', `the header's alg ${h.alg} is not that of ${member.member.id}'s certificate (${member.alg})`), member.member.id, null, req.ip).catch(toProblem);
      if (h.size !== Number(row.received)) {
        return sendProblemWith(req, reply, 'conflict', `the header says ${h.size} bytes; ${row.received} were received: send the rest first`, { reason: 'incomplete', offset: Number(row.received) }, { 'upload-offset': row.received });
      }
      const res = await rt.caches.resource(rt.db, row.resource);
      if (!res || res.row.provider !== member.member.id) return recordRefusal(rt, new ExchangeError('forbidden', 'not-provider', `${member.member.id} no longer provides ${row.resource}`), member.member.id, null, req.ip).catch(toProblem);
      if (!headers.verify(h, member.publicKey)) {
        return recordRefusal(rt, new ExchangeError('forbidden', 'bad-signature', `the completion header's signature does not verify under ${member.member.id}'s certificate`), member.member.id, null, req.ip).catch(toProblem);
      }
      const done = await rt.db.tx(async (c) => {
        const { rows } = await c.query<BulkRow>(
          `update exchange.bulk set status = 'verifying', header = $2, records = $3, completed_at = now(), updated_at = now() where id = $1 and status = 'open' and received = $4 returning *`,
          [id, JSON.stringify(h), h.records, h.size],
        );
        if (rows[0]) await enqueue(c, BULK_JOB, { id }, { uniqueKey: `${BULK_JOB}:${id}`, maxAttempts: BULK_LIMITS.maxAttempts });
        return rows[0];
      });
      if (!done) throw problem('conflict', `bulk batch ${id} changed while completing: look again`, { reason: 'not-open' });
      reply.code(202).headers(location);
      return bulkOut(rt, done);
    },
  );

  app.delete(`${BULK_PATH}/:id`, { schema: { tags: TAGS, summary: 'Cancel an open upload: its parts are removed', params: Params }, config: { action: 'exchange-api:call' } }, async (req, reply) => {
    const rt = runtime();
    const member = await asMember(rt, req);
    const row = await ownBulk(rt, member, (req.params as { id: string }).id);
    if (row.status === 'cancelled') return reply.code(204).send();
    if (row.status !== 'open') throw problem('conflict', `bulk batch ${row.id} is ${row.status}: only an open upload is cancelled`, { reason: 'not-open', status: row.status });
    await rt.db.tx(async (c) => {
      await c.query(`update exchange.bulk set status = 'cancelled', error = 'cancelled by the member', finished_at = now(), updated_at = now() where id = $1 and status = 'open'`, [row.id]);
      await c.query('delete from exchange.bulk_part where bulk = $1', [row.id]);
    });
    return reply.code(204).send();
  });
}

// ------------------------------------------------------------------------------------------------
// The job

/** The stored bytes from `from` to `to`, part by part (one part in memory at a time). */
async function* readParts(rt: ExchangeRuntime, id: string, from: number, to: number): AsyncGenerator<Buffer> {
  let pos = from;
  while (pos < to) {
    const r = (await rt.db.query<{ byte_offset: string; data: Buffer }>('select byte_offset, data from exchange.bulk_part where bulk = $1 and byte_offset <= $2 order by byte_offset desc limit 1', [id, pos])).rows[0];
    const start = r ? Number(r.byte_offset) : -1;
    if (!r || start + r.data.length <= pos) throw new BulkFailure(`no stored part holds byte ${pos}: the parts are gone`);
    yield r.data.subarray(pos - start);
    pos = start + r.data.length;
  }
}

/** a batch that cannot succeed: marked failed, not retried */
class BulkFailure extends Error {}

class LeaseLost extends Error {}

async function renew(rt: ExchangeRuntime, id: string, me: string): Promise<void> {
  const { rowCount } = await rt.db.query(`update exchange.bulk set lease_until = now() + make_interval(secs => $3), updated_at = now() where id = $1 and worker = $2`, [id, me, BULK_LIMITS.leaseSeconds]);
  if (!rowCount) throw new LeaseLost(`bulk batch ${id}: another worker took it over`);
}

/** `me`: only while this worker holds the batch (null: nobody does) */
async function markFailed(rt: ExchangeRuntime, id: string, error: string, me: string | null): Promise<void> {
  const failed = await rt.db.tx(async (c) => {
    const { rowCount } = await c.query(
      `update exchange.bulk set status = 'failed', error = $2, finished_at = now(), updated_at = now(), lease_until = null, worker = null, block_roots = null
        where id = $1 and status in ('verifying', 'publishing') and worker is not distinct from $3`,
      [id, error.slice(0, 2000), me],
    );
    if (rowCount) await c.query('delete from exchange.bulk_part where bulk = $1', [id]);
    return !!rowCount;
  });
  if (!failed) return;
  rt.ctx.log.warn({ bulk: id, err: error.slice(0, 300) }, 'exchange: a bulk batch failed');
}

/** Pass 1: the bytes, the framing, the record count and the Merkle root against the signed header. */
async function verifyPass(rt: ExchangeRuntime, row: BulkRow, me: string, signal?: AbortSignal): Promise<BulkRow> {
  const h = row.header!;
  const hash = crypto.createHash('sha256');
  const tree = new BlockedTree();
  const framer = new RecordFramer(h.format, rt.cfg.maxEventBytes);
  let needHeader = h.format === 'csv';
  let dataStart = { offset: 0, line: 1 };
  const recs: FramedRecord[] = [];
  let size = 0;
  let beat = Date.now();
  const take = () => {
    for (const r of recs) {
      if (needHeader) {
        needHeader = false;
        if (!r.bytes.equals(Buffer.from(h.csvHeader!, 'utf8'))) throw new BulkFailure(`line ${r.line}: the file's header row is not the csvHeader signed`);
        dataStart = { offset: r.end, line: r.nextLine };
        continue;
      }
      tree.add(r.bytes);
    }
    recs.length = 0;
  };
  try {
    for await (const part of readParts(rt, row.id, 0, Number(row.received))) {
      hash.update(part);
      size += part.length;
      framer.push(part, recs);
      take();
      if (Date.now() - beat > 15_000) {
        await renew(rt, row.id, me);
        beat = Date.now();
      }
      if (signal?.aborted) throw new Error('the worker is stopping');
    }
    framer.end(recs);
    take();
  } catch (err) {
    if (err instanceof BulkFormatError) throw new BulkFailure(`the file cannot be read as ${h.format.toUpperCase()}: ${err.message}`);
    throw err;
  }
  if (needHeader) throw new BulkFailure('the CSV file has no header row');
  const sha = hash.digest('hex');
  if (size !== h.size) throw new BulkFailure(`${size} bytes are stored; the header signed ${h.size}`);
  if (sha !== h.sha256) throw new BulkFailure(`the stored bytes hash to ${sha}, not to the signed sha256 ${h.sha256}: a part was changed after signing, or another file was signed`);
  if (tree.count !== h.records) throw new BulkFailure(`the file holds ${tree.count} records; the header signed ${h.records}`);
  const root = tree.root().toString('hex');
  if (root !== h.root) throw new BulkFailure(`the Merkle root of the records is ${root}, not the signed root ${h.root}`);
  const { rows } = await rt.db.query<BulkRow>(
    `update exchange.bulk set status = 'publishing', block_roots = $3, cursor = $4, updated_at = now(), lease_until = now() + make_interval(secs => $5)
      where id = $1 and worker = $2 and status = 'verifying' returning *`,
    [row.id, me, Buffer.concat(tree.blockRoots), JSON.stringify({ block: 0, ...dataStart }), BULK_LIMITS.leaseSeconds],
  );
  if (!rows[0]) throw new LeaseLost(`bulk batch ${row.id}: another worker took it over`);
  return rows[0];
}

/** Pass 2: from the cursor, block by block: the events, their proofs, one transaction per block. */
async function publishPass(rt: ExchangeRuntime, row: BulkRow, me: string, signal?: AbortSignal): Promise<void> {
  const h = row.header!;
  const rootsBuf = row.block_roots ?? Buffer.alloc(0);
  const roots: Buffer[] = [];
  for (let i = 0; i < rootsBuf.length; i += 32) roots.push(rootsBuf.subarray(i, i + 32));
  const upper = new UpperTree(roots);
  const res = await rt.caches.resource(rt.db, h.resource);
  if (!res) throw new BulkFailure(`the resource ${h.resource} is gone`);
  const cursor = row.cursor ?? { block: 0, offset: 0, line: 1 };
  const framer = new RecordFramer(h.format, rt.cfg.maxEventBytes, cursor);
  const source = bulkSource(h.id);
  let block = cursor.block;

  const publishBlock = async (recs: FramedRecord[]) => {
    if (block >= roots.length) throw new BulkFailure('more records than were verified: the stored bytes changed');
    const tree = merkleTree(recs.map((r) => r.bytes));
    if (!tree.root.equals(roots[block]!)) throw new BulkFailure(`block ${block}: the stored bytes changed after they were verified`);
    const up = upper.path(block).map((b) => b.toString('hex'));
    const now = new Date().toISOString();
    const msgs: StoredMessage[] = [];
    const lineOf: number[] = [];
    const rejections: { line: number; reason: string }[] = [];
    const firstById = new Map<string, { digest: string; line: number }>();
    for (const [i, r] of recs.entries()) {
      const index = block * BULK_BLOCK + i;
      const text = recordText(r.bytes);
      if (text === null) {
        rejections.push({ line: r.line, reason: 'not UTF-8' });
        continue;
      }
      const built = bulkRecordEvent(h, index, text);
      if (!built.ok) {
        rejections.push({ line: r.line, reason: built.reason.slice(0, 300) });
        continue;
      }
      const e = built.event;
      const json = JSON.stringify(e);
      if (Buffer.byteLength(json) > rt.cfg.maxEventBytes) {
        rejections.push({ line: r.line, reason: `oversized: its event is larger than ${rt.cfg.maxEventBytes} bytes` });
        continue;
      }
      if (!res.validate(e.data)) {
        const errors = (res.validate.errors ?? []).slice(0, 3).map((x) => `/data${x.instancePath} ${x.message ?? 'invalid'}`);
        rejections.push({ line: r.line, reason: `schema: ${errors.join('; ')}`.slice(0, 300) });
        continue;
      }
      const prior = firstById.get(e.id);
      if (prior && prior.digest !== e.gusudigest) {
        rejections.push({ line: r.line, reason: `id ${e.id} is also the id of line ${prior.line}, with other data` });
        continue;
      }
      if (!prior) firstById.set(e.id, { digest: e.gusudigest, line: r.line });
      const proof: BulkProof = { bulk: h, index, line: text, path: [...tree.proofs[i]!.map((b) => b.toString('hex')), ...up] };
      msgs.push({ source, id: e.id, member: h.member, resource: h.resource, key: e.gusukey ?? null, digest: e.gusudigest, event: json, proof, origin: rt.self.id, hash: eventHash(e).toString('hex'), time: now });
      lineOf.push(r.line);
    }
    const last = recs[recs.length - 1]!;
    const next = { block: block + 1, offset: last.end, line: last.nextLine };
    const subs = await rt.db.tx(async (c) => {
      const cur = (await c.query<{ status: Status; worker: string | null; rejected: string }>('select status, worker, rejected from exchange.bulk where id = $1 for update', [row.id])).rows[0];
      if (!cur || cur.status !== 'publishing' || cur.worker !== me) throw new LeaseLost(`bulk batch ${row.id}: another worker took it over`);
      let keep = msgs;
      if (msgs.length) {
        // an id an earlier block published with other data: this record cannot replace it
        const { rows } = await c.query<{ id: string; digest: string }>('select id, digest from exchange.message where source = $1 and id = any($2::text[])', [source, msgs.map((m) => m.id)]);
        const had = new Map(rows.map((x) => [x.id, x.digest]));
        keep = [];
        for (const [i, m] of msgs.entries()) {
          const d = had.get(m.id);
          if (d !== undefined && d !== m.digest) rejections.push({ line: lineOf[i]!, reason: `id ${m.id} was published from an earlier line with other data` });
          else keep.push(m);
        }
      }
      const stored = keep.length ? await storeMessages(c, rt, keep, null) : { seqs: [], subscriptions: [] };
      const fresh = stored.seqs.filter((s) => !s.duplicate).length;
      rejections.sort((a, b) => a.line - b.line);
      const room = Math.max(0, BULK_LIMITS.rejectionsKept - Number(cur.rejected));
      await c.query(
        `update exchange.bulk set published = published + $2, duplicates = duplicates + $3, rejected = rejected + $4, rejections = rejections || $5::jsonb,
                cursor = $6, updated_at = now(), lease_until = now() + make_interval(secs => $7)
          where id = $1`,
        [row.id, fresh, stored.seqs.length - fresh, rejections.length, JSON.stringify(rejections.slice(0, room)), JSON.stringify(next), BULK_LIMITS.leaseSeconds],
      );
      return stored.subscriptions;
    });
    afterCommit(rt, subs);
    block++;
  };

  const recs: FramedRecord[] = [];
  let pending: FramedRecord[] = [];
  try {
    for await (const part of readParts(rt, row.id, cursor.offset, Number(row.received))) {
      framer.push(part, recs);
      for (const r of recs) {
        pending.push(r);
        if (pending.length === BULK_BLOCK) {
          await publishBlock(pending);
          pending = [];
          if (signal?.aborted) throw new Error('the worker is stopping: the batch resumes after its last published block');
        }
      }
      recs.length = 0;
    }
    framer.end(recs);
  } catch (err) {
    if (err instanceof BulkFormatError) throw new BulkFailure(`the stored bytes changed after they were verified: ${err.message}`);
    throw err;
  }
  pending.push(...recs);
  if (pending.length) await publishBlock(pending);
  if (block !== roots.length) throw new BulkFailure(`${block} of ${roots.length} blocks found: the stored bytes changed after they were verified`);
  await rt.db.tx(async (c) => {
    const { rowCount } = await c.query(
      `update exchange.bulk set status = 'done', finished_at = now(), updated_at = now(), lease_until = null, worker = null, block_roots = null where id = $1 and worker = $2 and status = 'publishing'`,
      [row.id, me],
    );
    if (!rowCount) throw new LeaseLost(`bulk batch ${row.id}: another worker took it over`);
    // retention: the records live on as messages, each with its proof; the file is not kept
    await c.query('delete from exchange.bulk_part where bulk = $1', [row.id]);
  });
}

/** Runs (or resumes) a completed batch: verify, then publish from where it stands. */
export async function runBulk(rt: ExchangeRuntime, id: string, signal?: AbortSignal): Promise<void> {
  const me = `${os.hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const claimed = (await rt.db.query<BulkRow>(
    `update exchange.bulk set lease_until = now() + make_interval(secs => $3), worker = $2, updated_at = now()
      where id = $1 and status in ('verifying', 'publishing') and (lease_until is null or lease_until < now())
      returning *`,
    [id, me, BULK_LIMITS.leaseSeconds],
  )).rows[0];
  if (!claimed) return; // done, cancelled, failed, or another worker holds it
  try {
    const member = await rt.caches.member(rt.db, rt.trust, claimed.member);
    if ('error' in member) throw new BulkFailure(`the member: ${member.error}`);
    if (member.member.status !== 'active') throw new BulkFailure(`${claimed.member} is suspended`);
    if (member.member.cert_serial && (await rt.trust.isRevoked(rt.db, member.member.cert_serial))) throw new BulkFailure(`the certificate of ${claimed.member} (serial ${member.member.cert_serial}) is revoked`);
    const row = claimed.status === 'verifying' ? await verifyPass(rt, claimed, me, signal) : claimed;
    await publishPass(rt, row, me, signal);
  } catch (err) {
    if (err instanceof BulkFailure) {
      await markFailed(rt, id, err.message, me);
      return;
    }
    throw err;
  } finally {
    await rt.db.query('update exchange.bulk set lease_until = null, worker = null where id = $1 and worker = $2', [id, me]).catch(() => undefined);
  }
}

/** The job handler: a batch whose job fails for the last time is marked failed. */
export function bulkJobHandler(runtime: () => ExchangeRuntime | null): JobHandler {
  return async (job, { signal }) => {
    const rt = runtime();
    if (!rt) throw new Error('the exchange node has not started');
    const id = (job.payload as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || !UUID.test(id)) return;
    try {
      await runBulk(rt, id, signal);
    } catch (err) {
      if (job.attempts >= job.maxAttempts) await markFailed(rt, id, `gave up after ${job.attempts} attempts: ${(err as Error).message}`, null);
      throw err;
    }
  };
}

/**
 * Housekeeping (from the exchange sweep): open uploads idle for openDays are cancelled and their
 * parts removed; parts left by finished batches are removed; a completed batch with no live job (its
 * worker died, its job was lost) is queued again.
 */
export async function sweepBulk(rt: ExchangeRuntime): Promise<{ expired: number; requeued: number }> {
  const expired = await rt.db.query<{ id: string }>(
    `update exchange.bulk set status = 'cancelled', error = 'expired: no part arrived for ' || $1 || ' days', finished_at = now(), updated_at = now()
      where status = 'open' and updated_at < now() - make_interval(days => $1) returning id`,
    [BULK_LIMITS.openDays],
  );
  await rt.db.query(`delete from exchange.bulk_part p using exchange.bulk b where b.id = p.bulk and b.status in ('done', 'failed', 'cancelled')`);
  const stuck = await rt.db.query<{ id: string }>(
    `select id from exchange.bulk where status in ('verifying', 'publishing') and (lease_until is null or lease_until < now()) and updated_at < now() - make_interval(secs => $1)`,
    [BULK_LIMITS.leaseSeconds],
  );
  let requeued = 0;
  for (const r of stuck.rows) if ((await enqueue(rt.db, BULK_JOB, { id: r.id }, { uniqueKey: `${BULK_JOB}:${r.id}`, maxAttempts: BULK_LIMITS.maxAttempts })) !== null) requeued++;
  return { expired: expired.rowCount ?? 0, requeued };
}
