//! Notices to employees (a guardrail acted on their line, an alert about it), sent by direct
//! message on the first chat platform the tenant installed that reaches the employee.

use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::employee_notice::{EmployeeNotice, NoticeError, NoticeSender};

use super::ChatFlows;
use crate::chat::TransportError;

#[async_trait::async_trait]
impl NoticeSender for ChatFlows {
    async fn send_notice(&self, notice: &EmployeeNotice) -> Result<(), NoticeError> {
        let mut failures = Vec::new();
        for platform in Platform::ALL {
            let workspace = self
                .lineup
                .workspace_of_tenant(notice.tenant_id, platform)
                .await
                .map_err(|e| NoticeError::Temporary(e.to_string()))?;
            let (Some(ws), Some(transport)) = (workspace, self.transport(platform)) else {
                continue;
            };
            let user = match self.find_chat_user(&ws, platform, notice.employee_id).await {
                Ok(Some(user)) => user,
                Ok(None) => {
                    failures.push(TransportError::retry_later(format!(
                        "{}: the employee has no account",
                        platform.as_str()
                    )));
                    continue;
                }
                Err(e) => {
                    failures
                        .push(e.context(format!("{}: looking the employee up", platform.as_str())));
                    continue;
                }
            };
            match transport.send_direct(&ws, &user, &notice.message).await {
                Ok(_) => return Ok(()),
                Err(e) => failures.push(e.context(platform.as_str())),
            }
        }
        if failures.is_empty() {
            // Nothing installed yet: that may change, so the notice waits.
            return Err(NoticeError::Unreachable(
                "no chat platform is installed for the organisation".to_owned(),
            ));
        }
        Err(notice_error(&failures))
    }
}

/// What the outbox does after every platform failed: give up when none can ever take the
/// notice (token revoked, user gone, request refused), else try again, not before the
/// longest `Retry-After` any platform asked for.
fn notice_error(failures: &[TransportError]) -> NoticeError {
    let reason = failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if !failures.iter().any(TransportError::is_retryable) {
        return NoticeError::Permanent(reason);
    }
    let after = failures
        .iter()
        .filter_map(|f| match f {
            TransportError::RetryLater { after, .. } => *after,
            _ => None,
        })
        .max();
    match after {
        Some(after) => NoticeError::RetryAfter { after, reason },
        None => NoticeError::Temporary(reason),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_failures_that_can_never_succeed_give_a_notice_up() {
        let gone = TransportError::gone("slack: token_revoked");
        let refused = TransportError::refused("discord: 400");
        assert_eq!(
            notice_error(&[gone.clone(), refused.clone()]),
            NoticeError::Permanent("slack: token_revoked; discord: 400".into())
        );
        let busy = TransportError::retry_later("teams: 503");
        assert_eq!(
            notice_error(&[gone.clone(), busy]),
            NoticeError::Temporary("slack: token_revoked; teams: 503".into())
        );
        let limited = |secs| TransportError::RetryLater {
            after: Some(Duration::from_secs(secs)),
            reason: format!("wait {secs}"),
        };
        assert_eq!(
            notice_error(&[limited(30), gone, limited(90)]),
            NoticeError::RetryAfter {
                after: Duration::from_secs(90),
                reason: "wait 30; slack: token_revoked; wait 90".into()
            }
        );
    }
}
