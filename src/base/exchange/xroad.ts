// Synchronous calls between members through the nodes, X-Road style:
//   ANY /r1/{instance}/{class}/{member}/{subsystem}/{service}[/{rest...}]
//   X-Road-Client: the calling member (the request is signed by it, auth.ts); X-Road-Id: the call id.
// The node checks the client's signature and the provider's access rights for that service, forwards
// the call to the provider's service URL (or, for a provider on another node, to that node — from a
// division through its hub), and answers with the provider's response plus X-Road-Id and
// X-Road-Request-Hash (base64 SHA-512 of the request body). Request and response are logged.
// Also the GovStack Information Mediator directory: /listClients, .../listMethods, .../allowedMethods,
// .../getOpenAPI.
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModuleContext } from '../../module.ts';
import { problem } from '../../http/problems.ts';
import { signRequest } from './auth.ts';
import { appendLog } from './store.ts';
import { toProblem } from './routes.ts';
import { RESERVED_SERVICE_CODES } from './govstack.ts';
import { getMember, MEMBER_ID } from './registry.ts';
import type { ExchangeRuntime } from './runtime.ts';
import { recordRefusal } from './publish.ts';
import { ExchangeError } from './registry.ts';

export interface ServiceRow {
  provider: string;
  code: string;
  name: string;
  endpoints: { method: string; path: string }[];
  openapi: unknown;
}

const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'x-gusu-signature', 'x-gusu-date', 'x-gusu-node', 'authorization', 'cookie']);
const MAX_BODY = 10 * 1024 * 1024;

async function allowed(rt: ExchangeRuntime, provider: string, service: string, client: string): Promise<boolean> {
  if (provider === client) return true;
  const { rows } = await rt.db.query('select 1 from exchange.service_acl where provider = $1 and service = $2 and client = $3', [provider, service, client]);
  return rows.length > 0;
}

