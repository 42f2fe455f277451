-- The message log in batches (docs/exchange.md, "Message log"): an append of several messages or
-- receipts (a published batch, an acknowledgement of many) is one entry whose digest is the Merkle
-- root of its items, kept here as [{ ref, digest, member?, at? }] (log.ts). Null: an entry of one
-- item, as before. Batch headers are stored once (exchange.batch), not in every message's proof.
alter table exchange.log_entry add column items jsonb;

-- A batch's (or bulk file's) signed header, once: key = SHA-256 of 'header' or 'bulk', a newline, the
-- header's JSON as received and, where the leaves are kept, a newline and 'leaves'. A message's proof
-- then holds the rest (index and path; a bulk record's line) and `batch` names the header; reading
-- puts it back ({ header | bulk, ... }), so consumers get the proof as published. A batch published
-- whole and in order keeps its leaves (the events' hashes, 32 bytes each) and its messages only their
-- index: the path is computed from the leaves when read. batch null: a proof without a shared header
-- (a signed request), stored whole.
create table exchange.batch (
  key char(64) collate "C" primary key,
  field text collate "C" not null check (field in ('header', 'bulk')),
  header jsonb not null,
  leaves bytea check (leaves is null or (field = 'header' and length(leaves) % 32 = 0)),
  created_at timestamptz not null default now()
);
alter table exchange.message add column batch char(64) collate "C";
