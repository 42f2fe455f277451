// Who may do what with notices and mailboxes. A mailbox is its owner's alone (the handlers only
// ever read the caller's own: residents by ID number, enterprises by USCC, staff by account);
// notices are their department's: sending needs the notice-sender role and goes out in the
// sender's own department's name, and only that department sees the notice and its deliveries.
import { allow, hasRole, type Actor } from '../identity/policy.ts';

/** the sender acts for this department: staff of it (with the role), or its own system */
export const ownDepartment = (actor: Actor, r: { department: string }) => (actor.kind === 'staff' || actor.kind === 'system') && actor.department === r.department;

const sendsFor = (actor: Actor, r: { department: string }) => ownDepartment(actor, r) && (actor.kind === 'system' || hasRole(actor, 'notice-sender', r.department));

export const messagingPolicy = [
  // one's own mailbox, and the addresses one gives for SMS and email
  allow('citizen', ['read'], 'mailbox'),
  allow('enterprise', ['read'], 'mailbox'),
  allow('staff', ['read'], 'mailbox'),
  allow('citizen', ['read', 'update'], 'notice-contact'),
  allow('enterprise', ['read', 'update'], 'notice-contact'),
  allow('staff', ['read', 'update'], 'notice-contact'),
  // a department's notices: its staff and its systems see them, its notice senders send them
  allow('staff', ['list', 'read'], 'notice', ownDepartment),
  allow('system', ['list', 'read'], 'notice', ownDepartment),
  allow({ role: 'notice-sender' }, 'send', 'notice', sendsFor),
  allow('system', 'send', 'notice', sendsFor),
  // counting an audience and uploading a list are steps of sending
  allow({ role: 'notice-sender' }, 'count', 'audience', sendsFor),
  allow('system', 'count', 'audience', sendsFor),
  allow({ role: 'notice-sender' }, 'create', 'recipient-list', sendsFor),
  allow('system', 'create', 'recipient-list', sendsFor),
  // templates: every department may read them; a department keeps its own
  allow('staff', 'read', 'notice-template'),
  allow('system', 'read', 'notice-template'),
  allow({ role: 'notice-sender' }, 'create', 'notice-template', sendsFor),
  allow('system', 'create', 'notice-template', sendsFor),
].flat();
