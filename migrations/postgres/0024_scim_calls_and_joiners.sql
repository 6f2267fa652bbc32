-- The SCIM calls log and joiners. (migrations/sqlite/0024_scim_calls_and_joiners.sql holds
-- the same schema.)

-- The newest SCIM calls of each tenant, for Settings → Provisioning: when, with which token
-- (NULL: refused before a token was known), what was asked and how it went. The audit log
-- has only the changes a call made, not reads or refusals, hence a table of its own; the
-- store keeps the newest 100 per tenant.
CREATE TABLE scim_calls (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    at           timestamptz NOT NULL,
    token_name   text,
    method       text NOT NULL,
    path         text NOT NULL,
    status       integer NOT NULL,
    error        text
);
CREATE INDEX scim_calls_newest ON scim_calls (tenant_id, at);
SELECT lineup_tenant_isolation('scim_calls');

-- Joiner policies (Settings → Joiners): people joining who match the rule (a team, a cost
-- centre, or everyone when both are NULL) get a line on the plan, ordered ahead of their
-- start date. The most specific matching policy wins: team, then cost centre, then all.
CREATE TABLE joiner_policies (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    team_id         uuid,
    cost_centre_id  uuid,
    plan_id         uuid NOT NULL,
    created_at      timestamptz NOT NULL,
    CHECK (team_id IS NULL OR cost_centre_id IS NULL),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, cost_centre_id) REFERENCES cost_centres (tenant_id, id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id)
);
CREATE UNIQUE INDEX joiner_policies_rule ON joiner_policies (
    tenant_id,
    COALESCE(team_id, '00000000-0000-0000-0000-000000000000'::uuid),
    COALESCE(cost_centre_id, '00000000-0000-0000-0000-000000000000'::uuid));
SELECT lineup_tenant_isolation('joiner_policies');

-- People who joined while the tenant had a joiner policy, with their start date (NULL: they
-- get their line now), and where their joiner line is: 'waiting' (to be ordered the day
-- before the start date), 'ordered' (the line is requested; its eSIM goes out at 08:00 on
-- the start date), 'delivered', or 'skipped' (no policy matched them when it was time).
-- One row per employee: a repeated provisioning push finds it and orders nothing twice.
CREATE TABLE joiners (
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    employee_id   uuid NOT NULL,
    start_date    date,
    state         text NOT NULL,
    policy_id     uuid,
    line_id       uuid,
    ordered_at    timestamptz,
    delivered_at  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, employee_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX joiners_due ON joiners (tenant_id, state);
SELECT lineup_tenant_isolation('joiners');
