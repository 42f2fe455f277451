// 数据交换 — the exchange node in the staff console (internal face), for exchange operators, platform
// administrators and (read only) security officers:
//
//   GET  /console/exchange                         overview: this node, every node's state, throughput
//                                                  over the last hour, dead letters and refusals (24 h)
//   GET  /console/exchange/members                 members: search, pages
//   GET  /console/exchange/subscriptions           each active subscription's queue and lag: filters, pages
//   GET  /console/exchange/dead-letters            dead letters: by subscription, pages, a checkbox per row
//   POST /console/exchange/dead-letters/replay     selected dead letters, or all of one subscription (CSRF)
//                                                  → back to the list with a confirmation
//   GET  /console/exchange/refusals                refusals: counts over 24 h by reason, list by reason
//
// Plain HTML without script; the queries are stats.ts. A replay is audited with the staff member as
// the actor ('exchange.dead-letter.replay'), in the same transaction as the change.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html, type Html } from '../../http/html.ts';
import { isLang, requestLang, tr, type Lang, type Text } from '../../http/i18n.ts';
import { figures, formatDateTime, formatNumber, notice, sendPage, table, type Crumb } from '../../http/layout.ts';
import { fill, M } from '../../http/messages.ts';
import { problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { appendAudit } from '../audit/index.ts';
import { auditActorOf } from '../identity/accounts/index.ts';
import { field } from '../identity/oidc/pages.ts';
import { allow, type Rule } from '../identity/policy.ts';
import { checkCsrf, csrfField, needsCsrf } from '../identity/sessions/csrf.ts';
import { REFUSAL_REASONS, X } from './messages.ts';
import {
  deadLetterCounts,
  exchangeCounts,
  listDeadLetters,
  listRefusals,
  memberOverview,
  nodeHealth,
  refusalCounts,
  replayDeadLetters,
  subscriptionLag,
  throughput,
  type MinuteCount,
  type NodeHealth,
} from './stats.ts';

export { EXCHANGE_NAV_LABEL } from './messages.ts';

/** who may see the exchange console, and who may replay dead letters */
export const exchangePagePolicy: readonly Rule[] = [
  ...allow({ role: 'exchange-operator' }, 'read', 'exchange-console'),
  ...allow({ role: 'platform-admin' }, 'read', 'exchange-console'),
  ...allow({ role: 'security-officer' }, 'read', 'exchange-console'),
  ...allow({ role: 'exchange-operator' }, 'replay', 'dead-letter'),
  ...allow({ role: 'platform-admin' }, 'replay', 'dead-letter'),
];

const HOME = '/console/exchange';
const DEFAULT_PER_PAGE = 20;
/** at most this many dead letters in one replay form */
const MAX_REPLAY_ITEMS = 500;

// ---------------------------------------------------------------------------------------------
// Schemas: everything a browser (or anyone) can put in a URL or a form is bounded

const LangQ = Type.Optional(Type.String({ maxLength: 10 }));
const Page = Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 }));
const PerPage = Type.Optional(Type.Integer({ minimum: 1, maximum: 100 }));
/** search text: no control characters (PostgreSQL text holds no NUL) */
const SearchText = Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001F\\u007F]*$' }));
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const SubscriptionQ = Type.Optional(Type.String({ pattern: `^(${UUID})?$` }));
const Csrf = Type.Optional(Type.String({ maxLength: 200 }));

const OverviewQuery = Type.Object({ lang: LangQ });
const MembersQuery = Type.Object({ q: SearchText, page: Page, perPage: PerPage, lang: LangQ });
const SubscriptionsQuery = Type.Object({ member: SearchText, resource: SearchText, page: Page, perPage: PerPage, lang: LangQ });
const DeadQuery = Type.Object({ subscription: SubscriptionQ, replayed: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000 })), page: Page, perPage: PerPage, lang: LangQ });
const RefusalsQuery = Type.Object({ reason: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{0,40}$' })), page: Page, perPage: PerPage, lang: LangQ });
/** one dead letter in the replay form: subscription:seq */
const Item = Type.String({ pattern: `^${UUID}:[1-9][0-9]{0,14}$` });
const ReplayForm = Type.Object(
  {
    _csrf: Csrf,
    subscription: SubscriptionQ,
    all: Type.Optional(Type.Enum(['', '1'])),
    item: Type.Optional(Type.Union([Item, Type.Array(Item, { maxItems: MAX_REPLAY_ITEMS })])),
    lang: LangQ,
  },
  { additionalProperties: false },
);
type ReplayForm = { _csrf?: string; subscription?: string; all?: '' | '1'; item?: string | string[]; lang?: string };

function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

// ---------------------------------------------------------------------------------------------
// Formatting

const T = (text: Text, lang: Lang, values?: Record<string, string | number>) => (values ? fill(tr(text, lang), values) : tr(text, lang));

const NUMBER_1: Record<Lang, Intl.NumberFormat> = {
  'zh-CN': new Intl.NumberFormat('zh-CN', { maximumFractionDigits: 1 }),
  en: new Intl.NumberFormat('en-GB', { maximumFractionDigits: 1 }),
};
const TIME: Record<Lang, Intl.DateTimeFormat> = {
  'zh-CN': new Intl.DateTimeFormat('zh-CN', { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: 'Asia/Shanghai' }),
  en: new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false, timeZone: 'Asia/Shanghai' }),
};

