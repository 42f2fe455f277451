-- 政务信息资源目录: categories (类/项/目/细目), entries with their core metadata, the times data
-- arrived (freshness), and sharing agreements (共享协议): who may receive which items until when.
create extension if not exists pg_trgm;
create schema if not exists catalog;

create table catalog.category (
  code text collate "C" primary key check (code ~ '^[1-3]([0-9]{2}([0-9]{3}([0-9]{2})?)?)?$'),
  name text not null check (length(name) between 1 and 200),
  name_en text not null check (length(name_en) between 1 and 200)
);

create table catalog.entry (
  code text collate "C" primary key check (code ~ '^[1-3][0-9]{5}([0-9]{2})?/[0-9]{6}$'),
  classification text collate "C" not null references catalog.category (code),
  kind text collate "C" not null check (kind in ('base', 'theme', 'department')),
  name text not null check (length(name) between 1 and 200),
  name_en text check (length(name_en) <= 200),
  provider text collate "C" not null,
  abstract text not null check (length(abstract) <= 2000),
  format jsonb not null,
  items jsonb not null check (jsonb_typeof(items) = 'array'),
  share_type text collate "C" not null check (share_type in ('unconditional', 'conditional', 'none')),
  share_condition text,
  share_methods text[] not null,
  legal_basis text,
  open boolean not null,
  open_condition text,
  update_cycle text collate "C" not null check (update_cycle in ('realtime', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'irregular')),
  published date not null,
  related text[] not null default '{}',
  maintainer_department text collate "C" not null,
  maintainer_post text not null,
  exchange_resource text collate "C" unique,
  -- name, abstract and item names in one text for trigram search (Chinese included: the locale is C.UTF-8)
  search text not null,
  status text collate "C" not null default 'active' check (status in ('active', 'withdrawn')),
  version integer not null default 1,
  -- where the row came from: the city profile's entries.json, or the console/API
  source text collate "C" not null default 'api' check (source in ('profile', 'api')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (share_type <> 'none' or legal_basis is not null),
  check (share_type <> 'conditional' or share_condition is not null)
);
create index entry_search_trgm on catalog.entry using gin (search gin_trgm_ops);
create index entry_name_trgm on catalog.entry using gin (name gin_trgm_ops);
create index entry_provider on catalog.entry (provider);
create index entry_classification on catalog.entry (classification);

-- freshness: when data for an entry last arrived (the exchange on publish, a registry on load)
create table catalog.arrival (
  entry text collate "C" primary key references catalog.entry (code) on delete cascade,
  last_at timestamptz not null,
  count bigint not null default 0,
  -- the last time the maintainer was told the entry was late (one notice per lateness)
  late_notified_at timestamptz
);

-- A sharing agreement: the consumer department may receive the granted items of the entry from
-- term_start to term_end. basis 'open': recorded when a department subscribes to a base or 无条件
-- entry (all items, no review); 'agreement': requested, then approved (possibly narrowed) or refused
-- by the provider on the workflow engine.
create table catalog.agreement (
  id uuid primary key default gen_random_uuid(),
  entry text collate "C" not null references catalog.entry (code),
  consumer text collate "C" not null,
  basis text collate "C" not null check (basis in ('open', 'agreement')),
  purpose text not null check (length(purpose) between 1 and 2000),
  legal_basis text check (length(legal_basis) <= 2000),
  items_requested text[] not null,
  items_granted text[],
  term_start date not null,
  term_end date not null check (term_end >= term_start),
  status text collate "C" not null check (status in ('requested', 'approved', 'refused', 'revoked', 'withdrawn')),
  narrowed boolean not null default false,
  decision_note text check (length(decision_note) <= 2000),
  decided_by text,
  decided_at timestamptz,
  requested_by text not null,
  requested_at timestamptz not null default now(),
  revoked_by text,
  revoked_at timestamptz,
  revoke_reason text check (length(revoke_reason) <= 2000),
  process_instance uuid,
  check (status <> 'approved' or items_granted is not null)
);
-- one live (requested or approved) agreement per entry and consumer
create unique index agreement_live on catalog.agreement (entry, consumer) where status in ('requested', 'approved');
create index agreement_consumer on catalog.agreement (consumer, status);
create index agreement_entry on catalog.agreement (entry, status);
