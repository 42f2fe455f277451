-- Synchronous services (X-Road style /r1 calls): what a provider member offers, and which client
-- members may call each service (access rights, as X-Road's service ACL).
create table exchange.service (
  provider text collate "C" not null references exchange.member (id),
  code text collate "C" not null check (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
  name text not null check (length(name) between 1 and 200),
  -- [{ method, path }] for GovStack listMethods; the OpenAPI description for getOpenAPI
  endpoints jsonb not null default '[]',
  openapi jsonb,
  created_at timestamptz not null default now(),
  primary key (provider, code)
);

create table exchange.service_acl (
  provider text collate "C" not null,
  service text collate "C" not null,
  client text collate "C" not null references exchange.member (id),
  granted_by text not null,
  granted_at timestamptz not null default now(),
  primary key (provider, service, client),
  foreign key (provider, service) references exchange.service (provider, code) on delete cascade
);
