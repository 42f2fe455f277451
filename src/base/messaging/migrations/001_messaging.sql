-- base/messaging: notice templates (versioned), notices with their audience and progress counters,
-- one delivery row per recipient and channel (the mailbox row *is* the message in the mailbox),
-- staged recipient lists, fan-out chunks, and the contact addresses people give for SMS and email.
create schema if not exists messaging;

-- A template version never changes once saved; a change is a new version of the same key.
-- Placeholders {{name}} are checked at save: recipient attributes or the declared variables only.
create table messaging.template (
  key text not null check (key ~ '^[a-z][a-z0-9-]{1,63}$'),
  version int not null check (version >= 1),
  department text not null,
  name_zh text not null check (length(name_zh) between 1 and 100),
  name_en text check (length(name_en) <= 100),
  subject_zh text not null check (length(subject_zh) between 1 and 200),
  subject_en text check (length(subject_en) <= 200),
  body_zh text not null check (length(body_zh) between 1 and 5000),
  body_en text check (length(body_en) <= 5000),
  variables text[] not null default '{}',
  created_by text not null,
  synthetic boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (key, version)
);
create index template_department on messaging.template (department, key);

-- A notice: who sent it, the texts (copied from the template version, so rendering never joins
-- templates), the audience as declared, and the counters the sender watches while it runs.
create table messaging.notice (
  id bigint generated always as identity primary key,
  department text not null,
  sender_kind text not null check (sender_kind in ('staff', 'system')),
  sender_id text not null,
  sender_name text,
  template_key text,
  template_version int,
  subject_zh text not null,
  subject_en text,
  body_zh text not null,
  body_en text,
  vars jsonb not null default '{}',
  audience jsonb not null,
  -- queued: accepted, fan-out not planned yet; sending: fan-out or external deliveries running; done
  status text not null default 'queued' check (status in ('queued', 'sending', 'done')),
  -- the audience's size when it was sent (the rate limit counts it); total: delivery rows so far
  recipients int not null default 0,
  total int not null default 0,
  queued int not null default 0,
  -- delivered counts every delivery that reached its recipient, including those read since
  delivered int not null default 0,
  read int not null default 0,
  failed int not null default 0,
  chunks_total int,
  chunks_done int not null default 0,
  synthetic boolean not null default false,
  created_at timestamptz not null default now(),
  fanout_done_at timestamptz,
  finished_at timestamptz
);
create index notice_department on messaging.notice (department, id desc);
create index notice_recent on messaging.notice (department, created_at);

-- One row per (notice, channel, recipient). recipient is the mailbox owner's key:
-- p:<resident ID number>, e:<USCC>, s:<staff account id>. No foreign key to notice: a million
-- inserts would pay a lookup each; notices are never deleted.
create table messaging.delivery (
  notice_id bigint not null,
  channel text not null check (channel in ('mailbox', 'sms', 'email')),
  recipient text not null,
  status text not null check (status in ('queued', 'delivered', 'read', 'failed')),
  attempts smallint not null default 0,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  read_at timestamptz,
  next_attempt_at timestamptz,
  last_error text,
  primary key (notice_id, channel, recipient)
);
-- the mailbox read path: one person's messages, newest first
create index delivery_mailbox on messaging.delivery (recipient, notice_id desc) where channel = 'mailbox';
-- external channels: what is due
create index delivery_due on messaging.delivery (notice_id, channel, next_attempt_at) where status = 'queued';

-- A recipient list sent inline (up to 10,000) or uploaded as CSV, staged for the fan-out.
create table messaging.recipient_list (
  id bigint generated always as identity primary key,
  department text not null,
  created_by text not null,
  recipients int not null,
  created_at timestamptz not null default now()
);
create table messaging.list_member (
  list_id bigint not null,
  seq int not null,
  recipient text not null,
  primary key (list_id, seq)
);

-- The fan-out of a segment or a list, cut into chunks: each is one job and one transaction.
-- Segments: lo/hi are resident ID numbers (lo inclusive, hi exclusive, null: open); lists: seq numbers.
create table messaging.chunk (
  notice_id bigint not null,
  seq int not null,
  lo text,
  hi text,
  done_at timestamptz,
  inserted int,
  primary key (notice_id, seq)
);

-- Where a person wants SMS and email notices sent (they give these themselves; registry phone
-- numbers are not used for notices). owner: the mailbox key.
create table messaging.contact (
  owner text primary key,
  phone text check (phone ~ '^1[3-9][0-9]{9}$'),
  email text check (length(email) <= 254 and email ~ '^[^@\s]+@[^@\s]+$'),
  updated_at timestamptz not null default now()
);
