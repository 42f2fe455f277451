-- 人口基础数据库, first cut: one row per person keyed by the citizen ID number (GB 11643).
-- Multi-source fusion, provenance and history arrive with the population registry issue.
create schema if not exists population;

create table population.person (
  id_number char(18) primary key check (id_number ~ '^[0-9]{17}[0-9X]$'),
  name text not null check (length(name) between 1 and 50),
  sex char(1) not null check (sex in ('M', 'F')),
  ethnicity text not null,
  birth_date date not null,
  county_code char(6) not null,
  street_code char(9),
  community_code char(12),
  address text not null,
  phone text,
  -- where the row came from; demo rows say 'demo' and are synthetic
  source text not null,
  synthetic boolean not null default false,
  updated_at timestamptz not null default now()
);

create index person_county on population.person (county_code);
create index person_name_birth on population.person (name, birth_date);
