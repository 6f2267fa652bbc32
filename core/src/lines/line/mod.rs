//! The line: an employee's eSIM subscription, and the one state machine that moves it.

pub mod activation;
pub mod commands;
mod failover;
pub mod reconcile;
pub mod travel;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use self::activation::SealedActivationCode;
use crate::ids::{EmployeeId, LineId, PlanId, ProviderConnectionId, TenantId};
use crate::lines::iccid::Iccid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    Requested,
    Provisioning,
    /// The profile is released and the activation code issued; not yet on a device.
    Ready,
    Active,
    Suspended,
    Terminated,
    Failed,
}

/// What happens to a line. Each command or provider outcome is one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineEvent {
    ProvisioningStarted,
    ProvisioningSucceeded,
    ProvisioningFailed,
    /// The profile was installed on a device or the line first attached.
    Activated,
    Suspend,
    Resume,
    Terminate,
    /// Try issuing again after a provider failure.
    Retry,
    /// Reconciliation found the line's subscription live at the provider although Lineup
    /// lost track of its order (marked it failed, or never heard back).
    Adopted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} {} line cannot {}", from.article(), from.as_str(), event.describe())]
pub struct IllegalTransition {
    pub from: LineState,
    pub event: LineEvent,
}

impl LineState {
    pub const ALL: [LineState; 7] = [
        LineState::Requested,
        LineState::Provisioning,
        LineState::Ready,
        LineState::Active,
        LineState::Suspended,
        LineState::Terminated,
        LineState::Failed,
    ];

    /// The whole lifecycle in one table; anything not listed is illegal.
    pub fn on(self, event: LineEvent) -> Result<LineState, IllegalTransition> {
        use LineEvent as E;
        use LineState as S;
        let next = match (self, event) {
            (S::Requested, E::ProvisioningStarted) => S::Provisioning,
            (S::Requested | S::Provisioning, E::ProvisioningFailed) => S::Failed,
            (S::Provisioning, E::ProvisioningSucceeded) => S::Ready,
            (S::Ready, E::Activated) => S::Active,
            (S::Active, E::Suspend) => S::Suspended,
            (S::Suspended, E::Resume) => S::Active,
            (S::Ready | S::Active | S::Suspended, E::Terminate) => S::Terminated,
            (S::Failed, E::Retry) => S::Provisioning,
            (S::Requested | S::Provisioning | S::Failed, E::Adopted) => S::Ready,
            (from, event) => return Err(IllegalTransition { from, event }),
        };
        Ok(next)
    }

    /// A line that holds (or is about to hold) a provider subscription.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Ready | Self::Active | Self::Suspended)
    }

    fn article(self) -> &'static str {
        if self == Self::Active { "an" } else { "a" }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for LineState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown line state {s:?}"))
    }
}

impl std::fmt::Display for LineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LineEvent {
    pub const ALL: [LineEvent; 9] = [
        LineEvent::ProvisioningStarted,
        LineEvent::ProvisioningSucceeded,
        LineEvent::ProvisioningFailed,
        LineEvent::Activated,
        LineEvent::Suspend,
        LineEvent::Resume,
        LineEvent::Terminate,
        LineEvent::Retry,
        LineEvent::Adopted,
    ];

    /// The audit action recorded when this event moves a line.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::ProvisioningStarted => "line.provisioning_started",
            Self::ProvisioningSucceeded => "line.provisioned",
            Self::ProvisioningFailed => "line.failed",
            Self::Activated => "line.activated",
            Self::Suspend => "line.suspended",
            Self::Resume => "line.resumed",
            Self::Terminate => "line.terminated",
            Self::Retry => "line.retried",
            Self::Adopted => "line.adopted",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ProvisioningStarted => "start provisioning",
            Self::ProvisioningSucceeded => "finish provisioning",
            Self::ProvisioningFailed => "fail provisioning",
            Self::Activated => "be activated",
            Self::Suspend => "be suspended",
            Self::Resume => "be resumed",
            Self::Terminate => "be terminated",
            Self::Retry => "be retried",
            Self::Adopted => "be adopted from the provider",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub id: LineId,
    pub tenant_id: TenantId,
    pub employee_id: EmployeeId,
    pub plan_id: PlanId,
    pub state: LineState,
    pub provider: String,
    /// The tenant's connection the line was ordered through (`None`: the server-wide
    /// account); every call about the line goes there, never to another provider.
    pub provider_connection_id: Option<ProviderConnectionId>,
    pub provider_subscription_id: Option<String>,
    pub iccid: Option<Iccid>,
    /// Sealed at rest; opened only by [`crate::Lineup::reveal_activation_code`], and never
    /// written into audit payloads.
    #[serde(skip_serializing)]
    pub activation_code: Option<SealedActivationCode>,
    pub failure_reason: Option<String>,
    pub issue_key: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One page of the lines directory: filters, the reporting tree of a manager, paging.
#[derive(Debug, Clone, Default)]
pub struct LineSearch {
    pub state: Option<LineState>,
    pub plan: Option<PlanId>,
    /// Part of the employee's name or email, any case.
    pub text: Option<String>,
    /// Only lines of this manager's reporting tree (the manager included).
    pub reports_of: Option<EmployeeId>,
    pub limit: i64,
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineEvent as E;
    use LineState as S;

    const LEGAL: [(LineState, LineEvent, LineState); 14] = [
        (S::Requested, E::ProvisioningStarted, S::Provisioning),
        (S::Requested, E::ProvisioningFailed, S::Failed),
        (S::Provisioning, E::ProvisioningFailed, S::Failed),
        (S::Provisioning, E::ProvisioningSucceeded, S::Ready),
        (S::Ready, E::Activated, S::Active),
        (S::Active, E::Suspend, S::Suspended),
        (S::Suspended, E::Resume, S::Active),
        (S::Ready, E::Terminate, S::Terminated),
        (S::Active, E::Terminate, S::Terminated),
        (S::Suspended, E::Terminate, S::Terminated),
        (S::Failed, E::Retry, S::Provisioning),
        (S::Requested, E::Adopted, S::Ready),
        (S::Provisioning, E::Adopted, S::Ready),
        (S::Failed, E::Adopted, S::Ready),
    ];

    #[test]
    fn every_listed_transition_is_legal_and_every_other_is_rejected() {
        let mut illegal = 0;
        for from in S::ALL {
            for event in E::ALL {
                match LEGAL.iter().find(|(f, e, _)| *f == from && *e == event) {
                    Some((_, _, to)) => assert_eq!(from.on(event), Ok(*to)),
                    None => {
                        assert_eq!(from.on(event), Err(IllegalTransition { from, event }));
                        illegal += 1;
                    }
                }
            }
        }
        assert_eq!(illegal, S::ALL.len() * E::ALL.len() - LEGAL.len());
    }

    #[test]
    fn terminated_is_final() {
        assert!(E::ALL.iter().all(|e| S::Terminated.on(*e).is_err()));
    }

    #[test]
    fn the_error_says_what_was_refused() {
        let err = S::Terminated.on(E::Resume).unwrap_err();
        assert_eq!(err.to_string(), "a terminated line cannot be resumed");
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<LineState>(), Ok(s));
        }
    }
}
