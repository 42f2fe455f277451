// The OpenID provider on the public face: oidc-provider's own endpoints under /oidc, and our
// interaction pages under /auth/interaction/:uid (sign in as a resident, a member of staff or an
// enterprise; register as a resident; cancel). Every form carries a CSRF token bound to the
// interaction; every sign-in path goes through the IP rate limit and the account lockout.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { requestLang, tr, type Lang, type Text } from '../../../http/i18n.ts';
import { sendPage } from '../../../http/layout.ts';
import { fill } from '../../../http/messages.ts';
import { problem } from '../../../http/problems.ts';
import type { ModuleContext } from '../../../module.ts';
import { cachedSecrets } from './secrets.ts';
import { AccountError, passwordLogin, registerCitizen, takeIpSlot, type Account, type LoginResult, type Origin } from '../accounts/index.ts';
import { getPreferences } from '../accounts/preferences.ts';
import { MAX_PASSWORD_LENGTH } from '../accounts/passwords.ts';
import { checkCsrf, csrfField } from '../sessions/csrf.ts';
import { enterpriseAvailable, issueChallenge, enterpriseLogin, EnterpriseLoginError } from '../accounts/enterprise.ts';
import { cspWithFormTargets, originOrNull } from './csp.ts';
import { T } from './messages.ts';
import { loginPage, messagePage, registerPage, type FieldErrors, type LoginKind } from './pages.ts';
import { CONSOLE_CLIENT, getOidc, type Oidc } from './provider.ts';

const OIDC = { action: 'oidc:use' } as const;
// the sign-in forms check their CSRF token themselves, bound to the interaction
const LOGIN = { action: 'login:use', csrf: false } as const;

