//! Requests: what this user may decide now (by the same authority rules as chat, checked in
//! core), with the context to decide, approve and deny, and the latest decisions.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::{RequestId, TenantId};
use lineup_core::lines::request::cards::{CardContext, outcome_line, quote_fields, what};
use lineup_core::lines::request::{Decider, Decision, Request, RequestState};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::pages::lines::{id_from, when};
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/requests", get(list))
        .route("/requests/{id}/approve", post(approve))
        .route(
            "/requests/{id}/approve-travel-esim",
            post(approve_travel_esim),
        )
        .route("/requests/{id}/deny", post(deny))
}

/// How many settled requests the page lists under "recent decisions".
const RECENT: i64 = 20;

struct PendingRow {
    id: RequestId,
    requester: String,
    what: String,
    reason: String,
    policy_note: String,
    data_last_30_days: String,
    spent_this_period: String,
    cap: String,
    /// (name, "spent of cap") for each budget the requester shares.
    shared_budgets: Vec<(String, String)>,
    asked: String,
    expires: String,
    /// A roaming request's trip priced both ways (label, value), empty for other requests.
    quote: Vec<(String, String)>,
    /// The Approve button's label: which way a priced trip is approved.
    approve_label: String,
    /// "Approve travel eSIM (package, price)" when the quote offers one.
    travel_label: Option<String>,
    /// The deny form's error and typed reason, after a failed deny of this request.
    deny_error: Option<String>,
}

struct DecidedRow {
    requester: String,
    what: String,
    state: &'static str,
    outcome: String,
    note: String,
    failure: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    chrome: Chrome,
    pending: Vec<PendingRow>,
    recent: Vec<DecidedRow>,
    /// Why this user can decide nothing (a finance or manager account with no employee).
    unlinked: bool,
    error: Option<String>,
}

/// Who this portal user decides as: their employee record, or (owners and admins without
/// one) their membership.
fn decider(page: &Page) -> Decider {
    match page.signed.session.employee_id {
        Some(employee) => Decider::Employee(employee),
        None => Decider::Member(page.signed.session.user_id),
    }
}

async fn list(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, None).await
}

async fn render(
    portal: &Portal,
    page: &Page,
    deny_error: Option<(RequestId, String)>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let lineup = &portal.lineup;
    let mut pending = Vec::new();
    for request in lineup.decidable_requests(tenant, decider(page)).await? {
        let ctx = lineup.card_context(tenant, &request).await?;
        let usage = ctx.usage.as_ref();
        pending.push(PendingRow {
            id: request.id,
            requester: ctx.requester_name.clone(),
            what: what(&request, &ctx),
            reason: request.reason.clone(),
            policy_note: request.decision_note.clone().unwrap_or_default(),
            data_last_30_days: usage
                .map(|u| u.data_last_30_days.to_string())
                .unwrap_or_default(),
            spent_this_period: usage
                .map(|u| u.spent_this_period.to_string())
                .unwrap_or_default(),
            cap: usage
                .and_then(|u| u.cap)
                .map_or("no cap".to_owned(), |c| c.to_string()),
            shared_budgets: usage.map_or_else(Vec::new, |u| {
                u.shared_budgets
                    .iter()
                    .map(|b| (b.name.clone(), b.to_string()))
                    .collect()
            }),
            asked: when(request.created_at),
            expires: when(request.expires_at),
            quote: request
                .details
                .roaming_quote()
                .map(quote_fields)
                .unwrap_or_default(),
            approve_label: if request.details.roaming_quote().is_some() {
                "Approve roaming on the home line".into()
            } else {
                "Approve".into()
            },
            travel_label: request
                .details
                .roaming_quote()
                .and_then(|q| q.travel.as_ref())
                .map(|t| format!("Approve travel eSIM ({}, {})", t.package, t.price)),
            deny_error: deny_error
                .as_ref()
                .filter(|(id, _)| *id == request.id)
                .map(|(_, e)| e.clone()),
        });
    }
    let visible = lineup.visible(tenant, page.signed.visibility()).await?;
    let mut recent = Vec::new();
    for request in lineup.recent_decisions(tenant, RECENT).await? {
        if !visible.contains(request.requester) {
            continue;
        }
        let ctx = context_without_usage(portal, tenant, &request).await?;
        recent.push(DecidedRow {
            requester: ctx.requester_name.clone(),
            what: what(&request, &ctx),
            state: request.state.as_str(),
            outcome: outcome_line(&request, &ctx),
            note: request.decision_note.clone().unwrap_or_default(),
            failure: request.failure_reason.clone().unwrap_or_default(),
        });
    }
    let template = RequestsPage {
        chrome: page.chrome(),
        unlinked: page.signed.session.employee_id.is_none()
            && !matches!(
                page.signed.session.role,
                lineup_core::identity::user::Role::Owner | lineup_core::identity::user::Role::Admin
            ),
        error: deny_error.as_ref().map(|(_, e)| e.clone()),
        pending,
        recent,
    };
    page.render_form(&template, deny_error.is_some())
}

/// Names for a settled request; its usage is not needed once decided.
async fn context_without_usage(
    portal: &Portal,
    tenant: TenantId,
    request: &Request,
) -> Result<CardContext, PortalError> {
    Ok(portal.lineup.card_names(tenant, request).await?)
}

#[derive(Deserialize, Default)]
struct DenyForm {
    #[serde(default)]
    reason: String,
}

async fn approve(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    decide(&portal, &page, &id, Decision::Approve, None).await
}

async fn approve_travel_esim(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    decide(&portal, &page, &id, Decision::ApproveTravelEsim, None).await
}

async fn deny(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<DenyForm>,
) -> Result<Response, PortalError> {
    match decide(&portal, &page, &id, Decision::Deny, Some(form.reason)).await {
        Err(PortalError::Invalid { field, reason }) => {
            let error = format!("{field}: {reason}");
            render(&portal, &page, Some((id_from(&id)?, error))).await
        }
        other => other,
    }
}

/// One decision through core (the same command chat uses): the first wins; a later one is
/// told who decided and when.
async fn decide(
    portal: &Portal,
    page: &Page,
    id: &str,
    decision: Decision,
    note: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let decided = portal
        .lineup
        .decide_request_as(tenant, decider(page), id_from(id)?, decision, note)
        .await?;
    let ctx = context_without_usage(portal, tenant, &decided.request).await?;
    let notice = if decided.won {
        after_decision(portal, tenant, &decided.request);
        let verb = match decision {
            Decision::Approve => "Approved",
            Decision::ApproveTravelEsim => "Approved as a travel eSIM",
            Decision::Deny => "Denied",
        };
        format!(
            "{verb}: {} for {}",
            what(&decided.request, &ctx),
            ctx.requester_name
        )
    } else {
        format!("Already decided: {}", outcome_line(&decided.request, &ctx))
    };
    Ok(redirect_with_notice("/requests", &notice))
}

/// Hand the decision on: to the chat side when one is configured (it updates the cards,
/// tells the requester and fulfils an approved request with delivery by chat); otherwise the
/// portal fulfils an approved request itself. In the background, so the page answers now.
fn after_decision(portal: &Portal, tenant: TenantId, request: &Request) {
    let portal = portal.clone();
    let (id, approved) = (request.id, request.state == RequestState::Approved);
    tokio::spawn(async move {
        match &portal.request_events {
            Some(events) => events.decided(tenant, id).await,
            None if approved => {
                if let Err(e) = portal.lineup.fulfil_request(tenant, id).await {
                    tracing::warn!(%tenant, request = %id, error = %e, "fulfilling an approved request failed");
                }
            }
            None => {}
        }
    });
}
