// The TypeScript SDK a member system (a department's information system) uses to talk to its
// exchange node (docs/exchange.md): publish signed events, one by one or batch-signed, manage its
// subscriptions, pull and acknowledge, consume with dedupe by source+id, and make X-Road style
// synchronous calls. Every request is signed with the member's certificate key (auth.ts) over
// exactly the path and body bytes that go on the wire.
//
//   const ex = createExchangeClient({ baseUrl: 'http://127.0.0.1:3000', member: 'SZ/GOV/SZ-GAJ/hukou', privateKey: pem });
//   await ex.publish({ id, source, type, gusuresource, data });
//   await ex.consume(subId, async (event) => apply(event), { signal });
import crypto, { type KeyObject } from 'node:crypto';
import { algOfKey, isAlg, type Alg } from '../identity/crypto/index.ts';
import { signRequest } from './auth.ts';
import { signBatch, type BatchHeader, type InclusionProof } from './batch.ts';
import { bulkApi } from './bulk-client.ts';
import { signEvent, type ExchangeEvent, type UnsignedEvent } from './envelope.ts';
import type { Receipt } from './receipt.ts';

export const EVENTS_PATH = '/api/v1/exchange/events';
export const SUBSCRIPTIONS_PATH = '/api/v1/exchange/subscriptions';
/** events per batch request; larger inputs are split */
export const MAX_BATCH_EVENTS = 1000;
/** seqs per acknowledgement request (the node takes at most 5000) */
export const MAX_ACK_SEQS = 5000;
/** keys the default consumer dedupe set remembers */
export const DEFAULT_SEEN_KEYS = 100_000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** an answer larger than this is refused (a node's JSON answers are far smaller) */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

// INSTANCE/CLASS/MEMBER/SUBSYSTEM, as the node reads X-Road-Client (auth.ts, registry.ts)
const MEMBER_ID = /^[A-Za-z0-9-]{1,32}\/(?:GOV|COM|NGO|ORG)\/[A-Za-z0-9-]{1,64}\/[A-Za-z0-9-]{1,64}$/;

/**
 * A refusal or failure. `status` is the HTTP status (0: no answer: `reason` is 'network' or
 * 'timeout'); `reason` is the problem+json `reason` (docs/exchange.md: 'bad-signature', 'replay',
 * 'not-entitled', ...) or null when the answer had none; `problem` is the whole problem body.
 * For a batch, `index` is the position of the refused event in the caller's array (the node names
 * it within its chunk) and `offset` the first event of the refused chunk: events before `offset`
 * were accepted.
 */
export class ExchangeClientError extends Error {
  readonly status: number;
  readonly reason: string | null;
  readonly detail: string;
  readonly problem: Record<string, unknown>;
  index?: number;
  offset?: number;
  constructor(status: number, reason: string | null, detail: string, problem: Record<string, unknown> = {}) {
    super(status ? `HTTP ${status}${reason ? ` ${reason}` : ''}: ${detail}` : `${reason ?? 'no answer'}: ${detail}`);
    this.name = 'ExchangeClientError';
    this.status = status;
    this.reason = reason;
    this.detail = detail;
    this.problem = problem;
  }
}

export interface ExchangeClientOptions {
  /** the node's internal base URL, e.g. http://127.0.0.1:3000 (a path prefix is kept) */
  baseUrl: string;
  /** this member's id, INSTANCE/CLASS/MEMBER/SUBSYSTEM, e.g. SZ/GOV/SZ-GAJ/hukou */
  member: string;
  /** the private key of the member's certificate (PKCS#8 PEM or a KeyObject) */
  privateKey: string | KeyObject;
  /** default: the key's family */
  alg?: Alg;
  fetch?: typeof fetch;
  /** per request (a pull adds its wait); default 30 s */
  timeoutMs?: number;
}

export interface Subscription {
  id: string;
  resource: string;
  delivery: 'pull' | 'push';
  pushUrl?: string | null;
  status?: string;
  [field: string]: unknown;
}

export interface PulledEvent {
  seq: number;
  event: ExchangeEvent;
  proof?: unknown;
}

export interface PublishResult {
  receipt: Receipt;
  duplicate: boolean;
  /** the node's sequence number of the stored message, when it says */
  seq?: number;
  /** the event as signed and sent */
  event: ExchangeEvent;
}

export interface BatchResult {
  accepted: number;
  duplicates: number;
  /** one per request (a request carries at most MAX_BATCH_EVENTS events) */
  receipts: unknown[];
  requests: number;
}

/** Where consume remembers what it handled; the default keeps the last 100,000 keys in memory. */
export interface SeenStore {
  has(key: string): boolean | Promise<boolean>;
  add(key: string): void | Promise<void>;
}

export interface ConsumeOptions {
  signal?: AbortSignal;
  /** events per pull (default 100) */
  max?: number;
  /** long-poll seconds per pull (default 10) */
  waitSeconds?: number;
  seen?: SeenStore;
  /**
   * Called when the handler throws: the event is not marked seen but given back (nack: the node
   * retries it after a back-off and dead-letters it after its maximum attempts), later events of the
   * same gusukey in that pull are left to come back after the lease (order per key), and consuming
   * goes on. Without onError, consume acknowledges what was handled, gives back the failed event and
   * rejects with the handler's error.
   */
  onError?: (err: unknown, event: ExchangeEvent, meta: { seq: number }) => void | Promise<void>;
}

export interface ConsumeStats {
  pulls: number;
  handled: number;
  /** redeliveries skipped because source+id was seen */
  duplicates: number;
  acked: number;
  failed: number;
}

export interface CallOptions {
  /** default GET, or POST with a body */
  method?: string;
  /** an object is sent as JSON */
  body?: string | Uint8Array | object;
  headers?: Record<string, string>;
  /** X-Road-Id (default a random UUID) */
  id?: string;
  /** default true: a non-2xx answer throws ExchangeClientError; false returns it */
  throwOnError?: boolean;
}

export interface CallResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** the X-Road-Id sent (and echoed by the node) */
  id: string;
  /** X-Road-Request-Hash as answered: base64 SHA-512 of the request body */
  requestHash: string | null;
  /** whether requestHash is the hash of the body this client sent (null: the node sent none) */
  requestHashMatches: boolean | null;
}

