// The `catalog` scenario: search of the 政务信息资源目录 (`searchEntries` in src/base/catalog/store.ts:
// pg_trgm word similarity plus LIKE, ranked, with facets by grouping sets) over 100,000 synthetic
// entries (--quick: 20,000) on PostgreSQL — embedded in a temporary directory, or a fresh database on
// BENCH_DATABASE_URL's server. 4 clients at once on a pool of 4 run a realistic mix of Chinese
// queries; beside it, in the same run, on the same table and at the same concurrency, the baseline: a
// plain primary-key lookup of one entry (`getEntry`, `where code = $1`), and a btree lookup by name.
// Every answer is checked while it is measured (a query with a character missing must still find the
// entry it means, a provider filter must only return that provider's entries, ...): a run whose search
// is wrong fails instead of reporting a figure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PROFILE_DIR, loadCityProfile } from '../src/config/profile.ts';
import { migrate, platformMigrations, readMigrations, type Db } from '../src/db/index.ts';
import { FORMAT_TYPES, kindOf, type Category, type EntryInput, type Item, type ShareMethod, type ShareType, type UpdateCycle } from '../src/base/catalog/model.ts';
import { getEntry, searchEntries, searchText, type SearchQuery, type SearchResult } from '../src/base/catalog/store.ts';
import { benchDatabase, median, percentile, round, type BenchOptions, type Figures } from './support.ts';

const CLIENTS = 4;
const BATCH = 2_000;
const CATALOG_MIGRATIONS = path.join(path.dirname(new URL(import.meta.url).pathname), '../src/base/catalog/migrations');

// ---------------------------------------------------------------------------------------------
// the synthetic catalog: what each department collects, composed with areas, suffixes and years

