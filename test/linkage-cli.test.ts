// `gusu link`: the CLI over CSV files, its usage errors (exit 2) and malformed or hostile input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { UsageError } from '../src/module.ts';
import { linkCommand, runLink } from '../src/base/registries/linkage/index.ts';
import { MODULES } from '../src/modules.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-link-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: string | Buffer) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, body);
  return f;
};

function gusu(args: string[]) {
  return spawnSync(process.execPath, ['bin/gusu.js', 'link', ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' }, timeout: 120_000 });
}

const MAPPING = { id: 'id', fields: { full_name: '姓名', birth_date: '出生日期', address: ['地址1', '地址2'], phone: 'phone', 'extra.note': 'note' } };
const mapping = file('m.json', JSON.stringify(MAPPING));
// BOM, CRLF, quoted fields with commas, quotes and a line break; Chinese variants of the same people
const PEOPLE = '\uFEFFid,姓名,出生日期,地址1,地址2,phone,note\r\n' +
  '1,张伟,1985-03-12,苏州市姑苏区,人民路100号,13912345678,"a ""quoted"", note"\r\n' +
  '2,張偉,1985-12-03,姑苏区,人民路100号,,\r\n' +
  '3,李娜,1990-07-01,苏州市吴中区,"东环路1号,\r\n2幢",13800000001,\r\n' +
  '4,Li Na,19900701,吴中区东环路1号,2幢,13800000001,\r\n' +
  '5,王芳,1970-01-20,相城区,南门路8号,13700000002,\r\n';
const people = file('people.csv', PEOPLE);

test('the command is registered by the population module', () => {
  const pop = MODULES.find((m) => m.name === 'population')!;
  assert.equal(pop.commands?.link, linkCommand);
});

test('deduplicates one CSV (BOM, CRLF, quoted fields, columns joined) and writes left_id,right_id,score', async () => {
  const out = path.join(dir, 'pairs.csv');
  const logs: string[] = [];
  const { result } = await runLink(['--mapping', mapping, people, '--out', out], (s) => logs.push(s));
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'left_id,right_id,score');
  const pairs = lines.slice(1).map((l) => l.split(',').slice(0, 2).join('-'));
  assert.ok(pairs.includes('1-2'), lines.join('\n'));
  assert.ok(pairs.includes('3-4'), lines.join('\n'));
  assert.ok(!pairs.some((p) => p.includes('5')));
  for (const l of lines.slice(1)) {
    const score = Number(l.split(',')[2]);
    assert.ok(score >= 0.5 && score <= 1);
  }
  assert.equal(result.stats.records, 5);
  assert.match(logs.join(''), /^deduplicated 5 records: \d+ candidate pairs, \d+ matches/);
});

test('links two CSVs, with a mapping per file; --threshold overrides the default', async () => {
  const a = file('a.csv', 'id,name,dob\n1,张伟,1985-03-12\n2,李娜,1990-07-01\n');
  const b = file('b.csv', 'rid,surname,given,birth\nx,Zhang,Wei,1985-03-12\ny,王,芳,1970-01-20\n');
  const m = file('m2.json', JSON.stringify({ id: 'id', fields: { full_name: 'name', birth_date: 'dob' }, right: { id: 'rid', fields: { family_name: 'surname', given_name: 'given', birth_date: 'birth' } } }));
  const out = path.join(dir, 'ab.csv');
  await runLink(['--mapping', m, a, b, '--out', out], () => {});
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  assert.deepEqual(lines.slice(1).map((l) => l.split(',').slice(0, 2).join('-')), ['1-x']);
  await runLink(['--mapping', m, a, b, '--out', out, '--threshold', '1'], () => {});
  assert.equal(fs.readFileSync(out, 'utf8'), 'left_id,right_id,score\n');
});

test('--decisions keeps the review queue in a JSON file and reuses a clerk\'s decisions', async () => {
  const decisions = path.join(dir, 'decisions.json');
  const rows = ['id,姓名,出生日期,地址1,地址2,phone,note'];
  // the same name and birth date, another house number in the same street: uncertain
  for (let i = 0; i < 40; i++) rows.push(`${i},某${'甲乙丙丁戊己庚辛壬癸'[i % 10]}${'子丑寅卯辰巳午未申酉'[Math.floor(i / 10)]},19${60 + i}-0${1 + (i % 9)}-1${i % 10},苏州市,路${i}号,,`);
  rows.push('t1,赵敏,1980-05-05,苏州市姑苏区,人民路1号,,', 't2,赵敏,1980-05-05,苏州市姑苏区,人民路3号,,');
  const f = file('twins.csv', rows.join('\n') + '\n');
  const out = path.join(dir, 'twins-pairs.csv');
  const first = await runLink(['--mapping', mapping, f, '--out', out, '--decisions', decisions], () => {});
  const saved = JSON.parse(fs.readFileSync(decisions, 'utf8'));
  const pending = saved.pending.find((p: { left: string; right: string }) => p.left === 't1' && p.right === 't2');
  assert.ok(pending, JSON.stringify(saved));
  assert.equal(pending.decision, null);
  assert.ok(first.result.review.length >= 1);
  pending.decision = 'match';
  fs.writeFileSync(decisions, JSON.stringify(saved));
  const second = await runLink(['--mapping', mapping, f, '--out', out, '--decisions', decisions], () => {});
  assert.equal(second.result.matches.find((m) => m.left === 't1')?.basis, 'clerical');
  assert.match(fs.readFileSync(out, 'utf8'), /^t1,t2,/m);
  const after = JSON.parse(fs.readFileSync(decisions, 'utf8'));
  assert.equal(after.decisions[pending.key].decision, 'match');
  assert.ok(!after.pending.some((p: { key: string }) => p.key === pending.key));
});

const usage = async (args: string[], message: RegExp) => {
  await assert.rejects(runLink(args, () => {}), (err: Error) => err instanceof UsageError && message.test(err.message));
};

test('usage problems are UsageErrors naming the problem', async () => {
  const out = path.join(dir, 'x.csv');
  await usage([people, '--out', out], /--mapping MAPPING.json is required/);
  await usage(['--mapping', mapping, people], /--out PAIRS.csv is required/);
  await usage(['--mapping', mapping, '--out', out], /expects one CSV file .* or two/);
  await usage(['--mapping', mapping, people, people, people, '--out', out], /got 3/);
  await usage(['--mapping', mapping, path.join(dir, 'nope.csv'), '--out', out], /nope\.csv not found/);
  await usage(['--mapping', path.join(dir, 'nope.json'), people, '--out', out], /mapping .* not found/);
  await usage(['--mapping', file('bad.json', '{"id": "id", "fields": '), people, '--out', out], /is not valid JSON/);
  await usage(['--mapping', file('unk.json', JSON.stringify({ id: 'id', fields: { nickname: '姓名' } })), people, '--out', out], /unknown field "nickname"; expected one of given_name, family_name/);
  await usage(['--mapping', file('col.json', JSON.stringify({ id: 'id', fields: { full_name: 'name' } })), people, '--out', out], /names column "name", which the header does not have/);
  await usage(['--mapping', file('noid.json', JSON.stringify({ fields: { full_name: '姓名' } })), people, '--out', out], /"id" must name the record-id column/);
  await usage(['--mapping', file('arr.json', '[]'), people, '--out', out], /expected an object/);
  await usage(['--mapping', mapping, people, '--out', out, '--threshold', '1.5'], /--threshold expects a probability/);
  await usage(['--mapping', mapping, people, '--out', out, '--threshold', 'high'], /--threshold expects a probability/);
  await usage(['--mapping', mapping, people, '--out', out, '--frobnicate'], /Unknown option/);
  await usage(['--mapping', mapping, people, '--out', out, '--decisions', file('dec.json', '{"decisions": 3}')], /"decisions" must be an object/);
});

test('malformed and hostile input: empty, header only, a 10 MB line, binary junk, duplicate and empty ids', async () => {
  const out = path.join(dir, 'h.csv');
  await usage(['--mapping', mapping, file('empty.csv', ''), '--out', out], /is empty: expected a header row/);
  await usage(['--mapping', mapping, file('blank.csv', '\n\r\n\n'), '--out', out], /is empty: expected a header row/);
  // a header and no records: nothing to link, an empty result
  await runLink(['--mapping', mapping, file('header.csv', 'id,姓名,出生日期,地址1,地址2,phone,note\r\n'), '--out', out], () => {});
  assert.equal(fs.readFileSync(out, 'utf8'), 'left_id,right_id,score\n');
  const huge = 'id,姓名,出生日期,地址1,地址2,phone,note\n1,' + 'x'.repeat(10 * 1024 * 1024) + ',1985-01-01,a,b,1,\n';
  await usage(['--mapping', mapping, file('huge.csv', huge), '--out', out], /not a readable CSV/);
  const junk = Buffer.alloc(64 * 1024);
  let seed = 1;
  for (let i = 0; i < junk.length; i++) junk[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  await usage(['--mapping', mapping, file('junk.bin', junk), '--out', out], /junk\.bin: (not a readable CSV|the mapping names column)/);
  await usage(['--mapping', mapping, file('dup.csv', 'id,姓名,出生日期,地址1,地址2,phone,note\n1,a,,,,,\n1,b,,,,,\n'), '--out', out], /line 3: record id "1" appears twice/);
  await usage(['--mapping', mapping, file('noid.csv', 'id,姓名,出生日期,地址1,地址2,phone,note\n,a,,,,,\n'), '--out', out], /empty record id/);
  // unbalanced quote
  await usage(['--mapping', mapping, file('quote.csv', 'id,姓名,出生日期,地址1,地址2,phone,note\n1,"张伟,1985\n'), '--out', out], /not a readable CSV/);
  // short rows and control characters are data, not errors
  await runLink(['--mapping', mapping, file('short.csv', 'id,姓名,出生日期,地址1,地址2,phone,note\n1,张伟\n2,张伟\u0007\u202e,1985-01-01\n'), '--out', out], () => {});
  assert.ok(fs.readFileSync(out, 'utf8').startsWith('left_id,right_id,score\n'));
});

test('through bin/gusu.js: a match file, a usage error exits 2 with the usage, the refused are listed', () => {
  const out = path.join(dir, 'spawned.csv');
  const ok = gusu(['--mapping', mapping, people, '--out', out]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(fs.readFileSync(out, 'utf8'), /^1,2,/m);
  const bad = gusu(['--mapping', mapping, path.join(dir, 'missing.csv'), '--out', out]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^gusu link: .*missing\.csv not found\nusage: gusu link --mapping/);
  const ids = file('ids.csv', 'id,姓名,身份证\n1,张伟,320508198503121235\n2,张伟,11010519491231002X\n');
  const m = file('ids.json', JSON.stringify({ id: 'id', fields: { full_name: '姓名', id_number: '身份证' } }));
  const r = gusu(['--mapping', m, ids, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /1 refused\b.*\n  refused left record "1": id_number "320508198503121235": check digit mismatch/s);
});
