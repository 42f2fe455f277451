// Delivery channels behind one interface: deliver(batch) -> one result per recipient.
//
//   mailbox  the in-platform mailbox. Its delivery *is* the insert of the delivery row (done by the
//            fan-out in the database, a million rows without passing through Node), so it has no
//            adapter here: a mailbox delivery is delivered the moment it exists.
//   sms      GUSU_SMS_ADAPTER: none | test (records, never sends) | http (a JSON POST per message to
//            an SMS gateway: GUSU_SMS_HTTP_URL, GUSU_SMS_HTTP_TOKEN)
//   email    GUSU_EMAIL_ADAPTER: none | test | smtp (nodemailer over GUSU_SMTP_URL, from GUSU_EMAIL_FROM)
//
// The test doubles record what would have been sent (testOutbox) and refuse addresses that ask for
// it (an email address starting with "fail", a mobile number ending in 0000), so tests can drive
// retries and failures without a network.
import type { MessagingConfig } from '../../config/index.ts';

export type ExternalChannelId = 'sms' | 'email';
export const EXTERNAL_CHANNELS: readonly ExternalChannelId[] = ['sms', 'email'];

export interface OutgoingMessage {
  noticeId: number;
  /** mailbox owner key (p:…, e:…, s:…) */
  recipient: string;
  /** phone number or email address */
  address: string;
  subject: string;
  text: string;
  /** email only: the same content as escaped HTML */
  html?: string;
}

export interface DeliveryResult {
  recipient: string;
  ok: boolean;
  /** why it failed (kept on the delivery as last_error) */
  error?: string;
}

export interface ChannelAdapter {
  id: ExternalChannelId;
  /** how the adapter is configured, for the console (never a secret) */
  describe: string;
  deliver(batch: readonly OutgoingMessage[], signal?: AbortSignal): Promise<DeliveryResult[]>;
  close?(): Promise<void>;
}

/** What the test doubles recorded, oldest first (tests read and clear it). */
export const testOutbox: (OutgoingMessage & { channel: ExternalChannelId; at: string })[] = [];

function refusedByTestDouble(channel: ExternalChannelId, address: string): boolean {
  return channel === 'email' ? /^fail/i.test(address) : /0000$/.test(address);
}

export function testChannel(id: ExternalChannelId): ChannelAdapter {
  return {
    id,
    describe: 'test double (records, sends nothing)',
    async deliver(batch) {
      return batch.map((m) => {
        if (refusedByTestDouble(id, m.address)) return { recipient: m.recipient, ok: false, error: `test double: ${id === 'email' ? 'mailbox unavailable (550)' : 'number not reachable'}` };
        testOutbox.push({ ...m, channel: id, at: new Date().toISOString() });
        return { recipient: m.recipient, ok: true };
      });
    },
  };
}

/** Runs fn over items with at most `limit` in flight. */
async function eachLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/**
 * An SMS gateway reached over HTTPS: one POST per message with a JSON body
 * {"to", "text", "reference"} and Authorization: Bearer <token>; any 2xx is accepted. Carriers'
 * own APIs (Alibaba Cloud, Tencent Cloud SMS) sign requests in their own ways and take registered
 * template ids; a deployment puts its gateway in front of them (docs/configuration.md).
 */
export function httpSmsChannel(c: MessagingConfig['sms']): ChannelAdapter {
  const url = c.url!;
  return {
    id: 'sms',
    describe: `HTTP gateway ${new URL(url).origin}`,
    async deliver(batch, signal) {
      return eachLimited(batch, 8, async (m) => {
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(c.token ? { authorization: `Bearer ${c.token}` } : {}) },
            body: JSON.stringify({ to: m.address, text: m.text, reference: `${m.noticeId}:${m.recipient}` }),
            signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer().catch(() => undefined);
          return res.ok ? { recipient: m.recipient, ok: true } : { recipient: m.recipient, ok: false, error: `gateway answered HTTP ${res.status}` };
        } catch (err) {
          return { recipient: m.recipient, ok: false, error: errorText(err) };
        }
      });
    },
  };
}

/** Email over SMTP with nodemailer (pooled connections; TLS as the URL says: smtps:// or STARTTLS). */
export function smtpChannel(c: MessagingConfig['email']): ChannelAdapter {
  let transport: Promise<import('nodemailer').Transporter> | null = null;
  const get = () =>
    (transport ??= import('nodemailer').then((m) => {
      const url = new URL(c.smtpUrl!);
      if (!url.searchParams.has('pool')) url.searchParams.set('pool', 'true');
      return m.createTransport(url.toString());
    }));
  return {
    id: 'email',
    describe: `SMTP ${new URL(c.smtpUrl!).host}`,
    async deliver(batch) {
      const t = await get();
      return eachLimited(batch, 5, async (m) => {
        try {
          await t.sendMail({ from: c.from!, to: m.address, subject: m.subject, text: m.text, html: m.html, headers: { 'X-Gusu-Notice': String(m.noticeId) } });
          return { recipient: m.recipient, ok: true };
        } catch (err) {
          return { recipient: m.recipient, ok: false, error: errorText(err) };
        }
      });
    },
    async close() {
      if (transport) (await transport).close();
    },
  };
}

/** The adapters the configuration turns on; a channel set to none is not offered to anyone. */
export function channelsFromConfig(c: MessagingConfig): Map<ExternalChannelId, ChannelAdapter> {
  const out = new Map<ExternalChannelId, ChannelAdapter>();
  if (c.sms.adapter === 'test') out.set('sms', testChannel('sms'));
  if (c.sms.adapter === 'http') out.set('sms', httpSmsChannel(c.sms));
  if (c.email.adapter === 'test') out.set('email', testChannel('email'));
  if (c.email.adapter === 'smtp') out.set('email', smtpChannel(c.email));
  return out;
}
