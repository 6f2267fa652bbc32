-- Each tenant may connect its own provider account; the server-wide PROVIDER_* account is
-- only for tenants an operator created (and every tenant that existed before this change).
-- (migrations/sqlite/0015_provider_connections.sql holds the same schema.)

ALTER TABLE tenants ADD COLUMN uses_server_provider boolean NOT NULL DEFAULT false;
UPDATE tenants SET uses_server_provider = true;

-- One connection per tenant. The client secret and the webhook signing secret are stored
-- sealed (`sealed:v1:` + base64); `version` grows on every replace so cached adapters
-- built from an older row are not reused.
CREATE TABLE provider_connections (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL UNIQUE REFERENCES tenants(id),
    provider             text NOT NULL,
    client_id            text NOT NULL,
    client_secret        text NOT NULL,
    account_id           text NOT NULL,
    webhook_secret       text NOT NULL,
    version              bigint NOT NULL,
    checked_at           timestamptz NOT NULL,
    created_at           timestamptz NOT NULL
);

ALTER TABLE provider_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE provider_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON provider_connections
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on')
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
           OR (SELECT current_setting('app.system', true)) = 'on');
