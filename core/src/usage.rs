//! Usage: records pulled from the provider, each counted once into per-line daily rollups,
//! whatever order they arrive in and however often.

use std::collections::HashMap;

use time::Date;

use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::{LineId, TenantId};
use crate::provider::{Roaming, UsageQuery, UsageRecord};
use crate::store::{
    self,
    usage::{DailyUsage, UsageRow},
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// New records, now counted in the rollups.
    pub recorded: usize,
    /// Records seen before (a re-delivery, an overlapping or resumed sync): not counted again.
    pub duplicates: usize,
    /// Records for subscriptions that are not this tenant's lines.
    pub unknown_lines: usize,
}

impl std::ops::AddAssign for UsageReport {
    fn add_assign(&mut self, other: Self) {
        self.recorded += other.recorded;
        self.duplicates += other.duplicates;
        self.unknown_lines += other.unknown_lines;
    }
}

/// Most pages a sync follows, so a provider that keeps returning `next` cannot loop forever.
const MAX_PAGES: usize = 10_000;

impl Lineup {
    /// Record provider usage for `tenant` in one transaction: each record is stored by its
    /// key and, only when new, added to its line's day. Re-running a batch changes nothing.
    pub async fn record_usage(
        &self,
        tenant: TenantId,
        records: &[UsageRecord],
    ) -> CoreResult<UsageReport> {
        let mut tx = self.tenant_tx(tenant).await?;
        let lines: HashMap<String, LineId> = store::lines::list(&mut tx, tenant)
            .await?
            .into_iter()
            .filter_map(|l| Some((l.provider_subscription_id?, l.id)))
            .collect();
        let provider = self.provider().name();
        let mut report = UsageReport::default();
        for record in records {
            let Some(line_id) = lines.get(&record.subscription_id).copied() else {
                report.unknown_lines += 1;
                continue;
            };
            let roaming = record.roaming == Roaming::International;
            let row = UsageRow {
                dedupe_key: format!("{provider}:{}", record.dedupe_key),
                line_id,
                started_at: record.started_at,
                ended_at: record.ended_at,
                data_bytes: record.data_bytes,
                sms: record.sms,
                voice_seconds: record.voice_seconds,
                country: record.country.clone(),
                roaming,
                // Plans carry no overage or roaming prices yet: usage inside the bundle is free.
                cost_minor: 0,
                observed_at: record.observed_at,
            };
            if !store::usage::insert_record(&mut tx, tenant, &row).await? {
                report.duplicates += 1;
                continue;
            }
            let day = DailyUsage {
                line_id,
                day: record.started_at.to_offset(time::UtcOffset::UTC).date(),
                data_bytes: row.data_bytes,
                roaming_bytes: if roaming { row.data_bytes } else { 0 },
                sms: row.sms,
                voice_seconds: row.voice_seconds,
                cost_minor: row.cost_minor,
            };
            store::usage::add_daily(&mut tx, tenant, &day).await?;
            report.recorded += 1;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Pull usage between two days (inclusive) from the provider, a page per transaction. An
    /// interrupted sync is simply run again: pages already stored count as duplicates.
    pub async fn sync_usage(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
    ) -> CoreResult<UsageReport> {
        let mut report = UsageReport::default();
        let mut query = UsageQuery {
            from,
            to,
            subscription_id: None,
            cursor: None,
        };
        for _ in 0..MAX_PAGES {
            let page = self.provider().usage(&query).await?;
            report += self.record_usage(tenant, &page.items).await?;
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        Ok(report)
    }

    /// Per-day usage of one line, oldest first.
    pub async fn daily_usage(&self, tenant: TenantId, line: LineId) -> CoreResult<Vec<DailyUsage>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::usage::daily_for_line(&mut tx, tenant, line).await?)
    }
}
