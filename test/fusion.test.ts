// The fusion engine on the population registry's definition: mapping and key checks, survivorship
// with provenance, conflicts to the steward, disputes answered by the source, life events, history
// (the record as known at a past time), and all-or-nothing batches.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { makeIdNumber, makeUscc } from '../src/base/codes/index.ts';
import {
  answerDispute,
  compileRegistry,
  getGolden,
  goldenAsOf,
  ingest,
  listConflicts,
  loadRegistry,
  mapRecord,
  markDisputed,
  resolveConflict,
  linkPending,
  decideUnlinked,
  sourceRecords,
  type CompiledRegistry,
} from '../src/base/registries/fusion/index.ts';
import { DEFAULT_PROFILE_DIR } from '../src/config/profile.ts';

let tp: TestPlatform;
let reg: CompiledRegistry;
const id1 = makeIdNumber('320508', '19800115', '123');
const id2 = makeIdNumber('320506', '19921203', '456');
const badCheck = id1.slice(0, 17) + (id1[17] === '0' ? '1' : '0');

before(async () => {
  tp = await startTestPlatform({ GUSU_DEMO: 'false' });
  reg = loadRegistry(DEFAULT_PROFILE_DIR, 'population');
});
after(async () => tp?.stop());

const hukou = (idNumber: string, extra: Record<string, unknown> = {}) => ({
  recordId: `hk-${idNumber}-${Math.random().toString(36).slice(2, 8)}`,
  idNumber,
  name: '王建国',
  sex: 'M',
  ethnicity: '汉族',
  birthDate: '1980-01-15',
  householdAddress: '苏州市姑苏区人民路100号',
  householdNo: 'H0001',
  divisionCode: '320508',
  change: 'registered',
  changeDate: '2020-01-01',
  ...extra,
});

describe('mapping and keys', () => {
  it('refuses an ID number that fails the GB 11643 check, and says why', () => {
    const m = mapRecord(reg, 'ga-hukou', hukou(badCheck));
    assert.equal(m.ok, false);
    assert.match(!m.ok ? m.reason : '', /GB 11643: check digit mismatch/);
  });
  it('maps values through the declared mapping, and refuses values of the wrong kind', () => {
    const m = mapRecord(reg, 'mz-marriage', { certificateNo: 'J1', idNumber: id1, kind: 'divorce', date: '2024-05-01', spouseIdNumber: id2 });
    assert.ok(m.ok);
    assert.deepEqual(m.ok && m.values, { maritalStatus: 'divorced', spouseIdNumber: id2, idNumber: id1 });
    assert.equal(m.ok && m.observedAt, '2024-04-30T16:00:00.000Z', 'a date is a day in Suzhou');
    const bad = mapRecord(reg, 'ga-hukou', hukou(id1, { sex: 'X' }));
    assert.match(!bad.ok ? bad.reason : '', /sex: "X" is not one of M, F/);
    assert.match((mapRecord(reg, 'ga-hukou', hukou(id1, { birthDate: '1980-02-30' })) as { reason: string }).reason, /birthDate/);
    assert.match((mapRecord(reg, 'ga-hukou', 'not a record') as { reason: string }).reason, /JSON object/);
    assert.match((mapRecord(reg, 'nope', {}) as { reason: string }).reason, /no source nope/);
  });
  it('uses a telecom record only with recorded consent', () => {
    const no = mapRecord(reg, 'txyy-mobile', { recordNo: 'T1', idNumber: id1, mobile: '13800000000' });
    assert.match(!no.ok ? no.reason : '', /consent/);
    assert.ok(mapRecord(reg, 'txyy-mobile', { recordNo: 'T1', idNumber: id1, mobile: '13800000000', consent: true }).ok);
  });
  it('refuses a definition that names fields or sources it does not have', () => {
    assert.throws(() => compileRegistry({ ...reg.def, survivorship: { name: ['nobody'] } }, null), /no source nobody/);
    assert.throws(() => compileRegistry({ ...reg.def, sources: [{ ...reg.def.sources[0]!, mapping: { shoeSize: 'x' } }] }, null), /shoeSize is not a field/);
    assert.throws(() => compileRegistry(reg.def, new Set(['SZ-GA'])), /no department SZ-MZ/);
  });
});

