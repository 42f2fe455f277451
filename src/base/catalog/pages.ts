// 政务信息资源目录 — the catalog's pages: the staff console (internal face) and the public catalog.
//
//   GET  /console/catalog                            search the catalog: keywords, facets with counts (provider,
//                                                    classification 类/项, share type, update cycle, kind), the
//                                                    views 全部 / 交换目录 / 公共目录, sort, pages
//   GET  /console/catalog/entries/:cls/:seq          one entry: all its core metadata, items, sharing, freshness,
//                                                    related entries, and what the viewer's department may use
//   GET  /console/catalog/agreements                 the department's agreements (as consumer and provider; all
//                                                    of them for catalog administrators and security officers)
//   GET  /console/catalog/agreements/new?entry=CODE  the request form (purpose, legal basis, items, term)
//   POST /console/catalog/agreements                 (CSRF) requestAgreement + startReview → the agreement
//   GET  /console/catalog/agreements/:id             one agreement; the provider's decision form, revoke, withdraw
//   POST /console/catalog/agreements/:id/decision    (CSRF) approve / narrow / refuse through the review task
//   POST /console/catalog/agreements/:id/revoke      (CSRF) the provider's lead or a catalog administrator
//   POST /console/catalog/agreements/:id/withdraw    (CSRF) the consumer, while the request is under review
//   GET  /console/catalog/freshness                  数据更新及时性: on time / late / irregular, late first
//   GET  /catalog                                    公共信息资源目录: open entries only, search and facets
//   GET  /catalog/entries/:cls/:seq                  one open entry (404 for any other)
//
// Plain HTML forms without script. Every change goes through the catalog's own functions (the same
// the JSON API uses, which write the audit log), with the same policy checks.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html, type Html } from '../../http/html.ts';
import { isLang, requestLang, tr, type Lang, type Text } from '../../http/i18n.ts';
import { addConsoleNav, figures, formatDateTime, formatNumber, notice, sendPage, table, type Crumb } from '../../http/layout.ts';
import { fill, M } from '../../http/messages.ts';
import { HttpProblem, problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { allow, hasRole, type Actor, type Rule } from '../identity/policy.ts';
import { checkCsrf, csrfField, needsCsrf } from '../identity/sessions/csrf.ts';
import { canWorkOn, terminateInstance, type Engine } from '../workflow/index.ts';
import { CATALOG_KINDS, SHARE_TYPES, UPDATE_CYCLES, type Category } from './model.ts';
import { CatalogError, freshness, getEntry, listCategories, searchEntries, type Entry, type FacetValue, type SearchQuery } from './store.ts';
import {
  accessFor,
  getAgreement,
  listAgreements,
  requestAgreement,
  requestProblems,
  revokeAgreement,
  withdrawAgreement,
  AGREEMENT_STATUSES,
  MAX_TERM_DAYS,
  type Agreement,
  type AgreementStatus,
} from './agreements.ts';
import { startReview } from './review.ts';
import { decideThroughTask, readableEntry } from './api.ts';
import { C, CATALOG_NAV_LABEL } from './messages.ts';

export { CATALOG_NAV_LABEL } from './messages.ts';

/** who may see the catalog's pages (the POST handlers use catalogPolicy's sharing-agreement rules) */
export const catalogPagePolicy: readonly Rule[] = [
  ...allow('staff', 'read', 'catalog-console'),
  ...allow('anyone', 'read', 'public-catalog'),
];

const HOME = '/console/catalog';
const AGREEMENTS = `${HOME}/agreements`;
const PUBLIC = '/catalog';
const PER_PAGE = 20;
/** the first values of a long facet, the rest behind a disclosure */
const FACET_SHOWN = 5;

// ---------------------------------------------------------------------------------------------
// Schemas: everything a browser (or anyone) can put in a URL or a form is bounded

const LangQ = Type.Optional(Type.String({ maxLength: 10 }));
const Page = Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 }));
const NO_CONTROL = '^[^\\u0000-\\u001F\\u007F]*$';
/** free text from a form: no control characters but tab and line breaks (PostgreSQL text holds no NUL) */
const FreeText = (maxLength: number) => Type.Optional(Type.String({ maxLength, pattern: '^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$' }));
const DEPT = '[A-Z][A-Z0-9]*(-[A-Z0-9]+)+';
const OptDept = Type.Optional(Type.String({ pattern: `^(${DEPT})?$`, maxLength: 40 }));
const OptEnum = (values: readonly string[]) => Type.Optional(Type.Enum(['', ...values]));
const Csrf = Type.Optional(Type.String({ maxLength: 200 }));
const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const CodeParams = Type.Object({ cls: Type.String({ pattern: '^[1-3][0-9]{5}([0-9]{2})?$' }), seq: Type.String({ pattern: '^[0-9]{6}$' }) });
const ENTRY_CODE_RE = '[1-3][0-9]{5}([0-9]{2})?/[0-9]{6}';
const ItemField = Type.String({ maxLength: 64 });
const Items = Type.Optional(Type.Union([ItemField, Type.Array(ItemField, { maxItems: 500 })]));

const SORTS = ['relevance', 'code', 'name', 'published', 'updated'] as const;
const VIEWS = ['all', 'exchange', 'public'] as const;
const SearchQ = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 200, pattern: NO_CONTROL })),
  view: OptEnum(VIEWS),
  provider: OptDept,
  classification: Type.Optional(Type.String({ pattern: '^([1-3][0-9]{0,7})?$' })),
  shareType: OptEnum(SHARE_TYPES),
  updateCycle: OptEnum(UPDATE_CYCLES),
  kind: OptEnum(CATALOG_KINDS),
  sort: OptEnum(SORTS),
  page: Page,
  lang: LangQ,
});
type SearchQ = {
  q?: string;
  view?: '' | (typeof VIEWS)[number];
  provider?: string;
  classification?: string;
  shareType?: string;
  updateCycle?: string;
  kind?: string;
  sort?: string;
  page?: number;
  lang?: string;
};
const AgreementsQ = Type.Object({ status: OptEnum(AGREEMENT_STATUSES), role: OptEnum(['consumer', 'provider']), department: OptDept, page: Page, lang: LangQ });
const NewQ = Type.Object({ entry: Type.String({ pattern: `^${ENTRY_CODE_RE}$`, maxLength: 20 }), lang: LangQ });
const RequestForm = Type.Object(
  {
    _csrf: Csrf,
    entry: Type.String({ pattern: `^${ENTRY_CODE_RE}$`, maxLength: 20 }),
    purpose: FreeText(2000),
    legalBasis: FreeText(2000),
    item: Items,
    termStart: Type.Optional(Type.String({ maxLength: 10, pattern: NO_CONTROL })),
    termEnd: Type.Optional(Type.String({ maxLength: 10, pattern: NO_CONTROL })),
    lang: LangQ,
  },
  { additionalProperties: false },
);
type RequestForm = { entry: string; purpose?: string; legalBasis?: string; item?: string | string[]; termStart?: string; termEnd?: string; lang?: string };
const IdParams = Type.Object({ id: Uuid });
const AgreementQ = Type.Object({ done: OptEnum(['requested', 'decided', 'revoked', 'withdrawn']), lang: LangQ });
const DecisionForm = Type.Object(
  { _csrf: Csrf, outcome: OptEnum(['approve', 'narrow', 'refuse']), item: Items, note: FreeText(2000), lang: LangQ },
  { additionalProperties: false },
);
type DecisionForm = { outcome?: '' | 'approve' | 'narrow' | 'refuse'; item?: string | string[]; note?: string; lang?: string };
const RevokeForm = Type.Object({ _csrf: Csrf, reason: FreeText(2000), lang: LangQ }, { additionalProperties: false });
const WithdrawForm = Type.Object({ _csrf: Csrf, lang: LangQ }, { additionalProperties: false });
const FreshnessQ = Type.Object({ department: OptDept, late: OptEnum(['1']), lang: LangQ });

function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

// ---------------------------------------------------------------------------------------------
// Formatting

const T = (text: Text, lang: Lang, values?: Record<string, string | number>) => (values ? fill(tr(text, lang), values) : tr(text, lang));
const msg = (key: string): Text => (C as Record<string, Text>)[key] ?? { zh: key, en: key };
const colon = (lang: Lang) => (lang === 'en' ? ': ' : '：');
const listSep = (lang: Lang) => (lang === 'en' ? ', ' : '、');

const DATE: Record<Lang, Intl.DateTimeFormat> = {
  'zh-CN': new Intl.DateTimeFormat('zh-CN', { dateStyle: 'medium', timeZone: 'Asia/Shanghai' }),
  en: new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'Asia/Shanghai' }),
};
const formatDate = (d: Date, lang: Lang) => DATE[lang].format(d);

function withLang(href: string, lang: string | undefined): string {
  if (!isLang(lang)) return href;
  return `${href}${href.includes('?') ? '&' : '?'}lang=${encodeURIComponent(lang)}`;
}

function hrefWith(path: string, params: Record<string, string | number | undefined | null>, lang: string | undefined): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  if (isLang(lang)) p.set('lang', lang);
  const qs = p.toString();
  return qs ? `${path}?${qs}` : path;
}

