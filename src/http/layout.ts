// The one layout and design system of every portal and console: page shell (demo bar, header with
// the portal name and language switch, navigation, breadcrumbs, main landmark, footer), the shared
// components (card, status badge, table, notice, key figures), error pages, and the language switch
// endpoint. The styles are web/css/gusu.css; docs/design-system.md shows how to use all of it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html, raw, toString, type Html } from './html.ts';
import { LANGS, isLang, requestLang, tr, type Lang, type Text } from './i18n.ts';
import { M } from './messages.ts';
import { PROBLEM_TYPES, type Problem, type ProblemName } from './problems.ts';

/** Which band a page wears: the public portal (deep red) or the staff console (deep blue). */
export type Shell = 'portal' | 'console';

export interface NavItem {
  href: string;
  label: Text;
}

export interface Crumb {
  label: string;
  /** absent on the current page (the last crumb) */
  href?: string;
}

export interface PageOptions {
  lang: Lang;
  /** the page's own title, already translated; the browser title adds the site name */
  title: string;
  main: Html;
  /** the request URL (path and query): marks the current navigation item, and the language switch returns here */
  path?: string;
  shell?: Shell;
  breadcrumbs?: Crumb[];
  /** replaces the shell's default top navigation */
  nav?: NavItem[];
  /** console pages: a side navigation (e.g. the sections of the page) */
  localNav?: { label: string; items: { href: string; label: string }[] };
  /** marks no navigation item as the current page (error pages) */
  noCurrentNav?: boolean;
  /** full-width content at the top of the main landmark (e.g. the home page hero) */
  hero?: Html;
  description?: string;
  /** who is signed in (sendPage fills it from the request): the account bar shows their name and links */
  account?: PageAccount | null;
}

export interface PageAccount {
  kind: 'citizen' | 'enterprise' | 'staff';
  name: string;
}

/** Who the site is: set once at start-up from the city profile, so another city needs no code change. */
export interface SiteIdentity {
  portalName: Text;
  cityName: Text;
}

let site: SiteIdentity = {
  portalName: { zh: '中国苏州', en: 'China Suzhou' },
  cityName: { zh: '苏州市', en: 'Suzhou' },
};

export function setSiteIdentity(identity: SiteIdentity): void {
  site = identity;
}

// Set by the sign-in module when it is part of the platform: the account bar then links to sign-in.
let signInRoutes = false;
export function enableSignInLinks(on: boolean): void {
  signInRoutes = on;
}

/** A link a module adds to the account bar of signed-in people (e.g. the mailbox), per shell. */
export interface AccountLink {
  href: string;
  label: Text;
  shell: Shell;
}
const accountLinks: AccountLink[] = [];
export function addAccountLink(link: AccountLink): void {
  if (!accountLinks.some((l) => l.href === link.href && l.shell === link.shell)) accountLinks.push(link);
}

// console sections that modules add to the console's top navigation (after 工作台)
const consoleNavExtra: NavItem[] = [];
export function addConsoleNav(item: NavItem): void {
  if (!consoleNavExtra.some((i) => i.href === item.href)) consoleNavExtra.push(item);
}

export function siteIdentity(): SiteIdentity {
  return site;
}

/** The console's platform name, e.g. 苏州市政务协同平台. */
export function platformName(lang: Lang): string {
  return lang === 'en' ? `${site.cityName.en} ${M.platformSuffix.en}` : `${site.cityName.zh}${M.platformSuffix.zh}`;
}

export const PORTAL_NAV: readonly NavItem[] = [
  { href: '/', label: M.home },
  { href: '/disclosure', label: M.disclosure },
  { href: '/services', label: M.services },
  { href: '/participation', label: M.participation },
  { href: '/directory', label: M.directory },
];

export const CONSOLE_NAV: readonly NavItem[] = [
  { href: '/console', label: M.consoleHome },
  { href: '/api/docs', label: M.apiDocs },
];

// ---------------------------------------------------------------------------------------------
// Safe paths and the language switch

const MAX_BACK = 2000;

/**
 * A path on this site to send the browser back to, or '/' when the value is anything else: only
 * one leading slash, no backslash or control character (browsers read `/\evil` as `//evil`), and
 * it must resolve to the same origin.
 */
