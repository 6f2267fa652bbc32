-- Portal sign-in: server-side sessions and single-use links (invites, password resets).
-- Only hashes of the secrets are stored.

CREATE TABLE sessions (
    token_hash    text PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    user_id       uuid NOT NULL REFERENCES users(id),
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE user_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    purpose     text NOT NULL CHECK (purpose IN ('invite', 'password_reset')),
    email       text NOT NULL,
    role        text CHECK (role IN ('owner', 'admin', 'finance', 'manager', 'viewer')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX user_tokens_email ON user_tokens (tenant_id, email);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sessions', 'user_tokens']
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
