// Notices: sending (rate limits, audit), the fan-out to one delivery row per recipient and channel,
// the external deliveries with retries, and the counters the sender watches.
//
// Small audiences (one person; sendNotice with up to 1,000 recipients) are delivered inside the
// caller's transaction. Segments and lists are planned by a job ('messaging.plan') that cuts them
// into chunks, one job each ('messaging.chunk'): a chunk inserts its mailbox rows with one
// `insert ... select` over the registry's segment SQL (the rows never pass through Node), adds the
// SMS/email rows for recipients who asked for them, bumps the counters and marks itself done, all
// in one transaction. A process killed mid-chunk leaves nothing of it; the job's lease brings it
// back; (notice, channel, recipient) is the primary key and inserts skip conflicts, so nothing is
// delivered twice. External channels are sent by 'messaging.deliver' jobs in batches with
// exponential back-off; after GUSU_NOTICE_MAX_ATTEMPTS a delivery is failed with its last error.
import type pg from 'pg';
import type { CityProfile } from '../../config/profile.ts';
import type { MessagingConfig } from '../../config/index.ts';
import { enqueue, type Db, type Job, type Queryable } from '../../db/index.ts';
import { copyRows } from '../../db/copy.ts';
import type { Lang } from '../../http/i18n.ts';
import { appendAudit, type AuditActor } from '../audit/index.ts';
import { EXTERNAL_CHANNEL_SUBSCRIBERS_SQL } from '../identity/index.ts';
import { checkSegment, countSegment, segmentBoundaries, segmentSql, SegmentError, type SegmentFilter } from '../registries/population/segment.ts';
import { EXTERNAL_CHANNELS, type ChannelAdapter, type ExternalChannelId, type OutgoingMessage } from './channels.ts';
import { knownOwners, ownerKey, ownerKeyOfCode, recipientAttributes, RecipientError, unknownReason, type RecipientRef } from './recipients.ts';
import { checkTemplateInput, checkVars, getTemplate, pick, renderHtml, renderText, TemplateError, type Template, type Texts } from './templates.ts';