describe('fusion', () => {
  it('creates golden records with provenance, keeps rejected and unlinked records aside', async () => {
    const r = await ingest(tp.platform.ctx.db, reg, 'ga-hukou', [hukou(id1), hukou(id2, { name: '李秀英', sex: 'F', birthDate: '1992-12-03' }), hukou(badCheck), { nonsense: true }]);
    assert.equal(r.created, 2);
    assert.equal(r.rejected.length, 2);
    assert.deepEqual(r.rejected.map((x) => x.index), [2, 3]);
    const g = (await getGolden(tp.platform.ctx.db, reg, id1))!;
    assert.equal(g.record.name!.v, '王建国');
    assert.equal(g.record.name!.s, 'ga-hukou');
    assert.match(g.record.name!.r, /^hk-/);
    assert.equal(g.record.name!.t, '2019-12-31T16:00:00.000Z');
    const rej = await tp.platform.ctx.db.query<{ reason: string }>(`select reason from fusion.rejected where registry = 'population' order by id`);
    assert.equal(rej.rows.length, 2);
    const u = await ingest(tp.platform.ctx.db, reg, 'wjw-birth', [{ certificateNo: 'O320500001', newbornName: '王小宝', gender: 'M', date: '2026-11-01' }]);
    assert.equal(u.unlinked, 1, 'a birth certificate without an ID number waits for linkage');
  });

  it('the authoritative source wins; a disagreeing source is a conflict for the steward', async () => {
    const r = await ingest(tp.platform.ctx.db, reg, 'rs-insurance', [{ recordNo: 'R1', idNumber: id1, name: '王建囯', employer: '苏州某科技有限公司（合成）', insured: true, changeDate: '2025-03-01' }]);
    assert.equal(r.updated, 1);
    assert.equal(r.conflicts, 1);
    const g = (await getGolden(tp.platform.ctx.db, reg, id1))!;
    assert.equal(g.record.name!.v, '王建国', 'public security is authoritative for the name');
    assert.equal(g.record.employer!.v, '苏州某科技有限公司（合成）');
    assert.equal(g.record.employer!.s, 'rs-insurance');
    const again = await ingest(tp.platform.ctx.db, reg, 'rs-insurance', [{ recordNo: 'R1', idNumber: id1, name: '王建囯', changeDate: '2025-03-02' }]);
    assert.equal(again.conflicts, 0, 'the same disagreement is queued once');
    const c = await listConflicts(tp.platform.ctx.db, 'population', { status: 'open' });
    assert.equal(c.total, 1);
    assert.equal(c.items[0]!.field, 'name');
    assert.equal(c.items[0]!.winner.v, '王建国');
    assert.equal(c.items[0]!.challenger.v, '王建囯');
  });

  it('a dispute goes back to the source and its correction is applied; a steward may replace a value', async () => {
    const db = tp.platform.ctx.db;
    const c = (await listConflicts(db, 'population', { status: 'open' })).items[0]!;
    await db.tx((q) => markDisputed(q, 'population', c.id, '00000000-0000-4000-8000-000000000001', 'steward-1', '请核实姓名'));
    const answered = await db.tx((q) => answerDispute(q, reg, c.id, { outcome: 'correct', value: '王建囯', source: 'ga-hukou' }, 'ga-clerk'));
    assert.equal(answered.status, 'corrected');
    assert.equal((await getGolden(db, reg, id1))!.record.name!.v, '王建囯', 'public security corrected its own value');
    // a second conflict, resolved by the steward
    await ingest(db, reg, 'wjw-birth', [{ certificateNo: 'B2', idNumber: id2, newbornName: '李秀瑛', gender: 'F', date: '1992-12-03' }]);
    const c2 = (await listConflicts(db, 'population', { status: 'open', key: id2 })).items[0]!;
    const done = await db.tx((q) => resolveConflict(q, reg, c2.id, 'replace', 'steward-1', '以出生医学证明为准'));
    assert.equal(done.status, 'replaced');
    const g = (await getGolden(db, reg, id2))!;
    assert.equal(g.record.name!.v, '李秀瑛');
    assert.equal(g.record.name!.s, 'steward');
    await assert.rejects(db.tx((q) => resolveConflict(q, reg, c2.id, 'keep', 'steward-1', null)), /is replaced/);
  });

  it('derives life events: death (from either death source) and marriage', async () => {
    const db = tp.platform.ctx.db;
    const m = await ingest(db, reg, 'mz-marriage', [{ certificateNo: 'J9', idNumber: id2, kind: 'marriage', date: '2026-10-01', spouseIdNumber: id1 }]);
    assert.equal(m.events, 1);
    const d = await ingest(db, reg, 'wjw-death', [{ certificateNo: 'D1', idNumber: id1, deathDate: '2026-11-20' }]);
    assert.equal(d.events, 1);
    const g = (await getGolden(db, reg, id1))!;
    assert.equal(g.record.status!.v, 'deceased');
    assert.equal(g.record.deathDate!.v, '2026-11-20');
    const ev = await db.query<{ key: string; type: string }>(`select key, type from fusion.event where registry = 'population' order by seq`);
    assert.deepEqual(ev.rows, [
      { key: id2, type: 'marriage' },
      { key: id1, type: 'death' },
    ]);
  });

  it('reads a record as it was known at a past time, and every source record behind it', async () => {
    const db = tp.platform.ctx.db;
    const recs = await sourceRecords(db, reg, id1);
    assert.ok(recs.length >= 4);
    const beforeDeath = recs.find((r) => r.source === 'wjw-death')!.receivedAt;
    const then = await goldenAsOf(db, reg, id1, new Date(beforeDeath.getTime() - 1));
    assert.equal(then!.status!.v, 'registered');
    const now = await goldenAsOf(db, reg, id1, new Date());
    assert.deepEqual(now, (await getGolden(db, reg, id1))!.record, 'the fold of all source records is the golden record');
    assert.equal(await goldenAsOf(db, reg, id1, new Date('2000-01-01')), null);
  });

  it('a batch is all or nothing', async () => {
    const db = tp.platform.ctx.db;
    const count = async () => (await db.query<{ n: number }>(`select count(*)::int as n from fusion.source_record`)).rows[0]!.n;
    const n = await count();
    const id3 = makeIdNumber('320505', '20000101', '789');
    await assert.rejects(
      ingest(db, reg, 'ga-hukou', [hukou(id3)], {
        project: async () => {
          throw new Error('crash mid-write');
        },
      }),
      /crash mid-write/,
    );
    assert.equal(await count(), n);
    assert.equal(await getGolden(db, reg, id3), null);
  });

  it('links a record without an ID number to its person, or leaves it waiting', async () => {
    const db = tp.platform.ctx.db;
    const id4 = makeIdNumber('320508', '20261101', '135');
    await ingest(db, reg, 'ga-hukou', [hukou(id4, { name: '陈小明', birthDate: '2026-11-01', changeDate: '2026-11-05' })]);
    await ingest(db, reg, 'wjw-birth', [
      { certificateNo: 'O320500099', newbornName: '陈小明', gender: 'M', date: '2026-11-01' },
      { certificateNo: 'O320500100', newbornName: '欧阳无名', gender: 'F', date: '1901-01-01' },
    ]);
    const run = await linkPending(db, reg, {});
    assert.ok(run.linked + run.review >= 1, JSON.stringify(run));
    assert.ok(run.unmatched >= 1, 'a birth certificate with no person yet waits');
    const row = (await db.query<{ id: string; status: string; linked_key: string | null; candidates: { key: string }[] | null }>(`select id, status, linked_key, candidates from fusion.unlinked where record_id = 'O320500099'`)).rows[0]!;
    if (row.status === 'review') {
      assert.ok(row.candidates!.some((c) => c.key === id4));
      const d = await db.tx((q) => decideUnlinked(q, reg, Number(row.id), id4, 'clerk-1'));
      assert.equal(d.status, 'linked');
      const remembered = await db.query(`select 1 from fusion.review_decision where registry = 'population' and decision->>'decision' = 'match'`);
      assert.equal(remembered.rowCount, 1, 'the clerk\'s decision is remembered');
    } else {
      assert.equal(row.status, 'linked');
      assert.equal(row.linked_key, id4);
    }
    const recs = await sourceRecords(db, reg, id4);
    assert.ok(recs.some((r) => r.source === 'wjw-birth' && r.recordId === 'O320500099'), 'the birth certificate joined the person\'s history');
    const other = (await db.query<{ id: string; status: string }>(`select id, status from fusion.unlinked where record_id = 'O320500100'`)).rows[0]!;
    assert.equal(other.status, 'new');
    await assert.rejects(db.tx((q) => decideUnlinked(q, reg, Number(other.id), makeIdNumber('320505', '19700101', '999'), 'clerk-1')), /no population record/);
  });

  it('is the same engine for the legal-entity registry: credit codes checked (GB 32100), sources fused, lifecycle events', async () => {
    const db = tp.platform.ctx.db;
    const le = loadRegistry(DEFAULT_PROFILE_DIR, 'legal-entity');
    const uscc = makeUscc('9', '1', '320505', '12345678');
    const bad = uscc.slice(0, 17) + (uscc[17] === '0' ? '1' : '0');
    const reg1 = await ingest(db, le, 'scjg-registration', [
      { recordId: 'E1', uscc, name: '苏州合成科技有限公司', entType: '有限责任公司', legalRep: '周合成', registeredCapital: 500, establishDate: '2021-06-01', address: '苏州工业园区星湖街1号（合成）', divisionCode: '320571', change: 'established', changeDate: '2021-06-01' },
      { recordId: 'E2', uscc: bad, name: '坏代码公司' },
    ]);
    assert.equal(reg1.created, 1);
    assert.match(reg1.rejected[0]!.reason, /GB 32100/);
    assert.equal(reg1.events, 1, 'establishment');
    const tax = await ingest(db, le, 'sw-tax', [{ recordId: 'T1', uscc, taxpayerName: '苏州合成科技有限公司', grade: 'B', evaluatedDate: '2025-04-01' }]);
    assert.equal(tax.conflicts, 0, 'the same name from tax is no conflict');
    const court = await ingest(db, le, 'zy-defaulter', [{ caseNo: '(2026)苏05执1号', uscc, listed: true, publishedDate: '2026-10-10' }]);
    assert.equal(court.events, 1);
    const g = (await getGolden(db, le, uscc))!;
    assert.equal(g.record.taxCreditGrade!.v, 'B');
    assert.equal(g.record.judgmentDefaulter!.v, true);
    assert.equal(g.record.judgmentDefaulter!.s, 'zy-defaulter');
    const ev = await db.query<{ type: string }>(`select type from fusion.event where registry = 'legal-entity' order by seq`);
    assert.deepEqual(ev.rows.map((r) => r.type), ['established', 'defaulter-listed']);
    const dereg = await ingest(db, le, 'scjg-registration', [{ recordId: 'E1b', uscc, change: 'deregistered', changeDate: '2026-11-01' }]);
    assert.deepEqual((await db.query<{ type: string }>(`select type from fusion.event where registry = 'legal-entity' order by seq`)).rows.map((r) => r.type).slice(2), ['deregistered']);
    assert.equal(dereg.events, 1);
    assert.equal((await goldenAsOf(db, le, uscc, new Date(Date.now() - 60_000)))?.status?.v ?? 'active', 'active');
  });
});
