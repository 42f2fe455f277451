// 证书管理 — the municipal CA in the staff console, for staff with the ca-operator role (issue #3):
//
//   GET  /console/ca                                    certificates: search, filters, pages, counts
//   GET  /console/ca/certificates/:serial               one certificate, with the revoke and renew forms
//   GET  /console/ca/certificates/:serial/certificate.pem
//   POST /console/ca/certificates/:serial/revoke        reason (RFC 5280)
//   POST /console/ca/certificates/:serial/renew         validDays?, csr?
//   GET  /console/ca/issue, POST /console/ca/issue      issue from a PKCS#10 request
//
// Plain HTML forms (no script), each with its CSRF field. Every change goes through the functions
// `gusu ca` and /api/v1/ca use (ca.ts), which validate, audit (with the staff member as the actor and
// the request id) and refuse what they refuse; this file only renders and maps form fields. The
// console never shows a private key: it issues from a CSR only, and renews a certificate whose key
// the CA generated only from a CSR (the CLI writes such keys to a file, the API returns them once).
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { html, type Html } from '../../../http/html.ts';
import { isLang, requestLang, tr, type Lang, type Text } from '../../../http/i18n.ts';
import { figures, formatDateTime, notice, sendPage, table } from '../../../http/layout.ts';
import { fill, M } from '../../../http/messages.ts';
import { HttpProblem, problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { ALGS, type Alg } from '../crypto/index.ts';
import { errorSummary, field, type FieldErrors } from '../oidc/pages.ts';
import { checkCsrf, csrfField, needsCsrf } from '../sessions/csrf.ts';
import {
  caContextFor,
  certificateCounts,
  getCertificate,
  issueCertificate,
  renewCertificate,
  revokeCertificate,
  searchCertificates,
  type CertificateSummary,
} from './ca.ts';
import { ALG_LABEL, ALG_SHORT, C, KIND_LABEL, REASON_LABEL, STATUS_LABEL } from './messages.ts';
import { PROFILES, SUBJECT_KINDS, type Subject, type SubjectInput, type SubjectKind } from './profiles.ts';
import { auditActor, meta } from './routes.ts';
import { nameToString, parseCertificate, REVOCATION_REASONS, type RevocationReason } from './x509.ts';

const HOME = '/console/ca';
const STATUSES = ['good', 'revoked', 'expired'] as const;
const PER_PAGE = [20, 50, 100] as const;
const DEFAULT_PER_PAGE = 20;
const SOON_DAYS = 30;

const Lang_ = Type.Optional(Type.String({ maxLength: 10 }));
const Serial = Type.String({ pattern: '^[0-9A-Fa-f]{1,40}$', description: 'hexadecimal serial number' });
const SerialParams = Type.Object({ serial: Serial });
const Csrf = Type.Optional(Type.String({ maxLength: 200 }));

const ListQuery = Type.Object({
  // no control characters (PostgreSQL text cannot hold NUL)
  q: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001F\\u007F]*$' })),
  status: Type.Optional(Type.Enum(['', ...STATUSES])),
  kind: Type.Optional(Type.Enum(['', ...SUBJECT_KINDS])),
  alg: Type.Optional(Type.Enum(['', ...ALGS])),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  perPage: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  lang: Lang_,
});
type ListQuery = Static<typeof ListQuery>;

