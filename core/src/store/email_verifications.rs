//! Links that confirm a new account's email address: only the SHA-256 of the token is kept.
//! Accounts are global (not a tenant's), so these are too.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::UserId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailVerificationRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

pub async fn insert(tx: &mut Tx, row: &EmailVerificationRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO email_verifications (token_hash, user_id, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.token_hash)
        .bind(row.user_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.used_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn find(tx: &mut Tx, token_hash: &str) -> StoreResult<Option<EmailVerificationRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT token_hash, user_id, created_at, expires_at, used_at
             FROM email_verifications WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(conn)
        .await?
    }))
}

/// Use a link once: true only for the one caller that marks it used while it is live.
pub async fn mark_used(tx: &mut Tx, token_hash: &str, now: OffsetDateTime) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE email_verifications SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected()
            == 1
    }))
}
