// 人口基础数据库 — the staff console (internal face):
//
//   GET  /console/population                          find a person: by ID number (→ their page), or by name and
//                                                     birth date (a list, as the viewer's grant shows it); a purpose
//                                                     is required and goes to the citizen's data-access log
//   GET  /console/population/persons/:idNumber        the golden record as the viewer's grant allows (?purpose=,
//                                                     ?asOf=YYYY-MM-DD): each value with its source, record and time;
//                                                     for stewards the source-record history and open conflicts
//   GET  /console/population/conflicts                the steward queue: filter by status (and person), pages
//   POST /console/population/conflicts/:id/resolve    (CSRF) keep / replace / dispute (against winner or challenger)
//   GET  /console/population/disputes                 the source department's open dispute tasks, each with its form
//   POST /console/population/disputes/:id/answer      (CSRF) confirm / correct: completes the dispute task (the
//                                                     workflow's service task applies it a moment later)
//   GET  /console/population/review                   rejected and unlinked records, read-only
//
// Plain HTML forms without script. Personal data is read through readPerson (grant, masking, audit
// with purpose); the steward's queues write their own audit entries, one per person shown. The
// decisions use the fusion engine's functions and the workflow engine exactly as the native API does.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html, type Html } from '../../../http/html.ts';
import { isLang, requestLang, tr, type Lang, type Text } from '../../../http/i18n.ts';
import { addConsoleNav, formatDateTime, formatNumber, notice, sendPage, table, type Crumb } from '../../../http/layout.ts';
import { fill, M } from '../../../http/messages.ts';
import { problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { appendAudit, appendAuditMany } from '../../audit/index.ts';
import { checkIdNumber } from '../../codes/index.ts';
import { auditActorOf } from '../../identity/index.ts';
import { allow, type Actor, type Rule } from '../../identity/policy.ts';
import { checkCsrf, csrfField, needsCsrf } from '../../identity/sessions/csrf.ts';
import { canWorkOn, completeTask, inbox, startInstance, WorkflowError, type Engine, type TaskRow } from '../../workflow/index.ts';
import { FusionError, getConflict, listConflicts, markDisputed, resolveConflict, sourceRecords, STEWARD_SOURCE, type CompiledRegistry, type ConflictRow, type FieldValue } from '../fusion/index.ts';
import { DISPUTE_PROCESS } from './api.ts';
import { AUDIT_PURPOSE, P, POPULATION_NAV_LABEL } from './messages.ts';
import { maskValue, populationRegistry, PopulationError, readPerson, type PersonView } from './registry.ts';

export { POPULATION_NAV_LABEL } from './messages.ts';

/** who may see the console pages (the steward's pages and the POST handlers use populationPolicy's actions) */
export const populationPagePolicy: readonly Rule[] = [...allow('staff', 'read', 'population-console')];

const HOME = '/console/population';
const PERSONS = `${HOME}/persons`;
const CONFLICTS = `${HOME}/conflicts`;
const DISPUTES = `${HOME}/disputes`;
const REVIEW = `${HOME}/review`;
const PER_PAGE = 20;

// ---------------------------------------------------------------------------------------------
// Schemas: everything in a URL or a form is bounded; the handlers say what is wrong in words

const LangQ = Type.Optional(Type.String({ maxLength: 10 }));
const Page = Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 }));
const NO_CONTROL = '^[^\\u0000-\\u001F\\u007F]*$';
const Line = (maxLength: number) => Type.Optional(Type.String({ maxLength, pattern: NO_CONTROL }));
const FreeText = (maxLength: number) => Type.Optional(Type.String({ maxLength, pattern: '^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$' }));
const OptEnum = (values: readonly string[]) => Type.Optional(Type.Enum(['', ...values]));
const Csrf = Type.Optional(Type.String({ maxLength: 200 }));
const ID_RE = '^[0-9]{17}[0-9Xx]$';
const OptId = Type.Optional(Type.String({ pattern: `^([0-9]{17}[0-9Xx])?$` }));
const IdParam = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) });

const FindQ = Type.Object({ idNumber: Line(40), name: Line(100), birthDate: Line(20), purpose: Line(1000), go: OptEnum(['1']), lang: LangQ });
type FindQ = { idNumber?: string; name?: string; birthDate?: string; purpose?: string; go?: string; lang?: string };
const PersonQ = Type.Object({ purpose: Line(1000), asOf: Line(20), lang: LangQ });
const CONFLICT_STATUSES = ['open', 'disputed', 'kept', 'replaced', 'corrected'] as const;
type ConflictStatus = (typeof CONFLICT_STATUSES)[number];
const DONE = ['keep', 'replace', 'dispute'] as const;
const ConflictsQ = Type.Object({ status: OptEnum([...CONFLICT_STATUSES, 'all']), key: OptId, page: Page, done: OptEnum(DONE), id: Type.Optional(Type.Integer({ minimum: 1 })), lang: LangQ });
type ConflictsQ = { status?: string; key?: string; page?: number; done?: string; id?: number; lang?: string };
const ResolveForm = Type.Object(
  { _csrf: Csrf, decision: OptEnum(DONE), against: OptEnum(['winner', 'challenger']), note: FreeText(4000), key: OptId, lang: LangQ },
  { additionalProperties: false },
);
type ResolveForm = { decision?: string; against?: string; note?: string; key?: string; lang?: string };
const DisputesQ = Type.Object({ page: Page, done: OptEnum(['confirm', 'correct']), id: Type.Optional(Type.Integer({ minimum: 1 })), lang: LangQ });
const AnswerForm = Type.Object({ _csrf: Csrf, outcome: OptEnum(['confirm', 'correct']), value: FreeText(2000), lang: LangQ }, { additionalProperties: false });
type AnswerForm = { outcome?: string; value?: string; lang?: string };
const UNLINKED_STATUSES = ['pending', 'review', 'linked', 'new', 'rejected'] as const;
const ReviewQ = Type.Object({ rpage: Page, upage: Page, ustatus: OptEnum(UNLINKED_STATUSES), lang: LangQ });

function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

// ---------------------------------------------------------------------------------------------
// Formatting

const T = (text: Text, lang: Lang, values?: Record<string, string | number>) => (values ? fill(tr(text, lang), values) : tr(text, lang));
const msg = (key: string): Text | undefined => (P as Record<string, Text>)[key];
const colon = (lang: Lang) => (lang === 'en' ? ': ' : '：');

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

const deptOf = (a: Actor): string => (a.kind === 'staff' || a.kind === 'system' ? a.department : '');

function badge(kind: 'ok' | 'problem' | 'planned', text: string): Html {
  return html`<span class="badge badge-${kind}">${text}</span>`;
}

function option(value: string, label: string, selected: boolean): Html {
  return html`<option value="${value}"${selected ? html` selected` : ''}>${label}</option>`;
}

interface FieldOpts {
  name: string;
  /** the element id (default f-<name>): forms repeated on one page need their own */
  id?: string;
  label: string;
  hint?: string;
  error?: string;
  value?: string;
  type?: 'text' | 'date' | 'textarea';
  maxlength?: number;
  required?: boolean;
  autocomplete?: string;
  inputmode?: string;
}

