-- Sign-in security: attempt counters shared by every replica, and verified email addresses.

-- Sign-in, sign-up and reset attempts per key ("email:<tenant>:<address>", "ip:<address>",
-- …), counted within a sliding window; rows older than the longest window are pruned.
CREATE TABLE auth_attempts (
    id            bigserial PRIMARY KEY,
    scope_key     text NOT NULL,
    attempted_at  timestamptz NOT NULL
);
CREATE INDEX auth_attempts_key ON auth_attempts (scope_key, attempted_at);
CREATE INDEX auth_attempts_age ON auth_attempts (attempted_at);

-- An account signs in only once its owner has shown they read its mailbox. Accounts made
-- before this (by sign-up, invite or an admin) count as verified.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;

-- Single-use links that confirm a new account's address (only the token's hash is kept).
CREATE TABLE email_verifications (
    token_hash  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
