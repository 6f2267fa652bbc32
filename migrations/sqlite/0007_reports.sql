-- Spend reports: usage per line per calendar month, kept in step with usage_daily by the
-- store (reports::add_monthly and set_monthly_overage, called with usage_daily's and line_spend's updates). Month views over a year of
-- usage read ~13 rows a line instead of ~400.

CREATE TABLE usage_monthly (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    line_id        BLOB NOT NULL REFERENCES lines(id),
    month          TEXT NOT NULL CHECK (substr(month, 9, 2) = '01'),
    data_bytes     INTEGER NOT NULL,
    roaming_bytes  INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    -- The period's overage (priced on the period's total, so set, not added).
    overage_minor  INTEGER NOT NULL DEFAULT 0,
    last_active_day TEXT,
    PRIMARY KEY (tenant_id, line_id, month)
);
CREATE INDEX usage_monthly_month ON usage_monthly (tenant_id, month, line_id, data_bytes, cost_minor,
    overage_minor, last_active_day);

CREATE INDEX audit_events_newest ON audit_events (tenant_id, id);

INSERT INTO usage_monthly (tenant_id, line_id, month, data_bytes, roaming_bytes, cost_minor,
    last_active_day)
SELECT tenant_id, line_id, substr(day, 1, 7) || '-01',
       SUM(data_bytes), SUM(roaming_bytes), SUM(cost_minor),
       MAX(CASE WHEN data_bytes > 0 OR sms > 0 OR voice_seconds > 0 THEN day END)
FROM usage_daily
GROUP BY tenant_id, line_id, substr(day, 1, 7);