/** per department: its subjects (信息资源 topics); a subject marked base: also filed under a 基础信息资源 category */
const SUBJECTS: Record<string, { s: string; base?: string }[]> = {
  'SZ-GA': [{ s: '户籍人口', base: '101001' }, { s: '流动人口', base: '101001' }, { s: '居民身份证', base: '101002' }, { s: '机动车登记' }, { s: '机动车驾驶人' }, { s: '出入境证件' }, { s: '道路交通违法' }, { s: '治安案件' }],
  'SZ-MZ': [{ s: '婚姻登记', base: '101003' }, { s: '社会组织登记', base: '102002' }, { s: '最低生活保障' }, { s: '殡葬服务' }, { s: '养老机构' }, { s: '地名' }, { s: '特困人员救助供养' }, { s: '慈善组织' }],
  'SZ-SCJG': [{ s: '企业登记', base: '102001' }, { s: '企业经营异常', base: '102001' }, { s: '个体工商户登记', base: '102001' }, { s: '食品经营许可' }, { s: '特种设备' }, { s: '产品质量监督抽查' }, { s: '商标' }, { s: '市场监管行政处罚' }],
  'SZ-RS': [{ s: '社会保险参保' }, { s: '就业登记' }, { s: '失业登记' }, { s: '职业技能等级认定' }, { s: '人事考试' }, { s: '劳动保障监察' }, { s: '专业技术职称' }],
  'SZ-ZRGH': [{ s: '不动产登记', base: '103001' }, { s: '国土空间规划', base: '103002' }, { s: '建设用地审批' }, { s: '地质灾害隐患点', base: '103002' }, { s: '测绘成果' }, { s: '林地保护利用' }],
  'SZ-WJW': [{ s: '出生医学证明', base: '101004' }, { s: '预防接种' }, { s: '医疗机构执业登记' }, { s: '医师执业注册' }, { s: '传染病报告' }, { s: '居民死亡医学证明', base: '101004' }],
  'SZ-JY': [{ s: '中小学生学籍' }, { s: '中小学校' }, { s: '教师资格认定' }, { s: '幼儿园' }, { s: '校外培训机构' }, { s: '学历证书' }],
  'SZ-ZJ': [{ s: '建筑业企业资质' }, { s: '商品房预售许可' }, { s: '房屋网签备案' }, { s: '建筑工程施工许可' }, { s: '物业服务企业' }],
  'SZ-JT': [{ s: '道路运输经营许可' }, { s: '出租汽车' }, { s: '公交线路站点' }, { s: '船舶登记' }, { s: '公路桥梁' }],
  'SZ-STHJ': [{ s: '排污许可' }, { s: '环境影响评价审批' }, { s: '空气质量监测' }, { s: '地表水水质监测' }, { s: '危险废物经营许可' }],
  'SZ-YB': [{ s: '医疗保险参保' }, { s: '医保费用结算' }, { s: '定点医药机构' }, { s: '医保药品目录' }],
  'SZ-GJJ': [{ s: '住房公积金缴存' }, { s: '住房公积金贷款' }, { s: '住房公积金提取' }],
  'SZ-SW': [{ s: '纳税人登记', base: '102003' }, { s: '欠税公告' }, { s: '发票开具' }, { s: '纳税信用等级' }],
  'SZ-TJ': [{ s: '统计调查项目' }, { s: '国民经济核算' }, { s: '人口抽样调查' }],
  'SZ-YJ': [{ s: '安全生产许可' }, { s: '危险化学品经营许可' }, { s: '应急避难场所' }, { s: '生产安全事故' }],
  'SZ-SF': [{ s: '律师执业' }, { s: '公证机构' }, { s: '法律援助' }, { s: '人民调解' }, { s: '社区矫正' }],
  'SZ-CZ': [{ s: '政府采购' }, { s: '财政预算执行' }, { s: '非税收入' }],
  'SZ-FGW': [{ s: '固定资产投资项目' }, { s: '重要商品价格监测' }, { s: '重点建设项目' }, { s: '信用承诺' }],
  'SZ-TYJR': [{ s: '退役军人' }, { s: '优抚对象' }, { s: '军休干部' }],
  'SZ-CG': [{ s: '城市管理执法' }, { s: '户外广告设置' }, { s: '生活垃圾分类' }, { s: '市政设施' }],
  'SZ-JGSW': [{ s: '公务用车' }, { s: '办公用房' }, { s: '公共机构能耗' }],
  'SZ-DAG': [{ s: '馆藏档案' }, { s: '婚姻档案' }, { s: '知青档案' }],
  'SZ-SJ': [{ s: '审计项目' }, { s: '审计整改' }],
  'SZ-ZY': [{ s: '裁判文书' }, { s: '失信被执行人' }, { s: '执行案件' }],
  'SZ-DSJ': [{ s: '数据共享交换' }, { s: '电子证照', base: '104001' }, { s: '公共数据开放' }],
  'SZ-ZFB': [{ s: '政府信息公开' }, { s: '12345热线工单' }, { s: '政务服务事项' }],
  'SZ-TXYY': [{ s: '通信基站' }, { s: '移动终端位置统计' }, { s: '宽带接入' }],
};
const SUFFIXES = ['信息', '信息', '信息', '数据', '名录', '台账', '统计', '明细', '档案', '基本信息', '变更信息', '注销信息', '年度报告', '目录'];
const AREAS = ['', '', '', '苏州市', '姑苏区', '吴中区', '相城区', '虎丘区', '吴江区', '苏州工业园区', '张家港市', '常熟市', '太仓市', '昆山市'];
const PURPOSES = ['政务服务办理', '行政审批核验', '事中事后监管', '社会信用体系建设', '统计分析', '公共服务', '应急管理', '城市运行监测', '决策支持', '跨部门业务协同'];
/** the rare subject: one entry in RARE_EVERY */
const RARE = { s: '古树名木', provider: 'SZ-ZRGH' };
const RARE_EVERY = 4_999;

