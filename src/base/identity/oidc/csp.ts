// The sign-in pages' CSP is the platform's with their form targets added (src/http/csp.ts).
import { contentSecurityPolicy } from '../../../http/csp.ts';

export const cspWithFormTargets = (origins: readonly string[]): string => contentSecurityPolicy(origins);

export function originOrNull(url: unknown): string | null {
  if (typeof url !== 'string') return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}
