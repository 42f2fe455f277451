// The open catalog for machines on the public face: the DCAT-AP 3 JSON-LD document and the CKAN
// Action API subset (package_search, package_show, package_list, organization_list, status_show),
// on a whole platform. Entries of the test's own (a classification 399099 of its own) sit beside
// whatever the city profile brings, so nothing here depends on how many demo entries there are;
// what must hold for all of them (nothing that is not open and active ever appears) is compared with
// the database. CKAN's error shapes, and hostile input: bad numbers, huge rows, SQL in fq, a 10 KB q,
// broken JSON, a non-open entry asked for by name.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Db } from '../src/db/index.ts';
import { listCategories, saveEntry, syncProfileCatalog, withdrawEntry } from '../src/base/catalog/store.ts';
import type { EntryInput } from '../src/base/catalog/model.ts';
import { packageId, parseQuery, uuidV5 } from '../src/base/catalog/open.ts';
import { startTestPlatform, type TestPlatform } from './support/platform.ts';

let t: TestPlatform;
let db: Db;

interface Res {
  status: number;
  type: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}
async function call(method: 'GET' | 'POST', url: string, opts: { body?: string; type?: string; headers?: Record<string, string> } = {}): Promise<Res> {
  const app = t.platform.listeners[0]!.app;
  const r = await app.inject({ method, url, headers: { ...(opts.type ? { 'content-type': opts.type } : {}), ...opts.headers }, ...(opts.body !== undefined ? { payload: opts.body } : {}) });
  let body: unknown = r.body;
  try {
    body = JSON.parse(r.body);
  } catch {
    /* not JSON */
  }
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? ''), body };
}
const get = (path: string, headers?: Record<string, string>) => call('GET', path, { headers });
const action = (name: string, params: Record<string, string | number> = {}) => get(`/api/3/action/${name}?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`);
const post = (name: string, body: unknown, type = 'application/json') => call('POST', `/api/3/action/${name}`, { body: typeof body === 'string' ? body : JSON.stringify(body), type });

const CLS = '399099';
function entry(seq: string, over: Partial<EntryInput> = {}): EntryInput {
  return {
    code: `${CLS}/${seq}`,
    classification: CLS,
    name: `测试开放数据${seq}`,
    provider: 'SZ-SCJG',
    abstract: `测试用的目录条目 ${seq}，只在测试中出现。`,
    format: { type: 'database', detail: '关系型数据库表' },
    items: [{ field: 'name', name: '名称', type: 'C', length: 200, personal: false }],
    share: { type: 'unconditional', methods: ['query'] },
    open: { open: true },
    updateCycle: 'daily',
    published: '2024-05-01',
    related: [],
    maintainer: { department: 'SZ-SCJG', post: '测试数据管理岗' },
    ...over,
  };
}

const OPEN_A = entry('000001', { name: '测试企业登记开放数据', nameEn: 'Test enterprise registrations', format: { type: 'spreadsheet', detail: 'CSV 文件（每日导出）' }, updateCycle: 'realtime' });
const OPEN_B = entry('000002', { name: '测试空气质量小时数据', provider: 'SZ-STHJ', maintainer: { department: 'SZ-STHJ', post: '监测数据岗' }, format: { type: 'api', detail: 'JSON 接口' }, updateCycle: 'yearly' });
const OPEN_C = entry('000005', { name: '测试医保定点机构', provider: 'SZ-YB', maintainer: { department: 'SZ-YB', post: '协议管理岗' }, updateCycle: 'irregular', open: { open: true, condition: '仅开放机构名称和地址' } });
const CLOSED = entry('000003', { name: '测试企业内部核查数据', open: { open: false }, share: { type: 'conditional', condition: '仅限监管部门', methods: ['query'] } });
const WITHDRAWN = entry('000004', { name: '测试企业已撤销开放数据' });

/** the codes the public may see, straight from the table */
async function openCodes(): Promise<string[]> {
  return (await db.query<{ code: string }>(`select code from catalog.entry where open and status = 'active' order by code`)).rows.map((r) => r.code);
}
async function hiddenCodes(): Promise<string[]> {
  return (await db.query<{ code: string }>(`select code from catalog.entry where not open or status <> 'active' order by code`)).rows.map((r) => r.code);
}

