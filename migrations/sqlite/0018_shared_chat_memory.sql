-- What the chat adapters must remember across replicas (see postgres/0018 for the why; SQLite
-- serves one process, but keeps the same tables so both backends run the same code).
CREATE TABLE inbound_seen (
    key         TEXT PRIMARY KEY,
    expires_at  TEXT NOT NULL
);
CREATE INDEX inbound_seen_expiry ON inbound_seen (expires_at);

CREATE TABLE chat_conversations (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    platform         TEXT NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    workspace_id     TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'seen')),
    conversation_id  TEXT NOT NULL,
    learnt_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, platform, workspace_id, user_id, kind)
);
