-- Two-character queries (户籍, 社保: most Chinese words) give pg_trgm no trigram to look up: a stored
-- column of the text's character pairs, GIN-indexed, answers them (stored, so that a scan of the
-- table compares arrays instead of splitting every row's text again). The trigram indexes are
-- written through at once (fastupdate off): the catalog changes rarely, and rows waiting in a GIN
-- pending list push the planner to scan the table.
create function catalog.bigrams(t text) returns text[]
  language sql immutable strict parallel safe
  as $$ select coalesce(array_agg(distinct g), '{}') from (select substr(t, i, 2) as g from generate_series(1, length(t) - 1) i) s where g !~ '[[:space:]|]' $$;

alter table catalog.entry add column grams text[] generated always as (catalog.bigrams(search)) stored;
create index entry_grams on catalog.entry using gin (grams);
alter index catalog.entry_search_trgm set (fastupdate = off);
alter index catalog.entry_name_trgm set (fastupdate = off);
