-- Leavers' lines in their grace period: one case per (leaver, line), opened when the leaver
-- is offboarded under the tenant's `grace` offboarding action. The case waits for the
-- leaver's manager to choose (keep for a successor, terminate now, release the number), is
-- reminded once, and takes the tenant's default at its deadline. `state`: open (waiting),
-- decided (a choice won; being carried out), done, failed. (migrations/postgres/
-- 0023_offboarding_cases.sql holds the same schema, with row-level security.)
CREATE TABLE offboarding_cases (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    employee_id     BLOB NOT NULL,
    line_id         BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'decided', 'done', 'failed')),
    -- Who is asked to choose: the leaver's nearest active manager (NULL: nobody, admins decide).
    asked_id        BLOB,
    deadline_at     TEXT NOT NULL,
    remind_at       TEXT NOT NULL,
    announced_at    TEXT,
    reminded_at     TEXT,
    choice          TEXT CHECK (choice IN ('keep', 'terminate', 'release', 'keep_suspended')),
    successor_id    BLOB,
    chosen_by       TEXT,
    chosen_at       TEXT,
    -- 1 when nobody chose and the tenant's default was taken at the deadline.
    by_default      INTEGER NOT NULL DEFAULT 0,
    -- The porting authorisation of a released number: {"msisdn", "code", "expires_at"}.
    porting         TEXT,
    failure_reason  TEXT,
    -- Where the chat card went, as requests keep it: {"origin": …, "<platform>": {"cards": […]}}.
    chat_refs       TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    completed_at    TEXT,
    UNIQUE (tenant_id, employee_id, line_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, asked_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, successor_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX offboarding_cases_due ON offboarding_cases (state, deadline_at);