const ITEMS: Item[] = [
  { field: 'name', name: '姓名', type: 'C', length: 50, personal: true },
  { field: 'idNumber', name: '公民身份号码', type: 'C', length: 18, personal: true },
  { field: 'sex', name: '性别', type: 'C', length: 1, personal: true },
  { field: 'birthDate', name: '出生日期', type: 'D', personal: true },
  { field: 'nation', name: '民族', type: 'C', length: 2, personal: true },
  { field: 'address', name: '住址', type: 'C', length: 200, personal: true },
  { field: 'phone', name: '联系电话', type: 'C', length: 20, personal: true },
  { field: 'uscc', name: '统一社会信用代码', type: 'C', length: 18, personal: false },
  { field: 'orgName', name: '单位名称', type: 'C', length: 200, personal: false },
  { field: 'legalRep', name: '法定代表人', type: 'C', length: 50, personal: true },
  { field: 'regDate', name: '登记日期', type: 'D', personal: false },
  { field: 'authority', name: '登记机关', type: 'C', length: 100, personal: false },
  { field: 'status', name: '状态', type: 'C', length: 10, personal: false },
  { field: 'certNo', name: '证书编号', type: 'C', length: 50, personal: false },
  { field: 'validFrom', name: '有效期起', type: 'D', personal: false },
  { field: 'validTo', name: '有效期至', type: 'D', personal: false },
  { field: 'division', name: '行政区划代码', type: 'C', length: 12, personal: false },
  { field: 'longitude', name: '经度', type: 'N', personal: false },
  { field: 'latitude', name: '纬度', type: 'N', personal: false },
  { field: 'amount', name: '金额', type: 'Y', personal: false },
  { field: 'quantity', name: '数量', type: 'N', personal: false },
  { field: 'year', name: '统计年度', type: 'N', personal: false },
  { field: 'reason', name: '事由', type: 'M', personal: false },
  { field: 'handler', name: '经办人', type: 'C', length: 50, personal: true },
  { field: 'updatedAt', name: '更新时间', type: 'T', personal: false },
  { field: 'remark', name: '备注', type: 'M', personal: false },
  { field: 'householdNo', name: '户号', type: 'C', length: 20, personal: true },
  { field: 'decisionNo', name: '决定文书号', type: 'C', length: 50, personal: false },
];
const CYCLES: UpdateCycle[] = ['realtime', 'daily', 'daily', 'weekly', 'monthly', 'monthly', 'quarterly', 'yearly', 'irregular', 'irregular'];
const METHODS: ShareMethod[][] = [['query'], ['subscription'], ['bulk'], ['query', 'bulk'], ['subscription', 'query'], ['subscription', 'query', 'bulk']];

const BASE_CATEGORIES: Category[] = [
  { code: '1', name: '基础信息资源目录', nameEn: 'Base information resources' },
  { code: '101', name: '人口基础信息', nameEn: 'Population' },
  { code: '101001', name: '人口户籍', nameEn: 'Household registration' },
  { code: '101002', name: '居民身份', nameEn: 'Resident identity' },
  { code: '101003', name: '婚姻状况', nameEn: 'Marital status' },
  { code: '101004', name: '出生死亡', nameEn: 'Births and deaths' },
  { code: '102', name: '法人单位基础信息', nameEn: 'Legal entities' },
  { code: '102001', name: '企业', nameEn: 'Enterprises' },
  { code: '102002', name: '社会组织', nameEn: 'Social organisations' },
  { code: '102003', name: '纳税主体', nameEn: 'Taxpayers' },
  { code: '103', name: '自然资源和空间地理基础信息', nameEn: 'Natural resources and geography' },
  { code: '103001', name: '不动产', nameEn: 'Real estate' },
  { code: '103002', name: '国土空间', nameEn: 'Territorial space' },
  { code: '104', name: '电子证照基础信息', nameEn: 'Electronic licences' },
  { code: '104001', name: '电子证照', nameEn: 'Electronic licences' },
  { code: '2', name: '主题信息资源目录', nameEn: 'Theme information resources' },
];
const THEMES = ['医疗健康', '社会保障', '食品药品安全', '安全生产', '价格监管', '能源安全', '信用体系', '城乡建设', '社区治理', '生态环境', '应急维稳', '教育文化'];

interface Generated {
  categories: Category[];
  entries: EntryInput[];
}

/** A small deterministic PRNG (mulberry32): the same catalog every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** the names every query class relies on, planted first so that even a small catalog has them */
const PLANTED: { provider: string; name: string; subject: string }[] = [
  { provider: 'SZ-GA', name: '户籍人口信息', subject: '户籍人口' },
  { provider: 'SZ-MZ', name: '婚姻登记信息', subject: '婚姻登记' },
  { provider: 'SZ-SCJG', name: '企业经营异常名录', subject: '企业经营异常' },
  { provider: 'SZ-ZRGH', name: '不动产登记信息', subject: '不动产登记' },
  { provider: 'SZ-RS', name: '社会保险参保信息', subject: '社会保险参保' },
];

