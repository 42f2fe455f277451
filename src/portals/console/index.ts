// The staff console shell (internal face, 政务网): platform status, the demo city load, aggregate
// counts per county-level division, the subsystems, the departments and the exchange topology.
// There is no sign-in yet (that arrives with the identity subsystem), so this page shows aggregates
// only and is served on the internal face alone.
import type { FastifyInstance } from 'fastify';
import { allow, type Actor, type Policy } from '../../base/identity/policy.ts';
import { divisionByCode, type CityProfile } from '../../config/profile.ts';
import { jobCounts, type Db } from '../../db/index.ts';
import { demoStatus, type DemoLoad } from '../../demo/index.ts';
import { personCountsByCounty } from '../../base/registries/population/persons.ts';
import { entityCountsByCounty } from '../../base/registries/legal-entity/index.ts';
import { html, type Html } from '../../http/html.ts';
import { requestLang, tr, type Lang } from '../../http/i18n.ts';
import { checkBadge, formatDateTime, formatNumber, notice, registerLanguageSwitch, sendPage, statusBadge, table } from '../../http/layout.ts';
import { M, fill, kindLabel } from '../../http/messages.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { LAYERS, subsystemsWithStatus, type SubsystemWithStatus } from '../public/subsystems.ts';

/** What the console reads, each part independently: one failing part must not hide the others. */
export interface ConsoleStatus {
  database: { ok: true; ms: number } | { ok: false };
  migrations: { module: string; count: number; latest: string }[] | null;
  jobs: Record<string, number> | null;
  demo: DemoLoad | null | undefined;
  counties: { code: string; persons: number; personsSynthetic: number; entities: number; entitiesSynthetic: number }[] | null;
}

async function attempt<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch {
    return null;
  }
}

export async function readConsoleStatus(db: Db): Promise<ConsoleStatus> {
  const t0 = performance.now();
  let database: ConsoleStatus['database'];
  try {
    await db.query('select 1');
    database = { ok: true, ms: Math.max(0, Math.round(performance.now() - t0)) };
  } catch {
    database = { ok: false };
  }
  const [migrations, jobs, demo, persons, entities] = await Promise.all([
    attempt(async () => {
      const { rows } = await db.query<{ module: string; count: number; latest: Date }>(
        `select module, count(*)::int as count, max(applied_at) as latest
           from public.gusu_migration group by module order by min(applied_at), module`,
      );
      return rows.map((r) => ({ module: r.module, count: r.count, latest: new Date(r.latest).toISOString() }));
    }),
    attempt(() => jobCounts(db)),
    attempt(() => demoStatus(db)),
    attempt(() => personCountsByCounty(db)),
    attempt(() => entityCountsByCounty(db)),
  ]);
  let counties: ConsoleStatus['counties'] = null;
  if (persons && entities) {
    const byCode = new Map<string, NonNullable<ConsoleStatus['counties']>[number]>();
    const row = (code: string) => {
      let r = byCode.get(code);
      if (!r) byCode.set(code, (r = { code, persons: 0, personsSynthetic: 0, entities: 0, entitiesSynthetic: 0 }));
      return r;
    };
    for (const p of persons) Object.assign(row(p.countyCode), { persons: p.persons, personsSynthetic: p.synthetic });
    for (const e of entities) Object.assign(row(e.countyCode), { entities: e.entities, entitiesSynthetic: e.synthetic });
    counties = [...byCode.values()];
  }
  return { database, migrations, jobs, demo, counties };
}

const nameOf = (d: { name: string; nameEn: string }, lang: Lang) => (lang === 'en' ? d.nameEn : d.name);

function divisionName(profile: CityProfile, code: string, lang: Lang): string {
  if (code === profile.city.code) return nameOf(profile.city, lang);
  const d = divisionByCode(profile, code);
  return d ? nameOf(d, lang) : `${tr(M.unknownDivision, lang)} ${code}`;
}

