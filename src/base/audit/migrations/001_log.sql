-- The audit log: append-only, hash-chained (docs/decisions/0005-audit-log.md). Each entry's hash is
-- SHA-256 over the canonical form of its fields including the previous entry's hash; the one-row head
-- holds the last seq and hash, is locked by every append (so the chain is linear and seq gapless) and
-- lets verification notice a truncated tail.
create schema if not exists audit;

create table audit.entry (
  seq bigint primary key check (seq >= 1),
  at timestamptz not null,
  actor_kind text collate "C" not null check (actor_kind in ('citizen', 'staff', 'enterprise', 'system', 'anonymous')),
  actor_id text not null check (length(actor_id) <= 200),
  actor_department text check (length(actor_department) <= 64),
  action text collate "C" not null check (action ~ '^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$' and length(action) <= 128),
  resource_type text collate "C" not null check (resource_type ~ '^[a-z][a-z0-9_.-]*$' and length(resource_type) <= 64),
  resource_id text not null check (length(resource_id) <= 500),
  -- the resident ID number whose personal data this entry touches
  subject text check (length(subject) <= 64),
  purpose text check (length(purpose) <= 500),
  outcome text collate "C" not null check (outcome in ('ok', 'denied', 'error')),
  request_id text check (length(request_id) <= 128),
  ip text check (length(ip) <= 64),
  -- canonical JSON text (sorted keys), hashed as stored: not jsonb, which would re-serialise it
  details text check (length(details) <= 20000),
  prev_hash char(64) collate "C" not null,
  hash char(64) collate "C" not null
);

create index entry_subject on audit.entry (subject, seq) where subject is not null;
create index entry_action on audit.entry (action, seq);
create index entry_actor on audit.entry (actor_id, seq);
create index entry_resource on audit.entry (resource_type, resource_id, seq);
create index entry_at on audit.entry using brin (at);

create table audit.head (
  one boolean primary key default true check (one),
  seq bigint not null,
  hash char(64) collate "C" not null
);
insert into audit.head (seq, hash) values (0, repeat('0', 64));

-- The canonical form (RFC 8785 JSON canonicalisation of one flat object, members in code-point
-- order) and its SHA-256, lower-case hex. src/base/audit/chain.ts computes the same in TypeScript;
-- verification recomputes it there, independently of this function.
create function audit.entry_hash(e audit.entry) returns char(64)
language sql stable parallel safe as $$
  select encode(sha256(convert_to(
    '{"action":' || to_json(e.action::text)::text
    || ',"actor_department":' || coalesce(to_json(e.actor_department)::text, 'null')
    || ',"actor_id":' || to_json(e.actor_id)::text
    || ',"actor_kind":' || to_json(e.actor_kind::text)::text
    || ',"at":"' || to_char(e.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
    || ',"details":' || coalesce(to_json(e.details)::text, 'null')
    || ',"ip":' || coalesce(to_json(e.ip)::text, 'null')
    || ',"outcome":' || to_json(e.outcome::text)::text
    || ',"prev_hash":"' || e.prev_hash || '"'
    || ',"purpose":' || coalesce(to_json(e.purpose)::text, 'null')
    || ',"request_id":' || coalesce(to_json(e.request_id)::text, 'null')
    || ',"resource_id":' || to_json(e.resource_id)::text
    || ',"resource_type":' || to_json(e.resource_type::text)::text
    || ',"seq":' || e.seq::text
    || ',"subject":' || coalesce(to_json(e.subject)::text, 'null')
    || '}', 'UTF8')), 'hex')
$$;

-- Appends entries in the order given (one per array index): lock the head, then for each entry link
-- to the previous one, hash, insert; advance the head once. Inside the caller's transaction the head
-- stays locked until that transaction ends, so seq order is commit order and a rollback leaves no gap.
create function audit.append(
  p_actor_kind text[], p_actor_id text[], p_actor_department text[], p_action text[], p_resource_type text[], p_resource_id text[],
  p_subject text[], p_purpose text[], p_outcome text[], p_request_id text[], p_ip text[], p_details text[])
returns table (seq bigint, hash char(64))
language plpgsql as $$
declare
  e audit.entry;
  n int := coalesce(array_length(p_action, 1), 0);
begin
  if n = 0 then
    return;
  end if;
  select h.seq, h.hash into e.seq, e.hash from audit.head h for update;
  for i in 1 .. n loop
    e.prev_hash := e.hash;
    e.seq := e.seq + 1;
    e.at := clock_timestamp();
    e.actor_kind := p_actor_kind[i]; e.actor_id := p_actor_id[i]; e.actor_department := p_actor_department[i];
    e.action := p_action[i]; e.resource_type := p_resource_type[i]; e.resource_id := p_resource_id[i];
    e.subject := p_subject[i]; e.purpose := p_purpose[i]; e.outcome := p_outcome[i];
    e.request_id := p_request_id[i]; e.ip := p_ip[i]; e.details := p_details[i];
    e.hash := audit.entry_hash(e);
    insert into audit.entry values (e.*);
    seq := e.seq;
    hash := e.hash;
    return next;
  end loop;
  update audit.head h set seq = e.seq, hash = e.hash;
end
$$;

-- Append-only below the application too. Someone who can bypass these (a superuser disabling
-- triggers, session_replication_role = replica) is what the chain and `gusu audit verify` are for.
create function audit.refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception 'audit.% is append-only: % refused', tg_table_name, tg_op
    using errcode = 'insufficient_privilege', hint = 'audit entries are never changed or removed';
end
$$;

-- TRUNCATE is refused once the log holds an entry. Before that it loses nothing, and `gusu restore`
-- truncates the freshly migrated tables (and this seeded head) before loading a backup's rows.
create function audit.refuse_truncate() returns trigger
language plpgsql as $$
begin
  if exists (select 1 from audit.entry) then
    raise exception 'audit.% is append-only: TRUNCATE refused', tg_table_name
      using errcode = 'insufficient_privilege', hint = 'audit entries are never changed or removed';
  end if;
  return null;
end
$$;

create trigger entry_append_only before update or delete on audit.entry
  for each row execute function audit.refuse_change();
create trigger entry_no_truncate before truncate on audit.entry
  for each statement execute function audit.refuse_truncate();

-- the head only moves forward, and always to an entry that exists with that hash
create function audit.head_advances() returns trigger
language plpgsql as $$
begin
  if new.seq <= old.seq or not exists (select 1 from audit.entry e where e.seq = new.seq and e.hash = new.hash) then
    raise exception 'audit.head only advances to the last appended entry (refused: from % to %)', old.seq, new.seq
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;

create trigger head_advances before update on audit.head
  for each row execute function audit.head_advances();
create trigger head_no_delete before delete on audit.head
  for each row execute function audit.refuse_change();
create trigger head_no_truncate before truncate on audit.head
  for each statement execute function audit.refuse_truncate();