export function safeLocalPath(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_BACK) return '/';
  if (!value.startsWith('/') || value.startsWith('//')) return '/';
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return '/';
  let url: URL;
  try {
    url = new URL(value, 'http://gusu.invalid');
  } catch {
    return '/';
  }
  if (url.origin !== 'http://gusu.invalid') return '/';
  return url.pathname + url.search + url.hash;
}

/** The current path without its ?lang= (which would override the cookie the switch sets). */
function pathWithoutLang(path: string): string {
  const safe = safeLocalPath(path);
  const url = new URL(safe, 'http://gusu.invalid');
  url.searchParams.delete('lang');
  const back = url.pathname + url.search;
  return back.length > 500 ? url.pathname.slice(0, 500) : back;
}

export function languageSwitchHref(to: Lang, path = '/'): string {
  return `/lang?to=${encodeURIComponent(to)}&back=${encodeURIComponent(pathWithoutLang(path))}`;
}

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;

/**
 * GET /lang?to=en&back=/path: remembers the language in the `lang` cookie and returns to a local
 * path. Registered by whichever module comes first on a listener (the portal, the console).
 */
export function registerLanguageSwitch(app: FastifyInstance): void {
  if (app.hasRoute({ method: 'GET', url: '/lang' })) return;
  app.get('/lang', { schema: { hide: true }, config: { action: 'language:choose' } }, async (req, reply) => {
    const q = (req.query ?? {}) as Record<string, unknown>;
    const back = safeLocalPath(q.back);
    if (isLang(q.to)) {
      reply.setCookie('lang', q.to, { path: '/', sameSite: 'lax', maxAge: ONE_YEAR_SECONDS, httpOnly: true });
    }
    reply.header('cache-control', 'no-store');
    return reply.redirect(back, 303);
  });
}

// ---------------------------------------------------------------------------------------------
// Components

export type Status = 'available' | 'planned';

export function statusBadge(status: Status, lang: Lang): Html {
  return html`<span class="badge badge-${status}">${tr(M[status], lang)}</span>`;
}

/** A check result for the console: 正常 / 异常. */
export function checkBadge(ok: boolean, lang: Lang): Html {
  return ok ? html`<span class="badge badge-ok">${tr(M.ok, lang)}</span>` : html`<span class="badge badge-problem">${tr(M.problem, lang)}</span>`;
}

export interface CardOptions {
  title: string;
  /** the card links here; leave out for something that cannot be used yet */
  href?: string;
  body?: Html | string;
  status?: Status;
  lang: Lang;
  /** keeps headings in order: 2 directly under the h1, 3 under an h2 (default) */
  level?: 2 | 3;
  icon?: string;
  /** extra lines at the bottom of the card */
  meta?: Html;
  id?: string;
}

export function card(o: CardOptions): Html {
  const level = o.level ?? 3;
  const title = o.href ? html`<a class="card-link" href="${o.href}">${o.title}</a>` : o.title;
  const heading = level === 2 ? html`<h2>${title}</h2>` : html`<h3>${title}</h3>`;
  const planned = o.status === 'planned';
  return html`<li class="card${planned ? ' is-planned' : ''}"${o.id ? html` id="${o.id}"` : ''}>
<div class="card-head">${o.icon ? html`<img class="card-icon" src="${o.icon}" alt="" width="48" height="48">` : ''}<div>${heading}${
    typeof o.body === 'string' ? html`<p>${o.body}</p>` : (o.body ?? '')
  }</div></div>
${o.status || o.meta ? html`<p class="card-meta">${o.status ? statusBadge(o.status, o.lang) : ''}${o.meta ?? ''}</p>` : ''}
</li>`;
}

/** A grid of cards (a list, so screen readers announce how many). */
export function cards(items: Html[], opts: { columns?: 2 | 3 } = {}): Html {
  return html`<ul class="cards${opts.columns === 3 ? ' cards-3' : ''}">${items}</ul>`;
}

export interface Column {
  label: string;
  /** right-aligned, tabular figures */
  numeric?: boolean;
  /** monospace identifiers */
  code?: boolean;
  /** short labels such as names of places, kept on one line */
  nowrap?: boolean;
}

export type Cell = Html | string | number | null | undefined;

export interface TableOptions {
  caption: string;
  columns: Column[];
  rows: Cell[][];
  /** the first cell of each row is its header (th scope=row) */
  rowHeaders?: boolean;
  footer?: Cell[];
  lang: Lang;
  /** shown instead of an empty body */
  empty?: string;
  /** hides the caption visually (still read by screen readers) when a heading already says it */
  captionHidden?: boolean;
}

