-- Dashboard day and week views of a whole tenant: usage per tenant per day, kept in step
-- with usage_daily by the store (reports::add_day_totals, called wherever add_monthly is).
-- 92 days of a 10,000-line tenant are 92 rows here instead of 920,000 in usage_daily.
CREATE TABLE usage_tenant_daily (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    day         TEXT NOT NULL,
    data_bytes  INTEGER NOT NULL,
    cost_minor  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

INSERT INTO usage_tenant_daily (tenant_id, day, data_bytes, cost_minor)
SELECT tenant_id, day, SUM(data_bytes), SUM(cost_minor)
FROM usage_daily
GROUP BY tenant_id, day;