function inputField(o: FieldOpts): Html {
  const id = o.id ?? `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const common = html` id="${id}" name="${o.name}"${o.required ? html` required` : ''}${o.maxlength ? html` maxlength="${o.maxlength}"` : ''}${described ? html` aria-describedby="${described}"` : ''}${o.error ? html` aria-invalid="true"` : ''}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.inputmode ? html` inputmode="${o.inputmode}"` : ''}`;
  const input = o.type === 'textarea' ? html`<textarea${common} rows="3">${o.value ?? ''}</textarea>` : html`<input type="${o.type ?? 'text'}"${common} value="${o.value ?? ''}">`;
  return html`<div class="field${o.error ? ' field-invalid' : ''}">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${o.hint}</p>` : ''}
${o.error ? html`<p class="field-error" id="${id}-error">${o.error}</p>` : ''}
${input}
</div>`;
}

function selectField(o: { name: string; id?: string; label: string; options: Html[]; hint?: string; error?: string }): Html {
  const id = o.id ?? `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${o.error ? ' field-invalid' : ''}">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${o.hint}</p>` : ''}
${o.error ? html`<p class="field-error" id="${id}-error">${o.error}</p>` : ''}
<select id="${id}" name="${o.name}"${described ? html` aria-describedby="${described}"` : ''}${o.error ? html` aria-invalid="true"` : ''}>${o.options}</select>
</div>`;
}

/** errors at the top of a form, each linking to its field (keys are element ids) */
function errorSummary(errors: Record<string, string>, lang: Lang, general: string[] = []): Html | string {
  const entries = Object.entries(errors);
  if (!entries.length && !general.length) return '';
  return html`<div class="notice notice-warning error-summary" role="alert" tabindex="-1" id="error-summary"><p class="notice-title">${T(P.errorTitle, lang)}</p><ul>${general.map(
    (g) => html`<li>${g}</li>`,
  )}${entries.map(([id, text]) => html`<li><a href="#${id}">${text}</a></li>`)}</ul></div>`;
}

function pager(lang: Lang, page: number, pages: number, href: (p: number) => string, label?: string): Html {
  if (pages <= 1 && page <= 1) return html``;
  return html`<nav aria-label="${label ?? T(P.pagination, lang)}"><p class="form-inline">${
    page > 1 ? html`<a class="button button-secondary button-small" href="${href(Math.min(page - 1, pages))}" rel="prev">${T(P.previous, lang)}</a> ` : ''
  }${page < pages ? html`<a class="button button-secondary button-small" href="${href(page + 1)}" rel="next">${T(P.next, lang)}</a>` : ''}</p></nav>`;
}

function beyond(lang: Lang, page: number, pages: number, href: (p: number) => string): Html | string {
  return page > pages ? notice({ kind: 'warning', body: html`<p>${T(P.beyondLast, lang, { page, pages })} <a href="${href(pages)}">${T(P.lastPage, lang)}</a></p>` }) : '';
}

const keepLangField = (ql: string | undefined) => (isLang(ql) ? html`<input type="hidden" name="lang" value="${ql}">` : '');
const time = (d: Date | string, lang: Lang) => {
  const at = typeof d === 'string' ? new Date(d) : d;
  return Number.isNaN(at.getTime()) ? String(d) : html`<time datetime="${at.toISOString()}">${formatDateTime(at, lang)}</time>`;
};

/** a purpose as the audit log takes it: 2 to 200 characters after trimming */
function purposeOf(raw: string | undefined): string | null {
  const p = (raw ?? '').trim().replace(/\s+/g, ' ');
  return p.length >= 2 && p.length <= 200 ? p : null;
}

function isDate(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s);
}

// ---------------------------------------------------------------------------------------------
// The pages

export function populationPages(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  addConsoleNav({ href: HOME, label: POPULATION_NAV_LABEL });
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const reg = (): CompiledRegistry => populationRegistry(ctx);
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  const deptName = (code: string | null | undefined, lang: Lang, full = false): string => {
    if (!code) return '—';
    const d = departments.get(code);
    return d ? (lang === 'en' ? d.nameEn : full ? d.name : d.abbr) : code;
  };
  const fieldName = (f: string, lang: Lang) => {
    const d = reg().def.fields[f];
    return d ? T(d.name, lang) : f;
  };
  /** 公安 · 公安户籍 — the department and the source's own name */
  const sourceLabel = (id: string, lang: Lang): string => {
    if (id === STEWARD_SOURCE) return T(P.steward, lang);
    const src = reg().sources.get(id);
    return src ? `${deptName(src.department, lang)} · ${T(src.name, lang)}` : id;
  };
  /** a value as people read it: 男, 已迁出, 是; masked values as the mask left them */
  const valueText = (field: string, v: unknown, lang: Lang, masked = false): string => {
    if (v === null || v === undefined) return '—';
    if (masked) return String(v);
    const d = reg().def.fields[field];
    if (d?.type === 'boolean' || typeof v === 'boolean') return v === true ? T(P.yes, lang) : v === false ? T(P.no, lang) : String(v);
    if (d?.type === 'enum') {
      const label = msg(`v_${field}_${String(v)}`);
      return label ? T(label, lang) : String(v);
    }
    if (typeof v === 'number') return formatNumber(v, lang);
    return String(v);
  };
  const stewardly = (a: Actor) => ctx.policy.can(a, 'population-steward:read');
  const crumbs = (lang: Lang, ql: string | undefined, ...rest: Crumb[]): Crumb[] => [
    { label: tr(M.consoleHome, lang), href: '/console' },
    { label: T(P.title, lang), href: withLang(HOME, ql) },
    ...rest,
  ];

  function sectionTabs(current: string, actor: Actor, lang: Lang, ql: string | undefined): Html {
    const items: [string, Text][] = [[HOME, P.findTab]];
    if (stewardly(actor)) items.push([CONFLICTS, P.conflictsTab]);
    items.push([DISPUTES, P.disputesTab]);
    if (stewardly(actor)) items.push([REVIEW, P.reviewTab]);
    return html`<nav class="tabs" aria-label="${T(P.sections, lang)}"><ul>${items.map(([href, label]) =>
      href === current ? html`<li><span aria-current="page">${T(label, lang)}</span></li>` : html`<li><a href="${withLang(href, ql)}">${T(label, lang)}</a></li>`,
    )}</ul></nav>`;
  }

  async function auditSubjects(req: FastifyRequest, action: string, keys: readonly string[], purpose: string, details: Record<string, unknown> = {}): Promise<void> {
    const unique = [...new Set(keys)];
    if (!unique.length) return;
    await appendAuditMany(
      ctx.db,
      unique.map((k) => ({ actor: auditActorOf(req.actor), action, resource: { type: 'person', id: maskValue(k, 'id') as string }, subject: k, purpose, outcome: 'ok' as const, requestId: req.id, ip: req.ip, details })),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Find a person

  interface FindView {
    values: FindQ;
    errors?: Record<string, string>;
    results?: { name: string; birthDate: string; purpose: string; items: PersonView[] };
  }

  function findPage(req: FastifyRequest, reply: FastifyReply, v: FindView) {
    const lang = requestLang(req);
    const ql = v.values.lang;
    const errors = v.errors ?? {};
    const e = (name: string) => errors[`f-${name}`];
    const title = T(P.title, lang);
    let results: Html | string = '';
    if (v.results) {
      const r = v.results;
      const rows = r.items.map((p) => {
        const unmasked = /^[0-9]{17}[0-9X]$/.test(p.idNumber);
        const id = unmasked ? html`<a href="${hrefWith(`${PERSONS}/${p.idNumber}`, { purpose: r.purpose }, ql)}"><code>${p.idNumber}</code></a>` : html`<code>${p.idNumber}</code>`;
        const cell = (f: string) => (f in p.record ? valueText(f, p.record[f], lang, p.masked.includes(f)) : '—');
        return [id, cell('name'), cell('sex'), cell('birthDate'), cell('divisionCode'), cell('status')];
      });
      const anyMasked = r.items.some((p) => !/^[0-9]{17}[0-9X]$/.test(p.idNumber));
      results = html`<h2 id="results" tabindex="-1">${T(P.results, lang)}</h2>
