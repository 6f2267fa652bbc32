-- Direct messages to employees about their own lines and budgets, sent by the worker through
-- the tenant's chat platform (see the PostgreSQL migration).
CREATE TABLE employee_notices (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    employee_id      BLOB NOT NULL REFERENCES employees(id),
    dedupe_key       TEXT NOT NULL,
    message          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX employee_notices_due ON employee_notices (state, next_attempt_at);
