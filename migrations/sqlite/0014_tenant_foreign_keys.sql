-- Every reference from a tenant's row to another tenant-owned row names the tenant too:
-- FOREIGN KEY (tenant_id, x_id) REFERENCES parent (tenant_id, id), so the database itself
-- refuses another tenant's team, cost centre, employee, plan, line, request or alert id.
-- (migrations/postgres/0014_tenant_foreign_keys.sql holds the same constraints.)
--
-- SQLite cannot change a table's constraints, so every referencing table is rebuilt
-- (https://www.sqlite.org/lang_altertable.html#otheralter), keeping its columns in order, its
-- indexes and its other constraints exactly. sqlx runs this file in a transaction, where
-- PRAGMA foreign_keys cannot be switched off, so the keys stay enforced throughout. The
-- usual create-new-then-rename would leave every child row of a dropped parent counted as a
-- violation, so instead each table is copied aside, the tables are dropped children first
-- (a table nothing references any more is dropped without checks), then recreated under
-- their own names and refilled parents first, so every refilled row finds its parent.
-- Checks are deferred to COMMIT: SQLite counts violations, a report refilled before their
-- manager is cancelled out when the manager arrives, and the COMMIT fails only if a
-- reference really is broken, such as one already pointing at another tenant's row.
-- `INSERT … SELECT *` from the copies fails loudly if a table's columns ever differ.
PRAGMA defer_foreign_keys = ON;

-- The keys the composite references point at.
CREATE UNIQUE INDEX teams_tenant_id_id ON teams (tenant_id, id);
CREATE UNIQUE INDEX cost_centres_tenant_id_id ON cost_centres (tenant_id, id);
CREATE UNIQUE INDEX plans_tenant_id_id ON plans (tenant_id, id);

CREATE TABLE rebuild_employees AS SELECT * FROM employees;
CREATE TABLE rebuild_chat_identities AS SELECT * FROM chat_identities;
CREATE TABLE rebuild_lines AS SELECT * FROM lines;
CREATE TABLE rebuild_provider_operations AS SELECT * FROM provider_operations;
CREATE TABLE rebuild_requests AS SELECT * FROM requests;
CREATE TABLE rebuild_roaming_grants AS SELECT * FROM roaming_grants;
CREATE TABLE rebuild_usage_records AS SELECT * FROM usage_records;
CREATE TABLE rebuild_usage_daily AS SELECT * FROM usage_daily;
CREATE TABLE rebuild_usage_monthly AS SELECT * FROM usage_monthly;
CREATE TABLE rebuild_alerts AS SELECT * FROM alerts;
CREATE TABLE rebuild_cap_raises AS SELECT * FROM cap_raises;
CREATE TABLE rebuild_cap_period_raises AS SELECT * FROM cap_period_raises;
CREATE TABLE rebuild_guardrail_actions AS SELECT * FROM guardrail_actions;
CREATE TABLE rebuild_employee_notices AS SELECT * FROM employee_notices;

-- Dropping employees checks each row's reports (its own manager key); without an index led
-- by manager_id that is a scan of the table per row.
CREATE INDEX rebuild_employees_manager ON employees (manager_id);

DROP TABLE employee_notices;
DROP TABLE guardrail_actions;
DROP TABLE cap_period_raises;
DROP TABLE cap_raises;
DROP TABLE alerts;
DROP TABLE usage_monthly;
DROP TABLE usage_daily;
DROP TABLE usage_records;
DROP TABLE roaming_grants;
DROP TABLE requests;
DROP TABLE provider_operations;
DROP TABLE lines;
DROP TABLE chat_identities;
DROP TABLE employees;

CREATE TABLE employees (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    email           TEXT NOT NULL,
    given_name      TEXT NOT NULL,
    family_name     TEXT NOT NULL,
    team_id         BLOB,
    cost_centre_id  BLOB,
    manager_id      BLOB,
    status          TEXT NOT NULL CHECK (status IN ('active', 'offboarded')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (tenant_id, email),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, cost_centre_id) REFERENCES cost_centres (tenant_id, id),
    FOREIGN KEY (tenant_id, manager_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX employees_manager ON employees (tenant_id, manager_id);
CREATE UNIQUE INDEX employees_tenant_id_id ON employees (tenant_id, id);
INSERT INTO employees SELECT * FROM rebuild_employees;

CREATE TABLE chat_identities (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    employee_id  BLOB NOT NULL,
    platform     TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    external_id  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, platform, external_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
INSERT INTO chat_identities SELECT * FROM rebuild_chat_identities;

CREATE TABLE lines (
    id                        BLOB PRIMARY KEY,
    tenant_id                 BLOB NOT NULL REFERENCES tenants(id),
    employee_id               BLOB NOT NULL,
    plan_id                   BLOB NOT NULL,
    state                     TEXT NOT NULL CHECK (state IN
        ('requested', 'provisioning', 'ready', 'active', 'suspended', 'terminated', 'failed')),
    provider                  TEXT NOT NULL,
    provider_subscription_id  TEXT,
    iccid                     TEXT,
    activation_code           TEXT,
    failure_reason            TEXT,
    issue_key                 TEXT NOT NULL,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    UNIQUE (tenant_id, issue_key),
    UNIQUE (provider, provider_subscription_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id)
);
CREATE INDEX lines_employee ON lines (tenant_id, employee_id);
CREATE INDEX lines_state ON lines (tenant_id, state);
CREATE UNIQUE INDEX lines_tenant_id_id ON lines (tenant_id, id);
INSERT INTO lines SELECT * FROM rebuild_lines;

-- One row per provider write, created with its idempotency key before the call is made.
CREATE TABLE provider_operations (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants(id),
    line_id            BLOB NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN
        ('provision', 'suspend', 'resume', 'terminate', 'change_plan')),
    idempotency_key    TEXT NOT NULL UNIQUE,
    command_key        TEXT,
    payload            TEXT NOT NULL DEFAULT '{}',
    provider_order_id  TEXT,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    error              TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (tenant_id, command_key),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id)
);
-- A line has at most one provider write in flight.
CREATE UNIQUE INDEX provider_operations_one_pending ON provider_operations (line_id)
    WHERE status = 'pending';
INSERT INTO provider_operations SELECT * FROM rebuild_provider_operations;

CREATE TABLE requests (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL CHECK (kind IN
        ('new_line', 'cap_raise', 'roaming', 'plan_change', 'transfer')),
    employee_id   BLOB NOT NULL,
    line_id       BLOB,
    details       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN
        ('pending', 'approved', 'denied', 'expired', 'cancelled', 'fulfilled', 'failed')),
    approver_id   BLOB,
    decided_by    TEXT,
    decided_at    TEXT,
    decision_note TEXT,
    chat_refs     TEXT NOT NULL DEFAULT '{}',
    dedupe_key    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    route         TEXT NOT NULL DEFAULT 'manager'
        CHECK (route IN ('auto', 'manager', 'finance', 'admins')),
    escalations   INTEGER NOT NULL DEFAULT 0,
    reminded_at   TEXT,
    routed_at     TEXT,
    failure_reason TEXT,
    UNIQUE (tenant_id, dedupe_key),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, approver_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX requests_pending ON requests (tenant_id, state, expires_at);
CREATE UNIQUE INDEX requests_tenant_id_id ON requests (tenant_id, id);
INSERT INTO requests SELECT * FROM rebuild_requests;

CREATE TABLE roaming_grants (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    line_id     BLOB NOT NULL,
    country     TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL CHECK (ends_on >= starts_on),
    request_id  BLOB,
    state       TEXT NOT NULL CHECK (state IN ('scheduled', 'active', 'ended', 'revoked')),
    created_at  TEXT NOT NULL,
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id)
);
CREATE UNIQUE INDEX roaming_grants_request ON roaming_grants (request_id);
INSERT INTO roaming_grants SELECT * FROM rebuild_roaming_grants;

CREATE TABLE usage_records (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    dedupe_key     TEXT NOT NULL,
    line_id        BLOB NOT NULL,
    started_at     TEXT NOT NULL,
    ended_at       TEXT NOT NULL,
    data_bytes     INTEGER NOT NULL,
    sms            INTEGER NOT NULL,
    voice_seconds  INTEGER NOT NULL,
    country        TEXT,
    roaming        INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    observed_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id)
);
CREATE INDEX usage_records_roaming ON usage_records (tenant_id, line_id, started_at) WHERE roaming;
INSERT INTO usage_records SELECT * FROM rebuild_usage_records;

