-- Each tenant may connect its own provider account; the server-wide PROVIDER_* account is
-- only for tenants an operator created (and every tenant that existed before this change).
-- (migrations/postgres/0015_provider_connections.sql holds the same schema.)

ALTER TABLE tenants ADD COLUMN uses_server_provider INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET uses_server_provider = 1;

-- One connection per tenant. The client secret and the webhook signing secret are stored
-- sealed (`sealed:v1:` + base64); `version` grows on every replace so cached adapters
-- built from an older row are not reused.
CREATE TABLE provider_connections (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL UNIQUE REFERENCES tenants(id),
    provider             TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret        TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    webhook_secret       TEXT NOT NULL,
    version              INTEGER NOT NULL,
    checked_at           TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
