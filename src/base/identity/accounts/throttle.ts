// Fixed-window counters in PostgreSQL, so that every process of a deployment shares them: the
// per-account lockout (5 failures in 60 s) and the per-IP rate limit of every login path.
//
// The lockout counts pessimistically: an attempt takes a slot *before* the password is checked and a
// success gives the slots back. So five parallel guesses cannot slip past a check-then-count race,
// and the sixth attempt inside the window is refused without the password being looked at at all.
import type { Queryable } from '../../../db/index.ts';

export const LOCKOUT_FAILURES = 5;
export const LOCKOUT_WINDOW_SECONDS = 60;

export interface Hit {
  /** attempts in the current window, this one included */
  count: number;
  /** seconds until the window ends */
  retryAfter: number;
}

/** Counts one attempt under key in a window of windowSeconds; a window that has passed starts again. */
export async function hit(q: Queryable, key: string, windowSeconds: number): Promise<Hit> {
  const { rows } = await q.query<{ count: number; retry: number }>(
    `insert into identity.throttle as t (key, window_start, count) values ($1, now(), 1)
     on conflict (key) do update set
       window_start = case when t.window_start <= now() - make_interval(secs => $2) then now() else t.window_start end,
       count = case when t.window_start <= now() - make_interval(secs => $2) then 1 else t.count + 1 end
     returning count, ceil(extract(epoch from (window_start + make_interval(secs => $2) - now())))::int as retry`,
    [key, windowSeconds],
  );
  const r = rows[0]!;
  return { count: r.count, retryAfter: Math.max(1, r.retry) };
}

/** Forgets a key (a successful sign-in clears the account's failures). */
export async function clear(q: Queryable, key: string): Promise<void> {
  await q.query('delete from identity.throttle where key = $1', [key]);
}

/** Drops windows that ended long ago (the cleanup job). */
export async function purgeThrottle(q: Queryable, olderThanSeconds = 24 * 3600): Promise<number> {
  const r = await q.query(`delete from identity.throttle where window_start < now() - make_interval(secs => $1)`, [olderThanSeconds]);
  return r.rowCount ?? 0;
}

export const accountKey = (kind: string, login: string) => `account:${kind}:${login}`;
export const ipKey = (ip: string) => `ip:${ip}`;
