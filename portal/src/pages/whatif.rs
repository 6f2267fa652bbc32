//! What-if: replay recorded usage under a proposed policy (caps, thresholds, actions,
//! roaming presets) and compare with the policy in force. A simulation: nothing is saved.
//! Behind ManagePolicies (owner, admin, finance): it is a tool for deciding policy and shows
//! every line's spend, which managers and viewers do not see tenant-wide.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use lineup_core::organisation::employee::Employee;
use lineup_core::organisation::tenant::Tenant;
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, RoamingRule};
use lineup_core::spend::whatif::{
    LineOutcome, MAX_REPLAY_DAYS, PolicySet, PolicySetError, WhatIfReport, percent_change,
};

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page};

/// The per-line table shows the lines the proposal changes most.
const CHANGED_LINES_SHOWN: usize = 50;
/// Empty cap rows offered under the current caps.
const BLANK_CAP_ROWS: usize = 3;
const DEFAULT_DAYS: i64 = 30;

pub fn routes() -> Router<Portal> {
    Router::new().route("/whatif", get(show).post(run))
}

/// One cap row as typed.
#[derive(Clone, Default)]
struct CapRow {
    scope: String,
    email: String,
    amount: String,
    thresholds: String,
    action: String,
}

/// The proposal as typed, so a refused one comes back unchanged.
#[derive(Clone, Default)]
struct WhatIfForm {
    days: String,
    source: String,
    policy_json: String,
    caps: Vec<CapRow>,
    roaming_allowed: String,
    roaming_needs_approval: String,
    roaming_blocked: String,
    roaming_violation_action: String,
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

impl WhatIfForm {
    /// The policy in force, as the form shows it.
    fn from_policy(policy: &PolicySet, tenant: &Tenant, employees: &[Employee]) -> Self {
        let countries = |rule: RoamingRule| {
            policy
                .roaming
                .iter()
                .filter(|(_, r)| **r == rule)
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut caps: Vec<CapRow> = policy
            .caps
            .iter()
            .map(|cap| {
                let (scope, email) = match cap.scope {
                    CapScope::Employee(id) => (
                        "employee".to_owned(),
                        employees
                            .iter()
                            .find(|e| e.id == id)
                            .map(|e| e.email.to_string())
                            .unwrap_or_default(),
                    ),
                    other => match other.parts() {
                        (kind, Some(id)) => (format!("{kind}:{id}"), String::new()),
                        (kind, None) => (kind.to_owned(), String::new()),
                    },
                };
                CapRow {
                    scope,
                    email,
                    amount: tenant.currency.format_amount(cap.amount_minor),
                    thresholds: cap
                        .thresholds
                        .iter()
                        .map(u8::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    action: cap.action.as_str().to_owned(),
                }
            })
            .collect();
        caps.extend((0..BLANK_CAP_ROWS).map(|_| CapRow::default()));
        Self {
            days: DEFAULT_DAYS.to_string(),
            source: "form".into(),
            policy_json: serde_json::to_string_pretty(policy).unwrap_or_default(),
            caps,
            roaming_allowed: countries(RoamingRule::Allowed),
            roaming_needs_approval: countries(RoamingRule::NeedsApproval),
            roaming_blocked: countries(RoamingRule::Blocked),
            roaming_violation_action: policy.roaming_violation_action.as_str().to_owned(),
        }
    }

    /// Cap rows are the n-th `cap_*` fields of the body, in order.
    fn from_fields(fields: &[(String, String)]) -> Self {
        let column = |name: &str| -> Vec<String> {
            fields
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let (scopes, emails, amounts, thresholds, actions) = (
            column("cap_scope"),
            column("cap_email"),
            column("cap_amount"),
            column("cap_thresholds"),
            column("cap_action"),
        );
        let at = |c: &[String], i: usize| c.get(i).cloned().unwrap_or_default();
        let caps = (0..scopes.len())
            .map(|i| CapRow {
                scope: at(&scopes, i),
                email: at(&emails, i),
                amount: at(&amounts, i),
                thresholds: at(&thresholds, i),
                action: at(&actions, i),
            })
            .collect();
        Self {
            days: field(fields, "days").to_owned(),
            source: field(fields, "source").to_owned(),
            policy_json: field(fields, "policy_json").to_owned(),
            caps,
            roaming_allowed: field(fields, "roaming_allowed").to_owned(),
            roaming_needs_approval: field(fields, "roaming_needs_approval").to_owned(),
            roaming_blocked: field(fields, "roaming_blocked").to_owned(),
            roaming_violation_action: field(fields, "roaming_violation_action").to_owned(),
        }
    }

    fn days(&self) -> Result<i64, PortalError> {
        let text = self.days.trim();
        if text.is_empty() {
            return Err(PortalError::invalid(
                "days",
                format!("say how many days to replay (1 to {MAX_REPLAY_DAYS})"),
            ));
        }
        text.parse().map_err(|_| {
            PortalError::invalid("days", format!("{text:?} is not a whole number of days"))
        })
    }

    /// The proposal: the pasted JSON, or the form's rows.
    fn policy(&self, tenant: &Tenant, employees: &[Employee]) -> Result<PolicySet, PortalError> {
        match self.source.as_str() {
            "json" => PolicySet::from_json(&self.policy_json)
                .map_err(|e| PortalError::invalid("policy_json", e.to_string())),
            "form" => self.policy_from_rows(tenant, employees),
            other => Err(PortalError::invalid(
                "source",
                format!("{other:?} is not form or json: choose where the proposal comes from"),
            )),
        }
    }

    fn policy_from_rows(
        &self,
        tenant: &Tenant,
        employees: &[Employee],
    ) -> Result<PolicySet, PortalError> {
        let currency = tenant.currency;
        let mut caps = Vec::new();
        for (i, row) in self.caps.iter().enumerate() {
            let name = |part: &str| format!("cap {} {part}", i + 1);
            let scope = match row.scope.trim() {
                "" => continue,
                "tenant" => CapScope::Tenant,
                "employee" => {
                    let email = row.email.trim();
                    let employee = employees
                        .iter()
                        .find(|e| e.email.as_str().eq_ignore_ascii_case(email))
                        .ok_or_else(|| {
                            PortalError::invalid(
                                name("employee"),
                                format!("no employee has the email {email:?}"),
                            )
                        })?;
                    CapScope::Employee(employee.id)
                }
                other => other
                    .split_once(':')
                    .and_then(|(kind, id)| CapScope::parse(kind, id.parse().ok()))
                    .ok_or_else(|| {
                        PortalError::invalid(name("scope"), format!("{other:?} is not a scope"))
                    })?,
            };
            let amount = currency.parse_amount(&row.amount).ok_or_else(|| {
                PortalError::invalid(
                    name("amount"),
                    format!(
                        "{:?} is not an amount in {currency} (e.g. 250.00)",
                        row.amount
                    ),
                )
            })?;
            let thresholds = row
                .thresholds
                .split(',')
                .map(|t| t.trim().trim_end_matches('%'))
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<u8>().map_err(|_| {
                        PortalError::invalid(
                            name("thresholds"),
                            format!("{t:?} is not a percentage between 1 and 100"),
                        )
                    })
                })
                .collect::<Result<Vec<u8>, _>>()?;
            let action = CapAction::parse(&row.action).ok_or_else(|| {
                PortalError::invalid(
                    name("action"),
                    format!("{:?} is not alert, throttle or suspend", row.action),
                )
            })?;
            caps.push(BudgetCap {
                scope,
                amount_minor: amount,
                thresholds,
                action,
            });
        }
        let mut roaming = std::collections::BTreeMap::new();
        for (field, text, rule) in [
            (
                "roaming_allowed",
                &self.roaming_allowed,
                RoamingRule::Allowed,
            ),
            (
                "roaming_needs_approval",
                &self.roaming_needs_approval,
                RoamingRule::NeedsApproval,
            ),
            (
                "roaming_blocked",
                &self.roaming_blocked,
                RoamingRule::Blocked,
            ),
        ] {
            for country in text.split([',', ' ']).filter(|c| !c.trim().is_empty()) {
                let code = country.trim().to_ascii_uppercase();
                if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(PortalError::invalid(
                        field,
                        format!("{country:?} is not a two-letter country code"),
                    ));
                }
                if let Some(earlier) = roaming.insert(code.clone(), rule) {
                    return Err(PortalError::invalid(
                        field,
                        format!("{code} is also listed as {}", earlier.as_str()),
                    ));
                }
            }
        }
        let roaming_violation_action = CapAction::parse(&self.roaming_violation_action)
            .ok_or_else(|| {
                PortalError::invalid(
                    "roaming_violation_action",
                    format!(
                        "{:?} is not alert, throttle or suspend",
                        self.roaming_violation_action
                    ),
                )
            })?;
        PolicySet {
            caps,
            roaming,
            roaming_violation_action,
        }
        .validated()
        .map_err(|e| match e {
            PolicySetError::Cap { index, reason } => {
                PortalError::invalid(format!("cap {}", index + 1), reason)
            }
            other => PortalError::invalid("policy", other.to_string()),
        })
    }
}

/// A total or a line under both policies, formatted.
struct Comparison {
    label: String,
    line_id: Option<String>,
    spend_now: String,
    spend_if: String,
    spend_delta: String,
    overage_now: String,
    overage_if: String,
    overage_delta: String,
    suspended_now: i64,
    suspended_if: i64,
    alerts_now: usize,
    alerts_if: usize,
}

impl Comparison {
    fn new(
        tenant: &Tenant,
        label: String,
        line_id: Option<String>,
        now: &LineOutcome,
        proposed: &LineOutcome,
    ) -> Self {
        let money = |minor: i64| tenant.money(minor).to_string();
        let delta = |minor: i64| tenant.money(minor).signed();
        Self {
            label,
            line_id,
            spend_now: money(now.spend.total_minor()),
            spend_if: money(proposed.spend.total_minor()),
            spend_delta: delta(proposed.spend.total_minor() - now.spend.total_minor()),
            overage_now: money(now.spend.overage_minor),
            overage_if: money(proposed.spend.overage_minor),
            overage_delta: delta(proposed.spend.overage_minor - now.spend.overage_minor),
            suspended_now: now.suspended_days,
            suspended_if: proposed.suspended_days,
            alerts_now: now.alerts,
            alerts_if: proposed.alerts,
        }
    }
}

struct Outcome {
    from: String,
    to: String,
    total: Comparison,
    overage_change: String,
    lines: Vec<Comparison>,
    changed: usize,
}

impl Outcome {
    fn new(tenant: &Tenant, report: &WhatIfReport) -> Self {
        let (now, proposed) = (report.current.total(), report.proposed.total());
        let changed = report.changed_lines();
        Self {
            from: report.from.to_string(),
            to: report.to.to_string(),
            total: Comparison::new(tenant, "Total".into(), None, &now, &proposed),
            overage_change: match percent_change(
                now.spend.overage_minor,
                proposed.spend.overage_minor,
            ) {
                Some(p) if p > 0 => format!("+{p} %"),
                Some(p) => format!("{p} %"),
                None => "no overage under the current policy".into(),
            },
            changed: changed.len(),
            lines: changed
                .into_iter()
                .take(CHANGED_LINES_SHOWN)
                .map(|c| {
                    Comparison::new(
                        tenant,
                        c.label.clone(),
                        Some(c.line_id.to_string()),
                        &c.now,
                        &c.proposed,
                    )
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "whatif.html")]
struct WhatIfPage {
    chrome: Chrome,
    form: WhatIfForm,
    scopes: Vec<(String, String)>,
    currency: String,
    max_days: i64,
    shown: usize,
    error: Option<String>,
    outcome: Option<Outcome>,
}

async fn scopes(portal: &Portal, tenant: &Tenant) -> Result<Vec<(String, String)>, PortalError> {
    let mut scopes = vec![
        (String::new(), "— not used —".to_owned()),
        ("tenant".to_owned(), "Whole organisation".to_owned()),
    ];
    for team in portal.lineup.teams(tenant.id).await? {
        scopes.push((format!("team:{}", team.id), format!("Team: {}", team.name)));
    }
    for centre in portal.lineup.cost_centres(tenant.id).await? {
        scopes.push((
            format!("cost_centre:{}", centre.id),
            format!("Cost centre: {}", centre.name),
        ));
    }
    scopes.push(("employee".into(), "One employee (email)".into()));
    Ok(scopes)
}

async fn render(
    portal: &Portal,
    page: &Page,
    form: WhatIfForm,
    error: Option<String>,
    outcome: Option<Outcome>,
) -> Result<Response, PortalError> {
    let template = WhatIfPage {
        chrome: page.chrome(),
        scopes: scopes(portal, &page.tenant).await?,
        currency: page.tenant.currency.to_string(),
        max_days: MAX_REPLAY_DAYS,
        shown: CHANGED_LINES_SHOWN,
        error: error.clone(),
        outcome,
        form,
    };
    let mut response = page.render(&template)?;
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let current = portal.lineup.current_policy(tenant).await?;
    let employees = portal.lineup.employees(tenant).await?;
    let form = WhatIfForm::from_policy(&current, &page.tenant, &employees);
    render(&portal, &page, form, None, None).await
}

async fn run(
    State(portal): State<Portal>,
    page: Page,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let form = WhatIfForm::from_fields(&fields);
    let employees = portal.lineup.employees(page.tenant_id()).await?;
    let proposal = form
        .days()
        .and_then(|days| Ok((days, form.policy(&page.tenant, &employees)?)));
    let (days, proposed) = match proposal {
        Ok(proposal) => proposal,
        Err(PortalError::Invalid { field, reason }) => {
            return render(
                &portal,
                &page,
                form,
                Some(format!("{field}: {reason}")),
                None,
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    let today = lineup_core::store::now().date();
    match portal
        .lineup
        .what_if(page.tenant_id(), days, &proposed, today)
        .await
    {
        Ok(report) => {
            let outcome = Outcome::new(&page.tenant, &report);
            render(&portal, &page, form, None, Some(outcome)).await
        }
        Err(lineup_core::CoreError::Invalid { field, reason }) => {
            render(
                &portal,
                &page,
                form,
                Some(format!("{field}: {reason}")),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
