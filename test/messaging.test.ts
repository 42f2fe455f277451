// Messaging (base/messaging): templates and their placeholders, segments chosen from the population
// registry (street, age on today's date, sex), sends to one person, a list and a CSV upload, the
// fan-out surviving a crash mid-chunk without duplicates, SMS and email through the test doubles
// when preferences ask, retries then failure, read status, the rate limits, permissions, hostile
// input, the pages, and sendNotice inside a caller's transaction. Jobs are driven by hand
// (GUSU_JOB_CONCURRENCY=0) so every count is exact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeIdNumber } from '../src/base/codes/index.ts';
import { createActorResolver, registerCitizen, setPreferences, findAccountByLogin, createStaffAccount } from '../src/base/identity/index.ts';
import { ANONYMOUS, type Actor } from '../src/base/identity/policy.ts';
import { sendNotice, testOutbox, NoticeInputError } from '../src/base/messaging/index.ts';
import { chunkHooks, cityToday, getRuntime, planFanOut, runChunk } from '../src/base/messaging/notices.ts';
import type { ActorResolver } from '../src/module.ts';
import { Browser, csrfOf } from './support/identity.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let t: TestPlatform;
let real: ActorResolver | null = null;

// requests carrying x-test-actor act as that actor (JSON); all others go through real sign-in
const resolveActor: ActorResolver = async (req) => {
  const h = req.headers['x-test-actor'];
  if (typeof h === 'string') return JSON.parse(h) as Actor;
  return real ? real(req) : ANONYMOUS;
};

const sender = (department: string, roles: { role: string; scope: string | null }[] = [{ role: 'notice-sender', scope: department }]): Actor => ({
  kind: 'staff',
  accountId: `00000000-0000-4000-8000-${department.replace(/[^A-Z]/g, '').padEnd(12, '0').slice(0, 12).replace(/[^0-9a-f]/gi, 'a').toLowerCase()}`,
  name: 'tester',
  department,
  post: 'clerk',
  roles,
});
const MZ = sender('SZ-MZ');
const YB = sender('SZ-YB');
const citizen = (idNumber: string): Actor => ({ kind: 'citizen', accountId: '00000000-0000-4000-8000-00000000c171', name: 'resident', idNumber });