/** A set of the last `max` keys (oldest forgotten first): the default consumer dedupe. */
export function createSeenSet(max = DEFAULT_SEEN_KEYS): SeenStore & { readonly size: number } {
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('max must be a positive integer');
  const keys = new Set<string>();
  return {
    has: (k) => keys.has(k),
    add(k) {
      if (keys.has(k)) return;
      keys.add(k);
      if (keys.size > max) keys.delete(keys.values().next().value!);
    },
    get size() {
      return keys.size;
    },
  };
}

/** the dedupe key of an event: source and id (ids are unique per source; neither has spaces) */
export function eventKey(e: Pick<ExchangeEvent, 'source' | 'id'>): string {
  return `${e.source} ${e.id}`;
}

const JSON_TYPE = 'application/json';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function wholeNumber(name: string, v: number | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be a whole number of at least ${min}`);
  return v;
}

function errorOf(status: number, text: string, statusText: string): ExchangeClientError {
  let problem: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) problem = parsed;
  } catch {
    // not JSON: keep the start of the text as the detail
  }
  if (!Object.keys(problem).length) problem = { status, title: statusText, ...(text ? { detail: text.slice(0, 500) } : {}) };
  const reason = typeof problem.reason === 'string' ? problem.reason : null;
  const detail = typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : statusText || `HTTP ${status}`;
  return new ExchangeClientError(status, reason, detail, problem);
}

async function readCapped(res: Response, max: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {});
    throw new ExchangeClientError(res.status, 'bad-response', `the answer is ${declared} bytes, above ${max}`);
  }
  if (!res.body) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => {});
      throw new ExchangeClientError(res.status, 'bad-response', `the answer is larger than ${max} bytes`);
    }
    parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(parts, n);
}

function normaliseBaseUrl(v: string): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new TypeError(`baseUrl is not a URL: ${JSON.stringify(String(v).slice(0, 80))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('baseUrl must be http or https');
  if (u.username || u.password) throw new TypeError('baseUrl must not carry credentials');
  if (u.search || u.hash) throw new TypeError('baseUrl must not have a query or fragment');
  return u;
}

/** Path of an X-Road style call: INSTANCE/CLASS/MEMBER/SUBSYSTEM/service..., optionally ?query */
function callTarget(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 4000) throw new TypeError('call expects a path INSTANCE/CLASS/MEMBER/SUBSYSTEM/service...');
  const p = path.replace(/^\/+/, '');
  if (p.includes('#') || /[\u0000-\u0020\u007f]/.test(p)) throw new TypeError('a call path has no fragment, spaces or control characters');
  const [pathPart] = p.split('?', 1) as [string];
  const segs = pathPart.split('/');
  if (segs.length < 5 || segs.slice(4).every((s) => s === '')) throw new TypeError('call expects INSTANCE/CLASS/MEMBER/SUBSYSTEM/service..., e.g. SZ/GOV/SZ-SCJGJ/registry/enterprises/913205...');
  if (!MEMBER_ID.test(segs.slice(0, 4).join('/'))) throw new TypeError(`${JSON.stringify(segs.slice(0, 4).join('/'))} is not a provider INSTANCE/CLASS/MEMBER/SUBSYSTEM`);
  // URLs resolve dot segments: the request would go (and be signed) elsewhere than written
  if (segs.some((s) => s === '.' || s === '..' || /^%2e(%2e)?$/i.test(s) || /^\.%2e$|^%2e\.$/i.test(s))) throw new TypeError('a call path has no . or .. segments');
  return `/r1/${p}`;
}

