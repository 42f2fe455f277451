// Console pages of the workflow engine (工作台, internal face):
//
//   GET  /console/tasks                              我的待办: the inbox, by due date; filter by process, overdue only
//   GET  /console/tasks/:id                          one task: what, for which instance, due, the history so far,
//                                                    and (for those who may complete it) the form
//   POST /console/tasks/:id/complete                 outcome, comment (CSRF) → the inbox with a notice
//   GET  /console/workflow                           流程与效能: every process with its measurements, by period
//   GET  /console/workflow/processes/:key            one process: versions, steps measured, definition
//                                                    downloads, recent instances, a form to start one
//   POST /console/workflow/processes/:key/start      business key, variables (CSRF) → the new instance
//   GET  /console/workflow/instances/:id             one instance: its whole history as a timeline, tasks, variables
//
// Plain HTML forms without script. Every change goes through the engine's functions (the same the
// JSON API and the CLI use), with the same policy checks; this file renders and maps form fields.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html, type Html } from '../../http/html.ts';
import { isLang, requestLang, tr, type Lang, type Text } from '../../http/i18n.ts';
import { figures, formatDateTime, formatNumber, notice, sendPage, table, type Crumb } from '../../http/layout.ts';
import { fill } from '../../http/messages.ts';
import { problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { field } from '../identity/oidc/pages.ts';
import { hasRole, type Actor } from '../identity/policy.ts';
import { roleById } from '../identity/roles.ts';
import { checkCsrf, csrfField, needsCsrf } from '../identity/sessions/csrf.ts';
import { workingDaysBetween, type WorkingCalendar } from './calendar.ts';
import { canWorkOn, completeTask, findDefinition, getTask, listDefinitions, startInstance, WorkflowError, type Engine, type TaskRow } from './engine.ts';
import { D, EVENTS, INSTANCE_STATUS, OUTCOMES, TASK_STATUS, W } from './messages.ts';
import { variableRef, type ProcessModel, type UserTaskNode } from './model.ts';
import { inbox, instanceDetail, listInstances, processMetrics, type HistoryEvent, type InstanceDetail, type StepMetrics } from './queries.ts';
import { readableInstance } from './routes.ts';

const TASKS = '/console/tasks';
const WORKFLOW = '/console/workflow';
const DEFAULT_PER_PAGE = 20;

// ---------------------------------------------------------------------------------------------
// Schemas: everything a browser (or anyone) can put in a URL or a form is bounded

const LangQ = Type.Optional(Type.String({ maxLength: 10 }));
const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });
const KEY_RE = '[a-z][a-z0-9-]*(\\.[a-z][a-z0-9-]*)*';
const Key = Type.String({ pattern: `^${KEY_RE}$`, maxLength: 100 });
const Page = Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 }));
const PerPage = Type.Optional(Type.Integer({ minimum: 1, maximum: 100 }));
/** free text from a form: no control characters but tab and line breaks (PostgreSQL text holds no NUL) */
const FreeText = (maxLength: number) => Type.Optional(Type.String({ maxLength, pattern: '^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$' }));
const Csrf = Type.Optional(Type.String({ maxLength: 200 }));

