-- Employee CSV imports: the uploaded file is kept between the preview and the commit, so the
-- commit re-validates exactly the file that was previewed. Rows expire; a committed import
-- cannot be committed again.

CREATE TABLE employee_imports (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    uploaded_by   TEXT NOT NULL,
    filename      TEXT NOT NULL,
    content       BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    committed_at  TEXT
);
CREATE INDEX employee_imports_expiry ON employee_imports (tenant_id, expires_at);
