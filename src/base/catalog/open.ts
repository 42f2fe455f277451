// The open catalog for machines, on the public face: the entries open to the public (open.open and
// active; never any other) as a DCAT-AP 3 JSON-LD document (GET /catalog/dcat.jsonld) and as the
// read-only subset of the CKAN Action API that harvesters and portals call (/api/3/action/...:
// package_search, package_show, package_list, organization_list, organization_show, status_show,
// help_show), answered in CKAN's own shapes, errors included ({help, success:false, error}).
import { createHash } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Department } from '../../config/profile.ts';
import type { ModuleContext } from '../../module.ts';
import { allow } from '../identity/policy.ts';
import { platformUrls } from '../identity/oidc/urls.ts';
import type { Category, UpdateCycle } from './model.ts';
import { getEntry, listCategories, searchEntries, MAX_PAGE, type Entry } from './store.ts';

export const OPEN_CATALOG_ACTION = 'open-catalog:read';
export const openCatalogPolicy = [...allow('anyone', 'read', 'open-catalog')];

// ---------------------------------------------------------------------------------------------
// identifiers and vocabularies

/** RFC 9562 UUID version 5 (SHA-1, name-based): the same name gives the same id on every run. */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';
/** Gusu's namespace for catalog ids (packages and organizations), itself a v5 UUID of a URN */
const GUSU_CATALOG_NS = uuidV5(NAMESPACE_URL, 'urn:gusu:catalog');

/** 101001/000001 → 101001-000001 (a CKAN name: lower-case letters, digits, - and _) */
export const packageName = (code: string) => code.replace('/', '-');
const codeOfName = (name: string) => (/^([1-3]\d{5}(?:\d{2})?)[-/](\d{6})$/.exec(name) ? name.replace('-', '/') : null);
export const packageId = (cityCode: string, code: string) => uuidV5(GUSU_CATALOG_NS, `${cityCode}:entry:${code}`);
export const organizationName = (dept: string) => dept.toLowerCase();
const organizationId = (cityCode: string, dept: string) => uuidV5(GUSU_CATALOG_NS, `${cityCode}:org:${dept}`);

const EU_FREQUENCY = 'http://publications.europa.eu/resource/authority/frequency/';
export const FREQUENCY: Record<UpdateCycle, string> = {
  realtime: 'CONT',
  daily: 'DAILY',
  weekly: 'WEEKLY',
  monthly: 'MONTHLY',
  quarterly: 'QUARTERLY',
  yearly: 'ANNUAL',
  irregular: 'IRREG',
};
const CYCLE_ZH: Record<UpdateCycle, string> = { realtime: '实时', daily: '每日', weekly: '每周', monthly: '每月', quarterly: '每季度', yearly: '每年', irregular: '不定期' };
const EU_FILE_TYPE = 'http://publications.europa.eu/resource/authority/file-type/';
const IANA = 'http://www.iana.org/assignments/media-types/';
const EU_LANGUAGE = 'http://publications.europa.eu/resource/authority/language/';
const EU_ACCESS_RIGHT = 'http://publications.europa.eu/resource/authority/access-right/';