const entryPath = (base: string, code: string) => `${base}/entries/${code}`;
const deptOf = (a: Actor): string => (a.kind === 'staff' || a.kind === 'system' ? a.department : '');
const oversees = (a: Actor) => hasRole(a, 'catalog-admin') || hasRole(a, 'security-officer') || hasRole(a, 'platform-admin');

function badge(kind: 'ok' | 'problem' | 'planned', text: string): Html {
  return html`<span class="badge badge-${kind}">${text}</span>`;
}

function shareBadge(type: string, lang: Lang): Html {
  return badge(type === 'unconditional' ? 'ok' : type === 'conditional' ? 'planned' : 'problem', T(msg(`share_${type}`), lang));
}

function openMark(open: boolean, lang: Lang): Html {
  return open ? badge('ok', T(C.openYes, lang)) : html`<span class="muted">${T(C.openNo, lang)}</span>`;
}

/** an agreement's state in words: 审核中 / 处理中 (decided, being recorded) / 已同意 / 已过期 … */
function agreementBadge(a: Agreement, processing: boolean, lang: Lang, today: string): Html {
  if (a.status === 'requested') return processing ? badge('planned', T(C.agreement_processing, lang)) : badge('planned', T(C.agreement_requested, lang));
  if (a.status === 'approved') {
    if (a.termEnd < today) return badge('problem', T(C.agreement_expired, lang));
    if (a.termStart > today) return badge('planned', T(C.agreement_notStarted, lang));
    return badge('ok', T(a.narrowed ? C.agreement_narrowed : C.agreement_approved, lang));
  }
  return badge('problem', T(msg(`agreement_${a.status}`), lang));
}

function option(value: string, label: string, selected: boolean): Html {
  return html`<option value="${value}"${selected ? html` selected` : ''}>${label}</option>`;
}

function selectField(o: { name: string; label: string; options: Html[]; hint?: string }): Html {
  const id = `f-${o.name}`;
  return html`<div class="field">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${o.hint}</p>` : ''}
<select id="${id}" name="${o.name}"${o.hint ? html` aria-describedby="${id}-hint"` : ''}>${o.options}</select>
</div>`;
}

interface FieldOpts {
  name: string;
  label: string;
  hint?: string;
  error?: string;
  value?: string;
  type?: 'text' | 'date' | 'textarea';
  maxlength?: number;
  required?: boolean;
}

function inputField(o: FieldOpts): Html {
  const id = `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const common = html` id="${id}" name="${o.name}"${o.required ? html` required` : ''}${o.maxlength ? html` maxlength="${o.maxlength}"` : ''}${described ? html` aria-describedby="${described}"` : ''}${o.error ? html` aria-invalid="true"` : ''}`;
  const input = o.type === 'textarea' ? html`<textarea${common} rows="4">${o.value ?? ''}</textarea>` : html`<input type="${o.type ?? 'text'}"${common} value="${o.value ?? ''}">`;
  return html`<div class="field${o.error ? ' field-invalid' : ''}">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${o.hint}</p>` : ''}
${o.error ? html`<p class="field-error" id="${id}-error">${o.error}</p>` : ''}
${input}
</div>`;
}

/** errors at the top of a form, each linking to its field */
function errorSummary(errors: Record<string, string>, lang: Lang, general: string[] = []): Html | string {
  const entries = Object.entries(errors);
  if (!entries.length && !general.length) return '';
  return html`<div class="notice notice-warning error-summary" role="alert" tabindex="-1" id="error-summary"><p class="notice-title">${T(C.errorTitle, lang)}</p><ul>${general.map(
    (g) => html`<li>${g}</li>`,
  )}${entries.map(([name, text]) => html`<li><a href="#f-${name}">${text}</a></li>`)}</ul></div>`;
}

function pager(lang: Lang, page: number, pages: number, href: (p: number) => string): Html {
  if (pages <= 1 && page <= 1) return html``;
  return html`<nav aria-label="${T(C.pagination, lang)}"><p class="form-inline">${
    page > 1 ? html`<a class="button button-secondary button-small" href="${href(Math.min(page - 1, pages))}" rel="prev">${T(C.previous, lang)}</a> ` : ''
  }${page < pages ? html`<a class="button button-secondary button-small" href="${href(page + 1)}" rel="next">${T(C.next, lang)}</a>` : ''}</p></nav>`;
}

function beyond(lang: Lang, page: number, pages: number, href: (p: number) => string): Html | string {
  return page > pages ? notice({ kind: 'warning', body: html`<p>${T(C.beyondLast, lang, { page, pages })} <a href="${href(pages)}">${T(C.lastPage, lang)}</a></p>` }) : '';
}

const keepLangField = (ql: string | undefined) => (isLang(ql) ? html`<input type="hidden" name="lang" value="${ql}">` : '');
const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

// ---------------------------------------------------------------------------------------------
// What both faces share: department and category names, the search page

interface Shared {
  ctx: ModuleContext;
  deptName(code: string | null | undefined, lang: Lang, full?: boolean): string;
  categories(): Promise<Map<string, Category>>;
}

function shared(ctx: ModuleContext): Shared {
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  let cats: { at: number; map: Map<string, Category> } | null = null;
  return {
    ctx,
    deptName(code, lang, full = false) {
      if (!code) return '—';
      const d = departments.get(code);
      return d ? (lang === 'en' ? d.nameEn : full ? d.name : d.abbr) : code;
    },
    // the classification changes with the city profile (and rarely): kept for a minute
    async categories() {
      if (!cats || Date.now() - cats.at > 60_000) cats = { at: Date.now(), map: new Map((await listCategories(ctx.db)).map((c) => [c.code, c])) };
      return cats.map;
    },
  };
}

const catName = (c: Category | undefined, code: string, lang: Lang) => (c ? (lang === 'en' ? c.nameEn : c.name) : code);
const entryName = (e: Pick<Entry, 'name' | 'nameEn'>, lang: Lang) => (lang === 'en' && e.nameEn ? e.nameEn : e.name);

/** 类 › 项 › 目 › 细目 of a classification code, by name */
function classificationPath(code: string, cats: Map<string, Category>, lang: Lang): Html {
  const parts = [1, 3, 6, 8].filter((n) => n <= code.length).map((n) => code.slice(0, n));
  return html`${parts.map((p, i) => html`${i ? ' › ' : ''}${catName(cats.get(p), p, lang)}`)} <code>${code}</code>`;
}

type Face = 'console' | 'public';

async function searchPage(s: Shared, face: Face, req: FastifyRequest, reply: FastifyReply) {
  const lang = requestLang(req);
  const q = req.query as SearchQ;
  const ql = q.lang;
  const base = face === 'console' ? HOME : PUBLIC;
  const view = face === 'public' ? 'public' : q.view || 'all';
  const page = q.page ?? 1;
  const filters = {
    provider: q.provider || undefined,
    classification: q.classification || undefined,
    shareType: face === 'public' ? undefined : q.shareType || undefined,
    updateCycle: q.updateCycle || undefined,
    kind: q.kind || undefined,
  };
  const text = (q.q ?? '').trim();
  const sort = (q.sort || undefined) as SearchQuery['sort'];
  const [found, cats] = await Promise.all([
    searchEntries(s.ctx.db, { q: text, view, ...filters, shareType: filters.shareType as SearchQuery['shareType'], updateCycle: filters.updateCycle as SearchQuery['updateCycle'], kind: filters.kind as SearchQuery['kind'], sort, limit: PER_PAGE, offset: (page - 1) * PER_PAGE }),
    s.categories(),
  ]);
  const pages = Math.max(1, Math.ceil(found.total / PER_PAGE));
  const state: Record<string, string | undefined> = { q: text || undefined, view: face === 'console' && view !== 'all' ? view : undefined, ...filters, sort: q.sort || undefined };
  const href = (change: Record<string, string | number | undefined>) => hrefWith(base, { ...state, ...change }, ql);
  const pageHref = (p: number) => href({ page: p > 1 ? p : undefined });

  const facetLabel: Record<string, (v: string) => string> = {
    provider: (v) => s.deptName(v, lang),
    classification: (v) => catName(cats.get(v), v, lang),
    shareType: (v) => T(msg(`share_${v}`), lang),
    updateCycle: (v) => T(msg(`cycle_${v}`), lang),
    kind: (v) => T(msg(`kind_${v}`), lang),
  };
  const facetTitle: Record<string, Text> = { provider: C.facetProvider, classification: C.facetClassification, shareType: C.facetShareType, updateCycle: C.facetUpdateCycle, kind: C.facetKind };
  const facetKeys = (face === 'public' ? ['provider', 'classification', 'updateCycle', 'kind'] : ['provider', 'classification', 'shareType', 'updateCycle', 'kind']) as (keyof typeof filters)[];

  // the facets: each value a link that adds it; the chosen one marked (and removed from 当前条件)
  const facetGroup = (key: keyof typeof filters, values: FacetValue[]) => {
    const chosen = filters[key];
    const li = (f: FacetValue) => {
      const label = facetLabel[key]!(f.value);
      const text = T(C.facetCount, lang, { label, n: formatNumber(f.count, lang) });
      return chosen === f.value || (key === 'classification' && chosen?.startsWith(f.value))
        ? html`<li><span aria-current="true"><strong>${text}</strong> <span class="muted">${T(C.selected, lang)}</span></span></li>`
        : html`<li><a href="${href({ [key]: f.value, page: undefined })}">${text}</a></li>`;
    };
    const first = values.slice(0, FACET_SHOWN);
    const rest = values.slice(FACET_SHOWN);
    return html`<h3 id="facet-${key}">${T(facetTitle[key]!, lang)}</h3>
