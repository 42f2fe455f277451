// One exchange node's runtime state, per database (like the workflow engine's): its identity, trust,
// caches, and the in-process wake-ups of waiting pulls and push pumps.
import type { Db } from '../../db/index.ts';
import type { ExchangeConfig } from '../../config/index.ts';
import type { ModuleContext } from '../../module.ts';
import type { SelfNode } from './node.ts';
import type { Trust } from './trust.ts';
import { createCaches, type Caches } from './registry.ts';
import { VerifiedBatches } from './batch.ts';

export interface ExchangeRuntime {
  ctx: ModuleContext;
  db: Db;
  cfg: ExchangeConfig;
  self: SelfNode;
  trust: Trust;
  caches: Caches;
  batches: VerifiedBatches;
  departments: ReadonlySet<string>;
  fetch: typeof fetch;
  waiters: Waiters;
  /** push pumps running in this process, by subscription id */
  pumps: Map<string, { dirty: boolean; done: Promise<void> }>;
  stopped: boolean;
}

/** Pulls waiting for a subscription's next message, woken when a publish in this process commits. */
export interface Waiters {
  wait(subscription: string, ms: number): Promise<void>;
  wake(subscriptions: Iterable<string>): void;
  /** how many are waiting (metrics, tests) */
  size(): number;
}

export function createWaiters(): Waiters {
  const bySub = new Map<string, Set<() => void>>();
  return {
    wait(subscription, ms) {
      return new Promise<void>((resolve) => {
        let set = bySub.get(subscription);
        if (!set) bySub.set(subscription, (set = new Set()));
        const done = () => {
          clearTimeout(timer);
          set!.delete(done);
          if (set!.size === 0) bySub.delete(subscription);
          resolve();
        };
        const timer = setTimeout(done, ms);
        timer.unref();
        set.add(done);
      });
    },
    wake(subscriptions) {
      for (const s of subscriptions) for (const fn of [...(bySub.get(s) ?? [])]) fn();
    },
    size() {
      let n = 0;
      for (const s of bySub.values()) n += s.size;
      return n;
    },
  };
}

export function createRuntime(ctx: ModuleContext, self: SelfNode, trust: Trust, fetchImpl: typeof fetch = fetch): ExchangeRuntime {
  return {
    ctx,
    db: ctx.db,
    cfg: ctx.config.exchange,
    self,
    trust,
    caches: createCaches(),
    batches: new VerifiedBatches(),
    departments: new Set(ctx.profile.departments.map((d) => d.code)),
    fetch: fetchImpl,
    waiters: createWaiters(),
    pumps: new Map(),
    stopped: false,
  };
}
