//! Policies: budget caps by employee, team, cost centre and organisation (amount, alert
//! thresholds, what happens at the cap) and roaming presets per country. Every change is
//! previewed first ("applies to N live lines of M employees"), then confirmed.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::{CostCentreId, EmployeeId, TeamId};
use lineup_core::spend::guardrail::PolicyEffect;
use lineup_core::spend::policy::{
    BudgetCap, CapAction, CapScope, DEFAULT_THRESHOLDS, Reach, RoamingRule, STARTER_CAP_MAJOR,
    STARTER_THRESHOLDS, country_code,
};
use serde::Deserialize;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::error::PortalError;
use crate::forms::Form;
use crate::pages::lines::Choice;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/policies", get(show))
        .route("/policies/caps/preview", post(preview_cap))
        .route("/policies/caps", post(save_cap))
        .route("/policies/caps/delete", post(delete_cap))
        .route("/policies/starter", post(apply_starter))
        .route("/policies/roaming/preview", post(preview_roaming))
        .route("/policies/roaming", post(save_roaming))
        .route("/policies/roaming/delete", post(delete_roaming))
}

const ROAMING_RULES: [RoamingRule; 3] = [
    RoamingRule::Allowed,
    RoamingRule::NeedsApproval,
    RoamingRule::Blocked,
];
const CAP_ACTIONS: [CapAction; 3] = [CapAction::Alert, CapAction::Throttle, CapAction::Suspend];

fn rule_label(rule: RoamingRule) -> &'static str {
    match rule {
        RoamingRule::Allowed => "allowed",
        RoamingRule::NeedsApproval => "needs approval",
        RoamingRule::Blocked => "blocked",
    }
}

/// What a change does at once, e.g. "raises 3 alerts and suspends 1 line"; `None` when nothing.
fn effect_text(effect: &PolicyEffect) -> Option<String> {
    let count = |n: usize, one: &str, many: &str| match n {
        0 => None,
        1 => Some(format!("{one} 1 {}", many.trim_end_matches('s'))),
        n => Some(format!("{one} {n} {many}")),
    };
    let parts: Vec<String> = [
        count(effect.alerts, "raises", "alerts"),
        count(effect.throttled, "slows down", "lines"),
        count(effect.suspended, "suspends", "lines"),
        count(effect.released, "gives back", "lines"),
    ]
    .into_iter()
    .flatten()
    .collect();
    match parts.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [rest @ .., last] => Some(format!("{} and {last}", rest.join(", "))),
    }
}

/// The flash after a save: what was saved and what it did at once.
fn saved_notice(what: &str, effect: &PolicyEffect) -> String {
    match effect_text(effect) {
        Some(done) => format!("{what}; given this month's usage so far it {done}"),
        None => what.to_owned(),
    }
}

fn action_label(action: CapAction) -> &'static str {
    match action {
        CapAction::Alert => "alert finance",
        CapAction::Throttle => "slow data down",
        CapAction::Suspend => "suspend the line",
    }
}

/// The cap form as typed: amount in major units, thresholds as `50, 80, 100`.
#[derive(Deserialize, Default, Clone)]
struct CapForm {
    /// `tenant`, `team:<id>`, `cost_centre:<id>`, `employee:<id>`, or `employee` with
    /// `employee_email`.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    employee_email: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    thresholds: String,
    #[serde(default)]
    action: String,
    /// `delete` previews removing the scope's cap instead of setting it.
    #[serde(default)]
    intent: String,
}

#[derive(Deserialize, Default, Clone)]
struct RoamingForm {
    #[serde(default)]
    country: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    intent: String,
}

struct CapRow {
    scope_value: String,
    scope_label: String,
    amount: String,
    thresholds: String,
    action: &'static str,
}

struct RoamingRow {
    country: String,
    rule: &'static str,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    currency: String,
    caps: Vec<CapRow>,
    roaming: Vec<RoamingRow>,
    can_manage: bool,
    /// The starter policy in a sentence, offered while there are no caps.
    starter: String,
    scopes: Vec<Choice>,
    actions: Vec<Choice>,
    rules: Vec<Choice>,
    cap_form: CapForm,
    roaming_form: RoamingForm,
    cap_error: Option<String>,
    roaming_error: Option<String>,
}

