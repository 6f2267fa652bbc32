//! Prometheus metrics: the recorder, what the HTTP edge measures (requests by matched route,
//! chat acknowledgements by platform), the database gauges read at scrape time, and the
//! operator-only listener that serves `/metrics` apart from the public port.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lineup_core::Lineup;
use lineup_core::store::backlog::{Backlog, Waiting};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use time::OffsetDateTime;

/// Upper bounds in seconds: chat platforms give up after 3 s, pages should take < 100 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// A scrape waits this long for the database gauges, then answers without them.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(2);

/// Install the process-wide recorder (once, at start-up of `serve`).
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .context("LINEUP_METRICS_LISTEN: latency buckets")?
        .install_recorder()
        .context("LINEUP_METRICS_LISTEN: installing the Prometheus recorder")
}

/// The chat platform whose inbound requests a route acknowledges, if it is one.
fn chat_platform(route: &str) -> Option<&'static str> {
    match route {
        "/slack/commands" | "/slack/interactions" | "/slack/events" => Some("slack"),
        "/discord/interactions" => Some("discord"),
        "/teams/messages" => Some("teams"),
        _ => None,
    }
}

/// Counts and times every request by its route pattern (`MatchedPath`, so tenant slugs and
/// ids never become label values) and status; chat routes also count as acknowledgements of
/// their platform. Unmatched requests share the route `unmatched`.
pub async fn record_http(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    if let Some(platform) = chat_platform(&route) {
        let labels = [
            ("platform", platform.to_owned()),
            ("status", status.clone()),
        ];
        metrics::counter!("lineup_chat_acks_total", &labels).increment(1);
        metrics::histogram!("lineup_chat_ack_duration_seconds", "platform" => platform)
            .record(elapsed);
    }
    let labels = [
        ("route", route.clone()),
        ("method", method.to_owned()),
        ("status", status),
    ];
    metrics::counter!("lineup_http_requests_total", &labels).increment(1);
    metrics::histogram!("lineup_http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed);
    response
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    lineup: Lineup,
    /// Whether the last backlog query failed, so a broken database is logged once, not
    /// once per scrape.
    backlog_failing: std::sync::Arc<AtomicBool>,
}

/// `/metrics` and nothing else, for the operator's network only (LINEUP_METRICS_LISTEN):
/// tenants' hosts on the public port never reach it.
pub fn router(handle: PrometheusHandle, lineup: Lineup) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape {
            handle,
            lineup,
            backlog_failing: Default::default(),
        })
}

/// Serve [`router`] on `listen` until the task is dropped.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("LINEUP_METRICS_LISTEN: cannot listen on {listen}"))
}