const InboxQuery = Type.Object({
  key: Type.Optional(Type.String({ pattern: `^(${KEY_RE})?$`, maxLength: 100 })),
  overdue: Type.Optional(Type.Enum(['', '1'])),
  page: Page,
  perPage: PerPage,
  done: Type.Optional(Uuid),
  lang: LangQ,
});
type InboxQuery = { key?: string; overdue?: '' | '1'; page?: number; perPage?: number; done?: string; lang?: string };
const IdParams = Type.Object({ id: Uuid });
const KeyParams = Type.Object({ key: Key });
const CompleteForm = Type.Object({ _csrf: Csrf, outcome: Type.Optional(Type.String({ maxLength: 32 })), comment: FreeText(2000) }, { additionalProperties: false });
const MetricsQuery = Type.Object({ since: Type.Optional(Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' })), lang: LangQ });
const ProcessQuery = Type.Object({ page: Page, lang: LangQ });
const InstanceQuery = Type.Object({ done: Type.Optional(Type.Enum(['started'])), lang: LangQ });
// variables arrive as v_<name>: a bounded number of short strings
const StartForm = Type.Object(
  { _csrf: Csrf, businessKey: FreeText(200), idem: Type.Optional(Uuid) },
  { additionalProperties: Type.String({ maxLength: 200 }), maxProperties: 40 },
);

function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

// ---------------------------------------------------------------------------------------------
// Formatting

const NUMBER_1: Record<Lang, Intl.NumberFormat> = {
  'zh-CN': new Intl.NumberFormat('zh-CN', { maximumFractionDigits: 1, minimumFractionDigits: 1 }),
  en: new Intl.NumberFormat('en-GB', { maximumFractionDigits: 1, minimumFractionDigits: 1 }),
};
const PERCENT: Record<Lang, Intl.NumberFormat> = {
  'zh-CN': new Intl.NumberFormat('zh-CN', { style: 'percent', maximumFractionDigits: 1 }),
  en: new Intl.NumberFormat('en-GB', { style: 'percent', maximumFractionDigits: 1 }),
};

/** A duration in minutes for people: 45 分钟, 3.2 小时, 4.5 天 (45 min, 3.2 h, 4.5 d). */
export function humanDuration(minutes: number | null | undefined, lang: Lang): string {
  if (minutes === null || minutes === undefined || !Number.isFinite(minutes) || minutes < 0) return '—';
  const en = lang === 'en';
  if (minutes < 1) return en ? '< 1 min' : '不足 1 分钟';
  if (minutes < 60) return en ? `${Math.round(minutes)} min` : `${Math.round(minutes)} 分钟`;
  const hours = minutes / 60;
  if (hours < 48) return en ? `${NUMBER_1[lang].format(hours)} h` : `${NUMBER_1[lang].format(hours)} 小时`;
  const days = hours / 24;
  return en ? `${NUMBER_1[lang].format(days)} d` : `${NUMBER_1[lang].format(days)} 天`;
}

export function percent(rate: number | null | undefined, lang: Lang): string {
  return rate === null || rate === undefined || !Number.isFinite(rate) ? '—' : PERCENT[lang].format(rate);
}

const minutesBetween = (a: Date, b: Date) => (b.getTime() - a.getTime()) / 60_000;
const outcomeLabel = (o: string | null | undefined, lang: Lang) => (o ? (OUTCOMES[o] ? tr(OUTCOMES[o]!, lang) : o) : '—');

function badge(kind: 'ok' | 'problem' | 'planned', text: string): Html {
  return html`<span class="badge badge-${kind}">${text}</span>`;
}

function instanceBadge(status: string, lang: Lang): Html {
  const t = INSTANCE_STATUS[status];
  return badge(status === 'completed' ? 'ok' : status === 'terminated' ? 'problem' : 'planned', t ? tr(t, lang) : status);
}

function taskBadge(status: string, lang: Lang): Html {
  const t = TASK_STATUS[status];
  return badge(status === 'completed' ? 'ok' : status === 'cancelled' ? 'problem' : 'planned', t ? tr(t, lang) : status);
}

/** a value of any shape, as short text (escaped by the html tag when rendered) */
function showValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s === undefined ? '' : s.length > 500 ? `${s.slice(0, 500)}…` : s;
}

function withLang(href: string, lang: string | undefined): string {
  if (!isLang(lang)) return href;
  return `${href}${href.includes('?') ? '&' : '?'}lang=${encodeURIComponent(lang)}`;
}

// ---------------------------------------------------------------------------------------------

export function workflowPages(app: FastifyInstance, ctx: ModuleContext, engine: () => Engine): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  const T = (text: Text, lang: Lang, values?: Record<string, string | number>) => (values ? fill(tr(text, lang), values) : tr(text, lang));
  const deptName = (code: string | null | undefined, lang: Lang, short = true): string => {
    if (!code) return '—';
    const d = departments.get(code);
    return d ? (lang === 'en' ? d.nameEn : short ? d.abbr : d.name) : code;
  };
  const roleName = (id: string | null | undefined, lang: Lang): string => (id ? (roleById(id) ? tr(roleById(id)!.name, lang) : id) : '');
  const crumbs = (lang: Lang, ...rest: Crumb[]): Crumb[] => [{ label: T(W.workbench, lang), href: '/console' }, ...rest];

  // a definition's model per key and version (a deployed version never changes)
  const models = new Map<string, ProcessModel>();
  async function modelOf(key: string, version: number): Promise<ProcessModel | null> {
    const id = `${key}@${version}`;
    let m = models.get(id);
    if (!m) {
      const { rows } = await ctx.db.query<{ model: ProcessModel }>('select model from workflow.definition where key = $1 and version = $2', [key, version]);
      if (!rows[0]) return null;
      m = rows[0].model;
      if (models.size > 500) models.clear();
      models.set(id, m);
    }
    return m;
  }
  const nodeName = (model: ProcessModel | null, id: string | null, lang: Lang): string => {
    if (!id) return '';
    const n = model?.nodes.find((x) => x.id === id);
    return n?.name ? tr(n.name, lang) : '';
  };

  /** names of the people behind actor ids ('staff:<account id>'), from the accounts and the tasks they completed */
  async function actorNames(ids: Iterable<string | null>, tasks: readonly TaskRow[] = []): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const t of tasks) if (t.completedBy && t.completedByName) names.set(t.completedBy, t.completedByName);
    const wanted = [...new Set([...ids].filter((x): x is string => !!x && /^staff:[0-9a-f-]{36}$/i.test(x) && !names.has(x)))].map((x) => x.slice(6));
    if (wanted.length) {
      try {
        const { rows } = await ctx.db.query<{ id: string; name: string }>('select id, name from identity.account where id = any($1::uuid[])', [wanted]);
        for (const r of rows) names.set(`staff:${r.id}`, r.name);
      } catch {
        // no identity module in this platform: the ids are shown as they are
      }
    }
    return names;
  }
  const whoLabel = (actor: string | null, names: Map<string, string>, lang: Lang): string => {
    if (!actor) return '—';
    const n = names.get(actor);
    if (n) return n;
    if (actor.startsWith('system:')) return `${T(D.system, lang)} (${actor.slice(7)})`;
    return actor;
  };

  function assignee(t: Pick<TaskRow, 'department' | 'role' | 'person'>, lang: Lang, names?: Map<string, string>): string {
    if (t.person) return names?.get(`staff:${t.person}`) ?? t.person;
    const role = roleName(t.role, lang);
    return role ? `${deptName(t.department, lang)} · ${role}` : deptName(t.department, lang);
  }

  function dueCell(t: TaskRow, now: Date, cal: WorkingCalendar, lang: Lang): Html {
    if (!t.dueAt) return html`<span class="muted">${T(W.noDeadline, lang)}</span>`;
    const when = html`<time datetime="${t.dueAt.toISOString()}">${formatDateTime(t.dueAt, lang)}</time>`;
    if (t.status !== 'open') return when;
    if (t.dueAt < now) {
      const late = workingDaysBetween(cal, t.dueAt, now);
      const text = late <= 0 ? T(W.overdueToday, lang) : late === 1 ? T(W.overdueBy1, lang) : T(W.overdueBy, lang, { n: late });
      return html`${badge('problem', T(W.overdue, lang))} ${when}<br><span class="muted">${text}</span>`;
    }
    const left = workingDaysBetween(cal, now, t.dueAt);
    const text = left <= 0 ? T(W.dueToday, lang) : left === 1 ? T(W.daysLeft1, lang) : T(W.daysLeft, lang, { n: left });
    return html`${when}<br><span class="muted">${text}</span>`;
  }

  function stateCell(t: TaskRow, lang: Lang): Html {
    const marks: Html[] = [];
    if (t.status !== 'open') marks.push(taskBadge(t.status, lang));
    if (t.escalatedAt) marks.push(html`<span class="badge badge-problem" title="${T(W.escalatedTo, lang, { role: roleName(t.escalatedTo, lang) })}">${T(W.escalated, lang)}</span>`);
    if (t.remindedAt && t.status === 'open') marks.push(badge('planned', T(W.reminded, lang)));
    return marks.length ? html`${marks.map((m, i) => html`${i ? ' ' : ''}${m}`)}` : html`${taskBadge(t.status, lang)}`;
  }

  function pager(lang: Lang, page: number, pages: number, href: (p: number) => string): Html {
    if (pages <= 1 && page <= 1) return html``;
    return html`<nav aria-label="${T(W.pagination, lang)}"><p class="form-inline">${
      page > 1 ? html`<a class="button button-secondary button-small" href="${href(Math.min(page - 1, pages))}" rel="prev">${T(W.previous, lang)}</a> ` : ''
    }${page < pages ? html`<a class="button button-secondary button-small" href="${href(page + 1)}" rel="next">${T(W.next, lang)}</a>` : ''}</p></nav>`;
  }

  function beyond(lang: Lang, page: number, pages: number, href: (p: number) => string): Html | string {
    return page > pages ? notice({ kind: 'warning', body: html`<p>${T(W.beyondLast, lang, { page, pages })} <a href="${href(pages)}">${T(W.lastPage, lang)}</a></p>` }) : '';
  }

  function option(value: string, label: string, selected: boolean): Html {
    return html`<option value="${value}"${selected ? html` selected` : ''}>${label}</option>`;
  }

  function selectField(o: { name: string; label: string; options: Html[]; hint?: string; error?: string; required?: boolean }): Html {
    const id = `f-${o.name}`;
    const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
    return html`<div class="field${o.error ? ' field-invalid' : ''}">
<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="field-hint" id="${id}-hint">${o.hint}</p>` : ''}
${o.error ? html`<p class="field-error" id="${id}-error">${o.error}</p>` : ''}
<select id="${id}" name="${o.name}"${o.required ? html` required` : ''}${described ? html` aria-describedby="${described}"` : ''}${o.error ? html` aria-invalid="true"` : ''}>${o.options}</select>
</div>`;
  }

  /** the history of an instance as an ordered list, oldest first */
  function timeline(events: readonly HistoryEvent[], model: ProcessModel | null, names: Map<string, string>, lang: Lang): Html {
    const sep = lang === 'en' ? '; ' : '；';
    const items = events.map((e) => {
      const d = (e.details ?? {}) as Record<string, unknown>;
      const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : null);
      const parts: string[] = [];
      switch (e.kind) {
        case 'instance.started':
          if (typeof d.version === 'number') parts.push(T(D.version, lang, { version: d.version }));
          if (str('businessKey')) parts.push(T(D.businessKey, lang, { key: str('businessKey')! }));
          break;
        case 'task.created': {
          parts.push(T(D.assignedTo, lang, { who: assignee({ department: str('department'), role: str('role'), person: str('person') }, lang, names) }));
          const due = str('dueAt');
          if (due) parts.push(T(D.dueAt, lang, { at: formatDateTime(due, lang) }));
          break;
        }
        case 'task.completed':
          if (str('outcome')) parts.push(T(D.outcome, lang, { outcome: outcomeLabel(str('outcome'), lang) }));
          if (str('comment')) parts.push(T(D.comment, lang, { comment: showValue(str('comment')) }));
          break;
        case 'countersign.done':
          parts.push(T(D.tally, lang, { completed: Number(d.completed ?? 0), of: Number(d.of ?? 0), outcome: outcomeLabel(str('outcome'), lang) }) + (d.vetoed ? T(D.vetoed, lang) : ''));
          break;
        case 'gateway.taken': {
          const flow = model?.flows.find((f) => f.id === d.flow);
          const label = flow?.name ? tr(flow.name, lang) : flow ? nodeName(model, flow.to, lang) || flow.to : String(d.flow ?? '');
          parts.push(T(D.flow, lang, { flow: label }));
          break;
        }
        case 'gateway.joined':
          parts.push(T(D.joined, lang, { n: Number(d.tokens ?? 0) }));
          break;
        case 'task.escalated':
          parts.push(T(D.escalatedTo, lang, { role: roleName(str('to'), lang) }));
          break;
        case 'task.reminded':
          if (str('dueAt')) parts.push(T(D.dueAt, lang, { at: formatDateTime(str('dueAt')!, lang) }));
          break;
        case 'instance.terminated':
          if (str('reason')) parts.push(T(D.reason, lang, { reason: showValue(str('reason')) }));
          break;
        case 'service.failed':
          if (str('error')) parts.push(T(D.error, lang, { error: showValue(str('error')) }));
          break;
        case 'service.completed':
          if (Array.isArray(d.variables) && d.variables.length) parts.push(T(D.variables, lang, { names: d.variables.slice(0, 20).join(', ') }));
          break;
      }
      const kind = EVENTS[e.kind] ? tr(EVENTS[e.kind]!, lang) : e.kind;
      const step = nodeName(model, e.nodeId, lang);
      const at = new Date(e.at);
      return html`<li class="timeline-item${e.kind === 'task.escalated' || e.kind === 'service.failed' || e.kind === 'instance.terminated' ? ' timeline-alert' : e.kind === 'instance.completed' ? ' timeline-done' : ''}">
