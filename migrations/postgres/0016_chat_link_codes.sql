-- One-time codes that link a chat workspace the platform authenticates for us (a Microsoft 365
-- tenant, named by the Bot Framework token of the activity that carries the code) to the
-- Lineup tenant whose admin made the code. Only the code's SHA-256 is kept; single use.
CREATE TABLE chat_link_codes (
    code_hash   text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    platform    text NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX chat_link_codes_tenant ON chat_link_codes (tenant_id, platform);

-- A code is redeemed before anyone knows its tenant, so redeeming runs as system work.
ALTER TABLE chat_link_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE chat_link_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chat_link_codes
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on')
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on');
