// The record-linkage engine: comparators, Chinese name/date/address variants, EM estimation, the
// ID-number path and the clerical review store (src/base/registries/linkage).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as OpenCC from 'opencc-js';
import { pinyin } from 'pinyin-pro';
import { makeIdNumber } from '../src/base/codes/index.ts';
import {
  COMPARATORS, JsonFileReviewStore, MemoryReviewStore, addressTokens, damerau, jaroWinkler, levenshtein, link, parseDate, scorePairs, soundTokens,
  type LinkRecord, type Model,
} from '../src/base/registries/linkage/index.ts';
import { withinOneEdit } from '../src/base/registries/linkage/strings.ts';

const level = (kind: keyof typeof COMPARATORS, field: string, a: string, b: string) => {
  const c = COMPARATORS[kind];
  const fa = c.prepare(a, field);
  const fb = c.prepare(b, field);
  assert.ok(fa && fb, `prepared ${a} / ${b}`);
  return c.levels[c.compare(fa, fb)];
};

test('string similarities: Jaro-Winkler, Levenshtein, Damerau, one edit', () => {
  assert.equal(jaroWinkler('MARTHA', 'MARHTA').toFixed(4), '0.9611');
  assert.equal(jaroWinkler('DIXON', 'DICKSONX').toFixed(4), '0.8133');
  assert.equal(jaroWinkler('', ''), 1);
  assert.equal(jaroWinkler('abc', ''), 0);
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(levenshtein('kitten', 'sitting', 1), 2); // stops past the limit
  assert.equal(damerau('ca', 'ac'), 1);
  assert.equal(levenshtein('ca', 'ac'), 2);
  assert.equal(damerau('19850312', '19850321'), 1);
  for (const [a, b, ok] of [['abc', 'abc', true], ['abc', 'abd', true], ['abc', 'acb', true], ['abc', 'ab', true], ['abc', 'xabc', true], ['abc', 'cab', false], ['abcd', 'abdc', true], ['abcd', 'badc', false], ['张伟', '张玮', true]] as const) {
    assert.equal(withinOneEdit(a, b), ok, `${a} ${b}`);
    assert.equal(damerau(a, b) <= 1, ok, `damerau ${a} ${b}`);
  }
});

test('Chinese names: traditional, homophone, transposed and pinyin variants each have their level', () => {
  assert.deepEqual(soundTokens('张伟'), ['zhang', 'wei']);
  assert.deepEqual(soundTokens('單偉'.normalize(), true).length, 2);
  assert.equal(level('name', 'full_name', '张伟', '張偉'), 'exact'); // traditional = simplified
  assert.equal(level('name', 'full_name', '张伟', '张玮'), 'same pinyin or spelling'); // homophone: zhang wei
  assert.equal(level('name', 'full_name', '张伟', 'Zhang Wei'), 'same pinyin or spelling');
  assert.equal(level('name', 'full_name', '张伟', 'ZHANG  wei'), 'same pinyin or spelling');
  assert.equal(level('name', 'full_name', '张伟', '伟张'), 'transposed');
  assert.equal(level('name', 'full_name', '张伟', 'Wei Zhang'), 'transposed');
  assert.equal(level('name', 'full_name', '张伟', '李娜'), 'else');
  assert.equal(level('name', 'given_name', 'jonathan', 'jonathon'), 'jaro-winkler >= 0.92');
});

test('dates: swapped day and month, one-digit typos and nearby days; several formats', () => {
  assert.deepEqual(parseDate('1985年3月12日'), parseDate('1985-03-12'));
  assert.deepEqual(parseDate('19850312'), parseDate('1985/3/12'));
  assert.ok(Number.isNaN(parseDate('19851312')!.day));
  assert.equal(level('date', 'birth_date', '1985-03-12', '19850312'), 'exact');
  assert.equal(level('date', 'birth_date', '1985-03-12', '1985-12-03'), 'day and month swapped');
  assert.equal(level('date', 'birth_date', '1985-03-12', '1985-03-13'), 'damerau-levenshtein <= 1');
  assert.equal(level('date', 'birth_date', '1985-03-12', '1986-03-12'), 'damerau-levenshtein <= 1');
  assert.equal(level('date', 'birth_date', '1985-03-12', '1985-13-12'), 'damerau-levenshtein <= 1'); // not a date, one digit off
  assert.equal(level('date', 'birth_date', '1985-03-12', '1985-03-30'), 'within 31 days');
  assert.equal(level('date', 'birth_date', '1985-03-12', '1990-07-01'), 'within 10 years');
});

