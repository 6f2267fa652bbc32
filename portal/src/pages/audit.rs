//! The audit log: every change, newest first, filtered by actor, action, subject and dates,
//! a page at a time, and the same filters as a CSV download.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use lineup_core::audit::AuditFilter;
use lineup_core::audit::{AUDIT_PAGE_SIZE, AuditEvent, Change, changes};
use lineup_core::ids::{AuditEventId, TenantId};
use serde::Deserialize;
use time::Date;

use super::dashboard::{Choice, choices, today};
use super::exports::rfc3339;
use crate::Portal;
use crate::error::PortalError;
use crate::forms::non_empty;
use crate::spreadsheet::{CsvChunk, download, paged_body, text};
use crate::view::{Chrome, Page};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/audit", get(show))
        .route("/audit/export.csv", get(export))
}

/// Events per page of the CSV download.
const EXPORT_PAGE: i64 = 1_000;

/// The filters as typed; empty means "any".
#[derive(Debug, Deserialize, Default, Clone)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    subject_type: Option<String>,
    subject_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

impl AuditQuery {
    fn from_raw(raw: Option<&str>) -> Result<Self, PortalError> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| PortalError::invalid("filters", e.to_string()))
    }

    fn parse(&self) -> Result<(AuditFilter, Option<AuditEventId>), PortalError> {
        let day = |field: &'static str, value: &Option<String>| {
            non_empty(value)
                .map(|text| {
                    Date::parse(
                        text,
                        time::macros::format_description!("[year]-[month]-[day]"),
                    )
                    .map_err(|_| {
                        PortalError::invalid(
                            field,
                            format!("{text:?} is not a date like 2026-01-31"),
                        )
                    })
                })
                .transpose()
        };
        let owned = |value: &Option<String>| non_empty(value).map(str::to_owned);
        let filter = AuditFilter {
            actor: owned(&self.actor),
            action_prefix: owned(&self.action),
            subject_type: owned(&self.subject_type),
            subject_id: owned(&self.subject_id),
            from: day("from", &self.from)?,
            until: day("to", &self.to)?,
        };
        if let (Some(from), Some(until)) = (filter.from, filter.until)
            && from > until
        {
            return Err(PortalError::invalid(
                "from",
                format!("{from} is after {until}"),
            ));
        }
        let before = non_empty(&self.before)
            .map(|id| {
                id.parse::<AuditEventId>()
                    .map_err(|_| PortalError::invalid("before", "is not a page of this log"))
            })
            .transpose()?;
        Ok((filter, before))
    }

    /// The filters (without the page) as a query string.
    fn filters_query(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("subject_type", &self.subject_type),
            ("subject_id", &self.subject_id),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| non_empty(v).map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).expect("text pairs encode")
    }
}

struct EventRow {
    at: String,
    actor: String,
    action: String,
    subject: String,
    changes: Vec<Change>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    query: AuditQuery,
    actors: Vec<Choice>,
    events: Vec<EventRow>,
    filters: String,
    older: Option<String>,
    paged: bool,
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let query = AuditQuery::from_raw(raw.as_deref())?;
    let (filter, before) = query.parse()?;
    let tenant = page.tenant_id();
    let log = portal
        .lineup
        .audit_log(tenant, &filter, before, AUDIT_PAGE_SIZE)
        .await?;
    let names = actor_names(&portal, tenant).await?;
    let mut actors: Vec<(String, String)> = names.clone().into_iter().collect();
    actors.sort_by(|a, b| a.1.cmp(&b.1));
    let actors = choices(actors, filter.actor.as_deref().unwrap_or_default());
    let template = AuditPage {
        chrome: page.chrome(),
        actors,
        events: log
            .events
            .iter()
            .map(|e| EventRow {
                at: e
                    .at
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                    ))
                    .unwrap_or_default(),
                actor: actor_name(&names, &e.actor),
                action: e.action.clone(),
                subject: format!("{} {}", e.subject_type, e.subject_id),
                changes: changes(e.before.as_ref(), e.after.as_ref()),
            })
            .collect(),
        filters: query.filters_query(),
        older: log.older.map(|id| id.to_string()),
        paged: before.is_some(),
        query,
    };
    page.render(&template)
}

/// Audit actor text (`user:<id>`, `system`) → how to show it.
async fn actor_names(
    portal: &Portal,
    tenant: TenantId,
) -> Result<HashMap<String, String>, PortalError> {
    Ok(portal
        .lineup
        .audit_actors(tenant)
        .await?
        .into_iter()
        .collect())
}

fn actor_name(names: &HashMap<String, String>, actor: &str) -> String {
    names
        .get(actor)
        .cloned()
        .unwrap_or_else(|| actor.to_owned())
}

async fn export(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let query = AuditQuery::from_raw(raw.as_deref())?;
    let (filter, _) = query.parse()?;
    let tenant = page.tenant_id();
    let names = actor_names(&portal, tenant).await?;
    let header = CsvChunk::new()
        .plain([
            "at",
            "actor",
            "actor_name",
            "action",
            "subject_type",
            "subject_id",
            "before",
            "after",
        ])
        .take();
    let export = Arc::new(AuditExport {
        portal,
        tenant,
        filter,
        names,
    });
    let body = paged_body(header, move |cursor| {
        let export = export.clone();
        async move { export.page(cursor).await }
    });
    Ok(download(&format!("lineup-audit-{}.csv", today()), body))
}

struct AuditExport {
    portal: Portal,
    tenant: TenantId,
    filter: AuditFilter,
    names: HashMap<String, String>,
}

impl AuditExport {
    async fn page(
        &self,
        before: Option<AuditEventId>,
    ) -> Result<(axum::body::Bytes, Option<AuditEventId>), PortalError> {
        let log = self
            .portal
            .lineup
            .audit_log(self.tenant, &self.filter, before, EXPORT_PAGE)
            .await?;
        let mut chunk = CsvChunk::new();
        for event in &log.events {
            chunk.plain(record(event, &self.names));
        }
        Ok((chunk.take(), log.older))
    }
}

fn record(event: &AuditEvent, names: &HashMap<String, String>) -> [String; 8] {
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    [
        rfc3339(event.at),
        text(&event.actor),
        text(actor_name(names, &event.actor)),
        text(&event.action),
        text(&event.subject_type),
        text(&event.subject_id),
        text(json(&event.before)),
        text(json(&event.after)),
    ]
}
