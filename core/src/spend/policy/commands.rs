//! Policy commands and queries: set, preview and remove budget caps and roaming presets,
//! apply the starter policy, and who each cap or preset reaches.

use std::collections::HashMap;

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::spend::guardrail::PolicyEffect;
use crate::spend::guardrail::commands::PolicyChange;
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
            Some(rule) => store::policy::set_roaming_rule(&mut tx, tenant, &country, rule).await?,
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

    pub async fn roaming_rules(&self, tenant: TenantId) -> CoreResult<Vec<(String, RoamingRule)>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::policy::list_caps(&mut tx, tenant).await?)
    }

    /// Whom the cap of `scope` governs (or would, once set): the active employees in the
    /// scope, whose lines' spend it adds up, and their live lines.
    pub async fn cap_reach(&self, tenant: TenantId, scope: CapScope) -> CoreResult<Reach> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        self.check_scope(&mut tx, tenant, scope).await?;
        let employees = store::employees::list(&mut tx, tenant).await?;
        let lines = store::lines::live_counts_by_employee(&mut tx, tenant).await?;
        Ok(reach(&employees, &lines, |e| {
            crate::spend::guardrail::Owner {
                employee: e.id,
                team: e.team_id,
                cost_centre: e.cost_centre_id,
            }
            .is_in(scope)
        }))
    }

    /// A roaming preset applies to everyone: every active employee and live line.
    pub async fn roaming_reach(&self, tenant: TenantId) -> CoreResult<Reach> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