test('Chinese addresses: a dropped city or district and Chinese numerals still agree; another house number does not', () => {
  assert.deepEqual(addressTokens('苏州市姑苏区人民路100号'), ['苏州市', '姑苏区', '人民路', '100号']);
  assert.deepEqual(addressTokens('人民路一百号'), ['人民路', '100号']);
  for (const n of [1, 10, 12, 20, 100, 105, 110, 230, 299]) assert.deepEqual(addressTokens(`石路${chineseNumeral(n)}号`), ['石路', `${n}号`]);
  assert.deepEqual(addressTokens('十全街12号'), ['十全街', '12号']); // a numeral in a street name stays
  assert.equal(level('address', 'address', '苏州市姑苏区人民路100号', '蘇州市姑蘇區人民路100號'), 'exact');
  assert.equal(level('address', 'address', '苏州市姑苏区人民路100号', '姑苏区人民路100号'), 'tokens of one within the other');
  assert.equal(level('address', 'address', '苏州市姑苏区人民路100号', '人民路一百号'), 'tokens of one within the other');
  assert.equal(level('address', 'address', '姑苏区人民路100号', '人民路一百号'), 'tokens of one within the other');
  assert.notEqual(level('address', 'address', '人民路100号', '人民路102号'), 'tokens of one within the other');
  assert.equal(level('address', 'address', '12 pridham street milton', '12 pridhamm street milton'), 'tokens within the other, allowing typos');
});

// --- a synthetic Chinese population with variant duplicates --------------------------------------