function statusSection(lang: Lang, s: ConsoleStatus): Html {
  const migrationsTotal = s.migrations?.reduce((n, m) => n + m.count, 0) ?? 0;
  const latest = s.migrations?.map((m) => m.latest).sort().at(-1);
  const jobs = s.jobs;
  const rows: Html[][] = [
    [
      html`${tr(M.database, lang)}`,
      checkBadge(s.database.ok, lang),
      html`${s.database.ok ? fill(tr(M.databaseReachable, lang), { ms: s.database.ms }) : tr(M.databaseUnreachable, lang)}`,
    ],
    [
      html`${tr(M.migrations, lang)}`,
      checkBadge(s.migrations !== null && migrationsTotal > 0, lang),
      html`${
        s.migrations && latest
          ? fill(tr(M.migrationsApplied, lang), { n: migrationsTotal, modules: s.migrations.length, at: formatDateTime(latest, lang) })
          : tr(M.migrationsNone, lang)
      }`,
    ],
    [
      html`${tr(M.jobQueue, lang)}`,
      checkBadge(jobs !== null && (jobs.dead ?? 0) === 0, lang),
      jobs
        ? html`${[
            [M.jobQueued, jobs.queued],
            [M.jobRunning, jobs.running],
            [M.jobDone, jobs.done],
            [M.jobDead, jobs.dead],
          ]
            .map(([label, n]) => `${tr(label as typeof M.jobQueued, lang)} ${formatNumber((n as number | undefined) ?? 0, lang)}`)
            .join(lang === 'en' ? ', ' : '，')}`
        : html`${tr(M.databaseUnreachable, lang)}`,
    ],
  ];
  return html`<section aria-labelledby="status"><h2 id="status">${tr(M.platformStatus, lang)}</h2>
${table({ lang, caption: tr(M.platformStatus, lang), captionHidden: true, columns: [{ label: tr(M.check, lang), nowrap: true }, { label: tr(M.status, lang), nowrap: true }, { label: tr(M.result, lang) }], rows, rowHeaders: true })}
${
  s.migrations?.length
    ? table({
        lang,
        caption: tr(M.migrations, lang),
        columns: [{ label: tr(M.module, lang), code: true }, { label: tr(M.migrationCount, lang), numeric: true }],
        rows: s.migrations.map((m) => [m.module, m.count]),
        rowHeaders: true,
      })
    : ''
}</section>`;
}

function demoSection(lang: Lang, profile: CityProfile, s: ConsoleStatus): Html {
  const demo = s.demo
    ? notice({
        title: `${M.syntheticData.zh} / ${M.syntheticData.en}`,
        body: fill(tr(M.demoLoaded, lang), {
          residents: formatNumber(s.demo.residents, lang),
          enterprises: formatNumber(s.demo.enterprises, lang),
          seed: s.demo.seed,
          at: formatDateTime(s.demo.loadedAt, lang),
        }),
      })
    : notice({ body: tr(M.demoNotLoaded, lang) });
  const counties = s.counties ?? [];
  // the profile's order first, then any code the registries hold that the profile does not know
  const known = profile.divisions.map((d) => counties.find((c) => c.code === d.code) ?? { code: d.code, persons: 0, personsSynthetic: 0, entities: 0, entitiesSynthetic: 0 });
  const unknown = counties.filter((c) => !profile.divisions.some((d) => d.code === c.code));
  const all = [...known, ...unknown];
  const sum = (k: 'persons' | 'personsSynthetic' | 'entities' | 'entitiesSynthetic') => all.reduce((n, c) => n + c[k], 0);
  return html`<section aria-labelledby="demo"><h2 id="demo">${tr(M.demoCity, lang)}</h2>
${demo}
<h3 id="counties">${tr(M.countsByCounty, lang)}</h3>
<p class="muted">${tr(M.countsByCountyNote, lang)}</p>
${table({
  lang,
  caption: tr(M.countsByCounty, lang),
  captionHidden: true,
  columns: [
    { label: tr(M.name, lang), nowrap: true },
    { label: tr(M.code, lang), code: true },
    { label: tr(M.residents, lang), numeric: true },
    { label: `${tr(M.residents, lang)} · ${tr(M.ofWhichSynthetic, lang)}`, numeric: true },
    { label: tr(M.enterprises, lang), numeric: true },
    { label: `${tr(M.enterprises, lang)} · ${tr(M.ofWhichSynthetic, lang)}`, numeric: true },
  ],
  rows: all.map((c) => [divisionName(profile, c.code, lang), c.code, c.persons, c.personsSynthetic, c.entities, c.entitiesSynthetic]),
  rowHeaders: true,
  footer: [tr(M.total, lang), '', sum('persons'), sum('personsSynthetic'), sum('entities'), sum('entitiesSynthetic')],
  empty: tr(M.databaseUnreachable, lang),
})}</section>`;
}

function subsystemsSection(lang: Lang, subsystems: SubsystemWithStatus[]): Html {
  return html`<section aria-labelledby="subsystems"><h2 id="subsystems">${tr(M.subsystemsStatus, lang)}</h2>
${table({
  lang,
  caption: tr(M.subsystemsStatus, lang),
  captionHidden: true,
  columns: [{ label: tr(M.subsystem, lang) }, { label: tr(M.layer, lang), nowrap: true }, { label: tr(M.status, lang) }],
  rows: subsystems.map((s) => [tr(s.name, lang), tr(LAYERS.find((l) => l.id === s.layer)!.name, lang), statusBadge(s.status, lang)]),
  rowHeaders: true,
})}</section>`;
}

