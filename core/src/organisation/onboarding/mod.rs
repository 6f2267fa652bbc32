//! A new organisation's first day: the steps between sign-up and the first eSIM in an
//! employee's hand, each ticked by the state it needs rather than by someone saying so.

pub mod commands;

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