CREATE TABLE usage_daily (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    line_id        BLOB NOT NULL,
    day            TEXT NOT NULL,
    data_bytes     INTEGER NOT NULL,
    roaming_bytes  INTEGER NOT NULL,
    sms            INTEGER NOT NULL,
    voice_seconds  INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, line_id, day),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id)
);
CREATE INDEX usage_daily_day ON usage_daily (tenant_id, day);
INSERT INTO usage_daily SELECT * FROM rebuild_usage_daily;

CREATE TABLE usage_monthly (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    line_id        BLOB NOT NULL,
    month          TEXT NOT NULL CHECK (substr(month, 9, 2) = '01'),
    data_bytes     INTEGER NOT NULL,
    roaming_bytes  INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    -- The period's overage (priced on the period's total, so set, not added).
    overage_minor  INTEGER NOT NULL DEFAULT 0,
    last_active_day TEXT,
    PRIMARY KEY (tenant_id, line_id, month),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id)
);
CREATE INDEX usage_monthly_month ON usage_monthly (tenant_id, month, line_id, data_bytes, cost_minor,
    overage_minor, last_active_day);
INSERT INTO usage_monthly SELECT * FROM rebuild_usage_monthly;

CREATE TABLE alerts (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL,
    line_id        BLOB,
    scope          TEXT NOT NULL,
    period         TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL,
    message        TEXT NOT NULL,
    details        TEXT NOT NULL DEFAULT '{}',
    state          TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'snoozed', 'resolved')),
    created_at     TEXT NOT NULL,
    employee_id    BLOB,
    snoozed_until  TEXT,
    delivered_at   TEXT,
    updated_at     TEXT,
    UNIQUE (tenant_id, dedupe_key),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX alerts_listing ON alerts (tenant_id, state, period);
