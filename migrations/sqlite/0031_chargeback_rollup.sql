-- Chargeback's usage per (cost centre, month), kept beside the lines it sums so the export
-- reads a few hundred rows instead of adding up every line's months. (migrations/postgres/
-- 0031_chargeback_rollup.sql holds the same schema, with row-level security.)

-- What chargeback sums changes with usage and with who holds a line in which cost centre:
-- `version` counts those changes (usage batches add to it in code; the triggers below count
-- the moves). The rollup is good while `chargeback_built` equals `version`; otherwise the
-- export sums the lines itself and the worker rebuilds the rollup.
CREATE TABLE report_versions (
    tenant_id         BLOB PRIMARY KEY REFERENCES tenants(id),
    version           INTEGER NOT NULL,
    chargeback_built  INTEGER
);

-- Usage charges (priced records plus overage) and data per cost centre the line's employee
-- has now (NULL: none) and month, across every month with usage.
CREATE TABLE chargeback_months (
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    month           TEXT NOT NULL,
    cost_centre_id  BLOB,
    cost_minor      INTEGER NOT NULL,
    data_bytes      INTEGER NOT NULL
);
CREATE INDEX chargeback_months_by_month ON chargeback_months (tenant_id, month);

CREATE TRIGGER employees_cost_centre_changed AFTER UPDATE OF cost_centre_id ON employees
WHEN OLD.cost_centre_id IS NOT NEW.cost_centre_id
BEGIN
    INSERT INTO report_versions (tenant_id, version) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = report_versions.version + 1;
END;

CREATE TRIGGER lines_employee_changed AFTER UPDATE OF employee_id ON lines
WHEN OLD.employee_id IS NOT NEW.employee_id
BEGIN
    INSERT INTO report_versions (tenant_id, version) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = report_versions.version + 1;
END;
