-- 法人基础数据库, first cut: one row per legal entity keyed by the unified social credit code (GB 32100).
-- Source fusion, lifecycle and credit arrive with the legal-entity registry issue.
create schema if not exists legal_entity;

create table legal_entity.entity (
  uscc char(18) primary key check (uscc ~ '^[0-9A-HJ-NP-RT-UW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RT-UW-Y]{10}$'),
  name text not null check (length(name) between 1 and 200),
  entity_type text not null,
  legal_representative text not null,
  registered_capital_10k_yuan numeric(18, 2),
  established_date date not null,
  county_code char(6) not null,
  street_code char(9),
  address text not null,
  industry text not null,
  status text not null,
  source text not null,
  synthetic boolean not null default false,
  updated_at timestamptz not null default now()
);

create index entity_county on legal_entity.entity (county_code);
create index entity_name on legal_entity.entity (name);
