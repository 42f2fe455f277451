// The HTTP adapter: one Fastify instance per listener (face), with the error model, request ids,
// security headers, metrics, the OpenAPI document and the operations endpoints. Modules bring
// their routes; nothing here knows what a resident or a grid is.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { repoRoot } from '../config/index.ts';
import type { ActorResolver, GusuModule, ModuleContext } from '../module.ts';
import { ANONYMOUS } from '../base/identity/policy.ts';
import { PLUGIN_ROUTE_ACTIONS } from './policy.ts';
import { contentSecurityPolicy } from './csp.ts';
import { requestLang } from './i18n.ts';
import { HttpProblem, PROBLEM_TYPES, problemBody, type ProblemName } from './problems.ts';
import { errorPage, problemPage } from './layout.ts';
import type { Metrics } from './metrics.ts';

export type Face = 'public' | 'internal' | 'both';

export interface ServerState {
  /** false until start-up has finished, and again once shutdown begins */
  ready: boolean;
  /** checks a dependency; rejects when it is down */
  checkDb: () => Promise<void>;
}

export interface BuildOptions {
  ctx: ModuleContext;
  modules: readonly GusuModule[];
  face: Face;
  state: ServerState;
  metrics: Metrics;
  /** who is calling; anonymous when omitted */
  resolveActor?: ActorResolver;
  /** a pino logger; none: silent */
  loggerInstance?: FastifyBaseLogger;
  bodyLimit?: number;
}

const API_PREFIXES = ['/api/', '/open311/', '/r1/', '/healthz', '/readyz', '/metrics', '/catalog/dcat.jsonld', '/problems.json'];

export function isApiPath(url: string): boolean {
  return API_PREFIXES.some((p) => url.startsWith(p));
}

