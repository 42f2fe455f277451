// Notice templates: versioned texts per language with {{placeholders}}. A placeholder is either a
// recipient attribute the platform fills in from the registries ({{name}}, {{street}}, ...) or a
// variable the template declares and every notice must supply ({{deadline}}). Both are checked when
// a template is saved; a version never changes afterwards. Rendering escapes every value for HTML.
import { escapeHtml, raw, type Html } from '../../http/html.ts';
import type { Lang } from '../../http/i18n.ts';
import type { Queryable } from '../../db/index.ts';

/** Filled per recipient from the registries (and, for department and date, from the notice). */
export const RECIPIENT_ATTRIBUTES = ['name', 'street', 'community', 'county', 'department', 'date'] as const;
export type RecipientAttribute = (typeof RECIPIENT_ATTRIBUTES)[number];

export const VARIABLE = /^[a-z][a-z0-9_]{0,31}$/;
export const TEMPLATE_KEY = /^[a-z][a-z0-9-]{1,63}$/;
export const LIMITS = { name: 100, subject: 200, body: 5000, variables: 20, value: 500 } as const;

export interface Texts {
  zh: string;
  en?: string | null;
}

export interface TemplateInput {
  key: string;
  name: Texts;
  subject: Texts;
  body: Texts;
  variables?: string[];
}

export interface Template {
  key: string;
  version: number;
  department: string;
  name: Texts;
  subject: Texts;
  body: Texts;
  variables: string[];
  createdBy: string;
  createdAt: string;
  synthetic: boolean;
}

/** A template or notice text that cannot be used: says which field and why. */
export class TemplateError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/** The placeholders a text uses; throws for unknown ones and for stray braces. */
export function checkPlaceholders(field: string, text: string, known: ReadonlySet<string>): string[] {
  const used: string[] = [];
  const rest = text.replace(PLACEHOLDER, (_m, inner: string) => {
    const name = inner.trim();
    if (!VARIABLE.test(name)) throw new TemplateError(field, `{{${inner.slice(0, 40)}}} is not a placeholder name (lower-case letters, digits, _)`);
    if (!known.has(name)) throw new TemplateError(field, `{{${name}}} is neither a recipient attribute (${RECIPIENT_ATTRIBUTES.join(', ')}) nor a declared variable`);
    used.push(name);
    return '';
  });
  if (rest.includes('{{') || rest.includes('}}')) throw new TemplateError(field, 'has an unmatched {{ or }}');
  return used;
}

// control characters other than tab and newline have no place in a notice
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function checkText(field: string, v: unknown, max: number, required: boolean): string | null {
  if (v === undefined || v === null || v === '') {
    if (required) throw new TemplateError(field, 'is required');
    return null;
  }
  if (typeof v !== 'string') throw new TemplateError(field, 'expected text');
  const s = v.replace(/\r\n?/g, '\n');
  if (s.trim() === '') {
    if (required) throw new TemplateError(field, 'is required');
    return null;
  }
  if (s.length > max) throw new TemplateError(field, `at most ${max} characters (got ${s.length})`);
  if (CONTROL.test(s)) throw new TemplateError(field, 'contains control characters');
  return s;
}

/** Validates the texts of a template (or of an ad-hoc notice) and returns them normalised. */
export function checkTemplateInput(t: TemplateInput): Required<Pick<TemplateInput, 'key' | 'variables'>> & { name: Texts; subject: Texts; body: Texts } {
  if (typeof t.key !== 'string' || !TEMPLATE_KEY.test(t.key)) throw new TemplateError('key', 'expected 2–64 lower-case letters, digits and hyphens, starting with a letter');
  const variables = [...new Set(t.variables ?? [])];
  if (variables.length > LIMITS.variables) throw new TemplateError('variables', `at most ${LIMITS.variables}`);
  for (const v of variables) {
    if (typeof v !== 'string' || !VARIABLE.test(v)) throw new TemplateError('variables', `${JSON.stringify(String(v).slice(0, 40))} is not a variable name (lower-case letters, digits, _)`);
    if ((RECIPIENT_ATTRIBUTES as readonly string[]).includes(v)) throw new TemplateError('variables', `${v} is a recipient attribute the platform fills in`);
  }
  const known = new Set<string>([...RECIPIENT_ATTRIBUTES, ...variables]);
  const out = {
    key: t.key,
    variables,
    name: { zh: checkText('name.zh', t.name?.zh, LIMITS.name, true)!, en: checkText('name.en', t.name?.en, LIMITS.name, false) },
    subject: { zh: checkText('subject.zh', t.subject?.zh, LIMITS.subject, true)!, en: checkText('subject.en', t.subject?.en, LIMITS.subject, false) },
    body: { zh: checkText('body.zh', t.body?.zh, LIMITS.body, true)!, en: checkText('body.en', t.body?.en, LIMITS.body, false) },
  };
  for (const f of ['subject', 'body'] as const) {
    for (const l of ['zh', 'en'] as const) {
      const text = out[f][l];
      if (text) checkPlaceholders(`${f}.${l}`, text, known);
    }
  }
  for (const l of ['zh', 'en'] as const) if (out.subject[l]?.includes('\n')) throw new TemplateError(`subject.${l}`, 'must be one line');
  return out;
}

