-- Movers: people whose manager, team or cost centre changes. (migrations/postgres/
-- 0027_movers.sql holds the same schema, with row-level security.)

-- Every change of an employee's cost centre, effective from a day. Spend is charged back to
-- the cost centre the employee had on the day it was spent: before the earliest move after
-- that day, the move's `from`; with no later move, their cost centre now. Employees who
-- never moved need no row.
CREATE TABLE cost_centre_moves (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    employee_id          BLOB NOT NULL,
    from_cost_centre_id  BLOB,
    to_cost_centre_id    BLOB,
    effective_on         TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, from_cost_centre_id) REFERENCES cost_centres (tenant_id, id),
    FOREIGN KEY (tenant_id, to_cost_centre_id) REFERENCES cost_centres (tenant_id, id)
);
CREATE INDEX cost_centre_moves_by_day ON cost_centre_moves (tenant_id, effective_on);

-- Pending requests moved to a new approver because the requester's manager changed, not yet
-- told in chat (the approval sweep updates the old cards and posts the new ones).
CREATE TABLE request_reroutes (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    request_id     BLOB NOT NULL,
    from_approver  BLOB,
    at             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, request_id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id)
);