const DetailQuery = Type.Object({ done: Type.Optional(Type.String({ maxLength: 20 })), lang: Lang_ });
const RevokeForm = Type.Object({ _csrf: Csrf, reason: Type.Optional(Type.String({ maxLength: 64 })) });
const RenewForm = Type.Object({ _csrf: Csrf, validDays: Type.Optional(Type.String({ maxLength: 10 })), csr: Type.Optional(Type.String({ maxLength: 16_384 })) });
const IssueForm = Type.Object({
  _csrf: Csrf,
  alg: Type.Optional(Type.String({ maxLength: 32 })),
  kind: Type.Optional(Type.String({ maxLength: 32 })),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  uscc: Type.Optional(Type.String({ maxLength: 32 })),
  department: Type.Optional(Type.String({ maxLength: 32 })),
  nodeId: Type.Optional(Type.String({ maxLength: 64 })),
  systemId: Type.Optional(Type.String({ maxLength: 64 })),
  staffId: Type.Optional(Type.String({ maxLength: 32 })),
  validDays: Type.Optional(Type.String({ maxLength: 10 })),
  csr: Type.Optional(Type.String({ maxLength: 16_384 })),
});
type IssueForm = Static<typeof IssueForm>;
const SUBJECT_FIELDS = ['name', 'uscc', 'department', 'nodeId', 'systemId', 'staffId'] as const;

/** The same check as the roles console: a form posted with a body a cross-site page could send needs the token. */
function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

/** '' or absent: the default; digits: the number; anything else NaN, which the CA refuses by name (validDays) */
function daysOf(v: string | undefined): number | undefined {
  const t = v?.trim();
  if (!t) return undefined;
  return /^\d{1,6}$/.test(t) ? Number(t) : Number.NaN;
}

// a compact date for the list (2027/11/28, 28 Nov 2027), in the city's time zone
const DATE_FORMATS: Record<Lang, Intl.DateTimeFormat> = {
  'zh-CN': new Intl.DateTimeFormat('zh-CN', { year: 'numeric', month: '2-digit', day: '2-digit', timeZone: 'Asia/Shanghai' }),
  en: new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'Asia/Shanghai' }),
};