async fn scrape(State(scrape): State<Scrape>) -> Response {
    scrape.handle.run_upkeep();
    let mut body = scrape.handle.render();
    let backlog = tokio::time::timeout(BACKLOG_TIMEOUT, read_backlog(&scrape.lineup)).await;
    let backlog = match backlog {
        Ok(Ok(backlog)) => Ok(backlog),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", BACKLOG_TIMEOUT.as_secs())),
    };
    let was_failing = scrape
        .backlog_failing
        .swap(backlog.is_err(), Ordering::Relaxed);
    match (&backlog, was_failing) {
        (Err(error), false) => {
            tracing::warn!(%error, "metrics: reading the job and outbox backlog failed")
        }
        (Ok(_), true) => tracing::info!("metrics: the job and outbox backlog reads again"),
        _ => {}
    }
    render_backlog(&mut body, backlog.as_ref().ok(), OffsetDateTime::now_utc());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn read_backlog(lineup: &Lineup) -> Result<Backlog, lineup_core::store::StoreError> {
    let mut tx = lineup.store().system().await?;
    let backlog = lineup_core::store::backlog::snapshot(&mut tx).await?;
    drop(tx);
    Ok(backlog)
}

/// The database gauges, rendered fresh at each scrape: a state, kind or tenant that
/// disappears from the database disappears from the output too.
fn render_backlog(out: &mut String, backlog: Option<&Backlog>, now: OffsetDateTime) {
    gauge_family(
        out,
        "lineup_backlog_up",
        "1 when the queue, outbox and line gauges below could be read from the database",
        [(Vec::new(), if backlog.is_some() { 1.0 } else { 0.0 })],
    );
    let Some(backlog) = backlog else { return };
    let age = |oldest: Option<OffsetDateTime>| {
        oldest.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0))
    };
    let by = |label: &'static str, rows: &[Waiting], value: &dyn Fn(&Waiting) -> f64| {
        rows.iter()
            .map(|w| (vec![(label, w.name.clone())], value(w)))
            .collect::<Vec<_>>()
    };
    gauge_family(
        out,
        "lineup_jobs_queued",
        "Jobs waiting on the durable queue, by kind",
        by("kind", &backlog.jobs, &|w| w.count as f64),
    );
    gauge_family(
        out,
        "lineup_jobs_oldest_queued_age_seconds",
        "How long the longest-waiting queued job of each kind has been due",
        by("kind", &backlog.jobs, &|w| age(w.oldest)),
    );
    gauge_family(
        out,
        "lineup_lines",
        "Lines by lifecycle state, every tenant together",
        backlog
            .lines
            .iter()
            .map(|(state, count)| (vec![("state", state.clone())], *count as f64)),
    );
    gauge_family(
        out,
        "lineup_outbox_pending",
        "Undelivered items per outbox (email, alerts for finance, notices to employees)",
        by("outbox", &backlog.outboxes, &|w| w.count as f64),
    );
    gauge_family(
        out,
        "lineup_outbox_oldest_age_seconds",
        "How long the oldest undelivered item of each outbox has been due",
        by("outbox", &backlog.outboxes, &|w| age(w.oldest)),
    );
    gauge_family(
        out,
        "lineup_usage_staged_pages",
        "Pages of usage stored but not yet rolled up, every tenant together",
        [(Vec::new(), backlog.staged_usage.count as f64)],
    );
    gauge_family(
        out,
        "lineup_usage_staged_oldest_age_seconds",
        "How long the oldest page of usage has waited for its rollup (over a minute or two: \
         rollups are failing)",
        [(Vec::new(), age(backlog.staged_usage.oldest))],
    );
    gauge_family(
        out,
        "lineup_usage_sync_lag_seconds",
        "Per tenant: time since its last usage sync finished (or since its first was queued)",
        backlog.usage_syncs.iter().map(|sync| {
            let since = sync.last_done.unwrap_or(sync.first_queued);
            (
                vec![("tenant", sync.tenant_slug.clone())],
                (now - since).as_seconds_f64().max(0.0),
            )
        }),
    );
}

fn gauge_family(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
                .collect();
            let _ = write!(out, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(out, " {value}");
    }
    out.push('\n');
}

/// The exposition format's escapes for a label value.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lineup_core::store::backlog::UsageSync;
    use time::macros::datetime;

    #[test]
    fn backlog_gauges_render_ages_counts_and_escaped_labels() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let backlog = Backlog {
            jobs: vec![Waiting {
                name: "usage_sync".into(),
                count: 3,
                oldest: Some(datetime!(2026-12-05 11:58 UTC)),
            }],
            lines: vec![("active".into(), 40), ("suspended".into(), 2)],
            outboxes: vec![Waiting {
                name: "email".into(),
                count: 0,
                oldest: None,
            }],
            usage_syncs: vec![UsageSync {
                tenant_slug: "a\"b".into(),
                last_done: None,
                first_queued: datetime!(2026-12-05 11:00 UTC),
            }],
            staged_usage: Waiting {
                name: "usage_staged".into(),
                count: 2,
                oldest: Some(datetime!(2026-12-05 11:59:30 UTC)),
            },
        };
        let mut out = String::new();
        render_backlog(&mut out, Some(&backlog), now);
        for line in [
            "lineup_backlog_up 1",
            "lineup_jobs_queued{kind=\"usage_sync\"} 3",
            "lineup_jobs_oldest_queued_age_seconds{kind=\"usage_sync\"} 120",
            "lineup_lines{state=\"suspended\"} 2",
            "lineup_outbox_pending{outbox=\"email\"} 0",
            "lineup_outbox_oldest_age_seconds{outbox=\"email\"} 0",
            "lineup_usage_sync_lag_seconds{tenant=\"a\\\"b\"} 3600",
            "lineup_usage_staged_pages 2",
            "lineup_usage_staged_oldest_age_seconds 30",
            "# TYPE lineup_lines gauge",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{line} missing from:\n{out}"
            );
        }
        let mut down = String::new();
        render_backlog(&mut down, None, now);
        assert!(down.contains("lineup_backlog_up 0\n"));
        assert!(!down.contains("lineup_lines"));
    }

    #[test]
    fn only_the_chat_inbound_routes_are_acknowledgements() {
        assert_eq!(chat_platform("/slack/interactions"), Some("slack"));
        assert_eq!(chat_platform("/discord/interactions"), Some("discord"));
        assert_eq!(chat_platform("/teams/messages"), Some("teams"));
        assert_eq!(chat_platform("/slack/install"), None);
        assert_eq!(chat_platform("/healthz"), None);
    }
}
