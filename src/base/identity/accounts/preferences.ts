// Personalisation in one place: each account's language, favourite services and notification
// channels. Every portal reads them through getPreferences (and the language also travels in the
// `lang` cookie that src/http/i18n.ts already reads, set at sign-in and whenever it changes).
import type { Queryable } from '../../../db/index.ts';
import type { Lang } from '../../../http/i18n.ts';
import { isAccountId } from './index.ts';

export const CHANNELS = ['mailbox', 'sms', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface Preferences {
  /** null: the site default (or whatever the browser chose last) */
  language: Lang | null;
  /** service ids from the portal's catalogue, in the order the user put them */
  favouriteServices: string[];
  notificationChannels: Channel[];
}

export const DEFAULT_PREFERENCES: Preferences = Object.freeze({ language: null, favouriteServices: [], notificationChannels: ['mailbox'] }) as Preferences;

export const SERVICE_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MAX_FAVOURITES = 50;

export async function getPreferences(q: Queryable, accountId: string): Promise<Preferences> {
  if (!isAccountId(accountId)) return { ...DEFAULT_PREFERENCES, favouriteServices: [], notificationChannels: ['mailbox'] };
  const { rows } = await q.query<{ language: Lang | null; favourite_services: string[]; channels: Channel[] }>(
    'select language, favourite_services, channels from identity.preference where account_id = $1',
    [accountId],
  );
  const r = rows[0];
  return r ? { language: r.language, favouriteServices: r.favourite_services, notificationChannels: r.channels } : { language: null, favouriteServices: [], notificationChannels: ['mailbox'] };
}

/** Replaces the preferences; the caller has validated them (see the API schema). */
export async function setPreferences(q: Queryable, accountId: string, p: Preferences): Promise<Preferences> {
  const favourites = [...new Set(p.favouriteServices)].slice(0, MAX_FAVOURITES);
  const channels = CHANNELS.filter((c) => p.notificationChannels.includes(c));
  await q.query(
    `insert into identity.preference (account_id, language, favourite_services, channels) values ($1, $2, $3, $4)
     on conflict (account_id) do update set language = excluded.language, favourite_services = excluded.favourite_services,
       channels = excluded.channels, updated_at = now()`,
    [accountId, p.language, favourites, channels],
  );
  return { language: p.language, favouriteServices: favourites, notificationChannels: channels };
}

/**
 * For the messaging module's fan-out in the database: SQL (no parameters) selecting
 * (kind, key, channel) for every active account whose preferences ask for a channel besides the
 * mailbox. kind is 'citizen' (key: ID number), 'enterprise' (key: USCC) or 'staff' (key: account
 * id). Embed it as a subquery; it reads identity's tables so that no other module has to.
 */
export const EXTERNAL_CHANNEL_SUBSCRIBERS_SQL = `select distinct a.kind, case a.kind when 'citizen' then a.id_number::text when 'enterprise' then a.uscc::text else a.id::text end as key, c.channel
  from identity.account a join identity.preference p on p.account_id = a.id cross join lateral unnest(p.channels) as c(channel)
 where a.status = 'active' and c.channel <> 'mailbox'`;