function fingerprint(der: Buffer): string {
  return crypto.createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

function statusBadge(status: CertificateSummary['status'], lang: Lang): Html {
  const cls = status === 'good' ? 'badge-ok' : status === 'revoked' ? 'badge-problem' : 'badge-planned';
  return html`<span class="badge ${cls}">${tr(STATUS_LABEL[status], lang)}</span>`;
}

/** a long identifier (serial, fingerprint) in the monospace face, free to wrap on a narrow screen */
function longId(v: string): Html {
  return html`<span class="request-id">${v}</span>`;
}

function option(value: string, label: string, selected: boolean): Html {
  return html`<option value="${value}"${selected ? html` selected` : ''}>${label}</option>`;
}

function selectField(o: { name: string; label: Text; options: Html[]; lang: Lang; hint?: Text; required?: boolean; error?: Text }): Html {
  const id = `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<div class="field${o.error ? ' field-invalid' : ''}">
<label for="${id}">${tr(o.label, o.lang)}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${tr(o.hint, o.lang)}</p>` : ''}
${o.error ? html`<p class="field-error" id="${id}-error">${tr(o.error, o.lang)}</p>` : ''}
<select id="${id}" name="${o.name}"${o.required ? html` required` : ''}${described ? html` aria-describedby="${described}"` : ''}${o.error ? html` aria-invalid="true"` : ''}>${o.options}</select>
</div>`;
}

export function caConsoleRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const ca = caContextFor(ctx);
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  const nodes = new Map(ctx.profile.network.map((n) => [n.id, n]));
  const deptName = (code: string, lang: Lang) => {
    const d = departments.get(code);
    return d ? (lang === 'en' ? d.nameEn : d.name) : code;
  };
  const T = (text: Text, lang: Lang, values?: Record<string, string | number>) => (values ? fill(tr(text, lang), values) : tr(text, lang));

  // CRLs, CA certificates and the status endpoint are on the public face: relative links when this
  // listener serves it too, else the public URL the certificates' CRL distribution points name
  let publicBase: string | undefined;
  const publicHref = (p: string) => {
    publicBase ??= app.hasRoute({ method: 'GET', url: '/ca/crl/:file' }) ? '' : ca.publicUrl;
    return publicBase + p;
  };
  const statusHref = (serial: string) => publicHref(`/api/v1/ca/certificates/${serial}/status`);
  const detailHref = (serial: string) => `${HOME}/certificates/${serial}`;
  const crumbs = (lang: Lang, last?: string) => [
    { label: T(M.consoleHome, lang), href: '/console' },
    last ? { label: T(C.title, lang), href: HOME } : { label: T(C.title, lang) },
    ...(last ? [{ label: last }] : []),
  ];

  // the list's short form: the department's abbreviation in Chinese, its code in English (the English
  // names are long, and the column keeps to one line)
  const deptShort = (code: string, lang: Lang): Html => (lang === 'en' || !departments.has(code) ? html`<code>${code}</code>` : html`${departments.get(code)!.abbr}`);
  function boundTo(subject: Subject, lang: Lang): Html {
    switch (subject.kind) {
      case 'legal-person':
        return html`<code>${subject.uscc}</code>`;
      case 'node':
        return html`<code>${subject.nodeId}</code>`;
      case 'system':
        return html`<code>${subject.systemId}</code> · ${deptShort(subject.department!, lang)}`;
      case 'staff':
        return html`${deptShort(subject.department!, lang)}${subject.staffId ? html` · <code>${subject.staffId}</code>` : ''}`;
    }
  }

  // -------------------------------------------------------------------------------------------
  // The list

  function listHref(q: ListQuery, page: number): string {
    const p = new URLSearchParams();
    if (q.q?.trim()) p.set('q', q.q.trim());
    if (q.status) p.set('status', q.status);
    if (q.kind) p.set('kind', q.kind);
    if (q.alg) p.set('alg', q.alg);
    if (q.perPage && q.perPage !== DEFAULT_PER_PAGE) p.set('perPage', String(q.perPage));
    if (page > 1) p.set('page', String(page));
    if (isLang(q.lang)) p.set('lang', q.lang);
    const qs = p.toString();
    return qs ? `${HOME}?${qs}` : HOME;
  }

  s.get('/console/ca', { schema: { hide: true, querystring: ListQuery }, config: { action: 'certificate:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    // a language asked for in the address travels with the form and the links (the cookie needs nothing)
    const keepLang = isLang(q.lang) ? q.lang : undefined;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const [counts, found] = await Promise.all([
      certificateCounts(ctx.db, SOON_DAYS),
      searchCertificates(ctx.db, {
        text: q.q,
        status: q.status || undefined,
        kind: (q.kind || undefined) as SubjectKind | undefined,
        alg: (q.alg || undefined) as Alg | undefined,
        limit: perPage,
        offset: (page - 1) * perPage,
      }),
    ]);
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const canIssue = ctx.policy.can(req.actor, 'certificate:issue');

    // the subject and its status first: what a phone shows before the table scrolls sideways (every
    // column keeps to one line: a column free to wrap would shrink to one character per line there)
    const rows = found.items.map((c) => [
      html`<a href="${detailHref(c.serial)}">${c.subject.name}</a>`,
      statusBadge(c.status, lang),
      `${tr(KIND_LABEL[c.kind], lang)} · ${ALG_SHORT[c.alg]}`,
      boundTo(c.subject, lang),
      DATE_FORMATS[lang].format(c.notAfter),
      c.serial,
      html`<a href="${statusHref(c.serial)}" aria-label="${T(C.statusApiOf, lang, { serial: c.serial })}">${T(C.statusApiLink, lang)}</a>`,
    ]);

    // the search box, and the filters folded away unless one is in use (a short form above the list on a phone)
    const filtering = Boolean(q.status || q.kind || q.alg || (q.perPage && q.perPage !== DEFAULT_PER_PAGE));
    const filters = html`<h2 id="find">${T(C.searchHeading, lang)}</h2>
<form class="form" method="get" action="${HOME}" role="search" aria-labelledby="find">
${keepLang ? html`<input type="hidden" name="lang" value="${keepLang}">` : ''}
${field({ name: 'q', label: C.search, hint: C.searchHint, value: q.q ?? '', maxlength: 200, required: false }, lang)}
<details${filtering ? html` open` : ''}><summary class="button button-secondary button-small">${T(C.moreFilters, lang)}</summary>
<p class="actions muted">${T(C.filtersHint, lang)}</p>
${selectField({ name: 'status', label: C.status, lang, options: [option('', T(C.all, lang), !q.status), ...STATUSES.map((v) => option(v, T(STATUS_LABEL[v], lang), q.status === v))] })}
${selectField({ name: 'kind', label: C.profile, lang, options: [option('', T(C.all, lang), !q.kind), ...SUBJECT_KINDS.map((v) => option(v, T(KIND_LABEL[v], lang), q.kind === v))] })}
${selectField({ name: 'alg', label: C.algorithm, lang, options: [option('', T(C.all, lang), !q.alg), ...ALGS.map((v) => option(v, ALG_LABEL[v], q.alg === v))] })}
${selectField({ name: 'perPage', label: C.perPage, lang, options: [...new Set([...PER_PAGE, perPage])].sort((a, b) => a - b).map((n) => option(String(n), String(n), n === perPage)) })}
</details>
<p class="form-inline"><button class="button" type="submit">${T(C.apply, lang)}</button> <a class="button button-secondary" href="${keepLang ? `${HOME}?lang=${keepLang}` : HOME}">${T(C.clear, lang)}</a></p>
</form>`;

    const pager =
      pages > 1 || page > 1
        ? html`<nav aria-label="${T(C.pagination, lang)}"><p>${
            page > 1 ? html`<a class="button button-secondary button-small" href="${listHref(q, Math.min(page - 1, pages))}" rel="prev">${T(C.previous, lang)}</a> ` : ''
          }${page < pages ? html`<a class="button button-secondary button-small" href="${listHref(q, page + 1)}" rel="next">${T(C.next, lang)}</a>` : ''}</p></nav>`
        : '';

    const crl = html`<h2 id="crl">${T(C.crlHeading, lang)}</h2>
<p>${T(C.crlLead, lang)}</p>
<ul class="link-list">${ALGS.map(
      (a) => html`<li><a href="${publicHref(`/ca/crl/${a}.crl`)}">${T(C.crlDer, lang, { alg: ALG_SHORT[a] })}</a> · <a href="${publicHref(`/ca/crl/${a}.crl.pem`)}">${T(C.crlPem, lang, { alg: ALG_SHORT[a] })}</a> · <a href="${publicHref(`/ca/${a}/root.pem`)}">${T(C.rootPem, lang, { alg: ALG_SHORT[a] })}</a> · <a href="${publicHref(`/ca/${a}/issuing.pem`)}">${T(C.issuingPem, lang, { alg: ALG_SHORT[a] })}</a></li>`,
    )}</ul>`;

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: T(C.title, lang),
      breadcrumbs: crumbs(lang),
      main: html`<h1>${T(C.title, lang)}</h1>
<p class="lead">${T(C.lead, lang)}</p>
<h2 class="visually-hidden">${T(C.summary, lang)}</h2>
<p>${T(C.issuedInAll, lang, { n: counts.total })}</p>
${figures(
  [
    { label: T(C.countGood, lang), value: counts.good },
    { label: T(C.countSoon, lang, { days: SOON_DAYS }), value: counts.expiringSoon },
    { label: T(C.countExpired, lang), value: counts.expired },
    { label: T(C.countRevoked, lang), value: counts.revoked },
  ],
  lang,
)}
${canIssue ? html`<p><a class="button" href="${HOME}/issue${keepLang ? `?lang=${keepLang}` : ''}">${T(C.issueLink, lang)}</a></p>` : ''}
${filters}
<h2 id="list">${T(C.listCaption, lang)}</h2>
<p>${T(C.matching, lang, { n: found.total, page, pages })}</p>
${page > pages ? notice({ kind: 'warning', body: html`<p>${T(C.beyondLast, lang, { page, pages })} <a href="${listHref(q, pages)}">${T(C.lastPage, lang)}</a></p>` }) : ''}
${table({
  lang,
  caption: T(C.listCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(C.subject, lang), nowrap: true },
    { label: T(C.status, lang), nowrap: true },
    { label: T(C.profileAlg, lang), nowrap: true },
    { label: T(C.boundTo, lang), nowrap: true },
    { label: T(C.validUntil, lang), nowrap: true },
    { label: T(C.serial, lang), code: true },
    { label: T(C.statusApi, lang), nowrap: true },
  ],
  rows,
  empty: T(C.noMatch, lang),
})}
${pager}
${crl}`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // One certificate

  async function loadCertificate(serial: string) {
    const c = await getCertificate(ctx.db, serial);
    if (!c) throw problem('not-found', `no certificate with serial ${serial.toLowerCase().replace(/^0+(?=.)/, '')}`);
    return c;
  }

  s.get(
    '/console/ca/certificates/:serial',
    { schema: { hide: true, params: SerialParams, querystring: DetailQuery }, config: { action: 'certificate:read' } },
    async (req, reply) => {
      const lang = requestLang(req);
      const c = await loadCertificate(req.params.serial);
      // the canonical address: lower case, no leading zeros
      if (req.params.serial !== c.serial) return reply.redirect(detailHref(c.serial) + (req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''), 301);
      const parsed = parseCertificate(c.certificate);
      const renewals = await searchCertificates(ctx.db, { renewedFrom: c.serial, limit: 100 });
      const canRevoke = c.status !== 'revoked' && ctx.policy.can(req.actor, 'certificate:revoke');
      const canRenew = c.status !== 'revoked' && ctx.policy.can(req.actor, 'certificate:renew');
      const csrf = canRevoke || canRenew ? csrfField(ctx, req, reply) : '';
      const when = (d: Date) => formatDateTime(d, lang);
      const title = T(C.certificate, lang, { serial: c.serial });
      const profile = PROFILES[c.kind];

      const detailRows: [string, Html | string][] = [
        [T(C.serial, lang), longId(c.serial)],
        [T(C.status, lang), statusBadge(c.status, lang)],
        [T(C.profile, lang), tr(KIND_LABEL[c.kind], lang)],
        [T(C.subjectDn, lang), c.subjectDn],
        [T(C.issuer, lang), html`${nameToString(parsed.issuer)} <span class="muted request-id">(${c.alg}/issuing)</span>`],
        [T(C.algorithm, lang), ALG_LABEL[c.alg]],
        [T(C.notBefore, lang), when(c.notBefore)],
        [T(C.notAfter, lang), when(c.notAfter)],
        [T(C.issuedAt, lang), when(c.issuedAt)],
        [T(C.keyGenerated, lang), T(c.keyGenerated ? C.keyByCa : C.keyBySubject, lang)],
        [T(C.fingerprint, lang), longId(fingerprint(parsed.der))],
      ];
      if (c.revokedAt) detailRows.push([T(C.revokedAt, lang), when(c.revokedAt)], [T(C.revocationReason, lang), c.reason ? tr(REASON_LABEL[c.reason], lang) : '—']);
      if (c.renewedFrom) detailRows.push([T(C.renewedFrom, lang), html`<a href="${detailHref(c.renewedFrom)}">${longId(c.renewedFrom)}</a>`]);
      if (renewals.items.length) {
        detailRows.push([T(C.renewedBy, lang), html`<ul class="plain">${renewals.items.map((r) => html`<li><a href="${detailHref(r.serial)}">${longId(r.serial)}</a> ${statusBadge(r.status, lang)}</li>`)}</ul>`]);
      }

      const sub = c.subject;
      const bindingRows: [string, Html | string][] = [[T(C.name, lang), sub.name]];
      if (sub.uscc) bindingRows.push([T(C.uscc, lang), html`<code>${sub.uscc}</code>`]);
      if (sub.department) bindingRows.push([T(C.department, lang), html`${deptName(sub.department, lang)} (<code>${sub.department}</code>)`]);
      if (sub.nodeId) {
        const n = nodes.get(sub.nodeId);
        bindingRows.push([T(C.nodeId, lang), html`${n ? (lang === 'en' ? n.nameEn : n.name) : ''} (<code>${sub.nodeId}</code>)`]);
      }
      if (sub.systemId) bindingRows.push([T(C.systemId, lang), longId(sub.systemId)]);
      if (sub.staffId) bindingRows.push([T(C.staffId, lang), html`<code>${sub.staffId}</code>`]);

      const done = req.query.done === 'issued' ? C.doneIssued : req.query.done === 'revoked' ? C.doneRevoked : req.query.done === 'renewed' ? C.doneRenewed : null;
      const state =
        c.status === 'revoked'
          ? notice({ kind: 'warning', body: T(C.revokedNotice, lang, { at: when(c.revokedAt!), reason: c.reason ? tr(REASON_LABEL[c.reason], lang) : '—' }) })
          : c.status === 'expired'
            ? notice({ kind: 'warning', body: T(C.expiredNotice, lang) })
            : '';

      const revokeForm = canRevoke
        ? html`<h3 id="revoke">${T(C.revokeHeading, lang)}</h3>
