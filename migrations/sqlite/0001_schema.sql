-- Lineup schema, SQLite flavour. migrations/postgres/0001_schema.sql holds the same tables
-- and columns; a test compares the two.

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 2 AND 63),
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

CREATE TABLE tenant_domains (
    tenant_id           BLOB NOT NULL REFERENCES tenants(id),
    domain              TEXT NOT NULL UNIQUE,
    verification_token  TEXT NOT NULL,
    verified_at         TEXT,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT,
    created_at     TEXT NOT NULL
);

CREATE TABLE memberships (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    user_id     BLOB NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'finance', 'manager', 'viewer')),
    employee_id BLOB,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE teams (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE cost_centres (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, code)
);

CREATE TABLE employees (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    email           TEXT NOT NULL,
    given_name      TEXT NOT NULL,
    family_name     TEXT NOT NULL,
    team_id         BLOB REFERENCES teams(id),
    cost_centre_id  BLOB REFERENCES cost_centres(id),
    manager_id      BLOB REFERENCES employees(id),
    status          TEXT NOT NULL CHECK (status IN ('active', 'offboarded')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX employees_manager ON employees (tenant_id, manager_id);

CREATE TABLE chat_identities (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    employee_id  BLOB NOT NULL REFERENCES employees(id),
    platform     TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    external_id  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, platform, external_id)
);

CREATE TABLE plans (
    id                      BLOB PRIMARY KEY,
    tenant_id               BLOB NOT NULL REFERENCES tenants(id),
    provider                TEXT NOT NULL,
    offering_id             TEXT NOT NULL,
    template_id             TEXT,
    name                    TEXT NOT NULL,
    data_bytes              INTEGER,
    validity                TEXT NOT NULL,
    coverage                TEXT NOT NULL,
    price_minor             INTEGER,
    currency                TEXT NOT NULL,
    overage_per_gb_minor    INTEGER,
    throttle_after_cap_kbps INTEGER,
    active                  INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    UNIQUE (tenant_id, provider, offering_id)
);

CREATE TABLE lines (
    id                        BLOB PRIMARY KEY,
    tenant_id                 BLOB NOT NULL REFERENCES tenants(id),
    employee_id               BLOB NOT NULL REFERENCES employees(id),
    plan_id                   BLOB NOT NULL REFERENCES plans(id),
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
    UNIQUE (provider, provider_subscription_id)
);
CREATE INDEX lines_employee ON lines (tenant_id, employee_id);
CREATE INDEX lines_state ON lines (tenant_id, state);

-- One row per provider write, created with its idempotency key before the call is made.
CREATE TABLE provider_operations (
    id                 BLOB PRIMARY KEY,
    tenant_id          BLOB NOT NULL REFERENCES tenants(id),
    line_id            BLOB NOT NULL REFERENCES lines(id),
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
    UNIQUE (tenant_id, command_key)
);
-- A line has at most one provider write in flight.
CREATE UNIQUE INDEX provider_operations_one_pending ON provider_operations (line_id)
    WHERE status = 'pending';

CREATE TABLE requests (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL CHECK (kind IN
        ('new_line', 'cap_raise', 'roaming', 'plan_change', 'transfer')),
    employee_id   BLOB NOT NULL REFERENCES employees(id),
    line_id       BLOB REFERENCES lines(id),
    details       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN
        ('pending', 'approved', 'denied', 'expired', 'cancelled', 'fulfilled', 'failed')),
    approver_id   BLOB REFERENCES employees(id),
    decided_by    TEXT,
    decided_at    TEXT,
    decision_note TEXT,
    chat_refs     TEXT NOT NULL DEFAULT '{}',
    dedupe_key    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX requests_pending ON requests (tenant_id, state, expires_at);

CREATE TABLE budget_caps (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    scope_kind     TEXT NOT NULL CHECK (scope_kind IN ('tenant', 'cost_centre', 'team', 'employee')),
    scope_id       BLOB,
    amount_minor   INTEGER NOT NULL CHECK (amount_minor >= 0),
    thresholds     TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('alert', 'throttle', 'suspend')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (tenant_id, scope_kind, scope_id)
);

CREATE TABLE roaming_presets (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    country     TEXT NOT NULL CHECK (length(country) = 2),
    rule        TEXT NOT NULL CHECK (rule IN ('allowed', 'needs_approval', 'blocked')),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, country)
);

CREATE TABLE roaming_grants (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    line_id     BLOB NOT NULL REFERENCES lines(id),
    country     TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL CHECK (ends_on >= starts_on),
    request_id  BLOB REFERENCES requests(id),
    state       TEXT NOT NULL CHECK (state IN ('scheduled', 'active', 'ended', 'revoked')),
    created_at  TEXT NOT NULL
);

CREATE TABLE usage_records (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    dedupe_key     TEXT NOT NULL,
    line_id        BLOB NOT NULL REFERENCES lines(id),
    started_at     TEXT NOT NULL,
    ended_at       TEXT NOT NULL,
    data_bytes     INTEGER NOT NULL,
    sms            INTEGER NOT NULL,
    voice_seconds  INTEGER NOT NULL,
    country        TEXT,
    roaming        INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    observed_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key)
);
CREATE INDEX usage_records_line_time ON usage_records (tenant_id, line_id, started_at);

CREATE TABLE usage_daily (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    line_id        BLOB NOT NULL REFERENCES lines(id),
    day            TEXT NOT NULL,
    data_bytes     INTEGER NOT NULL,
    roaming_bytes  INTEGER NOT NULL,
    sms            INTEGER NOT NULL,
    voice_seconds  INTEGER NOT NULL,
    cost_minor     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, line_id, day)
);
CREATE INDEX usage_daily_day ON usage_daily (tenant_id, day);

CREATE TABLE alerts (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL,
    line_id     BLOB REFERENCES lines(id),
    scope       TEXT NOT NULL,
    period      TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    message     TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'snoozed', 'resolved')),
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);

-- Append-only: no UPDATE or DELETE is ever issued against this table.
CREATE TABLE audit_events (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    before        TEXT,
    after         TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (tenant_id, subject_type, subject_id, at);
CREATE INDEX audit_events_at ON audit_events (tenant_id, at);

CREATE TABLE jobs (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB REFERENCES tenants(id),
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    dedupe_key    TEXT UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    run_at        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    locked_by     TEXT,
    locked_until  TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE chat_installations (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    platform             TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    workspace_id         TEXT NOT NULL,
    bot_user_id          TEXT,
    bot_token_encrypted  BLOB,
    settings             TEXT NOT NULL DEFAULT '{}',
    installed_at         TEXT NOT NULL,
    revoked_at           TEXT,
    UNIQUE (platform, workspace_id)
);

CREATE TABLE api_tokens (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

