-- Several provider connections per tenant, plans and lines that record which connection they
-- belong to, and the tenant's routing rules for new orders.
-- (migrations/postgres/0025_provider_routing.sql holds the same schema, with row-level
-- security.)
--
-- SQLite cannot drop a table's UNIQUE constraint, so provider_connections and plans are
-- rebuilt the way 0014 rebuilt tables: copied aside, dropped, recreated and refilled, with
-- foreign key checks deferred to COMMIT (lines refer to plans; refilling plans restores every
-- reference before the checks run).
PRAGMA defer_foreign_keys = ON;

-- A tenant may connect more than one account (vendors, or two accounts at one vendor). Each
-- has a label people see ("the carrier") and a position: the lowest is the primary, the one
-- orders go to when no routing rule says otherwise.
CREATE TABLE rebuild_provider_connections AS SELECT * FROM provider_connections;
DROP TABLE provider_connections;
CREATE TABLE provider_connections (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    provider             TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret        TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    webhook_secret       TEXT NOT NULL,
    version              INTEGER NOT NULL,
    checked_at           TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    label                TEXT NOT NULL,
    position             INTEGER NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, label)
);
INSERT INTO provider_connections SELECT *, '1GLOBAL', 0 FROM rebuild_provider_connections;
DROP TABLE rebuild_provider_connections;

-- A plan belongs to the catalogue of one connection; NULL is the server-wide account's.
CREATE TABLE rebuild_plans AS SELECT * FROM plans;
DROP TABLE plans;
CREATE TABLE plans (
    id                      BLOB PRIMARY KEY,
    tenant_id               BLOB NOT NULL REFERENCES tenants(id),
    provider                TEXT NOT NULL,
    offering_id             TEXT NOT NULL,
    template_id             TEXT,
    name                    TEXT NOT NULL,
    data_bytes              INTEGER,
    validity                TEXT NOT NULL,
    coverage                TEXT NOT NULL,
    price_minor             INTEGER,
    currency                TEXT NOT NULL,
    overage_per_gb_minor    INTEGER,
    throttle_after_cap_kbps INTEGER,
    active                  INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    roaming_per_gb_minor    TEXT NOT NULL DEFAULT '{}',
    provider_connection_id  BLOB
);
CREATE UNIQUE INDEX plans_tenant_id_id ON plans (tenant_id, id);
CREATE UNIQUE INDEX plans_catalogue_offering
    ON plans (tenant_id, IFNULL(provider_connection_id, x''), offering_id);
INSERT INTO plans SELECT p.*,
    (SELECT c.id FROM provider_connections c WHERE c.tenant_id = p.tenant_id)
    FROM rebuild_plans p;
DROP TABLE rebuild_plans;

-- The connection a line was ordered through; every later call for it goes there. NULL is the
-- server-wide account. Lines that exist already were ordered through the tenant's one
-- connection, if it had one.
ALTER TABLE lines ADD COLUMN provider_connection_id BLOB;
UPDATE lines SET provider_connection_id =
    (SELECT c.id FROM provider_connections c WHERE c.tenant_id = lines.tenant_id);

-- Which connection a new order goes to: the first rule (by position) whose conditions all
-- hold (NULL matches anything) names it; `allow_failover` lets an order move to the next
-- connection with an equivalent plan while this one's circuit is open.
CREATE TABLE provider_routes (
    id                      BLOB PRIMARY KEY,
    tenant_id               BLOB NOT NULL REFERENCES tenants(id),
    position                INTEGER NOT NULL,
    country                 TEXT,
    plan_kind               TEXT CHECK (plan_kind IN ('monthly', 'travel')),
    team_id                 BLOB,
    provider_connection_id  BLOB NOT NULL,
    allow_failover          INTEGER NOT NULL,
    created_at              TEXT NOT NULL,
    UNIQUE (tenant_id, position),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, provider_connection_id)
        REFERENCES provider_connections (tenant_id, id) ON DELETE CASCADE
);
