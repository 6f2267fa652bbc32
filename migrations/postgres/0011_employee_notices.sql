-- Direct messages to employees about their own lines and budgets (a guardrail suspended,
-- slowed or gave back their line; an alert about their line or budget), written in the same
-- transaction as the change and sent by the worker through the tenant's chat platform.
CREATE TABLE employee_notices (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    employee_id      uuid NOT NULL REFERENCES employees(id),
    -- Why it is sent; one notice per reason, so a re-run never tells anyone twice.
    dedupe_key       text NOT NULL,
    message          jsonb NOT NULL,
    state            text NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    locked_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX employee_notices_due ON employee_notices (state, next_attempt_at);

ALTER TABLE employee_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE employee_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON employee_notices
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on')
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on');
