import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPair, type Alg, type KeyPair } from '../src/base/identity/crypto/index.ts';
import {
  appendEntries,
  canonicalJson,
  CanonicalError,
  digestOf,
  eventHash,
  expandItems,
  inclusionProof,
  itemsRoot,
  logEntryHash,
  makeReceipt,
  merkleRoot,
  merkleTree,
  parseEvent,
  receiptSigningInput,
  sameEvent,
  sha256,
  signBatch,
  signEvent,
  verifyBatchedEvent,
  VerifiedBatches,
  verifyEvent,
  verifyInclusion,
  verifyLog,
  verifyReceipt,
  type Checkpoint,
  type ExchangeEvent,
  type LogEntry,
  type LogItem,
  type UnsignedEvent,
} from '../src/base/exchange/index.ts';

const KEYS: Record<Alg, KeyPair> = { 'ecdsa-p256-sha256': generateKeyPair('ecdsa-p256-sha256'), 'sm2-sm3': generateKeyPair('sm2-sm3') };
const ALGS: Alg[] = ['ecdsa-p256-sha256', 'sm2-sm3'];

function sample(i = 1): UnsignedEvent {
  return {
    specversion: '1.0',
    id: `evt-${i}`,
    source: '/nodes/gusu/members/gaj-hukou',
    type: 'cn.gov.suzhou.population.person.updated',
    subject: 'person/320505199001011234',
    time: '2026-03-01T08:15:02.123Z',
    datacontenttype: 'application/json',
    data: { idNumber: '320505199001011234', name: '张三', address: { district: '姑苏区', n: i } },
    gusumember: 'gaj.hukou',
    gusuresource: 'res/population/person',
    gusukey: '320505199001011234',
  };
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

test('canonical JSON: sorted keys, no whitespace, deterministic across key order', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1.5, y: -0 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":0,"z":1.5}}');
  assert.equal(canonicalJson({ a: 1, b: { c: 2, d: 3 } }), canonicalJson({ b: { d: 3, c: 2 }, a: 1 }));
  assert.equal(digestOf({ a: 1, b: 2 }), digestOf({ b: 2, a: 1 }));
  assert.equal(canonicalJson('姑苏\u{1F600}'), '"姑苏\u{1F600}"');
  assert.equal(canonicalJson({ '\u{1F600}': 1, '\uFFFF': 2, a: 0 }), '{"a":0,"\u{1F600}":1,"\uFFFF":2}'); // UTF-16 order, as RFC 8785
});

test('canonical JSON refuses what is not plainly JSON', () => {
  for (const bad of [undefined, NaN, Infinity, -Infinity, () => 1, Symbol('s'), 10n, new Date(0), new Map(), Buffer.from('x'), { a: undefined }, [1, undefined], { a: NaN }, '\uD800', 'a\uDC00b', { ['\uD800']: 1 }]) {
    assert.throws(() => canonicalJson(bad), CanonicalError, String(typeof bad));
  }
  // eslint-disable-next-line no-sparse-arrays
  assert.throws(() => canonicalJson([1, , 3]), CanonicalError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), CanonicalError);
  // the same object twice is not a cycle
  const shared = { x: 1 };
  assert.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]');
});

