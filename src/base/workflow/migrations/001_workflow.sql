-- The workflow engine's tables: deployed definitions (immutable versions), running instances, the
-- tokens that mark where each instance is, user tasks (the inboxes), and every instance's history.
create schema if not exists workflow;

create table workflow.definition (
  id uuid primary key default gen_random_uuid(),
  key text not null,
  version int not null check (version >= 1),
  name jsonb not null,
  owner text not null,
  model jsonb not null,
  -- sha-256 of the model as deployed: deploying the same model again is a no-op
  checksum text not null,
  source text not null check (source in ('json', 'bpmn')),
  deployed_at timestamptz not null default now(),
  deployed_by text not null,
  unique (key, version)
);

create table workflow.instance (
  id uuid primary key default gen_random_uuid(),
  definition_id uuid not null references workflow.definition (id),
  key text not null,
  version int not null,
  business_key text,
  status text not null default 'running' check (status in ('running', 'completed', 'terminated')),
  variables jsonb not null default '{}',
  department text,
  started_by text not null,
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  -- a retried start with the same key returns the first instance
  idempotency_key text unique,
  -- a problem the engine cannot resolve on its own (a service task out of retries, no gateway flow)
  incident text
);
create index instance_key_status on workflow.instance (key, status, started_at desc);
create index instance_business_key on workflow.instance (business_key) where business_key is not null;
create index instance_started on workflow.instance (started_at desc);

create table workflow.token (
  id bigserial primary key,
  instance_id uuid not null references workflow.instance (id) on delete cascade,
  node_id text not null,
  -- waiting: at a user task, a service task or a parallel join
  state text not null check (state in ('waiting', 'done', 'cancelled')),
  created_at timestamptz not null default now(),
  ended_at timestamptz
);
create index token_live on workflow.token (instance_id, node_id) where state = 'waiting';

create table workflow.task (
  id uuid primary key default gen_random_uuid(),
  instance_id uuid not null references workflow.instance (id) on delete cascade,
  token_id bigint not null references workflow.token (id),
  node_id text not null,
  key text not null,
  name jsonb not null,
  department text,
  role text,
  person text,
  -- 会签: the position of this task in its countersign (null: an ordinary task)
  countersign_index int,
  status text not null default 'open' check (status in ('open', 'completed', 'cancelled')),
  outcome text,
  comment text,
  created_at timestamptz not null default now(),
  due_at timestamptz,
  remind_at timestamptz,
  reminded_at timestamptz,
  escalated_at timestamptz,
  escalated_to text,
  completed_at timestamptz,
  completed_by text,
  completed_by_name text
);
create index task_open_department on workflow.task (department, created_at) where status = 'open';
create index task_open_person on workflow.task (person, created_at) where status = 'open';
create index task_instance on workflow.task (instance_id, created_at);
create index task_token on workflow.task (token_id);
create index task_key_node on workflow.task (key, node_id, status);

create table workflow.event (
  id bigserial primary key,
  instance_id uuid not null references workflow.instance (id) on delete cascade,
  at timestamptz not null default now(),
  kind text not null,
  node_id text,
  task_id uuid,
  actor text,
  details jsonb
);
create index event_instance on workflow.event (instance_id, id);