/** Checks the values a notice gives for a template's variables: every declared one, nothing else. */
export function checkVars(variables: readonly string[], vars: Record<string, unknown> | undefined): Record<string, string> {
  const given = vars ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) throw new TemplateError('vars', 'expected an object of variable values');
  const out: Record<string, string> = {};
  for (const k of Object.keys(given)) if (!variables.includes(k)) throw new TemplateError(`vars.${k.slice(0, 40)}`, 'the template declares no such variable');
  for (const v of variables) {
    const value = given[v];
    if (typeof value !== 'string' || value.trim() === '') throw new TemplateError(`vars.${v}`, 'is required by the template');
    if (value.length > LIMITS.value) throw new TemplateError(`vars.${v}`, `at most ${LIMITS.value} characters`);
    if (CONTROL.test(value) || /[\r\n]/.test(value)) throw new TemplateError(`vars.${v}`, 'must be one line of text');
    out[v] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering

const NAME = /\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g;

/** Plain text with the placeholders filled (unknown ones become empty). Not escaped: for SMS and email text. */
export function renderText(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(NAME, (_m, k: string) => (Object.hasOwn(values, k) ? values[k]! : ''));
}

/** The body as HTML: filled, every character escaped, blank lines make paragraphs, single newlines breaks. */
export function renderHtml(text: string, values: Readonly<Record<string, string>>): Html {
  const filled = escapeHtml(renderText(text, values));
  const paragraphs = filled
    .split(/\n{2,}/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `<p>${p.replace(/\n/g, '<br>')}</p>`);
  return raw(paragraphs.join('\n'));
}

/** The text of a language, falling back to Chinese. */
export function pick(t: Texts | { zh: string; en?: string | null }, lang: Lang): string {
  return lang === 'en' && t.en ? t.en : t.zh;
}

// ---------------------------------------------------------------------------------------------
// Storage

interface TemplateRow {
  key: string;
  version: number;
  department: string;
  name_zh: string;
  name_en: string | null;
  subject_zh: string;
  subject_en: string | null;
  body_zh: string;
  body_en: string | null;
  variables: string[];
  created_by: string;
  created_at: Date;
  synthetic: boolean;
}

const COLUMNS = 'key, version, department, name_zh, name_en, subject_zh, subject_en, body_zh, body_en, variables, created_by, created_at, synthetic';

function toTemplate(r: TemplateRow): Template {
  return {
    key: r.key,
    version: r.version,
    department: r.department,
    name: { zh: r.name_zh, en: r.name_en },
    subject: { zh: r.subject_zh, en: r.subject_en },
    body: { zh: r.body_zh, en: r.body_en },
    variables: r.variables,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    synthetic: r.synthetic,
  };
}

/** the key is another department's: a department keeps its own templates */
export class TemplateOwnerError extends Error {}

/** Saves a new version of key (version 1 if new); the key stays with the department that created it. Run in a transaction. */
export async function saveTemplate(q: Queryable, department: string, createdBy: string, input: TemplateInput, opts: { synthetic?: boolean } = {}): Promise<Template> {
  const t = checkTemplateInput(input);
  await q.query('select pg_advisory_xact_lock(hashtext($1))', [`messaging.template:${t.key}`]);
  const { rows: latest } = await q.query<{ department: string; version: number }>('select department, version from messaging.template where key = $1 order by version desc limit 1', [t.key]);
  if (latest[0] && latest[0].department !== department) throw new TemplateOwnerError(`the template ${t.key} belongs to ${latest[0].department}`);
  const version = (latest[0]?.version ?? 0) + 1;
  const { rows } = await q.query<TemplateRow>(
    `insert into messaging.template (key, version, department, name_zh, name_en, subject_zh, subject_en, body_zh, body_en, variables, created_by, synthetic)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning ${COLUMNS}`,
    [t.key, version, department, t.name.zh, t.name.en ?? null, t.subject.zh, t.subject.en ?? null, t.body.zh, t.body.en ?? null, t.variables, createdBy, opts.synthetic ?? false],
  );
  return toTemplate(rows[0]!);
}

/** A version of a template, or its latest version. */
export async function getTemplate(q: Queryable, key: string, version?: number): Promise<Template | null> {
  if (!TEMPLATE_KEY.test(key)) return null;
  const { rows } =
    version === undefined
      ? await q.query<TemplateRow>(`select ${COLUMNS} from messaging.template where key = $1 order by version desc limit 1`, [key])
      : await q.query<TemplateRow>(`select ${COLUMNS} from messaging.template where key = $1 and version = $2`, [key, version]);
  return rows[0] ? toTemplate(rows[0]) : null;
}

/** The latest version of every template (of one department, or all), by key. */
export async function listTemplates(q: Queryable, department?: string): Promise<(Template & { versions: number })[]> {
  const { rows } = await q.query<TemplateRow & { versions: number }>(
    `select distinct on (key) ${COLUMNS}, count(*) over (partition by key)::int as versions
       from messaging.template ${department ? 'where department = $1' : ''} order by key, version desc`,
    department ? [department] : [],
  );
  return rows.map((r) => ({ ...toTemplate(r), versions: r.versions }));
}
