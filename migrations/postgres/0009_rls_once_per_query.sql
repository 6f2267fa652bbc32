-- Row-level security read the tenant setting once per row; wrapped in a sub-select, PostgreSQL
-- evaluates it once per query (an init plan), which matters for reports over millions of rows.
-- Same rule as before: a transaction sees its own tenant's rows, or all of them for system work.
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_policies
             WHERE schemaname = current_schema() AND policyname = 'tenant_isolation'
    LOOP
        EXECUTE format('DROP POLICY tenant_isolation ON %I', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
                   OR (SELECT current_setting('app.system', true)) = 'on')
            WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
                   OR (SELECT current_setting('app.system', true)) = 'on')$p$, t);
    END LOOP;
END $$;
