// The member SDK (src/base/exchange/client.ts) against a fake fetch that checks what a node checks,
// and the `gusu exchange` command's usage errors and member side against a local HTTP server.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readSignedHeaders, verifyRequestSignature } from '../src/base/exchange/auth.ts';
import { verifyBatchedEvent, VerifiedBatches, type BatchHeader, type InclusionProof } from '../src/base/exchange/batch.ts';
import { createExchangeClient, createSeenSet, ExchangeClientError, type ExchangeClientOptions } from '../src/base/exchange/client.ts';
import { exchangeCommand } from '../src/base/exchange/cli.ts';
import { sha256 } from '../src/base/exchange/canonical.ts';
import { verifyEvent, type ExchangeEvent, type UnsignedEvent } from '../src/base/exchange/envelope.ts';
import { makeReceipt } from '../src/base/exchange/receipt.ts';
import { generateKeyPair, type Alg, type KeyPair } from '../src/base/identity/crypto/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { UsageError } from '../src/module.ts';

const MEMBER = 'SZ/GOV/SZ-GAJ/hukou';
const P256 = generateKeyPair('ecdsa-p256-sha256');
const SM2 = generateKeyPair('sm2-sm3');
const NODE = generateKeyPair('ecdsa-p256-sha256');

interface Seen {
  method: string;
  url: URL;
  /** the request target as sent */
  target: string;
  headers: Record<string, string>;
  body: Buffer;
  signal: AbortSignal | undefined;
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | Response;

/** a request the node sits on until the client gives up (a ref'd timer stands for the open socket) */
function hang(req: Seen): Promise<Answer> {
  return new Promise<Answer>((_, reject) => {
    const alive = setInterval(() => {}, 1000);
    req.signal!.addEventListener('abort', () => {
      clearInterval(alive);
      reject(req.signal!.reason);
    });
  });
}

/** A fake fetch: records each request and answers with route(req). */
function fakeFetch(route: (req: Seen) => Answer | Promise<Answer>) {
  const requests: Seen[] = [];
  const fetchImpl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((init.headers ?? {}) as Record<string, string>)) headers[k.toLowerCase()] = v;
    const body = init.body === undefined || init.body === null ? Buffer.alloc(0) : Buffer.from(init.body as Uint8Array);
    const req: Seen = { method: init.method ?? 'GET', url, target: url.pathname + url.search, headers, body, signal: init.signal ?? undefined };
    requests.push(req);
    const a = await route(req);
    if (a instanceof Response) return a;
    const problem = a.status >= 400;
    const text = a.body === undefined ? null : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    return new Response(text, { status: a.status, headers: { 'content-type': problem ? 'application/problem+json' : 'application/json', ...(a.headers ?? {}) } });
  }) as typeof fetch;
  return { fetch: fetchImpl, requests };
}

/** What the node does with a signed request: read the headers, check the signature over target and body. */
function assertSigned(req: Seen, publicKey: string, alg: Alg) {
  const h = readSignedHeaders(req.headers);
  assert.ok(h.ok, `signed headers: ${JSON.stringify(h)}`);
  assert.equal(h.by, MEMBER);
  assert.equal(req.headers['x-road-client'], MEMBER);
  const digest = sha256(req.body).toString('hex');
  assert.ok(verifyRequestSignature(alg, publicKey, { by: MEMBER, date: h.date!, method: req.method, path: req.target, body: digest }, h.sig!), `signature over ${req.method} ${req.target}`);
  // and not over anything else
  assert.equal(verifyRequestSignature(alg, publicKey, { by: MEMBER, date: h.date!, method: req.method, path: req.target + 'x', body: digest }, h.sig!), false);
  assert.equal(verifyRequestSignature(alg, publicKey, { by: MEMBER, date: h.date!, method: req.method, path: req.target, body: sha256(Buffer.concat([req.body, Buffer.from(' ')])).toString('hex') }, h.sig!), false);
}

function receiptFor(e: ExchangeEvent) {
  return makeReceipt(e, 'node:hub', 'accepted', undefined, NODE.privateKey, NODE.alg);
}

function event(i: number, extra: Partial<Record<string, unknown>> = {}): UnsignedEvent {
  return {
    specversion: '1.0',
    id: `evt-${i}`,
    source: `urn:gusu:member:${MEMBER}`,
    type: 'cn.gov.suzhou.population.person.updated',
    data: { idNumber: `32050519900101${String(i).padStart(4, '0')}`, n: i, name: '张三' },
    gusumember: MEMBER,
    gusuresource: 'cn.gov.suzhou.population.person',
    gusukey: `k${i % 7}`,
    ...extra,
  };
}

function client(keys: KeyPair, route: (req: Seen) => Answer | Promise<Answer>, o: Partial<ExchangeClientOptions> = {}) {
  const f = fakeFetch(route);
  return { ex: createExchangeClient({ baseUrl: 'http://node.test:3000', member: MEMBER, privateKey: keys.privateKey, fetch: f.fetch, ...o }), requests: f.requests };
}

