// One exchange node end to end over HTTP: members with CA certificates, resources with schemas,
// signed publish (one, batch-signed ECDSA and SM2), every refusal reason, pull with per-key order,
// leases and redelivery, dead letters, push with retries, receipts and the message log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { caContextFor, issueCertificate, revokeCertificate, parseCertificate } from '../src/base/identity/ca/index.ts';
import { signEvent, signBatch, signRequest, verifyReceipt, verifyLogDb, merkleRoot, eventHash, canonicalJson, digestOf, sha256, type UnsignedEvent } from '../src/base/exchange/index.ts';
import { verify, type Alg } from '../src/base/identity/crypto/index.ts';

const OPERATOR: Actor = { kind: 'staff', accountId: '00000000-0000-4000-8000-0000000000ee', name: '交换运维', department: 'SZ-DSJ', post: '工程师', roles: [{ role: 'exchange-operator', scope: null }] };
const AS_OPERATOR = { 'x-test-actor': 'operator' };

interface Member {
  id: string;
  key: string;
  alg: Alg;
  cert: string;
  serial: string;
}

let tp: TestPlatform;
let A: Member; // provider: 市公安局 户籍
let B: Member; // subscriber: 市民政局
let C: Member; // SM2 provider
let R: Member; // to be revoked

async function issue(code: string, subsystem: string, alg: Alg): Promise<Member> {
  const ca = caContextFor(tp.platform.ctx);
  const c = await issueCertificate(tp.platform.ctx.db, ca, { kind: 'system', id: 'test' }, { alg, subject: { kind: 'system', systemId: subsystem, department: code, name: `${code} ${subsystem}` } });
  const res = await fetch(`${tp.url}/api/v1/exchange/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AS_OPERATOR },
    body: JSON.stringify({ memberClass: 'GOV', memberCode: code, subsystem, name: `${code} ${subsystem}`, certificate: c.certificate }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return { id: `SZ/GOV/${code}/${subsystem}`, key: c.privateKey!, alg, cert: c.certificate, serial: c.serial };
}

async function call(m: Member, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; json: any; type: string }> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { ...signRequest({ member: m.id }, { privateKey: m.key, alg: m.alg }, { method, path, body: text }), ...extra };
  if (text !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${tp.url}${path}`, { method, headers, body: text });
  const raw = await res.text();
  return { status: res.status, json: raw ? JSON.parse(raw) : null, type: res.headers.get('content-type') ?? '' };
}

let n = 0;
function person(m: Member, data: unknown, o: { id?: string; key?: string; resource?: string } = {}): UnsignedEvent {
  return {
    specversion: '1.0',
    id: o.id ?? `evt-${++n}-${crypto.randomUUID()}`,
    source: `urn:gusu:member:${m.id}`,
    type: 'cn.gov.suzhou.population.person.updated',
    gusumember: m.id,
    gusuresource: o.resource ?? 'population.person',
    ...(o.key ? { gusukey: o.key } : {}),
    data,
  };
}

