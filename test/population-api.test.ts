// The population registry over HTTP: source departments send records, other departments read only
// what the catalog grants (masked), every read audited for the citizen, stewards work the conflict
// queue, and a dispute goes to the source department on the workflow engine and comes back applied.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { makeIdNumber } from '../src/base/codes/index.ts';
import { accessesOfSubject } from '../src/base/audit/index.ts';

const staff = (id: string, department: string, roles: { role: string; scope: string | null }[] = []): Actor => ({ kind: 'staff', accountId: `00000000-0000-4000-8000-0000000000${id}`, name: `测试${id}`, department, post: '科员', roles });
const ACTORS: Record<string, Actor> = {
  'ga-system': { kind: 'system', id: 'ga-hukou-system', department: 'SZ-GA' },
  'rs-system': { kind: 'system', id: 'rs-system', department: 'SZ-RS' },
  rs: staff('c1', 'SZ-RS'),
  ga: staff('c2', 'SZ-GA'),
  steward: staff('c3', 'SZ-DSJ', [{ role: 'registry-steward', scope: null }]),
  citizen: { kind: 'citizen', accountId: 'cit-1', name: '王建国', idNumber: '11010519491231002X' },
};

let tp: TestPlatform;
const id1 = makeIdNumber('320508', '19800115', '321');
const id2 = makeIdNumber('320506', '19921203', '654');

async function api(who: string | null, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${tp.url}${p}`, {
    method,
    headers: { ...(who ? { 'x-test-actor': who } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const hukou = (idNumber: string, name: string, extra: Record<string, unknown> = {}) => ({
  recordId: `hk-${idNumber}`,
  idNumber,
  name,
  sex: 'M',
  ethnicity: '汉族',
  birthDate: `${idNumber.slice(6, 10)}-${idNumber.slice(10, 12)}-${idNumber.slice(12, 14)}`,
  householdAddress: '苏州市姑苏区人民路100号（合成）',
  householdNo: 'H0001',
  divisionCode: idNumber.slice(0, 6),
  change: 'registered',
  changeDate: '2020-01-01',
  ...extra,
});

before(async () => {
  tp = await startTestPlatform({ GUSU_DEMO: 'false' }, [], { resolveActor: async (req) => ACTORS[String(req.headers['x-test-actor'])] ?? ANONYMOUS });
});
after(async () => tp?.stop());

describe('sources send records', () => {
  it('accepts its own source, refuses another department\'s, and says which records were rejected and why', async () => {
    const r = await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [hukou(id1, '王建国'), hukou(id2, '李强'), hukou(id1.slice(0, 17) + (id1[17] === '1' ? '2' : '1'), '坏号')] });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.created, 2);
    assert.equal(r.json.rejected.length, 1);
    assert.match(r.json.rejected[0].reason, /GB 11643/);
    assert.equal((await api('rs-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [hukou(id1, 'x')] })).status, 403);
    assert.equal((await api('ga-system', 'POST', '/api/v1/population/sources/nope/records', { records: [{}] })).status, 404);
    assert.equal((await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [] })).status, 400);
    assert.equal((await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: Array.from({ length: 5001 }, () => ({})) })).status, 400);
    assert.equal((await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', '{"records": [')).status, 400);
    assert.equal((await api(null, 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [{}] })).status, 401);
    assert.equal((await api('citizen', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [{}] })).status, 403);
    const rs = await api('rs-system', 'POST', '/api/v1/population/sources/rs-insurance/records', { records: [{ recordNo: 'R1', idNumber: id1, name: '王建囯', employer: '苏州某公司（合成）', insured: true, changeDate: '2025-01-01' }] });
    assert.equal(rs.status, 200);
    assert.equal(rs.json.conflicts, 1);
  });
});

describe('reads', () => {
  it('another department reads the base items only, personal ones masked, with provenance; the read is in the citizen\'s log', async () => {
    const r = await api('rs', 'GET', `/api/v1/population/persons/${id1}?purpose=${encodeURIComponent('社保待遇资格核验')}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.access.basis, 'open');
    assert.equal(r.json.record.name, '王**');
    assert.match(r.json.idNumber, /^3205\*{10}\d{3}[\dX]$/);
    assert.equal(r.json.record.sex, 'M');
    assert.equal(r.json.record.employer, undefined, 'items outside the catalog grant are not delivered');
    assert.equal(r.json.provenance.name.source, 'ga-hukou');
    const log = await accessesOfSubject(tp.platform.ctx.db, id1, { limit: 10 });
    assert.ok(log.items.some((e) => e.action === 'population.person.read' && e.department === 'SZ-RS' && e.purpose === '社保待遇资格核验'));
  });

  it('the provider reads unmasked; the steward reads every field; a purpose is required', async () => {
    const ga = await api('ga', 'GET', `/api/v1/population/persons/${id1}?purpose=${encodeURIComponent('户籍业务')}`);
    assert.equal(ga.json.access.basis, 'provider');
    assert.equal(ga.json.record.name, '王建国');
    const st = await api('steward', 'GET', `/api/v1/population/persons/${id1}?purpose=${encodeURIComponent('数据质量核查')}`);
    assert.equal(st.json.record.employer, '苏州某公司（合成）');
    assert.equal((await api('rs', 'GET', `/api/v1/population/persons/${id1}`)).status, 400);
    assert.equal((await api('rs', 'GET', `/api/v1/population/persons/12345?purpose=xx`)).status, 400);
    assert.equal((await api('rs', 'GET', `/api/v1/population/persons/${makeIdNumber('320505', '19700101', '111')}?purpose=xx`)).status, 404);
    assert.equal((await api('citizen', 'GET', `/api/v1/population/persons/${id1}?purpose=xx`)).status, 403);
    assert.equal((await api(null, 'GET', `/api/v1/population/persons/${id1}?purpose=xx`)).status, 401);
  });

  it('reads the record as known at a past time, and finds people by name and birth date', async () => {
    const before = new Date().toISOString();
    await api('ga-system', 'POST', '/api/v1/population/sources/ga-hukou/records', { records: [hukou(id2, '李强', { recordId: 'hk-2b', change: 'moved-out', changeDate: '2026-11-01', divisionCode: '320583' })] });
    const now = await api('ga', 'GET', `/api/v1/population/persons/${id2}?purpose=xx`);
    assert.equal(now.json.record.status, 'moved-out');
    const then = await api('ga', 'GET', `/api/v1/population/persons/${id2}?purpose=xx&asOf=${encodeURIComponent(before)}`);
    assert.equal(then.status, 200);
    assert.equal(then.json.record.status, 'registered');
    assert.equal(then.json.record.divisionCode, '320506');
    const found = await api('rs', 'GET', `/api/v1/population/persons?name=${encodeURIComponent('李强')}&birthDate=1992-12-03&purpose=xx`);
    assert.equal(found.status, 200);
    assert.equal(found.json.total, 1);
    const ev = await tp.platform.ctx.db.query<{ type: string }>(`select type from fusion.event where key = $1`, [id2]);
    assert.deepEqual(ev.rows.map((r) => r.type), ['move']);
  });
});

