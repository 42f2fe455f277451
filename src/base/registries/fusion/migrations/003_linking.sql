-- Linking the records that arrive without a key: the clerk's decisions on pairs are remembered (and
-- reused while the records are unchanged); golden records are looked up by date of birth too.
create table fusion.review_decision (
  registry text collate "C" not null,
  pair_key text not null,
  decision jsonb not null,
  at timestamptz not null default now(),
  primary key (registry, pair_key)
);
create index golden_birth_date on fusion.golden (registry, (record->'birthDate'->>'v'));