export interface Runtime {
  db: Db;
  profile: CityProfile;
  config: MessagingConfig;
  channels: Map<ExternalChannelId, ChannelAdapter>;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

let runtime: Runtime | null = null;

export function setRuntime(r: Runtime | null): void {
  runtime = r;
}

export function getRuntime(): Runtime {
  if (!runtime) throw new Error('the messaging module has not started (is it registered in src/modules.ts?)');
  return runtime;
}

// ---------------------------------------------------------------------------------------------
// Audiences

/** What a notice was sent to, as stored with it. */
export type AudienceSpec =
  | { kind: 'person'; recipient: string }
  | { kind: 'recipients'; recipients: string[] }
  | { kind: 'list'; listId: number; recipients: number }
  | { kind: 'segment'; filter: SegmentFilter; asOf: string };

/** The audience as a request gives it. */
export type AudienceRequest =
  | ({ kind: 'person' } & Partial<{ idNumber: string; uscc: string; staffAccountId: string }>)
  | { kind: 'list'; recipients?: string[]; listId?: number }
  | ({ kind: 'segment' } & SegmentFilter);

export const MAX_INLINE_LIST = 10_000;
export const MAX_SEND_NOTICE_RECIPIENTS = 1_000;
const LIST_CHUNK = 10_000;

/** a request the sender can fix: becomes a 400 validation problem */
export class NoticeInputError extends Error {}
/** refers to something that does not exist (a person, a list, a template): 404 */
export class NoticeNotFound extends Error {}
/** the sender's department may not use this (another department's template or list): 403 */
export class NoticeForbidden extends Error {}
/** over a rate limit: 429 with Retry-After */
export class RateLimited extends Error {
  constructor(
    readonly retryAfter: number,
    message: string,
  ) {
    super(message);
  }
}

/** Today in the city's time zone, YYYY-MM-DD: the day ages are reckoned on. */
export function cityToday(profile: CityProfile, now = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: profile.city.timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
}

function segmentOf(profile: CityProfile, a: SegmentFilter): SegmentFilter {
  try {
    return checkSegment(profile, { divisions: a.divisions, minAge: a.minAge, maxAge: a.maxAge, sex: a.sex });
  } catch (err) {
    if (err instanceof SegmentError) throw new NoticeInputError(`audience.${err.message}`);
    throw err;
  }
}

function personOwner(a: Extract<AudienceRequest, { kind: 'person' }>): string {
  const given = (['idNumber', 'uscc', 'staffAccountId'] as const).filter((k) => a[k] !== undefined);
  if (given.length !== 1) throw new NoticeInputError('audience: a person is one of idNumber, uscc or staffAccountId');
  try {
    return ownerKey({ [given[0]!]: a[given[0]!] } as RecipientRef);
  } catch (err) {
    if (err instanceof RecipientError) throw new NoticeInputError(`audience.${err.message}`);
    throw err;
  }
}

function listOwners(codes: readonly string[]): string[] {
  if (codes.length > MAX_INLINE_LIST) throw new NoticeInputError(`audience.recipients: at most ${MAX_INLINE_LIST} in one request; upload a larger list as CSV (POST /api/v1/messaging/lists)`);
  const out = new Set<string>();
  codes.forEach((c, i) => {
    try {
      out.add(ownerKeyOfCode(String(c)));
    } catch (err) {
      if (err instanceof RecipientError) throw new NoticeInputError(`audience.recipients[${i}]: ${err.message}`);
      throw err;
    }
  });
  return [...out];
}

async function ownList(q: Queryable, department: string, listId: number): Promise<{ recipients: number }> {
  const { rows } = await q.query<{ department: string; recipients: number }>('select department, recipients from messaging.recipient_list where id = $1', [listId]);
  if (!rows[0]) throw new NoticeNotFound(`no recipient list ${listId}`);
  if (rows[0].department !== department) throw new NoticeForbidden(`recipient list ${listId} belongs to another department`);
  return rows[0];
}

/** How many recipients an audience reaches (the "count recipients" preview); writes nothing. */
export async function countAudience(q: Queryable, profile: CityProfile, department: string, a: AudienceRequest): Promise<number> {
  switch (a.kind) {
    case 'person':
      return (await knownOwners(q, [personOwner(a)])).size;
    case 'list':
      if (a.listId !== undefined) return (await ownList(q, department, a.listId)).recipients;
      return listOwners(a.recipients ?? []).length;
    case 'segment':
      return countSegment(q, segmentOf(profile, a), cityToday(profile));
    default:
      throw new NoticeInputError('audience.kind: expected person, list or segment');
  }
}

// ---------------------------------------------------------------------------------------------
// Recipient lists

/** Stages a list of mailbox owners; returns its id. */
export async function createList(q: Queryable, department: string, createdBy: string, owners: readonly string[]): Promise<number> {
  const { rows } = await q.query<{ id: number }>('insert into messaging.recipient_list (department, created_by, recipients) values ($1, $2, $3) returning id', [department, createdBy, owners.length]);
  const id = rows[0]!.id;
  if (owners.length) await q.query('insert into messaging.list_member (list_id, seq, recipient) select $1, s.n::int - 1, s.r from unnest($2::text[]) with ordinality as s(r, n)', [id, owners]);
  return id;
}

/**
 * Streams a CSV (or plain) list into a staged list with COPY: one recipient per line, the first
 * column an ID number or USCC; an optional header line; blank lines ignored. The first bad line
 * stops it (nothing is kept) and is reported with its number. Call inside a transaction.
 */
export async function createListFromStream(client: pg.PoolClient, department: string, createdBy: string, input: AsyncIterable<Buffer | string>): Promise<{ id: number; recipients: number }> {
  const { rows } = await client.query<{ id: number }>('insert into messaging.recipient_list (department, created_by, recipients) values ($1, $2, 0) returning id', [department, createdBy]);
  const id = rows[0]!.id;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lineNo = 0;
  let seq = 0;
  async function* lines(): AsyncGenerator<string> {
    let rest = '';
    for await (const chunk of input) {
      rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        yield rest.slice(0, nl);
        rest = rest.slice(nl + 1);
      }
      if (rest.length > 10_000) throw new NoticeInputError(`line ${lineNo + 1}: longer than 10,000 characters`);
    }
    rest += decoder.decode();
    if (rest) yield rest;
  }
  async function* members(): AsyncGenerator<unknown[]> {
    for await (const raw of lines()) {
      lineNo++;
      const line = raw.replace(/^\uFEFF/, '').replace(/\r$/, '');
      const first = (line.split(/[,\t;]/)[0] ?? '').trim().replace(/^"(.*)"$/, '$1').trim();
      if (!first) continue;
      let owner: string;
      try {
        owner = ownerKeyOfCode(first);
      } catch (err) {
        // a header line: the first line, and not something that looks like a code
        if (lineNo === 1 && !/^[0-9A-Z]{18}$/i.test(first)) continue;
        throw new NoticeInputError(`line ${lineNo}: ${(err as Error).message}`);
      }
      yield [id, seq++, owner];
    }
  }
  await copyRows(client, 'messaging.list_member', ['list_id', 'seq', 'recipient'], members());
  if (seq === 0) throw new NoticeInputError('the list has no recipients');
  await client.query('update messaging.recipient_list set recipients = $2 where id = $1', [id, seq]);
  return { id, recipients: seq };
}

// ---------------------------------------------------------------------------------------------
// Notices

export interface Sender {
  department: string;
  kind: 'staff' | 'system';
  /** account id (staff) or system id */
  id: string;
  name?: string | null;
}

interface NoticeContent {
  template: { key: string; version: number } | null;
  subject: Texts;
  body: Texts;
  vars: Record<string, string>;
}

export interface NoticeRecord {
  id: number;
  department: string;
  senderKind: 'staff' | 'system';
  senderId: string;
  senderName: string | null;
  template: { key: string; version: number } | null;
  subject: Texts;
  body: Texts;
  vars: Record<string, string>;
  audience: AudienceSpec;
  status: 'queued' | 'sending' | 'done';
  recipients: number;
  total: number;
  queued: number;
  delivered: number;
  read: number;
  failed: number;
  chunksTotal: number | null;
  chunksDone: number;
  synthetic: boolean;
  createdAt: string;
  fanoutDoneAt: string | null;
  finishedAt: string | null;
}