<form class="form" method="post" action="${detailHref(c.serial)}/revoke" aria-labelledby="revoke">
${csrf}
<p class="field-hint">${T(C.revokeHint, lang)}</p>
${selectField({ name: 'reason', label: C.reason, lang, required: true, options: [option('', T(C.chooseReason, lang), true), ...REVOCATION_REASONS.map((r) => option(r, tr(REASON_LABEL[r], lang), false))] })}
<p class="actions"><button class="button" type="submit">${T(C.revokeSubmit, lang)}</button></p>
</form>`
        : '';
      const renewForm = canRenew
        ? html`<h3 id="renew">${T(C.renewHeading, lang)}</h3>
<form class="form" method="post" action="${detailHref(c.serial)}/renew" aria-labelledby="renew">
${csrf}
<p class="field-hint">${T(c.keyGenerated ? C.renewHintGenerated : C.renewHint, lang)}</p>
${field({ name: 'validDays', label: C.validDays, hint: { zh: fill(C.validDaysHint.zh, { default: profile.defaultDays, max: profile.maxDays }), en: fill(C.validDaysHint.en, { default: profile.defaultDays, max: profile.maxDays }) }, maxlength: 4, inputmode: 'numeric', required: false }, lang)}
${field({ name: 'csr', label: C.csr, type: 'textarea', hint: c.keyGenerated ? C.csrHint : C.csrHintOptional, maxlength: 16_384, required: c.keyGenerated }, lang)}
<p class="actions"><button class="button" type="submit">${T(C.renewSubmit, lang)}</button></p>
</form>`
        : '';

      reply.header('cache-control', 'no-store');
      return sendPage(req, reply, {
        lang,
        shell: 'console',
        title,
        breadcrumbs: crumbs(lang, c.subject.name),
        main: html`<h1>${c.subject.name} <span class="muted">· ${tr(KIND_LABEL[c.kind], lang)}</span></h1>