describe('publishing', () => {
  for (const keys of [P256, SM2]) {
    test(`publish (${keys.alg}): the request signature covers exactly the path and body sent; the event verifies`, async () => {
      let n = 0;
      const { ex, requests } = client(keys, (req) => {
        const e = JSON.parse(req.body.toString('utf8')) as ExchangeEvent;
        return n++ === 0 ? { status: 201, body: { receipt: receiptFor(e), seq: 17 } } : { status: 200, body: { receipt: receiptFor(e), seq: 17, duplicate: true } };
      });
      assert.equal(ex.alg, keys.alg);
      const first = await ex.publish(event(1));
      const again = await ex.publish(event(1));
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(first.seq, 17);
      assert.equal(first.receipt.eventid, 'evt-1');
      assert.equal(requests.length, 2);
      for (const req of requests) {
        assert.equal(req.method, 'POST');
        assert.equal(req.target, '/api/v1/exchange/events');
        assert.equal(req.headers['content-type'], 'application/cloudevents+json');
        assertSigned(req, keys.publicKey, keys.alg);
        const sent = JSON.parse(req.body.toString('utf8')) as ExchangeEvent;
        assert.deepEqual(verifyEvent(req.body.toString('utf8'), keys.publicKey), { ok: true });
        assert.equal(sent.gusualg, keys.alg);
        assert.equal(sent.gusumember, MEMBER);
      }
    });
  }

  test('a base URL with a path prefix: the signed target is the whole path as sent', async () => {
    const { ex, requests } = client(P256, (req) => ({ status: 201, body: { receipt: receiptFor(JSON.parse(req.body.toString()) as ExchangeEvent) } }), { baseUrl: 'https://gw.test/gusu/' });
    await ex.publish(event(2));
    assert.equal(requests[0]!.target, '/gusu/api/v1/exchange/events');
    assertSigned(requests[0]!, P256.publicKey, P256.alg);
  });

  test('the member is filled in; another member, a wrong alg or a malformed event is refused before sending', async () => {
    const { ex, requests } = client(P256, (req) => ({ status: 201, body: { receipt: receiptFor(JSON.parse(req.body.toString()) as ExchangeEvent) } }));
    const { gusumember: _m, ...noMember } = event(3) as Record<string, unknown>;
    const r = await ex.publish(noMember as UnsignedEvent);
    assert.equal(r.event.gusumember, MEMBER);
    await assert.rejects(ex.publish(event(4, { gusumember: 'SZ/GOV/SZ-SF/tax' })), /not this client's member/);
    await assert.rejects(ex.publish(event(5, { type: 'Not A Type' })), /cannot sign a malformed event: type/);
    assert.equal(requests.length, 1);
    assert.throws(() => createExchangeClient({ baseUrl: 'http://x', member: MEMBER, privateKey: P256.privateKey, alg: 'sm2-sm3' }), /does not match the key/);
    assert.throws(() => createExchangeClient({ baseUrl: 'http://x', member: 'hukou', privateKey: P256.privateKey }), /INSTANCE\/CLASS/);
    assert.throws(() => createExchangeClient({ baseUrl: 'ftp://x', member: MEMBER, privateKey: P256.privateKey }), /http or https/);
  });

  test('publishBatch: batch-signed chunks of at most 1000, every event verifies with its proof', async () => {
    const verified = new VerifiedBatches();
    const { ex, requests } = client(P256, (req) => {
      const b = JSON.parse(req.body.toString('utf8')) as { batch: BatchHeader; events: ExchangeEvent[]; proofs: InclusionProof[] };
      assert.equal(b.batch.size, b.events.length);
      b.events.forEach((e, i) => assert.deepEqual(verifyBatchedEvent(e, b.proofs[i]!, b.batch, P256.publicKey, { verified }), { ok: true }));
      return { status: 200, body: { accepted: b.events.length - 1, duplicates: 1, receipt: { batch: b.batch.root } } };
    });
    const events = Array.from({ length: 2500 }, (_, i) => event(i));
    const r = await ex.publishBatch(events);
    assert.deepEqual(requests.map((q) => (JSON.parse(q.body.toString()) as { events: unknown[] }).events.length), [1000, 1000, 500]);
    assert.equal(r.accepted, 2497);
    assert.equal(r.duplicates, 3);
    assert.equal(r.requests, 3);
    assert.equal(r.receipts.length, 3);
    assert.equal(verified.checks, 3, 'one signature verification per batch');
    for (const req of requests) {
      assert.equal(req.headers['content-type'], 'application/cloudevents-batch+json');
      assert.equal(req.target, '/api/v1/exchange/events');
      assertSigned(req, P256.publicKey, P256.alg);
    }
  });

  test('publishBatch (sm2-sm3): one batch signature', async () => {
    const { ex, requests } = client(SM2, (req) => {
      const b = JSON.parse(req.body.toString('utf8')) as { batch: BatchHeader; events: ExchangeEvent[]; proofs: InclusionProof[] };
      b.events.forEach((e, i) => assert.deepEqual(verifyBatchedEvent(e, b.proofs[i]!, b.batch, SM2.publicKey), { ok: true }));
      return { status: 200, body: { accepted: b.events.length, duplicates: 0, receipt: {} } };
    });
    assert.equal((await ex.publishBatch([event(1), event(2), event(3)])).accepted, 3);
    assertSigned(requests[0]!, SM2.publicKey, SM2.alg);
  });

  test('publishBatch signEach: a JSON array of individually signed events', async () => {
    const { ex, requests } = client(P256, (req) => {
      const list = JSON.parse(req.body.toString('utf8')) as ExchangeEvent[];
      assert.ok(Array.isArray(list));
      for (const e of list) assert.deepEqual(verifyEvent(e, P256.publicKey), { ok: true });
      return { status: 200, body: { accepted: list.length, duplicates: 0, receipt: {} } };
    });
    const r = await ex.publishBatch([event(1), event(2)], { signEach: true });
    assert.equal(r.accepted, 2);
    assert.equal(requests.length, 1);
  });

  test('a refused batch names the event by its index in the caller\'s array, and what was accepted before', async () => {
    let n = 0;
    const { ex } = client(P256, (req) => {
      const b = JSON.parse(req.body.toString('utf8')) as { events: unknown[] };
      if (n++ === 1) return { status: 400, body: { type: '/problems/validation', title: 'Validation failed', status: 400, reason: 'schema', detail: 'event 5: data.idNumber is required', index: 5, errors: [{ path: '/idNumber' }] } };
      return { status: 200, body: { accepted: b.events.length, duplicates: 0, receipt: {} } };
    });
    const err = await ex.publishBatch(Array.from({ length: 2100 }, (_, i) => event(i))).then(
      () => assert.fail('should be refused'),
      (e: unknown) => e as ExchangeClientError,
    );
    assert.ok(err instanceof ExchangeClientError);
    assert.equal(err.status, 400);
    assert.equal(err.reason, 'schema');
    assert.equal(err.index, 1005);
    assert.equal(err.offset, 1000);
    assert.deepEqual(err.problem.errors, [{ path: '/idNumber' }]);
  });
});

describe('subscriptions, pull and ack', () => {
  test('subscribe, list, unsubscribe: methods, paths and bodies', async () => {
    const sub = { id: '0b6f3c2e-1c1a-4f7e-9a52-3f1e7d0c9a11', resource: 'cn.gov.suzhou.population.person', delivery: 'pull', status: 'active' };
    const { ex, requests } = client(P256, (req) => {
      if (req.method === 'POST') return { status: 201, body: sub };
      if (req.method === 'GET') return { status: 200, body: { items: [sub] } };
      return { status: 204 };
    });
    assert.deepEqual(await ex.subscribe('cn.gov.suzhou.population.person'), sub);
    await ex.subscribe('cn.gov.suzhou.population.person', { pushUrl: 'https://hukou.test/inbox' });
    assert.deepEqual(await ex.subscriptions(), [sub]);
    await ex.unsubscribe(sub.id);
    assert.deepEqual(
      requests.map((r) => [r.method, r.target, r.body.toString()]),
      [
        ['POST', '/api/v1/exchange/subscriptions', '{"resource":"cn.gov.suzhou.population.person","delivery":"pull"}'],
        ['POST', '/api/v1/exchange/subscriptions', '{"resource":"cn.gov.suzhou.population.person","delivery":"push","pushUrl":"https://hukou.test/inbox"}'],
        ['GET', '/api/v1/exchange/subscriptions', ''],
        ['DELETE', `/api/v1/exchange/subscriptions/${sub.id}`, ''],
      ],
    );
    for (const r of requests) assertSigned(r, P256.publicKey, P256.alg);
    await assert.rejects(ex.subscribe('x.y', { delivery: 'push' }), /needs a pushUrl/);
    await assert.rejects(ex.unsubscribe('../../events'), /not a subscription id/);
  });

  test('pull signs the query as sent; ack posts the seqs', async () => {
    const e = { ...event(1), gusudigest: '0'.repeat(64), gusualg: 'ecdsa-p256-sha256' };
    const { ex, requests } = client(P256, (req) => (req.method === 'GET' ? { status: 200, body: { events: [{ seq: 7, event: e }] } } : { status: 200, body: { acked: 1 } }));
    const { events } = await ex.pull('sub-1', { max: 5, waitSeconds: 2 });
    assert.equal(events[0]!.seq, 7);
    assert.deepEqual(await ex.ack('sub-1', [7]), { acked: 1 });
    assert.deepEqual(await ex.ack('sub-1', []), { acked: 0 }, 'nothing to acknowledge: no request');
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.target, '/api/v1/exchange/subscriptions/sub-1/events?max=5&wait=2');
    assert.equal(requests[1]!.target, '/api/v1/exchange/subscriptions/sub-1/ack');
    assert.equal(requests[1]!.body.toString(), '{"seqs":[7]}');
    for (const r of requests) assertSigned(r, P256.publicKey, P256.alg);
    await assert.rejects(ex.pull('sub-1', { max: 0 }), /max must be a whole number/);
    await assert.rejects(ex.ack('sub-1', [1.5]), /positive whole numbers/);
  });

  test('ack of more seqs than the node takes at once is split', async () => {
    const { ex, requests } = client(P256, (req) => ({ status: 200, body: { acked: (JSON.parse(req.body.toString()) as { seqs: number[] }).seqs.length } }));
    assert.deepEqual(await ex.ack('sub-1', Array.from({ length: 12_001 }, (_, i) => i + 1)), { acked: 12_001 });
    assert.deepEqual(requests.map((r) => (JSON.parse(r.body.toString()) as { seqs: number[] }).seqs.length), [5000, 5000, 2001]);
  });

  test('consume: a redelivered event is handled once and acknowledged again; stops on abort', async () => {
    const pulled = (i: number, seq: number) => ({ seq, event: { ...event(i), gusudigest: '0'.repeat(64), gusualg: 'ecdsa-p256-sha256' } });
    const pulls = [[pulled(1, 1), pulled(2, 2)], [pulled(2, 2), pulled(3, 3)], []];
    const acks: number[][] = [];
    const ac = new AbortController();
    const { ex } = client(P256, async (req) => {
      if (req.method === 'POST') {
        const { seqs } = JSON.parse(req.body.toString()) as { seqs: number[] };
        acks.push(seqs);
        return { status: 200, body: { acked: seqs.length } };
      }
      const next = pulls.shift();
      if (next && next.length) return { status: 200, body: { events: next } };
      // a long poll with nothing: waits until the consumer gives up
      return hang(req);
    });
    const handled: string[] = [];
    const done = ex.consume(
      'sub-1',
      async (e, meta) => {
        handled.push(`${e.id}@${meta.seq}`);
        if (e.id === 'evt-3') setTimeout(() => ac.abort(), 20);
      },
      { signal: ac.signal, waitSeconds: 5 },
    );
    const stats = await done;
    assert.deepEqual(handled, ['evt-1@1', 'evt-2@2', 'evt-3@3']);
    assert.deepEqual(acks, [[1, 2], [2, 3]]);
    assert.equal(stats.duplicates, 1);
    assert.equal(stats.handled, 3);
    assert.equal(stats.acked, 4);
  });

  test('consume with a shared seen store, and a failing handler', async () => {
    const pulled = (i: number, seq: number, key: string) => ({ seq, event: { ...event(i), gusukey: key, gusudigest: '0'.repeat(64), gusualg: 'ecdsa-p256-sha256' } });
    const keys = new Set<string>();
    const seen = { has: async (k: string) => keys.has(k), add: async (k: string) => void keys.add(k) };
    const mk = () => {
      const acks: number[][] = [];
      const nacks: { seqs: number[]; error: string }[] = [];
      const ac = new AbortController();
      const pulls = [[pulled(1, 1, 'a'), pulled(2, 2, 'a'), pulled(4, 4, 'a'), pulled(3, 3, 'b')]];
      const { ex } = client(P256, async (req) => {
        if (req.target.endsWith('/nack')) return (nacks.push(JSON.parse(req.body.toString()) as { seqs: number[]; error: string }), { status: 200, body: { returned: 1 } });
        if (req.method === 'POST') return (acks.push((JSON.parse(req.body.toString()) as { seqs: number[] }).seqs), { status: 200, body: { acked: 1 } });
        const next = pulls.shift();
        if (next) return { status: 200, body: { events: next } };
        ac.abort();
        return { status: 200, body: { events: [] } };
      });
      return { ex, acks, nacks, ac };
    };
    // no onError: what was handled is acknowledged, then consume rejects with the handler's error
    const a = mk();
    await assert.rejects(
      a.ex.consume('s', async (e) => {
        if (e.id === 'evt-2') throw new Error('disk full');
      }, { signal: a.ac.signal, seen }),
      /disk full/,
    );
    assert.deepEqual(a.acks, [[1]]);
    assert.deepEqual(a.nacks, [{ seqs: [2], error: 'handler failed: seq 2: disk full' }]);
    assert.ok(keys.has(`urn:gusu:member:${MEMBER} evt-1`) && !keys.has(`urn:gusu:member:${MEMBER} evt-2`));
    // onError: the failed event is given back and its key held for the rest of the pull (evt-4 waits
    // for the lease), others go on; evt-1 is seen already
    const b = mk();
    const failed: string[] = [];
    const handled: string[] = [];
    const stats = await b.ex.consume(
      's',
      async (e) => {
        if (e.id === 'evt-1' || e.id === 'evt-4') assert.fail(`${e.id} must not reach the handler`);
        if (e.id === 'evt-2') throw new Error('bad record');
        handled.push(e.id);
      },
      { signal: b.ac.signal, seen: { has: seen.has, add: seen.add }, onError: (_err, e) => void failed.push(e.id) },
    ).catch((e: unknown) => assert.fail(String(e)));
    assert.deepEqual(b.acks, [[1, 3]]);
    assert.deepEqual(b.nacks.map((x) => x.seqs), [[2]]);
    assert.deepEqual(failed, ['evt-2']);
    assert.deepEqual(handled, ['evt-3']);
    assert.equal(stats.duplicates, 1);
  });

  test('the default seen set forgets the oldest keys beyond its size', () => {
    const s = createSeenSet(2);
    s.add('a');
    s.add('b');
    s.add('c');
    assert.equal(s.has('a'), false);
    assert.equal(s.has('c'), true);
    assert.equal(s.size, 2);
  });
});