export function generate(n: number, departments: { code: string; name: string }[]): Generated {
  const rnd = prng(20261127);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const deptName = new Map(departments.map((d) => [d.code, d.name]));
  const providers = Object.keys(SUBJECTS).filter((c) => deptName.has(c));
  if (providers.length < 20) throw new Error(`the city profile has only ${providers.length} of the departments the synthetic catalog uses`);
  const categories: Category[] = [...BASE_CATEGORIES];
  // 主题: 2dd, each with one 目 2dd001
  THEMES.forEach((t, i) => {
    const c = `2${String(i + 1).padStart(2, '0')}`;
    categories.push({ code: c, name: `${t}主题信息`, nameEn: `Theme ${i + 1}` }, { code: `${c}001`, name: t, nameEn: `Theme ${i + 1}` });
  });
  // 部门: 3dd per department, a 目 3ddsss per subject
  categories.push({ code: '3', name: '部门信息资源目录', nameEn: 'Department information resources' });
  const deptClass = new Map<string, string>();
  providers.forEach((p, i) => {
    const c = `3${String(i + 1).padStart(2, '0')}`;
    categories.push({ code: c, name: `${deptName.get(p)}信息资源`, nameEn: `${p} information resources` });
    SUBJECTS[p]!.forEach((s, j) => {
      const code = `${c}${String(j + 1).padStart(3, '0')}`;
      categories.push({ code, name: s.s, nameEn: `${p} subject ${j + 1}` });
      deptClass.set(`${p}:${s.s}`, code);
    });
  });
  deptClass.set(`${RARE.provider}:${RARE.s}`, deptClass.get(`${RARE.provider}:${SUBJECTS[RARE.provider]![5]!.s}`)!);

  const seq = new Map<string, number>();
  const entries: EntryInput[] = [];
  for (let i = 0; i < n; i++) {
    let provider: string;
    let subject: { s: string; base?: string };
    let name: string;
    const planted = PLANTED[i];
    if (planted) {
      provider = planted.provider;
      subject = SUBJECTS[provider]!.find((s) => s.s === planted.subject)!;
      name = planted.name;
    } else if (i % RARE_EVERY === RARE_EVERY - 1) {
      provider = RARE.provider;
      subject = { s: RARE.s };
      name = `${pick(AREAS)}${RARE.s}${pick(['名录', '信息', '保护信息'])}`;
    } else {
      provider = pick(providers);
      subject = pick(SUBJECTS[provider]!);
      const year = rnd() < 0.3 ? `（${2015 + Math.floor(rnd() * 10)}年）` : '';
      name = `${pick(AREAS)}${subject.s}${pick(SUFFIXES)}${year}`;
    }
    const r = rnd();
    const classification = subject.base && r < 0.35 ? subject.base : r > 0.8 ? `2${String(1 + Math.floor(rnd() * THEMES.length)).padStart(2, '0')}001` : deptClass.get(`${provider}:${subject.s}`)!;
    const s = (seq.get(classification) ?? 0) + 1;
    seq.set(classification, s);
    const shareRoll = rnd();
    const shareType: ShareType = kindOf(classification) === 'base' || shareRoll < 0.5 ? (shareRoll < 0.75 ? 'unconditional' : 'conditional') : shareRoll < 0.85 ? 'conditional' : 'none';
    const count = 4 + Math.floor(rnd() * 9);
    const start = Math.floor(rnd() * ITEMS.length);
    const items = Array.from({ length: count }, (_, k) => ITEMS[(start + k * 7) % ITEMS.length]!).filter((it, k, a) => a.findIndex((x) => x.field === it.field) === k);
    const dept = deptName.get(provider)!;
    const open = shareType === 'unconditional' && rnd() < 0.5;
    entries.push({
      code: `${classification}/${String(s).padStart(6, '0')}`,
      classification,
      name,
      provider,
      abstract: `${dept}在依法履行职责过程中采集、产生的${subject.s}相关数据，包括${items.slice(0, 4).map((it) => it.name).join('、')}等信息项，用于${pick(PURPOSES)}和${pick(PURPOSES)}。`,
      format: { type: pick(FORMAT_TYPES), detail: pick(['JSON', 'CSV', 'XLSX', 'PDF', 'OFD', 'WMS']) },
      items,
      share: {
        type: shareType,
        ...(shareType === 'conditional' ? { condition: `仅向履行${pick(PURPOSES)}职责的部门提供，须签订共享协议` } : {}),
        methods: shareType === 'none' ? [] : pick(METHODS),
        ...(shareType === 'none' ? { legalBasis: '《中华人民共和国个人信息保护法》第三十四条' } : {}),
      },
      open: open ? { open: true } : { open: false, condition: '涉及个人信息或商业秘密，不予开放' },
      updateCycle: pick(CYCLES),
      published: `${2016 + Math.floor(rnd() * 9)}-${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`,
      related: [],
      maintainer: { department: provider, post: pick(['数据管理岗', '信息科', '大数据中心', '业务处室']) },
    });
  }
  return { categories, entries };
}

