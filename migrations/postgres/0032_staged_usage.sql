-- Usage is stored a page at a time and rolled up (days, months, periods, caps) several pages
-- at a time: the per-(line, month) work of a rollup costs the same for 10,000 records as for
-- 100,000, so small transactions no longer pay it each. A page's records and its row here
-- commit together; the rollup that counts them deletes the row in its own transaction. A
-- crash in between loses nothing: the worker rolls up rows left behind
-- (`Lineup::roll_up_staged_usage`). (migrations/sqlite/0032_staged_usage.sql holds the same
-- schema.)
CREATE TABLE usage_staged (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    id           uuid NOT NULL,
    -- The page's stored records (`usage_records` keys): what a rollup reads after a crash.
    dedupe_keys  text[] NOT NULL,
    staged_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT lineup_tenant_isolation('usage_staged');