${done ? notice({ body: T(done, lang) }) : ''}
${state}
${table({ lang, caption: T(C.details, lang), rowHeaders: true, columns: [{ label: T(C.item, lang), nowrap: true }, { label: T(C.value, lang) }], rows: detailRows })}
${table({ lang, caption: T(C.bindings, lang), rowHeaders: true, columns: [{ label: T(C.item, lang), nowrap: true }, { label: T(C.value, lang) }], rows: bindingRows })}
<h2 id="links">${T(C.links, lang)}</h2>
<ul class="link-list">
<li><a href="${detailHref(c.serial)}/certificate.pem" download="${c.serial}.pem">${T(C.downloadPem, lang)}</a></li>
<li><a href="${statusHref(c.serial)}">${T(C.statusApiLink, lang)}</a></li>
<li><a href="${publicHref(`/ca/crl/${c.alg}.crl`)}">${T(C.crlOfAlg, lang)}</a> <span class="muted">(${ALG_SHORT[c.alg]})</span></li>
<li><a href="/api/v1/ca/certificates/${c.serial}">${T(C.jsonApi, lang)}</a></li>
</ul>
<details><summary class="button button-secondary button-small">${T(C.showPem, lang)}</summary><pre class="challenge">${c.certificate}</pre></details>
${revokeForm || renewForm ? html`<h2 id="operations">${T(C.operations, lang)}</h2>${revokeForm}${renewForm}` : ''}`,
      });
    },
  );

  s.get(
    '/console/ca/certificates/:serial/certificate.pem',
    { schema: { hide: true, params: SerialParams }, config: { action: 'certificate:read' } },
    async (req, reply) => {
      const c = await loadCertificate(req.params.serial);
      reply.header('cache-control', 'no-store');
      reply.header('content-disposition', `attachment; filename="${c.serial}.pem"`);
      return reply.type('application/x-pem-file; charset=utf-8').send(c.certificate);
    },
  );

  s.post(
    '/console/ca/certificates/:serial/revoke',
    { schema: { hide: true, params: SerialParams, body: RevokeForm }, config: { action: 'certificate:revoke' } },
    async (req, reply) => {
      requireFormCsrf(ctx, req);
      // the CA checks the reason (and audits a refusal), as it does for the API and the CLI
      const r = await revokeCertificate(ctx.db, ca, auditActor(req.actor), req.params.serial, (req.body.reason ?? '') as RevocationReason, meta(req));
      return reply.redirect(`${detailHref(r.serial)}?done=revoked`, 303);
    },
  );

  s.post(
    '/console/ca/certificates/:serial/renew',
    { schema: { hide: true, params: SerialParams, body: RenewForm }, config: { action: 'certificate:renew' } },
    async (req, reply) => {
      requireFormCsrf(ctx, req);
      const csr = req.body.csr?.trim() ? req.body.csr : undefined;
      if (!csr) {
        // without a CSR the CA would generate a new key pair for such a certificate: not on a web page
        const c = await getCertificate(ctx.db, req.params.serial);
        if (c?.keyGenerated && c.status !== 'revoked') {
          throw problem('validation', 'csr: the CA generated this certificate’s key, so renewing it here needs a certification request for a new key (or `gusu ca renew SERIAL --out PREFIX`)', {
            errors: [{ in: 'body', pointer: '/csr', message: 'required to renew a certificate whose key the CA generated' }],
          });
        }
      }
      const renewed = await renewCertificate(ctx.db, ca, auditActor(req.actor), req.params.serial, { csr, validDays: daysOf(req.body.validDays) }, meta(req));
      return reply.redirect(`${detailHref(renewed.serial)}?done=renewed`, 303);
    },
  );

  // -------------------------------------------------------------------------------------------
  // Issuing from a CSR

  function issuePage(req: FastifyRequest, reply: FastifyReply, values: IssueForm = {}, errors: FieldErrors = {}) {
    const lang = requestLang(req);
    const v = values;
    const title = T(C.issueTitle, lang);
    const na = T(C.none, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, title),
      main: html`<h1>${title}</h1>