const Uid = Type.Object({ uid: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Csrf = { _csrf: Type.Optional(Type.String({ maxLength: 200 })) };
// generous bounds at the schema (a clear 400 for absurd input); the handlers check the real formats
const Str = (max: number) => Type.String({ maxLength: max });

const localPort = (req: FastifyRequest): number | undefined => req.socket?.localPort;

/** Extra form-action origins for this request's CSP (set by a handler, read by the onSend hook). */
const formTargets = new WeakMap<FastifyRequest, string[]>();

function origin(req: FastifyRequest): Origin {
  return { ip: req.ip, requestId: req.id };
}

export function oidcRoutes(app: FastifyInstance, ctx: ModuleContext): void {
  // ------------------------------------------------------------------------------------------
  // oidc-provider itself. Its body parser reads the raw stream, so this scope parses nothing.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
    scope.route({
      method: ['GET', 'POST'],
      url: '/oidc/*',
      schema: { hide: true },
      config: OIDC,
      handler: async (req, reply) => {
        const oidc = await getOidc(ctx, localPort(req));
        reply.hijack();
        const raw = req.raw as IncomingMessage & { originalUrl?: string };
        raw.originalUrl = raw.url;
        raw.url = raw.url!.slice('/oidc'.length) || '/';
        const res = reply.raw;
        res.setHeader('x-request-id', req.id);
        res.setHeader('content-security-policy', cspWithFormTargets(oidc.formTargets));
        res.setHeader('x-content-type-options', 'nosniff');
        res.setHeader('referrer-policy', 'same-origin');
        res.setHeader('x-frame-options', 'DENY');
        res.setHeader('cross-origin-opener-policy', 'same-origin');
        await oidc.callback(raw, res);
      },
    });
  });

  // ------------------------------------------------------------------------------------------
  // Interaction pages
  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.addHook('onSend', async (req, reply, payload) => {
      const oidc = await getOidc(ctx, localPort(req));
      reply.header('content-security-policy', cspWithFormTargets([...oidc.formTargets, ...(formTargets.get(req) ?? [])]));
      reply.header('cache-control', 'no-store');
      return payload;
    });

    type Details = Awaited<ReturnType<Oidc['provider']['interactionDetails']>>;

    /** The interaction this browser is in, if it is the one the URL names. */
    async function interaction(req: FastifyRequest, reply: FastifyReply, uid: string): Promise<{ oidc: Oidc; details: Details } | null> {
      const oidc = await getOidc(ctx, localPort(req));
      try {
        const details = await oidc.provider.interactionDetails(req.raw, reply.raw);
        if (details.uid !== uid) return null;
        const target = originOrNull(details.params.redirect_uri);
        if (target) formTargets.set(req, [target]);
        return { oidc, details };
      } catch {
        return null;
      }
    }

    function expired(req: FastifyRequest, reply: FastifyReply) {
      const lang = requestLang(req);
      reply.code(400);
      return sendPage(req, reply, { lang, ...messagePage(lang, T.signInTitle, T.expired) });
    }

    function kindsFor(details: Details): LoginKind[] {
      return details.params.client_id === CONSOLE_CLIENT ? ['staff'] : ['citizen', 'enterprise', 'staff'];
    }

    async function clientName(oidc: Oidc, details: Details, lang: Lang): Promise<string> {
      const client = await oidc.provider.Client.find(String(details.params.client_id));
      const name = client?.clientName ?? String(details.params.client_id);
      // the platform's clients are named "门户 Portal": show the half in the page's language
      const parts = name.split(' ');
      return parts.length === 2 && /[\u4e00-\u9fff]/.test(parts[0]!) ? (lang === 'en' ? parts[1]! : parts[0]!) : name;
    }

    const binding = (uid: string) => `interaction:${uid}`;

    async function renderLogin(
      req: FastifyRequest,
      reply: FastifyReply,
      it: { oidc: Oidc; details: Details },
      o: { as?: LoginKind; values?: Record<string, string>; errors?: FieldErrors; message?: Text; challenge?: { text: string; uscc: string }; status?: number } = {},
    ) {
      const lang = requestLang(req);
      const kinds = kindsFor(it.details);
      const as = o.as && kinds.includes(o.as) ? o.as : kinds[0]!;
      reply.code(o.status ?? 200);
      const body = loginPage({
        lang,
        uid: it.details.uid,
        as,
        kinds,
        clientName: await clientName(it.oidc, it.details, lang),
        csrf: csrfField(ctx, req, reply, binding(it.details.uid)),
        values: o.values,
        errors: o.errors,
        message: o.message,
        challenge: o.challenge,
        enterpriseAvailable: enterpriseAvailable(ctx),
      });
      return sendPage(req, reply, { lang, shell: it.details.params.client_id === CONSOLE_CLIENT ? 'console' : 'portal', ...body });
    }

    function requireCsrf(req: FastifyRequest, uid: string) {
      if (!checkCsrf(ctx, req, binding(uid))) throw problem('forbidden', 'the form’s CSRF token is missing or does not match: reload the page and try again');
    }

    /** Finishes the interaction as this account and sends the browser on. */
    async function finish(req: FastifyRequest, reply: FastifyReply, it: { oidc: Oidc }, account: Account, amr: string[]) {
      const returnTo = await it.oidc.provider.interactionResult(
        req.raw,
        reply.raw,
        { login: { accountId: account.id, amr, remember: false } },
        { mergeWithLastSubmission: false },
      );
      const prefs = await getPreferences(ctx.db, account.id);
      if (prefs.language) reply.setCookie('lang', prefs.language, { path: '/', sameSite: 'lax', httpOnly: true, maxAge: 365 * 24 * 3600 });
      return reply.redirect(returnTo, 303);
    }

    function failureMessage(r: Extract<LoginResult, { ok: false }>, staff: boolean): { message: Text; status: number } {
      if (r.reason === 'locked') return { message: fillText(T.locked, { seconds: r.retryAfter ?? 60 }), status: 429 };
      if (r.reason === 'rate-limited') return { message: fillText(T.rateLimited, { seconds: r.retryAfter ?? 60 }), status: 429 };
      return { message: staff ? T.invalidStaffCredentials : T.invalidCredentials, status: 401 };
    }

    scope.get(
      '/auth/interaction/:uid',
      { schema: { hide: true, params: Uid, querystring: Type.Object({ as: Type.Optional(Type.String({ maxLength: 20 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }) }, config: LOGIN },
      async (req, reply) => {
        const it = await interaction(req, reply, req.params.uid);
        if (!it) return expired(req, reply);
        const { details } = it;
        if (details.prompt.name === 'consent') {
          // first-party clients only: grant what is asked and carry on without a page
          const grant = details.grantId ? await it.oidc.provider.Grant.find(details.grantId) : new it.oidc.provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
          const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
          if (d.missingOIDCScope) grant!.addOIDCScope(d.missingOIDCScope);
          if (d.missingOIDCClaims) grant!.addOIDCClaims(d.missingOIDCClaims);
          const grantId = await grant!.save();
          const returnTo = await it.oidc.provider.interactionResult(req.raw, reply.raw, { consent: { grantId } }, { mergeWithLastSubmission: true });
          return reply.redirect(returnTo, 303);
        }
        const as = req.query.as as LoginKind | undefined;
        return renderLogin(req, reply, it, { as });
      },
    );

    const CitizenBody = Type.Object({ ...Csrf, idNumber: Str(200), password: Str(2 * MAX_PASSWORD_LENGTH) });
    scope.post('/auth/interaction/:uid/citizen', { schema: { hide: true, params: Uid, body: CitizenBody }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const idNumber = req.body.idNumber.trim().toUpperCase();
      const errors: FieldErrors = {};
      if (!/^[0-9]{17}[0-9X]$/.test(idNumber)) errors.idNumber = { zh: '请输入 18 位公民身份号码', en: 'enter the 18-character ID number' };
      if (!req.body.password || req.body.password.length > MAX_PASSWORD_LENGTH) errors.password = { zh: '请输入密码', en: 'enter the password' };
      if (Object.keys(errors).length) return renderLogin(req, reply, it, { as: 'citizen', values: { idNumber: req.body.idNumber.slice(0, 18) }, errors, status: 400 });
      const r = await passwordLogin(ctx.db, { kind: 'citizen', login: idNumber, password: req.body.password }, origin(req), { ratePerMinute: ctx.config.loginRatePerMinute, secrets: cachedSecrets(ctx.db) });
      if (!r.ok) {
        const f = failureMessage(r, false);
        if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
        return renderLogin(req, reply, it, { as: 'citizen', values: { idNumber }, message: f.message, status: f.status });
      }
      return finish(req, reply, it, r.account, r.amr);
    });

    const StaffBody = Type.Object({ ...Csrf, username: Str(200), password: Str(2 * MAX_PASSWORD_LENGTH), totp: Str(20) });
    scope.post('/auth/interaction/:uid/staff', { schema: { hide: true, params: Uid, body: StaffBody }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const username = req.body.username.trim().toLowerCase();
      const errors: FieldErrors = {};
      if (!/^[a-z][a-z0-9._-]{1,63}$/.test(username)) errors.username = { zh: '用户名为小写字母、数字或 . _ -，以字母开头', en: 'a user name is lower-case letters, digits or . _ -, starting with a letter' };
      if (!req.body.password || req.body.password.length > MAX_PASSWORD_LENGTH) errors.password = { zh: '请输入密码', en: 'enter the password' };
      if (!/^\d{6}$/.test(req.body.totp.trim())) errors.totp = { zh: '请输入 6 位动态验证码', en: 'enter the 6-digit one-time code' };
      const shown = /^[\x20-\x7e]{0,64}$/.test(req.body.username) ? req.body.username : '';
      if (Object.keys(errors).length) return renderLogin(req, reply, it, { as: 'staff', values: { username: shown }, errors, status: 400 });
      const r = await passwordLogin(ctx.db, { kind: 'staff', login: username, password: req.body.password, totp: req.body.totp.trim() }, origin(req), { ratePerMinute: ctx.config.loginRatePerMinute, secrets: cachedSecrets(ctx.db) });
      if (!r.ok) {
        const f = failureMessage(r, true);
        if (r.retryAfter) reply.header('retry-after', String(r.retryAfter));
        return renderLogin(req, reply, it, { as: 'staff', values: { username }, message: f.message, status: f.status });
      }
      return finish(req, reply, it, r.account, r.amr);
    });

    scope.get('/auth/interaction/:uid/register', { schema: { hide: true, params: Uid }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      const lang = requestLang(req);
      return sendPage(req, reply, { lang, ...registerPage({ lang, uid: it.details.uid, csrf: csrfField(ctx, req, reply, binding(it.details.uid)) }) });
    });

    const RegisterBody = Type.Object({ ...Csrf, idNumber: Str(200), name: Str(200), password: Str(2 * MAX_PASSWORD_LENGTH), password2: Str(2 * MAX_PASSWORD_LENGTH) });
    scope.post('/auth/interaction/:uid/register', { schema: { hide: true, params: Uid, body: RegisterBody }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const lang = requestLang(req);
      const b = req.body;
      const values = { idNumber: b.idNumber.slice(0, 18), name: b.name.slice(0, 50) };
      const again = (errors: FieldErrors, status: number) => {
        reply.code(status);
        return sendPage(req, reply, { lang, ...registerPage({ lang, uid: it.details.uid, csrf: csrfField(ctx, req, reply, binding(it.details.uid)), values, errors }) });
      };
      if (b.password !== b.password2) return again({ password2: T.passwordsDiffer }, 400);
      const slot = await takeIpSlot(ctx.db, req.ip, ctx.config.loginRatePerMinute);
      if (!slot.ok) {
        reply.header('retry-after', String(slot.retryAfter));
        return again({ idNumber: fillText(T.rateLimited, { seconds: slot.retryAfter }) }, 429);
      }
      try {
        const account = await registerCitizen(ctx.db, { idNumber: b.idNumber, name: b.name, password: b.password }, origin(req));
        return finish(req, reply, it, account, ['pwd']);
      } catch (err) {
        if (err instanceof AccountError) return again({ [err.field]: err.reason }, err.code === 'exists' ? 409 : 400);
        throw err;
      }
    });

    const ChallengeBody = Type.Object({ ...Csrf, uscc: Str(200) });
    scope.post('/auth/interaction/:uid/enterprise/challenge', { schema: { hide: true, params: Uid, body: ChallengeBody }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const uscc = req.body.uscc.trim().toUpperCase();
      const slot = await takeIpSlot(ctx.db, req.ip, ctx.config.loginRatePerMinute);
      if (!slot.ok) {
        reply.header('retry-after', String(slot.retryAfter));
        return renderLogin(req, reply, it, { as: 'enterprise', values: { uscc: uscc.slice(0, 18) }, message: fillText(T.rateLimited, { seconds: slot.retryAfter }), status: 429 });
      }
      try {
        const challenge = await issueChallenge(ctx, { uscc, interactionUid: it.details.uid, issuer: it.oidc.urls.issuer });
        return renderLogin(req, reply, it, { as: 'enterprise', challenge: { text: challenge, uscc } });
      } catch (err) {
        if (err instanceof EnterpriseLoginError) return renderLogin(req, reply, it, { as: 'enterprise', values: { uscc: uscc.slice(0, 18) }, errors: { uscc: err.reason }, status: 400 });
        throw err;
      }
    });

    const EnterpriseBody = Type.Object({ ...Csrf, uscc: Str(200), challenge: Str(1000), certificate: Str(20000), signature: Str(2000) });
    scope.post('/auth/interaction/:uid/enterprise', { schema: { hide: true, params: Uid, body: EnterpriseBody }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const b = req.body;
      const slot = await takeIpSlot(ctx.db, req.ip, ctx.config.loginRatePerMinute);
      if (!slot.ok) {
        reply.header('retry-after', String(slot.retryAfter));
        return renderLogin(req, reply, it, { as: 'enterprise', message: fillText(T.rateLimited, { seconds: slot.retryAfter }), status: 429 });
      }
      try {
        const account = await enterpriseLogin(ctx, { uscc: b.uscc.trim().toUpperCase(), challenge: b.challenge, certificatePem: b.certificate, signature: b.signature, interactionUid: it.details.uid }, origin(req));
        return finish(req, reply, it, account, ['hwk', 'sc']);
      } catch (err) {
        if (err instanceof EnterpriseLoginError) {
          return renderLogin(req, reply, it, { as: 'enterprise', values: { uscc: b.uscc.slice(0, 18) }, message: fillText(T.enterpriseFailed, { reason: '' }, err.reason), status: err.status });
        }
        throw err;
      }
    });

    scope.post('/auth/interaction/:uid/abort', { schema: { hide: true, params: Uid, body: Type.Optional(Type.Object({ ...Csrf })) }, config: LOGIN }, async (req, reply) => {
      const it = await interaction(req, reply, req.params.uid);
      if (!it) return expired(req, reply);
      requireCsrf(req, it.details.uid);
      const returnTo = await it.oidc.provider.interactionResult(req.raw, reply.raw, { error: 'access_denied', error_description: 'the user cancelled the sign-in' }, { mergeWithLastSubmission: false });
      return reply.redirect(returnTo, 303);
    });
  });
}

/** fills {placeholders} in both languages; `suffix` is appended to each (a translated reason) */
function fillText(t: Text, values: Record<string, string | number>, suffix?: Text): Text {
  return { zh: fill(t.zh, values) + (suffix?.zh ?? ''), en: fill(t.en, values) + (suffix?.en ?? '') };
}