export async function load(db: Db, g: Generated): Promise<void> {
  // the table's own indexes (as the migration made them) are dropped for the load and made again after:
  // building a GIN index once is much faster than maintaining it row by row
  const { rows: indexes } = await db.query<{ name: string; def: string }>(
    `select indexname as name, indexdef as def from pg_indexes where schemaname = 'catalog' and tablename = 'entry'
       and indexname not in (select conname from pg_constraint where conrelid = 'catalog.entry'::regclass)`,
  );
  for (const i of indexes) await db.query(`drop index catalog.${i.name}`);
  await db.query(
    `insert into catalog.category (code, name, name_en) select * from unnest($1::text[], $2::text[], $3::text[])`,
    [g.categories.map((c) => c.code), g.categories.map((c) => c.name), g.categories.map((c) => c.nameEn)],
  );
  for (let i = 0; i < g.entries.length; i += BATCH) {
    const b = g.entries.slice(i, i + BATCH);
    const col = <T>(f: (e: EntryInput) => T) => b.map(f);
    // share_methods as array literals: unnest would flatten a two-dimensional array
    await db.query(
      `insert into catalog.entry (code, classification, kind, name, name_en, provider, abstract, format, items, share_type, share_condition, share_methods,
         legal_basis, open, open_condition, update_cycle, published, related, maintainer_department, maintainer_post, exchange_resource, search, source)
       select code, classification, kind, name, name_en, provider, abstract, format::jsonb, items::jsonb, share_type, share_condition, share_methods::text[],
         legal_basis, open, open_condition, update_cycle, published::date, '{}', maintainer_department, maintainer_post, null, search, 'api'
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                   $12::text[], $13::text[], $14::boolean[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[])
         as t(code, classification, kind, name, name_en, provider, abstract, format, items, share_type, share_condition, share_methods, legal_basis, open,
              open_condition, update_cycle, published, maintainer_department, maintainer_post, search)`,
      [
        col((e) => e.code), col((e) => e.classification), col((e) => kindOf(e.classification)), col((e) => e.name), col((e) => e.nameEn ?? null),
        col((e) => e.provider), col((e) => e.abstract), col((e) => JSON.stringify(e.format)), col((e) => JSON.stringify(e.items)), col((e) => e.share.type),
        col((e) => e.share.condition ?? null), col((e) => `{${e.share.methods.join(',')}}`), col((e) => e.share.legalBasis ?? null), col((e) => e.open.open),
        col((e) => e.open.condition ?? null), col((e) => e.updateCycle), col((e) => e.published), col((e) => e.maintainer.department),
        col((e) => e.maintainer.post), col((e) => searchText(e)),
      ],
    );
  }
  await db.tx(async (c) => {
    await c.query(`set local maintenance_work_mem = '256MB'`);
    for (const i of indexes) await c.query(i.def);
  });
  await db.query('analyze catalog.entry');
  await db.query('analyze catalog.category');
}

// ---------------------------------------------------------------------------------------------
// the queries

interface Op {
  query: SearchQuery;
  /** throws when the answer is wrong */
  check: (r: SearchResult) => void;
}

interface QueryClass {
  /** the figure prefix */
  id: string;
  label: string;
  /** this class's share of the overall mix */
  weight: number;
  ops: Op[];
}

class WrongAnswer extends Error {}

function expect(ok: boolean, what: string, q: SearchQuery, r: SearchResult): void {
  if (!ok) throw new WrongAnswer(`search ${JSON.stringify(q)}: ${what} (total ${r.total}, first ${r.items.slice(0, 3).map((i) => i.name).join(', ') || 'none'})`);
}

function facetsChecked(q: SearchQuery, r: SearchResult): void {
  if (q.facets === false) return expect(r.facets === null, 'facets computed when turned off', q, r);
  expect(!!r.facets, 'no facets', q, r);
  const sum = r.facets!.provider.reduce((a, f) => a + f.count, 0);
  expect(sum === r.total, `provider facet counts add up to ${sum}, not the total`, q, r);
}

