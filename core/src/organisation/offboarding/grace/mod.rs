//! The grace workflow for a leaver's lines: each line waits, suspended, for the leaver's
//! manager to choose what becomes of it — keep it for a successor, terminate it now, or
//! release the number to the leaver (a port-out) — from a chat card with buttons. Nobody
//! choosing gets one reminder, and the tenant's default at the deadline.
//!
//! One choice wins: deciding is a compare-and-set on the `open` case, so a double click, two
//! managers clicking or the deadline racing a click all end with one decision, and every
//! copy of the card shows it. The choice is carried out with the case's own command key
//! (`offboarding-case:{case}:{choice}`), so a retry, a crash or a second worker replays the
//! same provider call instead of placing another.

pub mod cards;
pub mod commands;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{EmployeeId, LineId, OffboardingCaseId, TenantId};
use crate::lines::request::ChatRefs;
use crate::provider::PortingAuthorisation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Waiting for a choice.
    Open,
    /// A choice won and is being carried out.
    Decided,
    Done,
    /// Carrying the choice out failed; the reason is on the case.
    Failed,
}

impl CaseState {
    pub const ALL: [Self; 4] = [Self::Open, Self::Decided, Self::Done, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Decided => "decided",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What becomes of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraceChoice {
    /// Transfer it to a successor and resume it.
    Keep,
    Terminate,
    /// Authorise the leaver to port the number out; the line stays suspended meanwhile.
    Release,
    /// Leave it suspended for an admin (a tenant default, never a button).
    KeepSuspended,
}

impl GraceChoice {
    pub const ALL: [Self; 4] = [
        Self::Keep,
        Self::Terminate,
        Self::Release,
        Self::KeepSuspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Terminate => "terminate",
            Self::Release => "release",
            Self::KeepSuspended => "keep_suspended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Keep => "keep for a successor",
            Self::Terminate => "terminate",
            Self::Release => "release the number to the leaver",
            Self::KeepSuspended => "leave suspended",
        }
    }
}

/// One leaver's line in its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffboardingCase {
    pub id: OffboardingCaseId,
    pub tenant_id: TenantId,
    /// The leaver.
    pub employee_id: EmployeeId,
    pub line_id: LineId,
    pub state: CaseState,
    /// Who is asked to choose: the leaver's nearest active manager, if any.
    pub asked_id: Option<EmployeeId>,
    pub deadline_at: OffsetDateTime,
    pub remind_at: OffsetDateTime,
    pub announced_at: Option<OffsetDateTime>,
    pub reminded_at: Option<OffsetDateTime>,
    pub choice: Option<GraceChoice>,
    pub successor_id: Option<EmployeeId>,
    /// The deciding actor, as the audit log names actors.
    pub chosen_by: Option<String>,
    pub chosen_at: Option<OffsetDateTime>,
    /// Nobody chose; the tenant's default was taken at the deadline.
    pub by_default: bool,
    pub porting: Option<PortingAuthorisation>,
    pub failure_reason: Option<String>,
    pub chat_refs: ChatRefs,
    pub created_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

impl OffboardingCase {
    /// The command key its choice is carried out with (`step` tells a choice's second call,
    /// the resume after a transfer, from its first).
    pub fn command_key(&self, choice: GraceChoice, step: &str) -> String {
        format!("offboarding-case:{}:{}:{step}", self.id, choice.as_str())
    }
}

/// Who decides a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseDecider {
    /// From chat: an active manager above the leaver, or an owner or admin.
    Employee(EmployeeId),
    /// From the portal: an owner or admin.
    Member(crate::ids::UserId),
}

/// The outcome of a click: whether this decision won, and the case as it is now.
#[derive(Debug, Clone)]
pub struct CaseDecided {
    pub case: OffboardingCase,
    pub won: bool,
}

/// What the sweep did that chat has to show.
#[derive(Debug, Clone)]
pub enum GraceEvent {
    /// A new case: post its card to whoever is asked.
    Announce(OffboardingCase),
    /// Nobody has chosen yet: remind whoever is asked.
    Remind(OffboardingCase),
    /// The case was settled (by a choice carried out, or the default at the deadline):
    /// update every copy of its card.
    Settled(OffboardingCase),
}
