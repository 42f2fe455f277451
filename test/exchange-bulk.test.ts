// Bulk batches (docs/exchange.md, "Bulk batches"): a 20,000-line NDJSON file and a CSV with quoted
// fields sent through the SDK in small parts, interrupted and resumed; the job verifies the signed
// size, SHA-256 and Merkle root, rejects schema-invalid records by line and publishes the rest with a
// proof per record; every refusal of the upload protocol; hostile files; the job resuming after
// its last committed block; federation accepting the proof; the CLI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { caContextFor, issueCertificate, parseCertificate } from '../src/base/identity/ca/index.ts';
import type { Alg } from '../src/base/identity/crypto/index.ts';
import { createExchangeClient, digestOf, merkleRoot, merkleTree, signRequest, verifyInclusion, type ExchangeClient } from '../src/base/exchange/index.ts';
import {
  BULK_TYPE,
  BlockedTree,
  BulkFormatError,
  RecordFramer,
  UpperTree,
  VerifiedBulkHeaders,
  signBulkHeader,
  verifyBulkRecord,
  type BulkFormat,
  type BulkHeader,
  type FramedRecord,
} from '../src/base/exchange/bulk-format.ts';
import { BULK_LIMITS, runBulk, sweepBulk } from '../src/base/exchange/bulk.ts';
import { exchangeOf } from '../src/base/exchange/index.ts';
import { ingestFederated } from '../src/base/exchange/federation.ts';
import { spawn } from 'node:child_process';

const OPERATOR: Actor = { kind: 'staff', accountId: '00000000-0000-4000-8000-0000000000ee', name: '交换运维', department: 'SZ-DSJ', post: '工程师', roles: [{ role: 'exchange-operator', scope: null }] };
const AS_OPERATOR = { 'x-test-actor': 'operator' };
const PART = 64 * 1024;

interface Member {
  id: string;
  key: string;
  alg: Alg;
  cert: string;
  spki: Buffer;
}

let tp: TestPlatform;
let A: Member; // provider of population.person (P-256)
let B: Member; // subscriber
let C: Member; // provider of registry.enterprise (SM2)

async function issue(code: string, subsystem: string, alg: Alg): Promise<Member> {
  const ca = caContextFor(tp.platform.ctx);
  const c = await issueCertificate(tp.platform.ctx.db, ca, { kind: 'system', id: 'test' }, { alg, subject: { kind: 'system', systemId: subsystem, department: code, name: `${code} ${subsystem}` } });
  const res = await fetch(`${tp.url}/api/v1/exchange/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AS_OPERATOR },
    body: JSON.stringify({ memberClass: 'GOV', memberCode: code, subsystem, name: `${code} ${subsystem}`, certificate: c.certificate }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return { id: `SZ/GOV/${code}/${subsystem}`, key: c.privateKey!, alg, cert: c.certificate, spki: parseCertificate(c.certificate).spki };
}

async function defineResource(id: string, provider: Member, schema: object, keyField?: string): Promise<void> {
  const res = await fetch(`${tp.url}/api/v1/exchange/resources/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...AS_OPERATOR },
    body: JSON.stringify({ name: `测试资源 ${id}`, provider: provider.id, schema, share: 'open', ...(keyField ? { keyField } : {}) }),
  });
  assert.equal(res.status, 200, await res.clone().text());
}