function cellText(v: Cell, lang: Lang): Html | string {
  if (typeof v === 'number') return formatNumber(v, lang);
  return v ?? '';
}

export function table(o: TableOptions): Html {
  const cls = (c: Column | undefined) => {
    const names = [c?.numeric && 'num', c?.code && 'code', c?.nowrap && 'nowrap'].filter(Boolean);
    return raw(names.length ? ` class="${names.join(' ')}"` : '');
  };
  const row = (cells: Cell[], header: boolean) =>
    cells.map((v, i) => {
      const c = o.columns[i];
      return header && i === 0
        ? html`<th scope="row"${cls(c)}>${cellText(v, o.lang)}</th>`
        : html`<td${cls(c)}>${cellText(v, o.lang)}</td>`;
    });
  const body = o.rows.length
    ? o.rows.map((r) => html`<tr>${row(r, o.rowHeaders ?? false)}</tr>`)
    : html`<tr><td colspan="${o.columns.length}">${o.empty ?? tr(M.noRows, o.lang)}</td></tr>`;
  // the wrapper scrolls a wide table on a narrow screen; it is focusable so keyboards can scroll it
  return html`<div class="table-wrap" role="region" aria-label="${o.caption}" tabindex="0"><table>
<caption${o.captionHidden ? html` class="visually-hidden"` : ''}>${o.caption}</caption>
<thead><tr>${o.columns.map((c) => html`<th scope="col"${cls(c)}>${c.label}</th>`)}</tr></thead>
<tbody>${body}</tbody>${o.footer ? html`<tfoot><tr>${row(o.footer, true)}</tr></tfoot>` : ''}
</table></div>`;
}

export function notice(o: { body: Html | string; title?: string; kind?: 'info' | 'warning' }): Html {
  const body = typeof o.body === 'string' ? html`<p>${o.body}</p>` : o.body;
  return html`<div class="notice notice-${o.kind ?? 'info'}">${o.title ? html`<p class="notice-title">${o.title}</p>` : ''}${body}</div>`;
}

/** Key figures: a definition list of label and number. */
export function figures(items: { label: string; value: number | string }[], lang: Lang): Html {
  return html`<dl class="figures">${items.map(
    (f) => html`<div class="figure"><dt>${f.label}</dt><dd>${typeof f.value === 'number' ? formatNumber(f.value, lang) : f.value}</dd></div>`,
  )}</dl>`;
}

// constructing an Intl formatter is costly: one per language, made once
const NUMBER_FORMATS: Record<Lang, Intl.NumberFormat> = { 'zh-CN': new Intl.NumberFormat('zh-CN'), en: new Intl.NumberFormat('en-GB') };

export function formatNumber(n: number, lang: Lang): string {
  return NUMBER_FORMATS[lang].format(n);
}

export function formatDateTime(iso: string | Date, lang: Lang, timeZone = 'Asia/Shanghai'): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(d);
}

// ---------------------------------------------------------------------------------------------
// The page shell

