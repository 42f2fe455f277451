// The one job queue: background work and timers as rows in platform.job, claimed with
// FOR UPDATE SKIP LOCKED so any number of processes share them. A job runs at least once; handlers
// make their effects idempotent (the job id is a good key). A claimed job carries a lease: if its
// process dies, the job is claimed again once the lease passes.
import os from 'node:os';
import type { Db, Queryable } from './pool.ts';

export interface Job<P = unknown> {
  id: number;
  kind: string;
  payload: P;
  attempts: number;
  maxAttempts: number;
}

export type JobHandler = (job: Job, ctx: { signal: AbortSignal }) => Promise<void>;

export interface EnqueueOptions {
  runAt?: Date;
  /** a second enqueue with the same key while the first is queued or running is a no-op */
  uniqueKey?: string;
  maxAttempts?: number;
}

/** Enqueues a job; pass a transaction's client to enqueue atomically with other writes. Returns its id, or null if uniqueKey was taken. */
export async function enqueue(db: Queryable, kind: string, payload: unknown = {}, opts: EnqueueOptions = {}): Promise<number | null> {
  const { rows } = await db.query<{ id: number }>(
    `insert into platform.job (kind, payload, run_at, unique_key, max_attempts)
     values ($1, $2, coalesce($3, now()), $4, $5)
     on conflict (unique_key) where unique_key is not null and status in ('queued', 'running') do nothing
     returning id`,
    [kind, JSON.stringify(payload), opts.runAt ?? null, opts.uniqueKey ?? null, opts.maxAttempts ?? 5],
  );
  return rows[0]?.id ?? null;
}

/** Exponential back-off with a ceiling: 2 s, 4 s, 8 s ... 1 h. */
export function backoffMs(attempts: number): number {
  return Math.min(2 ** attempts * 1000, 3_600_000);
}

export interface Worker {
  stop(): Promise<void>;
  /** claims and runs what is due now, once; resolves when those jobs have finished (tests, CLI) */
  drain(): Promise<number>;
  running(): number;
}

export interface WorkerOptions {
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  log?: (obj: Record<string, unknown>, msg: string) => void;
  onFinish?: (kind: string, outcome: 'done' | 'retry' | 'dead', ms: number) => void;
}

export function startWorker(db: Db, handlers: Record<string, JobHandler>, opts: WorkerOptions = {}): Worker {
  const concurrency = opts.concurrency ?? 4;
  const pollMs = opts.pollMs ?? 1000;
  const leaseMs = opts.leaseMs ?? 5 * 60_000;
  const me = `${os.hostname()}:${process.pid}`;
  const kinds = Object.keys(handlers);
  const inFlight = new Set<Promise<void>>();
  const abort = new AbortController();
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  async function claim(limit: number): Promise<Job[]> {
    if (limit <= 0 || kinds.length === 0) return [];
    const { rows } = await db.query<{ id: number; kind: string; payload: unknown; attempts: number; max_attempts: number }>(
      `update platform.job j set status = 'running', attempts = j.attempts + 1, locked_by = $3,
              locked_until = now() + make_interval(secs => $4::double precision / 1000)
        where j.id in (
          select id from platform.job
           where kind = any($1) and run_at <= now()
             and (status = 'queued' or (status = 'running' and locked_until < now()))
           order by run_at, id
           limit $2
           for update skip locked)
       returning j.id, j.kind, j.payload, j.attempts, j.max_attempts`,
      [kinds, limit, me, leaseMs],
    );
    return rows.map((r) => ({ id: r.id, kind: r.kind, payload: r.payload, attempts: r.attempts, maxAttempts: r.max_attempts }));
  }

  async function run(job: Job): Promise<void> {
    const started = Date.now();
    const handler = handlers[job.kind]!;
    try {
      await handler(job, { signal: abort.signal });
      await db.query(`update platform.job set status = 'done', finished_at = now(), locked_until = null, last_error = null where id = $1`, [job.id]);
      opts.onFinish?.(job.kind, 'done', Date.now() - started);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const dead = job.attempts >= job.maxAttempts;
      await db
        .query(
          dead
            ? `update platform.job set status = 'dead', finished_at = now(), locked_until = null, last_error = $2 where id = $1`
            : `update platform.job set status = 'queued', locked_until = null, last_error = $2,
                      run_at = now() + make_interval(secs => $3::double precision / 1000) where id = $1`,
          dead ? [job.id, message.slice(0, 2000)] : [job.id, message.slice(0, 2000), backoffMs(job.attempts)],
        )
        .catch(() => undefined); // the lease brings it back if even this fails
      opts.log?.({ job: job.id, kind: job.kind, attempts: job.attempts, dead, err: message }, dead ? 'job failed for the last time' : 'job failed; will retry');
      opts.onFinish?.(job.kind, dead ? 'dead' : 'retry', Date.now() - started);
    }
  }

  function track(p: Promise<void>): Promise<void> {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    return p;
  }

  async function tick(): Promise<void> {
    timer = null;
    if (stopped) return;
    try {
      const jobs = await claim(concurrency - inFlight.size);
      for (const job of jobs) track(run(job).then(() => (stopped ? undefined : schedule(0))));
    } catch (err) {
      opts.log?.({ err: (err as Error).message }, 'job claim failed');
    }
    schedule(pollMs);
  }

  function schedule(ms: number): void {
    if (stopped) return;
    if (timer) {
      if (ms > 0) return;
      clearTimeout(timer);
    }
    timer = setTimeout(() => void tick(), ms);
    timer.unref();
  }

  if (concurrency > 0) schedule(0);

  return {
    running: () => inFlight.size,
    async drain() {
      let total = 0;
      for (;;) {
        const jobs = await claim(Math.max(1, concurrency));
        if (jobs.length === 0) break;
        total += jobs.length;
        await Promise.all(jobs.map((j) => track(run(j))));
      }
      return total;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await Promise.allSettled([...inFlight]);
    },
  };
}

export async function jobCounts(db: Queryable): Promise<Record<string, number>> {
  const { rows } = await db.query<{ status: string; n: number }>(`select status, count(*)::int as n from platform.job group by status`);
  const out: Record<string, number> = { queued: 0, running: 0, done: 0, dead: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}
