-- Usage is stored a page at a time and rolled up (days, months, periods, caps) several pages
-- at a time: the per-(line, month) work of a rollup costs the same for 10,000 records as for
-- 100,000, so small transactions no longer pay it each. A page's records and its row here
-- commit together; the rollup that counts them deletes the row in its own transaction. A
-- crash in between loses nothing: the worker rolls up rows left behind
-- (`Lineup::roll_up_staged_usage`). (migrations/postgres/0032_staged_usage.sql holds the
-- same schema, with row-level security.)
CREATE TABLE usage_staged (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    id           BLOB NOT NULL,
    -- The page's stored records (`usage_records` keys, a JSON array): what a rollup reads
    -- after a crash.
    dedupe_keys  TEXT NOT NULL,
    staged_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