async function call(m: Member, method: string, p: string, body?: unknown): Promise<{ status: number; json: any; headers: Headers }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = signRequest({ member: m.id }, { privateKey: m.key, alg: m.alg }, { method, path: p, body: text });
  if (text !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${tp.url}${p}`, { method, headers, body: text });
  const raw = await res.text();
  return { status: res.status, json: raw ? JSON.parse(raw) : null, headers: res.headers };
}

/** a raw part: signed with UNSIGNED-PAYLOAD unless signedBody */
async function patch(m: Member, id: string, offset: number | string, data: Uint8Array, o: { signedBody?: boolean; unsigned?: boolean; contentType?: string } = {}) {
  const p = `/api/v1/exchange/bulk/${id}`;
  const headers: Record<string, string> = {
    'content-type': o.contentType ?? 'application/offset+octet-stream',
    'upload-offset': String(offset),
    ...(o.unsigned ? { 'x-road-client': m.id } : signRequest({ member: m.id }, { privateKey: m.key, alg: m.alg }, { method: 'PATCH', path: p, body: data, unsignedPayload: !o.signedBody })),
    ...(o.signedBody || o.unsigned ? {} : { 'x-gusu-payload': 'UNSIGNED-PAYLOAD' }),
  };
  const res = await fetch(`${tp.url}${p}`, { method: 'PATCH', headers, body: new Uint8Array(data) });
  const raw = await res.text();
  return { status: res.status, json: raw ? JSON.parse(raw) : null, offset: res.headers.get('upload-offset') };
}

function client(m: Member): ExchangeClient {
  return createExchangeClient({ baseUrl: tp.url, member: m.id, privateKey: m.key });
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** the header a member would sign for these bytes (records and root computed, unless overridden) */
function headerFor(m: Member, id: string, resource: string, format: BulkFormat, bytes: Buffer, over: Partial<BulkHeader> = {}, maxRecord = 64 * 1024): BulkHeader {
  const tree = new BlockedTree();
  let csvHeader: string | undefined;
  try {
    const framer = new RecordFramer(format, maxRecord);
    const recs: FramedRecord[] = [];
    framer.push(bytes, recs);
    framer.end(recs);
    for (const [i, r] of recs.entries()) {
      if (format === 'csv' && i === 0) csvHeader = r.bytes.toString('utf8');
      else tree.add(r.bytes);
    }
  } catch {
    // a hostile file: the member signs what it likes
    csvHeader = bytes.toString('utf8').split('\n')[0];
  }
  const body = {
    type: BULK_TYPE,
    id,
    member: m.id,
    resource,
    format,
    eventType: resource,
    size: bytes.length,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    records: tree.count,
    root: tree.root().toString('hex'),
    ...(format === 'csv' ? { csvHeader } : {}),
    alg: m.alg,
    ...over,
  } as Omit<BulkHeader, 'sig'>;
  return signBulkHeader(body, m.key, m.alg);
}

/** opens, uploads in one part and completes by hand */
async function rawUpload(m: Member, resource: string, format: BulkFormat, bytes: Buffer, over: Partial<BulkHeader> = {}): Promise<string> {
  const opened = await call(m, 'POST', '/api/v1/exchange/bulk', { resource, format });
  assert.equal(opened.status, 201, JSON.stringify(opened.json));
  const id = opened.json.id as string;
  const put = await patch(m, id, 0, bytes);
  assert.equal(put.status, 204, JSON.stringify(put.json));
  const fields = { ...(opened.json.keyField ? { keyField: opened.json.keyField } : {}), ...(opened.json.idField ? { idField: opened.json.idField } : {}) };
  const done = await call(m, 'POST', `/api/v1/exchange/bulk/${id}/complete`, headerFor(m, id, resource, format, bytes, { ...fields, ...over }));
  assert.equal(done.status, 202, JSON.stringify(done.json));
  return id;
}

async function status(m: Member, id: string) {
  const r = await call(m, 'GET', `/api/v1/exchange/bulk/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
}

