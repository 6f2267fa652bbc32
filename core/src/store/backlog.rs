//! What the background work has yet to do and how long it has waited, across every tenant:
//! the database side of the operator's `/metrics` gauges. Read in a system transaction; each
//! query is one aggregate over an indexed or small table, cheap enough to run per scrape.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};

/// One snapshot of the queues, outboxes and lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    /// Queued jobs by kind, with the earliest `run_at` among them.
    pub jobs: Vec<Waiting>,
    /// Lines by lifecycle state.
    pub lines: Vec<(String, i64)>,
    /// Undelivered email, alerts for finance and notices to employees.
    pub outboxes: Vec<Waiting>,
    /// Each tenant that has usage syncs on the queue, and its last one that finished.
    pub usage_syncs: Vec<UsageSync>,
    /// Pages of usage stored but not yet rolled up (`usage_staged`), every tenant together,
    /// and since when the oldest waits: pages older than a minute or two mean rollups fail.
    pub staged_usage: Waiting,
}

/// How many items of one kind wait, and since when the oldest is due.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waiting {
    pub name: String,
    pub count: i64,
    pub oldest: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageSync {
    pub tenant_slug: String,
    pub last_done: Option<OffsetDateTime>,
    /// When the tenant's first usage sync was queued: the lag of a tenant none of whose
    /// syncs ever finished counts from there.
    pub first_queued: OffsetDateTime,
}

type WaitingRow = (String, i64, Option<OffsetDateTime>);

pub async fn snapshot(tx: &mut Tx) -> StoreResult<Backlog> {
    let jobs: Vec<WaitingRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT kind, COUNT(*), MIN(run_at) FROM jobs WHERE state = 'queued'
             GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&mut *conn)
        .await?
    });
    let lines: Vec<(String, i64)> = on_tx!(tx, |conn| {
        sqlx::query_as("SELECT state, COUNT(*) FROM lines GROUP BY state ORDER BY state")
            .fetch_all(&mut *conn)
            .await?
    });
    let outboxes: Vec<WaitingRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT 'email', COUNT(*), MIN(next_attempt_at) FROM outbound_emails
                 WHERE state IN ('queued', 'sending')
             UNION ALL
             SELECT 'alerts', COUNT(*), MIN(created_at) FROM alerts WHERE delivered_at IS NULL
             UNION ALL
             SELECT 'notices', COUNT(*), MIN(next_attempt_at) FROM employee_notices
                 WHERE state IN ('queued', 'sending')",
        )
        .fetch_all(&mut *conn)
        .await?
    });
    let usage_syncs: Vec<(String, Option<OffsetDateTime>, OffsetDateTime)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT t.slug, MAX(CASE WHEN j.state = 'done' THEN j.updated_at END),
                    MIN(j.created_at)
             FROM jobs j JOIN tenants t ON t.id = j.tenant_id
             WHERE j.kind = 'usage_sync'
             GROUP BY t.slug ORDER BY t.slug",
        )
        .fetch_all(&mut *conn)
        .await?
    });
    let (name, count, oldest): WaitingRow = on_tx!(tx, |conn| {
        sqlx::query_as("SELECT 'usage_staged', COUNT(*), MIN(staged_at) FROM usage_staged")
            .fetch_one(&mut *conn)
            .await?
    });
    let waiting = |rows: Vec<WaitingRow>| {
        rows.into_iter()
            .map(|(name, count, oldest)| Waiting {
                name,
                count,
                oldest,
            })
            .collect()
    };
    Ok(Backlog {
        jobs: waiting(jobs),
        lines,
        outboxes: waiting(outboxes),
        usage_syncs: usage_syncs
            .into_iter()
            .map(|(tenant_slug, last_done, first_queued)| UsageSync {
                tenant_slug,
                last_done,
                first_queued,
            })
            .collect(),
        staged_usage: Waiting {
            name,
            count,
            oldest,
        },
    })
}