/// Names for cap scopes: teams, cost centres, employees.
struct ScopeNames {
    teams: HashMap<TeamId, String>,
    cost_centres: HashMap<CostCentreId, String>,
    employees: HashMap<EmployeeId, (String, String)>,
}

impl ScopeNames {
    async fn load(portal: &Portal, page: &Page) -> Result<Self, PortalError> {
        let tenant = page.tenant_id();
        let lineup = &portal.lineup;
        Ok(Self {
            teams: lineup
                .teams(tenant)
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
            cost_centres: lineup
                .cost_centres(tenant)
                .await?
                .into_iter()
                .map(|c| (c.id, format!("{} {}", c.code, c.name)))
                .collect(),
            employees: lineup
                .employees(tenant)
                .await?
                .into_iter()
                .map(|e| (e.id, (e.full_name(), e.email.to_string())))
                .collect(),
        })
    }

    fn label(&self, scope: CapScope) -> String {
        match scope {
            CapScope::Tenant => "Whole organisation".to_owned(),
            CapScope::Team(id) => format!(
                "Team {}",
                self.teams.get(&id).map_or("(removed)", String::as_str)
            ),
            CapScope::CostCentre(id) => format!(
                "Cost centre {}",
                self.cost_centres
                    .get(&id)
                    .map_or("(removed)", String::as_str)
            ),
            CapScope::Employee(id) => match self.employees.get(&id) {
                Some((name, email)) => format!("{name} <{email}>"),
                None => "(a removed employee)".to_owned(),
            },
        }
    }

    /// A scope from the form; an employee is named by email.
    fn parse(&self, form: &CapForm) -> Result<CapScope, PortalError> {
        let scope = form.scope.trim();
        let bad = || PortalError::invalid("scope", "choose who the cap is for");
        if scope == "tenant" {
            return Ok(CapScope::Tenant);
        }
        if scope == "employee" {
            let email = form.employee_email.trim();
            return self
                .employees
                .iter()
                .find(|(_, (_, e))| e.eq_ignore_ascii_case(email))
                .map(|(id, _)| CapScope::Employee(*id))
                .ok_or_else(|| {
                    PortalError::invalid(
                        "employee_email",
                        format!("{email:?} is not an employee of this organisation"),
                    )
                });
        }
        let (kind, id) = scope.split_once(':').ok_or_else(bad)?;
        let id: uuid::Uuid = id.parse().map_err(|_| bad())?;
        CapScope::parse(kind, Some(id)).ok_or_else(bad)
    }

    fn value(scope: CapScope) -> String {
        match scope.parts() {
            (kind, Some(id)) => format!("{kind}:{id}"),
            (kind, None) => kind.to_owned(),
        }
    }
}

fn parse_thresholds(text: &str) -> Result<Vec<u8>, PortalError> {
    if text.trim().is_empty() {
        return Ok(DEFAULT_THRESHOLDS.to_vec());
    }
    text.split([',', ' '])
        .map(|t| t.trim().trim_end_matches('%').trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| {
                    PortalError::invalid(
                        "thresholds",
                        format!("{t:?} is not a percentage from 1 to 100 (e.g. 50, 80, 100)"),
                    )
                })
        })
        .collect()
}

