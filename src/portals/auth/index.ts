// Sign-in for the portal (public face) and the console (internal face) as relying parties of the
// platform's OpenID provider, the preferences page, and the console's roles page.
//
//   portal   GET /auth/login?back=  GET /auth/callback  POST /auth/logout  GET /auth/signed-out
//            POST /auth/backchannel-logout              GET|POST /me/preferences
//   console  the same under /console/auth/...           GET /console/admin/roles, POST .../grant, .../revoke
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { html } from '../../http/html.ts';
import { requestLang, tr, type Lang } from '../../http/i18n.ts';
import { enableSignInLinks, notice, safeLocalPath, sendPage, table } from '../../http/layout.ts';
import { problem } from '../../http/problems.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { accessesOfSubject, appendAudit } from '../../base/audit/index.ts';
import { formatDateTime } from '../../http/layout.ts';
import {
  AccountError,
  auditActorOf,
  CHANNELS,
  checkCsrf,
  createSession,
  csrfField,
  destroySession,
  destroySessionsBySid,
  findAccountByLogin,
  getOidc,
  getPreferences,
  grantRole,
  listStaff,
  revokeRole,
  ROLES,
  roleById,
  sessionCookieOf,
  setPreferences,
  type Channel,
} from '../../base/identity/index.ts';
import { isHttps } from '../../base/identity/oidc/urls.ts';
import { needsCsrf } from '../../base/identity/sessions/csrf.ts';
import { clearSessionCookie, setSessionCookie } from '../../base/identity/sessions/index.ts';
import { SUBSYSTEMS } from '../public/subsystems.ts';
import { A } from './messages.ts';
import { CONSOLE, PORTAL, CallbackError, endSessionUrl, finishLogin, startLogin, verifyLogoutToken, type RpSide } from './rp.ts';

const localPort = (req: FastifyRequest): number | undefined => req.socket?.localPort;
const LANG_COOKIE = { path: '/', sameSite: 'lax' as const, httpOnly: true, maxAge: 365 * 24 * 3600 };

function requireFormCsrf(ctx: ModuleContext, req: FastifyRequest): void {
  if (needsCsrf(req) && !checkCsrf(ctx, req)) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
}

function stateCookie(side: RpSide) {
  return `gusu_rp_${side.client}`;
}