function isCurrent(href: string, path: string): boolean {
  const p = path.split(/[?#]/)[0] || '/';
  if (href === '/') return p === '/';
  return p === href || p.startsWith(href + '/');
}

function header(o: PageOptions, shell: Shell, path: string): Html {
  const lang = o.lang;
  // the console's name goes on two lines (platform, then 工作台 · network) so it fits a phone
  const name = shell === 'console' ? platformName(lang) : tr(site.portalName, lang);
  // under the name: the portal's name in the other language, or which network the console is on
  const sub =
    shell === 'console'
      ? html`<span class="brand-sub">${tr(M.consoleHome, lang)} · ${tr(M.internalFace, lang)}</span>`
      : lang === 'en'
        ? html`<span class="brand-sub" lang="zh-CN">${site.portalName.zh}</span>`
        : html`<span class="brand-sub" lang="en">${site.portalName.en}</span>`;
  const switcher = html`<nav class="lang-switch" aria-label="${tr(M.languageNav, lang)}"><ul>${LANGS.map((l) =>
    l === lang
      ? html`<li><span lang="${l}" aria-current="true">${l === 'en' ? 'English' : '中文'}</span></li>`
      : html`<li><a href="${languageSwitchHref(l, path)}" lang="${l}" hreflang="${l}">${l === 'en' ? 'English' : '中文'}</a></li>`,
  )}</ul></nav>`;
  const nav = o.nav ?? (shell === 'console' ? [CONSOLE_NAV[0]!, ...consoleNavExtra, ...CONSOLE_NAV.slice(1)] : PORTAL_NAV);
  return html`<header class="site-header"><div class="wrap">
<a class="brand" href="${shell === 'console' ? '/console' : '/'}"><img src="/assets/img/emblem.svg" alt="" width="52" height="52"><span class="brand-text"><span class="brand-name">${name}</span>${sub}</span></a>
${switcher}
</div></header>
<nav class="primary-nav" aria-label="${tr(M.primaryNav, lang)}"><div class="wrap"><ul>${nav.map(
    (n) => html`<li><a href="${n.href}"${!o.noCurrentNav && isCurrent(n.href, path) ? html` aria-current="page"` : ''}>${tr(n.label, lang)}</a></li>`,
  )}</ul></div></nav>`;
}

/** 账户栏: sign in, or who is signed in with their own pages and sign out (a confirm page with a CSRF form). */
function accountBar(o: PageOptions, shell: Shell, path: string): Html {
  if (!signInRoutes) return html``;
  const lang = o.lang;
  const prefix = shell === 'console' ? '/console/auth' : '/auth';
  const a = o.account;
  const links: Html[] = a
    ? [
        html`<li><span class="account-name">${tr(M.signedInAs, lang)}${a.name}</span></li>`,
        ...(shell === 'portal' ? [html`<li><a href="/me/preferences">${tr(M.myPreferences, lang)}</a></li>`] : []),
        ...accountLinks.filter((l) => l.shell === shell).map((l) => html`<li><a href="${l.href}">${tr(l.label, lang)}</a></li>`),
        ...(shell === 'portal' && a.kind === 'citizen' ? [html`<li><a href="/me/data-accesses">${tr(M.myDataAccesses, lang)}</a></li>`] : []),
        html`<li><a href="${prefix}/logout">${tr(M.signOut, lang)}</a></li>`,
      ]
    : path.startsWith(prefix + '/')
      ? []
      : [html`<li><a href="${prefix}/login?back=${encodeURIComponent(pathWithoutLang(path))}">${tr(M.signIn, lang)}</a></li>`];
  if (!links.length) return html``;
  return html`<nav class="account-bar" aria-label="${tr(M.accountNav, lang)}"><div class="wrap"><ul>${links}</ul></div></nav>`;
}

function breadcrumbs(crumbs: Crumb[], lang: Lang): Html {
  return html`<nav class="breadcrumbs" aria-label="${tr(M.breadcrumbNav, lang)}"><div class="wrap"><ol>${crumbs.map((c, i) =>
    c.href && i < crumbs.length - 1 ? html`<li><a href="${c.href}">${c.label}</a></li>` : html`<li><span aria-current="page">${c.label}</span></li>`,
  )}</ol></div></nav>`;
}

function footer(lang: Lang, shell: Shell): Html {
  const links: { href: string; label: Text }[] =
    shell === 'console'
      ? [
          { href: '/console', label: M.consoleHome },
          { href: '/api/docs', label: M.apiDocs },
        ]
      : [
          { href: '/directory', label: M.directory },
          { href: '/api/docs', label: M.apiDocs },
        ];
  return html`<footer class="site-footer"><div class="wrap">
<nav aria-label="${tr(M.footerNav, lang)}"><ul>${links.map((l) => html`<li><a href="${l.href}">${tr(l.label, lang)}</a></li>`)}</ul></nav>
<p class="synthetic-note"><strong>${M.syntheticData.zh} / ${M.syntheticData.en}</strong> — ${tr(M.syntheticDataNote, lang)}</p>
<p>${tr(M.footerAbout, lang)}</p>
</div></footer>`;
}

export function page(o: PageOptions): string {
  const lang = o.lang;
  const shell = o.shell ?? 'portal';
  const path = o.path ?? '/';
  const siteName = shell === 'console' ? platformName(lang) : tr(site.portalName, lang);
  const title = o.title === siteName ? siteName : `${o.title} - ${siteName}`;
  const content = o.localNav
    ? html`<div class="console-grid"><nav class="local-nav" aria-label="${o.localNav.label}"><ul>${o.localNav.items.map(
        (i) => html`<li><a href="${i.href}">${i.label}</a></li>`,
      )}</ul></nav><div class="console-content">${o.main}</div></div>`
    : o.main;
  return (
    '<!doctype html>\n' +
    toString(html`<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${o.description ? html`<meta name="description" content="${o.description}">` : ''}
<link rel="icon" href="/assets/img/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/css/gusu.css">
</head>
<body class="shell-${shell}">
<a class="skip-link" href="#main">${tr(M.skipToMain, lang)}</a>
<div class="demo-bar"><div class="wrap"><p>${tr(M.demoBar, lang)}</p></div></div>
${accountBar(o, shell, path)}
${header(o, shell, path)}
${o.breadcrumbs?.length ? breadcrumbs(o.breadcrumbs, lang) : ''}
<main id="main" class="site-main" tabindex="-1">
${o.hero ?? ''}
<div class="wrap">
${content}
</div>
</main>
${footer(lang, shell)}
</body>
</html>
`)
  );
}

/** Renders a page for this request (its language and path) and sends it. */
export function sendPage(req: FastifyRequest, reply: FastifyReply, o: Omit<PageOptions, 'lang' | 'path'> & { lang?: Lang }): FastifyReply {
  const lang = o.lang ?? requestLang(req);
  const a = req.actor;
  const account = o.account !== undefined ? o.account : a && (a.kind === 'citizen' || a.kind === 'enterprise' || a.kind === 'staff') ? { kind: a.kind, name: a.kind === 'enterprise' ? `${a.name}（${a.entityName}）` : a.name } : null;
  return reply.type('text/html; charset=utf-8').send(page({ ...o, lang, path: req.url, account }));
}

// ---------------------------------------------------------------------------------------------
// Error pages

const MAX_DETAIL = 500;

const colon = (lang: Lang) => (lang === 'en' ? ': ' : '：');

function requestIdOf(instance: string | undefined): string | undefined {
  if (!instance) return undefined;
  return instance.startsWith('urn:gusu:request:') ? instance.slice('urn:gusu:request:'.length) : instance;
}

export function errorPage(lang: Lang, p: Problem, opts: { path?: string; shell?: Shell } = {}): string {
  const detail = p.detail && p.detail.length > MAX_DETAIL ? p.detail.slice(0, MAX_DETAIL) + '…' : p.detail;
  const requestId = requestIdOf(p.instance);
  const home = opts.shell === 'console' ? '/console' : '/';
  return page({
    lang,
    title: p.title,
    path: opts.path ?? '/',
    shell: opts.shell ?? 'portal',
    noCurrentNav: true,
    main: html`<p class="error-code">HTTP ${p.status}</p>
<h1>${p.title}</h1>
${detail ? html`<p class="detail">${detail}</p>` : ''}
${requestId ? html`<p>${tr(M.errorRequestId, lang)}${colon(lang)}<span class="request-id">${requestId}</span><br><span class="muted">${tr(M.errorRequestIdHelp, lang)}</span></p>` : ''}
<ul class="actions">
${p.status === 401 && signInRoutes ? html`<li><a href="${opts.shell === 'console' ? '/console/auth' : '/auth'}/login?back=${encodeURIComponent(pathWithoutLang(opts.path ?? '/'))}">${tr(M.signIn, lang)}</a></li>` : ''}
<li><a href="${home}">${tr(M.errorBackHome, lang)}</a></li>
${p.type.startsWith('/problems/') ? html`<li><a href="${p.type}">${tr(M.errorAboutType, lang)}</a></li>` : ''}
</ul>`,
  });
}

export function problemPage(lang: Lang, name: ProblemName): string {
  const t = PROBLEM_TYPES[name];
  const title = tr(t.title, lang);
  return page({
    lang,
    title,
    path: `/problems/${name}`,
    breadcrumbs: [{ label: tr(M.home, lang), href: '/' }, { label: tr(M.problemTypeHeading, lang) }, { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${tr(t.description, lang)}</p>
<dl class="figures">
<div class="figure"><dt>${tr(M.problemTypeStatus, lang)}</dt><dd>${t.status}</dd></div>
</dl>
<p>${tr(M.problemTypeUri, lang)}${colon(lang)}<code>/problems/${name}</code></p>
<p class="muted">${tr(M.problemTypeHow, lang)}</p>`,
  });
}