const PERSON_SCHEMA = {
  type: 'object',
  required: ['idNumber', 'name'],
  properties: { idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' }, name: { type: 'string', maxLength: 50 }, address: { type: 'string' } },
  additionalProperties: false,
};

async function defineResource(id: string, provider: Member, share = 'open'): Promise<void> {
  const res = await fetch(`${tp.url}/api/v1/exchange/resources/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...AS_OPERATOR },
    body: JSON.stringify({ name: `测试资源 ${id}`, provider: provider.id, schema: PERSON_SCHEMA, share }),
  });
  assert.equal(res.status, 200, await res.clone().text());
}

async function refusals(reason: string): Promise<number> {
  return (await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.refusal where reason = $1', [reason])).rows[0]!.n;
}

before(async () => {
  tp = await startTestPlatform(
    { GUSU_DEMO: 'false', GUSU_JOB_CONCURRENCY: '0', GUSU_EXCHANGE_LEASE_S: '1', GUSU_EXCHANGE_MAX_ATTEMPTS: '3', GUSU_EXCHANGE_RETRY_BASE_MS: '50', GUSU_EXCHANGE_MAX_BACKOFF_MS: '200', GUSU_EXCHANGE_MAX_EVENT_KB: '4' },
    [],
    { resolveActor: async (req) => (req.headers['x-test-actor'] === 'operator' ? OPERATOR : ANONYMOUS) },
  );
  A = await issue('SZ-GA', 'hukou', 'ecdsa-p256-sha256');
  B = await issue('SZ-MZ', 'marriage', 'ecdsa-p256-sha256');
  C = await issue('SZ-WJW', 'births', 'sm2-sm3');
  R = await issue('SZ-RS', 'social', 'ecdsa-p256-sha256');
  await defineResource('population.person', A);
  await defineResource('health.birth-test', C);
  await defineResource('population.sensitive', A, 'conditional');
});
after(async () => tp?.stop());

describe('registry', () => {
  it('refuses a member whose certificate is not from the municipal CA, and anonymous registration', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    void privateKey;
    const res = await fetch(`${tp.url}/api/v1/exchange/members`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AS_OPERATOR },
      body: JSON.stringify({ memberClass: 'GOV', memberCode: 'SZ-GA', subsystem: 'fake', name: 'x', certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).reason, 'certificate');
    const anon = await fetch(`${tp.url}/api/v1/exchange/members`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anon.status, 401);
  });

  it('refuses a resource whose schema does not compile or whose provider is unknown', async () => {
    const bad = await fetch(`${tp.url}/api/v1/exchange/resources/x.bad`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AS_OPERATOR }, body: JSON.stringify({ name: 'x', provider: A.id, schema: { type: 'nonsense' } }) });
    assert.equal(bad.status, 400);
    const unknown = await fetch(`${tp.url}/api/v1/exchange/resources/x.bad`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AS_OPERATOR }, body: JSON.stringify({ name: 'x', provider: 'SZ/GOV/NOPE/x', schema: {} }) });
    assert.equal(unknown.status, 400);
    assert.equal((await unknown.json()).reason, 'unknown-member');
  });
});

describe('publish and refusals', () => {
  let subId: string;
  before(async () => {
    const s = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.person', delivery: 'pull' });
    assert.equal(s.status, 201, JSON.stringify(s.json));
    subId = s.json.id;
    const again = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.person', delivery: 'pull' });
    assert.equal(again.status, 200);
    assert.equal(again.json.id, subId);
  });

  it('accepts a signed event with a signed receipt; the same event again is a duplicate, not a second message', async () => {
    const e = signEvent(person(A, { idNumber: '320502199001011234', name: '张三' }), A.key, A.alg);
    const r1 = await call(A, 'POST', '/api/v1/exchange/events', e);
    assert.equal(r1.status, 201, JSON.stringify(r1.json));
    const nodeCert = (await tp.platform.ctx.db.query<{ cert_pem: string }>('select cert_pem from exchange.node where is_self')).rows[0]!.cert_pem;
    assert.deepEqual(verifyReceipt(r1.json.receipt, parseCertificate(nodeCert).spki, e), { ok: true });
    const r2 = await call(A, 'POST', '/api/v1/exchange/events', e);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.duplicate, true);
    assert.equal(r2.json.seq, r1.json.seq);
    const { rows } = await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.delivery where seq = $1', [r1.json.seq]);
    assert.equal(rows[0]!.n, 1);
  });

  it('refuses each bad message with problem+json naming the reason, and logs the refusal', async () => {
    const base = person(A, { idNumber: '320502199001011234', name: '李四' }, { id: 'fixed-id-1' });
    const ok = await call(A, 'POST', '/api/v1/exchange/events', signEvent(base, A.key, A.alg));
    assert.equal(ok.status, 201);
    const cases: [string, number, unknown, Member?][] = [
      ['replay', 409, signEvent({ ...base, data: { idNumber: '320502199001011234', name: '王五' } }, A.key, A.alg)],
      ['unsigned', 403, { ...signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }), A.key, A.alg), gususig: undefined }],
      ['bad-signature', 403, { ...signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }), A.key, A.alg), gususig: signEvent(person(A, { idNumber: '320502199001011234', name: 'y' }), A.key, A.alg).gususig }],
      ['digest-mismatch', 403, { ...signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }), A.key, A.alg), data: { idNumber: '320502199001011234', name: 'tampered' } }],
      ['schema', 400, signEvent(person(A, { idNumber: 'not-an-id', name: 'x', extra: 1 }), A.key, A.alg)],
      ['oversized', 400, signEvent(person(A, { idNumber: '320502199001011234', name: 'x', address: '苏'.repeat(3000) }), A.key, A.alg)],
      ['not-provider', 403, signEvent(person(B, { idNumber: '320502199001011234', name: 'x' }), B.key, B.alg), B],
      ['unknown-resource', 404, signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }, { resource: 'no.such' }), A.key, A.alg)],
      ['malformed', 400, { specversion: '0.3', id: 'x' }],
    ];
    for (const [reason, status, body, who] of cases) {
      const before = await refusals(reason);
      const r = await call(who ?? A, 'POST', '/api/v1/exchange/events', body);
      assert.equal(r.status, status, `${reason}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.reason, reason, JSON.stringify(r.json));
      assert.match(r.type, /problem\+json/);
      assert.equal(await refusals(reason), before + 1, `refusal ${reason} logged`);
    }
  });

  it('refuses unsigned, stale, forged and unknown-member requests, and a revoked certificate', async () => {
    const e = signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }), A.key, A.alg);
    const none = await fetch(`${tp.url}/api/v1/exchange/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(e) });
    assert.equal(none.status, 401);
    const named = await fetch(`${tp.url}/api/v1/exchange/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-road-client': A.id }, body: JSON.stringify(e) });
    assert.equal(named.status, 401);
    assert.equal((await named.json()).reason, 'unsigned');
    assert.ok((await refusals('unsigned')) > 0);
    const stale = await call(A, 'POST', '/api/v1/exchange/events', e, signRequest({ member: A.id }, { privateKey: A.key, alg: A.alg }, { method: 'POST', path: '/api/v1/exchange/events', body: JSON.stringify(e), now: new Date(Date.now() - 3_600_000) }));
    assert.equal(stale.status, 401);
    assert.equal(stale.json.reason, 'stale');
    // signed by B's key while claiming to be A
    const forged = await call(A, 'POST', '/api/v1/exchange/events', e, signRequest({ member: A.id }, { privateKey: B.key, alg: B.alg }, { method: 'POST', path: '/api/v1/exchange/events', body: JSON.stringify(e) }));
    assert.equal(forged.status, 401);
    assert.equal(forged.json.reason, 'bad-signature');
    // the body changed after signing
    const swapped = await call(A, 'POST', '/api/v1/exchange/events', e, signRequest({ member: A.id }, { privateKey: A.key, alg: A.alg }, { method: 'POST', path: '/api/v1/exchange/events', body: '{}' }));
    assert.equal(swapped.json.reason, 'bad-signature');
    const ghost = await call({ ...A, id: 'SZ/GOV/SZ-GA/ghost' }, 'POST', '/api/v1/exchange/events', e);
    assert.equal(ghost.status, 401);
    assert.equal(ghost.json.reason, 'unknown-member');

    await defineResource('social.insured', R);
    const before = await call(R, 'POST', '/api/v1/exchange/events', signEvent(person(R, { idNumber: '320502199001011234', name: 'x' }, { resource: 'social.insured' }), R.key, R.alg));
    assert.equal(before.status, 201);
    await revokeCertificate(tp.platform.ctx.db, caContextFor(tp.platform.ctx), { kind: 'system', id: 'test' }, R.serial, 'key-compromise');
    const afterRevoke = await call(R, 'POST', '/api/v1/exchange/events', signEvent(person(R, { idNumber: '320502199001011234', name: 'y' }, { resource: 'social.insured' }), R.key, R.alg));
    assert.equal(afterRevoke.status, 403);
    assert.equal(afterRevoke.json.reason, 'certificate');
    assert.match(afterRevoke.json.detail, /revoked/);
  });

  it('refuses a subscription to a conditional resource without an entitlement, and grants it with one', async () => {
    const no = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.sensitive' });
    assert.equal(no.status, 403);
    assert.equal(no.json.reason, 'not-entitled');
    const grant = await fetch(`${tp.url}/api/v1/exchange/resources/population.sensitive/entitlements/${encodeURIComponent(B.id)}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...AS_OPERATOR }, body: '{}' });
    assert.equal(grant.status, 204);
    const yes = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.sensitive' });
    assert.equal(yes.status, 201);
    // revocation cancels the subscription: the next message is not delivered to it
    const revoke = await fetch(`${tp.url}/api/v1/exchange/resources/population.sensitive/entitlements/${encodeURIComponent(B.id)}`, { method: 'DELETE', headers: AS_OPERATOR });
    assert.equal(revoke.status, 204);
    const p = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'x' }, { resource: 'population.sensitive' }), A.key, A.alg));
    assert.equal(p.status, 201);
    const { rows } = await tp.platform.ctx.db.query('select 1 from exchange.delivery where seq = $1', [p.json.seq]);
    assert.equal(rows.length, 0);
    const gone = await call(B, 'GET', `/api/v1/exchange/subscriptions/${yes.json.id}/events`);
    assert.equal(gone.status, 404);
  });

  it('pulls in order per key: a later message of a key waits while an earlier one is in flight', async () => {
    // drain what earlier tests published
    for (;;) {
      const r = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=1000`);
      if (r.json.events.length === 0) break;
      await call(B, 'POST', `/api/v1/exchange/subscriptions/${subId}/ack`, { seqs: r.json.events.map((x: { seq: number }) => x.seq) });
    }
    const k1a = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'k1 first' }, { key: 'k1' }), A.key, A.alg));
    const k1b = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'k1 second' }, { key: 'k1' }), A.key, A.alg));
    const k2 = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'k2' }, { key: 'k2' }), A.key, A.alg));
    const first = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=1`);
    assert.deepEqual(first.json.events.map((x: { seq: number }) => x.seq), [k1a.json.seq]);
    const second = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10`);
    assert.deepEqual(second.json.events.map((x: { seq: number }) => x.seq), [k2.json.seq], 'k1 second waits for k1 first');
    const acked = await call(B, 'POST', `/api/v1/exchange/subscriptions/${subId}/ack`, { seqs: [k1a.json.seq, k2.json.seq] });
    assert.equal(acked.json.acked, 2);
    const third = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10`);
    assert.deepEqual(third.json.events.map((x: { seq: number }) => x.seq), [k1b.json.seq]);
    assert.equal(third.json.events[0].event.data.name, 'k1 second');
    // not acknowledged: handed out again after the lease (1 s), then dead-lettered after 3 attempts
    await new Promise((r) => setTimeout(r, 1100));
    const again = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10&wait=2`);
    assert.deepEqual(again.json.events.map((x: { seq: number }) => x.seq), [k1b.json.seq]);
    await new Promise((r) => setTimeout(r, 1100));
    await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10&wait=2`);
    await new Promise((r) => setTimeout(r, 1100));
    const none = await call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10`);
    assert.deepEqual(none.json.events, []);
    const { rows } = await tp.platform.ctx.db.query<{ status: string; attempts: number }>('select status, attempts from exchange.delivery where subscription = $1 and seq = $2', [subId, k1b.json.seq]);
    assert.deepEqual(rows[0], { status: 'dead', attempts: 3 });
  });

  it('a long pull wakes when a message is published', async () => {
    const started = Date.now();
    const pending = call(B, 'GET', `/api/v1/exchange/subscriptions/${subId}/events?max=10&wait=10`);
    await new Promise((r) => setTimeout(r, 200));
    const p = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'wake' }), A.key, A.alg));
    const got = await pending;
    assert.deepEqual(got.json.events.map((x: { seq: number }) => x.seq), [p.json.seq]);
    assert.ok(Date.now() - started < 9_000, 'returned before the wait ran out');
    await call(B, 'POST', `/api/v1/exchange/subscriptions/${subId}/ack`, { seqs: [p.json.seq] });
  });

  it('accepts a batch signed once (SM2) with one receipt over its Merkle root', async () => {
    const s = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'health.birth-test' });
    const events = Array.from({ length: 50 }, (_, i) => person(C, { idNumber: '320502202601011234', name: `新生儿${i}` }, { resource: 'health.birth-test', key: `mother-${i % 5}` }));
    const batch = signBatch(events, C.key, C.alg);
    const r = await call(C, 'POST', '/api/v1/exchange/events', { batch: batch.header, events: batch.events, proofs: batch.proofs }, { 'content-type': 'application/cloudevents-batch+json' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.accepted, 50);
    assert.equal(r.json.receipt.root, merkleRoot(batch.events.map((e) => eventHash(e))).toString('hex'));
    const nodeCert = (await tp.platform.ctx.db.query<{ cert_pem: string }>('select cert_pem from exchange.node where is_self')).rows[0]!.cert_pem;
    const { sig, ...body } = r.json.receipt;
    assert.ok(verify('ecdsa-p256-sha256', parseCertificate(nodeCert).spki, canonicalJson(body), Buffer.from(sig, 'base64url')));
    // the same batch again: all duplicates
    const again = await call(C, 'POST', '/api/v1/exchange/events', { batch: batch.header, events: batch.events, proofs: batch.proofs }, { 'content-type': 'application/cloudevents-batch+json' });
    assert.equal(again.json.duplicates, 50);
    // one event tampered: the whole batch is refused, naming its index
    const bad = { batch: batch.header, events: batch.events.map((e, i) => (i === 7 ? { ...e, subject: 'changed' } : e)), proofs: batch.proofs };
    const refused = await call(C, 'POST', '/api/v1/exchange/events', bad, { 'content-type': 'application/cloudevents-batch+json' });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.index, 7);
    const pulled = await call(B, 'GET', `/api/v1/exchange/subscriptions/${s.json.id}/events?max=100`);
    assert.equal(pulled.json.events.length, 50);
    assert.ok(pulled.json.events.every((x: { proof?: unknown }) => x.proof), 'each carries its inclusion proof');
    // as published: the header (stored once per batch) and the path (computed from the batch's leaves)
    const byId = new Map(batch.events.map((e, i) => [e.id, { header: batch.header, ...batch.proofs[i]! }]));
    for (const x of pulled.json.events) assert.deepEqual(x.proof, byId.get(x.event.id));
    assert.equal((await tp.platform.ctx.db.query<{ n: number }>(`select count(*)::int as n from exchange.batch where header->>'root' = $1`, [batch.header.root])).rows[0]!.n, 1);
    const acked = await call(B, 'POST', `/api/v1/exchange/subscriptions/${s.json.id}/ack`, { seqs: pulled.json.events.map((x: { seq: number }) => x.seq) });
    assert.equal(acked.status < 300, true, JSON.stringify(acked.json));
    // part of a batch (not all its events, not in order): each path is kept as sent
    const part = signBatch(events.map((e, i) => ({ ...e, id: `${e.id}-part`, data: { idNumber: '320502202601011234', name: `部分${i}` } })), C.key, C.alg);
    const pick = [9, 3, 4];
    const sent = await call(C, 'POST', '/api/v1/exchange/events', { batch: part.header, events: pick.map((i) => part.events[i]), proofs: pick.map((i) => part.proofs[i]) }, { 'content-type': 'application/cloudevents-batch+json' });
    assert.equal(sent.json.accepted, 3, JSON.stringify(sent.json));
    const second = await call(B, 'GET', `/api/v1/exchange/subscriptions/${s.json.id}/events?max=100`);
    assert.deepEqual(
      second.json.events.map((x: { event: { id: string }; proof: unknown }) => [x.event.id, x.proof]),
      pick.map((i) => [part.events[i]!.id, { header: part.header, ...part.proofs[i]! }]),
    );
  });
});

