//! Notices: direct messages that tell an employee what happened to their own line or budget
//! (a guardrail suspended or slowed the line, or gave it back; an alert about it). Queued in
//! the same transaction as the change, once per reason, and delivered by the worker through a
//! [`NoticeSender`] (the chat adapters), with retries.

pub mod commands;

use time::Duration;
use uuid::Uuid;

use crate::error::CoreResult;
use crate::ids::{EmployeeId, TenantId};
use crate::messaging::chat_message::Message;
use crate::spend::alert::{Alert, AlertKind, employee_message};
use crate::spend::guardrail::GuardrailActionKind;
use crate::store::{self, Tx};

/// A notice claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeNotice {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub employee_id: EmployeeId,
    pub message: Message,
    pub attempts: i32,
}

/// Why a notice could not be sent this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeError {
    /// Nothing reaches the employee yet: the organisation has no chat platform installed, or
    /// the employee has no account on it. Tried again later, quietly.
    Unreachable(String),
    /// Worth trying again later (the chat platform failed).
    Temporary(String),
    /// Worth trying again, but not before `after` (the platform's `Retry-After`).
    RetryAfter {
        after: std::time::Duration,
        reason: String,
    },
    /// Trying again cannot help.
    Permanent(String),
}

impl NoticeError {
    fn into_reason(self) -> String {
        match self {
            Self::Unreachable(reason)
            | Self::Temporary(reason)
            | Self::RetryAfter { reason, .. }
            | Self::Permanent(reason) => reason,
        }
    }
}

/// Delivers a notice to the employee: implemented by the chat adapters.
#[async_trait::async_trait]
pub trait NoticeSender: Send + Sync {
    async fn send_notice(&self, notice: &EmployeeNotice) -> Result<(), NoticeError>;
}

/// After this many attempts (about a day of back-off) a notice is given up on.
const MAX_ATTEMPTS: i32 = 10;
/// How long a claimed notice is someone else's before it may be claimed again.
const SENDING_LEASE: Duration = Duration::minutes(5);

/// Queues `message` for `employee` unless a notice with `reason` was queued before.
pub(crate) async fn queue(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    reason: &str,
    message: &Message,
) -> CoreResult<bool> {
    Ok(store::notices::insert_if_new(tx, tenant, employee, reason, message, store::now()).await?)
}

/// Queues the employee's copy of a new alert about their line or budget. A cap reached with
/// a line action is left to the action's own notice, which says what happened to the line.
pub(crate) async fn queue_for_alert(tx: &mut Tx, alert: &Alert) -> CoreResult<()> {
    let Some(employee) = alert.employee_id else {
        return Ok(());
    };
    let acted = alert.kind == AlertKind::BudgetCapReached
        && matches!(
            alert.details["action"].as_str(),
            Some("suspend" | "throttle")
        );
    if !acted {
        let reason = format!("alert:{}", alert.id);
        queue(
            tx,
            alert.tenant_id,
            employee,
            &reason,
            &employee_message(alert),
        )
        .await?;
    }
    Ok(())
}

/// What the employee is told when a guardrail suspends or slows their line.
pub fn guardrail_applied(
    kind: GuardrailActionKind,
    why: Option<&Alert>,
    kbps: Option<u32>,
) -> Message {
    let (title, what) = match kind {
        GuardrailActionKind::Suspend => ("Your line is suspended", "suspended".to_owned()),
        GuardrailActionKind::Throttle => (
            "Your line is slowed down",
            format!("slowed to {} kbps", kbps.unwrap_or_default()),
        ),
    };
    let because = why.map_or(String::new(), |alert| format!(" {}", alert.message));
    Message {
        title: Some(title.into()),
        text: format!("Your eSIM line was {what} by a budget guardrail.{because}"),
        context: Some(
            "It is undone when the month ends, or sooner if finance raises the cap. Ask for a \
             cap raise with /esim if you need the line now."
                .into(),
        ),
        ..Message::default()
    }
}

/// What the employee is told when a guardrail gives their line back.
pub fn guardrail_reverted(kind: GuardrailActionKind, why: &str) -> Message {
    let what = match kind {
        GuardrailActionKind::Suspend => "is working again",
        GuardrailActionKind::Throttle => "has its full speed again",
    };
    let because = match why {
        "cap_raised" => "finance raised the budget cap",
        "policy_changed" => "your company changed its spending or roaming policy",
        _ => "a new billing month started",
    };
    Message {
        title: Some("Your line is back".into()),
        text: format!("Your eSIM line {what}: {because}."),
        ..Message::default()
    }
}
