//! Policy: budget caps, roaming presets, and the pre-check that decides whether a request
//! is approved by policy, refused by policy, or routed to a person.

pub mod commands;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ids::{CostCentreId, EmployeeId, LineId, RequestId, TeamId, TenantId};
use crate::lines::plan::Plan;
use crate::lines::request::{RequestDetails, Route};
use crate::money::{Currency, Money};
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::tenant::TenantSettings;

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

/// Alert thresholds (percent of the cap) a new cap starts with, and the ones a cap naming
/// none is checked against.
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
    pub effect: crate::spend::guardrail::PolicyEffect,
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
