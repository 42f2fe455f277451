-- The platform's own schema: settings and the one job queue every module uses.
create schema if not exists platform;

create table platform.setting (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);

create table platform.job (
  id bigint generated always as identity primary key,
  kind text not null check (kind ~ '^[a-z][a-z0-9_.:-]{0,99}$'),
  payload jsonb not null default '{}'::jsonb,
  status text not null default 'queued' check (status in ('queued', 'running', 'done', 'dead')),
  run_at timestamptz not null default now(),
  attempts int not null default 0,
  max_attempts int not null default 5 check (max_attempts between 1 and 100),
  -- a running job whose lease has passed was held by a process that died: it is claimed again
  locked_until timestamptz,
  locked_by text,
  last_error text,
  -- at most one queued or running job per key: timers and singletons enqueue idempotently
  unique_key text,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);

create index job_due on platform.job (run_at) where status in ('queued', 'running');
create unique index job_unique_key on platform.job (unique_key) where unique_key is not null and status in ('queued', 'running');
create index job_finished on platform.job (finished_at) where status in ('done', 'dead');
