-- Portal sign-in: server-side sessions and single-use links (invites, password resets).
-- Only hashes of the secrets are stored.

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    user_id       BLOB NOT NULL REFERENCES users(id),
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE user_tokens (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('invite', 'password_reset')),
    email       TEXT NOT NULL,
    role        TEXT CHECK (role IN ('owner', 'admin', 'finance', 'manager', 'viewer')),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX user_tokens_email ON user_tokens (tenant_id, email);
