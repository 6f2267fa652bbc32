-- Pricing, spend per billing period, guardrail actions and the alert outbox.

-- Roaming prices per GB by zone ({"europe": 500, ...}); a plan's overage price already exists.
ALTER TABLE plans ADD COLUMN roaming_per_gb_minor TEXT NOT NULL DEFAULT '{}';

-- One row per line and billing period (YYYY-MM): the plan's price plus what usage added.
-- Who the line belonged to is copied in so team and cost-centre views need no joins.
-- A rollup written by usage ingest from the tenant's own lines, on every batch: no foreign
-- keys, whose per-row checks would dominate ingest (lines and people are never deleted).
-- (PostgreSQL also drops them from usage_records and usage_daily; SQLite cannot drop a
-- constraint without rebuilding the table, and checks them cheaply.)
CREATE TABLE line_spend (
    tenant_id         BLOB NOT NULL,
    line_id           BLOB NOT NULL,
    period            TEXT NOT NULL,
    employee_id       BLOB NOT NULL,
    team_id           BLOB,
    cost_centre_id    BLOB,
    plan_price_minor  INTEGER NOT NULL,
    bundle_bytes      INTEGER NOT NULL,
    roaming_bytes     INTEGER NOT NULL,
    overage_minor     INTEGER NOT NULL,
    roaming_minor     INTEGER NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, line_id, period)
);
CREATE INDEX line_spend_period ON line_spend (tenant_id, period);

-- A raise of any scope's cap for one billing period, from a finance alert's button.
CREATE TABLE cap_period_raises (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    scope_kind    TEXT NOT NULL CHECK (scope_kind IN ('tenant', 'cost_centre', 'team', 'employee')),
    scope_id      BLOB,
    period        TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    alert_id      BLOB NOT NULL REFERENCES alerts(id) UNIQUE,
    created_at    TEXT NOT NULL
);
CREATE INDEX cap_period_raises_scope ON cap_period_raises (tenant_id, period);

-- What a guardrail did to a line in a period, so rollover undoes exactly that and nothing
-- an admin did.
CREATE TABLE guardrail_actions (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    line_id     BLOB NOT NULL REFERENCES lines(id),
    period      TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('suspend', 'throttle')),
    alert_id    BLOB REFERENCES alerts(id),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'failed', 'reverted')),
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (tenant_id, line_id, period, action)
);
CREATE INDEX guardrail_actions_state ON guardrail_actions (tenant_id, state, period);

ALTER TABLE alerts ADD COLUMN employee_id BLOB REFERENCES employees(id);
ALTER TABLE alerts ADD COLUMN snoozed_until TEXT;
ALTER TABLE alerts ADD COLUMN delivered_at TEXT;
ALTER TABLE alerts ADD COLUMN updated_at TEXT;
CREATE INDEX alerts_listing ON alerts (tenant_id, state, period);
CREATE INDEX alerts_undelivered ON alerts (delivered_at, created_at);