<p role="status">${T(P.resultsCount, lang, { n: formatNumber(r.items.length, lang), name: r.name, date: r.birthDate })}</p>
${anyMasked ? notice({ body: T(P.maskedResults, lang) }) : ''}
${table({
  lang,
  caption: T(P.resultsCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(P.idNumber, lang), nowrap: true },
    { label: fieldName('name', lang), nowrap: true },
    { label: fieldName('sex', lang), nowrap: true },
    { label: fieldName('birthDate', lang), nowrap: true },
    { label: fieldName('divisionCode', lang), nowrap: true },
    { label: fieldName('status', lang), nowrap: true },
  ],
  rows,
  empty: T(P.noResults, lang),
})}
<p class="muted">${T(P.searchedWith, lang, { purpose: r.purpose })}</p>`;
    }
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: [{ label: tr(M.consoleHome, lang), href: '/console' }, { label: title }],
      main: html`<h1>${title}</h1>
<p class="lead">${T(P.findLead, lang)}</p>
${sectionTabs(HOME, req.actor, lang, ql)}
<h2 id="find">${T(P.findHeading, lang)}</h2>
${errorSummary(errors, lang)}
<form class="form" method="get" action="${HOME}" role="search" aria-labelledby="find" novalidate>
${keepLangField(ql)}
<input type="hidden" name="go" value="1">
${inputField({ name: 'purpose', label: T(P.purpose, lang), hint: T(P.purposeHint, lang), error: e('purpose'), value: v.values.purpose, maxlength: 200, required: true })}
<fieldset>
<legend>${T(P.byId, lang)}</legend>
${inputField({ name: 'idNumber', label: T(P.idNumber, lang), hint: T(P.idNumberHint, lang), error: e('idNumber'), value: v.values.idNumber, maxlength: 18, autocomplete: 'off' })}
</fieldset>
<fieldset>
<legend>${T(P.byName, lang)}</legend>
${inputField({ name: 'name', label: T(P.name, lang), hint: T(P.nameHint, lang), error: e('name'), value: v.values.name, maxlength: 50, autocomplete: 'off' })}
${inputField({ name: 'birthDate', label: T(P.birthDate, lang), hint: T(P.birthDateHint, lang), error: e('birthDate'), value: v.values.birthDate, type: 'date' })}
</fieldset>
<p class="form-inline"><button class="button" type="submit">${T(P.find, lang)}</button></p>
</form>
${results}`,
    });
  }

  s.get(HOME, { schema: { hide: true, querystring: FindQ }, config: { action: 'population-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query as FindQ;
    const values: FindQ = { ...q, idNumber: q.idNumber?.trim().toUpperCase(), name: q.name?.trim(), birthDate: q.birthDate?.trim() };
    // a link may prefill the ID number; the search runs when the form was sent (go=1)
    if (q.go !== '1') return findPage(req, reply, { values });
    const errors: Record<string, string> = {};
    const purpose = purposeOf(q.purpose);
    if (!purpose) errors['f-purpose'] = T(P.err_purpose, lang);
    const byId = Boolean(values.idNumber);
    if (byId) {
      if (!checkIdNumber(values.idNumber!).ok) errors['f-idNumber'] = T(P.err_idNumber, lang);
    } else if (!values.name && !values.birthDate) errors['f-idNumber'] = T(P.err_criteria, lang);
    else {
      if (!values.name || [...values.name].length > 50) errors['f-name'] = T(P.err_name, lang);
      if (!values.birthDate || !isDate(values.birthDate)) errors['f-birthDate'] = T(P.err_birthDate, lang);
    }
    if (Object.keys(errors).length) {
      reply.code(400);
      return findPage(req, reply, { values, errors });
    }
    if (byId) return reply.redirect(hrefWith(`${PERSONS}/${values.idNumber}`, { purpose }, q.lang), 303);
    // by name and birth date: as the native API does (matches read one by one through readPerson)
    const r = reg();
    const name = values.name!;
    const birthDate = values.birthDate!;
    const { rows } = await ctx.db.query<{ key: string }>(
      `select key from fusion.golden where registry = 'population' and record->'name'->>'v' = $1 and record->'birthDate'->>'v' = $2 order by key limit 20`,
      [name, birthDate],
    );
    await appendAudit(ctx.db, {
      actor: auditActorOf(req.actor),
      action: 'population.person.search',
      resource: { type: 'person-search', id: `${maskValue(name, 'name')}/${birthDate}` },
      purpose: purpose!,
      outcome: 'ok',
      requestId: req.id,
      details: { matches: rows.length, via: 'console' },
    });
    const items: PersonView[] = [];
    try {
      for (const row of rows) items.push(await readPerson(ctx, r, req.actor, row.key, { purpose: purpose!, requestId: req.id, ip: req.ip }));
    } catch (err) {
      if (err instanceof PopulationError && err.code === 'forbidden') throw problem('forbidden', err.message);
      throw err;
    }
    return findPage(req, reply, { values, results: { name, birthDate, purpose: purpose!, items } });
  });

  // -------------------------------------------------------------------------------------------
  // One person

  s.get(
    `${PERSONS}/:idNumber`,
    { schema: { hide: true, params: Type.Object({ idNumber: Type.String({ pattern: ID_RE }) }), querystring: PersonQ }, config: { action: 'population-console:read' } },
    async (req, reply) => {
      const lang = requestLang(req);
      const q = req.query as { purpose?: string; asOf?: string; lang?: string };
      const ql = q.lang;
      const key = req.params.idNumber.toUpperCase();
      const path = `${PERSONS}/${key}`;
      const purpose = purposeOf(q.purpose);
      const asOfText = (q.asOf ?? '').trim();
      const asOfOk = asOfText === '' || isDate(asOfText);

      // no purpose (or a bad date): nothing is read; the page asks for what is missing
      if (!purpose || !asOfOk) {
        const errors: Record<string, string> = {};
        if (!purpose) errors['f-purpose'] = T(P.err_purpose, lang);
        if (!asOfOk) errors['f-asOf'] = T(P.err_asOf, lang);
        const title = T(P.purposeNeededTitle, lang);
        reply.code(400).header('cache-control', 'no-store');
        return sendPage(req, reply, {
          lang,
          shell: 'console',
          title,
          breadcrumbs: crumbs(lang, ql, { label: title }),
          main: html`<h1>${title}</h1>