function rpRoutes(app: FastifyInstance, ctx: ModuleContext, side: RpSide): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const shell = side.client === 'console' ? 'console' : 'portal';
  const cookieOpts = (secure: boolean) => ({ path: `${side.prefix}/callback`, httpOnly: true, sameSite: 'lax' as const, secure, maxAge: 900 });

  s.get(
    `${side.prefix}/login`,
    { schema: { hide: true, querystring: Type.Object({ back: Type.Optional(Type.String({ maxLength: 2000 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'session:start' } },
    async (req, reply) => {
      const oidc = await getOidc(ctx, localPort(req));
      let back = safeLocalPath(req.query.back);
      if (back === '/' && side.client === 'console') back = side.home;
      const started = await startLogin(ctx, oidc, side, back, { lang: requestLang(req) });
      reply.setCookie(stateCookie(side), started.state, cookieOpts(isHttps(side.base(oidc.urls))));
      reply.header('cache-control', 'no-store');
      return reply.redirect(started.url, 303);
    },
  );

  s.get(
    `${side.prefix}/callback`,
    {
      schema: {
        hide: true,
        querystring: Type.Object({
          state: Type.Optional(Type.String({ maxLength: 200 })),
          code: Type.Optional(Type.String({ maxLength: 2000 })),
          iss: Type.Optional(Type.String({ maxLength: 2000 })),
          error: Type.Optional(Type.String({ maxLength: 200 })),
          error_description: Type.Optional(Type.String({ maxLength: 2000 })),
        }),
      },
      config: { action: 'session:finish' },
    },
    async (req, reply) => {
      const lang = requestLang(req);
      const oidc = await getOidc(ctx, localPort(req));
      const failed = (status: number, text: typeof A.signInError) => {
        reply.code(status);
        return sendPage(req, reply, {
          lang,
          shell,
          title: tr(A.signInFailed, lang),
          main: html`<h1>${tr(A.signInFailed, lang)}</h1><p>${tr(text, lang)}</p><p><a href="${side.prefix}/login">${tr(A.signInAgain, lang)}</a></p>`,
        });
      };
      const state = req.query.state;
      const cookies = (req as FastifyRequest & { cookies: Record<string, string | undefined> }).cookies;
      // the state must be the one this browser started with (login CSRF on the callback)
      if (!state || cookies[stateCookie(side)] !== state) return failed(400, A.signInStateLost);
      reply.clearCookie(stateCookie(side), cookieOpts(isHttps(side.base(oidc.urls))));
      const query = req.url.slice(req.url.indexOf('?'));
      try {
        const done = await finishLogin(ctx, oidc, side, query, state);
        const raw = await createSession(
          ctx.db,
          {
            client: side.client,
            accountId: done.accountId,
            idToken: done.idToken,
            oidcSid: done.sid,
            accessToken: done.accessToken,
            refreshToken: done.refreshToken,
            accessExpiresAt: done.expiresIn ? new Date(Date.now() + done.expiresIn * 1000) : undefined,
          },
          ctx.config,
        );
        // a session this browser had before (another account, or the same again) ends now
        await destroySession(ctx.db, sessionCookieOf(req, side.client));
        setSessionCookie(reply, ctx.config, side.client, raw);
        const prefs = await getPreferences(ctx.db, done.accountId);
        if (prefs.language) reply.setCookie('lang', prefs.language, LANG_COOKIE);
        reply.header('cache-control', 'no-store');
        return reply.redirect(done.back, 303);
      } catch (err) {
        if (err instanceof CallbackError) {
          if (err.kind !== 'cancelled') req.log.warn({ err: err.message }, 'sign-in callback failed');
          return failed(err.kind === 'cancelled' ? 200 : 400, err.kind === 'cancelled' ? A.signInCancelled : err.kind === 'state' ? A.signInStateLost : A.signInError);
        }
        throw err;
      }
    },
  );

  // a link can sign out only through this page's form (a GET must never end a session: CSRF)
  s.get(`${side.prefix}/logout`, { schema: { hide: true }, config: { action: 'session:end' } }, async (req, reply) => {
    const lang = requestLang(req);
    const a = req.actor;
    reply.header('cache-control', 'no-store');
    if (a.kind !== 'citizen' && a.kind !== 'enterprise' && a.kind !== 'staff') return reply.redirect(side.home, 303);
    return sendPage(req, reply, {
      lang,
      shell,
      title: tr(A.signOutTitle, lang),
      main: html`<h1>${tr(A.signOutTitle, lang)}</h1>
<p>${tr(A.signOutText, lang)}</p>
<form class="form" method="post" action="${side.prefix}/logout">
${csrfField(ctx, req, reply)}
<p class="actions"><button class="button" type="submit">${tr(A.signOutButton, lang)}</button> <a href="${side.home}">${tr(A.backHome, lang)}</a></p>
</form>`,
    });
  });

  s.post(
    `${side.prefix}/logout`,
    { schema: { hide: true, body: Type.Optional(Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })) })) }, config: { action: 'session:end' } },
    async (req, reply) => {
      requireFormCsrf(ctx, req);
      const oidc = await getOidc(ctx, localPort(req));
      const ended = await destroySession(ctx.db, sessionCookieOf(req, side.client));
      clearSessionCookie(reply, ctx.config, side.client);
      const actor = req.actor;
      if (ended && (actor.kind === 'citizen' || actor.kind === 'enterprise' || actor.kind === 'staff')) {
        await appendAudit(ctx.db, { actor: auditActorOf(actor), action: 'auth.logout', resource: { type: 'account', id: actor.accountId }, outcome: 'ok', requestId: req.id, ip: req.ip, details: { client: side.clientId } });
      }
      reply.header('cache-control', 'no-store');
      // and at the provider: ends the single sign-on session for every portal and console
      return reply.redirect(endSessionUrl(oidc, side, ended?.idToken ?? null), 303);
    },
  );

  s.get(`${side.prefix}/signed-out`, { schema: { hide: true }, config: { action: 'session:end' } }, async (req, reply) => {
    const lang = requestLang(req);
    return sendPage(req, reply, {
      lang,
      shell,
      title: tr(A.signedOut, lang),
      main: html`<h1>${tr(A.signedOut, lang)}</h1><p>${tr(A.signedOutText, lang)}</p><p><a href="${side.home}">${tr(A.backHome, lang)}</a></p>`,
    });
  });

  // OpenID Connect Back-Channel Logout: the provider tells this RP a sign-in session has ended
  s.post(
    `${side.prefix}/backchannel-logout`,
    { schema: { hide: true, body: Type.Object({ logout_token: Type.String({ maxLength: 10_000 }) }) }, config: { action: 'session:end', csrf: false } },
    async (req, reply) => {
      const oidc = await getOidc(ctx, localPort(req));
      reply.header('cache-control', 'no-store');
      try {
        const t = await verifyLogoutToken(oidc, side, req.body.logout_token);
        if (t.sid) await destroySessionsBySid(ctx.db, side.client, t.sid);
        else if (t.sub) await ctx.db.query('delete from identity.session where client = $1 and account_id::text = $2', [side.client, t.sub]);
        return reply.code(200).send();
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'back-channel logout token refused');
        return reply.code(400).type('application/json').send({ error: 'invalid_request', error_description: 'the logout token is not valid' });
      }
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Preferences page

const PREF_SERVICES = SUBSYSTEMS.filter((x) => x.layer !== 'base');

function preferencesRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const accountId = (req: FastifyRequest) => {
    const a = req.actor;
    if (a.kind === 'citizen' || a.kind === 'enterprise' || a.kind === 'staff') return a.accountId;
    throw problem('forbidden', 'preferences belong to people');
  };
  const render = async (req: FastifyRequest, reply: FastifyReply, savedNote: boolean) => {
    const lang = requestLang(req);
    const p = await getPreferences(ctx.db, accountId(req));
    const checked = (on: boolean) => (on ? html` checked` : '');
    return sendPage(req, reply, {
      lang,
      title: tr(A.preferencesTitle, lang),
      main: html`<h1>${tr(A.preferencesTitle, lang)}</h1>
<p class="lead">${tr(A.preferencesLead, lang)}</p>
${savedNote ? notice({ body: tr(A.saved, lang) }) : ''}
<form class="form" method="post" action="/me/preferences">
${csrfField(ctx, req, reply)}
<fieldset><legend>${tr(A.language, lang)}</legend>
<label><input type="radio" name="language" value=""${checked(p.language === null)}> ${tr(A.languageDefault, lang)}</label>
<label><input type="radio" name="language" value="zh-CN"${checked(p.language === 'zh-CN')}> 中文</label>
<label><input type="radio" name="language" value="en"${checked(p.language === 'en')}> English</label>
</fieldset>
<fieldset><legend>${tr(A.favourites, lang)}</legend><p class="field-hint">${tr(A.favouritesHint, lang)}</p>
${PREF_SERVICES.map((x) => html`<label><input type="checkbox" name="favourites" value="${x.id}"${checked(p.favouriteServices.includes(x.id))}> ${tr(x.name, lang)}</label>`)}
</fieldset>
<fieldset><legend>${tr(A.channels, lang)}</legend><p class="field-hint">${tr(A.channelsHint, lang)}</p>
${CHANNELS.map((c) => html`<label><input type="checkbox" name="channels" value="${c}"${checked(p.notificationChannels.includes(c))}> ${tr(A[`channel_${c}`], lang)}</label>`)}
</fieldset>
<p class="actions"><button class="button" type="submit">${tr(A.save, lang)}</button></p>
</form>`,
    });
  };

  // 谁看过我的数据: every recorded access to the signed-in resident's personal data, newest first
  s.get(
    '/me/data-accesses',
    { schema: { hide: true, querystring: Type.Object({ before: Type.Optional(Type.Integer({ minimum: 1 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'own-data-access:read' } },
    async (req, reply) => {
      const lang = requestLang(req);
      const actor = req.actor;
      if (actor.kind !== 'citizen') throw problem('forbidden', 'residents only');
      const departments = new Map(ctx.profile.departments.map((d) => [d.code, lang === 'en' ? d.nameEn : d.name]));
      const found = await accessesOfSubject(ctx.db, actor.idNumber, { limit: 50, before: req.query.before });
      const T = (zh: string, en: string) => (lang === 'en' ? en : zh);
      return sendPage(req, reply, {
        lang,
        title: T('谁查看了我的数据', 'Who looked at my data'),
        main: html`<div class="wrap"><h1>${T('谁查看了我的数据', 'Who looked at my data')}</h1>
<p class="lead">${T('每一次对您个人数据的读取或修改都记入防篡改的审计日志：时间、部门与用途。', 'Every read or change of your personal data is written to the tamper-evident audit log: when, which department, for what purpose.')}</p>
${table({
  lang,
  caption: T('访问记录', 'Accesses'),
  columns: [{ label: T('时间', 'When'), nowrap: true }, { label: T('部门', 'Department') }, { label: T('操作', 'Action'), code: true }, { label: T('用途', 'Purpose') }, { label: T('结果', 'Outcome') }],
  rows: found.items.map((i) => [formatDateTime(i.at, lang), (i.department && departments.get(i.department)) ?? i.department ?? T('系统', 'system'), i.action, i.purpose ?? '—', i.outcome]),
  empty: T('尚无访问记录。', 'No accesses recorded yet.'),
})}
${found.next ? html`<p><a href="/me/data-accesses?before=${found.next}">${T('更早的记录', 'Earlier accesses')}</a></p>` : ''}</div>`,
      });
    },
  );

  s.get('/me/preferences', { schema: { hide: true, querystring: Type.Object({ saved: Type.Optional(Type.String({ maxLength: 5 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'preference:read' } }, async (req, reply) =>
    render(req, reply, req.query.saved === '1'),
  );

  const Body = Type.Object({
    _csrf: Type.Optional(Type.String({ maxLength: 200 })),
    language: Type.Optional(Type.String({ maxLength: 10 })),
    favourites: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 })),
    channels: Type.Optional(Type.Array(Type.String({ maxLength: 20 }), { maxItems: 10 })),
  });
  s.post('/me/preferences', { schema: { hide: true, body: Body }, config: { action: 'preference:update' } }, async (req, reply) => {
    requireFormCsrf(ctx, req);
    const b = req.body;
    const language = b.language === 'zh-CN' || b.language === 'en' ? b.language : null;
    const known = new Set(PREF_SERVICES.map((x) => x.id));
    const saved = await setPreferences(ctx.db, accountId(req), {
      language,
      favouriteServices: (b.favourites ?? []).filter((f) => known.has(f)),
      notificationChannels: (b.channels ?? []).filter((c): c is Channel => (CHANNELS as readonly string[]).includes(c)),
    });
    if (saved.language) reply.setCookie('lang', saved.language, LANG_COOKIE);
    else reply.clearCookie('lang', { path: '/' });
    return reply.redirect('/me/preferences?saved=1', 303);
  });
}

// ---------------------------------------------------------------------------------------------
// Roles console

function rolesRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const departments = new Map(ctx.profile.departments.map((d) => [d.code, d]));
  const deptName = (code: string | null, lang: Lang) => {
    if (!code) return tr(A.cityWide, lang);
    const d = departments.get(code);
    return d ? (lang === 'en' ? d.nameEn : d.abbr ?? d.name) : code;
  };
  const roleName = (id: string, lang: Lang) => {
    const r = roleById(id);
    return r ? tr(r.name, lang) : id;
  };

  async function render(req: FastifyRequest, reply: FastifyReply, o: { done?: string; error?: string; status?: number } = {}) {
    const lang = requestLang(req);
    const staff = await listStaff(ctx.db);
    const csrf = csrfField(ctx, req, reply);
    const canGrant = ctx.policy.can(req.actor, 'role:grant');
    reply.code(o.status ?? 200);
    const rows = staff.map((p) => [
      html`<code>${p.login}</code>${p.synthetic ? html` <span class="badge">${tr(A.synthetic, lang)}</span>` : ''}`,
      p.name,
      deptName(p.department, lang),
      p.post,
      p.grants.length
        ? html`<ul class="plain">${p.grants.map(
            (g) => html`<li>${roleName(g.role, lang)}${g.scope ? html` · ${deptName(g.scope, lang)}` : ''}${
              canGrant
                ? html` <form class="form-inline" method="post" action="/console/admin/roles/revoke">${csrf}<input type="hidden" name="grantId" value="${g.id}"><button class="button button-secondary button-small" type="submit">${tr(A.revoke, lang)}</button></form>`
                : ''
            }</li>`,
          )}</ul>`
        : tr(A.none, lang),
    ]);
    const grantForm = canGrant
      ? html`<h2 id="grant">${tr(A.grant, lang)}</h2>
<form class="form" method="post" action="/console/admin/roles/grant">
${csrf}
<div class="field"><label for="f-username">${tr(A.username, lang)}</label><select id="f-username" name="username" required>${staff.map(
          (p) => html`<option value="${p.login}">${p.login} · ${p.name}</option>`,
        )}</select></div>
<div class="field"><label for="f-role">${tr(A.role, lang)}</label><select id="f-role" name="role" required>${ROLES.map(
          (r) => html`<option value="${r.id}">${tr(r.name, lang)} (${r.id})</option>`,
        )}</select></div>
<div class="field"><label for="f-scope">${tr(A.scope, lang)}</label><p class="field-hint">${tr(A.noScope, lang)}</p><select id="f-scope" name="scope"><option value="">${tr(A.cityWide, lang)}</option>${ctx.profile.departments.map(
          (d) => html`<option value="${d.code}">${lang === 'en' ? d.nameEn : d.name}</option>`,
        )}</select></div>
<p class="actions"><button class="button" type="submit">${tr(A.grantSubmit, lang)}</button></p>
</form>`
      : '';
    return sendPage(req, reply, {
      lang,
      shell: 'console',
      title: tr(A.rolesTitle, lang),
      breadcrumbs: [{ label: tr({ zh: '工作台', en: 'Workbench' }, lang), href: '/console' }, { label: tr(A.rolesTitle, lang) }],
      main: html`<h1>${tr(A.rolesTitle, lang)}</h1>
<p class="lead">${tr(A.rolesLead, lang)}</p>
${o.done === 'granted' ? notice({ body: tr(A.granted, lang) }) : o.done === 'revoked' ? notice({ body: tr(A.revoked, lang) }) : ''}
${o.error ? notice({ body: o.error, kind: 'warning' }) : ''}
<h2>${tr(A.staff, lang)}</h2>
${table({ lang, caption: tr(A.staff, lang), captionHidden: true, columns: [{ label: tr(A.username, lang), code: true }, { label: tr(A.name, lang) }, { label: tr(A.department, lang), nowrap: true }, { label: tr(A.post, lang) }, { label: tr(A.roles, lang) }], rows })}
${grantForm}
<h2>${tr(A.rolesCatalogue, lang)}</h2>
${table({
  lang,
  caption: tr(A.rolesCatalogue, lang),
  captionHidden: true,
  columns: [{ label: tr(A.role, lang) }, { label: 'id', code: true }, { label: tr(A.scope, lang) }, { label: tr(A.description, lang) }],
  rows: ROLES.map((r) => [tr(r.name, lang), r.id, tr(r.departmentScoped ? A.departmentScoped : A.cityWide, lang), tr(r.description, lang)]),
})}`,
    });
  }

  s.get('/console/admin/roles', { schema: { hide: true, querystring: Type.Object({ done: Type.Optional(Type.String({ maxLength: 20 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: { action: 'role:list' } }, async (req, reply) =>
    render(req, reply, { done: req.query.done }),
  );

  const origin = (req: FastifyRequest) => ({ ip: req.ip, requestId: req.id });
  s.post(
    '/console/admin/roles/grant',
    { schema: { hide: true, body: Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })), username: Type.String({ maxLength: 64 }), role: Type.String({ maxLength: 64 }), scope: Type.Optional(Type.String({ maxLength: 64 })) }) }, config: { action: 'role:grant' } },
    async (req, reply) => {
      requireFormCsrf(ctx, req);
      const lang = requestLang(req);
      const account = /^[a-z][a-z0-9._-]{1,63}$/.test(req.body.username) ? await findAccountByLogin(ctx.db, 'staff', req.body.username) : null;
      if (!account) return render(req, reply, { error: tr({ zh: '没有这个工作人员账号', en: 'no such staff account' }, lang), status: 400 });
      try {
        await ctx.db.tx((c) => grantRole(c, { accountId: account.id, role: req.body.role, scope: req.body.scope || null }, req.actor, origin(req), { departments: new Set(departments.keys()) }));
      } catch (err) {
        if (err instanceof AccountError) return render(req, reply, { error: tr(err.reason, lang), status: err.code === 'exists' ? 409 : 400 });
        throw err;
      }
      return reply.redirect('/console/admin/roles?done=granted', 303);
    },
  );

  s.post(
    '/console/admin/roles/revoke',
    { schema: { hide: true, body: Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: 200 })), grantId: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) }) }, config: { action: 'role:revoke' } },
    async (req, reply) => {
      requireFormCsrf(ctx, req);
      const lang = requestLang(req);
      try {
        await ctx.db.tx((c) => revokeRole(c, req.body.grantId, req.actor, origin(req)));
      } catch (err) {
        if (err instanceof AccountError) return render(req, reply, { error: tr(err.reason, lang), status: 404 });
        throw err;
      }
      return reply.redirect('/console/admin/roles?done=revoked', 303);
    },
  );
}

export const authPortalModule: GusuModule = {
  name: 'auth-portal',
  // its actions (session:*, preference:*, role:*) are in the identity module's policy
  // (src/base/identity/policy-rules.ts): this module is identity's face on the portal and console
  async start() {
    enableSignInLinks(true);
  },
  publicRoutes(app, ctx) {
    rpRoutes(app, ctx, PORTAL);
    preferencesRoutes(app, ctx);
  },
  internalRoutes(app, ctx) {
    rpRoutes(app, ctx, CONSOLE);
    rolesRoutes(app, ctx);
  },
};
