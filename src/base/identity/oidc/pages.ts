// The sign-in and registration pages of the OpenID provider, in the platform layout. Plain HTML
// forms (no script), each with its CSRF field; errors are listed at the top and beside each field.
import { html, type Html } from '../../../http/html.ts';
import { tr, type Lang, type Text } from '../../../http/i18n.ts';
import { notice } from '../../../http/layout.ts';
import { fill } from '../../../http/messages.ts';
import { T } from './messages.ts';

export type LoginKind = 'citizen' | 'staff' | 'enterprise';

export interface FieldSpec {
  name: string;
  label: Text;
  type?: 'text' | 'password' | 'textarea';
  value?: string;
  autocomplete?: string;
  hint?: Text;
  maxlength?: number;
  inputmode?: 'numeric' | 'text';
  required?: boolean;
  readonly?: boolean;
}

export type FieldErrors = Record<string, Text>;

export function field(f: FieldSpec, lang: Lang, errors: FieldErrors = {}): Html {
  const id = `f-${f.name}`;
  const err = errors[f.name];
  const described = [f.hint ? `${id}-hint` : '', err ? `${id}-error` : ''].filter(Boolean).join(' ');
  const common = html` id="${id}" name="${f.name}"${f.required !== false ? html` required` : ''}${f.maxlength ? html` maxlength="${f.maxlength}"` : ''}${
    f.autocomplete ? html` autocomplete="${f.autocomplete}"` : ''
  }${described ? html` aria-describedby="${described}"` : ''}${err ? html` aria-invalid="true"` : ''}${f.readonly ? html` readonly` : ''}`;
  const input =
    f.type === 'textarea'
      ? html`<textarea${common} rows="6" spellcheck="false">${f.value ?? ''}</textarea>`
      : html`<input type="${f.type ?? 'text'}"${common}${f.inputmode ? html` inputmode="${f.inputmode}"` : ''}${f.type === 'password' ? '' : html` value="${f.value ?? ''}"`}>`;
  return html`<div class="field${err ? ' field-invalid' : ''}">
<label for="${id}">${tr(f.label, lang)}</label>
${f.hint ? html`<p class="field-hint" id="${id}-hint">${tr(f.hint, lang)}</p>` : ''}
${err ? html`<p class="field-error" id="${id}-error">${tr(err, lang)}</p>` : ''}
${input}
</div>`;
}

export function errorSummary(errors: FieldErrors, lang: Lang): Html {
  const entries = Object.entries(errors);
  if (!entries.length) return html``;
  return html`<div class="notice notice-warning error-summary" role="alert"><p class="notice-title">${tr(T.fixErrors, lang)}</p><ul>${entries.map(
    ([name, text]) => html`<li><a href="#f-${name}">${tr(text, lang)}</a></li>`,
  )}</ul></div>`;
}

export interface LoginPageOptions {
  lang: Lang;
  uid: string;
  as: LoginKind;
  kinds: readonly LoginKind[];
  clientName: string;
  csrf: Html;
  values?: Record<string, string>;
  errors?: FieldErrors;
  /** a message above the form (wrong password, locked) */
  message?: Text;
  /** the enterprise step 2: the challenge to sign */
  challenge?: { text: string; uscc: string };
  enterpriseAvailable: boolean;
}

const KIND_LABEL: Record<LoginKind, Text> = { citizen: T.asCitizen, enterprise: T.asEnterprise, staff: T.asStaff };