export type ExchangeClient = ReturnType<typeof createExchangeClient>;

export function createExchangeClient(opts: ExchangeClientOptions) {
  const base = normaliseBaseUrl(opts.baseUrl);
  /** a path prefix of the base URL ('' at the root): '/gusu' for https://gw.example/gusu/ */
  const prefix = base.pathname.replace(/\/+$/, '');
  if (typeof opts.member !== 'string' || opts.member.length > 255 || !MEMBER_ID.test(opts.member)) {
    throw new TypeError(`member must be INSTANCE/CLASS/MEMBER/SUBSYSTEM, e.g. SZ/GOV/SZ-GAJ/hukou, got ${JSON.stringify(String(opts.member).slice(0, 80))}`);
  }
  const member = opts.member;
  const keyAlg = algOfKey(opts.privateKey);
  if (opts.alg !== undefined && (!isAlg(opts.alg) || opts.alg !== keyAlg)) throw new TypeError(`alg ${String(opts.alg)} does not match the key, which is ${keyAlg}`);
  const alg = keyAlg;
  const key = { privateKey: opts.privateKey, alg };
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = wholeNumber('timeoutMs', opts.timeoutMs, 1) ?? DEFAULT_TIMEOUT_MS;

  interface Sent {
    res: Response;
    body: Buffer;
  }

  /** Signs and sends one request: the signature covers exactly the path+query and body bytes sent. */
  async function send(method: string, target: string, body: Uint8Array | null, headers: Record<string, string>, o: { timeoutMs?: number; signal?: AbortSignal; unsignedPayload?: boolean } = {}): Promise<Sent> {
    const url = new URL(base.href);
    const q = target.indexOf('?');
    url.pathname = prefix + (q < 0 ? target : target.slice(0, q));
    url.search = q < 0 ? '' : target.slice(q);
    // what goes on the request line, after URL's own normalisation
    const path = url.pathname + url.search;
    // unsignedPayload: bulk parts, whose bytes the batch's signed completion covers (bulk-client.ts)
    const signed = signRequest({ member }, key, { method, path, body: body ?? '', unsignedPayload: o.unsignedPayload });
    const own = new Set(['x-road-client', 'x-govstack-client', 'x-gusu-node', 'x-gusu-date', 'x-gusu-signature']);
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!own.has(k.toLowerCase())) h[k.toLowerCase()] = v;
    Object.assign(h, signed);
    const ms = o.timeoutMs ?? timeoutMs;
    const timeout = AbortSignal.timeout(ms);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    let res: Response;
    try {
      // (a copy typed over a plain ArrayBuffer, as fetch's BodyInit wants; the same bytes that were signed)
      res = await doFetch(url, { method, headers: h, body: body ? new Uint8Array(body) : undefined, signal, redirect: 'manual' });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason ?? err;
      if (timeout.aborted) throw new ExchangeClientError(0, 'timeout', `${method} ${path}: no answer within ${ms} ms`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ExchangeClientError(0, 'network', `${method} ${url.origin}${path}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    let bytes: Buffer;
    try {
      bytes = await readCapped(res, MAX_RESPONSE_BYTES);
    } catch (err) {
      if (err instanceof ExchangeClientError) throw err;
      if (o.signal?.aborted) throw o.signal.reason ?? err;
      throw new ExchangeClientError(0, timeout.aborted ? 'timeout' : 'network', `${method} ${path}: the answer broke off: ${(err as Error).message}`);
    }
    return { res, body: bytes };
  }

  async function json<T>(method: string, target: string, payload: unknown, o: { contentType?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ status: number; body: T }> {
    const body = payload === undefined ? null : Buffer.from(JSON.stringify(payload), 'utf8');
    const headers: Record<string, string> = { accept: `${JSON_TYPE}, application/problem+json` };
    if (body) headers['content-type'] = o.contentType ?? JSON_TYPE;
    const { res, body: bytes } = await send(method, target, body, headers, o);
    const text = bytes.toString('utf8');
    if (res.status < 200 || res.status > 299) throw errorOf(res.status, text, res.statusText);
    if (res.status === 204 || text.trim() === '') return { status: res.status, body: undefined as T };
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new ExchangeClientError(res.status, 'bad-response', `${method} ${target}: the node answered ${res.status} with a body that is not JSON`);
    }
  }

  /** member filled in (it must be this client's), specversion 1.0 */
  function own(event: UnsignedEvent): UnsignedEvent {
    if (!isObject(event)) throw new TypeError('an event is an object');
    if (event.gusumember !== undefined && event.gusumember !== member) throw new TypeError(`gusumember ${JSON.stringify(event.gusumember)} is not this client's member ${member}`);
    return { ...event, specversion: '1.0', gusumember: member } as UnsignedEvent;
  }

  const subPath = (id: string) => {
    // ids are UUIDs; anything path-like ('..') would be resolved by URL into another target
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(id)) throw new TypeError(`not a subscription id: ${JSON.stringify(String(id).slice(0, 80))}`);
    return `${SUBSCRIPTIONS_PATH}/${id}`;
  };

  async function pull(subscriptionId: string, o: { max?: number; waitSeconds?: number; signal?: AbortSignal } = {}): Promise<{ events: PulledEvent[] }> {
    const max = wholeNumber('max', o.max, 1);
    const wait = wholeNumber('waitSeconds', o.waitSeconds, 0);
    const qs = new URLSearchParams();
    if (max !== undefined) qs.set('max', String(max));
    if (wait !== undefined) qs.set('wait', String(wait));
    const target = `${subPath(subscriptionId)}/events${qs.size ? `?${qs}` : ''}`;
    const { body } = await json<{ events?: unknown }>('GET', target, undefined, { timeoutMs: timeoutMs + (wait ?? 0) * 1000, signal: o.signal });
    if (!isObject(body) || !Array.isArray(body.events)) throw new ExchangeClientError(200, 'bad-response', 'a pull answers { events: [...] }');
    for (const e of body.events) {
      if (!isObject(e) || !Number.isSafeInteger(e.seq) || !isObject(e.event)) throw new ExchangeClientError(200, 'bad-response', 'every pulled item is { seq, event, proof? }');
    }
    return { events: body.events as PulledEvent[] };
  }

  const checkSeqs = (what: string, seqs: number[]) => {
    if (!Array.isArray(seqs) || seqs.some((s) => !Number.isSafeInteger(s) || s < 1)) throw new TypeError(`${what} expects the seqs (positive whole numbers) of pulled events`);
  };

  async function ack(subscriptionId: string, seqs: number[], o: { signal?: AbortSignal } = {}): Promise<{ acked: number }> {
    checkSeqs('ack', seqs);
    let acked = 0;
    for (let i = 0; i < seqs.length; i += MAX_ACK_SEQS) {
      const { body } = await json<{ acked?: unknown }>('POST', `${subPath(subscriptionId)}/ack`, { seqs: seqs.slice(i, i + MAX_ACK_SEQS) }, o);
      acked += isObject(body) && typeof body.acked === 'number' ? body.acked : 0;
    }
    return { acked };
  }

  async function nack(subscriptionId: string, seqs: number[], error?: string): Promise<{ returned: number }> {
    checkSeqs('nack', seqs);
    let returned = 0;
    for (let i = 0; i < seqs.length; i += MAX_ACK_SEQS) {
      const payload = { seqs: seqs.slice(i, i + MAX_ACK_SEQS), ...(error ? { error: error.slice(0, 2000) } : {}) };
      const { body } = await json<{ returned?: unknown }>('POST', `${subPath(subscriptionId)}/nack`, payload);
      returned += isObject(body) && typeof body.returned === 'number' ? body.returned : 0;
    }
    return { returned };
  }

  async function postBatch(payload: unknown, offset: number): Promise<{ accepted: number; duplicates: number; receipt: unknown }> {
    try {
      const { body } = await json<Record<string, unknown>>('POST', EVENTS_PATH, payload, { contentType: 'application/cloudevents-batch+json' });
      const count = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) ? v.length : 0);
      return { accepted: count(body?.accepted), duplicates: count(body?.duplicates), receipt: body?.receipt };
    } catch (err) {
      if (err instanceof ExchangeClientError) {
        err.offset = offset;
        if (typeof err.problem.index === 'number') err.index = offset + err.problem.index;
      }
      throw err;
    }
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
  /** worth trying again: no answer, the node busy or restarting */
  const transient = (err: unknown) => err instanceof ExchangeClientError && (err.status === 0 || err.status === 429 || err.status === 502 || err.status === 503 || err.status === 504);

  return {
    member,
    alg,

    /** bulk batches: sendBatch (CSV or NDJSON of any size, streamed, resumable), batchStatus, waitBatch, cancelBatch (bulk-client.ts) */
    ...bulkApi({ member, alg, privateKey: opts.privateKey, send, json, errorOf, fail: (status, reason, detail) => new ExchangeClientError(status, reason, detail) }),

    /** Signs and publishes one event → the node's receipt (duplicate: the node had it already). */
    async publish(event: UnsignedEvent): Promise<PublishResult> {
      const signed = signEvent(own(event), opts.privateKey, alg);
      const { status, body } = await json<{ receipt?: Receipt; duplicate?: boolean; seq?: unknown }>('POST', EVENTS_PATH, signed, { contentType: 'application/cloudevents+json' });
      if (!isObject(body) || !isObject(body.receipt)) throw new ExchangeClientError(status, 'bad-response', 'a publish answers { receipt }');
      return { receipt: body.receipt as Receipt, duplicate: body.duplicate === true, ...(Number.isSafeInteger(body.seq) ? { seq: body.seq as number } : {}), event: signed };
    },

    /**
     * Publishes events in requests of at most 1000 (chunkSize), each batch-signed once (signBatch)
     * or, with signEach, each event signed. A request is all or nothing; on a refusal the error's
     * `offset` tells which were accepted before it (publishing again is idempotent).
     */
    async publishBatch(events: UnsignedEvent[], o: { signEach?: boolean; chunkSize?: number } = {}): Promise<BatchResult> {
      if (!Array.isArray(events)) throw new TypeError('publishBatch expects an array of events');
      const size = Math.min(wholeNumber('chunkSize', o.chunkSize, 1) ?? MAX_BATCH_EVENTS, MAX_BATCH_EVENTS);
      const out: BatchResult = { accepted: 0, duplicates: 0, receipts: [], requests: 0 };
      for (let offset = 0; offset < events.length; offset += size) {
        const chunk = events.slice(offset, offset + size).map(own);
        let payload: unknown;
        if (o.signEach) payload = chunk.map((e) => signEvent(e, opts.privateKey, alg));
        else {
          const b = signBatch(chunk, opts.privateKey, alg);
          payload = { batch: b.header, events: b.events, proofs: b.proofs } satisfies { batch: BatchHeader; events: ExchangeEvent[]; proofs: InclusionProof[] };
        }
        const r = await postBatch(payload, offset);
        out.accepted += r.accepted;
        out.duplicates += r.duplicates;
        out.receipts.push(r.receipt);
        out.requests++;
      }
      return out;
    },

    async subscribe(resource: string, o: { delivery?: 'pull' | 'push'; pushUrl?: string } = {}): Promise<Subscription> {
      if (typeof resource !== 'string' || resource.length === 0) throw new TypeError('subscribe expects a resource id');
      const delivery = o.delivery ?? (o.pushUrl ? 'push' : 'pull');
      if (delivery !== 'pull' && delivery !== 'push') throw new TypeError('delivery is pull or push');
      if (delivery === 'push' && !o.pushUrl) throw new TypeError('a push subscription needs a pushUrl');
      if (delivery === 'pull' && o.pushUrl) throw new TypeError('a pull subscription has no pushUrl');
      const { status, body } = await json<unknown>('POST', SUBSCRIPTIONS_PATH, { resource, delivery, ...(o.pushUrl ? { pushUrl: o.pushUrl } : {}) });
      const sub = isObject(body) && isObject(body.subscription) ? body.subscription : body;
      if (!isObject(sub) || typeof sub.id !== 'string') throw new ExchangeClientError(status, 'bad-response', 'a subscribe answers the subscription { id, resource, delivery, ... }');
      return sub as Subscription;
    },

    /** this member's subscriptions */
    async subscriptions(): Promise<Subscription[]> {
      const { status, body } = await json<unknown>('GET', SUBSCRIPTIONS_PATH, undefined);
      const list = Array.isArray(body) ? body : isObject(body) ? (body.items ?? body.subscriptions) : undefined;
      if (!Array.isArray(list)) throw new ExchangeClientError(status, 'bad-response', 'the subscriptions answer is a list');
      return list as Subscription[];
    },

    async unsubscribe(id: string): Promise<void> {
      await json('DELETE', subPath(id), undefined);
    },

    pull,
    ack,
    /** gives pulled events back: the node retries them after a back-off, then dead-letters them */
    nack,

    /**
     * Pulls, hands each event to the handler in order, and acknowledges each pull's events, until
     * signal aborts. An event whose source+id was seen is acknowledged without calling the handler
     * again (delivery is at least once; this makes the effect exactly once as far as `seen` remembers).
     * A handled event is marked seen before it is acknowledged. No answer or a busy node (429, 502-504)
     * is retried with back-off; any other refusal rejects.
     */
    async consume(subscriptionId: string, handler: (event: ExchangeEvent, meta: { seq: number }) => void | Promise<void>, o: ConsumeOptions = {}): Promise<ConsumeStats> {
      const seen = o.seen ?? createSeenSet();
      const max = wholeNumber('max', o.max, 1) ?? 100;
      const waitSeconds = wholeNumber('waitSeconds', o.waitSeconds, 0) ?? 10;
      const signal = o.signal;
      const stats: ConsumeStats = { pulls: 0, handled: 0, duplicates: 0, acked: 0, failed: 0 };
      let backoff = 0;
      const retrying = async (err: unknown) => {
        if (!transient(err)) throw err;
        backoff = Math.min(backoff ? backoff * 2 : 500, 30_000);
        await sleep(backoff, signal);
      };
      /** acknowledges even after an abort (what was handled must not come back needlessly) */
      const ackAll = async (seqs: number[]) => {
        for (let attempt = 0; seqs.length; attempt++) {
          try {
            stats.acked += (await ack(subscriptionId, seqs)).acked;
            return;
          } catch (err) {
            if (!transient(err) || attempt >= 4 || signal?.aborted) throw err;
            await sleep(Math.min(500 * 2 ** attempt, 8000));
          }
        }
      };
      while (!signal?.aborted) {
        let events: PulledEvent[];
        try {
          events = (await pull(subscriptionId, { max, waitSeconds, signal })).events;
          stats.pulls++;
          backoff = 0;
        } catch (err) {
          if (signal?.aborted) break;
          await retrying(err);
          continue;
        }
        const done: number[] = [];
        const failed: { seq: number; err: unknown }[] = [];
        const heldKeys = new Set<string>();
        let failure: unknown = null;
        for (const { seq, event } of events) {
          if (signal?.aborted || failure) break;
          if (typeof event.gusukey === 'string' && heldKeys.has(event.gusukey)) continue;
          const k = eventKey(event);
          if (await seen.has(k)) {
            stats.duplicates++;
            done.push(seq);
            continue;
          }
          try {
            await handler(event, { seq });
          } catch (err) {
            stats.failed++;
            failed.push({ seq, err });
            if (typeof event.gusukey === 'string') heldKeys.add(event.gusukey);
            if (!o.onError) failure = err;
            else await o.onError(err, event, { seq });
            continue;
          }
          await seen.add(k);
          stats.handled++;
          done.push(seq);
        }
        await ackAll(done);
        if (failed.length) {
          // best effort: without it they come back after the lease all the same
          const error = failed.map((f) => `seq ${f.seq}: ${f.err instanceof Error ? f.err.message : String(f.err)}`).join('; ');
          await nack(subscriptionId, failed.map((f) => f.seq), `handler failed: ${error}`).catch(() => {});
        }
        if (failure) throw failure;
      }
      return stats;
    },

    /**
     * An X-Road style synchronous call through the node: `/r1/{INSTANCE/CLASS/MEMBER/SUBSYSTEM/service...}`
     * with X-Road-Client and X-Road-Id, signed as every request. Returns the provider's answer.
     */
    async call(path: string, o: CallOptions = {}): Promise<CallResult> {
      const target = callTarget(path);
      const method = (o.method ?? (o.body !== undefined ? 'POST' : 'GET')).toUpperCase();
      if (!/^[A-Z]{1,20}$/.test(method)) throw new TypeError(`not an HTTP method: ${JSON.stringify(o.method)}`);
      const id = o.id ?? crypto.randomUUID();
      if (!/^[\x21-\x7e]{1,200}$/.test(id)) throw new TypeError('X-Road-Id is 1 to 200 printable ASCII characters');
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      let body: Buffer | null = null;
      if (o.body !== undefined) {
        if (method === 'GET' || method === 'HEAD') throw new TypeError(`a ${method} call has no body`);
        if (typeof o.body === 'string') body = Buffer.from(o.body, 'utf8');
        else if (o.body instanceof Uint8Array) body = Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength);
        else {
          body = Buffer.from(JSON.stringify(o.body), 'utf8');
          if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = JSON_TYPE;
        }
      }
      for (const k of Object.keys(headers)) if (k.toLowerCase() === 'x-road-id') delete headers[k];
      headers['x-road-id'] = id;
      const { res, body: answer } = await send(method, target, body, headers);
      if (o.throwOnError !== false && (res.status < 200 || res.status > 299)) throw errorOf(res.status, answer.toString('utf8'), res.statusText);
      const requestHash = res.headers.get('x-road-request-hash');
      const expected = crypto.createHash('sha512').update(body ?? Buffer.alloc(0)).digest('base64');
      return { status: res.status, headers: Object.fromEntries(res.headers), body: answer, id, requestHash, requestHashMatches: requestHash === null ? null : requestHash === expected };
    },
  };
}