<p class="lead">${T(P.purposeNeededLead, lang)}</p>
${errorSummary(errors, lang)}
<form class="form" method="get" action="${path}" aria-labelledby="purpose-heading" novalidate>
<h2 id="purpose-heading" class="visually-hidden">${T(P.purpose, lang)}</h2>
${keepLangField(ql)}
${inputField({ name: 'purpose', label: T(P.purpose, lang), hint: T(P.purposeHint, lang), error: errors['f-purpose'], value: q.purpose, maxlength: 200, required: true })}
${inputField({ name: 'asOf', label: T(P.asOfLabel, lang), hint: T(P.asOfHint, lang), error: errors['f-asOf'], value: q.asOf, type: 'date' })}
<p class="form-inline"><button class="button" type="submit">${T(P.view, lang)}</button></p>
</form>
<ul class="actions"><li><a href="${withLang(HOME, ql)}">${T(P.backToFind, lang)}</a></li></ul>`,
        });
      }

      const asOf = asOfText ? new Date(`${asOfText}T23:59:59.999+08:00`) : undefined;
      const r = reg();
      let view: PersonView;
      try {
        view = await readPerson(ctx, r, req.actor, key, { purpose, ...(asOf ? { asOf } : {}), requestId: req.id, ip: req.ip });
      } catch (err) {
        if (!(err instanceof PopulationError)) throw err;
        if (err.code === 'forbidden') throw problem('forbidden', err.message);
        const title = T(P.notFoundTitle, lang);
        const masked = maskValue(key, 'id') as string;
        reply.code(404).header('cache-control', 'no-store');
        return sendPage(req, reply, {
          lang,
          shell: 'console',
          title,
          breadcrumbs: crumbs(lang, ql, { label: title }),
          main: html`<h1>${title}</h1>
${notice({ body: asOfText ? T(P.notFoundAsOf, lang, { id: masked, date: asOfText }) : T(P.notFound, lang, { id: masked }) })}
<p class="muted">${T(P.readWith, lang, { purpose })}</p>
<ul class="actions">${asOfText ? html`<li><a href="${hrefWith(path, { purpose }, ql)}">${T(P.asOfCurrent, lang)}</a></li>` : ''}<li><a href="${withLang(HOME, ql)}">${T(P.backToFind, lang)}</a></li></ul>`,
        });
      }

      const keyMasked = view.idNumber !== key;
      // a source's record id may carry the ID number: not shown to whom the ID number is masked
      const recordIdText = (rid: string) => (keyMasked ? rid.split(key).join(view.idNumber) : rid);
      const order = r.fields.filter((f) => f in view.record);
      const rows = order.map((f) => {
        const p = view.provenance[f]!;
        const isMasked = view.masked.includes(f);
        return [
          fieldName(f, lang),
          html`<span class="cell-wide">${valueText(f, view.record[f], lang, isMasked)}</span>${isMasked ? html` ${badge('planned', T(P.masked, lang))}` : ''}`,
          sourceLabel(p.source, lang),
          html`<code>${recordIdText(p.recordId)}</code>`,
          time(p.observedAt, lang),
        ];
      });
      const basis = view.access.basis;
      const accessText = basis === 'steward' ? P.access_steward : basis === 'provider' ? P.access_provider : basis === 'agreement' ? P.access_agreement : P.access_open;

      // the steward's part: open conflicts of this person, and every source record behind them
      let stewardPart: Html | string = '';
      if (basis === 'steward' && stewardly(req.actor)) {
        const [open, disputed, history] = await Promise.all([
          listConflicts(ctx.db, 'population', { key, status: 'open', limit: 100 }),
          listConflicts(ctx.db, 'population', { key, status: 'disputed', limit: 100 }),
          sourceRecords(ctx.db, r, key),
        ]);
        await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.person.history', resource: { type: 'person', id: maskValue(key, 'id') as string }, subject: key, purpose, outcome: 'ok', requestId: req.id, ip: req.ip, details: { records: history.length, via: 'console' } });
        const conflicts = [...open.items, ...disputed.items].sort((a, b) => a.id - b.id);
        const historyRows = history.map((h) => [
          String(h.seq),
          sourceLabel(h.source, lang),
          html`<code>${h.recordId}</code>`,
          time(h.observedAt, lang),
          time(h.receivedAt, lang),
          html`<ul class="plain-list">${Object.entries(h.data).map(([f, v]) => html`<li>${fieldName(f, lang)}${colon(lang)}${valueText(f, v, lang)}</li>`)}</ul>`,
        ]);
        stewardPart = html`<h2 id="conflicts">${T(P.conflictsHeading, lang)}</h2>
${conflicts.length
  ? html`<ul class="link-list">${conflicts.map(
      (c) => html`<li><a href="${hrefWith(CONFLICTS, { key, status: c.status }, ql)}#conflict-${c.id}">${T(P.personConflict, lang, { id: c.id, field: fieldName(c.field, lang), status: T(msg(`st_${c.status}`)!, lang) })}</a></li>`,
    )}</ul>`
  : html`<p class="muted">${T(P.noPersonConflicts, lang)}</p>`}
<h2 id="history">${T(P.historyHeading, lang)}</h2>
<p>${T(P.historyLead, lang)}</p>
${table({
  lang,
  caption: T(P.historyCaption, lang, { n: history.length }),
  captionHidden: true,
  columns: [{ label: T(P.seq, lang), numeric: true }, { label: T(P.source, lang), nowrap: true }, { label: T(P.recordId, lang), nowrap: true }, { label: T(P.observedAt, lang), nowrap: true }, { label: T(P.receivedAt, lang), nowrap: true }, { label: T(P.content, lang) }],
  rows: historyRows,
  empty: T(P.noHistory, lang),
})}`;
      }

      const personName = 'name' in view.record ? valueText('name', view.record.name, lang, view.masked.includes('name')) : null;
      const title = personName ? `${T(P.personTitle, lang)}${colon(lang)}${personName}` : T(P.personTitle, lang);
      reply.header('cache-control', 'no-store');
      return sendPage(req, reply, {
        lang,
        shell: 'console',
        title,
        breadcrumbs: crumbs(lang, ql, { label: personName ?? view.idNumber }),
        localNav:
          basis === 'steward'
            ? {
                label: T(M.localNav, lang),
                items: [
                  { href: '#record', label: T(P.recordHeading, lang) },
                  { href: '#as-of', label: T(P.asOfHeading, lang) },
                  { href: '#conflicts', label: T(P.conflictsHeading, lang) },
                  { href: '#history', label: T(P.historyHeading, lang) },
                ],
              }
            : undefined,
        main: html`<h1>${title}</h1>
