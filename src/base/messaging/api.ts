// The messaging JSON API (/api/v1/messaging/...), with TypeBox schemas (they become the OpenAPI
// document). The department side (templates, audiences, lists, notices) is on the internal face;
// the mailbox and the contact addresses are on the public face.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Readable } from 'node:stream';
import { requestLang } from '../../http/i18n.ts';
import { HttpProblem, problem } from '../../http/problems.ts';
import type { ModuleContext } from '../../module.ts';
import type { Actor } from '../identity/policy.ts';
import { appendAudit } from '../audit/index.ts';
import { SegmentError } from '../registries/population/segment.ts';
import { getContact, listMailbox, openMessage, setContact, EMAIL, PHONE } from './mailbox.ts';
import {
  channelCounts,
  countAudience,
  createListFromStream,
  getNotice,
  listDeliveries,
  listNotices,
  NoticeForbidden,
  NoticeInputError,
  NoticeNotFound,
  RateLimited,
  submitNotice,
  type NoticeRecord,
  type Sender,
} from './notices.ts';
import { maskedOwner, ownerOfActor, RecipientError } from './recipients.ts';
import { getTemplate, listTemplates, saveTemplate, TemplateError, TemplateOwnerError, LIMITS, RECIPIENT_ATTRIBUTES, type Template } from './templates.ts';

// ---------------------------------------------------------------------------------------------
// Schemas

const TextsSchema = (max: number) => Type.Object({ zh: Type.String({ minLength: 1, maxLength: max }), en: Type.Optional(Type.Union([Type.String({ maxLength: max }), Type.Null()])) }, { additionalProperties: false });
const TextsOut = Type.Object({ zh: Type.String(), en: Type.Union([Type.String(), Type.Null()]) });

export const TemplateInputSchema = Type.Object(
  {
    key: Type.String({ pattern: '^[a-z][a-z0-9-]{1,63}$', description: 'stable key; an existing key of your department gets a new version' }),
    name: TextsSchema(LIMITS.name),
    subject: TextsSchema(LIMITS.subject),
    body: TextsSchema(LIMITS.body),
    variables: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$' }), { maxItems: LIMITS.variables, description: `values every notice must give; the recipient attributes (${RECIPIENT_ATTRIBUTES.join(', ')}) are filled in by the platform` })),
  },
  { additionalProperties: false },
);

const TemplateSchema = Type.Object({
  key: Type.String(),
  version: Type.Integer(),
  department: Type.String(),
  name: TextsOut,
  subject: TextsOut,
  body: TextsOut,
  variables: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  synthetic: Type.Boolean(),
});

const Code18 = Type.String({ minLength: 18, maxLength: 18 });
const Age = Type.Integer({ minimum: 0, maximum: 150 });

export const AudienceSchema = Type.Union(
  [
    Type.Object(
      {
        kind: Type.Literal('person'),
        idNumber: Type.Optional(Code18),
        uscc: Type.Optional(Code18),
        staffAccountId: Type.Optional(Type.String({ maxLength: 36 })),
      },
      { additionalProperties: false, description: 'one resident, enterprise or member of staff' },
    ),
    Type.Object(
      {
        kind: Type.Literal('list'),
        recipients: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 10_000, description: 'ID numbers and credit codes' })),
        listId: Type.Optional(Type.Integer({ minimum: 1, description: 'a list uploaded with POST /api/v1/messaging/lists' })),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        kind: Type.Literal('segment'),
        divisions: Type.Optional(Type.Array(Type.String({ pattern: '^([0-9]{6}|[0-9]{9}|[0-9]{12})$' }), { maxItems: 200, description: 'county, township or community codes of the city profile; none: the whole city' })),
        minAge: Type.Optional(Age),
        maxAge: Type.Optional(Age),
        sex: Type.Optional(Type.Enum(['M', 'F'])),
      },
      { additionalProperties: false, description: 'residents of the population registry chosen by address, age (as of today) and sex' },
    ),
  ],
  { description: 'who receives the notice' },
);

export const SendSchema = Type.Object(
  {
    template: Type.String({ pattern: '^[a-z][a-z0-9-]{1,63}$' }),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'default: the latest' })),
    vars: Type.Optional(Type.Record(Type.String({ maxLength: 32 }), Type.String({ maxLength: LIMITS.value }), { maxProperties: LIMITS.variables })),
    audience: AudienceSchema,
  },
  { additionalProperties: false },
);

const Counters = {
  recipients: Type.Integer({ description: 'the audience’s size when sent' }),
  total: Type.Integer({ description: 'delivery rows so far (all channels)' }),
  queued: Type.Integer(),
  delivered: Type.Integer({ description: 'reached the recipient, including those read since' }),
  read: Type.Integer(),
  failed: Type.Integer(),
};