describe('push delivery', () => {
  it('POSTs to the subscriber, retries with back-off after a failure, signed by the node', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: any }[] = [];
    let fail = 2;
    const server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(data) });
        res.statusCode = fail-- > 0 ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const s = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'social.insured', delivery: 'push', pushUrl: `http://127.0.0.1:${port}/hook` });
      assert.equal(s.status, 201, JSON.stringify(s.json));
      // R's certificate is revoked (above): publish from A's resource instead
      const s2 = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.sensitive' }).catch(() => null);
      void s2;
      await call(A, 'DELETE', '/api/v1/exchange/subscriptions/00000000-0000-4000-8000-000000000000');
      const sub = await call(A, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.person', delivery: 'push', pushUrl: `http://127.0.0.1:${port}/hook` });
      assert.equal(sub.status, 201);
      const p = await call(A, 'POST', '/api/v1/exchange/events', signEvent(person(A, { idNumber: '320502199001011234', name: 'push me' }), A.key, A.alg));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const { rows } = await tp.platform.ctx.db.query<{ status: string }>('select status from exchange.delivery where subscription = $1 and seq = $2', [sub.json.id, p.json.seq]);
        if (rows[0]?.status === 'done') break;
        // the sweep job would do this every 2 s; jobs are off in this test
        const { sweep } = await import('../src/base/exchange/delivery.ts');
        const { exchangeOf } = await import('../src/base/exchange/index.ts');
        await sweep(exchangeOf(tp.platform.ctx));
        await new Promise((r) => setTimeout(r, 100));
      }
      const mine = received.filter((r) => r.body.subscription === sub.json.id);
      assert.equal(mine.length, 3, 'two failures, then delivered');
      assert.equal(mine[2]!.body.events[0].seq, p.json.seq);
      assert.equal(mine[2]!.headers['x-gusu-node'], 'hub');
      assert.ok(mine[2]!.headers['x-gusu-signature']);
      const { rows } = await tp.platform.ctx.db.query<{ status: string; attempts: number }>('select status, attempts from exchange.delivery where subscription = $1 and seq = $2', [sub.json.id, p.json.seq]);
      assert.deepEqual(rows[0], { status: 'done', attempts: 3 });
    } finally {
      server.close();
    }
  });
});

