//! Policy: budget caps, roaming presets, and the pre-check that decides whether a request
//! is approved by policy, refused by policy, or routed to a person.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::employee::{Employee, EmployeeStatus};
use crate::ids::{CostCentreId, EmployeeId, LineId, RequestId, TeamId, TenantId};
use crate::money::{Currency, Money};
use crate::plan::Plan;
use crate::request::{RequestDetails, Route};
use crate::tenant::TenantSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum CapScope {
    Tenant,
    CostCentre(CostCentreId),
    Team(TeamId),
    Employee(EmployeeId),
}

impl CapScope {
    pub fn parts(&self) -> (&'static str, Option<uuid::Uuid>) {
        match self {
            Self::Tenant => ("tenant", None),
            Self::CostCentre(id) => ("cost_centre", Some(id.0)),
            Self::Team(id) => ("team", Some(id.0)),
            Self::Employee(id) => ("employee", Some(id.0)),
        }
    }

    pub fn parse(kind: &str, id: Option<uuid::Uuid>) -> Option<Self> {
        match (kind, id) {
            ("tenant", _) => Some(Self::Tenant),
            ("cost_centre", Some(id)) => Some(Self::CostCentre(CostCentreId(id))),
            ("team", Some(id)) => Some(Self::Team(TeamId(id))),
            ("employee", Some(id)) => Some(Self::Employee(EmployeeId(id))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapAction {
    #[default]
    Alert,
    Throttle,
    Suspend,
}

impl CapAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Throttle => "throttle",
            Self::Suspend => "suspend",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Alert, Self::Throttle, Self::Suspend]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// A monthly budget for a scope: the summed spend of every line in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCap {
    pub scope: CapScope,
    pub amount_minor: i64,
    /// Percentages that alert, e.g. [50, 80, 100]; none given means 50, 80 and 100.
    #[serde(default)]
    pub thresholds: Vec<u8>,
    pub action: CapAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoamingRule {
    Allowed,
    NeedsApproval,
    Blocked,
}

impl RoamingRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::NeedsApproval => "needs_approval",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Allowed, Self::NeedsApproval, Self::Blocked]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoamingGrant {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub line_id: LineId,
    pub country: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub request_id: Option<RequestId>,
    /// scheduled → active → ended (or revoked).
    pub state: String,
}

/// What policy says about a request before any person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    AutoApprove { why: String },
    AutoDeny { why: String },
    Route { to: Route, why: String },
}

/// Everything the pre-check needs to know, gathered by the caller.
pub struct Facts<'a> {
    pub settings: &'a TenantSettings,
    pub requester: &'a Employee,
    /// The requester's lines that are ready, active or suspended.
    pub live_lines: usize,
    pub plan: Option<&'a Plan>,
    pub roaming_rule: Option<RoamingRule>,
    pub currency: Currency,
}

/// Longest roaming grant a chat request may ask for; longer stays need a plan change.
pub const MAX_TRIP_DAYS: i64 = 90;

