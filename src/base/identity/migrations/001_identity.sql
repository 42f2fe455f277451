-- base/identity: accounts (citizen, staff, enterprise), role grants, preferences, login throttling,
-- the OpenID provider's storage, and the relying parties' browser sessions.
create schema if not exists identity;

-- One row per person or legal person who signs in. `login` is what they type or prove:
-- citizen: the resident ID number (GB 11643); staff: a user name; enterprise: the USCC (GB 32100).
create table identity.account (
  id uuid primary key default gen_random_uuid(),
  kind text not null check (kind in ('citizen', 'staff', 'enterprise')),
  login text not null check (length(login) between 1 and 64),
  name text not null check (length(name) between 1 and 200),
  -- citizen: bound to a resident who passed the real-name check against the population registry
  id_number char(18) check (id_number ~ '^[0-9]{17}[0-9X]$'),
  -- enterprise: the legal person it acts for
  uscc char(18),
  -- staff: department code (city profile) and post
  department text,
  post text,
  -- memory-hard hash with its parameters: scrypt$N=..,r=..,p=..$salt$hash (null: no password login)
  password_hash text,
  -- staff second factor: RFC 6238 secret (base32) and the last time step accepted (replay refusal)
  totp_secret text,
  totp_last_step bigint,
  status text not null default 'active' check (status in ('active', 'disabled')),
  synthetic boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (kind, login),
  check (kind <> 'citizen' or id_number is not null),
  check (kind <> 'enterprise' or uscc is not null),
  check (kind <> 'staff' or (department is not null and totp_secret is not null and password_hash is not null))
);
create unique index account_citizen_id_number on identity.account (id_number) where kind = 'citizen';

-- Roles are declared in code (src/base/identity/roles.ts); who holds them is data.
create table identity.role_grant (
  id bigint generated always as identity primary key,
  account_id uuid not null references identity.account (id) on delete cascade,
  role text not null check (role ~ '^[a-z][a-z0-9-]{0,63}$'),
  -- department code the grant is limited to; null: city-wide
  scope text,
  granted_by uuid references identity.account (id),
  granted_at timestamptz not null default now(),
  revoked_by uuid references identity.account (id),
  revoked_at timestamptz
);
create unique index role_grant_active on identity.role_grant (account_id, role, coalesce(scope, '')) where revoked_at is null;

-- Personalisation that every portal reads.
create table identity.preference (
  account_id uuid primary key references identity.account (id) on delete cascade,
  language text check (language in ('zh-CN', 'en')),
  favourite_services text[] not null default '{}',
  channels text[] not null default '{mailbox}',
  updated_at timestamptz not null default now()
);

-- Fixed-window counters shared by every process: per-account lockout and per-IP rate limits.
create table identity.throttle (
  key text primary key,
  window_start timestamptz not null,
  count int not null
);

-- Enterprise sign-in: a fresh random challenge bound to one interaction, usable once.
create table identity.login_challenge (
  challenge text primary key,
  interaction_uid text not null,
  uscc char(18) not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);

-- The OpenID provider's storage (oidc-provider adapter): one table for every model.
create table identity.oidc_store (
  model text not null,
  id text not null,
  payload jsonb not null,
  grant_id text,
  uid text,
  user_code text,
  expires_at timestamptz,
  consumed_at timestamptz,
  primary key (model, id)
);
create index oidc_store_grant on identity.oidc_store (grant_id) where grant_id is not null;
create index oidc_store_uid on identity.oidc_store (model, uid) where uid is not null;
create index oidc_store_user_code on identity.oidc_store (model, user_code) where user_code is not null;
create index oidc_store_expires on identity.oidc_store (expires_at) where expires_at is not null;

-- The relying parties' (portal, console) browser sessions. The cookie holds a random id; only its
-- SHA-256 is stored, so a copy of this table cannot be replayed as cookies.
create table identity.session (
  id_hash bytea primary key,
  client text not null check (client in ('portal', 'console')),
  account_id uuid not null references identity.account (id) on delete cascade,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- absolute end; the idle timeout is checked against last_seen_at
  expires_at timestamptz not null,
  -- for RP-initiated logout (id_token_hint) and back-channel logout (sid)
  id_token text,
  oidc_sid text,
  -- sealed (AES-256-GCM) with the platform's identity secret
  refresh_token text,
  access_token text,
  access_expires_at timestamptz
);
create index session_account on identity.session (account_id);
create index session_sid on identity.session (oidc_sid) where oidc_sid is not null;
create index session_expires on identity.session (expires_at);

-- An authorization request the relying party started and has not finished (state, PKCE verifier).
create table identity.rp_login (
  state text primary key,
  client text not null check (client in ('portal', 'console')),
  code_verifier text not null,
  nonce text not null,
  back text not null,
  created_at timestamptz not null default now()
);