interface NoticeRow {
  id: number;
  department: string;
  sender_kind: 'staff' | 'system';
  sender_id: string;
  sender_name: string | null;
  template_key: string | null;
  template_version: number | null;
  subject_zh: string;
  subject_en: string | null;
  body_zh: string;
  body_en: string | null;
  vars: Record<string, string>;
  audience: AudienceSpec;
  status: 'queued' | 'sending' | 'done';
  recipients: number;
  total: number;
  queued: number;
  delivered: number;
  read: number;
  failed: number;
  chunks_total: number | null;
  chunks_done: number;
  synthetic: boolean;
  created_at: Date;
  fanout_done_at: Date | null;
  finished_at: Date | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

function toNotice(r: NoticeRow): NoticeRecord {
  return {
    id: r.id,
    department: r.department,
    senderKind: r.sender_kind,
    senderId: r.sender_id,
    senderName: r.sender_name,
    template: r.template_key ? { key: r.template_key, version: r.template_version! } : null,
    subject: { zh: r.subject_zh, en: r.subject_en },
    body: { zh: r.body_zh, en: r.body_en },
    vars: r.vars,
    audience: r.audience,
    status: r.status,
    recipients: r.recipients,
    total: r.total,
    queued: r.queued,
    delivered: r.delivered,
    read: r.read,
    failed: r.failed,
    chunksTotal: r.chunks_total,
    chunksDone: r.chunks_done,
    synthetic: r.synthetic,
    createdAt: iso(r.created_at)!,
    fanoutDoneAt: iso(r.fanout_done_at),
    finishedAt: iso(r.finished_at),
  };
}

export async function getNotice(q: Queryable, id: number): Promise<NoticeRecord | null> {
  if (!Number.isSafeInteger(id) || id < 1) return null;
  const { rows } = await q.query<NoticeRow>('select * from messaging.notice where id = $1', [id]);
  return rows[0] ? toNotice(rows[0]) : null;
}

/** A department's notices, newest first (keyset: before = the last id seen). */
export async function listNotices(q: Queryable, department: string, page: { before?: number; limit?: number } = {}): Promise<{ items: NoticeRecord[]; next: number | null }> {
  const limit = Math.min(page.limit ?? 20, 100);
  const { rows } = await q.query<NoticeRow>(
    `select * from messaging.notice where department = $1 and ($2::bigint is null or id < $2) order by id desc limit $3`,
    [department, page.before ?? null, limit + 1],
  );
  const items = rows.slice(0, limit).map(toNotice);
  return { items, next: rows.length > limit ? items.at(-1)!.id : null };
}

/** Refuses the send when the department is over its hourly notices or daily recipients (call under the department's lock). */
async function checkRateLimits(q: Queryable, department: string, recipients: number, c: MessagingConfig): Promise<void> {
  const { rows } = await q.query<{ hour: number; oldest_hour: Date | null; day: number; oldest_day: Date | null; now: Date }>(
    `select count(*) filter (where created_at > now() - interval '1 hour')::int as hour,
            min(created_at) filter (where created_at > now() - interval '1 hour') as oldest_hour,
            coalesce(sum(recipients), 0)::bigint as day, min(created_at) as oldest_day, now() as now
       from messaging.notice where department = $1 and created_at > now() - interval '24 hours'`,
    [department],
  );
  const r = rows[0]!;
  const wait = (oldest: Date | null, windowMs: number) => Math.max(1, Math.ceil(((oldest ? new Date(oldest).getTime() : Date.now()) + windowMs - new Date(r.now).getTime()) / 1000));
  if (r.hour >= c.ratePerHour) throw new RateLimited(wait(r.oldest_hour, 3_600_000), `${department} has sent ${r.hour} notices in the last hour (limit ${c.ratePerHour})`);
  if (recipients > c.recipientsPerDay) throw new RateLimited(86_400, `${recipients} recipients is more than ${department} may address in a day (limit ${c.recipientsPerDay})`);
  if (Number(r.day) + recipients > c.recipientsPerDay) throw new RateLimited(wait(r.oldest_day, 86_400_000), `${department} has addressed ${r.day} recipients in the last 24 hours; ${recipients} more would pass the limit of ${c.recipientsPerDay}`);
}

async function insertNotice(q: Queryable, sender: Sender, content: NoticeContent, audience: AudienceSpec, recipients: number, status: 'queued' | 'sending', synthetic: boolean): Promise<number> {
  const { rows } = await q.query<{ id: number }>(
    `insert into messaging.notice (department, sender_kind, sender_id, sender_name, template_key, template_version, subject_zh, subject_en, body_zh, body_en, vars, audience, status, recipients, synthetic)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning id`,
    [
      sender.department,
      sender.kind,
      sender.id,
      sender.name ?? null,
      content.template?.key ?? null,
      content.template?.version ?? null,
      content.subject.zh,
      content.subject.en ?? null,
      content.body.zh,
      content.body.en ?? null,
      JSON.stringify(content.vars),
      JSON.stringify(audience),
      status,
      recipients,
      synthetic,
    ],
  );
  return rows[0]!.id;
}

function enabledChannels(rt: Runtime): ExternalChannelId[] {
  return EXTERNAL_CHANNELS.filter((c) => rt.channels.has(c));
}

/**
 * Inserts the deliveries of the recipients a source query yields (column `recipient`, a mailbox
 * key; its parameters numbered from $3): the mailbox row, delivered at once, and an SMS or email row
 * (queued) for each recipient whose preferences ask for it and whose address is known. Returns how
 * many of each were inserted.
 *
 * existing: 'skip' passes over rows that exist already (lists, which may name someone twice across
 * chunks); 'fail' lets the primary key refuse them — a segment chunk's rows cannot exist, since a
 * chunk commits all of them with its done mark or none, and the speculative insertion ON CONFLICT
 * needs costs about 40 % more per row.
 */
async function fanOut(q: Queryable, noticeId: number, source: { sql: string; params: unknown[] }, channels: readonly ExternalChannelId[], existing: 'skip' | 'fail' = 'skip'): Promise<{ mailbox: number; sms: number; email: number }> {
  const onConflict = existing === 'skip' ? 'on conflict do nothing' : '';
  if (!channels.length) {
    const r = await q.query(
      `insert into messaging.delivery (notice_id, channel, recipient, status, delivered_at)
       select $1, 'mailbox', s.recipient, 'delivered', now() from (${source.sql}) s where cardinality($2::text[]) = 0
       ${onConflict}`,
      [noticeId, channels, ...source.params],
    );
    return { mailbox: r.rowCount ?? 0, sms: 0, email: 0 };
  }
  const { rows } = await q.query<{ mailbox: number; sms: number; email: number }>(
    `with ins as (
       insert into messaging.delivery (notice_id, channel, recipient, status, delivered_at)
       select $1, 'mailbox', s.recipient, 'delivered', now() from (${source.sql}) s
       ${onConflict}
       returning recipient
     ), ext as (
       insert into messaging.delivery (notice_id, channel, recipient, status, next_attempt_at)
       select $1, x.channel, ins.recipient, 'queued', now()
         from ins
         join (select case kind when 'citizen' then 'p:' when 'enterprise' then 'e:' else 's:' end || key as owner, channel
                 from (${EXTERNAL_CHANNEL_SUBSCRIBERS_SQL}) sub where channel = any($2::text[])) x on x.owner = ins.recipient
         join messaging.contact c on c.owner = ins.recipient
        where (x.channel = 'sms' and c.phone is not null) or (x.channel = 'email' and c.email is not null)
       on conflict do nothing
       returning channel
     )
     select (select count(*)::int from ins) as mailbox,
            (select count(*)::int from ext where channel = 'sms') as sms,
            (select count(*)::int from ext where channel = 'email') as email`,
    [noticeId, channels, ...source.params],
  );
  return rows[0]!;
}

/** Records recipients the registries do not know as failed mailbox deliveries (so the sender sees them). */
async function recordUnknown(q: Queryable, noticeId: number, owners: readonly string[]): Promise<number> {
  if (!owners.length) return 0;
  const r = await q.query(
    `insert into messaging.delivery (notice_id, channel, recipient, status, attempts, last_error)
     select $1, 'mailbox', o.r, 'failed', 0, o.e from unnest($2::text[], $3::text[]) as o(r, e)
     on conflict do nothing`,
    [noticeId, owners, owners.map(unknownReason)],
  );
  return r.rowCount ?? 0;
}

/** Adds to a notice's counters; a finished fan-out with nothing queued marks the notice done. */
async function addCounters(q: Queryable, id: number, d: { mailbox: number; sms: number; email: number; failed: number; chunk?: boolean; fanoutDone?: boolean }): Promise<void> {
  const ext = d.sms + d.email;
  await q.query(
    `update messaging.notice set total = total + $2, delivered = delivered + $3, queued = queued + $4, failed = failed + $5,
            chunks_done = chunks_done + $6,
            fanout_done_at = case when $7 or (chunks_total is not null and chunks_done + $6 >= chunks_total) then coalesce(fanout_done_at, now()) else fanout_done_at end
      where id = $1`,
    [id, d.mailbox + ext + d.failed, d.mailbox, ext, d.failed, d.chunk ? 1 : 0, d.fanoutDone ?? false],
  );
  await finishIfDone(q, id);
}

async function finishIfDone(q: Queryable, id: number): Promise<void> {
  await q.query(
    `update messaging.notice set status = 'done', finished_at = now() where id = $1 and status <> 'done' and fanout_done_at is not null and queued = 0`,
    [id],
  );
}

async function enqueueDeliveries(q: Queryable, noticeId: number, counts: { sms: number; email: number }, tag: string, runAt?: Date): Promise<void> {
  for (const ch of EXTERNAL_CHANNELS) {
    if (counts[ch] > 0) await enqueue(q, 'messaging.deliver', { noticeId, channel: ch }, { uniqueKey: `messaging.deliver:${noticeId}:${ch}:${tag}`, runAt });
  }
}

/** Delivers to a few known-size recipients now, in the caller's transaction. */
async function deliverInline(q: Queryable, rt: Runtime, noticeId: number, owners: readonly string[]): Promise<void> {
  const known = await knownOwners(q, owners);
  const good = owners.filter((o) => known.has(o));
  const bad = owners.filter((o) => !known.has(o));
  const r = good.length ? await fanOut(q, noticeId, { sql: 'select unnest($3::text[]) as recipient', params: [good] }, enabledChannels(rt)) : { mailbox: 0, sms: 0, email: 0 };
  const failed = await recordUnknown(q, noticeId, bad);
  await addCounters(q, noticeId, { ...r, failed, fanoutDone: true });
  await enqueueDeliveries(q, noticeId, r, 'inline');
}

function auditActorOfSender(s: Sender): AuditActor {
  return { kind: s.kind, id: s.id, department: s.department };
}

function describeAudience(a: AudienceSpec): Record<string, unknown> {
  switch (a.kind) {
    case 'person':
      return { kind: 'person', recipientKind: a.recipient.slice(0, 1) };
    case 'recipients':
      return { kind: 'recipients', count: a.recipients.length };
    case 'list':
      return { kind: 'list', listId: a.listId, count: a.recipients };
    case 'segment':
      return { kind: 'segment', filter: a.filter, asOf: a.asOf };
  }
}

export interface SentNotice {
  id: number;
  status: 'queued' | 'sending' | 'done';
  recipients: number;
  /** the notice's JSON resource */
  url: string;
  /** its page in the staff console */
  page: string;
}

const sentOf = (id: number, status: SentNotice['status'], recipients: number): SentNotice => ({ id, status, recipients, url: `/api/v1/messaging/notices/${id}`, page: `/console/notices/${id}` });

export interface SubmitInput {
  template: string;
  version?: number;
  vars?: Record<string, string>;
  audience: AudienceRequest;
}

/**
 * A department's send through the API or the console: template of the department, the audience,
 * the rate limits, the audit entry; a person is delivered at once, a list or segment by jobs.
 * Run in a transaction.
 */
export async function submitNotice(q: Queryable, sender: Sender, input: SubmitInput, origin: { requestId?: string; ip?: string } = {}, opts: { synthetic?: boolean } = {}): Promise<SentNotice> {
  const rt = getRuntime();
  const template = await getTemplate(q, input.template, input.version);
  if (!template) throw new NoticeNotFound(`no template ${input.template}${input.version ? ` version ${input.version}` : ''}`);
  if (template.department !== sender.department) throw new NoticeForbidden(`the template ${template.key} belongs to another department`);
  const vars = asInput(() => checkVars(template.variables, input.vars));
  const content: NoticeContent = { template: { key: template.key, version: template.version }, subject: template.subject, body: template.body, vars };
  const a = input.audience;
  let audience: AudienceSpec;
  let recipients: number;
  let inline: string[] | null = null;
  switch (a?.kind) {
    case 'person': {
      const owner = personOwner(a);
      if (!(await knownOwners(q, [owner])).size) throw new NoticeNotFound(`${unknownReason(owner)}: ${owner.slice(2)}`);
      audience = { kind: 'person', recipient: owner };
      recipients = 1;
      inline = [owner];
      break;
    }
    case 'list': {
      if ((a.listId === undefined) === (a.recipients === undefined)) throw new NoticeInputError('audience: a list is either recipients (up to 10,000) or the listId of an uploaded list');
      if (a.listId !== undefined) {
        recipients = (await ownList(q, sender.department, a.listId)).recipients;
        audience = { kind: 'list', listId: a.listId, recipients };
      } else {
        const owners = listOwners(a.recipients!);
        if (!owners.length) throw new NoticeInputError('audience.recipients: the list is empty');
        const listId = await createList(q, sender.department, sender.id, owners);
        recipients = owners.length;
        audience = { kind: 'list', listId, recipients };
      }
      break;
    }
    case 'segment': {
      const filter = segmentOf(rt.profile, a);
      const asOf = cityToday(rt.profile);
      recipients = await countSegment(q, filter, asOf);
      audience = { kind: 'segment', filter, asOf };
      break;
    }
    default:
      throw new NoticeInputError('audience.kind: expected person, list or segment');
  }
  // one sender department at a time: two sends cannot both slip under the limit
  await q.query('select pg_advisory_xact_lock(hashtext($1))', [`messaging.rate:${sender.department}`]);
  await checkRateLimits(q, sender.department, recipients, rt.config);
  const id = await insertNotice(q, sender, content, audience, recipients, inline ? 'sending' : 'queued', opts.synthetic ?? false);
  if (inline) await deliverInline(q, rt, id, inline);
  else await enqueue(q, 'messaging.plan', { noticeId: id }, { uniqueKey: `messaging.plan:${id}` });
  await appendAudit(q, {
    actor: auditActorOfSender(sender),
    action: 'messaging.notice.send',
    resource: { type: 'notice', id: String(id) },
    outcome: 'ok',
    requestId: origin.requestId,
    ip: origin.ip,
    details: { template: `${template.key}@${template.version}`, audience: describeAudience(audience), recipients },
  });
  const { rows } = await q.query<{ status: SentNotice['status'] }>('select status from messaging.notice where id = $1', [id]);
  return sentOf(id, rows[0]!.status, recipients);
}

function asInput<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof TemplateError) throw new NoticeInputError(err.message);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// sendNotice: the function other modules call (the workflow engine's reminders and escalations)

