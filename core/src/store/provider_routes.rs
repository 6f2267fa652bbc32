//! Tenants' routing rules for new orders, kept in their order.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{ProviderConnectionId, ProviderRouteId, TeamId, TenantId};
use crate::provider::routing::{RoutePlanKind, RouteRule};

#[derive(sqlx::FromRow)]
struct RouteRow {
    id: ProviderRouteId,
    position: i32,
    country: Option<String>,
    plan_kind: Option<String>,
    team_id: Option<TeamId>,
    provider_connection_id: ProviderConnectionId,
    allow_failover: bool,
}

impl RouteRow {
    fn into_rule(self) -> StoreResult<RouteRule> {
        let plan_kind = self
            .plan_kind
            .map(|k| RoutePlanKind::parse(&k))
            .transpose()
            .map_err(|e| super::StoreError::corrupt("route plan kind", e))?;
        Ok(RouteRule {
            id: self.id,
            position: self.position,
            country: self.country,
            plan_kind,
            team_id: self.team_id,
            provider_connection_id: self.provider_connection_id,
            allow_failover: self.allow_failover,
        })
    }
}

/// The tenant's rules, first to match first.
pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<RouteRule>> {
    let rows: Vec<RouteRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, position, country, plan_kind, team_id, provider_connection_id,
                    allow_failover
             FROM provider_routes WHERE tenant_id = $1 ORDER BY position",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(RouteRow::into_rule).collect()
}

/// Replace the tenant's whole table with `rules` (their positions as given).
pub async fn replace(
    tx: &mut Tx,
    tenant: TenantId,
    rules: &[RouteRule],
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM provider_routes WHERE tenant_id = $1")
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
        for rule in rules {
            sqlx::query(
                "INSERT INTO provider_routes (id, tenant_id, position, country, plan_kind,
                     team_id, provider_connection_id, allow_failover, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(rule.id)
            .bind(tenant)
            .bind(rule.position)
            .bind(&rule.country)
            .bind(rule.plan_kind.map(RoutePlanKind::as_str))
            .bind(rule.team_id)
            .bind(rule.provider_connection_id)
            .bind(rule.allow_failover)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
    });
    Ok(())
}