async function pullAll(m: Member, sub: string): Promise<{ seq: number; event: any; proof: any }[]> {
  const out: { seq: number; event: any; proof: any }[] = [];
  for (;;) {
    const r = await call(m, 'GET', `/api/v1/exchange/subscriptions/${sub}/events?max=1000`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    if (!r.json.events.length) return out;
    out.push(...r.json.events);
    const a = await call(m, 'POST', `/api/v1/exchange/subscriptions/${sub}/ack`, { seqs: r.json.events.map((e: { seq: number }) => e.seq) });
    assert.equal(a.status, 200, JSON.stringify(a.json));
  }
}

const drain = () => tp.platform.worker.drain();

const PERSON_SCHEMA = {
  type: 'object',
  required: ['idNumber', 'name', 'n'],
  properties: { idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' }, name: { type: 'string', maxLength: 50 }, n: { type: 'integer' } },
  additionalProperties: false,
};
const ENTERPRISE_SCHEMA = {
  type: 'object',
  required: ['uscc', 'name'],
  properties: { uscc: { type: 'string', pattern: '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$' }, name: { type: 'string', maxLength: 100 }, address: { type: 'string' }, note: { type: 'string' } },
  additionalProperties: false,
};

before(async () => {
  tp = await startTestPlatform({ GUSU_DEMO: 'false', GUSU_JOB_CONCURRENCY: '0', GUSU_EXCHANGE_MAX_EVENT_KB: '64' }, [], {
    resolveActor: async (req) => (req.headers['x-test-actor'] === 'operator' ? OPERATOR : ANONYMOUS),
  });
  A = await issue('SZ-GA', 'hukou', 'ecdsa-p256-sha256');
  B = await issue('SZ-MZ', 'marriage', 'ecdsa-p256-sha256');
  C = await issue('SZ-SCJG', 'registry', 'sm2-sm3');
  await defineResource('population.person', A, PERSON_SCHEMA, 'idNumber');
  await defineResource('registry.enterprise', C, ENTERPRISE_SCHEMA);
});
after(async () => tp?.stop());

describe('the Merkle tree in blocks and the framing', () => {
  it('gives the RFC 6962 root and paths of the whole tree, for every size and block', () => {
    for (const block of [1, 2, 4, 8]) {
      for (let n = 0; n <= 70; n++) {
        const leaves = Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));
        const t = new BlockedTree(block);
        for (const l of leaves) t.add(l);
        const whole = merkleTree(leaves);
        assert.equal(t.root().toString('hex'), merkleRoot(leaves).toString('hex'), `block ${block}, n ${n}`);
        const upper = new UpperTree(t.blockRoots);
        for (let i = 0; i < n; i++) {
          const b = Math.floor(i / block);
          const inBlock = merkleTree(leaves.slice(b * block, (b + 1) * block)).proofs[i - b * block]!;
          const p = [...inBlock, ...upper.path(b)];
          assert.deepEqual(p.map((x) => x.toString('hex')), whole.proofs[i]!.map((x) => x.toString('hex')), `block ${block}, n ${n}, leaf ${i}`);
          assert.ok(verifyInclusion(leaves[i]!, i, n, p, whole.root));
        }
      }
    }
  });

  it('frames CSV records with quoted commas, quotes and line breaks the same however the bytes arrive', () => {
    const csv = Buffer.from('a,b\r\n1,"x, ""y""\r\nz"\r\n\r\n2,plain\n"3",\n4,"end"', 'utf8');
    const whole: FramedRecord[] = [];
    const f = new RecordFramer('csv', 1000);
    f.push(csv, whole);
    f.end(whole);
    assert.deepEqual(whole.map((r) => [r.line, r.bytes.toString()]), [[1, 'a,b'], [2, '1,"x, ""y""\r\nz"'], [5, '2,plain'], [6, '"3",'], [7, '4,"end"']]);
    const bytewise: FramedRecord[] = [];
    const g = new RecordFramer('csv', 1000);
    for (const byte of csv) g.push(Buffer.from([byte]), bytewise);
    g.end(bytewise);
    assert.deepEqual(bytewise.map((r) => [r.line, r.bytes.toString(), r.end, r.nextLine]), whole.map((r) => [r.line, r.bytes.toString(), r.end, r.nextLine]));
    assert.throws(() => {
      const h = new RecordFramer('csv', 1000);
      h.push(Buffer.from('a,b\n1,"open\n2,3\n'), []);
      h.end([]);
    }, (err: BulkFormatError) => err instanceof BulkFormatError && err.line === 2 && /unterminated quote/.test(err.message));
    assert.throws(() => new RecordFramer('ndjson', 10).push(Buffer.from('{"a":1}\n{"much":"too long"}\n'), []), /line 2: a record of more than 10 bytes/);
  });
});