export interface SendNoticeInput {
  /** the sending department (a code of the city profile), and who in it: a staff account or a system */
  from: { department: string; accountId?: string; system?: string; name?: string };
  /** one recipient or up to 1,000 */
  to: RecipientRef | readonly RecipientRef[];
  /** a template key (its latest version) or { key, version } ... */
  template?: string | { key: string; version?: number };
  /** ... or the texts themselves (one language, or { zh, en }); placeholders as in templates */
  subject?: string | Texts;
  body?: string | Texts;
  /** values of the template's variables (or of any {{placeholders}} an ad-hoc text uses) */
  vars?: Record<string, string>;
  /** demo data */
  synthetic?: boolean;
}

/**
 * Sends a notice inside the caller's transaction: the mailbox deliveries exist when it returns,
 * SMS and email go out by job after commit. Recipients the registries do not know are recorded as
 * failed deliveries. Audited. Not rate-limited (the limits are for people and systems sending
 * through the API); throws NoticeInputError / NoticeNotFound for what the caller got wrong.
 */
export async function sendNotice(q: Queryable, input: SendNoticeInput): Promise<SentNotice> {
  const rt = getRuntime();
  const department = input.from?.department;
  if (!rt.profile.departments.some((d) => d.code === department)) throw new NoticeInputError(`from.department: ${JSON.stringify(department)} is not a department of the city profile`);
  const sender: Sender = input.from.accountId
    ? { department, kind: 'staff', id: input.from.accountId, name: input.from.name ?? null }
    : { department, kind: 'system', id: input.from.system ?? 'platform', name: input.from.name ?? null };
  const refs = Array.isArray(input.to) ? (input.to as readonly RecipientRef[]) : [input.to as RecipientRef];
  if (!refs.length) throw new NoticeInputError('to: no recipient');
  if (refs.length > MAX_SEND_NOTICE_RECIPIENTS) throw new NoticeInputError(`to: at most ${MAX_SEND_NOTICE_RECIPIENTS} recipients; send larger audiences as a list or segment`);
  const owners = [
    ...new Set(
      refs.map((r, i) => {
        try {
          return ownerKey(r);
        } catch (err) {
          if (err instanceof RecipientError) throw new NoticeInputError(`to[${i}].${err.message}`);
          throw err;
        }
      }),
    ),
  ];
  let content: NoticeContent;
  if (input.template !== undefined) {
    if (input.subject !== undefined || input.body !== undefined) throw new NoticeInputError('give a template or a subject and body, not both');
    const ref = typeof input.template === 'string' ? { key: input.template } : input.template;
    const t: Template | null = await getTemplate(q, ref.key, ref.version);
    if (!t) throw new NoticeNotFound(`no template ${ref.key}${ref.version ? ` version ${ref.version}` : ''}`);
    content = { template: { key: t.key, version: t.version }, subject: t.subject, body: t.body, vars: asInput(() => checkVars(t.variables, input.vars)) };
  } else {
    if (input.subject === undefined || input.body === undefined) throw new NoticeInputError('give a template, or a subject and a body');
    const texts = (v: string | Texts): Texts => (typeof v === 'string' ? { zh: v } : v);
    const variables = Object.keys(input.vars ?? {});
    const checked = asInput(() => checkTemplateInput({ key: 'ad-hoc', name: { zh: 'ad-hoc' }, subject: texts(input.subject!), body: texts(input.body!), variables }));
    content = { template: null, subject: checked.subject, body: checked.body, vars: asInput(() => checkVars(checked.variables, input.vars)) };
  }
  const audience: AudienceSpec = owners.length === 1 ? { kind: 'person', recipient: owners[0]! } : { kind: 'recipients', recipients: owners };
  const id = await insertNotice(q, sender, content, audience, owners.length, 'sending', input.synthetic ?? false);
  await deliverInline(q, rt, id, owners);
  await appendAudit(q, {
    actor: auditActorOfSender(sender),
    action: 'messaging.notice.send',
    resource: { type: 'notice', id: String(id) },
    outcome: 'ok',
    details: { template: content.template ? `${content.template.key}@${content.template.version}` : null, audience: describeAudience(audience), recipients: owners.length },
  });
  const { rows } = await q.query<{ status: SentNotice['status'] }>('select status from messaging.notice where id = $1', [id]);
  return sentOf(id, rows[0]!.status, owners.length);
}