/** how long something has waited: 40 秒, 12 分钟, 3.5 小时, 2 天 (40 s, 12 min, 3.5 h, 2 d); — for nothing */
export function ageText(seconds: number | null | undefined, lang: Lang): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const en = lang === 'en';
  if (seconds < 60) return en ? `${Math.floor(seconds)} s` : `${Math.floor(seconds)} 秒`;
  const minutes = seconds / 60;
  if (minutes < 60) return en ? `${Math.floor(minutes)} min` : `${Math.floor(minutes)} 分钟`;
  const hours = minutes / 60;
  if (hours < 48) return en ? `${NUMBER_1[lang].format(hours)} h` : `${NUMBER_1[lang].format(hours)} 小时`;
  const days = hours / 24;
  return en ? `${NUMBER_1[lang].format(days)} d` : `${NUMBER_1[lang].format(days)} 天`;
}

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

function nodeBadge(n: Pick<NodeHealth, 'status' | 'isSelf'>, lang: Lang): Html {
  if (n.isSelf) return html`<span class="badge badge-ok">${T(X.self, lang)}</span>`;
  const cls = n.status === 'up' ? 'badge-ok' : n.status === 'down' ? 'badge-problem' : 'badge-planned';
  return html`<span class="badge ${cls}">${T(X[`status_${n.status}`], lang)}</span>`;
}