function rng(seed: number) {
  return () => {
    let t = (seed = (seed + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SURNAMES = ['张', '王', '李', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙', '马', '朱', '胡', '郭', '何', '林', '罗', '高'];
const GIVEN = ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '娟', '涛', '明', '超', '秀英', '霞', '平', '刚', '桂英', '建华', '文', '华', '红', '志强', '玉兰', '海燕', '晓东'];
const HOMOPHONE: Record<string, string> = { 伟: '玮', 芳: '方', 丽: '莉', 静: '敬', 敏: '闽', 明: '铭', 华: '桦', 红: '虹', 杰: '洁', 涛: '韬', 军: '君', 平: '萍', 强: '蔷', 超: '潮' };
const STREETS = ['人民路', '干将路', '十全街', '观前街', '平江路', '东环路', '南门路', '金鸡湖大道', '石路', '三香路'];
const DISTRICTS = ['姑苏区', '吴中区', '相城区', '虎丘区', '吴江区'];
const toTraditional = OpenCC.Converter({ from: 'cn', to: 'tw' });
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

interface Person { name: string; birth: string; district: string; street: string; number: number; phone: string; sex: string }

function population(n: number, dups: number, seed = 7) {
  const r = rng(seed);
  const pick = <T,>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const people: Person[] = [];
  for (let i = 0; i < n; i++) {
    const y = 1950 + Math.floor(r() * 55), m = 1 + Math.floor(r() * 12), d = 1 + Math.floor(r() * 28);
    people.push({
      name: pick(SURNAMES) + pick(GIVEN), birth: `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`,
      district: pick(DISTRICTS), street: pick(STREETS), number: 1 + Math.floor(r() * 300), phone: `1${3 + Math.floor(r() * 6)}${String(Math.floor(r() * 1e9)).padStart(9, '0')}`, sex: r() < 0.5 ? '男' : '女',
    });
  }
  const records: LinkRecord[] = [];
  const truth = new Map<string, number>();
  const add = (p: Person, idx: number, id: string, over: Partial<Record<string, string>> = {}) => {
    const fields: Record<string, string> = { full_name: p.name, birth_date: p.birth, sex: p.sex, address: `苏州市${p.district}${p.street}${p.number}号`, phone: p.phone, ...over };
    for (const k of Object.keys(fields)) if (fields[k] === '') delete fields[k];
    records.push({ id, fields });
    truth.set(id, idx);
  };
  people.forEach((p, i) => add(p, i, `p${i}`));
  const variants = ['traditional', 'homophone', 'transposed', 'pinyin', 'swap-date', 'typo-date', 'short-address', 'numeral-address'] as const;
  for (let k = 0; k < dups; k++) {
    const i = Math.floor(r() * n);
    const p = people[i]!;
    const v = variants[k % variants.length]!;
    const over: Record<string, string> = {};
    const given = p.name.slice(1);
    if (v === 'traditional') over.full_name = toTraditional(p.name);
    if (v === 'homophone') over.full_name = p.name[0] + [...given].map((c) => HOMOPHONE[c] ?? c).join('');
    if (v === 'transposed') over.full_name = given + p.name[0];
    if (v === 'pinyin') over.full_name = `${cap(pinyin(p.name[0]!, { toneType: 'none', surname: 'head' }))} ${cap(pinyin(given, { toneType: 'none' }).replace(/ /g, ''))}`;
    if (v === 'swap-date') over.birth_date = `${p.birth.slice(0, 4)}-${p.birth.slice(8, 10)}-${p.birth.slice(5, 7)}`;
    if (v === 'typo-date') over.birth_date = p.birth.slice(0, 9) + String((Number(p.birth[9]) + 1) % 10);
    if (v === 'short-address') over.address = `${p.district}${p.street}${p.number}号`;
    if (v === 'numeral-address') over.address = `${p.street}${chineseNumeral(p.number)}号`;
    if (r() < 0.4) over.phone = '';
    add(p, i, `d${k}`, over);
  }
  return { records, truth };
}

const DIGITS = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
/** 1..999 as Chinese numerals: 100 一百, 105 一百零五, 12 十二, 230 二百三十 */
function chineseNumeral(n: number): string {
  const h = Math.floor(n / 100), t = Math.floor((n % 100) / 10), u = n % 10;
  let s = h ? `${DIGITS[h]}百` : '';
  if (t) s += `${h || t > 1 ? DIGITS[t] : ''}十`;
  else if (h && u) s += '零';
  if (u) s += DIGITS[u];
  return s;
}

function pairwise(matches: { left: string; right: string }[], truth: Map<string, number>) {
  const size = new Map<number, number>();
  for (const e of truth.values()) size.set(e, (size.get(e) ?? 0) + 1);
  let truePairs = 0;
  for (const s of size.values()) truePairs += (s * (s - 1)) / 2;
  const tp = matches.filter((m) => truth.get(m.left) === truth.get(m.right)).length;
  return { precision: matches.length ? tp / matches.length : 1, recall: tp / truePairs };
}

test('EM estimates m and u without labels and finds the Chinese variant duplicates', async () => {
  const { records, truth } = population(1500, 240);
  const res = await link({ left: records });
  const byField = new Map(res.model.comparisons.map((c) => [c.field, c]));
  const name = byField.get('full_name')!, date = byField.get('birth_date')!;
  // trained by EM (not the prior), converged, and sensible: agreement far likelier among matches
  assert.ok(name.trainedBy > 0 && date.trainedBy > 0);
  for (const t of res.model.training) assert.ok(t.iterations < 50, `EM on ${t.rule} converged (${t.iterations} iterations)`);
  assert.ok(date.m[1]! > 0.5 && date.u[1]! < 0.01, `birth date exact m=${date.m[1]} u=${date.u[1]}`);
  assert.ok(name.m[1]! > 0.3 && name.m[1]! > name.u[1]! * 20);
  assert.ok(res.model.lambda > 0 && res.model.lambda < 0.01);
  const acc = pairwise(res.matches, truth);
  if (process.env.LINKAGE_VERBOSE) console.log(acc, res.stats);
  assert.ok(acc.precision >= 0.95, `precision ${acc.precision}`);
  assert.ok(acc.recall >= 0.9, `recall ${acc.recall}`);
  // each kind of variant is found
  const found = new Set(res.matches.map((m) => (m.left.startsWith('d') ? m.left : m.right)));
  for (let k = 0; k < 8; k++) assert.ok(found.has(`d${k}`) || found.has(`d${k + 8}`), `variant ${k} found`);
});

test('a model is JSON and scores new records without re-training', async () => {
  const { records } = population(600, 80, 11);
  const first = scorePairs({ left: records });
  const model = JSON.parse(JSON.stringify(first.model)) as Model;
  const again = scorePairs({ left: records }, { model });
  assert.equal(again.stats.pairsCompared, again.stats.candidatePairs); // no u sampling
  assert.deepEqual(again.pairs.map((p) => p.probability), first.pairs.map((p) => p.probability));
});

test('ID numbers link on their own; a failing check digit is refused with the reason', async () => {
  const id1 = makeIdNumber('320508', '19850312', '123');
  const id2 = makeIdNumber('320508', '19850312', '125');
  const bad = id1.slice(0, 17) + (id1[17] === '0' ? '1' : '0');
  const left: LinkRecord[] = [
    { id: 'a1', fields: { full_name: '张伟', id_number: id1 } },
    { id: 'a2', fields: { full_name: '李娜', id_number: id2, birth_date: '1985-03-12' } },
    { id: 'a3', fields: { full_name: '王芳', id_number: bad } },
  ];
  const right: LinkRecord[] = [
    { id: 'b1', fields: { full_name: '王小明', id_number: ` ${id1.toLowerCase()} ` } }, // other name, same ID: a match
    { id: 'b2', fields: { full_name: '李娜', id_number: makeIdNumber('320508', '19850312', '127'), birth_date: '1985-03-12' } }, // same name and date, another ID: not
  ];
  const res = await link({ left, right });
  assert.deepEqual(res.matches.map((m) => [m.left, m.right, m.basis, m.probability]), [['a1', 'b1', 'id-number', 1]]);
  assert.equal(res.refused.length, 1);
  assert.equal(res.refused[0]!.id, 'a3');
  assert.match(res.refused[0]!.reason, /check digit mismatch/);
  // the birth date and sex an ID number carries fill the record where missing
  const dedupe = await link({ left: [{ id: 'x', fields: { full_name: '张伟', id_number: id1 } }, { id: 'y', fields: { full_name: '张伟', birth_date: '1985-03-12', sex: 'M' } }] });
  assert.equal(dedupe.refused.length, 0);
  assert.ok(dedupe.stats.blockingRules.includes('birth_date:exact') && dedupe.stats.candidatePairs === 1);
});

test('clerical review: uncertain pairs are queued, decisions are reused, a changed record re-queues', async () => {
  const { records } = population(600, 80, 5);
  const settings = { review: { lower: 0.2, upper: 1.01 }, clusterThreshold: null };
  const store = new MemoryReviewStore();
  const first = await link({ left: records }, { settings, store });
  assert.ok(first.review.length > 0);
  const [yes, no] = first.review.filter((p) => p.probability >= 0.5);
  assert.ok(yes && no);
  store.put(yes.key, { decision: 'match', by: 'clerk-1', fingerprint: yes.fingerprint });
  store.put(no.key, { decision: 'non-match', by: 'clerk-1', fingerprint: no.fingerprint });
  const second = await link({ left: records }, { settings, store });
  assert.equal(second.matches.find((m) => m.key === yes.key)?.basis, 'clerical');
  assert.equal(second.matches.find((m) => m.key === no.key), undefined);
  assert.ok(!second.review.some((p) => p.key === yes.key || p.key === no.key));
  assert.equal(second.review.length, first.review.length - 2);
  // one of the records changes: the decision no longer holds
  const changed = records.map((r) => (r.id === no.left ? { ...r, fields: { ...r.fields, phone: '13900000000' } } : r));
  const third = await link({ left: changed }, { settings, store });
  assert.equal(third.staleDecisions, 1);
  assert.ok(third.review.some((p) => p.key === no.key));
});

test('the JSON-file review store keeps decisions and reads a clerk\'s answers to pending pairs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-review-'));
  const file = path.join(dir, 'd.json');
  const s = JsonFileReviewStore.load(file); // a new file
  s.put('a:1|a:2', { decision: 'match', by: 'clerk' });
  s.pending = [{ key: 'a:3|a:4', left: '3', right: '4', probability: 0.6, fingerprint: 'f' }];
  s.save();
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(saved.pending[0].decision, null);
  saved.pending[0].decision = 'non-match';
  fs.writeFileSync(file, JSON.stringify(saved));
  const t = JsonFileReviewStore.load(file);
  assert.equal(t.get('a:1|a:2')?.decision, 'match');
  assert.deepEqual(t.get('a:3|a:4'), { decision: 'non-match', fingerprint: 'f' });
  fs.writeFileSync(file, '{"decisions": {"k": {"decision": "maybe"}}}');
  assert.throws(() => JsonFileReviewStore.load(file), /must be "match" or "non-match"/);
  fs.writeFileSync(file, 'not json');
  assert.throws(() => JsonFileReviewStore.load(file), /not valid JSON/);
  fs.rmSync(dir, { recursive: true });
});

test('linking two sets only pairs records across them; empty input is fine', async () => {
  const { records } = population(300, 40, 3);
  const res = await link({ left: records.slice(0, 300), right: records.slice(300) });
  for (const m of res.matches) {
    assert.ok(m.left.startsWith('p') && m.right.startsWith('d'));
  }
  assert.ok(res.matches.length >= 30);
  const none = await link({ left: [] });
  assert.deepEqual([none.matches.length, none.review.length], [0, 0]);
  const one = await link({ left: [{ id: '1', fields: { full_name: '张伟' } }] });
  assert.equal(one.matches.length, 0);
});