// ---------------------------------------------------------------------------------------------
// Jobs: plan, chunk, deliver

/** test seam: called inside a chunk's transaction just before it commits (a throw there is a crash mid-chunk) */
export const chunkHooks: { beforeCommit?: (noticeId: number, seq: number) => void | Promise<void> } = {};

export async function planFanOut(rt: Runtime, noticeId: number): Promise<void> {
  await rt.db.tx(async (c) => {
    const { rows } = await c.query<NoticeRow>('select * from messaging.notice where id = $1 for update', [noticeId]);
    const n = rows[0];
    if (!n || n.chunks_total !== null) return; // gone, or planned already (a re-run)
    const a = n.audience;
    const ranges: [string | null, string | null][] = [];
    if (a.kind === 'segment') {
      const bounds = await segmentBoundaries(c, a.filter, a.asOf, rt.config.chunkSize);
      // no resident at all: nothing to plan
      if (n.recipients > 0 || bounds.length) {
        const edges = [null, ...bounds, null];
        for (let i = 0; i + 1 < edges.length; i++) ranges.push([edges[i]!, edges[i + 1]!]);
      }
    } else if (a.kind === 'list') {
      const size = Math.min(rt.config.chunkSize, LIST_CHUNK);
      for (let lo = 0; lo < a.recipients; lo += size) ranges.push([String(lo), String(Math.min(lo + size, a.recipients))]);
    } else {
      throw new Error(`notice ${noticeId}: a ${a.kind} audience is delivered inline, not planned`);
    }
    if (ranges.length) {
      await c.query(
        `insert into messaging.chunk (notice_id, seq, lo, hi) select $1, s.n::int - 1, s.lo, s.hi from unnest($2::text[], $3::text[]) with ordinality as s(lo, hi, n)`,
        [noticeId, ranges.map((r) => r[0]), ranges.map((r) => r[1])],
      );
      // the first few chunks; each one that commits starts the one after its stride
      for (let seq = 0; seq < Math.min(ranges.length, rt.config.parallelChunks); seq++) await enqueue(c, 'messaging.chunk', { noticeId, seq }, { uniqueKey: `messaging.chunk:${noticeId}:${seq}` });
    }
    await c.query(`update messaging.notice set chunks_total = $2, status = 'sending', fanout_done_at = case when $2 = 0 then now() end where id = $1`, [noticeId, ranges.length]);
    if (!ranges.length) await finishIfDone(c, noticeId);
  });
}