export async function saveService(rt: ExchangeRuntime, s: { provider: string; code: string; name: string; endpoints?: { method: string; path: string }[]; openapi?: unknown }): Promise<void> {
  if (!(await getMember(rt.db, s.provider))) throw new ExchangeError('not-found', 'unknown-member', `no member ${s.provider}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(s.code)) throw new ExchangeError('validation', 'malformed', 'a service code is letters, digits, _ and - (at most 64)');
  if (RESERVED_SERVICE_CODES.has(s.code)) throw new ExchangeError('validation', 'malformed', `${s.code} is reserved for the GovStack paths`);
  const endpoints = (s.endpoints ?? []).slice(0, 200).map((e) => ({ method: String(e.method).toUpperCase().slice(0, 10), path: String(e.path).slice(0, 500) }));
  await rt.db.query(
    `insert into exchange.service (provider, code, name, endpoints, openapi) values ($1, $2, $3, $4, $5)
     on conflict (provider, code) do update set name = excluded.name, endpoints = excluded.endpoints, openapi = excluded.openapi`,
    [s.provider, s.code, s.name.slice(0, 200), JSON.stringify(endpoints), s.openapi === undefined ? null : JSON.stringify(s.openapi)],
  );
}

export async function grantService(rt: ExchangeRuntime, provider: string, code: string, client: string, by: string): Promise<void> {
  if (!(await getMember(rt.db, client))) throw new ExchangeError('not-found', 'unknown-member', `no member ${client}`);
  const { rowCount } = await rt.db.query(
    `insert into exchange.service_acl (provider, service, client, granted_by) select provider, code, $3, $4 from exchange.service where provider = $1 and code = $2
     on conflict do nothing`,
    [provider, code, client, by],
  );
  if (!rowCount && !(await rt.db.query('select 1 from exchange.service where provider = $1 and code = $2', [provider, code])).rows.length) throw new ExchangeError('not-found', 'unknown-service', `${provider} offers no service ${code}`);
}

function requestHash(body: Buffer): string {
  return crypto.createHash('sha512').update(body).digest('base64');
}

async function forward(rt: ExchangeRuntime, req: FastifyRequest, reply: FastifyReply, target: { url: string; asNode: boolean }, client: string, xroadId: string): Promise<FastifyReply> {
  const body = req.rawBody ?? (Buffer.isBuffer(req.body) ? (req.body as Buffer) : Buffer.alloc(0));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_HEADERS.has(k) && typeof v === 'string') headers[k] = v;
  headers['x-road-client'] = client;
  headers['x-road-id'] = xroadId;
  if (target.asNode) Object.assign(headers, signRequest({ node: rt.self.id }, { privateKey: rt.self.privateKey, alg: rt.self.alg }, { method: req.method, path: new URL(target.url).pathname + new URL(target.url).search, body }), { 'x-road-client': client });
  const res = await rt.fetch(target.url, { method: req.method, headers, body: ['GET', 'HEAD'].includes(req.method) ? undefined : new Uint8Array(body), signal: AbortSignal.timeout(60_000), redirect: 'manual' });
  const out = Buffer.from(await res.arrayBuffer());
  if (out.length > MAX_BODY) throw problem('unavailable', 'the provider answered with more than 10 MB', { reason: 'oversized' });
  for (const [k, v] of res.headers) if (!HOP_HEADERS.has(k) && !k.startsWith('x-road-')) reply.header(k, v);
  await appendLog(rt.db, [{ kind: 'receipt', ref: `xroad:${xroadId}`.slice(0, 200), member: client, digest: crypto.createHash('sha256').update(out).digest('hex'), at: new Date().toISOString() }], { privateKey: rt.self.privateKey, alg: rt.self.alg });
  return reply.code(res.status).header('x-road-id', xroadId).header('x-road-request-hash', requestHash(body)).send(out);
}

export function xroadRoutes(app: FastifyInstance, ctx: ModuleContext, runtime: () => ExchangeRuntime): void {
  // any body: the raw bytes are forwarded and signed over
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY }, (req, body, done) => {
    (req as FastifyRequest).rawBody = body as Buffer;
    done(null, body);
  });

  const clientOut = (m: { id: string; name: string; instance: string; member_class: string; member_code: string; subsystem: string }) => ({
    name: m.name,
    id: { objectType: 'APPLICATION', instanceId: m.instance, memberClass: m.member_class, memberCode: m.member_code, applicationCode: m.subsystem },
  });

  // operators: what a provider offers and who may call it
  const SvcParams = { type: 'object', properties: { id: { type: 'string', maxLength: 255 }, code: { type: 'string', maxLength: 64 }, client: { type: 'string', maxLength: 255 } } } as const;
  app.put(
    '/api/v1/exchange/members/:id/services/:code',
    { schema: { tags: ['exchange'], summary: 'Define a provider member’s synchronous service (name, endpoints, OpenAPI description)', params: SvcParams, body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, endpoints: { type: 'array', maxItems: 200, items: { type: 'object', required: ['method', 'path'], properties: { method: { type: 'string', maxLength: 10 }, path: { type: 'string', maxLength: 500 } } } }, openapi: { type: 'object' } } } }, config: { action: 'exchange-member:register' } },
    async (req, reply) => {
      const p = req.params as { id: string; code: string };
      const b = req.body as { name: string; endpoints?: { method: string; path: string }[]; openapi?: unknown };
      try {
        await saveService(runtime(), { provider: p.id, code: p.code, ...b });
      } catch (err) {
        return toProblem(err);
      }
      return reply.code(204).send();
    },
  );
  app.put(
    '/api/v1/exchange/members/:id/services/:code/clients/:client',
    { schema: { tags: ['exchange'], summary: 'Give a client member the access right to a service', params: SvcParams }, config: { action: 'exchange-member:register' } },
    async (req, reply) => {
      const p = req.params as { id: string; code: string; client: string };
      try {
        await grantService(runtime(), p.id, p.code, p.client, req.actor.kind === 'staff' ? req.actor.accountId : 'system');
      } catch (err) {
        return toProblem(err);
      }
      return reply.code(204).send();
    },
  );
  app.delete(
    '/api/v1/exchange/members/:id/services/:code/clients/:client',
    { schema: { tags: ['exchange'], summary: 'Withdraw a client member’s access right to a service', params: SvcParams }, config: { action: 'exchange-member:register' } },
    async (req, reply) => {
      const p = req.params as { id: string; code: string; client: string };
      const { rowCount } = await ctx.db.query('delete from exchange.service_acl where provider = $1 and service = $2 and client = $3', [p.id, p.code, p.client]);
      if (!rowCount) throw problem('not-found', `${p.client} holds no access right to ${p.id}/${p.code}`);
      return reply.code(204).send();
    },
  );

  app.get('/listClients', { schema: { tags: ['exchange'], summary: 'GovStack IM: the members (applications) of this instance' }, config: { action: 'exchange-api:call' } }, async (req) => {
    if (req.actor.kind !== 'system') throw problem('not-found', 'sign the request as a member', { reason: 'unknown-member' });
    const instance = (req.query as { instanceId?: string }).instanceId;
    const { rows } = await ctx.db.query<{ id: string; name: string; instance: string; member_class: string; member_code: string; subsystem: string }>(
      `select id, name, instance, member_class, member_code, subsystem from exchange.member where status = 'active' and ($1::text is null or instance = $1) order by id`,
      [typeof instance === 'string' ? instance.slice(0, 32) : null],
    );
    return { member: rows.map(clientOut) };
  });

  const meta = async (req: FastifyRequest, which: 'list' | 'allowed' | 'openapi') => {
    const rt = runtime();
    const a = req.actor;
    if (a.kind !== 'system') throw problem('not-found', 'sign the request as a member', { reason: 'unknown-member' });
    const p = req.params as { instance: string; cls: string; code: string; app: string };
    const provider = `${p.instance}/${p.cls}/${p.code}/${p.app}`;
    if (!MEMBER_ID.test(provider) || !(await getMember(rt.db, provider))) throw problem('not-found', `no member ${provider}`, { reason: 'unknown-member' });
    const { rows } = await rt.db.query<ServiceRow>('select provider, code, name, endpoints, openapi from exchange.service where provider = $1 order by code', [provider]);
    const client = a.id.startsWith('node:') ? null : a.id;
    const visible = [];
    for (const s of rows) if (which !== 'allowed' || (client && (await allowed(rt, provider, s.code, client)))) visible.push(s);
    if (which === 'openapi') {
      const code = (req.query as { serviceCode?: string }).serviceCode;
      const s = visible.find((x) => x.code === code);
      if (!s || !s.openapi) throw problem('not-found', `no OpenAPI description for service ${String(code).slice(0, 64)}`, { reason: 'unknown-service' });
      return s.openapi;
    }
    return {
      member: visible.map((s) => ({ objectType: 'SERVICE', serviceType: 'REST', instanceId: p.instance, memberClass: p.cls, memberCode: p.code, applicationCode: p.app, serviceCode: s.code, endpointList: { member: s.endpoints } })),
    };
  };
  const P = '/r1/:instance/:cls/:code/:app';
  app.get(`${P}/listMethods`, { schema: { tags: ['exchange'], summary: 'GovStack IM: the REST services of a provider' }, config: { action: 'exchange-api:call' } }, (req) => meta(req, 'list'));
  app.get(`${P}/allowedMethods`, { schema: { tags: ['exchange'], summary: 'GovStack IM: the provider’s services the calling member may use' }, config: { action: 'exchange-api:call' } }, (req) => meta(req, 'allowed'));
  app.get(`${P}/getOpenAPI`, { schema: { tags: ['exchange'], summary: 'GovStack IM: the OpenAPI description of one service (?serviceCode=)' }, config: { action: 'exchange-api:call' } }, (req) => meta(req, 'openapi'));

  app.all(`${P}/:service/*`, { schema: { tags: ['exchange'], summary: 'X-Road style synchronous call to a provider member’s service (signed by the client member; X-Road-Id, X-Road-Request-Hash in the answer)' }, config: { action: 'exchange-api:call' } }, async (req, reply) => {
    const rt = runtime();
    const a = req.actor;
    if (a.kind !== 'system') throw problem('not-found', 'sign the request as a member', { reason: 'unknown-member' });
    const p = req.params as { instance: string; cls: string; code: string; app: string; service: string; '*': string };
    const provider = `${p.instance}/${p.cls}/${p.code}/${p.app}`;
    // a peer node vouches for its member (it checked the signature); a member speaks for itself
    const client = a.id.startsWith('node:') ? String(req.headers['x-road-client'] ?? '') : a.id;
    const xroadId = String(req.headers['x-road-id'] ?? crypto.randomUUID()).slice(0, 200);
    if (!/^[\x21-\x7E]{1,200}$/.test(xroadId)) throw problem('validation', 'X-Road-Id must be printable ASCII without spaces', { reason: 'malformed' });
    const member = MEMBER_ID.test(provider) ? await getMember(rt.db, provider) : null;
    if (!member) return recordRefusal(rt, new ExchangeError('not-found', 'unknown-member', `no provider ${provider}`), client, xroadId, req.ip).catch(() => { throw problem('not-found', `no provider ${provider}`, { reason: 'unknown-member' }); });
    const svc = (await rt.db.query('select 1 from exchange.service where provider = $1 and code = $2', [provider, p.service])).rows.length > 0;
    if (!svc || !(await allowed(rt, provider, p.service, client))) {
      await rt.db.query('insert into exchange.refusal (member, event_id, reason, detail, remote_addr) values ($1, $2, $3, $4, $5)', [client, xroadId, 'not-entitled', `${client} may not call ${provider}/${p.service}`, req.ip]);
      throw problem(svc ? 'forbidden' : 'not-found', svc ? `${client} has no access right to ${provider}/${p.service}` : `${provider} offers no service ${p.service}`, { reason: svc ? 'not-entitled' : 'unknown-service' });
    }
    const rest = `${p.service}${p['*'] ? `/${p['*']}` : ''}${req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''}`;
    const body = req.rawBody ?? Buffer.alloc(0);
    await appendLog(rt.db, [{ kind: 'event', ref: `xroad:${xroadId}`, member: client, digest: crypto.createHash('sha256').update(body).digest('hex'), at: new Date().toISOString() }], { privateKey: rt.self.privateKey, alg: rt.self.alg });
    let target: { url: string; asNode: boolean } | null = null;
    if (member.node_id === rt.self.id) target = member.service_url ? { url: `${member.service_url}/${rest}`, asNode: false } : null;
    else {
      const via = rt.self.upstream ?? member.node_id;
      const node = (await rt.db.query<{ url: string | null }>('select url from exchange.node where id = $1', [via])).rows[0];
      target = node?.url ? { url: `${node.url}/r1/${provider}/${rest}`, asNode: true } : null;
    }
    if (!target) throw problem('unavailable', `${provider} has no reachable service address`, { reason: 'unreachable' });
    try {
      return await forward(rt, req, reply, target, client, xroadId);
    } catch (err) {
      if ((err as { problem?: unknown }).problem) throw err;
      throw problem('unavailable', `the provider did not answer: ${(err as Error).message}`, { reason: 'unreachable' });
    }
  });
}