${values.length ? html`<ul class="link-list" aria-labelledby="facet-${key}">${first.map(li)}</ul>` : html`<p class="muted">${T(C.facetNone, lang)}</p>`}
${rest.length ? html`<details><summary>${T(C.facetMore, lang, { n: rest.length })}</summary><ul class="link-list">${rest.map(li)}</ul></details>` : ''}`;
  };
  const facets = found.facets!;
  const facetValues: Record<string, FacetValue[]> = { provider: facets.provider, classification: facets.classification, shareType: facets.shareType, updateCycle: facets.updateCycle, kind: facets.kind };

  const active = facetKeys.filter((k) => filters[k]);
  const activeList = active.length || text
    ? html`<h3 id="active-filters" class="visually-hidden">${T(C.activeFilters, lang)}</h3><ul class="actions" aria-labelledby="active-filters">${[
        ...(text ? [html`<li><a href="${href({ q: undefined, page: undefined, sort: undefined })}">${T(C.removeFilter, lang, { what: `${T(C.q, lang)}${colon(lang)}${text}` })}</a></li>`] : []),
        ...active.map((k) => html`<li><a href="${href({ [k]: undefined, page: undefined })}">${T(C.removeFilter, lang, { what: `${T(facetTitle[k]!, lang)}${colon(lang)}${facetLabel[k]!(filters[k]!)}` })}</a></li>`),
      ]}</ul>`
    : '';

  const viewTabs =
    face === 'console'
      ? html`<nav class="tabs" aria-label="${T(C.views, lang)}"><ul>${VIEWS.map((v) =>
          v === view ? html`<li><span aria-current="page">${T(msg(`view_${v}`), lang)}</span></li>` : html`<li><a href="${href({ view: v === 'all' ? undefined : v, page: undefined })}">${T(msg(`view_${v}`), lang)}</a></li>`,
        )}</ul></nav>`
      : '';

  const form = html`<h2 id="search">${T(C.searchHeading, lang)}</h2>
<form class="form" method="get" action="${base}" role="search" aria-labelledby="search">
${keepLangField(ql)}
${face === 'console' && view !== 'all' ? html`<input type="hidden" name="view" value="${view}">` : ''}
${facetKeys.map((k) => (filters[k] ? html`<input type="hidden" name="${k}" value="${filters[k]}">` : ''))}
${inputField({ name: 'q', label: T(C.q, lang), hint: T(C.qHint, lang), value: text, maxlength: 100 })}
${selectField({ name: 'sort', label: T(C.sort, lang), options: SORTS.map((o) => option(o, T(msg(`sort_${o}`), lang), (q.sort || (text ? 'relevance' : 'code')) === o)) })}
<p class="form-inline"><button class="button" type="submit">${T(C.search, lang)}</button>${
    text || active.length ? html` <a class="button button-secondary" href="${withLang(face === 'console' && view !== 'all' ? `${base}?view=${view}` : base, ql)}">${T(C.clearAll, lang)}</a>` : ''
  }</p>
</form>`;

  const results = found.items.map((e) => {
    // a name keeps a readable width (the table scrolls sideways on a phone instead of wrapping it a character a line)
    const link = html`<span class="cell-wide"><a href="${withLang(entryPath(base, e.code), ql)}">${entryName(e, lang)}</a></span>`;
    return face === 'console'
      ? [link, html`<code>${e.code}</code>`, s.deptName(e.provider, lang), shareBadge(e.share.type, lang), T(msg(`cycle_${e.updateCycle}`), lang), openMark(e.open.open, lang)]
      : [link, html`<code>${e.code}</code>`, s.deptName(e.provider, lang), T(msg(`cycle_${e.updateCycle}`), lang), e.published];
  });
  const columns =
    face === 'console'
      ? [
          { label: T(C.name, lang) },
          { label: T(C.code, lang), nowrap: true },
          { label: T(C.provider, lang), nowrap: true },
          { label: T(C.shareType, lang), nowrap: true },
          { label: T(C.updateCycle, lang), nowrap: true },
          { label: T(C.open, lang), nowrap: true },
        ]
      : [{ label: T(C.name, lang) }, { label: T(C.code, lang), nowrap: true }, { label: T(C.provider, lang), nowrap: true }, { label: T(C.updateCycle, lang), nowrap: true }, { label: T(C.published, lang), nowrap: true }];

  const body = html`<div class="console-grid">
<nav class="catalog-facets" aria-labelledby="facets">
<h2 id="facets">${T(C.filters, lang)}</h2>
<p><a href="#results">${T(C.skipToResults, lang)}</a></p>
${facetKeys.map((k) => facetGroup(k, facetValues[k]!))}
</nav>
<div class="console-content">
<h2 id="results" tabindex="-1">${T(C.results, lang)}</h2>
<p>${T(C.resultsCount, lang, { n: formatNumber(found.total, lang), page, pages })}${text ? html` · ${T(C.resultsFor, lang, { q: text })}` : ''}</p>
${activeList}
${beyond(lang, page, pages, pageHref)}
${table({ lang, caption: T(face === 'console' ? C.resultsCaption : C.publicResultsCaption, lang), captionHidden: true, rowHeaders: true, columns, rows: results, empty: T(C.noResults, lang) })}
${pager(lang, page, pages, pageHref)}
</div>
</div>`;

  if (face === 'console') {
    const title = T(C.title, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: [{ label: tr(M.consoleHome, lang), href: '/console' }, { label: title }],
      main: html`<h1>${title}</h1>
<p class="lead">${T(C.lead, lang)}</p>
${sectionTabs(HOME, lang, ql)}
${viewTabs}
${form}
${body}`,
    });
  }
  const title = T(C.publicTitle, lang);
  return sendPage(req, reply, {
    lang,
    title,
    description: T(C.publicLead, lang),
    breadcrumbs: [{ label: tr(M.home, lang), href: '/' }, { label: T(C.disclosure, lang), href: '/disclosure' }, { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${T(C.publicLead, lang)}</p>
${form}
${body}
${machineLinks(lang)}`,
  });
}

function machineLinks(lang: Lang): Html {
  return html`<h2 id="machine">${T(C.machineReadable, lang)}</h2>
<ul class="actions" aria-labelledby="machine"><li><a href="/catalog/dcat.jsonld" type="application/ld+json">${T(C.dcat, lang)}</a></li><li><a href="/api/3/action/package_search">${T(C.ckan, lang)}</a></li></ul>`;
}

/** the console's catalog pages as tabs, the current one marked */
function sectionTabs(current: string, lang: Lang, ql: string | undefined): Html {
  const items: [string, Text][] = [
    [HOME, C.searchTab],
    [AGREEMENTS, C.agreementsTab],
    [`${HOME}/freshness`, C.freshnessTab],
  ];
  return html`<nav class="tabs" aria-label="${T(C.sections, lang)}"><ul>${items.map(([href, label]) =>
    href === current ? html`<li><span aria-current="page">${T(label, lang)}</span></li>` : html`<li><a href="${withLang(href, ql)}">${T(label, lang)}</a></li>`,
  )}</ul></nav>`;
}

function itemsTable(e: Entry, lang: Lang, caption: string): Html {
  return table({
    lang,
    caption,
    captionHidden: true,
    rowHeaders: true,
    columns: [{ label: T(C.itemName, lang) }, { label: T(C.field, lang), nowrap: true }, { label: T(C.itemType, lang), nowrap: true }, { label: T(C.itemLength, lang), numeric: true }, { label: T(C.personal, lang), nowrap: true }],
    rows: e.items.map((it) => [it.name, html`<code>${it.field}</code>`, T(msg(`type_${it.type}`), lang), it.length ?? '—', it.personal ? badge('planned', T(C.personalYes, lang)) : T(C.personalNo, lang)]),
  });
}

// ---------------------------------------------------------------------------------------------
// The console

