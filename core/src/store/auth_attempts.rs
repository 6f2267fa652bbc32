//! Attempts at sign-in, sign-up and password resets, counted per key in the database so
//! every replica shares the same counters.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};

/// Count `key`'s attempts since `since` and, only when fewer than `max`, record one at `now`.
/// Returns the oldest counted attempt when the limit is reached (nothing is recorded then).
/// Atomic: PostgreSQL holds a per-key advisory lock for the rest of the transaction and
/// SQLite transactions here take the write lock at BEGIN, so parallel requests cannot all
/// see room for one more.
pub async fn reserve(
    tx: &mut Tx,
    key: &str,
    max: i64,
    since: OffsetDateTime,
    now: OffsetDateTime,
) -> StoreResult<Option<OffsetDateTime>> {
    if let Tx::Postgres(pg) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut **pg)
            .await?;
    }
    let (count, oldest): (i64, Option<OffsetDateTime>) = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT COUNT(*), MIN(attempted_at) FROM auth_attempts
             WHERE scope_key = $1 AND attempted_at > $2",
        )
        .bind(key)
        .bind(since)
        .fetch_one(conn)
        .await?
    });
    if count >= max {
        return Ok(Some(oldest.unwrap_or(now)));
    }
    on_tx!(tx, |conn| {
        sqlx::query("INSERT INTO auth_attempts (scope_key, attempted_at) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(conn)
            .await?;
    });
    Ok(None)
}

/// Forget `key`'s attempts (a successful sign-in clears its account's failures).
pub async fn clear(tx: &mut Tx, key: &str) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM auth_attempts WHERE scope_key = $1")
            .bind(key)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Drop attempts older than every window.
pub async fn prune(tx: &mut Tx, before: OffsetDateTime) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM auth_attempts WHERE attempted_at <= $1")
            .bind(before)
            .execute(conn)
            .await?
            .rows_affected()
    }))
}

/// How many attempts are kept in all (for tests and the flood benchmark).
pub async fn count(tx: &mut Tx) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM auth_attempts")
            .fetch_one(conn)
            .await?
    }))
}
