-- Several provider connections per tenant, plans and lines that record which connection they
-- belong to, and the tenant's routing rules for new orders.
-- (migrations/sqlite/0025_provider_routing.sql holds the same schema.)

-- A tenant may connect more than one account (vendors, or two accounts at one vendor). Each
-- has a label people see ("the carrier") and a position: the lowest is the primary, the one
-- orders go to when no routing rule says otherwise.
ALTER TABLE provider_connections DROP CONSTRAINT provider_connections_tenant_id_key;
ALTER TABLE provider_connections ADD COLUMN label text NOT NULL DEFAULT '1GLOBAL';
ALTER TABLE provider_connections ADD COLUMN position integer NOT NULL DEFAULT 0;
ALTER TABLE provider_connections ALTER COLUMN label DROP DEFAULT;
ALTER TABLE provider_connections ALTER COLUMN position DROP DEFAULT;
ALTER TABLE provider_connections ADD CONSTRAINT provider_connections_tenant_id_id_key
    UNIQUE (tenant_id, id);
ALTER TABLE provider_connections ADD CONSTRAINT provider_connections_tenant_id_label_key
    UNIQUE (tenant_id, label);

-- A plan belongs to the catalogue of one connection; NULL is the server-wide account's.
ALTER TABLE plans ADD COLUMN provider_connection_id uuid;
UPDATE plans SET provider_connection_id = c.id
    FROM provider_connections c WHERE c.tenant_id = plans.tenant_id;
ALTER TABLE plans DROP CONSTRAINT plans_tenant_id_provider_offering_id_key;
CREATE UNIQUE INDEX plans_catalogue_offering ON plans (tenant_id,
    COALESCE(provider_connection_id, '00000000-0000-0000-0000-000000000000'::uuid), offering_id);

-- The connection a line was ordered through; every later call for it goes there. NULL is the
-- server-wide account. Lines that exist already were ordered through the tenant's one
-- connection, if it had one.
ALTER TABLE lines ADD COLUMN provider_connection_id uuid;
UPDATE lines SET provider_connection_id = c.id
    FROM provider_connections c WHERE c.tenant_id = lines.tenant_id;

-- Which connection a new order goes to: the first rule (by position) whose conditions all
-- hold (NULL matches anything) names it; `allow_failover` lets an order move to the next
-- connection with an equivalent plan while this one's circuit is open.
CREATE TABLE provider_routes (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id),
    position                integer NOT NULL,
    country                 text,
    plan_kind               text CHECK (plan_kind IN ('monthly', 'travel')),
    team_id                 uuid,
    provider_connection_id  uuid NOT NULL,
    allow_failover          boolean NOT NULL,
    created_at              timestamptz NOT NULL,
    UNIQUE (tenant_id, position),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, provider_connection_id)
        REFERENCES provider_connections (tenant_id, id) ON DELETE CASCADE
);
SELECT lineup_tenant_isolation('provider_routes');
