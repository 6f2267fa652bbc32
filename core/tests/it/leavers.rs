//! Leavers' grace cases against a provider that cannot port numbers out: Release is refused
//! with a clear message and the case stays open for another choice.

use std::sync::Arc;

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::error::CoreError;
use lineup_core::organisation::offboarding::grace::{CaseDecider, CaseState, GraceChoice};
use lineup_core::organisation::tenant::OffboardingAction;
use lineup_core::provider::{
    Capabilities, ConnectivityProvider, Effective, IdempotencyKey, Operation, Page, PlanRef,
    ProviderError, ProviderEvent, ProviderPlan, ProvisionRequest, SimProfile, SubscriptionSnapshot,
    UsageQuery, UsageRecord, WebhookError,
};
use lineup_testkit::both_backends;
use lineup_testkit::world::{World, quick_poll};
use time::OffsetDateTime;

/// The simulator's provider, saying it cannot port numbers out (as a vendor without a
/// porting API would).
struct WithoutPortOut {
    inner: Arc<dyn ConnectivityProvider>,
    capabilities: Capabilities,
}

#[async_trait::async_trait]
impl ConnectivityProvider for WithoutPortOut {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        self.inner.list_plans().await
    }
    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.inner.provision_line(request, key).await
    }
    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        self.inner.poll_operation(operation_id).await
    }
    async fn get_subscription(&self, id: &str) -> Result<SubscriptionSnapshot, ProviderError> {
        self.inner.get_subscription(id).await
    }
    async fn get_sim_profile(&self, id: &str) -> Result<SimProfile, ProviderError> {
        self.inner.get_sim_profile(id).await
    }
    async fn suspend(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.suspend(id, key).await
    }
    async fn resume(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.resume(id, key).await
    }
    async fn terminate(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.terminate(id, key).await
    }
    async fn change_plan(
        &self,
        id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.inner.change_plan(id, plan, effective, key).await
    }
    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        self.inner.usage(query).await
    }
    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        self.inner.parse_webhook(signature_header, body, now)
    }
}

both_backends!(
    release_is_refused_where_the_provider_cannot_port_out,
    |store| async move {
        let w = World::new(store).await;
        let inner: Arc<dyn ConnectivityProvider> = Arc::new(w.provider());
        let capabilities = Capabilities {
            port_out: false,
            ..inner.capabilities().clone()
        };
        let lineup = Lineup::new(
            w.lineup.store().clone(),
            Arc::new(WithoutPortOut {
                inner,
                capabilities,
            }),
            quick_poll(),
        );
        let mut settings = lineup.tenant(w.tenant).await.unwrap().settings;
        settings.offboarding_action = OffboardingAction::Grace;
        lineup
            .update_settings(w.tenant, &Actor::System, settings)
            .await
            .unwrap();
        w.active_line(&w.maria, "maria-1").await;
        let report = lineup
            .offboard_employee(w.tenant, &Actor::System, w.maria.id)
            .await
            .unwrap();
        let case = &report.grace_cases[0];
        assert!(
            !lineup
                .case_context(w.tenant, case)
                .await
                .unwrap()
                .can_port_out
        );

        let refused = lineup
            .decide_offboarding_case(
                w.tenant,
                CaseDecider::Employee(w.olivia.id),
                case.id,
                GraceChoice::Release,
                None,
            )
            .await
            .unwrap_err();
        match refused {
            CoreError::Invalid { field, reason } => {
                assert_eq!(field, "choice");
                assert!(reason.contains("cannot port numbers out"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let current = lineup.offboarding_case(w.tenant, case.id).await.unwrap();
        assert_eq!(
            current.state,
            CaseState::Open,
            "another choice can still be made"
        );
        let stats = w.stats().await;
        assert_eq!(stats["orders"]["by_type"]["terminate_subscription"], 0);
    }
);