interface Res {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

async function api(method: string, path: string, actor: Actor | null, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(actor ? { 'x-test-actor': JSON.stringify(actor) } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* html */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Runs every due job until none is left (retries are due after 1 ms here). */
async function drain(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const n = await t.platform.worker.drain();
    const { rows } = await t.platform.ctx.db.query<{ n: number }>(`select count(*)::int as n from platform.job where kind like 'messaging.%' and status = 'queued'`);
    if (n === 0 && rows[0]!.n === 0) return;
    if (n === 0) await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('jobs did not settle');
}

const q = <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => t.platform.ctx.db.query<R>(sql, params).then((r) => r.rows);

let today = '';
/** YYYY-MM-DD that many years (and days) before today */
function yearsBefore(years: number, days = 0): string {
  const [y, m, d] = today.split('-').map(Number) as [number, number, number];
  const dt = new Date(Date.UTC(y - years, m - 1, d + days));
  return dt.toISOString().slice(0, 10);
}

const STREET = '320508018'; // 平江街道
let residents: { id_number: string; name: string }[] = [];

before(async () => {
  t = await startTestPlatform(
    {
      GUSU_JOB_CONCURRENCY: '0',
      GUSU_DEMO_RESIDENTS: '2000',
      GUSU_SMS_ADAPTER: 'test',
      GUSU_EMAIL_ADAPTER: 'test',
      GUSU_NOTICE_RETRY_BASE_MS: '1',
      GUSU_NOTICE_MAX_ATTEMPTS: '3',
      GUSU_NOTICE_CHUNK_SIZE: '100',
      GUSU_NOTICE_RATE_PER_HOUR: '40',
      GUSU_LOGIN_RATE_PER_MINUTE: '1000',
    },
    [],
    { resolveActor },
  );
  real = createActorResolver(t.platform.ctx);
  today = cityToday(t.platform.ctx.profile);
  await drain(); // the demo's own notices
  residents = await q<{ id_number: string; name: string }>('select id_number, name from population.person order by id_number limit 50');
});
after(async () => {
  await t?.stop();
});

// ---------------------------------------------------------------------------------------------

test('templates: placeholders checked at save, versions, a key stays with its department', async () => {
  const base = { key: 'test-reminder', name: { zh: '测试提醒' }, subject: { zh: '{{name}}，请注意' }, body: { zh: '您好 {{name}}，截止 {{deadline}}。' }, variables: ['deadline'] };
  const v1 = await api('POST', '/api/v1/messaging/templates', MZ, base);
  assert.equal(v1.status, 201, JSON.stringify(v1.body));
  assert.equal(v1.body.version, 1);
  const v2 = await api('POST', '/api/v1/messaging/templates', MZ, { ...base, body: { zh: '第二版 {{ name }} {{deadline}}', en: 'v2 {{name}}' } });
  assert.equal(v2.body.version, 2);
  assert.equal((await api('GET', '/api/v1/messaging/templates/test-reminder?version=1', MZ)).body.body.zh, base.body.zh);
  assert.equal((await api('GET', '/api/v1/messaging/templates/test-reminder', YB)).body.version, 2, 'every department may read templates');

  const refused: [unknown, RegExp][] = [
    [{ ...base, body: { zh: '{{unknown}}' } }, /unknown.*neither a recipient attribute/],
    [{ ...base, body: { zh: '{{name}' } }, /unmatched/],
    [{ ...base, subject: { zh: '}} oops' } }, /unmatched/],
    [{ ...base, body: { zh: '{{ drop table }}' } }, /not a placeholder name/],
    [{ ...base, variables: ['name'] }, /recipient attribute/],
    [{ ...base, body: { zh: 'x'.repeat(5001) } }, /body/],
    [{ ...base, key: "x'; drop table messaging.template; --" }, /key/],
    [{ ...base, subject: { zh: '两行\n主题' } }, /one line/],
    [{ ...base, body: { zh: 'nul \u0000 byte' } }, /control characters/],
  ];
  for (const [body, message] of refused) {
    const r = await api('POST', '/api/v1/messaging/templates', MZ, body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.body.type, '/problems/validation');
    assert.match(r.body.detail, message);
  }
  const other = await api('POST', '/api/v1/messaging/templates', YB, base);
  assert.equal(other.status, 403, 'another department cannot add versions to this key');
  const { rows } = await t.platform.ctx.db.query(`select count(*)::int as n from messaging.template where key = 'test-reminder'`);
  assert.equal(rows[0]!.n, 2);
});

test('segments: street, age on today’s date (boundaries included), sex, and community codes select exactly the registry’s residents', async () => {
  // four residents of 平江街道 around the 60th birthday, and one just old enough but elsewhere
  const people = [
    { id: makeIdNumber('320508', yearsBefore(60).replace(/-/g, ''), '991'), born: yearsBefore(60), sex: 'M', street: STREET, age60: true },
    { id: makeIdNumber('320508', yearsBefore(60, 1).replace(/-/g, ''), '992'), born: yearsBefore(60, 1), sex: 'F', street: STREET, age60: false },
    { id: makeIdNumber('320508', yearsBefore(61, 1).replace(/-/g, ''), '993'), born: yearsBefore(61, 1), sex: 'F', street: STREET, age60: true },
    { id: makeIdNumber('320508', yearsBefore(61).replace(/-/g, ''), '995'), born: yearsBefore(61), sex: 'M', street: STREET, age60: true },
    { id: makeIdNumber('320505', yearsBefore(70).replace(/-/g, ''), '997'), born: yearsBefore(70), sex: 'M', street: '320505001', age60: true },
  ];
  for (const p of people) {
    await q(
      `insert into population.person (id_number, name, sex, ethnicity, birth_date, county_code, street_code, community_code, address, phone, source, synthetic)
       values ($1, '边界测试', $2, '汉族', $3, substr($4, 1, 6), $4, null, '测试地址', null, 'test', true)`,
      [p.id, p.sex, p.born, p.street],
    );
  }
  const expect = async (where: string, params: unknown[] = []) =>
    (await q<{ id_number: string }>(`select id_number from population.person where ${where} order by id_number`, params)).map((r) => r.id_number);
  const count = async (audience: object) => (await api('POST', '/api/v1/messaging/audience/count', MZ, { audience: { kind: 'segment', ...audience } })).body.recipients as number;

  const over60 = await expect(`street_code = $1 and birth_date <= ($2::date - interval '60 years')::date`, [STREET, today]);
  assert.ok(over60.includes(people[0]!.id) && !over60.includes(people[1]!.id), 'the reference query agrees on the boundary');
  assert.equal(await count({ divisions: [STREET], minAge: 60 }), over60.length);
  // aged 60 exactly: born from 61 years ago (exclusive) to 60 years ago (inclusive)
  const exactly60 = await expect(`street_code = $1 and birth_date <= ($2::date - interval '60 years')::date and birth_date > ($2::date - interval '61 years')::date`, [STREET, today]);
  assert.ok(exactly60.includes(people[0]!.id) && exactly60.includes(people[2]!.id) && !exactly60.includes(people[3]!.id));
  assert.equal(await count({ divisions: [STREET], minAge: 60, maxAge: 60 }), exactly60.length);
  assert.equal(await count({ divisions: [STREET], minAge: 60, sex: 'F' }), (await expect(`street_code = $1 and sex = 'F' and birth_date <= ($2::date - interval '60 years')::date`, [STREET, today])).length);
  const county = (await expect(`county_code = '320508'`)).length;
  assert.equal(await count({ divisions: ['320508'] }), county);
  const { rows: comm } = await t.platform.ctx.db.query<{ community_code: string; n: number }>(`select community_code, count(*)::int as n from population.person where community_code is not null group by 1 order by 2 desc limit 1`);
  assert.equal(await count({ divisions: [comm[0]!.community_code.trim()] }), comm[0]!.n);
  assert.equal(await count({}), (await expect('true')).length, 'no filter: the whole city');

  // sent: the deliveries are exactly the reference set, each once
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: '12月31日' }, audience: { kind: 'segment', divisions: [STREET], minAge: 60 } });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  assert.equal(sent.body.status, 'queued');
  assert.equal(sent.headers.get('location'), `/api/v1/messaging/notices/${sent.body.id}`);
  await drain();
  const got = (await q<{ recipient: string }>(`select recipient from messaging.delivery where notice_id = $1 and channel = 'mailbox' order by recipient`, [sent.body.id])).map((r) => r.recipient.slice(2));
  assert.deepEqual(got, over60);
  const n = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}`, MZ)).body;
  assert.equal(n.status, 'done');
  assert.equal(n.recipients, over60.length);
  assert.equal(n.delivered, over60.length);
  assert.equal(n.byChannel.mailbox.delivered, over60.length);

  // bad filters
  for (const [audience, message] of [
    [{ divisions: ['999999'] }, /not a division/],
    [{ divisions: ['12345'] }, /divisions/],
    [{ minAge: 70, maxAge: 60 }, /minAge is above maxAge/],
    [{ minAge: -1 }, /minAge/],
    [{ sex: 'X' }, /sex/],
    [{ divisions: ["320508' or '1'='1"] }, /divisions/],
  ] as const) {
    const r = await api('POST', '/api/v1/messaging/audience/count', MZ, { audience: { kind: 'segment', ...audience } });
    assert.equal(r.status, 400, JSON.stringify(audience));
    assert.match(JSON.stringify(r.body), message);
  }
});

test('one person: delivered at once into the mailbox keyed by ID number; unknown or malformed people are refused', async () => {
  const who = residents[3]!;
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: '明天' }, audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(sent.status, 202);
  assert.equal(sent.body.status, 'done', 'one person needs no background job');
  const box = await api('GET', '/api/v1/messaging/mailbox', citizen(who.id_number));
  assert.equal(box.status, 200);
  assert.equal(box.body.items[0].noticeId, sent.body.id);
  assert.equal(box.body.items[0].status, 'delivered');

  const unknown = makeIdNumber('320508', '19800101', '998');
  assert.equal((await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: unknown } })).status, 404);
  const bad = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: '320508198001010000' } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.detail, /check digit/);
  const missingVar = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(missingVar.status, 400);
  assert.match(missingVar.body.detail, /vars\.deadline/);
  const extraVar = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x', evil: 'y' }, audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(extraVar.status, 400);
  // another department's template
  assert.equal((await api('POST', '/api/v1/messaging/notices', YB, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: who.id_number } })).status, 403);
});

test('lists: inline codes (residents and enterprises, unknown ones failed with the reason) and a streamed CSV upload', async () => {
  const { rows: ents } = await t.platform.ctx.db.query<{ uscc: string }>('select uscc from legal_entity.entity order by uscc limit 2');
  const unknown = makeIdNumber('320508', '19800101', '996');
  const codes = [residents[5]!.id_number, residents[6]!.id_number, residents[6]!.id_number, ents[0]!.uscc, unknown];
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'list', recipients: codes } });
  assert.equal(sent.status, 202);
  assert.equal(sent.body.recipients, 4, 'duplicates counted once');
  await drain();
  const n = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}`, MZ)).body;
  assert.deepEqual([n.status, n.total, n.delivered, n.failed], ['done', 4, 3, 1]);
  const failed = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}/deliveries?status=failed`, MZ)).body.items;
  assert.equal(failed.length, 1);
  assert.equal(failed[0].lastError, 'not in the population registry');
  assert.equal(failed[0].recipient, `${unknown.slice(0, 6)}********${unknown.slice(14)}`, 'recipients are masked for the sender');
  const entBox = await api('GET', '/api/v1/messaging/mailbox', { kind: 'enterprise', accountId: '00000000-0000-4000-8000-0000000000e1', name: 'e', uscc: ents[0]!.uscc, entityName: 'e' });
  assert.equal(entBox.body.items[0].noticeId, sent.body.id, 'an enterprise’s mailbox is keyed by its credit code');

  const bad = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'list', recipients: [residents[1]!.id_number, 'not-a-code'] } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.detail, /recipients\[1\]/);
  const tooMany = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'list', recipients: Array(10_001).fill(residents[1]!.id_number) } });
  assert.equal(tooMany.status, 400);

  // CSV: a header, CRLF, quotes, a second column, blank lines
  const csv = ['证件号码,备注', ...residents.slice(10, 40).map((r, i) => `"${r.id_number}",第${i}行`), '', ents[1]!.uscc].join('\r\n') + '\r\n';
  const up = await api('POST', '/api/v1/messaging/lists', MZ, csv, { 'content-type': 'text/csv' });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  assert.equal(up.body.recipients, 31);
  const badCsv = await api('POST', '/api/v1/messaging/lists', MZ, `${residents[1]!.id_number}\n${residents[2]!.id_number}\n<script>alert(1)</script>\n`, { 'content-type': 'text/csv' });
  assert.equal(badCsv.status, 400);
  assert.match(badCsv.body.detail, /line 3/);
  assert.equal((await api('POST', '/api/v1/messaging/lists', MZ, { not: 'csv' })).status, 415);
  // someone else's list
  assert.equal((await api('POST', '/api/v1/messaging/notices', YB, { template: 'medical-insurance-reminder', vars: { year: '2030', deadline: 'x' }, audience: { kind: 'list', listId: up.body.id } })).status, 403);
  const toList = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'list', listId: up.body.id } });
  assert.equal(toList.status, 202);
  await drain();
  const done = (await api('GET', `/api/v1/messaging/notices/${toList.body.id}`, MZ)).body;
  assert.deepEqual([done.status, done.delivered, done.chunks.total], ['done', 31, 1]);
});

test('fan-out: a crash mid-chunk loses that chunk’s transaction only; running again completes it with no duplicate', async () => {
  const rt = getRuntime();
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'segment' } });
  assert.equal(sent.status, 202);
  const id = sent.body.id as number;
  const expected = sent.body.recipients as number;
  assert.ok(expected > 1000, `a few chunks of 100 (${expected} recipients)`);
  // the plan job, by hand (the queued job would do the same); twice: the second is a no-op
  await planFanOut(rt, id);
  await planFanOut(rt, id);
  const chunks = (await q<{ seq: number }>('select seq from messaging.chunk where notice_id = $1 order by seq', [id])).map((r) => r.seq);
  assert.equal(chunks.length, Math.ceil(expected / 100));

  let crashes = 0;
  chunkHooks.beforeCommit = (_n, seq) => {
    if (seq === 2 && crashes++ === 0) throw new Error('simulated kill -9 mid-chunk');
  };
  try {
    for (const seq of chunks) await runChunk(rt, id, seq).catch((err: Error) => assert.match(err.message, /simulated/));
    const mid = (await api('GET', `/api/v1/messaging/notices/${id}`, MZ)).body;
    assert.equal(mid.status, 'sending');
    assert.equal(mid.chunks.done, chunks.length - 1);
    assert.equal(mid.delivered, expected - 100, 'the crashed chunk left nothing behind, the others committed');
    // resume: every chunk again (the done ones are skipped), as the job queue would after the lease
    for (const seq of chunks) await runChunk(rt, id, seq);
    for (const seq of chunks) await runChunk(rt, id, seq);
  } finally {
    chunkHooks.beforeCommit = undefined;
  }
  await drain(); // the queued jobs for the same chunks find them done
  const { n, d } = (await q<{ n: number; d: number }>(`select count(*)::int as n, count(distinct recipient)::int as d from messaging.delivery where notice_id = $1`, [id]))[0]!;
  assert.equal(n, expected);
  assert.equal(d, expected);
  const after = (await api('GET', `/api/v1/messaging/notices/${id}`, MZ)).body;
  assert.deepEqual([after.status, after.total, after.delivered, after.chunks.done], ['done', expected, expected, chunks.length]);

  // through the job queue, three chunks at a time (each finished chunk starts the next)
  rt.config.parallelChunks = 3;
  try {
    const again = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'y' }, audience: { kind: 'segment', minAge: 18 } });
    await planFanOut(rt, again.body.id); // what the plan job does: three chunk jobs queued
    const queued = await q<{ n: number }>(`select count(*)::int as n from platform.job where kind = 'messaging.chunk' and status = 'queued' and payload->>'noticeId' = $1`, [String(again.body.id)]);
    assert.equal(queued[0]!.n, 3);
    await drain();
    const r = (await api('GET', `/api/v1/messaging/notices/${again.body.id}`, MZ)).body;
    assert.deepEqual([r.status, r.delivered, r.chunks.done], ['done', again.body.recipients, r.chunks.total]);
  } finally {
    rt.config.parallelChunks = 1;
  }
});

test('channels: SMS and email through the test doubles when preferences ask and an address is given; retries, then failed with the reason', async () => {
  const db = t.platform.ctx.db;
  const [a, b, c, d] = [residents[20]!, residents[21]!, residents[22]!, residents[23]!];
  for (const p of [a, b, c, d]) await registerCitizen(db, { idNumber: p.id_number, name: p.name, password: 'channel password 1' });
  const prefs = async (p: typeof a, channels: ('mailbox' | 'sms' | 'email')[]) => setPreferences(db, (await findAccountByLogin(db, 'citizen', p.id_number))!.id, { language: null, favouriteServices: [], notificationChannels: channels });
  await prefs(a, ['mailbox', 'sms', 'email']);
  await prefs(b, ['mailbox', 'sms', 'email']);
  await prefs(c, ['mailbox', 'sms']); // asks for SMS, gives no number
  await prefs(d, ['mailbox']); // gives a number, asks for nothing
  const contact = async (p: typeof a, body: object) => assert.equal((await api('PUT', '/api/v1/messaging/contact', citizen(p.id_number), body)).status, 200);
  await contact(a, { phone: '13812345678', email: 'a@example.test' });
  await contact(b, { phone: '13900000000', email: 'fail@example.test' }); // the doubles refuse these
  await contact(d, { phone: '13700001111', email: null });
  assert.equal((await api('PUT', '/api/v1/messaging/contact', citizen(a.id_number), { phone: '12345', email: null })).status, 400);
  assert.deepEqual((await api('GET', '/api/v1/messaging/contact', citizen(a.id_number))).body, { phone: '13812345678', email: 'a@example.test' });

  testOutbox.length = 0;
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: '2030年1月1日' }, audience: { kind: 'list', recipients: [a, b, c, d].map((p) => p.id_number) } });
  assert.equal(sent.status, 202);
  await drain();
  const n = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}`, MZ)).body;
  assert.equal(n.status, 'done');
  assert.deepEqual(n.byChannel.mailbox, { total: 4, queued: 0, delivered: 4, read: 0, failed: 0 });
  assert.deepEqual(n.byChannel.sms, { total: 2, queued: 0, delivered: 1, read: 0, failed: 1 });
  assert.deepEqual(n.byChannel.email, { total: 2, queued: 0, delivered: 1, read: 0, failed: 1 });
  assert.deepEqual([n.total, n.delivered, n.failed, n.queued], [8, 6, 2, 0]);
  // the doubles got a's messages, personalised
  const mine = testOutbox.filter((m) => m.noticeId === sent.body.id);
  const sms = mine.filter((m) => m.channel === 'sms');
  const email = mine.filter((m) => m.channel === 'email');
  assert.deepEqual(sms.map((m) => m.address), ['13812345678']);
  assert.deepEqual(email.map((m) => m.address), ['a@example.test']);
  assert.ok(sms[0]!.text.includes(a.name) && sms[0]!.text.includes('2030年1月1日'), sms[0]!.text);
  assert.match(email[0]!.html!, /<p>尊敬的/);
  // b: three attempts each, then failed with the double's reason
  const failed = await q<{ channel: string; attempts: number; last_error: string; status: string }>(`select channel, attempts, last_error, status from messaging.delivery where notice_id = $1 and recipient = $2 and channel <> 'mailbox' order by channel`, [sent.body.id, `p:${b.id_number}`]);
  assert.deepEqual(failed.map((f) => [f.channel, f.status, f.attempts]), [['email', 'failed', 3], ['sms', 'failed', 3]]);
  assert.match(failed[0]!.last_error, /test double/);
  const listed = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}/deliveries?channel=sms`, MZ)).body.items;
  assert.deepEqual(listed.map((x: { status: string }) => x.status).sort(), ['delivered', 'failed']);
});

test('read: opening a message marks it read once; another person cannot open it', async () => {
  const who = residents[30]!;
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: who.id_number } });
  const me = citizen(who.id_number);
  const before = (await api('GET', '/api/v1/messaging/mailbox', me)).body;
  assert.ok(before.unread >= 1);
  const open = await api('GET', `/api/v1/messaging/mailbox/${sent.body.id}`, me);
  assert.equal(open.status, 200);
  assert.equal(open.body.status, 'read');
  assert.ok(open.body.readAt);
  assert.ok(open.body.text.includes(who.name), 'personalised from the registry');
  await api('GET', `/api/v1/messaging/mailbox/${sent.body.id}`, me);
  const n = (await api('GET', `/api/v1/messaging/notices/${sent.body.id}`, MZ)).body;
  assert.deepEqual([n.read, n.delivered], [1, 1]);
  assert.equal((await api('GET', '/api/v1/messaging/mailbox', me)).body.unread, before.unread - 1);
  assert.equal((await api('GET', `/api/v1/messaging/mailbox/${sent.body.id}`, citizen(residents[31]!.id_number))).status, 404);
  assert.equal((await api('GET', `/api/v1/messaging/notices/${sent.body.id}/deliveries?status=read`, MZ)).body.items.length, 1);
});

test('rate limits per department: notices per hour, recipients per day; 429 with Retry-After', async () => {
  const JT = sender('SZ-JT');
  const tpl = await api('POST', '/api/v1/messaging/templates', JT, { key: 'traffic-notice', name: { zh: '交通通知' }, subject: { zh: '交通通知' }, body: { zh: '{{name}}：道路施工。' } });
  assert.equal(tpl.status, 201);
  const one = { template: 'traffic-notice', audience: { kind: 'person', idNumber: residents[0]!.id_number } };
  for (let i = 0; i < 40; i++) assert.equal((await api('POST', '/api/v1/messaging/notices', JT, one)).status, 202, `notice ${i + 1}`);
  const refused = await api('POST', '/api/v1/messaging/notices', JT, one);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.type, '/problems/rate-limited');
  const retry = Number(refused.headers.get('retry-after'));
  assert.ok(retry > 3000 && retry <= 3600, `Retry-After ${retry}`);
  // another department is not affected
  assert.equal((await api('POST', '/api/v1/messaging/notices', YB, { template: 'medical-insurance-reminder', vars: { year: '2030', deadline: 'x' }, audience: { kind: 'person', idNumber: residents[0]!.id_number } })).status, 202);
  // recipients per day
  const rt = getRuntime();
  const saved = rt.config.recipientsPerDay;
  rt.config.recipientsPerDay = 10;
  try {
    const big = await api('POST', '/api/v1/messaging/notices', YB, { template: 'medical-insurance-reminder', vars: { year: '2030', deadline: 'x' }, audience: { kind: 'segment' } });
    assert.equal(big.status, 429);
    assert.match(big.body.detail, /recipients/);
    assert.ok(Number(big.headers.get('retry-after')) > 0);
  } finally {
    rt.config.recipientsPerDay = saved;
  }
});

test('permissions: departments see only their own notices, mailboxes only their owner, sending needs the role', async () => {
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: residents[2]!.id_number } });
  const id = sent.body.id;
  assert.equal((await api('GET', `/api/v1/messaging/notices/${id}`, YB)).status, 403);
  assert.equal((await api('GET', `/api/v1/messaging/notices/${id}/deliveries`, YB)).status, 403);
  assert.equal((await api('GET', `/api/v1/messaging/notices/${id}`, sender('SZ-MZ', []))).status, 200, 'staff of the department without the role may look');
  assert.equal((await api('GET', `/api/v1/messaging/notices/${id}`, null)).status, 401);
  assert.equal((await api('GET', '/api/v1/messaging/mailbox', null)).status, 401);
  assert.equal((await api('GET', '/api/v1/messaging/notices', citizen(residents[2]!.id_number))).status, 403);
  const body = { template: 'elderly-allowance-reminder', vars: { deadline: 'x' }, audience: { kind: 'person', idNumber: residents[2]!.id_number } };
  assert.equal((await api('POST', '/api/v1/messaging/notices', citizen(residents[2]!.id_number), body)).status, 403, 'a citizen cannot send');
  assert.equal((await api('POST', '/api/v1/messaging/notices', null, body)).status, 401);
  assert.equal((await api('POST', '/api/v1/messaging/notices', sender('SZ-MZ', []), body)).status, 403, 'staff without the role cannot send');
  assert.equal((await api('POST', '/api/v1/messaging/notices', sender('SZ-MZ', [{ role: 'notice-sender', scope: 'SZ-YB' }]), body)).status, 403, 'a grant for another department does not send for one’s own');
  assert.equal((await api('POST', '/api/v1/messaging/notices', { kind: 'system', id: 'mz-system', department: 'SZ-MZ' }, body)).status, 202, 'the department’s own system may send');
  // the department's list shows only its own
  const list = (await api('GET', '/api/v1/messaging/notices?limit=100', YB)).body.items as { department: string }[];
  assert.ok(list.length > 0 && list.every((n) => n.department === 'SZ-YB'));
  // the audit log has every send
  const { rows } = await t.platform.ctx.db.query(`select count(*)::int as n from audit.entry where action = 'messaging.notice.send' and resource_id = $1`, [String(id)]);
  assert.equal(rows[0]!.n, 1);
});

test('hostile input: oversized bodies, markup and SQL-ish text are kept as text and rendered escaped', async () => {
  const key = 'hostile-test';
  const created = await api('POST', '/api/v1/messaging/templates', MZ, {
    key,
    name: { zh: '<b>名称</b>' },
    subject: { zh: '<script>alert(1)</script>{{name}}' },
    body: { zh: '<img src=x onerror=alert(1)> {{what}}\n\n第二段 & "引号"' },
    variables: ['what'],
  });
  assert.equal(created.status, 201);
  const who = residents[40]!;
  const sqlish = "'; drop table messaging.delivery; -- <script>";
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: key, vars: { what: sqlish }, audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(sent.status, 202);
  const open = (await api('GET', `/api/v1/messaging/mailbox/${sent.body.id}`, citizen(who.id_number))).body;
  assert.equal(open.text.split('\n')[0], `<img src=x onerror=alert(1)> ${sqlish}`, 'the text is kept as typed');
  assert.ok(!/<img|<script/.test(open.html), open.html);
  assert.match(open.html, /&lt;img src=x onerror=alert\(1\)&gt; &#39;; drop table messaging\.delivery; -- &lt;script&gt;/);
  assert.match(open.html, /<\/p>\n<p>第二段 &amp; &quot;引号&quot;<\/p>/);
  const page = await fetch(`${t.url}/me/mailbox/${sent.body.id}`, { headers: { 'x-test-actor': JSON.stringify(citizen(who.id_number)), accept: 'text/html' } });
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.ok(!html.includes('<script>alert') && !html.includes('<img src=x'), 'nothing of the notice becomes markup');
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  const { rows } = await t.platform.ctx.db.query(`select count(*)::int as n from messaging.delivery`);
  assert.ok(rows[0]!.n > 0, 'the table is still there');

  const big = await api('POST', '/api/v1/messaging/notices', MZ, JSON.stringify({ template: key, vars: { what: 'x'.repeat(2 * 1024 * 1024) }, audience: { kind: 'person', idNumber: who.id_number } }), { 'content-type': 'application/json' });
  assert.equal(big.status, 413);
  const longVar = await api('POST', '/api/v1/messaging/notices', MZ, { template: key, vars: { what: 'x'.repeat(501) }, audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(longVar.status, 400);
  const newline = await api('POST', '/api/v1/messaging/notices', MZ, { template: key, vars: { what: 'a\nb' }, audience: { kind: 'person', idNumber: who.id_number } });
  assert.equal(newline.status, 400);
  const extra = await api('POST', '/api/v1/messaging/notices', MZ, { template: key, vars: { what: 'x' }, audience: { kind: 'person', idNumber: who.id_number }, department: 'SZ-YB' });
  assert.equal(extra.status, 400, 'no sending in another department’s name through an extra field');
  const wrongKind = await api('POST', '/api/v1/messaging/notices', MZ, { template: key, vars: { what: 'x' }, audience: { kind: 'everyone' } });
  assert.equal(wrongKind.status, 400);
  assert.equal((await api('GET', '/api/v1/messaging/notices/99999999', MZ)).status, 404);
  assert.equal((await api('GET', '/api/v1/messaging/notices/1%20or%201=1', MZ)).status, 400);
  assert.equal((await api('GET', '/api/v1/messaging/mailbox/abc', citizen(who.id_number))).status, 400);
});

test('sendNotice: inside the caller’s transaction (rolled back with it), to staff, ad-hoc texts, bad input refused', async () => {
  const db = t.platform.ctx.db;
  const { account } = await createStaffAccount(db, { username: 'msg.staff', name: '任务人', department: 'SZ-GA', post: '科员', password: 'a long staff password 1' });
  await assert.rejects(
    db.tx(async (c) => {
      await sendNotice(c, { from: { department: 'SZ-GA', system: 'workflow' }, to: { staffAccountId: account.id }, subject: '任务 {{task}} 即将超时', body: '{{name}}：任务 {{task}} 将于 {{due}} 超时。', vars: { task: 'T-1', due: '明天' } });
      throw new Error('the caller’s transaction fails');
    }),
    /fails/,
  );
  assert.equal((await q(`select 1 from messaging.delivery where recipient = $1`, [`s:${account.id}`])).length, 0, 'rolled back with the caller');
  const sent = await db.tx((c) =>
    sendNotice(c, { from: { department: 'SZ-GA', system: 'workflow' }, to: { staffAccountId: account.id }, subject: { zh: '任务 {{task}} 即将超时', en: 'Task {{task}} is due soon' }, body: '{{name}}：任务 {{task}} 将于 {{due}} 超时。', vars: { task: 'T-1', due: '明天' } }),
  );
  assert.equal(sent.status, 'done');
  const staff: Actor = { kind: 'staff', accountId: account.id, name: '任务人', department: 'SZ-GA', post: '科员', roles: [] };
  const box = (await api('GET', '/api/v1/messaging/mailbox?lang=en', { ...staff, name: 'x', post: 'x' })).body;
  assert.equal(box.items[0].subject, 'Task T-1 is due soon');
  const msg = (await api('GET', `/api/v1/messaging/mailbox/${sent.id}`, { ...staff, name: 'x', post: 'x' })).body;
  assert.equal(msg.text, '任务人：任务 T-1 将于 明天 超时。');
  // several recipients, one unknown: recorded as failed
  const many = await db.tx((c) => sendNotice(c, { from: { department: 'SZ-YB' }, to: [{ idNumber: residents[1]!.id_number }, { idNumber: makeIdNumber('320508', '19800101', '994') }], template: 'medical-insurance-reminder', vars: { year: '2030', deadline: 'x' } }));
  const n = await q<{ delivered: number; failed: number }>('select delivered, failed from messaging.notice where id = $1', [many.id]);
  assert.deepEqual(n[0], { delivered: 1, failed: 1 });
  await assert.rejects(db.tx((c) => sendNotice(c, { from: { department: 'SZ-NOPE' }, to: { idNumber: residents[1]!.id_number }, subject: 'x', body: 'y' })), NoticeInputError);
  await assert.rejects(db.tx((c) => sendNotice(c, { from: { department: 'SZ-GA' }, to: { idNumber: residents[1]!.id_number }, subject: 'x', body: '{{oops}}' })), /oops/);
  await assert.rejects(db.tx((c) => sendNotice(c, { from: { department: 'SZ-GA' }, to: { idNumber: '123' }, subject: 'x', body: 'y' })), NoticeInputError);
});

test('pages: the mailbox after a real sign-in (unread marker, read, contact form with CSRF), and the console’s compose, progress and templates', async () => {
  const db = t.platform.ctx.db;
  const who = residents[45]!;
  await registerCitizen(db, { idNumber: who.id_number, name: who.name, password: 'mailbox password 1' });
  const sent = await api('POST', '/api/v1/messaging/notices', MZ, { template: 'elderly-allowance-reminder', vars: { deadline: '下周五' }, audience: { kind: 'person', idNumber: who.id_number } });
  const browser = new Browser();
  const { res, url } = await browser.follow(`${t.url}/auth/login?back=/me/mailbox`, t.url);
  const login = await res.text();
  const post = await browser.post(`${url}/citizen`, { _csrf: csrfOf(login), idNumber: who.id_number, password: 'mailbox password 1' });
  assert.equal(post.status, 303);
  const landed = await browser.follow(new URL(post.headers.get('location')!, url).href, t.url);
  assert.equal(new URL(landed.url).pathname, '/me/mailbox');
  const list = await landed.res.text();
  assert.match(list, /<h1>我的信箱<\/h1>/);
  assert.match(list, new RegExp(`href="/me/mailbox/${sent.body.id}"><strong>高龄津贴申领提醒</strong>`));
  assert.match(list, /badge-problem">未读/);
  const msg = await (await browser.fetch(`${t.url}/me/mailbox/${sent.body.id}`)).text();
  assert.match(msg, new RegExp(`尊敬的${who.name}`));
  assert.match(msg, /下周五/);
  const again = await (await browser.fetch(`${t.url}/me/mailbox`)).text();
  assert.doesNotMatch(again, new RegExp(`href="/me/mailbox/${sent.body.id}"><strong>`));
  // the contact form: refused without its token, saved with it
  const form = await (await browser.fetch(`${t.url}/me/mailbox/contact`)).text();
  assert.equal((await browser.post(`${t.url}/me/mailbox/contact`, { phone: '13812345678', email: '' })).status, 403);
  assert.equal((await browser.post(`${t.url}/me/mailbox/contact`, { _csrf: csrfOf(form), phone: '138 1234 5678', email: 'me@example.test' })).status, 303);
  assert.deepEqual((await (await browser.fetch(`${t.url}/api/v1/messaging/contact`, { headers: { accept: 'application/json' } })).json()), { phone: '13812345678', email: 'me@example.test' });
  const badForm = await browser.post(`${t.url}/me/mailbox/contact`, { _csrf: csrfOf(form), phone: '<script>', email: '' });
  assert.equal(badForm.status, 400);
  assert.ok(!(await badForm.text()).includes('value="<script>'));

  // the console, as a notice sender of 市民政局 (header actor)
  const page = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${t.url}${path}`, { ...init, redirect: 'manual', headers: { accept: 'text/html', 'x-test-actor': JSON.stringify(MZ), ...(init.headers ?? {}) } });
    return { status: r.status, text: await r.text(), location: r.headers.get('location') };
  };
  const form2 = (fields: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const compose = await page('/console/notices/new?template=elderly-allowance-reminder');
  assert.equal(compose.status, 200);
  assert.match(compose.text, /name="var_deadline"/);
  const fields = { template: 'elderly-allowance-reminder', kind: 'segment', division: STREET, minAge: '60', var_deadline: '月底' };
  const counted = await page('/console/notices/new', form2({ ...fields, do: 'count' }));
  assert.equal(counted.status, 200);
  const expected = (await q<{ n: number }>(`select count(*)::int as n from population.person where street_code = $1 and birth_date <= ($2::date - interval '60 years')::date`, [STREET, today]))[0]!.n;
  assert.match(counted.text, new RegExp(`符合条件的收件人：${expected.toLocaleString('zh-CN')}`));
  const badCode = await page('/console/notices/new', form2({ ...fields, kind: 'person', code: '12345', do: 'send' }));
  assert.equal(badCode.status, 400);
  assert.match(badCode.text, /无法发送/);
  const go = await page('/console/notices/new', form2({ ...fields, do: 'send' }));
  assert.equal(go.status, 303);
  const detail = await page(go.location!);
  assert.equal(detail.status, 200);
  assert.match(detail.text, /<progress max="100" value="0"/);
  assert.match(detail.text, /排队中/);
  await drain();
  const doneDetail = await page(go.location!);
  assert.match(doneDetail.text, /<progress max="100" value="100"/);
  assert.match(doneDetail.text, /已完成/);
  const listPage = await page('/console/notices');
  assert.match(listPage.text, new RegExp(`href="${go.location}"`));
  const tpl = await page('/console/notices/templates', form2({ key: 'page-template', nameZh: '页面模板', subjectZh: '主题 {{name}}', bodyZh: '正文 {{bad}}' }));
  assert.equal(tpl.status, 400);
  assert.match(tpl.text, /bad/);
  const okTpl = await page('/console/notices/templates', form2({ key: 'page-template', nameZh: '页面模板', subjectZh: '主题 {{name}}', bodyZh: '正文 {{when}}', variables: 'when' }));
  assert.equal(okTpl.status, 303);
  assert.match((await page(okTpl.location!)).text, /已保存模板 page-template 第 1 版/);
  assert.equal((await page(`/console/notices/${sent.body.id}`, { headers: { 'x-test-actor': JSON.stringify(YB) } })).status, 403);
});
