// 数据交换平台 — base/exchange's public face: this process as an exchange node (the city hub or a
// division's node), its members and resources, signed publish/subscribe with durable per-key-ordered
// delivery, dead letters, store-and-forward federation and the tamper-evident message log
// (docs/exchange.md, docs/decisions/0010-exchange-envelope.md).
import { fileURLToPath } from 'node:url';
import type { Db } from '../../db/index.ts';
import type { GusuModule, ModuleContext } from '../../module.ts';
import { loadSelf, enrolWithUpstream } from './node.ts';
import { anchoredTrust, localTrust } from './trust.ts';
import { createRuntime, type ExchangeRuntime } from './runtime.ts';
import { exchangeActorResolver, exchangeApi, exchangePolicy } from './routes.ts';
import { purgeExpired, scheduleSweep, sweep, SWEEP_JOB } from './delivery.ts';
import { subscribeNode } from './registry.ts';
import { syncWithUpstream } from './federation.ts';
import { xroadRoutes } from './xroad.ts';
import { govstackRoutes } from './govstack.ts';
import { exchangeCommand } from './cli.ts';
import { seedDemoExchange } from './demo.ts';
import { BULK_JOB, bulkJobHandler, bulkRoutes, sweepBulk } from './bulk.ts';
import { exchangePagePolicy, exchangePages, EXCHANGE_NAV_LABEL } from './pages.ts';
import { addConsoleNav } from '../../http/layout.ts';

export { CanonicalError, canonicalJson, digestOf, sha256 } from './canonical.ts';
export * from './envelope.ts';
export * from './receipt.ts';
export * from './batch.ts';
export { leafHash, nodeHash, merkleTree, merkleRoot, inclusionProof, verifyInclusion } from './merkle.ts';
export {
  appendEntries,
  verifyLog,
  entryHash as logEntryHash,
  itemsRoot,
  expandItems,
  checkpointSigningInput,
  GENESIS_HASH as LOG_GENESIS_HASH,
  DEFAULT_CHECKPOINT_EVERY,
  type LogItem,
  type LogEntry,
  type LogEntryItem,
  type Checkpoint,
  type LogVerifyResult,
  type AppendOptions,
} from './log.ts';
export { appendLog, verifyLogDb, setCheckpointEvery } from './store.ts';
export { signRequest, requestSigningInput, bodyDigest } from './auth.ts';
export { publish, BATCH_RECEIPT_TYPE, type BatchReceipt, type PublishResult } from './publish.ts';
export { pull, ack, nack, sweep, idlePumps } from './delivery.ts';
export { registerMember, saveResource, grantEntitlement, revokeEntitlement, subscribe, memberId, ExchangeError, type MemberRow, type ResourceRow, type SubscriptionRow } from './registry.ts';
export type { ExchangeRuntime } from './runtime.ts';
export { createExchangeClient, ExchangeClientError, type ExchangeClient } from './client.ts';
export {
  BULK_TYPE,
  BULK_BLOCK,
  BulkFormatError,
  RecordFramer,
  BlockedTree,
  UpperTree,
  VerifiedBulkHeaders,
  bulkHeaderProblem,
  bulkSigningInput,
  signBulkHeader,
  bulkRecordEvent,
  checkBulkProof,
  verifyBulkRecord,
  isBulkProof,
  parseCsvRecord,
  type BulkHeader,
  type BulkProof,
  type BulkFormat,
} from './bulk-format.ts';
export { BULK_JOB, BULK_LIMITS, runBulk } from './bulk.ts';
export type { BulkStatus, BulkProgress, SendBatchOptions, SendBatchResult } from './bulk-client.ts';

const runtimes = new WeakMap<Db, ExchangeRuntime>();

/** This platform's exchange node (after start). */
export function exchangeOf(ctx: Pick<ModuleContext, 'db'>): ExchangeRuntime {
  const rt = runtimes.get(ctx.db);
  if (!rt) throw new Error('the exchange module has not started on this database');
  return rt;
}

// every GUSU_EXCHANGE_CRL_EVERY sweeps (GUSU_EXCHANGE_SWEEP_MS each) a division node refreshes its
// CRLs and retention runs; every GUSU_EXCHANGE_SYNC_EVERY sweeps it syncs its directory with the hub
let sweeps = 0;
let syncs = 0;

/** A division node: enrol with the hub (retried until it answers), then keep the standing link up. */
async function joinUpstream(ctx: ModuleContext, rt: ExchangeRuntime): Promise<void> {
  if (!rt.self.upstream) return;
  try {
    if (await enrolWithUpstream(ctx, rt.cfg, rt.self, rt.fetch)) ctx.log.info({ node: rt.self.id, hub: rt.cfg.upstreamUrl }, 'exchange node enrolled with its hub');
    await subscribeNode(ctx.db, '*', rt.self.upstream);
    await rt.trust.refresh?.(ctx.db);
    await syncWithUpstream(rt);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, 'exchange: joining the hub failed; retrying in 5 s');
    if (!rt.stopped) setTimeout(() => void joinUpstream(ctx, rt), 5_000).unref();
  }
}

export const exchangeModule: GusuModule = {
  name: 'exchange',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  policies: [...exchangePolicy, ...exchangePagePolicy],
  jobs: (ctx) => ({
    [BULK_JOB]: bulkJobHandler(() => runtimes.get(ctx.db) ?? null),
    [SWEEP_JOB]: async () => {
      const rt = runtimes.get(ctx.db);
      try {
        if (!rt) return;
        await sweep(rt);
        if (rt.self.upstream && ++syncs % rt.cfg.syncEvery === 0) await syncWithUpstream(rt).catch((err: Error) => ctx.log.warn({ err: err.message }, 'exchange: sync with the hub failed'));
        if (++sweeps % rt.cfg.crlEvery === 0) {
          await rt.trust.refresh?.(ctx.db).catch((err: Error) => ctx.log.warn({ err: err.message }, 'exchange: CRL refresh failed'));
          await purgeExpired(rt);
          await sweepBulk(rt).catch((err: Error) => ctx.log.warn({ err: err.message }, 'exchange: bulk housekeeping failed'));
        }
      } finally {
        await scheduleSweep(ctx.db, ctx.config.exchange.sweepMs);
      }
    },
  }),
  commands: { exchange: exchangeCommand },
  actorResolver: (ctx) => exchangeActorResolver(() => runtimes.get(ctx.db) ?? null),
  internalRoutes(app, ctx) {
    exchangeApi(app, ctx, () => exchangeOf(ctx));
    exchangePages(app, ctx);
    govstackRoutes(app, ctx, () => exchangeOf(ctx));
    xroadRoutes(app, ctx, () => exchangeOf(ctx));
    bulkRoutes(app, ctx, () => exchangeOf(ctx));
  },
  async start(ctx) {
    const cfg = ctx.config.exchange;
    addConsoleNav({ href: '/console/exchange', label: EXCHANGE_NAV_LABEL });
    const self = await loadSelf(ctx, cfg);
    const trust = cfg.upstreamUrl ? anchoredTrust(cfg.upstreamUrl) : localTrust;
    const rt = createRuntime(ctx, self, trust);
    runtimes.set(ctx.db, rt);
    await scheduleSweep(ctx.db, cfg.sweepMs, new Date());
    if (ctx.config.demo) await seedDemoExchange(ctx, rt);
    void joinUpstream(ctx, rt);
  },
};
