//! Inbound ids seen (chat platforms' event ids, request signatures, activity ids), each kept
//! until its expiry so every replica refuses to handle one twice. Not tenant-owned: system
//! transactions.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::{Store, StoreResult, Tx, on_pool, on_tx};

/// Whole seconds: SQLite compares the RFC 3339 text, whose fraction is as long as it needs,
/// so only fraction-free values sort like the instants they are.
fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// Claim `key` until `expires_at`. True when it was not held (never offered, or its last
/// claim expired by `now`); false while an earlier claim lasts. One statement, its own
/// transaction, so of two offering the same key at once exactly one gets true.
pub async fn first_time(
    store: &Store,
    key: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> StoreResult<bool> {
    Ok(!claim_many(store, &[(key, expires_at)], now)
        .await?
        .is_empty())
}

/// [`first_time`] for several distinct keys in one statement (every chat request makes a
/// claim first, so under load they are made together): the keys claimed now.
pub async fn claim_many(
    store: &Store,
    claims: &[(&str, OffsetDateTime)],
    now: OffsetDateTime,
) -> StoreResult<HashSet<String>> {
    if claims.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "INSERT INTO inbound_seen (key, expires_at) VALUES {}
         ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
         WHERE inbound_seen.expires_at <= ${}
         RETURNING key",
        super::values_placeholders(claims.len(), 2),
        claims.len() * 2 + 1
    );
    let claimed: Vec<String> = on_pool!(store, |conn| {
        let mut query = sqlx::query_scalar(&sql);
        for (key, expires_at) in claims {
            query = query.bind(*key).bind(whole_seconds(*expires_at));
        }
        query.bind(whole_seconds(now)).fetch_all(conn).await?
    });
    Ok(claimed.into_iter().collect())
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
