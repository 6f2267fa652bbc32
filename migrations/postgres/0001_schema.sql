-- Lineup schema, PostgreSQL flavour. migrations/sqlite/0001_schema.sql holds the same tables
-- and columns; a test compares the two.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL,
    currency    text NOT NULL CHECK (length(currency) = 3),
    settings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

CREATE TABLE tenant_domains (
    tenant_id           uuid NOT NULL REFERENCES tenants(id),
    domain              text NOT NULL UNIQUE,
    verification_token  text NOT NULL,
    verified_at         timestamptz,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL,
    password_hash  text,
    created_at     timestamptz NOT NULL
);

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    user_id     uuid NOT NULL REFERENCES users(id),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'finance', 'manager', 'viewer')),
    employee_id uuid,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE teams (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE cost_centres (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    code        text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, code)
);

CREATE TABLE employees (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    email           text NOT NULL,
    given_name      text NOT NULL,
    family_name     text NOT NULL,
    team_id         uuid REFERENCES teams(id),
    cost_centre_id  uuid REFERENCES cost_centres(id),
    manager_id      uuid REFERENCES employees(id),
    status          text NOT NULL CHECK (status IN ('active', 'offboarded')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX employees_manager ON employees (tenant_id, manager_id);

CREATE TABLE chat_identities (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    employee_id  uuid NOT NULL REFERENCES employees(id),
    platform     text NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    external_id  text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, platform, external_id)
);

CREATE TABLE plans (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id),
    provider                text NOT NULL,
    offering_id             text NOT NULL,
    template_id             text,
    name                    text NOT NULL,
    data_bytes              bigint,
    validity                jsonb NOT NULL,
    coverage                jsonb NOT NULL,
    price_minor             bigint,
    currency                text NOT NULL,
    overage_per_gb_minor    bigint,
    throttle_after_cap_kbps integer,
    active                  boolean NOT NULL,
    created_at              timestamptz NOT NULL,
    UNIQUE (tenant_id, provider, offering_id)
);

CREATE TABLE lines (
    id                        uuid PRIMARY KEY,
    tenant_id                 uuid NOT NULL REFERENCES tenants(id),
    employee_id               uuid NOT NULL REFERENCES employees(id),
    plan_id                   uuid NOT NULL REFERENCES plans(id),
    state                     text NOT NULL CHECK (state IN
        ('requested', 'provisioning', 'ready', 'active', 'suspended', 'terminated', 'failed')),
    provider                  text NOT NULL,
    provider_subscription_id  text,
    iccid                     text,
    activation_code           text,
    failure_reason            text,
    issue_key                 text NOT NULL,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    UNIQUE (tenant_id, issue_key),
    UNIQUE (provider, provider_subscription_id)
);
CREATE INDEX lines_employee ON lines (tenant_id, employee_id);
CREATE INDEX lines_state ON lines (tenant_id, state);

-- One row per provider write, created with its idempotency key before the call is made.
CREATE TABLE provider_operations (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id),
    line_id            uuid NOT NULL REFERENCES lines(id),
    kind               text NOT NULL CHECK (kind IN
        ('provision', 'suspend', 'resume', 'terminate', 'change_plan')),
    idempotency_key    text NOT NULL UNIQUE,
    command_key        text,
    payload            jsonb NOT NULL DEFAULT '{}',
    provider_order_id  text,
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    error              text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (tenant_id, command_key)
);
-- A line has at most one provider write in flight.
CREATE UNIQUE INDEX provider_operations_one_pending ON provider_operations (line_id)
    WHERE status = 'pending';

CREATE TABLE requests (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    kind          text NOT NULL CHECK (kind IN
        ('new_line', 'cap_raise', 'roaming', 'plan_change', 'transfer')),
    employee_id   uuid NOT NULL REFERENCES employees(id),
    line_id       uuid REFERENCES lines(id),
    details       jsonb NOT NULL,
    reason        text NOT NULL,
    state         text NOT NULL CHECK (state IN
        ('pending', 'approved', 'denied', 'expired', 'cancelled', 'fulfilled', 'failed')),
    approver_id   uuid REFERENCES employees(id),
    decided_by    text,
    decided_at    timestamptz,
    decision_note text,
    chat_refs     jsonb NOT NULL DEFAULT '{}',
    dedupe_key    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX requests_pending ON requests (tenant_id, state, expires_at);

CREATE TABLE budget_caps (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    scope_kind     text NOT NULL CHECK (scope_kind IN ('tenant', 'cost_centre', 'team', 'employee')),
    scope_id       uuid,
    amount_minor   bigint NOT NULL CHECK (amount_minor >= 0),
    thresholds     jsonb NOT NULL,
    action         text NOT NULL CHECK (action IN ('alert', 'throttle', 'suspend')),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, scope_kind, scope_id)
);