function departmentsSection(lang: Lang, profile: CityProfile): Html {
  return html`<section aria-labelledby="departments"><h2 id="departments">${tr(M.departments, lang)}</h2>
${table({
  lang,
  caption: tr(M.departments, lang),
  captionHidden: true,
  columns: [{ label: tr(M.code, lang), code: true }, { label: tr(M.name, lang) }, { label: tr(M.kind, lang), nowrap: true }, { label: tr(M.roles, lang) }],
  rows: profile.departments.map((d) => [d.code, nameOf(d, lang), tr(kindLabel(d.kind), lang), html`${(d.roles ?? []).map((r, i) => html`${i ? ', ' : ''}<code>${r}</code>`)}`]),
})}</section>`;
}

function networkSection(lang: Lang, profile: CityProfile): Html {
  const byId = new Map(profile.network.map((n) => [n.id, n]));
  return html`<section aria-labelledby="network"><h2 id="network">${tr(M.network, lang)}</h2>
<p>${tr(M.networkLead, lang)}</p>
${table({
  lang,
  caption: tr(M.network, lang),
  captionHidden: true,
  columns: [
    { label: tr(M.node, lang) },
    { label: tr(M.nodeId, lang), code: true },
    { label: tr(M.kind, lang), nowrap: true },
    { label: tr(M.division, lang), nowrap: true },
    { label: tr(M.upstream, lang) },
  ],
  rows: profile.network.map((n) => {
    const up = n.upstream ? byId.get(n.upstream) : undefined;
    return [nameOf(n, lang), n.id, tr(kindLabel(n.kind), lang), divisionName(profile, n.divisionCode, lang), up ? nameOf(up, lang) : '—'];
  }),
  rowHeaders: true,
})}</section>`;
}

/**
 * The console's work sections that other modules serve, each shown to those its action allows (and
 * only when the module that serves it is part of the platform: its action is then in the policy).
 */
const WORK_LINKS: { action: string; href: string; label: { zh: string; en: string } }[] = [
  { action: 'inbox:read', href: '/console/tasks', label: { zh: '我的待办', en: 'My tasks' } },
  { action: 'process-definition:read', href: '/console/workflow', label: { zh: '流程与效能', en: 'Processes and performance' } },
  { action: 'notice:list', href: '/console/notices', label: { zh: '通知发布', en: 'Notices' } },
  { action: 'certificate:read', href: '/console/ca', label: { zh: '数字证书管理', en: 'Certificates' } },
  { action: 'role:list', href: '/console/admin/roles', label: { zh: '角色授权', en: 'Role grants' } },
  { action: 'security-report:read', href: '/console/security', label: { zh: '安全自查报告', en: 'Security check report' } },
];

export function workLinks(policy: Pick<Policy, 'actions' | 'can'>, actor: Actor): typeof WORK_LINKS {
  return WORK_LINKS.filter((l) => policy.actions.has(l.action) && policy.can(actor, l.action));
}

export function consolePage(lang: Lang, profile: CityProfile, status: ConsoleStatus, subsystems: SubsystemWithStatus[], work: readonly { href: string; label: { zh: string; en: string } }[] = []): Html {
  return html`<h1>${tr(M.consoleHome, lang)}</h1>
<p class="lead">${tr(M.consoleLead, lang)}</p>
${work.length ? html`<nav aria-label="${lang === 'en' ? 'Work' : '工作入口'}"><ul class="link-list">${work.map((l) => html`<li><a href="${l.href}">${tr(l.label, lang)}</a></li>`)}</ul></nav>` : ''}
${notice({ kind: 'warning', body: tr(M.consoleAccessNotice, lang) })}
${statusSection(lang, status)}
${demoSection(lang, profile, status)}
${subsystemsSection(lang, subsystems)}
${departmentsSection(lang, profile)}
${networkSection(lang, profile)}`;
}

function internalRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  registerLanguageSwitch(app);
  app.get('/console', { schema: { hide: true }, config: { action: 'console-status:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const status = await readConsoleStatus(ctx.db);
    const items = [
      { href: '#status', label: tr(M.platformStatus, lang) },
      { href: '#demo', label: tr(M.demoCity, lang) },
      { href: '#counties', label: tr(M.countsByCounty, lang) },
      { href: '#subsystems', label: tr(M.subsystemsStatus, lang) },
      { href: '#departments', label: tr(M.departments, lang) },
      { href: '#network', label: tr(M.network, lang) },
    ];
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: tr(M.consoleHome, lang),
      localNav: { label: tr(M.localNav, lang), items },
      main: consolePage(lang, ctx.profile, status, subsystemsWithStatus(ctx.modules), workLinks(ctx.policy, req.actor)),
    });
  });
}

export const consoleModule: GusuModule = {
  name: 'console',
  // the workbench is for staff, on the internal face alone (政务网); anyone else is sent to sign in
  policies: allow('staff', 'read', 'console-status'),
  // the intranet (综合信息网) needs sign-in and permissions: not provided until identity exists
  provides: [],
  internalRoutes,
};