pub fn evaluate(details: &RequestDetails, facts: &Facts<'_>) -> Verdict {
    let settings = facts.settings;
    let money = |minor: i64| Money::new(minor, facts.currency).to_string();
    let person = if facts.requester.manager_id.is_some() {
        Route::Manager
    } else {
        Route::Admins
    };
    let deny = |why: String| Verdict::AutoDeny { why };
    if facts.requester.status != EmployeeStatus::Active {
        return deny("you are no longer an active employee".into());
    }
    match details {
        RequestDetails::NewLine { .. } => {
            let Some(plan) = facts.plan.filter(|p| p.active) else {
                return deny("that plan is no longer offered".into());
            };
            if facts.live_lines > 0 {
                return deny(
                    "you already have a line; ask for a plan change or a cap raise instead".into(),
                );
            }
            match (plan.price, settings.new_line_auto_approve_max_price_minor) {
                (Some(price), Some(max)) if price.minor <= max => Verdict::AutoApprove {
                    why: format!(
                        "{} costs {}, within the preset of {}",
                        plan.name,
                        money(price.minor),
                        money(max)
                    ),
                },
                _ => Verdict::Route {
                    to: person,
                    why: format!("new lines need {} approval", who(person)),
                },
            }
        }
        RequestDetails::CapRaise { amount_minor } => {
            let amount = *amount_minor;
            if amount > settings.cap_raise_max_minor {
                deny(format!(
                    "{} is above the largest raise your company allows ({})",
                    money(amount),
                    money(settings.cap_raise_max_minor)
                ))
            } else if amount <= settings.cap_raise_auto_approve_max_minor {
                Verdict::AutoApprove {
                    why: format!(
                        "raises up to {} are pre-approved",
                        money(settings.cap_raise_auto_approve_max_minor)
                    ),
                }
            } else if amount > settings.cap_raise_finance_threshold_minor {
                Verdict::Route {
                    to: Route::Finance,
                    why: format!(
                        "raises above {} go to finance",
                        money(settings.cap_raise_finance_threshold_minor)
                    ),
                }
            } else {
                Verdict::Route {
                    to: person,
                    why: format!("cap raises need {} approval", who(person)),
                }
            }
        }
        RequestDetails::Roaming {
            country, from, to, ..
        } => {
            if (*to - *from).whole_days() + 1 > MAX_TRIP_DAYS {
                return deny(format!(
                    "trips longer than {MAX_TRIP_DAYS} days need a plan change, not a roaming grant"
                ));
            }
            match facts.roaming_rule {
                Some(RoamingRule::Blocked) => deny(format!(
                    "roaming in {country} is blocked by your company's policy"
                )),
                Some(RoamingRule::Allowed) => Verdict::AutoApprove {
                    why: format!("roaming in {country} is pre-approved"),
                },
                Some(RoamingRule::NeedsApproval) | None => Verdict::Route {
                    to: person,
                    why: format!("roaming in {country} needs {} approval", who(person)),
                },
            }
        }
    }
}

fn who(route: Route) -> &'static str {
    match route {
        Route::Manager => "your manager's",
        Route::Finance => "finance",
        Route::Admins | Route::Auto => "an admin's",
    }
}

/// ISO 3166-1 alpha-2: every officially assigned country code.
const ISO_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ \
    EC EE EG EH ER ES ET FI FJ FK FM FO FR \
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
    LA LB LC LI LK LR LS LT LU LV LY \
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
    NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
    RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
    VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country code as typed (`fr`, ` FR `) checked against ISO 3166-1 alpha-2.
pub fn country_code(input: &str) -> Result<String, crate::error::CoreError> {
    let code = input.trim().to_ascii_uppercase();
    if code.len() == 2 && ISO_COUNTRIES.split_ascii_whitespace().any(|c| c == code) {
        Ok(code)
    } else {
        Err(crate::error::CoreError::invalid(
            "country",
            format!(
                "{:?} is not an ISO 3166 two-letter country code (e.g. FR, US, JP)",
                input.trim()
            ),
        ))
    }
}

/// Alert thresholds a new cap starts with.
pub const DEFAULT_THRESHOLDS: [u8; 3] = [50, 80, 100];

/// Whom a policy change reaches: employees it governs and their live lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reach {
    /// Active employees the policy governs.
    pub employees: usize,
    /// Of those, the ones holding at least one live line.
    pub employees_with_lines: usize,
    /// Their ready, active and suspended lines.
    pub live_lines: i64,
}

/// How long a policy save waits for the provider to carry out what the change decided
/// (suspensions, throttles, lines given back) before it returns; the rest finishes in the
/// background, and actions still pending are retried by the next usage sync.
pub const POLICY_ACT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The suggested starter policy: every active employee gets a cap of this many major units of
/// the tenant's currency, alerting at `STARTER_THRESHOLDS` and slowing data down at the cap.
/// Roaming keeps needing approval in every country (no country is pre-approved).
pub const STARTER_CAP_MAJOR: i64 = 50;
pub const STARTER_THRESHOLDS: [u8; 1] = [80];