before(async () => {
  t = await startTestPlatform({ GUSU_JOB_CONCURRENCY: '0', GUSU_DEMO: 'false' });
  db = t.platform.ctx.db;
  const have = new Set((await listCategories(db)).map((c) => c.code));
  const cats = [
    { code: '3', name: '部门信息资源', nameEn: 'Department information resources' },
    { code: '399', name: '测试部门信息（测试）', nameEn: 'Test department information' },
    { code: CLS, name: '测试目录、开放', nameEn: 'Test catalog' },
  ].filter((c) => !have.has(c.code));
  await db.tx((q) => syncProfileCatalog(q, cats, []));
  for (const e of [OPEN_A, OPEN_B, OPEN_C, CLOSED, WITHDRAWN]) await saveEntry(db, e);
  assert.ok(await withdrawEntry(db, WITHDRAWN.code));
});
after(async () => {
  await t?.stop();
});

describe('DCAT-AP 3 JSON-LD', () => {
  let doc: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  let catalog: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  before(async () => {
    const r = await get('/catalog/dcat.jsonld', { host: 'data.example.gov.cn' });
    assert.equal(r.status, 200);
    assert.match(r.type, /^application\/ld\+json/);
    doc = r.body;
    catalog = doc['@graph'].find((n: { '@type': string }) => n['@type'] === 'dcat:Catalog');
  });

  test('a context with the vocabularies, one catalog, exactly one publisher: the data authority in zh and en', () => {
    for (const p of ['dcat', 'dct', 'foaf', 'vcard', 'xsd', 'rdfs']) assert.match(doc['@context'][p], /^http:\/\//, p);
    assert.equal(doc['@graph'].filter((n: { '@type': string }) => n['@type'] === 'dcat:Catalog').length, 1);
    const pub = catalog['dct:publisher'];
    assert.ok(pub && !Array.isArray(pub), 'one publisher, not a list');
    assert.equal(pub['@type'], 'foaf:Agent');
    assert.equal(pub['dct:identifier'], 'SZ-DSJ');
    assert.deepEqual(pub['foaf:name'].map((n: { '@language': string }) => n['@language']).sort(), ['en', 'zh']);
    assert.ok(pub['foaf:name'].some((n: { '@value': string }) => n['@value'] === '苏州市大数据管理局'));
    for (const k of ['dct:title', 'dct:description']) assert.deepEqual(catalog[k].map((n: { '@language': string }) => n['@language']).sort(), ['en', 'zh'], k);
  });

  test('every dataset: absolute @id, identifier, title, description, publisher, frequency, issued, contact, distributions with an access URL', () => {
    const ds = catalog['dcat:dataset'];
    assert.ok(ds.length >= 3);
    for (const d of ds) {
      assert.equal(d['@type'], 'dcat:Dataset');
      assert.match(d['@id'], /^http:\/\/data\.example\.gov\.cn\/catalog\/entries\/\d{6,8}\/\d{6}$/);
      assert.ok(d['dct:identifier']);
      assert.ok(d['dct:title'].some((x: { '@language': string; '@value': string }) => x['@language'] === 'zh' && x['@value']), `${d['dct:identifier']} title`);
      assert.ok(d['dct:description'][0]['@value'], `${d['dct:identifier']} description`);
      assert.equal(d['dct:publisher']['@type'], 'foaf:Agent');
      assert.ok(d['dct:publisher']['foaf:name'][0]['@value']);
      assert.match(d['dct:accrualPeriodicity']['@id'], /^http:\/\/publications\.europa\.eu\/resource\/authority\/frequency\/(CONT|DAILY|WEEKLY|MONTHLY|QUARTERLY|ANNUAL|IRREG)$/);
      assert.equal(d['dct:issued']['@type'], 'xsd:date');
      assert.match(d['dct:issued']['@value'], /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(d['dct:modified']['@type'], 'xsd:dateTime');
      assert.ok(d['dcat:contactPoint']['vcard:fn']);
      assert.ok(d['dcat:distribution'].length >= 1);
      for (const dist of d['dcat:distribution']) assert.match(dist['dcat:accessURL']['@id'], /^http:\/\/data\.example\.gov\.cn\//);
    }
  });

  test('the test entries: en title, frequency mapping, CSV format and media type, contact point, public access, the open condition as rights', () => {
    const byId = new Map<string, any>(catalog['dcat:dataset'].map((d: { 'dct:identifier': string }) => [d['dct:identifier'], d])); // eslint-disable-line @typescript-eslint/no-explicit-any
    const a = byId.get(OPEN_A.code);
    assert.deepEqual(a['dct:title'], [{ '@value': '测试企业登记开放数据', '@language': 'zh' }, { '@value': 'Test enterprise registrations', '@language': 'en' }]);
    assert.equal(a['dct:accrualPeriodicity']['@id'], 'http://publications.europa.eu/resource/authority/frequency/CONT');
    assert.equal(byId.get(OPEN_B.code)['dct:accrualPeriodicity']['@id'], 'http://publications.europa.eu/resource/authority/frequency/ANNUAL');
    assert.equal(byId.get(OPEN_C.code)['dct:accrualPeriodicity']['@id'], 'http://publications.europa.eu/resource/authority/frequency/IRREG');
    assert.equal(a['dct:issued']['@value'], '2024-05-01');
    const data = a['dcat:distribution'][0];
    assert.equal(data['dct:format']['@id'], 'http://publications.europa.eu/resource/authority/file-type/CSV');
    assert.equal(data['dcat:mediaType']['@id'], 'http://www.iana.org/assignments/media-types/text/csv');
    assert.equal(data['dcat:accessURL']['@id'], 'http://data.example.gov.cn/catalog/entries/399099/000001');
    assert.equal(a['rdfs:seeAlso']['@id'], 'http://data.example.gov.cn/api/3/action/package_show?id=399099-000001');
    assert.equal(a['dcat:contactPoint']['vcard:organization-name'], '苏州市市场监督管理局');
    assert.match(a['dcat:contactPoint']['vcard:fn'], /测试数据管理岗/);
    assert.ok(a['dcat:keyword'].some((k: { '@value': string }) => k['@value'] === '测试目录、开放'));
    const c = byId.get(OPEN_C.code);
    assert.match(c['dct:accessRights']['@id'], /access-right\/PUBLIC$/);
    assert.equal(c['dcat:distribution'][0]['dct:rights']['rdfs:label']['@value'], '仅开放机构名称和地址');
  });

  test('exactly the open, active entries of the database: no closed or withdrawn entry appears anywhere in the document', async () => {
    const ids = catalog['dcat:dataset'].map((d: { 'dct:identifier': string }) => d['dct:identifier']).sort();
    assert.deepEqual(ids, await openCodes());
    const text = JSON.stringify(doc);
    for (const code of await hiddenCodes()) assert.ok(!text.includes(code), `${code} must not appear`);
    assert.ok(!text.includes(CLOSED.name) && !text.includes(WITHDRAWN.name));
  });

  test('without a Host header it still answers, with absolute URLs', async () => {
    const r = await get('/catalog/dcat.jsonld');
    assert.equal(r.status, 200);
    assert.match(r.body['@graph'][0]['dcat:dataset'][0]['@id'], /^https?:\/\/[^/]+\/catalog\/entries\//);
  });
});

describe('CKAN package_search', () => {
  test('the envelope: help, success, result with count, results, facets, search_facets, sort', async () => {
    const r = await action('package_search');
    assert.equal(r.status, 200);
    assert.match(r.type, /^application\/json/);
    assert.match(r.body.help, /\/api\/3\/action\/help_show\?name=package_search$/);
    assert.equal(r.body.success, true);
    assert.deepEqual(Object.keys(r.body.result).sort(), ['count', 'facets', 'results', 'search_facets', 'sort']);
    assert.equal(r.body.result.count, (await openCodes()).length);
    assert.equal(r.body.result.results.length, Math.min(10, r.body.result.count));
    assert.equal(r.body.result.sort, 'score desc, metadata_modified desc');
  });

  test('a package is shaped like CKAN\'s', async () => {
    const r = await action('package_search', { q: 'name:399099-000001' });
    assert.equal(r.body.result.count, 1);
    const p = r.body.result.results[0];
    assert.equal(p.name, '399099-000001');
    assert.equal(p.id, packageId('320500', OPEN_A.code));
    assert.match(p.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(p.title, OPEN_A.name);
    assert.equal(p.notes, OPEN_A.abstract);
    assert.equal(p.type, 'dataset');
    assert.equal(p.state, 'active');
    assert.equal(p.private, false);
    assert.equal(p.organization.name, 'sz-scjg');
    assert.equal(p.organization.title, '苏州市市场监督管理局');
    assert.equal(p.owner_org, p.organization.id);
    assert.match(p.metadata_created, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+$/);
    assert.match(p.metadata_modified, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+$/);
    assert.ok(p.tags.every((tag: { name: string }) => /^[\p{L}\p{N}_ .-]{2,100}$/u.test(tag.name)), 'tags CKAN would accept');
    assert.equal(p.num_tags, p.tags.length);
    assert.equal(p.num_resources, p.resources.length);
    assert.ok(p.resources.length >= 1);
    for (const res of p.resources) {
      assert.equal(res.package_id, p.id);
      assert.match(res.url, /^https?:\/\//);
      assert.ok(res.format);
      assert.ok(res.id);
    }
    assert.equal(p.resources[0].format, 'CSV');
    const extras = Object.fromEntries(p.extras.map((x: { key: string; value: string }) => [x.key, x.value]));
    assert.equal(extras.resource_code, OPEN_A.code);
    assert.equal(extras.classification, CLS);
    assert.equal(extras.update_cycle, 'realtime');
    assert.equal(extras.share_type, 'unconditional');
  });

  test('q in Chinese finds by name (企业 → the test entry, and 企业登记信息 when the city profile has it open)', async () => {
    const r = await action('package_search', { q: '企业', rows: 1000 });
    assert.equal(r.status, 200);
    const titles = r.body.result.results.map((p: { title: string }) => p.title);
    assert.ok(titles.includes(OPEN_A.name));
    assert.ok(!titles.includes(CLOSED.name) && !titles.includes(WITHDRAWN.name));
    assert.ok(!titles.includes(OPEN_B.name), 'air quality is not about enterprises');
    const profile = (await db.query(`select 1 from catalog.entry where name = '企业登记信息' and open and status = 'active'`)).rowCount;
    if (profile) assert.ok(titles.includes('企业登记信息'));
    // a close spelling (one character off) still finds it
    const r2 = await action('package_search', { q: '测试空气质量数据' });
    assert.ok(r2.body.result.results.some((p: { title: string }) => p.title === OPEN_B.name));
  });

  test('q=*:* is everything; rows and start page through it without overlap', async () => {
    const all = await action('package_search', { q: '*:*', rows: 1000, sort: 'name asc' });
    const names = all.body.result.results.map((p: { name: string }) => p.name);
    assert.equal(names.length, all.body.result.count);
    assert.deepEqual(names, [...names].sort());
    const seen: string[] = [];
    for (let start = 0; start < names.length; start += 2) {
      const page = await action('package_search', { rows: 2, start, sort: 'name asc' });
      assert.equal(page.body.result.count, names.length);
      seen.push(...page.body.result.results.map((p: { name: string }) => p.name));
    }
    assert.deepEqual(seen, names);
    const beyond = await action('package_search', { rows: 5, start: names.length + 10 });
    assert.equal(beyond.body.result.results.length, 0);
    assert.equal(beyond.body.result.count, names.length);
  });

  test('fq: organization, res_format, tags, negation, OR, metadata_modified ranges; clauses ANDed', async () => {
    const scjg = await action('package_search', { fq: 'organization:sz-scjg', rows: 1000 });
    assert.ok(scjg.body.result.results.length >= 1);
    assert.ok(scjg.body.result.results.every((p: { organization: { name: string } }) => p.organization.name === 'sz-scjg'));
    assert.ok(scjg.body.result.results.some((p: { name: string }) => p.name === '399099-000001'));
    const both = await action('package_search', { fq: 'organization:sz-scjg res_format:csv', rows: 1000 });
    assert.deepEqual(both.body.result.results.map((p: { name: string }) => p.name), ['399099-000001']);
    const none = await action('package_search', { fq: 'organization:sz-scjg res_format:JSON tags:测试目录' });
    assert.equal(none.body.result.count, 0);
    const tagged = await action('package_search', { fq: 'tags:"测试目录 开放"', rows: 1000 });
    assert.deepEqual(tagged.body.result.results.map((p: { name: string }) => p.name).sort(), ['399099-000001', '399099-000002', '399099-000005']);
    const either = await action('package_search', { fq: 'organization:sz-sthj OR organization:sz-yb', rows: 1000 });
    assert.ok(either.body.result.results.every((p: { organization: { name: string } }) => ['sz-sthj', 'sz-yb'].includes(p.organization.name)));
    const allCount = (await action('package_search')).body.result.count;
    const notScjg = await action('package_search', { fq: '-organization:sz-scjg' });
    assert.equal(notScjg.body.result.count, allCount - scjg.body.result.count);
    const recent = await action('package_search', { fq: `+dataset_type:dataset metadata_modified:[${new Date(Date.now() - 3600_000).toISOString()} TO *]`, rows: 1000 });
    assert.ok(recent.body.result.results.some((p: { name: string }) => p.name === '399099-000001'));
    const future = await action('package_search', { fq: 'metadata_modified:[2999-01-01T00:00:00Z TO *]' });
    assert.equal(future.body.result.count, 0);
    // POST with fq_list, like newer clients
    const listed = await post('package_search', { fq_list: ['organization:sz-scjg', 'res_format:CSV'] });
    assert.deepEqual(listed.body.result.results.map((p: { name: string }) => p.name), ['399099-000001']);
  });

  test('sort: name asc/desc, metadata_modified desc, id asc (what the CKAN harvester asks for)', async () => {
    for (const [sort, key, desc] of [['name asc', 'name', false], ['name desc', 'name', true], ['metadata_modified desc', 'metadata_modified', true], ['id asc', 'id', false]] as const) {
      const r = await action('package_search', { sort, rows: 1000 });
      assert.equal(r.status, 200, sort);
      assert.equal(r.body.result.sort, sort);
      const vs = r.body.result.results.map((p: Record<string, string>) => p[key]);
      const sorted = [...vs].sort();
      assert.deepEqual(vs, desc ? sorted.reverse() : sorted, sort);
    }
  });

  test('facets like CKAN: facet.field as a JSON list, facet.limit; facets and search_facets', async () => {
    const r = await action('package_search', { 'facet.field': '["organization","tags","res_format"]', 'facet.limit': 50, rows: 0 });
    assert.equal(r.status, 200);
    const { facets, search_facets, count, results } = r.body.result;
    assert.equal(results.length, 0);
    assert.deepEqual(Object.keys(facets).sort(), ['organization', 'res_format', 'tags']);
    const orgTotal = Object.values(facets.organization as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.equal(orgTotal, count);
    assert.equal(facets.organization['sz-sthj'] >= 1, true);
    assert.equal(facets.res_format.CSV >= 1, true);
    assert.equal(search_facets.organization.title, 'organization');
    const sthj = search_facets.organization.items.find((i: { name: string }) => i.name === 'sz-sthj');
    assert.equal(sthj.display_name, '苏州市生态环境局');
    assert.equal(sthj.count, facets.organization['sz-sthj']);
    const one = await action('package_search', { 'facet.field': '["organization"]', 'facet.limit': 1 });
    assert.equal(Object.keys(one.body.result.facets.organization).length, 1);
    const none = await action('package_search');
    assert.deepEqual(none.body.result.facets, {});
    assert.deepEqual(none.body.result.search_facets, {});
  });

  test('never a non-open entry: every search over everything returns exactly the open, active codes', async () => {
    const r = await post('package_search', { q: '*:*', rows: 1000 });
    const codes = r.body.result.results.map((p: { extras: { key: string; value: string }[] }) => p.extras.find((x) => x.key === 'resource_code')!.value).sort();
    assert.deepEqual(codes, await openCodes());
    const closed = await action('package_search', { q: '内部核查' });
    assert.equal(closed.body.result.count, 0);
  });
});

describe('CKAN package_show, package_list, organization_list, status_show', () => {
  test('package_show by name, by id, by resource code; GET and POST', async () => {
    const byName = await action('package_show', { id: '399099-000002' });
    assert.equal(byName.status, 200);
    assert.equal(byName.body.success, true);
    assert.equal(byName.body.result.title, OPEN_B.name);
    assert.equal(byName.body.result.organization.name, 'sz-sthj');
    assert.match(byName.body.help, /help_show\?name=package_show$/);
    const byId = await post('package_show', { id: byName.body.result.id });
    assert.equal(byId.body.result.name, '399099-000002');
    const byCode = await action('package_show', { id: OPEN_B.code });
    assert.equal(byCode.body.result.name, '399099-000002');
  });

  test('404 like CKAN for an unknown, a closed and a withdrawn entry (by name, code and id)', async () => {
    for (const id of ['399099-999999', '399099-000003', CLOSED.code, packageId('320500', CLOSED.code), '399099-000004', 'nonsense']) {
      const r = await action('package_show', { id });
      assert.equal(r.status, 404, id);
      assert.equal(r.body.success, false);
      assert.deepEqual(r.body.error, { __type: 'Not Found Error', message: 'Not found' });
      assert.match(r.body.help, /help_show\?name=package_show$/);
    }
    const missing = await action('package_show');
    assert.equal(missing.status, 409);
    assert.equal(missing.body.error.__type, 'Validation Error');
  });

  test('package_list: the names of the open entries', async () => {
    const r = await action('package_list');
    assert.deepEqual(r.body.result, (await openCodes()).map((c) => c.replace('/', '-')).sort());
    const page = await action('package_list', { limit: 2, offset: 1 });
    assert.deepEqual(page.body.result, r.body.result.slice(1, 3));
  });

  test('organization_list: names by default, dictionaries with all_fields (package counts of open entries only)', async () => {
    const names = await action('organization_list');
    assert.ok(names.body.result.includes('sz-scjg') && names.body.result.includes('sz-yb'));
    const full = await action('organization_list', { all_fields: 'true' });
    const scjg = full.body.result.find((o: { name: string }) => o.name === 'sz-scjg');
    assert.equal(scjg.title, '苏州市市场监督管理局');
    assert.equal(scjg.is_organization, true);
    const open = (await db.query(`select 1 from catalog.entry where provider = 'SZ-SCJG' and open and status = 'active'`)).rowCount;
    assert.equal(scjg.package_count, open);
    const show = await action('organization_show', { id: 'sz-scjg' });
    assert.equal(show.body.result.id, scjg.id);
  });

  test('status_show and help_show', async () => {
    const s = await action('status_show');
    assert.equal(s.body.success, true);
    assert.match(s.body.result.ckan_version, /^2\.\d+/);
    assert.match(s.body.result.site_url, /^https?:\/\//);
    const h = await action('help_show', { name: 'package_search' });
    assert.match(h.body.result, /facet\.field/);
  });

  test('the unversioned /api/action/ path answers too', async () => {
    const r = await get('/api/action/package_list');
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
  });
});

describe('CKAN errors and hostile input', () => {
  test('an unknown action: 400 and CKAN\'s "Bad request - Action name not known"', async () => {
    for (const name of ['package_create', 'nope', '<script>alert(1)</script>']) {
      const r = await get(`/api/3/action/${encodeURIComponent(name)}`);
      assert.equal(r.status, 400);
      assert.match(r.type, /^application\/json/);
      assert.equal(r.body, `Bad request - Action name not known: ${name}`);
    }
    const del = await call('POST', '/api/3/action/package_delete', { body: '{"id":"399099-000001"}', type: 'application/json' });
    assert.equal(del.status, 400);
    assert.equal((await action('package_show', { id: '399099-000001' })).status, 200);
  });

  test('rows=-1, start=abc, rows=abc: 409 Validation Error naming the field', async () => {
    const neg = await action('package_search', { rows: -1 });
    assert.equal(neg.status, 409);
    assert.equal(neg.body.success, false);
    assert.deepEqual(neg.body.error, { __type: 'Validation Error', rows: ['Must be a natural number'] });
    const abc = await action('package_search', { start: 'abc' });
    assert.equal(abc.status, 409);
    assert.deepEqual(abc.body.error, { __type: 'Validation Error', start: ['Invalid integer'] });
    const both = await post('package_search', { rows: 'x', start: -5 });
    assert.deepEqual(Object.keys(both.body.error).sort(), ['__type', 'rows', 'start']);
    const facet = await action('package_search', { 'facet.field': 'organization' });
    assert.equal(facet.status, 409);
    assert.ok(facet.body.error['facet.field']);
  });

  test('rows=100000 is capped at 1000, like CKAN\'s rows_max', async () => {
    const r = await action('package_search', { rows: 100000 });
    assert.equal(r.status, 200);
    assert.equal(r.body.result.results.length, Math.min(1000, r.body.result.count));
    const huge = await action('package_search', { rows: '99999999999999999999' });
    assert.equal(huge.status, 409);
  });

  test('SQL in fq and q: a search error or no match, never a database error, and the table is intact', async () => {
    const before = await openCodes();
    for (const fq of [`organization:x' OR 1=1 --`, `organization:x';drop table catalog.entry;--`, `organization:"x' or ''='"`, `name:*) OR (1=1`, `tags:(a OR`, 'unknown_field:1', 'metadata_modified:[yesterday TO *]']) {
      const r = await action('package_search', { fq });
      assert.ok(r.status === 200 || r.status === 409, `${fq}: ${r.status}`);
      if (r.status === 200) assert.equal(r.body.result.count, 0, fq);
      else assert.equal(r.body.error.__type, 'Search Error', fq);
    }
    const q = await action('package_search', { q: `'; select * from catalog.entry where not open; --` });
    assert.equal(q.status, 200);
    assert.ok(!JSON.stringify(q.body).includes(CLOSED.name));
    const s = await action('package_search', { sort: 'name; drop table catalog.entry' });
    assert.equal(s.status, 409);
    assert.equal(s.body.error.__type, 'Search Error');
    assert.deepEqual(await openCodes(), before);
  });

  test('a 10 KB q answers (the store caps the text it searches)', async () => {
    const big = '企业'.repeat(5000);
    const r = await post('package_search', { q: big });
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
    const g = await action('package_search', { q: 'x'.repeat(10_000) });
    assert.equal(g.status, 200);
    const fq = await action('package_search', { fq: `organization:${'a'.repeat(10_000)}` });
    assert.equal(fq.status, 409);
  });

  test('POST with broken JSON, a JSON list, text/plain and form bodies', async () => {
    const broken = await post('package_search', '{"q": ');
    assert.equal(broken.status, 400);
    assert.match(broken.body, /^Bad request - JSON Error/);
    const list = await post('package_search', '[1,2]');
    assert.equal(list.status, 400);
    assert.match(list.body, /needs to be a dictionary/);
    const empty = await post('package_search', '');
    assert.equal(empty.status, 200);
    const plain = await post('package_show', '{"id":"399099-000001"}', 'text/plain');
    assert.equal(plain.body.result.name, '399099-000001');
    const form = await post('package_show', 'id=399099-000001', 'application/x-www-form-urlencoded');
    assert.equal(form.body.result.name, '399099-000001');
    const wrongType = await post('package_show', { id: { $ne: null } });
    assert.equal(wrongType.status, 409);
  });
});

test('ids: UUID v5 (RFC 9562 test vector) and a query parser that refuses what it cannot run', () => {
  assert.equal(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  assert.throws(() => parseQuery('a'.repeat(5000)));
  assert.throws(() => parseQuery('('.repeat(40) + 'name:x' + ')'.repeat(40)));
  assert.throws(() => parseQuery(Array.from({ length: 200 }, (_, i) => `name:${i}`).join(' OR ')));
  assert.doesNotThrow(() => parseQuery('(organization:a OR organization:b) -groups:c +metadata_created:{* TO NOW-7DAYS}'));
});
