//! Plans.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{PlanId, ProviderConnectionId, TenantId};
use crate::lines::plan::Plan;
use crate::money::{Bytes, Currency, Money};
use crate::provider::Validity;
use crate::spend::pricing::ZoneRates;

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: PlanId,
    tenant_id: TenantId,
    provider: String,
    provider_connection_id: Option<ProviderConnectionId>,
    offering_id: String,
    template_id: Option<String>,
    name: String,
    data_bytes: Option<i64>,
    validity: Json<Validity>,
    coverage: Json<Vec<String>>,
    price_minor: Option<i64>,
    currency: String,
    overage_per_gb_minor: Option<i64>,
    roaming_per_gb_minor: Json<ZoneRates>,
    throttle_after_cap_kbps: Option<i32>,
    active: bool,
    created_at: OffsetDateTime,
}

impl TryFrom<PlanRow> for Plan {
    type Error = StoreError;
    fn try_from(r: PlanRow) -> StoreResult<Plan> {
        let currency =
            Currency::parse(&r.currency).map_err(|e| StoreError::corrupt("plan currency", e))?;
        Ok(Plan {
            id: r.id,
            tenant_id: r.tenant_id,
            provider: r.provider,
            provider_connection_id: r.provider_connection_id,
            offering_id: r.offering_id,
            template_id: r.template_id,
            name: r.name,
            data: r.data_bytes.map(Bytes),
            validity: r.validity.0,
            coverage: r.coverage.0,
            price: r.price_minor.map(|m| Money::new(m, currency)),
            overage_per_gb: r.overage_per_gb_minor.map(|m| Money::new(m, currency)),
            roaming_per_gb_minor: r.roaming_per_gb_minor.0,
            throttle_after_cap_kbps: r.throttle_after_cap_kbps.map(|k| k.max(0) as u32),
            active: r.active,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, provider, offering_id, template_id, name, data_bytes, \
     validity, coverage, price_minor, currency, overage_per_gb_minor, roaming_per_gb_minor, \
     throttle_after_cap_kbps, active, created_at, provider_connection_id";

/// Insert, or refresh the catalogue fields of the plan with the same offering in the same
/// connection's catalogue. Returns the stored plan's id (the existing one when it was already
/// there). The tenant's own overage and roaming prices survive a refresh.
pub async fn upsert(tx: &mut Tx, tenant: TenantId, plan: &Plan) -> StoreResult<PlanId> {
    let currency = plan
        .price
        .or(plan.overage_per_gb)
        .map(|m| m.currency)
        .unwrap_or(Currency::USD);
    // A NULL connection (the server-wide catalogue) cannot be an ON CONFLICT target on both
    // backends, so the row is looked up first; the unique index still refuses a duplicate.
    let existing: Option<PlanId> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT id FROM plans WHERE tenant_id = $1 AND offering_id = $2
               AND (provider_connection_id = $3
                    OR (provider_connection_id IS NULL AND $3 IS NULL))",
        )
        .bind(tenant)
        .bind(&plan.offering_id)
        .bind(plan.provider_connection_id)
        .fetch_optional(conn)
        .await?
    });
    if let Some(id) = existing {
        on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE plans SET provider = $3, template_id = $4, name = $5, data_bytes = $6,
                     validity = $7, coverage = $8, price_minor = $9, currency = $10,
                     active = $11, throttle_after_cap_kbps = $12,
                     overage_per_gb_minor = COALESCE(overage_per_gb_minor, $13),
                     roaming_per_gb_minor = CASE WHEN roaming_per_gb_minor = '{}'
                         THEN $14 ELSE roaming_per_gb_minor END
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(&plan.provider)
            .bind(&plan.template_id)
            .bind(&plan.name)
            .bind(plan.data.map(|b| b.0))
            .bind(Json(plan.validity))
            .bind(Json(&plan.coverage))
            .bind(plan.price.map(|m| m.minor))
            .bind(currency.as_str())
            .bind(plan.active)
            .bind(plan.throttle_after_cap_kbps.map(|k| k as i32))
            .bind(plan.overage_per_gb.map(|m| m.minor))
            .bind(Json(&plan.roaming_per_gb_minor))
            .execute(conn)
            .await?;
        });
        return Ok(id);
    }
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO plans (id, tenant_id, provider, offering_id, template_id, name,
                 data_bytes, validity, coverage, price_minor, currency, overage_per_gb_minor,
                 roaming_per_gb_minor, throttle_after_cap_kbps, active, created_at,
                 provider_connection_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16, $13, $14, $15, $17)",
        )
        .bind(plan.id)
        .bind(tenant)
        .bind(&plan.provider)
        .bind(&plan.offering_id)
        .bind(&plan.template_id)
        .bind(&plan.name)
        .bind(plan.data.map(|b| b.0))
        .bind(Json(plan.validity))
        .bind(Json(&plan.coverage))
        .bind(plan.price.map(|m| m.minor))
        .bind(currency.as_str())
        .bind(plan.overage_per_gb.map(|m| m.minor))
        .bind(plan.throttle_after_cap_kbps.map(|k| k as i32))
        .bind(plan.active)
        .bind(plan.created_at)
        .bind(Json(&plan.roaming_per_gb_minor))
        .bind(plan.provider_connection_id)
        .execute(conn)
        .await?;
    });
    Ok(plan.id)
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: PlanId) -> StoreResult<Option<Plan>> {
    let sql = format!("SELECT {COLUMNS} FROM plans WHERE tenant_id = $1 AND id = $2");
    let row: Option<PlanRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Plan::try_from).transpose()
}

pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Plan>> {
    let sql = format!("SELECT {COLUMNS} FROM plans WHERE tenant_id = $1 ORDER BY name");
    let rows: Vec<PlanRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Plan::try_from).collect()
}

/// The tenant's own overage and roaming prices for a plan; re-syncing the catalogue keeps them.
pub async fn set_prices(
    tx: &mut Tx,
    tenant: TenantId,
    id: PlanId,
    overage_per_gb_minor: i64,
    roaming_per_gb_minor: &ZoneRates,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE plans SET overage_per_gb_minor = $3, roaming_per_gb_minor = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(overage_per_gb_minor)
        .bind(Json(roaming_per_gb_minor))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Stop offering a plan the provider no longer sells (lines on it keep it).
pub async fn retire(tx: &mut Tx, tenant: TenantId, id: PlanId) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE plans SET active = false WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(conn)
            .await?;
    });
    Ok(())
}