describe('message log', () => {
  it('holds every accepted message and acknowledgement, and verifies', async () => {
    const nodeCert = (await tp.platform.ctx.db.query<{ cert_pem: string }>('select cert_pem from exchange.node where is_self')).rows[0]!.cert_pem;
    const v = await verifyLogDb(tp.platform.ctx.db, parseCertificate(nodeCert).spki);
    assert.equal(v.ok, true, JSON.stringify(v));
    // an append of several (a batch published, an acknowledgement of many) is one entry holding them all
    const { rows } = await tp.platform.ctx.db.query<{ kind: string; n: number; entries: number }>(
      'select kind, sum(coalesce(jsonb_array_length(items), 1))::int as n, count(*)::int as entries from exchange.log_entry group by kind order by kind',
    );
    const counts = Object.fromEntries(rows.map((r) => [r.kind, r.n]));
    const messages = (await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.message')).rows[0]!.n;
    assert.equal(counts.event, messages);
    assert.ok((counts.receipt ?? 0) > 0);
    assert.ok(rows.find((r) => r.kind === 'event')!.entries < messages, 'batches are one entry each');
    assert.equal(v.ok && v.items, rows.reduce((a, r) => a + r.n, 0));
  });

  it('finds a stored message whose event, data or digest was changed, and a changed receipt', async () => {
    const db = tp.platform.ctx.db;
    const nodeCert = (await db.query<{ cert_pem: string }>('select cert_pem from exchange.node where is_self')).rows[0]!.cert_pem;
    const verifyNow = () => verifyLogDb(db, parseCertificate(nodeCert).spki);
    // a message published in a batch, and one published alone
    for (const which of ['in a batch', 'alone']) {
      const m = (await db.query<{ seq: string; event: string; digest: string }>(
        `select m.seq, m.event, m.digest from exchange.message m
          where ${which === 'alone' ? 'not' : ''} exists (select 1 from exchange.log_entry l where l.items @> jsonb_build_array(jsonb_build_object('ref', m.id)))
          order by m.seq limit 1`,
      )).rows[0]!;
      assert.ok(m, which);
      const e = JSON.parse(m.event);
      const tampered = async (event: string, digest: string, detail: RegExp) => {
        await db.query('update exchange.message set event = $2, digest = $3 where seq = $1', [m.seq, event, digest]);
        const r = await verifyNow();
        assert.deepEqual(!r.ok && [r.reason, r.message], ['message', Number(m.seq)], which);
        assert.match((!r.ok && r.detail) || '', detail);
      };
      await tampered(JSON.stringify({ ...e, subject: 'changed' }), m.digest, /not in the log/);
      await tampered(m.event, sha256('other').toString('hex'), /digest is not its event/);
      const data = { ...e.data, name: '改过的' };
      await tampered(JSON.stringify({ ...e, data }), m.digest, /data does not match/);
      await tampered(JSON.stringify({ ...e, data, gusudigest: digestOf(data) }), digestOf(data), /not in the log/);
      await db.query('update exchange.message set event = $2, digest = $3 where seq = $1', [m.seq, m.event, m.digest]);
      assert.equal((await verifyNow()).ok, true);
    }
    // a receipt changed in its batch entry
    const r = (await db.query<{ seq: string; items: unknown }>(`select seq, items from exchange.log_entry where kind = 'receipt' and items is not null order by seq limit 1`)).rows[0]!;
    await db.query('alter table exchange.log_entry disable trigger log_entry_append_only');
    try {
      await db.query(`update exchange.log_entry set items = jsonb_set(items, '{0,digest}', to_jsonb($2::text)) where seq = $1`, [r.seq, sha256('forged receipt').toString('hex')]);
      const broken = await verifyNow();
      assert.deepEqual(!broken.ok && [broken.reason, broken.seq], ['items', Number(r.seq)]);
      await db.query('update exchange.log_entry set items = $2 where seq = $1', [r.seq, JSON.stringify(r.items)]);
    } finally {
      await db.query('alter table exchange.log_entry enable trigger log_entry_append_only');
    }
    assert.equal((await verifyNow()).ok, true);
  });
});

describe('synchronous calls (X-Road style) and the GovStack directory', () => {
  it('forwards a signed call to the provider’s service only with an access right, and logs it', async () => {
    const seen: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body: data });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ idNumber: '320502199001011234', status: '户籍在册' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const reg = await fetch(`${tp.url}/api/v1/exchange/members`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...AS_OPERATOR },
        body: JSON.stringify({ memberClass: 'GOV', memberCode: 'SZ-GA', subsystem: 'hukou', name: 'SZ-GA hukou', certificate: A.cert, serviceUrl: `http://127.0.0.1:${port}/svc` }),
      });
      assert.equal(reg.status, 201);
      const def = await fetch(`${tp.url}/api/v1/exchange/members/${encodeURIComponent(A.id)}/services/persons`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...AS_OPERATOR },
        body: JSON.stringify({ name: '户籍核验', endpoints: [{ method: 'POST', path: '/persons/verify' }], openapi: { openapi: '3.0.0', info: { title: '户籍核验', version: '1' }, paths: {} } }),
      });
      assert.equal(def.status, 204);
      const path = `/r1/${A.id}/persons/verify?full=1`;
      const body = JSON.stringify({ idNumber: '320502199001011234' });
      const denied = await call(B, 'POST', path, body, { 'x-road-id': 'call-1' });
      assert.equal(denied.status, 403);
      assert.equal(denied.json.reason, 'not-entitled');
      const allowedMethods = await call(B, 'GET', `/r1/${A.id}/allowedMethods`);
      assert.deepEqual(allowedMethods.json.member, []);
      const grant = await fetch(`${tp.url}/api/v1/exchange/members/${encodeURIComponent(A.id)}/services/persons/clients/${encodeURIComponent(B.id)}`, { method: 'PUT', headers: AS_OPERATOR });
      assert.equal(grant.status, 204);
      const headers = { ...signRequest({ member: B.id }, { privateKey: B.key, alg: B.alg }, { method: 'POST', path, body }), 'content-type': 'application/json', 'x-road-id': 'call-2' };
      const ok = await fetch(`${tp.url}${path}`, { method: 'POST', headers, body });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('x-road-id'), 'call-2');
      assert.equal(ok.headers.get('x-road-request-hash'), crypto.createHash('sha512').update(body).digest('base64'));
      assert.deepEqual(await ok.json(), { idNumber: '320502199001011234', status: '户籍在册' });
      const last = seen.at(-1)!;
      assert.equal(last.url, '/svc/persons/verify?full=1');
      assert.equal(last.headers['x-road-client'], B.id);
      assert.equal(last.body, body);
      assert.equal(last.headers['x-gusu-signature'], undefined, 'the member’s signature stays at the node');
      const list = await call(B, 'GET', `/r1/${A.id}/listMethods`);
      assert.equal(list.json.member[0].serviceCode, 'persons');
      assert.deepEqual(list.json.member[0].endpointList.member, [{ method: 'POST', path: '/persons/verify' }]);
      const oas = await call(B, 'GET', `/r1/${A.id}/getOpenAPI?serviceCode=persons`);
      assert.equal(oas.json.info.title, '户籍核验');
      const clients = await call(B, 'GET', '/listClients');
      assert.ok(clients.json.member.some((m: { id: { memberCode: string } }) => m.id.memberCode === 'SZ-GA'));
      const unsigned = await fetch(`${tp.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-road-client': B.id }, body });
      assert.equal(unsigned.status, 401);
      const { rows } = await tp.platform.ctx.db.query<{ n: number }>(`select count(*)::int as n from exchange.log_entry where ref = 'xroad:call-2'`);
      assert.equal(rows[0]!.n, 2, 'request and response logged');
    } finally {
      server.close();
    }
  });
});

describe('GovStack Information Mediator pub/sub', () => {
  it('event types, publish (plain data bound by the signed request), subscribe, pull and confirm, as the spec writes them', async () => {
    const room = `/r1/${C.id}`;
    const schema = { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', required: ['dateTime', 'gender', 'mother', 'place'], properties: { dateTime: { type: 'string' }, gender: { type: 'string', enum: ['M', 'F'] }, mother: { type: 'string' }, place: { type: 'string' } } };
    const notMine = await call(B, 'POST', `${room}/api/v1/eventType`, { eventType: 'health.newbirth', schema });
    assert.equal(notMine.status, 403);
    const created = await call(C, 'POST', `${room}/api/v1/eventType`, { eventType: 'health.newbirth', schema });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    assert.equal((await call(C, 'POST', `${room}/api/v1/eventType`, { eventType: 'health.newbirth', schema })).status, 409);
    const types = await call(B, 'GET', `${room}/api/v1/eventType`);
    assert.ok(types.json.includes('health.newbirth'));
    assert.deepEqual((await call(B, 'GET', `${room}/api/v1/eventType/health.newbirth`)).json.schema.required, schema.required);

    const sub = await call(B, 'POST', `${room}/api/v1/subs/health.newbirth`, { eventType: 'health.newbirth', delivery: 'PULL' });
    assert.equal(sub.status, 200, JSON.stringify(sub.json));
    assert.equal(sub.json.delivery, 'PULL');
    assert.equal((await call(B, 'POST', `${room}/api/v1/subs/health.newbirth`, { eventType: 'health.newbirth' })).status, 409);
    assert.equal((await call(B, 'GET', `${room}/api/v1/subs`)).json.length, 2, 'health.birth-test (above) and health.newbirth');
    assert.equal((await call(B, 'GET', `${room}/pull/v1/health.newbirth`)).status, 404, 'nothing yet');

    const event = { dateTime: '2026-11-28T09:25:00+08:00', gender: 'F', mother: '合成数据 母亲', place: '苏州市立医院' };
    const pub = await call(C, 'POST', `${room}/pub/v1/health.newbirth`, { eventType: 'health.newbirth', event });
    assert.equal(pub.status, 201, JSON.stringify(pub.json));
    const bad = await call(C, 'POST', `${room}/pub/v1/health.newbirth`, { eventType: 'health.newbirth', event: { ...event, gender: 'X' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, 'schema');
    const byOther = await call(B, 'POST', `${room}/pub/v1/health.newbirth`, { eventType: 'health.newbirth', event });
    assert.equal(byOther.status, 403);
    assert.equal(byOther.json.reason, 'not-provider');

    const status = await call(C, 'GET', `${room}/pub/v1/health.newbirth/${pub.json.id}`);
    assert.equal(status.json.delivery.ready, 1);
    const next = await call(B, 'GET', `${room}/pull/v1/health.newbirth`);
    assert.equal(next.status, 200);
    assert.equal(next.json.id, pub.json.id);
    assert.deepEqual(next.json.event, event);
    assert.deepEqual(next.json.publisherId, { instanceId: 'SZ', memberClass: 'GOV', memberCode: 'SZ-WJW', applicationCode: 'births' });
    // the proof binds the data to C's signed request: anyone holding C's certificate can check it
    const { checkRequestProof } = await import('../src/base/exchange/publish.ts');
    assert.ok(checkRequestProof(next.json.cloudevent, next.json.proof, C.alg, parseCertificate(C.cert).spki));
    assert.ok(!checkRequestProof({ ...next.json.cloudevent, gusudigest: '0'.repeat(64) }, next.json.proof, C.alg, parseCertificate(C.cert).spki));
    assert.equal((await call(B, 'DELETE', `${room}/pull/v1/health.newbirth/${pub.json.id}`)).status, 204);
    assert.equal((await call(B, 'DELETE', `${room}/pull/v1/health.newbirth/${pub.json.id}`)).status, 404);
    assert.equal((await call(B, 'DELETE', `${room}/api/v1/subs/health.newbirth`)).status, 204);
    assert.equal((await call(B, 'GET', `${room}/api/v1/subs/health.newbirth`)).status, 404);
  });
});

describe('store-and-forward ingest from a peer node', () => {
  it('re-verifies every member signature, stores the good messages and names each refused one', async () => {
    const ca = caContextFor(tp.platform.ctx);
    const nodeCert = await issueCertificate(tp.platform.ctx.db, ca, { kind: 'system', id: 'test' }, { alg: 'ecdsa-p256-sha256', subject: { kind: 'node', nodeId: 'node-320505' } });
    await tp.platform.ctx.db.query('update exchange.node set cert_pem = $2 where id = $1', ['node-320505', nodeCert.certificate]);
    const good1 = signEvent(person(A, { idNumber: '320502199001011234', name: '转发一' }, { key: 'fwd' }), A.key, A.alg);
    const tampered = { ...signEvent(person(A, { idNumber: '320502199001011234', name: '转发二' }, { key: 'fwd' }), A.key, A.alg), data: { idNumber: '320502199001011234', name: '篡改' } };
    const good2 = signEvent(person(A, { idNumber: '320502199001011234', name: '转发三' }, { key: 'fwd' }), A.key, A.alg);
    const forwarded = (e: object) => ({ source: (e as { source: string }).source, id: (e as { id: string }).id, member: A.id, resource: 'population.person', key: 'fwd', digest: '', event: JSON.stringify(e), proof: null, origin: 'node-320505' });
    const body = JSON.stringify({ from: 'node-320505', certs: { [A.id]: A.cert }, messages: [good1, tampered, good2].map(forwarded) });
    const path = '/api/v1/exchange/federation/messages';
    const send = (b: string, who = 'node-320505', key = nodeCert.privateKey!) =>
      fetch(`${tp.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest({ node: who }, { privateKey: key, alg: 'ecdsa-p256-sha256' }, { method: 'POST', path, body: b }) }, body: b });
    const res = await send(body);
    assert.equal(res.status, 200, await res.clone().text());
    const out = await res.json();
    assert.equal(out.accepted, 2);
    assert.deepEqual(out.refused.map((r: { index: number; reason: string }) => [r.index, r.reason]), [[1, 'digest-mismatch']]);
    const { rows } = await tp.platform.ctx.db.query<{ id: string; via: string; origin: string }>('select id, via, origin from exchange.message where id = any($1) order by seq', [[good1.id, tampered.id, good2.id]]);
    assert.deepEqual(rows, [{ id: good1.id, via: 'node-320505', origin: 'node-320505' }, { id: good2.id, via: 'node-320505', origin: 'node-320505' }]);
    // again: duplicates, nothing new
    assert.equal((await (await send(body)).json()).duplicates, 2);
    // a node that is not enrolled, and a member as if it were a node
    assert.equal((await send(body, 'node-320506')).status, 401);
    const asMemberReq = await call(A, 'POST', path, JSON.parse(body));
    assert.equal(asMemberReq.status, 404);
    assert.equal(asMemberReq.json.reason, 'unknown-node');
  });
});

