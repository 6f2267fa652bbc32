-- Pricing, spend per billing period, guardrail actions and the alert outbox.

-- Roaming prices per GB by zone ({"europe": 500, ...}); a plan's overage price already exists.
ALTER TABLE plans ADD COLUMN roaming_per_gb_minor jsonb NOT NULL DEFAULT '{}';

-- One row per line and billing period (YYYY-MM): the plan's price plus what usage added.
-- Who the line belonged to is copied in so team and cost-centre views need no joins.
-- A rollup written by usage ingest from the tenant's own lines, on every batch: no foreign
-- keys, whose per-row checks would dominate ingest (lines and people are never deleted).
CREATE TABLE line_spend (
    tenant_id         uuid NOT NULL,
    line_id           uuid NOT NULL,
    period            text NOT NULL,
    employee_id       uuid NOT NULL,
    team_id           uuid,
    cost_centre_id    uuid,
    plan_price_minor  bigint NOT NULL,
    bundle_bytes      bigint NOT NULL,
    roaming_bytes     bigint NOT NULL,
    overage_minor     bigint NOT NULL,
    roaming_minor     bigint NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, line_id, period)
) WITH (fillfactor = 70);  -- every batch updates its lines' rows: room for HOT updates
CREATE INDEX line_spend_period ON line_spend (tenant_id, period);

-- A raise of any scope's cap for one billing period, from a finance alert's button.
CREATE TABLE cap_period_raises (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    scope_kind    text NOT NULL CHECK (scope_kind IN ('tenant', 'cost_centre', 'team', 'employee')),
    scope_id      uuid,
    period        text NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    alert_id      uuid NOT NULL REFERENCES alerts(id) UNIQUE,
    created_at    timestamptz NOT NULL
);
CREATE INDEX cap_period_raises_scope ON cap_period_raises (tenant_id, period);

-- What a guardrail did to a line in a period, so rollover undoes exactly that and nothing
-- an admin did.
CREATE TABLE guardrail_actions (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    line_id     uuid NOT NULL REFERENCES lines(id),
    period      text NOT NULL,
    action      text NOT NULL CHECK (action IN ('suspend', 'throttle')),
    alert_id    uuid REFERENCES alerts(id),
    state       text NOT NULL CHECK (state IN ('pending', 'applied', 'failed', 'reverted')),
    error       text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, line_id, period, action)
);
CREATE INDEX guardrail_actions_state ON guardrail_actions (tenant_id, state, period);

-- The same trade-off for the usage tables ingest writes in bulk: their per-row foreign-key
-- checks (and row locks on the referenced line) cost more than the insert itself. Rows
-- are only ever written by ingest, for lines it has just looked up in the same tenant.
ALTER TABLE usage_records DROP CONSTRAINT usage_records_tenant_id_fkey;
ALTER TABLE usage_records DROP CONSTRAINT usage_records_line_id_fkey;
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_tenant_id_fkey;
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_line_id_fkey;

ALTER TABLE alerts ADD COLUMN employee_id uuid REFERENCES employees(id);
ALTER TABLE alerts ADD COLUMN snoozed_until timestamptz;
ALTER TABLE alerts ADD COLUMN delivered_at timestamptz;
ALTER TABLE alerts ADD COLUMN updated_at timestamptz;
CREATE INDEX alerts_listing ON alerts (tenant_id, state, period);
CREATE INDEX alerts_undelivered ON alerts (delivered_at, created_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['line_spend', 'cap_period_raises', 'guardrail_actions']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.system', true) = 'on')
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.system', true) = 'on')$p$, t);
    END LOOP;
END $$;
