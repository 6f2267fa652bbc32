//! Which of a tenant's provider connections gets a new order: the tenant's rule table
//! (country, plan kind, team → connection, and whether the order may fail over), and what
//! counts as an equivalent plan on another connection.
//!
//! A rule's conditions all hold, or it does not match; an empty condition matches anything.
//! The first matching rule (lowest position) names the connection. With no matching rule the
//! order goes to the primary connection and may fail over: without rules, a tenant that
//! connected a second provider wants it used when the first is down. A rule with
//! `allow_failover` off pins its orders to its connection, whatever its health.

use serde::{Deserialize, Serialize};

use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ProviderConnectionId, ProviderRouteId, TeamId, TenantId};
use crate::lines::plan::Plan;
use crate::provider::Validity;
use crate::store::{self, now};

/// The kind of plan a rule is about: a monthly line, or a travel package (a number of days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutePlanKind {
    Monthly,
    Travel,
}

impl RoutePlanKind {
    pub fn of(plan: &Plan) -> Self {
        match plan.validity {
            Validity::Monthly => Self::Monthly,
            Validity::Days(_) => Self::Travel,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Travel => "travel",
        }
    }

    pub fn parse(text: &str) -> CoreResult<Self> {
        match text {
            "monthly" => Ok(Self::Monthly),
            "travel" => Ok(Self::Travel),
            other => Err(CoreError::invalid(
                "plan_kind",
                format!("{other:?} is not a plan kind (monthly or travel)"),
            )),
        }
    }
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRule {
    pub id: ProviderRouteId,
    pub position: i32,
    /// ISO 3166 alpha-2, upper case: the ordered plan covers this country.
    pub country: Option<String>,
    pub plan_kind: Option<RoutePlanKind>,
    pub team_id: Option<TeamId>,
    pub provider_connection_id: ProviderConnectionId,
    pub allow_failover: bool,
}

/// A rule as an admin writes it; its position is its place in the submitted list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRouteRule {
    pub country: Option<String>,
    pub plan_kind: Option<RoutePlanKind>,
    pub team_id: Option<TeamId>,
    pub provider_connection_id: Option<ProviderConnectionId>,
    pub allow_failover: bool,
}

/// What a new order is known by when it is routed.
#[derive(Debug, Clone, Copy)]
pub struct OrderFacts<'a> {
    pub plan: &'a Plan,
    pub team: Option<TeamId>,
}

impl RouteRule {
    pub fn matches(&self, order: &OrderFacts<'_>) -> bool {
        self.country
            .as_ref()
            .is_none_or(|c| order.plan.coverage.iter().any(|covered| covered == c))
            && self
                .plan_kind
                .is_none_or(|kind| kind == RoutePlanKind::of(order.plan))
            && self.team_id.is_none_or(|team| order.team == Some(team))
    }
}

/// The connections to try for an order, in order: the routed one first, then (when the rule
/// allows failover) the tenant's other connections by position.
pub fn candidates(
    rules: &[RouteRule],
    connections: &[ProviderConnectionId],
    order: &OrderFacts<'_>,
) -> Vec<ProviderConnectionId> {
    let rule = rules.iter().find(|r| r.matches(order));
    let (first, failover) = match rule {
        Some(rule) => (Some(rule.provider_connection_id), rule.allow_failover),
        None => (order.plan.provider_connection_id, true),
    };
    let mut ordered: Vec<ProviderConnectionId> = first.into_iter().collect();
    if failover || ordered.is_empty() {
        ordered.extend(connections.iter().filter(|c| Some(**c) != first));
    }
    if !failover {
        ordered.truncate(1);
    }
    ordered
}

/// The plan on another connection that gives the employee at least what `wanted` gives:
/// the same validity, at least its data (unlimited beats any cap), every country it covers;
/// the cheapest such plan (an unpriced one last), among active plans.
pub fn equivalent_plan<'a>(
    wanted: &Plan,
    offered: impl IntoIterator<Item = &'a Plan>,
) -> Option<&'a Plan> {
    let data_at_least = |p: &Plan| match (p.data, wanted.data) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(have), Some(need)) => have.0 >= need.0,
    };
    offered
        .into_iter()
        .filter(|p| p.active && p.validity == wanted.validity && data_at_least(p))
        .filter(|p| wanted.coverage.iter().all(|c| p.coverage.contains(c)))
        .filter(|p| {
            // Prices in another currency cannot be compared: only the same currency or none.
            match (p.price, wanted.price) {
                (Some(a), Some(b)) => a.currency == b.currency,
                _ => true,
            }
        })
        .min_by_key(|p| (p.price.is_none(), p.price.map(|m| m.minor)))
}

