-- Usage ingest writes every record once and reads records back only for roaming (new-country
-- checks and the what-if replay): index just the roaming ones, about one record in twenty,
-- instead of paying a random insert into a full (line, time) index for every record.
DROP INDEX usage_records_line_time;
CREATE INDEX usage_records_roaming ON usage_records (tenant_id, line_id, started_at) WHERE roaming;

-- Every batch adds to its (line, day) rows: leave room on each page so those updates stay on
-- the page and skip the indexes (HOT updates).
ALTER TABLE usage_daily SET (fillfactor = 80);
