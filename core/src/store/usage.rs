//! Usage: daily rollups per line.

use time::Date;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{LineId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyUsage {
    pub line_id: LineId,
    pub day: Date,
    pub data_bytes: i64,
    pub roaming_bytes: i64,
    pub sms: i64,
    pub voice_seconds: i64,
    pub cost_minor: i64,
}

/// Adds to the day's totals (creating the row on first use).
pub async fn add_daily(tx: &mut Tx, tenant: TenantId, usage: &DailyUsage) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO usage_daily (tenant_id, line_id, day, data_bytes, roaming_bytes, sms,
                 voice_seconds, cost_minor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, line_id, day) DO UPDATE SET
                 data_bytes = usage_daily.data_bytes + excluded.data_bytes,
                 roaming_bytes = usage_daily.roaming_bytes + excluded.roaming_bytes,
                 sms = usage_daily.sms + excluded.sms,
                 voice_seconds = usage_daily.voice_seconds + excluded.voice_seconds,
                 cost_minor = usage_daily.cost_minor + excluded.cost_minor",
        )
        .bind(tenant)
        .bind(usage.line_id)
        .bind(usage.day)
        .bind(usage.data_bytes)
        .bind(usage.roaming_bytes)
        .bind(usage.sms)
        .bind(usage.voice_seconds)
        .bind(usage.cost_minor)
        .execute(conn)
        .await?;
    });
    super::reports::add_monthly(tx, tenant, std::slice::from_ref(usage)).await?;
    Ok(())
}

pub async fn daily_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Vec<DailyUsage>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT line_id, day, data_bytes, roaming_bytes, sms, voice_seconds, cost_minor
             FROM usage_daily WHERE tenant_id = $1 AND line_id = $2 ORDER BY day",
        )
        .bind(tenant)
        .bind(line)
        .fetch_all(conn)
        .await?
    }))
}

/// One usage record as stored; `dedupe_key` makes a record count once however often it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub dedupe_key: String,
    pub line_id: LineId,
    pub started_at: time::OffsetDateTime,
    pub ended_at: time::OffsetDateTime,
    pub data_bytes: i64,
    pub sms: i64,
    pub voice_seconds: i64,
    pub country: Option<String>,
    pub roaming: bool,
    pub cost_minor: i64,
    pub observed_at: time::OffsetDateTime,
}

/// Stores the record unless its key was seen before; returns whether it is new.
pub async fn insert_record(tx: &mut Tx, tenant: TenantId, row: &UsageRow) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO usage_records (tenant_id, dedupe_key, line_id, started_at, ended_at,
                 data_bytes, sms, voice_seconds, country, roaming, cost_minor, observed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        )
        .bind(tenant)
        .bind(&row.dedupe_key)
        .bind(row.line_id)
        .bind(row.started_at)
        .bind(row.ended_at)
        .bind(row.data_bytes)
        .bind(row.sms)
        .bind(row.voice_seconds)
        .bind(&row.country)
        .bind(row.roaming)
        .bind(row.cost_minor)
        .bind(row.observed_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}
