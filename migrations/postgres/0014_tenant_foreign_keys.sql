-- Every reference from a tenant's row to another tenant-owned row names the tenant too:
-- FOREIGN KEY (tenant_id, x_id) REFERENCES parent (tenant_id, id), so the database itself
-- refuses another tenant's team, cost centre, employee, plan, line, request or alert id.
-- Row-level security does not stop this on its own: foreign-key checks see every tenant's
-- rows. Each constraint keeps its name and its (default, NO ACTION) delete rule; a null
-- reference (no team, no manager) is still allowed, as a composite key with a null column
-- is not checked. Adding them validates the existing rows, so a reference that already
-- crosses tenants fails this migration, naming the row, and nothing changes.
-- usage_records and usage_daily keep no foreign keys here (see 0003_spend_guardrails.sql).

-- The check of existing rows reads them through row-level security (which the table owner
-- is forced to obey): as system work it sees every tenant's rows, otherwise none and it
-- would pass whatever is there (this transaction only).
SELECT set_config('app.system', 'on', true);

-- The keys the composite references point at.
ALTER TABLE teams ADD CONSTRAINT teams_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE cost_centres ADD CONSTRAINT cost_centres_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE employees ADD CONSTRAINT employees_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE plans ADD CONSTRAINT plans_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE lines ADD CONSTRAINT lines_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE requests ADD CONSTRAINT requests_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE alerts ADD CONSTRAINT alerts_tenant_id_id_key UNIQUE (tenant_id, id);

ALTER TABLE employees
    DROP CONSTRAINT employees_team_id_fkey,
    DROP CONSTRAINT employees_cost_centre_id_fkey,
    DROP CONSTRAINT employees_manager_id_fkey;
ALTER TABLE employees
    ADD CONSTRAINT employees_team_id_fkey
        FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    ADD CONSTRAINT employees_cost_centre_id_fkey
        FOREIGN KEY (tenant_id, cost_centre_id) REFERENCES cost_centres (tenant_id, id),
    ADD CONSTRAINT employees_manager_id_fkey
        FOREIGN KEY (tenant_id, manager_id) REFERENCES employees (tenant_id, id);

ALTER TABLE chat_identities DROP CONSTRAINT chat_identities_employee_id_fkey;
ALTER TABLE chat_identities
    ADD CONSTRAINT chat_identities_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id);

ALTER TABLE lines
    DROP CONSTRAINT lines_employee_id_fkey,
    DROP CONSTRAINT lines_plan_id_fkey;
ALTER TABLE lines
    ADD CONSTRAINT lines_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    ADD CONSTRAINT lines_plan_id_fkey
        FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id);

ALTER TABLE provider_operations DROP CONSTRAINT provider_operations_line_id_fkey;
ALTER TABLE provider_operations
    ADD CONSTRAINT provider_operations_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id);

ALTER TABLE requests
    DROP CONSTRAINT requests_employee_id_fkey,
    DROP CONSTRAINT requests_line_id_fkey,
    DROP CONSTRAINT requests_approver_id_fkey;
ALTER TABLE requests
    ADD CONSTRAINT requests_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    ADD CONSTRAINT requests_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    ADD CONSTRAINT requests_approver_id_fkey
        FOREIGN KEY (tenant_id, approver_id) REFERENCES employees (tenant_id, id);

ALTER TABLE roaming_grants
    DROP CONSTRAINT roaming_grants_line_id_fkey,
    DROP CONSTRAINT roaming_grants_request_id_fkey;
ALTER TABLE roaming_grants
    ADD CONSTRAINT roaming_grants_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    ADD CONSTRAINT roaming_grants_request_id_fkey
        FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id);

ALTER TABLE usage_monthly DROP CONSTRAINT usage_monthly_line_id_fkey;
ALTER TABLE usage_monthly
    ADD CONSTRAINT usage_monthly_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id);

ALTER TABLE alerts
    DROP CONSTRAINT alerts_line_id_fkey,
    DROP CONSTRAINT alerts_employee_id_fkey;
ALTER TABLE alerts
    ADD CONSTRAINT alerts_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    ADD CONSTRAINT alerts_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id);

ALTER TABLE cap_raises
    DROP CONSTRAINT cap_raises_employee_id_fkey,
    DROP CONSTRAINT cap_raises_request_id_fkey;
ALTER TABLE cap_raises
    ADD CONSTRAINT cap_raises_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    ADD CONSTRAINT cap_raises_request_id_fkey
        FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id);

ALTER TABLE cap_period_raises DROP CONSTRAINT cap_period_raises_alert_id_fkey;
ALTER TABLE cap_period_raises
    ADD CONSTRAINT cap_period_raises_alert_id_fkey
        FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id);

ALTER TABLE guardrail_actions
    DROP CONSTRAINT guardrail_actions_line_id_fkey,
    DROP CONSTRAINT guardrail_actions_alert_id_fkey;
ALTER TABLE guardrail_actions
    ADD CONSTRAINT guardrail_actions_line_id_fkey
        FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    ADD CONSTRAINT guardrail_actions_alert_id_fkey
        FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id);

ALTER TABLE employee_notices DROP CONSTRAINT employee_notices_employee_id_fkey;
ALTER TABLE employee_notices
    ADD CONSTRAINT employee_notices_employee_id_fkey
        FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id);