CREATE TABLE roaming_presets (
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    country     text NOT NULL CHECK (length(country) = 2),
    rule        text NOT NULL CHECK (rule IN ('allowed', 'needs_approval', 'blocked')),
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, country)
);

CREATE TABLE roaming_grants (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    line_id     uuid NOT NULL REFERENCES lines(id),
    country     text NOT NULL,
    starts_on   date NOT NULL,
    ends_on     date NOT NULL CHECK (ends_on >= starts_on),
    request_id  uuid REFERENCES requests(id),
    state       text NOT NULL CHECK (state IN ('scheduled', 'active', 'ended', 'revoked')),
    created_at  timestamptz NOT NULL
);

CREATE TABLE usage_records (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    dedupe_key     text NOT NULL,
    line_id        uuid NOT NULL REFERENCES lines(id),
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    data_bytes     bigint NOT NULL,
    sms            bigint NOT NULL,
    voice_seconds  bigint NOT NULL,
    country        text,
    roaming        boolean NOT NULL,
    cost_minor     bigint NOT NULL,
    observed_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key)
);
CREATE INDEX usage_records_line_time ON usage_records (tenant_id, line_id, started_at);

CREATE TABLE usage_daily (
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    line_id        uuid NOT NULL REFERENCES lines(id),
    day            date NOT NULL,
    data_bytes     bigint NOT NULL,
    roaming_bytes  bigint NOT NULL,
    sms            bigint NOT NULL,
    voice_seconds  bigint NOT NULL,
    cost_minor     bigint NOT NULL,
    PRIMARY KEY (tenant_id, line_id, day)
);
CREATE INDEX usage_daily_day ON usage_daily (tenant_id, day);

CREATE TABLE alerts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    kind        text NOT NULL,
    line_id     uuid REFERENCES lines(id),
    scope       text NOT NULL,
    period      text NOT NULL,
    dedupe_key  text NOT NULL,
    message     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL CHECK (state IN ('open', 'acknowledged', 'snoozed', 'resolved')),
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, dedupe_key)
);

-- Append-only: no UPDATE or DELETE is ever issued against this table.
CREATE TABLE audit_events (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    actor         text NOT NULL,
    action        text NOT NULL,
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    before        jsonb,
    after         jsonb,
    at            timestamptz NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (tenant_id, subject_type, subject_id, at);
CREATE INDEX audit_events_at ON audit_events (tenant_id, at);

CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants(id),
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    dedupe_key    text UNIQUE,
    state         text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    run_at        timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL,
    locked_by     text,
    locked_until  timestamptz,
    last_error    text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE chat_installations (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants(id),
    platform             text NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    workspace_id         text NOT NULL,
    bot_user_id          text,
    bot_token_encrypted  bytea,
    settings             jsonb NOT NULL DEFAULT '{}',
    installed_at         timestamptz NOT NULL,
    revoked_at           timestamptz,
    UNIQUE (platform, workspace_id)
);

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    name          text NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    role          text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- Second wall: every tenant-owned row is visible only inside a transaction scoped to its
-- tenant (app.tenant_id) or one explicitly opened for system work (app.system = 'on').
-- FORCE makes the policies apply to the table owner too; superusers still bypass them, so
-- the application must connect as an ordinary role (lineup warns at start-up otherwise).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_domains', 'memberships', 'teams', 'cost_centres',
        'employees', 'chat_identities', 'plans', 'lines', 'provider_operations', 'requests',
        'budget_caps', 'roaming_presets', 'roaming_grants', 'usage_records', 'usage_daily',
        'alerts', 'audit_events', 'jobs', 'chat_installations', 'api_tokens']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.system', true) = 'on')
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.system', true) = 'on')$p$, t);
    END LOOP;
END $$;
