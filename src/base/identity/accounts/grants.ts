// Role grants: who holds which role, city-wide or for one department. Granting and revoking are
// audited ('role.grant', 'role.revoke'); the history stays (revoked_at), nothing is deleted.
import type { Queryable } from '../../../db/index.ts';
import { appendAudit } from '../../audit/index.ts';
import type { Actor } from '../policy.ts';
import { roleById } from '../roles.ts';
import { AccountError, auditActorOf, findAccountById, isAccountId, type Origin } from './index.ts';

export interface GrantRecord {
  id: number;
  accountId: string;
  role: string;
  scope: string | null;
  grantedBy: string | null;
  grantedAt: string;
  revokedAt: string | null;
}

export async function grantRole(
  q: Queryable,
  input: { accountId: string; role: string; scope: string | null },
  by: Actor,
  origin: Origin = { ip: 'internal' },
  opts: { departments?: ReadonlySet<string> } = {},
): Promise<GrantRecord> {
  const role = roleById(input.role);
  if (!role) throw new AccountError('role', { zh: '没有这个角色', en: 'no such role' });
  const account = await findAccountById(q, input.accountId);
  if (!account || account.kind !== 'staff') throw new AccountError('accountId', { zh: '角色只能授予工作人员账号', en: 'roles are granted to staff accounts only' });
  const scope = input.scope === '' ? null : input.scope;
  if (role.departmentScoped && !scope) throw new AccountError('scope', { zh: '此角色须限定部门', en: 'this role is granted for one department' });
  if (!role.departmentScoped && scope) throw new AccountError('scope', { zh: '此角色为全市范围，不限定部门', en: 'this role is city-wide: no department' });
  if (scope && opts.departments && !opts.departments.has(scope)) throw new AccountError('scope', { zh: '没有这个部门', en: 'no such department' });
  const grantedBy = by.kind === 'staff' && isAccountId(by.accountId) ? by.accountId : null;
  const { rows } = await q.query<{ id: number; granted_at: Date }>(
    `insert into identity.role_grant (account_id, role, scope, granted_by) values ($1, $2, $3, $4)
     on conflict (account_id, role, coalesce(scope, '')) where revoked_at is null do nothing
     returning id, granted_at`,
    [account.id, role.id, scope, grantedBy],
  );
  if (!rows[0]) throw new AccountError('role', { zh: '已持有此角色', en: 'the role is already held' }, 'exists');
  await appendAudit(q, {
    actor: auditActorOf(by, 'identity'),
    action: 'role.grant',
    resource: { type: 'account', id: account.id },
    outcome: 'ok',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { role: role.id, scope, grantId: rows[0].id },
  });
  return { id: rows[0].id, accountId: account.id, role: role.id, scope, grantedBy, grantedAt: new Date(rows[0].granted_at).toISOString(), revokedAt: null };
}

export async function revokeRole(q: Queryable, grantId: number, by: Actor, origin: Origin = { ip: 'internal' }): Promise<void> {
  const revokedBy = by.kind === 'staff' && isAccountId(by.accountId) ? by.accountId : null;
  const { rows } = await q.query<{ account_id: string; role: string; scope: string | null }>(
    `update identity.role_grant set revoked_at = now(), revoked_by = $2 where id = $1 and revoked_at is null returning account_id, role, scope`,
    [grantId, revokedBy],
  );
  if (!rows[0]) throw new AccountError('grant', { zh: '没有这项有效授权', en: 'no such active grant' });
  await appendAudit(q, {
    actor: auditActorOf(by, 'identity'),
    action: 'role.revoke',
    resource: { type: 'account', id: rows[0].account_id },
    outcome: 'ok',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { role: rows[0].role, scope: rows[0].scope, grantId },
  });
}

export interface StaffWithGrants {
  id: string;
  login: string;
  name: string;
  department: string;
  post: string;
  status: string;
  synthetic: boolean;
  grants: { id: number; role: string; scope: string | null; grantedAt: string }[];
}

/** Every staff account with its active grants (the roles console). */
export async function listStaff(q: Queryable, opts: { limit?: number } = {}): Promise<StaffWithGrants[]> {
  const { rows } = await q.query<{ id: string; login: string; name: string; department: string; post: string | null; status: string; synthetic: boolean; grants: { id: number; role: string; scope: string | null; granted_at: string }[] }>(
    `select a.id, a.login, a.name, a.department, a.post, a.status, a.synthetic,
            coalesce(json_agg(json_build_object('id', g.id, 'role', g.role, 'scope', g.scope, 'granted_at', g.granted_at) order by g.role, g.scope)
                     filter (where g.id is not null), '[]') as grants
       from identity.account a left join identity.role_grant g on g.account_id = a.id and g.revoked_at is null
      where a.kind = 'staff'
      group by a.id order by a.department, a.login limit $1`,
    [opts.limit ?? 500],
  );
  return rows.map((r) => ({
    id: r.id,
    login: r.login,
    name: r.name,
    department: r.department,
    post: r.post ?? '',
    status: r.status,
    synthetic: r.synthetic,
    grants: r.grants.map((g) => ({ id: g.id, role: g.role, scope: g.scope, grantedAt: new Date(g.granted_at).toISOString() })),
  }));
}

/**
 * Active staff of a department, or those of them holding `role` there (granted for the department or
 * city-wide): who a department-and-role task or notice goes to. At most `limit`, oldest accounts first.
 */
export async function staffHolding(q: Queryable, department: string, role: string | null, limit = 1000): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `select a.id from identity.account a
      where a.kind = 'staff' and a.status = 'active' and a.department = $1
        and ($2::text is null or exists (select 1 from identity.role_grant g where g.account_id = a.id and g.revoked_at is null and g.role = $2 and (g.scope is null or g.scope = $1)))
      order by a.created_at, a.id limit $3`,
    [department, role, limit],
  );
  return rows.map((r) => r.id);
}