describe('steward', () => {
  it('a disputed value goes to the source department; its correction is applied', async () => {
    assert.equal((await api('rs', 'GET', '/api/v1/population/conflicts')).status, 403);
    const list = await api('steward', 'GET', '/api/v1/population/conflicts?status=open');
    assert.equal(list.status, 200);
    const c = list.json.items.find((x: any) => x.key === id1 && x.field === 'name');
    assert.ok(c);
    const d = await api('steward', 'POST', `/api/v1/population/conflicts/${c.id}/resolve`, { decision: 'dispute', against: 'winner', note: '人社记录为王建囯，请核实' });
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(d.json.status, 'disputed');
    assert.equal((await api('rs', 'POST', `/api/v1/population/conflicts/${c.id}/answer`, { outcome: 'confirm' })).status, 403, 'only the source department answers');
    assert.equal((await api('ga', 'POST', `/api/v1/population/conflicts/${c.id}/answer`, { outcome: 'correct' })).status, 400);
    assert.equal((await api('ga', 'POST', `/api/v1/population/conflicts/${c.id}/answer`, { outcome: 'correct', value: '王建囯' })).status, 202);
    const end = Date.now() + 15_000;
    let status = 'disputed';
    while (status === 'disputed' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 150));
      status = (await tp.platform.ctx.db.query<{ status: string }>('select status from fusion.conflict where id = $1', [c.id])).rows[0]!.status;
    }
    assert.equal(status, 'corrected');
    const ga = await api('ga', 'GET', `/api/v1/population/persons/${id1}?purpose=xx`);
    assert.equal(ga.json.record.name, '王建囯');
    assert.equal(ga.json.provenance.name.recordId, `dispute:${c.id}`);
  });

  it('shows rejected records and the history of a person to stewards only', async () => {
    const rej = await api('steward', 'GET', '/api/v1/population/rejected');
    assert.ok(rej.json.items.length >= 1);
    const h = await api('steward', 'GET', `/api/v1/population/persons/${id1}/history?purpose=xx`);
    assert.ok(h.json.items.length >= 3);
    assert.equal((await api('rs', 'GET', `/api/v1/population/persons/${id1}/history?purpose=xx`)).status, 403);
  });
});