CREATE INDEX alerts_undelivered ON alerts (delivered_at, created_at);
CREATE UNIQUE INDEX alerts_tenant_id_id ON alerts (tenant_id, id);
INSERT INTO alerts SELECT * FROM rebuild_alerts;

-- A raise of one employee's monthly budget cap for one billing period (YYYY-MM).
CREATE TABLE cap_raises (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    employee_id   BLOB NOT NULL,
    period        TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    request_id    BLOB NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id)
);
CREATE INDEX cap_raises_employee ON cap_raises (tenant_id, employee_id, period);
INSERT INTO cap_raises SELECT * FROM rebuild_cap_raises;

-- A raise of any scope's cap for one billing period, from a finance alert's button.
CREATE TABLE cap_period_raises (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    scope_kind    TEXT NOT NULL CHECK (scope_kind IN ('tenant', 'cost_centre', 'team', 'employee')),
    scope_id      BLOB,
    period        TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    alert_id      BLOB NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id)
);
CREATE INDEX cap_period_raises_scope ON cap_period_raises (tenant_id, period);
INSERT INTO cap_period_raises SELECT * FROM rebuild_cap_period_raises;

-- What a guardrail did to a line in a period, so rollover undoes exactly that and nothing
-- an admin did.
CREATE TABLE guardrail_actions (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    line_id     BLOB NOT NULL,
    period      TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('suspend', 'throttle')),
    alert_id    BLOB,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'failed', 'reverted')),
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (tenant_id, line_id, period, action),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id)
);
CREATE INDEX guardrail_actions_state ON guardrail_actions (tenant_id, state, period);
INSERT INTO guardrail_actions SELECT * FROM rebuild_guardrail_actions;

CREATE TABLE employee_notices (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    employee_id      BLOB NOT NULL,
    dedupe_key       TEXT NOT NULL,
    message          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    UNIQUE (tenant_id, dedupe_key),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX employee_notices_due ON employee_notices (state, next_attempt_at);
INSERT INTO employee_notices SELECT * FROM rebuild_employee_notices;

DROP TABLE rebuild_employees;
DROP TABLE rebuild_chat_identities;
DROP TABLE rebuild_lines;
DROP TABLE rebuild_provider_operations;
DROP TABLE rebuild_requests;
DROP TABLE rebuild_roaming_grants;
DROP TABLE rebuild_usage_records;
DROP TABLE rebuild_usage_daily;
DROP TABLE rebuild_usage_monthly;
DROP TABLE rebuild_alerts;
DROP TABLE rebuild_cap_raises;
DROP TABLE rebuild_cap_period_raises;
DROP TABLE rebuild_guardrail_actions;
DROP TABLE rebuild_employee_notices;
