-- SCIM 2.0 provisioning: an identity provider (Okta, Entra ID, Rippling) pushes the tenant's
-- people and groups. (migrations/postgres/0022_scim_provisioning.sql holds the same schema,
-- with row-level security.)

-- Bearer tokens a tenant's admin creates for its identity provider. Only the SHA-256 of the
-- (32 random bytes) token is kept; it is shown once. A revoked token stays listed.
CREATE TABLE scim_tokens (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_by    BLOB NOT NULL REFERENCES users(id),
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT,
    UNIQUE (tenant_id, name)
);

-- What SCIM knows about an employee beyond the employee record: the userName when it is not
-- their email (NULL: it is), the provider's own id, the HR employee number, a version that grows on every SCIM write (the ETag), and whether
-- the provider deleted the user (offboarded, and no longer served over SCIM).
CREATE TABLE scim_users (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    employee_id      BLOB NOT NULL,
    user_name        TEXT,
    external_id      TEXT,
    employee_number  TEXT,
    version          INTEGER NOT NULL,
    deleted_at       TEXT,
    PRIMARY KEY (tenant_id, employee_id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id)
);
CREATE INDEX scim_users_external_id ON scim_users (tenant_id, external_id);

-- The same for a team pushed as a SCIM group.
CREATE TABLE scim_groups (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    team_id      BLOB NOT NULL,
    external_id  TEXT,
    version      INTEGER NOT NULL,
    deleted_at   TEXT,
    PRIMARY KEY (tenant_id, team_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