describe('a 6,000-line NDJSON file (six blocks of records) through the SDK, interrupted and resumed', () => {
  const N = 6_000;
  const lines: string[] = [];
  const expectedRejected: number[] = [];
  let bytes: Buffer;
  let id: string;
  let sub: string;
  let pulled: { seq: number; event: any; proof: any }[] = [];

  before(() => {
    for (let i = 1; i <= N; i++) {
      if (i === 101) lines.push(''); // a blank line is no record
      const bad = i % 2000 === 0;
      const line = i === 777 ? '{"idNumber": "320502199000000777X", "name": broken' : JSON.stringify({ idNumber: bad ? `bad-${i}` : `3205021990${String(i % 500).padStart(7, '0')}X`, name: `测试 ${i}`, n: i });
      lines.push(line);
      if (bad || i === 777) expectedRejected.push(lines.length);
    }
    bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
  });

  it('uploads half, stops, resumes from the node’s offset, and the job publishes every valid record', async () => {
    const s = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'population.person', delivery: 'pull' });
    assert.equal(s.status, 201, JSON.stringify(s.json));
    sub = s.json.id;
    const ex = client(A);
    const stop = new AbortController();
    let seen: string | undefined;
    const started = Date.now();
    await assert.rejects(
      ex.sendBatch('population.person', chunked(bytes, 10_000), {
        partBytes: PART,
        signal: stop.signal,
        onProgress: (p) => {
          seen = p.id;
          if (p.offset >= bytes.length / 2) stop.abort(new Error('interrupted by the test'));
        },
      }),
      (err: Error & { bulkId?: string }) => /interrupted by the test/.test(err.message) && err.bulkId === seen,
    );
    id = seen!;
    const half = await status(A, id);
    assert.equal(half.status, 'open');
    assert.equal(half.keyField, 'idNumber', 'the resource’s key field by default');
    assert.ok(half.offset >= bytes.length / 2 && half.offset < bytes.length && half.offset % PART === 0, `stopped at ${half.offset}`);
    const head = await fetch(`${tp.url}/api/v1/exchange/bulk/${id}`, { method: 'HEAD', headers: signRequest({ member: A.id }, { privateKey: A.key, alg: A.alg }, { method: 'HEAD', path: `/api/v1/exchange/bulk/${id}` }) });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), String(half.offset));

    const r = await ex.sendBatch('population.person', chunked(bytes, 10_000), { partBytes: PART, resumeId: id });
    const uploadMs = Date.now() - started;
    assert.equal(r.resumedFrom, half.offset);
    assert.equal(r.parts, Math.ceil((bytes.length - half.offset) / PART), 'only what the node lacked was sent');
    assert.equal(r.header.records, N);
    assert.equal(r.header.size, bytes.length);
    assert.equal(r.status.status, 'verifying');

    const t0 = Date.now();
    await drain();
    const jobMs = Date.now() - t0;
    const done = await status(A, id);
    assert.equal(done.status, 'done', JSON.stringify(done.error));
    assert.equal(done.published, N - expectedRejected.length);
    assert.equal(done.rejected, expectedRejected.length);
    assert.deepEqual(done.rejections.map((x: { line: number }) => x.line), expectedRejected);
    assert.match(done.rejections.find((x: { line: number }) => x.line === 778).reason, /^not JSON/);
    assert.match(done.rejections[1].reason, /^schema: \/data\/idNumber must match pattern/);
    const { rows } = await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.bulk_part where bulk = $1', [id]);
    assert.equal(rows[0]!.n, 0, 'the parts are removed once published');
    console.log(`# NDJSON ${N} records, ${bytes.length} bytes: upload ${uploadMs} ms in ${PART / 1024} KiB parts; verify + publish ${jobMs} ms = ${Math.round(N / (jobMs / 1000))} records/s`);
  });

  it('a subscriber pulls every valid record, in order per key, each with a proof that verifies on its own', async () => {
    pulled = await pullAll(B, sub);
    assert.equal(pulled.length, N - expectedRejected.length);
    const lastByKey = new Map<string, number>();
    for (const { event } of pulled) {
      assert.equal(event.source, `urn:gusu:bulk:${id}`);
      const prev = lastByKey.get(event.gusukey) ?? 0;
      assert.ok(event.data.n > prev, `key ${event.gusukey}: ${event.data.n} after ${prev}`);
      lastByKey.set(event.gusukey, event.data.n);
    }
    assert.equal(new Set(pulled.map((x) => x.event.id)).size, pulled.length);
    const verified = new VerifiedBulkHeaders();
    const t0 = Date.now();
    for (const { event, proof } of pulled) assert.deepEqual(verifyBulkRecord(event, proof, A.spki, { verified }), { ok: true });
    const ms = Date.now() - t0;
    assert.equal(verified.checks, 1, 'one signature check for the whole batch');
    console.log(`# verified ${pulled.length} record proofs in ${ms} ms`);
    // the id of a record without idField is the batch id and its record number
    const first = pulled[0]!;
    assert.equal(first.event.id, `${id}:${first.proof.index + 1}`);
    assert.deepEqual(first.event.data, JSON.parse(first.proof.line));
  });

  it('a tampered record, line, index, path or header fails the proof', () => {
    const { event, proof } = pulled[1234]!;
    const bad = (e: unknown, p: unknown) => verifyBulkRecord(e, p, A.spki, { verified: new VerifiedBulkHeaders() });
    assert.equal(bad({ ...event, data: { ...event.data, name: '篡改' } }, proof).ok, false);
    // data and its digest changed together: the record no longer rebuilds this event
    const data = { ...event.data, name: '篡改' };
    assert.deepEqual(bad({ ...event, data, gusudigest: digestOf(data) }, proof), { ok: false, reason: 'bad-signature', detail: 'the signature does not verify under the sender key' });
    const line = JSON.stringify({ ...JSON.parse(proof.line), name: '篡改' });
    assert.equal(bad({ ...event, data: JSON.parse(line), gusudigest: digestOf(JSON.parse(line)) }, { ...proof, line }).ok, false, 'a changed line is not in the tree');
    assert.equal(bad(event, { ...proof, index: proof.index + 1 }).ok, false);
    assert.equal(bad(event, { ...proof, path: [...proof.path.slice(1), proof.path[0]] }).ok, false);
    assert.equal(bad(event, { ...proof, bulk: { ...proof.bulk, records: proof.bulk.records + 1 } }).ok, false);
    assert.equal(bad(event, proof).ok, true);
    assert.equal(verifyBulkRecord(event, proof, B.spki).ok, false, 'another member’s key');
  });

  it('federation accepts a forwarded bulk record by its proof and refuses a tampered one', async () => {
    const rt = exchangeOf(tp.platform.ctx);
    const { event, proof } = pulled[42]!;
    const msg = (e: unknown, p: unknown) => ({ source: event.source, id: event.id, member: A.id, resource: 'population.person', key: event.gusukey, digest: event.gusudigest, event: JSON.stringify(e), proof: p, origin: 'hub' });
    const ok = await ingestFederated(rt, 'node-x', { from: 'node-x', certs: { [A.id]: A.cert }, messages: [msg(event, proof)] }, null);
    assert.equal(ok.accepted, 0);
    assert.equal(ok.duplicates, 1);
    const line = JSON.stringify({ ...JSON.parse(proof.line), name: '篡改' });
    // refused alone (or, by an older ingestFederated, the whole batch)
    const r = await ingestFederated(rt, 'node-x', { from: 'node-x', certs: { [A.id]: A.cert }, messages: [msg(event, { ...proof, line })] }, null).catch((err: { reason?: string }) => ({ thrown: err }));
    const reason = 'thrown' in r ? r.thrown.reason : (r as { refused?: { reason: string }[] }).refused?.[0]?.reason;
    assert.equal(reason, 'bad-signature');
    if (!('thrown' in r)) assert.equal(r.accepted + r.duplicates, 0);
  });
});

