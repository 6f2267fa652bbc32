-- Approval routing state on requests, period-scoped cap raises, chat identities by platform.

ALTER TABLE requests ADD COLUMN route TEXT NOT NULL DEFAULT 'manager'
    CHECK (route IN ('auto', 'manager', 'finance', 'admins'));
ALTER TABLE requests ADD COLUMN escalations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN reminded_at TEXT;
ALTER TABLE requests ADD COLUMN routed_at TEXT;
ALTER TABLE requests ADD COLUMN failure_reason TEXT;

-- A raise of one employee's monthly budget cap for one billing period (YYYY-MM).
CREATE TABLE cap_raises (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    employee_id   BLOB NOT NULL REFERENCES employees(id),
    period        TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    request_id    BLOB NOT NULL REFERENCES requests(id) UNIQUE,
    created_at    TEXT NOT NULL
);
CREATE INDEX cap_raises_employee ON cap_raises (tenant_id, employee_id, period);

CREATE UNIQUE INDEX roaming_grants_request ON roaming_grants (request_id);