describe('errors', () => {
  test('a refusal carries status, reason, detail and the problem body', async () => {
    const problem = { type: '/problems/forbidden', title: 'Forbidden', status: 403, reason: 'not-entitled', detail: 'SZ/GOV/SZ-GAJ/hukou holds no entitlement to cn.gov.suzhou.tax.record' };
    const { ex } = client(P256, () => ({ status: 403, body: problem }));
    await assert.rejects(ex.subscribe('cn.gov.suzhou.tax.record'), (err: unknown) => {
      assert.ok(err instanceof ExchangeClientError);
      assert.equal(err.status, 403);
      assert.equal(err.reason, 'not-entitled');
      assert.equal(err.detail, problem.detail);
      assert.deepEqual(err.problem, problem);
      assert.match(err.message, /^HTTP 403 not-entitled: SZ\/GOV/);
      return true;
    });
  });

  test('no answer: network and timeout are status 0', async () => {
    const down = createExchangeClient({
      baseUrl: 'http://node.test',
      member: MEMBER,
      privateKey: P256.privateKey,
      fetch: (async () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
      }) as typeof fetch,
    });
    await assert.rejects(down.subscriptions(), { name: 'ExchangeClientError', status: 0, reason: 'network', message: /ECONNREFUSED/ });
    const { ex } = client(P256, hang, { timeoutMs: 30 });
    await assert.rejects(ex.subscriptions(), { status: 0, reason: 'timeout' });
  });

  test('a non-JSON error body and a non-JSON success are reported, not thrown as SyntaxError', async () => {
    const { ex } = client(P256, (req) => (req.method === 'GET' ? new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }) : new Response('ok', { status: 201 })));
    await assert.rejects(ex.subscriptions(), { status: 502, reason: null, detail: '<html>bad gateway</html>' });
    await assert.rejects(ex.subscribe('a.b'), { status: 201, reason: 'bad-response' });
  });
});