for (const alg of ALGS) {
  test(`${alg}: sign and verify an event, as object and as JSON text`, () => {
    const e = signEvent(sample(), KEYS[alg].privateKey, alg);
    assert.equal(e.gusualg, alg);
    assert.equal(e.gusudigest, digestOf(e.data));
    assert.ok(e.gususig);
    assert.deepEqual(verifyEvent(e, KEYS[alg].publicKey), { ok: true });
    assert.deepEqual(verifyEvent(JSON.stringify(e), KEYS[alg].publicKey), { ok: true });
    // key order on the wire does not matter
    const reordered = Object.fromEntries(Object.entries(e).reverse());
    assert.deepEqual(verifyEvent(JSON.stringify(reordered), KEYS[alg].publicKey), { ok: true });
  });

  test(`${alg}: tampering is refused with the right reason`, () => {
    const pk = KEYS[alg].publicKey;
    const e = signEvent(sample(), KEYS[alg].privateKey, alg);
    const reason = (x: unknown) => {
      const r = verifyEvent(x, pk);
      return r.ok ? 'ok' : r.reason;
    };
    const data = clone(e);
    (data.data as { name: string }).name = '李四';
    assert.equal(reason(data), 'digest-mismatch');

    const attr = clone(e);
    attr.gusukey = '32050819850505123X';
    assert.equal(reason(attr), 'bad-signature');
    const subj = clone(e);
    subj.subject = 'person/other';
    assert.equal(reason(subj), 'bad-signature');
    const added = { ...clone(e), gusuextra: 'x' };
    assert.equal(reason(added), 'bad-signature');

    const digest = clone(e);
    (digest.data as { name: string }).name = '李四';
    digest.gusudigest = digestOf(digest.data);
    assert.equal(reason(digest), 'bad-signature');

    const other: Alg = alg === 'sm2-sm3' ? 'ecdsa-p256-sha256' : 'sm2-sm3';
    const swapped = clone(e);
    swapped.gusualg = other;
    assert.equal(reason(swapped), 'alg-mismatch');
    assert.equal(reason({ ...clone(e), gusualg: 'rsa-sha1' }), 'unsupported-alg');

    const sig = clone(e);
    const b = Buffer.from(sig.gususig!, 'base64url');
    b[b.length - 1]! ^= 1;
    sig.gususig = b.toString('base64url');
    assert.equal(reason(sig), 'bad-signature');

    // another member's key of the same family
    assert.equal(verifyEvent(e, generateKeyPair(alg).publicKey).ok, false);

    const { gususig: _s, ...unsigned } = clone(e);
    assert.equal(reason(unsigned), 'unsigned');
    assert.equal(reason({ ...clone(e), gususig: '' }), 'unsigned');
    assert.equal(reason({ ...clone(e), gususig: 'not base64!' }), 'malformed');
  });
}

