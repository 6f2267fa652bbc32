//! The onboarding query: which first-day steps a tenant has done, read from its state.

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::messaging::chat::Platform;
use crate::store;

impl Lineup {
    pub async fn onboarding(&self, tenant: TenantId) -> CoreResult<Onboarding> {
        let provider = self.provider_status(tenant).await?.is_connected();
        let policy = self.has_policy(tenant).await?;
        let mut tx = self.tenant_read_tx(tenant).await?;
        let people = store::employees::any(&mut tx, tenant).await?;
        let line = store::lines::any_issued(&mut tx, tenant).await?;
        let mut chat = false;
        for platform in Platform::ALL {
            chat |= store::chat::installation_for_tenant(&mut tx, tenant, platform.as_str())
                .await?
                .is_some();
        }
        let done = |step| match step {
            OnboardingStep::ConnectProvider => provider,
            OnboardingStep::ImportPeople => people,
            OnboardingStep::ConnectChat => chat,
            OnboardingStep::SetPolicy => policy,
            OnboardingStep::IssueFirstLine => line,
        };
        Ok(Onboarding {
            steps: OnboardingStep::ALL.map(|s| (s, done(s))).to_vec(),
        })
    }
}