<p><code>${view.idNumber}</code>${view.version ? html` <span class="muted">· ${T(P.version, lang, { n: view.version })}</span>` : ''}</p>
${asOfText ? notice({ kind: 'warning', body: html`<p>${T(P.asOfNotice, lang, { date: asOfText })} <a href="${hrefWith(path, { purpose }, ql)}">${T(P.asOfCurrent, lang)}</a></p>` }) : ''}
${notice({ body: html`<p>${T(accessText, lang)}${view.masked.length ? html` ${T(P.maskedCount, lang, { n: view.masked.length })}` : ''}</p><p>${T(P.readWith, lang, { purpose })}</p>` })}
<h2 id="record">${T(P.recordHeading, lang)}</h2>
${table({
  lang,
  caption: T(P.recordCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [{ label: T(P.field, lang), nowrap: true }, { label: T(P.value, lang) }, { label: T(P.source, lang), nowrap: true }, { label: T(P.recordId, lang), nowrap: true }, { label: T(P.observedAt, lang), nowrap: true }],
  rows,
})}
<h2 id="as-of">${T(P.asOfHeading, lang)}</h2>
<form class="form" method="get" action="${path}" aria-labelledby="as-of">
${keepLangField(ql)}
<input type="hidden" name="purpose" value="${purpose}">
${inputField({ name: 'asOf', label: T(P.asOfLabel, lang), hint: T(P.asOfHint, lang), value: asOfText, type: 'date' })}
<p class="form-inline"><button class="button" type="submit">${T(P.view, lang)}</button>${asOfText ? html` <a class="button button-secondary" href="${hrefWith(path, { purpose }, ql)}">${T(P.asOfCurrent, lang)}</a>` : ''}</p>
</form>
${stewardPart}
<ul class="actions"><li><a href="${withLang(HOME, ql)}">${T(P.backToFind, lang)}</a></li></ul>`,
      });
    },
  );

  // -------------------------------------------------------------------------------------------
  // The steward queue

  interface ConflictsView {
    /** errors of one conflict's form */
    failed?: { id: number; errors?: Record<string, string>; general?: string[]; values?: ResolveForm };
  }

  async function conflictsPage(req: FastifyRequest, reply: FastifyReply, q: ConflictsQ, v: ConflictsView = {}) {
    const lang = requestLang(req);
    const ql = q.lang;
    const status = (q.status || 'open') as ConflictStatus | 'all';
    const key = q.key ? q.key.toUpperCase() : undefined;
    const page = q.page ?? 1;
    const [found, counts] = await Promise.all([
      listConflicts(ctx.db, 'population', { status: status === 'all' ? undefined : status, key, limit: PER_PAGE, offset: (page - 1) * PER_PAGE }),
      ctx.db.query<{ status: string; n: number }>(`select status, count(*)::int as n from fusion.conflict where registry = 'population' and ($1::text is null or key = $1) group by status`, [key ?? null]),
    ]);
    const count = new Map(counts.rows.map((r) => [r.status, r.n]));
    const total = counts.rows.reduce((a, r) => a + r.n, 0);
    // a failed form's conflict is shown even when it is on another page or no longer in this status
    const items = [...found.items];
    if (v.failed && !items.some((c) => c.id === v.failed!.id)) {
      const c = await getConflict(ctx.db, 'population', v.failed.id);
      if (c) items.unshift(c);
    }
    await auditSubjects(req, 'population.conflict.read', items.map((c) => c.key), AUDIT_PURPOSE.conflicts, { via: 'console' });
    const pages = Math.max(1, Math.ceil(found.total / PER_PAGE));
    const href = (p: number) => hrefWith(CONFLICTS, { status: status === 'open' ? undefined : status, key, page: p > 1 ? p : undefined }, ql);
    const canResolve = ctx.policy.can(req.actor, 'population-steward:resolve');

    const statusTabs = html`<nav class="tabs" aria-label="${T(P.statusFilter, lang)}"><ul>${[...CONFLICT_STATUSES, 'all' as const].map((st) => {
      const label = T(P.statusCount, lang, { label: T(msg(`st_${st}`)!, lang), n: formatNumber(st === 'all' ? total : (count.get(st) ?? 0), lang) });
      return st === status ? html`<li><span aria-current="page">${label}</span></li>` : html`<li><a href="${hrefWith(CONFLICTS, { status: st === 'open' ? undefined : st, key }, ql)}">${label}</a></li>`;
    })}</ul></nav>`;

    let banner: Html | string = '';
    if (q.done && q.id) {
      const c = items.find((x) => x.id === q.id) ?? (await getConflict(ctx.db, 'population', q.id));
      const dept = c?.disputeInstance ? (await ctx.db.query<{ department: string | null }>('select department from workflow.instance where id = $1', [c.disputeInstance])).rows[0]?.department : null;
      banner = notice({ body: html`<p role="status">${T(msg(`done_${q.done}`)!, lang, { id: q.id, dept: deptName(dept, lang, true) })}</p>` });
    }

    const side = (f: string, fv: FieldValue) =>
      html`<span class="cell-wide"><strong>${valueText(f, fv.v, lang)}</strong></span><br><span class="muted">${sourceLabel(fv.s, lang)} · <code>${fv.r}</code> · ${time(fv.t, lang)}</span>`;

    const sections = items.map((c) => {
      const f = v.failed?.id === c.id ? v.failed : undefined;
      const errors = f?.errors ?? {};
      const rows: [string, Html | string][] = [
        [T(P.person, lang), html`<code>${c.key}</code> <a href="${hrefWith(HOME, { idNumber: c.key }, ql)}">${T(P.openPerson, lang)}</a>`],
        [T(P.winner, lang), side(c.field, c.winner)],
        [T(P.challenger, lang), side(c.field, c.challenger)],
        [T(P.createdAt, lang), time(c.createdAt, lang)],
        [T(P.status, lang), c.status === 'open' ? badge('planned', T(P.st_open, lang)) : c.status === 'disputed' ? badge('problem', T(P.st_disputed, lang)) : badge('ok', T(msg(`st_${c.status}`)!, lang))],
      ];
      if (c.resolvedBy) rows.push([T(P.resolvedBy, lang), c.resolvedBy]);
      if (c.resolvedAt) rows.push([T(P.resolvedAt, lang), time(c.resolvedAt, lang)]);
      if (c.note) rows.push([T(P.note, lang), html`<span class="cell-wide">${c.note}</span>`]);
      if (c.disputeInstance) rows.push([T(P.disputeProcess, lang), html`<a href="${withLang(`/console/workflow/instances/${c.disputeInstance}`, ql)}">${T(P.viewInstance, lang)}</a>`]);
      const winnerDept = reg().sources.get(c.winner.s)?.department;
      const challengerDept = reg().sources.get(c.challenger.s)?.department;
      const decision = f?.values?.decision ?? '';
      const against = f?.values?.against ?? '';
      const form =
        c.status === 'open' && canResolve
          ? html`${errorSummary(errors, lang, f?.general)}
<form class="form" method="post" action="${withLang(`${CONFLICTS}/${c.id}/resolve`, ql)}" aria-labelledby="conflict-${c.id}-h" novalidate>
${csrfField(ctx, req, reply)}
${key ? html`<input type="hidden" name="key" value="${key}">` : ''}
<fieldset id="f-decision-${c.id}" tabindex="-1"${errors[`f-decision-${c.id}`] ? html` aria-describedby="f-decision-${c.id}-error" class="field-invalid"` : ''}>
<legend>${T(P.decision, lang)}</legend>
${errors[`f-decision-${c.id}`] ? html`<p class="field-error" id="f-decision-${c.id}-error">${errors[`f-decision-${c.id}`]}</p>` : ''}
<label><input type="radio" name="decision" value="keep"${decision === 'keep' ? html` checked` : ''}> ${T(P.decide_keep, lang, { source: sourceLabel(c.winner.s, lang) })}</label>
<label><input type="radio" name="decision" value="replace"${decision === 'replace' ? html` checked` : ''}> ${T(P.decide_replace, lang, { source: sourceLabel(c.challenger.s, lang) })}</label>
<label><input type="radio" name="decision" value="dispute"${decision === 'dispute' ? html` checked` : ''}> ${T(P.decide_dispute, lang)}</label>
</fieldset>
${selectField({
  name: 'against',
  id: `f-against-${c.id}`,
  label: T(P.against, lang),
  hint: T(P.againstHint, lang),
  error: errors[`f-against-${c.id}`],
  options: [
    option('', T(P.choose, lang), !against),
    ...(winnerDept ? [option('winner', T(P.against_winner, lang, { dept: deptName(winnerDept, lang, true) }), against === 'winner')] : []),
    ...(challengerDept ? [option('challenger', T(P.against_challenger, lang, { dept: deptName(challengerDept, lang, true) }), against === 'challenger')] : []),
  ],
})}
${inputField({ name: 'note', id: `f-note-${c.id}`, label: T(P.note, lang), hint: T(P.noteHint, lang), error: errors[`f-note-${c.id}`], value: f?.values?.note, type: 'textarea', maxlength: 2000 })}
<p class="form-inline"><button class="button" type="submit">${T(P.submitDecision, lang)}</button></p>
</form>`
          : f?.general?.length
            ? errorSummary({}, lang, f.general)
            : '';
      return html`<section class="panel" id="conflict-${c.id}" aria-labelledby="conflict-${c.id}-h">
<h3 id="conflict-${c.id}-h">${T(P.conflictHeading, lang, { id: c.id, field: fieldName(c.field, lang) })}</h3>
${table({ lang, caption: T(P.conflictCaption, lang, { id: c.id }), captionHidden: true, rowHeaders: true, columns: [{ label: T(P.item, lang), nowrap: true }, { label: T(P.value, lang) }], rows })}
${form}
</section>`;
    });

    const title = T(P.conflictsTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(P.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(P.conflictsLead, lang)}</p>
${sectionTabs(CONFLICTS, req.actor, lang, ql)}
${banner}
${canResolve ? '' : notice({ body: T(P.readOnlyQueue, lang) })}
${key ? notice({ body: html`<p>${T(P.onlyPerson, lang, { id: key })} <a href="${hrefWith(CONFLICTS, { status: status === 'open' ? undefined : status }, ql)}">${T(P.showAll, lang)}</a></p>` }) : ''}
${statusTabs}
<h2 id="list">${T(msg(`st_${status}`)!, lang)}</h2>
<p>${T(P.conflictsCount, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${sections.length ? html`<div class="panels">${sections}</div>` : html`<p class="muted">${T(P.noConflicts, lang)}</p>`}
${pager(lang, page, pages, href)}`,
    });
  }

  s.get(CONFLICTS, { schema: { hide: true, querystring: ConflictsQ }, config: { action: 'population-steward:read' } }, (req, reply) => conflictsPage(req, reply, req.query as ConflictsQ));

  s.post(`${CONFLICTS}/:id/resolve`, { schema: { hide: true, params: IdParam, body: ResolveForm }, config: { action: 'population-steward:resolve' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    ctx.policy.authorize(req.actor, 'population-steward:resolve');
    const lang = requestLang(req);
    const b = req.body as ResolveForm;
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const id = req.params.id;
    const back: ConflictsQ = { key: b.key || undefined, lang: ql };
    const c = await getConflict(ctx.db, 'population', id);
    if (!c) throw problem('not-found', `no conflict ${id}`);
    const errors: Record<string, string> = {};
    const note = b.note?.trim() || null;
    if (!b.decision) errors[`f-decision-${id}`] = T(P.err_decision, lang);
    if (b.decision === 'dispute' && !b.against) errors[`f-against-${id}`] = T(P.err_against, lang);
    if (note && note.length > 2000) errors[`f-note-${id}`] = T(P.err_note, lang);
    const fail = (code: number, e: Record<string, string>, general: string[] = []) => {
      reply.code(code);
      return conflictsPage(req, reply, back, { failed: { id, errors: e, general, values: b } });
    };
    if (Object.keys(errors).length) return fail(400, errors);
    if (c.status !== 'open') return fail(409, {}, [T(P.err_notOpen, lang, { id, status: T(msg(`st_${c.status}`)!, lang) })]);
    const who = auditActorOf(req.actor).id;
    const r = reg();
    try {
      if (b.decision === 'keep' || b.decision === 'replace') {
        const done = await ctx.db.tx((q) => resolveConflict(q, r, id, b.decision as 'keep' | 'replace', who, note));
        await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: `population.conflict.${b.decision}`, resource: { type: 'population-conflict', id: String(id) }, subject: done.key, outcome: 'ok', requestId: req.id, details: { via: 'console' } });
      } else {
        // a dispute: as the native API raises it (a workflow instance for the source department)
        const sideV = b.against === 'challenger' ? c.challenger : c.winner;
        const src = r.sources.get(sideV.s);
        if (!src) return fail(409, {}, [T(P.err_againstSteward, lang)]);
        const step = await startInstance(
          engine(),
          { key: DISPUTE_PROCESS, businessKey: `conflict:${id}`, department: src.department, idempotencyKey: `population-dispute:${id}`, variables: { conflictId: id, department: src.department, source: src.id, field: c.field, value: sideV.v, recordId: sideV.r, note } },
          req.actor,
        );
        await ctx.db.tx((q) => markDisputed(q, 'population', id, step.instanceId, who, note));
        await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.conflict.dispute', resource: { type: 'population-conflict', id: String(id) }, subject: c.key, outcome: 'ok', requestId: req.id, details: { department: src.department, instance: step.instanceId, via: 'console' } });
      }
    } catch (err) {
      if (err instanceof FusionError && err.code !== 'not-found') {
        const now = await getConflict(ctx.db, 'population', id);
        return fail(409, {}, [now && now.status !== 'open' ? T(P.err_notOpen, lang, { id, status: T(msg(`st_${now.status}`)!, lang) }) : T(P.err_conflict, lang, { detail: err.message })]);
      }
      if (err instanceof WorkflowError && err.code === 'conflict') return fail(409, {}, [T(P.err_conflict, lang, { detail: err.message })]);
      throw err;
    }
    return reply.redirect(hrefWith(CONFLICTS, { key: back.key, done: b.decision, id }, ql) + `#conflict-${id}`, 303);
  });

  // -------------------------------------------------------------------------------------------
  // Disputes: the source department answers

  interface DisputeItem {
    task: TaskRow;
    conflict: ConflictRow;
    vars: { source?: string; value?: unknown; note?: string | null };
  }

  async function disputesOf(actor: Actor, page: number): Promise<{ total: number; items: DisputeItem[] }> {
    const box = await inbox(ctx.db, actor, { key: DISPUTE_PROCESS, page, perPage: PER_PAGE });
    if (!box.items.length) return { total: box.total, items: [] };
    const ids = box.items.map((t) => t.instanceId);
    const [conflicts, instances] = await Promise.all([
      ctx.db.query<{ id: number; instance: string }>(`select id::int as id, dispute_instance::text as instance from fusion.conflict where registry = 'population' and dispute_instance = any($1::uuid[])`, [ids]),
      ctx.db.query<{ id: string; variables: DisputeItem['vars'] }>(`select id::text as id, variables from workflow.instance where id = any($1::uuid[])`, [ids]),
    ]);
    const byInstance = new Map(conflicts.rows.map((r) => [r.instance, r.id]));
    const vars = new Map(instances.rows.map((r) => [r.id, r.variables ?? {}]));
    const items: DisputeItem[] = [];
    for (const t of box.items) {
      const cid = byInstance.get(t.instanceId);
      const c = cid ? await getConflict(ctx.db, 'population', cid) : null;
      if (c) items.push({ task: t, conflict: c, vars: vars.get(t.instanceId) ?? {} });
    }
    return { total: box.total, items };
  }

  interface DisputesView {
    failed?: { id: number; errors?: Record<string, string>; general?: string[]; values?: AnswerForm };
  }

  async function disputesPage(req: FastifyRequest, reply: FastifyReply, q: { page?: number; done?: string; id?: number; lang?: string }, v: DisputesView = {}) {
    const lang = requestLang(req);
    const ql = q.lang;
    const page = q.page ?? 1;
    const found = await disputesOf(req.actor, page);
    await auditSubjects(req, 'population.dispute.read', found.items.map((d) => d.conflict.key), AUDIT_PURPOSE.disputes, { via: 'console' });
    const pages = Math.max(1, Math.ceil(found.total / PER_PAGE));
    const href = (p: number) => hrefWith(DISPUTES, { page: p > 1 ? p : undefined }, ql);
    const now = Date.now();

    let banner: Html | string = '';
    if (q.done && q.id) banner = notice({ body: html`<p role="status">${T(msg(`done_${q.done}`)!, lang, { id: q.id })}</p>` });
    const orphan = v.failed && !found.items.some((d) => d.conflict.id === v.failed!.id) ? errorSummary(v.failed.errors ?? {}, lang, v.failed.general) : '';

    const sections = found.items.map(({ task, conflict: c, vars }) => {
      const f = v.failed?.id === c.id ? v.failed : undefined;
      const errors = f?.errors ?? {};
      const ours = vars.source === c.challenger.s ? c.challenger : c.winner;
      const other = ours === c.winner ? c.challenger : c.winner;
      const def = reg().def.fields[c.field];
      const outcome = f?.values?.outcome ?? '';
      const valueId = `f-value-${c.id}`;
      const valueInput =
        def?.type === 'enum' || def?.type === 'boolean'
          ? selectField({
              name: 'value',
              id: valueId,
              label: T(P.correctedValue, lang),
              hint: T(P.correctedHint, lang),
              error: errors[valueId],
              options: [
                option('', T(P.choose, lang), !f?.values?.value),
                ...(def.type === 'boolean' ? ['true', 'false'] : def.values!).map((x) => option(x, valueText(c.field, def.type === 'boolean' ? x === 'true' : x, lang), f?.values?.value === x)),
              ],
            })
          : inputField({ name: 'value', id: valueId, label: T(P.correctedValue, lang), hint: T(P.correctedHint, lang), error: errors[valueId], value: f?.values?.value, type: def?.type === 'date' ? 'date' : 'text', maxlength: 500, inputmode: def?.type === 'number' ? 'decimal' : undefined });
      const overdue = task.dueAt && task.dueAt.getTime() < now;
      const rows: [string, Html | string][] = [
        [T(P.person, lang), html`<code>${c.key}</code>`],
        [T(P.yourValue, lang), html`<strong>${valueText(c.field, ours.v, lang)}</strong><br><span class="muted">${sourceLabel(ours.s, lang)} · <code>${ours.r}</code> · ${time(ours.t, lang)}</span>`],
        [T(P.otherValue, lang), html`${valueText(c.field, other.v, lang)}<br><span class="muted">${sourceLabel(other.s, lang)} · ${time(other.t, lang)}</span>`],
        [T(P.stewardNote, lang), c.note ? html`<span class="cell-wide">${c.note}</span>` : T(P.none, lang)],
        [T(P.dueAt, lang), task.dueAt ? html`${time(task.dueAt, lang)}${overdue ? html` ${badge('problem', T(P.overdue, lang))}` : ''}` : '—'],
      ];
      return html`<section class="panel" id="dispute-${c.id}" aria-labelledby="dispute-${c.id}-h">
<h3 id="dispute-${c.id}-h">${T(P.disputeHeading, lang, { id: c.id, field: fieldName(c.field, lang) })}</h3>
${table({ lang, caption: T(P.disputeHeading, lang, { id: c.id, field: fieldName(c.field, lang) }), captionHidden: true, rowHeaders: true, columns: [{ label: T(P.item, lang), nowrap: true }, { label: T(P.value, lang) }], rows })}
${errorSummary(errors, lang, f?.general)}
<form class="form" method="post" action="${withLang(`${DISPUTES}/${c.id}/answer`, ql)}" aria-labelledby="dispute-${c.id}-h" novalidate>
${csrfField(ctx, req, reply)}
<fieldset id="f-outcome-${c.id}" tabindex="-1"${errors[`f-outcome-${c.id}`] ? html` aria-describedby="f-outcome-${c.id}-error" class="field-invalid"` : ''}>
<legend>${T(P.outcome, lang)}</legend>
${errors[`f-outcome-${c.id}`] ? html`<p class="field-error" id="f-outcome-${c.id}-error">${errors[`f-outcome-${c.id}`]}</p>` : ''}
<label><input type="radio" name="outcome" value="confirm"${outcome === 'confirm' ? html` checked` : ''}> ${T(P.outcome_confirm, lang)}</label>
<label><input type="radio" name="outcome" value="correct"${outcome === 'correct' ? html` checked` : ''}> ${T(P.outcome_correct, lang)}</label>
</fieldset>
${valueInput}
<p class="form-inline"><button class="button" type="submit">${T(P.submitAnswer, lang)}</button></p>
</form>
</section>`;
    });

    const title = T(P.disputesTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(P.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(P.disputesLead, lang)}</p>
${sectionTabs(DISPUTES, req.actor, lang, ql)}
${banner}
${orphan}
${stewardly(req.actor) ? html`<p><a href="${hrefWith(CONFLICTS, { status: 'disputed' }, ql)}">${T(P.disputesStewardHint, lang)}</a></p>` : ''}
<h2 id="list">${T(P.disputesTab, lang)}</h2>
${found.total ? html`<p>${T(P.disputesCount, lang, { n: formatNumber(found.total, lang), page, pages })}</p>` : html`<p class="muted">${T(P.noDisputes, lang)}</p>`}
${beyond(lang, page, pages, href)}
${sections.length ? html`<div class="panels">${sections}</div>` : ''}
${pager(lang, page, pages, href)}`,
    });
  }

  s.get(DISPUTES, { schema: { hide: true, querystring: DisputesQ }, config: { action: 'population-console:read' } }, (req, reply) => disputesPage(req, reply, req.query));

  s.post(`${DISPUTES}/:id/answer`, { schema: { hide: true, params: IdParam, body: AnswerForm }, config: { action: 'population-dispute:answer' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    ctx.policy.authorize(req.actor, 'population-dispute:answer');
    const lang = requestLang(req);
    const b = req.body as AnswerForm;
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const id = req.params.id;
    const c = await getConflict(ctx.db, 'population', id);
    if (!c || !c.disputeInstance) throw problem('not-found', `no dispute ${id}`);
    const fail = (code: number, errors: Record<string, string>, general: string[] = []) => {
      reply.code(code);
      return disputesPage(req, reply, { lang: ql }, { failed: { id, errors, general, values: b } });
    };
    const { rows } = await ctx.db.query<{ id: string; department: string | null; role: string | null; person: string | null; escalated_to: string | null }>(
      `select id, department, role, person, escalated_to from workflow.task where instance_id = $1 and status = 'open' order by created_at limit 1`,
      [c.disputeInstance],
    );
    const t = rows[0];
    if (c.status !== 'disputed' || !t) return fail(409, {}, [T(P.err_answered, lang, { id, status: T(msg(`st_${c.status}`)!, lang) })]);
    if (!canWorkOn(req.actor, { department: t.department, role: t.role, person: t.person, escalatedTo: t.escalated_to })) throw problem('forbidden', `the dispute of conflict ${id} is for its source department (${t.department ?? '—'})`);
    const errors: Record<string, string> = {};
    let value: unknown = null;
    if (b.outcome !== 'confirm' && b.outcome !== 'correct') errors[`f-outcome-${id}`] = T(P.err_outcome, lang);
    if (b.outcome === 'correct') {
      const def = reg().def.fields[c.field]!;
      const raw = (b.value ?? '').trim();
      const vid = `f-value-${id}`;
      if (!raw) errors[vid] = T(P.err_value, lang);
      else if (def.type === 'enum') (def.values!.includes(raw) ? (value = raw) : (errors[vid] = T(P.err_valueEnum, lang)));
      else if (def.type === 'boolean') (raw === 'true' || raw === 'false' ? (value = raw === 'true') : (errors[vid] = T(P.err_valueEnum, lang)));
      else if (def.type === 'date') (isDate(raw) ? (value = raw) : (errors[vid] = T(P.err_valueDate, lang)));
      else if (def.type === 'number') (raw !== '' && Number.isFinite(Number(raw)) ? (value = Number(raw)) : (errors[vid] = T(P.err_valueNumber, lang)));
      else if ([...raw].length > 500) errors[vid] = T(P.err_valueLong, lang);
      else value = raw;
    }
    if (Object.keys(errors).length) return fail(400, errors);
    try {
      await completeTask(engine(), { taskId: t.id, outcome: b.outcome, variables: { correctedValue: b.outcome === 'correct' ? value : null, answeredBy: auditActorOf(req.actor).id } }, req.actor);
    } catch (err) {
      if (err instanceof WorkflowError && (err.code === 'conflict' || err.code === 'invalid')) return fail(409, {}, [T(P.err_conflict, lang, { detail: err.message })]);
      throw err;
    }
    await appendAudit(ctx.db, { actor: auditActorOf(req.actor), action: 'population.dispute.answer', resource: { type: 'population-conflict', id: String(id) }, subject: c.key, outcome: 'ok', requestId: req.id, details: { outcome: b.outcome, via: 'console' } });
    return reply.redirect(hrefWith(DISPUTES, { done: b.outcome, id }, ql), 303);
  });

  // -------------------------------------------------------------------------------------------
  // Review queues (read-only)

  s.get(REVIEW, { schema: { hide: true, querystring: ReviewQ }, config: { action: 'population-steward:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query as { rpage?: number; upage?: number; ustatus?: string; lang?: string };
    const ql = q.lang;
    const rpage = q.rpage ?? 1;
    const upage = q.upage ?? 1;
    const ustatus = q.ustatus || null;
    const [rej, unl] = await Promise.all([
      ctx.db.query<{ id: number; source: string; record_id: string | null; reason: string; at: Date; total: number }>(
        `select id::int as id, source, record_id, reason, at, count(*) over ()::int as total from fusion.rejected where registry = 'population' order by id desc limit $1 offset $2`,
        [PER_PAGE, (rpage - 1) * PER_PAGE],
      ),
      ctx.db.query<{ id: number; source: string; record_id: string; observed_at: Date; received_at: Date; status: string; candidates: unknown; linked_key: string | null; total: number }>(
        `select id::int as id, source, record_id, observed_at, received_at, status, candidates, linked_key, count(*) over ()::int as total
           from fusion.unlinked where registry = 'population' and ($1::text is null or status = $1) order by id desc limit $2 offset $3`,
        [ustatus, PER_PAGE, (upage - 1) * PER_PAGE],
      ),
    ]);
    // the totals: the window count is absent on a page past the end
    const [rTotal, uTotal] = await Promise.all([
      rej.rows[0] ? Promise.resolve(rej.rows[0].total) : ctx.db.query<{ n: number }>(`select count(*)::int as n from fusion.rejected where registry = 'population'`).then((r) => r.rows[0]!.n),
      unl.rows[0] ? Promise.resolve(unl.rows[0].total) : ctx.db.query<{ n: number }>(`select count(*)::int as n from fusion.unlinked where registry = 'population' and ($1::text is null or status = $1)`, [ustatus]).then((r) => r.rows[0]!.n),
    ]);
    const rPages = Math.max(1, Math.ceil(rTotal / PER_PAGE));
    const uPages = Math.max(1, Math.ceil(uTotal / PER_PAGE));
    const state = { rpage: rpage > 1 ? rpage : undefined, upage: upage > 1 ? upage : undefined, ustatus: ustatus ?? undefined };
    const rHref = (p: number) => hrefWith(REVIEW, { ...state, rpage: p > 1 ? p : undefined }, ql) + '#rejected';
    const uHref = (p: number) => hrefWith(REVIEW, { ...state, upage: p > 1 ? p : undefined }, ql) + '#unlinked';
    const candidatesOf = (c: unknown) => (Array.isArray(c) ? formatNumber(c.length, lang) : '—');
    const title = T(P.reviewTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(P.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(P.reviewLead, lang)}</p>
${sectionTabs(REVIEW, req.actor, lang, ql)}
${notice({ kind: 'warning', body: T(P.linkingNotBuilt, lang) })}
<h2 id="rejected" tabindex="-1">${T(P.rejectedHeading, lang)}</h2>
<p>${T(P.rejectedCount, lang, { n: formatNumber(rTotal, lang), page: rpage, pages: rPages })}</p>
${beyond(lang, rpage, rPages, rHref)}
${table({
  lang,
  caption: T(P.rejectedCaption, lang),
  captionHidden: true,
  columns: [{ label: T(P.seq, lang), numeric: true }, { label: T(P.source, lang), nowrap: true }, { label: T(P.recordId, lang), nowrap: true }, { label: T(P.reason, lang) }, { label: T(P.at, lang), nowrap: true }],
  rows: rej.rows.map((r) => [String(r.id), sourceLabel(r.source, lang), r.record_id ? html`<code>${r.record_id}</code>` : '—', html`<span class="cell-wide">${r.reason}</span>`, time(r.at, lang)]),
  empty: T(P.noRejected, lang),
})}
${pager(lang, rpage, rPages, rHref, `${T(P.rejectedHeading, lang)} · ${T(P.pagination, lang)}`)}
<h2 id="unlinked" tabindex="-1">${T(P.unlinkedHeading, lang)}</h2>
<form class="form" method="get" action="${REVIEW}#unlinked" aria-labelledby="unlinked">
${keepLangField(ql)}
${selectField({ name: 'ustatus', label: T(P.unlinkedStatus, lang), options: [option('', T(P.ul_all, lang), !ustatus), ...UNLINKED_STATUSES.map((st) => option(st, T(msg(`ul_${st}`)!, lang), ustatus === st))] })}
<p class="form-inline"><button class="button" type="submit">${T(P.filter, lang)}</button></p>
</form>
<p>${T(P.unlinkedCount, lang, { n: formatNumber(uTotal, lang), page: upage, pages: uPages })}</p>
${beyond(lang, upage, uPages, uHref)}
${table({
  lang,
  caption: T(P.unlinkedCaption, lang),
  captionHidden: true,
  columns: [
    { label: T(P.seq, lang), numeric: true },
    { label: T(P.source, lang), nowrap: true },
    { label: T(P.recordId, lang), nowrap: true },
    { label: T(P.observedAt, lang), nowrap: true },
    { label: T(P.receivedAt, lang), nowrap: true },
    { label: T(P.unlinkedStatus, lang), nowrap: true },
    { label: T(P.candidates, lang), numeric: true },
    { label: T(P.linkedTo, lang), nowrap: true },
  ],
  rows: unl.rows.map((u) => [String(u.id), sourceLabel(u.source, lang), html`<code>${u.record_id}</code>`, time(u.observed_at, lang), time(u.received_at, lang), T(msg(`ul_${u.status}`) ?? { zh: u.status, en: u.status }, lang), candidatesOf(u.candidates), u.linked_key ? html`<code>${u.linked_key}</code>` : '—']),
  empty: T(P.noUnlinked, lang),
})}
${pager(lang, upage, uPages, uHref, `${T(P.unlinkedHeading, lang)} · ${T(P.pagination, lang)}`)}`,
    });
  });
}