describe('synchronous calls', () => {
  test('call: /r1/ path, X-Road headers, signed body, request hash', async () => {
    const { ex, requests } = client(P256, (req) => {
      const hash = crypto.createHash('sha512').update(req.body).digest('base64');
      return new Response('{"name":"苏州某某有限公司"}', { status: 200, headers: { 'content-type': 'application/json', 'x-road-id': req.headers['x-road-id']!, 'x-road-request-hash': hash } });
    });
    const r = await ex.call('SZ/GOV/SZ-SCJGJ/registry/enterprises/91320500MA1XXXXX0X?fields=name', { id: 'call-1' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).name, '苏州某某有限公司');
    assert.equal(r.id, 'call-1');
    assert.equal(r.requestHashMatches, true);
    assert.equal(r.requestHash, crypto.createHash('sha512').update('').digest('base64'));
    const get = requests[0]!;
    assert.equal(get.method, 'GET');
    assert.equal(get.target, '/r1/SZ/GOV/SZ-SCJGJ/registry/enterprises/91320500MA1XXXXX0X?fields=name');
    assert.equal(get.headers['x-road-id'], 'call-1');
    assert.equal(get.headers['x-road-client'], MEMBER);
    assertSigned(get, P256.publicKey, P256.alg);

    const post = await ex.call('SZ/GOV/SZ-SCJGJ/registry/search', { body: { q: '苏州' }, headers: { 'X-Gusu-Signature': 'forged', 'X-Trace': 't1' } });
    const sent = requests[1]!;
    assert.equal(sent.method, 'POST');
    assert.equal(sent.body.toString(), '{"q":"苏州"}');
    assert.equal(sent.headers['content-type'], 'application/json');
    assert.equal(sent.headers['x-trace'], 't1');
    assert.match(sent.headers['x-road-id']!, /^[0-9a-f-]{36}$/);
    assertSigned(sent, P256.publicKey, P256.alg);
    assert.equal(post.requestHashMatches, true);
  });

  test('call refuses paths that would go elsewhere than written, and throws on a refusal unless told not to', async () => {
    const { ex, requests } = client(P256, () => ({ status: 404, body: { type: '/problems/not-found', title: 'Not found', status: 404, detail: 'no such enterprise' } }));
    await assert.rejects(ex.call('SZ/GOV/SZ-SCJGJ/registry/../../../api/v1/exchange/subscriptions'), /no \. or \.\. segments/);
    await assert.rejects(ex.call('SZ/GOV/SZ-SCJGJ'), /INSTANCE\/CLASS\/MEMBER\/SUBSYSTEM\/service/);
    await assert.rejects(ex.call('SZ/XX/SZ-SCJGJ/registry/x'), /not a provider/);
    assert.equal(requests.length, 0);
    await assert.rejects(ex.call('SZ/GOV/SZ-SCJGJ/registry/x'), { status: 404, detail: 'no such enterprise' });
    const r = await ex.call('SZ/GOV/SZ-SCJGJ/registry/x', { throwOnError: false });
    assert.equal(r.status, 404);
    assert.equal(r.requestHash, null);
  });
});