test('verifyEvent: oversized and malformed', () => {
  const e = signEvent({ ...sample(), data: { blob: 'x'.repeat(5000) } }, KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
  const pk = KEYS['ecdsa-p256-sha256'].publicKey;
  assert.deepEqual(verifyEvent(e, pk, { maxBytes: 10_000 }), { ok: true });
  for (const input of [e, JSON.stringify(e)]) {
    const r = verifyEvent(input, pk, { maxBytes: 4096 });
    assert.equal(r.ok ? 'ok' : r.reason, 'oversized');
  }
  const reason = (x: unknown) => {
    const r = parseEvent(x);
    return r.ok ? 'ok' : r.reason;
  };
  const good = signEvent(sample(), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
  assert.equal(reason(good), 'ok');
  assert.equal(reason('{not json'), 'malformed');
  assert.equal(reason('[1]'), 'malformed');
  const mutants: Record<string, unknown>[] = [
    { specversion: '0.3' },
    { id: '' },
    { id: 'x'.repeat(201) },
    { id: 'has space' },
    { id: 'tab\t' },
    { source: '' },
    { source: 'has space' },
    { source: '1http://x' },
    { source: 'http://x/%zz' },
    { type: 'Person Updated' },
    { type: 'single' },
    { time: '2026-03-01 08:15:02Z' },
    { time: '2026-02-30T08:15:02Z' },
    { time: '2026-03-01T24:00:00Z' },
    { datacontenttype: 'text/plain' },
    { gusumember: '' },
    { gusuresource: undefined },
    { gusudigest: 'ABC' },
    { Upper: 'x' },
    { 'gusu-x': 'x' },
    { averyveryverylongattributename: 'x' },
    { gusuext: { nested: true } },
    { data: undefined },
  ];
  for (const m of mutants) {
    const x: Record<string, unknown> = { ...clone(good), ...m };
    for (const [k, v] of Object.entries(m)) if (v === undefined) delete x[k];
    assert.equal(reason(x), 'malformed', JSON.stringify(m));
  }
  assert.equal(reason({ ...clone(good), id: 'x'.repeat(200), source: 'urn:gusu:node:gusu', time: '2026-03-01T08:15:02+08:00', gusuext: 3 }), 'ok');
});

test('sameEvent: same id and digest', () => {
  const a = signEvent(sample(1), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
  const again = signEvent(sample(1), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
  const other = signEvent({ ...sample(1), data: { changed: true } }, KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
  assert.ok(sameEvent(a, again));
  assert.ok(!sameEvent(a, other)); // same id, other content: a replay attempt for the next session to refuse
  assert.ok(!sameEvent(a, signEvent(sample(2), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256')));
});

for (const alg of ALGS) {
  test(`${alg}: receipts`, () => {
    const e = signEvent(sample(), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256');
    const receiver = KEYS[alg];
    const r = makeReceipt(e, 'mzj.welfare', 'accepted', undefined, receiver.privateKey, alg);
    assert.equal(r.eventid, e.id);
    assert.equal(r.eventdigest, e.gusudigest);
    assert.deepEqual(verifyReceipt(r, receiver.publicKey, e), { ok: true });
    assert.deepEqual(verifyReceipt(JSON.parse(JSON.stringify(r)), receiver.publicKey), { ok: true });
    const rej = makeReceipt(e, 'mzj.welfare', 'rejected', 'schema-invalid', receiver.privateKey, alg);
    assert.deepEqual(verifyReceipt(rej, receiver.publicKey, e), { ok: true });

    const reason = (x: unknown, ev?: ExchangeEvent) => {
      const v = verifyReceipt(x, receiver.publicKey, ev);
      return v.ok ? 'ok' : v.reason;
    };
    assert.equal(reason({ ...r, status: 'rejected' }), 'bad-signature');
    assert.equal(reason({ ...rej, reason: 'other' }), 'bad-signature');
    assert.equal(reason({ ...r, eventdigest: sha256('x').toString('hex') }), 'bad-signature');
    assert.equal(reason(r, signEvent(sample(2), KEYS['ecdsa-p256-sha256'].privateKey, 'ecdsa-p256-sha256')), 'event-mismatch');
    assert.equal(reason({ ...r, status: 'maybe' }), 'malformed');
    assert.equal(reason({ ...r, extra: 1 }), 'malformed');
    assert.equal(verifyReceipt(r, generateKeyPair(alg).publicKey).ok, false);
    assert.ok(receiptSigningInput(r).includes('"status":"accepted"'));
  });
}

test('Merkle proofs verify for sizes 1..33 at every index, and fail for a wrong index, leaf, root or a cut proof', () => {
  for (let n = 1; n <= 33; n++) {
    const leaves = Array.from({ length: n }, (_, i) => sha256(`leaf ${i}`));
    const { root, proofs } = merkleTree(leaves);
    assert.ok(root.equals(merkleRoot(leaves)));
    for (let i = 0; i < n; i++) {
      const proof = inclusionProof(leaves, i);
      assert.deepEqual(proof.map((p) => p.toString('hex')), proofs[i]!.map((p) => p.toString('hex')), `n=${n} i=${i}`);
      assert.ok(verifyInclusion(leaves[i]!, i, n, proof, root), `n=${n} i=${i}`);
      if (n > 1) {
        assert.ok(!verifyInclusion(leaves[i]!, (i + 1) % n, n, proof, root), `wrong index n=${n} i=${i}`);
        assert.ok(!verifyInclusion(leaves[(i + 1) % n]!, i, n, proof, root), `wrong leaf n=${n} i=${i}`);
      }
      assert.ok(!verifyInclusion(leaves[i]!, i, n, proof, sha256('other root')), `wrong root n=${n} i=${i}`);
      assert.ok(!verifyInclusion(leaves[i]!, n, n, proof, root));
      if (proof.length) assert.ok(!verifyInclusion(leaves[i]!, i, n, proof.slice(0, -1), root));
    }
  }
  // RFC 6962: a single leaf's root is its leaf hash; a leaf cannot pose as an inner node
  const a = sha256('a');
  assert.ok(merkleRoot([a]).equals(sha256(Buffer.concat([Buffer.from([0]), a]))));
  const two = [sha256('x'), sha256('y')];
  const inner = Buffer.concat([Buffer.from([0]), two[0]!]);
  assert.ok(!merkleRoot([inner]).equals(merkleRoot(two)));
});

test('Merkle root matches an independent recursive RFC 6962 implementation', () => {
  const H = (...parts: Buffer[]) => sha256(Buffer.concat(parts));
  const mth = (d: Buffer[]): Buffer => {
    if (d.length === 1) return H(Buffer.from([0]), d[0]!);
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return H(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
  };
  for (const n of [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33]) {
    const leaves = Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));
    assert.ok(merkleRoot(leaves).equals(mth(leaves)), `n=${n}`);
  }
});

for (const alg of ALGS) {
  test(`${alg}: a signed batch verifies every event with one signature verification`, () => {
    const events = Array.from({ length: 20 }, (_, i) => sample(i + 1));
    const { header, events: sealed, proofs } = signBatch(events, KEYS[alg].privateKey, alg);
    assert.equal(header.size, 20);
    assert.equal(header.root, merkleRoot(sealed.map((e) => eventHash(e))).toString('hex'));
    const verified = new VerifiedBatches();
    for (let i = 0; i < sealed.length; i++) {
      assert.deepEqual(verifyBatchedEvent(JSON.stringify(sealed[i]), proofs[i]!, header, KEYS[alg].publicKey, { verified }), { ok: true }, `event ${i}`);
      assert.equal(sealed[i]!.gususig, undefined);
    }
    assert.equal(verified.checks, 1);

    const reason = (e: unknown, p = proofs[0]!, h = header, pk = KEYS[alg].publicKey, v = verified) => {
      const r = verifyBatchedEvent(e, p, h, pk, { verified: v });
      return r.ok ? 'ok' : r.reason;
    };
    const data = clone(sealed[0]!);
    (data.data as { name: string }).name = '李四';
    assert.equal(reason(data), 'digest-mismatch');
    const attr = { ...clone(sealed[0]!), gusukey: 'other' };
    assert.equal(reason(attr), 'bad-signature');
    assert.equal(reason(sealed[0], proofs[1]), 'bad-signature');
    assert.equal(reason(sealed[1], proofs[0]), 'bad-signature');
    const forged = { ...header, root: sha256('forged').toString('hex') };
    assert.equal(reason(sealed[0], proofs[0], forged, KEYS[alg].publicKey, new VerifiedBatches()), 'bad-signature');
    // a header with a doctored size or member is not the signed one
    const sized = signBatch(events.slice(0, 16), KEYS[alg].privateKey, alg);
    assert.equal(reason(sized.events[0], sized.proofs[0], { ...sized.header, sig: header.sig }, KEYS[alg].publicKey, new VerifiedBatches()), 'bad-signature');
    assert.equal(reason(sealed[0], proofs[0], header, generateKeyPair(alg).publicKey, new VerifiedBatches()), 'bad-signature');
  });
}

// ---------------------------------------------------------------------------------------------
// message log

const NODE = KEYS['sm2-sm3'];
const EVERY = 4;

function items(n: number, from = 1): LogItem[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: (i % 3 === 2 ? 'receipt' : 'event') as LogItem['kind'],
    ref: `evt-${from + i}`,
    member: 'gaj.hukou',
    digest: sha256(`content ${from + i}`).toString('hex'),
    at: '2026-03-01T08:15:02.123Z',
  }));
}

function buildLog(n: number): { entries: LogEntry[]; checkpoints: Checkpoint[] } {
  const log = { entries: [] as LogEntry[], checkpoints: [] as Checkpoint[] };
  // appended one item at a time: an entry each (batchLog below appends several at once)
  for (let done = 0; done < n; ) {
    const k = 1;
    const r = appendEntries(log, items(k, done + 1), { privateKey: NODE.privateKey, alg: 'sm2-sm3' }, { every: EVERY });
    log.entries.push(...r.entries);
    log.checkpoints.push(...r.checkpoints);
    done += k;
  }
  return log;
}

test('message log: appends, checkpoints every N, verifies', () => {
  const { entries, checkpoints } = buildLog(14);
  assert.equal(entries.length, 14);
  assert.equal(checkpoints.length, 3);
  assert.deepEqual(checkpoints.map((c) => [c.first, c.last]), [[1, 4], [5, 8], [9, 12]]);
  const r = verifyLog(entries, checkpoints, NODE.publicKey, { every: EVERY });
  assert.deepEqual(r, { ok: true, entries: 14, checkpoints: 3, head: entries.at(-1)!.hash, items: 14 });
  assert.deepEqual(verifyLog([], [], NODE.publicKey, { every: EVERY }).ok, true);
});

test('message log detects an edited, inserted or deleted entry and a forged checkpoint', () => {
  const { entries, checkpoints } = buildLog(14);
  const check = (es: LogEntry[], cps: Checkpoint[] = checkpoints) => {
    const r = verifyLog(es, cps, NODE.publicKey, { every: EVERY });
    return r.ok ? 'ok' : `${r.reason}@${r.index}`;
  };

  const edited = clone(entries);
  edited[5]!.digest = sha256('edited').toString('hex');
  assert.equal(check(edited), 'hash@5');

  // edited with its hash recomputed: the next link breaks
  const rehashed = clone(entries);
  rehashed[5]!.ref = 'evt-forged';
  rehashed[5]!.hash = sha256(canonicalJson({ kind: rehashed[5]!.kind, ref: rehashed[5]!.ref, member: rehashed[5]!.member, digest: rehashed[5]!.digest, at: rehashed[5]!.at, seq: rehashed[5]!.seq, prevHash: rehashed[5]!.prevHash })).toString('hex');
  assert.equal(check(rehashed), 'link@6');

  const inserted = clone(entries);
  inserted.splice(3, 0, { ...clone(entries[2]!) });
  assert.equal(check(inserted), 'seq@3');

  const deleted = clone(entries);
  deleted.splice(7, 1);
  assert.equal(check(deleted), 'seq@7');

  // the whole chain rewritten from entry 6 on (new hashes throughout): only the signed checkpoints see it
  const rewritten = clone(entries.slice(0, 5));
  const r = appendEntries({ entries: rewritten, checkpoints: [] }, items(9, 100), { privateKey: generateKeyPair('sm2-sm3').privateKey, alg: 'sm2-sm3' }, { every: 1000 });
  assert.equal(check([...rewritten, ...r.entries]), 'checkpoint-root@4');

  // a checkpoint forged with another key over the rewritten chain
  const forger = generateKeyPair('sm2-sm3');
  const forgedLog = { entries: clone(entries.slice(0, 4)), checkpoints: clone(checkpoints.slice(0, 1)) };
  const more = appendEntries(forgedLog, items(10, 200), { privateKey: forger.privateKey, alg: 'sm2-sm3' }, { every: EVERY });
  assert.equal(check([...forgedLog.entries, ...more.entries], [...forgedLog.checkpoints, ...more.checkpoints]), 'checkpoint-signature@4');

  // checkpoint fields doctored
  const cps = clone(checkpoints);
  cps[1]!.at = '2027-01-01T00:00:00.000Z';
  assert.equal(check(entries, cps), 'checkpoint-signature@4');
  const relinked = clone(checkpoints);
  relinked[2]!.prevHash = relinked[0]!.hash;
  assert.equal(check(entries, relinked), 'checkpoint-link@8');
  assert.equal(check(entries, checkpoints.slice(0, 2)), 'checkpoint-missing@8');
  assert.equal(check(entries, [checkpoints[0]!, checkpoints[2]!]), 'checkpoint-range@4');
  // tail truncated past a checkpoint
  assert.equal(check(entries.slice(0, 10)), 'checkpoint-range@8');
});

test('message log: an append of several items is one entry, their Merkle root its digest; items are checked', () => {
  const signer = { privateKey: NODE.privateKey, alg: 'sm2-sm3' as const };
  const log = { entries: [] as LogEntry[], checkpoints: [] as Checkpoint[] };
  const events = (n: number, from: number): LogItem[] => items(n, from).map((i) => ({ ...i, kind: 'event' }));
  // 9 appends: batches of 5 events, 3 receipts (one by another member at another time), and a single one
  for (let k = 0; k < 9; k++) {
    const add = k % 3 === 0 ? events(5, k * 10) : k % 3 === 1 ? [...events(2, k * 10).map((i) => ({ ...i, kind: 'receipt' as const })), { ...items(1, k * 10 + 5)[0]!, kind: 'receipt' as const, member: 'mzj.welfare', at: '2026-03-01T08:15:03.000Z' }] : events(1, k * 10);
    const r = appendEntries(log, add, signer, { every: EVERY });
    assert.equal(r.entries.length, 1, 'one entry per append');
    log.entries.push(...r.entries);
    log.checkpoints.push(...r.checkpoints);
  }
  const { entries, checkpoints } = log;
  assert.equal(checkpoints.length, 2);
  assert.deepEqual(entries.map((e) => e.items?.length ?? 1), [5, 3, 1, 5, 3, 1, 5, 3, 1]);
  assert.deepEqual(entries[1]!.items![2], { ref: 'evt-15', digest: sha256('content 15').toString('hex'), member: 'mzj.welfare', at: '2026-03-01T08:15:03.000Z' });
  assert.equal(entries[0]!.digest, itemsRoot(events(5, 0)));
  assert.equal(entries[2]!.items, undefined, 'an append of one item is an entry of one item, as before');
  const ok = verifyLog(entries, checkpoints, NODE.publicKey, { every: EVERY });
  assert.deepEqual(ok, { ok: true, entries: 9, checkpoints: 2, head: entries.at(-1)!.hash, items: 27 });

  const check = (es: LogEntry[]) => {
    const r = verifyLog(es, checkpoints, NODE.publicKey, { every: EVERY });
    return r.ok ? 'ok' : `${r.reason}@${r.index}`;
  };
  const edited = clone(entries);
  edited[3]!.items![4]!.digest = sha256('edited').toString('hex');
  assert.equal(check(edited), 'items@3');
  const removed = clone(entries);
  removed[3]!.items!.splice(2, 1);
  assert.equal(check(removed), 'items@3');
  const added = clone(entries);
  added[4]!.items!.push({ ref: 'evt-forged', digest: sha256('forged').toString('hex') });
  assert.equal(check(added), 'items@4');
  const reordered = clone(entries);
  reordered[0]!.items!.reverse();
  assert.equal(check(reordered), 'malformed@0');
  const member = clone(entries);
  delete member[1]!.items![2]!.member;
  assert.equal(check(member), 'items@1');
  // the items and the digest both changed: the entry's hash no longer matches
  const redigested = clone(entries);
  redigested[3]!.items![1]!.digest = sha256('edited').toString('hex');
  redigested[3]!.digest = itemsRoot(expandItems(redigested[3] as LogEntry & { items: NonNullable<LogEntry['items']> }));
  assert.equal(check(redigested), 'hash@3');
  // an item dropped and the entry rehashed (its item count is in the hash): the next link breaks
  const rehashed = clone(entries);
  rehashed[6]!.items!.pop();
  rehashed[6]!.digest = itemsRoot(expandItems(rehashed[6] as LogEntry & { items: NonNullable<LogEntry['items']> }));
  rehashed[6]!.hash = logEntryHash(rehashed[6]!);
  assert.equal(check(rehashed), 'link@7');
});