/// What `apply_starter_policy` created, and what it did at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StarterPolicy {
    pub caps: usize,
    pub amount_minor: i64,
    pub effect: crate::guardrail::PolicyEffect,
}

pub mod commands {
    use std::collections::HashMap;

    use super::*;
    use crate::app::{Lineup, record, required, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::{CoreError, CoreResult};
    use crate::guardrail::PolicyEffect;
    use crate::guardrail::commands::PolicyChange;
    use crate::store;

    impl Lineup {
        #[tracing::instrument(skip_all, fields(tenant = %tenant, country = country))]
        pub async fn set_roaming_rule(
            &self,
            tenant: TenantId,
            actor: &Actor,
            country: &str,
            rule: RoamingRule,
        ) -> CoreResult<PolicyEffect> {
            let country = country_code(country)?;
            let mut tx = self.tenant_tx(tenant).await?;
            let before = store::policy::roaming_rule(&mut tx, tenant, &country).await?;
            store::policy::set_roaming_rule(&mut tx, tenant, &country, rule).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "policy.roaming_rule_set",
                ("roaming_preset", country.clone()),
                to_json(&before),
                to_json(&rule),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            self.enforce_policy_change(tenant, PolicyChange::Roaming(&country))
                .await
        }

        /// What setting (`Some`) or removing (`None`) `country`'s preset would do now to the
        /// roaming already recorded this period: decided as `set_roaming_rule` decides it, in
        /// a transaction that is then rolled back.
        pub async fn preview_roaming_rule(
            &self,
            tenant: TenantId,
            country: &str,
            rule: Option<RoamingRule>,
        ) -> CoreResult<PolicyEffect> {
            let country = country_code(country)?;
            let mut tx = self.tenant_tx(tenant).await?;
            match rule {
                Some(rule) => {
                    store::policy::set_roaming_rule(&mut tx, tenant, &country, rule).await?
                }
                None => {
                    store::policy::delete_roaming_rule(&mut tx, tenant, &country).await?;
                }
            }
            let (effect, _) = self
                .evaluate_policy_change(
                    &mut tx,
                    tenant,
                    PolicyChange::Roaming(&country),
                    store::now(),
                )
                .await?;
            Ok(effect)
        }

        /// Remove a country's preset: requests for it go to a person again.
        #[tracing::instrument(skip_all, fields(tenant = %tenant, country = country))]
        pub async fn delete_roaming_rule(
            &self,
            tenant: TenantId,
            actor: &Actor,
            country: &str,
        ) -> CoreResult<PolicyEffect> {
            let country = country_code(country)?;
            let mut tx = self.tenant_tx(tenant).await?;
            let before = store::policy::roaming_rule(&mut tx, tenant, &country).await?;
            if !store::policy::delete_roaming_rule(&mut tx, tenant, &country).await? {
                return Err(CoreError::not_found("roaming preset", &country));
            }
            let event = AuditEvent::new(
                tenant,
                actor,
                "policy.roaming_rule_deleted",
                ("roaming_preset", country.clone()),
                to_json(&before),
                None,
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            self.enforce_policy_change(tenant, PolicyChange::Roaming(&country))
                .await
        }

        pub async fn roaming_rules(
            &self,
            tenant: TenantId,
        ) -> CoreResult<Vec<(String, RoamingRule)>> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(store::policy::list_roaming_rules(&mut tx, tenant).await?)
        }

        /// Save a scope's cap, then act on it at once: the spend already recorded this period
        /// is checked against it as usage ingest would (alerts at passed thresholds, its action
        /// on the scope's active lines at the cap), and lines it held that it no longer needs
        /// to (after a raise) are given back. Returns what that did.
        #[tracing::instrument(skip_all, fields(tenant = %tenant))]
        pub async fn set_budget_cap(
            &self,
            tenant: TenantId,
            actor: &Actor,
            cap: BudgetCap,
        ) -> CoreResult<PolicyEffect> {
            let cap = validated(cap)?;
            let mut tx = self.tenant_tx(tenant).await?;
            self.check_scope(&mut tx, tenant, cap.scope).await?;
            let caps = store::policy::list_caps(&mut tx, tenant).await?;
            let before = caps.iter().find(|c| c.scope == cap.scope);
            store::policy::upsert_cap(&mut tx, tenant, &cap).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "policy.budget_cap_set",
                ("budget_cap", cap_subject(cap.scope)),
                before.and_then(to_json),
                to_json(&cap),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            self.enforce_policy_change(tenant, PolicyChange::Caps(&[cap.scope]))
                .await
        }

        /// What saving `cap` would do now (see `set_budget_cap`), decided the same way in a
        /// transaction that is then rolled back.
        pub async fn preview_budget_cap(
            &self,
            tenant: TenantId,
            cap: BudgetCap,
        ) -> CoreResult<PolicyEffect> {
            let cap = validated(cap)?;
            let mut tx = self.tenant_tx(tenant).await?;
            self.check_scope(&mut tx, tenant, cap.scope).await?;
            store::policy::upsert_cap(&mut tx, tenant, &cap).await?;
            let (effect, _) = self
                .evaluate_policy_change(
                    &mut tx,
                    tenant,
                    PolicyChange::Caps(&[cap.scope]),
                    store::now(),
                )
                .await?;
            Ok(effect)
        }

        /// What removing the cap of `scope` would do now: the lines it holds that no other
        /// cap holds are given back.
        pub async fn preview_budget_cap_removal(
            &self,
            tenant: TenantId,
            scope: CapScope,
        ) -> CoreResult<PolicyEffect> {
            let mut tx = self.tenant_tx(tenant).await?;
            store::policy::delete_cap(&mut tx, tenant, scope).await?;
            let (effect, _) = self
                .evaluate_policy_change(&mut tx, tenant, PolicyChange::Caps(&[scope]), store::now())
                .await?;
            Ok(effect)
        }

        /// After a policy change committed: decide what it calls for given what is recorded,
        /// commit that, and carry it out, waiting at most `POLICY_ACT_WAIT` for the provider
        /// (a slow provider never fails the save; the work goes on in the background).
        async fn enforce_policy_change(
            &self,
            tenant: TenantId,
            change: PolicyChange<'_>,
        ) -> CoreResult<PolicyEffect> {
            let mut tx = self.tenant_tx(tenant).await?;
            let (effect, release) = self
                .evaluate_policy_change(&mut tx, tenant, change, store::now())
                .await?;
            tx.commit().await?;
            if effect.throttled + effect.suspended == 0 && release.is_empty() {
                return Ok(effect);
            }
            let lineup = self.clone();
            let acting =
                tokio::spawn(async move { lineup.act_on_policy_change(tenant, release).await });
            match tokio::time::timeout(POLICY_ACT_WAIT, acting).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(
                    %tenant, error = %e,
                    "carrying out a policy change failed; the next usage sync retries what is pending"
                ),
                Ok(Err(e)) => {
                    tracing::error!(%tenant, error = %e, "carrying out a policy change panicked")
                }
                Err(_) => tracing::info!(
                    %tenant,
                    "the provider is slow; the policy change is being carried out in the background"
                ),
            }
            Ok(effect)
        }

        /// Create the suggested starter policy (see `STARTER_CAP_MAJOR`): a cap for every
        /// active employee, each audited, acting at once like any saved cap. Only for an
        /// organisation with no caps yet: applying it again creates nothing.
        #[tracing::instrument(skip_all, fields(tenant = %tenant))]
        pub async fn apply_starter_policy(
            &self,
            tenant: TenantId,
            actor: &Actor,
        ) -> CoreResult<StarterPolicy> {
            let mut tx = self.tenant_tx(tenant).await?;
            if !store::policy::list_caps(&mut tx, tenant).await?.is_empty() {
                return Err(CoreError::Conflict(
                    "this organisation already has budget caps, so the starter policy was not \
                     applied; change the caps on the policies page instead"
                        .into(),
                ));
            }
            let currency = required(
                store::tenants::get(&mut tx, tenant).await?,
                "tenant",
                tenant,
            )?
            .currency;
            let amount_minor = STARTER_CAP_MAJOR * 10_i64.pow(currency.minor_exponent());
            let caps: Vec<BudgetCap> = store::employees::list(&mut tx, tenant)
                .await?
                .into_iter()
                .filter(|e| e.status == EmployeeStatus::Active)
                .map(|e| BudgetCap {
                    scope: CapScope::Employee(e.id),
                    amount_minor,
                    thresholds: STARTER_THRESHOLDS.to_vec(),
                    action: CapAction::Throttle,
                })
                .collect();
            if caps.is_empty() {
                return Err(CoreError::invalid(
                    "employees",
                    "the starter policy caps each active employee, and there are none yet: \
                     import your people first",
                ));
            }
            let mut events = Vec::with_capacity(caps.len() + 1);
            for cap in &caps {
                store::policy::upsert_cap(&mut tx, tenant, cap).await?;
                events.push(AuditEvent::new(
                    tenant,
                    actor,
                    "policy.budget_cap_set",
                    ("budget_cap", cap_subject(cap.scope)),
                    None,
                    to_json(cap),
                ));
            }
            events.push(AuditEvent::new(
                tenant,
                actor,
                "policy.starter_policy_applied",
                ("policy", "starter".to_owned()),
                None,
                to_json(&serde_json::json!({
                    "employee_caps": caps.len(), "amount_minor": amount_minor,
                    "thresholds": STARTER_THRESHOLDS, "action": CapAction::Throttle,
                })),
            ));
            store::audit::insert_many(&mut tx, tenant, &events).await?;
            tx.commit().await?;
            let scopes: Vec<CapScope> = caps.iter().map(|c| c.scope).collect();
            let effect = self
                .enforce_policy_change(tenant, PolicyChange::Caps(&scopes))
                .await?;
            Ok(StarterPolicy {
                caps: caps.len(),
                amount_minor,
                effect,
            })
        }

        /// Whether the organisation has set any policy: a budget cap or a roaming preset.
        pub async fn has_policy(&self, tenant: TenantId) -> CoreResult<bool> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(!store::policy::list_caps(&mut tx, tenant).await?.is_empty()
                || !store::policy::list_roaming_rules(&mut tx, tenant)
                    .await?
                    .is_empty())
        }

