// 消息 — base/messaging's public face: every resident, enterprise and member of staff has a mailbox;
// departments send notices to one person, a list or a registry segment from versioned templates,
// and follow each notice's delivery (queued, delivered, read, failed). Channels: the in-platform
// mailbox, SMS and email through adapters. See docs/decisions/0009-messaging.md.
//
// Other modules send with sendNotice(q, { from, to, template | subject+body, vars }) inside their
// own transaction (the workflow engine's reminders and escalations).
import { fileURLToPath } from 'node:url';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { departmentApi, mailboxApi } from './api.ts';
import { channelsFromConfig } from './channels.ts';
import { seedDemoNotices } from './demo.ts';
import { getRuntime, messagingJobs, setRuntime } from './notices.ts';
import { consolePages, portalPages } from './pages.ts';
import { messagingPolicy } from './policy.ts';
import { addAccountLink, addConsoleNav } from '../../http/layout.ts';
import { MM } from './messages.ts';

export { sendNotice, submitNotice, getNotice, listNotices, listDeliveries, countAudience, NoticeInputError, NoticeNotFound, NoticeForbidden, RateLimited, type SendNoticeInput, type SentNotice, type NoticeRecord, type AudienceRequest } from './notices.ts';
export { listMailbox, openMessage, getContact, setContact, type MailboxItem, type OpenedMessage, type Contact } from './mailbox.ts';
export { getTemplate, listTemplates, saveTemplate, renderHtml, renderText, checkTemplateInput, TemplateError, RECIPIENT_ATTRIBUTES, type Template, type TemplateInput } from './templates.ts';
export { ownerKey, ownerOfActor, type RecipientRef } from './recipients.ts';
export { testOutbox, type ChannelAdapter, type OutgoingMessage, type DeliveryResult } from './channels.ts';

export const messagingModule: GusuModule = {
  name: 'messaging',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: messagingPolicy,
  // 实名制市民信箱: every resident's and enterprise's mailbox on the portal
  provides: ['mailbox'],
  publicRoutes(app, ctx) {
    mailboxApi(app, ctx);
    portalPages(app, ctx);
  },
  internalRoutes(app, ctx) {
    departmentApi(app, ctx);
    consolePages(app, ctx);
  },
  jobs: () => messagingJobs(getRuntime),
  async start(ctx: ModuleContext) {
    addAccountLink({ href: '/me/mailbox', label: MM.myMailbox, shell: 'portal' });
    addAccountLink({ href: '/console/mailbox', label: MM.myMailbox, shell: 'console' });
    addConsoleNav({ href: '/console/notices', label: MM.notices });
    setRuntime({ db: ctx.db, profile: ctx.profile, config: ctx.config.messaging, channels: channelsFromConfig(ctx.config.messaging), log: ctx.log });
    if (ctx.config.demo) await seedDemoNotices(ctx);
  },
};