<p class="lead">${T(C.issueLead, lang)}</p>
${errorSummary(errors, lang)}
<form class="form" method="post" action="${HOME}/issue" novalidate>
${csrfField(ctx, req, reply)}
${selectField({ name: 'alg', label: C.algorithm, lang, required: true, error: errors.alg, options: ALGS.map((a) => option(a, ALG_LABEL[a], v.alg === a)) })}
${selectField({ name: 'kind', label: C.profile, lang, required: true, error: errors.kind, options: SUBJECT_KINDS.map((k) => option(k, tr(KIND_LABEL[k], lang), v.kind === k)) })}
<fieldset><legend>${T(C.subjectFields, lang)}</legend>
<p class="field-hint">${T(C.subjectFieldsHint, lang)}</p>
${field({ name: 'name', label: C.name, hint: C.nameHint, value: v.name, maxlength: 64, required: false }, lang, errors)}
${field({ name: 'uscc', label: C.uscc, value: v.uscc, maxlength: 18, required: false }, lang, errors)}
${selectField({ name: 'department', label: C.department, lang, error: errors.department, options: [option('', na, !v.department), ...ctx.profile.departments.map((d) => option(d.code, `${lang === 'en' ? d.nameEn : d.name} (${d.code})`, v.department === d.code))] })}
${selectField({ name: 'nodeId', label: C.nodeId, lang, error: errors.nodeId, options: [option('', na, !v.nodeId), ...ctx.profile.network.map((n) => option(n.id, `${lang === 'en' ? n.nameEn : n.name} (${n.id})`, v.nodeId === n.id))] })}
${field({ name: 'systemId', label: C.systemId, hint: C.systemIdHint, value: v.systemId, maxlength: 63, required: false }, lang, errors)}
${field({ name: 'staffId', label: C.staffId, value: v.staffId, maxlength: 32, required: false }, lang, errors)}
</fieldset>
${field({ name: 'validDays', label: C.validDays, hint: C.validDaysIssueHint, value: v.validDays, maxlength: 4, inputmode: 'numeric', required: false }, lang, errors)}
${field({ name: 'csr', label: C.csr, type: 'textarea', hint: C.csrHint, value: v.csr, maxlength: 16_384 }, lang, errors)}
<p class="actions"><button class="button" type="submit">${T(C.issueSubmit, lang)}</button></p>
</form>`,
    });
  }

  s.get('/console/ca/issue', { schema: { hide: true, querystring: Type.Object({ lang: Lang_ }) }, config: { action: 'certificate:issue' } }, async (req, reply) => issuePage(req, reply));

  s.post('/console/ca/issue', { schema: { hide: true, body: IssueForm }, config: { action: 'certificate:issue' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const b = req.body;
    const { _csrf, ...values } = b;
    if (!b.csr?.trim()) {
      reply.code(400);
      return issuePage(req, reply, values, { csr: C.csrRequired });
    }
    const subject = { kind: (b.kind ?? '') as SubjectKind } as SubjectInput;
    for (const k of SUBJECT_FIELDS) {
      const value = b[k]?.trim();
      if (value) subject[k] = value;
    }
    try {
      const issued = await issueCertificate(ctx.db, ca, auditActor(req.actor), { alg: (b.alg ?? '') as Alg, subject, csr: b.csr, validDays: daysOf(b.validDays) }, meta(req));
      return reply.redirect(`${detailHref(issued.serial)}?done=issued`, 303);
    } catch (err) {
      // a refused request (bad USCC, unknown department, a CSR of the other family): the form again,
      // with the CA's reason beside the field it names (the refusal is audited by the CA)
      if (!(err instanceof HttpProblem) || (err.problem !== 'validation' && err.problem !== 'bad-request')) throw err;
      const known = new Set<string>(['alg', 'kind', 'validDays', 'csr', ...SUBJECT_FIELDS]);
      const pointers = (err.extensions.errors as { pointer?: string }[] | undefined) ?? [];
      const name = pointers.map((e) => e.pointer?.split('/').pop() ?? '').find((n) => known.has(n)) ?? 'csr';
      reply.code(400);
      return issuePage(req, reply, values, { [name]: { zh: `${C.refused.zh}：${err.message}`, en: `${C.refused.en}: ${err.message}` } });
    }
  });
}
