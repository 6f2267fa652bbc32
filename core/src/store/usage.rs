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
