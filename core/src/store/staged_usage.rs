//! Staged usage: pages of records stored but not yet rolled up (see migration 0032). A row
//! commits with its page's records and is deleted by the rollup that counts them; deleting
//! it is how a rollup claims the page, so two rollups never count one page.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{StagedUsageId, TenantId};

/// Marks a stored page as waiting for its rollup.
pub async fn stage(
    tx: &mut Tx,
    tenant: TenantId,
    id: StagedUsageId,
    dedupe_keys: &[&str],
    at: OffsetDateTime,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO usage_staged (tenant_id, id, dedupe_keys, staged_at)
                       VALUES ($1, $2, $3, $4)";
    match tx {
        Tx::Postgres(tx) => {
            sqlx::query(SQL)
                .bind(tenant)
                .bind(id)
                .bind(dedupe_keys)
                .bind(at)
                .execute(&mut **tx)
                .await?;
        }
        Tx::Sqlite(tx) => {
            sqlx::query(SQL)
                .bind(tenant)
                .bind(id)
                .bind(serde_json::to_string(dedupe_keys).expect("strings serialise"))
                .bind(at)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Claims the pages among `ids` no other rollup claimed; returns them.
pub async fn claim(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[StagedUsageId],
) -> StoreResult<Vec<StagedUsageId>> {
    let mut claimed = Vec::with_capacity(ids.len());
    // Pages are few per rollup (tens): one short statement each keeps both backends alike.
    for id in ids {
        let deleted = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM usage_staged WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .execute(conn)
                .await?
                .rows_affected()
        });
        if deleted == 1 {
            claimed.push(*id);
        }
    }
    Ok(claimed)
}

/// Claims every page of `tenant` staged before `before` (left behind by a sync that stopped
/// between storing and rolling up); returns their records' keys.
pub async fn claim_staged_before(
    tx: &mut Tx,
    tenant: TenantId,
    before: OffsetDateTime,
) -> StoreResult<Vec<String>> {
    const SQL: &str = "DELETE FROM usage_staged WHERE tenant_id = $1 AND staged_at < $2
                       RETURNING dedupe_keys";
    Ok(match tx {
        Tx::Postgres(tx) => {
            let pages: Vec<Vec<String>> = sqlx::query_scalar(SQL)
                .bind(tenant)
                .bind(before)
                .fetch_all(&mut **tx)
                .await?;
            pages.into_iter().flatten().collect()
        }
        Tx::Sqlite(tx) => {
            let pages: Vec<String> = sqlx::query_scalar(SQL)
                .bind(tenant)
                .bind(before)
                .fetch_all(&mut **tx)
                .await?;
            let mut keys = Vec::new();
            for page in pages {
                let page: Vec<String> = serde_json::from_str(&page)
                    .map_err(|e| super::StoreError::corrupt("usage_staged.dedupe_keys", e))?;
                keys.extend(page);
            }
            keys
        }
    })
}

/// Tenants with pages staged before `before` (across tenants: the worker's step).
pub async fn tenants_staged_before(
    tx: &mut Tx,
    before: OffsetDateTime,
) -> StoreResult<Vec<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM usage_staged WHERE staged_at < $1 ORDER BY tenant_id",
        )
        .bind(before)
        .fetch_all(conn)
        .await?
    }))
}

/// How many pages of `tenant` wait for a rollup.
pub async fn count(tx: &mut Tx, tenant: TenantId) -> StoreResult<usize> {
    let pages: i64 = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_staged WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(conn)
            .await?
    });
    Ok(usize::try_from(pages).unwrap_or(0))
}
