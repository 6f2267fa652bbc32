-- Outgoing email (invites, password resets) through a durable outbox, and per-tenant OIDC
-- single sign-on with its short-lived login attempts.

-- An invite may name the employee record the new member is.
ALTER TABLE user_tokens ADD COLUMN employee_id BLOB;

CREATE TABLE outbound_emails (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_sealed      BLOB NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbound_emails_due ON outbound_emails (state, next_attempt_at);

CREATE TABLE sso_configs (
    tenant_id                BLOB PRIMARY KEY REFERENCES tenants(id),
    issuer                   TEXT NOT NULL,
    client_id                TEXT NOT NULL,
    client_secret_encrypted  BLOB NOT NULL,
    enabled                  INTEGER NOT NULL,
    updated_at               TEXT NOT NULL
);

CREATE TABLE sso_logins (
    state_hash     TEXT PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    browser_hash   TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    code_verifier  TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    next_path      TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