function reasonLabel(reason: string, lang: Lang): Html {
  const t = REFUSAL_REASONS[reason];
  return t ? html`${tr(t, lang)} <code>${reason}</code>` : html`<code>${reason}</code>`;
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

/**
 * A long value (an error, an event id) that may wrap anywhere, cut at 300 characters: at least 10em
 * wide, or the table would squeeze its column to one character a line beside the nowrap columns.
 */
function longText(v: string | null | undefined, cls = 'detail'): Html | string {
  if (!v) return '—';
  return html`<span class="cell-wide ${cls}">${v.length > 300 ? `${v.slice(0, 300)}…` : v}</span>`;
}

/** Bar chart of one series over the minutes, with a title and a description (the table beside it has the numbers). */
function barChart(id: string, minutes: readonly MinuteCount[], pick: (m: MinuteCount) => number, title: string, lang: Lang): Html {
  const W = 640;
  const H = 150;
  const left = 44;
  const right = 8;
  const top = 12;
  const bottom = 28;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const values = minutes.map(pick);
  const peak = Math.max(1, ...values);
  const total = values.reduce((a, v) => a + v, 0);
  const step = plotW / Math.max(1, minutes.length);
  const barW = Math.max(1, step - 2);
  const from = minutes[0] ? TIME[lang].format(minutes[0].at) : '';
  const to = minutes.length ? TIME[lang].format(minutes[minutes.length - 1]!.at) : '';
  const bars = values.map((v, i) => {
    if (v <= 0) return '';
    const h = Math.max(1.5, (v / peak) * plotH);
    return html`<rect x="${(left + i * step + 1).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="#0d3b66"></rect>`;
  });
  const desc = T(X.chartDesc, lang, { from, to, total: formatNumber(total, lang), peak: formatNumber(Math.max(0, ...values), lang) });
  return html`<figure class="chart">
<figcaption><strong>${title}</strong></figcaption>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${id}-title ${id}-desc" focusable="false">
<title id="${id}-title">${title}</title>
<desc id="${id}-desc">${desc}</desc>
<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="#ffffff" stroke="#8a8a85" stroke-width="1"></rect>
<line x1="${left}" y1="${top + plotH / 2}" x2="${left + plotW}" y2="${top + plotH / 2}" stroke="#d6d4cc" stroke-width="1"></line>
${bars}
<text x="${left - 6}" y="${top + 10}" text-anchor="end" font-size="12" fill="#1a1a1a">${formatNumber(peak, lang)}</text>
<text x="${left - 6}" y="${top + plotH}" text-anchor="end" font-size="12" fill="#1a1a1a">0</text>
<text x="${left}" y="${H - 8}" font-size="12" fill="#1a1a1a">${from}</text>
<text x="${left + plotW}" y="${H - 8}" text-anchor="end" font-size="12" fill="#1a1a1a">${to}</text>
</svg>
</figure>`;
}

// ---------------------------------------------------------------------------------------------

export function exchangePages(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  const deptName = (code: string | null, lang: Lang): string => {
    if (!code) return '—';
    const d = departments.get(code);
    return d ? (lang === 'en' ? d.nameEn : d.abbr) : code;
  };
  const crumbs = (lang: Lang, ql: string | undefined, last?: string): Crumb[] => [
    { label: tr(M.consoleHome, lang), href: '/console' },
    last ? { label: T(X.title, lang), href: withLang(HOME, ql) } : { label: T(X.title, lang) },
    ...(last ? [{ label: last }] : []),
  ];

  /** the exchange's pages as tabs, the current one marked */
  function tabs(current: string, lang: Lang, ql: string | undefined): Html {
    const items: [string, Text][] = [
      [HOME, X.overview],
      [`${HOME}/members`, X.members],
      [`${HOME}/subscriptions`, X.subscriptions],
      [`${HOME}/dead-letters`, X.deadLetters],
      [`${HOME}/refusals`, X.refusals],
    ];
    return html`<nav class="tabs" aria-label="${T(X.sections, lang)}"><ul>${items.map(([href, label]) =>
      href === current ? html`<li><span aria-current="page">${T(label, lang)}</span></li>` : html`<li><a href="${withLang(href, ql)}">${T(label, lang)}</a></li>`,
    )}</ul></nav>`;
  }

  function pager(lang: Lang, page: number, pages: number, href: (p: number) => string): Html {
    if (pages <= 1 && page <= 1) return html``;
    return html`<nav aria-label="${T(X.pagination, lang)}"><p class="form-inline">${
      page > 1 ? html`<a class="button button-secondary button-small" href="${href(Math.min(page - 1, pages))}" rel="prev">${T(X.previous, lang)}</a> ` : ''
    }${page < pages ? html`<a class="button button-secondary button-small" href="${href(page + 1)}" rel="next">${T(X.next, lang)}</a>` : ''}</p></nav>`;
  }

  function beyond(lang: Lang, page: number, pages: number, href: (p: number) => string): Html | string {
    return page > pages ? notice({ kind: 'warning', body: html`<p>${T(X.beyondLast, lang, { page, pages })} <a href="${href(pages)}">${T(X.lastPage, lang)}</a></p>` }) : '';
  }

  const keepLangField = (ql: string | undefined) => (isLang(ql) ? html`<input type="hidden" name="lang" value="${ql}">` : '');

  /** a subscriber: a member id, or a peer node */
  const targetOf = (member: string | null, node: string | null, lang: Lang): Html =>
    member ? html`<code>${member}</code>` : node ? html`${T(X.nodeTarget, lang)} <code>${node}</code>` : html`—`;

  // -------------------------------------------------------------------------------------------
  // Overview

  s.get(HOME, { schema: { hide: true, querystring: OverviewQuery }, config: { action: 'exchange-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const ql = req.query.lang;
    const [nodes, counts, tp] = await Promise.all([nodeHealth(ctx.db), exchangeCounts(ctx.db), throughput(ctx.db)]);
    const self = nodes.find((n) => n.isSelf);
    const name = (n: NodeHealth) => (lang === 'en' && n.nameEn ? n.nameEn : n.name);
    const byId = new Map(nodes.map((n) => [n.id, n]));

    const selfPart = self
      ? table({
          lang,
          caption: T(X.thisNode, lang),
          captionHidden: true,
          rowHeaders: true,
          columns: [{ label: T(X.item, lang), nowrap: true }, { label: T(X.value, lang) }],
          rows: [
            [T(X.nodeName, lang), name(self)],
            [T(X.nodeId, lang), html`<code>${self.id}</code>`],
            [T(X.kind, lang), T(X[`kind_${self.kind}`], lang)],
            [T(X.division, lang), self.divisionCode ?? '—'],
            [T(X.upstream, lang), self.upstream ? html`${byId.get(self.upstream) ? name(byId.get(self.upstream)!) : ''} (<code>${self.upstream}</code>)` : T(X.none, lang)],
            [T(X.certificate, lang), self.certSerial ? html`<span class="request-id">${self.certSerial}</span>` : T(X.none, lang)],
            [T(X.algorithm, lang), self.alg ?? '—'],
          ],
        })
      : notice({ kind: 'warning', body: T(X.noSelf, lang) });

    // the node and its state first: what a phone shows before the table scrolls sideways
    const nodeRows = nodes.map((n) => [
      html`${name(n)}<br><code>${n.id}</code>`,
      nodeBadge(n, lang),
      n.isSelf ? '—' : n.lastContact ? html`<time datetime="${n.lastContact.toISOString()}">${formatDateTime(n.lastContact, lang)}</time>` : T(X.never, lang),
      n.isSelf ? '—' : n.links.length ? n.backlog : '—',
      n.isSelf ? '—' : ageText(n.oldestWaitingSeconds, lang),
      T(X[`kind_${n.kind}`], lang),
      n.isSelf ? '—' : longText(n.lastError),
    ]);

    const perMinute = [...tp.minutes].reverse().map((m) => [html`<time datetime="${m.at.toISOString()}">${TIME[lang].format(m.at)}</time>`, m.received, m.delivered]);

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: T(X.title, lang),
      breadcrumbs: crumbs(lang, ql),
      main: html`<h1>${T(X.title, lang)}</h1>
<p class="lead">${T(X.lead, lang)}</p>
${tabs(HOME, lang, ql)}
<h2 id="self">${T(X.thisNode, lang)}</h2>
${selfPart}
<h2 id="figures">${T(X.keyFigures, lang)}</h2>
${figures(
  [
    { label: T(X.countMembers, lang), value: counts.members },
    { label: T(X.countResources, lang), value: counts.resources },
    { label: T(X.countSubscriptions, lang), value: counts.subscriptions },
    { label: T(X.countBacklog, lang), value: counts.backlog },
    { label: T(X.countDead, lang), value: counts.deadLetters },
    { label: T(X.countRefusals, lang), value: counts.refusals24h },
  ],
  lang,
)}
<ul class="actions">
<li><a href="${withLang(`${HOME}/dead-letters`, ql)}">${T(X.seeDead, lang, { n: formatNumber(counts.deadLetters, lang) })}</a></li>
<li><a href="${withLang(`${HOME}/refusals`, ql)}">${T(X.seeRefusals, lang, { n: formatNumber(counts.refusals24h, lang) })}</a></li>
<li><a href="${withLang(`${HOME}/subscriptions`, ql)}">${T(X.seeSubscriptions, lang)}</a></li>
<li><a href="${withLang(`${HOME}/members`, ql)}">${T(X.seeMembers, lang)}</a></li>
</ul>
<h2 id="nodes">${T(X.nodes, lang)}</h2>
<p>${T(X.nodesLead, lang)}</p>
${table({
  lang,
  caption: T(X.nodes, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(X.node, lang), nowrap: true },
    { label: T(X.state, lang), nowrap: true },
    { label: T(X.lastContact, lang), nowrap: true },
    { label: T(X.backlog, lang), numeric: true },
    { label: T(X.oldestWaiting, lang), nowrap: true },
    { label: T(X.kind, lang), nowrap: true },
    { label: T(X.lastError, lang) },
  ],
  rows: nodeRows,
  empty: T(X.noNodes, lang),
})}
<h2 id="throughput">${T(X.throughput, lang)}</h2>
<p>${T(X.throughputLead, lang)}</p>
${figures(
  [
    { label: T(X.receivedHour, lang), value: tp.received },
    { label: T(X.deliveredHour, lang), value: tp.delivered },
    { label: T(X.peakReceived, lang), value: tp.peakReceived },
    { label: T(X.peakDelivered, lang), value: tp.peakDelivered },
  ],
  lang,
)}
${barChart('chart-received', tp.minutes, (m) => m.received, T(X.chartReceived, lang), lang)}
${barChart('chart-delivered', tp.minutes, (m) => m.delivered, T(X.chartDelivered, lang), lang)}
<details><summary class="button button-secondary button-small">${T(X.perMinuteTable, lang)}</summary>
${table({
  lang,
  caption: T(X.perMinuteCaption, lang),
  rowHeaders: true,
  columns: [{ label: T(X.minute, lang), nowrap: true }, { label: T(X.received, lang), numeric: true }, { label: T(X.delivered, lang), numeric: true }],
  rows: perMinute,
})}
</details>`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // Members

  s.get(`${HOME}/members`, { schema: { hide: true, querystring: MembersQuery }, config: { action: 'exchange-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    const ql = q.lang;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const found = await memberOverview(ctx.db, { q: q.q, limit: perPage, offset: (page - 1) * perPage });
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const href = (p: number) => hrefWith(`${HOME}/members`, { q: q.q?.trim(), perPage: perPage !== DEFAULT_PER_PAGE ? perPage : undefined, page: p > 1 ? p : undefined }, ql);
    const rows = found.items.map((m) => [
      html`<code>${m.id}</code>`,
      m.name,
      m.department ? html`${deptName(m.department, lang)} <span class="muted">(<code>${m.department}</code>)</span>` : '—',
      html`<code>${m.nodeId}</code>`,
      html`<span class="badge ${m.status === 'active' ? 'badge-ok' : 'badge-problem'}">${T(X[`member_${m.status}`], lang)}</span>`,
      m.resources.length ? html`${m.resources.slice(0, 8).map((r, i) => html`${i ? html`<br>` : ''}<code>${r}</code>`)}${m.resources.length > 8 ? html`<br>…` : ''}` : '—',
      m.subscriptions,
    ]);
    const title = T(X.members, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(X.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, title),
      main: html`<h1>${title}</h1>
<p class="lead">${T(X.membersLead, lang)}</p>
${tabs(`${HOME}/members`, lang, ql)}
<h2 id="find">${T(X.findMembers, lang)}</h2>
<form class="form" method="get" action="${HOME}/members" role="search" aria-labelledby="find">
${keepLangField(ql)}
${field({ name: 'q', label: X.search, hint: X.searchMembersHint, value: q.q ?? '', maxlength: 200, required: false }, lang)}
<p class="form-inline"><button class="button" type="submit">${T(X.apply, lang)}</button>${q.q ? html` <a class="button button-secondary" href="${withLang(`${HOME}/members`, ql)}">${T(X.clear, lang)}</a>` : ''}</p>
</form>
<h2 id="list">${T(X.membersCaption, lang)}</h2>
<p>${T(X.membersMatching, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${table({
  lang,
  caption: T(X.membersCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(X.member, lang), nowrap: true },
    { label: T(X.name, lang), nowrap: true },
    { label: T(X.department, lang), nowrap: true },
    { label: T(X.homeNode, lang), nowrap: true },
    { label: T(X.memberStatus, lang), nowrap: true },
    { label: T(X.provides, lang), nowrap: true },
    { label: T(X.subscriptionCount, lang), numeric: true },
  ],
  rows,
  empty: T(X.noMembers, lang),
})}
${pager(lang, page, pages, href)}`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // Subscriptions and lag

  s.get(`${HOME}/subscriptions`, { schema: { hide: true, querystring: SubscriptionsQuery }, config: { action: 'exchange-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    const ql = q.lang;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const found = await subscriptionLag(ctx.db, { member: q.member, resource: q.resource, limit: perPage, offset: (page - 1) * perPage });
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const filtering = Boolean(q.member?.trim() || q.resource?.trim());
    const href = (p: number) =>
      hrefWith(`${HOME}/subscriptions`, { member: q.member?.trim(), resource: q.resource?.trim(), perPage: perPage !== DEFAULT_PER_PAGE ? perPage : undefined, page: p > 1 ? p : undefined }, ql);
    const rows = found.items.map((sub) => [
      html`<code>${sub.resource}</code>`,
      targetOf(sub.targetMember, sub.targetNode, lang),
      T(X[`mode_${sub.delivery}`], lang),
      sub.ready,
      sub.leased,
      sub.dead
        ? // the accessible name starts with the number shown (WCAG 2.5.3); a visually hidden span would
          // sit outside the scrolling table and widen the page on a phone
          html`<a href="${hrefWith(`${HOME}/dead-letters`, { subscription: sub.id }, ql)}" aria-label="${T(X.deadOf, lang, { n: formatNumber(sub.dead, lang), sub: `${sub.resource} → ${sub.targetMember ?? sub.targetNode}` })}">${formatNumber(sub.dead, lang)}</a>`
        : 0,
      ageText(sub.oldestWaitingSeconds, lang),
      sub.doneLastHour,
    ]);
    const title = T(X.subscriptions, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(X.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, title),
      main: html`<h1>${title}</h1>
<p class="lead">${T(X.subscriptionsLead, lang)}</p>
${tabs(`${HOME}/subscriptions`, lang, ql)}
<h2 id="filter">${T(X.filterSubscriptions, lang)}</h2>
<form class="form" method="get" action="${HOME}/subscriptions" role="search" aria-labelledby="filter">
${keepLangField(ql)}
${field({ name: 'member', label: X.target, hint: X.targetHint, value: q.member ?? '', maxlength: 200, required: false }, lang)}
${field({ name: 'resource', label: X.resource, hint: X.resourceHint, value: q.resource ?? '', maxlength: 200, required: false }, lang)}
<p class="form-inline"><button class="button" type="submit">${T(X.filter, lang)}</button>${filtering ? html` <a class="button button-secondary" href="${withLang(`${HOME}/subscriptions`, ql)}">${T(X.clear, lang)}</a>` : ''}</p>
</form>
<h2 id="list">${T(X.subscriptionsCaption, lang)}</h2>
<p>${T(X.subscriptionsMatching, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${table({
  lang,
  caption: T(X.subscriptionsCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(X.resource, lang), nowrap: true },
    { label: T(X.target, lang), nowrap: true },
    { label: T(X.deliveryMode, lang), nowrap: true },
    { label: T(X.ready, lang), numeric: true },
    { label: T(X.leased, lang), numeric: true },
    { label: T(X.dead, lang), numeric: true },
    { label: T(X.oldestWaiting, lang), nowrap: true },
    { label: T(X.doneLastHour, lang), numeric: true },
  ],
  rows,
  empty: T(X.noSubscriptions, lang),
})}
${pager(lang, page, pages, href)}`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // Dead letters

  s.get(`${HOME}/dead-letters`, { schema: { hide: true, querystring: DeadQuery }, config: { action: 'exchange-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    const ql = q.lang;
    const sub = q.subscription ? q.subscription.toLowerCase() : undefined;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const [found, bySub] = await Promise.all([listDeadLetters(ctx.db, { subscription: sub, limit: perPage, offset: (page - 1) * perPage }), deadLetterCounts(ctx.db)]);
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const href = (p: number) => hrefWith(`${HOME}/dead-letters`, { subscription: sub, perPage: perPage !== DEFAULT_PER_PAGE ? perPage : undefined, page: p > 1 ? p : undefined }, ql);
    const canReplay = ctx.policy.can(req.actor, 'dead-letter:replay');
    const csrf = canReplay && found.items.length ? csrfField(ctx, req, reply) : '';
    const subLabel = (c: { resource: string | null; targetMember: string | null; targetNode: string | null }) =>
      c.resource ? `${c.resource} → ${c.targetMember ?? `${T(X.nodeTarget, lang)} ${c.targetNode}`}` : T(X.unknownSubscription, lang);

    const banner =
      q.replayed === undefined
        ? ''
        : q.replayed > 0
          ? notice({ body: html`<p role="status">${T(X.replayed, lang, { n: formatNumber(q.replayed, lang) })}</p>` })
          : notice({ kind: 'warning', body: html`<p role="status">${T(X.replayedNone, lang)}</p>` });

    const options = [option('', T(X.allSubscriptions, lang), !sub), ...bySub.map((c) => option(c.subscription, `${subLabel(c)} (${formatNumber(c.dead, lang)})`, c.subscription === sub))];
    if (sub && !bySub.some((c) => c.subscription === sub)) options.push(option(sub, sub, true));
    const filter = html`<h2 id="filter">${T(X.filterDead, lang)}</h2>
<form class="form" method="get" action="${HOME}/dead-letters" aria-labelledby="filter">
${keepLangField(ql)}
${selectField({ name: 'subscription', label: T(X.subscription, lang), options })}
<p class="form-inline"><button class="button" type="submit">${T(X.filter, lang)}</button>${sub ? html` <a class="button button-secondary" href="${withLang(`${HOME}/dead-letters`, ql)}">${T(X.clear, lang)}</a>` : ''}</p>
</form>`;

    // filtered to one subscription, its column would repeat one value: left out
    const showSub = !sub;
    const rows = found.items.map((d) => {
      const boxId = `dl-${d.subscription}-${d.seq}`;
      return [
        canReplay
          ? html`<input type="checkbox" id="${boxId}" name="item" value="${d.subscription}:${d.seq}"> <label for="${boxId}"><span class="visually-hidden">${T(X.select, lang)} </span>${d.seq}</label>`
          : String(d.seq),
        ...(showSub ? [html`${d.subscriptionResource ? html`<code>${d.subscriptionResource}</code><br>${targetOf(d.targetMember, d.targetNode, lang)}` : T(X.unknownSubscription, lang)}`] : []),
        longText(d.lastError),
        d.attempts,
        d.type ? html`<code>${d.type}</code>` : '—',
        longText(d.id, 'request-id'),
        d.key ? html`<code>${d.key}</code>` : '—',
        d.member ? html`<code>${d.member}</code>` : '—',
        d.receivedAt ? html`<time datetime="${d.receivedAt.toISOString()}">${formatDateTime(d.receivedAt, lang)}</time>` : '—',
      ];
    });
    const list = table({
      lang,
      caption: T(X.deadCaption, lang),
      captionHidden: true,
      rowHeaders: true,
      columns: [
        { label: canReplay ? `${T(X.select, lang)} · ${T(X.seq, lang)}` : T(X.seq, lang), nowrap: true },
        ...(showSub ? [{ label: T(X.subscription, lang), nowrap: true }] : []),
        { label: T(X.lastError, lang) },
        { label: T(X.attempts, lang), numeric: true },
        { label: T(X.type, lang), nowrap: true },
        { label: T(X.eventId, lang) },
        { label: T(X.key, lang), nowrap: true },
        { label: T(X.publisher, lang), nowrap: true },
        { label: T(X.receivedAt, lang), nowrap: true },
      ],
      rows,
      empty: T(X.noDead, lang),
    });
    const action = withLang(`${HOME}/dead-letters/replay`, ql);
    const listPart =
      canReplay && found.items.length
        ? html`<form method="post" action="${action}" aria-labelledby="list">
${csrf}
${sub ? html`<input type="hidden" name="subscription" value="${sub}">` : ''}
<p class="field-hint">${T(X.replaySelectedHint, lang)}</p>
${list}
<p class="actions"><button class="button" type="submit">${T(X.replaySelected, lang)}</button></p>
</form>`
        : html`${!canReplay && found.items.length ? notice({ body: T(X.replayNeedsRole, lang) }) : ''}${list}`;
    const all =
      canReplay && sub && found.total > 0
        ? html`<h2 id="replay-all">${T(X.replayAllHeading, lang)}</h2>
<form class="form" method="post" action="${action}" aria-labelledby="replay-all">
${csrf}
<input type="hidden" name="subscription" value="${sub}">
<input type="hidden" name="all" value="1">
<p class="field-hint">${T(X.replayAllHint, lang, { n: formatNumber(found.total, lang), sub: subLabel(bySub.find((c) => c.subscription === sub) ?? { resource: null, targetMember: null, targetNode: null }) })}</p>
<p class="actions"><button class="button" type="submit">${T(X.replayAll, lang)}</button></p>
</form>`
        : '';

    const title = T(X.deadLetters, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(X.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, title),
      main: html`<h1>${title}</h1>
<p class="lead">${T(X.deadLead, lang)}</p>
${tabs(`${HOME}/dead-letters`, lang, ql)}
${banner}
${filter}
<h2 id="list">${T(X.deadCaption, lang)}</h2>
<p>${T(X.deadMatching, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${listPart}
${pager(lang, page, pages, href)}
${all}`,
    });
  });

  s.post(`${HOME}/dead-letters/replay`, { schema: { hide: true, body: ReplayForm }, config: { action: 'dead-letter:replay' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const b = req.body as ReplayForm;
    const ql = (req.query as { lang?: string } | undefined)?.lang ?? b.lang;
    const sub = b.subscription ? b.subscription.toLowerCase() : undefined;
    const plan = new Map<string, number[] | null>();
    if (b.all === '1') {
      if (!sub) throw problem('validation', 'subscription: replaying all dead letters needs the subscription', { errors: [{ in: 'body', pointer: '/subscription', message: 'required with all=1' }] });
      plan.set(sub, null);
    } else {
      const items = b.item === undefined ? [] : Array.isArray(b.item) ? b.item : [b.item];
      for (const it of items) {
        const i = it.lastIndexOf(':');
        const id = it.slice(0, i).toLowerCase();
        const seq = Number(it.slice(i + 1));
        if (!Number.isSafeInteger(seq)) throw problem('validation', `item: ${it.slice(0, 80)} is not subscription:seq`);
        const list = plan.get(id) ?? [];
        if (!list.includes(seq)) list.push(seq);
        plan.set(id, list);
      }
    }
    let replayed = 0;
    if (plan.size) {
      const actor = auditActorOf(req.actor);
      replayed = await ctx.db.tx(async (c) => {
        let n = 0;
        for (const [subscription, seqs] of plan) {
          const k = await replayDeadLetters(c, subscription, seqs);
          n += k;
          await appendAudit(c, {
            actor,
            action: 'exchange.dead-letter.replay',
            resource: { type: 'exchange-subscription', id: subscription },
            outcome: 'ok',
            requestId: req.id,
            ip: req.ip,
            details: { replayed: k, seqs: seqs === null ? 'all' : seqs.slice(0, 100), ...(seqs && seqs.length > 100 ? { more: seqs.length - 100 } : {}) },
          });
        }
        return n;
      });
      req.log.info({ replayed, subscriptions: [...plan.keys()] }, 'exchange dead letters replayed');
    }
    return reply.redirect(hrefWith(`${HOME}/dead-letters`, { subscription: sub, replayed }, ql), 303);
  });

  // -------------------------------------------------------------------------------------------
  // Refusals

  s.get(`${HOME}/refusals`, { schema: { hide: true, querystring: RefusalsQuery }, config: { action: 'exchange-console:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    const ql = q.lang;
    const reason = q.reason || undefined;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const [found, counts] = await Promise.all([listRefusals(ctx.db, { reason, limit: perPage, offset: (page - 1) * perPage }), refusalCounts(ctx.db)]);
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const href = (p: number) => hrefWith(`${HOME}/refusals`, { reason, perPage: perPage !== DEFAULT_PER_PAGE ? perPage : undefined, page: p > 1 ? p : undefined }, ql);
    const known = [...new Set([...Object.keys(REFUSAL_REASONS), ...counts.map((c) => c.reason), ...(reason ? [reason] : [])])];
    const reasonText = (r: string) => (REFUSAL_REASONS[r] ? `${tr(REFUSAL_REASONS[r]!, lang)} (${r})` : r);

    const rows = found.items.map((r) => [
      html`<time datetime="${r.at.toISOString()}">${formatDateTime(r.at, lang)}</time>`,
      reasonLabel(r.reason, lang),
      r.member ? html`<code>${r.member}</code>` : '—',
      longText(r.eventId, 'request-id'),
      longText(r.detail),
      r.remoteAddr ? html`<code>${r.remoteAddr}</code>` : '—',
    ]);
    const title = T(X.refusals, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: `${title} - ${T(X.title, lang)}`,
      breadcrumbs: crumbs(lang, ql, title),
      main: html`<h1>${title}</h1>
<p class="lead">${T(X.refusalsLead, lang)}</p>
${tabs(`${HOME}/refusals`, lang, ql)}
<h2 id="last24h">${T(X.last24h, lang)}</h2>
${table({
  lang,
  caption: T(X.last24h, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [{ label: T(X.reason, lang), nowrap: true }, { label: T(X.count, lang), numeric: true }],
  rows: counts.map((c) => [html`<a href="${hrefWith(`${HOME}/refusals`, { reason: c.reason }, ql)}">${reasonText(c.reason)}</a>`, c.count]),
  footer: counts.length ? [lang === 'en' ? 'Total' : '合计', counts.reduce((a, c) => a + c.count, 0)] : undefined,
  empty: T(X.noRefusals24h, lang),
})}
<h2 id="filter">${T(X.filterRefusals, lang)}</h2>
<form class="form" method="get" action="${HOME}/refusals" aria-labelledby="filter">
${keepLangField(ql)}
${selectField({ name: 'reason', label: T(X.reason, lang), options: [option('', T(X.allReasons, lang), !reason), ...known.map((r) => option(r, reasonText(r), r === reason))] })}
<p class="form-inline"><button class="button" type="submit">${T(X.filter, lang)}</button>${reason ? html` <a class="button button-secondary" href="${withLang(`${HOME}/refusals`, ql)}">${T(X.clear, lang)}</a>` : ''}</p>
</form>
<h2 id="list">${T(X.refusalsCaption, lang)}</h2>
<p>${T(X.refusalsMatching, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, href)}
${table({
  lang,
  caption: T(X.refusalsCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(X.at, lang), nowrap: true },
    { label: T(X.reason, lang), nowrap: true },
    { label: T(X.member, lang), nowrap: true },
    { label: T(X.eventId, lang) },
    { label: T(X.detail, lang) },
    { label: T(X.remoteAddr, lang), nowrap: true },
  ],
  rows,
  empty: T(X.noRefusals, lang),
})}
${pager(lang, page, pages, href)}`,
    });
  });
}
