// The mailbox read path: one owner's messages newest first (the partial index delivery_mailbox),
// a message rendered for its reader at read time (personalised from the registries, every value
// escaped), opening it marks it read, and the contact addresses a person gives for SMS and email.
import type { CityProfile } from '../../config/profile.ts';
import type { Queryable } from '../../db/index.ts';
import type { Html } from '../../http/html.ts';
import type { Lang } from '../../http/i18n.ts';
import { attributeValues, renderFor } from './notices.ts';
import { recipientAttributes } from './recipients.ts';
import { pick, renderHtml, renderText, type Texts } from './templates.ts';

export interface MailboxItem {
  noticeId: number;
  department: string;
  subject: string;
  status: 'delivered' | 'read';
  deliveredAt: string;
  readAt: string | null;
  synthetic: boolean;
}

interface Row {
  notice_id: number;
  status: 'delivered' | 'read';
  delivered_at: Date;
  read_at: Date | null;
  department: string;
  subject_zh: string;
  subject_en: string | null;
  body_zh: string;
  body_en: string | null;
  vars: Record<string, string>;
  created_at: Date;
  synthetic: boolean;
  sender_name: string | null;
}

const SELECT = `select d.notice_id, d.status, d.delivered_at, d.read_at, n.department, n.subject_zh, n.subject_en, n.body_zh, n.body_en, n.vars, n.created_at, n.synthetic, n.sender_name
  from messaging.delivery d join messaging.notice n on n.id = d.notice_id`;

async function valuesFor(q: Queryable, profile: CityProfile, owner: string, lang: Lang) {
  return (await recipientAttributes(q, profile, [owner], lang)).get(owner);
}

/** One page of a mailbox, newest first, with the number unread. */
export async function listMailbox(
  q: Queryable,
  profile: CityProfile,
  owner: string,
  lang: Lang,
  page: { before?: number; limit?: number } = {},
): Promise<{ items: MailboxItem[]; unread: number; next: number | null }> {
  const limit = Math.min(page.limit ?? 20, 100);
  const [{ rows }, { rows: counts }] = await Promise.all([
    q.query<Row>(
      `${SELECT} where d.recipient = $1 and d.channel = 'mailbox' and d.status in ('delivered', 'read') and ($2::bigint is null or d.notice_id < $2)
        order by d.notice_id desc limit $3`,
      [owner, page.before ?? null, limit + 1],
    ),
    q.query<{ n: number }>(`select count(*)::int as n from messaging.delivery where recipient = $1 and channel = 'mailbox' and status = 'delivered'`, [owner]),
  ]);
  const attrs = rows.length ? await valuesFor(q, profile, owner, lang) : undefined;
  const items = rows.slice(0, limit).map((r) => {
    const n = { department: r.department, createdAt: new Date(r.created_at).toISOString() };
    const values = { ...attributeValues(profile, n, attrs, lang), ...r.vars };
    return {
      noticeId: r.notice_id,
      department: r.department,
      subject: renderText(pick({ zh: r.subject_zh, en: r.subject_en }, lang), values).replace(/[\r\n]+/g, ' '),
      status: r.status,
      deliveredAt: new Date(r.delivered_at).toISOString(),
      readAt: r.read_at ? new Date(r.read_at).toISOString() : null,
      synthetic: r.synthetic,
    };
  });
  return { items, unread: counts[0]!.n, next: rows.length > limit ? items.at(-1)!.noticeId : null };
}

export interface OpenedMessage extends MailboxItem {
  /** the body rendered for this reader, escaped */
  html: Html;
  text: string;
  senderName: string | null;
}

/** A message of this owner's mailbox, rendered for them, and marked read (the first time); null if it is not theirs. */
export async function openMessage(q: Queryable, profile: CityProfile, owner: string, noticeId: number, lang: Lang, opts: { markRead?: boolean } = {}): Promise<OpenedMessage | null> {
  if (!Number.isSafeInteger(noticeId) || noticeId < 1) return null;
  const { rows } = await q.query<Row>(`${SELECT} where d.notice_id = $1 and d.channel = 'mailbox' and d.recipient = $2 and d.status in ('delivered', 'read')`, [noticeId, owner]);
  const r = rows[0];
  if (!r) return null;
  let readAt = r.read_at ? new Date(r.read_at).toISOString() : null;
  if (r.status === 'delivered' && opts.markRead !== false) {
    const { rows: marked } = await q.query<{ read_at: Date }>(
      `with m as (
         update messaging.delivery set status = 'read', read_at = now()
          where notice_id = $1 and channel = 'mailbox' and recipient = $2 and status = 'delivered' returning read_at
       ), c as (
         update messaging.notice set read = read + (select count(*) from m) where id = $1 and exists (select 1 from m)
       )
       select read_at from m`,
      [noticeId, owner],
    );
    if (marked[0]) readAt = new Date(marked[0].read_at).toISOString();
  }
  const n = { department: r.department, createdAt: new Date(r.created_at).toISOString(), subject: { zh: r.subject_zh, en: r.subject_en } as Texts, body: { zh: r.body_zh, en: r.body_en } as Texts, vars: r.vars };
  const values = attributeValues(profile, n, await valuesFor(q, profile, owner, lang), lang);
  const rendered = renderFor(n, values, lang);
  return {
    noticeId: r.notice_id,
    department: r.department,
    subject: rendered.subject,
    status: readAt ? 'read' : r.status,
    deliveredAt: new Date(r.delivered_at).toISOString(),
    readAt,
    synthetic: r.synthetic,
    html: renderHtml(pick(n.body, lang), { ...values, ...n.vars }),
    text: rendered.text,
    senderName: r.sender_name,
  };
}

export interface Contact {
  phone: string | null;
  email: string | null;
}

export const PHONE = /^1[3-9][0-9]{9}$/;
export const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$/;

export async function getContact(q: Queryable, owner: string): Promise<Contact> {
  const { rows } = await q.query<Contact>('select phone, email from messaging.contact where owner = $1', [owner]);
  return rows[0] ?? { phone: null, email: null };
}

/** Saves the owner's addresses (null clears one); the caller has checked them against PHONE and EMAIL. */
export async function setContact(q: Queryable, owner: string, c: Contact): Promise<Contact> {
  if (c.phone === null && c.email === null) {
    await q.query('delete from messaging.contact where owner = $1', [owner]);
    return c;
  }
  await q.query(
    `insert into messaging.contact (owner, phone, email) values ($1, $2, $3)
     on conflict (owner) do update set phone = excluded.phone, email = excluded.email, updated_at = now()`,
    [owner, c.phone, c.email],
  );
  return c;
}
