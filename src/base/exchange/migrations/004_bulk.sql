-- Bulk batches (docs/exchange.md, "Bulk batches"): a member uploads a CSV or NDJSON file in parts
-- (resumable), signs a completion header over its size, SHA-256 and the Merkle root of its records,
-- and a job verifies and publishes the records. The parts are rows here, so any app process takes
-- the next part and the job runs anywhere.
create table exchange.bulk (
  id uuid primary key default gen_random_uuid(),
  member text collate "C" not null references exchange.member (id),
  resource text collate "C" not null references exchange.resource (id),
  format text collate "C" not null check (format in ('ndjson', 'csv')),
  key_field text check (length(key_field) between 1 and 100),
  id_field text check (length(id_field) between 1 and 100),
  -- bytes received so far: the offset the next part must name (Upload-Offset)
  received bigint not null default 0 check (received >= 0),
  status text collate "C" not null default 'open'
    check (status in ('open', 'verifying', 'publishing', 'done', 'failed', 'cancelled')),
  -- the member-signed completion { type: gusu.exchange.bulk.v1, id, member, resource, format, size, sha256, records, root, ..., alg, sig }
  header jsonb,
  records bigint,
  published bigint not null default 0,
  duplicates bigint not null default 0,
  rejected bigint not null default 0,
  -- the first rejected records: [{ line, reason }]
  rejections jsonb not null default '[]',
  error text,
  -- the job's state: the Merkle root of every block of 1024 records (32 bytes each) once verified,
  -- where publishing resumes ({ block, offset, line }), and who holds the batch until when
  block_roots bytea,
  cursor jsonb,
  worker text,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  finished_at timestamptz
);
create index bulk_member on exchange.bulk (member, created_at);
create index bulk_active on exchange.bulk (status, updated_at) where status in ('open', 'verifying', 'publishing');

create table exchange.bulk_part (
  bulk uuid not null references exchange.bulk (id) on delete cascade,
  byte_offset bigint not null check (byte_offset >= 0),
  size int not null check (size > 0),
  data bytea not null,
  primary key (bulk, byte_offset)
);