export async function runChunk(rt: Runtime, noticeId: number, seq: number): Promise<void> {
  await rt.db.tx(async (c) => {
    // the chunk row's lock: a second run of the same chunk (an expired lease) waits, then sees it done
    const { rows } = await c.query<{ lo: string | null; hi: string | null; done_at: Date | null }>('select lo, hi, done_at from messaging.chunk where notice_id = $1 and seq = $2 for update', [noticeId, seq]);
    const chunk = rows[0];
    if (!chunk || chunk.done_at) return;
    const { rows: ns } = await c.query<{ audience: AudienceSpec; chunks_total: number }>('select audience, chunks_total from messaging.notice where id = $1', [noticeId]);
    const a = ns[0]?.audience;
    if (!a) return;
    const next = seq + rt.config.parallelChunks;
    if (next < ns[0]!.chunks_total) await enqueue(c, 'messaging.chunk', { noticeId, seq: next }, { uniqueKey: `messaging.chunk:${noticeId}:${next}` });
    const channels = enabledChannels(rt);
    let counts = { mailbox: 0, sms: 0, email: 0 };
    let failed = 0;
    if (a.kind === 'segment') {
      const s = segmentSql(a.filter, { asOf: a.asOf, firstParam: 3, lo: chunk.lo, hi: chunk.hi });
      // in key order: both indexes of the delivery table then grow at one edge instead of taking
      // random inserts all over (about 2.5 times faster for a million rows)
      counts = await fanOut(c, noticeId, { sql: `select 'p:' || id_number as recipient from (${s.sql}) seg order by id_number`, params: s.params }, channels, 'fail');
    } else if (a.kind === 'list') {
      const { rows: members } = await c.query<{ recipient: string }>('select recipient from messaging.list_member where list_id = $1 and seq >= $2 and seq < $3 order by seq', [a.listId, Number(chunk.lo), Number(chunk.hi)]);
      const owners = [...new Set(members.map((m) => m.recipient))];
      const known = await knownOwners(c, owners);
      const good = owners.filter((o) => known.has(o));
      good.sort();
      if (good.length) counts = await fanOut(c, noticeId, { sql: 'select unnest($3::text[]) as recipient', params: [good] }, channels);
      failed = await recordUnknown(c, noticeId, owners.filter((o) => !known.has(o)));
    }
    await c.query('update messaging.chunk set done_at = now(), inserted = $3 where notice_id = $1 and seq = $2', [noticeId, seq, counts.mailbox + counts.sms + counts.email + failed]);
    await addCounters(c, noticeId, { ...counts, failed, chunk: true });
    await enqueueDeliveries(c, noticeId, counts, `c${seq}`);
    await chunkHooks.beforeCommit?.(noticeId, seq);
  });
}

