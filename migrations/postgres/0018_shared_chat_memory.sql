-- What the chat adapters must remember across replicas behind one load balancer.

-- Inbound ids already handled, by scope: `slack_event:Ev123`, `slack_signature:…`,
-- `discord_signature:…`, `teams_activity:…`. A replica claims an id with one
-- INSERT … ON CONFLICT … DO UPDATE … WHERE expired, so of two replicas offered the same id at
-- once exactly one gets the row. Not tenant-owned and so without row-level security: the id
-- is checked before anyone knows which tenant the request is for (or whether it is genuine
-- beyond its signature), and the keys hold no tenant data.
CREATE TABLE inbound_seen (
    key         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX inbound_seen_expiry ON inbound_seen (expires_at);

-- Where a chat user can be reached: their 1:1 conversation with the bot (`direct`) and the
-- last conversation they were seen in (`seen`, enough to look them up). Learnt from inbound
-- activities on whichever replica received them; read by whichever replica sends.
CREATE TABLE chat_conversations (
    tenant_id        uuid NOT NULL REFERENCES tenants(id),
    platform         text NOT NULL CHECK (platform IN ('slack', 'teams', 'discord')),
    workspace_id     text NOT NULL,
    user_id          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('direct', 'seen')),
    conversation_id  text NOT NULL,
    learnt_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, platform, workspace_id, user_id, kind)
);
SELECT lineup_tenant_isolation('chat_conversations');
