// Who may use the HTTP adapter's own routes: operations endpoints, the API description, assets and
// the problem-type pages are public by design (load balancers and monitors call them unauthenticated;
// the internal face is where a deployment restricts them by network).
import { allow } from '../base/identity/policy.ts';

export const httpPolicy = [
  allow('anyone', 'read', 'health'),
  allow('anyone', 'read', 'metrics'),
  allow('anyone', 'read', 'api-description'),
  allow('anyone', 'read', 'asset'),
  allow('anyone', 'read', 'problem-type'),
  allow('anyone', 'choose', 'language'),
].flat();

/** routes added by plugins (static files, the API browser) get their action from their prefix */
export const PLUGIN_ROUTE_ACTIONS: readonly [prefix: string, action: string][] = [
  ['/assets/', 'asset:read'],
  ['/api/docs', 'api-description:read'],
];