const BATCH = 200;

/** The texts of a notice for one recipient, in their language (SMS and email: rendered when sent). */
export function renderFor(n: Pick<NoticeRecord, 'subject' | 'body' | 'vars' | 'department' | 'createdAt'>, values: Record<string, string>, lang: Lang): { subject: string; text: string; html: string } {
  const all = { ...values, ...n.vars };
  const subject = renderText(pick(n.subject, lang), all).replace(/[\r\n]+/g, ' ');
  const body = pick(n.body, lang);
  return { subject, text: renderText(body, all), html: renderHtml(body, all).__html };
}

/** The values of the recipient attributes for a notice and recipient. */
export function attributeValues(profile: CityProfile, n: Pick<NoticeRecord, 'department' | 'createdAt'>, a: { name: string; street: string; community: string; county: string } | undefined, lang: Lang): Record<string, string> {
  const d = profile.departments.find((x) => x.code === n.department);
  return {
    name: a?.name ?? (lang === 'en' ? 'resident' : '市民'),
    street: a?.street ?? '',
    community: a?.community ?? '',
    county: a?.county ?? '',
    department: d ? (lang === 'en' ? d.nameEn : d.name) : n.department,
    date: new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', { dateStyle: 'long', timeZone: profile.city.timezone }).format(new Date(n.createdAt)),
  };
}

/** Sends what is due of one notice's channel, in batches, until nothing due is left; schedules the next retry. */
export async function runDeliveries(rt: Runtime, noticeId: number, channel: ExternalChannelId, signal?: AbortSignal): Promise<void> {
  const adapter = rt.channels.get(channel);
  const notice = await getNotice(rt.db, noticeId);
  if (!notice) return;
  for (;;) {
    if (signal?.aborted) break;
    const done = await rt.db.tx(async (c) => {
      const { rows } = await c.query<{ recipient: string; attempts: number }>(
        `select recipient, attempts from messaging.delivery
          where notice_id = $1 and channel = $2 and status = 'queued' and next_attempt_at <= now()
          order by next_attempt_at limit $3 for update skip locked`,
        [noticeId, channel, BATCH],
      );
      if (!rows.length) return true;
      const owners = rows.map((r) => r.recipient);
      let results: { recipient: string; ok: boolean; error?: string }[];
      if (!adapter) {
        results = owners.map((recipient) => ({ recipient, ok: false, error: `the ${channel} channel is not configured (GUSU_${channel === 'sms' ? 'SMS' : 'EMAIL'}_ADAPTER=none)` }));
      } else {
        const { rows: contacts } = await c.query<{ owner: string; phone: string | null; email: string | null }>('select owner, phone, email from messaging.contact where owner = any($1::text[])', [owners]);
        const address = new Map(contacts.map((x) => [x.owner, channel === 'sms' ? x.phone : x.email]));
        const attrs = await recipientAttributes(c, rt.profile, owners, 'zh-CN');
        const batch: OutgoingMessage[] = [];
        results = [];
        for (const o of owners) {
          const to = address.get(o);
          if (!to) {
            results.push({ recipient: o, ok: false, error: `no ${channel === 'sms' ? 'mobile number' : 'email address'} given` });
            continue;
          }
          const r = renderFor(notice, attributeValues(rt.profile, notice, attrs.get(o), 'zh-CN'), 'zh-CN');
          batch.push({
            noticeId,
            recipient: o,
            address: to,
            subject: r.subject,
            text: channel === 'sms' ? `${rt.config.sms.signature}${r.subject}：${r.text}`.replace(/\s+/g, ' ').slice(0, 500) : r.text,
            ...(channel === 'email' ? { html: r.html } : {}),
          });
        }
        if (batch.length) {
          try {
            results.push(...(await adapter.deliver(batch, signal)));
          } catch (err) {
            results.push(...batch.map((m) => ({ recipient: m.recipient, ok: false, error: (err as Error).message.slice(0, 500) })));
          }
        }
      }
      const { rows: after } = await c.query<{ status: string }>(
        `update messaging.delivery d
            set attempts = d.attempts + 1,
                status = case when r.ok then 'delivered' when d.attempts + 1 >= $3 then 'failed' else 'queued' end,
                delivered_at = case when r.ok then now() end,
                last_error = case when r.ok then null else r.err end,
                next_attempt_at = case when r.ok or d.attempts + 1 >= $3 then null
                                       else now() + make_interval(secs => least($4::double precision * power(2, d.attempts), 3600000) / 1000) end
           from unnest($5::text[], $6::bool[], $7::text[]) as r(recipient, ok, err)
          where d.notice_id = $1 and d.channel = $2 and d.recipient = r.recipient
          returning d.status`,
        [noticeId, channel, rt.config.maxAttempts, rt.config.retryBaseMs, results.map((r) => r.recipient), results.map((r) => r.ok), results.map((r) => r.error ?? null)],
      );
      const delivered = after.filter((r) => r.status === 'delivered').length;
      const failed = after.filter((r) => r.status === 'failed').length;
      await c.query('update messaging.notice set delivered = delivered + $2, failed = failed + $3, queued = queued - $2 - $3 where id = $1', [noticeId, delivered, failed]);
      await finishIfDone(c, noticeId);
      return false;
    });
    if (done) break;
  }
  // what is left waits for its next attempt: one job at the earliest due time
  const { rows } = await rt.db.query<{ next: Date | null }>(`select min(next_attempt_at) as next from messaging.delivery where notice_id = $1 and channel = $2 and status = 'queued'`, [noticeId, channel]);
  const next = rows[0]?.next;
  if (next) await enqueue(rt.db, 'messaging.deliver', { noticeId, channel }, { runAt: new Date(next), uniqueKey: `messaging.deliver:${noticeId}:${channel}:${new Date(next).getTime()}` });
}

