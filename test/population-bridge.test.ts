// The population registry on the exchange: a source department publishes its records as signed
// events; the registry (a member of the exchange) pulls, fuses and acknowledges them; a death
// becomes a life event the registry publishes, received by an entitled member.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { caContextFor, issueCertificate } from '../src/base/identity/ca/index.ts';
import { grantEntitlement, pull, signBatch, signRequest, subscribe, exchangeOf, type UnsignedEvent } from '../src/base/exchange/index.ts';
import { makeIdNumber } from '../src/base/codes/index.ts';
import { runBridge } from '../src/base/registries/fusion/bridge.ts';
import { getGolden } from '../src/base/registries/fusion/index.ts';
import { populationRegistry, projectPersons } from '../src/base/registries/population/index.ts';

const OPERATOR: Actor = { kind: 'staff', accountId: '00000000-0000-4000-8000-0000000000e1', name: '运维', department: 'SZ-DSJ', post: '工程师', roles: [{ role: 'exchange-operator', scope: null }] };
let tp: TestPlatform;

interface Member {
  id: string;
  key: string;
}
async function member(code: string, subsystem: string): Promise<Member> {
  const c = await issueCertificate(tp.platform.ctx.db, caContextFor(tp.platform.ctx), { kind: 'system', id: 'test' }, { alg: 'ecdsa-p256-sha256', subject: { kind: 'system', systemId: subsystem, department: code, name: subsystem } });
  const res = await fetch(`${tp.url}/api/v1/exchange/members`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-actor': 'op' }, body: JSON.stringify({ memberClass: 'GOV', memberCode: code, subsystem, name: subsystem, certificate: c.certificate }) });
  assert.equal(res.status, 201, await res.clone().text());
  return { id: `SZ/GOV/${code}/${subsystem}`, key: c.privateKey! };
}
async function publishAs(m: Member, resource: string, rows: Record<string, unknown>[]): Promise<void> {
  const events: UnsignedEvent[] = rows.map((data) => ({ specversion: '1.0', id: crypto.randomUUID(), source: `urn:gusu:member:${m.id}`, type: `cn.gov.suzhou.${resource}`, gusumember: m.id, gusuresource: resource, gusukey: String(data.idNumber), data }));
  const b = signBatch(events, m.key, 'ecdsa-p256-sha256');
  const body = JSON.stringify({ batch: b.header, events: b.events, proofs: b.proofs });
  const p = '/api/v1/exchange/events';
  const res = await fetch(`${tp.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json', ...signRequest({ member: m.id }, { privateKey: m.key, alg: 'ecdsa-p256-sha256' }, { method: 'POST', path: p, body }) }, body });
  assert.equal(res.status, 200, await res.clone().text());
}
async function resource(id: string, provider: Member): Promise<void> {
  const res = await fetch(`${tp.url}/api/v1/exchange/resources/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-test-actor': 'op' }, body: JSON.stringify({ name: id, provider: provider.id, schema: { type: 'object' } }) });
  assert.equal(res.status, 200, await res.clone().text());
}

before(async () => {
  tp = await startTestPlatform({ GUSU_DEMO: 'false' }, [], { resolveActor: async (req) => (req.headers['x-test-actor'] === 'op' ? OPERATOR : ANONYMOUS) });
});
after(async () => tp?.stop());

describe('the registry on the exchange', () => {
  it('pulls a source\'s events, fuses them, and publishes the life events they make', async () => {
    const ctx = tp.platform.ctx;
    const reg = populationRegistry(ctx);
    const ga = await member('SZ-GA', 'hukou');
    const wjw = await member('SZ-WJW', 'deaths');
    await resource('population.person', ga);
    await resource('health.death', wjw);
    // the registry subscribes first (a subscription receives what is published after it)
    const none = await runBridge(ctx, reg, { project: projectPersons });
    assert.equal(none.fused, 0);
    const id = makeIdNumber('320508', '19500101', '777');
    await publishAs(ga, 'population.person', [{ idNumber: id, name: '赵老汉', sex: 'M', ethnicity: '汉族', birthDate: '1950-01-01', householdAddress: '姑苏区（合成）', divisionCode: '320508', change: 'registered', changeDate: '2020-01-01' }, { idNumber: '320508195001017770', name: '坏号' }]);
    const first = await runBridge(ctx, reg, { project: projectPersons });
    assert.equal(first.fused, 1);
    assert.equal(first.rejected, 1, 'the bad ID number is rejected with its reason');
    assert.ok(first.waiting.includes('mz-marriage'), 'sources not on the exchange wait');
    const g = (await getGolden(ctx.db, reg, id))!;
    assert.equal(g.record.name!.v, '赵老汉');
    const person = await ctx.db.query('select name from population.person where id_number = $1', [id]);
    assert.equal(person.rows[0]?.name, '赵老汉', 'projected for the modules that read population.person');
    // the consumer of life events (a pension system), entitled by the operator
    const rs = await member('SZ-RS', 'pension');
    await publishAs(wjw, 'health.death', [{ certificateNo: 'D-1', idNumber: id, deathDate: '2026-11-20' }]);
    const second = await runBridge(ctx, reg, { project: projectPersons });
    assert.equal(second.fused, 1, JSON.stringify(second));
    assert.equal((await getGolden(ctx.db, reg, id))!.record.status!.v, 'deceased');
    assert.ok(second.published >= 1, 'the death is published');
    await grantEntitlement(ctx.db, 'population.life-event', rs.id, 'test', null);
    const rsRow = (await ctx.db.query<import('../src/base/exchange/index.ts').MemberRow>('select * from exchange.member where id = $1', [rs.id])).rows[0]!;
    const { subscription } = await subscribe(ctx.db, rsRow, { resource: 'population.life-event', delivery: 'pull' });
    // published before the subscription: the next death reaches it
    const id2 = makeIdNumber('320508', '19480303', '888');
    await publishAs(ga, 'population.person', [{ idNumber: id2, name: '钱老太', sex: 'F', ethnicity: '汉族', birthDate: '1948-03-03', householdAddress: '姑苏区（合成）', divisionCode: '320508', change: 'registered', changeDate: '2020-01-01' }]);
    await runBridge(ctx, reg, { project: projectPersons });
    await publishAs(wjw, 'health.death', [{ certificateNo: 'D-2', idNumber: id2, deathDate: '2026-11-25' }]);
    await runBridge(ctx, reg, { project: projectPersons });
    const got = await pull(exchangeOf(ctx), subscription, 10, 0);
    assert.equal(got.length, 1);
    assert.deepEqual((got[0]!.event as { data: { key: string; type: string } }).data.type, 'death');
    assert.equal((got[0]!.event as { data: { key: string } }).data.key, id2);
    // nothing is left unacknowledged on the registry's subscriptions
    const open = await ctx.db.query<{ n: number }>(
      `select count(*)::int as n from exchange.delivery d join exchange.subscription s on s.id = d.subscription join fusion.exchange_member m on m.member_id = s.target_member where d.status <> 'done'`,
    );
    assert.equal(open.rows[0]!.n, 0);
  });
});
