//! Uploaded employee CSV files waiting between preview and commit.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{ImportId, TenantId};
use crate::import::Upload;

#[derive(sqlx::FromRow)]
struct UploadRow {
    id: ImportId,
    tenant_id: TenantId,
    uploaded_by: String,
    filename: String,
    content: Vec<u8>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    committed_at: Option<OffsetDateTime>,
}

pub async fn insert(tx: &mut Tx, tenant: TenantId, upload: &Upload) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO employee_imports (id, tenant_id, uploaded_by, filename, content,
                 created_at, expires_at, committed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(upload.id)
        .bind(tenant)
        .bind(&upload.uploaded_by)
        .bind(&upload.filename)
        .bind(&upload.content)
        .bind(upload.created_at)
        .bind(upload.expires_at)
        .bind(upload.committed_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: ImportId) -> StoreResult<Option<Upload>> {
    let row: Option<UploadRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, uploaded_by, filename, content, created_at, expires_at,
                 committed_at
             FROM employee_imports WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?
    });
    Ok(row.map(|r| Upload {
        id: r.id,
        tenant_id: r.tenant_id,
        uploaded_by: r.uploaded_by,
        filename: r.filename,
        content: r.content,
        created_at: r.created_at,
        expires_at: r.expires_at,
        committed_at: r.committed_at,
    }))
}

/// Claim the upload for a commit; false when another commit already claimed it.
pub async fn mark_committed(
    tx: &mut Tx,
    tenant: TenantId,
    id: ImportId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let done = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE employee_imports SET committed_at = $3
             WHERE tenant_id = $1 AND id = $2 AND committed_at IS NULL",
        )
        .bind(tenant)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Uploads past their expiry are of no use; their files can be large.
pub async fn delete_expired(
    tx: &mut Tx,
    tenant: TenantId,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM employee_imports WHERE tenant_id = $1 AND expires_at < $2")
            .bind(tenant)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
    }))
}
