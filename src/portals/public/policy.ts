// The public portal: everything here is open to everyone, signed in or not (公开).
import { allow } from '../../base/identity/policy.ts';

export const portalPolicy = [
  allow('anyone', 'read', 'portal-page'),
  allow('anyone', 'read', 'city-profile'),
  allow('anyone', 'read', 'subsystem'),
].flat();
