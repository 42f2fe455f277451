// Server-rendered HTML without a template engine: a tagged template that escapes every
// interpolated value unless it is already Html (built by this tag or by raw()).
export interface Html {
  readonly __html: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function isHtml(v: unknown): v is Html {
  return typeof v === 'object' && v !== null && '__html' in v;
}

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (isHtml(v)) return v.__html;
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return { __html: out };
}

/** Trusted markup only: never call with user input. */
export function raw(s: string): Html {
  return { __html: s };
}

export function toString(h: Html): string {
  return h.__html;
}