describe('gusu exchange (CLI)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-exchange-cli-'));
  // a database that does not answer: a usage error must come before any connection
  const config = loadConfig({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', LOG_LEVEL: 'silent', GUSU_DATA_DIR: dir });
  const keyFile = path.join(dir, 'member.pem');
  fs.writeFileSync(keyFile, P256.privateKey);
  const sm2KeyFile = path.join(dir, 'member-sm2.pem');
  fs.writeFileSync(sm2KeyFile, SM2.privateKey);
  fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a key');
  fs.writeFileSync(path.join(dir, 'huge.json'), `{"x":"${'a'.repeat(1024 * 1024 + 10)}"}`);
  const member = ['--member', MEMBER, '--key', keyFile, '--url', 'http://127.0.0.1:1'];
  const uuid = '0b6f3c2e-1c1a-4f7e-9a52-3f1e7d0c9a11';
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function run(args: string[]) {
    let out = '';
    let err = '';
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    // the command writes strings; the test runner's own reports (buffers) go through untouched
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? ((out += chunk), true) : write(chunk, ...rest))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? ((err += chunk), true) : errWrite(chunk, ...rest))) as typeof process.stderr.write;
    try {
      return { code: await exchangeCommand.run(args, config), out, err };
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
  }

  test('the usage names every sub-command', () => {
    for (const c of ['publish', 'subscribe', 'subscriptions', 'pull', 'nodes', 'members', 'dead-letters', 'replay', 'verify']) assert.match(exchangeCommand.usage, new RegExp(`gusu exchange ${c}\\b`));
  });

  const usageErrors: [string, string[], RegExp][] = [
    ['no sub-command', [], /expects a sub-command/],
    ['an unknown sub-command', ['fly'], /unknown exchange command "fly"/],
    ['an unknown flag', ['nodes', '--json'], /Unknown option '--json'/],
    ['a stray argument', ['verify', 'now'], /unexpected "now"/],
    ['publish without --resource', ['publish', '--type', 'a.b', '--data', '{}', ...member], /--resource R .* is required/],
    ['a bad --resource', ['publish', '--resource', 'Person', '--type', 'a.b', '--data', '{}', ...member], /--resource expects a resource id/],
    ['a bad --type', ['publish', '--resource', 'a.b', '--type', 'Updated', '--data', '{}', ...member], /type must be a dotted lower-case name/],
    ['neither --data nor --file', ['publish', '--resource', 'a.b', '--type', 'a.b', ...member], /either --data .* or --file/],
    ['both --data and --file', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '{}', '--file', 'x', ...member], /either --data .* or --file/],
    ['--key-field with --data', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '{}', '--key-field', 'id', ...member], /--key-field goes with --file/],
    ['bad JSON in --data', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '{"a":', ...member], /--data is not JSON/],
    ['a huge --data', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', 'x'.repeat(1024 * 1024 + 1), ...member], /--data: \d+ bytes; an event's data is at most/],
    ['a huge --data @file', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', `@${path.join(dir, 'huge.json')}`, ...member], /bytes; an event's data is at most/],
    ['a missing --data @file', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '@/nonexistent.json', ...member], /--data: no file/],
    ['a lone surrogate in --data', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '"\\ud800"', ...member], /lone surrogate/],
    ['a bad --key-value', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '{}', '--key-value', 'a\u0001b', ...member], /gusukey must be/],
    ['a missing key file', ['publish', '--resource', 'a.b', '--type', 'a.b', '--data', '{}', '--member', MEMBER, '--key', '/nonexistent.pem'], /--key: no file/],
    ['a key file that is no key', ['subscriptions', '--member', MEMBER, '--key', path.join(dir, 'junk.pem')], /not a PKCS#8 PEM private key/],
    ['no --member', ['subscriptions', '--key', keyFile], /--member .* is required/],
    ['a bad --member', ['subscriptions', '--member', 'hukou', '--key', keyFile], /--member expects INSTANCE\/CLASS\/MEMBER\/SUBSYSTEM/],
    ['a bad --url', ['subscriptions', '--member', MEMBER, '--key', keyFile, '--url', 'ftp://x'], /--url expects an http\(s\) base URL/],
    ['a bad --push', ['subscribe', '--resource', 'a.b', '--push', 'javascript:alert(1)', ...member], /--push expects the http\(s\) URL/],
    ['pull without --subscription', ['pull', ...member], /--subscription ID is required/],
    ['pull --max 0', ['pull', '--subscription', uuid, '--max', '0', ...member], /--max expects a whole number from 1 to 1000/],
    ['pull --wait forever', ['pull', '--subscription', uuid, '--wait', 'forever', ...member], /--wait expects a whole number/],
    ['pull --wait beyond what the node waits', ['pull', '--subscription', uuid, '--wait', '60', ...member], /--wait expects a whole number from 0 to 30/],
    ['members --limit abc', ['members', '--limit', 'abc'], /--limit expects a whole number/],
    ['dead-letters with a bad --subscription', ['dead-letters', '--subscription', "1' or '1'='1"], /--subscription expects a subscription id/],
    ['replay without --seq or --all', ['replay', '--subscription', uuid], /either --seq N .* or --all/],
    ['replay with both', ['replay', '--subscription', uuid, '--seq', '3', '--all'], /either --seq N .* or --all/],
    ['replay with a bad --seq', ['replay', '--subscription', uuid, '--seq', '3x'], /--seq expects a whole number/],
    ['replay with a negative --seq', ['replay', '--subscription', uuid, '--seq', '-3'], /Option '--seq' argument is ambiguous\. Did you forget/],
    ['replay without --subscription', ['replay', '--all'], /--subscription ID is required/],
  ];
  for (const [what, args, message] of usageErrors) {
    test(`usage error: ${what}`, async () => {
      await assert.rejects(run(args), (err: unknown) => {
        assert.ok(err instanceof UsageError, `a UsageError, got ${(err as Error).stack}`);
        assert.match(err.message, message);
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      });
    });
  }

  test('valid operator flags get as far as the database', async () => {
    await assert.rejects(run(['replay', '--subscription', uuid, '--seq', '3', '--seq', '4']), (err: unknown) => !(err instanceof UsageError) && /ECONNREFUSED|connect/.test((err as Error).message));
  });

  describe('member side against a node', () => {
    const got: { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
    let server: http.Server;
    let url = '';
    before(async () => {
      server = http.createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          const body = Buffer.concat(parts);
          got.push({ method: req.method!, url: req.url!, headers: req.headers, body });
          const send = (status: number, v: unknown) => res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' }).end(JSON.stringify(v));
          const h = readSignedHeaders(req.headers);
          const key = req.headers['x-road-client'] === MEMBER ? (String(req.headers['x-test-alg'] ?? '') === 'sm2' ? SM2 : P256) : null;
          const pk = key && h.ok && verifyRequestSignature(P256.alg, P256.publicKey, { by: h.by, date: h.date!, method: req.method!, path: req.url!, body: sha256(body).toString('hex') }, h.sig!) ? P256 : key && h.ok && verifyRequestSignature(SM2.alg, SM2.publicKey, { by: h.by, date: h.date!, method: req.method!, path: req.url!, body: sha256(body).toString('hex') }, h.sig!) ? SM2 : null;
          if (!pk) return send(401, { type: '/problems/unauthorized', title: 'Unauthorized', status: 401, reason: 'bad-signature', detail: 'the signature does not verify\u001b[31m' });
          if (req.url === '/api/v1/exchange/events' && req.headers['content-type'] === 'application/cloudevents+json') {
            const e = JSON.parse(body.toString()) as ExchangeEvent;
            if (!verifyEvent(e, pk.publicKey).ok) return send(400, { status: 400, reason: 'bad-signature', detail: 'event' });
            return send(201, { receipt: receiptFor(e) });
          }
          if (req.url === '/api/v1/exchange/events') {
            const b = JSON.parse(body.toString()) as { batch: BatchHeader; events: ExchangeEvent[]; proofs: InclusionProof[] };
            const bad = b.events.findIndex((e, i) => !verifyBatchedEvent(e, b.proofs[i]!, b.batch, pk.publicKey).ok);
            if (bad >= 0) return send(400, { status: 400, reason: 'bad-signature', index: bad, detail: `event ${bad}` });
            return send(200, { accepted: b.events.length, duplicates: 0, receipt: {} });
          }
          if (req.url!.startsWith(`/api/v1/exchange/subscriptions/${uuid}/events`)) {
            return send(200, { events: [{ seq: 41, event: { ...event(1), gusudigest: '0'.repeat(64), gusualg: 'ecdsa-p256-sha256', subject: 'evil\u202e' } }, { seq: 42, event: { ...event(2), gusudigest: '0'.repeat(64), gusualg: 'ecdsa-p256-sha256' } }] });
          }
          if (req.url === `/api/v1/exchange/subscriptions/${uuid}/ack`) return send(200, { acked: (JSON.parse(body.toString()) as { seqs: number[] }).seqs.length });
          if (req.url === '/api/v1/exchange/subscriptions' && req.method === 'GET') return send(200, [{ id: uuid, resource: 'cn.gov.suzhou.population.person', delivery: 'pull', status: 'active' }]);
          return send(404, { status: 404, detail: 'no route' });
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));
    const as = (key = keyFile) => ['--member', MEMBER, '--key', key, '--url', url];

    test('publish one event (--data and --data @file), also with an SM2 key', async () => {
      const r = await run(['publish', '--resource', 'cn.gov.suzhou.population.person', '--type', 'cn.gov.suzhou.population.person.updated', '--key-value', '320505199001010011', '--data', '{"name":"张三"}', '--id', 'evt-cli-1', ...as()]);
      assert.equal(r.code, 0);
      const line = JSON.parse(r.out) as { id: string; duplicate: boolean; receipt: { eventid: string } };
      assert.equal(line.id, 'evt-cli-1');
      assert.equal(line.duplicate, false);
      assert.equal(line.receipt.eventid, 'evt-cli-1');
      const sent = JSON.parse(got.at(-1)!.body.toString()) as ExchangeEvent;
      assert.equal(sent.source, `urn:gusu:member:${MEMBER}`);
      assert.equal(sent.gusukey, '320505199001010011');
      assert.deepEqual(sent.data, { name: '张三' });
      const dataFile = path.join(dir, 'data.json');
      fs.writeFileSync(dataFile, '{"name":"李四"}');
      const s = await run(['publish', '--resource', 'cn.gov.suzhou.population.person', '--type', 'cn.gov.suzhou.population.person.updated', '--data', `@${dataFile}`, ...as(sm2KeyFile)]);
      assert.equal(s.code, 0);
      const sm2Sent = JSON.parse(got.at(-1)!.body.toString()) as ExchangeEvent;
      assert.equal(sm2Sent.gusualg, 'sm2-sm3');
      assert.deepEqual(verifyEvent(sm2Sent, SM2.publicKey), { ok: true });
      assert.match(sm2Sent.id, /^[0-9a-f-]{36}$/);
    });

    test('publish --file: NDJSON batch-signed in requests of 1000, keys from --key-field', async () => {
      const file = path.join(dir, 'events.ndjson');
      fs.writeFileSync(file, Array.from({ length: 1203 }, (_, i) => JSON.stringify({ idNumber: `3205051990010${String(i).padStart(5, '0')}`, i })).join('\n') + '\n\n');
      const before = got.length;
      const r = await run(['publish', '--resource', 'cn.gov.suzhou.population.person', '--type', 'cn.gov.suzhou.population.person.updated', '--file', file, '--key-field', 'idNumber', ...as()]);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, 'accepted 1203, duplicates 0 (1203 events in 2 requests)\n');
      const bodies = got.slice(before).map((g) => JSON.parse(g.body.toString()) as { events: ExchangeEvent[] });
      assert.deepEqual(bodies.map((b) => b.events.length), [1000, 203]);
      assert.equal(bodies[1]!.events[0]!.gusukey, '320505199001001000');
      assert.equal(got.at(-1)!.headers['content-type'], 'application/cloudevents-batch+json');
    });

    test('publish --file: a bad line is named, with what was sent before it', async () => {
      const file = path.join(dir, 'bad.ndjson');
      fs.writeFileSync(file, '{"a":1}\n{"a":2}\nnot json\n');
      const before = got.length;
      await assert.rejects(run(['publish', '--resource', 'a.b', '--type', 'a.b', '--file', file, ...as()]), /bad\.ndjson:3: not JSON/);
      assert.equal(got.length, before, 'nothing sent: the chunk had not been completed');
      fs.writeFileSync(file, '{"a":1}\n{"b":2}\n');
      await assert.rejects(run(['publish', '--resource', 'a.b', '--type', 'a.b', '--file', file, '--key-field', 'a', ...as()]), /bad\.ndjson:2: no key field "a"/);
    });

    test('pull prints NDJSON with hostile text escaped, and --ack acknowledges', async () => {
      const r = await run(['pull', '--subscription', uuid, '--max', '10', '--wait', '0', '--ack', ...as()]);
      assert.equal(r.code, 0);
      const lines = r.out.trim().split('\n');
      assert.equal(lines.length, 2);
      assert.deepEqual(lines.map((l) => (JSON.parse(l) as { seq: number }).seq), [41, 42]);
      assert.ok(!r.out.includes('\u202e') && r.out.includes('\\u202e'));
      assert.equal((JSON.parse(lines[0]!) as { event: { subject: string } }).event.subject, 'evil\u202e');
      assert.equal(r.err, 'acked 2\n');
      assert.equal(got.at(-2)!.url, `/api/v1/exchange/subscriptions/${uuid}/events?max=10&wait=0`);
      assert.equal(got.at(-1)!.body.toString(), '{"seqs":[41,42]}');
    });

    test('subscriptions lists; a refusal is one printable line', async () => {
      const r = await run(['subscriptions', ...as()]);
      assert.equal(r.out, `${uuid}  cn.gov.suzhou.population.person  pull  active\n`);
      const other = generateKeyPair('ecdsa-p256-sha256');
      const otherKey = path.join(dir, 'other.pem');
      fs.writeFileSync(otherKey, other.privateKey);
      await assert.rejects(run(['subscriptions', ...as(otherKey)]), (err: unknown) => {
        assert.ok(!(err instanceof UsageError) && !(err instanceof ExchangeClientError));
        assert.equal((err as Error).message, 'HTTP 401 bad-signature: the signature does not verify\\u001b[31m');
        return true;
      });
    });

    test('a node that is down is one clear line', async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as { port: number }).port;
      await new Promise<void>((r) => closed.close(() => r()));
      await assert.rejects(run(['subscriptions', '--member', MEMBER, '--key', keyFile, '--url', `http://127.0.0.1:${port}`]), (err: unknown) => {
        assert.equal((err as Error).message, `network: GET http://127.0.0.1:${port}/api/v1/exchange/subscriptions: ECONNREFUSED`);
        return true;
      });
    });
  });
});
