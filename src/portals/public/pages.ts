// The public portal's pages, as functions from data to the page body. The routes (index.ts) gather
// the data; nothing here touches the database.
import type { CityProfile, CountyDivision } from '../../config/profile.ts';
import { html, type Html } from '../../http/html.ts';
import { tr, type Lang } from '../../http/i18n.ts';
import { card, cards, figures, notice, statusBadge, table, type Crumb, type PageOptions } from '../../http/layout.ts';
import { M, fill, kindLabel } from '../../http/messages.ts';
import { townshipCount } from './city.ts';
import { sectionItems, SECTIONS, type Section } from './sections.ts';
import { LAYERS, type SubsystemWithStatus } from './subsystems.ts';

export type PageBody = Omit<PageOptions, 'lang' | 'path'>;

const nameOf = (d: { name: string; nameEn: string }, lang: Lang) => (lang === 'en' ? d.nameEn : d.name);

function homeCrumb(lang: Lang): Crumb {
  return { label: tr(M.home, lang), href: '/' };
}

export function homePage(lang: Lang, profile: CityProfile, subsystems: SubsystemWithStatus[], provided: ReadonlySet<string>): PageBody {
  const portalName = lang === 'en' ? profile.city.portalNameEn : profile.city.portalName;
  const available = subsystems.filter((s) => s.status === 'available');
  const entry = (s: Section) => {
    const items = sectionItems(s, provided);
    const ready = items.filter((i) => i.status === 'available').length;
    return card({
      lang,
      title: tr(s.name, lang),
      href: s.href,
      icon: s.icon,
      body: tr(s.summary, lang),
      meta: html`<span>${ready} ${tr(M.countAvailable, lang)}</span><span>${items.length - ready} ${tr(M.countPlanned, lang)}</span>`,
    });
  };
  return {
    title: portalName,
    description: tr(M.portalTagline, lang),
    hero: html`<div class="hero"><div class="wrap"><h1>${portalName}</h1><p class="lead">${tr(M.portalTagline, lang)}</p></div></div>`,
    main: html`<h2>${tr(M.entryPoints, lang)}</h2>
${cards(SECTIONS.map(entry), { columns: 3 })}
<div class="panels">
<section class="panel" aria-labelledby="progress">
<h2 id="progress">${tr(M.progress, lang)}</h2>
<p>${fill(tr(M.progressText, lang), { total: subsystems.length, available: available.length })}</p>
${figures(
  [
    { label: tr(M.available, lang), value: available.length },
    { label: tr(M.planned, lang), value: subsystems.length - available.length },
  ],
  lang,
)}
<p>${tr(M.available, lang)}${lang === 'en' ? ': ' : '：'}${available.map((s) => tr(s.name, lang)).join(lang === 'en' ? ', ' : '、')}</p>
<ul class="actions"><li><a href="/directory">${tr(M.seeDirectory, lang)}</a></li></ul>
</section>
<section class="panel" aria-labelledby="city">
<h2 id="city">${tr(M.cityAtAGlance, lang)}</h2>
${figures(
  [
    { label: tr(M.countyLevelDivisions, lang), value: profile.divisions.length },
    { label: tr(M.streetLevelDivisions, lang), value: townshipCount(profile) },
    { label: tr(M.departmentsCount, lang), value: profile.departments.length },
    { label: tr(M.exchangeNodes, lang), value: profile.network.length },
  ],
  lang,
)}
<ul class="actions"><li><a href="/disclosure/divisions">${tr(M.divisions, lang)}</a></li><li><a href="/disclosure/departments">${tr(M.departments, lang)}</a></li></ul>
</section>
</div>`,
  };
}

