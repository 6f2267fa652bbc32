-- Row-level security written once. A table that holds tenants' rows calls
--     SELECT lineup_tenant_isolation('the_table');
-- in the migration that creates it, instead of spelling the policy out. This migration
-- re-applies it to every table that already had the policy, so all policies come from this
-- one definition. (migrations/sqlite/0017 is its no-op twin: SQLite has no row-level
-- security.)
--
-- The rule (the second wall behind every query's `WHERE tenant_id`): a transaction sees and
-- writes only the rows of its tenant (app.tenant_id), or every row when it was opened for
-- system work (app.system = 'on'). FORCE applies it to the table's owner too; superusers
-- still bypass it, so the application connects as an ordinary role. Each setting is read in
-- a sub-select, so PostgreSQL evaluates it once per query rather than once per row.
CREATE OR REPLACE FUNCTION lineup_tenant_isolation(target regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', target);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
        USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
               OR (SELECT current_setting('app.system', true)) = 'on')
        WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
               OR (SELECT current_setting('app.system', true)) = 'on')$p$, target);
END
$fn$;

DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_policies
             WHERE schemaname = current_schema() AND policyname = 'tenant_isolation'
             ORDER BY tablename
    LOOP
        PERFORM lineup_tenant_isolation(format('%I', t)::regclass);
    END LOOP;
END $$;
