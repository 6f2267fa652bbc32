-- A cost-centre move or a line changing hands used to leave the chargeback rollup out of date
-- until the worker rebuilt it (up to 30 s), and chargeback summed every line meanwhile. Now,
-- while the rollup is current, the triggers move the lines' months from the old cost centre's
-- rows to the new one's in the same statement as the move, and it stays current.
-- (migrations/sqlite/0034_chargeback_rollup_follows_moves.sql does the same.)

-- How many line-months a row sums: a (cost centre, month) that no line counts any more is
-- left with zero, and chargeback skips it, as summing the lines would.
ALTER TABLE chargeback_months ADD COLUMN line_months bigint NOT NULL DEFAULT 0;
-- One row per (cost centre, month), so a move adds into it. Rows without a cost centre never
-- conflict (NULLs are distinct): a move to or from none adds rows, which chargeback sums.
DROP INDEX chargeback_months_by_month;
CREATE UNIQUE INDEX chargeback_months_key ON chargeback_months (tenant_id, month, cost_centre_id);
-- Rows built before have no line counts: build every rollup again. Every tenant's rows, so
-- this runs as system work (this transaction only): under row-level security the
-- application's ordinary role would otherwise see none of them.
SELECT set_config('app.system', 'on', true);
DELETE FROM chargeback_months;
UPDATE report_versions SET chargeback_built = NULL;

-- `version` still counts every change, and `chargeback_built` follows it while the rollup
-- was current, so a rebuild running meanwhile still ends out of date (see its code).
CREATE FUNCTION lineup_chargeback_counted(tenant uuid) RETURNS void
LANGUAGE sql AS $fn$
    INSERT INTO report_versions (tenant_id, version) VALUES (tenant, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET
        version = report_versions.version + 1,
        chargeback_built = CASE WHEN report_versions.chargeback_built = report_versions.version
            THEN report_versions.version + 1 ELSE report_versions.chargeback_built END;
$fn$;

-- Moves in one tenant take turns: a line transferred while its holder moves would otherwise
-- be counted by both (each reads the other's row as it was). After the lock, the trigger's
-- next statement reads what the earlier move committed. The usage rollup's version bump takes
-- the same row lock.
CREATE FUNCTION lineup_chargeback_lock(tenant uuid) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM 1 FROM report_versions WHERE tenant_id = tenant FOR UPDATE;
END
$fn$;

CREATE FUNCTION lineup_chargeback_employee_moved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM lineup_chargeback_lock(NEW.tenant_id);
    INSERT INTO chargeback_months (tenant_id, month, cost_centre_id, cost_minor, data_bytes,
        line_months)
    SELECT NEW.tenant_id, u.month, side.cost_centre_id,
           SUM(side.sign * (u.cost_minor + u.overage_minor))::bigint,
           SUM(side.sign * u.data_bytes)::bigint, SUM(side.sign)::bigint
    FROM lines l
    JOIN usage_monthly u ON u.tenant_id = l.tenant_id AND u.line_id = l.id
    CROSS JOIN (VALUES (OLD.cost_centre_id, -1), (NEW.cost_centre_id, 1))
        AS side (cost_centre_id, sign)
    WHERE l.tenant_id = NEW.tenant_id AND l.employee_id = NEW.id
      AND EXISTS (SELECT 1 FROM report_versions v
                  WHERE v.tenant_id = NEW.tenant_id AND v.chargeback_built = v.version)
    GROUP BY u.month, side.cost_centre_id
    ON CONFLICT (tenant_id, month, cost_centre_id) DO UPDATE SET
        cost_minor = chargeback_months.cost_minor + excluded.cost_minor,
        data_bytes = chargeback_months.data_bytes + excluded.data_bytes,
        line_months = chargeback_months.line_months + excluded.line_months;
    PERFORM lineup_chargeback_counted(NEW.tenant_id);
    RETURN NULL;
END
$fn$;

CREATE FUNCTION lineup_chargeback_line_moved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM lineup_chargeback_lock(NEW.tenant_id);
    INSERT INTO chargeback_months (tenant_id, month, cost_centre_id, cost_minor, data_bytes,
        line_months)
    SELECT NEW.tenant_id, u.month, side.cost_centre_id,
           SUM(side.sign * (u.cost_minor + u.overage_minor))::bigint,
           SUM(side.sign * u.data_bytes)::bigint, SUM(side.sign)::bigint
    FROM usage_monthly u
    CROSS JOIN (SELECT e.cost_centre_id, -1 AS sign FROM employees e
                WHERE e.tenant_id = NEW.tenant_id AND e.id = OLD.employee_id
                UNION ALL
                SELECT e.cost_centre_id, 1 FROM employees e
                WHERE e.tenant_id = NEW.tenant_id AND e.id = NEW.employee_id) side
    WHERE u.tenant_id = NEW.tenant_id AND u.line_id = NEW.id
      AND EXISTS (SELECT 1 FROM report_versions v
                  WHERE v.tenant_id = NEW.tenant_id AND v.chargeback_built = v.version)
    GROUP BY u.month, side.cost_centre_id
    ON CONFLICT (tenant_id, month, cost_centre_id) DO UPDATE SET
        cost_minor = chargeback_months.cost_minor + excluded.cost_minor,
        data_bytes = chargeback_months.data_bytes + excluded.data_bytes,
        line_months = chargeback_months.line_months + excluded.line_months;
    PERFORM lineup_chargeback_counted(NEW.tenant_id);
    RETURN NULL;
END
$fn$;

DROP TRIGGER employees_cost_centre_changed ON employees;
CREATE TRIGGER employees_cost_centre_changed AFTER UPDATE OF cost_centre_id ON employees
FOR EACH ROW WHEN (OLD.cost_centre_id IS DISTINCT FROM NEW.cost_centre_id)
EXECUTE FUNCTION lineup_chargeback_employee_moved();

DROP TRIGGER lines_employee_changed ON lines;
CREATE TRIGGER lines_employee_changed AFTER UPDATE OF employee_id ON lines
FOR EACH ROW WHEN (OLD.employee_id IS DISTINCT FROM NEW.employee_id)
EXECUTE FUNCTION lineup_chargeback_line_moved();

DROP FUNCTION lineup_chargeback_changed();
