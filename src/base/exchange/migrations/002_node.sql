-- The exchange node (issue #5, docs/exchange.md): this node and its peers, the municipal CA's
-- certificates a division node trusts, members (department systems) and the resources they provide,
-- entitlements, subscriptions, messages stored once, per-subscription delivery queues, and bulk
-- batches. Every queue is a table: durable across kill -9, claimed with row locks.

create table exchange.node (
  id text collate "C" primary key check (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  kind text collate "C" not null check (kind in ('hub', 'node')),
  name text not null check (length(name) between 1 and 200),
  name_en text check (length(name_en) <= 200),
  division_code text collate "C" check (division_code ~ '^[0-9]{6}$'),
  upstream text collate "C" references exchange.node (id),
  -- the base URL of its internal face, as peers reach it (null: not reachable, or this node)
  url text check (length(url) <= 500),
  is_self boolean not null default false,
  -- self: the node's certificate (kind 'node', from the municipal CA) and its key sealed under the master key
  cert_pem text,
  cert_serial text collate "C",
  alg text collate "C" check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  sealed_key text,
  status text collate "C" not null default 'unknown' check (status in ('unknown', 'up', 'down')),
  last_contact timestamptz,
  last_error text,
  created_at timestamptz not null default now()
);
create unique index node_self on exchange.node (is_self) where is_self;

-- A division node's copy of the municipal CA (from the hub at enrolment) and its CRLs (refreshed).
create table exchange.trust_anchor (
  alg text collate "C" not null check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  role text collate "C" not null check (role in ('root', 'issuing')),
  pem text not null,
  fetched_at timestamptz not null default now(),
  primary key (alg, role)
);

create table exchange.crl (
  alg text collate "C" primary key check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  der bytea not null,
  this_update timestamptz not null,
  next_update timestamptz,
  revoked text[] collate "C" not null default '{}',
  fetched_at timestamptz not null default now()
);

-- 成员: a department's (or enterprise's) information system, named as X-Road names clients:
-- INSTANCE/CLASS/CODE/SUBSYSTEM, e.g. SZ/GOV/SZ-GA/hukou.
create table exchange.member (
  id text collate "C" primary key check (length(id) <= 255),
  instance text collate "C" not null check (instance ~ '^[A-Za-z0-9-]{1,32}$'),
  member_class text collate "C" not null check (member_class in ('GOV', 'COM', 'NGO', 'ORG')),
  member_code text collate "C" not null check (member_code ~ '^[A-Za-z0-9-]{1,64}$'),
  subsystem text collate "C" not null check (subsystem ~ '^[A-Za-z0-9-]{1,64}$'),
  name text not null check (length(name) between 1 and 200),
  department text collate "C",
  node_id text collate "C" not null references exchange.node (id),
  cert_pem text,
  cert_serial text collate "C",
  alg text collate "C" check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  -- where push deliveries go, and the base URL of its services (X-Road style /r1 calls)
  push_url text check (length(push_url) <= 500),
  service_url text check (length(service_url) <= 500),
  status text collate "C" not null default 'active' check (status in ('active', 'suspended')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (instance, member_class, member_code, subsystem)
);
create index member_node on exchange.member (node_id);

-- What is exchanged. Until the catalog (issue #6) lands: an id (also the event type), a JSON Schema
-- for the data, the member that provides it, and how it is shared.
create table exchange.resource (
  id text collate "C" primary key check (id ~ '^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$' and length(id) <= 120),
  name text not null check (length(name) between 1 and 200),
  name_en text check (length(name_en) <= 200),
  provider text collate "C" not null references exchange.member (id),
  schema jsonb not null,
  -- open: any member may subscribe (基础信息, 无条件共享); conditional: only with an entitlement; closed: none
  share text collate "C" not null default 'open' check (share in ('open', 'conditional', 'closed')),
  -- bulk batches: the record field that becomes the ordering key
  key_field text check (length(key_field) <= 100),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table exchange.entitlement (
  resource text collate "C" not null references exchange.resource (id) on delete cascade,
  member text collate "C" not null references exchange.member (id),
  granted_by text not null,
  granted_at timestamptz not null default now(),
  expires_at timestamptz,
  primary key (resource, member)
);

-- A subscription is a member's (target_member) or, for federation, a peer node's (target_node):
-- exactly one of them. resource '*' (the upstream link of a division node) takes everything.
create table exchange.subscription (
  id uuid primary key default gen_random_uuid(),
  resource text collate "C" not null,
  target_member text collate "C" references exchange.member (id),
  target_node text collate "C" references exchange.node (id),
  delivery text collate "C" not null check (delivery in ('push', 'pull')),
  push_url text check (length(push_url) <= 500),
  status text collate "C" not null default 'active' check (status in ('active', 'cancelled')),
  created_at timestamptz not null default now(),
  cancelled_at timestamptz,
  check ((target_member is null) <> (target_node is null)),
  check (target_node is null or delivery = 'push')
);
create unique index subscription_member on exchange.subscription (resource, target_member) where status = 'active' and target_member is not null;
create unique index subscription_node on exchange.subscription (resource, target_node) where status = 'active' and target_node is not null;

-- Every accepted message, stored once. (source, id) is unique: the same id with other content is a
-- replay and refused; the same id with the same content is the same message (idempotent publish).
create table exchange.message (
  seq bigint generated always as identity primary key,
  source text collate "C" not null,
  id text collate "C" not null,
  member text collate "C" not null,
  resource text collate "C" not null,
  key text collate "C",
  digest char(64) collate "C" not null,
  -- the signed envelope as it arrived (JSON text), and for batch-signed events the batch proof
  event text not null,
  proof jsonb,
  -- the node whose member published it, and the node that handed it to this one (null: a local member)
  origin text collate "C" not null,
  via text collate "C",
  received_at timestamptz not null default now(),
  unique (source, id)
);
create index message_resource on exchange.message (resource, seq);
create index message_received on exchange.message (received_at);

-- Per-subscription queues. Ordered per key: a message is handed out only when no earlier message of
-- its key for the same subscription is in flight or waiting out a back-off.
create table exchange.delivery (
  subscription uuid not null references exchange.subscription (id),
  seq bigint not null,
  key text collate "C",
  status text collate "C" not null default 'ready' check (status in ('ready', 'leased', 'done', 'dead')),
  attempts int not null default 0,
  next_at timestamptz not null default now(),
  lease_until timestamptz,
  last_error text,
  done_at timestamptz,
  primary key (subscription, seq)
);
create index delivery_open on exchange.delivery (subscription, seq) where status in ('ready', 'leased');
create index delivery_open_key on exchange.delivery (subscription, key, seq) where status in ('ready', 'leased');
create index delivery_dead on exchange.delivery (subscription, seq) where status = 'dead';

-- Refusals: every refused publish or call, with the reason it was given (the security guarantees).
create table exchange.refusal (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  member text,
  event_id text,
  reason text collate "C" not null,
  detail text not null,
  remote_addr text
);
create index refusal_at on exchange.refusal (at);
