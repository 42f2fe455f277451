// Who may do what with identity: signing in and out is for everyone; preferences are each signed-in
// person's own (the handlers only ever touch the caller's account); role grants are the platform
// administrators' (security officers may look).
import { allow } from './policy.ts';

export const identityPolicy = [
  // the OpenID provider's endpoints and the sign-in pages (they authenticate the caller themselves)
  allow('anyone', 'use', 'oidc'),
  allow('anyone', 'use', 'login'),
  // the relying parties' sign-in, callback, sign-out and back-channel logout
  allow('anyone', ['start', 'finish', 'end'], 'session'),
  // personalisation: one's own preferences
  allow('citizen', ['read', 'update'], 'preference'),
  allow('enterprise', ['read', 'update'], 'preference'),
  allow('staff', ['read', 'update'], 'preference'),
  // roles console
  allow({ role: 'platform-admin' }, 'list', 'role'),
  allow({ role: 'security-officer' }, 'list', 'role'),
  allow({ role: 'platform-admin' }, ['grant', 'revoke'], 'role'),
].flat();
