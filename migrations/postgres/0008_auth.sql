-- Outgoing email (invites, password resets) through a durable outbox, and per-tenant OIDC
-- single sign-on with its short-lived login attempts.

-- An invite may name the employee record the new member is.
ALTER TABLE user_tokens ADD COLUMN employee_id uuid;

CREATE TABLE outbound_emails (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    recipient        text NOT NULL,
    subject          text NOT NULL,
    body_sealed      bytea NOT NULL,
    state            text NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    locked_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX outbound_emails_due ON outbound_emails (state, next_attempt_at);

CREATE TABLE sso_configs (
    tenant_id                uuid PRIMARY KEY REFERENCES tenants(id),
    issuer                   text NOT NULL,
    client_id                text NOT NULL,
    client_secret_encrypted  bytea NOT NULL,
    enabled                  boolean NOT NULL,
    updated_at               timestamptz NOT NULL
);

CREATE TABLE sso_logins (
    state_hash     text PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    browser_hash   text NOT NULL,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    redirect_uri   text NOT NULL,
    next_path      text NOT NULL,
    expires_at     timestamptz NOT NULL
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['outbound_emails', 'sso_configs', 'sso_logins']
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
