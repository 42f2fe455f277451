// Permissions, declared. Each module states who may do what to its resources in one policy file, read
// top to bottom (in the style of Outline's server/policies):
//
//   allow('anyone', 'read', 'portal-page')
//   allow({ role: 'ca-operator' }, ['issue', 'revoke'], 'certificate')
//   allow('staff', 'read', 'person', (actor, person) => sameDepartment(actor, person.department))
//
// Deny by default: an action no rule allows is refused. Every HTTP route names the action it needs
// (`config: { action: 'certificate:issue' }`); the route-level check asks whether any rule could allow
// the actor this action, and handlers call authorize(actor, action, instance) for the conditions that
// depend on the resource itself (department scoping).
import { problem } from '../../http/problems.ts';

export interface RoleGrant {
  role: string;
  /** department code the grant is limited to; null: city-wide */
  scope: string | null;
}

export type Actor =
  | { kind: 'anonymous' }
  | { kind: 'citizen'; accountId: string; name: string; idNumber: string }
  | { kind: 'enterprise'; accountId: string; name: string; uscc: string; entityName: string }
  | { kind: 'staff'; accountId: string; name: string; department: string; post: string; roles: readonly RoleGrant[] }
  | { kind: 'system'; id: string; department: string };

export const ANONYMOUS: Actor = Object.freeze({ kind: 'anonymous' });

export type Who = 'anyone' | 'signed-in' | 'citizen' | 'enterprise' | 'staff' | 'system' | { role: string };

export interface Rule {
  who: Who;
  verb: string;
  resource: string;
  /** evaluated only when a resource instance is given; without one the rule counts as possibly allowing */
  condition?: (actor: Actor, resource: any) => boolean; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const ACTION = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

/** Declares rules: who may perform these verbs on this kind of resource, optionally when. */
export function allow<R = unknown>(who: Who, verbs: string | readonly string[], resource: string, condition?: (actor: Actor, resource: R) => boolean): Rule[] {
  return (typeof verbs === 'string' ? [verbs] : verbs).map((verb) => {
    if (!ACTION.test(`${resource}:${verb}`)) throw new Error(`policy: "${resource}:${verb}" is not a valid action (resource:verb, lower-case)`);
    return { who, verb, resource, condition: condition as Rule['condition'] };
  });
}

export function hasRole(actor: Actor, role: string, department?: string): boolean {
  if (actor.kind !== 'staff') return false;
  return actor.roles.some((g) => g.role === role && (g.scope === null || department === undefined || g.scope === department));
}

function matches(who: Who, actor: Actor): boolean {
  if (who === 'anyone') return true;
  if (who === 'signed-in') return actor.kind !== 'anonymous';
  if (typeof who === 'string') return actor.kind === who;
  return hasRole(actor, who.role);
}

export interface Policy {
  rules: readonly Rule[];
  /** every action some rule names */
  actions: ReadonlySet<string>;
  can(actor: Actor, action: string, resource?: unknown): boolean;
  /** throws 401 for an anonymous actor, 403 otherwise */
  authorize(actor: Actor, action: string, resource?: unknown): void;
}

export function compilePolicy(rules: readonly Rule[]): Policy {
  const byAction = new Map<string, Rule[]>();
  for (const r of rules) {
    const key = `${r.resource}:${r.verb}`;
    byAction.set(key, [...(byAction.get(key) ?? []), r]);
  }
  const can = (actor: Actor, action: string, resource?: unknown) =>
    (byAction.get(action) ?? []).some((r) => matches(r.who, actor) && (resource === undefined || !r.condition || r.condition(actor, resource)));
  return {
    rules,
    actions: new Set(byAction.keys()),
    can,
    authorize(actor, action, resource) {
      if (can(actor, action, resource)) return;
      if (actor.kind === 'anonymous') throw problem('unauthorized', `sign in to ${action.replace(':', ' ')}`);
      throw problem('forbidden', `not permitted: ${action}`);
    },
  };
}