<p class="timeline-head"><strong>${kind}</strong>${step ? html` · ${step}` : ''}</p>
<p class="timeline-meta"><time datetime="${at.toISOString()}">${formatDateTime(at, lang)}</time> · ${whoLabel(e.actor, names, lang)}</p>
${parts.length ? html`<p class="timeline-detail">${parts.join(sep)}</p>` : ''}
</li>`;
    });
    return html`<ol class="timeline">${items}</ol>`;
  }

  // -------------------------------------------------------------------------------------------
  // 我的待办

  function inboxHref(q: InboxQuery, page: number): string {
    const p = new URLSearchParams();
    if (q.key) p.set('key', q.key);
    if (q.overdue) p.set('overdue', '1');
    if (q.perPage && q.perPage !== DEFAULT_PER_PAGE) p.set('perPage', String(q.perPage));
    if (page > 1) p.set('page', String(page));
    if (isLang(q.lang)) p.set('lang', q.lang);
    const qs = p.toString();
    return qs ? `${TASKS}?${qs}` : TASKS;
  }

  s.get(TASKS, { schema: { hide: true, querystring: InboxQuery }, config: { action: 'inbox:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query as InboxQuery;
    const perPage = q.perPage ?? DEFAULT_PER_PAGE;
    const page = q.page ?? 1;
    const [found, defs] = await Promise.all([inbox(ctx.db, req.actor, { page, perPage, key: q.key || undefined, overdueOnly: q.overdue === '1' }), listDefinitions(ctx.db)]);
    const procName = new Map(defs.map((d) => [d.key, d.name]));
    const pages = Math.max(1, Math.ceil(found.total / perPage));
    const now = new Date();
    const cal = engine().calendar;

    let done: Html | string = '';
    if (q.done) {
      const t = await getTask(ctx.db, q.done);
      // only the person who completed it is told (the notice names the case)
      if (t && t.status === 'completed' && req.actor.kind === 'staff' && t.completedBy === `staff:${req.actor.accountId}`) {
        const values = { step: tr(t.name, lang), key: t.businessKey ?? '—', outcome: outcomeLabel(t.outcome, lang) };
        done = notice({ body: html`<p role="status">${T(t.outcome ? W.doneCompleted : W.doneCompletedNoOutcome, lang, values)} <a href="${withLang(`${WORKFLOW}/instances/${t.instanceId}`, q.lang)}">${T(W.viewInstance, lang)}</a></p>` });
      }
    }

    // the step, when it is due and its state first: what a phone shows before the table scrolls sideways
    const rows = found.items.map((t) => [
      html`<a href="${withLang(`${TASKS}/${t.id}`, q.lang)}">${tr(t.name, lang)}</a>`,
      dueCell(t, now, cal, lang),
      stateCell(t, lang),
      procName.has(t.key) ? tr(procName.get(t.key)!, lang) : t.key,
      t.businessKey ?? '—',
      assignee(t, lang),
      html`<time datetime="${t.createdAt.toISOString()}">${formatDateTime(t.createdAt, lang)}</time>`,
    ]);
    const filtering = Boolean(q.key || q.overdue);
    const filters = html`<h2 id="filter">${T(W.filterHeading, lang)}</h2>