/** An exact word: the best match has it in its name, and at least every entry with it in its text is counted. */
function exact(word: string, counts: Map<string, number>, extra: Partial<SearchQuery> = {}): Op {
  const query: SearchQuery = { q: word, ...extra };
  return {
    query,
    check: (r) => {
      expect(r.items.length > 0 && r.items[0]!.name.includes(word), 'the best match does not have the word in its name', query, r);
      expect(r.total >= counts.get(word)!, `fewer than the ${counts.get(word)} entries that contain it`, query, r);
      if (extra.provider) expect(r.items.every((i) => i.provider === extra.provider), `an entry not of ${extra.provider}`, query, r);
      facetsChecked(query, r);
    },
  };
}

/** A query one character off the name it means: that name is on the first page. */
function near(text: string, means: string): Op {
  const query: SearchQuery = { q: text };
  return {
    query,
    check: (r) => {
      expect(r.items.some((i) => i.name.includes(means)), `${means} is not on the first page`, query, r);
      facetsChecked(query, r);
    },
  };
}

const EXACT_WORDS = ['户籍', '企业登记', '婚姻登记', '不动产', '社会保险', '公积金', '排污许可', '学籍', '失信被执行人', '出租汽车', '养老机构', '危险化学品'];
/** item names that many entries have: deep pages exist */
const PAGE_WORDS = ['统一社会信用代码', '登记日期'];
const PROVIDER_OF: Record<string, string> = { 户籍: 'SZ-GA', 企业登记: 'SZ-SCJG', 婚姻登记: 'SZ-MZ', 不动产: 'SZ-ZRGH', 社会保险: 'SZ-RS', 公积金: 'SZ-GJJ' };

function queryClasses(counts: Map<string, number>, deepOffset: number): QueryClass[] {
  return [
    { id: 'exact', label: 'an exact word of the names (户籍, 企业登记, ...)', weight: 40, ops: EXACT_WORDS.map((w) => exact(w, counts)) },
    { id: 'provider', label: 'the same with a provider filter', weight: 15, ops: Object.entries(PROVIDER_OF).map(([w, p]) => exact(w, counts, { provider: p })) },
    {
      id: 'missing',
      label: 'one character missing (户籍人信息 for 户籍人口信息)',
      weight: 10,
      ops: [near('户籍人信息', '户籍人口信息'), near('婚姻记信息', '婚姻登记信息'), near('企业经异常名录', '企业经营异常名录'), near('不动登记信息', '不动产登记信息')],
    },
    { id: 'extra', label: 'one character extra (户籍人口的信息)', weight: 5, ops: [near('户籍人口的信息', '户籍人口信息'), near('婚姻登记的信息', '婚姻登记信息'), near('企业经营异常的名录', '企业经营异常名录')] },
    { id: 'typo', label: 'one character wrong (户藉人口信息)', weight: 5, ops: [near('户藉人口信息', '户籍人口信息'), near('婚姻登计信息', '婚姻登记信息'), near('社会保险参保信忠', '社会保险参保信息')] },
    {
      id: 'rare',
      label: `a rare word (${RARE.s}: one entry in ${RARE_EVERY})`,
      weight: 10,
      ops: [
        {
          query: { q: RARE.s },
          check: (r) => {
            const q = { q: RARE.s };
            expect(r.total === counts.get(RARE.s), `total ${r.total}, not the ${counts.get(RARE.s)} entries about it`, q, r);
            expect(r.items.every((i) => i.name.includes(RARE.s)), 'an entry not about it', q, r);
          },
        },
      ],
    },
    { id: 'common', label: 'a common word (信息: in nearly every entry)', weight: 5, ops: [exact('信息', counts)] },
    { id: 'nofacets', label: 'an exact word, facets off', weight: 5, ops: EXACT_WORDS.map((w) => exact(w, counts, { facets: false })) },
    ...(['first_page', 'deep_page'] as const).map((id) => ({
      id,
      label: id === 'first_page' ? 'an item name in many entries (统一社会信用代码, 登记日期), first page' : `the same, the page at offset ${deepOffset}`,
      weight: id === 'first_page' ? 3 : 2,
      ops: PAGE_WORDS.map((w) => {
        const query: SearchQuery = { q: w, offset: id === 'first_page' ? 0 : deepOffset };
        return {
          query,
          check: (r: SearchResult) => {
            expect(r.total >= counts.get(w)!, `fewer than the ${counts.get(w)} entries that contain it`, query, r);
            expect(r.items.length === Math.min(20, Math.max(0, r.total - query.offset!)), `${r.items.length} items on the page`, query, r);
            facetsChecked(query, r);
          },
        };
      }),
    })),
  ];
}