fn thresholds_text(thresholds: &[u8]) -> String {
    thresholds
        .iter()
        .map(|t| format!("{t}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CapForm {
    fn parse(&self, page: &Page, names: &ScopeNames) -> Result<BudgetCap, PortalError> {
        let scope = names.parse(self)?;
        let currency = page.tenant.currency;
        let amount_minor = currency.parse_amount(&self.amount).ok_or_else(|| {
            PortalError::invalid(
                "amount",
                format!(
                    "{:?} is not an amount in {currency} (e.g. 40.00)",
                    self.amount.trim()
                ),
            )
        })?;
        let action = CapAction::parse(self.action.trim())
            .ok_or_else(|| PortalError::invalid("action", "choose alert, throttle or suspend"))?;
        Ok(BudgetCap {
            scope,
            amount_minor,
            thresholds: parse_thresholds(&self.thresholds)?,
            action,
        })
    }
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let form = CapForm {
        scope: "tenant".into(),
        thresholds: "50, 80, 100".into(),
        action: "alert".into(),
        ..CapForm::default()
    };
    let roaming = RoamingForm {
        rule: RoamingRule::NeedsApproval.as_str().into(),
        ..RoamingForm::default()
    };
    render(&portal, &page, form, roaming, None, None).await
}

async fn render(
    portal: &Portal,
    page: &Page,
    cap_form: CapForm,
    roaming_form: RoamingForm,
    cap_error: Option<String>,
    roaming_error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let names = ScopeNames::load(portal, page).await?;
    let visible = portal
        .lineup
        .visible(tenant, page.signed.visibility())
        .await?;
    let caps = portal
        .lineup
        .budget_caps(tenant)
        .await?
        .into_iter()
        .filter(|c| match c.scope {
            CapScope::Employee(id) => visible.contains(id),
            _ => true,
        })
        .map(|c| CapRow {
            scope_value: ScopeNames::value(c.scope),
            scope_label: names.label(c.scope),
            amount: page.tenant.money(c.amount_minor).to_string(),
            thresholds: thresholds_text(&c.thresholds),
            action: action_label(c.action),
        })
        .collect();
    let roaming = portal
        .lineup
        .roaming_rules(tenant)
        .await?
        .into_iter()
        .map(|(country, rule)| RoamingRow {
            country,
            rule: rule_label(rule),
        })
        .collect();
    let mut scopes = vec![
        Choice::new("tenant", "Whole organisation", &cap_form.scope),
        Choice::new("employee", "One employee (by email below)", &cap_form.scope),
    ];
    let mut teams: Vec<_> = names.teams.iter().collect();
    teams.sort_by(|a, b| a.1.cmp(b.1));
    scopes.extend(teams.into_iter().map(|(id, name)| {
        Choice::new(
            ScopeNames::value(CapScope::Team(*id)),
            format!("Team {name}"),
            &cap_form.scope,
        )
    }));
    let mut centres: Vec<_> = names.cost_centres.iter().collect();
    centres.sort_by(|a, b| a.1.cmp(b.1));
    scopes.extend(centres.into_iter().map(|(id, name)| {
        Choice::new(
            ScopeNames::value(CapScope::CostCentre(*id)),
            format!("Cost centre {name}"),
            &cap_form.scope,
        )
    }));
    let failed = cap_error.is_some() || roaming_error.is_some();
    let template = PoliciesPage {
        chrome: page.chrome(),
        currency: page.tenant.currency.to_string(),
        caps,
        roaming,
        can_manage: allows(page.signed.session.role, Permission::ManagePolicies),
        starter: starter_text(page),
        scopes,
        actions: CAP_ACTIONS
            .iter()
            .map(|a| Choice::new(a.as_str(), action_label(*a), &cap_form.action))
            .collect(),
        rules: ROAMING_RULES
            .iter()
            .map(|r| Choice::new(r.as_str(), rule_label(*r), &roaming_form.rule))
            .collect(),
        cap_form,
        roaming_form,
        cap_error,
        roaming_error,
    };
    page.render_form(&template, failed)
}

/// A failed cap form: the page again with what was typed and which field is wrong.
async fn cap_invalid(
    portal: &Portal,
    page: &Page,
    form: CapForm,
    error: PortalError,
) -> Result<Response, PortalError> {
    match error {
        PortalError::Invalid { field, reason } => {
            let error = Some(format!("{field}: {reason}"));
            render(portal, page, form, RoamingForm::default(), error, None).await
        }
        other => Err(other),
    }
}

async fn roaming_invalid(
    portal: &Portal,
    page: &Page,
    form: RoamingForm,
    error: PortalError,
) -> Result<Response, PortalError> {
    match error {
        PortalError::Invalid { field, reason } => {
            let error = Some(format!("{field}: {reason}"));
            render(portal, page, CapForm::default(), form, None, error).await
        }
        other => Err(other),
    }
}

#[derive(Template)]
#[template(path = "policy_preview.html")]
struct PreviewPage {
    chrome: Chrome,
    heading: String,
    /// What the change does, in a sentence.
    change: String,
    reach: Reach,
    /// What saving does at once given this period's recorded spend and roaming.
    effect: String,
    /// Where the confirm form posts, and its fields.
    action: &'static str,
    fields: Vec<(&'static str, String)>,
    button: &'static str,
    danger: bool,
}

async fn preview_cap(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<CapForm>,
) -> Result<Response, PortalError> {
    let names = ScopeNames::load(&portal, &page).await?;
    let deleting = form.intent == "delete";
    let scope = match names.parse(&form) {
        Ok(scope) => scope,
        Err(e) => return cap_invalid(&portal, &page, form, e).await,
    };
    let tenant = page.tenant_id();
    let reach = portal.lineup.cap_reach(tenant, scope).await?;
    let who = names.label(scope);
    let template = if deleting {
        let effect = portal
            .lineup
            .preview_budget_cap_removal(tenant, scope)
            .await?;
        PreviewPage {
            effect: effect_sentence(&effect),
            chrome: page.chrome(),
            heading: "Remove this cap?".into(),
            change: format!(
                "The cap for {who} is removed. Its people fall back to a broader cap (team, cost centre, organisation) if there is one, or to none."
            ),
            reach,
            action: "/policies/caps/delete",
            fields: vec![("scope", ScopeNames::value(scope))],
            button: "Remove cap",
            danger: true,
        }
    } else {
        let cap = match form.parse(&page, &names) {
            Ok(cap) => cap,
            Err(e) => return cap_invalid(&portal, &page, form, e).await,
        };
        let effect = match portal.lineup.preview_budget_cap(tenant, cap.clone()).await {
            Ok(effect) => effect,
            Err(e) => return cap_invalid(&portal, &page, form, e.into()).await,
        };
        PreviewPage {
            effect: effect_sentence(&effect),
            chrome: page.chrome(),
            heading: "Save this cap?".into(),
            change: format!(
                "{who}: {} a month for all of its lines together, alerts at {}, and at the cap: {}.",
                page.tenant.money(cap.amount_minor),
                thresholds_text(&cap.thresholds),
                action_label(cap.action)
            ),
            reach,
            action: "/policies/caps",
            fields: vec![
                ("scope", ScopeNames::value(scope)),
                (
                    "amount",
                    page.tenant.currency.format_amount(cap.amount_minor),
                ),
                (
                    "thresholds",
                    cap.thresholds
                        .iter()
                        .map(u8::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                ("action", cap.action.as_str().to_owned()),
            ],
            button: "Save cap",
            danger: false,
        }
    };
    page.render(&template)
}

async fn save_cap(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<CapForm>,
) -> Result<Response, PortalError> {
    let names = ScopeNames::load(&portal, &page).await?;
    let cap = match form.parse(&page, &names) {
        Ok(cap) => cap,
        Err(e) => return cap_invalid(&portal, &page, form, e).await,
    };
    let who = names.label(cap.scope);
    match portal
        .lineup
        .set_budget_cap(page.tenant_id(), &page.actor(), cap)
        .await
    {
        Ok(effect) => Ok(redirect_with_notice(
            "/policies",
            &saved_notice(&format!("Cap saved for {who}"), &effect),
        )),
        Err(e) => cap_invalid(&portal, &page, form, e.into()).await,
    }
}

async fn delete_cap(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<CapForm>,
) -> Result<Response, PortalError> {
    let names = ScopeNames::load(&portal, &page).await?;
    let scope = match names.parse(&form) {
        Ok(scope) => scope,
        Err(e) => return cap_invalid(&portal, &page, form, e).await,
    };
    let effect = portal
        .lineup
        .delete_budget_cap(page.tenant_id(), &page.actor(), scope)
        .await?;
    Ok(redirect_with_notice(
        "/policies",
        &saved_notice(&format!("Cap removed for {}", names.label(scope)), &effect),
    ))
}

fn parse_roaming(form: &RoamingForm) -> Result<(String, RoamingRule), PortalError> {
    let country = country_code(&form.country)?;
    let rule = RoamingRule::parse(form.rule.trim())
        .ok_or_else(|| PortalError::invalid("rule", "choose allowed, needs approval or blocked"))?;
    Ok((country, rule))
}

async fn preview_roaming(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<RoamingForm>,
) -> Result<Response, PortalError> {
    let deleting = form.intent == "delete";
    let parsed = if deleting {
        country_code(&form.country)
            .map(|c| (c, RoamingRule::NeedsApproval))
            .map_err(PortalError::from)
    } else {
        parse_roaming(&form)
    };
    let (country, rule) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return roaming_invalid(&portal, &page, form, e).await,
    };
    let reach = portal.lineup.roaming_reach(page.tenant_id()).await?;
    let effect = portal
        .lineup
        .preview_roaming_rule(page.tenant_id(), &country, (!deleting).then_some(rule))
        .await?;
    let effect = effect_sentence(&effect);
    let template = if deleting {
        PreviewPage {
            effect,
            chrome: page.chrome(),
            heading: format!("Remove the preset for {country}?"),
            change: format!(
                "Roaming requests for {country} go to the requester's manager again. Grants already given stay until their trip ends."
            ),
            reach,
            action: "/policies/roaming/delete",
            fields: vec![("country", country)],
            button: "Remove preset",
            danger: true,
        }
    } else {
        PreviewPage {
            effect,
            chrome: page.chrome(),
            heading: format!("Roaming in {country}: {}?", rule_label(rule)),
            change: format!(
                "From now on, roaming requests for {country} are {}. Grants already given stay until their trip ends.",
                match rule {
                    RoamingRule::Allowed => "approved automatically",
                    RoamingRule::NeedsApproval => "sent to the requester's manager",
                    RoamingRule::Blocked => "refused",
                }
            ),
            reach,
            action: "/policies/roaming",
            fields: vec![("country", country), ("rule", rule.as_str().to_owned())],
            button: "Save preset",
            danger: rule == RoamingRule::Blocked,
        }
    };
    page.render(&template)
}

async fn save_roaming(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<RoamingForm>,
) -> Result<Response, PortalError> {
    let (country, rule) = match parse_roaming(&form) {
        Ok(parsed) => parsed,
        Err(e) => return roaming_invalid(&portal, &page, form, e).await,
    };
    let effect = portal
        .lineup
        .set_roaming_rule(page.tenant_id(), &page.actor(), &country, rule)
        .await?;
    Ok(redirect_with_notice(
        "/policies",
        &saved_notice(
            &format!("Roaming in {country}: {}", rule_label(rule)),
            &effect,
        ),
    ))
}

async fn delete_roaming(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<RoamingForm>,
) -> Result<Response, PortalError> {
    let country = match country_code(&form.country) {
        Ok(country) => country,
        Err(e) => return roaming_invalid(&portal, &page, form, e.into()).await,
    };
    let effect = portal
        .lineup
        .delete_roaming_rule(page.tenant_id(), &page.actor(), &country)
        .await?;
    Ok(redirect_with_notice(
        "/policies",
        &saved_notice(&format!("Roaming preset for {country} removed"), &effect),
    ))
}

/// The preview's line on what saving does at once.
fn effect_sentence(effect: &PolicyEffect) -> String {
    match effect_text(effect) {
        Some(done) => format!("Saved now, given this month's usage so far, it {done}."),
        None => "Given this month's usage so far, saving it changes no line at once.".to_owned(),
    }
}

fn starter_text(page: &Page) -> String {
    let amount = page
        .tenant
        .currency
        .format_amount(STARTER_CAP_MAJOR * 10_i64.pow(page.tenant.currency.minor_exponent()));
    format!(
        "Every active employee gets a cap of {amount} {} a month, alerting at {} and slowing \
         data down at the cap; roaming keeps needing approval in every country.",
        page.tenant.currency,
        thresholds_text(&STARTER_THRESHOLDS)
    )
}

async fn apply_starter(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let notice = match portal
        .lineup
        .apply_starter_policy(page.tenant_id(), &page.actor())
        .await
    {
        Ok(starter) => saved_notice(
            &format!("Starter policy applied: {} employee caps", starter.caps),
            &starter.effect,
        ),
        Err(lineup_core::CoreError::Conflict(why)) => format!("Not applied: {why}"),
        Err(lineup_core::CoreError::Invalid { reason, .. }) => format!("Not applied: {reason}"),
        Err(other) => return Err(other.into()),
    };
    Ok(redirect_with_notice("/policies", &notice))
}
