-- The SCIM calls log and joiners. (migrations/postgres/0024_scim_calls_and_joiners.sql holds
-- the same schema, with row-level security.)

-- The newest SCIM calls of each tenant, for Settings → Provisioning: when, with which token
-- (NULL: refused before a token was known), what was asked and how it went. The audit log
-- has only the changes a call made, not reads or refusals, hence a table of its own; the
-- store keeps the newest 100 per tenant.
CREATE TABLE scim_calls (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    at           TEXT NOT NULL,
    token_name   TEXT,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    error        TEXT
);
CREATE INDEX scim_calls_newest ON scim_calls (tenant_id, at);

-- Joiner policies (Settings → Joiners): people joining who match the rule (a team, a cost
-- centre, or everyone when both are NULL) get a line on the plan, ordered ahead of their
-- start date. The most specific matching policy wins: team, then cost centre, then all.
CREATE TABLE joiner_policies (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    team_id         BLOB,
    cost_centre_id  BLOB,
    plan_id         BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    CHECK (team_id IS NULL OR cost_centre_id IS NULL),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, cost_centre_id) REFERENCES cost_centres (tenant_id, id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id)
);
CREATE UNIQUE INDEX joiner_policies_rule ON joiner_policies (
    tenant_id, COALESCE(team_id, X''), COALESCE(cost_centre_id, X''));

-- People who joined while the tenant had a joiner policy, with their start date (NULL: they
-- get their line now), and where their joiner line is: 'waiting' (to be ordered the day
-- before the start date), 'ordered' (the line is requested; its eSIM goes out at 08:00 on
-- the start date), 'delivered', or 'skipped' (no policy matched them when it was time).
-- One row per employee: a repeated provisioning push finds it and orders nothing twice.
CREATE TABLE joiners (
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    employee_id   BLOB NOT NULL,
    start_date    TEXT,
    state         TEXT NOT NULL,
    policy_id     BLOB,
    line_id       BLOB,
    ordered_at    TEXT,
    delivered_at  TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, employee_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX joiners_due ON joiners (tenant_id, state);