// ---------------------------------------------------------------------------------------------

/** Runs `op` from CLIENTS clients at once for `seconds`; returns count, elapsed and sorted latencies. */
async function drive(seconds: number, op: (i: number) => Promise<void>): Promise<{ perS: number; n: number; sorted: number[] }> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const latencies: number[] = [];
  let i = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const a = performance.now();
        await op(i++);
        latencies.push(performance.now() - a);
      }
    }),
  );
  return { perS: latencies.length / ((performance.now() - t0) / 1000), n: latencies.length, sorted: latencies.sort((a, b) => a - b) };
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

export async function run(opts: BenchOptions): Promise<Figures> {
  const entriesWanted = Number(process.env.BENCH_CATALOG_ENTRIES ?? '') || (opts.quick ? 20_000 : 100_000);
  const seconds = opts.seconds ?? (opts.quick ? 2 : 10);
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gusu-bench-catalog-'));
  fs.chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
  opts.log(
    `${process.env.BENCH_DATABASE_URL ? 'a fresh database on BENCH_DATABASE_URL' : 'embedded PostgreSQL in a temporary directory'}, ${entriesWanted.toLocaleString('en')} entries` +
      `${opts.quick ? ' (--quick: 20,000 instead of 100,000)' : ''}, ${CLIENTS} clients on a pool of ${CLIENTS}, ${seconds} s a measurement, ${rounds} round(s)`,
  );
  const bench = await benchDatabase(path.join(dir, 'db'), { scenario: 'catalog', max: CLIENTS });
  try {
    const db = bench.db;
    await migrate(db, readMigrations([platformMigrations, { module: 'catalog', dir: CATALOG_MIGRATIONS }]));
    const profile = loadCityProfile(DEFAULT_PROFILE_DIR);
    let t = performance.now();
    const g = generate(entriesWanted, profile.departments.map((d) => ({ code: d.code, name: d.name })));
    await load(db, g);
    // the baseline's second lookup: a plain btree on name (the catalog has only trigram indexes on it)
    await db.query('create index bench_entry_name on catalog.entry (name)');
    await db.query('analyze catalog.entry');
    const providers = new Set(g.entries.map((e) => e.provider)).size;
    opts.log(`generated and loaded ${g.entries.length.toLocaleString('en')} entries (${providers} providers, ${g.categories.length} categories) in ${((performance.now() - t) / 1000).toFixed(1)} s, analyzed`);

    // what each query must at least find: entries whose search text holds the word exactly
    const words = [...EXACT_WORDS, '信息', ...PAGE_WORDS, RARE.s];
    const counts = new Map<string, number>();
    for (const w of words) counts.set(w, Number((await db.query<{ n: number }>(`select count(*)::int as n from catalog.entry where strpos(search, $1) > 0`, [w])).rows[0]!.n));
    opts.log(`entries containing: ${words.map((w) => `${w} ${counts.get(w)}`).join(', ')}`);
    const deepOffset = Math.min(2_000, Math.floor(entriesWanted / 20));
    const classes = queryClasses(counts, deepOffset);
    const codes = g.entries.map((e) => e.code);
    const names = g.entries.map((e) => e.name);
    const shuffle = prng(7);
    const lookup = async (i: number) => {
      const code = codes[Math.floor(shuffle() * codes.length)]!;
      const e = await getEntry(db, code);
      if (!e || e.code !== code) throw new WrongAnswer(`getEntry(${code}) found ${e?.code ?? 'nothing'}`);
      void i;
    };
    const byName = async () => {
      const name = names[Math.floor(shuffle() * names.length)]!;
      const { rows } = await db.query<{ code: string; name: string }>('select code, name from catalog.entry where name = $1 limit 20', [name]);
      if (!rows.length || rows[0]!.name !== name) throw new WrongAnswer(`no entry named ${name}`);
    };
    // the mix: each class by its weight, its queries in turn
    const mixPlan: Op[] = [];
    for (const c of classes) for (let k = 0; k < c.weight; k++) mixPlan.push(c.ops[k % c.ops.length]!);
    const order = Array.from(mixPlan.keys());
    for (let j = order.length - 1; j > 0; j--) {
      const k = Math.floor(shuffle() * (j + 1));
      [order[j], order[k]] = [order[k]!, order[j]!];
    }
    const searchOp = (pick: (i: number) => Op) => async (i: number) => {
      const op = pick(i);
      op.check(await searchEntries(db, op.query));
    };
    const mix = searchOp((i) => mixPlan[order[i % order.length]!]!);

    // warm-up and the first check: every query once, CLIENTS at a time, each answer checked
    t = performance.now();
    const all = classes.flatMap((c) => c.ops.map((op) => ({ c, op })));
    const single = new Map<Op, { ms: number; total: number }>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let k = next++; k < all.length; k = next++) {
          const { op } = all[k]!;
          const a = performance.now();
          const r = await searchEntries(db, op.query);
          single.set(op, { ms: performance.now() - a, total: r.total });
          op.check(r);
        }
      }),
    );
    opts.log(`warm-up: all ${all.length} queries answered correctly in ${((performance.now() - t) / 1000).toFixed(1)} s; each alone (${CLIENTS} in flight), matches and time:`);
    for (const c of classes) {
      opts.log(`  ${c.id.padEnd(10)} ${c.ops.map((op) => `${op.query.q}${op.query.provider ? `@${op.query.provider}` : ''}${op.query.offset ? `+${op.query.offset}` : ''} ${single.get(op)!.total}/${ms(single.get(op)!.ms)}ms`).join(', ')}`);
    }
    await drive(Math.min(1, seconds / 2), lookup);

    const res = { search: [] as number[], base: [] as number[] };
    const searchLat: number[] = [];
    const baseLat: number[] = [];
    for (let i = 0; i < rounds; i++) {
      // alternate which goes first, so a drift in the machine's speed favours neither
      const first = i % 2 === 0;
      const a = first ? await drive(seconds, lookup) : null;
      const s = await drive(seconds, mix);
      const b = a ?? (await drive(seconds, lookup));
      res.search.push(s.perS);
      res.base.push(b.perS);
      searchLat.push(...s.sorted);
      baseLat.push(...b.sorted);
      opts.log(`round ${i + 1}: search mix ${s.perS.toFixed(1)}/s (p99 ${ms(percentile(s.sorted, 0.99))} ms), primary-key lookup ${Math.round(b.perS)}/s (p99 ${ms(percentile(b.sorted, 0.99))} ms)`);
    }
    searchLat.sort((x, y) => x - y);
    baseLat.sort((x, y) => x - y);
    const nameRun = await drive(seconds, byName);
    opts.log(`btree lookup by name: ${Math.round(nameRun.perS)}/s (p99 ${ms(percentile(nameRun.sorted, 0.99))} ms)`);

    // each class alone, for half a measurement each
    opts.log(`each class alone, ${seconds / 2} s each:`);
    const per: Record<string, { perS: number; p50: number; p99: number; total: number }> = {};
    for (const c of classes) {
      const r = await drive(seconds / 2, searchOp((i) => c.ops[i % c.ops.length]!));
      const sample = await searchEntries(db, c.ops[0]!.query);
      per[c.id] = { perS: r.perS, p50: percentile(r.sorted, 0.5), p99: percentile(r.sorted, 0.99), total: sample.total };
      opts.log(`  ${c.id.padEnd(10)} ${r.perS.toFixed(1).padStart(8)}/s  p50 ${ms(percentile(r.sorted, 0.5)).padStart(6)} ms  p99 ${ms(percentile(r.sorted, 0.99)).padStart(6)} ms  (${r.n} queries; e.g. ${JSON.stringify(c.ops[0]!.query.q)}: ${sample.total} matches) — ${c.label}`);
    }

    const search = median(res.search);
    const base = median(res.base);
    const figures: Figures = {
      entries: g.entries.length,
      search_per_s: round(search),
      search_p50_ms: round(percentile(searchLat, 0.5)),
      search_p99_ms: round(percentile(searchLat, 0.99)),
      baseline_lookup_per_s: round(base),
      baseline_lookup_p99_ms: round(percentile(baseLat, 0.99)),
      search_ratio: round(search / base),
      baseline_name_per_s: round(nameRun.perS),
      baseline_name_p99_ms: round(percentile(nameRun.sorted, 0.99)),
    };
    for (const c of classes) {
      figures[`${c.id}_per_s`] = round(per[c.id]!.perS);
      figures[`${c.id}_p99_ms`] = round(per[c.id]!.p99);
    }
    figures.facets_ratio = round(per.exact!.perS / per.nofacets!.perS);
    figures.deep_page_ratio = round(per.deep_page!.perS / per.first_page!.perS);
    return figures;
  } finally {
    await bench.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