function wantsHtml(req: FastifyRequest): boolean {
  if (isApiPath(req.url)) return false;
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const CSP = contentSecurityPolicy();

export function sendProblem(req: FastifyRequest, reply: FastifyReply, name: ProblemName, detail?: string, extensions?: Record<string, unknown>) {
  const lang = requestLang(req);
  const body = problemBody(name, lang, detail, `urn:gusu:request:${req.id}`, extensions);
  reply.code(body.status);
  if (wantsHtml(req)) {
    const shell = req.url.startsWith('/console') ? 'console' : 'portal';
    return reply.type('text/html; charset=utf-8').send(errorPage(lang, body, { path: req.url, shell }));
  }
  return reply.type('application/problem+json; charset=utf-8').send(body);
}

function fastifyErrorToProblem(err: FastifyError): { name: ProblemName; detail?: string; extensions?: Record<string, unknown> } {
  if (err.validation) {
    const errors = err.validation.map((v) => ({
      in: err.validationContext ?? 'body',
      pointer: v.instancePath || '/',
      message: v.message ?? 'invalid',
    }));
    return { name: 'validation', detail: `${err.validationContext ?? 'request'} ${err.validation[0]?.instancePath ?? ''} ${err.validation[0]?.message ?? ''}`.replace(/\s+/g, ' ').trim(), extensions: { errors } };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { name: 'payload-too-large', detail: err.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { name: 'unsupported-media-type', detail: err.message };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { name: 'bad-request', detail: err.message };
  }
  if (err.statusCode === 400 && err instanceof SyntaxError) return { name: 'bad-request', detail: 'the body is not valid JSON' };
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    const name = (Object.keys(PROBLEM_TYPES) as ProblemName[]).find((k) => PROBLEM_TYPES[k].status === err.statusCode) ?? 'bad-request';
    return { name, detail: err.message };
  }
  return { name: 'internal' };
}

export interface RouteInfo {
  method: string;
  url: string;
  action: string;
}

/** every route the server registered, with the action it needs (for the authorization matrix) */
export function routesOf(app: FastifyInstance): readonly RouteInfo[] {
  return (app as unknown as { gusuRoutes: RouteInfo[] }).gusuRoutes;
}

/** the n nearest hops are trusted proxies (what proxy-addr does with a number; Fastify's types want a function) */
function trustHops(n: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < n;
}

export async function buildServer(opts: BuildOptions): Promise<FastifyInstance> {
  const { ctx, modules, face, state, metrics } = opts;
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: false }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // probes every few seconds would drown the log
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: (req) => req.url === '/healthz' || req.url === '/readyz' }),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // req.ip (rate limits, audit) is the client behind the configured proxies only (GUSU_TRUST_PROXY)
    trustProxy: typeof opts.ctx.config.trustProxy === 'number' ? trustHops(opts.ctx.config.trustProxy) : opts.ctx.config.trustProxy,
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: false, removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // every route with its action: the authorization matrix test walks this table
  const routeTable: RouteInfo[] = [];
  app.decorate('gusuRoutes', routeTable);
  // Deny by default: a route that names no action, or an action no policy mentions, stops start-up.
  app.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { action?: string };
    if (!config.action) {
      const fromPrefix = PLUGIN_ROUTE_ACTIONS.find(([prefix]) => route.url.startsWith(prefix));
      if (fromPrefix) route.config = { ...config, action: fromPrefix[1] };
    }
    const action = (route.config as { action?: string } | undefined)?.action;
    const methods = Array.isArray(route.method) ? route.method.join(',') : route.method;
    if (!action) throw new Error(`route ${methods} ${route.url} names no action (config: { action: 'resource:verb' })`);
    if (!ctx.policy.actions.has(action)) throw new Error(`route ${methods} ${route.url} needs "${action}", which no policy allows anyone`);
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) routeTable.push({ method, url: route.url, action });
  });
  app.decorateRequest('actor', null as never);
  const resolveActor = opts.resolveActor ?? (async () => ANONYMOUS);

  await app.register(cookie);
  await app.register(formbody, { bodyLimit: 256 * 1024 });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    (req as FastifyRequest & { startedAt?: bigint }).startedAt = process.hrtime.bigint();
  });
  // who is calling, then whether any rule could allow them this route's action: before the body is
  // validated, so a caller who may not use a route learns nothing about its schema
  app.addHook('preValidation', async (req) => {
    req.actor = await resolveActor(req);
    const action = req.routeOptions.config?.action;
    if (action) ctx.policy.authorize(req.actor, action); // no action: the not-found handler
  });
  app.addHook('onSend', async (req, reply, payload) => {
    // while shutting down, a keep-alive connection must not outlive its last in-flight response
    if (!state.ready) reply.header('connection', 'close');
    if (!req.url.startsWith('/api/docs')) reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('permissions-policy', 'camera=(self), geolocation=(self), microphone=()');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    const started = (req as FastifyRequest & { startedAt?: bigint }).startedAt;
    if (started === undefined) return;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, seconds);
  });

  app.setErrorHandler((err: FastifyError | HttpProblem, req, reply) => {
    if (err instanceof HttpProblem) {
      return sendProblem(req, reply, err.problem, err.message, err.extensions);
    }
    const { name, detail, extensions } = fastifyErrorToProblem(err);
    if (name === 'internal') req.log.error({ err }, 'unhandled error');
    return sendProblem(req, reply, name, detail, extensions);
  });
  app.setNotFoundHandler((req, reply) => sendProblem(req, reply, 'not-found', `no resource at ${req.method} ${req.url.split('?')[0]}`));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gusu (姑苏) city e-government platform API',
        version: '0.1.0',
        description:
          'The APIs of the Gusu platform. Errors are RFC 9457 problem details (application/problem+json); each `type` is documented at /problems/{name}.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/' }],
      tags: [{ name: 'operations', description: 'Health, readiness and metrics' }],
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/api/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/ https:/g, '').replace(' upgrade-insecure-requests;', '').replace(' validator.swagger.io', ''),
    uiConfig: { validatorUrl: null, deepLinking: true },
  });
  app.get('/api/openapi.json', { schema: { hide: true }, config: { action: 'api-description:read' } }, async () => app.swagger());

  await app.register(fastifyStatic, {
    root: path.join(repoRoot, 'web'),
    prefix: '/assets/',
    maxAge: 3_600_000,
    index: false,
    wildcard: true,
  });

  // operations: liveness, readiness, metrics (both faces)
  const Health = Type.Object({ status: Type.String() });
  app.get('/healthz', { config: { action: 'health:read' }, schema: { tags: ['operations'], summary: 'Liveness: the process serves requests', response: { 200: Health } } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { config: { action: 'health:read' }, schema: { tags: ['operations'], summary: 'Readiness: started, not shutting down, database reachable', response: { 200: Health } } },
    async (req, reply) => {
      if (!state.ready) return sendProblem(req, reply, 'unavailable', 'starting up or shutting down');
      try {
        await state.checkDb();
      } catch (err) {
        return sendProblem(req, reply, 'unavailable', `database: ${(err as Error).message}`);
      }
      return { status: 'ready' };
    },
  );
  app.get('/metrics', { config: { action: 'metrics:read' }, schema: { tags: ['operations'], summary: 'Prometheus text exposition', produces: ['text/plain'] } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return await metrics.registry.metrics();
  });
  app.get('/problems/:name', { config: { action: 'problem-type:read' }, schema: { hide: true, params: Type.Object({ name: Type.String({ maxLength: 64 }) }) } }, async (req, reply) => {
    const name = req.params.name as ProblemName;
    if (!Object.hasOwn(PROBLEM_TYPES, name)) return sendProblem(req, reply, 'not-found', `no problem type named ${req.params.name}`);
    return reply.type('text/html; charset=utf-8').send(problemPage(requestLang(req), name));
  });

  for (const m of modules) {
    const routes = [face !== 'internal' ? m.publicRoutes : undefined, face !== 'public' ? m.internalRoutes : undefined];
    for (const r of routes) if (r) await app.register(async (scope) => r(scope, ctx));
  }
  await app.ready();
  return app;
}
