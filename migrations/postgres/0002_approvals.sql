-- Approval routing state on requests, period-scoped cap raises, chat identities by platform.

ALTER TABLE requests ADD COLUMN route text NOT NULL DEFAULT 'manager'
    CHECK (route IN ('auto', 'manager', 'finance', 'admins'));
ALTER TABLE requests ADD COLUMN escalations integer NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN reminded_at timestamptz;
ALTER TABLE requests ADD COLUMN routed_at timestamptz;
ALTER TABLE requests ADD COLUMN failure_reason text;

-- A raise of one employee's monthly budget cap for one billing period (YYYY-MM).
CREATE TABLE cap_raises (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    employee_id   uuid NOT NULL REFERENCES employees(id),
    period        text NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    request_id    uuid NOT NULL REFERENCES requests(id) UNIQUE,
    created_at    timestamptz NOT NULL
);
CREATE INDEX cap_raises_employee ON cap_raises (tenant_id, employee_id, period);

ALTER TABLE cap_raises ENABLE ROW LEVEL SECURITY;
ALTER TABLE cap_raises FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cap_raises
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           OR current_setting('app.system', true) = 'on')
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
           OR current_setting('app.system', true) = 'on');

CREATE UNIQUE INDEX roaming_grants_request ON roaming_grants (request_id);