/** The job handlers of the module. */
export function messagingJobs(get: () => Runtime): Record<string, (job: Job) => Promise<void>> {
  const payload = (job: Job) => job.payload as { noticeId: number; seq?: number; channel?: ExternalChannelId };
  return {
    'messaging.plan': async (job) => planFanOut(get(), payload(job).noticeId),
    'messaging.chunk': async (job) => runChunk(get(), payload(job).noticeId, payload(job).seq!),
    'messaging.deliver': async (job) => {
      const p = payload(job);
      if (p.channel !== 'sms' && p.channel !== 'email') throw new Error(`messaging.deliver: unknown channel ${String(p.channel)}`);
      await runDeliveries(get(), p.noticeId, p.channel);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What the sender sees

export interface DeliveryRecord {
  channel: 'mailbox' | ExternalChannelId;
  recipient: string;
  status: 'queued' | 'delivered' | 'read' | 'failed';
  attempts: number;
  createdAt: string;
  deliveredAt: string | null;
  readAt: string | null;
  nextAttemptAt: string | null;
  lastError: string | null;
}

export const DELIVERY_STATUSES = ['queued', 'delivered', 'read', 'failed'] as const;
export const CHANNEL_IDS = ['mailbox', 'sms', 'email'] as const;

/** One page of a notice's deliveries in (channel, recipient) order; `after` is the last row's cursor. */
export async function listDeliveries(
  q: Queryable,
  noticeId: number,
  o: { status?: string; channel?: string; after?: string; limit?: number } = {},
): Promise<{ items: DeliveryRecord[]; next: string | null }> {
  const limit = Math.min(o.limit ?? 50, 200);
  let afterChannel: string | null = null;
  let afterRecipient: string | null = null;
  if (o.after) {
    const i = o.after.indexOf('|');
    if (i > 0) [afterChannel, afterRecipient] = [o.after.slice(0, i), o.after.slice(i + 1)];
  }
  const { rows } = await q.query<{
    channel: DeliveryRecord['channel'];
    recipient: string;
    status: DeliveryRecord['status'];
    attempts: number;
    created_at: Date;
    delivered_at: Date | null;
    read_at: Date | null;
    next_attempt_at: Date | null;
    last_error: string | null;
  }>(
    `select channel, recipient, status, attempts, created_at, delivered_at, read_at, next_attempt_at, last_error from messaging.delivery
      where notice_id = $1 and ($2::text is null or status = $2) and ($3::text is null or channel = $3)
        and ($4::text is null or (channel, recipient) > ($4, $5::text))
      order by channel, recipient limit $6`,
    [noticeId, o.status ?? null, o.channel ?? null, afterChannel, afterRecipient, limit + 1],
  );
  const items = rows.slice(0, limit).map((r) => ({
    channel: r.channel,
    recipient: r.recipient,
    status: r.status,
    attempts: r.attempts,
    createdAt: iso(r.created_at)!,
    deliveredAt: iso(r.delivered_at),
    readAt: iso(r.read_at),
    nextAttemptAt: iso(r.next_attempt_at),
    lastError: r.last_error,
  }));
  const last = items.at(-1);
  return { items, next: rows.length > limit && last ? `${last.channel}|${last.recipient}` : null };
}

/** Status counts per channel, cheaply: the external channels are counted, the mailbox is the rest of the counters. */
export async function channelCounts(q: Queryable, n: NoticeRecord): Promise<Record<'mailbox' | ExternalChannelId, Record<'total' | (typeof DELIVERY_STATUSES)[number], number>>> {
  const zero = () => ({ total: 0, queued: 0, delivered: 0, read: 0, failed: 0 });
  const out = { mailbox: zero(), sms: zero(), email: zero() };
  const { rows } = await q.query<{ channel: ExternalChannelId; status: (typeof DELIVERY_STATUSES)[number]; n: number }>(
    `select channel, status, count(*)::int as n from messaging.delivery where notice_id = $1 and channel in ('sms', 'email') group by 1, 2`,
    [n.id],
  );
  for (const r of rows) {
    out[r.channel][r.status] += r.n;
    out[r.channel].total += r.n;
  }
  const ext = (k: 'total' | 'queued' | 'delivered' | 'failed') => out.sms[k] + out.email[k];
  out.mailbox = { total: n.total - ext('total'), queued: n.queued - ext('queued'), delivered: n.delivered - ext('delivered'), read: n.read, failed: n.failed - ext('failed') };
  return out;
}
