-- Spend reports: usage per line per calendar month, kept in step with usage_daily by the
-- store (reports::add_monthly and set_monthly_overage, called with usage_daily's and line_spend's updates). Month views over a year of
-- usage read ~13 rows a line instead of ~400.

CREATE TABLE usage_monthly (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    line_id        uuid NOT NULL REFERENCES lines(id),
    month          date NOT NULL CHECK (extract(day FROM month) = 1),
    data_bytes     bigint NOT NULL,
    roaming_bytes  bigint NOT NULL,
    cost_minor     bigint NOT NULL,
    -- The period's overage (priced on the period's total, so set, not added).
    overage_minor  bigint NOT NULL DEFAULT 0,
    -- The month's last day with any data, texts or calls: "unused for 30 days" reads two
    -- months of this instead of a month of days per line.
    last_active_day date,
    PRIMARY KEY (tenant_id, line_id, month)
);
-- Dashboards aggregate one tenant's months: (tenant, month) first, the rest covering.
CREATE INDEX usage_monthly_month ON usage_monthly (tenant_id, month)
    INCLUDE (line_id, data_bytes, cost_minor, overage_minor, last_active_day);

-- The audit page lists one tenant's events newest first by their time-ordered ids.
CREATE INDEX audit_events_newest ON audit_events (tenant_id, id);

ALTER TABLE usage_monthly ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_monthly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_monthly
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           OR current_setting('app.system', true) = 'on')
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           OR current_setting('app.system', true) = 'on');

-- The backfill reads every tenant's days, so it runs as system work (this transaction only).
SELECT set_config('app.system', 'on', true);
INSERT INTO usage_monthly (tenant_id, line_id, month, data_bytes, roaming_bytes, cost_minor,
    last_active_day)
SELECT tenant_id, line_id, date_trunc('month', day)::date,
       SUM(data_bytes), SUM(roaming_bytes), SUM(cost_minor),
       MAX(CASE WHEN data_bytes > 0 OR sms > 0 OR voice_seconds > 0 THEN day END)
FROM usage_daily
GROUP BY tenant_id, line_id, date_trunc('month', day)::date;
