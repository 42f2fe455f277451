// The platform's Content-Security-Policy: no inline script or style anywhere, every asset from 'self'.
// Sign-in pages add the origins a sign-in may finish at to form-action, because browsers apply
// form-action to every redirect that follows a form submission.
const DIRECTIVES = [
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

export function contentSecurityPolicy(formTargets: readonly string[] = []): string {
  const extra = [...new Set(formTargets)].filter((o) => /^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(o));
  return [...DIRECTIVES, ["form-action 'self'", ...extra].join(' ')].join('; ');
}