describe('a CSV file with quoted fields (SM2 member), sent from a file in tiny parts', () => {
  it('publishes each record as { column: text }, rejects the bad ones by line, and the proofs verify', async () => {
    const csv =
      'uscc,name,address,note\r\n' +
      '91320500MA1W000001,苏州甲科技有限公司,"姑苏区, 人民路 1 号","他说 ""你好"""\r\n' +
      '91320500MA1W000002,"乙 ""商贸"" 公司","工业园区\n星湖街 328 号",\r\n' +
      '91320500MA1W000003,丙公司,"",""\r\n' +
      'BAD-USCC,丁公司,吴中区,\r\n' +
      '91320500MA1W000005,戊公司,相城区\r\n' +
      '91320500MA1W000006,己公司,"昆山市 ""花桥""",备注\n' +
      '91320500MA1W000007,"庚, 公司",太仓市,last';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bulk-'));
    const file = path.join(dir, 'enterprises.csv');
    fs.writeFileSync(file, csv);
    const s = await call(B, 'POST', '/api/v1/exchange/subscriptions', { resource: 'registry.enterprise' });
    assert.equal(s.status, 201);
    const r = await client(C).sendBatch('registry.enterprise', file, { keyField: 'uscc', idField: 'uscc', partBytes: 16 });
    assert.equal(r.header.format, 'csv', 'from the file name');
    assert.equal(r.header.csvHeader, 'uscc,name,address,note');
    assert.equal(r.header.records, 7);
    assert.equal(r.parts, Math.ceil(Buffer.byteLength(csv) / 16));
    await drain();
    const st = await status(C, r.id);
    assert.equal(st.status, 'done', st.error);
    assert.equal(st.published, 5);
    assert.deepEqual(st.rejections.map((x: { line: number }) => x.line), [6, 7]);
    assert.match(st.rejections[1].reason, /3 fields, the header has 4/);
    const got = await pullAll(B, s.json.id);
    assert.deepEqual(
      got.map((x) => x.event.data),
      [
        { uscc: '91320500MA1W000001', name: '苏州甲科技有限公司', address: '姑苏区, 人民路 1 号', note: '他说 "你好"' },
        { uscc: '91320500MA1W000002', name: '乙 "商贸" 公司', address: '工业园区\n星湖街 328 号' },
        { uscc: '91320500MA1W000003', name: '丙公司', address: '', note: '' },
        { uscc: '91320500MA1W000006', name: '己公司', address: '昆山市 "花桥"', note: '备注' },
        { uscc: '91320500MA1W000007', name: '庚, 公司', address: '太仓市', note: 'last' },
      ],
    );
    assert.deepEqual(got.map((x) => x.event.id), got.map((x) => x.event.data.uscc));
    assert.deepEqual(got.map((x) => x.event.gusukey), got.map((x) => x.event.data.uscc));
    for (const { event, proof } of got) assert.deepEqual(verifyBulkRecord(event, proof, C.spki), { ok: true });
    assert.equal(got[1]!.proof.line, '91320500MA1W000002,"乙 ""商贸"" 公司","工业园区\n星湖街 328 号",', 'the record as it stands, line break and all');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('the job resumes after its last committed block', () => {
  it('stopped after one block, run again: every record once, none twice', async () => {
    const n = 3000;
    const bytes = Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify({ idNumber: `320502199100${String(i % 7).padStart(5, '0')}X`, name: `续传 ${i}`, n: i + 1 })).join('\n'), 'utf8');
    const r = await client(A).sendBatch('population.person', chunked(bytes, 4096), { partBytes: PART, idField: 'n' });
    const rt = exchangeOf(tp.platform.ctx);
    let reads = 0;
    const parts = Math.ceil(bytes.length / PART);
    // pass 1 reads it once per part, pass 2 once per published block: stop after the first block
    const stopAfterOneBlock = { get aborted() { return ++reads > parts; } } as AbortSignal;
    await assert.rejects(runBulk(rt, r.id, stopAfterOneBlock), /stopping/);
    const mid = await status(A, r.id);
    assert.equal(mid.status, 'publishing');
    assert.equal(mid.published, 1024);
    await runBulk(rt, r.id);
    const end = await status(A, r.id);
    assert.equal(end.status, 'done');
    assert.equal(end.published, n);
    assert.equal(end.duplicates, 0);
    const { rows } = await tp.platform.ctx.db.query<{ n: number; ids: number }>('select count(*)::int as n, count(distinct id)::int as ids from exchange.message where source = $1', [`urn:gusu:bulk:${r.id}`]);
    assert.deepEqual(rows[0], { n, ids: n });
    await drain(); // its queued job finds it done
  });
});

describe('refusals and failures', () => {
  it('a part changed after signing fails the SHA-256 check; a wrong root fails the Merkle check', async () => {
    const bytes = Buffer.from(Array.from({ length: 50 }, (_, i) => JSON.stringify({ idNumber: '320502199001011234', name: `x${i}`, n: i })).join('\n'));
    const r = await client(A).sendBatch('population.person', chunked(bytes, 100), { partBytes: 256 });
    await tp.platform.ctx.db.query(`update exchange.bulk_part set data = overlay(data placing '9'::bytea from 20 for 1) where bulk = $1 and byte_offset = 256`, [r.id]);
    await drain();
    const st = await status(A, r.id);
    assert.equal(st.status, 'failed');
    assert.match(st.error, /not to the signed sha256/);
    assert.equal(st.published, 0);
    const { rows } = await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.bulk_part where bulk = $1', [r.id]);
    assert.equal(rows[0]!.n, 0);

    const wrongRoot = await rawUpload(A, 'population.person', 'ndjson', bytes, { root: 'ab'.repeat(32) });
    await drain();
    assert.match((await status(A, wrongRoot)).error, /Merkle root of the records is [0-9a-f]{64}, not the signed root/);
    const wrongCount = await rawUpload(A, 'population.person', 'ndjson', bytes, { records: 49 });
    await drain();
    assert.match((await status(A, wrongCount)).error, /holds 50 records; the header signed 49/);
  });

  it('a wrong offset is 409 with the current offset; the same part again is accepted, other bytes are not', async () => {
    const opened = await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person', format: 'ndjson' });
    assert.equal(opened.status, 201);
    assert.equal(opened.json.offset, 0);
    const id = opened.json.id;
    const part = Buffer.from('{"idNumber":"320502199001011234","name":"a","n":1}\n');
    assert.equal((await patch(A, id, 0, part)).status, 204);
    const wrong = await patch(A, id, 10, part);
    assert.equal(wrong.status, 409);
    assert.equal(wrong.json.reason, 'offset-mismatch');
    assert.equal(wrong.json.offset, part.length);
    assert.equal(wrong.offset, String(part.length));
    const again = await patch(A, id, 0, part);
    assert.equal(again.status, 204, 'a retry of the same part');
    assert.equal(again.offset, String(part.length));
    const other = await patch(A, id, 0, Buffer.from(part.toString().replace('"a"', '"b"')));
    assert.equal(other.status, 409);
    assert.equal((await patch(A, id, 'x', part)).status, 400);
    assert.equal((await patch(A, id, part.length, part, { contentType: 'application/octet-stream' })).status, 415);
    // completing before every byte is there: 409 with the offset
    const early = await call(A, 'POST', `/api/v1/exchange/bulk/${id}/complete`, headerFor(A, id, 'population.person', 'ndjson', Buffer.concat([part, part]), { keyField: 'idNumber' }));
    assert.equal(early.status, 409);
    assert.equal(early.json.reason, 'incomplete');
    // cancel: parts gone, no more parts
    assert.equal((await call(A, 'DELETE', `/api/v1/exchange/bulk/${id}`)).status, 204);
    assert.equal((await call(A, 'DELETE', `/api/v1/exchange/bulk/${id}`)).status, 204);
    assert.equal((await status(A, id)).status, 'cancelled');
    const late = await patch(A, id, part.length, part);
    assert.equal(late.status, 409);
    assert.equal(late.json.reason, 'not-open');
    const { rows } = await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.bulk_part where bulk = $1', [id]);
    assert.equal(rows[0]!.n, 0);
  });

  it('refuses unsigned parts, other members, non-providers and a header not signed by the member', async () => {
    const opened = await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person' });
    const id = opened.json.id;
    const part = Buffer.from('{"idNumber":"320502199001011234","name":"a","n":1}\n');
    const anon = await fetch(`${tp.url}/api/v1/exchange/bulk/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: part });
    assert.equal(anon.status, 401);
    const named = await patch(A, id, 0, part, { unsigned: true });
    assert.equal(named.status, 401);
    assert.equal(named.json.reason, 'unsigned');
    // signed over the body digest but sent as if unsigned: the signature does not hold
    const mixed = await fetch(`${tp.url}/api/v1/exchange/bulk/${id}`, {
      method: 'PATCH',
      headers: { ...signRequest({ member: A.id }, { privateKey: A.key, alg: A.alg }, { method: 'PATCH', path: `/api/v1/exchange/bulk/${id}`, body: part }), 'content-type': 'application/offset+octet-stream', 'upload-offset': '0', 'x-gusu-payload': 'UNSIGNED-PAYLOAD' },
      body: part,
    });
    assert.equal(mixed.status, 401);
    assert.equal((await patch(B, id, 0, part)).status, 404, 'another member’s upload does not exist for B');
    assert.equal((await call(B, 'GET', `/api/v1/exchange/bulk/${id}`)).status, 404);
    const notProvider = await call(B, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person' });
    assert.equal(notProvider.status, 403);
    assert.equal(notProvider.json.reason, 'not-provider');
    assert.equal((await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'no.such' })).status, 404);
    assert.equal((await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person', format: 'xml' })).status, 400);
    assert.equal((await patch(A, id, 0, part)).status, 204);
    const forged = signBulkHeader({ ...headerFor(A, id, 'population.person', 'ndjson', part, { keyField: 'idNumber' }), sig: undefined } as never, B.key, B.alg);
    const refused = await call(A, 'POST', `/api/v1/exchange/bulk/${id}/complete`, forged);
    assert.equal(refused.status, 403);
    assert.equal(refused.json.reason, 'bad-signature');
    const otherId = await call(A, 'POST', `/api/v1/exchange/bulk/${id}/complete`, headerFor(A, crypto.randomUUID(), 'population.person', 'ndjson', part, { keyField: 'idNumber' }));
    assert.equal(otherId.status, 400);
    const good = headerFor(A, id, 'population.person', 'ndjson', part, { keyField: 'idNumber' });
    assert.equal((await call(A, 'POST', `/api/v1/exchange/bulk/${id}/complete`, good)).status, 202);
    assert.equal((await call(A, 'POST', `/api/v1/exchange/bulk/${id}/complete`, good)).status, 202, 'completing again is harmless');
    assert.equal((await patch(A, id, part.length, part)).json.reason, 'not-open');
    await drain();
    assert.equal((await status(A, id)).status, 'done');
  });

  it('a part above 8 MiB is 413, and so is a batch above the total limit', async () => {
    const opened = await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person' });
    const id = opened.json.id;
    const big = await patch(A, id, 0, Buffer.alloc(8 * 1024 * 1024 + 1, 0x20));
    assert.equal(big.status, 413);
    assert.equal(big.json.reason, 'oversized');
    const saved = BULK_LIMITS.maxBytes;
    BULK_LIMITS.maxBytes = 1000;
    try {
      assert.equal((await patch(A, id, 0, Buffer.alloc(600, 0x20))).status, 204);
      const over = await patch(A, id, 600, Buffer.alloc(600, 0x20));
      assert.equal(over.status, 413);
      assert.equal(over.offset, '600');
    } finally {
      BULK_LIMITS.maxBytes = saved;
    }
    assert.equal((await call(A, 'DELETE', `/api/v1/exchange/bulk/${id}`)).status, 204);
  });

  it('a hostile CSV (an unterminated quote, a huge line) fails with the line named; the SDK refuses it before completing', async () => {
    const unterminated = Buffer.from('uscc,name\n91320500MA1W000001,ok\n91320500MA1W000002,"never closed\n91320500MA1W000003,x\n');
    const id1 = await rawUpload(C, 'registry.enterprise', 'csv', unterminated);
    const huge = Buffer.from(`uscc,name\n91320500MA1W000001,ok\n91320500MA1W000002,${'长'.repeat(30_000)}\n`);
    const id2 = await rawUpload(C, 'registry.enterprise', 'csv', huge);
    await drain();
    const s1 = await status(C, id1);
    assert.equal(s1.status, 'failed');
    assert.match(s1.error, /cannot be read as CSV: line 3: a quoted field opened in this record is not closed by the end of the file/);
    const s2 = await status(C, id2);
    assert.equal(s2.status, 'failed');
    assert.match(s2.error, /line 3: a record of more than 65536 bytes/);
    assert.equal(s1.published + s2.published, 0);

    for (const [bytes, line] of [[unterminated, 3], [huge, 3]] as const) {
      let bulkId: string | undefined;
      await assert.rejects(client(C).sendBatch('registry.enterprise', chunked(bytes, 1000), { format: 'csv', partBytes: 1024 }), (err: BulkFormatError) => {
        bulkId = err.bulkId;
        return err instanceof BulkFormatError && err.line === line;
      });
      assert.equal((await status(C, bulkId!)).status, 'cancelled', 'the upload is cancelled');
    }
  });

  it('housekeeping cancels uploads idle for 7 days and removes their parts', async () => {
    const opened = await call(A, 'POST', '/api/v1/exchange/bulk', { resource: 'population.person' });
    const id = opened.json.id;
    assert.equal((await patch(A, id, 0, Buffer.from('{"a":1}\n'))).status, 204);
    await tp.platform.ctx.db.query(`update exchange.bulk set updated_at = now() - interval '8 days' where id = $1`, [id]);
    const r = await sweepBulk(exchangeOf(tp.platform.ctx));
    assert.ok(r.expired >= 1);
    const st = await status(A, id);
    assert.equal(st.status, 'cancelled');
    assert.match(st.error, /expired/);
    const { rows } = await tp.platform.ctx.db.query<{ n: number }>('select count(*)::int as n from exchange.bulk_part where bulk = $1', [id]);
    assert.equal(rows[0]!.n, 0);
  });
});

describe('gusu exchange send-batch', () => {
  it('sends a file as a member and prints the outcome', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bulk-cli-'));
    const keyFile = path.join(dir, 'key.pem');
    fs.writeFileSync(keyFile, A.key);
    const file = path.join(dir, 'people.ndjson');
    fs.writeFileSync(file, Array.from({ length: 30 }, (_, i) => JSON.stringify({ idNumber: '320502199001019999', name: `命令行 ${i}`, n: i })).join('\n') + '\n');
    // a child process: the test runner owns this process's stdout
    const child = spawn(process.execPath, ['bin/gusu.js', 'exchange', 'send-batch', '--url', tp.url, '--member', A.id, '--key', keyFile, '--resource', 'population.person', '--file', file, '--no-wait'], {
      env: { ...process.env, LOG_LEVEL: 'silent', GUSU_DATA_DIR: dir },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const outLine = JSON.parse(stdout.trim());
    assert.match(stderr, /bytes on the node/);
    assert.equal(outLine.records, 30);
    await drain();
    const st = await status(A, outLine.id);
    assert.equal(st.status, 'done');
    assert.equal(st.published, 30);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
