// The catalog's tables: categories and entries (seeded from the city profile, kept by catalog
// administrators), Chinese search with facets, and freshness (数据更新及时性).
import type { Queryable } from '../../db/index.ts';
import { CYCLE_MS, kindOf, type CatalogKind, type Category, type EntryInput, type Item, type ShareMethod, type ShareType, type UpdateCycle } from './model.ts';

export class CatalogError extends Error {
  constructor(
    readonly code: 'not-found' | 'validation' | 'conflict' | 'forbidden',
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

export interface Entry {
  code: string;
  classification: string;
  kind: CatalogKind;
  name: string;
  nameEn: string | null;
  provider: string;
  abstract: string;
  format: { type: string; detail?: string };
  items: Item[];
  share: { type: ShareType; condition: string | null; methods: ShareMethod[]; legalBasis: string | null };
  open: { open: boolean; condition: string | null };
  updateCycle: UpdateCycle;
  published: string;
  related: string[];
  maintainer: { department: string; post: string };
  exchangeResource: string | null;
  status: 'active' | 'withdrawn';
  version: number;
  source: 'profile' | 'api';
  createdAt: Date;
  updatedAt: Date;
}

interface EntryDbRow {
  code: string;
  classification: string;
  kind: CatalogKind;
  name: string;
  name_en: string | null;
  provider: string;
  abstract: string;
  format: { type: string; detail?: string };
  items: Item[];
  share_type: ShareType;
  share_condition: string | null;
  share_methods: ShareMethod[];
  legal_basis: string | null;
  open: boolean;
  open_condition: string | null;
  update_cycle: UpdateCycle;
  published: string;
  related: string[];
  maintainer_department: string;
  maintainer_post: string;
  exchange_resource: string | null;
  status: 'active' | 'withdrawn';
  version: number;
  source: 'profile' | 'api';
  created_at: Date;
  updated_at: Date;
}

const ENTRY_COLUMNS = `code, classification, kind, name, name_en, provider, abstract, format, items, share_type, share_condition, share_methods, legal_basis,
  open, open_condition, update_cycle, to_char(published, 'YYYY-MM-DD') as published, related, maintainer_department, maintainer_post, exchange_resource,
  status, version, source, created_at, updated_at`;

function toEntry(r: EntryDbRow): Entry {
  return {
    code: r.code,
    classification: r.classification,
    kind: r.kind,
    name: r.name,
    nameEn: r.name_en,
    provider: r.provider,
    abstract: r.abstract,
    format: r.format,
    items: r.items,
    share: { type: r.share_type, condition: r.share_condition, methods: r.share_methods, legalBasis: r.legal_basis },
    open: { open: r.open, condition: r.open_condition },
    updateCycle: r.update_cycle,
    published: r.published,
    related: r.related,
    maintainer: { department: r.maintainer_department, post: r.maintainer_post },
    exchangeResource: r.exchange_resource,
    status: r.status,
    version: r.version,
    source: r.source,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The text searched: name, English name, abstract and item names, separated so that each is its own "word" run. */
export function searchText(e: Pick<EntryInput, 'name' | 'nameEn' | 'abstract' | 'items'>): string {
  return [e.name, e.nameEn ?? '', e.abstract, ...e.items.map((i) => i.name)].join(' | ');
}

function entryParams(e: EntryInput): unknown[] {
  return [
    e.code, e.classification, kindOf(e.classification), e.name, e.nameEn ?? null, e.provider, e.abstract, JSON.stringify(e.format), JSON.stringify(e.items),
    e.share.type, e.share.condition ?? null, e.share.methods, e.share.legalBasis ?? null, e.open.open, e.open.condition ?? null, e.updateCycle, e.published,
    e.related, e.maintainer.department, e.maintainer.post, e.exchangeResource ?? null, searchText(e),
  ];
}

const UPSERT = `insert into catalog.entry (code, classification, kind, name, name_en, provider, abstract, format, items, share_type, share_condition, share_methods,
    legal_basis, open, open_condition, update_cycle, published, related, maintainer_department, maintainer_post, exchange_resource, search, source)
  values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
  on conflict (code) do update set classification = excluded.classification, kind = excluded.kind, name = excluded.name, name_en = excluded.name_en,
    provider = excluded.provider, abstract = excluded.abstract, format = excluded.format, items = excluded.items, share_type = excluded.share_type,
    share_condition = excluded.share_condition, share_methods = excluded.share_methods, legal_basis = excluded.legal_basis, open = excluded.open,
    open_condition = excluded.open_condition, update_cycle = excluded.update_cycle, published = excluded.published, related = excluded.related,
    maintainer_department = excluded.maintainer_department, maintainer_post = excluded.maintainer_post, exchange_resource = excluded.exchange_resource,
    search = excluded.search, status = 'active', version = catalog.entry.version + 1, updated_at = now()
  where (catalog.entry.classification, catalog.entry.name, catalog.entry.name_en, catalog.entry.provider, catalog.entry.abstract, catalog.entry.format,
         catalog.entry.items, catalog.entry.share_type, catalog.entry.share_condition, catalog.entry.share_methods, catalog.entry.legal_basis,
         catalog.entry.open, catalog.entry.open_condition, catalog.entry.update_cycle, catalog.entry.published, catalog.entry.related,
         catalog.entry.maintainer_department, catalog.entry.maintainer_post, catalog.entry.exchange_resource, catalog.entry.status)
    is distinct from (excluded.classification, excluded.name, excluded.name_en, excluded.provider, excluded.abstract, excluded.format, excluded.items,
         excluded.share_type, excluded.share_condition, excluded.share_methods, excluded.legal_basis, excluded.open, excluded.open_condition,
         excluded.update_cycle, excluded.published, excluded.related, excluded.maintainer_department, excluded.maintainer_post, excluded.exchange_resource, 'active')
  returning ${ENTRY_COLUMNS}`;

/** The city profile's categories and entries into the tables (an unchanged entry is left as it is; a changed one gets the next version). */
export async function syncProfileCatalog(q: Queryable, categories: readonly Category[], entries: readonly EntryInput[]): Promise<{ changed: number }> {
  if (categories.length) {
    await q.query(
      `insert into catalog.category (code, name, name_en) select * from unnest($1::text[], $2::text[], $3::text[])
       on conflict (code) do update set name = excluded.name, name_en = excluded.name_en`,
      [categories.map((c) => c.code), categories.map((c) => c.name), categories.map((c) => c.nameEn)],
    );
  }
  let changed = 0;
  for (const e of entries) {
    const { rowCount } = await q.query(UPSERT, [...entryParams(e), 'profile']);
    changed += rowCount ?? 0;
  }
  return { changed };
}

/** Creates or updates one entry (the catalog administrator's console or API). */
export async function saveEntry(q: Queryable, e: EntryInput): Promise<{ entry: Entry; changed: boolean }> {
  const other = e.exchangeResource ? (await q.query<{ code: string }>('select code from catalog.entry where exchange_resource = $1 and code <> $2', [e.exchangeResource, e.code])).rows[0] : undefined;
  if (other) throw new CatalogError('conflict', `exchange resource ${e.exchangeResource} already belongs to ${other.code}`);
  const missing = e.related.length ? (await q.query<{ code: string }>('select r as code from unnest($1::text[]) r where not exists (select 1 from catalog.entry where code = r)', [e.related])).rows : [];
  if (missing.length) throw new CatalogError('validation', `related: no entry ${missing.map((m) => m.code).join(', ')}`);
  const { rows } = await q.query<EntryDbRow>(UPSERT, [...entryParams(e), 'api']);
  if (rows[0]) return { entry: toEntry(rows[0]), changed: true };
  return { entry: (await getEntry(q, e.code))!, changed: false };
}

/** Withdraws an entry (it stays for the record; agreements on it stop being honoured). */
export async function withdrawEntry(q: Queryable, code: string): Promise<boolean> {
  const { rowCount } = await q.query(`update catalog.entry set status = 'withdrawn', version = version + 1, updated_at = now() where code = $1 and status = 'active'`, [code]);
  return (rowCount ?? 0) > 0;
}

export async function getEntry(q: Queryable, code: string): Promise<Entry | null> {
  const { rows } = await q.query<EntryDbRow>(`select ${ENTRY_COLUMNS} from catalog.entry where code = $1`, [code]);
  return rows[0] ? toEntry(rows[0]) : null;
}

/** The entry an exchange resource carries, if the catalog names one. */
export async function entryOfResource(q: Queryable, resource: string): Promise<Entry | null> {
  const { rows } = await q.query<EntryDbRow>(`select ${ENTRY_COLUMNS} from catalog.entry where exchange_resource = $1`, [resource]);
  return rows[0] ? toEntry(rows[0]) : null;
}

export async function listCategories(q: Queryable): Promise<Category[]> {
  return (await q.query<Category>('select code, name, name_en as "nameEn" from catalog.category order by code')).rows;
}

// ---------------------------------------------------------------------------------------------
// search

/** 公共信息资源目录 (open to the public), 交换信息资源目录 (shared between departments), or everything (staff). */
export type CatalogView = 'public' | 'exchange' | 'all';

export interface SearchQuery {
  q?: string;
  view?: CatalogView;
  provider?: string;
  /** a category code: its entries and those of every category under it */
  classification?: string;
  shareType?: ShareType;
  updateCycle?: UpdateCycle;
  kind?: CatalogKind;
  /** also withdrawn entries (staff only) */
  withdrawn?: boolean;
  sort?: 'relevance' | 'name' | 'code' | 'published' | 'updated';
  limit?: number;
  offset?: number;
  /** compute facets (off for callers that only want the page, e.g. the CKAN API without facet.field) */
  facets?: boolean;
}

export interface FacetValue {
  value: string;
  count: number;
}

export interface SearchResult {
  total: number;
  items: (Entry & { score: number | null })[];
  facets: { provider: FacetValue[]; classification: FacetValue[]; shareType: FacetValue[]; updateCycle: FacetValue[]; kind: FacetValue[] } | null;
}

export const MAX_QUERY_CHARS = 100;
export const MAX_PAGE = 100;
/** how much of a query's trigrams must appear in a run of the text: 0.4 lets one character in five be missing or extra */
const WORD_SIMILARITY = 0.4;

/**
 * Searches names, abstracts and items (Chinese included): `户籍` finds 户籍人口信息, and a missing or
 * extra character still finds it. First the query's exact characters (`like`: the trigram index for 3
 * or more characters, the stored bigram index for 2, a scan for 1); when they are nowhere and the
 * query has 3 or more characters, a close run of the text (`<%`: trigram word similarity ≥ 0.4, about
 * one character in five missing, extra or wrong). Ranked: the characters in the name, at its start,
 * shorter names first; fuzzy matches by similarity of the name, then the text. The page and the
 * facets come from one pass over the matches.
 */
export async function searchEntries(q: Queryable, s: SearchQuery): Promise<SearchResult> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const text = normaliseQuery(s.q);
  if (!s.withdrawn) where.push(`e.status = 'active'`);
  if (s.view === 'public') where.push('e.open');
  if (s.view === 'exchange') where.push(`e.share_type <> 'none'`);
  if (s.provider) where.push(`e.provider = ${p(s.provider)}`);
  if (s.classification) where.push(`e.classification like ${p(s.classification.replace(/[^0-9]/g, '') + '%')}`);
  if (s.shareType) where.push(`e.share_type = ${p(s.shareType)}`);
  if (s.updateCycle) where.push(`e.update_cycle = ${p(s.updateCycle)}`);
  if (s.kind) where.push(`e.kind = ${p(s.kind)}`);
  const chars = [...text].length;
  const base = [...where];
  // exact: the query's characters as they are; fuzzy (3 or more characters, when exact finds nothing):
  // a close run of the text by trigram similarity
  const baseParams = [...params];
  const plan = (mode: 'exact' | 'fuzzy'): { cond: string; score: string; params: unknown[] } => {
    const w = [...base];
    const own = [...baseParams];
    const p = (v: unknown) => (own.push(v), `$${own.length}`);
    let score = 'null::real';
    if (text) {
      const t = p(text);
      if (chars === 2) w.push(`e.grams @> array[${t}]::text[]`);
      if (mode === 'exact') {
        const pat = p('%' + text.replace(/[\\%_]/g, (c) => '\\' + c) + '%');
        w.push(`e.search like ${pat}`);
        score = `((case when e.name like ${pat} then 2 else 0 end) + (case when position(${t} in e.name) = 1 then 1 else 0 end) + 1.0 / (1 + length(e.name)))::real`;
      } else {
        w.push(`${t} <% e.search`);
        score = `(word_similarity(${t}, e.name) * 2 + word_similarity(${t}, e.search))::real`;
      }
    }
    return { cond: w.length ? `where ${w.join(' and ')}` : '', score, params: own };
  };
  const sort = s.sort ?? (text ? 'relevance' : 'code');
  const order = { relevance: 'score desc nulls last, code', name: 'name, code', code: 'code', published: 'published desc, code', updated: 'updated_at desc, code' }[sort];
  const limit = Math.min(Math.max(s.limit ?? 20, 0), MAX_PAGE);
  const offset = Math.max(s.offset ?? 0, 0);
  const facetsWanted = s.facets !== false;
  const sqlOf = ({ cond, score }: { cond: string; score: string }) => `
    with m as materialized (
      select e.code, e.name, e.provider, left(e.classification, 3) as cls, e.share_type, e.update_cycle, e.kind, e.published, e.updated_at, ${score} as score
        from catalog.entry e ${cond}),
    page as (select code, score from m order by ${order} limit ${limit} offset ${offset})
    select (select count(*) from m)::int as total,
           (select coalesce(json_agg(json_build_object('code', code, 'score', score)), '[]') from page) as page,
           ${facetsWanted ? `(select coalesce(json_agg(json_build_object('k', k, 'v', v, 'n', n)), '[]') from (
              select case when grouping(provider) = 0 then 'provider' when grouping(cls) = 0 then 'classification' when grouping(share_type) = 0 then 'shareType'
                          when grouping(update_cycle) = 0 then 'updateCycle' else 'kind' end as k,
                     coalesce(provider, cls, share_type, update_cycle, kind) as v, count(*)::int as n
                from m group by grouping sets ((provider), (cls), (share_type), (update_cycle), (kind))) f)` : `'[]'::json`} as facets`;
  const exact = plan('exact');
  const fuzzy = chars >= 3 ? plan('fuzzy') : null;
  type Row = { total: number; page: { code: string; score: number | null }[]; facets: { k: keyof NonNullable<SearchResult['facets']>; v: string; n: number }[] };
  const run = async (c: Queryable) => {
    let r = (await c.query<Row>(sqlOf(exact), exact.params)).rows[0]!;
    if (r.total === 0 && fuzzy) {
      // the planner prices <% as free and would scan the table with it: the trigram index does the work
      await c.query(`select set_config('pg_trgm.word_similarity_threshold', '${WORD_SIMILARITY}', true), set_config('enable_seqscan', 'off', true)`);
      r = (await c.query<Row>(sqlOf(fuzzy), fuzzy.params)).rows[0]!;
    }
    const codes = r.page.map((x) => x.code);
    const rows = codes.length ? (await c.query<EntryDbRow>(`select ${ENTRY_COLUMNS} from catalog.entry where code = any($1::text[])`, [codes])).rows : [];
    const byCode = new Map(rows.map((x) => [x.code, x]));
    const items = r.page.filter((x) => byCode.has(x.code)).map((x) => ({ ...toEntry(byCode.get(x.code)!), score: x.score === null ? null : Number(x.score) }));
    let facets: SearchResult['facets'] = null;
    if (facetsWanted) {
      facets = { provider: [], classification: [], shareType: [], updateCycle: [], kind: [] };
      for (const f of r.facets) facets[f.k].push({ value: f.v, count: f.n });
      for (const list of Object.values(facets)) list.sort((a, b) => b.count - a.count || a.value.localeCompare(b.value));
    }
    return { total: r.total, items, facets };
  };
  const db = q as { tx?: <T>(fn: (c: Queryable) => Promise<T>) => Promise<T> };
  // set_config(..., true) lasts for the transaction: run in one so the settings apply and do not leak
  return fuzzy && typeof db.tx === 'function' ? db.tx(run) : run(q);
}

/** Trims, folds full-width ASCII, collapses spaces, caps the length; empty means no text filter. */
export function normaliseQuery(q: string | undefined): string {
  if (!q) return '';
  const folded = q.normalize('NFKC').replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/\s+/g, ' ').trim();
  return [...folded].slice(0, MAX_QUERY_CHARS).join('');
}

// ---------------------------------------------------------------------------------------------
// freshness

/** Data for an entry arrived (the exchange on publish, a registry on load): for the freshness check. */
export async function noteArrival(q: Queryable, code: string, at: Date = new Date(), count = 1): Promise<void> {
  await q.query(
    `insert into catalog.arrival (entry, last_at, count) select code, $2, $3 from catalog.entry where code = $1
     on conflict (entry) do update set last_at = greatest(catalog.arrival.last_at, excluded.last_at), count = catalog.arrival.count + excluded.count`,
    [code, at, count],
  );
}

export interface Freshness {
  code: string;
  name: string;
  provider: string;
  maintainer: { department: string; post: string };
  updateCycle: UpdateCycle;
  lastArrival: Date | null;
  arrivals: number;
  /** when data is next due: last arrival (or publication) plus the cycle; null for 不定期 */
  dueAt: Date | null;
  late: boolean;
}

/** Every active entry's freshness (late first), optionally one department's. */
export async function freshness(q: Queryable, opts: { department?: string; lateOnly?: boolean; now?: Date } = {}): Promise<Freshness[]> {
  const now = opts.now ?? new Date();
  const { rows } = await q.query<{ code: string; name: string; provider: string; md: string; mp: string; cycle: UpdateCycle; last_at: Date | null; count: string | null; published: Date }>(
    `select e.code, e.name, e.provider, e.maintainer_department as md, e.maintainer_post as mp, e.update_cycle as cycle, a.last_at, a.count, e.published::timestamptz as published
       from catalog.entry e left join catalog.arrival a on a.entry = e.code
      where e.status = 'active' ${opts.department ? 'and (e.provider = $1 or e.maintainer_department = $1)' : ''} order by e.code`,
    opts.department ? [opts.department] : [],
  );
  const out = rows.map((r) => {
    const span = CYCLE_MS[r.cycle];
    const since = r.last_at ?? r.published;
    const dueAt = span === null ? null : new Date(since.getTime() + span);
    return {
      code: r.code,
      name: r.name,
      provider: r.provider,
      maintainer: { department: r.md, post: r.mp },
      updateCycle: r.cycle,
      lastArrival: r.last_at,
      arrivals: Number(r.count ?? 0),
      dueAt,
      late: dueAt !== null && dueAt.getTime() < now.getTime(),
    };
  });
  const list = opts.lateOnly ? out.filter((f) => f.late) : out;
  return list.sort((a, b) => Number(b.late) - Number(a.late) || a.code.localeCompare(b.code));
}
