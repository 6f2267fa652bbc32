//! Inbound ids seen (chat platforms' event ids, request signatures, activity ids), each kept
//! until its expiry so every replica refuses to handle one twice. Not tenant-owned: system
//! transactions.

use time::OffsetDateTime;

use super::{Store, StoreResult, Tx, on_pool, on_tx};

/// Whole seconds: SQLite compares the RFC 3339 text, whose fraction is as long as it needs,
/// so only fraction-free values sort like the instants they are.
fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// Claim `key` until `expires_at`. True when it was not held (never offered, or its last
/// claim expired by `now`); false while an earlier claim lasts. One statement, its own
/// transaction (every chat request makes this claim first, so it is kept to one round trip),
/// so of two offering the same key at once exactly one gets true.
pub async fn first_time(
    store: &Store,
    key: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> StoreResult<bool> {
    let claimed: Option<String> = on_pool!(store, |conn| {
        sqlx::query_scalar(
            "INSERT INTO inbound_seen (key, expires_at) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
             WHERE inbound_seen.expires_at <= $3
             RETURNING key",
        )
        .bind(key)
        .bind(whole_seconds(expires_at))
        .bind(whole_seconds(now))
        .fetch_optional(conn)
        .await?
    });
    Ok(claimed.is_some())
}

/// Delete up to `limit` keys expired by `now`; returns how many went.
pub async fn prune(tx: &mut Tx, now: OffsetDateTime, limit: i64) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM inbound_seen WHERE key IN
                 (SELECT key FROM inbound_seen WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind(whole_seconds(now))
        .bind(limit)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

/// How many keys are kept, expired or not (for tests).
pub async fn count(tx: &mut Tx) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM inbound_seen")
            .fetch_one(conn)
            .await?
    }))
}
