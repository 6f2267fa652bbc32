//! A new organisation's first day: the steps between sign-up and the first eSIM in an
//! employee's hand, each ticked by the state it needs rather than by someone saying so.

use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::messaging::chat::Platform;
use crate::store;

/// One step, in the order a new organisation takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnboardingStep {
    ConnectProvider,
    ImportPeople,
    ConnectChat,
    SetPolicy,
    IssueFirstLine,
}

impl OnboardingStep {
    pub const ALL: [Self; 5] = [
        Self::ConnectProvider,
        Self::ImportPeople,
        Self::ConnectChat,
        Self::SetPolicy,
        Self::IssueFirstLine,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarding {
    /// Every step with whether it is done, in order.
    pub steps: Vec<(OnboardingStep, bool)>,
}

impl Onboarding {
    pub fn is_complete(&self) -> bool {
        self.steps.iter().all(|(_, done)| *done)
    }

    /// The first step not yet done.
    pub fn next_step(&self) -> Option<OnboardingStep> {
        self.steps
            .iter()
            .find(|(_, done)| !done)
            .map(|(step, _)| *step)
    }
}

impl Lineup {
    pub async fn onboarding(&self, tenant: TenantId) -> CoreResult<Onboarding> {
        let provider = self.provider_status(tenant).await?.is_connected();
        let policy = self.has_policy(tenant).await?;
        let mut tx = self.tenant_tx(tenant).await?;
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