const NoticeSchema = Type.Object({
  id: Type.Integer(),
  department: Type.String(),
  status: Type.Enum(['queued', 'sending', 'done']),
  template: Type.Union([Type.Object({ key: Type.String(), version: Type.Integer() }), Type.Null()]),
  subject: TextsOut,
  audience: Type.Object({ kind: Type.String() }, { additionalProperties: true }),
  ...Counters,
  chunks: Type.Object({ total: Type.Union([Type.Integer(), Type.Null()]), done: Type.Integer() }),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  synthetic: Type.Boolean(),
});

const ChannelCount = Type.Object({ total: Type.Integer(), queued: Type.Integer(), delivered: Type.Integer(), read: Type.Integer(), failed: Type.Integer() });
const NoticeDetailSchema = Type.Object({ ...NoticeSchema.properties, body: TextsOut, vars: Type.Record(Type.String(), Type.String()), byChannel: Type.Object({ mailbox: ChannelCount, sms: ChannelCount, email: ChannelCount }) });

const SentSchema = Type.Object({ id: Type.Integer(), status: Type.Enum(['queued', 'sending', 'done']), recipients: Type.Integer(), url: Type.String(), page: Type.String() });

const DeliverySchema = Type.Object({
  channel: Type.Enum(['mailbox', 'sms', 'email']),
  recipient: Type.String({ description: 'masked: 320508********1234' }),
  status: Type.Enum(['queued', 'delivered', 'read', 'failed']),
  attempts: Type.Integer(),
  deliveredAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
});

const MailboxItemSchema = Type.Object({
  noticeId: Type.Integer(),
  department: Type.String(),
  subject: Type.String(),
  status: Type.Enum(['delivered', 'read']),
  deliveredAt: Type.String({ format: 'date-time' }),
  readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  synthetic: Type.Boolean(),
});

const ContactSchema = Type.Object(
  {
    phone: Type.Union([Type.String({ pattern: PHONE.source }), Type.Null()]),
    email: Type.Union([Type.String({ maxLength: 254, pattern: EMAIL.source }), Type.Null()]),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------------------------------------
// Helpers shared with the pages

/** Runs fn, turning the module's errors into problems (and a rate limit into 429 with Retry-After). */
export async function asProblem<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toProblem(reply, err);
  }
}

export function toProblem(reply: FastifyReply, err: unknown): unknown {
  if (err instanceof RateLimited) {
    reply.header('retry-after', String(err.retryAfter));
    return problem('rate-limited', err.message, { retryAfter: err.retryAfter });
  }
  if (err instanceof NoticeInputError || err instanceof TemplateError || err instanceof SegmentError || err instanceof RecipientError) return problem('validation', err.message);
  if (err instanceof NoticeNotFound) return problem('not-found', err.message);
  if (err instanceof NoticeForbidden || err instanceof TemplateOwnerError) return problem('forbidden', err.message);
  return err;
}

/** The sending side of the actor: its department and who in it. */
export function senderOf(actor: Actor): Sender {
  if (actor.kind === 'staff') return { department: actor.department, kind: 'staff', id: actor.accountId, name: actor.name };
  if (actor.kind === 'system') return { department: actor.department, kind: 'system', id: actor.id };
  throw problem('forbidden', 'notices are sent by departments: staff or department systems');
}

export function ownMailbox(actor: Actor): string {
  const owner = ownerOfActor(actor);
  if (!owner) throw problem('forbidden', 'a mailbox belongs to a resident, an enterprise or a member of staff');
  return owner;
}

export function noticeJson(n: NoticeRecord) {
  return {
    id: n.id,
    department: n.department,
    status: n.status,
    template: n.template,
    subject: { zh: n.subject.zh, en: n.subject.en ?? null },
    audience: n.audience.kind === 'recipients' ? { kind: 'recipients', count: n.audience.recipients.length } : n.audience.kind === 'person' ? { kind: 'person' } : n.audience,
    recipients: n.recipients,
    total: n.total,
    queued: n.queued,
    delivered: n.delivered,
    read: n.read,
    failed: n.failed,
    chunks: { total: n.chunksTotal, done: n.chunksDone },
    createdAt: n.createdAt,
    finishedAt: n.finishedAt,
    synthetic: n.synthetic,
  };
}

const templateJson = (t: Template) => ({ ...t, name: { zh: t.name.zh, en: t.name.en ?? null }, subject: { zh: t.subject.zh, en: t.subject.en ?? null }, body: { zh: t.body.zh, en: t.body.en ?? null } });