        /// Remove a scope's cap: its people fall back to the next broader cap, if any, and the
        /// lines it slowed or suspended this period that no other cap holds are given back.
        #[tracing::instrument(skip_all, fields(tenant = %tenant))]
        pub async fn delete_budget_cap(
            &self,
            tenant: TenantId,
            actor: &Actor,
            scope: CapScope,
        ) -> CoreResult<PolicyEffect> {
            let mut tx = self.tenant_tx(tenant).await?;
            let caps = store::policy::list_caps(&mut tx, tenant).await?;
            let Some(before) = caps.iter().find(|c| c.scope == scope) else {
                return Err(CoreError::not_found("budget cap", cap_subject(scope)));
            };
            store::policy::delete_cap(&mut tx, tenant, scope).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "policy.budget_cap_deleted",
                ("budget_cap", cap_subject(scope)),
                to_json(before),
                None,
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            self.enforce_policy_change(tenant, PolicyChange::Caps(&[scope]))
                .await
        }

        pub async fn budget_caps(&self, tenant: TenantId) -> CoreResult<Vec<BudgetCap>> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(store::policy::list_caps(&mut tx, tenant).await?)
        }

        /// Whom the cap of `scope` governs (or would, once set): the active employees in the
        /// scope, whose lines' spend it adds up, and their live lines.
        pub async fn cap_reach(&self, tenant: TenantId, scope: CapScope) -> CoreResult<Reach> {
            let mut tx = self.tenant_tx(tenant).await?;
            self.check_scope(&mut tx, tenant, scope).await?;
            let employees = store::employees::list(&mut tx, tenant).await?;
            let lines = store::lines::live_counts_by_employee(&mut tx, tenant).await?;
            Ok(reach(&employees, &lines, |e| {
                crate::guardrail::Owner {
                    employee: e.id,
                    team: e.team_id,
                    cost_centre: e.cost_centre_id,
                }
                .is_in(scope)
            }))
        }

        /// A roaming preset applies to everyone: every active employee and live line.
        pub async fn roaming_reach(&self, tenant: TenantId) -> CoreResult<Reach> {
            let mut tx = self.tenant_tx(tenant).await?;
            let employees = store::employees::list(&mut tx, tenant).await?;
            let lines = store::lines::live_counts_by_employee(&mut tx, tenant).await?;
            Ok(reach(&employees, &lines, |_| true))
        }

        /// A cap's team, cost centre or employee must belong to this tenant.
        async fn check_scope(
            &self,
            tx: &mut store::Tx,
            tenant: TenantId,
            scope: CapScope,
        ) -> CoreResult<()> {
            let exists = match scope {
                CapScope::Tenant => true,
                CapScope::Employee(id) => store::employees::get(tx, tenant, id).await?.is_some(),
                CapScope::Team(id) => store::org::team_exists(tx, tenant, id).await?,
                CapScope::CostCentre(id) => store::org::cost_centre_exists(tx, tenant, id).await?,
            };
            if exists {
                Ok(())
            } else {
                Err(CoreError::invalid(
                    "scope",
                    "that team, cost centre or employee is not in this organisation",
                ))
            }
        }
    }

    fn reach(
        employees: &[Employee],
        live_lines: &[(EmployeeId, i64)],
        governed: impl Fn(&Employee) -> bool,
    ) -> Reach {
        let lines: HashMap<EmployeeId, i64> = live_lines.iter().copied().collect();
        let mut out = Reach::default();
        for employee in employees
            .iter()
            .filter(|e| e.status == EmployeeStatus::Active && governed(e))
        {
            out.employees += 1;
            let held = lines.get(&employee.id).copied().unwrap_or(0);
            if held > 0 {
                out.employees_with_lines += 1;
                out.live_lines += held;
            }
        }
        out
    }

    /// A cap as saved: a non-negative amount, thresholds from 1 to 100 %, sorted, each once.
    fn validated(mut cap: BudgetCap) -> CoreResult<BudgetCap> {
        if cap.amount_minor < 0 {
            return Err(CoreError::invalid("amount", "must not be negative"));
        }
        if let Some(bad) = cap.thresholds.iter().find(|t| **t == 0 || **t > 100) {
            return Err(CoreError::invalid(
                "thresholds",
                format!("{bad}% is not between 1 and 100"),
            ));
        }
        cap.thresholds.sort_unstable();
        cap.thresholds.dedup();
        Ok(cap)
    }

    fn cap_subject(scope: CapScope) -> String {
        let (kind, id) = scope.parts();
        format!("{kind}:{}", id.map(|i| i.to_string()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_iso_3166_alpha_2() {
        assert_eq!(ISO_COUNTRIES.split_ascii_whitespace().count(), 249);
        assert_eq!(country_code(" fr ").unwrap(), "FR");
        for bad in ["XX", "UK", "FRA", "F", "", "1A"] {
            let err = country_code(bad).unwrap_err().to_string();
            assert!(err.contains("ISO 3166"), "{bad}: {err}");
        }
    }
}