/// Check a submitted table: known connections, real country codes, no rule hidden behind an
/// earlier one that matches everything it does.
pub fn validate(
    rules: &[NewRouteRule],
    connections: &[ProviderConnectionId],
) -> CoreResult<Vec<NewRouteRule>> {
    let mut checked: Vec<NewRouteRule> = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let row = index + 1;
        let Some(connection) = rule.provider_connection_id else {
            return Err(CoreError::invalid(
                "provider_connection_id",
                format!("rule {row}: choose the provider its orders go to"),
            ));
        };
        if !connections.contains(&connection) {
            return Err(CoreError::invalid(
                "provider_connection_id",
                format!("rule {row}: that provider is not connected to this company"),
            ));
        }
        let country = match rule.country.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => {
                let upper = code.to_ascii_uppercase();
                if upper.len() != 2 || !upper.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(CoreError::invalid(
                        "country",
                        format!("rule {row}: {code:?} is not a two-letter country code (e.g. DE)"),
                    ));
                }
                Some(upper)
            }
        };
        let rule = NewRouteRule {
            country,
            ..rule.clone()
        };
        if let Some(earlier) = checked.iter().position(|e| shadows(e, &rule)) {
            return Err(CoreError::invalid(
                "rules",
                format!(
                    "rule {row} can never match: rule {} before it matches every order it does",
                    earlier + 1
                ),
            ));
        }
        checked.push(rule);
    }
    Ok(checked)
}

/// Whether every order `later` matches is matched by `earlier` first.
fn shadows(earlier: &NewRouteRule, later: &NewRouteRule) -> bool {
    fn covers<T: PartialEq>(earlier: &Option<T>, later: &Option<T>) -> bool {
        earlier.is_none() || earlier == later
    }
    covers(&earlier.country, &later.country)
        && covers(&earlier.plan_kind, &later.plan_kind)
        && covers(&earlier.team_id, &later.team_id)
}