export function loginPage(o: LoginPageOptions): { title: string; main: Html } {
  const { lang, uid } = o;
  const base = `/auth/interaction/${encodeURIComponent(uid)}`;
  const v = o.values ?? {};
  const errors = o.errors ?? {};
  const tabs =
    o.kinds.length > 1
      ? html`<nav class="tabs" aria-label="${tr(T.loginKinds, lang)}"><ul>${o.kinds.map((k) =>
          k === o.as
            ? html`<li><span aria-current="page">${tr(KIND_LABEL[k], lang)}</span></li>`
            : html`<li><a href="${base}?as=${k}">${tr(KIND_LABEL[k], lang)}</a></li>`,
        )}</ul></nav>`
      : '';
  let form: Html;
  if (o.as === 'citizen') {
    form = html`<form class="form" method="post" action="${base}/citizen" novalidate>
${o.csrf}
${field({ name: 'idNumber', label: T.idNumber, hint: T.idNumberHint, value: v.idNumber, autocomplete: 'username', maxlength: 18 }, lang, errors)}
${field({ name: 'password', label: T.password, type: 'password', autocomplete: 'current-password', maxlength: 256 }, lang, errors)}
<p class="actions"><button class="button" type="submit">${tr(T.signIn, lang)}</button></p>
</form>
<p>${tr(T.noAccount, lang)} <a href="${base}/register">${tr(T.register, lang)}</a></p>`;
  } else if (o.as === 'staff') {
    form = html`<form class="form" method="post" action="${base}/staff" novalidate>
${o.csrf}
${field({ name: 'username', label: T.username, value: v.username, autocomplete: 'username', maxlength: 64 }, lang, errors)}
${field({ name: 'password', label: T.password, type: 'password', autocomplete: 'current-password', maxlength: 256 }, lang, errors)}
${field({ name: 'totp', label: T.totp, hint: T.totpHint, autocomplete: 'one-time-code', inputmode: 'numeric', maxlength: 6 }, lang, errors)}
<p class="actions"><button class="button" type="submit">${tr(T.signIn, lang)}</button></p>
</form>`;
  } else if (!o.enterpriseAvailable) {
    form = notice({ body: tr(T.enterpriseUnavailable, lang), kind: 'warning' });
  } else if (!o.challenge) {
    form = html`<p>${tr(T.enterpriseLead, lang)}</p>
<form class="form" method="post" action="${base}/enterprise/challenge" novalidate>
${o.csrf}
${field({ name: 'uscc', label: T.uscc, value: v.uscc, maxlength: 18, autocomplete: 'organization' }, lang, errors)}
<p class="actions"><button class="button" type="submit">${tr(T.getChallenge, lang)}</button></p>
</form>`;
  } else {
    form = html`<p>${tr(T.enterpriseLead, lang)}</p>
<form class="form" method="post" action="${base}/enterprise" novalidate>
${o.csrf}
<input type="hidden" name="uscc" value="${o.challenge.uscc}">
<div class="field"><p class="field-label">${tr(T.challenge, lang)}</p><pre class="challenge" id="challenge">${o.challenge.text}</pre>
<p class="field-hint">${tr(T.challengeHelp, lang)}</p></div>
<input type="hidden" name="challenge" value="${o.challenge.text}">
${field({ name: 'certificate', label: T.certificate, type: 'textarea', value: v.certificate, maxlength: 20000 }, lang, errors)}
${field({ name: 'signature', label: T.signature, type: 'textarea', value: v.signature, maxlength: 2000 }, lang, errors)}
<p class="actions"><button class="button" type="submit">${tr(T.signIn, lang)}</button></p>
</form>`;
  }
  const main = html`<h1>${tr(T.signInTitle, lang)}</h1>
<p class="lead">${tr(T.signInLead, lang)}</p>
<p class="muted">${fill(tr(T.signInFor, lang), { client: o.clientName })}</p>
${tabs}
${o.message ? notice({ body: tr(o.message, lang), kind: 'warning' }) : ''}
${errorSummary(errors, lang)}
${form}
<form method="post" action="${base}/abort" class="form-inline">${o.csrf}<button class="button button-secondary" type="submit">${tr(T.cancel, lang)}</button></form>`;
  return { title: tr(T.signInTitle, lang), main };
}

export function registerPage(o: { lang: Lang; uid: string; csrf: Html; values?: Record<string, string>; errors?: FieldErrors }): { title: string; main: Html } {
  const { lang } = o;
  const base = `/auth/interaction/${encodeURIComponent(o.uid)}`;
  const v = o.values ?? {};
  const errors = o.errors ?? {};
  const main = html`<h1>${tr(T.registerTitle, lang)}</h1>
<p class="lead">${tr(T.registerLead, lang)}</p>
${errorSummary(errors, lang)}
<form class="form" method="post" action="${base}/register" novalidate>
${o.csrf}
${field({ name: 'idNumber', label: T.idNumber, hint: T.idNumberHint, value: v.idNumber, autocomplete: 'username', maxlength: 18 }, lang, errors)}
${field({ name: 'name', label: T.name, hint: T.nameHint, value: v.name, autocomplete: 'name', maxlength: 50 }, lang, errors)}
${field({ name: 'password', label: T.password, hint: T.passwordHint, type: 'password', autocomplete: 'new-password', maxlength: 256 }, lang, errors)}
${field({ name: 'password2', label: T.passwordRepeat, type: 'password', autocomplete: 'new-password', maxlength: 256 }, lang, errors)}
<p class="actions"><button class="button" type="submit">${tr(T.registerSubmit, lang)}</button></p>
</form>
<p><a href="${base}?as=citizen">${tr(T.haveAccount, lang)}</a></p>`;
  return { title: tr(T.registerTitle, lang), main };
}

export function messagePage(lang: Lang, title: Text, body: Text): { title: string; main: Html } {
  return { title: tr(title, lang), main: html`<h1>${tr(title, lang)}</h1><p>${tr(body, lang)}</p><p><a href="/">${tr(T.backHome, lang)}</a></p>` };
}
