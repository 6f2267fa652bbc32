-- Month charts of a whole tenant add their usage charges up from usage_tenant_daily (a row a
-- day) and need only the months' overage from usage_monthly: index just the line-months that
-- have any (few), instead of summing every line's month.
CREATE INDEX usage_monthly_overage ON usage_monthly (tenant_id, month, overage_minor)
    WHERE overage_minor <> 0;
