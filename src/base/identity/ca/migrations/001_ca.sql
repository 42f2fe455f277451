-- The municipal CA: its own keys and certificates (root and issuing, one pair per algorithm
-- family), every certificate it issued, and the current CRL of each issuing CA.
create schema if not exists ca;

create table ca.authority (
  -- '<alg>/root' or '<alg>/issuing'
  id text primary key,
  alg text not null check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  role text not null check (role in ('root', 'issuing')),
  parent_id text references ca.authority (id),
  subject_dn text not null,
  serial text not null unique check (serial ~ '^[0-9a-f]{1,40}$'),
  -- subjectKeyIdentifier, hex
  key_id text not null,
  certificate_pem text not null,
  not_before timestamptz not null,
  not_after timestamptz not null,
  -- where the private key lives: 'db' = sealed below; 'pkcs11' = in an HSM, named by key_uri (RFC 7512)
  key_store text not null default 'db' check (key_store in ('db', 'pkcs11')),
  -- AES-256-GCM under the master key: version || iv || tag || ciphertext of the PKCS#8 DER
  sealed_key bytea,
  -- the id (public fingerprint) of the master key that sealed it
  master_key_id text,
  key_uri text,
  created_at timestamptz not null default now(),
  check ((role = 'root') = (parent_id is null)),
  check ((key_store = 'db') = (sealed_key is not null and master_key_id is not null)),
  check ((key_store = 'pkcs11') = (key_uri is not null)),
  unique (alg, role)
);

create table ca.certificate (
  -- lower-case hex, no leading zeros
  serial text primary key check (serial ~ '^[0-9a-f]{1,40}$'),
  issuer_id text not null references ca.authority (id),
  alg text not null check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  kind text not null check (kind in ('node', 'system', 'legal-person', 'staff')),
  subject_dn text not null,
  -- the validated subject: {kind, name, nodeId?, systemId?, uscc?, department?, staffId?}
  subject jsonb not null,
  uscc text generated always as (subject ->> 'uscc') stored,
  department text generated always as (subject ->> 'department') stored,
  not_before timestamptz not null,
  not_after timestamptz not null check (not_after > not_before),
  status text not null default 'good' check (status in ('good', 'revoked')),
  revoked_at timestamptz,
  reason text check (reason in ('unspecified', 'key-compromise', 'affiliation-changed', 'superseded', 'cessation-of-operation', 'privilege-withdrawn')),
  renewed_from text references ca.certificate (serial),
  -- true when the CA generated the key pair and handed the private key out once
  key_generated boolean not null,
  public_key bytea not null,
  pem text not null,
  issued_at timestamptz not null default now(),
  check ((status = 'revoked') = (revoked_at is not null and reason is not null))
);

create index certificate_uscc on ca.certificate (uscc) where uscc is not null;
create index certificate_department on ca.certificate (department) where department is not null;
create index certificate_kind_issued on ca.certificate (kind, issued_at desc);
create index certificate_revoked on ca.certificate (issuer_id, revoked_at) where status = 'revoked';

create table ca.crl (
  issuer_id text primary key references ca.authority (id),
  crl_number bigint not null check (crl_number > 0),
  this_update timestamptz not null,
  next_update timestamptz not null,
  der bytea not null
);