impl Lineup {
    /// The tenant's routing table, first to match first.
    pub async fn provider_routes(&self, tenant: TenantId) -> CoreResult<Vec<RouteRule>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::provider_routes::list(&mut tx, tenant).await?)
    }

    /// Replace the tenant's routing table with `rules`, in that order, after checking it
    /// (see [`validate`]; a team must be the tenant's); audited as one change.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, rules = rules.len()))]
    pub async fn set_provider_routes(
        &self,
        tenant: TenantId,
        actor: &Actor,
        rules: &[NewRouteRule],
    ) -> CoreResult<Vec<RouteRule>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let connections: Vec<ProviderConnectionId> =
            store::provider_connections::list(&mut tx, tenant)
                .await?
                .iter()
                .map(|c| c.id)
                .collect();
        let checked = validate(rules, &connections)?;
        for (index, rule) in checked.iter().enumerate() {
            if let Some(team) = rule.team_id
                && !store::org::team_exists(&mut tx, tenant, team).await?
            {
                return Err(CoreError::invalid(
                    "team_id",
                    format!("rule {}: that team is not one of this company's", index + 1),
                ));
            }
        }
        let before = store::provider_routes::list(&mut tx, tenant).await?;
        let after: Vec<RouteRule> = checked
            .into_iter()
            .enumerate()
            .map(|(position, rule)| RouteRule {
                id: ProviderRouteId::new(),
                position: position as i32,
                country: rule.country,
                plan_kind: rule.plan_kind,
                team_id: rule.team_id,
                provider_connection_id: rule
                    .provider_connection_id
                    .expect("validated rules name a connection"),
                allow_failover: rule.allow_failover,
            })
            .collect();
        store::provider_routes::replace(&mut tx, tenant, &after, now()).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "provider.routes_changed",
            ("tenant", tenant.to_string()),
            Some(serde_json::json!({ "rules": before })),
            Some(serde_json::json!({ "rules": after })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PlanId, TenantId};
    use crate::money::{Bytes, Currency, Money};

    fn plan(
        connection: ProviderConnectionId,
        gb: Option<i64>,
        validity: Validity,
        coverage: &[&str],
        price: i64,
    ) -> Plan {
        Plan {
            id: PlanId::new(),
            tenant_id: TenantId::new(),
            provider: "1global".into(),
            provider_connection_id: Some(connection),
            offering_id: format!("o-{price}"),
            template_id: None,
            name: format!("plan {price}"),
            data: gb.map(|g| Bytes(g << 30)),
            validity,
            coverage: coverage.iter().map(|c| c.to_string()).collect(),
            price: Some(Money::new(price, Currency::USD)),
            overage_per_gb: None,
            roaming_per_gb_minor: Default::default(),
            throttle_after_cap_kbps: None,
            active: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn rule(
        position: i32,
        country: Option<&str>,
        connection: ProviderConnectionId,
        allow_failover: bool,
    ) -> RouteRule {
        RouteRule {
            id: ProviderRouteId::new(),
            position,
            country: country.map(str::to_owned),
            plan_kind: None,
            team_id: None,
            provider_connection_id: connection,
            allow_failover,
        }
    }

    #[test]
    fn the_first_matching_rule_routes_and_failover_adds_the_others_in_order() {
        let (a, b, c) = (
            ProviderConnectionId::new(),
            ProviderConnectionId::new(),
            ProviderConnectionId::new(),
        );
        let german = plan(a, Some(5), Validity::Monthly, &["DE", "FR"], 1000);
        let order = OrderFacts {
            plan: &german,
            team: None,
        };
        let rules = [rule(0, Some("US"), a, true), rule(1, Some("DE"), b, true)];
        assert_eq!(candidates(&rules, &[a, b, c], &order), vec![b, a, c]);
        let pinned = [rule(0, Some("DE"), c, false)];
        assert_eq!(candidates(&pinned, &[a, b, c], &order), vec![c]);
        assert_eq!(
            candidates(&[], &[b, a, c], &order),
            vec![a, b, c],
            "no rule: the plan's own connection first, the rest may take over"
        );
    }

    #[test]
    fn an_equivalent_plan_gives_at_least_as_much_and_the_cheapest_wins() {
        let (a, b) = (ProviderConnectionId::new(), ProviderConnectionId::new());
        let wanted = plan(a, Some(5), Validity::Monthly, &["DE", "FR"], 1000);
        let smaller = plan(b, Some(3), Validity::Monthly, &["DE", "FR"], 500);
        let travel = plan(b, Some(10), Validity::Days(30), &["DE", "FR"], 600);
        let narrower = plan(b, Some(10), Validity::Monthly, &["DE"], 700);
        let pricey = plan(b, None, Validity::Monthly, &["DE", "FR", "IT"], 1500);
        let fitting = plan(b, Some(5), Validity::Monthly, &["FR", "DE"], 1200);
        let offered = [&smaller, &travel, &narrower, &pricey, &fitting];
        assert_eq!(
            equivalent_plan(&wanted, offered).map(|p| p.id),
            Some(fitting.id)
        );
        assert_eq!(equivalent_plan(&wanted, [&smaller, &travel]), None);
    }

    #[test]
    fn validation_names_the_rule_and_what_is_wrong() {
        let a = ProviderConnectionId::new();
        let ok = |country: Option<&str>| NewRouteRule {
            country: country.map(str::to_owned),
            provider_connection_id: Some(a),
            ..Default::default()
        };
        let checked = validate(&[ok(Some(" de ")), ok(None)], &[a]).unwrap();
        assert_eq!(checked[0].country.as_deref(), Some("DE"));
        let err = validate(&[ok(Some("Germany"))], &[a]).unwrap_err();
        assert!(err.to_string().contains("rule 1"), "{err}");
        let err = validate(&[ok(None), ok(Some("DE"))], &[a]).unwrap_err();
        assert!(err.to_string().contains("rule 2 can never match"), "{err}");
        let unknown = NewRouteRule {
            provider_connection_id: Some(ProviderConnectionId::new()),
            ..Default::default()
        };
        assert!(validate(&[unknown], &[a]).is_err());
        assert!(validate(&[NewRouteRule::default()], &[a]).is_err());
    }
}
