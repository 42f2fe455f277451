-- The fusion engine's tables, shared by every base registry (population, legal entities): each row
-- names its registry. Source records are kept as they arrived (mapped to the canonical fields):
-- they are the history, and the record as known at any past date is their fold up to that date.
-- The golden record holds, for every field, the surviving value with its source, source record id
-- and time. Conflicts wait for a steward; rejected and unlinked records wait for a person.
create schema if not exists fusion;

create table fusion.source_record (
  seq bigserial primary key,
  registry text collate "C" not null,
  source text collate "C" not null,
  record_id text not null check (length(record_id) between 1 and 200),
  key text collate "C" not null,
  observed_at timestamptz not null,
  received_at timestamptz not null default now(),
  data jsonb not null
);
create index source_record_key on fusion.source_record (registry, key, seq);
create index source_record_id on fusion.source_record (registry, source, record_id);

create table fusion.golden (
  registry text collate "C" not null,
  key text collate "C" not null,
  -- field -> {v: value, s: source, r: source record id, t: observed at}
  record jsonb not null,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (registry, key)
);

create table fusion.conflict (
  id bigserial primary key,
  registry text collate "C" not null,
  key text collate "C" not null,
  field text collate "C" not null,
  winner jsonb not null,
  challenger jsonb not null,
  status text collate "C" not null default 'open' check (status in ('open', 'kept', 'replaced', 'disputed', 'corrected')),
  created_at timestamptz not null default now(),
  resolved_by text,
  resolved_at timestamptz,
  note text check (length(note) <= 2000),
  dispute_instance uuid
);
create unique index conflict_live on fusion.conflict (registry, key, field, (challenger->>'v')) where status in ('open', 'disputed');
create index conflict_queue on fusion.conflict (registry, status, id);

create table fusion.rejected (
  id bigserial primary key,
  registry text collate "C" not null,
  source text collate "C" not null,
  record_id text,
  reason text not null,
  data jsonb,
  at timestamptz not null default now()
);
create index rejected_recent on fusion.rejected (registry, id desc);

-- records without a key (a newborn's birth certificate, a telecom record): linked probabilistically,
-- or waiting for a clerk's decision
create table fusion.unlinked (
  id bigserial primary key,
  registry text collate "C" not null,
  source text collate "C" not null,
  record_id text not null,
  observed_at timestamptz not null,
  data jsonb not null,
  status text collate "C" not null default 'pending' check (status in ('pending', 'review', 'linked', 'new', 'rejected')),
  candidates jsonb,
  linked_key text,
  received_at timestamptz not null default now(),
  decided_by text,
  decided_at timestamptz
);
create index unlinked_queue on fusion.unlinked (registry, status, id);

-- life events derived from changes, waiting to be published on the exchange (an outbox)
create table fusion.event (
  seq bigserial primary key,
  registry text collate "C" not null,
  key text collate "C" not null,
  type text collate "C" not null,
  field text collate "C" not null,
  before jsonb,
  after jsonb,
  at timestamptz not null default now(),
  published_at timestamptz
);
create index event_unpublished on fusion.event (registry, seq) where published_at is null;
