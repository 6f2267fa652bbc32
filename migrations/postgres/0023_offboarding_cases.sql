-- Leavers' lines in their grace period: one case per (leaver, line), opened when the leaver
-- is offboarded under the tenant's `grace` offboarding action. The case waits for the
-- leaver's manager to choose (keep for a successor, terminate now, release the number), is
-- reminded once, and takes the tenant's default at its deadline. `state`: open (waiting),
-- decided (a choice won; being carried out), done, failed. (migrations/sqlite/
-- 0023_offboarding_cases.sql holds the same schema.)
CREATE TABLE offboarding_cases (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id),
    employee_id     uuid NOT NULL,
    line_id         uuid NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'decided', 'done', 'failed')),
    -- Who is asked to choose: the leaver's nearest active manager (NULL: nobody, admins decide).
    asked_id        uuid,
    deadline_at     timestamptz NOT NULL,
    remind_at       timestamptz NOT NULL,
    announced_at    timestamptz,
    reminded_at     timestamptz,
    choice          text CHECK (choice IN ('keep', 'terminate', 'release', 'keep_suspended')),
    successor_id    uuid,
    chosen_by       text,
    chosen_at       timestamptz,
    -- true when nobody chose and the tenant's default was taken at the deadline.
    by_default      boolean NOT NULL DEFAULT false,
    -- The porting authorisation of a released number: {"msisdn", "code", "expires_at"}.
    porting         jsonb,
    failure_reason  text,
    -- Where the chat card went, as requests keep it: {"origin": …, "<platform>": {"cards": […]}}.
    chat_refs       jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    UNIQUE (tenant_id, employee_id, line_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, asked_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, successor_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX offboarding_cases_due ON offboarding_cases (state, deadline_at);
SELECT lineup_tenant_isolation('offboarding_cases');
