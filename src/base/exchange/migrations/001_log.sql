-- The exchange message log (docs/decisions/0010-exchange-envelope.md): entries hash-chained as in
-- src/base/exchange/log.ts, a signed checkpoint every `checkpoint_every` entries, and a one-row head
-- locked by every append (so seq is gapless and the chain linear). Hashes are computed in TypeScript
-- (log.ts) and verified there; `at` is kept as the exact text that was hashed.
create schema if not exists exchange;

create table exchange.log_entry (
  seq bigint primary key check (seq >= 1),
  kind text collate "C" not null check (kind in ('event', 'receipt')),
  ref text not null check (length(ref) between 1 and 200),
  member text collate "C" not null check (length(member) between 1 and 200),
  digest char(64) collate "C" not null,
  at text collate "C" not null check (length(at) <= 40),
  prev_hash char(64) collate "C" not null,
  hash char(64) collate "C" not null
);

create index log_entry_ref on exchange.log_entry (ref, seq);

create table exchange.log_checkpoint (
  n bigint primary key check (n >= 1),
  first_seq bigint not null,
  last_seq bigint not null,
  root char(64) collate "C" not null,
  prev_hash char(64) collate "C" not null,
  at text collate "C" not null,
  alg text collate "C" not null check (alg in ('ecdsa-p256-sha256', 'sm2-sm3')),
  hash char(64) collate "C" not null,
  sig text collate "C" not null
);

create table exchange.log_head (
  one boolean primary key default true check (one),
  seq bigint not null,
  hash char(64) collate "C" not null,
  checkpoint_every int not null check (checkpoint_every >= 1)
);
insert into exchange.log_head (seq, hash, checkpoint_every) values (0, repeat('0', 64), 1000);

-- Append-only below the application too; whoever can bypass this is what verification is for.
create function exchange.refuse_change() returns trigger
language plpgsql as $$
begin
  raise exception 'exchange.% is append-only: % refused', tg_table_name, tg_op
    using errcode = 'insufficient_privilege', hint = 'message log entries are never changed or removed';
end
$$;

create trigger log_entry_append_only before update or delete on exchange.log_entry
  for each row execute function exchange.refuse_change();
create trigger log_checkpoint_append_only before update or delete on exchange.log_checkpoint
  for each row execute function exchange.refuse_change();