export function catalogConsolePages(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  addConsoleNav({ href: HOME, label: CATALOG_NAV_LABEL });
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const sh = shared(ctx);
  const { deptName } = sh;
  const crumbs = (lang: Lang, ql: string | undefined, ...rest: Crumb[]): Crumb[] => [
    { label: tr(M.consoleHome, lang), href: '/console' },
    { label: T(C.title, lang), href: withLang(HOME, ql) },
    ...rest,
  ];
  const today = async () => (await ctx.db.query<{ d: string }>('select current_date::text as d')).rows[0]!.d;

  // -------------------------------------------------------------------------------------------
  // Search

  s.get(HOME, { schema: { hide: true, querystring: SearchQ }, config: { action: 'catalog-console:read' } }, (req, reply) => searchPage(sh, 'console', req, reply));

  // -------------------------------------------------------------------------------------------
  // One entry

  s.get(`${HOME}/entries/:cls/:seq`, { schema: { hide: true, params: CodeParams, querystring: Type.Object({ lang: LangQ }) }, config: { action: 'catalog-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const ql = req.query.lang;
    const e = await readableEntry(ctx, req.actor, `${req.params.cls}/${req.params.seq}`);
    const dept = deptOf(req.actor);
    const [cats, grant, fresh, related, pending] = await Promise.all([
      sh.categories(),
      dept ? accessFor(ctx.db, e, dept) : Promise.resolve(null),
      freshness(ctx.db, { department: e.provider }).then((list) => list.find((f) => f.code === e.code) ?? null),
      e.related.length ? ctx.db.query<{ code: string; name: string; name_en: string | null }>('select code, name, name_en from catalog.entry where code = any($1::text[]) order by code', [e.related]).then((r) => r.rows) : Promise.resolve([]),
      dept ? listAgreements(ctx.db, { consumer: dept, entry: e.code, status: 'requested', limit: 1 }).then((r) => r.items[0] ?? null) : Promise.resolve(null),
    ]);
    const name = entryName(e, lang);
    const methods = e.share.methods.map((m) => T(msg(`method_${m}`), lang)).join(listSep(lang)) || T(C.none, lang);

    // what the viewer's department may use
    let access: Html;
    if (!dept) access = notice({ body: T(C.noDepartment, lang) });
    else if (grant?.basis === 'provider') access = notice({ body: T(C.access_provider, lang, { dept: deptName(dept, lang, true) }) });
    else if (grant?.basis === 'open') {
      access = html`${notice({ body: T(C.access_open, lang, { kind: T(e.kind === 'base' ? C.access_openBase : C.access_openUnconditional, lang) }) })}
<h3 id="subscribe">${T(C.subscribeHeading, lang)}</h3>
<p>${e.exchangeResource ? T(C.subscribeText, lang, { resource: e.exchangeResource, methods }) : T(C.subscribeNoResource, lang, { methods })}</p>`;
    } else if (grant?.basis === 'agreement') {
      const fields = new Map(e.items.map((i) => [i.field, i.name]));
      access = html`${notice({ body: html`<p>${T(C.access_agreement, lang, { n: grant.items.length, until: grant.until ?? '—' })}${grant.partial ? T(C.access_partial, lang) : ''}</p>
<p>${grant.items.map((f) => fields.get(f) ?? f).join(listSep(lang))}</p>` })}
<ul class="actions"><li><a href="${withLang(`${AGREEMENTS}/${grant.agreementId}`, ql)}">${T(C.viewAgreement, lang)}</a></li></ul>`;
    } else if (e.status !== 'active') access = notice({ kind: 'warning', body: T(C.access_none_withdrawn, lang) });
    else if (e.share.type === 'none') access = notice({ kind: 'warning', body: html`<p>${T(C.access_none_shared, lang)}</p><p>${T(C.legalBasis, lang)}${colon(lang)}${e.share.legalBasis ?? '—'}</p>` });
    else if (pending) access = html`${notice({ body: T(C.access_pending, lang) })}<ul class="actions"><li><a href="${withLang(`${AGREEMENTS}/${pending.id}`, ql)}">${T(C.viewRequest, lang)}</a></li></ul>`;
    else {
      access = html`${notice({ body: T(C.access_none_conditional, lang) })}
<p><a class="button" href="${hrefWith(`${AGREEMENTS}/new`, { entry: e.code }, ql)}">${T(C.requestButton, lang)}</a></p>`;
    }

    const freshRows: [string, Html | string][] = fresh
      ? [
          [T(C.timeliness, lang), fresh.dueAt === null ? T(C.irregular, lang) : fresh.late ? badge('problem', T(C.late, lang)) : badge('ok', T(C.onTime, lang))],
          [T(C.lastArrival, lang), fresh.lastArrival ? html`<time datetime="${fresh.lastArrival.toISOString()}">${formatDateTime(fresh.lastArrival, lang)}</time>` : T(C.never, lang)],
          [T(C.arrivals, lang), formatNumber(fresh.arrivals, lang)],
          [T(C.dueAt, lang), fresh.dueAt ? html`<time datetime="${fresh.dueAt.toISOString()}">${formatDate(fresh.dueAt, lang)}</time>` : T(C.noDue, lang)],
        ]
      : [[T(C.timeliness, lang), T(C.never, lang)]];

    const meta: [string, Html | string][] = [
      [T(C.code, lang), html`<code>${e.code}</code>`],
      [T(C.classification, lang), classificationPath(e.classification, cats, lang)],
      [T(C.kind, lang), T(msg(`kind_${e.kind}`), lang)],
      [T(C.provider, lang), deptName(e.provider, lang, true)],
      [T(C.format, lang), html`${T(msg(`format_${e.format.type}`), lang)}${e.format.detail ? html` <span class="muted">(${e.format.detail})</span>` : ''}`],
      [T(C.updateCycle, lang), T(msg(`cycle_${e.updateCycle}`), lang)],
      [T(C.published, lang), e.published],
      [T(C.maintainer, lang), `${deptName(e.maintainer.department, lang, true)} · ${e.maintainer.post}`],
      [T(C.exchangeResource, lang), e.exchangeResource ? html`<code>${e.exchangeResource}</code>` : T(C.none, lang)],
      [T(C.version, lang), String(e.version)],
      [T(C.status, lang), e.status === 'active' ? badge('ok', T(C.entry_active, lang)) : badge('problem', T(C.entry_withdrawn, lang))],
    ];
    const sharing: [string, Html | string][] = [
      [T(C.shareType, lang), shareBadge(e.share.type, lang)],
      [T(C.shareCondition, lang), e.share.condition ?? T(C.none, lang)],
      [T(C.shareMethods, lang), methods],
      [T(C.legalBasis, lang), e.share.legalBasis ?? T(C.none, lang)],
      [T(C.open, lang), openMark(e.open.open, lang)],
      [T(C.openCondition, lang), e.open.condition ?? T(C.none, lang)],
    ];
    const kv = (caption: string, rows: [string, Html | string][]) =>
      table({ lang, caption, captionHidden: true, rowHeaders: true, columns: [{ label: T(C.item, lang), nowrap: true }, { label: T(C.value, lang) }], rows });

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: name,
      breadcrumbs: crumbs(lang, ql, { label: name }),
      localNav: {
        label: name,
        items: [
          { href: '#access', label: T(C.yourAccess, lang) },
          { href: '#metadata', label: T(C.coreMetadata, lang) },
          { href: '#items', label: T(C.items, lang) },
          { href: '#sharing', label: T(C.sharing, lang) },
          { href: '#freshness', label: T(C.freshness, lang) },
          { href: '#related', label: T(C.related, lang) },
        ],
      },
      main: html`<h1>${name}</h1>
${lang === 'en' && e.nameEn ? html`<p class="muted" lang="zh-CN">${e.name}</p>` : ''}
<p>${shareBadge(e.share.type, lang)} ${openMark(e.open.open, lang)} <span class="muted">· ${T(msg(`kind_${e.kind}`), lang)} · <code>${e.code}</code></span></p>
${e.status !== 'active' ? notice({ kind: 'warning', body: T(C.withdrawnNotice, lang) }) : ''}
<p class="lead">${e.abstract}</p>
<h2 id="access">${T(C.yourAccess, lang)}</h2>
${access}
<h2 id="metadata">${T(C.coreMetadata, lang)}</h2>
${kv(T(C.coreMetadata, lang), meta)}
<h2 id="items">${T(C.itemsCaption, lang, { n: e.items.length })}</h2>
${itemsTable(e, lang, T(C.items, lang))}
<h2 id="sharing">${T(C.sharing, lang)}</h2>
${kv(T(C.sharing, lang), sharing)}
<h2 id="freshness">${T(C.freshness, lang)}</h2>
${kv(T(C.freshness, lang), freshRows)}
<h2 id="related">${T(C.related, lang)}</h2>
${related.length ? html`<ul class="link-list">${related.map((r) => html`<li><a href="${withLang(entryPath(HOME, r.code), ql)}">${lang === 'en' && r.name_en ? r.name_en : r.name}</a> <code>${r.code}</code></li>`)}</ul>` : html`<p class="muted">${T(C.relatedNone, lang)}</p>`}`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // Agreements: the list

  s.get(AGREEMENTS, { schema: { hide: true, querystring: AgreementsQ }, config: { action: 'catalog-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query as { status?: string; role?: string; department?: string; page?: number; lang?: string };
    const ql = q.lang;
    const page = q.page ?? 1;
    const all = oversees(req.actor);
    const dept = all ? q.department || '' : deptOf(req.actor);
    const status = (q.status || undefined) as AgreementStatus | undefined;
    const role = q.role || '';
    const filter = dept ? (role === 'consumer' ? { consumer: dept } : role === 'provider' ? { provider: dept } : { department: dept }) : {};
    const found = !all && !dept ? { total: 0, items: [] as Agreement[] } : await listAgreements(ctx.db, { ...filter, status, limit: PER_PAGE, offset: (page - 1) * PER_PAGE });
    const pages = Math.max(1, Math.ceil(found.total / PER_PAGE));
    const state = { status: q.status || undefined, role: role || undefined, department: all ? q.department || undefined : undefined };
    const href = (p: number) => hrefWith(AGREEMENTS, { ...state, page: p > 1 ? p : undefined }, ql);
    const [day, processing] = await Promise.all([today(), processingOf(found.items)]);
    const rows = found.items.map((a) => [
      html`<span class="cell-wide"><a href="${withLang(`${AGREEMENTS}/${a.id}`, ql)}">${a.entryName}</a></span>`,
      html`<code>${a.entry}</code>`,
      deptName(a.consumer, lang),
      deptName(a.provider, lang),
      agreementBadge(a, processing.has(a.id), lang, day),
      `${a.itemsGranted ? formatNumber(a.itemsGranted.length, lang) : '—'} / ${formatNumber(a.itemsRequested.length, lang)}`,
      termText(a, lang),
      html`<time datetime="${a.requestedAt.toISOString()}">${formatDateTime(a.requestedAt, lang)}</time>`,
    ]);
    const filtering = Boolean(q.status || role || (all && q.department));
    const title = T(C.agreementsTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(C.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(C.agreementsLead, lang)}</p>
${sectionTabs(AGREEMENTS, lang, ql)}
<h2 id="filter">${T(C.filterAgreements, lang)}</h2>
<form class="form" method="get" action="${AGREEMENTS}" aria-labelledby="filter">
${keepLangField(ql)}
${selectField({ name: 'status', label: T(C.status, lang), options: [option('', T(C.allStatuses, lang), !q.status), ...AGREEMENT_STATUSES.map((st) => option(st, T(msg(`agreement_${st}`), lang), q.status === st))] })}
${all ? selectField({ name: 'department', label: T(C.department, lang), options: [option('', T(C.allDepartments, lang), !q.department), ...ctx.profile.departments.map((d) => option(d.code, deptName(d.code, lang), q.department === d.code))] }) : ''}
${selectField({ name: 'role', label: T(C.role, lang), options: [option('', T(C.role_any, lang), !role), option('consumer', T(C.role_consumer, lang), role === 'consumer'), option('provider', T(C.role_provider, lang), role === 'provider')] })}
<p class="form-inline"><button class="button" type="submit">${T(C.filter, lang)}</button>${filtering ? html` <a class="button button-secondary" href="${withLang(AGREEMENTS, ql)}">${T(C.clear, lang)}</a>` : ''}</p>
</form>
<h2 id="list">${T(C.agreementsCaption, lang)}</h2>
<p>${T(C.agreementsCount, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${table({
  lang,
  caption: T(C.agreementsCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(C.resource, lang) },
    { label: T(C.code, lang), nowrap: true },
    { label: T(C.consumer, lang), nowrap: true },
    { label: T(C.provider, lang), nowrap: true },
    { label: T(C.status, lang), nowrap: true },
    { label: T(C.itemsGrantedOfRequested, lang), numeric: true },
    { label: T(C.term, lang), nowrap: true },
    { label: T(C.requestedAt, lang), nowrap: true },
  ],
  rows,
  empty: T(C.noAgreements, lang),
})}
${pager(lang, page, pages, href)}`,
    });
  });

  function termText(a: Agreement, lang: Lang): string {
    return a.termEnd >= '9999-12-31' ? T(C.termOpenEnded, lang, { from: a.termStart }) : T(C.termRange, lang, { from: a.termStart, to: a.termEnd });
  }

  /** of these agreements, those whose review task is done while the agreement is not yet decided (处理中) */
  async function processingOf(list: readonly Agreement[]): Promise<Set<string>> {
    const waiting = list.filter((a) => a.status === 'requested' && a.processInstance);
    if (!waiting.length) return new Set();
    const { rows } = await ctx.db.query<{ instance_id: string }>(`select distinct instance_id from workflow.task where instance_id = any($1::uuid[]) and status = 'open'`, [waiting.map((a) => a.processInstance)]);
    const open = new Set(rows.map((r) => r.instance_id));
    return new Set(waiting.filter((a) => !open.has(a.processInstance!)).map((a) => a.id));
  }

  // -------------------------------------------------------------------------------------------
  // The request form

  interface RequestView {
    entry: Entry;
    values?: { purpose?: string; legalBasis?: string; items?: string[]; termStart?: string; termEnd?: string };
    errors?: Record<string, string>;
    general?: string[];
  }

  async function requestPage(req: FastifyRequest, reply: FastifyReply, v: RequestView) {
    const lang = requestLang(req);
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? (req.body as { lang?: string } | undefined)?.lang;
    const e = v.entry;
    const dept = deptOf(req.actor);
    const name = entryName(e, lang);
    const title = T(C.requestTitle, lang, { name });
    const errors = v.errors ?? {};
    const day = await today();
    const values = v.values ?? { items: [], termStart: day, termEnd: new Date(Date.parse(`${day}T00:00:00Z`) + 364 * 86400_000).toISOString().slice(0, 10) };
    const chosen = new Set(values.items ?? []);

    // a request that cannot be made: say why instead of the form
    let blocked: Text | null = null;
    let blockedValues: Record<string, string> | undefined;
    if (!dept) blocked = C.noDepartment;
    else if (e.status !== 'active') blocked = C.notRequestable_withdrawn;
    else if (e.provider === dept) blocked = C.notRequestable_provider;
    else if (e.share.type === 'none') ((blocked = C.notRequestable_none), (blockedValues = { basis: e.share.legalBasis ?? '—' }));
    else if (e.kind === 'base' || e.share.type === 'unconditional') blocked = C.notRequestable_open;

    let live: Agreement | null = null;
    if (!blocked) {
      const r = await ctx.db.query<{ id: string }>(`select id from catalog.agreement where entry = $1 and consumer = $2 and status in ('requested', 'approved') limit 1`, [e.code, dept]);
      if (r.rows[0]) live = await getAgreement(ctx.db, r.rows[0].id);
    }

    const back = withLang(entryPath(HOME, e.code), ql);
    let content: Html;
    if (blocked) {
      content = html`${notice({ kind: 'warning', body: T(blocked, lang, blockedValues) })}<ul class="actions"><li><a href="${back}">${T(C.backToEntry, lang)}</a></li></ul>`;
    } else if (live && !v.errors && !v.general) {
      content = html`${notice({ body: T(C.alreadyLive, lang, { status: T(msg(`agreement_${live.status}`), lang) }) })}<ul class="actions"><li><a href="${withLang(`${AGREEMENTS}/${live.id}`, ql)}">${T(C.viewAgreement, lang)}</a></li><li><a href="${back}">${T(C.backToEntry, lang)}</a></li></ul>`;
    } else {
      const itemsError = errors.items;
      content = html`<h2 id="request-heading">${T(C.requestHeading, lang)}</h2>
<p>${T(C.requestFor, lang, { dept: deptName(dept, lang, true), provider: deptName(e.provider, lang, true) })}</p>
${errorSummary(errors, lang, v.general)}
<form class="form" method="post" action="${withLang(AGREEMENTS, ql)}" aria-labelledby="request-heading" novalidate>
${csrfField(ctx, req, reply)}
<input type="hidden" name="entry" value="${e.code}">
${inputField({ name: 'purpose', label: T(C.purpose, lang), hint: T(C.purposeHint, lang), error: errors.purpose, value: values.purpose, type: 'textarea', maxlength: 2000, required: true })}
${inputField({ name: 'legalBasis', label: T(C.legalBasis, lang), hint: T(C.legalBasisHint, lang), error: errors.legalBasis, value: values.legalBasis, type: 'textarea', maxlength: 2000, required: true })}
<fieldset id="f-items" tabindex="-1" aria-describedby="f-items-hint${itemsError ? ' f-items-error' : ''}"${itemsError ? html` class="field-invalid"` : ''}>
<legend>${T(C.itemsLegend, lang)}</legend>
<p class="field-hint" id="f-items-hint">${T(C.itemsHint, lang)}</p>
${itemsError ? html`<p class="field-error" id="f-items-error">${itemsError}</p>` : ''}
${e.items.map(
  (it) => html`<label><input type="checkbox" name="item" value="${it.field}"${chosen.has(it.field) ? html` checked` : ''}> ${it.name} <code>${it.field}</code>${it.personal ? html` ${badge('planned', T(C.personal, lang))}` : ''}</label>`,
)}
</fieldset>
${inputField({ name: 'termStart', label: T(C.termStart, lang), hint: T(C.termStartHint, lang), error: errors.termStart, value: values.termStart, type: 'date', required: true })}
${inputField({ name: 'termEnd', label: T(C.termEnd, lang), hint: T(C.termEndHint, lang, { days: MAX_TERM_DAYS }), error: errors.termEnd, value: values.termEnd, type: 'date', required: true })}
<p class="form-inline"><button class="button" type="submit">${T(C.submitRequest, lang)}</button> <a class="button button-secondary" href="${back}">${T(C.cancel, lang)}</a></p>
</form>`;
    }

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, ql, { label: name, href: back }, { label: T(C.requestButton, lang) }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(C.requestLead, lang)}</p>
<p>${shareBadge(e.share.type, lang)} <code>${e.code}</code>${e.share.condition ? html` · ${T(C.shareCondition, lang)}${colon(lang)}${e.share.condition}` : ''}</p>
${content}`,
    });
  }

  s.get(`${AGREEMENTS}/new`, { schema: { hide: true, querystring: NewQ }, config: { action: 'sharing-agreement:request' } }, async (req, reply) => {
    const e = await readableEntry(ctx, req.actor, req.query.entry);
    return requestPage(req, reply, { entry: e });
  });

  /** the request's problems (agreements.ts: requestProblems) as messages beside the fields */
  function requestErrors(problems: readonly string[], lang: Lang): Record<string, string> {
    const out: Record<string, string> = {};
    for (const p of problems) {
      const [field] = p.split(':', 1) as [string];
      if (out[field]) continue;
      let text: Text | null = null;
      if (field === 'purpose') text = C.err_purpose;
      else if (field === 'legalBasis') text = C.err_legalBasis;
      else if (field === 'items') text = /at least one/.test(p) ? C.err_items : C.err_itemsUnknown;
      else if (field === 'termStart') text = /past/.test(p) ? C.err_termStartPast : C.err_termStart;
      else if (field === 'termEnd') text = /on or after/.test(p) ? C.err_termEndBefore : /at most/.test(p) ? C.err_termEndLong : C.err_termEnd;
      if (text) out[field] = T(text, lang, { days: MAX_TERM_DAYS });
    }
    return out;
  }

  s.post(AGREEMENTS, { schema: { hide: true, body: RequestForm }, config: { action: 'sharing-agreement:request' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const lang = requestLang(req);
    const b = req.body as RequestForm;
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const consumer = deptOf(req.actor);
    ctx.policy.authorize(req.actor, 'sharing-agreement:request', { consumer });
    const e = await readableEntry(ctx, req.actor, b.entry);
    const items = [...new Set(asList(b.item))];
    const r = { entry: e.code, consumer, purpose: b.purpose ?? '', legalBasis: b.legalBasis ?? '', items, termStart: (b.termStart ?? '').trim(), termEnd: (b.termEnd ?? '').trim() };
    const values = { purpose: r.purpose, legalBasis: r.legalBasis, items, termStart: r.termStart, termEnd: r.termEnd };
    const requestable = e.status === 'active' && e.provider !== consumer && e.share.type === 'conditional' && e.kind !== 'base';
    if (requestable) {
      const day = await today();
      const problems = requestProblems(r, e, day);
      // the start in the past is told even when the end is not a date (requestProblems compares two dates)
      if (/^\d{4}-\d{2}-\d{2}$/.test(r.termStart) && r.termStart < day && !problems.some((p) => p.startsWith('termStart:'))) problems.push('termStart: not in the past');
      const errors = requestErrors(problems, lang);
      if (Object.keys(errors).length) {
        reply.code(400);
        return requestPage(req, reply, { entry: e, values, errors });
      }
    }
    let a: Agreement;
    try {
      a = await ctx.db.tx((q) => requestAgreement(q, r, req.actor));
    } catch (err) {
      if (!(err instanceof CatalogError) || err.code === 'not-found') throw err;
      reply.code(err.code === 'validation' ? 400 : err.code === 'forbidden' ? 403 : 409);
      const errors = err.code === 'validation' ? requestErrors(err.problems, lang) : {};
      return requestPage(req, reply, { entry: e, values, errors, general: Object.keys(errors).length ? [] : [T(C.err_conflict, lang, { detail: err.message })] });
    }
    try {
      await startReview(ctx, engine(), a);
    } catch (err) {
      // the request stands; the freshness job's repairReviews starts its review later
      req.log.warn({ err, agreement: a.id }, 'catalog: the review of a request did not start');
    }
    return reply.redirect(hrefWith(`${AGREEMENTS}/${a.id}`, { done: 'requested' }, ql), 303);
  });

  // -------------------------------------------------------------------------------------------
  // One agreement

  async function readable(req: FastifyRequest, id: string): Promise<Agreement> {
    const a = await getAgreement(ctx.db, id);
    if (!a || !ctx.policy.can(req.actor, 'sharing-agreement:read', a)) throw problem('not-found', `no agreement ${id}`);
    return a;
  }

  interface ReviewTask {
    id: string;
    department: string | null;
    role: string | null;
    person: string | null;
    escalatedTo: string | null;
  }
  async function openReviewTask(a: Agreement): Promise<ReviewTask | null> {
    if (!a.processInstance) return null;
    const { rows } = await ctx.db.query<ReviewTask>(
      `select id, department, role, person, escalated_to as "escalatedTo" from workflow.task where instance_id = $1 and status = 'open' order by created_at limit 1`,
      [a.processInstance],
    );
    return rows[0] ?? null;
  }

  interface AgreementView {
    a: Agreement;
    done?: string;
    decision?: { errors?: Record<string, string>; general?: string[]; values?: DecisionForm };
    revoke?: { errors?: Record<string, string>; general?: string[]; reason?: string };
    withdraw?: { general?: string[] };
  }

  async function agreementPage(req: FastifyRequest, reply: FastifyReply, v: AgreementView) {
    const lang = requestLang(req);
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? (req.body as { lang?: string } | undefined)?.lang;
    const { a } = v;
    const [entry, task, day] = await Promise.all([getEntry(ctx.db, a.entry), openReviewTask(a), today()]);
    const processing = a.status === 'requested' && !!a.processInstance && !task;
    const fields = new Map((entry?.items ?? []).map((i) => [i.field, i]));
    const title = T(C.agreementTitle, lang, { name: a.entryName });
    const who = (id: string | null) => (id ? (id.length > 60 ? `${id.slice(0, 60)}…` : id) : '—');
    const names = await staffNames([a.requestedBy, a.decidedBy, a.revokedBy]);

    let banner: Html | string = '';
    if (processing) banner = notice({ body: html`<p role="status">${T(C.processingNotice, lang)}</p>` });
    else if (v.done === 'requested' && a.status === 'requested') banner = notice({ body: html`<p role="status">${T(C.requestedNotice, lang, { provider: deptName(a.provider, lang, true) })}</p>` });
    else if (v.done === 'revoked' && a.status === 'revoked') banner = notice({ body: html`<p role="status">${T(C.revokedNotice, lang)}</p>` });
    else if (v.done === 'withdrawn' && a.status === 'withdrawn') banner = notice({ body: html`<p role="status">${T(C.withdrawnNotice2, lang)}</p>` });

    const rows: [string, Html | string][] = [
      [T(C.status, lang), agreementBadge(a, processing, lang, day)],
      [T(C.resource, lang), html`<a href="${withLang(entryPath(HOME, a.entry), ql)}">${a.entryName}</a> <code>${a.entry}</code>`],
      [T(C.provider, lang), deptName(a.provider, lang, true)],
      [T(C.consumer, lang), deptName(a.consumer, lang, true)],
      [T(C.basis, lang), T(msg(`basis_${a.basis}`), lang)],
      [T(C.purpose, lang), a.purpose],
      [T(C.legalBasis, lang), a.legalBasis ?? '—'],
      [T(C.term, lang), termText(a, lang)],
      [T(C.requestedBy, lang), names.get(a.requestedBy) ?? who(a.requestedBy)],
      [T(C.requestedAt, lang), html`<time datetime="${a.requestedAt.toISOString()}">${formatDateTime(a.requestedAt, lang)}</time>`],
    ];
    if (a.decidedAt) {
      rows.push(
        [T(C.decidedAt, lang), html`<time datetime="${a.decidedAt.toISOString()}">${formatDateTime(a.decidedAt, lang)}</time>`],
        [T(C.decidedBy, lang), names.get(a.decidedBy ?? '') ?? who(a.decidedBy)],
        [T(C.decisionNote, lang), a.decisionNote ?? '—'],
      );
    }
    if (a.revokedAt) {
      rows.push([T(C.revokedAt, lang), html`<time datetime="${a.revokedAt.toISOString()}">${formatDateTime(a.revokedAt, lang)}</time>`], [T(C.revokeReason, lang), a.revokeReason ?? '—']);
    }
    if (a.processInstance) rows.push([T(C.process, lang), html`<a href="${withLang(`/console/workflow/instances/${a.processInstance}`, ql)}">${T(C.viewInstance, lang)}</a>`]);

    const granted = new Set(a.itemsGranted ?? []);
    const decided = a.itemsGranted !== null || a.status === 'refused';
    const itemRows = a.itemsRequested.map((f) => {
      const it = fields.get(f);
      return [
        it?.name ?? f,
        html`<code>${f}</code>`,
        it?.personal ? badge('planned', T(C.personalYes, lang)) : T(C.personalNo, lang),
        T(C.yes, lang),
        !decided ? html`<span class="muted">${T(C.notDecided, lang)}</span>` : granted.has(f) ? badge('ok', T(C.yes, lang)) : badge('problem', T(C.no, lang)),
      ];
    });

    // the provider's decision: whoever may work on the open review task
    let decide: Html | string = '';
    if (a.status === 'requested' && !processing) {
      if (!a.processInstance) decide = notice({ body: T(C.reviewNotStarted, lang) });
      else if (task && canWorkOn(req.actor, task) && ctx.policy.can(req.actor, 'sharing-agreement:decide', a)) {
        const d = v.decision ?? {};
        const errors = d.errors ?? {};
        const chosenItems = new Set(asList(d.values?.item));
        const outcome = d.values?.outcome;
        decide = html`<h2 id="decide">${T(C.decideHeading, lang)}</h2>
<p>${T(C.decideLead, lang)}</p>
${errorSummary(errors, lang, d.general)}
<form class="form" method="post" action="${withLang(`${AGREEMENTS}/${a.id}/decision`, ql)}" aria-labelledby="decide" novalidate>
${csrfField(ctx, req, reply)}
<fieldset id="f-outcome" tabindex="-1"${errors.outcome ? html` aria-describedby="f-outcome-error" class="field-invalid"` : ''}>
<legend>${T(C.outcome, lang)}</legend>
${errors.outcome ? html`<p class="field-error" id="f-outcome-error">${errors.outcome}</p>` : ''}
${(['approve', 'narrow', 'refuse'] as const).map((o) => html`<label><input type="radio" name="outcome" value="${o}"${outcome === o ? html` checked` : ''}> ${T(msg(`outcome_${o}`), lang)}</label>`)}
</fieldset>
<fieldset id="f-items" tabindex="-1" aria-describedby="f-items-hint${errors.items ? ' f-items-error' : ''}"${errors.items ? html` class="field-invalid"` : ''}>
<legend>${T(C.narrowItems, lang)}</legend>
<p class="field-hint" id="f-items-hint">${T(C.narrowItemsHint, lang)}</p>
${errors.items ? html`<p class="field-error" id="f-items-error">${errors.items}</p>` : ''}
${a.itemsRequested.map((f) => html`<label><input type="checkbox" name="item" value="${f}"${chosenItems.has(f) ? html` checked` : ''}> ${fields.get(f)?.name ?? f} <code>${f}</code></label>`)}
</fieldset>
${inputField({ name: 'note', label: T(C.note, lang), hint: T(C.noteHint, lang), error: errors.note, value: d.values?.note, type: 'textarea', maxlength: 2000 })}
<p class="form-inline"><button class="button" type="submit">${T(C.submitDecision, lang)}</button></p>
</form>`;
      } else if (deptOf(req.actor) === a.provider) decide = notice({ body: T(C.reviewNotYours, lang, { provider: deptName(a.provider, lang, true) }) });
    }

    let revoke: Html | string = '';
    if (a.status === 'approved' && ctx.policy.can(req.actor, 'sharing-agreement:revoke', a)) {
      const r = v.revoke ?? {};
      const errors = r.errors ?? {};
      revoke = html`<h2 id="revoke">${T(C.revokeHeading, lang)}</h2>
<p>${T(C.revokeLead, lang)}</p>
${errorSummary(errors, lang, r.general)}
<form class="form" method="post" action="${withLang(`${AGREEMENTS}/${a.id}/revoke`, ql)}" aria-labelledby="revoke" novalidate>
${csrfField(ctx, req, reply)}
${inputField({ name: 'reason', label: T(C.reason, lang), hint: T(C.reasonHint, lang), error: errors.reason, value: r.reason, type: 'textarea', maxlength: 2000, required: true })}
<p class="form-inline"><button class="button" type="submit">${T(C.submitRevoke, lang)}</button></p>
</form>`;
    }

    let withdraw: Html | string = '';
    if (a.status === 'requested' && !processing && ctx.policy.can(req.actor, 'sharing-agreement:withdraw', a)) {
      withdraw = html`<h2 id="withdraw">${T(C.withdrawHeading, lang)}</h2>
<p>${T(C.withdrawLead, lang)}</p>
${errorSummary({}, lang, v.withdraw?.general)}
<form method="post" action="${withLang(`${AGREEMENTS}/${a.id}/withdraw`, ql)}" aria-labelledby="withdraw">
${csrfField(ctx, req, reply)}
<p><button class="button button-secondary" type="submit">${T(C.submitWithdraw, lang)}</button></p>
</form>`;
    }

    // a refusal whose form is no longer shown (the agreement changed meanwhile): said at the top
    const orphaned = [...(decide ? [] : (v.decision?.general ?? [])), ...(revoke ? [] : (v.revoke?.general ?? [])), ...(withdraw ? [] : (v.withdraw?.general ?? []))];

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, ql, { label: T(C.agreementsTitle, lang), href: withLang(AGREEMENTS, ql) }, { label: a.entryName }),
      main: html`<h1>${title}</h1>
${errorSummary({}, lang, orphaned)}
${banner}
<h2 id="details">${T(C.agreementDetails, lang)}</h2>
${table({ lang, caption: T(C.agreementDetails, lang), captionHidden: true, rowHeaders: true, columns: [{ label: T(C.item, lang), nowrap: true }, { label: T(C.value, lang) }], rows })}
<h2 id="items">${T(C.itemsRequestedGranted, lang)}</h2>
${table({
  lang,
  caption: T(C.itemsRequestedGranted, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [{ label: T(C.itemName, lang) }, { label: T(C.field, lang), nowrap: true }, { label: T(C.personal, lang), nowrap: true }, { label: T(C.requested, lang), nowrap: true }, { label: T(C.granted, lang), nowrap: true }],
  rows: itemRows,
})}
${decide}
${revoke}
${withdraw}
<ul class="actions"><li><a href="${withLang(AGREEMENTS, ql)}">${T(C.backToAgreements, lang)}</a></li><li><a href="${withLang(entryPath(HOME, a.entry), ql)}">${T(C.backToEntry, lang)}</a></li></ul>`,
    });
  }

  /** names of the staff behind actor ids (account ids); system ids are shown as they are */
  async function staffNames(ids: (string | null)[]): Promise<Map<string, string>> {
    const wanted = [...new Set(ids.filter((x): x is string => !!x && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(x)))];
    const out = new Map<string, string>();
    if (!wanted.length) return out;
    try {
      const { rows } = await ctx.db.query<{ id: string; name: string }>('select id::text as id, name from identity.account where id = any($1::uuid[])', [wanted]);
      for (const r of rows) out.set(r.id, r.name);
    } catch {
      // no identity module in this platform: the ids are shown as they are
    }
    return out;
  }

  s.get(`${AGREEMENTS}/:id`, { schema: { hide: true, params: IdParams, querystring: AgreementQ }, config: { action: 'catalog-console:read' } }, async (req, reply) => {
    const a = await readable(req, req.params.id);
    return agreementPage(req, reply, { a, done: req.query.done || undefined });
  });

  s.post(`${AGREEMENTS}/:id/decision`, { schema: { hide: true, params: IdParams, body: DecisionForm }, config: { action: 'sharing-agreement:decide' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const lang = requestLang(req);
    const b = req.body as DecisionForm;
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const a = await readable(req, req.params.id);
    ctx.policy.authorize(req.actor, 'sharing-agreement:decide', a);
    const items = [...new Set(asList(b.item))];
    const errors: Record<string, string> = {};
    if (!b.outcome) errors.outcome = T(C.err_outcome, lang);
    if (b.outcome === 'narrow' && (items.length === 0 || items.length >= a.itemsRequested.length || items.some((f) => !a.itemsRequested.includes(f)))) errors.items = T(C.err_narrowItems, lang);
    if (Object.keys(errors).length) {
      reply.code(400);
      return agreementPage(req, reply, { a, decision: { errors, values: b } });
    }
    const note = b.note?.trim() || undefined;
    try {
      await decideThroughTask(ctx, engine(), req.actor, a, { outcome: b.outcome!, items: b.outcome === 'narrow' ? items : undefined, note });
    } catch (err) {
      if (!(err instanceof HttpProblem) || (err.problem !== 'validation' && err.problem !== 'conflict')) throw err;
      reply.code(err.status);
      return agreementPage(req, reply, { a: (await getAgreement(ctx.db, a.id))!, decision: { general: [T(C.err_conflict, lang, { detail: err.message })], values: b } });
    }
    return reply.redirect(hrefWith(`${AGREEMENTS}/${a.id}`, { done: 'decided' }, ql), 303);
  });

  s.post(`${AGREEMENTS}/:id/revoke`, { schema: { hide: true, params: IdParams, body: RevokeForm }, config: { action: 'sharing-agreement:revoke' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const lang = requestLang(req);
    const b = req.body as { reason?: string; lang?: string };
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const a = await readable(req, req.params.id);
    ctx.policy.authorize(req.actor, 'sharing-agreement:revoke', a);
    const reason = (b.reason ?? '').trim();
    if (reason.length < 2) {
      reply.code(400);
      return agreementPage(req, reply, { a, revoke: { errors: { reason: T(C.err_reason, lang) }, reason: b.reason } });
    }
    try {
      await ctx.db.tx((q) => revokeAgreement(q, a.id, reason, req.actor));
    } catch (err) {
      if (!(err instanceof CatalogError) || err.code === 'not-found') throw err;
      reply.code(err.code === 'validation' ? 400 : 409);
      return agreementPage(req, reply, { a: (await getAgreement(ctx.db, a.id))!, revoke: { general: [T(C.err_conflict, lang, { detail: err.message })], reason: b.reason } });
    }
    return reply.redirect(hrefWith(`${AGREEMENTS}/${a.id}`, { done: 'revoked' }, ql), 303);
  });

  s.post(`${AGREEMENTS}/:id/withdraw`, { schema: { hide: true, params: IdParams, body: WithdrawForm }, config: { action: 'sharing-agreement:withdraw' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const lang = requestLang(req);
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? (req.body as { lang?: string }).lang;
    const a = await readable(req, req.params.id);
    ctx.policy.authorize(req.actor, 'sharing-agreement:withdraw', a);
    let w: Agreement;
    try {
      w = await ctx.db.tx((q) => withdrawAgreement(q, a.id, req.actor));
    } catch (err) {
      if (!(err instanceof CatalogError) || err.code === 'not-found') throw err;
      reply.code(409);
      return agreementPage(req, reply, { a: (await getAgreement(ctx.db, a.id))!, withdraw: { general: [T(C.err_conflict, lang, { detail: err.message })] } });
    }
    if (w.processInstance) await terminateInstance(engine(), w.processInstance, 'request withdrawn', req.actor).catch(() => undefined);
    return reply.redirect(hrefWith(`${AGREEMENTS}/${a.id}`, { done: 'withdrawn' }, ql), 303);
  });

  // -------------------------------------------------------------------------------------------
  // Freshness

  s.get(`${HOME}/freshness`, { schema: { hide: true, querystring: FreshnessQ }, config: { action: 'catalog-freshness:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query as { department?: string; late?: string; lang?: string };
    const ql = q.lang;
    const now = new Date();
    const all = await freshness(ctx.db, { department: q.department || undefined, now });
    const late = all.filter((f) => f.late);
    const irregular = all.filter((f) => f.dueAt === null);
    const list = q.late ? late : all;
    const rows = list.map((f) => [
      html`<span class="cell-wide"><a href="${withLang(entryPath(HOME, f.code), ql)}">${f.name}</a></span>`,
      html`<code>${f.code}</code>`,
      f.dueAt === null
        ? html`<span class="muted">${T(C.irregular, lang)}</span>`
        : f.late
          ? html`${badge('problem', T(C.late, lang))}<br><span class="muted">${T(C.lateBy, lang, { days: Math.max(1, Math.floor((now.getTime() - f.dueAt.getTime()) / 86400_000)) })}</span>`
          : badge('ok', T(C.onTime, lang)),
      T(msg(`cycle_${f.updateCycle}`), lang),
      f.lastArrival ? html`<time datetime="${f.lastArrival.toISOString()}">${formatDateTime(f.lastArrival, lang)}</time>` : T(C.never, lang),
      f.dueAt ? html`<time datetime="${f.dueAt.toISOString()}">${formatDate(f.dueAt, lang)}</time>` : '—',
      html`${deptName(f.maintainer.department, lang)}<br><span class="muted">${f.maintainer.post}</span>`,
      deptName(f.provider, lang),
    ]);
    const filtering = Boolean(q.department || q.late);
    const title = T(C.freshnessTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(C.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(C.freshnessLead, lang)}</p>
${sectionTabs(`${HOME}/freshness`, lang, ql)}
${figures(
  [
    { label: T(C.figOnTime, lang), value: all.length - late.length - irregular.length },
    { label: T(C.figLate, lang), value: late.length },
    { label: T(C.figIrregular, lang), value: irregular.length },
    { label: T(C.figTotal, lang), value: all.length },
  ],
  lang,
)}
<h2 id="filter">${T(C.freshnessFilter, lang)}</h2>
<form class="form" method="get" action="${HOME}/freshness" aria-labelledby="filter">
${keepLangField(ql)}
${selectField({ name: 'department', label: T(C.department, lang), hint: T(C.freshnessDeptHint, lang), options: [option('', T(C.allDepartments, lang), !q.department), ...ctx.profile.departments.map((d) => option(d.code, deptName(d.code, lang), q.department === d.code))] })}
<fieldset><legend class="visually-hidden">${T(C.late, lang)}</legend><label><input type="checkbox" name="late" value="1"${q.late ? html` checked` : ''}> ${T(C.lateOnly, lang)}</label></fieldset>
<p class="form-inline"><button class="button" type="submit">${T(C.filter, lang)}</button>${filtering ? html` <a class="button button-secondary" href="${withLang(`${HOME}/freshness`, ql)}">${T(C.clear, lang)}</a>` : ''}</p>
</form>
<h2 id="list">${T(C.freshnessCaption, lang)}</h2>
<p>${T(C.freshnessCount, lang, { n: formatNumber(all.length, lang), late: formatNumber(late.length, lang) })}</p>
${table({
  lang,
  caption: T(C.freshnessCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(C.name, lang) },
    { label: T(C.code, lang), nowrap: true },
    { label: T(C.timeliness, lang), nowrap: true },
    { label: T(C.updateCycle, lang), nowrap: true },
    { label: T(C.lastArrival, lang), nowrap: true },
    { label: T(C.dueAt, lang), nowrap: true },
    { label: T(C.maintainer, lang), nowrap: true },
    { label: T(C.provider, lang), nowrap: true },
  ],
  rows,
  empty: T(C.noFreshness, lang),
})}`,
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The public catalog (公共信息资源目录)

export function publicCatalogPages(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const sh = shared(ctx);

  s.get(PUBLIC, { schema: { hide: true, querystring: SearchQ }, config: { action: 'public-catalog:read' } }, (req, reply) => searchPage(sh, 'public', req, reply));

  s.get(`${PUBLIC}/entries/:cls/:seq`, { schema: { hide: true, params: CodeParams, querystring: Type.Object({ lang: LangQ }) }, config: { action: 'public-catalog:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const ql = req.query.lang;
    const code = `${req.params.cls}/${req.params.seq}`;
    const e = await getEntry(ctx.db, code);
    // only what the public catalog lists: an open, active entry; anything else does not exist here
    if (!e || !e.open.open || e.status !== 'active') throw problem('not-found', `no public catalog entry ${code}`);
    const [cats, related] = await Promise.all([
      sh.categories(),
      e.related.length
        ? ctx.db.query<{ code: string; name: string; name_en: string | null }>(`select code, name, name_en from catalog.entry where code = any($1::text[]) and open and status = 'active' order by code`, [e.related]).then((r) => r.rows)
        : Promise.resolve([]),
    ]);
    const name = entryName(e, lang);
    const meta: [string, Html | string][] = [
      [T(C.code, lang), html`<code>${e.code}</code>`],
      [T(C.classification, lang), classificationPath(e.classification, cats, lang)],
      [T(C.kind, lang), T(msg(`kind_${e.kind}`), lang)],
      [T(C.provider, lang), sh.deptName(e.provider, lang, true)],
      [T(C.format, lang), html`${T(msg(`format_${e.format.type}`), lang)}${e.format.detail ? html` <span class="muted">(${e.format.detail})</span>` : ''}`],
      [T(C.updateCycle, lang), T(msg(`cycle_${e.updateCycle}`), lang)],
      [T(C.published, lang), e.published],
      [T(C.openCondition, lang), e.open.condition ?? T(C.none, lang)],
    ];
    return sendPage(req, reply, {
      lang,
      title: name,
      description: e.abstract.slice(0, 200),
      breadcrumbs: [{ label: tr(M.home, lang), href: '/' }, { label: T(C.disclosure, lang), href: '/disclosure' }, { label: T(C.publicTitle, lang), href: withLang(PUBLIC, ql) }, { label: name }],
      main: html`<h1>${name}</h1>
${lang === 'en' && e.nameEn ? html`<p class="muted" lang="zh-CN">${e.name}</p>` : ''}
<p class="lead">${e.abstract}</p>
<h2 id="metadata">${T(C.coreMetadata, lang)}</h2>
${table({ lang, caption: T(C.coreMetadata, lang), captionHidden: true, rowHeaders: true, columns: [{ label: T(C.item, lang), nowrap: true }, { label: T(C.value, lang) }], rows: meta })}
<h2 id="items">${T(C.itemsCaption, lang, { n: e.items.length })}</h2>
${itemsTable(e, lang, T(C.items, lang))}
<h2 id="related">${T(C.related, lang)}</h2>
${related.length ? html`<ul class="link-list">${related.map((r) => html`<li><a href="${withLang(entryPath(PUBLIC, r.code), ql)}">${lang === 'en' && r.name_en ? r.name_en : r.name}</a> <code>${r.code}</code></li>`)}</ul>` : html`<p class="muted">${T(C.relatedNone, lang)}</p>`}
${machineLinks(lang)}
<ul class="actions"><li><a href="${withLang(PUBLIC, ql)}">${T(C.backToPublic, lang)}</a></li></ul>`,
    });
  });
}
