-- One-time codes that link a chat workspace the platform authenticates for us (a Microsoft 365
-- tenant, named by the Bot Framework token of the activity that carries the code) to the
-- Lineup tenant whose admin made the code. Only the code's SHA-256 is kept; single use.
CREATE TABLE chat_link_codes (
    code_hash   TEXT PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    platform    TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    created_by  BLOB NOT NULL REFERENCES users(id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX chat_link_codes_tenant ON chat_link_codes (tenant_id, platform);
