-- A registry on the exchange: it is a member of the exchange (its key sealed under the master key),
-- subscribed to each source's resource; what each subscription is waiting for is kept for operators.
create table fusion.exchange_member (
  registry text collate "C" primary key,
  member_id text collate "C" not null,
  alg text collate "C" not null,
  sealed_key text not null,
  created_at timestamptz not null default now()
);

create table fusion.bridge_source (
  registry text collate "C" not null,
  source text collate "C" not null,
  subscription uuid,
  -- waiting: the resource is not on the exchange yet, or the registry's department has no agreement
  status text collate "C" not null check (status in ('subscribed', 'waiting')),
  detail text,
  received bigint not null default 0,
  updated_at timestamptz not null default now(),
  primary key (registry, source)
);

-- names are searched by the population and legal-entity consoles (find by name)
create index golden_name on fusion.golden (registry, (record->'name'->>'v'));