<form class="form" method="get" action="${TASKS}" aria-labelledby="filter">
${isLang(q.lang) ? html`<input type="hidden" name="lang" value="${q.lang}">` : ''}
${selectField({ name: 'key', label: T(W.process, lang), options: [option('', T(W.allProcesses, lang), !q.key), ...defs.map((d) => option(d.key, tr(d.name, lang), q.key === d.key))] })}
<fieldset><legend class="visually-hidden">${T(W.overdue, lang)}</legend><label><input type="checkbox" name="overdue" value="1"${q.overdue ? html` checked` : ''}> ${T(W.overdueOnly, lang)}</label></fieldset>
<p class="form-inline"><button class="button" type="submit">${T(W.apply, lang)}</button>${filtering ? html` <a class="button button-secondary" href="${withLang(TASKS, q.lang)}">${T(W.clear, lang)}</a>` : ''}</p>
</form>`;

    reply.header('cache-control', 'no-store');
    const title = T(W.inboxTitle, lang);
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(W.inboxLead, lang)}</p>
${done}
${filters}
<h2 id="list">${T(W.inboxCaption, lang)}</h2>
<p>${T(W.inboxCount, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, (p) => inboxHref(q, p))}
${table({
  lang,
  caption: T(W.inboxCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(W.step, lang), nowrap: true },
    { label: T(W.due, lang), nowrap: true },
    { label: T(W.state, lang), nowrap: true },
    { label: T(W.process, lang), nowrap: true },
    { label: T(W.businessKey, lang), code: true },
    { label: T(W.assignedTo, lang), nowrap: true },
    { label: T(W.created, lang), nowrap: true },
  ],
  rows,
  empty: T(filtering ? W.inboxNoneFiltered : W.inboxNone, lang),
})}
${pager(lang, page, pages, (p) => inboxHref(q, p))}
<p><a href="${withLang(WORKFLOW, q.lang)}">${T(W.workflowTitle, lang)}</a></p>`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // One task

  interface TaskView {
    task: TaskRow;
    detail: InstanceDetail;
    error?: { code: WorkflowError['code']; message: string };
    values?: { outcome?: string; comment?: string };
  }

  async function loadTask(req: FastifyRequest, id: string): Promise<{ task: TaskRow; detail: InstanceDetail }> {
    const task = await getTask(ctx.db, id);
    if (!task) throw problem('not-found', `no task ${id}`);
    // one who may complete it reads it; anyone else needs to be able to read its instance
    if (canWorkOn(req.actor, task)) {
      const detail = await instanceDetail(ctx.db, task.instanceId);
      if (!detail) throw problem('not-found', `no process instance ${task.instanceId}`);
      return { task, detail };
    }
    return { task, detail: await readableInstance(ctx, req, task.instanceId) };
  }

  async function taskPage(req: FastifyRequest, reply: FastifyReply, v: TaskView) {
    const lang = requestLang(req);
    const ql = (req.query as { lang?: string } | undefined)?.lang;
    const { task: t, detail } = v;
    const model = await modelOf(t.key, t.version);
    const node = model?.nodes.find((n): n is UserTaskNode => n.id === t.nodeId && n.type === 'userTask') ?? null;
    const outcomes = node?.outcomes ?? [];
    const names = await actorNames([detail.startedBy, ...detail.history.map((e) => e.actor), ...(t.person ? [`staff:${t.person}`] : [])], detail.tasks);
    const may = t.status === 'open' && detail.status === 'running' && ctx.policy.can(req.actor, 'task:complete', t);
    const now = new Date();
    const cal = engine().calendar;
    const title = tr(t.name, lang);

    const rows: [string, Html | string][] = [
      [T(W.process, lang), html`<a href="${withLang(`${WORKFLOW}/processes/${t.key}`, ql)}">${tr(detail.name, lang)}</a> <span class="muted">(${T(W.version, lang)} ${t.version})</span>`],
      [T(W.businessKey, lang), t.businessKey ?? '—'],
      [T(W.instance, lang), html`<a href="${withLang(`${WORKFLOW}/instances/${t.instanceId}`, ql)}"><span class="request-id">${t.instanceId}</span></a> ${instanceBadge(detail.status, lang)}`],
      [T(W.department, lang), deptName(t.department, lang, false)],
    ];
    if (t.role) rows.push([T(W.role, lang), roleName(t.role, lang)]);
    if (t.person) rows.push([T(W.person, lang), names.get(`staff:${t.person}`) ?? t.person]);
    if (t.countersignIndex !== null) rows.push([T(W.countersign, lang), T(W.countersignOf, lang, { n: t.countersignIndex + 1 })]);
    rows.push(
      [T(W.status, lang), stateCell(t, lang)],
      [T(W.created, lang), formatDateTime(t.createdAt, lang)],
      [T(W.due, lang), dueCell(t, now, cal, lang)],
    );
    if (t.escalatedAt) rows.push([T(W.escalated, lang), `${formatDateTime(t.escalatedAt, lang)} · ${T(W.escalatedTo, lang, { role: roleName(t.escalatedTo, lang) })}`]);
    if (t.status === 'completed') {
      rows.push(
        [T(W.completedAt, lang), t.completedAt ? formatDateTime(t.completedAt, lang) : '—'],
        [T(W.completedBy, lang), t.completedByName ?? whoLabel(t.completedBy, names, lang)],
        [T(W.outcome, lang), outcomeLabel(t.outcome, lang)],
      );
      if (t.comment) rows.push([T(W.comment, lang), t.comment]);
    }

    let error: Html | string = '';
    if (v.error) {
      const text = v.error.code === 'conflict' ? W.errorConflict : v.error.code === 'not-found' ? W.errorNotFound : W.errorInvalid;
      error = html`<div class="notice notice-warning error-summary" role="alert"><p class="notice-title">${T(W.errorTitle, lang)}</p><p>${T(text, lang, { detail: v.error.message })}</p></div>`;
    }

    let form: Html | string = '';
    if (may) {
      const chosen = v.values?.outcome;
      const outcomeError = v.error?.code === 'invalid' && /outcome/.test(v.error.message);
      form = html`<h2 id="complete">${T(W.completeHeading, lang)}</h2>
<form class="form" method="post" action="${withLang(`${TASKS}/${t.id}/complete`, ql)}" aria-labelledby="complete">
${csrfField(ctx, req, reply)}
${
  outcomes.length
    ? html`<fieldset${outcomeError ? html` aria-describedby="f-outcome-error"` : ''}><legend>${T(W.outcome, lang)}</legend>
${outcomeError ? html`<p class="field-error" id="f-outcome-error">${T(W.chooseOutcome, lang)}</p>` : ''}
${outcomes.map((o, i) => html`<label><input type="radio" name="outcome" value="${o}"${i === 0 ? html` id="f-outcome"` : ''}${chosen === o ? html` checked` : ''} required> ${outcomeLabel(o, lang)}</label>`)}
</fieldset>`
    : html`<p class="field-hint">${T(W.completeNoOutcome, lang)}</p>`
}
${field({ name: 'comment', label: W.comment, type: 'textarea', hint: W.commentHint, maxlength: 2000, required: false, value: v.values?.comment }, lang)}
<p class="actions"><button class="button" type="submit">${T(W.completeSubmit, lang)}</button></p>
</form>`;
    } else if (t.status === 'open' && detail.status === 'running') {
      form = notice({ body: T(W.notYours, lang) });
    } else if (t.status !== 'completed') {
      form = notice({ body: T(W.notOpen, lang) });
    }

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, { label: T(W.inboxTitle, lang), href: withLang(TASKS, ql) }, { label: title }),
      main: html`<h1>${title} <span class="muted">· ${tr(detail.name, lang)}</span></h1>
${error}
${table({ lang, caption: T(W.taskDetails, lang), rowHeaders: true, columns: [{ label: T(W.item, lang), nowrap: true }, { label: T(W.value, lang) }], rows })}
${form}
<h2 id="history">${T(W.historyHeading, lang)}</h2>
<p class="visually-hidden">${T(W.historyOf, lang)}</p>
${timeline(detail.history, model, names, lang)}
<p><a href="${withLang(TASKS, ql)}">${T(W.backToInbox, lang)}</a> · <a href="${withLang(`${WORKFLOW}/instances/${t.instanceId}`, ql)}">${T(W.viewInstance, lang)}</a></p>`,
    });
  }

  s.get(`${TASKS}/:id`, { schema: { hide: true, params: IdParams, querystring: Type.Object({ lang: LangQ }) }, config: { action: 'inbox:read' } }, async (req, reply) => {
    const { task, detail } = await loadTask(req, req.params.id);
    return taskPage(req, reply, { task, detail });
  });

  s.post(`${TASKS}/:id/complete`, { schema: { hide: true, params: IdParams, body: CompleteForm }, config: { action: 'task:complete' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const id = req.params.id;
    const outcome = req.body.outcome?.trim() || undefined;
    const comment = req.body.comment?.trim() || undefined;
    const ql = (req.query as { lang?: string } | undefined)?.lang;
    try {
      await completeTask(engine(), { taskId: id, outcome, comment }, req.actor, { authorize: (t) => ctx.policy.authorize(req.actor, 'task:complete', t) });
      return reply.redirect(withLang(`${TASKS}?done=${id}`, ql), 303);
    } catch (err) {
      // not one's task: 403 (the policy's problem); anything the engine refused: the page again, saying why
      if (!(err instanceof WorkflowError) || err.code === 'forbidden') throw err;
      const { task, detail } = await loadTask(req, id);
      reply.code(err.code === 'conflict' ? 409 : err.code === 'not-found' ? 404 : 400);
      return taskPage(req, reply, { task, detail, error: { code: err.code, message: err.message }, values: { outcome, comment } });
    }
  });

  // -------------------------------------------------------------------------------------------
  // 流程与效能

  s.get(WORKFLOW, { schema: { hide: true, querystring: MetricsQuery }, config: { action: 'process-metrics:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const q = req.query;
    let since: Date | undefined;
    if (q.since) {
      if (!isRealDate(q.since)) throw problem('validation', `since: ${JSON.stringify(q.since)} is not a date`, { errors: [{ in: 'querystring', pointer: '/since', message: 'expected a date YYYY-MM-DD' }] });
      // the day begins in the city's time zone (as the JSON API counts it)
      since = new Date(`${q.since}T00:00:00+08:00`);
    }
    const [defs, metrics] = await Promise.all([listDefinitions(ctx.db), processMetrics(ctx.db, { since })]);
    const byKey = new Map(metrics.map((m) => [m.key, m]));
    const rows = defs.map((d) => {
      const m = byKey.get(d.key);
      return [
        html`<a href="${withLang(`${WORKFLOW}/processes/${d.key}`, q.lang)}">${tr(d.name, lang)}</a><br><code>${d.key}</code>`,
        d.running,
        m?.instances ?? 0,
        m?.completed ?? 0,
        humanDuration(m?.medianMinutes, lang),
        humanDuration(m?.p90Minutes, lang),
        percent(m?.overdueRate, lang),
        deptName(d.owner, lang),
        d.version,
        d.versions,
      ];
    });
    const day = (offset: number) => new Date(Date.now() + 8 * 3600_000 - offset * 86_400_000).toISOString().slice(0, 10);
    const periodHref = (since?: string) => withLang(since ? `${WORKFLOW}?since=${since}` : WORKFLOW, q.lang);
    const totals = { running: defs.reduce((n, d) => n + d.running, 0), instances: metrics.reduce((n, m) => n + m.instances, 0) };
    const title = T(W.workflowTitle, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, { label: title }),
      main: html`<h1>${title}</h1>
<p class="lead">${T(W.workflowLead, lang)}</p>
${figures(
  [
    { label: T(W.processes, lang), value: defs.length },
    { label: T(W.running, lang), value: totals.running },
    { label: T(W.instances, lang), value: totals.instances },
  ],
  lang,
)}
<h2 id="period">${T(W.periodHeading, lang)}</h2>
<form class="form" method="get" action="${WORKFLOW}" aria-labelledby="period">
${isLang(q.lang) ? html`<input type="hidden" name="lang" value="${q.lang}">` : ''}
<div class="field"><label for="f-since">${T(W.since, lang)}</label><p class="field-hint" id="f-since-hint">${T(W.sinceHint, lang)}</p><input type="date" id="f-since" name="since" value="${q.since ?? ''}" aria-describedby="f-since-hint"></div>
<p class="form-inline"><button class="button" type="submit">${T(W.apply, lang)}</button></p>
<p><a href="${periodHref(day(30))}">${T(W.period30, lang)}</a> · <a href="${periodHref(day(90))}">${T(W.period90, lang)}</a> · <a href="${periodHref()}">${T(W.periodAll, lang)}</a></p>
</form>
<h2 id="processes">${T(W.processesCaption, lang)}</h2>
<p>${q.since ? T(W.periodSince, lang, { date: q.since }) : T(W.periodAllNote, lang)}</p>
${table({
  lang,
  caption: T(W.processesCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(W.process, lang) },
    { label: T(W.running, lang), numeric: true },
    { label: T(W.instances, lang), numeric: true },
    { label: T(W.completed, lang), numeric: true },
    { label: T(W.median, lang), numeric: true },
    { label: T(W.p90, lang), numeric: true },
    { label: T(W.overdueRate, lang), numeric: true },
    { label: T(W.owner, lang), nowrap: true },
    { label: T(W.latestVersion, lang), numeric: true },
    { label: T(W.versions, lang), numeric: true },
  ],
  rows,
  empty: T(W.noProcesses, lang),
})}
<p class="muted">${T(W.metricsNote, lang)}</p>
<p><a href="${withLang(TASKS, q.lang)}">${T(W.inboxTitle, lang)}</a></p>`,
    });
  });

  // -------------------------------------------------------------------------------------------
  // One process

  /** the ${variables} a model's assignees name: department ones get a department list, person ones a text field */
  function assigneeVariables(model: ProcessModel): { name: string; kind: 'department' | 'person' }[] {
    const out = new Map<string, 'department' | 'person'>();
    for (const n of model.nodes) {
      if (n.type !== 'userTask') continue;
      for (const a of n.countersign ? n.countersign.assignees : n.assignee ? [n.assignee] : []) {
        const d = variableRef(a.department);
        if (d && !out.has(d)) out.set(d, 'department');
        const p = variableRef(a.person);
        if (p && !out.has(p)) out.set(p, 'person');
      }
    }
    return [...out].map(([name, kind]) => ({ name, kind }));
  }

  const seesAllInstances = (a: Actor) => a.kind === 'system' || hasRole(a, 'platform-admin') || hasRole(a, 'security-officer');

  async function processPage(req: FastifyRequest, reply: FastifyReply, key: string, opts: { page?: number; error?: string; values?: Record<string, string> } = {}) {
    const lang = requestLang(req);
    const ql = (req.query as { lang?: string } | undefined)?.lang;
    const def = await findDefinition(ctx.db, key);
    if (!def) throw problem('not-found', `no process definition ${key}`);
    const model = (await modelOf(def.key, def.version))!;
    const page = opts.page ?? 1;
    const all = seesAllInstances(req.actor);
    const department = req.actor.kind === 'staff' ? req.actor.department : null;
    const [versions, metrics, found] = await Promise.all([
      ctx.db.query<{ version: number; deployedAt: Date; deployedBy: string; source: string; checksum: string }>(
        `select version, deployed_at as "deployedAt", deployed_by as "deployedBy", source, checksum from workflow.definition where key = $1 order by version desc limit 50`,
        [key],
      ),
      processMetrics(ctx.db, { key }),
      listInstances(ctx.db, { key, department: all ? null : (department ?? '-'), page, perPage: DEFAULT_PER_PAGE }),
    ]);
    const m = metrics[0];
    const pages = Math.max(1, Math.ceil(found.total / found.perPage));
    const names = await actorNames([...versions.rows.map((v) => v.deployedBy), ...found.items.map((i) => i.startedBy)]);

    // every user task of the latest version, then any step only older versions had
    const measured = new Map((m?.steps ?? []).map((st) => [st.nodeId, st]));
    const steps: StepMetrics[] = model.nodes
      .filter((n): n is UserTaskNode => n.type === 'userTask')
      .map((n) => measured.get(n.id) ?? { nodeId: n.id, name: n.name, tasks: 0, completed: 0, open: 0, medianMinutes: null, p90Minutes: null, overdueRate: null });
    for (const st of m?.steps ?? []) if (!steps.some((x) => x.nodeId === st.nodeId)) steps.push(st);

    const vars = assigneeVariables(model);
    const canStart = ctx.policy.can(req.actor, 'process-instance:start');
    const values = opts.values ?? {};
    const startForm = canStart
      ? html`<h2 id="start">${T(W.startHeading, lang)}</h2>
${opts.error ? html`<div class="notice notice-warning error-summary" role="alert"><p class="notice-title">${T(W.errorTitle, lang)}</p><p>${T(W.errorStart, lang, { detail: opts.error })}</p></div>` : ''}
<form class="form" method="post" action="${withLang(`${WORKFLOW}/processes/${key}/start`, ql)}" aria-labelledby="start">
${csrfField(ctx, req, reply)}
<input type="hidden" name="idem" value="${randomUUID()}">
<p class="field-hint">${T(W.startLead, lang, { department: deptName(department, lang, false) })}</p>
${field({ name: 'businessKey', label: W.businessKey, hint: W.businessKeyHint, maxlength: 200, required: false, value: values.businessKey }, lang)}
${vars.map((v) =>
  v.kind === 'department'
    ? selectField({
        name: `v_${v.name}`,
        label: v.name === 'leadDepartment' ? (lang === 'en' ? 'Lead department' : '牵头部门') : v.name,
        hint: T(W.variableHint, lang, { name: v.name }),
        required: true,
        options: [option('', T(W.chooseDepartment, lang), !values[`v_${v.name}`]), ...ctx.profile.departments.map((d) => option(d.code, `${lang === 'en' ? d.nameEn : d.name} (${d.code})`, values[`v_${v.name}`] === d.code))],
      })
    : field({ name: `v_${v.name}`, label: { zh: v.name, en: v.name }, hint: { zh: fill(W.variableHint.zh, { name: v.name }), en: fill(W.variableHint.en, { name: v.name }) }, maxlength: 100, value: values[`v_${v.name}`] }, lang),
)}
<p class="actions"><button class="button" type="submit">${T(W.startSubmit, lang)}</button></p>
</form>`
      : '';

    const instanceRows = found.items.map((i) => [
      html`<a href="${withLang(`${WORKFLOW}/instances/${i.id}`, ql)}">${i.businessKey ?? i.id.slice(0, 8)}</a>`,
      instanceBadge(i.status, lang),
      i.version,
      deptName(i.department, lang),
      whoLabel(i.startedBy, names, lang),
      html`<time datetime="${i.startedAt.toISOString()}">${formatDateTime(i.startedAt, lang)}</time>`,
      i.endedAt ? formatDateTime(i.endedAt, lang) : '—',
      humanDuration(minutesBetween(i.startedAt, i.endedAt ?? new Date()), lang),
    ]);
    const instancesHref = (p: number) => withLang(`${WORKFLOW}/processes/${key}${p > 1 ? `?page=${p}` : ''}`, ql);
    const title = tr(def.name, lang);
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, { label: T(W.workflowTitle, lang), href: withLang(WORKFLOW, ql) }, { label: title }),
      localNav: {
        label: title,
        items: [
          { href: '#measures', label: T(W.stepsHeading, lang) },
          { href: '#definition', label: T(W.downloadsHeading, lang) },
          { href: '#versions', label: T(W.versionsHeading, lang) },
          { href: '#instances', label: T(W.instancesHeading, lang) },
          ...(canStart ? [{ href: '#start', label: T(W.startHeading, lang) }] : []),
        ],
      },
      main: html`<h1>${title}</h1>
<p class="lead">${model.description ? tr(model.description, lang) : ''}</p>
<p>${T(W.processLead, lang, { key: def.key, owner: deptName(def.owner, lang, false) })}</p>
${figures(
  [
    { label: T(W.instances, lang), value: m?.instances ?? 0 },
    { label: T(W.running, lang), value: m?.running ?? 0 },
    { label: T(W.median, lang), value: humanDuration(m?.medianMinutes, lang) },
    { label: T(W.p90, lang), value: humanDuration(m?.p90Minutes, lang) },
    { label: T(W.overdueRate, lang), value: percent(m?.overdueRate, lang) },
  ],
  lang,
)}
<h2 id="measures">${T(W.stepsHeading, lang)}</h2>
${table({
  lang,
  caption: T(W.stepsCaption, lang),
  rowHeaders: true,
  columns: [
    { label: T(W.step, lang) },
    { label: T(W.tasks, lang), numeric: true },
    { label: T(W.open, lang), numeric: true },
    { label: T(W.completed, lang), numeric: true },
    { label: T(W.median, lang), numeric: true },
    { label: T(W.p90, lang), numeric: true },
    { label: T(W.overdueRate, lang), numeric: true },
  ],
  rows: steps.map((st) => [html`<span class="cell-wide">${tr(st.name, lang)}</span>`, st.tasks, st.open, st.completed, humanDuration(st.medianMinutes, lang), humanDuration(st.p90Minutes, lang), percent(st.overdueRate, lang)]),
  empty: T(W.noSteps, lang),
})}
<h2 id="definition">${T(W.downloadsHeading, lang)}</h2>
<ul class="link-list">
<li><a href="/api/v1/workflow/definitions/${def.key}?format=bpmn" download="${def.key}-v${def.version}.bpmn">${T(W.downloadBpmn, lang)}</a></li>
<li><a href="/api/v1/workflow/definitions/${def.key}">${T(W.downloadJson, lang)}</a></li>
</ul>
<h2 id="versions">${T(W.versionsHeading, lang)}</h2>
${table({
  lang,
  caption: T(W.versionsCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [{ label: T(W.version, lang), numeric: true }, { label: T(W.deployedAt, lang), nowrap: true }, { label: T(W.deployedBy, lang) }, { label: T(W.source, lang), nowrap: true }, { label: T(W.checksum, lang) }],
  rows: versions.rows.map((v) => [v.version, formatDateTime(v.deployedAt, lang), whoLabel(v.deployedBy, names, lang), v.source === 'bpmn' ? 'BPMN 2.0' : 'JSON', html`<span class="request-id">${v.checksum.slice(0, 16)}</span>`]),
})}
<h2 id="instances">${T(W.instancesHeading, lang)}</h2>
<p>${T(W.instancesCount, lang, { n: formatNumber(found.total, lang), page, pages })}</p>
${beyond(lang, page, pages, instancesHref)}
${table({
  lang,
  caption: T(all ? W.instancesCaptionAll : W.instancesCaptionOwn, lang),
  rowHeaders: true,
  columns: [
    { label: T(W.businessKey, lang), code: true },
    { label: T(W.status, lang), nowrap: true },
    { label: T(W.version, lang), numeric: true },
    { label: T(W.startDepartment, lang), nowrap: true },
    { label: T(W.startedBy, lang), nowrap: true },
    { label: T(W.started, lang), nowrap: true },
    { label: T(W.ended, lang), nowrap: true },
    { label: T(W.duration, lang), numeric: true },
  ],
  rows: instanceRows,
  empty: T(W.noInstances, lang),
})}
${pager(lang, page, pages, instancesHref)}
${startForm}`,
    });
  }

  s.get(`${WORKFLOW}/processes/:key`, { schema: { hide: true, params: KeyParams, querystring: ProcessQuery }, config: { action: 'process-definition:read' } }, async (req, reply) =>
    processPage(req, reply, req.params.key, { page: req.query.page }),
  );

  s.post(`${WORKFLOW}/processes/:key/start`, { schema: { hide: true, params: KeyParams, body: StartForm }, config: { action: 'process-instance:start' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const key = req.params.key;
    const body = req.body as Record<string, string | undefined>;
    const def = await findDefinition(ctx.db, key);
    if (!def) throw problem('not-found', `no process definition ${key}`);
    const model = (await modelOf(def.key, def.version))!;
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string' && k !== '_csrf') values[k] = v;
    const variables: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const v of assigneeVariables(model)) {
      const value = body[`v_${v.name}`]?.trim();
      if (!value) problems.push(`${v.name}: required`);
      else if (v.kind === 'department' && !departments.has(value)) problems.push(`${v.name}: no department ${value}`);
      else variables[v.name] = value;
    }
    const fail = (msg: string) => {
      reply.code(400);
      return processPage(req, reply, key, { error: msg, values });
    };
    if (problems.length) return fail(problems.join('; '));
    try {
      const r = await startInstance(
        engine(),
        { key, businessKey: body.businessKey?.trim() || undefined, variables, idempotencyKey: body.idem ? `console:${body.idem}` : undefined },
        req.actor,
      );
      return reply.redirect(withLang(`${WORKFLOW}/instances/${r.instanceId}?done=started`, (req.query as { lang?: string }).lang), 303);
    } catch (err) {
      if (!(err instanceof WorkflowError) || err.code === 'forbidden') throw err;
      return fail(err.message);
    }
  });

  // -------------------------------------------------------------------------------------------
  // One instance

  s.get(`${WORKFLOW}/instances/:id`, { schema: { hide: true, params: IdParams, querystring: InstanceQuery }, config: { action: 'process-instance:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const ql = req.query.lang;
    const d = await readableInstance(ctx, req, req.params.id);
    const model = await modelOf(d.key, d.version);
    const names = await actorNames([d.startedBy, ...d.history.map((e) => e.actor), ...d.tasks.filter((t) => t.person).map((t) => `staff:${t.person}`)], d.tasks);
    const now = new Date();
    const cal = engine().calendar;
    const title = d.businessKey ? `${tr(d.name, lang)} · ${d.businessKey}` : tr(d.name, lang);
    const synthetic = d.variables.synthetic === true;

    const summary: [string, Html | string][] = [
      [T(W.process, lang), html`<a href="${withLang(`${WORKFLOW}/processes/${d.key}`, ql)}">${tr(d.name, lang)}</a> <span class="muted">(${T(W.version, lang)} ${d.version})</span>`],
      [T(W.businessKey, lang), d.businessKey ?? '—'],
      [T(W.status, lang), instanceBadge(d.status, lang)],
      [T(W.startDepartment, lang), deptName(d.department, lang, false)],
      [T(W.startedBy, lang), whoLabel(d.startedBy, names, lang)],
      [T(W.started, lang), formatDateTime(d.startedAt, lang)],
      [T(W.ended, lang), d.endedAt ? formatDateTime(d.endedAt, lang) : '—'],
      [T(W.duration, lang), humanDuration(minutesBetween(d.startedAt, d.endedAt ?? now), lang)],
      [T(W.instanceId, lang), html`<span class="request-id">${d.id}</span>`],
    ];

    const taskRows = d.tasks.map((t) => {
      const mine = t.status === 'open' && d.status === 'running' && canWorkOn(req.actor, t);
      return [
        html`<a href="${withLang(`${TASKS}/${t.id}`, ql)}">${tr(t.name, lang)}</a>${mine ? html` ${badge('planned', T(W.open_, lang))}` : ''}`,
        stateCell(t, lang),
        assignee(t, lang, names),
        dueCell(t, now, cal, lang),
        html`<time datetime="${t.createdAt.toISOString()}">${formatDateTime(t.createdAt, lang)}</time>`,
        t.completedAt ? formatDateTime(t.completedAt, lang) : '—',
        t.completedByName ?? (t.completedBy ? whoLabel(t.completedBy, names, lang) : '—'),
        outcomeLabel(t.outcome, lang),
        t.comment ? html`<span class="cell-wide">${t.comment}</span>` : '',
      ];
    });

    const varRows = Object.entries(d.variables)
      .sort(([a], [b]) => a.localeCompare(b))
      .slice(0, 200)
      .map(([k, v]) => [html`<code>${k}</code>`, showValue(v)]);

    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title,
      breadcrumbs: crumbs(lang, { label: T(W.workflowTitle, lang), href: withLang(WORKFLOW, ql) }, { label: tr(d.name, lang), href: withLang(`${WORKFLOW}/processes/${d.key}`, ql) }, { label: d.businessKey ?? T(W.instanceTitle, lang) }),
      localNav: {
        label: T(W.instanceTitle, lang),
        items: [
          { href: '#timeline', label: T(W.timelineHeading, lang) },
          { href: '#tasks', label: T(W.tasksHeading, lang) },
          { href: '#variables', label: T(W.variablesHeading, lang) },
        ],
      },
      main: html`<h1>${title}</h1>
${req.query.done === 'started' ? notice({ body: html`<p role="status">${T(W.doneStarted, lang)}</p>` }) : ''}
${synthetic ? notice({ body: T(W.synthetic, lang) }) : ''}
${d.incident ? notice({ kind: 'warning', title: T(W.incidentTitle, lang), body: d.incident }) : ''}
${table({ lang, caption: T(W.summaryCaption, lang), rowHeaders: true, columns: [{ label: T(W.item, lang), nowrap: true }, { label: T(W.value, lang) }], rows: summary })}
<h2 id="timeline">${T(W.timelineHeading, lang)}</h2>
${timeline(d.history, model, names, lang)}
<h2 id="tasks">${T(W.tasksHeading, lang)}</h2>
${table({
  lang,
  caption: T(W.tasksCaption, lang),
  captionHidden: true,
  rowHeaders: true,
  columns: [
    { label: T(W.step, lang), nowrap: true },
    { label: T(W.state, lang), nowrap: true },
    { label: T(W.assignedTo, lang), nowrap: true },
    { label: T(W.due, lang), nowrap: true },
    { label: T(W.created, lang), nowrap: true },
    { label: T(W.completedAt, lang), nowrap: true },
    { label: T(W.completedBy, lang), nowrap: true },
    { label: T(W.outcome, lang), nowrap: true },
    { label: T(W.comment, lang) },
  ],
  rows: taskRows,
})}
<h2 id="variables">${T(W.variablesHeading, lang)}</h2>
${table({ lang, caption: T(W.variablesCaption, lang), captionHidden: true, rowHeaders: true, columns: [{ label: T(W.variable, lang), code: true }, { label: T(W.value, lang) }], rows: varRows, empty: T(W.noVariables, lang) })}`,
    });
  });
}

/** YYYY-MM-DD naming a day that exists (2025-02-30 does not) */
function isRealDate(s: string): boolean {
  const [y, m, d] = s.split('-').map(Number) as [number, number, number];
  if (y < 1970 || y > 9999) return false;
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}
