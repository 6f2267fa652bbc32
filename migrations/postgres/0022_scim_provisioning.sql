-- SCIM 2.0 provisioning: an identity provider (Okta, Entra ID, Rippling) pushes the tenant's
-- people and groups. (migrations/sqlite/0022_scim_provisioning.sql holds the same schema.)

-- Bearer tokens a tenant's admin creates for its identity provider. Only the SHA-256 of the
-- (32 random bytes) token is kept; it is shown once. A revoked token stays listed.
CREATE TABLE scim_tokens (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    name          text NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    created_by    uuid NOT NULL REFERENCES users(id),
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    UNIQUE (tenant_id, name)
);
SELECT lineup_tenant_isolation('scim_tokens');

-- What SCIM knows about an employee beyond the employee record: the userName when it is not
-- their email (NULL: it is), the provider's own id, the HR employee number, a version that grows on every SCIM write (the ETag), and whether
-- the provider deleted the user (offboarded, and no longer served over SCIM).
CREATE TABLE scim_users (
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    employee_id      uuid NOT NULL,
    user_name        text,
    external_id      text,
    employee_number  text,
    version          bigint NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (tenant_id, employee_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX scim_users_external_id ON scim_users (tenant_id, external_id);
SELECT lineup_tenant_isolation('scim_users');

-- The same for a team pushed as a SCIM group.
CREATE TABLE scim_groups (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    team_id      uuid NOT NULL,
    external_id  text,
    version      bigint NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (tenant_id, team_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
SELECT lineup_tenant_isolation('scim_groups');
