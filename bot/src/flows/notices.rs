//! Notices to employees (a guardrail acted on their line, an alert about it), sent by direct
//! message on the first chat platform the tenant installed that reaches the employee.

use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::employee_notice::{EmployeeNotice, NoticeError, NoticeSender};

use super::ChatFlows;

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
            let Some(user) = self.chat_user(&ws, platform, notice.employee_id).await else {
                failures.push(format!(
                    "{}: the employee has no account",
                    platform.as_str()
                ));
                continue;
            };
            match transport.send_direct(&ws, &user, &notice.message).await {
                Ok(_) => return Ok(()),
                Err(e) => failures.push(format!("{}: {e}", platform.as_str())),
            }
        }
        if failures.is_empty() {
            // Nothing installed yet: that may change, so the notice waits.
            return Err(NoticeError::Unreachable(
                "no chat platform is installed for the organisation".to_owned(),
            ));
        }
        Err(NoticeError::Temporary(failures.join("; ")))
    }
}
