// The node's registry: members (department systems with certificates), resources (id + JSON Schema
// + provider + share attribute), entitlements and subscriptions. Operators manage members and
// resources; members subscribe themselves, within what they are entitled to.
import crypto, { type KeyObject } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';

// ajv-formats is CommonJS: its default export arrives as the module object under ESM
const addFormats = ((addFormatsImport as unknown as { default?: typeof addFormatsImport }).default ?? addFormatsImport) as unknown as (a: Ajv) => Ajv;
import type { Queryable } from '../../db/index.ts';
import type { Alg } from '../identity/crypto/index.ts';
import type { Trust } from './trust.ts';

/** the kinds of failure a caller is told about (HTTP problem, refusal log) */
import { catalogDecision, departmentOf } from './view.ts';
import { recordOpenUse } from '../catalog/index.ts';

export class ExchangeError extends Error {
  constructor(
    readonly code: 'validation' | 'not-found' | 'conflict' | 'forbidden',
    /** for refusals: the reason named in problem+json */
    readonly reason: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface MemberRow {
  id: string;
  instance: string;
  member_class: string;
  member_code: string;
  subsystem: string;
  name: string;
  department: string | null;
  node_id: string;
  cert_pem: string | null;
  cert_serial: string | null;
  alg: Alg | null;
  push_url: string | null;
  service_url: string | null;
  status: 'active' | 'suspended';
  created_at: Date;
  updated_at: Date;
}

export interface ResourceRow {
  id: string;
  name: string;
  name_en: string | null;
  provider: string;
  schema: Record<string, unknown>;
  share: 'open' | 'conditional' | 'closed';
  key_field: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface SubscriptionRow {
  id: string;
  resource: string;
  target_member: string | null;
  target_node: string | null;
  delivery: 'push' | 'pull';
  push_url: string | null;
  status: 'active' | 'cancelled';
  created_at: Date;
}

export const MEMBER_ID = /^([A-Za-z0-9-]{1,32})\/(GOV|COM|NGO|ORG)\/([A-Za-z0-9-]{1,64})\/([A-Za-z0-9-]{1,64})$/;
export const RESOURCE_ID = /^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$/;

export function memberId(instance: string, cls: string, code: string, subsystem: string): string {
  return `${instance}/${cls}/${code}/${subsystem}`;
}

function checkUrl(name: string, v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || v.length > 500) throw new ExchangeError('validation', 'malformed', `${name} must be an http(s) URL of at most 500 characters`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ExchangeError('validation', 'malformed', `${name} is not a URL: ${JSON.stringify(v.slice(0, 80))}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ExchangeError('validation', 'malformed', `${name} must be http or https`);
  if (u.username || u.password) throw new ExchangeError('validation', 'malformed', `${name} must not carry credentials`);
  return u.toString().replace(/\/$/, '');
}

// ------------------------------------------------------------------------------------------------
// Members

export interface MemberInput {
  memberClass: string;
  memberCode: string;
  subsystem: string;
  name: string;
  department?: string | null;
  certificate: string;
  pushUrl?: string | null;
  serviceUrl?: string | null;
  /** home node (default: this node) */
  node?: string;
}

export async function registerMember(q: Queryable, trust: Trust, instance: string, homeNode: string, input: MemberInput, departments: ReadonlySet<string>): Promise<MemberRow> {
  const id = memberId(instance, input.memberClass, input.memberCode, input.subsystem);
  if (!MEMBER_ID.test(id)) throw new ExchangeError('validation', 'malformed', 'memberClass must be GOV, COM, NGO or ORG; memberCode and subsystem letters, digits and hyphens (at most 64)');
  if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 200) throw new ExchangeError('validation', 'malformed', 'name is required (at most 200 characters)');
  const department = input.department ?? (input.memberClass === 'GOV' ? input.memberCode : null);
  if (department !== null && !departments.has(department)) throw new ExchangeError('validation', 'malformed', `department ${JSON.stringify(department)} is not a department of the city profile`);
  if (typeof input.certificate !== 'string' || input.certificate.length > 20_000) throw new ExchangeError('validation', 'malformed', 'certificate (PEM) is required');
  const cert = await trust.verify(q, input.certificate);
  if (!cert.ok) throw new ExchangeError('validation', 'certificate', `the certificate does not verify: ${cert.reason}: ${cert.detail}`);
  const pushUrl = checkUrl('pushUrl', input.pushUrl);
  const serviceUrl = checkUrl('serviceUrl', input.serviceUrl);
  const { rows } = await q.query<MemberRow>(
    `insert into exchange.member (id, instance, member_class, member_code, subsystem, name, department, node_id, cert_pem, cert_serial, alg, push_url, service_url)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     on conflict (id) do update set name = excluded.name, department = excluded.department, cert_pem = excluded.cert_pem,
       cert_serial = excluded.cert_serial, alg = excluded.alg, push_url = excluded.push_url, service_url = excluded.service_url,
       node_id = excluded.node_id, updated_at = now()
     returning *`,
    [id, instance, input.memberClass, input.memberCode, input.subsystem, input.name.trim(), department, input.node ?? homeNode, input.certificate, cert.serial, cert.alg, pushUrl, serviceUrl],
  );
  return rows[0]!;
}

export async function getMember(q: Queryable, id: string): Promise<MemberRow | null> {
  return (await q.query<MemberRow>('select * from exchange.member where id = $1', [id])).rows[0] ?? null;
}

export async function listMembers(q: Queryable, f: { node?: string; q?: string; limit?: number; offset?: number } = {}): Promise<{ total: number; items: MemberRow[] }> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.node) where.push(`node_id = $${args.push(f.node)}`);
  if (f.q) where.push(`(id ilike $${args.push(`%${f.q.replace(/[\\%_]/g, '\\$&')}%`)} or name ilike $${args.length})`);
  const w = where.length ? `where ${where.join(' and ')}` : '';
  const total = (await q.query<{ n: number }>(`select count(*)::int as n from exchange.member ${w}`, args)).rows[0]!.n;
  const items = (await q.query<MemberRow>(`select * from exchange.member ${w} order by id limit ${f.limit ?? 50} offset ${f.offset ?? 0}`, args)).rows;
  return { total, items };
}

export async function setMemberStatus(q: Queryable, id: string, status: 'active' | 'suspended'): Promise<MemberRow> {
  const { rows } = await q.query<MemberRow>('update exchange.member set status = $2, updated_at = now() where id = $1 returning *', [id, status]);
  if (!rows[0]) throw new ExchangeError('not-found', 'unknown-member', `no member ${id}`);
  return rows[0];
}

// ------------------------------------------------------------------------------------------------
// Resources

export interface ResourceInput {
  id: string;
  name: string;
  nameEn?: string | null;
  provider: string;
  schema: Record<string, unknown>;
  share?: 'open' | 'conditional' | 'closed';
  keyField?: string | null;
}

const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: true, logger: false });
addFormats(ajv);

/** compiles a resource's JSON Schema; a schema that does not compile is a validation error */
export function compileSchema(schema: unknown): ValidateFunction {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw new ExchangeError('validation', 'malformed', 'schema must be a JSON Schema object');
  if (JSON.stringify(schema).length > 100_000) throw new ExchangeError('validation', 'malformed', 'schema is larger than 100,000 characters');
  try {
    // $id would register the schema globally in ajv: compile a copy without it
    const { $id: _id, ...rest } = schema as Record<string, unknown>;
    return ajv.compile(rest);
  } catch (err) {
    throw new ExchangeError('validation', 'malformed', `schema does not compile: ${(err as Error).message}`);
  }
}

export async function saveResource(q: Queryable, input: ResourceInput): Promise<ResourceRow> {
  if (typeof input.id !== 'string' || !RESOURCE_ID.test(input.id) || input.id.length > 120) {
    throw new ExchangeError('validation', 'malformed', 'id must be dotted lower-case segments, e.g. population.person (at most 120 characters)');
  }
  if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 200) throw new ExchangeError('validation', 'malformed', 'name is required (at most 200 characters)');
  compileSchema(input.schema);
  const share = input.share ?? 'open';
  if (!['open', 'conditional', 'closed'].includes(share)) throw new ExchangeError('validation', 'malformed', 'share must be open, conditional or closed');
  if (input.keyField != null && (typeof input.keyField !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(input.keyField))) throw new ExchangeError('validation', 'malformed', 'keyField must be a field name');
  const provider = await getMember(q, input.provider);
  if (!provider) throw new ExchangeError('validation', 'unknown-member', `provider ${JSON.stringify(input.provider)} is not a registered member`);
  const { rows } = await q.query<ResourceRow>(
    `insert into exchange.resource (id, name, name_en, provider, schema, share, key_field) values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (id) do update set name = excluded.name, name_en = excluded.name_en, provider = excluded.provider, schema = excluded.schema,
       share = excluded.share, key_field = excluded.key_field, updated_at = now()
     returning *`,
    [input.id, input.name.trim(), input.nameEn ?? null, input.provider, JSON.stringify(input.schema), share, input.keyField ?? null],
  );
  return rows[0]!;
}

export async function getResource(q: Queryable, id: string): Promise<ResourceRow | null> {
  return (await q.query<ResourceRow>('select * from exchange.resource where id = $1', [id])).rows[0] ?? null;
}

export async function listResources(q: Queryable): Promise<ResourceRow[]> {
  return (await q.query<ResourceRow>('select * from exchange.resource order by id')).rows;
}

// ------------------------------------------------------------------------------------------------
// Entitlements and subscriptions

export async function grantEntitlement(q: Queryable, resource: string, member: string, by: string, expiresAt: Date | null): Promise<void> {
  if (!(await getResource(q, resource))) throw new ExchangeError('not-found', 'unknown-resource', `no resource ${resource}`);
  if (!(await getMember(q, member))) throw new ExchangeError('not-found', 'unknown-member', `no member ${member}`);
  await q.query(
    `insert into exchange.entitlement (resource, member, granted_by, expires_at) values ($1, $2, $3, $4)
     on conflict (resource, member) do update set granted_by = excluded.granted_by, granted_at = now(), expires_at = excluded.expires_at`,
    [resource, member, by, expiresAt],
  );
}

/** Revokes an entitlement and cancels the member's subscription to the resource: the next message is not delivered. */
export async function revokeEntitlement(q: Queryable, resource: string, member: string): Promise<boolean> {
  const { rowCount } = await q.query('delete from exchange.entitlement where resource = $1 and member = $2', [resource, member]);
  await q.query(
    `update exchange.subscription set status = 'cancelled', cancelled_at = now()
      where resource = $1 and target_member = $2 and status = 'active'
        and (select share from exchange.resource where id = $1) <> 'open'`,
    [resource, member],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * May this member receive this resource? A resource that a catalog entry carries is decided by the
 * catalog (sharing agreements for the member's department: catalogDecision); others by their share
 * setting and the entitlements below (resources registered before the catalog named them).
 */
export async function isEntitled(q: Queryable, resource: ResourceRow, member: string | MemberRow): Promise<boolean> {
  const id = typeof member === 'string' ? member : member.id;
  if (resource.provider === id) return true;
  const row = typeof member === 'string' ? await getMember(q, member) : member;
  if (row) {
    const d = await catalogDecision(q, resource.id, row);
    if (d.catalogued) return d.grant !== null;
  }
  member = id;
  if (resource.share === 'open') return true;
  if (resource.share === 'closed') return false;
  const { rows } = await q.query('select 1 from exchange.entitlement where resource = $1 and member = $2 and (expires_at is null or expires_at > now())', [resource.id, member]);
  return rows.length > 0;
}

export async function subscribe(
  q: Queryable,
  member: MemberRow,
  input: { resource: string; delivery?: 'push' | 'pull'; pushUrl?: string | null },
): Promise<{ subscription: SubscriptionRow; created: boolean }> {
  const resource = typeof input.resource === 'string' ? await getResource(q, input.resource) : null;
  if (!resource) throw new ExchangeError('not-found', 'unknown-resource', `no resource ${JSON.stringify(input.resource)}`);
  const d = resource.provider === member.id ? ({ catalogued: false } as const) : await catalogDecision(q, resource.id, member);
  if (d.catalogued && !d.grant) throw new ExchangeError('forbidden', 'not-entitled', `${departmentOf(member)} has no sharing agreement for ${resource.id} (catalog entry ${d.entry}): request one in the catalog`);
  if (!d.catalogued && !(await isEntitled(q, resource, member))) throw new ExchangeError('forbidden', 'not-entitled', `${member.id} is not entitled to ${resource.id} (share: ${resource.share})`);
  const delivery = input.delivery ?? 'pull';
  if (delivery !== 'push' && delivery !== 'pull') throw new ExchangeError('validation', 'malformed', 'delivery must be push or pull');
  const pushUrl = delivery === 'push' ? (checkUrl('pushUrl', input.pushUrl) ?? member.push_url) : null;
  if (delivery === 'push' && !pushUrl) throw new ExchangeError('validation', 'malformed', 'push delivery needs pushUrl (or the member’s registered push URL)');
  const existing = (await q.query<SubscriptionRow>(`select * from exchange.subscription where resource = $1 and target_member = $2 and status = 'active'`, [resource.id, member.id])).rows[0];
  if (existing) return { subscription: existing, created: false };
  const { rows } = await q.query<SubscriptionRow>(
    `insert into exchange.subscription (resource, target_member, delivery, push_url) values ($1, $2, $3, $4) returning *`,
    [resource.id, member.id, delivery, pushUrl],
  );
  // a base or 无条件 entry: the department's use is recorded in the catalog (one open agreement)
  if (d.catalogued && d.grant?.basis === 'open') await recordOpenUse(q, d.entry, departmentOf(member), `exchange subscription of ${member.id}`, { kind: 'system', id: 'exchange', department: departmentOf(member) });
  return { subscription: rows[0]!, created: true };
}

/** A peer node's standing subscription (federation): created once, kept. */
export async function subscribeNode(q: Queryable, resource: string, node: string): Promise<SubscriptionRow> {
  const existing = (await q.query<SubscriptionRow>(`select * from exchange.subscription where resource = $1 and target_node = $2 and status = 'active'`, [resource, node])).rows[0];
  if (existing) return existing;
  const { rows } = await q.query<SubscriptionRow>(
    `insert into exchange.subscription (resource, target_node, delivery) values ($1, $2, 'push')
     on conflict (resource, target_node) where status = 'active' and target_node is not null do update set delivery = 'push'
     returning *`,
    [resource, node],
  );
  return rows[0]!;
}

export async function cancelSubscription(q: Queryable, id: string, member: string | null): Promise<boolean> {
  const { rowCount } = await q.query(
    `update exchange.subscription set status = 'cancelled', cancelled_at = now() where id = $1 and status = 'active' and ($2::text is null or target_member = $2)`,
    [id, member],
  );
  return (rowCount ?? 0) > 0;
}

export async function getSubscription(q: Queryable, id: string): Promise<SubscriptionRow | null> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return null;
  return (await q.query<SubscriptionRow>('select * from exchange.subscription where id = $1', [id])).rows[0] ?? null;
}

export async function memberSubscriptions(q: Queryable, member: string): Promise<SubscriptionRow[]> {
  return (await q.query<SubscriptionRow>(`select * from exchange.subscription where target_member = $1 and status = 'active' order by created_at`, [member])).rows;
}

// ------------------------------------------------------------------------------------------------
// Caches for the hot path: a member's key (re-read every few seconds; revocation is checked per
// request), a resource's compiled schema (re-read when its row changes).

export interface MemberKey {
  member: MemberRow;
  publicKey: KeyObject;
  spki: Buffer;
  alg: Alg;
  loadedAt: number;
}

export function createCaches(ttlMs = 5_000) {
  const members = new Map<string, MemberKey | null>();
  const resources = new Map<string, { row: ResourceRow; validate: ValidateFunction; loadedAt: number } | null>();
  return {
    async member(q: Queryable, trust: Trust, id: string): Promise<MemberKey | { error: string; reason: string }> {
      const hit = members.get(id);
      if (hit && Date.now() - hit.loadedAt < ttlMs) return hit;
      const row = await getMember(q, id);
      if (!row) return { reason: 'unknown-member', error: `${id} is not a member registered on this exchange` };
      if (!row.cert_pem) return { reason: 'certificate', error: `${id} has no certificate` };
      const v = await trust.verify(q, row.cert_pem);
      if (!v.ok) return { reason: 'certificate', error: `the certificate of ${id} does not verify: ${v.reason}: ${v.detail}` };
      const entry: MemberKey = { member: row, spki: v.publicKey, publicKey: crypto.createPublicKey({ key: v.publicKey, format: 'der', type: 'spki' }), alg: v.alg, loadedAt: Date.now() };
      members.set(id, entry);
      return entry;
    },
    async resource(q: Queryable, id: string): Promise<{ row: ResourceRow; validate: ValidateFunction } | null> {
      const hit = resources.get(id);
      if (hit && Date.now() - hit.loadedAt < ttlMs) return hit;
      const row = await getResource(q, id);
      if (!row) return null;
      const entry = hit && hit.row.updated_at.getTime() === row.updated_at.getTime() ? { ...hit, loadedAt: Date.now() } : { row, validate: compileSchema(row.schema), loadedAt: Date.now() };
      resources.set(id, entry);
      return entry;
    },
    forget(): void {
      members.clear();
      resources.clear();
    },
  };
}

export type Caches = ReturnType<typeof createCaches>;