export function sectionPage(lang: Lang, section: Section, provided: ReadonlySet<string>, subsystems: SubsystemWithStatus[]): PageBody {
  const items = sectionItems(section, provided);
  const ready = items.filter((i) => i.status === 'available');
  const planned = items.filter((i) => i.status === 'planned');
  const subsystemName = (id: string) => {
    const s = subsystems.find((x) => x.id === id);
    return s ? tr(s.name, lang) : id;
  };
  const title = tr(section.name, lang);
  return {
    title,
    breadcrumbs: [homeCrumb(lang), { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${tr(section.summary, lang)}</p>
${
  ready.length
    ? html`<h2>${tr(M.availableNow, lang)}</h2>${cards(ready.map((i) => card({ lang, title: tr(i.name, lang), href: i.href, body: tr(i.summary, lang), status: 'available' })))}`
    : notice({ body: tr(M.nothingAvailableYet, lang) })
}
${
  planned.length
    ? html`<h2>${tr(M.plannedLater, lang)}</h2>
<p class="muted">${tr(M.plannedNoLink, lang)}</p>
${cards(
  planned.map((i) =>
    card({
      lang,
      title: tr(i.name, lang),
      body: tr(i.summary, lang),
      status: 'planned',
      meta: html`<span>${tr(M.deliveredBy, lang)}${lang === 'en' ? ': ' : '：'}<a href="/directory#subsystem-${i.subsystem}">${subsystemName(i.subsystem)}</a></span>`,
    }),
  ),
)}`
    : ''
}`,
  };
}

export function directoryPage(lang: Lang, subsystems: SubsystemWithStatus[]): PageBody {
  const title = tr(M.directory, lang);
  const available = subsystems.filter((s) => s.status === 'available').length;
  return {
    title,
    breadcrumbs: [homeCrumb(lang), { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${tr(M.directoryLead, lang)}</p>
${figures(
  [
    { label: tr(M.available, lang), value: available },
    { label: tr(M.planned, lang), value: subsystems.length - available },
  ],
  lang,
)}
${LAYERS.map(
  (layer) => html`<section class="layer" id="layer-${layer.id}" aria-labelledby="layer-${layer.id}-h">
<h2 id="layer-${layer.id}-h">${tr(layer.name, lang)}</h2>
<p class="layer-intro">${tr(layer.principle, lang)}</p>
${cards(
  subsystems
    .filter((s) => s.layer === layer.id)
    .map((s) =>
      card({
        lang,
        id: `subsystem-${s.id}`,
        title: tr(s.name, lang),
        href: s.status === 'available' ? s.href : undefined,
        body: tr(s.summary, lang),
        status: s.status,
      }),
    ),
  { columns: 3 },
)}
</section>`,
)}
<p><a href="/api/v1/subsystems">/api/v1/subsystems</a> (JSON)</p>`,
  };
}

function countyName(d: CountyDivision, lang: Lang): string {
  const alias = lang === 'en' ? d.aliasEn : d.alias;
  if (!alias) return nameOf(d, lang);
  return lang === 'en' ? `${d.nameEn} (${alias})` : `${d.name}（${alias}）`;
}

export function divisionsPage(lang: Lang, profile: CityProfile): PageBody {
  const title = tr(M.divisions, lang);
  return {
    title,
    breadcrumbs: [homeCrumb(lang), { label: tr(M.disclosure, lang), href: '/disclosure' }, { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${tr(M.divisionsLead, lang)}</p>
${table({
  lang,
  caption: tr(M.countyLevelDivisions, lang),
  columns: [
    { label: tr(M.code, lang), code: true },
    { label: tr(M.name, lang), nowrap: true },
    { label: tr(M.kind, lang), nowrap: true },
    { label: tr(M.streetCount, lang), numeric: true },
  ],
  rows: profile.divisions.map((d) => [d.code, html`<a href="#division-${d.code}">${countyName(d, lang)}</a>`, tr(kindLabel(d.kind), lang), d.children.length]),
})}
${profile.divisions.map(
  (d) => html`<h2 id="division-${d.code}">${countyName(d, lang)}</h2>
${table({
  lang,
  caption: `${nameOf(d, lang)} · ${tr(M.subdivisions, lang)}`,
  captionHidden: true,
  columns: [{ label: tr(M.code, lang), code: true }, { label: tr(M.name, lang) }, { label: tr(M.kind, lang), nowrap: true }],
  rows: d.children.map((s) => [s.code, nameOf(s, lang), tr(kindLabel(s.kind), lang)]),
})}`,
)}
<p class="muted" lang="en">${profile.divisionsSource}</p>`,
  };
}

export function departmentsPage(lang: Lang, profile: CityProfile): PageBody {
  const title = tr(M.departments, lang);
  return {
    title,
    breadcrumbs: [homeCrumb(lang), { label: tr(M.disclosure, lang), href: '/disclosure' }, { label: title }],
    main: html`<h1>${title}</h1>
<p class="lead">${tr(M.departmentsLead, lang)}</p>
${departmentsTable(lang, profile)}`,
  };
}

function departmentsTable(lang: Lang, profile: CityProfile): Html {
  return table({
    lang,
    caption: tr(M.departments, lang),
    captionHidden: true,
    columns: [{ label: tr(M.code, lang), code: true }, { label: tr(M.name, lang) }, { label: tr(M.kind, lang), nowrap: true }],
    rows: profile.departments.map((d) => [d.code, nameOf(d, lang), tr(kindLabel(d.kind), lang)]),
  });
}
