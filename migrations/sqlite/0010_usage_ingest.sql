-- Records are read back only for roaming (new-country checks and the what-if replay): index
-- just those, so ingest does not maintain a full (line, time) index for every record.
DROP INDEX usage_records_line_time;
CREATE INDEX usage_records_roaming ON usage_records (tenant_id, line_id, started_at) WHERE roaming;
