-- Chargeback's usage per (cost centre, month), kept beside the lines it sums so the export
-- reads a few hundred rows instead of adding up every line's months. (migrations/sqlite/
-- 0031_chargeback_rollup.sql holds the same schema.)

-- What chargeback sums changes with usage and with who holds a line in which cost centre:
-- `version` counts those changes (usage batches add to it in code; the triggers below count
-- the moves). The rollup is good while `chargeback_built` equals `version`; otherwise the
-- export sums the lines itself and the worker rebuilds the rollup.
CREATE TABLE report_versions (
    tenant_id         uuid PRIMARY KEY REFERENCES tenants(id),
    version           bigint NOT NULL,
    chargeback_built  bigint
);
SELECT lineup_tenant_isolation('report_versions');

-- Usage charges (priced records plus overage) and data per cost centre the line's employee
-- has now (NULL: none) and month, across every month with usage.
CREATE TABLE chargeback_months (
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    month           date NOT NULL,
    cost_centre_id  uuid,
    cost_minor      bigint NOT NULL,
    data_bytes      bigint NOT NULL
);
CREATE INDEX chargeback_months_by_month ON chargeback_months (tenant_id, month);
SELECT lineup_tenant_isolation('chargeback_months');

CREATE FUNCTION lineup_chargeback_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO report_versions (tenant_id, version) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = report_versions.version + 1;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER employees_cost_centre_changed AFTER UPDATE OF cost_centre_id ON employees
FOR EACH ROW WHEN (OLD.cost_centre_id IS DISTINCT FROM NEW.cost_centre_id)
EXECUTE FUNCTION lineup_chargeback_changed();

CREATE TRIGGER lines_employee_changed AFTER UPDATE OF employee_id ON lines
FOR EACH ROW WHEN (OLD.employee_id IS DISTINCT FROM NEW.employee_id)
EXECUTE FUNCTION lineup_chargeback_changed();