describe('operations API', () => {
  it('lists dead letters, replays them for delivery, and shows lag, stats and refusals to operators only', async () => {
    const dead = await (await fetch(`${tp.url}/api/v1/exchange/dead-letters?limit=10`, { headers: AS_OPERATOR })).json();
    assert.ok(dead.total >= 1, JSON.stringify(dead));
    const d = dead.items.find((x: { type: string | null }) => x.type === 'cn.gov.suzhou.population.person.updated');
    assert.ok(d, JSON.stringify(dead.items[0]));
    assert.equal((await fetch(`${tp.url}/api/v1/exchange/dead-letters`)).status, 401);
    assert.equal((await fetch(`${tp.url}/api/v1/exchange/dead-letters?subscription=not-a-uuid`, { headers: AS_OPERATOR })).status, 400);
    const replay = await fetch(`${tp.url}/api/v1/exchange/dead-letters/replay`, { method: 'POST', headers: { 'content-type': 'application/json', ...AS_OPERATOR }, body: JSON.stringify({ subscription: d.subscription, seqs: [d.seq] }) });
    assert.equal(replay.status, 200);
    assert.deepEqual(await replay.json(), { replayed: 1 });
    const { rows } = await tp.platform.ctx.db.query<{ status: string; attempts: number }>('select status, attempts from exchange.delivery where subscription = $1 and seq = $2', [d.subscription, d.seq]);
    assert.deepEqual(rows[0], { status: 'ready', attempts: 0 });
    const audit = await tp.platform.ctx.db.query(`select 1 from audit.entry where action = 'exchange.dead-letter.replay'`);
    assert.equal(audit.rows.length, 1);
    const lag = await (await fetch(`${tp.url}/api/v1/exchange/lag`, { headers: AS_OPERATOR })).json();
    assert.ok(lag.items.some((x: { ready: number }) => x.ready >= 1));
    const stats = await (await fetch(`${tp.url}/api/v1/exchange/stats`, { headers: AS_OPERATOR })).json();
    assert.ok(stats.counts.members >= 4);
    const refusals = await (await fetch(`${tp.url}/api/v1/exchange/refusals?reason=replay`, { headers: AS_OPERATOR })).json();
    assert.ok(refusals.items.length >= 1 && refusals.items.every((r: { reason: string }) => r.reason === 'replay'));
  });
});