/** file formats recognisable in an entry's format detail (e.g. "XML/JSON 报文"): CKAN label, EU file type, IANA media type */
const FILE_FORMATS: { re: RegExp; label: string; euType?: string; media?: string }[] = [
  { re: /\bJSON\b/i, label: 'JSON', euType: 'JSON', media: 'application/json' },
  { re: /\bXML\b/i, label: 'XML', euType: 'XML', media: 'application/xml' },
  { re: /\bCSV\b/i, label: 'CSV', euType: 'CSV', media: 'text/csv' },
  { re: /\bXLSX\b/i, label: 'XLSX', euType: 'XLSX', media: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' },
  { re: /\bXLS\b/i, label: 'XLS', euType: 'XLS', media: 'application/vnd.ms-excel' },
  { re: /\bPDF\b/i, label: 'PDF', euType: 'PDF', media: 'application/pdf' },
  { re: /\bOFD\b/i, label: 'OFD' },
  { re: /\bHTML\b/i, label: 'HTML', euType: 'HTML', media: 'text/html' },
  { re: /\bGDB\b/i, label: 'GDB', euType: 'GDB' },
  { re: /\bShapefile\b|\bSHP\b/i, label: 'SHP', euType: 'SHP' },
  { re: /\bWMTS\b/i, label: 'WMTS', euType: 'WMTS_SRVC' },
];
/** when the detail names no file format: a label for the kind of resource (信息资源格式) */
const TYPE_FORMATS: Record<string, { label: string; zh: string }> = {
  document: { label: 'Document', zh: '电子文件' },
  spreadsheet: { label: 'Spreadsheet', zh: '电子表格' },
  database: { label: 'Database', zh: '数据库' },
  image: { label: 'Image', zh: '图形图像' },
  stream: { label: 'Stream', zh: '流媒体' },
  'self-describing': { label: 'Self-describing', zh: '自描述格式' },
  api: { label: 'API', zh: '接口' },
};

interface Format {
  label: string;
  euType?: string;
  media?: string;
}
function formatOf(e: Entry): Format {
  const known = FILE_FORMATS.find((f) => e.format.detail && f.re.test(e.format.detail));
  if (known) return known;
  return { label: TYPE_FORMATS[e.format.type]?.label ?? e.format.type };
}

/** A tag CKAN would accept ([\w \-.], 2-100 characters): other punctuation (（）、，) becomes a space. */
export function tagName(s: string): string {
  return s.normalize('NFKC').replace(/[^\p{L}\p{N}_ .-]+/gu, ' ').replace(/\s+/g, ' ').trim().slice(0, 100);
}

// ---------------------------------------------------------------------------------------------
// the open entries and what they are presented with

export interface View {
  base: string;
  cityCode: string;
  depts: Map<string, Department>;
  cats: Map<string, Category>;
}

/** Every entry of the public catalog (open, active), in code order, through the store's search. */
async function openEntries(ctx: ModuleContext, q?: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (let offset = 0; offset < 100_000; offset += MAX_PAGE) {
    const r = await searchEntries(ctx.db, { view: 'public', q, sort: q ? 'relevance' : 'code', limit: MAX_PAGE, offset, facets: false });
    out.push(...r.items);
    if (r.items.length < MAX_PAGE || out.length >= r.total) break;
  }
  // the view already says so; checked again because leaking a non-open entry is the one thing this file must not do
  return out.filter((e) => e.open.open && e.status === 'active');
}

async function viewOf(ctx: ModuleContext, req: FastifyRequest): Promise<View> {
  return {
    base: publicBase(ctx, req),
    cityCode: ctx.profile.city.code,
    depts: new Map(ctx.profile.departments.map((d) => [d.code, d])),
    cats: new Map((await listCategories(ctx.db)).map((c) => [c.code, c])),
  };
}

const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
/** The public face's address: GUSU_PUBLIC_URL when set (it should be, in production), else the request's own host. */
export function publicBase(ctx: ModuleContext, req: FastifyRequest): string {
  if (ctx.config.publicUrl) return ctx.config.publicUrl.replace(/\/+$/, '');
  const host = req.host;
  if (typeof host === 'string' && HOST.test(host)) return `${req.protocol === 'https' ? 'https' : 'http'}://${host}`;
  return platformUrls(ctx.config).public;
}

/** 类, 项, 目, 细目 of a classification code, as far as the catalog knows them */
function categoryPath(v: View, classification: string): Category[] {
  return [1, 3, 6, 8].filter((n) => n <= classification.length).map((n) => v.cats.get(classification.slice(0, n))).filter((c): c is Category => !!c);
}

/** the department that publishes the catalog: the one with the data-catalogue role (SZ-DSJ in Suzhou) */
function catalogPublisher(ctx: ModuleContext): Department {
  const ds = ctx.profile.departments;
  return ds.find((d) => d.roles?.includes('data-catalogue')) ?? ds.find((d) => d.code === 'SZ-DSJ') ?? ds[0]!;
}

const deptName = (v: View, code: string) => v.depts.get(code)?.name ?? code;
const entryUrl = (v: View, e: Entry) => `${v.base}/catalog/entries/${e.code}`;
const packageShowUrl = (v: View, e: Entry) => `${v.base}/api/3/action/package_show?id=${packageName(e.code)}`;
/** CKAN writes its times as UTC without a zone */
const ckanTime = (d: Date) => d.toISOString().replace(/Z$/, '');

// ---------------------------------------------------------------------------------------------
// DCAT-AP 3

const DCAT_CONTEXT = {
  dcat: 'http://www.w3.org/ns/dcat#',
  dct: 'http://purl.org/dc/terms/',
  foaf: 'http://xmlns.com/foaf/0.1/',
  vcard: 'http://www.w3.org/2006/vcard/ns#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  rdfs: 'http://www.w3.org/2000/01/rdf-schema#',
  skos: 'http://www.w3.org/2004/02/skos/core#',
};

const zh = (s: string) => ({ '@value': s, '@language': 'zh' });
const en = (s: string) => ({ '@value': s, '@language': 'en' });
const ref = (id: string) => ({ '@id': id });

function agent(v: View, code: string) {
  const d = v.depts.get(code);
  return {
    '@id': `${v.base}/catalog/dcat.jsonld#agent-${code.toLowerCase()}`,
    '@type': 'foaf:Agent',
    'foaf:name': d ? [zh(d.name), en(d.nameEn)] : [zh(code)],
    'dct:identifier': code,
  };
}

function datasetNode(v: View, e: Entry) {
  const page = entryUrl(v, e);
  const fmt = formatOf(e);
  const path = categoryPath(v, e.classification);
  const leaf = path[path.length - 1];
  const distribution = [
    {
      '@id': `${page}#data`,
      '@type': 'dcat:Distribution',
      'dct:title': [zh(`${e.name}（${TYPE_FORMATS[e.format.type]?.zh ?? e.format.type}）`), ...(e.nameEn ? [en(e.nameEn)] : [])],
      ...(e.format.detail ? { 'dct:description': zh(e.format.detail) } : {}),
      'dcat:accessURL': ref(page),
      ...(fmt.euType ? { 'dct:format': ref(EU_FILE_TYPE + fmt.euType) } : {}),
      ...(fmt.media ? { 'dcat:mediaType': ref(IANA + fmt.media) } : {}),
      ...(e.open.condition ? { 'dct:rights': { '@type': 'dct:RightsStatement', 'rdfs:label': zh(e.open.condition) } } : {}),
    },
  ];
  return {
    '@id': page,
    '@type': 'dcat:Dataset',
    'dct:identifier': e.code,
    'dct:title': [zh(e.name), ...(e.nameEn ? [en(e.nameEn)] : [])],
    'dct:description': [zh(e.abstract)],
    'dct:publisher': agent(v, e.provider),
    ...(leaf ? { 'dcat:theme': ref(`${v.base}/catalog/classification#${leaf.code}`) } : {}),
    'dcat:keyword': path.map((c) => zh(c.name)),
    'dct:accrualPeriodicity': ref(EU_FREQUENCY + FREQUENCY[e.updateCycle]),
    'dct:issued': { '@value': e.published, '@type': 'xsd:date' },
    'dct:modified': { '@value': e.updatedAt.toISOString(), '@type': 'xsd:dateTime' },
    'dct:language': ref(`${EU_LANGUAGE}ZHO`),
    // open to the public (向社会开放); a condition (开放条件: where it is published, what is withheld) is the distribution's dct:rights
    'dct:accessRights': ref(`${EU_ACCESS_RIGHT}PUBLIC`),
    'dcat:contactPoint': {
      '@type': 'vcard:Organization',
      'vcard:fn': `${deptName(v, e.maintainer.department)} ${e.maintainer.post}`,
      'vcard:organization-name': deptName(v, e.maintainer.department),
      'vcard:role': e.maintainer.post,
    },
    'dcat:landingPage': ref(page),
    // the same record as CKAN JSON (not a distribution: it is metadata, not the data)
    'rdfs:seeAlso': ref(packageShowUrl(v, e)),
    'dcat:distribution': distribution,
  };
}

export function dcatDocument(ctx: ModuleContext, v: View, entries: readonly Entry[]) {
  const city = ctx.profile.city;
  const pub = catalogPublisher(ctx);
  const scheme = `${v.base}/catalog/classification`;
  const used = new Set(entries.map((e) => categoryPath(v, e.classification).at(-1)?.code).filter((c): c is string => !!c));
  const modified = entries.reduce<Date | null>((m, e) => (!m || e.updatedAt > m ? e.updatedAt : m), null);
  return {
    '@context': DCAT_CONTEXT,
    '@graph': [
      {
        '@id': `${v.base}/catalog`,
        '@type': 'dcat:Catalog',
        'dct:title': [zh(`${city.name}公共信息资源目录`), en(`${city.nameEn} open government information resource catalog`)],
        'dct:description': [
          zh(`${city.name}政务信息资源目录中向社会开放的信息资源，由${pub.name}发布。`),
          en(`The information resources of ${city.nameEn}'s government information resource catalog that are open to the public, published by the ${pub.nameEn}.`),
        ],
        'dct:publisher': { ...agent(v, pub.code), 'dct:type': ref('http://purl.org/adms/publishertype/LocalAuthority') },
        'foaf:homepage': ref(`${v.base}/catalog`),
        'dct:language': [ref(`${EU_LANGUAGE}ZHO`), ref(`${EU_LANGUAGE}ENG`)],
        ...(modified ? { 'dct:modified': { '@value': modified.toISOString(), '@type': 'xsd:dateTime' } } : {}),
        'dcat:themeTaxonomy': ref(scheme),
        'dcat:dataset': entries.map((e) => datasetNode(v, e)),
      },
      {
        '@id': scheme,
        '@type': 'skos:ConceptScheme',
        'dct:title': [zh('政务信息资源分类'), en('Government information resource classification')],
      },
      ...[...used].sort().map((code) => {
        const c = v.cats.get(code)!;
        return { '@id': `${scheme}#${code}`, '@type': 'skos:Concept', 'skos:notation': code, 'skos:prefLabel': [zh(c.name), en(c.nameEn)], 'skos:inScheme': ref(scheme) };
      }),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// CKAN packages and organizations

interface Organization {
  id: string;
  name: string;
  title: string;
  display_name: string;
  description: string;
  type: 'organization';
  is_organization: true;
  state: 'active';
  approval_status: 'approved';
  image_url: string;
  image_display_url: string;
  created: string;
  package_count?: number;
}

function organizationOf(v: View, dept: string, created: Date): Organization {
  const d = v.depts.get(dept);
  return {
    id: organizationId(v.cityCode, dept),
    name: organizationName(dept),
    title: d?.name ?? dept,
    display_name: d?.name ?? dept,
    description: d?.nameEn ?? '',
    type: 'organization',
    is_organization: true,
    state: 'active',
    approval_status: 'approved',
    image_url: '',
    image_display_url: '',
    created: ckanTime(created),
  };
}

export function packageOf(v: View, e: Entry) {
  const id = packageId(v.cityCode, e.code);
  const fmt = formatOf(e);
  const path = categoryPath(v, e.classification);
  const tags = [...new Set(path.map((c) => tagName(c.name)).filter((t) => t.length >= 2))].map((name) => ({ id: uuidV5(GUSU_CATALOG_NS, `tag:${name}`), name, display_name: name, state: 'active', vocabulary_id: null }));
  const created = ckanTime(e.createdAt);
  const modified = ckanTime(e.updatedAt);
  const resource = (n: number, url: string, format: string, name: string, description: string, mimetype: string | null) => ({
    id: uuidV5(GUSU_CATALOG_NS, `${v.cityCode}:resource:${e.code}:${n}`),
    package_id: id,
    url,
    format,
    name,
    description,
    mimetype,
    position: n,
    state: 'active',
    created,
    last_modified: modified,
    metadata_modified: modified,
    url_type: null,
    resource_type: null,
    hash: '',
    size: null,
  });
  const extras: Record<string, string> = {
    resource_code: e.code,
    classification: e.classification,
    classification_name: path.map((c) => c.name).join(' / '),
    catalog_kind: e.kind,
    update_cycle: e.updateCycle,
    update_cycle_zh: CYCLE_ZH[e.updateCycle],
    accrual_periodicity: EU_FREQUENCY + FREQUENCY[e.updateCycle],
    share_type: e.share.type,
    format_type: e.format.type,
    ...(e.format.detail ? { format_detail: e.format.detail } : {}),
    ...(e.open.condition ? { open_condition: e.open.condition } : {}),
    ...(e.nameEn ? { title_en: e.nameEn } : {}),
    issued: e.published,
    maintainer_department: e.maintainer.department,
    version: String(e.version),
  };
  const organization = organizationOf(v, e.provider, e.createdAt);
  const resources = [resource(0, entryUrl(v, e), fmt.label, e.name, e.format.detail ?? TYPE_FORMATS[e.format.type]?.zh ?? e.format.type, fmt.media ?? null)];
  return {
    id,
    name: packageName(e.code),
    title: e.name,
    notes: e.abstract,
    url: entryUrl(v, e),
    type: 'dataset',
    state: 'active',
    private: false,
    isopen: false,
    license_id: 'notspecified',
    license_title: 'License not specified',
    author: deptName(v, e.provider),
    author_email: null,
    maintainer: `${deptName(v, e.maintainer.department)} ${e.maintainer.post}`,
    maintainer_email: null,
    version: null,
    creator_user_id: null,
    metadata_created: created,
    metadata_modified: modified,
    owner_org: organization.id,
    organization,
    groups: [] as unknown[],
    tags,
    num_tags: tags.length,
    resources,
    num_resources: resources.length,
    extras: Object.entries(extras).map(([key, value]) => ({ key, value })),
    relationships_as_object: [] as unknown[],
    relationships_as_subject: [] as unknown[],
  };
}
type Package = ReturnType<typeof packageOf>;

// ---------------------------------------------------------------------------------------------
// a Solr-like query language, enough for what harvesters send:
//   organization:sz-scjg   -organization:sz-ga   tags:"企业 信用"   res_format:JSON
//   organization:a OR organization:b   metadata_modified:[2024-01-01T00:00:00Z TO *]   name:1010*   *:*

/** a query the API cannot run: CKAN's "Search Error" (409) */
class SearchError extends Error {}

type Node = { k: 'all' } | { k: 'and' | 'or'; xs: Node[] } | { k: 'not'; x: Node } | { k: 'term'; field: string; test: (p: Package) => boolean };

const MAX_QUERY = 4000;
const MAX_TERMS = 100;
const MAX_DEPTH = 16;

function values(p: Package, field: string): string[] | null {
  const extra = /^extras_(.+)$/.exec(field);
  if (extra) return p.extras.filter((x) => x.key === extra[1]).map((x) => x.value);
  switch (field) {
    case 'organization': return [p.organization.name];
    case 'owner_org': return [p.owner_org];
    case 'res_format': return p.resources.map((r) => r.format);
    case 'tags': return p.tags.map((t) => t.name);
    case 'groups': return [];
    case 'name': return [p.name];
    case 'id': return [p.id];
    case 'title': case 'title_string': return [p.title];
    case 'notes': return [p.notes];
    case 'text': return [p.title, p.notes, ...p.tags.map((t) => t.name), ...p.extras.map((x) => x.value)];
    case 'type': case 'dataset_type': return [p.type];
    case 'state': return [p.state];
    case 'private': case 'capacity': return [field === 'private' ? 'false' : 'public'];
    case 'license_id': return [p.license_id];
    case 'metadata_modified': return [p.metadata_modified];
    case 'metadata_created': return [p.metadata_created];
    case 'num_resources': return [String(p.num_resources)];
    case 'num_tags': return [String(p.num_tags)];
    default: return null;
  }
}
const KNOWN_FIELDS = new Set(['organization', 'owner_org', 'res_format', 'tags', 'groups', 'name', 'id', 'title', 'title_string', 'notes', 'text', 'type', 'dataset_type', 'state', 'private', 'capacity', 'license_id', 'metadata_modified', 'metadata_created', 'num_resources', 'num_tags']);
const TEXT_FIELDS = new Set(['title', 'notes', 'text']);
const DATE_FIELDS = new Set(['metadata_modified', 'metadata_created']);
const NUMBER_FIELDS = new Set(['num_resources', 'num_tags']);

/** Solr date math, the part that matters here: an ISO date or time, NOW, NOW-7DAYS, NOW/DAY */
function dateBound(s: string): number {
  const m = /^NOW(?:([+-])(\d{1,6})(YEARS?|MONTHS?|DAYS?|HOURS?|MINUTES?))?(?:\/(DAY|HOUR))?$/.exec(s);
  if (m) {
    const d = new Date();
    if (m[1]) {
      const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
      const unit = m[3]!.replace(/S$/, '');
      if (unit === 'YEAR') d.setUTCFullYear(d.getUTCFullYear() + n);
      else if (unit === 'MONTH') d.setUTCMonth(d.getUTCMonth() + n);
      else d.setTime(d.getTime() + n * { DAY: 86_400_000, HOUR: 3_600_000, MINUTE: 60_000 }[unit]!);
    }
    if (m[4] === 'DAY') d.setUTCHours(0, 0, 0, 0);
    if (m[4] === 'HOUR') d.setUTCMinutes(0, 0, 0);
    return d.getTime();
  }
  if (!/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?Z?)?$/.test(s)) throw new SearchError(`not a date: ${s.slice(0, 40)}`);
  const t = Date.parse(/T/.test(s) ? (s.endsWith('Z') ? s : `${s}Z`) : `${s}T00:00:00Z`);
  if (Number.isNaN(t)) throw new SearchError(`not a date: ${s.slice(0, 40)}`);
  return t;
}
/** CKAN's times are UTC without the Z */
const timeOf = (v: string) => Date.parse(`${v}Z`);

function termNode(field: string, value: string, quoted: boolean): Node {
  if (!KNOWN_FIELDS.has(field) && !/^extras_[a-z_]{1,40}$/.test(field)) throw new SearchError(`undefined field ${field.slice(0, 40)}`);
  const fold = (s: string) => s.normalize('NFKC').toLowerCase();
  let match: (v: string) => boolean;
  if (!quoted && value === '*') match = () => true;
  else if (!quoted && value.endsWith('*') && !value.slice(0, -1).includes('*')) {
    const prefix = fold(value.slice(0, -1));
    match = (v) => fold(v).startsWith(prefix);
  } else if (TEXT_FIELDS.has(field)) {
    const want = fold(value);
    match = (v) => fold(v).includes(want);
  } else if (DATE_FIELDS.has(field)) {
    const t = dateBound(value);
    match = (v) => timeOf(v) === t;
  } else if (field === 'res_format' || field === 'tags' || field === 'organization') {
    const want = fold(value);
    match = (v) => fold(v) === want;
  } else {
    match = (v) => v === value;
  }
  return { k: 'term', field, test: (p) => (values(p, field) ?? []).some(match) };
}

function rangeNode(field: string, lo: string, hi: string, incLo: boolean, incHi: boolean): Node {
  if (DATE_FIELDS.has(field)) {
    const a = lo === '*' ? -Infinity : dateBound(lo);
    const b = hi === '*' ? Infinity : dateBound(hi);
    const inRange = (t: number) => (incLo ? t >= a : t > a) && (incHi ? t <= b : t < b);
    return { k: 'term', field, test: (p) => (values(p, field) ?? []).some((v) => inRange(timeOf(v))) };
  }
  if (NUMBER_FIELDS.has(field)) {
    const num = (s: string) => {
      if (s === '*') return NaN;
      if (!/^-?\d+$/.test(s)) throw new SearchError(`not a number: ${s.slice(0, 40)}`);
      return Number(s);
    };
    const a = lo === '*' ? -Infinity : num(lo);
    const b = hi === '*' ? Infinity : num(hi);
    return { k: 'term', field, test: (p) => (values(p, field) ?? []).some((v) => (incLo ? Number(v) >= a : Number(v) > a) && (incHi ? Number(v) <= b : Number(v) < b)) };
  }
  termNode(field, '*', false); // known field?
  return { k: 'term', field, test: (p) => (values(p, field) ?? []).some((v) => (lo === '*' || (incLo ? v >= lo : v > lo)) && (hi === '*' || (incHi ? v <= hi : v < hi))) };
}

/** Parses a Solr-style query of fielded terms; clauses without an operator are ANDed. Throws SearchError. */
export function parseQuery(src: string): Node {
  if (src.length > MAX_QUERY) throw new SearchError(`query longer than ${MAX_QUERY} characters`);
  let i = 0;
  let terms = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const word = (w: string) => src.startsWith(w, i) && (i + w.length === src.length || /[\s()]/.test(src[i + w.length]!));
  const fail = (why: string): never => {
    throw new SearchError(`cannot parse '${src.slice(0, 80)}': ${why} at position ${i}`);
  };
  const bare = () => {
    let s = '';
    while (i < src.length && !/[\s()[\]{}"]/.test(src[i]!)) {
      if (src[i] === '\\' && i + 1 < src.length) i++;
      s += src[i++];
    }
    return s;
  };
  const quoted = () => {
    i++; // "
    let s = '';
    while (i < src.length && src[i] !== '"') {
      if (src[i] === '\\' && i + 1 < src.length) i++;
      s += src[i++];
    }
    if (src[i] !== '"') fail('unterminated quote');
    i++;
    return s;
  };
  const value = (field: string, depth: number): Node => {
    if (++terms > MAX_TERMS) fail('too many terms');
    const c = src[i];
    if (c === '"') return termNode(field, quoted(), true);
    if (c === '[' || c === '{') {
      const incLo = c === '[';
      i++;
      ws();
      const lo = src[i] === '"' ? quoted() : bare();
      ws();
      if (!word('TO')) fail('expected TO');
      i += 2;
      ws();
      const hi = src[i] === '"' ? quoted() : bare();
      ws();
      const close = src[i];
      if (close !== ']' && close !== '}') fail('expected ] or }');
      i++;
      if (!lo || !hi) fail('empty range bound');
      return rangeNode(field, lo, hi, incLo, close === ']');
    }
    if (c === '(') {
      // field:(a OR b): each value against the field
      if (depth > MAX_DEPTH) fail('nested too deeply');
      i++;
      const xs: Node[] = [];
      let op: 'and' | 'or' = 'or';
      for (;;) {
        ws();
        if (i >= src.length) fail('missing )');
        if (src[i] === ')') break;
        if (word('OR') || word('||')) {
          i += 2;
          continue;
        }
        if (word('AND') || word('&&')) {
          i += word('AND') ? 3 : 2;
          op = 'and';
          continue;
        }
        xs.push(value(field, depth + 1));
      }
      i++;
      if (!xs.length) fail('empty group');
      return { k: op, xs };
    }
    const v = bare();
    if (!v) fail('expected a value');
    return termNode(field, v, false);
  };
  const primary = (depth: number): Node => {
    if (depth > MAX_DEPTH) fail('nested too deeply');
    ws();
    if (src[i] === '(') {
      i++;
      const n = or(depth + 1);
      ws();
      if (src[i] !== ')') fail('missing )');
      i++;
      return n;
    }
    if (src.startsWith('*:*', i)) {
      i += 3;
      return { k: 'all' };
    }
    const m = /^[A-Za-z_][A-Za-z0-9_.]{0,63}:/.exec(src.slice(i, i + 70));
    if (!m) fail('expected field:value');
    i += m![0].length;
    return value(m![0].slice(0, -1), depth);
  };
  const unary = (depth: number): Node => {
    ws();
    if (src[i] === '-' || src[i] === '!') {
      i++;
      return { k: 'not', x: primary(depth) };
    }
    if (src[i] === '+') {
      i++;
      return primary(depth);
    }
    if (word('NOT')) {
      i += 3;
      return { k: 'not', x: unary(depth + 1) };
    }
    return primary(depth);
  };
  const and = (depth: number): Node => {
    const xs = [unary(depth)];
    for (;;) {
      ws();
      if (i >= src.length || src[i] === ')' || word('OR') || word('||')) break;
      if (word('AND') || word('&&')) {
        i += word('AND') ? 3 : 2;
        ws();
      }
      xs.push(unary(depth));
    }
    return xs.length === 1 ? xs[0]! : { k: 'and', xs };
  };
  const or = (depth: number): Node => {
    const xs = [and(depth)];
    for (;;) {
      ws();
      if (!(word('OR') || word('||'))) break;
      i += 2;
      xs.push(and(depth));
    }
    // a lone negation inside OR means "everything but": Solr's pure-negative clause
    return xs.length === 1 ? xs[0]! : { k: 'or', xs };
  };
  ws();
  if (i >= src.length) return { k: 'all' };
  const n = or(0);
  ws();
  if (i < src.length) fail('unexpected text');
  return n;
}

function evaluate(n: Node, p: Package): boolean {
  switch (n.k) {
    case 'all': return true;
    case 'and': return n.xs.every((x) => evaluate(x, p));
    case 'or': return n.xs.some((x) => evaluate(x, p));
    case 'not': return !evaluate(n.x, p);
    case 'term': return n.test(p);
  }
}

// ---------------------------------------------------------------------------------------------
// the CKAN action API

/** a CKAN error response: status and the `error` object ({__type, ...}) */
class CkanError extends Error {
  constructor(
    readonly status: number,
    readonly error: Record<string, unknown>,
  ) {
    super(String(error.message ?? error.__type));
  }
}
const validation = (fields: Record<string, string[]>) => new CkanError(409, { __type: 'Validation Error', ...fields });
const notFound = (what?: string) => new CkanError(404, { __type: 'Not Found Error', message: what ? `Not found: ${what}` : 'Not found' });

type Data = Record<string, unknown>;
interface Call {
  ctx: ModuleContext;
  req: FastifyRequest;
  data: Data;
}

const ROWS_MAX = 1000;
const FACET_FIELDS = new Set(['organization', 'tags', 'res_format', 'groups', 'license_id', 'extras_update_cycle', 'extras_catalog_kind', 'extras_share_type']);

function str(d: Data, key: string, errors: Record<string, string[]>): string | undefined {
  const v = d[key];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return str({ [key]: v[v.length - 1] }, key, errors);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  errors[key] = ['Must be a string'];
  return undefined;
}
function int(d: Data, key: string, errors: Record<string, string[]>, natural: boolean): number | undefined {
  const raw = str(d, key, errors);
  if (raw === undefined || raw === '') return undefined;
  if (!/^\s*[-+]?\d{1,15}\s*$/.test(raw)) {
    errors[key] = ['Invalid integer'];
    return undefined;
  }
  const n = Number(raw);
  if (natural && n < 0) {
    errors[key] = ['Must be a natural number'];
    return undefined;
  }
  return n;
}
function bool(d: Data, key: string): boolean {
  const v = d[key];
  return v === true || (typeof v === 'string' && ['true', '1', 'yes', 'on'].includes(v.toLowerCase()));
}

const SORT_FIELDS: Record<string, (p: Package, score: number) => string | number> = {
  score: (_p, s) => s,
  metadata_modified: (p) => p.metadata_modified,
  metadata_created: (p) => p.metadata_created,
  name: (p) => p.name,
  title: (p) => p.title,
  title_string: (p) => p.title,
  id: (p) => p.id,
  num_resources: (p) => p.num_resources,
  num_tags: (p) => p.num_tags,
};

function parseSort(sort: string): { field: string; desc: boolean }[] {
  const keys = sort.split(',').map((s) => s.trim()).filter(Boolean);
  if (keys.length > 10) throw new SearchError('too many sort fields');
  return keys.map((k) => {
    const m = /^([a-z_]+)\s+(asc|desc)$/i.exec(k);
    if (!m) throw new SearchError(`Can't determine a Sort Order (asc or desc) in sort spec '${k.slice(0, 60)}'`);
    if (!Object.hasOwn(SORT_FIELDS, m[1]!)) throw new SearchError(`sort param field can't be found: ${m[1]}`);
    return { field: m[1]!, desc: m[2]!.toLowerCase() === 'desc' };
  });
}

async function packageSearch({ ctx, req, data }: Call) {
  const errors: Record<string, string[]> = {};
  const q = str(data, 'q', errors) ?? '';
  const fqs: string[] = [];
  const fq = str(data, 'fq', errors);
  if (fq) fqs.push(fq);
  const fqList = data.fq_list;
  if (fqList !== undefined) {
    const list = typeof fqList === 'string' ? [fqList] : fqList;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) errors.fq_list = ['Not a list of strings'];
    else fqs.push(...list);
  }
  const rowsAsked = int(data, 'rows', errors, true);
  const start = int(data, 'start', errors, true) ?? 0;
  const sort = (str(data, 'sort', errors) ?? '').trim() || 'score desc, metadata_modified desc';
  let facetFields: string[] = [];
  const ff = data['facet.field'];
  if (ff !== undefined && ff !== '') {
    let parsed: unknown = ff;
    if (typeof ff === 'string') {
      try {
        parsed = JSON.parse(ff);
      } catch {
        errors['facet.field'] = ['Could not parse as valid JSON'];
      }
    }
    if (!errors['facet.field']) {
      if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) errors['facet.field'] = ['Not a list'];
      else facetFields = [...new Set(parsed as string[])].slice(0, 20);
    }
  }
  const facetLimit = int(data, 'facet.limit', errors, false) ?? 50;
  const facetMin = int(data, 'facet.mincount', errors, true) ?? 1;
  if (Object.keys(errors).length) throw validation(errors);
  const rows = Math.min(rowsAsked ?? 10, ROWS_MAX);

  let filter: Node[];
  let text: string | null = null;
  let order: { field: string; desc: boolean }[];
  try {
    filter = fqs.map(parseQuery);
    order = parseSort(sort);
    const qt = q.trim();
    if (qt === '' || qt === '*:*' || qt === '*') {
      // everything
    } else if (/^[\s(+-]*(?:\*:\*|[A-Za-z_][A-Za-z0-9_.]*:)/.test(qt)) {
      // fielded, like fq; a free-text query that merely contains a colon falls back to text
      try {
        filter.push(parseQuery(qt));
      } catch {
        text = qt;
      }
    } else {
      text = qt;
    }
  } catch (err) {
    if (err instanceof SearchError) throw new CkanError(409, { __type: 'Search Error', message: `Search error: ${err.message}` });
    throw err;
  }

  const v = await viewOf(ctx, req);
  const entries = await openEntries(ctx, text ?? undefined);
  // relevance: the store's rank order (best first) when there is text; equal otherwise
  const scored = entries.map((e, i) => ({ p: packageOf(v, e), score: text ? entries.length - i : 1 }));
  const hits = scored.filter(({ p }) => filter.every((n) => evaluate(n, p)));
  hits.sort((a, b) => {
    for (const o of order) {
      const x = SORT_FIELDS[o.field]!(a.p, a.score);
      const y = SORT_FIELDS[o.field]!(b.p, b.score);
      if (x !== y) return (x < y ? -1 : 1) * (o.desc ? -1 : 1);
    }
    return a.p.name < b.p.name ? -1 : a.p.name > b.p.name ? 1 : 0;
  });

  const facets: Record<string, Record<string, number>> = {};
  const searchFacets: Record<string, { title: string; items: { name: string; display_name: string; count: number }[] }> = {};
  for (const field of facetFields) {
    const counts = new Map<string, number>();
    const titles = new Map<string, string>();
    if (FACET_FIELDS.has(field)) {
      for (const { p } of hits) {
        const vs = new Set(values(p, field) ?? []);
        for (const x of vs) counts.set(x, (counts.get(x) ?? 0) + 1);
        if (field === 'organization') titles.set(p.organization.name, p.organization.title);
      }
    }
    let items = [...counts].filter(([, n]) => n >= facetMin).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (facetLimit >= 0) items = items.slice(0, facetLimit);
    facets[field] = Object.fromEntries(items);
    searchFacets[field] = {
      title: field,
      items: items.map(([name, count]) => ({ name, display_name: titles.get(name) ?? name, count })).sort((a, b) => (a.display_name < b.display_name ? 1 : a.display_name > b.display_name ? -1 : 0)),
    };
  }
  return { count: hits.length, results: hits.slice(start, start + rows).map((h) => h.p), facets, search_facets: searchFacets, sort };
}

async function findPackage(ctx: ModuleContext, req: FastifyRequest, id: string): Promise<{ v: View; e: Entry }> {
  const v = await viewOf(ctx, req);
  const key = id.trim().toLowerCase();
  const code = codeOfName(key);
  // by name or resource code: one row; by id: the open entries' ids (a v5 UUID cannot be reversed)
  const e = code ? await getEntry(ctx.db, code) : (await openEntries(ctx)).find((x) => packageId(v.cityCode, x.code) === key);
  if (!e || !e.open.open || e.status !== 'active') throw notFound();
  return { v, e };
}

async function packageShow({ ctx, req, data }: Call) {
  const errors: Record<string, string[]> = {};
  const id = str(data, 'id', errors) || str(data, 'name_or_id', errors);
  if (Object.keys(errors).length) throw validation(errors);
  if (!id) throw validation({ name_or_id: ['Missing value'] });
  if (id.length > 200) throw notFound();
  const { v, e } = await findPackage(ctx, req, id);
  return packageOf(v, e);
}

async function packageList({ ctx, data }: Call) {
  const errors: Record<string, string[]> = {};
  const limit = int(data, 'limit', errors, true);
  const offset = int(data, 'offset', errors, true) ?? 0;
  if (Object.keys(errors).length) throw validation(errors);
  const names = (await openEntries(ctx)).map((e) => packageName(e.code)).sort();
  return names.slice(offset, limit === undefined ? undefined : offset + limit);
}

async function organizations(ctx: ModuleContext, v: View): Promise<{ org: Organization; packages: Entry[] }[]> {
  const byDept = new Map<string, Entry[]>();
  for (const e of await openEntries(ctx)) byDept.set(e.provider, [...(byDept.get(e.provider) ?? []), e]);
  return [...byDept].map(([dept, es]) => {
    const first = es.reduce((m, e) => (e.createdAt < m ? e.createdAt : m), es[0]!.createdAt);
    return { org: { ...organizationOf(v, dept, first), package_count: es.length }, packages: es };
  });
}

async function organizationList({ ctx, req, data }: Call) {
  const errors: Record<string, string[]> = {};
  const limit = int(data, 'limit', errors, true);
  const offset = int(data, 'offset', errors, true) ?? 0;
  const sort = (str(data, 'sort', errors) ?? 'title asc').trim();
  if (Object.keys(errors).length) throw validation(errors);
  const m = /^(name|title|package_count)(?:\s+(asc|desc))?$/i.exec(sort);
  if (!m) throw validation({ sort: ['Cannot sort by field `' + sort.slice(0, 40) + '`'] });
  const field = m[1] as 'name' | 'title' | 'package_count';
  const desc = (m[2] ?? 'asc').toLowerCase() === 'desc';
  const orgs = (await organizations(ctx, await viewOf(ctx, req))).map((o) => o.org);
  orgs.sort((a, b) => {
    const x = a[field]!;
    const y = b[field]!;
    return (x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : 1) * (desc ? -1 : 1);
  });
  const page = orgs.slice(offset, limit === undefined ? undefined : offset + limit);
  return bool(data, 'all_fields') ? page : page.map((o) => o.name);
}

async function organizationShow({ ctx, req, data }: Call) {
  const errors: Record<string, string[]> = {};
  const id = str(data, 'id', errors);
  if (Object.keys(errors).length) throw validation(errors);
  if (!id) throw validation({ id: ['Missing value'] });
  const v = await viewOf(ctx, req);
  const found = (await organizations(ctx, v)).find((o) => o.org.name === id.toLowerCase() || o.org.id === id.toLowerCase());
  if (!found) throw notFound();
  return { ...found.org, ...(bool(data, 'include_datasets') ? { packages: found.packages.slice(0, 10).map((e) => packageOf(v, e)) } : {}), users: [], extras: [], groups: [], tags: [] };
}

async function statusShow({ ctx, req }: Call) {
  const city = ctx.profile.city;
  return {
    site_title: `${city.portalName} 公共信息资源目录`,
    site_description: `${city.name}政务信息资源目录（向社会开放部分） / ${city.nameEn} open government information resource catalog`,
    site_url: publicBase(ctx, req),
    ckan_version: '2.10.0',
    error_emails_to: null,
    locale_default: 'zh_Hans_CN',
    extensions: ['gusu-open-catalog'],
  };
}

const HELP: Record<string, string> = {
  package_search: 'Searches the open datasets. Parameters: q (text, Chinese included; *:* for all; or field:value terms), fq / fq_list (organization:, tags:, res_format:, name:, id:, groups:, metadata_modified:[A TO B], ...; clauses are ANDed), rows (default 10, at most 1000), start, sort (score, metadata_modified, metadata_created, name, title, id; asc or desc), facet.field (a JSON list of organization, tags, res_format, ...), facet.limit, facet.mincount.',
  package_show: 'Returns one open dataset. Parameters: id (the dataset name such as 101001-000001, its id, or its resource code).',
  package_list: 'Returns the names of all open datasets. Parameters: limit, offset.',
  organization_list: 'Returns the departments that publish open datasets. Parameters: all_fields, sort (name, title or package_count; asc or desc), limit, offset.',
  organization_show: 'Returns one department. Parameters: id (its name or id), include_datasets.',
  status_show: 'Returns the site and the API it speaks.',
  help_show: 'Returns the help text of an action. Parameters: name.',
};

async function helpShow({ data }: Call) {
  const errors: Record<string, string[]> = {};
  const name = str(data, 'name', errors);
  if (Object.keys(errors).length) throw validation(errors);
  if (!name) throw validation({ name: ['Missing value'] });
  if (!Object.hasOwn(HELP, name)) throw notFound(`Action function not found`);
  return HELP[name];
}

const ACTIONS: Record<string, (c: Call) => Promise<unknown>> = {
  package_search: packageSearch,
  package_show: packageShow,
  package_list: packageList,
  organization_list: organizationList,
  organization_show: organizationShow,
  status_show: statusShow,
  help_show: helpShow,
};

/** CKAN's "Bad request" answer: a JSON string, not an object (ckan/views/api.py _finish_bad_request) */
function badRequest(reply: FastifyReply, message: string, status = 400) {
  return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(`Bad request - ${message}`));
}

/** The request's data like CKAN reads it: a POST body (JSON or form), otherwise the query string. */
function requestData(req: FastifyRequest): { ok: true; data: Data } | { ok: false; message: string } {
  const body = req.body;
  if (req.method === 'POST' && body !== undefined && body !== null && body !== '') {
    let parsed: unknown = body;
    if (typeof body === 'string') {
      try {
        parsed = JSON.parse(body);
      } catch (err) {
        return { ok: false, message: `JSON Error: Error decoding JSON data. Error: ${(err as Error).message.slice(0, 200)}` };
      }
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return { ok: false, message: `JSON Error: Request data JSON decoded to ${JSON.stringify(parsed)?.slice(0, 60)} but it needs to be a dictionary.` };
    }
    return { ok: true, data: { ...(parsed as Data) } };
  }
  return { ok: true, data: { ...((req.query ?? {}) as Data) } };
}

function ckanApi(scope: FastifyInstance, ctx: ModuleContext): void {
  // CKAN reads the body itself: any content type, an empty JSON body is an empty dictionary, bad JSON is CKAN's error
  scope.removeContentTypeParser(['application/json', 'text/plain']);
  scope.addContentTypeParser(['application/json', '*'], { parseAs: 'string', bodyLimit: 256 * 1024 }, (_req, body, done) => done(null, body));
  scope.setErrorHandler((err: FastifyError, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      req.log.error({ err }, 'CKAN API: unhandled error');
      const name = (req.params as { name?: string } | undefined)?.name ?? '';
      return reply.code(500).send({ help: helpUrl(ctx, req, name), success: false, error: { __type: 'Internal Server Error', message: 'Internal Server Error' } });
    }
    return badRequest(reply, err.message.slice(0, 200), status === 404 ? 400 : status);
  });

  const helpUrl = (c: ModuleContext, req: FastifyRequest, name: string) => `${publicBase(c, req)}/api/3/action/help_show?name=${encodeURIComponent(name.slice(0, 100))}`;

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const name = (req.params as { name: string }).name;
    const action = Object.hasOwn(ACTIONS, name) ? ACTIONS[name]! : null;
    if (!action) return badRequest(reply, `Action name not known: ${name.slice(0, 100)}`);
    const help = helpUrl(ctx, req, name);
    const got = requestData(req);
    if (!got.ok) return badRequest(reply, got.message);
    delete got.data.callback; // no JSONP
    try {
      const result = await action({ ctx, req, data: got.data });
      return reply.header('cache-control', 'no-cache').send({ help, success: true, result });
    } catch (err) {
      if (err instanceof CkanError) return reply.code(err.status).send({ help, success: false, error: err.error });
      throw err;
    }
  };

  const schema = {
    tags: ['open-catalog'],
    summary: 'The CKAN Action API (read-only subset) over the public catalog: package_search, package_show, package_list, organization_list, organization_show, status_show, help_show. GET with a query string or POST with a JSON body',
    params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
  };
  for (const url of ['/api/3/action/:name', '/api/action/:name']) {
    scope.route({ method: ['GET', 'POST'], url, schema: { ...schema, hide: url === '/api/action/:name' }, config: { action: OPEN_CATALOG_ACTION }, handler });
  }
}

export function openCatalogRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  app.get(
    '/catalog/dcat.jsonld',
    { schema: { tags: ['open-catalog'], summary: 'The public catalog as DCAT-AP 3 (JSON-LD): one dcat:Catalog published by the city\'s data authority, one dcat:Dataset per open entry', produces: ['application/ld+json'] }, config: { action: OPEN_CATALOG_ACTION } },
    async (req, reply) => {
      const v = await viewOf(ctx, req);
      const doc = dcatDocument(ctx, v, await openEntries(ctx));
      return reply.type('application/ld+json').header('cache-control', 'public, max-age=300').send(JSON.stringify(doc));
    },
  );
  // the CKAN API in a scope of its own: its body parsing and error shapes are CKAN's, not the platform's
  app.register(async (scope) => ckanApi(scope, ctx));
}