/** The notice if the actor's department may see it; 404 if there is none. */
export async function readableNotice(ctx: ModuleContext, actor: Actor, id: number): Promise<NoticeRecord> {
  const n = await getNotice(ctx.db, id);
  if (!n) throw problem('not-found', `no notice ${id}`);
  ctx.policy.authorize(actor, 'notice:read', n);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Routes

const tags = ['messaging'];

export function departmentApi(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  const uploadMax = ctx.config.messaging.uploadMaxBytes;

  // CSV lists arrive as a stream: the handler reads it line by line into COPY
  app.addContentTypeParser(['text/csv'], (_req, payload, done) => done(null, payload));

  s.get('/api/v1/messaging/templates', { config: { action: 'notice-template:read' }, schema: { tags, summary: 'Every notice template (latest version of each key)', querystring: Type.Object({ department: Type.Optional(Type.String({ maxLength: 64 })) }), response: { 200: Type.Object({ items: Type.Array(Type.Object({ ...TemplateSchema.properties, versions: Type.Integer() })) }) } } }, async (req) => ({
    items: (await listTemplates(ctx.db, req.query.department)).map((t) => ({ ...templateJson(t), versions: t.versions })),
  }));

  s.get(
    '/api/v1/messaging/templates/:key',
    { config: { action: 'notice-template:read' }, schema: { tags, summary: 'A notice template (latest version, or ?version=)', params: Type.Object({ key: Type.String({ maxLength: 64 }) }), querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })) }), response: { 200: TemplateSchema } } },
    async (req) => {
      const t = await getTemplate(ctx.db, req.params.key, req.query.version);
      if (!t) throw problem('not-found', `no template ${req.params.key}`);
      return templateJson(t);
    },
  );

  s.post(
    '/api/v1/messaging/templates',
    { config: { action: 'notice-template:create' }, schema: { tags, summary: 'Saves a new template, or a new version of one of your department’s templates (placeholders are checked)', body: TemplateInputSchema, response: { 201: TemplateSchema } } },
    async (req, reply) => {
      const sender = senderOf(req.actor);
      ctx.policy.authorize(req.actor, 'notice-template:create', sender);
      const t = await asProblem(reply, () =>
        ctx.db.tx(async (c) => {
          const saved = await saveTemplate(c, sender.department, sender.id, req.body);
          await appendAudit(c, { actor: { kind: sender.kind, id: sender.id, department: sender.department }, action: 'messaging.template.create', resource: { type: 'notice-template', id: `${saved.key}@${saved.version}` }, outcome: 'ok', requestId: req.id, ip: req.ip });
          return saved;
        }),
      );
      reply.code(201).header('location', `/api/v1/messaging/templates/${t.key}?version=${t.version}`);
      return templateJson(t);
    },
  );

  s.post(
    '/api/v1/messaging/audience/count',
    { config: { action: 'audience:count' }, schema: { tags, summary: 'How many recipients an audience reaches (before sending)', body: Type.Object({ audience: AudienceSchema }, { additionalProperties: false }), response: { 200: Type.Object({ recipients: Type.Integer() }) } } },
    async (req, reply) => {
      const sender = senderOf(req.actor);
      ctx.policy.authorize(req.actor, 'audience:count', sender);
      return { recipients: await asProblem(reply, () => countAudience(ctx.db, ctx.profile, sender.department, req.body.audience)) };
    },
  );

  s.post(
    '/api/v1/messaging/lists',
    {
      config: { action: 'recipient-list:create' },
      bodyLimit: uploadMax,
      schema: {
        tags,
        summary: 'Uploads a recipient list as CSV (Content-Type: text/csv): one ID number or credit code per line, first column; streamed. Send a notice to it with audience {kind: "list", listId}',
        consumes: ['text/csv'],
        response: { 201: Type.Object({ id: Type.Integer(), recipients: Type.Integer() }) },
      },
    },
    async (req, reply) => {
      const sender = senderOf(req.actor);
      ctx.policy.authorize(req.actor, 'recipient-list:create', sender);
      const body = req.body as unknown;
      if (!body || typeof (body as Readable).pipe !== 'function') throw problem('unsupported-media-type', 'send the list as text/csv');
      const list = await asProblem(reply, () => ctx.db.tx((c) => createListFromStream(c, sender.department, sender.id, limitBytes(body as Readable, uploadMax))));
      reply.code(201);
      return list;
    },
  );

  s.post(
    '/api/v1/messaging/notices',
    { config: { action: 'notice:send' }, schema: { tags, summary: 'Sends a notice from a template of your department; answers 202 at once, delivery runs in the background', body: SendSchema, response: { 202: SentSchema } } },
    async (req, reply) => {
      const sender = senderOf(req.actor);
      ctx.policy.authorize(req.actor, 'notice:send', sender);
      const sent = await asProblem(reply, () => ctx.db.tx((c) => submitNotice(c, sender, req.body, { requestId: req.id, ip: req.ip })));
      reply.code(202).header('location', sent.url);
      return sent;
    },
  );

  s.get(
    '/api/v1/messaging/notices',
    { config: { action: 'notice:list' }, schema: { tags, summary: 'Your department’s notices, newest first, with their progress', querystring: Type.Object({ before: Type.Optional(Type.Integer({ minimum: 1 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }), response: { 200: Type.Object({ items: Type.Array(NoticeSchema), next: Type.Union([Type.Integer(), Type.Null()]) }) } } },
    async (req) => {
      const sender = senderOf(req.actor);
      const page = await listNotices(ctx.db, sender.department, req.query);
      return { items: page.items.map(noticeJson), next: page.next };
    },
  );

  s.get(
    '/api/v1/messaging/notices/:id',
    { config: { action: 'notice:read' }, schema: { tags, summary: 'A notice: texts, audience, status and counters (poll it for progress)', params: Type.Object({ id: Type.Integer({ minimum: 1 }) }), response: { 200: NoticeDetailSchema } } },
    async (req) => {
      const n = await readableNotice(ctx, req.actor, req.params.id);
      return { ...noticeJson(n), body: { zh: n.body.zh, en: n.body.en ?? null }, vars: n.vars, byChannel: await channelCounts(ctx.db, n) };
    },
  );

  s.get(
    '/api/v1/messaging/notices/:id/deliveries',
    {
      config: { action: 'notice:read' },
      schema: {
        tags,
        summary: 'A notice’s deliveries, one page at a time (recipients masked)',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        querystring: Type.Object({
          status: Type.Optional(Type.Enum(['queued', 'delivered', 'read', 'failed'])),
          channel: Type.Optional(Type.Enum(['mailbox', 'sms', 'email'])),
          after: Type.Optional(Type.String({ maxLength: 80, description: 'the `next` of the previous page' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
        }),
        response: { 200: Type.Object({ items: Type.Array(DeliverySchema), next: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (req) => {
      const n = await readableNotice(ctx, req.actor, req.params.id);
      const page = await listDeliveries(ctx.db, n.id, req.query);
      return { items: page.items.map((d) => ({ ...d, recipient: maskedOwner(d.recipient) })), next: page.next };
    },
  );
}

/** Passes a request stream through, failing with 413 past `max` bytes (a stream parser has no body limit of its own). */
async function* limitBytes(stream: Readable, max: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw new HttpProblem('payload-too-large', `the list is larger than ${max} bytes (GUSU_NOTICE_UPLOAD_MAX_MB)`);
    yield chunk;
  }
}

export function mailboxApi(app: FastifyInstance, ctx: ModuleContext): void {
  const s = app.withTypeProvider<TypeBoxTypeProvider>();
  s.get(
    '/api/v1/messaging/mailbox',
    { config: { action: 'mailbox:read' }, schema: { tags, summary: 'The signed-in person’s (or enterprise’s) mailbox, newest first', querystring: Type.Object({ before: Type.Optional(Type.Integer({ minimum: 1 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })), lang: Type.Optional(Type.String({ maxLength: 10 })) }), response: { 200: Type.Object({ items: Type.Array(MailboxItemSchema), unread: Type.Integer(), next: Type.Union([Type.Integer(), Type.Null()]) }) } } },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      return listMailbox(ctx.db, ctx.profile, ownMailbox(req.actor), requestLang(req), req.query);
    },
  );
  s.get(
    '/api/v1/messaging/mailbox/:id',
    {
      config: { action: 'mailbox:read' },
      schema: {
        tags,
        summary: 'One message of the mailbox, personalised; reading it marks it read',
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        querystring: Type.Object({ lang: Type.Optional(Type.String({ maxLength: 10 })) }),
        response: { 200: Type.Object({ ...MailboxItemSchema.properties, text: Type.String(), html: Type.String({ description: 'the body as escaped HTML paragraphs' }) }) },
      },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      const m = await openMessage(ctx.db, ctx.profile, ownMailbox(req.actor), req.params.id, requestLang(req));
      if (!m) throw problem('not-found', `no message ${req.params.id} in your mailbox`);
      const { html, senderName: _s, ...rest } = m;
      return { ...rest, html: html.__html };
    },
  );
  s.get('/api/v1/messaging/contact', { config: { action: 'notice-contact:read' }, schema: { tags, summary: 'Where SMS and email notices go (the channels themselves are chosen in /api/v1/me/preferences)', response: { 200: ContactSchema } } }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    return getContact(ctx.db, ownMailbox(req.actor));
  });
  s.put('/api/v1/messaging/contact', { config: { action: 'notice-contact:update' }, schema: { tags, summary: 'Sets the mobile number and email address for notices (null clears one)', body: ContactSchema, response: { 200: ContactSchema } } }, async (req) =>
    setContact(ctx.db, ownMailbox(req.actor), req.body as Static<typeof ContactSchema>),
  );
}

