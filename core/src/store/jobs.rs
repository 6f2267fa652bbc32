//! The durable job queue. Claiming takes one due job under a lease; on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so several workers never take the same job, on SQLite under the
//! single writer lock that every transaction here holds.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{JobId, TenantId};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: JobId,
    pub tenant_id: Option<TenantId>,
    pub kind: String,
    pub payload: Json<serde_json::Value>,
    pub dedupe_key: Option<String>,
    pub state: String,
    pub run_at: OffsetDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "id, tenant_id, kind, payload, dedupe_key, state, run_at, attempts, max_attempts, last_error";

/// Queue a job unless one with the same dedupe key exists; returns whether it was queued.
pub async fn enqueue(tx: &mut Tx, job: &JobRow) -> StoreResult<bool> {
    let at = super::now();
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO jobs (id, tenant_id, kind, payload, dedupe_key, state, run_at, attempts,
                 max_attempts, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7, $8, $8)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(job.id)
        .bind(job.tenant_id)
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(&job.dedupe_key)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Take the next due job (queued and due, or running with an expired lease) for `worker`,
/// leased until `lease_until(job)`: how long a job may run depends on what it is.
pub async fn claim(
    tx: &mut Tx,
    worker: &str,
    now: OffsetDateTime,
    lease_until: impl Fn(&JobRow) -> OffsetDateTime,
) -> StoreResult<Option<JobRow>> {
    let pick = |time: fn(&str) -> String, lock: &str| {
        let (run_at, locked_until, now) = (time("run_at"), time("locked_until"), time("$1"));
        format!(
            "SELECT {COLUMNS} FROM jobs
             WHERE (state = 'queued' AND {run_at} <= {now})
                OR (state = 'running' AND {locked_until} < {now})
             ORDER BY run_at LIMIT 1{lock}"
        )
    };
    let due: Option<JobRow> = match tx {
        // SQLite keeps times as RFC 3339 text without trailing zeros, so a whole second
        // ("…:30Z") sorts after a time within it ("…:30.4Z"): compare them as instants.
        Tx::Sqlite(t) => {
            sqlx::query_as(&pick(|column| format!("julianday({column})"), ""))
                .bind(now)
                .fetch_optional(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            sqlx::query_as(&pick(|column| column.to_owned(), " FOR UPDATE SKIP LOCKED"))
                .bind(now)
                .fetch_optional(&mut **t)
                .await?
        }
    };
    let Some(due) = due else {
        return Ok(None);
    };
    let until = lease_until(&due);
    let claimed = on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "UPDATE jobs SET state = 'running', locked_by = $2, locked_until = $3,
                 attempts = attempts + 1, updated_at = $4
             WHERE id = $1
             RETURNING {COLUMNS}"
        ))
        .bind(due.id)
        .bind(worker)
        .bind(until)
        .bind(now)
        .fetch_one(conn)
        .await?
    });
    Ok(Some(claimed))
}

/// Put back every job `worker` still holds, due at once and with the interrupted attempt
/// not counted, so another worker takes it now instead of when its lease runs out.
pub async fn release(tx: &mut Tx, worker: &str) -> StoreResult<u64> {
    let at = super::now();
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', locked_by = NULL, locked_until = NULL,
                 attempts = attempts - 1, updated_at = $2
             WHERE state = 'running' AND locked_by = $1",
        )
        .bind(worker)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

/// Delete up to `limit` finished (done or failed) jobs whose dedupe key starts with
/// `key_prefix` and that were due before `before`; returns how many went.
pub async fn prune_finished(
    tx: &mut Tx,
    key_prefix: &str,
    before: OffsetDateTime,
    limit: i64,
) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs
                 WHERE state IN ('done', 'failed') AND run_at < $1 AND dedupe_key LIKE $2
                 LIMIT $3)",
        )
        .bind(before)
        .bind(format!("{key_prefix}%"))
        .bind(limit)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

/// Finish a claimed job: done, or back to the queue at `retry_at`, or failed for good.
pub async fn finish(
    tx: &mut Tx,
    id: JobId,
    state: &str,
    retry_at: Option<OffsetDateTime>,
    error: Option<&str>,
) -> StoreResult<()> {
    let at = super::now();
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = $2, run_at = COALESCE($3, run_at), last_error = $4,
                 locked_by = NULL, locked_until = NULL, updated_at = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(retry_at)
        .bind(error)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn count_by_state(tx: &mut Tx, kind: &str) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT state, COUNT(*) FROM jobs WHERE kind = $1 GROUP BY state ORDER BY state",
        )
        .bind(kind)
        .fetch_all(conn)
        .await?
    }))
}

pub async fn list_tenants(tx: &mut Tx) -> StoreResult<Vec<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT id FROM tenants ORDER BY created_at")
            .fetch_all(conn)
            .await?
    }))
}
