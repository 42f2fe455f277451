// Server-rendered pages: the mailbox on the portal (/me/mailbox, public face) and for staff on the
// console (/console/mailbox), and the department's notices on the console (/console/notices: list
// with progress, compose with a recipient count, detail with delivery status, templates). Forms
// work without JavaScript and carry the CSRF field.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html, type Html } from '../../http/html.ts';
import { requestLang, tr, type Lang, type Text } from '../../http/i18n.ts';
import { figures, formatDateTime, formatNumber, notice, sendPage, table, type Crumb } from '../../http/layout.ts';
import { fill } from '../../http/messages.ts';
import { HttpProblem, problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import { csrfField } from '../identity/index.ts';
import { ownMailbox, readableNotice, senderOf, toProblem } from './api.ts';
import { getContact, listMailbox, openMessage, setContact, EMAIL, PHONE } from './mailbox.ts';
import { MM } from './messages.ts';
import { channelCounts, countAudience, listDeliveries, listNotices, submitNotice, DELIVERY_STATUSES, type AudienceRequest, type NoticeRecord } from './notices.ts';
import { maskedOwner, ownerKeyOfCode, RecipientError } from './recipients.ts';
import { getTemplate, listTemplates, pick, RECIPIENT_ATTRIBUTES, saveTemplate, TemplateError, TemplateOwnerError, type Template } from './templates.ts';
import { appendAudit } from '../audit/index.ts';

const t = (m: Text, lang: Lang) => tr(m, lang);

function departmentName(ctx: ModuleContext, code: string, lang: Lang): string {
  const d = ctx.profile.departments.find((x) => x.code === code);
  return d ? (lang === 'en' ? d.nameEn : d.name) : code;
}

const syntheticBadge = (on: boolean, lang: Lang) => (on ? html` <span class="badge badge-planned">${t(MM.synthetic, lang)}</span>` : '');

// ---------------------------------------------------------------------------------------------
// Mailbox (portal and console)

function mailboxPages(app: FastifyInstance, ctx: ModuleContext, side: 'portal' | 'console'): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const base = side === 'portal' ? '/me/mailbox' : '/console/mailbox';
  const shell = side;
  const crumbs = (lang: Lang, extra: Crumb[] = []): Crumb[] => [side === 'portal' ? { label: lang === 'en' ? 'Home' : '首页', href: '/' } : { label: lang === 'en' ? 'Workbench' : '工作台', href: '/console' }, { label: t(MM.mailbox, lang), href: base }, ...extra];

  s.get(base, { schema: { hide: true, querystring: Type.Object({ before: Type.Optional(Type.Integer({ minimum: 1 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'mailbox:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const box = await listMailbox(ctx.db, ctx.profile, ownMailbox(req.actor), lang, { before: req.query.before, limit: 20 });
    reply.header('cache-control', 'no-store');
    const rows = box.items.map((m) => [
      m.status === 'delivered' ? html`<span class="badge badge-problem">${t(MM.unread, lang)}</span>` : html`<span class="badge">${t(MM.read, lang)}</span>`,
      html`<a href="${base}/${m.noticeId}">${m.status === 'delivered' ? html`<strong>${m.subject}</strong>` : m.subject}</a>${syntheticBadge(m.synthetic, lang)}`,
      departmentName(ctx, m.department, lang),
      formatDateTime(m.deliveredAt, lang),
    ]);
    return sendPage(req, reply, {
      lang,
      shell,
      title: t(MM.mailbox, lang),
      breadcrumbs: crumbs(lang).slice(0, 1).concat({ label: t(MM.mailbox, lang) }),
      main: html`<h1>${t(MM.mailbox, lang)}</h1>
<p class="lead">${t(MM.mailboxLead, lang)} <strong>${fill(t(MM.unreadCount, lang), { n: formatNumber(box.unread, lang) })}</strong></p>
${table({
  lang,
  caption: t(MM.mailbox, lang),
  captionHidden: true,
  columns: [{ label: t(MM.status, lang), nowrap: true }, { label: t(MM.subject, lang) }, { label: t(MM.from, lang) }, { label: t(MM.received, lang), nowrap: true }],
  rows,
  empty: t(MM.noMessages, lang),
})}
<ul class="actions">
${box.next ? html`<li><a href="${base}?before=${box.next}">${t(MM.older, lang)}</a></li>` : ''}
<li><a href="${base}/contact">${t(MM.contactLink, lang)}</a></li>
</ul>`,
    });
  });

  // the contact form (before /:id so the path is not read as a message id)
  const contactPage = async (req: FastifyRequest, reply: FastifyReply, o: { saved?: boolean; error?: string; values?: { phone: string; email: string } } = {}) => {
    const lang = requestLang(req);
    const current = o.values ?? (await getContact(ctx.db, ownMailbox(req.actor)));
    reply.header('cache-control', 'no-store');
    if (o.error) reply.code(400);
    return sendPage(req, reply, {
      lang,
      shell,
      title: t(MM.contactTitle, lang),
      breadcrumbs: crumbs(lang, [{ label: t(MM.contactTitle, lang) }]),
      main: html`<h1>${t(MM.contactTitle, lang)}</h1>
<p class="lead">${t(MM.contactLead, lang)}</p>
${o.saved ? notice({ body: t(MM.saved, lang) }) : ''}
${o.error ? notice({ kind: 'warning', body: o.error }) : ''}
<form class="form" method="post" action="${base}/contact">
${csrfField(ctx, req, reply)}
<div class="field"><label for="f-phone">${t(MM.phone, lang)}</label><p class="field-hint" id="f-phone-hint">${t(MM.phoneHint, lang)}</p><input id="f-phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel" maxlength="11" aria-describedby="f-phone-hint" value="${current.phone ?? ''}"></div>
<div class="field"><label for="f-email">${t(MM.email, lang)}</label><p class="field-hint" id="f-email-hint">${t(MM.emailHint, lang)}</p><input id="f-email" name="email" type="email" autocomplete="email" maxlength="254" aria-describedby="f-email-hint" value="${current.email ?? ''}"></div>
<p class="actions"><button class="button" type="submit">${t(MM.save, lang)}</button></p>
</form>
<ul class="actions">${side === 'portal' ? html`<li><a href="/me/preferences">${t(MM.choosePreferences, lang)}</a></li>` : ''}<li><a href="${base}">${t(MM.backToMailbox, lang)}</a></li></ul>`,
    });
  };
  s.get(`${base}/contact`, { schema: { hide: true, querystring: Type.Object({ saved: Type.Optional(Type.String({ maxLength: 5 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'notice-contact:read' } }, async (req, reply) =>
    contactPage(req, reply, { saved: req.query.saved === '1' }),
  );
  s.post(
    `${base}/contact`,
    { schema: { hide: true, body: Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })), phone: Type.Optional(Type.String({ maxLength: 40 })), email: Type.Optional(Type.String({ maxLength: 300 })) }) }, config: { action: 'notice-contact:update' } },
    async (req, reply) => {
      const lang = requestLang(req);
      const phone = (req.body.phone ?? '').replace(/[\s-]/g, '');
      const email = (req.body.email ?? '').trim();
      if (phone && !PHONE.test(phone)) return contactPage(req, reply, { error: t({ zh: '手机号码应为 11 位数字，以 1 开头。', en: 'A mobile number is 11 digits starting with 1.' }, lang), values: { phone, email } });
      if (email && (email.length > 254 || !EMAIL.test(email))) return contactPage(req, reply, { error: t({ zh: '电子邮件地址格式不正确。', en: 'That is not an email address.' }, lang), values: { phone, email } });
      await setContact(ctx.db, ownMailbox(req.actor), { phone: phone || null, email: email || null });
      return reply.redirect(`${base}/contact?saved=1`, 303);
    },
  );

  s.get(`${base}/:id`, { schema: { hide: true, params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), querystring: Type.Object({ lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'mailbox:read' } }, async (req, reply) => {
    const lang = requestLang(req);
    const m = await openMessage(ctx.db, ctx.profile, ownMailbox(req.actor), req.params.id, lang);
    if (!m) throw problem('not-found', lang === 'en' ? 'There is no such message in your mailbox.' : '您的信箱中没有这条通知。');
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, {
      lang,
      shell,
      title: m.subject,
      breadcrumbs: crumbs(lang, [{ label: m.subject }]),
      main: html`<h1>${m.subject}</h1>
<p class="muted">${t(MM.from, lang)}${lang === 'en' ? ': ' : '：'}${departmentName(ctx, m.department, lang)} · ${formatDateTime(m.deliveredAt, lang)}${syntheticBadge(m.synthetic, lang)}</p>
<article class="message-body">${m.html}</article>
<ul class="actions"><li><a href="${base}">${t(MM.backToMailbox, lang)}</a></li></ul>`,
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Console: notices

function statusText(n: Pick<NoticeRecord, 'status'>, lang: Lang): string {
  return t(MM[`status_${n.status}`], lang);
}

function progressOf(n: NoticeRecord, lang: Lang): Html {
  const done = n.delivered + n.failed;
  const goal = Math.max(n.recipients, n.total, 1);
  const pct = n.status === 'done' ? 100 : Math.min(99, Math.floor((done / goal) * 100));
  return html`<progress max="100" value="${pct}" aria-label="${t(MM.progress, lang)}">${pct}%</progress> ${pct}% · ${statusText(n, lang)}`;
}

function audienceText(ctx: ModuleContext, n: NoticeRecord, lang: Lang): string {
  const a = n.audience;
  const en = lang === 'en';
  switch (a.kind) {
    case 'person':
      return en ? `one recipient (${maskedOwner(a.recipient)})` : `单个收件人（${maskedOwner(a.recipient)}）`;
    case 'recipients':
      return en ? `${a.recipients.length} recipients` : `${a.recipients.length} 个收件人`;
    case 'list':
      return en ? `list no. ${a.listId} (${formatNumber(a.recipients, lang)})` : `名单 ${a.listId}（${formatNumber(a.recipients, lang)} 人）`;
    case 'segment': {
      const f = a.filter;
      const parts: string[] = [];
      parts.push(
        f.divisions?.length
          ? f.divisions
              .map((c) => {
                const d = ctx.profile.divisions.flatMap((x) => [x, ...x.children, ...x.children.flatMap((y) => y.children)]).find((x) => x.code === c);
                return d ? (en ? d.nameEn : d.name) : c;
              })
              .join(en ? ', ' : '、')
          : t(MM.wholeCity, lang),
      );
      if (f.minAge !== undefined) parts.push(en ? `aged ${f.minAge}+` : `${f.minAge} 周岁及以上`);
      if (f.maxAge !== undefined) parts.push(en ? `aged up to ${f.maxAge}` : `${f.maxAge} 周岁及以下`);
      if (f.sex) parts.push(t(f.sex === 'M' ? MM.sexM : MM.sexF, lang));
      return `${en ? 'Residents: ' : '居民：'}${parts.join(en ? '; ' : '，')}${en ? ` (ages as of ${a.asOf})` : `（年龄按 ${a.asOf} 计）`}`;
    }
  }
}

function divisionOptions(ctx: ModuleContext, lang: Lang, selected: string): Html {
  const en = lang === 'en';
  const opt = (code: string, label: string) => html`<option value="${code}"${code === selected ? html` selected` : ''}>${label}</option>`;
  return html`${opt('', t(MM.wholeCity, lang))}${ctx.profile.divisions.map(
    (c) => html`<optgroup label="${en ? c.nameEn : c.name}">${opt(c.code, `${en ? c.nameEn : c.name} (${en ? 'all' : '全部'})`)}${c.children.map((s) => opt(s.code, en ? s.nameEn : s.name))}</optgroup>`,
  )}`;
}

interface ComposeState {
  template?: Template | null;
  values?: Record<string, string>;
  counted?: number;
  error?: string;
  status?: number;
}

function consoleNoticePages(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const workbench = (lang: Lang): Crumb => ({ label: lang === 'en' ? 'Workbench' : '工作台', href: '/console' });
  const noticesCrumb = (lang: Lang): Crumb => ({ label: t(MM.notices, lang), href: '/console/notices' });
  const page = (req: FastifyRequest, reply: FastifyReply, lang: Lang, title: string, main: Html, breadcrumbs: Crumb[]) => {
    reply.header('cache-control', 'no-store');
    return sendPage(req, reply, { lang, shell: 'console', title, breadcrumbs, main });
  };

  s.get('/console/notices', { schema: { hide: true, querystring: Type.Object({ before: Type.Optional(Type.Integer({ minimum: 1 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'notice:list' } }, async (req, reply) => {
    const lang = requestLang(req);
    const sender = senderOf(req.actor);
    const list = await listNotices(ctx.db, sender.department, { before: req.query.before, limit: 20 });
    const canSend = ctx.policy.can(req.actor, 'notice:send', sender);
    const rows = list.items.map((n) => [
      n.id,
      html`<a href="/console/notices/${n.id}">${pick(n.subject, lang)}</a>${syntheticBadge(n.synthetic, lang)}`,
      progressOf(n, lang),
      n.recipients,
      n.delivered,
      n.read,
      n.failed,
      formatDateTime(n.createdAt, lang),
    ]);
    return page(
      req,
      reply,
      lang,
      t(MM.notices, lang),
      html`<h1>${t(MM.notices, lang)}</h1>
<p class="lead">${t(MM.noticesLead, lang)} (${departmentName(ctx, sender.department, lang)})</p>
<ul class="actions">${canSend ? html`<li><a href="/console/notices/new">${t(MM.newNotice, lang)}</a></li>` : ''}<li><a href="/console/notices/templates">${t(MM.templates, lang)}</a></li></ul>
${canSend ? '' : notice({ body: t(MM.noRole, lang) })}
${table({
  lang,
  caption: t(MM.notices, lang),
  captionHidden: true,
  columns: [
    { label: t(MM.id, lang), numeric: true },
    { label: t(MM.subject, lang) },
    { label: t(MM.progress, lang), nowrap: true },
    { label: t(MM.recipients, lang), numeric: true },
    { label: t(MM.delivered, lang), numeric: true },
    { label: t(MM.read, lang), numeric: true },
    { label: t(MM.failed, lang), numeric: true },
    { label: t(MM.sentAt, lang), nowrap: true },
  ],
  rows,
  empty: t(MM.noNotices, lang),
})}
${list.next ? html`<ul class="actions"><li><a href="/console/notices?before=${list.next}">${t(MM.nextPage, lang)}</a></li></ul>` : ''}`,
      [workbench(lang), { label: t(MM.notices, lang) }],
    );
  });

  // --- compose -------------------------------------------------------------------------------
  const compose = async (req: FastifyRequest, reply: FastifyReply, st: ComposeState) => {
    const lang = requestLang(req);
    const sender = senderOf(req.actor);
    ctx.policy.authorize(req.actor, 'notice:send', sender);
    const title = t(MM.newNotice, lang);
    const csrf = csrfField(ctx, req, reply);
    const v = st.values ?? {};
    if (st.status) reply.code(st.status);
    const crumbs = [workbench(lang), noticesCrumb(lang), { label: title }];
    const templates = await listTemplates(ctx.db, sender.department);
    const tpl = st.template;
    if (!tpl) {
      return page(
        req,
        reply,
        lang,
        title,
        html`<h1>${title}</h1>
${st.error ? notice({ kind: 'warning', title: t(MM.cannotSend, lang), body: st.error }) : ''}
${
  templates.length
    ? html`<form class="form" method="get" action="/console/notices/new">
<div class="field"><label for="f-template">${t(MM.chooseTemplate, lang)}</label><p class="field-hint" id="f-template-hint">${t(MM.chooseTemplateHint, lang)}</p>
<select id="f-template" name="template" aria-describedby="f-template-hint">${templates.map((x) => html`<option value="${x.key}">${pick(x.name, lang)} (${x.key} v${x.version})</option>`)}</select></div>
<p class="actions"><button class="button" type="submit">${t(MM.next, lang)}</button></p>
</form>`
    : notice({ body: t(MM.noTemplates, lang) })
}
<ul class="actions"><li><a href="/console/notices/templates">${t(MM.templates, lang)}</a></li></ul>`,
        crumbs,
      );
    }
    const kind = v.kind ?? 'segment';
    const checked = (on: boolean) => (on ? html` checked` : '');
    return page(
      req,
      reply,
      lang,
      title,
      html`<h1>${title}</h1>
<p class="lead">${t(MM.template, lang)}${lang === 'en' ? ': ' : '：'}<strong>${pick(tpl.name, lang)}</strong> (${tpl.key} v${tpl.version})</p>
${st.error ? notice({ kind: 'warning', title: t(MM.cannotSend, lang), body: st.error }) : ''}
${st.counted !== undefined ? notice({ body: fill(t(MM.counted, lang), { n: formatNumber(st.counted, lang) }) }) : ''}
<section aria-labelledby="preview"><h2 id="preview">${t(MM.preview, lang)}${lang === 'en' ? ': ' : '：'}${pick(tpl.subject, lang)}</h2><div class="message-body">${tplPreview(tpl, lang)}</div></section>
<h2>${t(MM.audienceAndSend, lang)}</h2>
<form class="form" method="post" action="/console/notices/new">
${csrf}
<input type="hidden" name="template" value="${tpl.key}"><input type="hidden" name="version" value="${tpl.version}">
${
  tpl.variables.length
    ? html`<fieldset><legend>${t(MM.variables, lang)}</legend>${tpl.variables.map(
        (name) => html`<div class="field"><label for="f-var-${name}">{{${name}}}</label><input id="f-var-${name}" name="var_${name}" required maxlength="500" value="${v[`var_${name}`] ?? ''}"></div>`,
      )}</fieldset>`
    : ''
}
<fieldset><legend>${t(MM.audienceKind, lang)}</legend>
<label><input type="radio" name="kind" value="person"${checked(kind === 'person')}> ${t(MM.kind_person, lang)}</label>
<label><input type="radio" name="kind" value="list"${checked(kind === 'list')}> ${t(MM.kind_list, lang)}</label>
<label><input type="radio" name="kind" value="segment"${checked(kind === 'segment')}> ${t(MM.kind_segment, lang)}</label>
</fieldset>
<fieldset><legend>${t(MM.kind_person, lang)}</legend>
<div class="field"><label for="f-code">${t(MM.personCode, lang)}</label><input id="f-code" name="code" maxlength="18" autocomplete="off" value="${v.code ?? ''}"></div>
</fieldset>
<fieldset><legend>${t(MM.kind_list, lang)}</legend>
<div class="field"><label for="f-list">${t(MM.listCodes, lang)}</label><p class="field-hint" id="f-list-hint">${t(MM.listHint, lang)}</p><textarea id="f-list" name="list" rows="5" aria-describedby="f-list-hint">${v.list ?? ''}</textarea></div>
</fieldset>
<fieldset><legend>${t(MM.kind_segment, lang)}</legend>
<div class="field"><label for="f-division">${t(MM.division, lang)}</label><select id="f-division" name="division">${divisionOptions(ctx, lang, v.division ?? '')}</select></div>
<div class="field"><label for="f-min">${t(MM.minAge, lang)}</label><input id="f-min" name="minAge" type="number" min="0" max="150" inputmode="numeric" value="${v.minAge ?? ''}"></div>
<div class="field"><label for="f-max">${t(MM.maxAge, lang)}</label><input id="f-max" name="maxAge" type="number" min="0" max="150" inputmode="numeric" value="${v.maxAge ?? ''}"></div>
<div class="field"><label for="f-sex">${t(MM.sex, lang)}</label><select id="f-sex" name="sex"><option value="">${t(MM.sexAny, lang)}</option><option value="M"${v.sex === 'M' ? html` selected` : ''}>${t(MM.sexM, lang)}</option><option value="F"${v.sex === 'F' ? html` selected` : ''}>${t(MM.sexF, lang)}</option></select></div>
</fieldset>
<p class="actions"><button class="button button-secondary" type="submit" name="do" value="count">${t(MM.countRecipients, lang)}</button> <button class="button" type="submit" name="do" value="send">${t(MM.send, lang)}</button></p>
</form>`,
      crumbs,
    );
  };

  s.get('/console/notices/new', { schema: { hide: true, querystring: Type.Object({ template: Type.Optional(Type.String({ maxLength: 64 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'notice:send' } }, async (req, reply) => {
    const lang = requestLang(req);
    const tpl = req.query.template ? await getTemplate(ctx.db, req.query.template) : null;
    if (req.query.template && (!tpl || tpl.department !== senderOf(req.actor).department)) return compose(req, reply, { error: lang === 'en' ? 'Choose one of your department’s templates.' : '请选择本部门的模板。', status: 404 });
    return compose(req, reply, { template: tpl });
  });

  const ComposeBody = Type.Object(
    {
      _csrf: Type.Optional(Type.String({ maxLength: 200 })),
      template: Type.String({ maxLength: 64 }),
      version: Type.Optional(Type.String({ maxLength: 10 })),
      kind: Type.Optional(Type.String({ maxLength: 10 })),
      code: Type.Optional(Type.String({ maxLength: 40 })),
      list: Type.Optional(Type.String({ maxLength: 250_000 })),
      division: Type.Optional(Type.String({ maxLength: 12 })),
      minAge: Type.Optional(Type.String({ maxLength: 3 })),
      maxAge: Type.Optional(Type.String({ maxLength: 3 })),
      sex: Type.Optional(Type.String({ maxLength: 1 })),
      do: Type.Optional(Type.String({ maxLength: 10 })),
    },
    { additionalProperties: Type.String({ maxLength: 500 }), maxProperties: 40 },
  );
  s.post('/console/notices/new', { schema: { hide: true, body: ComposeBody }, config: { action: 'notice:send' } }, async (req, reply) => {
    const lang = requestLang(req);
    const b = req.body as Record<string, string>;
    const sender = senderOf(req.actor);
    ctx.policy.authorize(req.actor, 'notice:send', sender);
    const version = b.version && /^\d{1,9}$/.test(b.version) ? Number(b.version) : undefined;
    const tpl = await getTemplate(ctx.db, b.template!, version);
    if (!tpl || tpl.department !== sender.department) return compose(req, reply, { error: lang === 'en' ? 'Choose one of your department’s templates.' : '请选择本部门的模板。', status: 400 });
    const fail = (err: unknown) => {
      const p = toProblem(reply, err);
      if (p instanceof HttpProblem) return compose(req, reply, { template: tpl, values: b, error: p.message, status: p.status });
      throw p;
    };
    let audience: AudienceRequest;
    try {
      audience = audienceFromForm(b);
    } catch (err) {
      return fail(err);
    }
    if (b.do === 'count') {
      try {
        const n = await countAudience(ctx.db, ctx.profile, sender.department, audience);
        return compose(req, reply, { template: tpl, values: b, counted: n });
      } catch (err) {
        return fail(err);
      }
    }
    const vars: Record<string, string> = {};
    for (const name of tpl.variables) vars[name] = (b[`var_${name}`] ?? '').trim();
    try {
      const sent = await ctx.db.tx((c) => submitNotice(c, sender, { template: tpl.key, version: tpl.version, vars, audience }, { requestId: req.id, ip: req.ip }));
      return reply.redirect(`/console/notices/${sent.id}`, 303);
    } catch (err) {
      return fail(err);
    }
  });

  // --- templates -------------------------------------------------------------------------------
  const templatesPage = async (req: FastifyRequest, reply: FastifyReply, o: { saved?: Template; error?: string; values?: Record<string, string>; status?: number; from?: Template | null } = {}) => {
    const lang = requestLang(req);
    const title = t(MM.templates, lang);
    const all = await listTemplates(ctx.db);
    const actor = req.actor;
    const sender = actor.kind === 'staff' || actor.kind === 'system' ? senderOf(actor) : null;
    const canCreate = sender !== null && ctx.policy.can(actor, 'notice-template:create', sender);
    if (o.status) reply.code(o.status);
    const f = o.from;
    const v = o.values ?? (f ? { key: f.key, nameZh: f.name.zh, nameEn: f.name.en ?? '', subjectZh: f.subject.zh, subjectEn: f.subject.en ?? '', bodyZh: f.body.zh, bodyEn: f.body.en ?? '', variables: f.variables.join(', ') } : {});
    const rows = all.map((x) => [
      html`<code>${x.key}</code>${syntheticBadge(x.synthetic, lang)}`,
      pick(x.name, lang),
      x.version,
      departmentName(ctx, x.department, lang),
      x.variables.length ? html`${x.variables.map((n, i) => html`${i ? ', ' : ''}<code>${n}</code>`)}` : '—',
      sender && x.department === sender.department && canCreate ? html`<a href="/console/notices/templates?from=${x.key}#add">${t(MM.newVersionOf, lang)}</a>` : '',
    ]);
    return page(
      req,
      reply,
      lang,
      title,
      html`<h1>${title}</h1>
<p class="lead">${fill(t(MM.templatesLead, lang), { attrs: RECIPIENT_ATTRIBUTES.map((a) => `{{${a}}}`).join(' ') })}</p>
${o.saved ? notice({ body: fill(t(MM.templateSaved, lang), { key: o.saved.key, version: o.saved.version }) }) : ''}
${table({
  lang,
  caption: title,
  captionHidden: true,
  columns: [{ label: t(MM.key, lang), code: true }, { label: t(MM.name, lang) }, { label: t(MM.version, lang), numeric: true }, { label: t(MM.department, lang) }, { label: t(MM.variables, lang) }, { label: '' }],
  rows,
})}
${
  canCreate
    ? html`<h2 id="add">${t(MM.addTemplate, lang)}</h2>
${o.error ? notice({ kind: 'warning', body: o.error }) : ''}
<form class="form" method="post" action="/console/notices/templates">
${csrfField(ctx, req, reply)}
<div class="field"><label for="f-key">${t(MM.key, lang)}</label><p class="field-hint" id="f-key-hint">${t(MM.keyHint, lang)}</p><input id="f-key" name="key" required maxlength="64" pattern="[a-z][a-z0-9\\-]{1,63}" aria-describedby="f-key-hint" value="${v.key ?? ''}"></div>
<div class="field"><label for="f-name-zh">${t(MM.nameZh, lang)}</label><input id="f-name-zh" name="nameZh" required maxlength="100" value="${v.nameZh ?? ''}"></div>
<div class="field"><label for="f-name-en">${t(MM.nameEn, lang)}</label><input id="f-name-en" name="nameEn" maxlength="100" lang="en" value="${v.nameEn ?? ''}"></div>
<div class="field"><label for="f-vars">${t(MM.variablesField, lang)}</label><input id="f-vars" name="variables" maxlength="400" value="${v.variables ?? ''}"></div>
<div class="field"><label for="f-subject-zh">${t(MM.subjectZh, lang)}</label><input id="f-subject-zh" name="subjectZh" required maxlength="200" value="${v.subjectZh ?? ''}"></div>
<div class="field"><label for="f-subject-en">${t(MM.subjectEn, lang)}</label><input id="f-subject-en" name="subjectEn" maxlength="200" lang="en" value="${v.subjectEn ?? ''}"></div>
<div class="field"><label for="f-body-zh">${t(MM.bodyZh, lang)}</label><textarea id="f-body-zh" name="bodyZh" required rows="8" maxlength="5000">${v.bodyZh ?? ''}</textarea></div>
<div class="field"><label for="f-body-en">${t(MM.bodyEn, lang)}</label><textarea id="f-body-en" name="bodyEn" rows="8" maxlength="5000" lang="en">${v.bodyEn ?? ''}</textarea></div>
<p class="actions"><button class="button" type="submit">${t(MM.addVersion, lang)}</button></p>
</form>`
    : ''
}`,
      [workbench(lang), noticesCrumb(lang), { label: title }],
    );
  };

  s.get('/console/notices/templates', { schema: { hide: true, querystring: Type.Object({ from: Type.Optional(Type.String({ maxLength: 64 })), saved: Type.Optional(Type.String({ maxLength: 80 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'notice-template:read' } }, async (req, reply) => {
    const from = req.query.from ? await getTemplate(ctx.db, req.query.from) : null;
    const m = /^([a-z][a-z0-9-]{1,63})@(\d{1,9})$/.exec(req.query.saved ?? '');
    const saved = m ? ((await getTemplate(ctx.db, m[1]!, Number(m[2]))) ?? undefined) : undefined;
    return templatesPage(req, reply, { from, saved });
  });

  const TemplateForm = Type.Object({
    _csrf: Type.Optional(Type.String({ maxLength: 200 })),
    key: Type.String({ maxLength: 100 }),
    nameZh: Type.String({ maxLength: 200 }),
    nameEn: Type.Optional(Type.String({ maxLength: 200 })),
    subjectZh: Type.String({ maxLength: 400 }),
    subjectEn: Type.Optional(Type.String({ maxLength: 400 })),
    bodyZh: Type.String({ maxLength: 10_000 }),
    bodyEn: Type.Optional(Type.String({ maxLength: 10_000 })),
    variables: Type.Optional(Type.String({ maxLength: 400 })),
  });
  s.post('/console/notices/templates', { schema: { hide: true, body: TemplateForm }, config: { action: 'notice-template:create' } }, async (req, reply) => {
    const sender = senderOf(req.actor);
    ctx.policy.authorize(req.actor, 'notice-template:create', sender);
    const b = req.body;
    const variables = (b.variables ?? '')
      .split(/[,，\s]+/)
      .map((x) => x.trim())
      .filter(Boolean);
    try {
      const saved = await ctx.db.tx(async (c) => {
        const tpl = await saveTemplate(c, sender.department, sender.id, { key: b.key.trim(), name: { zh: b.nameZh, en: b.nameEn }, subject: { zh: b.subjectZh, en: b.subjectEn }, body: { zh: b.bodyZh, en: b.bodyEn }, variables });
        await appendAudit(c, { actor: { kind: sender.kind, id: sender.id, department: sender.department }, action: 'messaging.template.create', resource: { type: 'notice-template', id: `${tpl.key}@${tpl.version}` }, outcome: 'ok', requestId: req.id, ip: req.ip });
        return tpl;
      });
      return reply.redirect(`/console/notices/templates?saved=${saved.key}@${saved.version}`, 303);
    } catch (err) {
      if (err instanceof TemplateError || err instanceof TemplateOwnerError) {
        return templatesPage(req, reply, { error: err.message, values: b as unknown as Record<string, string>, status: err instanceof TemplateOwnerError ? 403 : 400 });
      }
      throw err;
    }
  });

  // --- a notice ----------------------------------------------------------------------------------
  s.get(
    '/console/notices/:id',
    {
      schema: {
        hide: true,
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        querystring: Type.Object({ status: Type.Optional(Type.Enum([...DELIVERY_STATUSES])), after: Type.Optional(Type.String({ maxLength: 80 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }),
      },
      config: { action: 'notice:read' },
    },
    async (req, reply) => {
      const lang = requestLang(req);
      const n = await readableNotice(ctx, req.actor, req.params.id);
      const [byChannel, deliveries] = await Promise.all([channelCounts(ctx.db, n), listDeliveries(ctx.db, n.id, { status: req.query.status, after: req.query.after, limit: 50 })]);
      const title = pick(n.subject, lang);
      const statusLink = (st: string | null, label: string) => {
        const current = (req.query.status ?? null) === st;
        return html`<li>${current ? html`<span aria-current="true">${label}</span>` : html`<a href="/console/notices/${n.id}${st ? `?status=${st}` : ''}#deliveries">${label}</a>`}</li>`;
      };
      return page(
        req,
        reply,
        lang,
        title,
        html`<h1>${title}${syntheticBadge(n.synthetic, lang)}</h1>
<p>${progressOf(n, lang)}</p>
${figures(
  [
    { label: t(MM.recipients, lang), value: n.recipients },
    { label: t(MM.delivered, lang), value: n.delivered },
    { label: t(MM.read, lang), value: n.read },
    { label: t(MM.failed, lang), value: n.failed },
    { label: t(MM.queued, lang), value: n.queued },
    { label: t(MM.total, lang), value: n.total },
  ],
  lang,
)}
${n.status !== 'done' ? html`<ul class="actions"><li><a href="/console/notices/${n.id}">${t(MM.refresh, lang)}</a></li></ul>` : ''}
${table({
  lang,
  caption: t(MM.byChannel, lang),
  columns: [{ label: t(MM.channel, lang) }, { label: t(MM.total, lang), numeric: true }, { label: t(MM.queued, lang), numeric: true }, { label: t(MM.delivered, lang), numeric: true }, { label: t(MM.read, lang), numeric: true }, { label: t(MM.failed, lang), numeric: true }],
  rows: (['mailbox', 'sms', 'email'] as const).map((c) => [t(MM[`channel_${c}`], lang), byChannel[c].total, byChannel[c].queued, byChannel[c].delivered, byChannel[c].read, byChannel[c].failed]),
  rowHeaders: true,
})}
${table({
  lang,
  caption: lang === 'en' ? 'About this notice' : '通知信息',
  columns: [{ label: t(MM.field, lang), nowrap: true }, { label: t(MM.value, lang) }],
  rowHeaders: true,
  rows: [
    [t(MM.id, lang), String(n.id)],
    [t(MM.status, lang), statusText(n, lang)],
    [t(MM.audience, lang), audienceText(ctx, n, lang)],
    [t(MM.template, lang), n.template ? `${n.template.key} v${n.template.version}` : '—'],
    [t(MM.sender, lang), `${departmentName(ctx, n.department, lang)}${n.senderName ? ` · ${n.senderName}` : ''}`],
    [t(MM.sentAt, lang), formatDateTime(n.createdAt, lang)],
    [t(MM.chunks, lang), n.chunksTotal === null ? '—' : `${formatNumber(n.chunksDone, lang)} / ${formatNumber(n.chunksTotal, lang)}`],
    [t(MM.finishedAt, lang), n.finishedAt ? formatDateTime(n.finishedAt, lang) : '—'],
  ],
})}
<h2 id="deliveries">${t(MM.deliveries, lang)}</h2>
<p class="muted">${t(MM.deliveriesNote, lang)}</p>
<nav class="tabs" aria-label="${t(MM.filterByStatus, lang)}"><ul>${statusLink(null, t(MM.allStatuses, lang))}${DELIVERY_STATUSES.map((st) => statusLink(st, t(MM[`dstatus_${st}`], lang)))}</ul></nav>
${table({
  lang,
  caption: t(MM.deliveries, lang),
  captionHidden: true,
  columns: [{ label: t(MM.recipient, lang), code: true }, { label: t(MM.channel, lang), nowrap: true }, { label: t(MM.status, lang), nowrap: true }, { label: t(MM.attempts, lang), numeric: true }, { label: t(MM.lastError, lang) }],
  rows: deliveries.items.map((d) => [maskedOwner(d.recipient), t(MM[`channel_${d.channel}`], lang), t(MM[`dstatus_${d.status}`], lang), d.attempts, d.lastError ?? '']),
})}
${deliveries.next ? html`<ul class="actions"><li><a href="/console/notices/${n.id}?${req.query.status ? `status=${req.query.status}&` : ''}after=${encodeURIComponent(deliveries.next)}#deliveries">${t(MM.nextPage, lang)}</a></li></ul>` : ''}`,
        [workbench(lang), noticesCrumb(lang), { label: `${t(MM.id, lang)} ${n.id}` }],
      );
    },
  );
}

/** A template's Chinese or English body as the preview shows it (placeholders left visible). */
function tplPreview(tpl: Template, lang: Lang): Html {
  const text = pick(tpl.body, lang);
  return html`${text
    .split(/\n{2,}/)
    .filter((p) => p.trim())
    .map((p) => html`<p>${p.split('\n').map((line, i) => html`${i ? html`<br>` : ''}${line}`)}</p>`)}`;
}

/** The audience from the compose form's fields. */
function audienceFromForm(b: Record<string, string | undefined>): AudienceRequest {
  const kind = b.kind ?? 'segment';
  if (kind === 'person') {
    const code = (b.code ?? '').trim();
    if (!code) throw new RecipientError('audience: enter an ID number or credit code');
    const owner = ownerKeyOfCode(code);
    return owner.startsWith('p:') ? { kind: 'person', idNumber: owner.slice(2) } : { kind: 'person', uscc: owner.slice(2) };
  }
  if (kind === 'list') {
    const recipients = (b.list ?? '')
      .split(/[\s,，;；]+/)
      .map((x) => x.trim())
      .filter(Boolean);
    return { kind: 'list', recipients };
  }
  if (kind !== 'segment') throw new RecipientError('audience.kind: expected person, list or segment');
  const age = (v: string | undefined, field: string) => {
    if (!v || v.trim() === '') return undefined;
    if (!/^\d{1,3}$/.test(v.trim())) throw new RecipientError(`${field}: expected a whole number of years`);
    return Number(v.trim());
  };
  const sex = b.sex === 'M' || b.sex === 'F' ? b.sex : undefined;
  return { kind: 'segment', divisions: b.division ? [b.division] : undefined, minAge: age(b.minAge, 'minAge'), maxAge: age(b.maxAge, 'maxAge'), sex };
}

export function portalPages(app: FastifyInstance, ctx: ModuleContext): void {
  mailboxPages(app, ctx, 'portal');
}

export function consolePages(app: FastifyInstance, ctx: ModuleContext): void {
  mailboxPages(app, ctx, 'console');
  consoleNoticePages(app, ctx);
}
