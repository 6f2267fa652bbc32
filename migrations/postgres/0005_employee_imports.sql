-- Employee CSV imports: the uploaded file is kept between the preview and the commit, so the
-- commit re-validates exactly the file that was previewed. Rows expire; a committed import
-- cannot be committed again.

CREATE TABLE employee_imports (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    uploaded_by   text NOT NULL,
    filename      text NOT NULL,
    content       bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    committed_at  timestamptz
);
CREATE INDEX employee_imports_expiry ON employee_imports (tenant_id, expires_at);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['employee_imports']
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
