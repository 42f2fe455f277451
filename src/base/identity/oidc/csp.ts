// The platform's Content-Security-Policy (the same directives as src/http/server.ts) with one
// difference for the sign-in pages and the provider's own responses: form-action also allows the
// origins a sign-in may finish at (the two faces, the requesting client's redirect URI), because
// browsers apply form-action to every redirect that follows a form submission.
const BASE = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
];

export function cspWithFormTargets(origins: readonly string[]): string {
  const extra = [...new Set(origins)].filter((o) => /^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(o));
  return [...BASE, ["form-action 'self'", ...extra].join(' ')].join('; ');
}

export function originOrNull(url: unknown): string | null {
  if (typeof url !== 'string') return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}
